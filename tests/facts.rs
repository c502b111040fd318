//! Every write knows the world it writes into (issue 19), on real servers: keys the server
//! compares under a case-, accent- or pad-insensitive collation, an AUTO_INCREMENT key of 0,
//! a replica whose applier is stopped with events still in its relay log, triggers on the
//! node written, child rows behind a deleted parent, replication filters, tables on one node
//! only. Drift is made with `sql_log_bin = 0`, so it does not replicate.

mod support;

use std::time::Duration;

use replmend_sandbox::{Build, Node};
use serde_json::Value;
use support::*;

const CATCH_UP: Duration = Duration::from_secs(60);

fn binlog(n: &Node) -> Vec<Vec<Option<String>>> {
    let gtid = match n.flavor {
        Flavor::MariaDb => "SELECT @@global.gtid_binlog_pos",
        Flavor::MySql => "SELECT @@global.gtid_executed",
    };
    let mut rows = n.query_rows(gtid).unwrap();
    rows.extend(n.query_rows("SHOW BINARY LOGS").unwrap());
    rows
}

/// The table's rows as hex of every column, sorted: byte-exact, whatever the collation.
fn hex_rows(n: &Node, table: &str, cols: &[&str]) -> Vec<String> {
    let select: Vec<String> = cols.iter().map(|c| format!("HEX(`{c}`)")).collect();
    let mut rows: Vec<String> = n
        .query_rows(&format!("SELECT {} FROM {table}", select.join(", ")))
        .unwrap()
        .into_iter()
        .map(|r| {
            r.into_iter()
                .map(|v| v.unwrap_or_else(|| "NULL".into()))
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect();
    rows.sort();
    rows
}

fn run_json(args: &[&str]) -> (Run, Value) {
    let mut all = args.to_vec();
    all.extend_from_slice(&["--format", "json"]);
    let run = replmend(&all);
    let v = run.json();
    (run, v)
}

/// `replmend COMMAND --replica URL --yes --journal JOURNAL` with more arguments.
fn yes(command: &str, url: &str, journal: &str, more: &[&str]) -> Run {
    let mut args = vec![command, "--replica", url, "--yes", "--journal", journal];
    args.extend_from_slice(more);
    replmend(&args)
}

/// `resync --yes` of the replica at `url`, journaled to `journal`, with more arguments.
fn resync_yes(url: &str, journal: &str, more: &[&str]) -> Run {
    yes("resync", url, journal, more)
}

fn restore(journal: &str, replica: &Node) -> Run {
    replmend(&["restore", journal, "--replica", &replica.url()])
}

// ---------------------------------------------------------------------------------------------
// Keys equal under the column's collation but not byte-equal.

/// Source rows, and the replica's versions of three of them under keys its collation calls
/// equal: case (`abc`/`ABC`), trailing space under PAD SPACE (`pad`/`pad `), accent (`e`/`é`).
fn collation_drift(source: &Node, replica: &Node, collation: &str) {
    source
        .exec(&format!(
            "CREATE DATABASE coll; \
             CREATE TABLE coll.k (k VARCHAR(20) CHARACTER SET utf8mb4 COLLATE {collation} PRIMARY KEY, \
               v INT NOT NULL); \
             INSERT INTO coll.k VALUES ('abc', 1), ('pad', 2), ('e', 3), ('same', 4)"
        ))
        .unwrap();
    replica.wait_caught_up(CATCH_UP).unwrap();
    drift(
        replica,
        "UPDATE coll.k SET k = 'ABC' WHERE k = 'abc'; \
         UPDATE coll.k SET k = 'pad ' WHERE k = 'pad'; \
         UPDATE coll.k SET k = _utf8mb4 0xC3A9, v = 30 WHERE k = 'e'",
    );
}

/// verify calls each collation-equal pair one different row naming both keys; resync fixes
/// each in one transaction, leaving the source's exact bytes; restore gives the drift back.
fn collation_keys_are_one_row(build: Build, collation: &str, pairs: usize) {
    let sb = started(build, Topology::SourceReplica);
    let (n1, n2) = (sb.node("n1"), sb.node("n2"));
    collation_drift(n1, n2, collation);
    let cols = ["k", "v"];
    let (drifted, source) = (hex_rows(n2, "coll.k", &cols), hex_rows(n1, "coll.k", &cols));
    assert_ne!(drifted, source);
    let url = n2.url();
    let (run, r) = run_json(&["verify", "--replica", &url, "--tables", "coll.k"]);
    assert_eq!(run.code, exit::DRIFT, "{build}: {r}");
    let t = table(&r, "coll", "k");
    assert_eq!(
        (
            t["missing"].as_u64(),
            t["extra"].as_u64(),
            t["different"].as_u64()
        ),
        (Some(0), Some(0), Some(pairs as u64)),
        "{build} {collation}: {t}"
    );
    for d in t["different_rows"].as_array().unwrap() {
        assert!(d["replica_key"].is_array(), "{build}: key bytes named: {d}");
        assert!(
            d["columns"].as_array().unwrap().contains(&Value::from("k")),
            "{d}"
        );
    }
    let journal = journal_path(&format!("coll-{build}"));
    let run = resync_yes(&url, &journal, &["--tables", "coll.k"]);
    assert_eq!(run.code, exit::OK, "{build}: {}{}", run.stdout, run.stderr);
    assert_eq!(
        hex_rows(n2, "coll.k", &cols),
        source,
        "{build}: the source's exact bytes"
    );
    assert_eq!(
        journaled_rows(&journal),
        2 * pairs,
        "{build}: a delete and an insert per row"
    );
    let (run, r) = run_json(&["verify", "--replica", &url, "--tables", "coll.k"]);
    assert_eq!(run.code, exit::OK, "{build}: {r}");
    let run = restore(&journal, n2);
    assert_eq!(run.code, exit::OK, "{build}: {}{}", run.stdout, run.stderr);
    assert_eq!(
        hex_rows(n2, "coll.k", &cols),
        drifted,
        "{build}: restore gives the drift back"
    );
    sb.stop();
}

#[test]
fn collation_equal_keys_are_one_different_row_fixed_in_one_transaction() {
    for build in [Build::Host, Build::MySql] {
        collation_keys_are_one_row(build, "utf8mb4_general_ci", 3);
    }
}

/// MariaDB 11.8's default collation (utf8mb4_uca1400_ai_ci: accent- and case-insensitive,
/// NO PAD), as a table created without naming one gets it.
#[test]
fn mariadb_118_default_collation_accented_keys() {
    let sb = started(Build::MariaDb118, Topology::SourceReplica);
    let (n1, n2) = (sb.node("n1"), sb.node("n2"));
    n1.exec(
        "CREATE DATABASE cafe CHARACTER SET utf8mb4; \
         CREATE TABLE cafe.k (k VARCHAR(20) PRIMARY KEY, v INT NOT NULL); \
         INSERT INTO cafe.k VALUES ('cafe', 1), ('the', 2), ('Zoë', 3), ('x', 4)",
    )
    .unwrap();
    let collation = n1
        .query_value(
            "SELECT COLLATION_NAME FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = 'cafe' AND TABLE_NAME = 'k' AND COLUMN_NAME = 'k'",
        )
        .unwrap();
    assert_eq!(collation.as_deref(), Some("utf8mb4_uca1400_ai_ci"));
    n2.wait_caught_up(CATCH_UP).unwrap();
    drift(
        n2,
        "UPDATE cafe.k SET k = 'café' WHERE k = 'cafe'; \
         UPDATE cafe.k SET k = 'THE' WHERE k = 'the'; \
         UPDATE cafe.k SET k = 'zoe', v = 9 WHERE v = 3",
    );
    let cols = ["k", "v"];
    let (drifted, source) = (hex_rows(n2, "cafe.k", &cols), hex_rows(n1, "cafe.k", &cols));
    let url = n2.url();
    let journal = journal_path("cafe-118");
    let run = resync_yes(&url, &journal, &[]);
    assert_eq!(run.code, exit::OK, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        hex_rows(n2, "cafe.k", &cols),
        source,
        "4 rows, the source's bytes"
    );
    assert_eq!(journaled_rows(&journal), 6);
    let run = restore(&journal, n2);
    assert_eq!(run.code, exit::OK, "{}{}", run.stdout, run.stderr);
    assert_eq!(hex_rows(n2, "cafe.k", &cols), drifted);
    sb.stop();
}

// ---------------------------------------------------------------------------------------------
// An AUTO_INCREMENT key of 0, written under NO_AUTO_VALUE_ON_ZERO.

#[test]
fn a_missing_row_with_auto_increment_key_zero_is_written_as_zero_and_restored() {
    for flavor in FLAVORS {
        let sb = started(flavor, Topology::SourceReplica);
        let (n1, n2) = (sb.node("n1"), sb.node("n2"));
        n1.exec(
            "CREATE DATABASE z; \
             CREATE TABLE z.t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(10) NOT NULL); \
             SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_AUTO_VALUE_ON_ZERO'); \
             INSERT INTO z.t VALUES (0, 'zero'), (1, 'one'), (2, 'two')",
        )
        .unwrap();
        n2.wait_caught_up(CATCH_UP).unwrap();
        drift(n2, "DELETE FROM z.t WHERE id = 0");
        let cols = ["id", "v"];
        let (drifted, source) = (hex_rows(n2, "z.t", &cols), hex_rows(n1, "z.t", &cols));
        let (url, journal) = (n2.url(), journal_path(&format!("zero-{flavor}")));
        let logged = binlog(n2);
        let run = resync_yes(&url, &journal, &[]);
        assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
        assert_eq!(
            hex_rows(n2, "z.t", &cols),
            source,
            "{flavor}: key 0 written as 0"
        );
        let run = restore(&journal, n2);
        assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
        assert_eq!(
            hex_rows(n2, "z.t", &cols),
            drifted,
            "{flavor}: no stray row left"
        );
        assert_eq!(
            binlog(n2),
            logged,
            "{flavor}: nothing reached the binary log"
        );
        sb.stop();
    }
}

/// A second UNIQUE key: the replica holds the source's `a@x` under another id, and two rows'
/// emails swapped. Every delete runs before any insert, so the missing row's value is free
/// when it is inserted; the journal restores the drift, and a second restore finds it there.
#[test]
fn resync_frees_a_unique_value_before_a_missing_row_takes_it() {
    for flavor in FLAVORS {
        let sb = started(flavor, Topology::SourceReplica);
        let (n1, n2) = (sb.node("n1"), sb.node("n2"));
        n1.exec(
            "CREATE DATABASE uq; \
             CREATE TABLE uq.t (id INT PRIMARY KEY, email VARCHAR(30) NOT NULL, UNIQUE KEY (email)); \
             INSERT INTO uq.t VALUES (1, 'a@x'), (5, 'b@x'), (6, 'c@x'), (7, 'd@x')",
        )
        .unwrap();
        n2.wait_caught_up(CATCH_UP).unwrap();
        drift(
            n2,
            "UPDATE uq.t SET id = 2 WHERE id = 1; UPDATE uq.t SET email = 'tmp' WHERE id = 6; \
             UPDATE uq.t SET email = 'c@x' WHERE id = 7; UPDATE uq.t SET email = 'd@x' WHERE id = 6",
        );
        let cols = ["id", "email"];
        let (drifted, source) = (hex_rows(n2, "uq.t", &cols), hex_rows(n1, "uq.t", &cols));
        let (url, journal) = (n2.url(), journal_path(&format!("unique-{flavor}")));
        let run = resync_yes(&url, &journal, &[]);
        assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
        assert_eq!(hex_rows(n2, "uq.t", &cols), source, "{flavor}");
        let run = restore(&journal, n2);
        assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
        assert_eq!(hex_rows(n2, "uq.t", &cols), drifted, "{flavor}");
        let run = restore(&journal, n2);
        assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
        assert!(
            !run.stdout.contains("restored "),
            "{flavor}: everything already back: {}",
            run.stdout
        );
        assert_eq!(hex_rows(n2, "uq.t", &cols), drifted, "{flavor}");
        // Rows 1 and 600 swapped their addresses, 598 rows between them differ too: more
        // than one step's rows, and each of the two inserts needs the other's delete first.
        n1.exec(
            "CREATE TABLE uq.big (id INT PRIMARY KEY, email VARCHAR(30) NOT NULL, v INT NOT NULL, UNIQUE KEY (email)); \
             INSERT INTO uq.big SELECT seq, CONCAT('u', seq, '@x'), 0 FROM \
               (WITH RECURSIVE s(seq) AS (SELECT 1 UNION ALL SELECT seq + 1 FROM s WHERE seq < 600) SELECT seq FROM s) q",
        )
        .unwrap();
        n2.wait_caught_up(CATCH_UP).unwrap();
        drift(
            n2,
            "UPDATE uq.big SET v = 1; UPDATE uq.big SET email = 'tmp' WHERE id = 1; \
             UPDATE uq.big SET email = 'u1@x' WHERE id = 600; UPDATE uq.big SET email = 'u600@x' WHERE id = 1",
        );
        let cols = ["id", "email", "v"];
        let (drifted, source) = (hex_rows(n2, "uq.big", &cols), hex_rows(n1, "uq.big", &cols));
        // A column with an expression default (MySQL calls it DEFAULT_GENERATED) is written
        // with the source's value, not the default: the missing row keeps its 2001 stamp.
        n1.exec(
            "CREATE TABLE uq.stamp (id INT PRIMARY KEY, at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)); \
             INSERT INTO uq.stamp VALUES (1, '2001-02-03 04:05:06.789')",
        )
        .unwrap();
        n2.wait_caught_up(CATCH_UP).unwrap();
        drift(n2, "DELETE FROM uq.stamp");
        let run = replmend(&["resync", "--replica", &url, "--yes", "--tables", "uq.stamp"]);
        assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
        assert_eq!(
            hex_rows(n2, "uq.stamp", &["id", "at"]),
            hex_rows(n1, "uq.stamp", &["id", "at"]),
            "{flavor}"
        );
        let journal = journal_path(&format!("unique-swap-{flavor}"));
        let run = resync_yes(&url, &journal, &["--tables", "uq.big"]);
        assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
        assert_eq!(hex_rows(n2, "uq.big", &cols), source, "{flavor}");
        let run = restore(&journal, n2);
        assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
        assert_eq!(hex_rows(n2, "uq.big", &cols), drifted, "{flavor}");
        sb.stop();
    }
}

// ---------------------------------------------------------------------------------------------
// A remedy that leaves the versions apart says so.

/// `keep` on the seed pair (each node keeps its own version): the rows are compared after the
/// repair, found different, named, and the report names `resync`; JSON `rows_agree` is false.
#[test]
fn keep_reports_the_rows_it_leaves_different_never_identical() {
    for flavor in FLAVORS {
        let sb = incident(flavor, Topology::DualMaster, "seed-dual-master-1062");
        let n2 = sb.node("n2");
        let journal = journal_path(&format!("keep-{flavor}"));
        let args = [
            "repair",
            "--replica",
            &n2.url(),
            "--yes",
            "--remedy",
            "keep",
            "--allow-data-loss",
            "--journal",
            &journal,
        ];
        let mut json_args = args.to_vec();
        json_args.extend(["--format", "json"]);
        let run = replmend(&json_args);
        assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
        let j = run.json();
        let applied = &j["incidents"][0]["applied"];
        assert_eq!(applied["rows_agree"], false, "{flavor}: {j}");
        let differ = applied["rows_differ"].as_array().expect("rows_differ");
        assert_eq!(differ.len(), 1, "{flavor}: {j}");
        assert!(differ[0].as_str().unwrap().starts_with("id="), "{differ:?}");
        let (run, r) = run_json(&[
            "verify",
            "--replica",
            &n2.url(),
            "--tables",
            "zeus.xinyan_cache",
        ]);
        assert_eq!(
            run.code,
            exit::DRIFT,
            "{flavor}: verify agrees they differ: {r}"
        );
        sb.stop();
    }
}

// ---------------------------------------------------------------------------------------------
// A replica whose applier is stopped with events still in its relay log.

fn stop_applier(n: &Node) {
    n.exec(match n.flavor {
        Flavor::MariaDb => "STOP SLAVE SQL_THREAD",
        Flavor::MySql => "STOP REPLICA SQL_THREAD",
    })
    .unwrap();
}

fn count(n: &Node, sql: &str) -> u64 {
    n.query_value(sql).unwrap().unwrap().parse().unwrap()
}

/// Waits until the replica's receiver has events its stopped applier has not applied.
fn wait_received(n: &Node) {
    for _ in 0..100 {
        let s = n.replica_status().unwrap().expect("a replica");
        let get = |a: &str, b: &str| s.get(a).or_else(|| s.get(b)).cloned().flatten();
        let read = get("Read_Source_Log_Pos", "Read_Master_Log_Pos");
        let exec = get("Exec_Source_Log_Pos", "Exec_Master_Log_Pos");
        if read.is_some() && read != exec {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{}: nothing arrived in the relay log", n.name);
}

#[test]
fn resync_refuses_while_the_applier_is_stopped_with_events_pending() {
    for flavor in FLAVORS {
        let sb = started(flavor, Topology::SourceReplica);
        let (n1, n2) = (sb.node("n1"), sb.node("n2"));
        n1.exec(
            "CREATE DATABASE p; CREATE TABLE p.t (id INT PRIMARY KEY, v INT NOT NULL); \
             INSERT INTO p.t VALUES (1, 1), (2, 2)",
        )
        .unwrap();
        n2.wait_caught_up(CATCH_UP).unwrap();
        stop_applier(n2);
        n1.exec("INSERT INTO p.t VALUES (3, 3), (4, 4); UPDATE p.t SET v = 20 WHERE id = 2")
            .unwrap();
        wait_received(n2);
        let url = n2.url();
        let journal = journal_path(&format!("pending-{flavor}"));
        let run = resync_yes(&url, &journal, &[]);
        assert_eq!(
            run.code,
            exit::REFUSED,
            "{flavor}: {}{}",
            run.stdout,
            run.stderr
        );
        assert!(
            run.stderr.contains("relay log") && run.stderr.contains("--allow-pending-relay"),
            "{flavor}: one sentence naming the option: {}",
            run.stderr
        );
        assert_eq!(
            count(n2, "SELECT COUNT(*) FROM p.t"),
            2,
            "{flavor}: nothing written"
        );
        assert!(
            !std::path::Path::new(&journal).exists(),
            "{flavor}: nothing journaled"
        );
        // The dry run shows the plan with the warning.
        let run = replmend(&["resync", "--replica", &url, "--dry-run"]);
        assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
        assert!(run.stdout.contains("warning: "), "{flavor}: {}", run.stdout);
        // Started, the applier brings the rows itself: nothing left to resync, and it never
        // stops on a row replmend wrote.
        n2.start_replication().unwrap();
        n2.wait_caught_up(CATCH_UP).unwrap();
        let run = resync_yes(&url, &journal, &[]);
        assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
        assert!(
            run.stdout.contains("nothing to change"),
            "{flavor}: {}",
            run.stdout
        );
        assert_eq!(n2.sql_error().unwrap(), None, "{flavor}");
        sb.stop();
    }
}

// ---------------------------------------------------------------------------------------------
// Triggers on the node written.

#[test]
fn resync_names_triggers_on_the_replica_and_writes_through_them_only_when_allowed() {
    for flavor in FLAVORS {
        let sb = started(flavor, Topology::SourceReplica);
        let (n1, n2) = (sb.node("n1"), sb.node("n2"));
        n1.exec(
            "CREATE DATABASE tg; CREATE TABLE tg.t (id INT PRIMARY KEY, v INT NOT NULL); \
             CREATE TABLE tg.audit (n INT AUTO_INCREMENT PRIMARY KEY, id INT); \
             INSERT INTO tg.t VALUES (1, 1), (2, 2), (3, 3)",
        )
        .unwrap();
        n2.wait_caught_up(CATCH_UP).unwrap();
        drift(
            n2,
            "CREATE TRIGGER tg.t_audit AFTER DELETE ON tg.t FOR EACH ROW \
               INSERT INTO tg.audit (id) VALUES (OLD.id)",
        );
        drift(
            n2,
            "CREATE TRIGGER tg.t_bump BEFORE INSERT ON tg.t FOR EACH ROW SET NEW.v = NEW.v + 100",
        );
        drift(
            n2,
            "UPDATE tg.t SET v = 7 WHERE id = 2; DELETE FROM tg.t WHERE id = 3",
        );
        let url = n2.url();
        let before = hex_rows(n2, "tg.t", &["id", "v"]);
        let journal = journal_path(&format!("triggers-{flavor}"));
        let run = resync_yes(&url, &journal, &["--tables", "tg.t"]);
        assert_eq!(
            run.code,
            exit::REFUSED,
            "{flavor}: {}{}",
            run.stdout,
            run.stderr
        );
        for name in ["t_audit", "t_bump", "--allow-triggers"] {
            assert!(
                run.stderr.contains(name),
                "{flavor}: {name}: {}",
                run.stderr
            );
        }
        assert_eq!(
            hex_rows(n2, "tg.t", &["id", "v"]),
            before,
            "{flavor}: unchanged"
        );
        // The drift's own DELETE fired the audit once.
        assert_eq!(count(n2, "SELECT COUNT(*) FROM tg.audit"), 1, "{flavor}");
        // The dry run names them too: the facts the plan rests on, checked before any run.
        let run = replmend(&["resync", "--replica", &url, "--dry-run", "--tables", "tg.t"]);
        assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
        assert!(
            run.stdout.contains("warning: ")
                && run.stdout.contains("t_bump")
                && run.stdout.contains("triggers on INSERT/DELETE: t_audit")
                && run.stdout.contains("nothing pending in its relay log"),
            "{flavor}: {}",
            run.stdout
        );
        // Allowed: the triggers fire. The BEFORE INSERT one changes the value written: the
        // read-back before COMMIT sees it, the step rolls back (its intents journaled as
        // rolled back), nothing changed, the AFTER DELETE trigger's row rolled back with it.
        let allowed = ["--tables", "tg.t", "--allow-triggers"];
        let run = resync_yes(&url, &journal, &allowed);
        assert_eq!(
            run.code,
            exit::REFUSED,
            "{flavor}: {}{}",
            run.stdout,
            run.stderr
        );
        assert!(
            run.stderr.contains("otherwise than journaled"),
            "{flavor}: {}",
            run.stderr
        );
        assert_eq!(
            hex_rows(n2, "tg.t", &["id", "v"]),
            before,
            "{flavor}: rolled back"
        );
        assert_eq!(count(n2, "SELECT COUNT(*) FROM tg.audit"), 1, "{flavor}");
        assert_eq!(
            journaled_rows(&journal),
            0,
            "{flavor}: no change journaled as done"
        );
        // Only the audit trigger left: the rows are fixed and the audit row is the trigger's.
        drift(n2, "DROP TRIGGER tg.t_bump");
        let run = resync_yes(&url, &journal, &allowed);
        assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
        assert_eq!(
            hex_rows(n2, "tg.t", &["id", "v"]),
            hex_rows(n1, "tg.t", &["id", "v"])
        );
        assert_eq!(
            count(n2, "SELECT COUNT(*) FROM tg.audit"),
            2,
            "{flavor}: the audit fired"
        );
        sb.stop();
    }
}

// ---------------------------------------------------------------------------------------------
// Child rows behind a parent row resync deletes.

#[test]
fn resync_never_orphans_child_rows_cascade_restrict_and_composite() {
    for flavor in FLAVORS {
        let sb = started(flavor, Topology::SourceReplica);
        let (n1, n2) = (sb.node("n1"), sb.node("n2"));
        n1.exec(
            "CREATE DATABASE fk; \
             CREATE TABLE fk.parent (id INT PRIMARY KEY, v INT NOT NULL); \
             CREATE TABLE fk.item (id INT PRIMARY KEY, pid INT NOT NULL, \
               CONSTRAINT fk_item FOREIGN KEY (pid) REFERENCES fk.parent (id) ON DELETE CASCADE); \
             CREATE TABLE fk.pair (a INT NOT NULL, b VARCHAR(8) NOT NULL, PRIMARY KEY (a, b)); \
             CREATE TABLE fk.pair_note (id INT PRIMARY KEY, a INT NOT NULL, b VARCHAR(8) NOT NULL, \
               CONSTRAINT fk_note FOREIGN KEY (a, b) REFERENCES fk.pair (a, b) ON DELETE RESTRICT); \
             INSERT INTO fk.parent VALUES (1, 1); INSERT INTO fk.item VALUES (1, 1); \
             INSERT INTO fk.pair VALUES (1, 'x')",
        )
        .unwrap();
        n2.wait_caught_up(CATCH_UP).unwrap();
        // Replica-only parents, each with a replica-only child row.
        drift(
            n2,
            "INSERT INTO fk.parent VALUES (9, 9); INSERT INTO fk.item VALUES (9, 9); \
             INSERT INTO fk.pair VALUES (2, 'y'); INSERT INTO fk.pair_note VALUES (1, 2, 'y')",
        );
        let url = n2.url();
        let journal = journal_path(&format!("fk-{flavor}"));
        for (tables, child, constraint) in [
            ("fk.parent", "fk.item", "fk_item"),
            ("fk.pair", "fk.pair_note", "fk_note"),
        ] {
            let run = resync_yes(&url, &journal, &["--tables", tables]);
            assert_eq!(
                run.code,
                exit::REFUSED,
                "{flavor} {tables}: {}{}",
                run.stdout,
                run.stderr
            );
            assert!(
                run.stderr.contains(child) && run.stderr.contains(constraint),
                "{flavor}: names the child: {}",
                run.stderr
            );
        }
        assert_eq!(
            count(n2, "SELECT COUNT(*) FROM fk.item"),
            2,
            "{flavor}: no child lost"
        );
        assert_eq!(
            count(n2, "SELECT COUNT(*) FROM fk.parent"),
            2,
            "{flavor}: nothing deleted"
        );
        // The whole database: the child rows go in the same plan, so nothing is orphaned.
        let run = resync_yes(&url, &journal, &["--databases", "fk"]);
        assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
        for t in ["parent", "item", "pair", "pair_note"] {
            assert_eq!(
                n2.checksum_table("fk", t).unwrap(),
                n1.checksum_table("fk", t).unwrap(),
                "{flavor}: {t}"
            );
        }
        assert_eq!(
            count(
                n2,
                "SELECT COUNT(*) FROM fk.item WHERE pid NOT IN (SELECT id FROM fk.parent)"
            ),
            0
        );
        sb.stop();
    }
}

// ---------------------------------------------------------------------------------------------
// Replication filters, and tables on one node only.

fn set_filters(n: &Node) {
    n.exec(match n.flavor {
        Flavor::MariaDb => {
            "STOP SLAVE; SET GLOBAL replicate_ignore_table = 'f.ign'; \
             SET GLOBAL replicate_wild_ignore_table = 'f.wild%'; START SLAVE"
        }
        // A per-channel filter (the default channel's own).
        Flavor::MySql => {
            "STOP REPLICA SQL_THREAD; \
             CHANGE REPLICATION FILTER REPLICATE_IGNORE_TABLE = (f.ign), \
               REPLICATE_WILD_IGNORE_TABLE = ('f.wild%') FOR CHANNEL ''; \
             START REPLICA SQL_THREAD"
        }
    })
    .unwrap();
}

#[test]
fn filtered_tables_are_reported_as_filtered_never_written_and_one_node_tables_listed() {
    for flavor in FLAVORS {
        let sb = started(flavor, Topology::SourceReplica);
        let (n1, n2) = (sb.node("n1"), sb.node("n2"));
        n1.exec(
            "CREATE DATABASE f; CREATE TABLE f.t (id INT PRIMARY KEY); \
             CREATE TABLE f.ign (id INT PRIMARY KEY); CREATE TABLE f.wild1 (id INT PRIMARY KEY)",
        )
        .unwrap();
        n2.wait_caught_up(CATCH_UP).unwrap();
        set_filters(n2);
        n1.exec(
            "INSERT INTO f.t VALUES (1); INSERT INTO f.ign VALUES (1); \
             INSERT INTO f.wild1 VALUES (1)",
        )
        .unwrap();
        n2.wait_caught_up(CATCH_UP).unwrap();
        drift(n2, "INSERT INTO f.ign VALUES (42)");
        let url = n2.url();
        let (run, r) = run_json(&["verify", "--replica", &url, "--databases", "f"]);
        assert_eq!(
            run.code,
            exit::OK,
            "{flavor}: filtered tables are not drift: {r}"
        );
        for (name, rule) in [
            ("ign", "replicate_ignore_table"),
            ("wild1", "replicate_wild_ignore_table"),
        ] {
            let t = table(&r, "f", name);
            assert!(
                t["filtered"].as_str().is_some_and(|w| w.contains(rule)),
                "{flavor}: {t}"
            );
        }
        assert!(table(&r, "f", "t")["filtered"].is_null());
        assert_eq!(r["summary"]["filtered"], 2, "{flavor}: {r}");
        // A table on the replica only is listed, and is drift no row write can fix.
        drift(
            n2,
            "CREATE TABLE f.local (id INT PRIMARY KEY); INSERT INTO f.local VALUES (7)",
        );
        let (run, r) = run_json(&["verify", "--replica", &url, "--databases", "f"]);
        assert_eq!(run.code, exit::DRIFT, "{flavor}: {r}");
        let local = table(&r, "f", "local");
        assert_eq!(
            local["only_on"],
            format!("127.0.0.1:{}", n2.port),
            "{flavor}: {local}"
        );
        let journal = journal_path(&format!("filters-{flavor}"));
        let run = resync_yes(&url, &journal, &["--databases", "f"]);
        assert_eq!(
            run.code,
            exit::DRIFT,
            "{flavor}: {}{}",
            run.stdout,
            run.stderr
        );
        assert!(
            run.stdout.contains("exists only on"),
            "{flavor}: {}",
            run.stdout
        );
        assert_eq!(
            count(n2, "SELECT COUNT(*) FROM f.ign WHERE id = 42"),
            1,
            "{flavor}: the filtered table's own row stays"
        );
        assert_eq!(count(n2, "SELECT COUNT(*) FROM f.local"), 1, "{flavor}");
        assert_eq!(journaled_rows(&journal), 0, "{flavor}: nothing written");
        // Named alone, a filtered (and different) table is not called in agreement.
        let run = replmend(&["resync", "--replica", &url, "--yes", "--tables", "f.ign"]);
        assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
        assert!(
            !run.stdout.contains("already agree") && run.stdout.contains("not compared"),
            "{flavor}: {}",
            run.stdout
        );
        sb.stop();
    }
}

// ---------------------------------------------------------------------------------------------
// restore: the same guarded path as every writer (dry run with its SQL, preflight, lock,
// journal), and itself restorable.

#[test]
fn restore_dry_run_shows_its_sql_preflight_refuses_read_only_and_a_restore_is_undoable() {
    for flavor in FLAVORS {
        let sb = started(flavor, Topology::SourceReplica);
        let (n1, n2) = (sb.node("n1"), sb.node("n2"));
        n1.exec(
            "CREATE DATABASE r; CREATE TABLE r.t (id INT PRIMARY KEY, v VARCHAR(10) NOT NULL); \
             INSERT INTO r.t VALUES (1, 'a'), (2, 'b'), (3, 'c')",
        )
        .unwrap();
        n2.wait_caught_up(CATCH_UP).unwrap();
        drift(
            n2,
            "UPDATE r.t SET v = 'x' WHERE id = 1; DELETE FROM r.t WHERE id = 2; INSERT INTO r.t VALUES (4, 'd')",
        );
        let cols = ["id", "v"];
        let (drifted, source) = (hex_rows(n2, "r.t", &cols), hex_rows(n1, "r.t", &cols));
        let url = n2.url();
        let journal = journal_path(&format!("restore-guard-{flavor}"));
        let run = resync_yes(&url, &journal, &[]);
        assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
        assert_eq!(hex_rows(n2, "r.t", &cols), source);

        let run = replmend(&["restore", &journal, "--replica", &url, "--dry-run"]);
        assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
        for text in [
            "DELETE FROM `r`.`t` WHERE `id` <=> ?",
            "INSERT INTO `r`.`t`",
            "SET SESSION sql_log_bin = 0",
            "Facts this plan rests on",
            "r.t: triggers on INSERT/DELETE: none; referenced by: none",
            "Dry run: nothing was changed.",
        ] {
            assert!(
                run.stdout.contains(text),
                "{flavor}: {text}: {}",
                run.stdout
            );
        }
        assert_eq!(
            hex_rows(n2, "r.t", &cols),
            source,
            "{flavor}: the dry run changed nothing"
        );

        let ro = match flavor {
            Flavor::MariaDb => "SET GLOBAL read_only = 1",
            Flavor::MySql => "SET GLOBAL super_read_only = 1",
        };
        n2.exec(ro).unwrap();
        let undo = journal_path(&format!("restore-undo-{flavor}"));
        // super_read_only blocks every account; MariaDB's read_only lets an account with
        // READ ONLY ADMIN (root here) write, so only MySQL refuses without the option.
        if flavor == Flavor::MySql {
            let run = replmend(&[
                "restore",
                &journal,
                "--replica",
                &url,
                "--journal-to",
                &undo,
            ]);
            assert_eq!(
                run.code,
                exit::REFUSED,
                "{flavor}: {}{}",
                run.stdout,
                run.stderr
            );
            assert!(
                run.stderr.contains("--lift-read-only"),
                "{flavor}: {}",
                run.stderr
            );
            assert_eq!(
                hex_rows(n2, "r.t", &cols),
                source,
                "{flavor}: refused before any change"
            );
        }
        let run = replmend(&[
            "restore",
            &journal,
            "--replica",
            &url,
            "--journal-to",
            &undo,
            "--lift-read-only",
            "--format",
            "json",
        ]);
        assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
        assert_eq!(run.json()["restore_journal"], undo.as_str(), "{flavor}");
        assert_eq!(
            hex_rows(n2, "r.t", &cols),
            drifted,
            "{flavor}: the drift is back"
        );
        let flag = match flavor {
            Flavor::MariaDb => "SELECT @@global.read_only",
            Flavor::MySql => "SELECT @@global.super_read_only",
        };
        assert_eq!(
            n2.query_value(flag).unwrap().as_deref(),
            Some("1"),
            "{flavor}: read-only again"
        );
        // The restore journaled what it changed: restoring that journal gives the resync's
        // rows back.
        let run = replmend(&[
            "restore",
            &undo,
            "--replica",
            &url,
            "--lift-read-only",
            "--journal-to",
            &journal_path(&format!("restore-undo2-{flavor}")),
        ]);
        assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
        assert_eq!(
            hex_rows(n2, "r.t", &cols),
            source,
            "{flavor}: the restore undone"
        );
        sb.stop();
    }
}

// ---------------------------------------------------------------------------------------------
// diagnose on a healthy replica still answers "why": the errant GTIDs it holds.

#[test]
fn diagnose_on_a_healthy_replica_names_its_errant_gtids() {
    for flavor in FLAVORS {
        let sb = started(flavor, Topology::SourceReplicaGtid);
        let (n1, n2) = (sb.node("n1"), sb.node("n2"));
        n1.exec("CREATE DATABASE e; CREATE TABLE e.t (id INT PRIMARY KEY)")
            .unwrap();
        n2.wait_caught_up(CATCH_UP).unwrap();
        let url = n2.url();
        let (run, j) = run_json(&["diagnose", "--replica", &url]);
        assert_eq!(run.code, exit::OK, "{flavor}: {j}");
        assert_eq!(j["schema"], "replmend.diagnose-healthy/1", "{flavor}: {j}");
        assert_eq!(j["errant"], serde_json::json!([]), "{flavor}: {j}");
        // A write made on the replica itself, binary log on: errant.
        n2.exec("INSERT INTO e.t VALUES (1)").unwrap();
        let (run, j) = run_json(&["diagnose", "--replica", &url]);
        assert_eq!(run.code, exit::OK, "{flavor}: {j}");
        let errant = j["errant"].as_array().expect("errant");
        assert_eq!(errant.len(), 1, "{flavor}: {j}");
        assert!(run.stderr.contains("nothing to diagnose"), "{}", run.stderr);
        sb.stop();
    }
}

// ---------------------------------------------------------------------------------------------
// MariaDB dual-master: a write the peer received but has not applied yet is not errant.

#[test]
fn mariadb_dual_master_a_write_the_peer_has_not_applied_yet_is_not_errant() {
    let sb = started(Build::Host, Topology::DualMaster);
    let (n1, n2) = (sb.node("n1"), sb.node("n2"));
    n1.exec("CREATE DATABASE dm; CREATE TABLE dm.t (id INT PRIMARY KEY)")
        .unwrap();
    n2.wait_caught_up(CATCH_UP).unwrap();
    n1.exec("STOP SLAVE SQL_THREAD").unwrap();
    n2.exec("INSERT INTO dm.t VALUES (1)").unwrap();
    // n1 has received n2's write (its Gtid_IO_Pos) and not applied it.
    let received = || {
        let st = n1.replica_status().unwrap().unwrap();
        let io = st.get("Gtid_IO_Pos").cloned().flatten().unwrap_or_default();
        let mine = n2
            .query_value("SELECT @@global.gtid_binlog_pos")
            .unwrap()
            .unwrap_or_default();
        mine.split(',').all(|g| io.contains(g.trim()))
    };
    for _ in 0..100 {
        if received() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(received(), "n1 received n2's write");
    let (run, j) = run_json(&["status", "--replica", &n2.url()]);
    assert!(run.code == exit::OK, "{j}");
    // Absent (or empty): none.
    assert!(
        j["errant"].as_array().is_none_or(|a| a.is_empty()),
        "in flight, not errant: {j}"
    );
    n1.exec("START SLAVE SQL_THREAD").unwrap();
    sb.stop();
}

/// MariaDB dual-master: `keep` skips each node's transaction on the other (gtid_slave_pos
/// advanced there, nothing in its binlog): the skipped transaction is not errant afterwards.
#[test]
fn mariadb_dual_master_a_transaction_a_repair_skipped_is_not_errant() {
    let sb = incident(
        Flavor::MariaDb,
        Topology::DualMaster,
        "seed-dual-master-1062",
    );
    let (n1, n2) = (sb.node("n1"), sb.node("n2"));
    let journal = journal_path("keep-errant");
    let run = replmend(&[
        "repair",
        "--replica",
        &n2.url(),
        "--yes",
        "--remedy",
        "keep",
        "--allow-data-loss",
        "--journal",
        &journal,
    ]);
    assert_eq!(run.code, exit::OK, "{}{}", run.stdout, run.stderr);
    for n in [n1, n2] {
        let (run, j) = run_json(&["status", "--replica", &n.url()]);
        assert_eq!(run.code, exit::OK, "{}: {j}", n.name);
        assert!(
            j["errant"].as_array().is_none_or(|a| a.is_empty()),
            "{}: a skipped transaction is not errant: {j}",
            n.name
        );
    }
    sb.stop();
}

// ---------------------------------------------------------------------------------------------
// A lift of read_only recorded by a run still in progress (it holds the repair lock on the
// node) is that run's: another run's recovery leaves it alone; once the run is gone (its lock
// released with its connection), the next run puts read_only back.

#[test]
fn a_lift_of_a_run_still_in_progress_is_not_recovered_under_it() {
    use mysql::prelude::Queryable;
    use std::os::unix::fs::PermissionsExt;
    for flavor in FLAVORS {
        let sb = started(flavor, Topology::SourceReplica);
        let n2 = sb.node("n2");
        let journal = journal_path(&format!("lift-in-progress-{flavor}"));
        // Recorded now: an older restore of the same port (an earlier sandbox) does not
        // cancel it.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let lift = serde_json::json!({
            "schema": "replmend.journal/2", "at": now, "fingerprint": "in-progress",
            "state": "done", "node": format!("127.0.0.1:{}", n2.port),
            "action": "lift_read_only", "read_only": "read_only",
        });
        std::fs::write(&journal, format!("{lift}\n")).unwrap();
        std::fs::set_permissions(&journal, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut run_in_progress = n2.conn().unwrap();
        let got: Option<i64> = run_in_progress
            .query_first("SELECT GET_LOCK('replmend.repair', 0)")
            .unwrap();
        assert_eq!(got, Some(1));
        let repair = || yes("repair", &n2.url(), &journal, &[]);
        let run = repair();
        assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
        let read_only = || n2.query_value("SELECT @@global.read_only").unwrap();
        assert_eq!(
            read_only().as_deref(),
            Some("0"),
            "{flavor}: left to its run"
        );
        // The run ends: its lock released (at once, not when the server notices the quit).
        let released: Option<i64> = run_in_progress
            .query_first("SELECT RELEASE_LOCK('replmend.repair')")
            .unwrap();
        assert_eq!(released, Some(1));
        drop(run_in_progress);
        let run = repair();
        assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
        assert!(
            run.stderr.contains("is ON again"),
            "{flavor}: {}",
            run.stderr
        );
        assert_eq!(read_only().as_deref(), Some("1"), "{flavor}: recovered");
        sb.stop();
    }
}
