//! Benchmark (not a test): `replmend verify` of whole schemas and big tables (issue 21, goal
//! 5). Two shapes of work on one source/replica pair per flavor:
//! - many small tables (default 1,000 tables of 1,000 narrow rows), verified with
//!   `--threads 1` and `--threads 4`, beside pt-table-checksum of the same schema (MariaDB:
//!   percona-toolkit 3.2.1 cannot run against MySQL 9);
//! - one table grown to 1M, 3M and 10M narrow rows, verified at each size: seconds per
//!   million rows should stay level (time linear in rows) and peak RSS flat.
//!
//! Prints wall time, rows/s, replmend's peak RSS, both servers' CPU seconds and the ratio to
//! pt-table-checksum measured in the same run. Asserts nothing about them.
//!
//!     cargo bench --bench verify_scale
//!     REPLMEND_BENCH_TABLES=200 REPLMEND_BENCH_SIZES=1000000 REPLMEND_BENCH_FLAVORS=mariadb \
//!         cargo bench --bench verify_scale

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use replmend_sandbox::{Flavor, Node, Sandbox, Topology};

/// The narrow row shape of verify_shapes (`n`: a recursive CTE's column).
const CREATE: &str = "(id INT PRIMARY KEY, a INT NOT NULL, b VARCHAR(32) NOT NULL, \
                      c DATETIME NOT NULL, d DECIMAL(10,2))";
const ROW: &str = "n, n * 7 % 100000, LEFT(SHA2(n, 256), 8 + n % 24), \
                   '2020-01-01' + INTERVAL n SECOND, IF(n % 10 = 0, NULL, n % 100000 / 100)";

struct Run {
    wall: Duration,
    rss_kib: u64,
    cpu: f64,
    code: Option<i32>,
}

fn timed(nodes: [&Node; 2], cmd: &mut Command) -> Run {
    let before: f64 = nodes.iter().map(|n| common::cpu_seconds(n.pid)).sum();
    let (wall, rss_kib, code) = common::measure(cmd.stdout(Stdio::null()).stderr(Stdio::null()));
    let cpu = nodes
        .iter()
        .map(|n| common::cpu_seconds(n.pid))
        .sum::<f64>()
        - before;
    Run {
        wall,
        rss_kib,
        cpu,
        code,
    }
}

fn verify(nodes: [&Node; 2], what: &[&str]) -> Run {
    let url = nodes[1].url();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_replmend"));
    cmd.args(["verify", "--replica", &url]).args(what);
    let run = timed(nodes, &mut cmd);
    if run.code != Some(0) {
        eprintln!("[bench] verify {what:?} exited {:?}", run.code);
    }
    run
}

/// pt-table-checksum as a user runs it (replicas from a DSN table), or None when it failed.
fn pt(nodes: [&Node; 2], what: &[&str]) -> Option<Run> {
    let src = format!("h=127.0.0.1,P={},u=root", nodes[0].port);
    let mut cmd = Command::new("pt-table-checksum");
    cmd.arg(&src)
        .args(what)
        .args([
            "--replicate",
            "percona.checksums",
            "--no-check-binlog-format",
        ])
        .arg(format!("--recursion-method=dsn={src},D=percona,t=dsns"));
    let run = timed(nodes, &mut cmd);
    match run.code {
        Some(0) => Some(run),
        code => {
            eprintln!("[bench] pt-table-checksum {what:?} exited {code:?}: no pt figures");
            None
        }
    }
}

fn pt_setup(flavor: Flavor, source: &Node, replica: &Node) -> bool {
    flavor == Flavor::MariaDb
        && source
            .exec(&format!(
                "CREATE DATABASE percona; \
                 CREATE TABLE percona.dsns (id INT AUTO_INCREMENT PRIMARY KEY, parent_id INT, \
                   dsn VARCHAR(255) NOT NULL); \
                 INSERT INTO percona.dsns (dsn) VALUES ('h=127.0.0.1,P={},u=root')",
                replica.port
            ))
            .is_ok()
}

/// `tables` tables `many.t0001…` of `rows` rows each, created 50 to a round trip.
fn fill_many(source: &Node, tables: u64, rows: u64) {
    source.exec("CREATE DATABASE many").unwrap();
    let names: Vec<String> = (1..=tables).map(|i| format!("many.t{i:04}")).collect();
    for group in names.chunks(50) {
        let sql: Vec<String> = group
            .iter()
            .map(|t| {
                format!(
                    "CREATE TABLE {t} {CREATE}; INSERT INTO {t} WITH RECURSIVE s(n) AS \
                     (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {rows}) SELECT {ROW} FROM s"
                )
            })
            .collect();
        common::exec_recursive(source, rows + 1, &sql.join("; "));
    }
}

