//! Benchmark (not a test): `replmend verify` against pt-table-checksum on three row shapes,
//! in one run, on the same source/replica pair, identical and with 1,000 drifted rows (changed
//! on the replica only). Prints wall times, the ratio, replmend's peak RSS and the servers'
//! CPU seconds per million rows (both mysqld processes, utime + stime from /proc), which is
//! the figure the row digest drives. Asserts nothing about them.
//!
//! Shapes (issue 21): narrow `(id INT PK, a INT, b VARCHAR(32), c DATETIME, d DECIMAL(10,2))`,
//! sysbench-like `(id INT PK, k INT, c CHAR(120), pad CHAR(60))`, wide `(id INT PK,
//! v VARCHAR(255), t TEXT of about 1 KB, j JSON)`.
//!
//!     cargo bench --bench verify_shapes                           # 3,000,000 rows, MariaDB
//!     REPLMEND_BENCH_ROWS=1000000 REPLMEND_BENCH_SHAPES=narrow cargo bench --bench verify_shapes
//!     REPLMEND_BENCH_FLAVORS=mysql cargo bench --bench verify_shapes   # verify only (no pt)

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use replmend_sandbox::{Flavor, Node, Sandbox, Topology};

/// Rows of the drift made on the replica.
const DRIFTED: u64 = 1000;

/// Rows made with SHA2 (MySQL 9 has no MD5).
struct Shape {
    name: &'static str,
    create: &'static str,
    /// The SELECT list of row `n` (a recursive CTE's column).
    row: &'static str,
    /// The change made to a drifted row.
    drift: &'static str,
}

const SHAPES: [Shape; 3] = [
    Shape {
        name: "narrow",
        create: "(id INT PRIMARY KEY, a INT NOT NULL, b VARCHAR(32) NOT NULL, \
                 c DATETIME NOT NULL, d DECIMAL(10,2))",
        row: "n, n * 7 % 100000, LEFT(SHA2(n, 256), 8 + n % 24), '2020-01-01' + INTERVAL n SECOND, \
              IF(n % 10 = 0, NULL, n % 100000 / 100)",
        drift: "a = a + 1",
    },
    Shape {
        name: "sysbench",
        create: "(id INT PRIMARY KEY, k INT NOT NULL, c CHAR(120) NOT NULL, \
                 pad CHAR(60) NOT NULL, KEY (k))",
        row: "n, n * 7 % 100000, CONCAT(LEFT(SHA2(n, 256), 32), LEFT(SHA2(n * 3, 256), 32), LEFT(SHA2(n * 7, 256), 32), LEFT(SHA2(n * 11, 256), 23)), \
              CONCAT(LEFT(SHA2(n * 13, 256), 32), LEFT(SHA2(n * 17, 256), 27))",
        drift: "c = REVERSE(c)",
    },
    Shape {
        name: "wide",
        create: "(id INT PRIMARY KEY, v VARCHAR(255), t TEXT, j JSON)",
        row: "n, REPEAT(LEFT(SHA2(n, 256), 32), 1 + n % 7), REPEAT(LEFT(SHA2(n * 3, 256), 32), 32), \
              JSON_OBJECT('id', n, 'name', LEFT(SHA2(n, 256), 32), 'tags', JSON_ARRAY(n % 10, n % 7), 'score', n / 7)",
        drift: "t = REVERSE(t)",
    },
];

/// One tool's run: wall time, peak RSS (KiB), both servers' CPU seconds, exit code.
struct Run {
    wall: Duration,
    rss: u64,
    cpu: f64,
    code: Option<i32>,
}

fn timed(nodes: [&Node; 2], cmd: &mut Command) -> Run {
    let before: f64 = nodes.iter().map(|n| common::cpu_seconds(n.pid)).sum();
    // REPLMEND_VERIFY_TIMING=1 shows verify's phases (pass, narrowed, settled) on stderr.
    let stderr = match std::env::var_os("REPLMEND_VERIFY_TIMING") {
        Some(_) => Stdio::inherit(),
        None => Stdio::null(),
    };
    let (wall, rss, code) = common::measure(cmd.stdout(Stdio::null()).stderr(stderr));
    let cpu = nodes
        .iter()
        .map(|n| common::cpu_seconds(n.pid))
        .sum::<f64>()
        - before;
    Run {
        wall,
        rss,
        cpu,
        code,
    }
}

fn fill(n1: &Node, shape: &Shape, rows: u64) {
    n1.exec(&format!(
        "CREATE TABLE bench.{} {}",
        shape.name, shape.create
    ))
    .unwrap();
    common::insert_in_slices(n1, rows, 100_000, |from, to| {
        format!(
            "INSERT INTO bench.{} WITH RECURSIVE s(n) AS (SELECT {from} UNION ALL \
             SELECT n + 1 FROM s WHERE n < {to}) SELECT {} FROM s",
            shape.name, shape.row
        )
    });
}

/// DRIFTED rows changed on the replica only (binary log off), spread over the table.
fn drift(n2: &Node, shape: &Shape, rows: u64) {
    let every = (rows / DRIFTED).max(1);
    n2.exec(&format!(
        "SET SESSION sql_log_bin = 0; UPDATE bench.{} SET {} WHERE id % {every} = 0",
        shape.name, shape.drift
    ))
    .unwrap();
}

fn verify(nodes: [&Node; 2], table: &str) -> Run {
    let url = nodes[1].url();
    timed(
        nodes,
        Command::new(env!("CARGO_BIN_EXE_replmend")).args([
            "verify",
            "--replica",
            &url,
            "--tables",
            table,
        ]),
    )
}

