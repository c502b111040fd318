//! The repair wizard, driven by keystrokes in a real pseudo-terminal (tmux), on the seed's
//! dual-master incident of both flavors.

mod support;

use std::time::Duration;

use support::tmux::Tmux;
use support::*;

/// The wizard (`repair` in a terminal) on `url`, in a tmux session of its own: its
/// directory (HOME, journal, the exit code's file) and the session.
struct Wizard {
    session: Tmux,
    dir: std::path::PathBuf,
    done: std::path::PathBuf,
    journal: std::path::PathBuf,
}

fn wizard(url: &str, tag: &str) -> Wizard {
    let name = format!("replmend-wizard-{tag}-{}", std::process::id());
    let dir = std::env::temp_dir().join(&name);
    std::fs::create_dir_all(&dir).unwrap();
    let (done, journal) = (dir.join("exit"), dir.join("journal.jsonl"));
    let cmd = format!(
        "env HOME={home} NO_COLOR=1 {exe} repair --replica {url} --journal {journal}; echo $? > {done}; sleep 60",
        home = dir.display(),
        exe = env!("CARGO_BIN_EXE_replmend"),
        journal = journal.display(),
        done = done.display(),
    );
    Wizard {
        session: Tmux::start(name, &cmd),
        dir,
        done,
        journal,
    }
}

const SEED_ROW: &str = "SELECT payload, hits FROM zeus.xinyan_cache WHERE id = 'b98e4fab203607559fc5347b60cb64a41cf50a79650fbda3a1a4be5a1cfd16d9'";

