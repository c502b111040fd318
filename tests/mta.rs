//! MySQL's multi-threaded applier with its defaults (replica_parallel_workers=4,
//! replica_preserve_commit_order=ON) and a source that is down: the channel's error names a
//! worker that only stopped because another failed (3030), and the source's binlog cannot be
//! read. Real servers; nothing here skips.

mod support;

use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use serde_json::Value;
use support::*;

const WAIT: Duration = Duration::from_secs(30);

/// The worker errors of the replica: (worker, errno, GTID it was applying).
fn worker_errors(n2: &replmend_sandbox::Node) -> Vec<(u32, u32, String)> {
    n2.worker_errors()
        .unwrap()
        .into_iter()
        .map(|w| (w.worker_id, w.errno, w.applying_transaction))
        .collect()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < WAIT, "waited {WAIT:?} for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn count(n: &replmend_sandbox::Node, sql: &str) -> u64 {
    n.query_value(sql)
        .unwrap()
        .unwrap_or_default()
        .parse()
        .unwrap()
}

/// A replica (MySQL 9.7, GTID, the default 4 workers with commit order preserved) stopped on a
/// 1062 whose channel error is 3030. Returns the failed transaction's GTID.
///
/// How, deterministically: two sessions on the replica hold row locks, one on the row the
/// conflicting transaction T1 updates first, one on the row the independent T2 that follows it
/// updates. Both workers block (two lock waits); T1's lock is released and it fails with 1062;
/// only then is T2's released, so T2 finishes after the failure, meets the rollback at its
/// commit-order wait and reports 3030 last: the channel's error. Each step waits for the
/// server's own state, not a timer: 3030 in 28 of 28 runs here (MySQL 9.7.4, 2 cores), where
/// the same burst without the locks gave it in 1 of 5 and with fixed sleeps in 4 of 5.
fn stopped_with_3030(sb: &Sandbox, key: u32) -> String {
    let (n1, n2) = (sb.node("n1"), sb.node("n2"));
    n2.exec(&format!(
        "SET sql_log_bin = 0; INSERT INTO mta.t VALUES ({key}, 'replica')"
    ))
    .unwrap();
    let mut first = n2.conn().unwrap();
    let mut second = n2.conn().unwrap();
    first
        .query_drop("BEGIN; SELECT * FROM mta.lk WHERE id = 1 FOR UPDATE")
        .unwrap();
    second
        .query_drop("BEGIN; SELECT * FROM mta.lk WHERE id = 2 FOR UPDATE")
        .unwrap();
    let mut burst = format!(
        "BEGIN; UPDATE mta.lk SET v = v + 1 WHERE id = 1; INSERT INTO mta.t VALUES ({key}, 'source'); COMMIT; \
         UPDATE mta.lk SET v = v + 1 WHERE id = 2;"
    );
    for i in 0..5 {
        burst.push_str(&format!(
            " INSERT INTO mta.o VALUES ({}, 'after');",
            key * 100 + i
        ));
    }
    n1.exec(&burst).unwrap();
    wait_until("both workers to wait for the replica's row locks", || {
        count(
            n2,
            "SELECT COUNT(*) FROM performance_schema.data_lock_waits",
        ) == 2
    });
    first.query_drop("COMMIT").unwrap();
    wait_until("the worker of T1 to fail with 1062", || {
        worker_errors(n2).iter().any(|(_, e, _)| *e == 1062)
    });
    second.query_drop("COMMIT").unwrap();
    n2.wait_sql_error(3030, WAIT)
        .unwrap_or_else(|e| panic!("{e:#}; workers: {:?}", worker_errors(n2)));
    let errors = worker_errors(n2);
    let failed: Vec<&(u32, u32, String)> = errors.iter().filter(|(_, e, _)| *e == 1062).collect();
    assert_eq!(failed.len(), 1, "{errors:?}");
    assert!(
        errors
            .iter()
            .any(|(w, e, _)| *e == 3030 && *w != failed[0].0),
        "the 3030 is on another worker: {errors:?}"
    );
    failed[0].2.clone()
}

