//! Managed services (issue 24) on real MySQL 9.7 servers: the provider's documented
//! procedures emulated in the `mysql` schema (tests/fixtures/providers/*.sql, one file per
//! provider, created by root, SQL SECURITY DEFINER), and an administrator account holding
//! exactly the privileges the provider's manual lists (no SUPER, no dynamic admin ones).
//! A 1062 repaired by a GTID skip through the procedures; an overwrite planned with its
//! errant-GTID consequence, refused until accepted, then applied; what cannot be done there
//! refused in one sentence before any change; a privilege held through a role; a short
//! binlog retention warned.

mod support;

use mysql::prelude::Queryable;
use support::providers::*;
use support::*;

fn skip_through_the_provider(m: &Managed) {
    let sb = incident(
        Flavor::MySql,
        Topology::SourceReplica,
        "unique-secondary-1062",
    );
    install(&sb, m);
    let n2 = sb.node("n2");
    let url = url_of(n2, m);
    let gtid = failing_gtid(n2);
    // The plain statements are refused to this account: the plan must not use them.
    let dry = replmend(&[
        "repair",
        "--replica",
        &url,
        "--dry-run",
        "--remedy",
        "inject-gtid",
        "--format",
        "json",
    ]);
    assert_eq!(dry.code, exit::OK, "{}{}", dry.stdout, dry.stderr);
    let plan = dry.json()["plan"]["plan"].clone();
    let call = format!("CALL mysql.{}('{gtid}')", m.skip_gtid);
    assert_eq!(
        statements(&plan),
        vec![m.stop.to_string(), call.clone(), m.start.to_string()],
        "{} plan: {plan}",
        m.fixture
    );
    let journal = journal_path(&format!("provider-skip-{}", m.user));
    let run = replmend(&[
        "repair",
        "--replica",
        &url,
        "--yes",
        "--remedy",
        "inject-gtid",
        "--allow-data-loss",
        "--journal",
        &journal,
    ]);
    assert_eq!(
        run.code,
        exit::OK,
        "{}: {}{}",
        m.fixture,
        run.stdout,
        run.stderr
    );
    n2.wait_caught_up(std::time::Duration::from_secs(30))
        .unwrap();
    assert!(replica_running(n2), "{}", m.fixture);
    let executed = gtid_executed(n2);
    let uuid = gtid.split(':').next().unwrap();
    assert!(executed.contains(uuid), "{executed}");
    // What the dry run showed is what ran: the procedure was called, once.
    assert_eq!(calls_of(n2, m.skip_gtid), 1, "{}", m.fixture);
    // A second repair finds nothing to do.
    let again = replmend(&["status", "--replica", &url]);
    assert_eq!(again.code, exit::OK, "{}{}", again.stdout, again.stderr);
}

#[test]
fn rds_1062_skipped_through_rds_skip_transaction_with_gtid() {
    skip_through_the_provider(&RDS);
}

#[test]
fn azure_1062_skipped_through_az_replication_skip_gtid_transaction() {
    skip_through_the_provider(&AZURE);
}

#[test]
fn overwrite_on_rds_states_its_errant_gtid_refuses_until_accepted_then_applies() {
    let sb = incident(
        Flavor::MySql,
        Topology::SourceReplica,
        "unique-secondary-1062",
    );
    install(&sb, &RDS);
    let n2 = sb.node("n2");
    let url = url_of(n2, &RDS);
    let dry = replmend(&[
        "repair",
        "--replica",
        &url,
        "--dry-run",
        "--remedy",
        "overwrite",
        "--format",
        "json",
    ]);
    assert_eq!(dry.code, exit::OK, "{}{}", dry.stdout, dry.stderr);
    let plan = dry.json()["plan"]["plan"].clone();
    let sql = statements(&plan);
    assert!(!sql.iter().any(|s| s.contains("sql_log_bin")), "{sql:?}");
    assert!(sql.contains(&RDS.stop.to_string()), "{sql:?}");
    let consequence = plan["consequences"][0].as_str().unwrap_or_default();
    assert!(
        consequence.contains("errant transaction") && consequence.contains("follow-up"),
        "{plan}"
    );
    // The text plan says it too.
    let text = replmend(&[
        "repair",
        "--replica",
        &url,
        "--dry-run",
        "--remedy",
        "overwrite",
    ]);
    assert!(text.stdout.contains("consequence:"), "{}", text.stdout);

    let before = world(&sb);
    let journal = journal_path("provider-overwrite");
    let args = [
        "repair",
        "--replica",
        &url,
        "--yes",
        "--remedy",
        "overwrite",
        "--journal",
        &journal,
    ];
    let refused = replmend(&args);
    refused_in_one_sentence(&refused, "--allow-errant-gtid");
    assert_eq!(world(&sb), before, "a refusal changes nothing");

    let mut accepted = args.to_vec();
    accepted.push("--allow-errant-gtid");
    let run = replmend(&accepted);
    assert_eq!(run.code, exit::OK, "{}{}", run.stdout, run.stderr);
    assert!(replica_running(n2));
    assert_eq!(journaled_rows(&journal), 1);
    // The delete went to the replica's binary log under its own server_uuid: errant, as
    // the plan said, and status names it.
    let own = n2.query_value("SELECT @@server_uuid").unwrap().unwrap();
    assert!(gtid_executed(n2).contains(&own), "{}", gtid_executed(n2));
    let status = replmend(&["status", "--replica", &url]);
    assert!(
        status.stdout.contains("errant GTIDs"),
        "{}{}",
        status.stdout,
        status.stderr
    );
}

