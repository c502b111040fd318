//! Benchmark (not a test): `replmend diagnose` of a conflict inside one big transaction (an
//! `INSERT … SELECT` of N rows, one of which is already on the replica), against what a DBA
//! runs instead: mariadb-binlog / mysqlbinlog over the same range, decoding the rows
//! (`--base64-output=DECODE-ROWS -vv`), measured side by side in the same run. Prints times,
//! peak RSS and the ratio; asserts nothing about them.
//!
//!     cargo bench --bench big_transaction               # 200,000 rows, both flavors
//!     REPLMEND_BENCH_ROWS=2000000 cargo bench --bench big_transaction

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use replmend_sandbox::{Flavor, Sandbox, Topology};

const RUNS: usize = 3;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs a command under /usr/bin/time-like accounting: wall time and peak RSS (KiB) of the
/// child, from wait4's rusage.
fn measure(cmd: &mut Command) -> (Duration, u64, std::process::ExitStatus) {
    let t = Instant::now();
    let child = cmd.spawn().expect("spawn");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: plain wait4 on our own child; rusage is zero-initialised plain data.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let elapsed = t.elapsed();
    std::mem::forget(child);
    use std::os::unix::process::ExitStatusExt;
    (
        elapsed,
        usage.ru_maxrss as u64,
        std::process::ExitStatus::from_raw(status),
    )
}

struct Case {
    flavor: Flavor,
    rows: u64,
    replmend: Duration,
    replmend_rss_kib: u64,
    binlog_tool: Duration,
    bytes: u64,
}

fn run_case(flavor: Flavor, rows: u64) -> Case {
    let sb = Sandbox::start(flavor, Topology::SourceReplica).expect("sandbox");
    let (n1, n2) = (sb.node("n1"), sb.node("n2"));
    n1.exec(
        "CREATE DATABASE bench; \
         CREATE TABLE bench.big (id INT PRIMARY KEY, v VARCHAR(80) NOT NULL)",
    )
    .unwrap();
    n2.wait_caught_up(Duration::from_secs(60)).unwrap();
    let conflict = rows / 2;
    n2.exec(&format!(
        "SET sql_log_bin = 0; INSERT INTO bench.big VALUES ({conflict}, 'replica')"
    ))
    .unwrap();
    eprintln!("[bench] {flavor}: one INSERT … SELECT of {rows} rows");
    common::exec_recursive(
        n1,
        rows + 1,
        &format!(
            "INSERT INTO bench.big WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {rows}) \
             SELECT n, REPEAT('x', 60) FROM s"
        ),
    );
    n2.wait_sql_error(1062, Duration::from_secs(600)).unwrap();

    let exe = env!("CARGO_BIN_EXE_replmend");
    let url = n2.url();
    let mut times = Vec::new();
    let mut rss = 0;
    let mut bytes = 0;
    for _ in 0..RUNS {
        let out =
            std::env::temp_dir().join(format!("replmend-bench-big-{}.json", std::process::id()));
        let (t, kib, status) = measure(
            Command::new(exe)
                .args(["diagnose", "--replica", &url, "--format", "json"])
                .stdout(std::fs::File::create(&out).unwrap())
                .stderr(Stdio::null()),
        );
        assert_eq!(status.code(), Some(3), "diagnose failed");
        let j: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
        assert_eq!(
            j["conflicts"].as_array().map(Vec::len),
            Some(1),
            "one conflict"
        );
        bytes = j["transaction"]["bytes_read"].as_u64().unwrap_or(0);
        let _ = std::fs::remove_file(&out);
        times.push(t);
        rss = rss.max(kib);
    }
    let st: serde_json::Value = serde_json::from_slice(
        &Command::new(exe)
            .args(["status", "--replica", &url, "--format", "json"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let ch = &st["channels"][0];
    let file = ch["relay_source_log_file"].as_str().unwrap().to_string();
    let start = ch["exec_source_log_pos"].as_u64().unwrap();
    let end = ch["read_source_log_pos"].as_u64().unwrap();
    let tool = common::binlog_tool(flavor);
    let port = n1.port.to_string();
    let mut tool_times = Vec::new();
    for _ in 0..RUNS {
        let (t, _, status) = measure(
            Command::new(&tool[0])
                .args(&tool[1..])
                .args([
                    "--read-from-remote-server",
                    "--host=127.0.0.1",
                    "--user=root",
                ])
                .arg(format!("--port={port}"))
                .args(["-vv", "--base64-output=DECODE-ROWS"])
                .arg(format!("--start-position={start}"))
                .arg(format!("--stop-position={end}"))
                .arg(&file)
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        assert!(status.success(), "{} failed", tool.join(" "));
        tool_times.push(t);
    }
    Case {
        flavor,
        rows,
        replmend: median(times),
        replmend_rss_kib: rss,
        binlog_tool: median(tool_times),
        bytes,
    }
}

fn main() {
    let rows: Vec<u64> = std::env::var("REPLMEND_BENCH_ROWS")
        .unwrap_or_else(|_| "200000,2000000".into())
        .split(',')
        .map(|r| r.trim().parse().expect("REPLMEND_BENCH_ROWS: numbers"))
        .collect();
    let mut cases = Vec::new();
    for flavor in [Flavor::MariaDb, Flavor::MySql] {
        for &r in &rows {
            cases.push(run_case(flavor, r));
        }
    }
    println!(
        "\n{:<8} {:>9} {:>12} {:>10} {:>14} {:>16} {:>16}",
        "flavor", "rows", "bytes", "replmend", "peak RSS", "mysqlbinlog -vv", "replmend/tool"
    );
    for c in &cases {
        println!(
            "{:<8} {:>9} {:>12} {:>8.0}ms {:>11} MiB {:>14.0}ms {:>15.2}x",
            c.flavor.to_string(),
            c.rows,
            c.bytes,
            ms(c.replmend),
            c.replmend_rss_kib / 1024,
            ms(c.binlog_tool),
            ms(c.replmend) / ms(c.binlog_tool)
        );
    }
}
