//! `replmend resync` on real servers of both flavors: every kind of drift (changed, missing,
//! extra rows, equal-length values swapped between two rows) made equal on the replica only —
//! a dry run and a refusal change nothing, the fix is journaled row by row and never reaches a
//! binary log, restore gives the drift back exactly; `--from` a verify report; a row changed
//! between planning and applying left alone and reported; a table without a key refused by
//! name; a composite key with hostile identifiers, GBK and latin1 tables; a dual-master pair
//! with `--winner replica` and `--winner newest:COLUMN`; a read-only replica refused by the
//! preflight unless `--lift-read-only`. Drift is made with `sql_log_bin = 0`, so it does not
//! replicate.

mod support;

use std::time::Duration;

use replmend_sandbox::Node;
use serde_json::{Value, json};
use support::tmux::Tmux;
use support::*;

const CATCH_UP: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Helpers (the verify ones as in tests/verify.rs).

fn endpoint(n: &Node) -> String {
    format!("127.0.0.1:{}", n.port)
}

/// `replmend resync --replica <url> <args…>` (text output).
fn resync_as(url: &str, args: &[&str]) -> Run {
    let mut all = vec!["resync", "--replica", url];
    all.extend_from_slice(args);
    replmend(&all)
}

fn resync(replica: &Node, args: &[&str]) -> Run {
    resync_as(&replica.url(), args)
}

/// `replmend resync … --format json`: the run and its `replmend.resync/1` document.
fn resync_json(replica: &Node, args: &[&str]) -> (Run, Value) {
    let mut all = args.to_vec();
    all.extend_from_slice(&["--format", "json"]);
    let run = resync(replica, &all);
    let out = run.json();
    assert_eq!(
        out["schema"], "replmend.resync/1",
        "{}: {out}\n{}",
        replica.flavor, run.stderr
    );
    (run, out)
}

/// What a node's binary log holds: its GTID set and every binlog file with its size. Equal
/// before and after means nothing was written to it.
fn binlog(n: &Node) -> Vec<Vec<Option<String>>> {
    let gtid = match n.flavor {
        Flavor::MariaDb => "SELECT @@global.gtid_binlog_pos",
        Flavor::MySql => "SELECT @@global.gtid_executed",
    };
    let mut rows = n.query_rows(gtid).unwrap();
    rows.extend(n.query_rows("SHOW BINARY LOGS").unwrap());
    rows
}

fn checksum(n: &Node, db: &str, t: &str) -> String {
    n.checksum_table(db, t)
        .unwrap()
        .unwrap_or_else(|| panic!("{}: no checksum for {db}.{t}", n.name))
}

/// A journaled row change whose latest record is `done`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Journaled {
    action: String,
    node: String,
    table: String,
    /// The row's values as text (None: NULL), in its columns' order.
    row: Vec<Option<String>>,
}

fn journal_text(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("journal {path}: {e}"))
}

/// The row entries of a journal that were committed (an intent followed by `done`), sorted.
fn journaled(path: &str) -> Vec<Journaled> {
    let mut latest: Vec<(String, Value)> = Vec::new();
    for line in journal_text(path).lines() {
        let v: Value = serde_json::from_str(line).expect("journal line is JSON");
        assert_eq!(v["schema"], "replmend.journal/2", "{v}");
        if v["table"].is_null() {
            continue;
        }
        let id = v["id"].as_str().unwrap().to_string();
        match latest.iter_mut().find(|(i, _)| *i == id) {
            Some(e) => e.1 = v,
            None => latest.push((id, v)),
        }
    }
    let mut out: Vec<Journaled> = latest
        .into_iter()
        .map(|(_, v)| v)
        .filter(|v| v["state"].as_str().unwrap_or("done") == "done")
        .map(|v| {
            assert_eq!(
                v["sql_log_bin"], false,
                "a resync write is never binlogged: {v}"
            );
            Journaled {
                action: v["action"].as_str().unwrap().to_string(),
                node: v["node"].as_str().unwrap().to_string(),
                table: format!(
                    "{}.{}",
                    v["table"]["schema"].as_str().unwrap(),
                    v["table"]["name"].as_str().unwrap()
                ),
                row: v["values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| match c["t"].as_str() {
                        Some("null") => None,
                        _ => Some(match &c["v"] {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        }),
                    })
                    .collect(),
            }
        })
        .collect();
    out.sort();
    out
}

/// Expected journal entries: `action` of each row of `rows` (as `query_rows` reads them).
fn entries(
    action: &str,
    node: &Node,
    table: &str,
    rows: Vec<Vec<Option<String>>>,
) -> Vec<Journaled> {
    rows.into_iter()
        .map(|row| Journaled {
            action: action.into(),
            node: endpoint(node),
            table: table.into(),
            row,
        })
        .collect()
}

