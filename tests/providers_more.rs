//! Managed services (issue 24), continued on real MySQL 9.7 servers with the emulated
//! provider procedures (tests/fixtures/providers/*.sql): the wizard states an overwrite's
//! errant GTID (in its menu and before its confirmation) and takes the DBA's answer as the
//! consent; resync and restore on a managed node state the same consequence and are refused in
//! one sentence before any change until it is accepted (flag or prompt), and refused in a
//! dual-master pair; a skip without GTIDs through `mysql.rds_skip_repl_error`; the TLS warning
//! naming the replication user's plugin, or why it is unknown.

mod support;

use std::time::Duration;

use support::providers::*;
use support::tmux::Tmux;
use support::*;

/// The wizard (`repair` in a terminal) on `url` in a tmux session of its own; returns the
/// session, its directory and the file its exit code is written to.
fn wizard(url: &str, tag: &str) -> (Tmux, std::path::PathBuf, std::path::PathBuf) {
    terminal(&format!("repair --replica '{url}'"), tag)
}

/// `replmend ARGS --journal …` in a terminal (a tmux session of its own).
fn terminal(args: &str, tag: &str) -> (Tmux, std::path::PathBuf, std::path::PathBuf) {
    let name = format!("replmend-provider-{tag}-{}", std::process::id());
    let dir = std::env::temp_dir().join(&name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let done = dir.join("exit");
    let cmd = format!(
        "env HOME={home} NO_COLOR=1 {exe} {args} --journal {journal}; echo $? > {done}; sleep 60",
        home = dir.display(),
        exe = env!("CARGO_BIN_EXE_replmend"),
        journal = dir.join("journal.jsonl").display(),
        done = done.display(),
    );
    (Tmux::start(name, &cmd), dir, done)
}

/// Moves the remedy menu (shown in `pane`) to the item starting with `remedy` and picks it.
fn pick(session: &Tmux, pane: &str, remedy: &str) {
    let menu: Vec<&str> = pane
        .lines()
        .skip_while(|l| !l.contains("Which remedy?"))
        .skip(1)
        .collect();
    let at = menu
        .iter()
        .position(|l| l.contains(&format!("{remedy} —")))
        .unwrap_or_else(|| panic!("no {remedy} in the menu:\n{pane}"));
    for _ in 0..at {
        session.keys(&["Down"]);
    }
    session.keys(&["Enter"]);
}

#[test]
fn wizard_states_the_errant_gtid_of_an_overwrite_and_takes_the_confirmation_as_consent() {
    let sb = incident(
        Flavor::MySql,
        Topology::SourceReplica,
        "unique-secondary-1062",
    );
    install(&sb, &RDS);
    let n2 = sb.node("n2");
    let url = url_of(n2, &RDS);
    let own = n2.query_value("SELECT @@server_uuid").unwrap().unwrap();
    let prompt = "an errant transaction (the consequence and follow-up above). Accept it?";

    // Declined at the consequence's prompt: nothing changes.
    let before = world(&sb);
    let (session, dir, done) = wizard(&url, "errant-no");
    let pane = session.wait_for("Which remedy?");
    // The menu says it before anything is chosen.
    assert!(
        pane.contains("overwrite — loses nothing, leaves an errant GTID (binary log on)"),
        "{pane}"
    );
    std::thread::sleep(Duration::from_millis(300));
    pick(&session, &session.pane(), "overwrite");
    let pane_after = session.wait_for(prompt);
    let shown = pane_after.find("consequence:").unwrap_or(usize::MAX);
    let asked = pane_after.find(prompt).unwrap();
    assert!(
        shown < asked && pane_after[shown..asked].contains("follow-up"),
        "the consequence must be shown before the prompt:\n{pane}\n{pane_after}"
    );
    assert!(!pane_after.contains("sql_log_bin = 0"), "{pane_after}");
    session.keys(&["n"]);
    let code = session.exit_code(&done, Duration::from_secs(60));
    assert_eq!(code, exit::REFUSED.to_string(), "{}", session.pane());
    assert!(session.pane().contains("nothing was changed"));
    assert_eq!(world(&sb), before, "a declined consequence changes nothing");
    drop(session);
    let _ = std::fs::remove_dir_all(&dir);

    // Accepted at the prompt: that is the consent (no --allow-errant-gtid), and it runs.
    let (session, dir, done) = wizard(&url, "errant-yes");
    session.wait_for("Which remedy?");
    std::thread::sleep(Duration::from_millis(300));
    pick(&session, &session.pane(), "overwrite");
    session.wait_for(prompt);
    session.keys(&["y"]);
    session.wait_for("Apply the");
    session.keys(&["y"]);
    session.wait_for("between the two nodes now");
    session.keys(&["n"]);
    session.wait_for("Write the incident's postmortem");
    session.keys(&["n"]);
    let code = session.exit_code(&done, Duration::from_secs(120));
    assert_eq!(code, "0", "{}", session.pane());
    n2.wait_caught_up(Duration::from_secs(30)).unwrap();
    assert!(replica_running(n2), "{}", session.pane());
    // Logged with the replica's own GTID, as the plan said.
    assert!(gtid_executed(n2).contains(&own), "{}", gtid_executed(n2));
    drop(session);
    let _ = std::fs::remove_dir_all(&dir);
}

const ROWS: &str = "SELECT id, v FROM shop.t ORDER BY id";

/// A source and its replica with a drifted table (row 2 different, row 3 missing on the
/// replica), the RDS procedures and administrator installed on both.
fn drifted_rds() -> Sandbox {
    let sb = Sandbox::start(Flavor::MySql, Topology::SourceReplica).unwrap();
    sb.node("n1")
        .exec(
            "CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(20)); \
             INSERT INTO shop.t VALUES (1, 'a'), (2, 'b'), (3, 'c')",
        )
        .unwrap();
    sb.node("n2")
        .wait_caught_up(Duration::from_secs(30))
        .unwrap();
    install(&sb, &RDS);
    drift(
        sb.node("n2"),
        "UPDATE shop.t SET v = 'drift' WHERE id = 2; DELETE FROM shop.t WHERE id = 3",
    );
    sb
}

fn table_world(sb: &Sandbox) -> Vec<String> {
    let mut out = Vec::new();
    for n in &sb.nodes {
        out.push(format!("{:?}", n.query_rows(ROWS).unwrap()));
        out.push(gtid_executed(n));
    }
    out
}

#[test]
fn resync_and_restore_on_a_managed_replica_state_the_errant_gtid_and_refuse_until_accepted() {
    let sb = drifted_rds();
    let (n1, n2) = (sb.node("n1"), sb.node("n2"));
    let url = url_of(n2, &RDS);
    let own = n2.query_value("SELECT @@server_uuid").unwrap().unwrap();

    // The dry run: the rows written with the binary log on, the consequence and its
    // follow-up stated, and what a real run's preflight refuses.
    let dry = replmend(&[
        "resync",
        "--replica",
        &url,
        "--tables",
        "shop.t",
        "--dry-run",
        "--format",
        "json",
    ]);
    assert_eq!(dry.code, exit::OK, "{}{}", dry.stdout, dry.stderr);
    let doc = dry.json();
    let sql = statements(&doc["plan"]);
    assert!(!sql.iter().any(|s| s.contains("sql_log_bin")), "{sql:?}");
    let session = doc["plan"]["steps"][0]["session"].to_string();
    assert!(!session.contains("sql_log_bin"), "{session}");
    let consequence = doc["plan"]["consequences"][0].as_str().unwrap_or_default();
    assert!(
        consequence.contains("errant transaction") && consequence.contains("follow-up"),
        "{doc}"
    );
    assert!(
        doc["warnings"].to_string().contains("--allow-errant-gtid"),
        "{doc}"
    );
    let text = replmend(&[
        "resync",
        "--replica",
        &url,
        "--tables",
        "shop.t",
        "--dry-run",
    ]);
    assert!(text.stdout.contains("consequence:"), "{}", text.stdout);

    // Without the flag: one sentence, before any change, naming what is missing and what
    // would do.
    let before = table_world(&sb);
    let journal = journal_path("provider-resync");
    let args = [
        "resync",
        "--replica",
        &url,
        "--tables",
        "shop.t",
        "--yes",
        "--journal",
        &journal,
    ];
    let refused = replmend(&args);
    refused_in_one_sentence(&refused, "--allow-errant-gtid");
    assert!(
        refused.stderr.contains("SESSION_VARIABLES_ADMIN")
            && refused.stderr.contains("rebuild the replica"),
        "{}",
        refused.stderr
    );
    assert_eq!(table_world(&sb), before, "a refusal changes nothing");

    // Accepted: the rows agree, logged with the replica's own GTID as the plan said.
    let mut accepted = args.to_vec();
    accepted.push("--allow-errant-gtid");
    let run = replmend(&accepted);
    assert_eq!(run.code, exit::OK, "{}{}", run.stdout, run.stderr);
    assert_eq!(n2.query_rows(ROWS).unwrap(), n1.query_rows(ROWS).unwrap());
    assert!(gtid_executed(n2).contains(&own), "{}", gtid_executed(n2));
    assert!(replica_running(n2));

    // Restore: the same refusal, then the drifted rows back (logged, as they were changed).
    let resynced = table_world(&sb);
    let restore = ["restore", &journal, "--replica", &url];
    let refused = replmend(&restore);
    assert_eq!(
        refused.code,
        exit::REFUSED,
        "{}{}",
        refused.stdout,
        refused.stderr
    );
    let lines: Vec<&str> = refused
        .stderr
        .lines()
        .filter(|l| l.contains("refused"))
        .collect();
    assert!(
        lines.len() == 1
            && lines[0].contains("--allow-errant-gtid")
            && lines[0].contains("nothing was changed"),
        "{}",
        refused.stderr
    );
    assert_eq!(table_world(&sb), resynced);
    let mut accepted = restore.to_vec();
    accepted.push("--allow-errant-gtid");
    let run = replmend(&accepted);
    assert_eq!(run.code, exit::OK, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        n2.query_rows(ROWS).unwrap(),
        vec![
            vec![Some("1".to_string()), Some("a".to_string())],
            vec![Some("2".to_string()), Some("drift".to_string())],
        ]
    );
}

/// In a terminal, resync shows the consequence and asks for it: the answer is the consent.
#[test]
fn interactive_resync_on_a_managed_replica_asks_for_the_errant_gtid() {
    let sb = drifted_rds();
    let (n1, n2) = (sb.node("n1"), sb.node("n2"));
    let url = url_of(n2, &RDS);
    let prompt = "an errant transaction (the consequence and follow-up above). Accept it?";
    let (session, dir, done) = terminal(
        &format!("resync --replica '{url}' --tables shop.t"),
        "resync-errant",
    );
    let pane = session.wait_for(prompt);
    let shown = pane.find("consequence:").unwrap_or(usize::MAX);
    assert!(shown < pane.find(prompt).unwrap(), "{pane}");
    session.keys(&["y"]);
    session.wait_for("Apply these");
    session.keys(&["y"]);
    let code = session.exit_code(&done, Duration::from_secs(60));
    assert_eq!(code, "0", "{}", session.pane());
    assert_eq!(n2.query_rows(ROWS).unwrap(), n1.query_rows(ROWS).unwrap());
    drop(session);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A dual-master pair where a node logs every change: resync refuses before any change.
#[test]
fn resync_refuses_a_dual_master_pair_whose_written_node_cannot_turn_its_binlog_off() {
    let sb = Sandbox::start(Flavor::MySql, Topology::DualMaster).unwrap();
    let (n1, n2) = (sb.node("n1"), sb.node("n2"));
    n1.exec(
        "CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(20)); \
         INSERT INTO shop.t VALUES (1, 'a'), (2, 'b')",
    )
    .unwrap();
    n2.wait_caught_up(Duration::from_secs(30)).unwrap();
    n1.wait_caught_up(Duration::from_secs(30)).unwrap();
    install(&sb, &RDS);
    drift(n2, "UPDATE shop.t SET v = 'drift' WHERE id = 2");
    let before = table_world(&sb);
    let run = replmend(&[
        "resync",
        "--replica",
        &url_of(n2, &RDS),
        "--tables",
        "shop.t",
        "--yes",
        "--allow-errant-gtid",
        "--journal",
        &journal_path("provider-resync-dual"),
    ]);
    assert_eq!(run.code, exit::REFUSED, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("undo the fix") && run.stderr.contains("nothing was changed"),
        "{}",
        run.stderr
    );
    assert_eq!(table_world(&sb), before);
}

/// Both nodes taken to gtid_mode=OFF online (the replica replicates by file and position), as
/// MySQL's manual describes: ON_PERMISSIVE everywhere, OFF_PERMISSIVE everywhere, the replica
/// caught up, then OFF.
fn gtids_off(sb: &Sandbox) {
    for mode in ["ON_PERMISSIVE", "OFF_PERMISSIVE"] {
        for n in &sb.nodes {
            n.exec(&format!("SET GLOBAL gtid_mode = {mode}")).unwrap();
        }
    }
    sb.node("n2")
        .wait_caught_up(Duration::from_secs(30))
        .unwrap();
    for n in &sb.nodes {
        n.exec("SET GLOBAL gtid_mode = OFF").unwrap();
    }
}

#[test]
fn rds_1062_without_gtids_is_skipped_through_rds_skip_repl_error() {
    let sb = Sandbox::start(Flavor::MySql, Topology::SourceReplica).unwrap();
    gtids_off(&sb);
    sb.recipe("unique-secondary-1062").unwrap();
    install(&sb, &RDS);
    let n2 = sb.node("n2");
    assert_eq!(
        n2.query_value("SELECT @@GLOBAL.gtid_mode")
            .unwrap()
            .as_deref(),
        Some("OFF")
    );
    let url = url_of(n2, &RDS);
    let dry = replmend(&[
        "repair",
        "--replica",
        &url,
        "--dry-run",
        "--remedy",
        "skip",
        "--format",
        "json",
    ]);
    assert_eq!(dry.code, exit::OK, "{}{}", dry.stdout, dry.stderr);
    let plan = dry.json()["plan"]["plan"].clone();
    let sql = statements(&plan);
    assert!(
        sql.contains(&"CALL mysql.rds_skip_repl_error()".to_string())
            && !sql
                .iter()
                .any(|s| s.contains("skip_counter") || s.contains("GTID_NEXT")),
        "{plan}"
    );
    let run = replmend(&[
        "repair",
        "--replica",
        &url,
        "--yes",
        "--remedy",
        "skip",
        "--allow-data-loss",
        "--journal",
        &journal_path("provider-skip-counter"),
    ]);
    assert_eq!(run.code, exit::OK, "{}{}", run.stdout, run.stderr);
    n2.wait_caught_up(Duration::from_secs(30)).unwrap();
    assert!(replica_running(n2));
    // What the dry run showed ran: the procedure once; the source's row 17 was skipped, the
    // replica's own row kept.
    assert_eq!(calls_of(n2, "rds_skip_repl_error"), 1);
    let ids = n2
        .query_rows("SELECT id FROM shop.users ORDER BY id")
        .unwrap();
    assert_eq!(ids, vec![vec![Some("900".to_string())]], "{ids:?}");
    // As the manual says: no effect on a replica without a replication error.
    let before = world(&sb);
    let mut conn = mysql::Conn::new(mysql::Opts::from_url(&url).unwrap()).unwrap();
    let said: Option<String> =
        mysql::prelude::Queryable::query_first(&mut conn, "CALL mysql.rds_skip_repl_error()")
            .unwrap();
    assert_eq!(
        said.as_deref(),
        Some("Replica is running normally. No errors to skip.")
    );
    assert_eq!(world(&sb), before);
}

/// The TLS warning reads the replication user's plugin on the source where this account may
/// (RDS's administrator may SELECT mysql.user), and says it is unknown where it may not.
#[test]
fn tls_warning_names_the_replication_users_plugin_or_says_it_is_unknown() {
    let sb = Sandbox::start(Flavor::MySql, Topology::SourceReplica).unwrap();
    install(&sb, &RDS);
    let (n1, n2) = (sb.node("n1"), sb.node("n2"));
    let url = url_of(n2, &RDS);
    // Measured on 9.7: the sandbox's receivers show Source_SSL_Allowed Yes and fetch the
    // source's public key. Without TLS but with the key, caching_sha2_password works: nothing
    // to warn.
    n2.exec("STOP REPLICA; CHANGE REPLICATION SOURCE TO SOURCE_SSL = 0; START REPLICA")
        .unwrap();
    let status = replmend(&["status", "--replica", &url]);
    assert!(!status.stdout.contains("without TLS"), "{}", status.stdout);
    n2.exec("STOP REPLICA; CHANGE REPLICATION SOURCE TO GET_SOURCE_PUBLIC_KEY = 0; START REPLICA")
        .unwrap();
    let status = replmend(&["status", "--replica", &url]);
    assert!(
        status.stdout.contains("without TLS")
            && status
                .stdout
                .contains("replication user 'root' authenticates with caching_sha2_password"),
        "{}\n{:?}",
        status.stdout,
        n2.replica_status().unwrap()
    );
    let json = replmend(&["status", "--replica", &url, "--format", "json"]).json();
    assert_eq!(
        json["channels"][0]["source_user_plugin"],
        serde_json::json!({"state": "known", "plugin": "caching_sha2_password"}),
        "{json}"
    );
    // Where this account may not read mysql.user on the source: unknown, and why.
    n1.exec(
        "SET SESSION sql_log_bin = 0; REVOKE SELECT ON *.* FROM 'admin'@'127.0.0.1'; \
         GRANT SELECT ON shop.* TO 'admin'@'127.0.0.1'",
    )
    .unwrap();
    let status = replmend(&["status", "--replica", &url]);
    assert!(
        status.stdout.contains("without TLS")
            && status
                .stdout
                .contains("authentication plugin is unknown (this account may not read mysql.user"),
        "{}",
        status.stdout
    );
}
