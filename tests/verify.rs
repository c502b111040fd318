//! `replmend verify` on real servers of both flavors: identical tables, every kind of drift
//! (changed, missing, extra rows and values swapped between two rows) found exactly, on an
//! integer key, a composite key with hostile identifiers, GBK and latin1 keys, a table
//! without a key; no false positives while the source is being written to (also with the
//! replica lagging); table selection; a dual-master pair checked from both sides; chunks of
//! the size asked for even when information_schema's row count is stale; what the row digest
//! must see in one bucket (equal-length swaps, NULL against '', trailing bytes); `--max-lag`
//! waiting for a lagging replica. Drift is made on one node with `sql_log_bin = 0`, so it does
//! not replicate.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use serde_json::{Value, json};
use support::lag::*;
use support::*;

const CATCH_UP: Duration = Duration::from_secs(60);

fn table_names(report: &Value) -> Vec<String> {
    report["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .map(|t| {
            format!(
                "{}.{}",
                t["table"]["schema"].as_str().unwrap(),
                t["table"]["name"].as_str().unwrap()
            )
        })
        .collect()
}

fn assert_identical(t: &Value, rows: u64, what: &str) {
    assert_drift(t, vec![], vec![], vec![], what);
    assert_eq!(t["rows"], rows, "{what}: rows counted: {t}");
}

/// Ids of `shop.items` on the source: 1..=6000 but for every hundredth from 50 (gaps an
/// extra row can fall in).
fn item_ids() -> impl Iterator<Item = i64> {
    (1..=6000).filter(|i| i % 100 != 50)
}

fn item_row(i: i64) -> String {
    let note = match i % 7 {
        0 => "NULL".to_string(),
        _ => lit(&format!("note {i}")),
    };
    format!("({i}, 'pad-{i:08}', {}, {note}, {}.25)", i * 3, i % 1000)
}

#[test]
fn identical_tables_then_every_kind_of_drift_on_an_integer_key() {
    for flavor in FLAVORS {
        let sb = started(flavor, Topology::SourceReplica);
        let (n1, n2) = (sb.node("n1"), sb.node("n2"));
        n1.exec(
            "CREATE DATABASE shop; \
             CREATE TABLE shop.items (id INT PRIMARY KEY, pad CHAR(12) NOT NULL, qty INT NOT NULL, \
               note VARCHAR(40) NULL, price DECIMAL(10,2)); \
             CREATE TABLE shop.small (id BIGINT PRIMARY KEY, v VARCHAR(10)); \
             CREATE TABLE shop.empty (id INT PRIMARY KEY, v INT); \
             INSERT INTO shop.small VALUES (-5, 'a'), (0, NULL), (9000000000, 'c')",
        )
        .unwrap();
        insert(n1, "shop.items", item_ids().map(item_row));
        n2.wait_caught_up(CATCH_UP).unwrap();
        let source_rows = item_ids().count() as u64;

        // 1. Identical.
        let (run, r) = verify(n2, &["--chunk-size", "500"]);
        assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
        assert_eq!(r["dual_master"], false);
        assert_eq!(r["warnings"], json!([]), "{flavor}: {r}");
        assert_eq!(
            table_names(&r),
            ["shop.empty", "shop.items", "shop.small"],
            "{flavor}: the user's tables only, none of the system schemas"
        );
        let items = table(&r, "shop", "items");
        assert_identical(items, source_rows, &format!("{flavor} identical items"));
        assert_eq!(items["key"], json!(["id"]));
        assert!(
            items["chunks"].as_u64().unwrap() >= source_rows / 500,
            "{flavor}: --chunk-size 500 makes a chunk of about 500 rows: {items}"
        );
        assert_identical(table(&r, "shop", "small"), 3, &format!("{flavor} small"));
        assert_identical(table(&r, "shop", "empty"), 0, &format!("{flavor} empty"));
        let s = &r["summary"];
        assert_eq!(
            s,
            &json!({ "tables": 3, "identical": 3, "drifted": 0, "failed": 0,
                     "rows": source_rows + 3, "missing": 0, "extra": 0, "different": 0,
                     "filtered": 0, "only_on_one_node": 0,
                     "unsettled_tables": 0, "unsettled": 0 }),
            "{flavor}: {r}"
        );

        // 2. Every kind of drift, on the replica only.
        drift(
            n2,
            "UPDATE shop.items SET qty = qty + 1 WHERE id = 1234; \
             UPDATE shop.items SET note = NULL WHERE id = 4321; \
             DELETE FROM shop.items WHERE id = 2500; \
             INSERT INTO shop.items VALUES (3050, 'pad-00003050', 1, 'in a gap', 1.00), \
               (6500, 'pad-00006500', 2, 'above the largest key', 2.00), \
               (-7, 'pad-minus007', 3, 'below the smallest key', 3.00); \
             UPDATE shop.items SET pad = CASE id WHEN 10 THEN 'pad-00000011' ELSE 'pad-00000010' END \
               WHERE id IN (10, 11); \
             UPDATE shop.small SET v = 'b' WHERE id = 0",
        );
        let expect_missing = vec![id(2500)];
        let expect_extra = vec![id(-7), id(3050), id(6500)];
        let expect_different = vec![
            different(id(10), &["pad"]),
            different(id(11), &["pad"]),
            different(id(1234), &["qty"]),
            different(id(4321), &["note"]),
        ];
        // 500 rows a chunk: a bucket per key; 5000: the swapped rows share a bucket.
        for size in ["500", "5000"] {
            let what = format!("{flavor} --chunk-size {size}");
            let (run, r) = verify(n2, &["--chunk-size", size]);
            assert_eq!(
                run.code,
                exit::DRIFT,
                "{what}: {}{}",
                run.stdout,
                run.stderr
            );
            let items = table(&r, "shop", "items");
            assert_drift(
                items,
                expect_missing.clone(),
                expect_extra.clone(),
                expect_different.clone(),
                &what,
            );
            assert_eq!(items["rows"], source_rows, "{what}: {items}");
            assert_drift(
                table(&r, "shop", "small"),
                vec![],
                vec![],
                vec![different(id(0), &["v"])],
                &what,
            );
            assert_identical(table(&r, "shop", "empty"), 0, &what);
            let s = &r["summary"];
            assert_eq!(
                s,
                &json!({ "tables": 3, "identical": 1, "drifted": 2, "failed": 0,
                         "rows": source_rows + 3, "missing": 1, "extra": 3, "different": 5,
                         "filtered": 0, "only_on_one_node": 0,
                     "unsettled_tables": 0, "unsettled": 0 }),
                "{what}: {r}"
            );
        }

        // The text report names the rows too.
        let run = replmend(&["verify", "--replica", &n2.url(), "--chunk-size", "500"]);
        assert_eq!(run.code, exit::DRIFT, "{flavor}: {}", run.stderr);
        for line in [
            "missing on the replica: id=2500",
            "extra on the replica: id=-7; id=3050; id=6500",
            "id=10 (pad)",
            "id=4321 (note)",
            "1 identical, 2 drifted (1 missing, 3 extra, 5 different row(s))",
        ] {
            assert!(
                run.stdout.contains(line),
                "{flavor}: {line:?} in\n{}",
                run.stdout
            );
        }
        // Piped (no progress bar): a plain line per table on stderr as it finishes.
        let finished: Vec<&str> = run
            .stderr
            .lines()
            .filter(|l| l.starts_with("verify: ") && l.contains(" rows in "))
            .collect();
        assert_eq!(finished.len(), 3, "{flavor}: {}", run.stderr);
        assert!(
            finished
                .iter()
                .any(|l| l.contains("DRIFT: 1 missing, 3 extra")),
            "{flavor}: {}",
            run.stderr
        );
    }
}

