//! Benchmark (not a test): `replmend watch` against pt-slave-restart, the daemon DBAs run today.
//!
//! 1. Reaction: both daemons idle for REPLMEND_BENCH_IDLE seconds (default 130: pt-slave-restart
//!    doubles its sleep while nothing happens, up to --max-sleep 64 s), then lossless 1062s
//!    (identical rows; skipping them is right) spread over pt-slave-restart's 64-s cycle. Time from the source's write to a replica that is
//!    healthy and caught up. pt-slave-restart cannot read MySQL 8.4+/9.x status, so it runs on
//!    MariaDB only; replmend on every flavor of REPLMEND_BENCH_FLAVORS (default mariadb,mysql).
//! 2. Soak: REPLMEND_BENCH_SOAK_SECS (default 120) of 10 lossless conflicts a second against a
//!    watcher; its resident memory sampled every 10 s (flat = no leak per incident).
//!
//! ```text
//! cargo bench --bench watch
//! REPLMEND_BENCH_IDLE=10 REPLMEND_BENCH_SOAK_SECS=20 cargo bench --bench watch
//! REPLMEND_BENCH_PARTS=soak REPLMEND_BENCH_SOAK_SECS=600 cargo bench --bench watch
//! ```

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use replmend_sandbox::{Flavor, Node, Sandbox, Topology};

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn flavors() -> Vec<Flavor> {
    let list = std::env::var("REPLMEND_BENCH_FLAVORS").unwrap_or("mariadb,mysql".into());
    list.split(',')
        .map(|f| match f.trim() {
            "mysql" => Flavor::MySql,
            _ => Flavor::MariaDb,
        })
        .collect()
}

fn sandbox(flavor: Flavor) -> Sandbox {
    let sb = Sandbox::start(flavor, Topology::SourceReplica).expect("sandbox");
    sb.node("n1")
        .exec("CREATE DATABASE bench; CREATE TABLE bench.jobs (id INT PRIMARY KEY, owner VARCHAR(20))")
        .unwrap();
    sb.node("n2")
        .wait_caught_up(Duration::from_secs(60))
        .unwrap();
    sb
}

/// A 1062 on identical rows: the replica's copy written unlogged first.
fn lossless_conflict(sb: &Sandbox, id: u64) {
    sb.node("n2")
        .exec(&format!(
            "SET sql_log_bin = 0; INSERT INTO bench.jobs VALUES ({id}, 'same')"
        ))
        .unwrap();
    sb.node("n1")
        .exec(&format!("INSERT INTO bench.jobs VALUES ({id}, 'same')"))
        .unwrap();
}

fn healthy_and_caught_up(n2: &Node) -> bool {
    n2.sql_error().unwrap().is_none() && n2.wait_caught_up(Duration::from_millis(1)).is_ok()
}

