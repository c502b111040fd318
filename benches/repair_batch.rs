//! Benchmark (not a test): N consecutive 1062 conflicts on a MariaDB replica (replica rows
//! pre-inserted with sql_log_bin=0, then one INSERT per source transaction). Three ways out, each
//! on a fresh identical incident, in the same run:
//!
//! - replmend's batch repair (`repair --yes --remedy overwrite --until-healthy`: reads ahead,
//!   journals and deletes every conflicting replica row, one stop/start; the source's rows are
//!   all applied), timed as the whole process;
//! - the server's own `slave_exec_mode=IDEMPOTENT` (applies the source's rows over the replica's,
//!   journals nothing, server-wide), timed from START SLAVE until healthy and caught up;
//! - percona-toolkit's pt-slave-restart (skips each failing event: one stop/start per conflict,
//!   the source's rows are lost), timed until healthy and caught up.
//!
//! Prints wall times, rows applied, replica rows journaled, and the ratios to IDEMPOTENT and to
//! pt-slave-restart; asserts nothing about the times. pt-slave-restart cannot talk to MySQL
//! 8.4+/9.x (SHOW SLAVE STATUS is gone) and IDEMPOTENT is the MariaDB spelling, so this
//! compares on MariaDB.
//!
//!     cargo bench --bench repair_batch                           # N = 1,000 and 10,000
//!     REPLMEND_BENCH_CONFLICTS=1000 REPLMEND_BENCH_RUNS=5 cargo bench --bench repair_batch
//!
//! replmend and IDEMPOTENT run REPLMEND_BENCH_RUNS times each (3 by default), alternated, and
//! their medians are compared; pt-slave-restart (minutes at 10,000) runs once
//! (REPLMEND_BENCH_PT=0 leaves it out).
//!
//! Where replmend's time goes: `REPLMEND_TIMING=1 REPLMEND_BENCH_STDERR=1` prints its phase
//! marks (wall time and the process's CPU time); `REPLMEND_BENCH_WRAP="perf record -g -o FILE --"` runs it under a profiler, and
//! `REPLMEND_BENCH_WRAP=scripts/ab-wrap REPLMEND_AB_OTHER=/path/to/replmend` alternates this
//! build with another one (odd runs this build, even runs the other): on a machine whose load
//! varies, only builds measured side by side can be compared.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use replmend_sandbox::{Flavor, Node, Sandbox, Topology};

fn incident(n: usize) -> Sandbox {
    let sb = Sandbox::start(Flavor::MariaDb, Topology::SourceReplica).expect("sandbox");
    let (n1, n2) = (sb.node("n1"), sb.node("n2"));
    n1.exec(
        "CREATE DATABASE bench; CREATE TABLE bench.jobs (id INT PRIMARY KEY, owner VARCHAR(20))",
    )
    .unwrap();
    n2.wait_caught_up(Duration::from_secs(60)).unwrap();
    let rows: Vec<String> = (1..=n).map(|i| format!("({i}, 'replica')")).collect();
    n2.exec(&format!(
        "SET sql_log_bin = 0; INSERT INTO bench.jobs VALUES {}",
        rows.join(",")
    ))
    .unwrap();
    let mut conn = n1.conn().unwrap();
    for i in 1..=n {
        conn.query_drop(format!("INSERT INTO bench.jobs VALUES ({i}, 'source')"))
            .unwrap();
    }
    n2.wait_sql_error(1062, Duration::from_secs(120)).unwrap();
    sb
}

/// Blocks until the replica has applied its source's binlog as it ends now, or stopped
/// (MASTER_POS_WAIT returns at once, not at a polling interval); true when healthy then.
fn wait_caught_up(sb: &Sandbox) -> bool {
    let mut src = sb.node("n1").conn().unwrap();
    let (file, pos): (String, u64) = src
        .query_first("SHOW MASTER STATUS")
        .unwrap()
        .map(|row: mysql::Row| (row.get(0).unwrap(), row.get(1).unwrap()))
        .unwrap();
    let mut replica = sb.node("n2").conn().unwrap();
    let waited: Option<Option<i64>> = replica
        .exec_first("SELECT MASTER_POS_WAIT(?, ?, 1800)", (file, pos))
        .unwrap();
    matches!(waited, Some(Some(n)) if n >= 0) && sb.node("n2").sql_error().unwrap().is_none()
}

fn source_rows(n2: &Node) -> String {
    n2.query_value("SELECT COUNT(*) FROM bench.jobs WHERE owner = 'source'")
        .unwrap()
        .unwrap_or_default()
}

struct Run {
    time: Duration,
    applied: String,
    cycles: usize,
    journaled: usize,
}

