//! Safety by construction, on real servers of both flavors: read_only / super_read_only
//! replicas, a source that is down, two records on one AUTO_INCREMENT key (rekey), a failure
//! injected at every step, private journals, exit codes and words instead of debug text.

mod support;

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use support::*;

/// No Rust debug structure ever reaches a user.
fn assert_words(run: &Run) {
    for needle in [
        "MySqlError",
        "CodecError",
        "Error {",
        "DriverError",
        "IoError {",
    ] {
        assert!(
            !run.stderr.contains(needle) && !run.stdout.contains(needle),
            "debug text `{needle}` in output:\n{}\n{}",
            run.stdout,
            run.stderr
        );
    }
}

fn value(node: &replmend_sandbox::Node, sql: &str) -> String {
    node.query_value(sql).unwrap().unwrap_or_default()
}

/// What a refusal must leave as it found it: threads, errors, rows, binlog, GTIDs.
fn world(sb: &Sandbox, db: &str, table: &str) -> Vec<String> {
    let mut out = Vec::new();
    for n in &sb.nodes {
        let st = n.replica_status().unwrap().unwrap_or_default();
        for col in [
            "Slave_IO_Running",
            "Replica_IO_Running",
            "Slave_SQL_Running",
            "Replica_SQL_Running",
            "Last_SQL_Errno",
        ] {
            out.push(format!("{}:{col}={:?}", n.name, st.get(col)));
        }
        out.push(format!("{:?}", n.checksum_table(db, table).unwrap()));
        let gtid = match sb.flavor {
            Flavor::MariaDb => "SELECT CONCAT(@@gtid_binlog_pos, '|', @@gtid_slave_pos)",
            Flavor::MySql => "SELECT @@gtid_executed",
        };
        out.push(value(n, gtid));
    }
    out
}

fn dba_grants(flavor: Flavor) -> &'static str {
    // Exactly the documented grants (docs/privileges.md).
    match flavor {
        Flavor::MariaDb => {
            "SELECT, INSERT, DELETE, SUPER, REPLICATION SLAVE, REPLICATION SLAVE ADMIN, SLAVE MONITOR, BINLOG ADMIN, BINLOG MONITOR"
        }
        Flavor::MySql => {
            "SELECT, INSERT, DELETE, REPLICATION SLAVE, REPLICATION CLIENT, REPLICATION_SLAVE_ADMIN, SYSTEM_VARIABLES_ADMIN"
        }
    }
}

fn create_user(sb: &Sandbox, user: &str, grants: &str) {
    for n in &sb.nodes {
        n.exec(&format!(
            "SET SESSION sql_log_bin = 0; CREATE USER '{user}'@'127.0.0.1'; GRANT {grants} ON *.* TO '{user}'@'127.0.0.1'"
        ))
        .unwrap();
        if sb.flavor == Flavor::MySql {
            n.exec(&format!(
                "SET SESSION sql_log_bin = 0; GRANT SELECT ON performance_schema.* TO '{user}'@'127.0.0.1'"
            ))
            .unwrap();
        }
    }
}

