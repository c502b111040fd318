//! Fleet verify and resync on real servers of both flavors (issue 23): one source with two
//! replicas drifted differently (one misses a row, the other holds a changed and an extra
//! row), found by `verify --source` alone (the replicas discovered from the source) and by
//! `--replica` repeated, each replica named exactly with its own drift; `resync --from` the
//! fleet report fixes both, each with its own journal, and a second verify finds both
//! identical; one replica's resync refused (a trigger) does not stop the other's. A replica
//! that cannot be reached, or is frozen, is named as not compared; `--max-lag` waits for the
//! replica furthest behind. Drift is made on one replica with `sql_log_bin = 0`, so it does
//! not replicate.

mod support;

use std::time::Duration;

use replmend_sandbox::Node;
use serde_json::{Value, json};
use support::*;

const CATCH_UP: Duration = Duration::from_secs(60);

fn endpoint(n: &Node) -> String {
    format!("127.0.0.1:{}", n.port)
}

/// `replmend verify <args…> --format json`: the run and its fleet report.
fn fleet_verify(args: &[&str]) -> (Run, Value) {
    let mut all = vec!["verify"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--format", "json"]);
    let run = replmend(&all);
    let j = run.json();
    assert_eq!(
        j["schema"], "replmend.verify-fleet/1",
        "{j}\n{}",
        run.stderr
    );
    (run, j)
}

/// The replica's own `replmend.verify/1` report in a fleet report.
fn of<'a>(j: &'a Value, n: &Node) -> &'a Value {
    j["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["replica"] == endpoint(n))
        .unwrap_or_else(|| panic!("{} not in the fleet report: {j}", endpoint(n)))
}