#[test]
fn composite_key_with_hostile_identifiers_and_keys_in_gbk_and_latin1() {
    // A database, table and columns named with backticks, spaces, both quotes and a dot.
    let db = "we`ird db 'q\".x";
    let tbl = "or`ders 'of\" the.day";
    let (ck, cn, cv) = ("c`ode 'k\".1", "n` o.\"'", "va`l ue.");
    for flavor in FLAVORS {
        let sb = started(flavor, Topology::SourceReplica);
        let (n1, n2) = (sb.node("n1"), sb.node("n2"));
        let t = format!("{}.{}", ident(db), ident(tbl));
        n1.exec(&format!(
            "CREATE DATABASE {}; \
             CREATE TABLE {t} ({} VARCHAR(40) NOT NULL, {} INT NOT NULL, {} VARCHAR(30), \
               PRIMARY KEY ({}, {})); \
             CREATE DATABASE shop_gbk DEFAULT CHARACTER SET gbk; \
             CREATE TABLE shop_gbk.orders (order_no VARCHAR(20) PRIMARY KEY, customer VARCHAR(20), \
               note VARCHAR(40)) DEFAULT CHARSET = gbk; \
             CREATE DATABASE shop_latin1 DEFAULT CHARACTER SET latin1; \
             CREATE TABLE shop_latin1.clients (code VARCHAR(20) PRIMARY KEY, name VARCHAR(30)) \
               DEFAULT CHARSET = latin1",
            ident(db),
            ident(ck),
            ident(cn),
            ident(cv),
            ident(ck),
            ident(cn)
        ))
        .unwrap();
        // 300 codes × 10 numbers; values with quotes and a backslash.
        insert(
            n1,
            &t,
            (0..3000).map(|i| {
                format!(
                    "({}, {}, {})",
                    lit(&format!("o'k\\-{:04}", i / 10)),
                    i % 10,
                    lit(&format!("v\"{:06}", i))
                )
            }),
        );
        let customers = ["张三", "李四", "王五"];
        insert(
            n1,
            "shop_gbk.orders",
            (1..=2000).map(|i| {
                format!(
                    "({}, {}, {})",
                    lit(&format!("订单-{i:04}")),
                    lit(customers[i % 3]),
                    lit(&format!("备注 {i}"))
                )
            }),
        );
        insert(
            n1,
            "shop_latin1.clients",
            (1..=1000).map(|i| format!("({}, 'Chloé {i}')", lit(&format!("Société-€{i:04}")))),
        );
        n2.wait_caught_up(CATCH_UP).unwrap();
        let dbs = format!("{db},shop_gbk,shop_latin1");

        let (run, r) = verify(n2, &["--databases", &dbs, "--chunk-size", "500"]);
        assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
        let hostile = table(&r, db, tbl);
        assert_identical(hostile, 3000, &format!("{flavor} hostile"));
        assert_eq!(hostile["key"], json!([ck, cn]), "{flavor}: {hostile}");
        assert!(
            hostile["chunks"].as_u64().unwrap() >= 6,
            "{flavor}: {hostile}"
        );
        assert_identical(
            table(&r, "shop_gbk", "orders"),
            2000,
            &format!("{flavor} gbk"),
        );
        assert_identical(
            table(&r, "shop_latin1", "clients"),
            1000,
            &format!("{flavor} latin1"),
        );

        let code = |i: usize| format!("o'k\\-{i:04}");
        drift(
            n2,
            &format!(
                "UPDATE {t} SET {cv} = 'changed' WHERE {ck} = {} AND {cn} = 3; \
                 DELETE FROM {t} WHERE {ck} = {} AND {cn} = 0; \
                 INSERT INTO {t} VALUES ({}, 99, 'extra in the middle'), ('zz', 1, 'above'), \
                   ('a', 1, 'below'); \
                 UPDATE {t} SET {cv} = CASE {cn} WHEN 1 THEN 'v\"000072' ELSE 'v\"000071' END \
                   WHERE {ck} = {} AND {cn} IN (1, 2); \
                 UPDATE shop_gbk.orders SET customer = '赵六' WHERE order_no = '订单-0777'; \
                 DELETE FROM shop_gbk.orders WHERE order_no = '订单-1500'; \
                 INSERT INTO shop_gbk.orders VALUES ('订单-额外', '钱七', NULL); \
                 UPDATE shop_latin1.clients SET name = 'Zoé' WHERE code = 'Société-€0500'",
                lit(&code(5)),
                lit(&code(100)),
                lit(&code(100)),
                lit(&code(7)),
                cv = ident(cv),
                ck = ident(ck),
                cn = ident(cn),
            ),
        );
        let k = |c: &str, n: i32| key(&[(ck, c), (cn, &n.to_string())]);
        let (run, r) = verify(n2, &["--databases", &dbs, "--chunk-size", "500"]);
        assert_eq!(
            run.code,
            exit::DRIFT,
            "{flavor}: {}{}",
            run.stdout,
            run.stderr
        );
        assert_drift(
            table(&r, db, tbl),
            vec![k(&code(100), 0)],
            vec![k(&code(100), 99), k("zz", 1), k("a", 1)],
            vec![
                different(k(&code(5), 3), &[cv]),
                different(k(&code(7), 1), &[cv]),
                different(k(&code(7), 2), &[cv]),
            ],
            &format!("{flavor} hostile"),
        );
        let no = |s: &str| key(&[("order_no", s)]);
        assert_drift(
            table(&r, "shop_gbk", "orders"),
            vec![no("订单-1500")],
            vec![no("订单-额外")],
            vec![different(no("订单-0777"), &["customer"])],
            &format!("{flavor} gbk: keys as text"),
        );
        assert_drift(
            table(&r, "shop_latin1", "clients"),
            vec![],
            vec![],
            vec![different(key(&[("code", "Société-€0500")]), &["name"])],
            &format!("{flavor} latin1: keys as text"),
        );
        assert_eq!(r["summary"]["drifted"], 3, "{flavor}: {r}");
    }
}