#[test]
fn read_only_replica_refused_cleanly_then_repaired_with_lift_read_only() {
    for flavor in FLAVORS {
        let sb = incident(
            flavor,
            Topology::SourceReplica,
            "batch-50-one-conflict-1062",
        );
        let n2 = sb.node("n2");
        let (ro_on, check) = match flavor {
            Flavor::MariaDb => ("SET GLOBAL read_only = ON", "SELECT @@global.read_only"),
            Flavor::MySql => (
                "SET GLOBAL super_read_only = ON",
                "SELECT CONCAT(@@global.read_only, @@global.super_read_only)",
            ),
        };
        create_user(&sb, "dba", dba_grants(flavor));
        n2.exec(ro_on).unwrap();
        let ro_value = value(n2, check);
        let url = n2.url().replace("root@", "dba@");
        let journal = journal_path(&format!("ro-{flavor}"));
        let before = world(&sb, "metrics", "samples");
        let run = replmend(&[
            "repair",
            "--replica",
            &url,
            "--yes",
            "--remedy",
            "overwrite",
            "--journal",
            &journal,
        ]);
        assert_eq!(
            run.code,
            exit::REFUSED,
            "{flavor}: {}{}",
            run.stdout,
            run.stderr
        );
        assert_words(&run);
        assert!(
            run.stderr.contains("read_only=ON") && run.stderr.contains("--lift-read-only"),
            "{flavor}: {}",
            run.stderr
        );
        assert_eq!(
            before,
            world(&sb, "metrics", "samples"),
            "{flavor}: nothing changed"
        );
        assert!(
            !std::path::Path::new(&journal).exists(),
            "{flavor}: no journal line"
        );

        // Lifting read_only needs its own privilege on MariaDB 10.11 (READ_ONLY ADMIN).
        let lift_user = match flavor {
            Flavor::MariaDb => {
                create_user(
                    &sb,
                    "dba2",
                    &format!("{}, READ_ONLY ADMIN", dba_grants(flavor)),
                );
                n2.url().replace("root@", "dba2@")
            }
            Flavor::MySql => url.clone(),
        };
        // Killed right after lifting read_only (step 2): the journal has the lift, and the
        // next run puts read_only back before anything else.
        // The crashed run wrote another journal: the next run finds the lift in the ledger
        // (its own state directory here, so parallel tests do not share it).
        let state =
            std::env::temp_dir().join(format!("replmend-state-{}-{flavor}", std::process::id()));
        let state_env = state.display().to_string();
        let crash_journal = journal_path(&format!("ro-crash-{flavor}"));
        let crashed = replmend_env(
            &[
                "repair",
                "--replica",
                &lift_user,
                "--yes",
                "--remedy",
                "overwrite",
                "--lift-read-only",
                "--journal",
                &crash_journal,
            ],
            &[
                ("REPLMEND_TEST_CRASH_AFTER_STEP", "2"),
                ("XDG_STATE_HOME", &state_env),
            ],
        );
        assert_ne!(crashed.code, exit::OK, "{flavor}: {}", crashed.stderr);
        assert_ne!(
            value(n2, check),
            ro_value,
            "{flavor}: the crash left read_only off"
        );
        let run = replmend_env(
            &[
                "repair",
                "--replica",
                &lift_user,
                "--yes",
                "--remedy",
                "overwrite",
                "--lift-read-only",
                "--journal",
                &journal,
                "--format",
                "json",
            ],
            &[("XDG_STATE_HOME", &state_env)],
        );
        let _ = (
            std::fs::remove_dir_all(&state),
            std::fs::remove_file(&crash_journal),
        );
        assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
        assert!(
            run.stderr.contains("it is ON again"),
            "{flavor}: {}",
            run.stderr
        );
        assert_eq!(
            value(n2, check),
            ro_value,
            "{flavor}: read-only state put back exactly"
        );
        let j = run.json();
        let actions: Vec<String> = j["incidents"][0]["plan"]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["action"].as_str().unwrap().to_string())
            .collect();
        let lift = actions
            .iter()
            .position(|a| a == "lift_read_only")
            .expect("lift step");
        let del = actions
            .iter()
            .position(|a| a == "delete_conflicting_rows")
            .unwrap();
        let restore = actions
            .iter()
            .position(|a| a == "restore_read_only")
            .expect("restore step");
        assert!(lift < del && del < restore, "{flavor}: {actions:?}");
        n2.wait_caught_up(Duration::from_secs(30)).unwrap();
        let q = "SELECT COUNT(*), SUM(v) FROM metrics.samples";
        assert_eq!(
            sb.node("n1").query_rows(q).unwrap(),
            n2.query_rows(q).unwrap()
        );
        let mode = std::fs::metadata(&journal).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600, "{flavor}: the journal is private");
        assert_eq!(journaled_rows(&journal), 1);
        let _ = std::fs::remove_file(&journal);
    }
}

#[test]
fn keep_with_the_source_down_is_refused_and_arms_nothing() {
    for flavor in FLAVORS {
        let sb = incident(
            flavor,
            Topology::SourceReplicaGtid,
            "batch-50-one-conflict-1062",
        );
        let (n1, n2) = (sb.node("n1"), sb.node("n2"));
        n1.exec("SHUTDOWN").unwrap();
        std::thread::sleep(Duration::from_millis(500));
        let journal = journal_path(&format!("down-{flavor}"));
        let plan = replmend(&["plan", "--replica", &n2.url(), "--format", "json"]);
        assert_words(&plan);
        let j = plan.json();
        let keep = j["plan"]["options"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["remedy"] == "keep")
            .cloned()
            .unwrap();
        // MariaDB's status names no GTID: the skip would be blind. MySQL's failed worker names
        // it (APPLYING_TRANSACTION): keep skips by it, losing an unknown number of rows, so only
        // with --allow-data-loss (tests/mta.rs applies it); never by the skip counter.
        let accepted: &[&str] = match flavor {
            Flavor::MariaDb => {
                assert_eq!(keep["applicable"], false, "{flavor}: {keep}");
                assert!(
                    keep["why_not"].as_str().unwrap().contains("GTID"),
                    "{flavor}: {keep}"
                );
                &["--allow-data-loss"]
            }
            Flavor::MySql => {
                assert_eq!(keep["applicable"], true, "{flavor}: {keep}");
                assert_eq!(keep["loss_unknown"], true, "{flavor}: {keep}");
                &[]
            }
        };
        let url = n2.url();
        let mut args = vec![
            "repair",
            "--replica",
            &url,
            "--yes",
            "--remedy",
            "keep",
            "--journal",
            &journal,
        ];
        args.extend_from_slice(accepted);
        let run = replmend(&args);
        assert_eq!(
            run.code,
            exit::REFUSED,
            "{flavor}: {}{}",
            run.stdout,
            run.stderr
        );
        assert_words(&run);
        let counter = match flavor {
            Flavor::MariaDb => "SELECT @@global.sql_slave_skip_counter",
            Flavor::MySql => "SELECT @@global.sql_replica_skip_counter",
        };
        assert_eq!(
            value(n2, counter),
            "0",
            "{flavor}: the skip counter is not armed"
        );
        assert_eq!(n2.sql_error().unwrap().map(|e| e.0), Some(1062));
        assert!(!std::path::Path::new(&journal).exists());
    }
}

