//! `replmend diagnose` on real incidents of both flavors.

mod support;

use serde_json::Value;
use support::*;

fn diagnose(sb: &Sandbox, node: &str) -> Value {
    let run = replmend(&[
        "diagnose",
        "--replica",
        &sb.node(node).url(),
        "--format",
        "json",
    ]);
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

fn key_values(conflict: &Value) -> Vec<Value> {
    conflict["key"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].clone())
        .collect()
}

const SEED_KEY: &str = "b98e4fab203607559fc5347b60cb64a41cf50a79650fbda3a1a4be5a1cfd16d9";

#[test]
fn seed_dual_master_both_directions_same_key() {
    for flavor in FLAVORS {
        let sb = incident(flavor, Topology::DualMaster, "seed-dual-master-1062");
        let d = diagnose(&sb, "n2");
        assert_eq!(d["schema"], "replmend.diagnosis/1");
        assert_eq!(d["kind"], "duplicate_on_write");
        assert_eq!(d["table"]["schema"], "zeus");
        assert_eq!(d["table"]["name"], "xinyan_cache");
        assert_eq!(d["key"]["name"], "PRIMARY");
        assert_eq!(d["conflicts"].as_array().unwrap().len(), 1, "{flavor}: {d}");
        let c = &d["conflicts"][0];
        assert_eq!(key_values(c), vec![Value::from(SEED_KEY)]);
        assert_eq!(c["verdict"]["verdict"], "differs", "{flavor}: {c}");
        assert!(!c["verdict"]["columns"].as_array().unwrap().is_empty());
        assert_ne!(c["replica_row"], c["source_row"]);
        assert_eq!(
            c["event_row"], c["source_row"],
            "the source still holds what it logged"
        );
        let t = &d["transaction"];
        assert!(
            t["source_log_file"].as_str().unwrap().contains("1-bin."),
            "{t}"
        );
        assert!(t["start_pos"].as_u64().unwrap() < t["end_pos"].as_u64().unwrap());
        assert!(t["gtid"].is_string(), "{flavor}: the GTID is known: {t}");
        assert_eq!(t["rows_total"], 1);
        let rev = &d["reverse"];
        assert_eq!(rev["dual_master"], true, "{flavor}: {rev}");
        assert_eq!(rev["stopped"], true);
        assert_eq!(rev["errno"], 1062);
        assert_eq!(rev["same_key"], true, "{flavor}: {rev}");
        assert_eq!(
            key_values(&rev["diagnosis"]["conflicts"][0]),
            vec![Value::from(SEED_KEY)]
        );

        let text = replmend(&["diagnose", "--replica", &sb.node("n1").url()]);
        assert_eq!(text.code, exit::REPLICATION_ERROR);
        assert!(
            text.stdout
                .contains("stopped with error 1062 on zeus.xinyan_cache"),
            "{}",
            text.stdout
        );
        assert!(text.stdout.contains("Dual-master"), "{}", text.stdout);
        assert!(!text.stdout.contains('\u{1b}'), "no colour when piped");
    }
}

#[test]
fn named_unique_key_composite_key_and_batch() {
    for flavor in FLAVORS {
        let sb = incident(flavor, Topology::SourceReplica, "unique-secondary-1062");
        let d = diagnose(&sb, "n2");
        assert_eq!(d["key"]["kind"], "unique", "{flavor}: {d}");
        assert_eq!(d["key"]["name"], "uk_email");
        assert_eq!(d["conflicts"].as_array().unwrap().len(), 1);

        let sb = incident(flavor, Topology::SourceReplica, "composite-pk-quotes-1062");
        let d = diagnose(&sb, "n2");
        let c = &d["conflicts"][0];
        assert_eq!(d["key"]["columns"].as_array().unwrap().len(), 2, "{d}");
        assert_eq!(
            key_values(c),
            vec![Value::from("x-1'q"), Value::from("7")],
            "{flavor}: {c}"
        );
    }
}