fn mta_sandbox() -> Sandbox {
    let sb = Sandbox::start(Flavor::MySql, Topology::SourceReplicaGtid).unwrap();
    sb.node("n1")
        .exec(
            "CREATE DATABASE mta; \
             CREATE TABLE mta.t (id INT PRIMARY KEY, v VARCHAR(20)); \
             CREATE TABLE mta.o (id INT PRIMARY KEY, v VARCHAR(20)); \
             CREATE TABLE mta.lk (id INT PRIMARY KEY, v INT); \
             INSERT INTO mta.lk VALUES (1, 0), (2, 0)",
        )
        .unwrap();
    sb.node("n2").wait_caught_up(WAIT).unwrap();
    let n2 = sb.node("n2");
    let settings = n2
        .query_rows("SELECT @@replica_parallel_workers, @@replica_preserve_commit_order")
        .unwrap();
    assert_eq!(
        settings[0],
        vec![Some("4".into()), Some("1".into())],
        "MySQL's defaults"
    );
    sb
}

fn json(args: &[&str], code: i32) -> Value {
    let run = replmend(args);
    assert_eq!(run.code, code, "{args:?}: {}{}", run.stdout, run.stderr);
    run.json()
}

fn skip_step_gtid(plan: &Value) -> String {
    plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["action"] == "skip_transaction")
        .and_then(|s| s["gtid"].as_str())
        .unwrap_or_else(|| panic!("no skip step with a GTID: {plan}"))
        .to_string()
}

#[test]
fn commit_order_3030_is_diagnosed_planned_and_repaired_by_the_failed_workers_gtid() {
    let sb = mta_sandbox();
    let (n1, n2) = (sb.node("n1"), sb.node("n2"));
    let gtid = stopped_with_3030(&sb, 7);
    let url = n2.url();

    let status = json(&["status", "--replica", &url, "--format", "json"], 3);
    let ch = &status["channels"][0];
    assert_eq!(ch["last_sql_error"]["number"], 3030, "{ch}");
    let text = replmend(&["status", "--replica", &url]).stdout;
    assert!(
        text.contains(&format!("failed trx   {gtid}")),
        "status names the failed worker's transaction: {text}"
    );

    let d = json(&["diagnose", "--replica", &url, "--format", "json"], 3);
    assert_eq!(d["error"]["errno"], 1062, "{d}");
    assert!(
        d["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Duplicate entry '7'"),
        "{d}"
    );
    assert_eq!(d["kind"], "duplicate_on_write");
    assert_eq!(d["table"]["name"], "t");
    assert_eq!(d["gtid"], gtid.as_str(), "{d}");
    assert_eq!(d["transaction"]["gtid"], gtid.as_str(), "{d}");
    assert_eq!(d["conflicting_rows"], 1, "{d}");
    assert_eq!(d["conflicts"][0]["verdict"]["verdict"], "differs", "{d}");

    let p = json(
        &[
            "plan",
            "--replica",
            &url,
            "--remedy",
            "inject-gtid",
            "--format",
            "json",
        ],
        3,
    );
    assert_eq!(skip_step_gtid(&p["plan"]["plan"]), gtid, "{p}");

    let journal = journal_path("mta-3030");
    let r = json(
        &[
            "repair",
            "--replica",
            &url,
            "--yes",
            "--remedy",
            "inject-gtid",
            "--allow-data-loss",
            "--journal",
            &journal,
            "--format",
            "json",
        ],
        0,
    );
    assert_eq!(r["outcome"], "repaired", "{r}");
    n2.wait_caught_up(WAIT).unwrap();
    assert!(n2.sql_error().unwrap().is_none());
    assert_eq!(
        n2.query_value("SELECT v FROM mta.t WHERE id = 7").unwrap(),
        Some("replica".into()),
        "the skip keeps the replica's row"
    );
    // The transactions the 3030 rolled back were applied once the replica started again.
    assert_eq!(count(n2, "SELECT v FROM mta.lk WHERE id = 2"), 1);
    assert_eq!(count(n2, "SELECT COUNT(*) FROM mta.o"), 5);
    assert_eq!(count(n1, "SELECT COUNT(*) FROM mta.o"), 5);
    let _ = std::fs::remove_file(&journal);
}