fn names(node: &replmend_sandbox::Node, sql: &str) -> Vec<Vec<Option<String>>> {
    node.query_rows(sql).unwrap()
}

#[test]
fn rekey_keeps_both_records_of_an_auto_increment_collision_on_both_nodes() {
    for (flavor, recipe, query) in [
        (
            Flavor::MariaDb,
            "autoinc-dual-master-1062",
            "SELECT id, name, email FROM app.customers ORDER BY id",
        ),
        (
            Flavor::MySql,
            "gipk-dual-master-1062",
            "SELECT my_row_id, name, email FROM gipk.signups ORDER BY my_row_id",
        ),
        (
            Flavor::MySql,
            "autoinc-dual-master-1062",
            "SELECT id, name, email FROM app.customers ORDER BY id",
        ),
    ] {
        let sb = incident(flavor, Topology::DualMaster, recipe);
        let (n1, n2) = (sb.node("n1"), sb.node("n2"));
        let plan = replmend(&["plan", "--replica", &n2.url(), "--format", "json"]);
        let j = plan.json();
        let options = j["plan"]["options"].as_array().unwrap();
        assert_eq!(options[0]["remedy"], "rekey", "{flavor} {recipe}: {j}");
        assert_eq!(options[0]["recommended"], true);
        let overwrite = options.iter().find(|o| o["remedy"] == "overwrite").unwrap();
        assert_eq!(
            overwrite["records_lost"], 1,
            "{flavor}: overwrite would lose bob"
        );
        let text = replmend(&["plan", "--replica", &n2.url()]);
        assert!(
            text.stdout.contains("auto_increment_offset"),
            "{}",
            text.stdout
        );
        let journal = journal_path(&format!("rekey-{flavor}-{recipe}"));
        let run = replmend(&[
            "repair",
            "--replica",
            &n2.url(),
            "--yes",
            "--journal",
            &journal,
        ]);
        assert_eq!(
            run.code,
            exit::OK,
            "{flavor} {recipe}: {}{}",
            run.stdout,
            run.stderr
        );
        assert_words(&run);
        n1.wait_caught_up(Duration::from_secs(30)).unwrap();
        n2.wait_caught_up(Duration::from_secs(30)).unwrap();
        let (a, b) = (names(n1, query), names(n2, query));
        assert_eq!(a, b, "{flavor} {recipe}: both nodes agree");
        let all: Vec<String> = a.iter().map(|r| r[1].clone().unwrap()).collect();
        assert!(
            all.contains(&"alice".to_string()) && all.contains(&"bob".to_string()),
            "{flavor} {recipe}: both records kept: {a:?}"
        );
        let _ = std::fs::remove_file(&journal);
    }
}

#[test]
fn a_failure_at_any_step_leaves_the_topology_as_found_and_a_rerun_converges() {
    const ROW: &str = "SELECT payload, hits FROM zeus.xinyan_cache WHERE id = 'b98e4fab203607559fc5347b60cb64a41cf50a79650fbda3a1a4be5a1cfd16d9'";
    for flavor in FLAVORS {
        for step in 1..=8 {
            let sb = incident(flavor, Topology::DualMaster, "seed-dual-master-1062");
            let (n1, n2) = (sb.node("n1"), sb.node("n2"));
            let winner = n1.query_rows(ROW).unwrap();
            let journal = journal_path(&format!("fail-{flavor}-{step}"));
            let args = [
                "repair",
                "--replica",
                &n2.url(),
                "--yes",
                "--journal",
                &journal,
            ];
            let failed = replmend_env(&args, &[("REPLMEND_TEST_FAIL_AT_STEP", &step.to_string())]);
            assert_eq!(
                failed.code,
                exit::FAILURE,
                "{flavor} step {step}: {}{}",
                failed.stdout,
                failed.stderr
            );
            assert_words(&failed);
            assert!(
                failed.stderr.contains("failure injected"),
                "{}",
                failed.stderr
            );
            // Every receiver replmend stopped was started again: Yes, or still
            // Connecting/Preparing under load; never No.
            for n in [n1, n2] {
                let st = n.replica_status().unwrap().unwrap();
                let io = st
                    .get("Slave_IO_Running")
                    .or_else(|| st.get("Replica_IO_Running"))
                    .cloned()
                    .flatten();
                assert_ne!(
                    io.as_deref(),
                    Some("No"),
                    "{flavor} step {step} {}: {}",
                    n.name,
                    failed.stderr
                );
            }
            // The delete is step 3: failing there rolls it back, and the journal says so.
            let expected_rows = usize::from(step > 3);
            assert_eq!(
                journaled_rows(&journal),
                expected_rows,
                "{flavor} step {step}"
            );
            let rerun = replmend(&args);
            assert_eq!(
                rerun.code,
                exit::OK,
                "{flavor} step {step} re-run: {}{}",
                rerun.stdout,
                rerun.stderr
            );
            n1.wait_caught_up(Duration::from_secs(30)).unwrap();
            n2.wait_caught_up(Duration::from_secs(30)).unwrap();
            assert_eq!(n1.query_rows(ROW).unwrap(), winner, "{flavor} step {step}");
            assert_eq!(n2.query_rows(ROW).unwrap(), winner, "{flavor} step {step}");
            let _ = std::fs::remove_file(&journal);
        }
    }
}