#[test]
fn wizard_repairs_the_seed_by_keystrokes() {
    for flavor in FLAVORS {
        let sb = incident(flavor, Topology::DualMaster, "seed-dual-master-1062");
        let winner = sb.node("n1").query_rows(SEED_ROW).unwrap();
        let Wizard {
            session,
            dir,
            done,
            journal,
        } = wizard(&sb.node("n2").url(), &format!("seed-{flavor}"));
        let pane = session.wait_for("Which remedy?");
        assert!(
            pane.contains("overwrite — loses nothing (recommended)"),
            "{pane}"
        );
        // Why it happened comes before the remedies: both masters wrote the key.
        let cause = pane.find("Cause: dual_master_race");
        assert!(
            cause.is_some_and(|at| at < pane.find("Which remedy?").unwrap()),
            "{flavor}: {pane}"
        );
        session.keys(&["Enter"]);
        session.wait_for("Whose row should both nodes keep?");
        session.keys(&["Enter"]);
        let pane = session.wait_for("Apply the");
        assert!(pane.contains("DELETE FROM `zeus`.`xinyan_cache`"), "{pane}");
        session.keys(&["y"]);
        session.wait_for_n("Apply the", 2);
        session.keys(&["y"]);
        // Once repaired, the wizard offers to verify the incident's table.
        session.wait_for("between the two nodes now");
        session.keys(&["y"]);
        // Then it offers the postmortem, at a default path beside the journal.
        session.wait_for("Write the incident's postmortem");
        session.keys(&["y"]);
        session.wait_for("Report file");
        session.keys(&["Enter"]);
        let code = session.exit_code(&done, Duration::from_secs(120));
        assert_eq!(code, "0", "{flavor}:\n{}", session.pane());
        assert!(session.pane().contains("identical"), "{}", session.pane());
        let report = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "html"))
            .unwrap_or_else(|| panic!("no report in {}:\n{}", dir.display(), session.pane()));
        let html = std::fs::read_to_string(&report).unwrap();
        assert!(
            html.contains("class=\"timeline\"") && html.contains("class=\"diff\""),
            "{html}"
        );
        // Each step is printed once, as it runs.
        assert_eq!(
            session.pane().matches("step  1 [").count(),
            1,
            "{}",
            session.pane()
        );
        assert_eq!(sb.node("n1").query_rows(SEED_ROW).unwrap(), winner);
        assert_eq!(sb.node("n2").query_rows(SEED_ROW).unwrap(), winner);
        assert!(
            sb.node("n1").sql_error().unwrap().is_none()
                && sb.node("n2").sql_error().unwrap().is_none()
        );
        assert!(std::fs::read_to_string(&journal).unwrap().contains("db02"));
        drop(session);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn password_prompt_is_hidden_and_never_echoed() {
    let sb = Sandbox::start(Flavor::MariaDb, Topology::SourceReplica).unwrap();
    let secret = "Pr0mpt-s3cret";
    sb.node("n2")
        .exec(&format!(
            "CREATE USER 'pw'@'127.0.0.1' IDENTIFIED BY '{secret}'; GRANT SLAVE MONITOR, SELECT ON *.* TO 'pw'@'127.0.0.1'"
        ))
        .unwrap();
    let dir = std::env::temp_dir().join(format!("replmend-prompt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let done = dir.join("exit");
    let cmd = format!(
        "env HOME={home} NO_COLOR=1 {exe} status -h 127.0.0.1 -P {port} -u pw -p; echo $? > {done}; sleep 60",
        home = dir.display(),
        exe = env!("CARGO_BIN_EXE_replmend"),
        port = sb.node("n2").port,
        done = done.display(),
    );
    let session = Tmux::start(format!("replmend-prompt-{}", std::process::id()), &cmd);
    session.wait_for("Password");
    session.keys(&[secret, "Enter"]);
    let code = session.exit_code(&done, Duration::from_secs(30));
    let pane = session.pane();
    assert_eq!(code, "0", "{pane}");
    assert!(pane.contains("healthy"), "{pane}");
    assert!(!pane.contains(secret), "the password was echoed:\n{pane}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn wizard_recommends_and_applies_rekey_for_two_records_on_one_key() {
    let query = "SELECT id, name FROM app.customers ORDER BY id";
    for flavor in FLAVORS {
        let sb = incident(flavor, Topology::DualMaster, "autoinc-dual-master-1062");
        let Wizard {
            session, dir, done, ..
        } = wizard(&sb.node("n2").url(), &format!("rk-{flavor}"));
        let pane = session.wait_for("Which remedy?");
        assert!(
            pane.contains("rekey — loses nothing (recommended)"),
            "{pane}"
        );
        session.keys(&["Enter"]);
        session.wait_for("Whose row should both nodes keep?");
        session.keys(&["Enter"]);
        let pane = session.wait_for("Apply the");
        assert!(pane.contains("auto_increment_offset"), "{pane}");
        session.keys(&["y"]);
        session.wait_for_n("Apply the", 2);
        session.keys(&["y"]);
        session.wait_for("between the two nodes now");
        session.keys(&["n"]);
        session.wait_for("Write the incident's postmortem");
        session.keys(&["n"]);
        let code = session.exit_code(&done, Duration::from_secs(120));
        assert_eq!(code, "0", "{flavor}:\n{}", session.pane());
        let (n1, n2) = (sb.node("n1"), sb.node("n2"));
        n1.wait_caught_up(Duration::from_secs(30)).unwrap();
        n2.wait_caught_up(Duration::from_secs(30)).unwrap();
        let rows = n1.query_rows(query).unwrap();
        assert_eq!(rows, n2.query_rows(query).unwrap(), "{flavor}");
        let names: Vec<String> = rows.iter().map(|r| r[1].clone().unwrap()).collect();
        assert!(
            names.contains(&"alice".into()) && names.contains(&"bob".into()),
            "{rows:?}"
        );
        drop(session);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

// After the repair, the wizard's verify finds another row that differs: it offers to fix
// exactly what that verify found (the resync path, no second hashing), shows the plan, and
// the nodes end equal.
#[test]
fn wizard_resyncs_what_its_verify_found() {
    const OTHER: &str = "SELECT hits FROM zeus.xinyan_cache WHERE id = '0000000000000000000000000000000000000000000000000000000000000001'";
    for flavor in FLAVORS {
        let sb = incident(flavor, Topology::DualMaster, "seed-dual-master-1062");
        let (n1, n2) = (sb.node("n1"), sb.node("n2"));
        drift(
            n2,
            "UPDATE zeus.xinyan_cache SET hits = 99 WHERE id = '0000000000000000000000000000000000000000000000000000000000000001'",
        );
        let Wizard {
            session, dir, done, ..
        } = wizard(&n2.url(), &format!("resync-{flavor}"));
        session.wait_for("Which remedy?");
        session.keys(&["Enter"]);
        session.wait_for("Whose row should both nodes keep?");
        session.keys(&["Enter"]);
        session.wait_for("Apply the");
        session.keys(&["y"]);
        session.wait_for_n("Apply the", 2);
        session.keys(&["y"]);
        session.wait_for("between the two nodes now");
        session.keys(&["y"]);
        let pane = session.wait_for("The nodes still differ");
        assert!(pane.contains("1 different row(s)"), "{flavor}: {pane}");
        session.keys(&["y"]);
        let pane = session.wait_for("Apply these 1 step(s)");
        assert!(
            pane.contains("DELETE FROM `zeus`.`xinyan_cache`"),
            "{flavor}: {pane}"
        );
        session.keys(&["y"]);
        session.wait_for("Write the incident's postmortem");
        session.keys(&["n"]);
        let code = session.exit_code(&done, Duration::from_secs(120));
        assert_eq!(code, "0", "{flavor}:\n{}", session.pane());
        assert!(
            session.pane().contains("now agree on both nodes"),
            "{flavor}: {}",
            session.pane()
        );
        assert_eq!(
            n2.query_rows(OTHER).unwrap(),
            n1.query_rows(OTHER).unwrap(),
            "{flavor}"
        );
        drop(session);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
