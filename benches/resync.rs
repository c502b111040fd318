//! Benchmark (not a test): find and fix drift between a source and its replica, replmend
//! against percona-toolkit (pt-table-checksum + pt-table-sync --execute), on the same data in
//! the same run. 1,000,000 rows (sysbench-like: INT key, INT, CHAR(120), CHAR(60)), 1,000
//! drifted rows spread over the table (500 changed, 250 missing, 250 extra on the replica).
//! Prints times, peak RSS and ratios; asserts nothing about them.
//!
//!     cargo bench --bench resync                         # 1,000,000 rows, both flavors
//!     REPLMEND_BENCH_ROWS=1000000,10000000 REPLMEND_BENCH_FLAVORS=mariadb cargo bench --bench resync

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use replmend_sandbox::{Flavor, Node, Sandbox, Topology};

/// Wall time and peak RSS (KiB) of a child, from wait4's rusage.
fn measure(cmd: &mut Command) -> (Duration, u64, Option<i32>) {
    let t = Instant::now();
    let child = cmd.spawn().expect("spawn");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: plain wait4 on our own child; rusage is zero-initialised plain data.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let elapsed = t.elapsed();
    std::mem::forget(child);
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    (elapsed, usage.ru_maxrss as u64, code)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn fill(n1: &Node, table: &str, rows: u64) {
    n1.exec(&format!(
        "CREATE TABLE {table} (id INT PRIMARY KEY, k INT NOT NULL, c CHAR(120) NOT NULL, \
         pad CHAR(60) NOT NULL, KEY (k))"
    ))
    .unwrap();
    common::insert_in_slices(n1, rows, 250_000, |from, to| {
        format!(
            "INSERT INTO {table} WITH RECURSIVE s(n) AS (SELECT {from} UNION ALL SELECT n + 1 FROM s WHERE n < {to}) \
             SELECT n, n * 7 % 100000, LEFT(SHA2(n, 256), 32), LEFT(SHA2(n * 3, 256), 32) FROM s"
        )
    });
}

/// 1,000 drifted rows per 1,000,000, spread out: changed, deleted and added on the replica
/// only (binary log off).
fn drift(n2: &Node, table: &str, rows: u64) {
    let every = (rows / 500).max(2);
    n2.exec(&format!(
        "SET SESSION sql_log_bin = 0; \
         UPDATE {table} SET c = REVERSE(c) WHERE id % {every} = 0; \
         DELETE FROM {table} WHERE id % {} = 1; \
         INSERT INTO {table} SELECT id + {rows} + 1000000, k, c, pad FROM {table} WHERE id % {} = 2",
        every * 2,
        every * 2
    ))
    .unwrap();
}

fn exe() -> &'static str {
    env!("CARGO_BIN_EXE_replmend")
}