#[test]
fn a_row_duplicated_in_a_table_without_a_key() {
    for flavor in FLAVORS {
        let sb = started(flavor, Topology::SourceReplica);
        let (n1, n2) = (sb.node("n1"), sb.node("n2"));
        n1.exec(
            "CREATE DATABASE logs; \
             CREATE TABLE logs.events (at INT NOT NULL, msg VARCHAR(30)); \
             CREATE TABLE logs.tagged (tag INT NULL, msg VARCHAR(30), UNIQUE KEY (tag))",
        )
        .unwrap();
        // Rows twice over already (identical multisets are not drift), and a NULL.
        let rows = (1..=500)
            .map(|i| format!("({i}, 'msg-{i}')"))
            .chain(["(1000, 'twice')".into(), "(1000, 'twice')".into()])
            .chain(["(1001, NULL)".into()]);
        insert(n1, "logs.events", rows);
        insert(
            n1,
            "logs.tagged",
            (1..=50).map(|i| format!("({i}, 't{i}')")),
        );
        n1.exec("INSERT INTO logs.tagged VALUES (NULL, 'no tag'), (NULL, 'no tag')")
            .unwrap();
        n2.wait_caught_up(CATCH_UP).unwrap();
        let (run, r) = verify(n2, &[]);
        assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
        let events = table(&r, "logs", "events");
        assert_identical(events, 503, &format!("{flavor} keyless"));
        assert!(events["key"].is_null(), "{flavor}: no key: {events}");
        assert_identical(table(&r, "logs", "tagged"), 52, &format!("{flavor} tagged"));

        drift(
            n2,
            "INSERT INTO logs.events VALUES (42, 'msg-42'); \
             INSERT INTO logs.tagged VALUES (NULL, 'no tag')",
        );
        let (run, r) = verify(n2, &[]);
        assert_eq!(
            run.code,
            exit::DRIFT,
            "{flavor}: {}{}",
            run.stdout,
            run.stderr
        );
        for (name, row, copies) in [
            ("events", json!(["42", "msg-42"]), (1, 2)),
            // A unique key on a nullable column is not usable: compared as a multiset too.
            ("tagged", json!([null, "no tag"]), (2, 3)),
        ] {
            let t = table(&r, "logs", name);
            let what = format!("{flavor} logs.{name}");
            assert!(t["key"].is_null(), "{what}: {t}");
            assert_eq!(t["extra"], 1, "{what}: {t}");
            assert_eq!(t["missing"], 0, "{what}: {t}");
            let m = t["multiset_rows"].as_array().expect("multiset_rows");
            assert_eq!(m.len(), 1, "{what}: only the duplicated row: {t}");
            assert_eq!(m[0]["source_count"], copies.0, "{what}: {t}");
            assert_eq!(m[0]["replica_count"], copies.1, "{what}: {t}");
            assert_eq!(m[0]["row"]["values"], row, "{what}: {t}");
        }
        let run = replmend(&["verify", "--replica", &n2.url()]);
        assert_eq!(run.code, exit::DRIFT);
        assert!(
            run.stdout
                .contains("1 copies on the source, 2 on the replica: at=42, msg='msg-42'"),
            "{flavor}: {}",
            run.stdout
        );
    }
}

/// A small xorshift generator: random enough to pick rows, no dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// Sets the flag when dropped, also while a panic unwinds (the writer thread then stops and
/// the scope can end).
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Verifies `live.orders` (20,000 rows, chunks of 1,000) once per entry of `delays` while a
/// thread keeps writing to the source: inserts, updates of random rows, and updates of the
/// first 100 rows again and again (a hot spot). A delay above 0 makes the replica apply each
/// transaction that many seconds late. Every run must find no drift; so must one more run
/// after the writes stopped and the replica caught up.
fn verify_while_written_to(flavor: Flavor, delays: &[u32]) {
    const ROWS: u64 = 20_000;
    let sb = started(flavor, Topology::SourceReplica);
    let (n1, n2) = (sb.node("n1"), sb.node("n2"));
    n1.exec(
        "CREATE DATABASE live; \
         CREATE TABLE live.orders (id INT AUTO_INCREMENT PRIMARY KEY, qty INT NOT NULL, \
           status VARCHAR(20) NOT NULL, note VARCHAR(60))",
    )
    .unwrap();
    insert(
        n1,
        "live.orders",
        (1..=ROWS).map(|i| format!("({i}, {}, 'new', 'order {i}')", i % 17)),
    );
    n2.wait_caught_up(CATCH_UP).unwrap();

    let stop = AtomicBool::new(false);
    let writes = AtomicU64::new(0);
    let (runs, after) = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut c = n1.conn().unwrap();
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ u64::from(std::process::id()));
            let mut top = ROWS;
            while !stop.load(Ordering::Relaxed) {
                let (any, hot) = (1 + rng.below(top), 1 + rng.below(100));
                c.query_drop(format!(
                    "START TRANSACTION; \
                     INSERT INTO live.orders (qty, status, note) VALUES ({}, 'new', 'live'); \
                     UPDATE live.orders SET status = 'paid', note = 'paid' WHERE id = {any}; \
                     UPDATE live.orders SET qty = qty + 1 WHERE id = {hot}; \
                     COMMIT",
                    rng.below(100)
                ))
                .unwrap();
                top += 1;
                writes.fetch_add(1, Ordering::Relaxed);
                // A few hundred transactions a second: busy, leaving the CPUs to verify.
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        let _stop = StopOnDrop(&stop);
        // Writes under way before verify starts.
        while writes.load(Ordering::Relaxed) < 50 && !writer.is_finished() {
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut runs = Vec::new();
        for &delay in delays {
            if delay > 0 {
                replica_delay(n2, delay);
                std::thread::sleep(Duration::from_secs(u64::from(delay)));
            }
            let before = writes.load(Ordering::Relaxed);
            let t0 = Instant::now();
            let (run, r) = verify(n2, &["--tables", "live.orders", "--chunk-size", "1000"]);
            let during = writes.load(Ordering::Relaxed) - before;
            runs.push((delay, run, r, during, t0.elapsed()));
        }
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap();
        (runs, writes.load(Ordering::Relaxed))
    });
    for (i, (delay, run, r, during, took)) in runs.iter().enumerate() {
        let t = table(r, "live", "orders");
        let what = format!("{flavor} run {i} (replica {delay} s behind)");
        eprintln!(
            "{what}: {took:?}, {during} transactions written meanwhile, {} rows, {} chunks, \
             {} converged",
            t["rows"], t["chunks"], t["converged"]
        );
        assert_eq!(
            run.code,
            exit::OK,
            "{what}: no drift while the source is written to: {r}"
        );
        assert!(*during > 0, "{what}: the source was written to meanwhile");
        assert_drift(t, vec![], vec![], vec![], &what);
        assert!(t["rows"].as_u64().unwrap() >= ROWS, "{what}: {t}");
    }

    if delays.iter().any(|&d| d > 0) {
        replica_delay(n2, 0);
    }
    n2.wait_caught_up(CATCH_UP).unwrap();
    let (run, r) = verify(n2, &["--tables", "live.orders", "--chunk-size", "1000"]);
    assert_eq!(run.code, exit::OK, "{flavor}: after the writes: {r}");
    assert_identical(
        table(&r, "live", "orders"),
        ROWS + after,
        &format!("{flavor} after the writes"),
    );
}

#[test]
fn no_false_positives_while_the_source_is_written_to() {
    for flavor in FLAVORS {
        verify_while_written_to(flavor, &[0, 0]);
    }
}

/// With the replica a second behind, every chunk written to meanwhile differs when first
/// read, and the hot rows differ again at every recheck: still changing, not drift.
#[test]
fn no_false_positives_on_hot_rows_while_a_lagging_replica_catches_up() {
    for flavor in FLAVORS {
        verify_while_written_to(flavor, &[1]);
    }
}

