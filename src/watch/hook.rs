//! `--hook CMD`: run for every event with its JSON on stdin, on a thread of its own so a slow
//! hook never delays the watcher's reaction; events reach the hook in order.

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A hook that runs longer is killed (and said so on stderr): events must not pile up.
const HOOK_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Hooks {
    tx: Option<Sender<(String, String)>>,
    worker: Option<JoinHandle<()>>,
}

impl Hooks {
    /// No commands: a no-op.
    pub fn start(commands: Vec<String>) -> Hooks {
        if commands.is_empty() {
            return Hooks {
                tx: None,
                worker: None,
            };
        }
        let (tx, rx) = channel();
        let worker = std::thread::Builder::new()
            .name("hooks".into())
            .spawn(move || run_all(&commands, rx))
            .ok();
        Hooks {
            tx: Some(tx),
            worker,
        }
    }

    /// Queues an event (its kind, its JSON) for every hook.
    pub fn send(&self, kind: &str, json: String) {
        if let Some(tx) = &self.tx {
            let _ = tx.send((kind.to_string(), json));
        }
    }

    /// Lets the queued events run, then returns (on shutdown).
    pub fn finish(mut self) {
        self.tx.take();
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

fn run_all(commands: &[String], rx: Receiver<(String, String)>) {
    for (kind, json) in rx {
        for cmd in commands {
            if let Err(e) = run_one(cmd, &kind, &json) {
                eprintln!("replmend: hook {cmd:?}: {e}");
            }
        }
    }
}

fn run_one(cmd: &str, kind: &str, json: &str) -> Result<(), String> {
    run_within(cmd, kind, json, HOOK_TIMEOUT)
}

fn run_within(cmd: &str, kind: &str, json: &str, limit: Duration) -> Result<(), String> {
    // Credentials stay here: the hook gets the event, not the environment's passwords or
    // DSNs. Its output goes to stderr, never into the watcher's event lines on stdout.
    let stdout = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map(Stdio::from)
        .unwrap_or_else(|_| Stdio::null());
    let mut child = Command::new("/bin/sh")
        .args(["-c", cmd])
        .env("REPLMEND_EVENT", kind)
        .env_remove("MYSQL_PWD")
        .env_remove("REPLMEND_REPLICA")
        .env_remove("REPLMEND_SOURCE")
        .stdin(Stdio::piped())
        .stdout(stdout)
        // Its own process group, so a hook past its time is killed with everything it started.
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is not an error.
        let _ = stdin.write_all(json.as_bytes());
        let _ = stdin.write_all(b"\n");
    }
    let started = Instant::now();
    loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(status) if status.success() => return Ok(()),
            Some(status) => return Err(format!("exited with {status}")),
            None if started.elapsed() > limit => {
                // SAFETY: signals the hook's own process group (its pid is the group id).
                unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("killed after {}s", limit.as_secs()));
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_reaches_every_hook_in_order_on_stdin() {
        let dir = std::env::temp_dir().join(format!("replmend-hook-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("events");
        let cmd = format!(
            "(printf '%s ' \"$REPLMEND_EVENT\"; cat) >> '{}'",
            out.display()
        );
        let env = format!(
            "echo \"pwd=${{MYSQL_PWD:-none}}\" >> '{}'",
            dir.join("env").display()
        );
        // SAFETY: a test-only variable, set before the hook thread starts.
        unsafe { std::env::set_var("MYSQL_PWD", "hunter2") };
        let hooks = Hooks::start(vec![cmd, "exit 3".into(), env]);
        hooks.send("incident", "{\"n\":1}".into());
        hooks.send("action", "{\"n\":2}".into());
        hooks.finish();
        let text = std::fs::read_to_string(&out).unwrap();
        assert_eq!(text, "incident {\"n\":1}\naction {\"n\":2}\n");
        let env = std::fs::read_to_string(dir.join("env")).unwrap();
        assert_eq!(env, "pwd=none\npwd=none\n", "a hook saw the password");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_hook_past_its_time_is_killed_with_what_it_started() {
        let dir = std::env::temp_dir().join(format!("replmend-hook-kill-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pid_file = dir.join("pid");
        let cmd = format!("sleep 60 & echo $! > '{}'; wait", pid_file.display());
        let err = run_within(&cmd, "incident", "{}", Duration::from_secs(1)).unwrap_err();
        assert!(err.contains("killed after 1s"), "{err}");
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        // The background child is gone too (or a zombie already reaped by init).
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", pid.trim())).unwrap_or_default();
        assert!(
            status.is_empty() || status.contains("State:\tZ"),
            "{status}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
