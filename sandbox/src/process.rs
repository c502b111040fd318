//! Server processes by PID: liveness, identity (start time, command line) and stopping them.

use std::fs;
use std::process::Child;
use std::time::{Duration, Instant};

/// How long a server may take to shut down after SIGTERM before it gets SIGKILL.
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(15);

/// Running (not a zombie).
pub(crate) fn alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        let state = s.rsplit_once(") ").map(|(_, r)| r.chars().next());
        !matches!(state, Some(Some('Z' | 'X')) | None)
    })
}

/// Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat): with the
/// PID it identifies a process even after PIDs wrap around.
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(") ")?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether `pid` is the server started with `marker` (its `--datadir=` argument).
pub(crate) fn is_server(pid: u32, marker: &str) -> bool {
    fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| c.split(|b| *b == 0).any(|arg| arg == marker.as_bytes()))
}

fn signal(pid: u32, sig: i32) {
    if pid > 1 {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe {
            libc::kill(pid as libc::pid_t, sig);
        }
    }
}

/// A server process to stop: a child of ours (reaped here) or a PID found in a state file
/// (checked against its command line first, so a recycled PID is never signalled).
pub(crate) struct Victim {
    pub(crate) pid: u32,
    pub(crate) marker: String,
    pub(crate) child: Option<Child>,
}

impl Victim {
    fn gone(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => !matches!(c.try_wait(), Ok(None)),
            None => !alive(self.pid) || !is_server(self.pid, &self.marker),
        }
    }
}

/// SIGTERM to all, wait up to `grace`, SIGKILL what is left, wait for that too.
pub(crate) fn stop_processes(mut victims: Vec<Victim>, grace: Duration) {
    victims.retain_mut(|v| !v.gone());
    for v in &victims {
        signal(v.pid, libc::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while !victims.is_empty() && Instant::now() < deadline {
        victims.retain_mut(|v| !v.gone());
        std::thread::sleep(Duration::from_millis(20));
    }
    for v in &victims {
        signal(v.pid, libc::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !victims.is_empty() && Instant::now() < deadline {
        victims.retain_mut(|v| !v.gone());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_has_a_start_time() {
        let me = std::process::id();
        assert!(alive(me));
        assert!(start_time(me).is_some_and(|t| t > 0));
        assert!(!is_server(me, "--datadir=/nowhere"));
    }
}