#[test]
fn tables_that_do_not_exist_and_tables_left_out() {
    for flavor in FLAVORS {
        let sb = started(flavor, Topology::SourceReplica);
        let (n1, n2) = (sb.node("n1"), sb.node("n2"));
        n1.exec(
            "CREATE DATABASE shop; \
             CREATE TABLE shop.a (id INT PRIMARY KEY, v INT); \
             CREATE TABLE shop.b (id INT PRIMARY KEY, v INT); \
             INSERT INTO shop.a VALUES (1, 1), (2, 2); INSERT INTO shop.b VALUES (1, 1)",
        )
        .unwrap();
        n2.wait_caught_up(CATCH_UP).unwrap();
        drift(n2, "UPDATE shop.a SET v = 20 WHERE id = 2");

        for format in ["text", "json"] {
            let run = replmend(&[
                "verify",
                "--replica",
                &n2.url(),
                "--tables",
                "shop.b,shop.nope",
                "--format",
                format,
            ]);
            assert_eq!(
                run.code,
                exit::BAD_INPUT,
                "{flavor} {format}: {}{}",
                run.stdout,
                run.stderr
            );
            let said = format!("{}{}", run.stdout, run.stderr);
            assert!(
                said.contains("table shop.nope does not exist on 127.0.0.1:"),
                "{flavor} {format}: a clear sentence: {said}"
            );
            for debug in [
                "Error {",
                "MySqlError",
                "Caused by",
                "panicked",
                "backtrace",
                "Coded(",
            ] {
                assert!(
                    !said.contains(debug),
                    "{flavor} {format}: {debug:?} in {said}"
                );
            }
            if format == "json" {
                let e = run.json();
                assert_eq!(e["exit_code"], 8, "{e}");
            }
        }

        // A wait longer than a session's reads, or none, is refused before anything is read.
        for bad in ["0", "60", "nan"] {
            let run = replmend(&["verify", "--replica", &n2.url(), "--wait-timeout", bad]);
            let said = format!("{}{}", run.stdout, run.stderr);
            assert_eq!(
                run.code,
                exit::BAD_INPUT,
                "{flavor} --wait-timeout {bad}: {said}"
            );
            assert!(said.contains("--wait-timeout"), "{flavor}: {said}");
        }

        let (run, r) = verify(n2, &["--databases", "shop", "--ignore-tables", "shop.a"]);
        assert_eq!(run.code, exit::OK, "{flavor}: {r}");
        assert_eq!(table_names(&r), ["shop.b"], "{flavor}: shop.a left out");

        let (run, r) = verify(n2, &["--tables", "shop.a"]);
        assert_eq!(run.code, exit::DRIFT, "{flavor}: {r}");
        assert_eq!(table_names(&r), ["shop.a"]);
        assert_drift(
            table(&r, "shop", "a"),
            vec![],
            vec![],
            vec![different(id(2), &["v"])],
            &format!("{flavor} --tables"),
        );

        let (run, r) = verify(n2, &["--databases", "shop"]);
        assert_eq!(run.code, exit::DRIFT, "{flavor}: {r}");
        assert_eq!(table_names(&r), ["shop.a", "shop.b"]);
    }
}

#[test]
fn dual_master_drift_is_found_from_either_side() {
    for flavor in FLAVORS {
        let sb = started(flavor, Topology::DualMaster);
        let (n1, n2) = (sb.node("n1"), sb.node("n2"));
        n1.exec(
            "CREATE DATABASE dm; CREATE TABLE dm.t (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL)",
        )
        .unwrap();
        insert(n1, "dm.t", (1..=3000).map(|i| format!("({i}, 'v{i}')")));
        n2.wait_caught_up(CATCH_UP).unwrap();
        n1.wait_caught_up(CATCH_UP).unwrap();
        let (run, r) = verify(n2, &["--chunk-size", "500"]);
        assert_eq!(run.code, exit::OK, "{flavor}: {r}");
        assert_eq!(r["dual_master"], true, "{flavor}: {r}");
        assert_identical(table(&r, "dm", "t"), 3000, &format!("{flavor} dual-master"));

        drift(
            n1,
            "UPDATE dm.t SET v = 'n1 only' WHERE id = 5; DELETE FROM dm.t WHERE id = 7",
        );
        drift(n2, "INSERT INTO dm.t VALUES (9999, 'n2 only')");
        for (replica, other, missing, extra) in [
            (n2, n1, vec![], vec![id(7), id(9999)]),
            (n1, n2, vec![id(7), id(9999)], vec![]),
        ] {
            let what = format!("{flavor} --replica {}", replica.name);
            let (run, r) = verify(replica, &["--chunk-size", "500"]);
            assert_eq!(run.code, exit::DRIFT, "{what}: {r}");
            assert_eq!(r["dual_master"], true, "{what}: {r}");
            assert_eq!(
                r["source"],
                format!("127.0.0.1:{}", other.port),
                "{what}: compared with the other node"
            );
            assert_drift(
                table(&r, "dm", "t"),
                missing,
                extra,
                vec![different(id(5), &["v"])],
                &what,
            );
        }
        reverse_stopped(n1, n2);
    }
}

/// A dual-master pair whose other direction is stopped (n1 no longer replicates from n2): a
/// row written on n2 since is not on n1, and verify of n2 against n1 says why it counts as
/// drift; resync refuses to delete it (it would lose n2's own newest row).
fn reverse_stopped(n1: &replmend_sandbox::Node, n2: &replmend_sandbox::Node) {
    let flavor = n1.flavor;
    n1.stop_replication().unwrap();
    n2.exec("INSERT INTO dm.t VALUES (10001, 'n2 new')")
        .unwrap();
    let (run, r) = verify(n2, &["--tables", "dm.t", "--chunk-size", "500"]);
    assert_eq!(run.code, exit::DRIFT, "{flavor}: {r}");
    assert_eq!(r["replication"], "stopped", "{flavor}: {r}");
    let says = format!(
        "127.0.0.1:{}'s replication from 127.0.0.1:{} is not running",
        n1.port, n2.port
    );
    assert!(r["warnings"].to_string().contains(&says), "{flavor}: {r}");
    resync_refused(n2, "dm.t");
    let kept = n2
        .query_value("SELECT COUNT(*) FROM dm.t WHERE id = 10001")
        .unwrap();
    assert_eq!(kept.as_deref(), Some("1"), "{flavor}: nothing changed");
    n1.start_replication().unwrap();
    n1.wait_caught_up(CATCH_UP).unwrap();
}