/// `(action, first key value)` of every row the plan changes, sorted.
fn plan_rows(out: &Value) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = out["plan"]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .flat_map(|s| s["rows"].as_array().cloned().unwrap_or_default())
        .map(|r| {
            (
                r["action"].as_str().unwrap().to_string(),
                r["key"][0][1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    rows.sort();
    rows
}

fn expect_rows(deletes: &[i64], inserts: &[i64]) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = deletes
        .iter()
        .map(|k| ("delete".to_string(), k.to_string()))
        .chain(
            inserts
                .iter()
                .map(|k| ("insert".to_string(), k.to_string())),
        )
        .collect();
    rows.sort();
    rows
}

/// No Rust debug structure ever reaches a user.
fn assert_words(run: &Run, what: &str) {
    for needle in [
        "MySqlError",
        "Error {",
        "Caused by",
        "panicked",
        "backtrace",
        "Coded(",
    ] {
        assert!(
            !run.stderr.contains(needle) && !run.stdout.contains(needle),
            "{what}: debug text `{needle}` in output:\n{}\n{}",
            run.stdout,
            run.stderr
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 1–3. Every kind of drift on an integer key: dry run, refusal, fix, restore, --from.

/// Ids of `shop.items` on the source: 1..=6000 but for every hundredth from 50 (gaps an
/// extra row can fall in).
/// A source and replica holding `shop.items` (`item_ids()`), caught up.
fn items_sandbox(flavor: Flavor) -> Sandbox {
    let sb = started(flavor, Topology::SourceReplica);
    sb.node("n1")
        .exec(
            "CREATE DATABASE shop; \
             CREATE TABLE shop.items (id INT PRIMARY KEY, pad CHAR(12) NOT NULL, qty INT NOT NULL, \
               note VARCHAR(40) NULL, price DECIMAL(10,2))",
        )
        .unwrap();
    insert(sb.node("n1"), "shop.items", item_ids().map(item_row));
    sb.node("n2").wait_caught_up(CATCH_UP).unwrap();
    sb
}

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

const ITEM_COLS: &str = "SELECT id, pad, qty, note, price FROM shop.items";

fn items_at(n: &Node, ids: &[i64]) -> Vec<Vec<Option<String>>> {
    let list: Vec<String> = ids.iter().map(i64::to_string).collect();
    n.query_rows(&format!(
        "{ITEM_COLS} WHERE id IN ({}) ORDER BY id",
        list.join(", ")
    ))
    .unwrap()
}

#[test]
fn every_kind_of_drift_is_fixed_on_the_replica_only_restore_undoes_it_and_from_a_report() {
    for flavor in FLAVORS {
        let sb = items_sandbox(flavor);
        let (n1, n2) = (sb.node("n1"), sb.node("n2"));
        let source_sum = checksum(n1, "shop", "items");
        assert_eq!(checksum(n2, "shop", "items"), source_sum);

        drift(
            n2,
            "UPDATE shop.items SET qty = qty + 1 WHERE id = 1234; \
             UPDATE shop.items SET note = NULL WHERE id = 4321; \
             DELETE FROM shop.items WHERE id = 2500; \
             INSERT INTO shop.items VALUES (3050, 'pad-00003050', 1, 'in a gap', 1.00), \
               (6500, 'pad-00006500', 2, 'above the largest key', 2.00), \
               (-7, 'pad-minus007', 3, 'below the smallest key', 3.00); \
             UPDATE shop.items SET pad = CASE id WHEN 10 THEN 'pad-00000011' ELSE 'pad-00000010' END \
               WHERE id IN (10, 11)",
        );
        let drifted_sum = checksum(n2, "shop", "items");
        assert_ne!(drifted_sum, source_sum);
        let (b1, b2) = (binlog(n1), binlog(n2));
        let changed_or_extra = [-7, 10, 11, 1234, 3050, 4321, 6500];
        let replaced = [10, 11, 1234, 2500, 4321];
        let replica_rows = items_at(n2, &changed_or_extra);
        let source_rows = items_at(n1, &replaced);
        let unchanged = |what: &str| {
            assert_eq!(
                checksum(n2, "shop", "items"),
                drifted_sum,
                "{flavor}: {what} changed the replica"
            );
            assert_eq!(
                checksum(n1, "shop", "items"),
                source_sum,
                "{flavor}: {what}"
            );
            assert_eq!(binlog(n1), b1, "{flavor}: {what}: n1's binlog");
            assert_eq!(binlog(n2), b2, "{flavor}: {what}: n2's binlog");
        };
        let assert_drifted = |what: &str| {
            let (run, r) = verify(n2, &["--chunk-size", "1000"]);
            assert_eq!(run.code, exit::DRIFT, "{flavor} {what}: {r}");
            assert_drift(
                table(&r, "shop", "items"),
                vec![id(2500)],
                vec![id(-7), id(3050), id(6500)],
                vec![
                    different(id(10), &["pad"]),
                    different(id(11), &["pad"]),
                    different(id(1234), &["qty"]),
                    different(id(4321), &["note"]),
                ],
                &format!("{flavor} {what}"),
            );
            r
        };
        assert_drifted("before resync");

        // 1a. --dry-run shows the SQL with the keys and changes nothing.
        let run = resync(n2, &["--dry-run"]);
        assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
        for text in [
            "SET SESSION sql_log_bin = 0;",
            "SELECT `id`, `pad`, `qty`, `note`, `price` FROM `shop`.`items` WHERE `id` <=> ? FOR UPDATE;",
            "DELETE FROM `shop`.`items` WHERE `id` <=> ?;",
            "INSERT INTO `shop`.`items` (`id`, `pad`, `qty`, `note`, `price`) VALUES (?, ?, ?, ?, ?);",
            "-- ? = -7",
            "-- ? = 3050",
            "-- ? = 6500",
            "-- ? = 2500",
            "-- ? = 'pad-00002500'",
            "-- ? = 4321",
            &format!("[replica {}]", endpoint(n2)),
            "Dry run: nothing was changed.",
        ] {
            assert!(
                run.stdout.contains(text),
                "{flavor}: {text:?} in the dry run:\n{}",
                run.stdout
            );
        }
        assert!(
            !run.stdout.contains(&format!("[source {}]", endpoint(n1))),
            "{flavor}: nothing is planned on the source:\n{}",
            run.stdout
        );
        unchanged("--dry-run");

        // --print is the same; its JSON names every row the plan would change, on the replica.
        let (run, out) = resync_json(n2, &["--print"]);
        assert_eq!(run.code, exit::OK, "{flavor}: {out}");
        assert_eq!(out["dry_run"], true);
        assert!(out["applied"].is_null(), "{flavor}: {out}");
        assert_eq!(out["refused"], json!([]));
        assert_eq!(out["plan"]["remedy"], "resync");
        assert_eq!(out["plan"]["winner"], "source");
        assert_eq!(out["plan"]["winner_endpoint"], endpoint(n1));
        assert_eq!(out["remaining"], 8, "{flavor}: 8 drifted keys: {out}");
        assert_eq!(out["verify"]["missing"], 1);
        assert_eq!(out["verify"]["extra"], 3);
        assert_eq!(out["verify"]["different"], 4);
        for s in out["plan"]["steps"].as_array().unwrap() {
            assert_eq!(s["endpoint"], endpoint(n2), "{flavor}: {s}");
            assert_eq!(s["node"], "replica");
            assert_eq!(s["action"], "resync_rows");
        }
        assert_eq!(
            plan_rows(&out),
            expect_rows(&changed_or_extra, &replaced),
            "{flavor}: {out}"
        );
        unchanged("--print");

        // 1b. Without --yes and without a terminal: refused, nothing changed, no journal.
        let journal = journal_path(&format!("kinds-{flavor}"));
        let run = resync(n2, &["--journal", &journal]);
        assert_eq!(
            run.code,
            exit::REFUSED,
            "{flavor}: {}{}",
            run.stdout,
            run.stderr
        );
        assert!(
            run.stderr.contains("pass --yes") && run.stderr.contains("nothing was changed"),
            "{flavor}: {}",
            run.stderr
        );
        assert_words(&run, "no terminal");
        assert!(!std::path::Path::new(&journal).exists(), "{flavor}");
        unchanged("a refused resync");

        // 1c. --yes: fixed on the replica only, every row journaled first.
        let (run, out) = resync_json(n2, &["--yes", "--journal", &journal]);
        assert_eq!(run.code, exit::OK, "{flavor}: {out}\n{}", run.stderr);
        assert_eq!(out["dry_run"], false);
        assert_eq!(out["remaining"], 0, "{flavor}: {out}");
        assert_eq!(out["applied"]["journaled_rows"], 12, "{flavor}: {out}");
        assert!(
            out["applied"]["left_alone"]
                .as_array()
                .is_none_or(|a| a.is_empty()),
            "{flavor}: {out}"
        );
        for s in out["applied"]["steps"].as_array().unwrap() {
            assert_eq!(s["outcome"], "done", "{flavor}: {s}");
        }
        assert_eq!(checksum(n2, "shop", "items"), source_sum, "{flavor}: fixed");
        assert_eq!(
            checksum(n1, "shop", "items"),
            source_sum,
            "{flavor}: the source is not touched"
        );
        assert_eq!(binlog(n1), b1, "{flavor}: nothing reached n1's binlog");
        assert_eq!(binlog(n2), b2, "{flavor}: the fix is not in n2's binlog");
        let (run, r) = verify(n2, &[]);
        assert_eq!(run.code, exit::OK, "{flavor}: identical after resync: {r}");
        // One journal entry per replica row deleted or replaced (its exact previous version),
        // one per version inserted.
        let mut want = entries("delete", n2, "shop.items", replica_rows.clone());
        want.extend(entries("insert", n2, "shop.items", source_rows.clone()));
        want.sort();
        assert_eq!(journaled(&journal), want, "{flavor}");
        assert_eq!(journaled_rows(&journal), 12);

        // 2. restore gives back exactly the previous replica rows, again without the binlog.
        let restore = replmend(&[
            "restore",
            &journal,
            "--replica",
            &n2.url(),
            "--format",
            "json",
        ]);
        assert_eq!(
            restore.code,
            exit::OK,
            "{flavor}: {}{}",
            restore.stdout,
            restore.stderr
        );
        let rows = restore.json()["rows"].as_array().unwrap().clone();
        assert_eq!(rows.len(), 12, "{flavor}: {rows:?}");
        assert!(
            rows.iter().all(|r| r["outcome"] == "restored"),
            "{flavor}: {rows:?}"
        );
        unchanged("resync then restore");
        assert_eq!(items_at(n2, &changed_or_extra), replica_rows, "{flavor}");
        assert_drifted("after restore");

        // 3. --from a verify report. Rows are read again when planning: a row changed after
        // the report is planned with its current version, a row that agrees by now is left
        // as it is, and drift made after the report is not the report's (left to the next
        // verify).
        let report = assert_drifted("for the report");
        let report_path = journal_path(&format!("report-{flavor}"));
        std::fs::write(&report_path, report.to_string()).unwrap();
        drift(
            n2,
            "UPDATE shop.items SET qty = 777 WHERE id = 1234; \
             UPDATE shop.items SET note = 'note 4321' WHERE id = 4321; \
             DELETE FROM shop.items WHERE id = 6500; \
             UPDATE shop.items SET qty = qty + 5 WHERE id = 5000",
        );
        let replica_now = items_at(n2, &[-7, 10, 11, 1234, 3050]);
        assert_eq!(replica_now[3][2].as_deref(), Some("777"), "{flavor}");
        // A report made for another pair of nodes is refused.
        let elsewhere = journal_path(&format!("report-elsewhere-{flavor}"));
        let mut other = report.clone();
        other["replica"] = json!("127.0.0.1:1");
        std::fs::write(&elsewhere, other.to_string()).unwrap();
        let run = resync(n2, &["--from", &elsewhere, "--yes"]);
        assert_eq!(
            run.code,
            exit::BAD_INPUT,
            "{flavor}: {}{}",
            run.stdout,
            run.stderr
        );
        assert!(
            run.stderr.contains("the report compares")
                && run.stderr.contains("nothing was changed"),
            "{flavor}: {}",
            run.stderr
        );
        let _ = std::fs::remove_file(&elsewhere);
        let journal2 = journal_path(&format!("from-{flavor}"));
        // The report names its nodes: no connection options needed but the user.
        let run = replmend(&[
            "resync",
            "--from",
            &report_path,
            "--dry-run",
            "--journal",
            &journal2,
            "--user",
            "root",
            "--format",
            "json",
        ]);
        let out = run.json();
        assert_eq!(run.code, exit::OK, "{flavor}: {out}\n{}", run.stderr);
        assert_eq!(
            out["verify"], report["summary"],
            "{flavor}: the drift resync started from is the report's"
        );
        let from_rows = expect_rows(&[-7, 10, 11, 1234, 3050], &[10, 11, 1234, 2500]);
        assert_eq!(plan_rows(&out), from_rows, "{flavor}: {out}");
        // Of the report's 8 keys, 4321 and 6500 agree by now.
        assert_eq!(out["remaining"], 6, "{flavor}: {out}");
        assert_eq!(
            items_at(n2, &[-7, 10, 11, 1234, 3050]),
            replica_now,
            "{flavor}: the dry run changed nothing"
        );
        let (run, out) = resync_json(
            n2,
            &["--from", &report_path, "--yes", "--journal", &journal2],
        );
        assert_eq!(run.code, exit::OK, "{flavor}: {out}\n{}", run.stderr);
        assert_eq!(out["remaining"], 0, "{flavor}: {out}");
        assert_eq!(plan_rows(&out), from_rows, "{flavor}: {out}");
        let mut want = entries("delete", n2, "shop.items", replica_now);
        want.extend(entries(
            "insert",
            n2,
            "shop.items",
            items_at(n1, &[10, 11, 1234, 2500]),
        ));
        want.sort();
        assert_eq!(
            journaled(&journal2),
            want,
            "{flavor}: id 1234 journaled with the version it had when resync read it"
        );
        assert_eq!(binlog(n2), b2, "{flavor}: --from: n2's binlog");
        assert_eq!(binlog(n1), b1, "{flavor}: --from: n1's binlog");
        let (run, r) = verify(n2, &[]);
        assert_eq!(run.code, exit::DRIFT, "{flavor}: {r}");
        assert_drift(
            table(&r, "shop", "items"),
            vec![],
            vec![],
            vec![different(id(5000), &["qty"])],
            &format!("{flavor}: only the drift made after the report is left"),
        );

        // Not a report: refused as bad input, in words.
        let bad = journal_path(&format!("bad-report-{flavor}"));
        std::fs::write(&bad, r#"{"schema": "replmend.status/1"}"#).unwrap();
        let run = resync(n2, &["--from", &bad, "--yes"]);
        assert_eq!(
            run.code,
            exit::BAD_INPUT,
            "{flavor}: {}{}",
            run.stdout,
            run.stderr
        );
        assert!(run.stderr.contains(&bad), "{flavor}: {}", run.stderr);
        assert_words(&run, "bad report");

        // Verifying again fixes the rest.
        let journal3 = journal_path(&format!("rest-{flavor}"));
        let run = resync(n2, &["--yes", "--journal", &journal3]);
        assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
        assert!(
            run.stdout.contains("now agree on both nodes"),
            "{flavor}: {}",
            run.stdout
        );
        assert_eq!(checksum(n2, "shop", "items"), source_sum, "{flavor}");
        assert_eq!(binlog(n2), b2, "{flavor}");
        let (run, r) = verify(n2, &[]);
        assert_eq!(run.code, exit::OK, "{flavor}: {r}");
        let run = resync(n2, &["--yes", "--journal", &journal3]);
        assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
        assert!(
            run.stdout.contains("nothing to change"),
            "{flavor}: {}",
            run.stdout
        );
        // The old report once its drift is gone: nothing to change, and nothing left
        // different (exit 0).
        let (run, out) = resync_json(
            n2,
            &["--from", &report_path, "--yes", "--journal", &journal3],
        );
        assert_eq!(run.code, exit::OK, "{flavor}: {out}\n{}", run.stderr);
        assert_eq!(out["remaining"], 0, "{flavor}: {out}");
        assert_eq!(out["plan"]["steps"], json!([]), "{flavor}: {out}");
        assert!(out["applied"].is_null(), "{flavor}: {out}");
        assert_eq!(checksum(n2, "shop", "items"), source_sum, "{flavor}");

        for f in [&journal, &journal2, &journal3, &report_path, &bad] {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// `restore` run twice on a resync journal: the second run finds every row already back.
/// A replaced row is journaled as a delete (its old version) and an insert (the new one) on the
/// same key; once restored, the key holds the old version again, which the insert's undo must
/// recognise as already done, not as a row changed since.
#[test]
fn restoring_a_resync_journal_twice_finds_every_row_already_back() {
    for flavor in FLAVORS {
        let sb = started(flavor, Topology::SourceReplica);
        let (n1, n2) = (sb.node("n1"), sb.node("n2"));
        n1.exec("CREATE DATABASE t; CREATE TABLE t.x (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL)")
            .unwrap();
        insert(n1, "t.x", (1..=100).map(|i| format!("({i}, 'v{i}')")));
        n2.wait_caught_up(CATCH_UP).unwrap();
        drift(
            n2,
            "UPDATE t.x SET v = 'drift' WHERE id = 5; DELETE FROM t.x WHERE id = 6; \
             INSERT INTO t.x VALUES (200, 'extra')",
        );
        let drifted = checksum(n2, "t", "x");
        let journal = journal_path(&format!("twice-{flavor}"));
        let run = resync(n2, &["--yes", "--journal", &journal]);
        assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
        assert_eq!(checksum(n2, "t", "x"), checksum(n1, "t", "x"), "{flavor}");
        let restore = || {
            replmend(&[
                "restore",
                &journal,
                "--replica",
                &n2.url(),
                "--format",
                "json",
            ])
        };
        let first = restore();
        assert_eq!(
            first.code,
            exit::OK,
            "{flavor}: {}{}",
            first.stdout,
            first.stderr
        );
        assert_eq!(checksum(n2, "t", "x"), drifted, "{flavor}");
        let again = restore();
        assert_eq!(checksum(n2, "t", "x"), drifted, "{flavor}: nothing changed");
        let outcomes: Vec<String> = again.json()["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                format!(
                    "{} {}",
                    r["key"][0].as_str().unwrap(),
                    r["outcome"].as_str().unwrap()
                )
            })
            .collect();
        assert!(
            outcomes.iter().all(|o| o.ends_with(" already_present")),
            "{flavor}: every row is already back: {outcomes:?}"
        );
        assert_eq!(again.code, exit::OK, "{flavor}: {}", again.stdout);
        let _ = std::fs::remove_file(&journal);
    }
}

// ---------------------------------------------------------------------------------------------
// 3b. A row changed between planning and applying: left alone and reported. The plan waits at
// the confirmation prompt (a real terminal, tmux), the row changes meanwhile.

#[test]
fn rows_changed_between_planning_and_applying_are_left_alone_and_reported() {
    for flavor in FLAVORS {
        let sb = started(flavor, Topology::SourceReplica);
        let (n1, n2) = (sb.node("n1"), sb.node("n2"));
        n1.exec("CREATE DATABASE t; CREATE TABLE t.x (id INT PRIMARY KEY, v VARCHAR(40) NOT NULL)")
            .unwrap();
        insert(n1, "t.x", (1..=2000).map(|i| format!("({i}, 'v{i}')")));
        n2.wait_caught_up(CATCH_UP).unwrap();
        drift(
            n2,
            "UPDATE t.x SET v = 'drift' WHERE id IN (1, 2, 3); DELETE FROM t.x WHERE id = 4; \
             INSERT INTO t.x VALUES (5000, 'extra'), (5001, 'extra')",
        );
        let drifted = checksum(n2, "t", "x");
        let dir = std::env::temp_dir().join(format!(
            "replmend-resync-tty-{}-{flavor}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let journal = dir.join("journal.jsonl");
        let session = |tag: &str| {
            let done = dir.join(format!("exit-{tag}"));
            let cmd = format!(
                "env HOME={home} NO_COLOR=1 {exe} resync --replica {url} --tables t.x --journal {journal}; echo $? > {done}; sleep 60",
                home = dir.display(),
                exe = env!("CARGO_BIN_EXE_replmend"),
                url = n2.url(),
                journal = journal.display(),
                done = done.display(),
            );
            let name = format!("replmend-resync-{}-{flavor}-{tag}", std::process::id());
            (Tmux::start(name, &cmd), done)
        };

        // Not confirmed: nothing changes.
        let (tty, done) = session("no");
        let pane = tty.wait_for("Apply these");
        assert!(
            pane.contains("DELETE FROM `t`.`x` WHERE `id` <=> ?"),
            "{flavor}: the plan is shown before the question:\n{pane}"
        );
        tty.keys(&["n"]);
        assert_eq!(
            tty.exit_code(&done, Duration::from_secs(120)),
            "10",
            "{flavor}:\n{}",
            tty.pane()
        );
        assert!(tty.pane().contains("not confirmed"), "{}", tty.pane());
        assert_eq!(checksum(n2, "t", "x"), drifted, "{flavor}");
        drop(tty);

        // Confirmed after rows 2 (to be replaced), 4 (to be inserted) and 5000 (to be deleted)
        // changed on the replica: those three are left alone, the others fixed.
        let (tty, done) = session("yes");
        tty.wait_for("Apply these");
        drift(
            n2,
            "UPDATE t.x SET v = 'changed meanwhile' WHERE id = 2; \
             INSERT INTO t.x VALUES (4, 'inserted meanwhile'); \
             UPDATE t.x SET v = 'extra, changed meanwhile' WHERE id = 5000",
        );
        tty.keys(&["y"]);
        let code = tty.exit_code(&done, Duration::from_secs(120));
        let pane = tty.pane();
        assert_eq!(
            code, "11",
            "{flavor}: some rows were left different:\n{pane}"
        );
        for key in ["t.x id=2", "t.x id=4", "t.x id=5000"] {
            assert_eq!(
                pane.matches(&format!("left alone (changed since it was read): {key}\n"))
                    .count(),
                1,
                "{flavor}: {key} reported once:\n{pane}"
            );
        }
        assert!(
            pane.contains("3 row(s) still differ"),
            "{flavor}: 3 keys still differ:\n{pane}"
        );
        drop(tty);
        let q = "SELECT id, v FROM t.x WHERE id IN (1, 2, 3, 4, 5000, 5001) ORDER BY id";
        let s = |r: &[(&str, &str)]| -> Vec<Vec<Option<String>>> {
            r.iter()
                .map(|(a, b)| vec![Some(a.to_string()), Some(b.to_string())])
                .collect()
        };
        assert_eq!(
            n2.query_rows(q).unwrap(),
            s(&[
                ("1", "v1"),
                ("2", "changed meanwhile"),
                ("3", "v3"),
                ("4", "inserted meanwhile"),
                ("5000", "extra, changed meanwhile"),
            ]),
            "{flavor}"
        );
        let rows = |r: &[(&str, &str)]| -> Vec<Vec<Option<String>>> { s(r) };
        assert_eq!(
            journaled(&journal.display().to_string()),
            {
                let mut w = entries(
                    "delete",
                    n2,
                    "t.x",
                    rows(&[("1", "drift"), ("3", "drift"), ("5001", "extra")]),
                );
                w.extend(entries(
                    "insert",
                    n2,
                    "t.x",
                    rows(&[("1", "v1"), ("3", "v3")]),
                ));
                w.sort();
                w
            },
            "{flavor}: only the rows written are journaled"
        );
        let (run, r) = verify(n2, &["--tables", "t.x"]);
        assert_eq!(run.code, exit::DRIFT, "{flavor}: {r}");
        assert_drift(
            table(&r, "t", "x"),
            vec![],
            vec![id(5000)],
            vec![different(id(2), &["v"]), different(id(4), &["v"])],
            &format!("{flavor}: the rows left alone"),
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Tables without a usable key; winners other than the source on a plain replica.

#[test]
fn a_table_without_a_key_is_refused_by_name_and_the_others_are_fixed() {
    for flavor in FLAVORS {
        let sb = started(flavor, Topology::SourceReplica);
        let (n1, n2) = (sb.node("n1"), sb.node("n2"));
        n1.exec(
            "CREATE DATABASE shop; CREATE DATABASE logs; \
             CREATE TABLE shop.items (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL); \
             CREATE TABLE logs.events (at INT NOT NULL, msg VARCHAR(30)); \
             CREATE TABLE logs.tagged (tag INT NULL, msg VARCHAR(30), UNIQUE KEY (tag))",
        )
        .unwrap();
        insert(
            n1,
            "shop.items",
            (1..=3000).map(|i| format!("({i}, 'v{i}')")),
        );
        insert(
            n1,
            "logs.events",
            (1..=500).map(|i| format!("({i}, 'msg-{i}')")),
        );
        insert(
            n1,
            "logs.tagged",
            (1..=50).map(|i| format!("({i}, 't{i}')")),
        );
        n2.wait_caught_up(CATCH_UP).unwrap();
        drift(
            n2,
            "UPDATE shop.items SET v = 'drift' WHERE id = 77; \
             DELETE FROM shop.items WHERE id = 78; \
             INSERT INTO logs.events VALUES (42, 'msg-42'); \
             INSERT INTO logs.tagged VALUES (NULL, 'no tag')",
        );
        let sums = |n: &Node| {
            [("logs", "events"), ("logs", "tagged"), ("shop", "items")]
                .map(|(d, t)| checksum(n, d, t))
        };
        let (before1, before2) = (sums(n1), sums(n2));
        let (b1, b2) = (binlog(n1), binlog(n2));

        // Winners other than the source need a dual-master pair: refused, in a sentence.
        for winner in ["replica", "newest:v"] {
            for format in ["text", "json"] {
                let run = resync(n2, &["--winner", winner, "--yes", "--format", format]);
                assert_eq!(
                    run.code,
                    exit::BAD_INPUT,
                    "{flavor} {winner}: {}{}",
                    run.stdout,
                    run.stderr
                );
                let said = format!("{}{}", run.stdout, run.stderr);
                assert!(
                    said.contains(&format!(
                        "--winner {winner} needs a dual-master pair: on a plain replica only the source's rows can win"
                    )),
                    "{flavor}: {said}"
                );
                assert_words(&run, winner);
                if format == "json" {
                    assert_eq!(run.json()["exit_code"], 8);
                }
            }
        }
        assert_eq!((sums(n1), sums(n2)), (before1.clone(), before2.clone()));

        let journal = journal_path(&format!("keyless-{flavor}"));
        let (run, out) = resync_json(n2, &["--yes", "--journal", &journal]);
        assert_eq!(run.code, exit::DRIFT, "{flavor}: {out}\n{}", run.stderr);
        let refused: Vec<&str> = out["refused"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        assert_eq!(refused.len(), 2, "{flavor}: {out}");
        for (i, name) in ["logs.events", "logs.tagged"].iter().enumerate() {
            assert!(
                refused[i].starts_with(&format!("{name}: no primary key or NOT NULL unique key")),
                "{flavor}: {refused:?}"
            );
        }
        assert_eq!(out["remaining"], 0, "{flavor}: {out}");
        let after2 = sums(n2);
        assert_eq!(after2[2], before1[2], "{flavor}: shop.items fixed");
        assert_eq!(
            after2[..2],
            before2[..2],
            "{flavor}: the keyless tables are left alone"
        );
        assert_eq!(sums(n1), before1, "{flavor}: the source is not touched");
        assert_eq!((binlog(n1), binlog(n2)), (b1, b2), "{flavor}: binlogs");
        assert_eq!(
            journaled_rows(&journal),
            3,
            "{flavor}: id 77 replaced, 78 inserted"
        );
        let (run, r) = verify(n2, &[]);
        assert_eq!(run.code, exit::DRIFT, "{flavor}: {r}");
        assert_eq!(
            r["summary"]["drifted"], 2,
            "{flavor}: the keyless tables only: {r}"
        );

        // In text too, and with only the keyless table asked for: refused by name, exit 11,
        // never "the rows already agree".
        let run = resync(
            n2,
            &["--yes", "--tables", "logs.events", "--journal", &journal],
        );
        assert_eq!(
            run.code,
            exit::DRIFT,
            "{flavor}: {}{}",
            run.stdout,
            run.stderr
        );
        assert!(
            run.stdout
                .contains("left alone: logs.events: no primary key or NOT NULL unique key"),
            "{flavor}: {}",
            run.stdout
        );
        assert!(
            !run.stdout.contains("the rows already agree")
                && run.stdout.contains("the tables left alone still differ"),
            "{flavor}: logs.events still differs:\n{}",
            run.stdout
        );
        assert_eq!(sums(n2), after2, "{flavor}");
        let _ = std::fs::remove_file(&journal);
    }
}

// ---------------------------------------------------------------------------------------------
// 5. Hostile identifiers, a composite key, GBK and latin1.

/// Every row of a table as the hex of each column, in a stable order: equal means equal bytes.
fn hex_rows(n: &Node, table: &str, cols: &[&str]) -> Vec<Vec<Option<String>>> {
    let list: Vec<String> = cols.iter().map(|c| format!("HEX({})", ident(c))).collect();
    n.query_rows(&format!(
        "SELECT {} FROM {table} ORDER BY {}",
        list.join(", "),
        list.join(", ")
    ))
    .unwrap()
}

#[test]
fn composite_key_with_hostile_identifiers_and_gbk_and_latin1_tables() {
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
                 UPDATE shop_latin1.clients SET name = 'Zoé' WHERE code = 'Société-€0500'; \
                 DELETE FROM shop_latin1.clients WHERE code = 'Société-€0501'; \
                 INSERT INTO shop_latin1.clients VALUES ('Ærø-€', 'Çà')",
                lit(&code(5)),
                lit(&code(100)),
                lit(&code(100)),
                lit(&code(7)),
                cv = ident(cv),
                ck = ident(ck),
                cn = ident(cn),
            ),
        );
        let tables: [(&str, &[&str]); 3] = [
            (&t, &[ck, cn, cv]),
            ("shop_gbk.orders", &["order_no", "customer", "note"]),
            ("shop_latin1.clients", &["code", "name"]),
        ];
        let dump = |n: &Node| -> Vec<Vec<Vec<Option<String>>>> {
            tables.iter().map(|(t, c)| hex_rows(n, t, c)).collect()
        };
        let (source, drifted) = (dump(n1), dump(n2));
        for i in 0..3 {
            assert_ne!(source[i], drifted[i], "{flavor}: table {i} drifted");
        }
        let (b1, b2) = (binlog(n1), binlog(n2));
        let dbs = format!("{db},shop_gbk,shop_latin1");

        let run = resync(n2, &["--databases", &dbs, "--dry-run"]);
        assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
        assert!(
            run.stdout
                .contains(&format!("DELETE FROM {t} WHERE {} <=> ", ident(ck)))
                && run.stdout.contains(&format!(" AND {} <=> ?;", ident(cn))),
            "{flavor}: identifiers quoted in the plan:\n{}",
            run.stdout
        );
        assert_eq!(dump(n2), drifted, "{flavor}: the dry run changed nothing");

        let journal = journal_path(&format!("hostile-{flavor}"));
        let (run, out) = resync_json(n2, &["--databases", &dbs, "--yes", "--journal", &journal]);
        assert_eq!(run.code, exit::OK, "{flavor}: {out}\n{}", run.stderr);
        assert_eq!(out["remaining"], 0, "{flavor}: {out}");
        assert_eq!(dump(n2), source, "{flavor}: the same bytes as the source");
        assert_eq!(dump(n1), source, "{flavor}: the source is not touched");
        assert_eq!(
            (binlog(n1), binlog(n2)),
            (b1.clone(), b2.clone()),
            "{flavor}"
        );
        // hostile: 3 replaced + 1 inserted + 3 deleted; gbk: 1 replaced + 1 + 1; latin1: 1 + 1 + 1.
        assert_eq!(
            journaled_rows(&journal),
            3 * 2 + 1 + 3 + 2 + 1 + 1 + 2 + 1 + 1,
            "{flavor}"
        );
        let (run, r) = verify(n2, &["--databases", &dbs]);
        assert_eq!(run.code, exit::OK, "{flavor}: {r}");

        let restore = replmend(&[
            "restore",
            &journal,
            "--replica",
            &n2.url(),
            "--format",
            "json",
        ]);
        assert_eq!(
            restore.code,
            exit::OK,
            "{flavor}: {}{}",
            restore.stdout,
            restore.stderr
        );
        assert_eq!(
            dump(n2),
            drifted,
            "{flavor}: restore gives back the same bytes"
        );
        assert_eq!((binlog(n1), binlog(n2)), (b1, b2), "{flavor}");
        let _ = std::fs::remove_file(&journal);
    }
}

// ---------------------------------------------------------------------------------------------
// 6. A dual-master pair: --winner replica, --winner newest:COLUMN.

const DM_ROW: &str = "SELECT id, v, ver, updated_at FROM dm.t";

fn dm_rows(n: &Node, ids: &[i64]) -> Vec<Vec<Option<String>>> {
    let list: Vec<String> = ids.iter().map(i64::to_string).collect();
    n.query_rows(&format!(
        "{DM_ROW} WHERE id IN ({}) ORDER BY id",
        list.join(", ")
    ))
    .unwrap()
}

#[test]
fn dual_master_winner_replica_and_newest() {
    for flavor in FLAVORS {
        let sb = started(flavor, Topology::DualMaster);
        let (n1, n2) = (sb.node("n1"), sb.node("n2"));
        n1.exec(
            "CREATE DATABASE dm; CREATE TABLE dm.t (id INT PRIMARY KEY, v VARCHAR(40) NOT NULL, \
               ver INT NOT NULL, updated_at DATETIME(6) NOT NULL)",
        )
        .unwrap();
        insert(
            n1,
            "dm.t",
            (1..=3000).map(|i| format!("({i}, 'v{i}', 1, '2024-01-01 00:00:00')")),
        );
        n2.wait_caught_up(CATCH_UP).unwrap();
        n1.wait_caught_up(CATCH_UP).unwrap();
        let sum = |n: &Node| checksum(n, "dm", "t");

        // --winner replica: n1 is made equal to n2; n2 is not touched.
        drift(
            n2,
            "UPDATE dm.t SET v = 'n2 version', ver = 2 WHERE id = 5; \
             DELETE FROM dm.t WHERE id = 7; \
             INSERT INTO dm.t VALUES (9999, 'n2 only', 1, '2024-01-02 00:00:00')",
        );
        let (s1, s2) = (sum(n1), sum(n2));
        assert_ne!(s1, s2);
        let (b1, b2) = (binlog(n1), binlog(n2));
        let n1_rows = dm_rows(n1, &[5, 7]);
        let n2_rows = dm_rows(n2, &[5, 9999]);
        let journal = journal_path(&format!("dm-replica-{flavor}"));
        let (run, out) = resync_json(n2, &["--winner", "replica", "--yes", "--journal", &journal]);
        assert_eq!(run.code, exit::OK, "{flavor}: {out}\n{}", run.stderr);
        assert_eq!(
            out["plan"]["winner_endpoint"],
            endpoint(n2),
            "{flavor}: {out}"
        );
        for s in out["plan"]["steps"].as_array().unwrap() {
            assert_eq!(
                s["endpoint"],
                endpoint(n1),
                "{flavor}: only n1 is written: {s}"
            );
        }
        assert_eq!(sum(n2), s2, "{flavor}: n2 (the winner) is not touched");
        assert_eq!(sum(n1), s2, "{flavor}: n1 now equals n2");
        assert_eq!(
            (binlog(n1), binlog(n2)),
            (b1.clone(), b2.clone()),
            "{flavor}: nothing written to either binlog (it would replicate back)"
        );
        let mut want = entries("delete", n1, "dm.t", n1_rows);
        want.extend(entries("insert", n1, "dm.t", n2_rows));
        want.sort();
        assert_eq!(journaled(&journal), want, "{flavor}");
        let (run, r) = verify(n2, &[]);
        assert_eq!(run.code, exit::OK, "{flavor}: {r}");

        // --winner newest:ver: per row, the larger version (as numbers: 10 > 9); a row on one
        // node only is copied to the other.
        drift(
            n1,
            "UPDATE dm.t SET v = 'n1 newer', ver = 5 WHERE id = 100; \
             UPDATE dm.t SET v = 'n1 older', ver = 2 WHERE id = 200; \
             UPDATE dm.t SET v = 'n1 nine', ver = 9 WHERE id = 800",
        );
        drift(
            n2,
            "UPDATE dm.t SET v = 'n2 older', ver = 3 WHERE id = 100; \
             UPDATE dm.t SET v = 'n2 newer', ver = 9 WHERE id = 200; \
             UPDATE dm.t SET v = 'n2 ten', ver = 10 WHERE id = 800; \
             INSERT INTO dm.t VALUES (3300, 'n2 only', 1, '2024-01-03 00:00:00'); \
             DELETE FROM dm.t WHERE id = 400",
        );
        let n1_wins = dm_rows(n1, &[100, 400]);
        let n2_wins = dm_rows(n2, &[200, 800, 3300]);
        let (b1, b2) = (binlog(n1), binlog(n2));
        let run = resync(n2, &["--winner", "newest:nope", "--yes"]);
        assert_eq!(
            run.code,
            exit::BAD_INPUT,
            "{flavor}: {}{}",
            run.stdout,
            run.stderr
        );
        assert!(
            run.stderr
                .contains("--winner newest:nope: table dm.t has no column nope"),
            "{flavor}: {}",
            run.stderr
        );
        let journal2 = journal_path(&format!("dm-newest-{flavor}"));
        let (run, out) = resync_json(
            n2,
            &["--winner", "newest:ver", "--yes", "--journal", &journal2],
        );
        assert_eq!(run.code, exit::OK, "{flavor}: {out}\n{}", run.stderr);
        assert_eq!(out["remaining"], 0, "{flavor}: {out}");
        for n in [n1, n2] {
            assert_eq!(dm_rows(n, &[100, 400]), n1_wins, "{flavor} {}", n.name);
            assert_eq!(
                dm_rows(n, &[200, 800, 3300]),
                n2_wins,
                "{flavor} {}",
                n.name
            );
        }
        assert_eq!(sum(n1), sum(n2), "{flavor}");
        assert_eq!((binlog(n1), binlog(n2)), (b1, b2), "{flavor}");
        let done = journaled(&journal2);
        let one_node_only: Vec<&Journaled> = done
            .iter()
            .filter(|e| matches!(e.row[0].as_deref(), Some("400" | "3300")))
            .collect();
        assert_eq!(one_node_only.len(), 2, "{flavor}: {done:?}");
        assert!(
            one_node_only.iter().all(|e| e.action == "insert"),
            "{flavor}: newest never deletes a row on one node only: {done:?}"
        );

        // --winner newest:updated_at: the column named decides, not another (ver says the
        // opposite for both rows).
        drift(
            n1,
            "UPDATE dm.t SET v = 'n1 older by time', ver = 50, \
               updated_at = '2024-06-01 12:00:00.000000' WHERE id = 600; \
             UPDATE dm.t SET v = 'n1 newer by time', ver = 1, \
               updated_at = '2025-01-01 00:00:00.000000' WHERE id = 700",
        );
        drift(
            n2,
            "UPDATE dm.t SET v = 'n2 newer by time', ver = 1, \
               updated_at = '2024-06-01 12:00:00.500000' WHERE id = 600; \
             UPDATE dm.t SET v = 'n2 older by time', ver = 99, \
               updated_at = '2024-12-31 23:59:59.999999' WHERE id = 700",
        );
        let (from_n2, from_n1) = (dm_rows(n2, &[600]), dm_rows(n1, &[700]));
        let journal3 = journal_path(&format!("dm-time-{flavor}"));
        let (run, out) = resync_json(
            n2,
            &[
                "--winner",
                "newest:updated_at",
                "--yes",
                "--journal",
                &journal3,
            ],
        );
        assert_eq!(run.code, exit::OK, "{flavor}: {out}\n{}", run.stderr);
        for n in [n1, n2] {
            assert_eq!(dm_rows(n, &[600]), from_n2, "{flavor} {}", n.name);
            assert_eq!(dm_rows(n, &[700]), from_n1, "{flavor} {}", n.name);
        }
        let (run, r) = verify(n2, &[]);
        assert_eq!(run.code, exit::OK, "{flavor}: {r}");
        for f in [&journal, &journal2, &journal3] {
            let _ = std::fs::remove_file(f);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 7. A read-only replica.

fn dba_grants(flavor: Flavor) -> &'static str {
    // The documented DBA account (docs/privileges.md), without READ_ONLY ADMIN on MariaDB.
    match flavor {
        Flavor::MariaDb => {
            "SELECT, INSERT, DELETE, SUPER, REPLICATION SLAVE, REPLICATION SLAVE ADMIN, SLAVE MONITOR, BINLOG ADMIN, BINLOG MONITOR"
        }
        Flavor::MySql => {
            "SELECT, INSERT, DELETE, REPLICATION SLAVE, REPLICATION CLIENT, REPLICATION_SLAVE_ADMIN, SYSTEM_VARIABLES_ADMIN"
        }
    }
}

#[test]
fn read_only_replica_refused_by_the_preflight_unless_lift_read_only() {
    for flavor in FLAVORS {
        let sb = started(flavor, Topology::SourceReplica);
        let (n1, n2) = (sb.node("n1"), sb.node("n2"));
        n1.exec(
            "CREATE DATABASE ro; CREATE TABLE ro.t (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL)",
        )
        .unwrap();
        insert(n1, "ro.t", (1..=1000).map(|i| format!("({i}, 'v{i}')")));
        n2.wait_caught_up(CATCH_UP).unwrap();
        drift(
            n2,
            "UPDATE ro.t SET v = 'drift' WHERE id = 10; DELETE FROM ro.t WHERE id = 11; \
             INSERT INTO ro.t VALUES (5000, 'extra')",
        );
        // MariaDB: root holds READ_ONLY ADMIN and may write on a read_only node; the
        // documented DBA account does not. MySQL: super_read_only stops every account.
        let (ro_on, check, url) = match flavor {
            Flavor::MariaDb => {
                for n in [n1, n2] {
                    n.exec(&format!(
                        "SET SESSION sql_log_bin = 0; CREATE USER 'dba'@'127.0.0.1'; \
                         GRANT {} ON *.* TO 'dba'@'127.0.0.1'",
                        dba_grants(flavor)
                    ))
                    .unwrap();
                }
                (
                    "SET GLOBAL read_only = ON",
                    "SELECT @@global.read_only",
                    n2.url().replace("root@", "dba@"),
                )
            }
            Flavor::MySql => (
                "SET GLOBAL super_read_only = ON",
                "SELECT CONCAT(@@global.read_only, @@global.super_read_only)",
                n2.url(),
            ),
        };
        n2.exec(ro_on).unwrap();
        let ro_value = n2.query_value(check).unwrap();
        let (s1, s2) = (checksum(n1, "ro", "t"), checksum(n2, "ro", "t"));
        assert_ne!(s1, s2);
        let (b1, b2) = (binlog(n1), binlog(n2));
        let journal = journal_path(&format!("ro-{flavor}"));

        let run = resync_as(&url, &["--yes", "--journal", &journal]);
        assert_eq!(
            run.code,
            exit::REFUSED,
            "{flavor}: refused by the preflight: {}{}",
            run.stdout,
            run.stderr
        );
        let variable = match flavor {
            Flavor::MariaDb => "read_only=ON",
            Flavor::MySql => "super_read_only=ON",
        };
        assert!(
            run.stderr
                .contains("preflight refused the plan, nothing was changed")
                && run.stderr.contains(variable)
                && run.stderr.contains("--lift-read-only"),
            "{flavor}: {}",
            run.stderr
        );
        assert_words(&run, "read-only");
        assert_eq!(checksum(n2, "ro", "t"), s2, "{flavor}: nothing changed");
        assert_eq!(
            (binlog(n1), binlog(n2)),
            (b1.clone(), b2.clone()),
            "{flavor}"
        );
        assert_eq!(n2.query_value(check).unwrap(), ro_value, "{flavor}");
        assert!(
            !std::path::Path::new(&journal).exists(),
            "{flavor}: no journal line"
        );

        // --lift-read-only (an account that may set read_only): fixed, read_only back on.
        let (run, out) = resync_json(n2, &["--yes", "--lift-read-only", "--journal", &journal]);
        assert_eq!(run.code, exit::OK, "{flavor}: {out}\n{}", run.stderr);
        let actions: Vec<&str> = out["plan"]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["action"].as_str().unwrap())
            .collect();
        assert_eq!(
            actions,
            ["lift_read_only", "resync_rows", "restore_read_only"],
            "{flavor}: {out}"
        );
        assert_eq!(
            n2.query_value(check).unwrap(),
            ro_value,
            "{flavor}: the read-only state is put back exactly"
        );
        assert_eq!(checksum(n2, "ro", "t"), s1, "{flavor}: fixed");
        assert_eq!(checksum(n1, "ro", "t"), s1, "{flavor}");
        assert_eq!((binlog(n1), binlog(n2)), (b1, b2), "{flavor}");
        let text = journal_text(&journal);
        assert!(
            text.contains("\"lift_read_only\"") && text.contains("\"restore_read_only\""),
            "{flavor}: {text}"
        );
        assert_eq!(journaled_rows(&journal), 4, "{flavor}");
        let (run, r) = verify(n2, &[]);
        assert_eq!(run.code, exit::OK, "{flavor}: {r}");
        let _ = std::fs::remove_file(&journal);
    }
}

// A resync right after a verify of the same tables fixes what that verify found without
// hashing the tables again (issue 21): it says so, reads each named row again, and misses
// only drift newer than the verify; --reuse-verify 0 verifies again and finds that too.
#[test]
fn a_resync_right_after_a_verify_fixes_what_it_found_without_hashing_again() {
    for flavor in FLAVORS {
        let sb = items_sandbox(flavor);
        let (n1, n2) = (sb.node("n1"), sb.node("n2"));
        drift(n2, "UPDATE shop.items SET qty = qty + 1 WHERE id = 1234");
        let (run, _) = verify(n2, &["--tables", "shop.items"]);
        assert_eq!(run.code, exit::DRIFT, "{flavor}");
        // Drift after the verify: not in its report.
        drift(n2, "UPDATE shop.items SET qty = qty + 1 WHERE id = 77");
        let journal = journal_path(&format!("reuse-{flavor}"));
        let (run, out) = resync_json(
            n2,
            &["--tables", "shop.items", "--yes", "--journal", &journal],
        );
        assert_eq!(run.code, exit::OK, "{flavor}: {out}\n{}", run.stderr);
        assert_eq!(out["drift_from"]["kind"], "recent", "{flavor}: {out}");
        assert!(
            out["drift_from"]["age_s"].as_u64().is_some_and(|a| a < 600),
            "{flavor}: {out}"
        );
        assert!(
            run.stderr.contains("drift since then is not seen"),
            "{flavor}: {}",
            run.stderr
        );
        assert_eq!(plan_rows(&out), expect_rows(&[1234], &[1234]), "{flavor}");
        assert_eq!(items_at(n2, &[1234]), items_at(n1, &[1234]), "{flavor}");
        assert_ne!(items_at(n2, &[77]), items_at(n1, &[77]), "{flavor}");
        // Verifying again finds the newer drift, and fixes it.
        let (run, out) = resync_json(
            n2,
            &[
                "--tables",
                "shop.items",
                "--reuse-verify",
                "0",
                "--yes",
                "--journal",
                &journal,
            ],
        );
        assert_eq!(run.code, exit::OK, "{flavor}: {out}\n{}", run.stderr);
        assert_eq!(out["drift_from"]["kind"], "verified", "{flavor}: {out}");
        assert_eq!(plan_rows(&out), expect_rows(&[77], &[77]), "{flavor}");
        assert_eq!(checksum(n2, "shop", "items"), checksum(n1, "shop", "items"));
        // A resync that acted used its report up: the next one verifies again.
        let (run, out) = resync_json(n2, &["--tables", "shop.items", "--dry-run"]);
        assert_eq!(run.code, exit::OK, "{flavor}: {out}");
        assert_eq!(out["drift_from"]["kind"], "verified", "{flavor}: {out}");
        assert_eq!(out["plan"]["steps"], json!([]), "{flavor}: {out}");
        sb.stop();
    }
}