fn replmend(n: usize) -> Run {
    let sb = incident(n);
    let journal = std::env::temp_dir().join(format!(
        "replmend-bench-journal-{}-{n}.jsonl",
        std::process::id()
    ));
    let started = Instant::now();
    // REPLMEND_BENCH_WRAP="perf record -g -o FILE --" runs replmend under a profiler.
    let wrap = std::env::var("REPLMEND_BENCH_WRAP").unwrap_or_default();
    let mut words: Vec<String> = wrap.split_whitespace().map(String::from).collect();
    words.push(env!("CARGO_BIN_EXE_replmend").to_string());
    let out = Command::new(&words[0])
        .args(&words[1..])
        .args(["repair", "--replica", &sb.node("n2").url(), "--yes"])
        .args([
            "--remedy",
            "overwrite",
            "--until-healthy",
            "--max",
            "100000",
        ])
        // REPLMEND_BENCH_ARGS="--origin-budget 0" adds options to replmend's command line.
        .args(
            std::env::var("REPLMEND_BENCH_ARGS")
                .unwrap_or_default()
                .split_whitespace(),
        )
        .arg("--journal")
        .arg(&journal)
        .args(["--format", "json"])
        // REPLMEND_BENCH_STDERR=1 shows replmend's stderr (with REPLMEND_TIMING=1: its phases).
        .stderr(if std::env::var_os("REPLMEND_BENCH_STDERR").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .output()
        .unwrap();
    let time = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(wait_caught_up(&sb));
    // Every replica row has an intent (its image) and an outcome entry in the journal.
    let text = std::fs::read_to_string(&journal).unwrap_or_default();
    let journaled = text
        .lines()
        .filter(|l| l.contains("\"state\":\"done\""))
        .count();
    let _ = std::fs::remove_file(&journal);
    Run {
        time,
        applied: source_rows(sb.node("n2")),
        cycles: report["incidents"].as_array().map_or(0, |a| a.len()),
        journaled,
    }
}

fn idempotent(n: usize) -> Run {
    let sb = incident(n);
    let n2 = sb.node("n2");
    n2.exec("STOP SLAVE; SET GLOBAL slave_exec_mode = 'IDEMPOTENT'")
        .unwrap();
    let started = Instant::now();
    n2.exec("START SLAVE").unwrap();
    assert!(wait_caught_up(&sb));
    let time = started.elapsed();
    Run {
        time,
        applied: source_rows(n2),
        cycles: 1,
        journaled: 0,
    }
}

fn pt_slave_restart(n: usize) -> Run {
    let sb = incident(n);
    let port = sb.node("n2").port.to_string();
    let started = Instant::now();
    let mut pt = Command::new("pt-slave-restart")
        .arg(format!("h=127.0.0.1,P={port},u=root"))
        .args(["--error-numbers", "1062", "--sleep", "1"])
        .args(["--min-sleep", "0.015625", "--max-sleep", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("pt-slave-restart (scripts/install-deps installs percona-toolkit)");
    // pt-slave-restart restarts the applier after each skip: caught up means at the source's
    // end with no error, which the first waits may not find yet.
    while !wait_caught_up(&sb) {
        assert!(
            started.elapsed() < Duration::from_secs(3600),
            "pt-slave-restart did not finish"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let time = started.elapsed();
    let _ = pt.kill();
    let _ = pt.wait();
    Run {
        time,
        applied: source_rows(sb.node("n2")),
        cycles: n,
        journaled: 0,
    }
}

/// The run with the median time.
fn median(mut runs: Vec<Run>) -> Run {
    runs.sort_by_key(|r| r.time);
    runs.swap_remove(runs.len() / 2)
}

fn main() {
    let counts: Vec<usize> = std::env::var("REPLMEND_BENCH_CONFLICTS")
        .unwrap_or_else(|_| "1000,10000".into())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    let runs: usize = std::env::var("REPLMEND_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    for n in counts {
        // Alternated, each on a fresh incident, so load on the machine falls on both alike.
        let (mut rs, mut is) = (Vec::new(), Vec::new());
        for _ in 0..runs.max(1) {
            rs.push(replmend(n));
            is.push(idempotent(n));
        }
        let list = |runs: &[Run]| {
            runs.iter()
                .map(|r| format!("{:.1}", r.time.as_secs_f64() * 1000.0))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "\n{n} conflicts, every run (ms): replmend {}; IDEMPOTENT {}",
            list(&rs),
            list(&is)
        );
        let (r, i) = (median(rs), median(is));
        // REPLMEND_BENCH_PT=0 leaves pt-slave-restart out (minutes at 10,000).
        let p = if std::env::var("REPLMEND_BENCH_PT").as_deref() == Ok("0") {
            Run {
                time: Duration::ZERO,
                applied: "not run".into(),
                cycles: 0,
                journaled: 0,
            }
        } else {
            pt_slave_restart(n)
        };
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "\n{n} consecutive 1062 conflicts on MariaDB, until the replica is healthy and caught up (replmend and IDEMPOTENT: median of {runs}):"
        );
        println!(
            "  replmend repair --until-healthy --remedy overwrite: {:>9.1} ms, {} stop/start cycle(s), source rows applied: {}, replica rows journaled: {}",
            ms(r.time),
            r.cycles,
            r.applied,
            r.journaled
        );
        println!(
            "  slave_exec_mode=IDEMPOTENT:                         {:>9.1} ms, {} stop/start cycle(s), source rows applied: {}, replica rows journaled: {}",
            ms(i.time),
            i.cycles,
            i.applied,
            i.journaled
        );
        println!(
            "  pt-slave-restart --error-numbers 1062:              {:>9.1} ms, {} stop/start cycle(s), source rows applied: {}, replica rows journaled: {}",
            ms(p.time),
            p.cycles,
            p.applied,
            p.journaled
        );
        println!(
            "  replmend / IDEMPOTENT: {:.2}x    pt-slave-restart / replmend: {:.1}x",
            r.time.as_secs_f64() / i.time.as_secs_f64(),
            p.time.as_secs_f64() / r.time.as_secs_f64()
        );
    }
}