#[test]
fn chunk_size_holds_when_the_table_statistics_are_stale() {
    for flavor in FLAVORS {
        let sb = started(flavor, Topology::SourceReplica);
        let (n1, n2) = (sb.node("n1"), sb.node("n2"));
        n1.exec(
            "CREATE DATABASE st; CREATE TABLE st.t (id INT PRIMARY KEY, v INT); \
             INSERT INTO st.t VALUES (1, 1), (2, 2), (3, 3)",
        )
        .unwrap();
        // A monitoring query while the table is small: MySQL 8+ keeps the statistics it read
        // (information_schema_stats_expiry, a day by default), so TABLE_ROWS stays at 3.
        let cached = n1
            .query_value(
                "SELECT TABLE_ROWS FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = 'st' AND TABLE_NAME = 't'",
            )
            .unwrap();
        insert(n1, "st.t", (4..=20_000).map(|i| format!("({i}, {i})")));
        n2.wait_caught_up(CATCH_UP).unwrap();
        let (run, r) = verify(n2, &["--tables", "st.t", "--chunk-size", "1000"]);
        assert_eq!(run.code, exit::OK, "{flavor}: {r}");
        let t = table(&r, "st", "t");
        assert_identical(t, 20_000, &format!("{flavor} stale statistics"));
        assert!(
            t["chunks"].as_u64().unwrap() >= 15,
            "{flavor}: 20,000 rows in chunks of about 1,000 though information_schema \
             said {cached:?} rows: {t}"
        );
    }
}

/// FLOAT, DOUBLE, DECIMAL and temporal values are compared exactly: a change in the last
/// digit a type holds (a FLOAT's last bit, a microsecond) is drift, named by column.
#[test]
fn the_smallest_change_of_a_float_decimal_or_temporal_value_is_seen() {
    for flavor in FLAVORS {
        let sb = started(flavor, Topology::SourceReplica);
        let (n1, n2) = (sb.node("n1"), sb.node("n2"));
        n1.exec(
            "CREATE DATABASE exact; \
             CREATE TABLE exact.v (id INT PRIMARY KEY, f FLOAT, d DOUBLE, m DECIMAL(30,10), \
               t DATETIME(6), ti TIME(6), b BIT(12), e ENUM('a','b'), j JSON); \
             INSERT INTO exact.v VALUES \
               (1, 0.1, 0.1, 1.0000000001, '2026-11-25 10:00:00.000001', '-838:59:59.000000', b'101', 'a', '{\"k\": 1}'), \
               (2, 3.4028234e38, 1e-300, -99999999999999999999.9999999999, '1000-01-01 00:00:00', '00:00:00.5', b'0', 'b', '[1, 2]'), \
               (3, 1, 1, 1, '2026-01-01', '01:00', b'1', 'a', 'null'), \
               (4, 1, 1, 1, '2026-01-01', '01:00', b'1', 'a', 'null'), \
               (5, 1, 1, 1, '2026-01-01', '01:00', b'1', 'a', 'null')",
        )
        .unwrap();
        n2.wait_caught_up(CATCH_UP).unwrap();
        let (run, _) = verify(n2, &["--tables", "exact.v"]);
        assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
        drift(
            n2,
            "UPDATE exact.v SET f = 0.10000001 WHERE id = 1; \
             UPDATE exact.v SET d = 1.0000000000000002 WHERE id = 3; \
             UPDATE exact.v SET m = 1.0000000002 WHERE id = 1; \
             UPDATE exact.v SET t = '2026-11-25 10:00:00.000002', ti = '00:00:00.500001' WHERE id = 2; \
             UPDATE exact.v SET b = b'10', e = 'b' WHERE id = 4; \
             UPDATE exact.v SET j = '{\"k\": 2}' WHERE id = 5",
        );
        let (run, report) = verify(n2, &["--tables", "exact.v"]);
        assert_eq!(
            run.code,
            exit::DRIFT,
            "{flavor}: {}{}",
            run.stdout,
            run.stderr
        );
        let t = table(&report, "exact", "v");
        let columns: Vec<(String, Vec<String>)> = t["different_rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["key"][0]["value"].as_str().unwrap().to_string(),
                    d["columns"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|c| c.as_str().unwrap().to_string())
                        .collect(),
                )
            })
            .collect();
        let mut columns = columns;
        columns.sort();
        let v = |id: &str, cols: &[&str]| {
            (
                id.to_string(),
                cols.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            )
        };
        assert_eq!(
            columns,
            vec![
                v("1", &["f", "m"]),
                v("2", &["t", "ti"]),
                v("3", &["d"]),
                v("4", &["b", "e"]),
                v("5", &["j"]),
            ],
            "{flavor}: {t}"
        );
    }
}

/// `repair --verify-table`: once the incident is repaired, its table is verified between the
/// two nodes, in the same report.
#[test]
fn repair_verify_table_reports_the_incident_table() {
    for flavor in FLAVORS {
        let sb = incident(flavor, Topology::DualMaster, "seed-dual-master-1062");
        let n2 = sb.node("n2");
        let journal = std::env::temp_dir()
            .join(format!(
                "replmend-verify-table-{}-{flavor}.jsonl",
                std::process::id()
            ))
            .display()
            .to_string();
        let run = replmend(&[
            "repair",
            "--replica",
            &n2.url(),
            "--yes",
            "--verify-table",
            "--journal",
            &journal,
            "--format",
            "json",
        ]);
        assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
        let j = run.json();
        assert_eq!(j["verify"]["schema"], "replmend.verify/1", "{flavor}: {j}");
        let t = table(&j["verify"], "zeus", "xinyan_cache");
        assert_eq!(t["missing"], 0, "{flavor}: {t}");
        assert_eq!(t["extra"], 0, "{flavor}: {t}");
        assert_eq!(t["different"], 0, "{flavor}: {t}");
        // The repair's own report is a resync's input as a verify report is.
        let report = format!("{journal}.repair.json");
        std::fs::write(&report, &run.stdout).unwrap();
        let run = replmend(&[
            "resync",
            "--from",
            &report,
            "--dry-run",
            "--user",
            "root",
            "--format",
            "json",
        ]);
        let out = run.json();
        assert_eq!(run.code, exit::OK, "{flavor}: {out}\n{}", run.stderr);
        assert_eq!(out["drift_from"]["kind"], "report", "{flavor}: {out}");
        assert_eq!(
            out["plan"]["steps"],
            serde_json::json!([]),
            "{flavor}: {out}"
        );
        let _ = std::fs::remove_file(&report);
        let _ = std::fs::remove_file(&journal);
    }
}

/// `--threads` (tables compared at once) and `--chunk-time` (chunk size adapting to a target
/// time) find exactly what the defaults find.
#[test]
fn threads_and_chunk_time_find_the_same_drift() {
    for flavor in FLAVORS {
        let sb = started(flavor, Topology::SourceReplica);
        let (n1, n2) = (sb.node("n1"), sb.node("n2"));
        let mut sql = String::from("CREATE DATABASE par;");
        for t in ["a", "b", "c"] {
            sql.push_str(&format!(
                "CREATE TABLE par.{t} (id INT PRIMARY KEY, v VARCHAR(20)); \
                 INSERT INTO par.{t} SELECT seq, CONCAT('v', seq) FROM (SELECT 1 seq) x;"
            ));
        }
        n1.exec(&sql).unwrap();
        for t in ["a", "b", "c"] {
            let rows: Vec<String> = (2..=3000).map(|i| format!("({i}, 'v{i}')")).collect();
            n1.exec(&format!("INSERT INTO par.{t} VALUES {}", rows.join(",")))
                .unwrap();
        }
        n2.wait_caught_up(CATCH_UP).unwrap();
        drift(
            n2,
            "UPDATE par.a SET v = 'x' WHERE id = 17; DELETE FROM par.b WHERE id = 2999; \
             INSERT INTO par.c VALUES (5000, 'extra')",
        );
        let (run, plain) = verify(n2, &["--databases", "par"]);
        assert_eq!(run.code, exit::DRIFT, "{flavor}: {}", run.stderr);
        let (run, tuned) = verify(
            n2,
            &[
                "--databases",
                "par",
                "--threads",
                "3",
                "--chunk-time",
                "0.01",
                "--chunk-size",
                "100",
            ],
        );
        assert_eq!(run.code, exit::DRIFT, "{flavor}: {}", run.stderr);
        for t in ["a", "b", "c"] {
            for field in ["missing_keys", "extra_keys", "different_rows", "rows"] {
                assert_eq!(
                    table(&plain, "par", t)[field],
                    table(&tuned, "par", t)[field],
                    "{flavor} par.{t} {field}"
                );
            }
        }
        assert_eq!(table(&tuned, "par", "a")["different"], 1, "{flavor}");
        assert_eq!(table(&tuned, "par", "b")["missing"], 1, "{flavor}");
        assert_eq!(table(&tuned, "par", "c")["extra"], 1, "{flavor}");
    }
}