/// The fleet report's line for a table: which replicas drifted and which are identical.
fn fleet_table(j: &Value, name: &str) -> (Vec<String>, Vec<String>) {
    let t = j["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"]["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {j}"));
    let list = |k: &str| {
        let mut v: Vec<String> = t[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    (list("drifted"), list("identical"))
}

fn sorted_endpoints(nodes: &[&Node]) -> Vec<String> {
    let mut v: Vec<String> = nodes.iter().map(|n| endpoint(n)).collect();
    v.sort();
    v
}

/// A source (n1) with two replicas holding `shop.items` (integer key) and `shop.codes` (a
/// text key: chunks bounded by query, narrowed by row hashes), caught up.
fn fleet(flavor: Flavor) -> Sandbox {
    let sb = started(flavor, Topology::FanOut(2));
    let n1 = sb.node("n1");
    n1.exec(
        "CREATE DATABASE shop; \
         CREATE TABLE shop.items (id INT PRIMARY KEY, qty INT NOT NULL, note VARCHAR(40)); \
         CREATE TABLE shop.codes (code VARCHAR(20) PRIMARY KEY, v INT NOT NULL)",
    )
    .unwrap();
    insert(
        n1,
        "shop.items",
        (1..=3000).map(|i| format!("({i}, {}, 'note {i}')", i * 3)),
    );
    insert(
        n1,
        "shop.codes",
        (1..=700).map(|i| format!("('c{i:05}', {i})")),
    );
    for r in ["n2", "n3"] {
        sb.node(r).wait_caught_up(CATCH_UP).unwrap();
    }
    sb
}

/// n2 misses a row of items and holds a changed code; n3 holds a changed and an extra row
/// of items (above the source's largest key).
fn drift_each(n2: &Node, n3: &Node) {
    drift(
        n2,
        "DELETE FROM shop.items WHERE id = 1500; UPDATE shop.codes SET v = 0 WHERE code = 'c00321'",
    );
    drift(
        n3,
        "UPDATE shop.items SET qty = -1 WHERE id = 42; \
         INSERT INTO shop.items VALUES (9000, 1, 'only on n3')",
    );
}

/// Each replica's drift named exactly, in its own report and in the per-table lines.
fn assert_each_named(j: &Value, n2: &Node, n3: &Node, what: &str) {
    assert_eq!(j["summary"]["compared"], 2, "{what}: {j}");
    assert_eq!(j["summary"]["drifted"], 2, "{what}: {j}");
    let (r2, r3) = (of(j, n2), of(j, n3));
    assert_eq!(r2["schema"], "replmend.verify/1", "{what}");
    assert_eq!(r2["source"], j["source"], "{what}");
    assert_drift(
        table(r2, "shop", "items"),
        vec![id(1500)],
        vec![],
        vec![],
        &format!("{what} n2 items"),
    );
    assert_drift(
        table(r2, "shop", "codes"),
        vec![],
        vec![],
        vec![different(key(&[("code", "c00321")]), &["v"])],
        &format!("{what} n2 codes"),
    );
    assert_drift(
        table(r3, "shop", "items"),
        vec![],
        vec![id(9000)],
        vec![different(id(42), &["qty"])],
        &format!("{what} n3 items"),
    );
    assert_drift(
        table(r3, "shop", "codes"),
        vec![],
        vec![],
        vec![],
        &format!("{what} n3 codes"),
    );
    assert_eq!(table(r3, "shop", "items")["rows"], 3000, "{what}");
    assert_eq!(
        fleet_table(j, "items"),
        (sorted_endpoints(&[n2, n3]), vec![]),
        "{what}: {j}"
    );
    assert_eq!(
        fleet_table(j, "codes"),
        (vec![endpoint(n2)], vec![endpoint(n3)]),
        "{what}: {j}"
    );
}

#[test]
fn a_fleet_drifted_two_ways_is_named_per_replica_and_resync_from_fixes_both() {
    for flavor in FLAVORS {
        let sb = fleet(flavor);
        let (n1, n2, n3) = (sb.node("n1"), sb.node("n2"), sb.node("n3"));
        drift_each(n2, n3);

        // The replicas discovered from the source alone.
        let (run, j) = fleet_verify(&["--source", &n1.url(), "--chunk-size", "500"]);
        assert_eq!(run.code, exit::DRIFT, "{flavor}: {j}\n{}", run.stderr);
        assert_eq!(j["source"], endpoint(n1), "{flavor}");
        assert!(j["not_compared"].as_array().unwrap().is_empty(), "{j}");
        assert_each_named(&j, n2, n3, &format!("{flavor} discovered"));
        // Piped: a line per table and replica as each finishes.
        for n in [n2, n3] {
            let line = format!("verify: shop.items on {}: 3000 rows", endpoint(n));
            assert!(
                run.stderr.contains(&line),
                "{flavor}: {line} in {}",
                run.stderr
            );
        }

        // The text report: per table, the drifted replicas and what differs on each.
        let text = replmend(&["verify", "--source", &n1.url()]);
        assert_eq!(text.code, exit::DRIFT, "{flavor}: {}", text.stderr);
        for part in [
            format!("{} (1 missing)", endpoint(n2)),
            format!("{} (1 extra, 1 different)", endpoint(n3)),
            format!("identical on {}", endpoint(n3)),
            "2 replica(s) compared: 0 identical, 2 drifted".to_string(),
        ] {
            assert!(
                text.stdout.contains(&part),
                "{flavor}: {part:?} in\n{}",
                text.stdout
            );
        }

        // A dry run shows each replica's plan and changes nothing.
        let report = journal_path(&format!("fleet-{flavor}"));
        std::fs::write(&report, &run.stdout).unwrap();
        let dry = replmend(&["resync", "--from", &report, "--dry-run", "--format", "json"]);
        assert_eq!(dry.code, exit::OK, "{flavor}: {}{}", dry.stdout, dry.stderr);
        let d = dry.json();
        assert_eq!(d["schema"], "replmend.resync-fleet/1", "{d}");
        for r in d["replicas"].as_array().unwrap() {
            assert_eq!(r["outcome"], "resynced", "{flavor}: {d}");
            assert_eq!(r["resync"]["dry_run"], true, "{flavor}: {d}");
            assert!(!r["resync"]["plan"]["steps"].as_array().unwrap().is_empty());
        }
        let (again, _) = fleet_verify(&["--source", &n1.url()]);
        assert_eq!(
            again.code,
            exit::DRIFT,
            "{flavor}: the dry run changed nothing"
        );

        // Fixed: one guarded apply per replica, each with its own journal.
        let journal = journal_path(&format!("fleet-resync-{flavor}"));
        let fix = replmend(&["resync", "--from", &report, "--yes", "--journal", &journal]);
        assert_eq!(fix.code, exit::OK, "{flavor}: {}{}", fix.stdout, fix.stderr);
        let stem = journal.trim_end_matches(".jsonl");
        let per_replica = |n: &Node| format!("{stem}-127.0.0.1_{}.jsonl", n.port);
        for n in [n2, n3] {
            assert!(
                journaled_rows(&per_replica(n)) > 0,
                "{flavor}: {} has no rows journaled:\n{}",
                per_replica(n),
                fix.stdout
            );
            assert!(fix.stdout.contains(&per_replica(n)), "{}", fix.stdout);
        }
        assert!(
            !std::path::Path::new(&journal).exists(),
            "{flavor}: no shared journal"
        );
        let (after, j) = fleet_verify(&["--source", &n1.url()]);
        assert_eq!(after.code, exit::OK, "{flavor}: {j}");
        assert_eq!(j["summary"]["identical"], 2, "{flavor}: {j}");

        // Nothing left to fix: both replicas skipped, saying so.
        let report2 = journal_path(&format!("fleet2-{flavor}"));
        std::fs::write(&report2, &after.stdout).unwrap();
        let skip = replmend(&["resync", "--from", &report2, "--yes"]);
        assert_eq!(skip.code, exit::OK, "{flavor}: {}", skip.stderr);
        assert_eq!(
            skip.stdout
                .matches("no drift in the report: skipped")
                .count(),
            2,
            "{flavor}: {}",
            skip.stdout
        );
        sb.stop();
    }
}

#[test]
fn replicas_named_with_repeated_replica_and_one_unreachable_named_not_compared() {
    for flavor in FLAVORS {
        let sb = fleet(flavor);
        let (n1, n2, n3) = (sb.node("n1"), sb.node("n2"), sb.node("n3"));
        drift_each(n2, n3);
        // Each replica's source from its own status: the same n1.
        let (run, j) = fleet_verify(&["--replica", &n2.url(), "--replica", &n3.url()]);
        assert_eq!(run.code, exit::DRIFT, "{flavor}: {j}\n{}", run.stderr);
        assert_eq!(j["source"], endpoint(n1), "{flavor}");
        assert_each_named(&j, n2, n3, &format!("{flavor} named"));

        // One replica's resync refused (a trigger on its table) does not stop the other's.
        let report = journal_path(&format!("fleet-named-{flavor}"));
        std::fs::write(&report, &run.stdout).unwrap();
        drift(
            n3,
            "CREATE TRIGGER shop.items_bi BEFORE INSERT ON shop.items FOR EACH ROW SET @x = 1",
        );
        let journal = journal_path(&format!("fleet-named-resync-{flavor}"));
        let fix = replmend(&[
            "resync",
            "--from",
            &report,
            "--yes",
            "--journal",
            &journal,
            "--format",
            "json",
        ]);
        assert_eq!(
            fix.code,
            exit::REFUSED,
            "{flavor}: {}{}",
            fix.stdout,
            fix.stderr
        );
        let f = fix.json();
        let outcome = |n: &Node| {
            f["replicas"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["replica"] == endpoint(n))
                .unwrap_or_else(|| panic!("{f}"))
                .clone()
        };
        assert_eq!(outcome(n2)["outcome"], "resynced", "{flavor}: {f}");
        assert_eq!(outcome(n2)["exit_code"], exit::OK, "{flavor}: {f}");
        assert_eq!(outcome(n3)["outcome"], "failed", "{flavor}: {f}");
        assert_eq!(outcome(n3)["exit_code"], exit::REFUSED, "{flavor}: {f}");
        assert!(
            outcome(n3)["error"]
                .as_str()
                .is_some_and(|e| e.contains("trigger")),
            "{flavor}: {f}"
        );
        let (_, after) = fleet_verify(&["--replica", &n2.url(), "--replica", &n3.url()]);
        assert_eq!(
            fleet_table(&after, "items"),
            (vec![endpoint(n3)], vec![endpoint(n2)]),
            "{flavor}: n2 fixed, n3 left as it was: {after}"
        );
        drift(n3, "DROP TRIGGER shop.items_bi");

        // A replica that cannot be reached is named, not dropped; the other is compared.
        let nowhere = "mysql://root@127.0.0.1:1";
        let (run, j) = fleet_verify(&[
            "--source",
            &n1.url(),
            "--replica",
            &n3.url(),
            "--replica",
            nowhere,
        ]);
        assert_eq!(run.code, exit::DRIFT, "{flavor}: {j}");
        assert_eq!(j["summary"]["compared"], 1, "{flavor}: {j}");
        assert_eq!(j["not_compared"][0]["replica"], "127.0.0.1:1", "{j}");
        assert!(j["not_compared"][0]["error"].is_string(), "{j}");

        // One replica: the report of a pair, as always.
        let (run, r) = verify(n3, &["--source", &n1.url()]);
        assert_eq!(run.code, exit::DRIFT, "{flavor}");
        assert_drift(
            table(&r, "shop", "items"),
            vec![],
            vec![id(9000)],
            vec![different(id(42), &["qty"])],
            "pair",
        );

        // A table whose columns differ on one replica: not compared there, compared on the
        // other; no drift, so exit 1 (something was not compared).
        drift(n3, "ALTER TABLE shop.codes ADD COLUMN extra INT");
        let (run, j) = fleet_verify(&[
            "--replica",
            &n2.url(),
            "--replica",
            &n3.url(),
            "--tables",
            "shop.codes",
        ]);
        assert_eq!(run.code, exit::FAILURE, "{flavor}: {j}");
        let codes = &j["tables"][0];
        assert_eq!(codes["failed"], serde_json::json!([endpoint(n3)]), "{j}");
        assert_eq!(codes["identical"], serde_json::json!([endpoint(n2)]), "{j}");
        assert!(
            table(of(&j, n3), "shop", "codes")["error"]
                .as_str()
                .is_some_and(|e| e.contains("columns differ")),
            "{flavor}: {j}"
        );
        sb.stop();
    }
}

/// `--max-lag` over a fleet watches every replica: with one of two replicas held 8 s behind
/// (SOURCE_DELAY), verify reads nothing until that one is back under the limit.
#[test]
fn max_lag_waits_for_the_replica_furthest_behind() {
    for flavor in FLAVORS {
        let sb = started(flavor, Topology::FanOut(2));
        let (n1, n2, n3) = (sb.node("n1"), sb.node("n2"), sb.node("n3"));
        n1.exec(
            "CREATE DATABASE lagdb; CREATE TABLE lagdb.t (id INT PRIMARY KEY, v INT); \
             CREATE TABLE lagdb.other (id INT PRIMARY KEY); \
             INSERT INTO lagdb.t VALUES (1, 1), (2, 2), (3, 3)",
        )
        .unwrap();
        for n in [n2, n3] {
            n.wait_caught_up(CATCH_UP).unwrap();
        }
        lag::replica_delay(n3, 8);
        lag::lag_behind(n1, n3, 1);
        let args = [
            "--source",
            &n1.url(),
            "--tables",
            "lagdb.t",
            "--max-lag",
            "2",
        ];
        let (run, j) = fleet_verify(&args);
        assert_eq!(run.code, exit::OK, "{flavor}: {j}\n{}", run.stderr);
        assert!(
            lag::applied(n3, 1),
            "{flavor}: --max-lag 2 read the table while n3 was {:?} s behind",
            lag::lag_seconds(n3)
        );
        // A row n3 (held 30 s behind) has not applied when the catch-up wait runs out is
        // not judged there: n3 is neither identical nor drifted, n2 is identical.
        lag::replica_delay(n3, 30);
        n1.exec("UPDATE lagdb.t SET v = 30 WHERE id = 3").unwrap();
        let args = [
            "--source",
            &n1.url(),
            "--tables",
            "lagdb.t",
            "--wait-timeout",
            "1",
        ];
        let (run, j) = fleet_verify(&args);
        assert_eq!(run.code, exit::OK, "{flavor}: {j}\n{}", run.stderr);
        let t = &j["tables"][0];
        assert_eq!(t["identical"], json!([endpoint(n2)]), "{flavor}: {j}");
        assert_eq!(t["unsettled"], json!([endpoint(n3)]), "{flavor}: {j}");
        assert_eq!(t["drifted"], json!([]), "{flavor}: {j}");
        let s = &j["summary"];
        assert_eq!(
            (&s["identical"], &s["unsettled"]),
            (&json!(1), &json!(1)),
            "{flavor}: {j}"
        );
        assert_eq!(of(&j, n3)["tables"][0]["unsettled"], 1, "{flavor}: {j}");
        lag::replica_delay(n3, 0);
        sb.stop();
    }
}

/// A replica of the fleet that answers nothing (its server frozen with SIGSTOP) is named as
/// not compared, with why, and does not hold up the others beyond the connect deadline.
#[test]
fn a_frozen_replica_is_named_not_compared_and_the_others_are_verified() {
    for flavor in FLAVORS {
        let sb = fleet(flavor);
        let (n1, n2, n3) = (sb.node("n1"), sb.node("n2"), sb.node("n3"));
        drift(n2, "DELETE FROM shop.items WHERE id = 7");
        signal(n3.pid, "-STOP");
        let started = std::time::Instant::now();
        let run = replmend(&["verify", "--source", &n1.url(), "--format", "json"]);
        let took = started.elapsed();
        signal(n3.pid, "-CONT");
        let j = run.json();
        assert_eq!(run.code, exit::DRIFT, "{flavor}: {j}\n{}", run.stderr);
        assert_eq!(j["summary"]["compared"], 1, "{flavor}: {j}");
        assert_eq!(j["summary"]["not_compared"], 1, "{flavor}: {j}");
        assert_drift(
            table(of(&j, n2), "shop", "items"),
            vec![id(7)],
            vec![],
            vec![],
            &format!("{flavor} n2"),
        );
        // Named by its address (its host was listed: MariaDB) or, listed without a host
        // (MySQL), by its server_id.
        let named = &j["not_compared"][0];
        assert!(
            named["replica"] == endpoint(n3) || named["server_id"] == 3,
            "{flavor}: {j}"
        );
        assert!(
            named["error"]
                .as_str()
                .is_some_and(|e| e.contains("did not answer in time")),
            "{flavor}: {j}"
        );
        assert!(took < Duration::from_secs(40), "{flavor}: {took:?}");
        sb.stop();
    }
}
