//! Benchmark (not a test): `replmend diagnose` on the same conflict 1 MiB and 1 GiB deep into
//! the source's binlog, on both flavors, against what a DBA would run instead: mysqlbinlog
//! positioned at the transaction (the expert's way) and mysqlbinlog over the whole file piped
//! through grep (the usual way). Diagnosis reads only the failing transaction, so its time
//! should not grow with depth. Prints times and ratios; asserts nothing about them.
//!
//!     cargo bench --bench diagnose_depth            # both depths, both flavors
//!     REPLMEND_BENCH_DEPTHS_MIB=1,64 cargo bench --bench diagnose_depth

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use replmend_sandbox::{Flavor, Sandbox, Topology};

const RUNS: usize = 5;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time<F: FnMut()>(mut f: F) -> Duration {
    let runs: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    median(runs)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Case {
    flavor: Flavor,
    depth_mib: u64,
    replmend: Duration,
    binlog_positioned: Duration,
    binlog_full_scan: Duration,
    bytes_read: u64,
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
    // The replica skips the filler so the benchmark measures the binlog, not the applier.
    n2.stop_replication().unwrap();
    match flavor {
        Flavor::MariaDb => n2
            .exec("SET GLOBAL replicate_ignore_table = 'bench.filler'")
            .unwrap(),
        Flavor::MySql => n2
            .exec("CHANGE REPLICATION FILTER REPLICATE_IGNORE_TABLE = (bench.filler)")
            .unwrap(),
    }
    n2.start_replication().unwrap();
    eprintln!("[bench] {flavor}: writing {depth_mib} MiB of binlog before the conflict");
    for _ in 0..depth_mib {
        n1.exec("INSERT INTO bench.filler (b) VALUES (REPEAT('x', 1048576))")
            .unwrap();
    }
    n2.exec("SET sql_log_bin = 0; INSERT INTO bench.t VALUES (1, 'replica')")
        .unwrap();
    n1.exec("INSERT INTO bench.t VALUES (1, 'source')").unwrap();
    n2.wait_sql_error(1062, Duration::from_secs(600)).unwrap();

    let exe = env!("CARGO_BIN_EXE_replmend");
    let url = n2.url();
    let mut bytes_read = 0;
    let replmend = time(|| {
        let out = Command::new(exe)
            .args(["diagnose", "--replica", &url, "--format", "json"])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(3),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        bytes_read = j["transaction"]["bytes_read"].as_u64().unwrap_or(0);
    });
    // Coordinates as the DBA would read them from SHOW SLAVE STATUS.
    let out = Command::new(exe)
        .args(["status", "--replica", &url, "--format", "json"])
        .output()
        .unwrap();
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ch = &st["channels"][0];
    let file = ch["relay_source_log_file"].as_str().unwrap().to_string();
    let start = ch["exec_source_log_pos"].as_u64().unwrap();
    let end = ch["read_source_log_pos"].as_u64().unwrap();
    let tool = common::binlog_tool(flavor);
    let port = n1.port.to_string();
    let remote = |extra: &[String]| {
        let mut c = Command::new(&tool[0]);
        c.args(&tool[1..])
            .args([
                "--read-from-remote-server",
                "--host=127.0.0.1",
                "--user=root",
            ])
            .arg(format!("--port={port}"))
            .args(["-v", "--base64-output=DECODE-ROWS"])
            .args(extra)
            .arg(&file)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        c
    };
    let binlog_positioned = time(|| {
        let out = remote(&[
            format!("--start-position={start}"),
            format!("--stop-position={end}"),
        ])
        .output()
        .unwrap();
        assert!(out.status.success());
    });
    let binlog_full_scan = time(|| {
        let mut child = remote(&[]).spawn().unwrap();
        let grep = Command::new("grep")
            .args(["-c", "bench`.`t"])
            .stdin(child.stdout.take().unwrap())
            .output()
            .unwrap();
        let _ = child.wait();
        assert!(!grep.stdout.is_empty());
    });
    Case {
        flavor,
        depth_mib,
        replmend,
        binlog_positioned,
        binlog_full_scan,
        bytes_read,
    }
}

fn main() {
    // cargo bench passes --bench; nothing else is accepted.
    let depths: Vec<u64> = std::env::var("REPLMEND_BENCH_DEPTHS_MIB")
        .unwrap_or_else(|_| "1,1000".into())
        .split(',')
        .map(|d| {
            d.trim()
                .parse()
                .expect("REPLMEND_BENCH_DEPTHS_MIB: numbers of MiB")
        })
        .collect();
    let mut cases = Vec::new();
    for flavor in [Flavor::MariaDb, Flavor::MySql] {
        for &d in &depths {
            cases.push(run_case(flavor, d));
        }
    }
    println!(
        "\n{:<8} {:>9} {:>12} {:>14} {:>18} {:>20} {:>12}",
        "flavor",
        "depth",
        "replmend ms",
        "bytes read",
        "mysqlbinlog pos ms",
        "mysqlbinlog|grep ms",
        "full/replmend"
    );
    for c in &cases {
        println!(
            "{:<8} {:>6} MiB {:>12.1} {:>14} {:>18.1} {:>20.1} {:>11.1}x",
            c.flavor.to_string(),
            c.depth_mib,
            ms(c.replmend),
            c.bytes_read,
            ms(c.binlog_positioned),
            ms(c.binlog_full_scan),
            ms(c.binlog_full_scan) / ms(c.replmend)
        );
    }
    for flavor in [Flavor::MariaDb, Flavor::MySql] {
        let of: Vec<&Case> = cases.iter().filter(|c| c.flavor == flavor).collect();
        if let (Some(shallow), Some(deep)) = (of.first(), of.last())
            && shallow.depth_mib != deep.depth_mib
        {
            println!(
                "{flavor}: diagnose at {} MiB / at {} MiB = {:.2} (flat is 1.0); mysqlbinlog|grep grew {:.1}x",
                deep.depth_mib,
                shallow.depth_mib,
                ms(deep.replmend) / ms(shallow.replmend),
                ms(deep.binlog_full_scan) / ms(shallow.binlog_full_scan)
            );
        }
    }
}