#[test]
fn repair_of_a_stopped_replica_without_an_error_is_not_healthy() {
    for flavor in FLAVORS {
        let sb = Sandbox::start(flavor, Topology::SourceReplica).unwrap();
        let n2 = sb.node("n2");
        let word = match flavor {
            Flavor::MariaDb => "SLAVE",
            Flavor::MySql => "REPLICA",
        };
        n2.exec(&format!("STOP {word} SQL_THREAD")).unwrap();
        let run = replmend(&["repair", "--replica", &n2.url(), "--yes"]);
        assert_eq!(
            run.code,
            exit::NOT_RUNNING,
            "{flavor}: {}{}",
            run.stdout,
            run.stderr
        );
        assert!(!run.stderr.contains("healthy"), "{}", run.stderr);
        // Bad values on the command line exit 2; a bad column for --winner is bad input (8).
        let run = replmend(&["plan", "--replica", &n2.url(), "--remedy", "bogus"]);
        assert_eq!(run.code, exit::USAGE, "{}", run.stderr);
        let run = replmend(&["status", "--replica", &n2.url(), "--ssl-mode", "sometimes"]);
        assert_eq!(run.code, exit::USAGE, "{}", run.stderr);
    }
}

/// What the general log shows replmend sent that changes something or locks a row.
fn is_change(sql: &str) -> bool {
    let u = sql.trim_start().to_ascii_uppercase();
    if u.contains("GENERAL_LOG") {
        return false;
    }
    [
        "STOP ",
        "START ",
        "SET GLOBAL",
        "SET SESSION",
        "SET GTID_NEXT",
        "SET @@",
        "BEGIN",
        "COMMIT",
        "ROLLBACK",
        "DELETE",
        "INSERT",
        "UPDATE",
        "REPLACE",
    ]
    .iter()
    .any(|p| u.starts_with(p))
        || (u.starts_with("SELECT") && u.trim_end().ends_with("FOR UPDATE"))
}

/// The logged statements that change something, and the plain reads inside a write's
/// transaction (the read-back of inserted rows before COMMIT, planned like any statement);
/// the other reads (diagnosis, the comparison after) are not part of a plan.
fn changes_and_read_backs(logged: Vec<String>) -> Vec<String> {
    let mut in_transaction = false;
    let mut out = Vec::new();
    for a in logged {
        let u = a.trim_start().to_ascii_uppercase();
        if u.starts_with("START TRANSACTION") || u.starts_with("BEGIN") {
            in_transaction = true;
        } else if u.starts_with("COMMIT") || u.starts_with("ROLLBACK") {
            in_transaction = false;
        } else if in_transaction && u.starts_with("SELECT") {
            out.push(a);
            continue;
        }
        if is_change(&a) {
            out.push(a);
        }
    }
    out
}

/// A logged statement is the planned one: the same text, with the bound values where the
/// plan has `?`.
fn same_statement(planned: &str, logged: &str) -> bool {
    let parts: Vec<&str> = planned.split('?').collect();
    if parts.len() == 1 {
        return planned == logged.trim();
    }
    let mut rest = logged;
    for (i, part) in parts.iter().enumerate() {
        match rest.find(part) {
            Some(at) if i > 0 || at == 0 => rest = &rest[at + part.len()..],
            _ => return false,
        }
    }
    true
}