#[test]
fn what_the_managed_account_cannot_do_is_refused_in_one_sentence_before_any_change() {
    let sb = incident(
        Flavor::MySql,
        Topology::SourceReplica,
        "unique-secondary-1062",
    );
    install(&sb, &RDS);
    let n2 = sb.node("n2");
    let url = url_of(n2, &RDS);
    n2.exec("SET GLOBAL super_read_only = ON").unwrap();
    let before = world(&sb);
    // Lifting read_only needs SYSTEM_VARIABLES_ADMIN, which no provider procedure replaces.
    let run = replmend(&[
        "repair",
        "--replica",
        &url,
        "--yes",
        "--remedy",
        "overwrite",
        "--allow-errant-gtid",
        "--lift-read-only",
        "--journal",
        &journal_path("provider-lift"),
    ]);
    refused_in_one_sentence(&run, "SYSTEM_VARIABLES_ADMIN");

    assert_eq!(world(&sb), before);
    // A procedure this account may not execute is named, not called.
    n2.exec("SET GLOBAL super_read_only = OFF").unwrap();
    n2.exec("SET SESSION sql_log_bin = 0; REVOKE EXECUTE ON *.* FROM 'admin'@'127.0.0.1'")
        .unwrap();
    let before = world(&sb);
    let run = replmend(&[
        "repair",
        "--replica",
        &url,
        "--yes",
        "--remedy",
        "inject-gtid",
        "--allow-data-loss",
        "--journal",
        &journal_path("provider-noexec"),
    ]);
    refused_in_one_sentence(&run, "EXECUTE");
    assert_eq!(world(&sb), before);
}

#[test]
fn execute_held_through_a_default_role_is_recognized() {
    let sb = incident(
        Flavor::MySql,
        Topology::SourceReplica,
        "unique-secondary-1062",
    );
    install(&sb, &RDS);
    // RDS 8.0.36+ grants the master user rds_superuser_role: EXECUTE through the role only.
    for n in &sb.nodes {
        n.exec(
            "SET SESSION sql_log_bin = 0; REVOKE EXECUTE ON *.* FROM 'admin'@'127.0.0.1'; \
             CREATE ROLE 'rds_superuser_role'; GRANT EXECUTE ON *.* TO 'rds_superuser_role'; \
             GRANT 'rds_superuser_role' TO 'admin'@'127.0.0.1'; \
             SET DEFAULT ROLE 'rds_superuser_role' TO 'admin'@'127.0.0.1'",
        )
        .unwrap();
    }
    let n2 = sb.node("n2");
    let url = url_of(n2, &RDS);
    let status = replmend(&["status", "--replica", &url]);
    assert!(
        status
            .stdout
            .contains("through CALL mysql.rds_skip_transaction_with_gtid"),
        "{}",
        status.stdout
    );
    let run = replmend(&[
        "repair",
        "--replica",
        &url,
        "--yes",
        "--remedy",
        "inject-gtid",
        "--allow-data-loss",
        "--journal",
        &journal_path("provider-role"),
    ]);
    assert_eq!(run.code, exit::OK, "{}{}", run.stdout, run.stderr);
    assert!(replica_running(n2));
}

#[test]
fn short_binlog_retention_is_warned_with_its_setting() {
    let sb = incident(
        Flavor::MySql,
        Topology::SourceReplica,
        "unique-secondary-1062",
    );
    install(&sb, &RDS);
    let url = url_of(sb.node("n2"), &RDS);
    let status = replmend(&["status", "--replica", &url]);
    assert!(status.stdout.contains("Amazon RDS"), "{}", status.stdout);
    assert!(
        status.stdout.contains("binlog retention hours is NULL")
            && status
                .stdout
                .contains("rds_set_configuration('binlog retention hours'"),
        "{}",
        status.stdout
    );
    // The plan warns about the source, where the failing transaction is read from.
    let plan = replmend(&["plan", "--replica", &url, "--format", "json"]);
    let advice = plan.json()["plan"]["plan"]["advice"].to_string();
    let source = sb.node("n1").port.to_string();
    assert!(
        advice.contains("binlog retention hours is NULL") && advice.contains(&source),
        "{advice}"
    );
    // RDS for MySQL 8.4+: a receiver without TLS is warned (caching_sha2_password) unless
    // it fetches the source's public key, as the sandbox's do (tests/providers_more.rs
    // turns that off).
    let st = sb.node("n2").replica_status().unwrap().unwrap_or_default();
    let col = |c: &str| st.get(c).cloned().flatten().unwrap_or_default();
    assert_eq!(
        status.stdout.contains("without TLS"),
        col("Source_SSL_Allowed") == "No" && col("Get_Source_public_key") != "1",
        "{st:?}: {}",
        status.stdout
    );
    // Set as the manual says: warned no more.
    for n in &sb.nodes {
        let mut conn = mysql::Conn::new(mysql::Opts::from_url(&url_of(n, &RDS)).unwrap()).unwrap();
        conn.query_drop("CALL mysql.rds_set_configuration('binlog retention hours', 72)")
            .unwrap();
    }
    let status = replmend(&["status", "--replica", &url]);
    assert!(!status.stdout.contains("retention"), "{}", status.stdout);
    // Self-managed MySQL (the procedures gone): binlog_expire_logs_seconds names itself.
    let n2 = sb.node("n2");
    for name in n2
        .query_rows("SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'mysql' AND ROUTINE_NAME LIKE 'rds%'")
        .unwrap()
    {
        let name = name[0].clone().unwrap();
        n2.exec(&format!("SET SESSION sql_log_bin = 0; DROP PROCEDURE mysql.{name}"))
            .unwrap();
    }
    n2.exec("SET GLOBAL binlog_expire_logs_seconds = 3600")
        .unwrap();
    let status = replmend(&["status", "--replica", &sb.node("n2").url()]);
    assert!(
        status.stdout.contains("binlog_expire_logs_seconds is 3600"),
        "{}",
        status.stdout
    );
}