/// The changes a cheap row digest could miss, each found and named by column: values of equal
/// length swapped between rows of one bucket (one bit apart: a XOR of CRC32s cancels them),
/// alone in their table so no other change gets the bucket read row by row, on an integer key
/// (buckets) and on a text key (whole chunks); NULL against '' and a NULL moved to the next
/// column, a BINARY's and a VARBINARY's trailing bytes.
#[test]
fn the_row_digest_sees_swaps_nulls_and_trailing_bytes_in_one_bucket() {
    for flavor in FLAVORS {
        let sb = started(flavor, Topology::SourceReplica);
        let (n1, n2) = (sb.node("n1"), sb.node("n2"));
        n1.exec(
            "CREATE DATABASE dg; \
             CREATE TABLE dg.t (id INT PRIMARY KEY, a INT NOT NULL, s CHAR(8) NOT NULL, \
               n1 VARCHAR(10) NULL, n2 VARCHAR(10) NULL, bin BINARY(4) NOT NULL, vb VARBINARY(8)); \
             INSERT INTO dg.t SELECT seq, seq + 10, CONCAT('s', LPAD(seq, 7, '0')), NULL, 'x', 'ab', 'ab' \
               FROM (SELECT 1 AS seq UNION SELECT 2 UNION SELECT 3 UNION SELECT 4 UNION SELECT 5 \
                 UNION SELECT 6 UNION SELECT 7 UNION SELECT 8 UNION SELECT 9 UNION SELECT 10 \
                 UNION SELECT 11 UNION SELECT 12 UNION SELECT 13 UNION SELECT 14 UNION SELECT 15 \
                 UNION SELECT 16) AS n; \
             CREATE TABLE dg.c (id VARCHAR(8) PRIMARY KEY, a INT NOT NULL, s CHAR(8) NOT NULL, \
               n1 VARCHAR(10) NULL, n2 VARCHAR(10) NULL, bin BINARY(4) NOT NULL, vb VARBINARY(8)); \
             INSERT INTO dg.c SELECT CONCAT('k', id), a, s, n1, n2, bin, vb FROM dg.t; \
             CREATE TABLE dg.n LIKE dg.t; INSERT INTO dg.n SELECT * FROM dg.t",
        )
        .unwrap();
        n2.wait_caught_up(CATCH_UP).unwrap();
        let (run, r) = verify(n2, &["--databases", "dg"]);
        assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
        // MariaDB 10.11: CRC32C; MySQL has none: CRC32 of the reversed text.
        let digest = match flavor {
            Flavor::MariaDb => "crc32,crc32c",
            Flavor::MySql => "crc32,crc32-reversed",
        };
        assert_eq!(r["digest"], digest, "{flavor}: {r}");
        for (t, k) in [("dg.t", ""), ("dg.c", "k")] {
            let swaps = format!(
                "UPDATE {t} SET a = CASE id WHEN '{k}4' THEN 15 ELSE 14 END WHERE id IN ('{k}4', '{k}5'); \
                 UPDATE {t} SET s = CASE id WHEN '{k}6' THEN 's0000007' ELSE 's0000006' END \
                   WHERE id IN ('{k}6', '{k}7'); \
                 UPDATE {t} SET s = CASE id WHEN '{k}8' THEN 's0000009' ELSE 's0000008' END \
                   WHERE id IN ('{k}8', '{k}9')"
            );
            drift(n2, &swaps);
        }
        drift(
            n2,
            "UPDATE dg.n SET n1 = '' WHERE id = 12; \
             UPDATE dg.n SET n1 = 'x', n2 = NULL WHERE id = 13; \
             UPDATE dg.n SET bin = 0x61620001 WHERE id = 14; \
             UPDATE dg.n SET vb = 0x616200 WHERE id = 15",
        );
        // --chunk-size 100000: each table's 16 rows share one bucket.
        let args = ["--databases", "dg", "--chunk-size", "100000"];
        let (run, r) = verify_env(n2, &args, &[("REPLMEND_TIMING", "1")]);
        assert_eq!(
            run.code,
            exit::DRIFT,
            "{flavor}: {}{}",
            run.stdout,
            run.stderr
        );
        // MariaDB builds the row's text once for both CRCs (its probe passed on both nodes);
        // MySQL, which deprecates setting a variable in an expression, twice. Either finds
        // every swap, NULL and trailing byte below.
        let (eval, not) = match flavor {
            Flavor::MariaDb => ("row text evaluated Once", "Twice"),
            Flavor::MySql => ("row text evaluated Twice", "Once"),
        };
        let said = run.stderr.contains(eval) && !run.stderr.contains(not);
        assert!(said, "{flavor}: {}", run.stderr);
        for (name, k) in [("t", ""), ("c", "k")] {
            let row = |i: i64| match k {
                "" => id(i),
                _ => key(&[("id", &format!("k{i}"))]),
            };
            let swapped = [(4, "a"), (5, "a"), (6, "s"), (7, "s"), (8, "s"), (9, "s")]
                .map(|(i, c)| different(row(i), &[c]))
                .to_vec();
            let what = format!("{flavor} dg.{name}");
            assert_drift(table(&r, "dg", name), vec![], vec![], swapped, &what);
        }
        let nulls = vec![
            different(id(12), &["n1"]),
            different(id(13), &["n1", "n2"]),
            different(id(14), &["bin"]),
            different(id(15), &["vb"]),
        ];
        let what = format!("{flavor} dg.n");
        assert_drift(table(&r, "dg", "n"), vec![], vec![], nulls, &what);
    }
}

