//! Benchmark (not a test): fleet verify's cost on the source (issue 23). One source with 4
//! replicas (a fan-out sandbox) holding one narrow table of REPLMEND_BENCH_ROWS rows (default
//! 1,000,000); `replmend verify` of the source against 1, 2 and 4 of its replicas in one pass
//! (`--replica` once, twice, four times), identical tables. Prints, per number of replicas,
//! the wall time, the source's CPU seconds per million rows (its mysqld's utime + stime from
//! /proc, before and after), and the replicas' CPU seconds per replica per million rows.
//! Each chunk is hashed once on the source whatever the number of replicas, so the source's
//! figure should stay flat while the replicas' work grows with their number. Asserts nothing.
//!
//! ```text
//! cargo bench --bench verify_fleet
//! REPLMEND_BENCH_ROWS=200000 REPLMEND_BENCH_FLAVORS=mariadb cargo bench --bench verify_fleet
//! ```

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{cpu_seconds, env_num, flavors};
use replmend_sandbox::{Flavor, Node, Sandbox, Topology};

/// The narrow shape of issue 21 (benches/verify_shapes.rs).
const CREATE: &str = "CREATE TABLE bench.narrow (id INT PRIMARY KEY, a INT NOT NULL, \
    b VARCHAR(32) NOT NULL, c DATETIME NOT NULL, d DECIMAL(10,2))";
const ROW: &str = "n, n * 7 % 100000, LEFT(SHA2(n, 256), 8 + n % 24), \
    '2020-01-01' + INTERVAL n SECOND, IF(n % 10 = 0, NULL, n % 100000 / 100)";

const REPLICAS: [usize; 3] = [1, 2, 4];

struct Measured {
    replicas: usize,
    wall: Duration,
    source_cpu: f64,
    replica_cpu: f64,
    code: Option<i32>,
}

fn fill(n1: &Node, rows: u64) {
    n1.exec(&format!("CREATE DATABASE bench; {CREATE}"))
        .unwrap();
    common::insert_in_slices(n1, rows, 100_000, |from, to| {
        format!(
            "INSERT INTO bench.narrow WITH RECURSIVE s(n) AS (SELECT {from} UNION ALL \
             SELECT n + 1 FROM s WHERE n < {to}) SELECT {ROW} FROM s"
        )
    });
}

/// verify of the source against the first `n` replicas.
fn verify(source: &Node, replicas: &[&Node]) -> Measured {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_replmend"));
    cmd.args([
        "verify",
        "--source",
        &source.url(),
        "--tables",
        "bench.narrow",
    ]);
    for r in replicas {
        cmd.args(["--replica", &r.url()]);
    }
    let replica_cpu = || replicas.iter().map(|r| cpu_seconds(r.pid)).sum::<f64>();
    let (s0, r0) = (cpu_seconds(source.pid), replica_cpu());
    let t = Instant::now();
    let status = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run replmend");
    let wall = t.elapsed();
    Measured {
        replicas: replicas.len(),
        wall,
        source_cpu: cpu_seconds(source.pid) - s0,
        replica_cpu: (replica_cpu() - r0) / replicas.len() as f64,
        code: status.code(),
    }
}

fn print(flavor: Flavor, rows: u64, runs: &[Measured]) {
    let m = rows as f64 / 1e6;
    println!("\n{flavor}, {rows} rows, identical: CPU seconds per 1M rows");
    println!(
        "{:>8} {:>8} {:>10} {:>12} {:>14}",
        "replicas", "wall s", "rows/s", "source cpu", "cpu / replica"
    );
    for r in runs {
        println!(
            "{:>8} {:>8.2} {:>10.0} {:>12.2} {:>14.2}{}",
            r.replicas,
            r.wall.as_secs_f64(),
            rows as f64 / r.wall.as_secs_f64(),
            r.source_cpu / m,
            r.replica_cpu / m,
            match r.code {
                Some(0) => String::new(),
                c => format!("  (verify exited {c:?})"),
            }
        );
    }
}

fn main() {
    let rows = env_num("REPLMEND_BENCH_ROWS", 1_000_000);
    for flavor in flavors() {
        let sb = Sandbox::start(flavor, Topology::FanOut(4)).expect("sandbox");
        let n1 = sb.node("n1");
        let replicas: Vec<&Node> = ["n2", "n3", "n4", "n5"].map(|n| sb.node(n)).to_vec();
        eprintln!("[bench] {flavor}: filling {rows} rows");
        fill(n1, rows);
        for r in &replicas {
            r.wait_caught_up(Duration::from_secs(3600)).unwrap();
        }
        // One verify first: every node's pages read once, so the runs compare alike.
        verify(n1, &replicas);
        let runs: Vec<Measured> = REPLICAS
            .iter()
            .map(|n| {
                eprintln!("[bench] {flavor}: verify against {n} replica(s)");
                verify(n1, &replicas[..*n])
            })
            .collect();
        print(flavor, rows, &runs);
        sb.stop();
    }
}