fn line(what: &str, rows: u64, r: &Run, pt: Option<&Run>) {
    let m = rows as f64 / 1e6;
    let pt_cell = |f: &dyn Fn(&Run) -> String| pt.map(f).unwrap_or_else(|| "n/a".into());
    println!(
        "{what:<26} {rows:>10} {:>9.2} {:>10.0} {:>8.2} {:>8} {:>9.2} {:>8} {:>8} {:>7}",
        r.wall.as_secs_f64(),
        rows as f64 / r.wall.as_secs_f64(),
        r.wall.as_secs_f64() / m,
        r.rss_kib / 1024,
        r.cpu / m,
        pt_cell(&|p| format!("{:.2}", p.wall.as_secs_f64())),
        pt_cell(&|p| format!("{:.2}", p.cpu / m)),
        pt_cell(&|p| format!("{:.2}x", r.wall.as_secs_f64() / p.wall.as_secs_f64())),
    );
}

fn header(flavor: Flavor) {
    println!(
        "\n{flavor}: wall s; s per 1M rows; replmend's peak RSS; both servers' CPU s per 1M rows"
    );
    println!(
        "{:<26} {:>10} {:>9} {:>10} {:>8} {:>8} {:>9} {:>8} {:>8} {:>7}",
        "run", "rows", "verify s", "rows/s", "s/1M", "RSS MiB", "cpu/1M", "pt s", "pt cpu", "ratio"
    );
}

fn many_tables(sb: &Sandbox, with_pt: bool) {
    let (n1, n2) = (sb.node("n1"), sb.node("n2"));
    let (tables, rows) = (
        common::env_num("REPLMEND_BENCH_TABLES", 1000),
        common::env_num("REPLMEND_BENCH_TABLE_ROWS", 1000),
    );
    eprintln!("[bench] {tables} tables of {rows} rows");
    fill_many(n1, tables, rows);
    n2.wait_caught_up(Duration::from_secs(3600)).unwrap();
    let nodes = [n1, n2];
    let pt_run = with_pt
        .then(|| pt(nodes, &["--databases", "many"]))
        .flatten();
    for threads in ["1", "4"] {
        let r = verify(nodes, &["--databases", "many", "--threads", threads]);
        let what = format!("{tables} tables, --threads {threads}");
        line(&what, tables * rows, &r, pt_run.as_ref());
    }
    n1.exec("DROP DATABASE many").unwrap();
    n2.wait_caught_up(Duration::from_secs(600)).unwrap();
}

fn big_table(sb: &Sandbox, with_pt: bool) {
    let (n1, n2) = (sb.node("n1"), sb.node("n2"));
    let sizes: Vec<u64> = std::env::var("REPLMEND_BENCH_SIZES")
        .unwrap_or_else(|_| "1000000,3000000,10000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    n1.exec(&format!("CREATE DATABASE big; CREATE TABLE big.t {CREATE}"))
        .unwrap();
    let mut filled = 0;
    for size in sizes {
        eprintln!("[bench] big.t: filling to {size} rows");
        common::insert_in_slices(n1, size - filled, 100_000, |from, to| {
            format!(
                "INSERT INTO big.t WITH RECURSIVE s(n) AS (SELECT {} UNION ALL \
                 SELECT n + 1 FROM s WHERE n < {}) SELECT {ROW} FROM s",
                from + filled,
                to + filled
            )
        });
        filled = size;
        n2.wait_caught_up(Duration::from_secs(3600)).unwrap();
        let nodes = [n1, n2];
        let r = verify(nodes, &["--tables", "big.t"]);
        let pt_run = with_pt
            .then(|| pt(nodes, &["--databases", "big", "--tables", "t"]))
            .flatten();
        line("one table", size, &r, pt_run.as_ref());
    }
    n1.exec("DROP DATABASE big").unwrap();
}

fn main() {
    for flavor in common::flavors() {
        let sb = Sandbox::start(flavor, Topology::SourceReplica).expect("sandbox");
        let with_pt = pt_setup(flavor, sb.node("n1"), sb.node("n2"));
        header(flavor);
        if common::env_num("REPLMEND_BENCH_TABLES", 1000) > 0 {
            many_tables(&sb, with_pt);
        }
        big_table(&sb, with_pt);
    }
}