fn general_log(node: &replmend_sandbox::Node, on: bool) {
    // One session with the binary log off: a TRUNCATE of the log table on the source would
    // otherwise replicate and wipe the replica's log when its applier restarts.
    let statements: &[&str] = if on {
        &[
            "SET SESSION sql_log_bin = 0",
            "SET GLOBAL general_log = OFF",
            "SET GLOBAL log_output = 'TABLE'",
            "TRUNCATE TABLE mysql.general_log",
            "SET GLOBAL general_log = ON",
        ]
    } else {
        &["SET GLOBAL general_log = OFF"]
    };
    use mysql::prelude::Queryable;
    let mut conn = node.conn().unwrap();
    for sql in statements {
        conn.query_drop(sql).unwrap();
    }
}

#[test]
fn the_statements_the_servers_receive_are_the_dry_runs() {
    let mut recipes = ONE_INCIDENT_RECIPES.to_vec();
    recipes.extend([
        (Topology::DualMaster, "seed-dual-master-1062"),
        (Topology::DualMaster, "autoinc-dual-master-1062"),
    ]);
    for flavor in FLAVORS {
        for &(topology, recipe) in &recipes {
            let sb = incident(flavor, topology, recipe);
            let n2 = sb.node("n2");
            let dry = replmend(&[
                "repair",
                "--replica",
                &n2.url(),
                "--dry-run",
                "--format",
                "json",
            ]);
            assert_eq!(dry.code, exit::OK, "{flavor} {recipe}: {}", dry.stderr);
            let plan = dry.json()["plan"]["plan"].clone();
            let remedy = plan["remedy"].as_str().unwrap().to_string();
            for n in &sb.nodes {
                general_log(n, true);
            }
            let run = replmend(&[
                "repair",
                "--replica",
                &n2.url(),
                "--yes",
                "--remedy",
                &remedy,
                "--allow-data-loss",
                "--journal",
                &journal_path(&format!("gl-{flavor}-{recipe}")),
            ]);
            for n in &sb.nodes {
                general_log(n, false);
            }
            assert_eq!(
                run.code,
                exit::OK,
                "{flavor} {recipe}: {}{}",
                run.stdout,
                run.stderr
            );
            for n in &sb.nodes {
                let endpoint = format!("127.0.0.1:{}", n.port);
                let planned: Vec<String> = plan["steps"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|s| s["endpoint"] == endpoint.as_str())
                    .flat_map(|s| {
                        let mut v = s["session"].as_array().unwrap().clone();
                        v.extend(s["statements"].as_array().unwrap().iter().cloned());
                        v
                    })
                    .map(|st| st["sql"].as_str().unwrap().to_string())
                    .collect();
                let all = n
                    .query_rows(
                        // Client sessions only: the replication applier's own BEGIN/COMMIT
                        // are logged too on MariaDB.
                        "SELECT thread_id, command_type, argument FROM mysql.general_log \
                         WHERE user_host LIKE '%127.0.0.1%'",
                    )
                    .unwrap();
                let all: Vec<(String, String)> = all
                    .into_iter()
                    .filter(|r| matches!(r[1].as_deref(), Some("Query" | "Execute")))
                    .filter_map(|r| Some((r[0].clone()?, r[2].clone()?)))
                    .collect();
                // Sessions that only read (the origin search beside the repair, on sessions
                // of its own) interleave with the plan's in the log: the plan's sessions are
                // the ones that change something or open a transaction.
                let writers: std::collections::HashSet<&String> = all
                    .iter()
                    .filter(|(_, a)| {
                        let u = a.trim_start().to_ascii_uppercase();
                        is_change(a) || u.starts_with("START TRANSACTION") || u.starts_with("BEGIN")
                    })
                    .map(|(t, _)| t)
                    .collect();
                let logged: Vec<String> = all
                    .iter()
                    .filter(|(t, _)| writers.contains(t))
                    .map(|(_, a)| a.clone())
                    .collect();
                let logged = changes_and_read_backs(logged);
                assert_eq!(
                    planned.len(),
                    logged.len(),
                    "{flavor} {recipe} {}: planned {planned:#?}\nreceived {logged:#?}",
                    n.name
                );
                for (p, l) in planned.iter().zip(&logged) {
                    assert!(
                        same_statement(p, l),
                        "{flavor} {recipe} {}: planned {p:?}, received {l:?}",
                        n.name
                    );
                }
            }
            let _ = std::fs::remove_file(journal_path(&format!("gl-{flavor}-{recipe}")));
        }
    }
}