/// The replica's Seconds_Behind_Master (MariaDB) / Seconds_Behind_Source (MySQL).
/// `--max-lag`: on a replica held 8 s behind (SOURCE_DELAY), verify waits until the lag is
/// back under the limit before reading a chunk; without it, verify reads at once (the row
/// written before is not on the replica yet when it ends). verify itself writes nothing, so
/// it cannot put the replica further behind. A row the replica has not applied when
/// `--wait-timeout` runs out is not judged (`unsettled`), not called drift.
#[test]
fn max_lag_waits_for_a_lagging_replica() {
    for flavor in FLAVORS {
        let sb = started(flavor, Topology::SourceReplica);
        let (n1, n2) = (sb.node("n1"), sb.node("n2"));
        n1.exec(
            "CREATE DATABASE lagdb; CREATE TABLE lagdb.t (id INT PRIMARY KEY, v INT); \
             CREATE TABLE lagdb.other (id INT PRIMARY KEY); \
             INSERT INTO lagdb.t VALUES (1, 1), (2, 2), (3, 3)",
        )
        .unwrap();
        n2.wait_caught_up(CATCH_UP).unwrap();
        replica_delay(n2, 8);
        lag_behind(n1, n2, 1);
        let (run, _) = verify(n2, &["--tables", "lagdb.t"]);
        assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
        assert!(
            !applied(n2, 1),
            "{flavor}: without --max-lag verify did not wait"
        );
        n2.wait_caught_up(CATCH_UP).unwrap();
        lag_behind(n1, n2, 2);
        let (run, _) = verify(n2, &["--tables", "lagdb.t", "--max-lag", "2"]);
        assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
        assert!(
            applied(n2, 2),
            "{flavor}: --max-lag 2 read the table while the replica was {:?} s behind",
            lag_seconds(n2)
        );
        // A row changed on the source that the delayed replica has not applied when verify's
        // wait for it times out is not judged: neither drift nor identical (held 30 s behind,
        // so both runs end before it is applied).
        replica_delay(n2, 30);
        n1.exec("UPDATE lagdb.t SET v = 30 WHERE id = 3").unwrap();
        let (run, r) = verify(n2, &["--tables", "lagdb.t", "--wait-timeout", "1"]);
        assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
        let t = table(&r, "lagdb", "t");
        assert_eq!(t["different"], 0, "{flavor}: lag called drift: {r}");
        assert_eq!(t["unsettled"], 1, "{flavor}: {r}");
        assert_eq!(
            t["unsettled_keys"],
            json!([key(&[("id", "3")])]),
            "{flavor}: {r}"
        );
        assert_eq!(t["not_caught_up"], true, "{flavor}: {r}");
        assert_eq!(r["summary"]["identical"], 0, "{flavor}: {r}");
        assert_eq!(r["summary"]["unsettled_tables"], 1, "{flavor}: {r}");
        // Once a wait ran out its --wait-timeout, the next ones (three rechecks) last a
        // second while the replica stays behind: 4 + 1 + 1 s, not 3 × 4 s.
        let started = Instant::now();
        let (run, r) = verify(n2, &["--tables", "lagdb.t", "--wait-timeout", "4"]);
        let took = started.elapsed();
        assert_eq!(run.code, exit::OK, "{flavor}: {r}");
        assert_eq!(table(&r, "lagdb", "t")["unsettled"], 1, "{flavor}: {r}");
        assert!(took < Duration::from_secs(10), "{flavor}: waited {took:?}");
        let url = n2.url();
        let text = replmend(&[
            "verify",
            "--replica",
            &url,
            "--tables",
            "lagdb.t",
            "--wait-timeout",
            "1",
        ]);
        assert!(!applied_update(n2), "{flavor}: applied before verify ended");
        assert!(
            text.stdout
                .lines()
                .any(|l| l.starts_with("lagdb.t") && l.ends_with("not judged"))
                && text.stdout.contains("the wait for it ran out")
                && text.stdout.contains("not judged: id=3"),
            "{flavor}: {}",
            text.stdout
        );
        replica_delay(n2, 0);
        n2.wait_caught_up(CATCH_UP).unwrap();
        let (run, r) = verify(n2, &["--tables", "lagdb.t", "--wait-timeout", "1"]);
        assert_eq!(run.code, exit::OK, "{flavor}: {r}");
        assert_eq!(r["summary"]["identical"], 1, "{flavor}: caught up: {r}");
        assert_eq!(r["replication"], "running", "{flavor}: {r}");
        stopped_receiver(n1, n2);
        cut_transaction(n1, n2);
        stopped_during(n1, n2);
    }
}

/// A receiver stopped while verify runs (here while it pauses for --max-lag, the replica
/// held 8 s behind): the report says replication stopped during the verify, and why.
fn stopped_during(n1: &replmend_sandbox::Node, n2: &replmend_sandbox::Node) {
    let flavor = n1.flavor;
    replica_delay(n2, 8);
    lag_behind(n1, n2, 3);
    let url = n2.url();
    let args = [
        "verify",
        "--replica",
        &url,
        "--tables",
        "lagdb.t",
        "--max-lag",
        "2",
        "--wait-timeout",
        "1",
        "--format",
        "json",
    ];
    let run = std::thread::scope(|s| {
        let verifying = s.spawn(|| replmend(&args));
        std::thread::sleep(Duration::from_secs(2));
        n2.stop_io().unwrap();
        verifying.join().unwrap()
    });
    let r = run.json();
    assert_eq!(r["replication"], "stopped_during", "{flavor}: {r}");
    assert!(
        r["warnings"].to_string().contains(&format!(
            "stopped during the verify (on 127.0.0.1:{}: its receiver is stopped)",
            n2.port
        )),
        "{flavor}: {r}"
    );
    n2.start_io().unwrap();
    replica_delay(n2, 0);
    n2.wait_caught_up(CATCH_UP).unwrap();
}

