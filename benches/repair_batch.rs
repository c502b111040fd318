//! Benchmark (not a test): N consecutive 1062 conflicts on a MariaDB replica. replmend's batch
//! repair (`repair --yes --remedy overwrite --until-healthy`: reads ahead, journals and replaces
//! every conflicting row, one stop/start) against percona-toolkit's pt-slave-restart, the tool a
//! DBA would run instead (it skips each failing event: one stop/start per conflict, and the
//! source's rows are lost). Prints wall times until the replica is healthy and caught up, and
//! their ratio. pt-slave-restart cannot talk to MySQL 8.4+/9.x (SHOW SLAVE STATUS is gone), so
//! this compares on MariaDB.
//!
//!     cargo bench --bench repair_batch               # N = 200
//!     REPLMEND_BENCH_CONFLICTS=1000 cargo bench --bench repair_batch

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use replmend_sandbox::{Flavor, Sandbox, Topology};

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
    use mysql::prelude::Queryable;
    for i in 1..=n {
        conn.query_drop(format!("INSERT INTO bench.jobs VALUES ({i}, 'source')"))
            .unwrap();
    }
    n2.wait_sql_error(1062, Duration::from_secs(60)).unwrap();
    sb
}

fn healthy_and_caught_up(sb: &Sandbox) -> bool {
    sb.node("n2").sql_error().unwrap().is_none()
        && sb
            .node("n2")
            .wait_caught_up(Duration::from_millis(1))
            .is_ok()
}

fn main() {
    let n: usize = std::env::var("REPLMEND_BENCH_CONFLICTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);

    let sb = incident(n);
    let journal = std::env::temp_dir().join(format!(
        "replmend-bench-journal-{}.jsonl",
        std::process::id()
    ));
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_replmend"))
        .args([
            "repair",
            "--replica",
            &sb.node("n2").url(),
            "--yes",
            "--remedy",
            "overwrite",
            "--until-healthy",
            "--max",
            "100000",
        ])
        .arg("--journal")
        .arg(&journal)
        .args(["--format", "json"])
        .stderr(Stdio::null())
        .output()
        .unwrap();
    let replmend = started.elapsed();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cycles = report["incidents"].as_array().map_or(0, |a| a.len());
    assert!(healthy_and_caught_up(&sb));
    let kept = sb
        .node("n2")
        .query_value("SELECT COUNT(*) FROM bench.jobs WHERE owner = 'source'")
        .unwrap();
    let _ = std::fs::remove_file(&journal);
    drop(sb);

    let sb = incident(n);
    let port = sb.node("n2").port.to_string();
    let started = Instant::now();
    let mut pt = Command::new("pt-slave-restart")
        .arg(format!("h=127.0.0.1,P={port},u=root"))
        .args([
            "--error-numbers",
            "1062",
            "--sleep",
            "1",
            "--min-sleep",
            "0.015625",
            "--max-sleep",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("pt-slave-restart (scripts/install-deps installs percona-toolkit)");
    while !healthy_and_caught_up(&sb) {
        assert!(
            started.elapsed() < Duration::from_secs(1800),
            "pt-slave-restart did not finish"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let pt_time = started.elapsed();
    let _ = pt.kill();
    let _ = pt.wait();
    let pt_kept = sb
        .node("n2")
        .query_value("SELECT COUNT(*) FROM bench.jobs WHERE owner = 'source'")
        .unwrap();

    println!(
        "\n{n} consecutive 1062 conflicts on MariaDB, until the replica is healthy and caught up:"
    );
    println!(
        "  replmend repair --until-healthy --remedy overwrite: {:>9.1} ms, {cycles} stop/start cycle(s), source rows applied: {}",
        replmend.as_secs_f64() * 1000.0,
        kept.unwrap_or_default()
    );
    println!(
        "  pt-slave-restart --error-numbers 1062:              {:>9.1} ms, {n} skips, source rows applied: {}",
        pt_time.as_secs_f64() * 1000.0,
        pt_kept.unwrap_or_default()
    );
    println!(
        "  ratio pt-slave-restart / replmend: {:.1}x",
        pt_time.as_secs_f64() / replmend.as_secs_f64()
    );
}
