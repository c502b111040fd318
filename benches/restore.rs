//! Benchmark (not a test): `restore` of a resync's journal against the resync that wrote it,
//! in the same run, on two table shapes: narrow (INT key, INT, VARCHAR(32)) and sysbench-like
//! (INT key, INT, CHAR(120), CHAR(60)). 37,500 drifted rows in a 100,000-row table (12,500
//! changed, 12,500 missing, 12,500 extra on the replica). Prints times and the ratio restore /
//! resync (the goal: within 1.5x); asserts only that each command did its job.
//!
//!     cargo bench --bench restore
//!     REPLMEND_BENCH_FLAVORS=mariadb REPLMEND_BENCH_ROWS=100000 cargo bench --bench restore

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use replmend_sandbox::{Flavor, Node, Sandbox, Topology};

const SHAPES: [(&str, &str, &str); 2] = [
    (
        "narrow",
        "(id INT PRIMARY KEY, a INT NOT NULL, b VARCHAR(32) NOT NULL)",
        "n, n * 7 % 100000, LEFT(SHA2(n, 256), 32)",
    ),
    (
        "sysbench",
        "(id INT PRIMARY KEY, k INT NOT NULL, c CHAR(120) NOT NULL, pad CHAR(60) NOT NULL)",
        "n, n * 7 % 100000, LEFT(SHA2(n, 256), 120), LEFT(SHA2(n * 3, 256), 60)",
    ),
];

fn fill(n1: &Node, table: &str, shape: &(&str, &str, &str), rows: u64) {
    n1.exec(&format!("CREATE TABLE {table} {}", shape.1))
        .unwrap();
    let rec = format!(
        "INSERT INTO {table} WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {rows}) \
         SELECT {} FROM s",
        shape.2
    );
    common::exec_recursive(n1, rows + 1, &rec);
}

/// Every 8th row changed, every 8th (offset 1) deleted, as many added above the keys: 3/8 of
/// the table drifted on the replica (binary log off).
fn drift(n2: &Node, table: &str, rows: u64) {
    n2.exec(&format!(
        "SET SESSION sql_log_bin = 0; \
         UPDATE {table} SET {col} = {col} + 1 WHERE id % 8 = 0; \
         DELETE FROM {table} WHERE id % 8 = 1; \
         INSERT INTO {table} SELECT id + {rows}, {rest} FROM {table} WHERE id % 8 = 2",
        col = if table.ends_with("narrow") { "a" } else { "k" },
        rest = if table.ends_with("narrow") {
            "a, b"
        } else {
            "k, c, pad"
        },
    ))
    .unwrap();
}

fn run(args: &[&str]) -> (Duration, Option<i32>) {
    let t = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_replmend"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("spawn replmend");
    (t.elapsed(), status.code())
}

fn checksum(n: &Node, table: &str) -> String {
    let (db, t) = table.split_once('.').unwrap();
    n.checksum_table(db, t).unwrap().unwrap()
}

fn case(flavor: Flavor, rows: u64) {
    let sb = Sandbox::start(flavor, Topology::SourceReplica).expect("sandbox");
    let (n1, n2) = (sb.node("n1"), sb.node("n2"));
    n1.exec("CREATE DATABASE bench").unwrap();
    for shape in &SHAPES {
        let table = format!("bench.{}", shape.0);
        fill(n1, &table, shape, rows);
        n2.wait_caught_up(Duration::from_secs(600)).unwrap();
        drift(n2, &table, rows);
        let drifted = checksum(n2, &table);
        let url = n2.url();
        let dir = std::env::temp_dir();
        let journal = dir.join(format!(
            "replmend-bench-restore-{}.jsonl",
            std::process::id()
        ));
        let undo = dir.join(format!(
            "replmend-bench-restore-undo-{}.jsonl",
            std::process::id()
        ));
        let (j, u) = (journal.display().to_string(), undo.display().to_string());
        let base = ["--replica", url.as_str()];
        let (resync, code) = run(&[
            &["resync"][..],
            &base,
            &["--tables", &table, "--yes", "--journal", &j],
        ]
        .concat());
        assert_eq!(code, Some(0), "resync");
        assert_eq!(
            checksum(n2, &table),
            checksum(n1, &table),
            "resync made them equal"
        );
        let (dry, code) = run(&[&["restore", j.as_str()][..], &base, &["--dry-run"]].concat());
        assert_eq!(code, Some(0), "restore --dry-run");
        let (restore, code) =
            run(&[&["restore", j.as_str()][..], &base, &["--journal-to", &u]].concat());
        assert_eq!(code, Some(0), "restore");
        assert_eq!(checksum(n2, &table), drifted, "restore gave the drift back");
        println!(
            "{flavor:8} {:9} {rows} rows, {} drifted: resync {:7.0} ms, restore {:7.0} ms ({:.2}x), restore --dry-run {:7.0} ms",
            shape.0,
            rows * 3 / 8,
            resync.as_secs_f64() * 1e3,
            restore.as_secs_f64() * 1e3,
            restore.as_secs_f64() / resync.as_secs_f64(),
            dry.as_secs_f64() * 1e3,
        );
        let _ = (std::fs::remove_file(&journal), std::fs::remove_file(&undo));
    }
    sb.stop();
}

fn main() {
    let rows: u64 = std::env::var("REPLMEND_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let flavors = std::env::var("REPLMEND_BENCH_FLAVORS").unwrap_or("mariadb,mysql".into());
    for f in flavors.split(',') {
        let flavor = match f.trim() {
            "mysql" => Flavor::MySql,
            _ => Flavor::MariaDb,
        };
        case(flavor, rows);
    }
}