#[test]
fn fifty_row_transaction_with_one_conflict() {
    for flavor in FLAVORS {
        let sb = incident(
            flavor,
            Topology::SourceReplica,
            "batch-50-one-conflict-1062",
        );
        let d = diagnose(&sb, "n2");
        assert_eq!(
            d["transaction"]["rows_total"], 50,
            "{flavor}: {}",
            d["transaction"]
        );
        assert_eq!(d["conflicts"].as_array().unwrap().len(), 1, "{flavor}");
    }
}

#[test]
fn missing_rows_1032_update_and_delete() {
    for flavor in FLAVORS {
        for (recipe, kind) in [
            ("update-missing-1032", "missing_on_update"),
            ("delete-missing-1032", "missing_on_delete"),
        ] {
            let sb = incident(flavor, Topology::SourceReplica, recipe);
            let d = diagnose(&sb, "n2");
            assert_eq!(d["kind"], kind, "{flavor} {recipe}: {d}");
            assert_eq!(d["error"]["errno"], 1032);
            let c = &d["conflicts"][0];
            assert!(c["replica_row"].is_null());
            let verdict = c["verdict"]["verdict"].as_str().unwrap();
            assert!(
                matches!(verdict, "absent_on_replica" | "absent_on_both"),
                "{flavor} {recipe}: {c}"
            );
        }
    }
}

#[test]
fn hostile_names_and_values() {
    for flavor in FLAVORS {
        let sb = incident(flavor, Topology::SourceReplica, "hostile-values-1062");
        let d = diagnose(&sb, "n2");
        let c = &d["conflicts"][0];
        assert_eq!(c["verdict"]["verdict"], "differs", "{flavor}: {c}");
        let names = c["source_row"]["columns"].as_array().unwrap();
        assert!(
            names.iter().any(|n| n.as_str().unwrap().contains('`')),
            "{names:?}"
        );
        let text = replmend(&["diagnose", "--replica", &sb.node("n2").url()]);
        assert_eq!(text.code, exit::REPLICATION_ERROR, "{}", text.stderr);
    }
}