#[test]
fn restore_undoes_only_what_happened_and_never_overwrites_silently() {
    const ROW: &str = "SELECT payload, hits FROM zeus.xinyan_cache WHERE id = 'b98e4fab203607559fc5347b60cb64a41cf50a79650fbda3a1a4be5a1cfd16d9'";
    const TOUCH: &str = "SET SESSION sql_log_bin = 0; UPDATE zeus.xinyan_cache SET hits = 99 WHERE id = 'b98e4fab203607559fc5347b60cb64a41cf50a79650fbda3a1a4be5a1cfd16d9'";
    for flavor in FLAVORS {
        let sb = incident(flavor, Topology::DualMaster, "seed-dual-master-1062");
        let n2 = sb.node("n2");
        let loser = n2.query_rows(ROW).unwrap();
        let journal = journal_path(&format!("restore-{flavor}"));
        let run = replmend(&[
            "repair",
            "--replica",
            &n2.url(),
            "--yes",
            "--journal",
            &journal,
        ]);
        assert_eq!(run.code, exit::OK, "{flavor}: {}", run.stderr);
        // Someone changes the repaired row: restore leaves it alone without --force.
        n2.exec(TOUCH).unwrap();
        let touched = n2.query_rows(ROW).unwrap();
        let run = replmend(&["restore", &journal, "--format", "json"]);
        assert_eq!(
            run.code,
            exit::REFUSED,
            "{flavor}: {}{}",
            run.stdout,
            run.stderr
        );
        assert_eq!(run.json()["rows"][0]["outcome"], "differs");
        assert_eq!(n2.query_rows(ROW).unwrap(), touched, "{flavor}: left alone");
        let forced = journal_path(&format!("restore-forced-{flavor}"));
        let run = replmend(&[
            "restore",
            &journal,
            "--force",
            "--journal-to",
            &forced,
            "--format",
            "json",
        ]);
        assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
        assert_eq!(run.json()["rows"][0]["outcome"], "overwritten");
        assert_eq!(
            n2.query_rows(ROW).unwrap(),
            loser,
            "{flavor}: the journaled row is back"
        );
        let text = std::fs::read_to_string(&forced).unwrap();
        assert!(
            // The row found is journaled (deleted, then the journaled image inserted).
            text.contains("\"delete\"") && text.contains("99"),
            "{text}"
        );
        let _ = (
            std::fs::remove_file(&journal),
            std::fs::remove_file(&forced),
        );

        // A change that was rolled back is never "restored".
        let sb = incident(flavor, Topology::DualMaster, "seed-dual-master-1062");
        let n2 = sb.node("n2");
        let before = n2.query_rows(ROW).unwrap();
        let journal = journal_path(&format!("restore-rb-{flavor}"));
        let failed = replmend_env(
            &[
                "repair",
                "--replica",
                &n2.url(),
                "--yes",
                "--journal",
                &journal,
            ],
            &[("REPLMEND_TEST_FAIL_AT_STEP", "3")],
        );
        assert_eq!(failed.code, exit::FAILURE, "{}", failed.stderr);
        let run = replmend(&["restore", &journal, "--format", "json"]);
        assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
        assert_eq!(run.json()["rows"][0]["outcome"], "never_applied");
        assert_eq!(n2.query_rows(ROW).unwrap(), before);
        let _ = std::fs::remove_file(&journal);
    }
}

#[test]
fn rekey_interrupted_after_its_insert_resumes_without_a_second_copy() {
    let query = "SELECT name, COUNT(*) FROM app.customers GROUP BY name ORDER BY name";
    for flavor in FLAVORS {
        let sb = incident(flavor, Topology::DualMaster, "autoinc-dual-master-1062");
        let (n1, n2) = (sb.node("n1"), sb.node("n2"));
        let journal = journal_path(&format!("rekey-resume-{flavor}"));
        let args = [
            "repair",
            "--replica",
            &n2.url(),
            "--yes",
            "--journal",
            &journal,
        ];
        // Steps: stop, stop, the copy on n1 (3), the move on n2 (4): the move fails (rolled
        // back) after the copy committed.
        let failed = replmend_env(&args, &[("REPLMEND_TEST_FAIL_AT_STEP", "4")]);
        assert_eq!(
            failed.code,
            exit::FAILURE,
            "{flavor}: {}{}",
            failed.stdout,
            failed.stderr
        );
        let dry = replmend(&[
            "repair",
            "--replica",
            &n2.url(),
            "--dry-run",
            "--journal",
            &journal,
        ]);
        let rerun = replmend(&args);
        assert_eq!(
            rerun.code,
            exit::OK,
            "{flavor}: {}{}\ndry run:\n{}",
            rerun.stdout,
            rerun.stderr,
            dry.stdout
        );
        n1.wait_caught_up(Duration::from_secs(30)).unwrap();
        n2.wait_caught_up(Duration::from_secs(30)).unwrap();
        let rows = n1.query_rows(query).unwrap();
        assert_eq!(rows, n2.query_rows(query).unwrap(), "{flavor}");
        for r in &rows {
            assert_eq!(
                r[1].as_deref(),
                Some("1"),
                "{flavor}: each record once: {rows:?}"
            );
        }
        assert!(
            rows.iter().any(|r| r[0].as_deref() == Some("bob")),
            "{rows:?}"
        );
        let _ = std::fs::remove_file(&journal);
    }
}