/// A receiver stopped inside a transaction (its packet limit refuses the transaction's
/// second event, 20 KB): the applier idles on the part it received and can never finish it.
/// verify stops waiting for it within seconds, not at each --wait-timeout, and the
/// transaction's change counts as drift with the receiver's error in the warning.
fn cut_transaction(n1: &replmend_sandbox::Node, n2: &replmend_sandbox::Node) {
    let flavor = n1.flavor;
    let limit = match flavor {
        replmend_sandbox::Flavor::MariaDb => "slave_max_allowed_packet",
        replmend_sandbox::Flavor::MySql => "replica_max_allowed_packet",
    };
    n1.exec("CREATE TABLE lagdb.big (id INT PRIMARY KEY, v LONGTEXT)")
        .unwrap();
    n2.wait_caught_up(CATCH_UP).unwrap();
    n2.stop_replication().unwrap();
    n2.exec(&format!("SET GLOBAL {limit} = 8192")).unwrap();
    n2.start_replication().unwrap();
    n1.exec(
        "BEGIN; UPDATE lagdb.t SET v = 80 WHERE id = 1; \
         INSERT INTO lagdb.big VALUES (1, REPEAT('x', 20000)); COMMIT",
    )
    .unwrap();
    let t = Instant::now();
    while io_errno(n2).is_none_or(|e| e == 0) {
        assert!(
            t.elapsed() < CATCH_UP,
            "{flavor}: the receiver never stopped"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let started = Instant::now();
    let (run, r) = verify(n2, &["--tables", "lagdb.t", "--wait-timeout", "30"]);
    let took = started.elapsed();
    assert_eq!(
        run.code,
        exit::DRIFT,
        "{flavor}: {}{}",
        run.stdout,
        run.stderr
    );
    assert_eq!(table(&r, "lagdb", "t")["different"], 1, "{flavor}: {r}");
    assert_eq!(r["replication"], "stopped", "{flavor}: {r}");
    assert!(
        r["warnings"]
            .to_string()
            .contains("its receiver stopped on error"),
        "{flavor}: {r}"
    );
    assert!(
        took < Duration::from_secs(15),
        "{flavor}: waited {took:?} for a transaction the applier cannot finish"
    );
    n2.stop_replication().unwrap();
    n2.exec(&format!("SET GLOBAL {limit} = 1073741824"))
        .unwrap();
    n2.start_replication().unwrap();
    n2.wait_caught_up(CATCH_UP).unwrap();
    let (run, r) = verify(n2, &["--tables", "lagdb.t,lagdb.big"]);
    assert_eq!(run.code, exit::OK, "{flavor}: healed: {r}");
}

/// resync of `table` on `replica` refuses (exit 10): a receiver between the nodes is stopped,
/// so rows on their way would be overwritten.
fn resync_refused(replica: &replmend_sandbox::Node, table: &str) {
    let url = replica.url();
    let run = replmend(&["resync", "--replica", &url, "--tables", table, "--yes"]);
    let out = format!("{}: {}{}", replica.flavor, run.stdout, run.stderr);
    assert_eq!(run.code, exit::REFUSED, "{out}");
    assert!(
        run.stderr
            .contains("is not receiving (its receiver is stopped"),
        "{out}"
    );
}

/// The replica's Last_IO_Errno.
fn io_errno(replica: &replmend_sandbox::Node) -> Option<u32> {
    let st = replica.replica_status().unwrap()?;
    st.get("Last_IO_Errno")?.as_ref()?.parse().ok()
}

/// A replica whose receiver is stopped: verify waits until its applier has applied what it
/// received (a change it holds 4 s), and no longer: a change it never received counts as
/// drift, as on any stopped channel, without waiting out --wait-timeout for it.
fn stopped_receiver(n1: &replmend_sandbox::Node, n2: &replmend_sandbox::Node) {
    let flavor = n1.flavor;
    replica_delay(n2, 4);
    n1.exec("UPDATE lagdb.t SET v = 40 WHERE id = 1").unwrap();
    received(n1, n2);
    n2.stop_io().unwrap();
    let started = std::time::Instant::now();
    let (run, r) = verify(n2, &["--tables", "lagdb.t", "--wait-timeout", "30"]);
    assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
    assert_eq!(
        r["summary"]["identical"], 1,
        "{flavor}: received, applied: {r}"
    );
    n1.exec("UPDATE lagdb.t SET v = 50 WHERE id = 2").unwrap();
    let (run, r) = verify(n2, &["--tables", "lagdb.t", "--wait-timeout", "30"]);
    assert_eq!(
        run.code,
        exit::DRIFT,
        "{flavor}: {}{}",
        run.stdout,
        run.stderr
    );
    assert_eq!(table(&r, "lagdb", "t")["different"], 1, "{flavor}: {r}");
    assert!(
        r["warnings"]
            .to_string()
            .contains("is not running (its receiver is stopped)"),
        "{flavor}: {r}"
    );
    assert_eq!(r["replication"], "stopped", "{flavor}: {r}");
    // Rows on their way would be overwritten: resync refuses while the receiver is stopped.
    resync_refused(n2, "lagdb.t");
    let url = n2.url();
    // The text's hint is replication first, not a resync of rows not applied yet.
    let text = replmend(&["verify", "--replica", &url, "--tables", "lagdb.t"]);
    assert!(
        text.stdout.contains("replication is not running: start it")
            && !text.stdout.contains("fix with: replmend resync"),
        "{flavor}: {}",
        text.stdout
    );
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "{flavor}: waited {:?} for a change the replica cannot receive",
        started.elapsed()
    );
    // Received but held back by the delay, and never received, alike: the receiver is
    // stopped, so what is not applied when the wait ends is drift (exit 11), never rows
    // "not judged" (exit 0) that the replica may never receive.
    n2.start_io().unwrap();
    replica_delay(n2, 30);
    n1.exec("UPDATE lagdb.t SET v = 60 WHERE id = 3").unwrap();
    received(n1, n2);
    n2.stop_io().unwrap();
    n1.exec("UPDATE lagdb.t SET v = 70 WHERE id = 1").unwrap();
    let (run, r) = verify(n2, &["--tables", "lagdb.t", "--wait-timeout", "1"]);
    assert_eq!(
        run.code,
        exit::DRIFT,
        "{flavor}: {}{}",
        run.stdout,
        run.stderr
    );
    let t = table(&r, "lagdb", "t");
    assert_eq!(
        (&t["different"], &t["unsettled"]),
        (&json!(3), &json!(0)),
        "{flavor}: {r}"
    );
    n2.start_io().unwrap();
    replica_delay(n2, 0);
    n2.wait_caught_up(CATCH_UP).unwrap();
}

/// The delayed replica has applied the source's `UPDATE lagdb.t SET v = 30 WHERE id = 3`.
fn applied_update(replica: &replmend_sandbox::Node) -> bool {
    let q = "SELECT v FROM lagdb.t WHERE id = 3";
    replica.query_value(q).unwrap().as_deref() == Some("30")
}

/// A row whose text is longer than the session's max_allowed_packet (two 700 KB values under
/// a 1 MiB limit; each value fits, the row does not): CONCAT_WS returns NULL for it, and
/// before the fallback its digest was NULL on both nodes, so a byte changed in it on the
/// replica was reported identical. Now it is digested column by column and found, and the
/// row is read whole to name its column (the driver takes packets longer than the limit).
#[test]
fn a_row_longer_than_max_allowed_packet_is_still_compared() {
    for flavor in FLAVORS {
        let sb = started(flavor, Topology::SourceReplica);
        let (n1, n2) = (sb.node("n1"), sb.node("n2"));
        n1.exec(
            "CREATE DATABASE lr; \
             CREATE TABLE lr.t (id INT PRIMARY KEY, b LONGBLOB, t LONGTEXT); \
             INSERT INTO lr.t VALUES (1, 'x', 'y'), \
               (2, REPEAT('a', 700000), REPEAT('b', 700000)), (3, REPEAT('c', 100), NULL)",
        )
        .unwrap();
        n2.wait_caught_up(CATCH_UP).unwrap();
        drift(n2, "UPDATE lr.t SET b = INSERT(b, 5, 1, 'Z') WHERE id = 2");
        let packet = |n: &replmend_sandbox::Node, v: &str| {
            n.exec(&format!("SET GLOBAL max_allowed_packet = {v}"))
                .unwrap()
        };
        let was: String = n1
            .query_value("SELECT @@GLOBAL.max_allowed_packet")
            .unwrap()
            .unwrap();
        for n in [n1, n2] {
            packet(n, "1048576");
        }
        let (run, r) = verify(n2, &["--tables", "lr.t"]);
        for n in [n1, n2] {
            packet(n, &was);
        }
        assert_eq!(
            run.code,
            exit::DRIFT,
            "{flavor}: {}{}",
            run.stdout,
            run.stderr
        );
        let what = format!("{flavor} lr.t");
        let changed = vec![different(id(2), &["b"])];
        assert_drift(table(&r, "lr", "t"), vec![], vec![], changed, &what);
    }
}
