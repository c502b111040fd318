//! A real pseudo-terminal for the interactive tests: one detached tmux session per test, on a
//! tmux server of its own (`-L`). Sharing the default server raced: killing the last session
//! makes that server exit, and a session started at that moment failed with "server exited
//! unexpectedly".

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

pub struct Tmux(String);

impl Tmux {
    /// Runs `cmd` in a detached 220x60 session named (and served) `name`.
    pub fn start(name: String, cmd: &str) -> Tmux {
        let tmux = Tmux(name);
        let ok = tmux
            .command()
            .args([
                "new-session",
                "-d",
                "-s",
                &tmux.0,
                "-x",
                "220",
                "-y",
                "60",
                cmd,
            ])
            .status()
            .expect("tmux (scripts/install-deps installs it)");
        assert!(ok.success(), "tmux new-session {}", tmux.0);
        tmux
    }

    fn command(&self) -> Command {
        let mut command = Command::new("tmux");
        command.args(["-L", &self.0]);
        command
    }

    /// The pane's text, wrapped lines joined.
    pub fn pane(&self) -> String {
        let out = self
            .command()
            .args(["capture-pane", "-p", "-J", "-S", "-500", "-t", &self.0])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits (up to a minute) until `text` shows `count` times; returns the pane.
    pub fn wait_for_n(&self, text: &str, count: usize) -> String {
        let started = Instant::now();
        loop {
            let pane = self.pane();
            if pane.matches(text).count() >= count {
                return pane;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "waiting for {text:?} x{count}; pane:\n{pane}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn wait_for(&self, text: &str) -> String {
        self.wait_for_n(text, 1)
    }

    pub fn keys(&self, keys: &[&str]) {
        let status = self
            .command()
            .args(["send-keys", "-t", &self.0])
            .args(keys)
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the program to write its exit code to `done` and returns it.
    pub fn exit_code(&self, done: &Path, timeout: Duration) -> String {
        let started = Instant::now();
        // The shell creates the file before it writes the code into it: an
        // empty read means "not yet", not an empty exit code.
        loop {
            let code = std::fs::read_to_string(done).unwrap_or_default();
            if code.ends_with('\n') {
                return code.trim().to_string();
            }
            assert!(
                started.elapsed() < timeout,
                "did not finish:\n{}",
                self.pane()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.command().arg("kill-server").status();
    }
}