/// pt-table-checksum of one table, replicas found through a DSN table, as a user runs it.
fn pt_checksum(nodes: [&Node; 2], db: &str, table: &str) -> Option<Run> {
    let src = format!("h=127.0.0.1,P={},u=root", nodes[0].port);
    let run = timed(
        nodes,
        Command::new("pt-table-checksum")
            .arg(&src)
            .args(["--databases", db, "--tables", table])
            .args([
                "--replicate",
                "percona.checksums",
                "--no-check-binlog-format",
            ])
            .arg(format!("--recursion-method=dsn={src},D=percona,t=dsns")),
    );
    // Exit codes of pt-table-checksum are flags; 16 is "checksum differences".
    match run.code {
        Some(0) | Some(16) => Some(run),
        code => {
            eprintln!("[bench] pt-table-checksum exited {code:?}: no pt figures");
            None
        }
    }
}

struct Case {
    shape: &'static str,
    drifted: bool,
    verify: Run,
    pt: Option<Run>,
}

fn run_shape(sb: &Sandbox, shape: &Shape, rows: u64, pt: bool) -> Vec<Case> {
    let (n1, n2) = (sb.node("n1"), sb.node("n2"));
    eprintln!("[bench] {}: filling {rows} rows", shape.name);
    fill(n1, shape, rows);
    n2.wait_caught_up(Duration::from_secs(3600)).unwrap();
    let nodes = [n1, n2];
    let table = format!("bench.{}", shape.name);
    let mut out = Vec::new();
    for drifted in [false, true] {
        if drifted {
            drift(n2, shape, rows);
        }
        eprintln!("[bench] {} drifted={drifted}: verify", shape.name);
        // Each tool meets servers done flushing what was filled, changed or written before.
        nodes.iter().for_each(|n| common::flushed(n));
        let verify = verify(nodes, &table);
        let expected = if drifted { 11 } else { 0 };
        if verify.code != Some(expected) {
            eprintln!("[bench] verify exited {:?}", verify.code);
        }
        let pt = pt
            .then(|| {
                nodes.iter().for_each(|n| common::flushed(n));
                pt_checksum(nodes, "bench", shape.name)
            })
            .flatten();
        out.push(Case {
            shape: shape.name,
            drifted,
            verify,
            pt,
        });
    }
    // The table's pages out of the way of the next shape's (a 24 MiB buffer pool anyway).
    n1.exec(&format!("DROP TABLE {table}")).unwrap();
    n2.wait_caught_up(Duration::from_secs(600)).unwrap();
    out
}

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .map(|s| s.trim().to_string())
        .collect()
}

fn print(flavor: Flavor, rows: u64, cases: &[Case]) {
    let m = rows as f64 / 1e6;
    println!(
        "\n{flavor}, {rows} rows: wall s, replmend's peak RSS, both servers' CPU s per 1M rows"
    );
    println!(
        "{:<9} {:<9} {:>9} {:>9} {:>9} {:>8} {:>11} {:>11} {:>8}",
        "shape", "rows", "verify s", "rows/s", "RSS MiB", "pt s", "verify cpu", "pt cpu", "ratio"
    );
    for c in cases {
        let pt = |f: &dyn Fn(&Run) -> String| c.pt.as_ref().map(f).unwrap_or("n/a".into());
        println!(
            "{:<9} {:<9} {:>9.2} {:>9.0} {:>9} {:>8} {:>11.2} {:>11} {:>8}",
            c.shape,
            if c.drifted { "drifted" } else { "identical" },
            c.verify.wall.as_secs_f64(),
            rows as f64 / c.verify.wall.as_secs_f64(),
            c.verify.rss / 1024,
            pt(&|p| format!("{:.2}", p.wall.as_secs_f64())),
            c.verify.cpu / m,
            pt(&|p| format!("{:.2}", p.cpu / m)),
            pt(&|p| format!("{:.2}x", c.verify.wall.as_secs_f64() / p.wall.as_secs_f64())),
        );
    }
}

fn main() {
    let rows: u64 = std::env::var("REPLMEND_BENCH_ROWS")
        .unwrap_or_else(|_| "3000000".into())
        .parse()
        .expect("REPLMEND_BENCH_ROWS: a number");
    let shapes = env_list("REPLMEND_BENCH_SHAPES", "narrow,sysbench,wide");
    for flavor in env_list("REPLMEND_BENCH_FLAVORS", "mariadb") {
        let flavor: Flavor = flavor
            .parse()
            .expect("REPLMEND_BENCH_FLAVORS: mariadb, mysql");
        let sb = Sandbox::start(flavor, Topology::SourceReplica).expect("sandbox");
        let (n1, n2) = (sb.node("n1"), sb.node("n2"));
        n1.exec("CREATE DATABASE bench").unwrap();
        // percona-toolkit 3.2.1 cannot run against MySQL 9 (SHOW SLAVE STATUS is gone).
        let pt = flavor == Flavor::MariaDb
            && n1
                .exec(&format!(
                    "CREATE DATABASE percona; \
                     CREATE TABLE percona.dsns (id INT AUTO_INCREMENT PRIMARY KEY, parent_id INT, \
                       dsn VARCHAR(255) NOT NULL); \
                     INSERT INTO percona.dsns (dsn) VALUES ('h=127.0.0.1,P={},u=root')",
                    n2.port
                ))
                .is_ok();
        let mut cases = Vec::new();
        for shape in SHAPES.iter().filter(|s| shapes.iter().any(|n| n == s.name)) {
            cases.extend(run_shape(&sb, shape, rows, pt));
        }
        print(flavor, rows, &cases);
    }
}