fn replmend(args: &[&str]) -> (Duration, u64, Option<i32>) {
    measure(
        Command::new(exe())
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
}

struct Pt {
    checksum: Duration,
    sync: Duration,
}

/// pt-table-checksum (replicas found through a DSN table) then pt-table-sync --execute of
/// what it found; None when the tools cannot run against this server.
fn percona(n1: &Node, n2: &Node, db: &str, table: &str) -> Option<Pt> {
    n1.exec(&format!(
        "CREATE DATABASE IF NOT EXISTS percona; \
         CREATE TABLE IF NOT EXISTS percona.dsns (id INT AUTO_INCREMENT PRIMARY KEY, parent_id INT, dsn VARCHAR(255) NOT NULL); \
         DELETE FROM percona.dsns; INSERT INTO percona.dsns (dsn) VALUES ('h=127.0.0.1,P={},u=root')",
        n2.port
    ))
    .ok()?;
    n2.wait_caught_up(Duration::from_secs(60)).ok()?;
    let src = format!("h=127.0.0.1,P={},u=root", n1.port);
    let (checksum, _, code) = measure(
        Command::new("pt-table-checksum")
            .arg(&src)
            .args(["--databases", db, "--tables", table])
            .args([
                "--replicate",
                "percona.checksums",
                "--no-check-binlog-format",
            ])
            .arg(format!("--recursion-method=dsn={src},D=percona,t=dsns"))
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    // Exit codes of pt-table-checksum are flags; 16 is "checksum differences".
    if !matches!(code, Some(0) | Some(16)) {
        eprintln!("[bench] pt-table-checksum exited {code:?}: no pt figures for this server");
        return None;
    }
    let (sync, _, code) = measure(
        Command::new("pt-table-sync")
            .args(["--execute", "--replicate", "percona.checksums"])
            .arg("--sync-to-master")
            .arg(format!("h=127.0.0.1,P={},u=root", n2.port))
            .args(["--databases", db, "--tables", table])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    if !matches!(code, Some(0) | Some(2)) {
        eprintln!("[bench] pt-table-sync exited {code:?}: no pt figures for this server");
        return None;
    }
    Some(Pt { checksum, sync })
}

struct Case {
    flavor: Flavor,
    rows: u64,
    verify_identical: Duration,
    verify_rss: u64,
    resync: Duration,
    resync_rss: u64,
    pt: Option<Pt>,
}

fn run_case(flavor: Flavor, rows: u64) -> Case {
    let sb = Sandbox::start(flavor, Topology::SourceReplica).expect("sandbox");
    let (n1, n2) = (sb.node("n1"), sb.node("n2"));
    n1.exec("CREATE DATABASE bench").unwrap();
    eprintln!("[bench] {flavor}: {rows} rows");
    fill(n1, "bench.t", rows);
    n2.wait_caught_up(Duration::from_secs(1800)).unwrap();
    let url = n2.url();
    let base = ["--replica", url.as_str(), "--tables", "bench.t"];
    let (verify_identical, verify_rss, code) = replmend(&[&["verify"][..], &base[..]].concat());
    assert_eq!(code, Some(0), "verify of identical tables");
    drift(n2, "bench.t", rows);
    let journal = std::env::temp_dir().join(format!(
        "replmend-bench-resync-{}.jsonl",
        std::process::id()
    ));
    let journal = journal.display().to_string();
    let (resync, resync_rss, code) = replmend(
        &[
            &["resync"][..],
            &base[..],
            &["--yes", "--journal", journal.as_str()][..],
        ]
        .concat(),
    );
    assert_eq!(code, Some(0), "resync");
    let _ = std::fs::remove_file(&journal);
    let (_, _, code) = replmend(&[&["verify"][..], &base[..]].concat());
    assert_eq!(code, Some(0), "verify after resync");
    drift(n2, "bench.t", rows);
    // Above 2,000,000 rows only replmend's scaling is measured (pt-table-sync takes minutes).
    let pt = match rows <= 2_000_000 {
        true => percona(n1, n2, "bench", "t"),
        false => None,
    };
    if pt.is_some() {
        let (_, _, code) = replmend(&[&["verify"][..], &base[..]].concat());
        eprintln!("[bench] verify after pt-table-sync: exit {code:?}");
    }
    Case {
        flavor,
        rows,
        verify_identical,
        verify_rss,
        resync,
        resync_rss,
        pt,
    }
}

fn main() {
    let rows: Vec<u64> = std::env::var("REPLMEND_BENCH_ROWS")
        .unwrap_or_else(|_| "1000000".into())
        .split(',')
        .map(|r| r.trim().parse().expect("REPLMEND_BENCH_ROWS: numbers"))
        .collect();
    let flavors: Vec<Flavor> = std::env::var("REPLMEND_BENCH_FLAVORS")
        .unwrap_or_else(|_| "mariadb,mysql".into())
        .split(',')
        .map(|f| {
            f.trim()
                .parse()
                .expect("REPLMEND_BENCH_FLAVORS: mariadb, mysql")
        })
        .collect();
    let mut cases = Vec::new();
    for flavor in flavors {
        for &r in &rows {
            cases.push(run_case(flavor, r));
        }
    }
    println!(
        "\n{:<8} {:>9} {:>12} {:>10} {:>9} {:>12} {:>9} {:>13} {:>13} {:>10} {:>10}",
        "flavor",
        "rows",
        "verify ms",
        "rows/s",
        "RSS MiB",
        "resync ms",
        "RSS MiB",
        "pt-checksum",
        "pt-sync",
        "verify/pt",
        "resync/pt"
    );
    for c in &cases {
        let (ck, sy, r1, r2) = match &c.pt {
            Some(p) => (
                format!("{:.0}ms", ms(p.checksum)),
                format!("{:.0}ms", ms(p.sync)),
                format!("{:.2}x", ms(c.verify_identical) / ms(p.checksum)),
                format!("{:.2}x", ms(c.resync) / ms(p.checksum + p.sync)),
            ),
            None => ("n/a".into(), "n/a".into(), "n/a".into(), "n/a".into()),
        };
        println!(
            "{:<8} {:>9} {:>12.0} {:>10.0} {:>9} {:>12.0} {:>9} {:>13} {:>13} {:>10} {:>10}",
            c.flavor.to_string(),
            c.rows,
            ms(c.verify_identical),
            c.rows as f64 / c.verify_identical.as_secs_f64(),
            c.verify_rss / 1024,
            ms(c.resync),
            c.resync_rss / 1024,
            ck,
            sy,
            r1,
            r2
        );
    }
}