/// Recipes where rekey must not be offered: the database, its tables (all must be left as
/// found), and what the reason must name.
const REKEY_REFUSED: [(&str, &str, &[&str], &[&str]); 4] = [
    (
        "autoinc-fk-cascade-dual-master-1062",
        "fkcascade",
        &["orders", "order_items"],
        &[
            "fkcascade.order_items",
            "fk_items_order",
            "ON DELETE CASCADE",
        ],
    ),
    (
        "autoinc-fk-restrict-dual-master-1062",
        "fkrestrict",
        &["orders", "order_items"],
        &[
            "fkrestrict.order_items",
            "fk_items_order",
            "ON DELETE RESTRICT",
        ],
    ),
    (
        "autoinc-fk-composite-dual-master-1062",
        "fkcomposite",
        &["orders", "order_items"],
        &["fkcomposite.order_items", "fk_items_order_region"],
    ),
    (
        "autoinc-same-unique-value-dual-master-1062",
        "uniqsame",
        &["customers"],
        &["uk_email", "pat@example.com"],
    ),
];

#[test]
fn rekey_is_not_offered_where_a_foreign_key_or_another_unique_value_ties_the_records() {
    for flavor in FLAVORS {
        for (recipe, db, tables, names) in REKEY_REFUSED {
            let sb = incident(flavor, Topology::DualMaster, recipe);
            let n2 = sb.node("n2");
            let snapshot =
                || -> Vec<Vec<String>> { tables.iter().map(|t| world(&sb, db, t)).collect() };
            let before = snapshot();
            let j = replmend(&["plan", "--replica", &n2.url(), "--format", "json"]).json();
            let options = j["plan"]["options"].as_array().unwrap();
            let rekey = options.iter().find(|o| o["remedy"] == "rekey").unwrap();
            assert_eq!(rekey["applicable"], false, "{flavor} {recipe}: {rekey}");
            assert_ne!(j["plan"]["plan"]["remedy"], "rekey", "{flavor} {recipe}");
            let why = rekey["why_not"].as_str().unwrap();
            for name in names {
                assert!(why.contains(name), "{flavor} {recipe}: names {name}: {why}");
            }
            let dry = replmend(&["repair", "--replica", &n2.url(), "--dry-run"]);
            assert!(
                dry.stdout.contains(&format!("not applicable: {why}")),
                "{flavor} {recipe}: the dry run lists rekey with its reason:\n{}",
                dry.stdout
            );
            let journal = journal_path(&format!("rekey-refused-{flavor}-{recipe}"));
            let run = replmend(&[
                "repair",
                "--replica",
                &n2.url(),
                "--yes",
                "--remedy",
                "rekey",
                "--journal",
                &journal,
            ]);
            assert_eq!(
                run.code,
                exit::REFUSED,
                "{flavor} {recipe}: {}{}",
                run.stdout,
                run.stderr
            );
            assert!(
                run.stderr.contains(why),
                "{flavor} {recipe}: {}",
                run.stderr
            );
            assert_words(&run);
            assert_eq!(
                before,
                snapshot(),
                "{flavor} {recipe}: a refusal changed something"
            );
            assert!(
                !std::path::Path::new(&journal).exists(),
                "{flavor} {recipe}"
            );
        }
    }
}

const UNIQ2: &str = "SELECT id, name, email FROM uniq2.customers ORDER BY id";

/// Both nodes hold the same rows, each of the four customers once, alice (the winner's) still
/// at id 3.
fn both_customers_once(sb: &Sandbox, context: &str) {
    let (n1, n2) = (sb.node("n1"), sb.node("n2"));
    n1.wait_caught_up(Duration::from_secs(30)).unwrap();
    n2.wait_caught_up(Duration::from_secs(30)).unwrap();
    let rows = names(n1, UNIQ2);
    assert_eq!(rows, names(n2, UNIQ2), "{context}: both nodes agree");
    let mut who: Vec<String> = rows.iter().map(|r| r[1].clone().unwrap()).collect();
    who.sort();
    assert_eq!(
        who,
        ["alice", "bob", "carol", "dave"],
        "{context}: {rows:?}"
    );
    let alice = rows
        .iter()
        .find(|r| r[1].as_deref() == Some("alice"))
        .unwrap();
    assert_eq!(alice[0].as_deref(), Some("3"), "{context}: {rows:?}");
}

#[test]
fn rekey_with_a_second_unique_key_keeps_both_records_on_both_nodes() {
    for flavor in FLAVORS {
        let sb = incident(
            flavor,
            Topology::DualMaster,
            "autoinc-second-unique-dual-master-1062",
        );
        let n2 = sb.node("n2");
        let j = replmend(&["plan", "--replica", &n2.url(), "--format", "json"]).json();
        let first = &j["plan"]["options"][0];
        assert_eq!(first["remedy"], "rekey", "{flavor}: {j}");
        assert_eq!(first["recommended"], true, "{flavor}: {j}");
        let journal = journal_path(&format!("rekey-uniq2-{flavor}"));
        let run = replmend(&[
            "repair",
            "--replica",
            &n2.url(),
            "--yes",
            "--remedy",
            "rekey",
            "--journal",
            &journal,
            "--format",
            "json",
        ]);
        assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
        both_customers_once(&sb, &format!("{flavor}"));
        // The copy on n1, and on n2 the delete at id 3 and the insert at the fresh id.
        assert_eq!(journaled_rows(&journal), 3, "{flavor}");
        let _ = std::fs::remove_file(&journal);
    }
}

