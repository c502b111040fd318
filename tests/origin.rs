//! The origin of each conflicting row (who last wrote its key, from each node's own binary
//! log) and the incident's cause, on real servers of both flavors.

mod support;

use serde_json::Value;
use support::*;

fn diagnose(sb: &Sandbox, extra: &[&str]) -> Value {
    let url = sb.node("n2").url();
    let mut args = vec!["diagnose", "--replica", &url, "--format", "json"];
    args.extend_from_slice(extra);
    let run = replmend(&args);
    assert_eq!(
        run.code,
        exit::REPLICATION_ERROR,
        "{}: {}{}",
        sb.flavor,
        run.stdout,
        run.stderr
    );
    run.json()
}

fn server_id(sb: &Sandbox, node: &str) -> u64 {
    sb.node(node)
        .query_value("SELECT @@server_id")
        .unwrap()
        .unwrap()
        .parse()
        .unwrap()
}

/// (a) a write on the replica with its binary log on, (e) in an older binlog than the
/// current one, (f) with a budget too small to reach it.
#[test]
fn errant_write_found_in_an_older_binlog_and_budget_too_small() {
    for flavor in FLAVORS {
        let sb = incident(flavor, Topology::SourceReplica, "errant-replica-write-1062");
        let d = diagnose(&sb, &[]);
        let o = &d["conflicts"][0]["origin"]["replica"];
        assert_eq!(o["found"], true, "{flavor}: {o}");
        assert_eq!(o["server_id"], server_id(&sb, "n2"), "{flavor}: {o}");
        assert_eq!(o["writer"], "this_node", "{flavor}: {o}");
        assert_eq!(o["operation"], "write");
        assert!(o["gtid"].is_string(), "{flavor}: {o}");
        assert!(o["timestamp"].is_string(), "{flavor}: {o}");
        // MySQL: the Rows_query event (binlog_rows_query_log_events, n2.mysql.sql); MariaDB:
        // the Annotate_rows event (on by default), read with SHOW BINLOG EVENTS.
        let statement = o["statement"].as_str().unwrap_or_default();
        assert!(
            statement.contains("INSERT INTO hr.staff")
                && statement.contains("written on the replica"),
            "{flavor}: the statement is logged: {o}"
        );
        assert!(o["statement_note"].is_null(), "{flavor}: {o}");
        // The source's row: MySQL's source session did not log its statement, and says so;
        // MariaDB annotates it.
        let s = &d["conflicts"][0]["origin"]["source"];
        match flavor {
            Flavor::MySql => {
                assert!(s["statement"].is_null(), "{flavor}: {s}");
                assert!(
                    s["statement_note"]
                        .as_str()
                        .unwrap_or_default()
                        .contains("binlog_rows_query_log_events was OFF"),
                    "{flavor}: {s}"
                );
            }
            Flavor::MariaDb => assert!(
                s["statement"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("written on the source"),
                "{flavor}: {s}"
            ),
        }
        assert_eq!(
            o["row"]["values"][1], "written on the replica",
            "{flavor}: {o}"
        );
        // The write is in an older file than the replica's current binlog.
        let logs = sb.node("n2").query_rows("SHOW BINARY LOGS").unwrap();
        let newest = logs.last().unwrap()[0].clone().unwrap();
        assert_ne!(o["log_file"], newest.as_str(), "{flavor}: {o}");
        let s = &d["conflicts"][0]["origin"]["source"];
        assert_eq!(s["found"], true, "{flavor}: {s}");
        assert_eq!(
            s["writer"], "this_node",
            "{flavor}: the source wrote its own: {s}"
        );
        assert_eq!(s["server_id"], server_id(&sb, "n1"));
        let c = &d["cause"];
        assert_eq!(c["kind"], "errant_write", "{flavor}: {c}");
        assert!(
            c["evidence"]
                .as_str()
                .unwrap()
                .contains(&format!("server_id {}", server_id(&sb, "n2"))),
            "{flavor}: {c}"
        );
        assert!(
            c["prevention"]
                .as_str()
                .unwrap()
                .contains("super_read_only")
        );

        let text = replmend(&["diagnose", "--replica", &sb.node("n2").url()]);
        assert!(
            text.stdout.contains("origin replica: last written by"),
            "{flavor}: {}",
            text.stdout
        );
        assert!(
            text.stdout.contains("Cause: errant_write"),
            "{}",
            text.stdout
        );
        assert!(
            text.stdout.contains("; statement: INSERT INTO hr.staff"),
            "{flavor}: {}",
            text.stdout
        );

        let d = diagnose(&sb, &["--origin-budget", "1K,10s"]);
        let o = &d["conflicts"][0]["origin"]["replica"];
        assert_eq!(o["found"], false, "{flavor}: {o}");
        assert_eq!(o["reason"], "budget_exhausted", "{flavor}: {o}");
        assert!(
            o["explanation"].as_str().unwrap().contains("ran out at"),
            "{flavor}: {o}"
        );
        assert_ne!(d["cause"]["kind"], "errant_write", "{flavor}: no guess");
        assert_ne!(d["cause"]["kind"], "no_trace", "{flavor}: no guess");
    }
}

/// (b) the same key inserted on both masters of a pair.
#[test]
fn dual_master_race() {
    for flavor in FLAVORS {
        let sb = incident(flavor, Topology::DualMaster, "seed-dual-master-1062");
        let d = diagnose(&sb, &[]);
        let origin = &d["conflicts"][0]["origin"];
        assert_eq!(
            origin["replica"]["writer"], "this_node",
            "{flavor}: {origin}"
        );
        assert_eq!(
            origin["source"]["writer"], "this_node",
            "{flavor}: {origin}"
        );
        assert_eq!(origin["replica"]["server_id"], server_id(&sb, "n2"));
        assert_eq!(origin["source"]["server_id"], server_id(&sb, "n1"));
        let c = &d["cause"];
        assert_eq!(c["kind"], "dual_master_race", "{flavor}: {c}");
        assert!(c["gap_seconds"].is_u64(), "{flavor}: {c}");
        // The other direction, stopped on the same key: the same origins, nodes swapped.
        let rd = &d["reverse"]["diagnosis"];
        let back = &rd["conflicts"][0]["origin"];
        assert_eq!(
            back["replica"]["server_id"],
            server_id(&sb, "n1"),
            "{flavor}: {rd}"
        );
        assert_eq!(
            back["source"]["server_id"],
            server_id(&sb, "n2"),
            "{flavor}: {rd}"
        );
        assert_eq!(rd["cause"]["kind"], "dual_master_race", "{flavor}: {rd}");
    }
}

/// (c) an AUTO_INCREMENT collision with equal increments and offsets.
#[test]
fn auto_increment_collision() {
    for flavor in FLAVORS {
        let sb = incident(flavor, Topology::DualMaster, "autoinc-dual-master-1062");
        let d = diagnose(&sb, &[]);
        let c = &d["cause"];
        assert_eq!(c["kind"], "auto_increment_collision", "{flavor}: {c}");
        let evidence = c["evidence"].as_str().unwrap();
        assert!(
            evidence.contains("auto_increment_increment=1")
                && evidence.contains("auto_increment_offset=1"),
            "{flavor}: {c}"
        );
        assert!(
            c["prevention"]
                .as_str()
                .unwrap()
                .contains("auto_increment_offset")
        );
    }
}

/// (d) the replica's row written with sql_log_bin=0: not in its binary log, no trace.
#[test]
fn written_with_binary_log_off() {
    for flavor in FLAVORS {
        let sb = incident(flavor, Topology::SourceReplica, "case-insensitive-key-1062");
        let d = diagnose(&sb, &[]);
        let o = &d["conflicts"][0]["origin"]["replica"];
        assert_eq!(o["found"], false, "{flavor}: {o}");
        assert_eq!(o["reason"], "not_in_retained_logs", "{flavor}: {o}");
        assert!(o["oldest_log"].is_string(), "{flavor}: {o}");
        assert!(o["oldest_log_timestamp"].is_string(), "{flavor}: {o}");
        assert!(
            o["explanation"].as_str().unwrap().contains("sql_log_bin=0"),
            "{flavor}: {o}"
        );
        assert_eq!(d["cause"]["kind"], "no_trace", "{flavor}: {}", d["cause"]);
    }
}

/// A replica that runs without a binary log (`--skip-log-bin`): its row's writer cannot be
/// known, and the diagnosis says so rather than searching.
#[test]
fn a_replica_without_a_binary_log() {
    for flavor in FLAVORS {
        let sb = Sandbox::start_with_node_args(
            flavor.into(),
            Topology::SourceReplica,
            "n2",
            &["--skip-log-bin"],
        )
        .unwrap_or_else(|e| panic!("{flavor}: {e:#}"));
        let log_bin = sb.node("n2").query_value("SELECT @@log_bin").unwrap();
        assert_eq!(
            log_bin.as_deref(),
            Some("0"),
            "{flavor}: n2 runs without a binary log"
        );
        sb.recipe("case-insensitive-key-1062")
            .unwrap_or_else(|e| panic!("{flavor}: {e:#}"));
        let d = diagnose(&sb, &[]);
        let o = &d["conflicts"][0]["origin"]["replica"];
        assert_eq!(o["found"], false, "{flavor}: {o}");
        assert_eq!(o["reason"], "no_binary_log", "{flavor}: {o}");
        assert!(
            o["explanation"].as_str().unwrap().contains("log_bin=OFF"),
            "{flavor}: {o}"
        );
        assert_eq!(d["cause"]["kind"], "no_trace", "{flavor}: {}", d["cause"]);
        sb.stop();
    }
}

/// The replica's errant write sits in an older binlog file than 2 MiB it applied from the
/// source: its file (found from each file's Previous_gtids / Gtid_list) is read first. With a
/// budget (1 MiB) that newest first cannot get past the newest file, the write is named as a
/// candidate (newer files unread: not the answer, no cause guessed); with the default budget
/// it is the origin, the same one newest first finds, and the text says which file was read
/// first.
#[test]
fn errant_gtids_files_are_read_first() {
    for flavor in FLAVORS {
        let sb = incident(
            flavor,
            Topology::SourceReplica,
            "errant-write-older-log-1062",
        );
        let logs = sb.node("n2").query_rows("SHOW BINARY LOGS").unwrap();
        let newest = logs.last().unwrap();
        let newest_size: u64 = newest[1].clone().unwrap().parse().unwrap();
        assert!(
            newest_size > 2 << 20,
            "{flavor}: the newest file alone exceeds the 1 MiB budget: {logs:?}"
        );
        let newest = newest[0].clone().unwrap();

        let d = diagnose(&sb, &["--origin-budget", "1M,30s"]);
        let o = &d["conflicts"][0]["origin"]["replica"];
        assert_eq!(o["found"], false, "{flavor}: {o}");
        assert_eq!(o["reason"], "budget_exhausted", "{flavor}: {o}");
        let c = &o["candidate"];
        assert_eq!(c["writer"], "this_node", "{flavor}: {o}");
        assert_eq!(c["server_id"], server_id(&sb, "n2"), "{flavor}: {o}");
        assert!(c["gtid"].is_string(), "{flavor}: {o}");
        let errant_file = c["log_file"].as_str().unwrap().to_string();
        assert_ne!(errant_file, newest, "{flavor}: {o}");
        assert_eq!(
            c["unread_newer"],
            serde_json::json!([newest]),
            "{flavor}: {o}"
        );
        assert_eq!(
            o["searched_first"],
            serde_json::json!([errant_file]),
            "{flavor}: {o}"
        );
        let why = o["explanation"].as_str().unwrap();
        assert!(
            why.contains(&format!("the errant GTIDs' file(s) {errant_file} first"))
                && why.contains("a later writer is not ruled out"),
            "{flavor}: {why}"
        );
        assert_ne!(d["cause"]["kind"], "errant_write", "{flavor}: no guess");
        // The candidate's GTID is one of the replica's errant GTIDs.
        let errant = d["errant"][0]["gtids"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let gtid = c["gtid"].as_str().unwrap();
        match flavor {
            Flavor::MySql => assert!(
                errant.starts_with(gtid.rsplit_once(':').unwrap().0),
                "{flavor}: {gtid} in {errant}"
            ),
            Flavor::MariaDb => assert_eq!(errant, gtid, "{flavor}"),
        }

        let d = diagnose(&sb, &[]);
        let o = &d["conflicts"][0]["origin"]["replica"];
        assert_eq!(o["found"], true, "{flavor}: {o}");
        assert_eq!(o["log_file"], errant_file.as_str(), "{flavor}: {o}");
        assert_eq!(o["gtid"], c["gtid"], "{flavor}: {o}");
        assert_eq!(o["searched_first"], serde_json::json!([errant_file]));
        assert_eq!(
            d["cause"]["kind"], "errant_write",
            "{flavor}: {}",
            d["cause"]
        );
        let text = replmend(&["diagnose", "--replica", &sb.node("n2").url()]);
        assert!(
            text.stdout.contains(&format!(
                "the errant GTIDs' file(s) {errant_file} read first"
            )),
            "{flavor}: {}",
            text.stdout
        );
    }
}

/// The last GTID `node` logged itself: MySQL `uuid:N` of its own server_uuid, MariaDB
/// `domain-server_id-seq` from gtid_binlog_pos.
fn last_own_gtid(node: &Node, flavor: Flavor) -> String {
    match flavor {
        Flavor::MySql => {
            let uuid = node.query_value("SELECT @@server_uuid").unwrap().unwrap();
            let set = node
                .query_value("SELECT @@GLOBAL.gtid_executed")
                .unwrap()
                .unwrap()
                .replace('\n', "");
            let own = set
                .split(',')
                .find(|s| s.trim().starts_with(&uuid))
                .unwrap()
                .trim()
                .to_string();
            let last = own.rsplit([':', '-']).next().unwrap();
            format!("{uuid}:{last}")
        }
        Flavor::MariaDb => node
            .query_value("SELECT @@GLOBAL.gtid_binlog_pos")
            .unwrap()
            .unwrap(),
    }
}

/// A transaction inserting rows 7+`k` and 8+`k` stops the replica on 1062 (the replica holds
/// row 7+`k`, written with its binary log off); returns that transaction's GTID.
fn stop_on_a_two_row_insert(sb: &Sandbox, flavor: Flavor, k: u32) -> String {
    let (n1, n2) = (sb.node("n1"), sb.node("n2"));
    n2.exec(&format!(
        "SET SESSION sql_log_bin = 0; INSERT INTO shop.items VALUES ({}, 'replica')",
        7 + k
    ))
    .unwrap();
    n1.exec(&format!(
        "INSERT INTO shop.items VALUES ({}, 'source'), ({}, 'source')",
        7 + k,
        8 + k
    ))
    .unwrap();
    let gtid = last_own_gtid(n1, flavor);
    n2.wait_sql_error(1062, std::time::Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{flavor}: {e:#}"));
    gtid
}

/// The source deletes row `id`, which the replica lacks: 1032. The diagnosis.
fn stop_on_a_delete(sb: &Sandbox, flavor: Flavor, id: u32) -> Value {
    sb.node("n1")
        .exec(&format!("DELETE FROM shop.items WHERE id = {id}"))
        .unwrap();
    sb.node("n2")
        .wait_sql_error(1032, std::time::Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{flavor}: {e:#}"));
    diagnose(sb, &[])
}

/// The cause is an earlier skip of `skipped`: its evidence.
fn earlier_skip_evidence<'a>(c: &'a Value, flavor: Flavor, skipped: &str) -> &'a str {
    assert_eq!(c["kind"], "earlier_skip", "{flavor}: {c}");
    assert_eq!(c["skipped_gtid"], skipped, "{flavor}: {c}");
    c["evidence"].as_str().unwrap()
}

fn repair_with(sb: &Sandbox, remedy: &str) {
    let url = sb.node("n2").url();
    let run = replmend(&[
        "repair",
        "--replica",
        &url,
        "--remedy",
        remedy,
        "--allow-data-loss",
        "--yes",
    ]);
    assert_eq!(run.code, exit::OK, "{}{}", run.stdout, run.stderr);
    sb.node("n2")
        .wait_caught_up(std::time::Duration::from_secs(60))
        .unwrap();
}

/// A row the replica never received because the transaction that wrote it was skipped:
/// first by replmend (its journal says so), then by hand (`SET GTID_NEXT` and an empty
/// transaction on MySQL, `sql_slave_skip_counter` on MariaDB; the replica's binary log, which
/// logs what it applies, has no write of the key). Each later 1032 on the skipped
/// transaction's other row is an earlier_skip naming that transaction.
#[test]
fn a_row_lost_with_a_skipped_transaction_is_an_earlier_skip() {
    for flavor in FLAVORS {
        let sb = Sandbox::start(flavor, Topology::SourceReplica)
            .unwrap_or_else(|e| panic!("{flavor}: {e:#}"));
        let (n1, n2) = (sb.node("n1"), sb.node("n2"));
        n1.exec(
            "CREATE DATABASE shop; CREATE TABLE shop.items (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL)",
        )
        .unwrap();
        n2.wait_caught_up(std::time::Duration::from_secs(60))
            .unwrap();

        // Skipped by replmend: its journal names the skip (MariaDB replicates by file and
        // position here: the skip counter; MySQL: an empty transaction under the GTID).
        let remedy = match flavor {
            Flavor::MariaDb => "skip",
            Flavor::MySql => "inject-gtid",
        };
        let skipped = stop_on_a_two_row_insert(&sb, flavor, 0);
        repair_with(&sb, remedy);
        let d = stop_on_a_delete(&sb, flavor, 8);
        let c = &d["cause"];
        let evidence = earlier_skip_evidence(c, flavor, &skipped);
        assert!(
            evidence.contains("replmend skipped it")
                && evidence.contains(&format!("`{remedy}`"))
                && evidence.contains("journal-")
                && evidence.contains("does not hold the row it wrote"),
            "{flavor}: {evidence}"
        );
        assert!(
            c["prevention"].as_str().unwrap().contains("verify"),
            "{flavor}: {c}"
        );
        repair_with(&sb, remedy);

        // Skipped by hand: no journal, the replica's own binary log is the proof.
        let skipped = stop_on_a_two_row_insert(&sb, flavor, 10);
        match flavor {
            Flavor::MySql => n2.exec(&format!(
                "STOP REPLICA; SET GTID_NEXT = '{skipped}'; BEGIN; COMMIT; SET GTID_NEXT = 'AUTOMATIC'; START REPLICA"
            )),
            Flavor::MariaDb => {
                n2.exec("STOP SLAVE; SET GLOBAL sql_slave_skip_counter = 1; START SLAVE")
            }
        }
        .unwrap();
        n2.wait_caught_up(std::time::Duration::from_secs(60))
            .unwrap();
        let d = stop_on_a_delete(&sb, flavor, 18);
        let evidence = earlier_skip_evidence(&d["cause"], flavor, &skipped);
        assert!(
            evidence.contains("skipped on the replica outside replmend"),
            "{flavor}: {evidence}"
        );
        let text = replmend(&["diagnose", "--replica", &n2.url()]);
        assert!(
            text.stdout.contains("Cause: earlier_skip"),
            "{flavor}: {}",
            text.stdout
        );
        repair_with(&sb, remedy);

        // MySQL: a transaction the replica takes as executed without ever logging it (added to
        // gtid_purged, as a restored backup's are): nothing proves a skip, none is claimed.
        if flavor == Flavor::MySql {
            n2.exec("STOP REPLICA").unwrap();
            n1.exec("INSERT INTO shop.items VALUES (50, 'source'), (51, 'source')")
                .unwrap();
            let purged = last_own_gtid(n1, flavor);
            n2.exec(&format!(
                "SET GLOBAL gtid_purged = '+{purged}'; START REPLICA"
            ))
            .unwrap();
            n2.wait_caught_up(std::time::Duration::from_secs(60))
                .unwrap();
            let d = stop_on_a_delete(&sb, flavor, 51);
            assert_ne!(
                d["cause"]["kind"], "earlier_skip",
                "{flavor}: {}",
                d["cause"]
            );
            repair_with(&sb, remedy);
        }

        // Applied, then deleted on the replica with its binary log off: not a skip (the
        // replica's binary log holds the transaction's write).
        n1.exec("INSERT INTO shop.items VALUES (30, 'source')")
            .unwrap();
        n2.wait_caught_up(std::time::Duration::from_secs(60))
            .unwrap();
        n2.exec("SET SESSION sql_log_bin = 0; DELETE FROM shop.items WHERE id = 30")
            .unwrap();
        let d = stop_on_a_delete(&sb, flavor, 30);
        assert_ne!(
            d["cause"]["kind"], "earlier_skip",
            "{flavor}: {}",
            d["cause"]
        );
        sb.stop();
    }
}
