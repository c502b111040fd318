//! Managed services (issue 24), continued on real MySQL 9.7 servers with the emulated
//! provider procedures (tests/fixtures/providers/*.sql): the wizard states an overwrite's
//! errant GTID before its confirmation and takes the DBA's answer as the consent; resync and
//! restore on a managed node refused in one sentence before any change; a skip without GTIDs
//! through `mysql.rds_skip_repl_error`.

mod support;

use std::time::Duration;

use support::providers::*;
use support::tmux::Tmux;
use support::*;

/// The wizard (`repair` in a terminal) on `url` in a tmux session of its own; returns the
/// session, its directory and the file its exit code is written to.
fn wizard(url: &str, tag: &str) -> (Tmux, std::path::PathBuf, std::path::PathBuf) {
    let name = format!("replmend-provider-{tag}-{}", std::process::id());
    let dir = std::env::temp_dir().join(&name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let done = dir.join("exit");
    let cmd = format!(
        "env HOME={home} NO_COLOR=1 {exe} repair --replica '{url}' --journal {journal}; echo $? > {done}; sleep 60",
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