#[test]
fn rekey_killed_at_every_step_then_rerun_converges() {
    for flavor in FLAVORS {
        for step in 1..=8 {
            let sb = incident(
                flavor,
                Topology::DualMaster,
                "autoinc-second-unique-dual-master-1062",
            );
            let journal = journal_path(&format!("rekey-kill-{flavor}-{step}"));
            let args = [
                "repair",
                "--replica",
                &sb.node("n2").url(),
                "--yes",
                "--journal",
                &journal,
            ];
            let crashed = replmend_env(
                &args,
                &[("REPLMEND_TEST_CRASH_AFTER_STEP", &step.to_string())],
            );
            assert_ne!(
                crashed.code,
                exit::OK,
                "{flavor} step {step}: the run was killed"
            );
            let rerun = replmend(&args);
            assert_eq!(
                rerun.code,
                exit::OK,
                "{flavor} killed after step {step}, re-run: {}{}",
                rerun.stdout,
                rerun.stderr
            );
            both_customers_once(&sb, &format!("{flavor} step {step}"));
            // Each of the three changes journaled once, by the run that made it (a run killed
            // right after a step may not have written that step's outcome: its intent stays).
            let text = std::fs::read_to_string(&journal).unwrap();
            let intents = text.lines().filter(|l| l.contains(r#""state":"intent""#));
            assert_eq!(intents.count(), 3, "{flavor} step {step}:\n{text}");
            assert!(
                !text.contains("rolled_back"),
                "{flavor} step {step}:\n{text}"
            );
            let _ = std::fs::remove_file(&journal);
        }
    }
}

/// A scripted repair diagnoses once, under its lock; the lock keeps out other replmend runs,
/// not a DBA. Here a DBA fixes the row and restarts the applier between the diagnosis and the
/// repair's first change: the last look finds the replica moved on and the repair refuses,
/// changing nothing (an overwrite, or a skip, of whatever came next would be wrong).
#[test]
fn a_dba_acting_between_the_diagnosis_and_the_repair_is_seen_before_any_change() {
    for flavor in FLAVORS {
        let sb = incident(flavor, Topology::SourceReplica, "errant-replica-write-1062");
        let n2 = sb.node("n2");
        let journal = journal_path(&format!("last-look-{flavor}"));
        let gate =
            std::env::temp_dir().join(format!("replmend-gate-{flavor}-{}", std::process::id()));
        let _ = std::fs::remove_file(&gate);
        let url = n2.url();
        let args = [
            "repair",
            "--replica",
            &url,
            "--yes",
            "--remedy",
            "overwrite",
            "--allow-data-loss",
            "--journal",
            &journal,
        ];
        let gate_text = gate.to_string_lossy().to_string();
        let run = std::thread::scope(|s| {
            let run = s.spawn(|| {
                replmend_env(
                    &args,
                    &[("REPLMEND_TEST_GATE_BEFORE_LAST_LOOK", &gate_text)],
                )
            });
            let until = std::time::Instant::now() + Duration::from_secs(60);
            while !gate.exists() {
                assert!(
                    std::time::Instant::now() < until,
                    "{flavor}: never reached the gate"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            let start = match flavor {
                Flavor::MariaDb => "START SLAVE",
                Flavor::MySql => "START REPLICA",
            };
            n2.exec(&format!(
                "SET SESSION sql_log_bin = 0; DELETE FROM hr.staff WHERE id = 42; {start}"
            ))
            .unwrap();
            n2.wait_caught_up(Duration::from_secs(30)).unwrap();
            std::fs::remove_file(&gate).unwrap();
            run.join().unwrap()
        });
        assert_eq!(
            run.code,
            exit::REFUSED,
            "{flavor}: {}{}",
            run.stdout,
            run.stderr
        );
        assert!(
            run.stderr.contains("changed since it was diagnosed")
                && run.stderr.contains("no longer stopped on an error")
                && run.stderr.contains("nothing was changed"),
            "{flavor}: {}",
            run.stderr
        );
        assert_words(&run);
        assert_eq!(journaled_rows(&journal), 0, "{flavor}");
        let row = value(n2, "SELECT name FROM hr.staff WHERE id = 42");
        assert_eq!(row, "written on the source", "{flavor}");
        assert!(n2.sql_error().unwrap().is_none(), "{flavor}");
        let _ = std::fs::remove_file(&journal);
    }
}