/// Time from the conflict's write until the replica is healthy and caught up.
fn reaction(sb: &Sandbox, id: u64) -> Duration {
    let started = Instant::now();
    lossless_conflict(sb, id);
    // Caught up with the source's position after the write: the event was applied or
    // skipped, so the pre-inserted row cannot make an untouched replica look repaired.
    let n2 = sb.node("n2");
    while !healthy_and_caught_up(n2) {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "never repaired"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    started.elapsed()
}

fn watch(sb: &Sandbox) -> Child {
    Command::new(env!("CARGO_BIN_EXE_replmend"))
        .args(["watch", "--replica", &sb.node("n2").url(), "--journal"])
        .arg(
            std::env::temp_dir().join(format!("replmend-bench-watch-{}.jsonl", std::process::id())),
        )
        .env("HOME", std::env::temp_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn pt_slave_restart(sb: &Sandbox) -> Child {
    Command::new("pt-slave-restart")
        .arg(format!("h=127.0.0.1,P={},u=root", sb.node("n2").port))
        .args(["--error-numbers", "1062"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("pt-slave-restart (scripts/install-deps installs percona-toolkit)")
}

fn stop(mut c: Child) {
    unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
    let _ = c.wait();
}

/// A number field of /proc/PID/status ("VmRSS" in KiB, "Threads").
fn proc_status(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn rss_kib(pid: u32) -> u64 {
    proc_status(pid, "VmRSS")
}

/// Conflicts at idle + i·16 s (i < SAMPLES): after the idle period pt-slave-restart polls every
/// 64 s, so its reaction depends on where in that cycle the conflict falls; spread over the
/// cycle, the samples show its range and mean. A pt-slave-restart daemon gets a sandbox per
/// sample (a reaction resets its sleep); a watcher polls at a fixed interval, so one sandbox
/// per flavor takes every sample.
const SAMPLES: u64 = 4;
const SPREAD: Duration = Duration::from_secs(16);

fn sampled(
    sb: &Sandbox,
    idle: Duration,
    started: Instant,
    samples: std::ops::Range<u64>,
) -> Vec<Duration> {
    samples
        .map(|i| {
            let at = idle + SPREAD * i as u32;
            if let Some(wait) = at.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
            reaction(sb, i + 1)
        })
        .collect()
}

fn reactions(idle: u64) {
    let idle = Duration::from_secs(idle);
    let watched: Vec<(Flavor, Sandbox, Child)> = flavors()
        .into_iter()
        .map(|f| {
            let sb = sandbox(f);
            let w = watch(&sb);
            (f, sb, w)
        })
        .collect();
    let pts: Vec<(Sandbox, Child)> = (0..SAMPLES)
        .map(|_| {
            let sb = sandbox(Flavor::MariaDb);
            let pt = pt_slave_restart(&sb);
            (sb, pt)
        })
        .collect();
    eprintln!(
        "idling {} s with every daemon running, then {SAMPLES} conflicts {} s apart …",
        idle.as_secs(),
        SPREAD.as_secs()
    );
    let started = Instant::now();
    let mut rows: Vec<(String, Vec<Duration>)> = std::thread::scope(|scope| {
        let w: Vec<_> = watched
            .iter()
            .map(|(f, sb, _)| {
                scope.spawn(move || {
                    (
                        format!("replmend watch ({f})"),
                        sampled(sb, idle, started, 0..SAMPLES),
                    )
                })
            })
            .collect();
        let p: Vec<_> = pts
            .iter()
            .enumerate()
            .map(|(i, (sb, _))| {
                scope.spawn(move || sampled(sb, idle, started, i as u64..i as u64 + 1))
            })
            .collect();
        let mut rows: Vec<(String, Vec<Duration>)> =
            w.into_iter().map(|h| h.join().unwrap()).collect();
        let pt = p.into_iter().flat_map(|h| h.join().unwrap()).collect();
        rows.push(("pt-slave-restart defaults (mariadb)".into(), pt));
        rows
    });
    for (_, _, w) in watched {
        stop(w);
    }
    for (_, pt) in pts {
        stop(pt);
    }
    let mean = |v: &[Duration]| v.iter().sum::<Duration>().as_secs_f64() / v.len() as f64;
    let anchor = mean(&rows.last().unwrap().1);
    println!(
        "\nReaction to a lossless 1062 after {} s idle (then every {} s), until healthy and caught up:",
        idle.as_secs(),
        SPREAD.as_secs()
    );
    for (name, v) in &mut rows {
        let ms: Vec<String> = v
            .iter()
            .map(|d| format!("{:.0}", d.as_secs_f64() * 1000.0))
            .collect();
        println!(
            "  {name:<38} mean {:>8.1} ms ({:>6.4}x of pt-slave-restart)   samples (ms): {}",
            mean(v) * 1000.0,
            mean(v) / anchor,
            ms.join(" ")
        );
    }
}

fn soak(secs: u64) {
    let sb = sandbox(Flavor::MariaDb);
    let w = watch(&sb);
    std::thread::sleep(Duration::from_secs(1));
    let pid = w.id();
    let started = Instant::now();
    let mut samples = vec![rss_kib(pid)];
    let mut next_sample = Duration::from_secs(10);
    let mut id = 0u64;
    while started.elapsed() < Duration::from_secs(secs) {
        id += 1;
        lossless_conflict(&sb, id);
        let next = Duration::from_millis(100 * id);
        if let Some(wait) = next.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
        if started.elapsed() >= next_sample {
            samples.push(rss_kib(pid));
            next_sample += Duration::from_secs(10);
        }
    }
    let caught = Instant::now();
    let n2 = sb.node("n2");
    while !healthy_and_caught_up(n2) {
        assert!(
            caught.elapsed() < Duration::from_secs(120),
            "the watcher fell behind"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let rows = n2.query_value("SELECT COUNT(*) FROM bench.jobs").unwrap();
    samples.push(rss_kib(pid));
    let threads = proc_status(pid, "Threads");
    stop(w);
    println!(
        "\nSoak: {secs} s, {id} lossless conflicts at 10/s on MariaDB; replica healthy and caught up {:.1} ms after the last one, {} rows on the replica",
        caught.elapsed().as_secs_f64() * 1000.0,
        rows.unwrap_or_default()
    );
    let mib: Vec<String> = samples
        .iter()
        .map(|k| format!("{:.1}", *k as f64 / 1024.0))
        .collect();
    println!("  watcher RSS every 10 s (MiB): {}", mib.join(" "));
    println!("  watcher threads at the end: {threads}");
}

fn main() {
    let parts = std::env::var("REPLMEND_BENCH_PARTS").unwrap_or("reaction,soak".into());
    if parts.contains("reaction") {
        reactions(env_num("REPLMEND_BENCH_IDLE", 130));
    }
    if parts.contains("soak") {
        soak(env_num("REPLMEND_BENCH_SOAK_SECS", 120));
    }
}
