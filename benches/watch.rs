//! Benchmark (not a test): `replmend watch` against pt-slave-restart, the daemon DBAs run today.
//!
//! 1. Reaction: both daemons idle for REPLMEND_BENCH_IDLE seconds (default 120: pt-slave-restart
//!    doubles its sleep while nothing happens, up to --max-sleep 64 s), then one lossless 1062
//!    (identical rows; skipping it is right). Time from the source's write to a replica that is
//!    healthy and caught up. pt-slave-restart cannot read MySQL 8.4+/9.x status, so it runs on
//!    MariaDB only; replmend on every flavor of REPLMEND_BENCH_FLAVORS (default mariadb,mysql).
//! 2. Soak: REPLMEND_BENCH_SOAK_SECS (default 120) of 10 lossless conflicts a second against a
//!    watcher; its resident memory sampled every 10 s (flat = no leak per incident).
//!
//! ```text
//! cargo bench --bench watch
//! REPLMEND_BENCH_IDLE=10 REPLMEND_BENCH_SOAK_SECS=20 cargo bench --bench watch
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

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn reactions(idle: u64) {
    let mut rows = Vec::new();
    let sbs: Vec<(Flavor, Sandbox, Child)> = flavors()
        .into_iter()
        .map(|f| {
            let sb = sandbox(f);
            let w = watch(&sb);
            (f, sb, w)
        })
        .collect();
    let pt_sb = sandbox(Flavor::MariaDb);
    let pt = pt_slave_restart(&pt_sb);
    eprintln!("idling {idle} s with every daemon running …");
    std::thread::sleep(Duration::from_secs(idle));
    for (f, sb, w) in sbs {
        let first = reaction(&sb, 1);
        // A second conflict right after: the watcher is not idle any more.
        let busy = reaction(&sb, 2);
        rows.push((format!("replmend watch ({f})"), first, busy));
        stop(w);
    }
    let first = reaction(&pt_sb, 1);
    let busy = reaction(&pt_sb, 2);
    rows.push(("pt-slave-restart defaults (mariadb)".into(), first, busy));
    stop(pt);
    println!("\nReaction to a lossless 1062 after {idle} s idle, until healthy and caught up:");
    let anchor = rows.last().unwrap().1;
    for (name, first, busy) in &rows {
        println!(
            "  {name:<38} after idle {:>9.1} ms ({:>6.3}x of pt-slave-restart)   next conflict {:>9.1} ms",
            first.as_secs_f64() * 1000.0,
            first.as_secs_f64() / anchor.as_secs_f64(),
            busy.as_secs_f64() * 1000.0
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
}

fn main() {
    reactions(env_num("REPLMEND_BENCH_IDLE", 120));
    soak(env_num("REPLMEND_BENCH_SOAK_SECS", 120));
}