#[test]
fn source_down_inject_gtid_by_the_workers_applying_transaction() {
    let mut sb = mta_sandbox();
    let gtid = stopped_with_3030(&sb, 9);
    sb.stop_node("n1").unwrap();
    let n2 = sb.node("n2");
    let url = n2.url();

    let d = json(&["diagnose", "--replica", &url, "--format", "json"], 3);
    assert!(d["source"].is_null(), "{d}");
    assert!(d["transaction"].is_null(), "{d}");
    assert_eq!(
        d["gtid"],
        gtid.as_str(),
        "the worker's APPLYING_TRANSACTION: {d}"
    );
    assert!(
        d.as_object().unwrap().contains_key("conflicting_rows") && d["conflicting_rows"].is_null(),
        "unknown, not 0: {d}"
    );

    let p = json(&["plan", "--replica", &url, "--format", "json"], 3);
    let inject = p["plan"]["options"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["remedy"] == "inject-gtid")
        .unwrap();
    assert_eq!(inject["applicable"], true, "{p}");
    assert_eq!(inject["loss_unknown"], true, "{p}");
    assert!(
        inject["loses"].as_str().unwrap().contains("not compared"),
        "{inject}"
    );
    assert_eq!(p["plan"]["plan"]["remedy"], "inject-gtid", "{p}");
    assert_eq!(skip_step_gtid(&p["plan"]["plan"]), gtid);

    // Lossy, by an unknown amount: refused without the explicit option, nothing changed.
    let executed = || n2.query_value("SELECT @@GLOBAL.gtid_executed").unwrap();
    let before = executed();
    let refused = replmend(&[
        "repair",
        "--replica",
        &url,
        "--yes",
        "--remedy",
        "inject-gtid",
    ]);
    assert_eq!(
        refused.code,
        exit::REFUSED,
        "{}{}",
        refused.stdout,
        refused.stderr
    );
    assert!(
        refused.stderr.contains("--allow-data-loss"),
        "{}",
        refused.stderr
    );
    assert_eq!(executed(), before);

    let journal = journal_path("mta-source-down");
    let r = json(
        &[
            "repair",
            "--replica",
            &url,
            "--yes",
            "--remedy",
            "inject-gtid",
            "--allow-data-loss",
            "--journal",
            &journal,
            "--format",
            "json",
        ],
        0,
    );
    assert_eq!(r["outcome"], "repaired", "{r}");
    let in_executed = format!("SELECT GTID_SUBSET('{gtid}', @@GLOBAL.gtid_executed)");
    assert_eq!(count(n2, &in_executed), 1);
    // The applier runs again and applied what it had received (the receiver keeps retrying
    // the source that is down).
    let status = json(&["status", "--replica", &url, "--format", "json"], 4)["channels"][0].clone();
    assert_eq!(status["sql_thread"], "running", "{status}");
    assert!(status["last_sql_error"].is_null(), "{status}");
    assert_eq!(count(n2, "SELECT COUNT(*) FROM mta.o"), 5);
    assert_eq!(
        n2.query_value("SELECT v FROM mta.t WHERE id = 9").unwrap(),
        Some("replica".into())
    );
    let _ = std::fs::remove_file(&journal);
}

#[test]
fn source_down_conflict_count_is_unknown_not_zero() {
    for flavor in FLAVORS {
        let mut sb = incident(flavor, Topology::SourceReplica, "unique-secondary-1062");
        let url = sb.node("n2").url();
        let up = json(&["diagnose", "--replica", &url, "--format", "json"], 3);
        assert_eq!(up["conflicting_rows"], 1, "{flavor}: {up}");

        sb.stop_node("n1").unwrap();
        let d = json(&["diagnose", "--replica", &url, "--format", "json"], 3);
        assert!(d["source"].is_null(), "{flavor}: {d}");
        assert!(
            d.as_object().unwrap().contains_key("conflicting_rows")
                && d["conflicting_rows"].is_null(),
            "{flavor}: {d}"
        );
        let text = replmend(&["diagnose", "--replica", &url]);
        assert_eq!(
            text.code,
            exit::REPLICATION_ERROR,
            "{flavor}: {}",
            text.stderr
        );
        assert!(
            text.stdout.contains("unknown conflicting row(s)"),
            "{flavor}: {}",
            text.stdout
        );
        assert!(
            !text.stdout.contains("0 conflicting row(s)"),
            "{flavor}: {}",
            text.stdout
        );
    }
}
