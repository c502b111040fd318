//! `REPLMEND_TIMING=1`: timestamps of a run's phases on stderr (milliseconds since the process
//! started), to see where the time of a repair goes. Off by default; costs one branch per mark.

use std::sync::OnceLock;
use std::time::Instant;

static START: OnceLock<Instant> = OnceLock::new();
static ON: OnceLock<bool> = OnceLock::new();

/// Called first thing in `main`, so marks count from the process's start.
pub fn start() {
    START.get_or_init(Instant::now);
}

fn on() -> bool {
    *ON.get_or_init(|| std::env::var_os("REPLMEND_TIMING").is_some_and(|v| v != "0"))
}

/// The CPU time this process has used so far, in milliseconds: beside the wall time it tells
/// a phase that computes from one that waits on a server.
fn cpu_ms() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec it is given and nothing else.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1000.0 + ts.tv_nsec as f64 / 1e6
}

/// One line `replmend: timing  12.3 ms (cpu 4.5)  what` when timing is on.
pub fn mark(what: impl std::fmt::Display) {
    if on() {
        let ms = START.get_or_init(Instant::now).elapsed().as_secs_f64() * 1000.0;
        eprintln!(
            "replmend: timing {ms:7.1} ms (cpu {:5.1})  {what}",
            cpu_ms()
        );
    }
}