#[test]
fn healthy_unknown_error_and_unreachable_source() {
    for flavor in FLAVORS {
        let sb = Sandbox::start(flavor, Topology::SourceReplica).unwrap();
        let healthy = replmend(&["diagnose", "--replica", &sb.node("n2").url()]);
        assert_eq!(healthy.code, exit::OK, "{}", healthy.stderr);
        assert!(
            healthy.stderr.contains("nothing to diagnose"),
            "{}",
            healthy.stderr
        );

        // An error that is not a row conflict: the table is gone on the replica.
        sb.node("n1")
            .exec("CREATE DATABASE odd; CREATE TABLE odd.t (id INT PRIMARY KEY)")
            .unwrap();
        sb.node("n2")
            .wait_caught_up(std::time::Duration::from_secs(20))
            .unwrap();
        sb.node("n2")
            .exec("SET sql_log_bin = 0; DROP TABLE odd.t")
            .unwrap();
        sb.node("n1").exec("INSERT INTO odd.t VALUES (1)").unwrap();
        sb.node("n2")
            .wait_sql_error(1146, std::time::Duration::from_secs(20))
            .unwrap();
        let unknown = replmend(&[
            "diagnose",
            "--replica",
            &sb.node("n2").url(),
            "--format",
            "json",
        ]);
        assert_eq!(
            unknown.code,
            exit::UNSUPPORTED_INCIDENT,
            "{}",
            unknown.stderr
        );
        assert!(unknown.stderr.contains("1146"), "{}", unknown.stderr);
    }
    // The source unreachable: diagnose from what the replica has and say what is missing.
    let sb = incident(
        Flavor::MariaDb,
        Topology::SourceReplica,
        "unique-secondary-1062",
    );
    let run = replmend(&[
        "diagnose",
        "--replica",
        &sb.node("n2").url(),
        "--source",
        "mysql://root@127.0.0.1:1",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, exit::REPLICATION_ERROR, "{}", run.stderr);
    let d = run.json();
    assert!(d["source"].is_null());
    assert!(
        d["missing"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m.as_str().unwrap().contains("could not be reached")),
        "{d}"
    );
    assert!(d["table"]["name"].as_str().is_some());
}

#[test]
fn minimal_images_compressed_transactions_and_statement_events() {
    for flavor in FLAVORS {
        let sb = incident(flavor, Topology::SourceReplica, "minimal-image-1032");
        let d = diagnose(&sb, "n2");
        let c = &d["conflicts"][0];
        assert_eq!(d["kind"], "missing_on_update");
        assert_eq!(
            c["event_before"]["columns"],
            serde_json::json!(["id"]),
            "{flavor}: MINIMAL before image: {c}"
        );
        assert_eq!(
            c["source_row"]["values"][1], "seven",
            "{flavor}: the source's current row fills the gaps"
        );

        let sb = incident(
            flavor,
            Topology::SourceReplica,
            "compressed-transaction-1062",
        );
        let d = diagnose(&sb, "n2");
        assert_eq!(d["transaction"]["rows_total"], 3, "{flavor}: {d}");
        assert_eq!(d["conflicts"][0]["key"][0]["value"], "3");

        let sb = incident(flavor, Topology::SourceReplica, "statement-based-1062");
        let run = replmend(&["diagnose", "--replica", &sb.node("n2").url()]);
        assert_eq!(
            run.code,
            exit::UNSUPPORTED_INCIDENT,
            "{flavor}: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains("statement-based") && run.stderr.contains("INSERT INTO legacy.t"),
            "{}",
            run.stderr
        );
    }
}

/// The decoder's proof: every value of the row image read from the binlog equals what SELECT
/// returns on the source, for every column type.
#[test]
fn row_images_decode_every_type_exactly() {
    for flavor in FLAVORS {
        let sb = incident(flavor, Topology::SourceReplica, "all-types-1062");
        let d = diagnose(&sb, "n2");
        let c = &d["conflicts"][0];
        let cols = c["event_row"]["columns"].as_array().unwrap();
        assert_eq!(cols.len(), 33, "{flavor}: {c}");
        for (i, name) in cols.iter().enumerate() {
            assert_eq!(
                c["event_row"]["values"][i], c["source_row"]["values"][i],
                "{flavor}: column {name}"
            );
        }
    }
}

#[test]
fn table_without_a_usable_key_is_diagnosed_and_left_alone() {
    for flavor in FLAVORS {
        let sb = incident(flavor, Topology::SourceReplica, "no-key-1032");
        let d = diagnose(&sb, "n2");
        assert!(d["key"].is_null());
        assert!(
            d["missing"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m.as_str().unwrap().contains("no usable unique key")),
            "{d}"
        );
        let plan = replmend(&[
            "plan",
            "--replica",
            &sb.node("n2").url(),
            "--format",
            "json",
        ])
        .json();
        let overwrite = plan["plan"]["options"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["remedy"] == "overwrite")
            .unwrap()
            .clone();
        assert_eq!(overwrite["applicable"], false, "{flavor}: {overwrite}");
        let before = sb
            .node("n2")
            .query_rows("SELECT * FROM heap.events ORDER BY ts")
            .unwrap();
        let run = replmend(&[
            "repair",
            "--replica",
            &sb.node("n2").url(),
            "--yes",
            "--remedy",
            "overwrite",
        ]);
        assert_eq!(run.code, exit::REFUSED, "{flavor}: {}", run.stderr);
        assert_eq!(
            sb.node("n2")
                .query_rows("SELECT * FROM heap.events ORDER BY ts")
                .unwrap(),
            before
        );
    }
}

#[test]
fn without_performance_schema_access_the_reason_is_named() {
    let sb = incident(
        Flavor::MySql,
        Topology::SourceReplica,
        "unique-secondary-1062",
    );
    sb.node("n2")
        .exec("SET sql_log_bin = 0; CREATE USER 'nops'@'127.0.0.1'; GRANT REPLICATION CLIENT, REPLICATION SLAVE ON *.* TO 'nops'@'127.0.0.1'; GRANT SELECT ON shop.* TO 'nops'@'127.0.0.1'")
        .unwrap();
    let url = sb.node("n2").url().replace("root@", "nops@");
    let run = replmend(&["diagnose", "--replica", &url]);
    assert_eq!(
        run.code,
        exit::UNSUPPORTED_INCIDENT,
        "{}{}",
        run.stdout,
        run.stderr
    );
    assert!(run.stderr.contains("performance_schema"), "{}", run.stderr);
}

/// MySQL's multi-threaded applier (the default) reports a checkpoint as Exec_Source_Log_Pos,
/// possibly hundreds of transactions before the failing one: diagnose starts at the last
/// boundary a worker committed before the failed event, so it reads the transaction, not the
/// backlog.
#[test]
fn multi_threaded_replica_reads_the_failing_transaction_not_the_backlog() {
    let sb = Sandbox::start(Flavor::MySql, Topology::SourceReplica).unwrap();
    let (n1, n2) = (sb.node("n1"), sb.node("n2"));
    n1.exec(
        "CREATE DATABASE backlog; \
         CREATE TABLE backlog.filler (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(100)); \
         CREATE TABLE backlog.t (id INT PRIMARY KEY, v VARCHAR(20))",
    )
    .unwrap();
    n2.wait_caught_up(std::time::Duration::from_secs(30))
        .unwrap();
    n2.exec("SET sql_log_bin = 0; INSERT INTO backlog.t VALUES (1, 'replica')")
        .unwrap();
    let filler = "INSERT INTO backlog.filler (v) VALUES (REPEAT('y', 100));".repeat(5000);
    n1.exec(&format!(
        "{filler} INSERT INTO backlog.t VALUES (1, 'source')"
    ))
    .unwrap();
    n2.wait_sql_error(1062, std::time::Duration::from_secs(120))
        .unwrap();
    let d = diagnose(&sb, "n2");
    let t = &d["transaction"];
    let size = t["end_pos"].as_u64().unwrap() - t["start_pos"].as_u64().unwrap();
    let read = t["bytes_read"].as_u64().unwrap();
    assert_eq!(d["conflicts"].as_array().unwrap().len(), 1, "{d}");
    // A few transactions committed by no worker yet may precede it; never the checkpoint's
    // backlog (hundreds of 190-byte transactions).
    assert!(
        read < size + 4096,
        "read {read} bytes for a {size}-byte transaction: {t}"
    );
}

/// A table definition read once in a process is reused by later sessions only while the
/// table's `SHOW CREATE TABLE` is unchanged: a column or key added since (a watch daemon lives
/// for weeks) is read again; the AUTO_INCREMENT counter moving is not a change.
#[test]
fn a_definition_changed_since_it_was_read_is_read_again() {
    use replmend::conn::{Server, SpecInput};
    for flavor in FLAVORS {
        let sb = Sandbox::start(flavor, Topology::SourceReplica).unwrap();
        let n1 = sb.node("n1");
        n1.exec("CREATE DATABASE d; CREATE TABLE d.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
            .unwrap();
        let input = SpecInput {
            dsn: Some(n1.url()),
            ..Default::default()
        };
        let spec = replmend::conn::spec::resolve(&input, None).unwrap();
        let table = replmend::diagnosis::TableRef {
            schema: "d".into(),
            name: "t".into(),
        };
        let columns = |spec| {
            let mut s = Server::connect(spec).unwrap();
            let t = s.table(&table).unwrap();
            let uniques: Vec<Vec<String>> =
                t.unique_keys.iter().map(|k| k.columns.clone()).collect();
            (t.column_names(), uniques)
        };
        let id = || vec!["id".to_string()];
        assert_eq!(columns(&spec), (vec!["id".into(), "v".into()], vec![id()]));
        n1.exec("INSERT INTO d.t (v) VALUES (1), (2)").unwrap();
        assert_eq!(
            columns(&spec).0,
            vec!["id".to_string(), "v".into()],
            "{flavor}"
        );
        n1.exec("ALTER TABLE d.t ADD COLUMN w VARCHAR(5), ADD UNIQUE KEY uv (v)")
            .unwrap();
        assert_eq!(
            columns(&spec),
            (
                vec!["id".into(), "v".into(), "w".into()],
                vec![id(), vec!["v".to_string()]]
            ),
            "{flavor}: the new column and key are seen by a later session"
        );
    }
}
