//! Benchmark (not a test): one `replmend watch` on a fleet (issue 23). A fan-out sandbox of
//! REPLMEND_BENCH_REPLICAS replicas (default 20), one watcher on all of them:
//!
//! 1. Reaction with one replica frozen (SIGSTOP): for REPLMEND_BENCH_SAMPLES lossless 1062s
//!    (identical rows) on other replicas, the time from the source's write to the watcher's
//!    `action` event for that replica.
//! 2. Cost per watched replica: the watcher's resident memory, and its CPU seconds over
//!    REPLMEND_BENCH_IDLE seconds (default 30) of watching a healthy fleet, divided by the
//!    number of replicas.
//!
//! ```text
//! cargo bench --bench watch_fleet
//! REPLMEND_BENCH_FLAVORS=mariadb REPLMEND_BENCH_REPLICAS=20 cargo bench --bench watch_fleet
//! ```

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{env_num, flavors};
use replmend_sandbox::{Sandbox, Topology};

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill").args([sig, &pid.to_string()]).status();
}

/// (resident KiB, CPU seconds) of a process.
fn usage(pid: u32) -> (u64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat: 12 and 13 after the ')'.
    (rss, (ticks(11) + ticks(12)) / 100.0)
}

struct Watcher {
    child: Child,
    log: std::path::PathBuf,
}

impl Watcher {
    fn actions_on(&self, endpoint: &str) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("\"event\":\"action\"") && l.contains(endpoint))
            .count()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn main() {
    let n = env_num("REPLMEND_BENCH_REPLICAS", 20) as u32;
    let samples = env_num("REPLMEND_BENCH_SAMPLES", 5) as u32;
    let idle = env_num("REPLMEND_BENCH_IDLE", 30);
    for flavor in flavors() {
        let sb = Sandbox::start(flavor, Topology::FanOut(n)).expect("sandbox");
        let n1 = sb.node("n1");
        n1.exec("CREATE DATABASE w; CREATE TABLE w.t (id INT PRIMARY KEY, v INT NOT NULL)")
            .unwrap();
        let replicas: Vec<_> = (2..=n + 1).map(|i| sb.node(&format!("n{i}"))).collect();
        for r in &replicas {
            r.wait_caught_up(Duration::from_secs(120)).unwrap();
        }
        let dir = std::env::temp_dir().join(format!("replmend-bench-fleet-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join(format!("{flavor}.jsonl"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_replmend"));
        cmd.arg("watch");
        for r in &replicas {
            cmd.args(["--replica", &r.url()]);
        }
        let child = cmd
            .args(["--format", "json", "--interval", "0.25"])
            .env("HOME", &dir)
            .env("XDG_STATE_HOME", &dir)
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let w = Watcher { child, log };
        std::thread::sleep(Duration::from_secs(3));
        // Cost of watching a healthy fleet.
        let (_, cpu0) = usage(w.child.id());
        std::thread::sleep(Duration::from_secs(idle));
        let (rss, cpu1) = usage(w.child.id());
        println!(
            "{flavor}: watching {n} replicas: {:.1} MiB resident ({:.2} MiB per replica), {:.4} CPU s per replica per minute",
            rss as f64 / 1024.0,
            rss as f64 / 1024.0 / n as f64,
            (cpu1 - cpu0) / n as f64 * 60.0 / idle as f64
        );
        // Reaction with one replica frozen.
        let frozen = replicas[3];
        signal(frozen.pid, "-STOP");
        let mut times = Vec::new();
        for i in 0..samples {
            let target = replicas[(5 + i as usize) % replicas.len()];
            let endpoint = format!("127.0.0.1:{}", target.port);
            let before = w.actions_on(&endpoint);
            let id = 100 + i;
            target
                .exec(&format!(
                    "SET SESSION sql_log_bin = 0; INSERT INTO w.t VALUES ({id}, 1)"
                ))
                .unwrap();
            let t0 = Instant::now();
            n1.exec(&format!("INSERT INTO w.t VALUES ({id}, 1)"))
                .unwrap();
            while w.actions_on(&endpoint) == before && t0.elapsed() < Duration::from_secs(60) {
                std::thread::sleep(Duration::from_millis(5));
            }
            times.push(t0.elapsed());
        }
        signal(frozen.pid, "-CONT");
        times.sort();
        println!(
            "{flavor}: {n} replicas, one frozen: a lossless 1062 on another resolved in median {:?} (min {:?}, max {:?}, {} samples; poll interval 0.25 s)",
            times[times.len() / 2],
            times[0],
            times[times.len() - 1],
            times.len()
        );
        drop(w);
        sb.stop();
    }
}
