//! Benchmark (not a test): the origin search (issue 22) for a write 1 MiB and 1 GiB back in
//! the replica's own binary log, on both flavors, against what a DBA would run instead:
//! mysqlbinlog over every binlog file of the replica piped through grep for the table.
//!
//! The replica's conflicting row is written on it directly (binary log on), then DEPTH MiB of
//! other writes are logged there after it, then the source writes the same key: the replica
//! stops with 1062 and `diagnose --origin-budget 4G,600s` reads its binlog newest file first
//! until it finds the write. Prints the search's own time and bytes (from the diagnosis) and
//! the mysqlbinlog|grep time; asserts nothing about them.
//!
//!     cargo bench --bench origin_depth              # 1 and 1000 MiB, both flavors
//!     REPLMEND_BENCH_DEPTHS_MIB=1,64 REPLMEND_BENCH_FLAVORS=mariadb cargo bench --bench origin_depth

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use replmend_sandbox::{Flavor, Node, Sandbox, Topology};

struct Case {
    flavor: Flavor,
    depth_mib: u64,
    search_ms: u64,
    search_bytes: u64,
    diagnose: Duration,
    grep: Duration,
}

/// Every binlog file of the node, read over the network and grepped for the table: how a
/// DBA finds who wrote a row today.
fn binlog_grep(flavor: Flavor, node: &Node) -> Duration {
    let files: Vec<String> = node
        .query_rows("SHOW BINARY LOGS")
        .unwrap()
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .collect();
    let tool = common::binlog_tool(flavor);
    let started = Instant::now();
    let mut child = Command::new(&tool[0])
        .args(&tool[1..])
        .args([
            "--read-from-remote-server",
            "--host=127.0.0.1",
            "--user=root",
        ])
        .arg(format!("--port={}", node.port))
        .args(["-v", "--base64-output=DECODE-ROWS"])
        .args(&files)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let grep = Command::new("grep")
        .args(["-c", "bench`.`t"])
        .stdin(child.stdout.take().unwrap())
        .output()
        .unwrap();
    let _ = child.wait();
    assert!(!grep.stdout.is_empty());
    started.elapsed()
}

fn run_case(flavor: Flavor, depth_mib: u64) -> Case {
    let sb = Sandbox::start(flavor, Topology::SourceReplica).expect("sandbox");
    let (n1, n2) = (sb.node("n1"), sb.node("n2"));
    n1.exec(
        "CREATE DATABASE bench; \
         CREATE TABLE bench.filler (id INT AUTO_INCREMENT PRIMARY KEY, b LONGBLOB); \
         CREATE TABLE bench.t (id INT PRIMARY KEY, v VARCHAR(20))",
    )
    .unwrap();
    n2.wait_caught_up(Duration::from_secs(60)).unwrap();
    // The write to find, on the replica itself, logged; then DEPTH MiB logged after it.
    n2.exec("INSERT INTO bench.t VALUES (1, 'replica')")
        .unwrap();
    eprintln!("[bench] {flavor}: logging {depth_mib} MiB on the replica after its write");
    for _ in 0..depth_mib {
        n2.exec("INSERT INTO bench.filler (b) VALUES (REPEAT('x', 1048576))")
            .unwrap();
    }
    n1.exec("INSERT INTO bench.t VALUES (1, 'source')").unwrap();
    n2.wait_sql_error(1062, Duration::from_secs(600)).unwrap();
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_replmend"))
        .args(["diagnose", "--replica", &n2.url(), "--format", "json"])
        .args(["--origin-budget", "4G,600s"])
        .output()
        .unwrap();
    let diagnose = started.elapsed();
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let o = &j["conflicts"][0]["origin"]["replica"];
    assert_eq!(o["found"], true, "{flavor} {depth_mib} MiB: {o}");
    Case {
        flavor,
        depth_mib,
        search_ms: o["searched_ms"].as_u64().unwrap_or(0),
        search_bytes: o["searched_bytes"].as_u64().unwrap_or(0),
        diagnose,
        grep: binlog_grep(flavor, n2),
    }
}

fn main() {
    let depths: Vec<u64> = std::env::var("REPLMEND_BENCH_DEPTHS_MIB")
        .unwrap_or_else(|_| "1,1000".into())
        .split(',')
        .filter_map(|d| d.trim().parse().ok())
        .collect();
    let mut cases = Vec::new();
    for flavor in common::flavors() {
        for &d in &depths {
            cases.push(run_case(flavor, d));
        }
    }
    println!(
        "\n{:<8} {:>9} {:>10} {:>14} {:>12} {:>20} {:>10}",
        "flavor",
        "depth",
        "search ms",
        "search bytes",
        "diagnose ms",
        "mysqlbinlog|grep ms",
        "grep/search"
    );
    for c in &cases {
        println!(
            "{:<8} {:>5} MiB {:>10} {:>14} {:>12.0} {:>20.0} {:>9.1}x",
            c.flavor.to_string(),
            c.depth_mib,
            c.search_ms,
            c.search_bytes,
            c.diagnose.as_secs_f64() * 1000.0,
            c.grep.as_secs_f64() * 1000.0,
            c.grep.as_secs_f64() * 1000.0 / (c.search_ms.max(1) as f64)
        );
    }
}
