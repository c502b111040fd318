//! `replmend watch` on real MariaDB 10.11 and MySQL 9.7: a lossless 1062 and a 1032 on rows
//! already gone are repaired on their own, a differing 1062 waits for a human untouched, a
//! policy file opts in to overwrite, hooks get every event's JSON, metrics are served, errant
//! GTIDs are reported, a second watcher is refused, lost connections come back, SIGTERM exits 0.

mod support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use support::*;

struct Watch {
    child: Child,
    dir: PathBuf,
}

impl Watch {
    fn start(dir: &Path, tag: &str, args: &[&str]) -> Watch {
        Watch::start_env(dir, tag, args, &[])
    }

    fn start_env(dir: &Path, tag: &str, args: &[&str], env: &[(&str, &str)]) -> Watch {
        let dir = dir.join(tag);
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_replmend"))
            .arg("watch")
            .args(args)
            .args([
                "--format",
                "json",
                "--interval",
                "0.1",
                "--errant-interval",
                "0.5",
            ])
            .env_remove("MYSQL_PWD")
            .env_remove("REPLMEND_REPLICA")
            // The journal's default directory and the read-only ledger live here, shared by
            // every watcher of one test.
            .env("XDG_STATE_HOME", dir.parent().unwrap())
            .envs(env.iter().copied())
            .env("HOME", &dir)
            .stdout(std::fs::File::create(dir.join("stdout")).unwrap())
            .stderr(std::fs::File::create(dir.join("stderr")).unwrap())
            .spawn()
            .unwrap();
        Watch { child, dir }
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.join("stdout")).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr")).unwrap_or_default()
    }

    fn events(&self) -> Vec<serde_json::Value> {
        self.stdout()
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}"))
            })
            .collect()
    }

    /// Waits until an event satisfies `pred`; panics with the log after 60 s.
    fn wait_event(
        &self,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let started = Instant::now();
        loop {
            if let Some(e) = self.events().into_iter().find(|e| pred(e)) {
                return e;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "no {what} event:\n{}\nstderr:\n{}",
                self.stdout(),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn metrics_url(&self) -> String {
        let started = Instant::now();
        loop {
            if let Some(url) = self
                .stderr()
                .lines()
                .find_map(|l| l.strip_prefix("replmend: metrics at http://"))
            {
                return url.to_string();
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then the exit code.
    fn stop(mut self) -> (i32, Vec<serde_json::Value>) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let started = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "watch did not stop"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        (status.code().unwrap_or(-1), self.events())
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn get(url: &str) -> String {
    let (host, path) = url.split_once('/').unwrap();
    let mut s = std::net::TcpStream::connect(host).unwrap();
    use std::io::Write;
    write!(s, "GET /{path} HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn healthy(node: &replmend_sandbox::Node) -> bool {
    node.sql_error().unwrap().is_none() && node.wait_caught_up(Duration::from_secs(30)).is_ok()
}

/// The replica stops on `errno` after the source's statement (the replica's side first,
/// unlogged).
fn conflict(sb: &Sandbox, replica_sql: &str, source_sql: &str) {
    sb.node("n2")
        .exec(&format!("SET SESSION sql_log_bin = 0; {replica_sql}"))
        .unwrap();
    sb.node("n1").exec(source_sql).unwrap();
}

fn wait_healthy(node: &replmend_sandbox::Node, w: &Watch) -> Duration {
    let started = Instant::now();
    while !(node.sql_error().unwrap().is_none()
        && node.wait_caught_up(Duration::from_millis(200)).is_ok())
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "not repaired:\n{}\n{}",
            w.stdout(),
            w.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    started.elapsed()
}

#[test]
fn watch_repairs_what_the_policy_allows_and_waits_for_a_human_otherwise() {
    for flavor in FLAVORS {
        let sb = Sandbox::start(flavor, Topology::SourceReplica).unwrap();
        let (n1, n2) = (sb.node("n1"), sb.node("n2"));
        n1.exec("CREATE DATABASE w; CREATE TABLE w.t (id INT PRIMARY KEY, v VARCHAR(20)); INSERT INTO w.t VALUES (3, 'three')")
            .unwrap();
        n2.wait_caught_up(Duration::from_secs(60)).unwrap();
        let dir =
            std::env::temp_dir().join(format!("replmend-watch-{}-{flavor}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let hook_file = dir.join("hook.jsonl");
        let hook = format!("cat >> '{}'", hook_file.display());
        let url = n2.url();
        let a = Watch::start(
            &dir,
            "a",
            &["--replica", &url, "--hook", &hook, "--metrics-addr", "0"],
        );
        a.wait_event("watching", |e| e["event"] == "watching");

        // A 1062 on identical rows: skipped on its own, nothing lost.
        conflict(
            &sb,
            "INSERT INTO w.t VALUES (1, 'same')",
            "INSERT INTO w.t VALUES (1, 'same')",
        );
        let took = wait_healthy(n2, &a);
        eprintln!("{flavor}: lossless 1062 repaired {took:?} after the source's write");
        let action = a.wait_event("action", |e| e["event"] == "action");
        assert_eq!(action["action"]["outcome"], "repaired", "{action}");
        assert_eq!(action["incident"]["errno"], 1062);
        let incident = a.wait_event("incident", |e| e["event"] == "incident");
        assert_eq!(incident["decision"]["action"], "repair", "{incident}");
        assert!(
            incident["decision"]["rule"]
                .as_str()
                .unwrap()
                .contains("loses nothing"),
            "{incident}"
        );

        // A delete of a row already gone on the replica: skipped on its own.
        conflict(
            &sb,
            "DELETE FROM w.t WHERE id = 3",
            "DELETE FROM w.t WHERE id = 3",
        );
        wait_healthy(n2, &a);
        a.wait_event("1032 action", |e| {
            e["event"] == "action" && e["incident"]["errno"] == 1032
        });

        // A write made on the replica with its binlog on: an errant GTID.
        n2.exec("INSERT INTO w.t VALUES (100, 'errant')").unwrap();
        let errant = a.wait_event("errant", |e| e["event"] == "errant");
        assert!(
            !errant["errant"][0]["gtids"].as_str().unwrap().is_empty(),
            "{errant}"
        );

        // One watcher per replica.
        let second = replmend(&["watch", "--replica", &url]);
        assert_eq!(second.code, exit::REFUSED, "{}", second.stderr);
        assert!(
            second.stderr.contains("another replmend watch"),
            "{}",
            second.stderr
        );

        // Differing rows: the watcher reports and touches nothing.
        conflict(
            &sb,
            "INSERT INTO w.t VALUES (2, 'replica')",
            "INSERT INTO w.t VALUES (2, 'source')",
        );
        let waiting = a.wait_event("waiting incident", |e| {
            e["event"] == "incident" && e["decision"]["action"] == "wait"
        });
        assert!(
            waiting["decision"]["reason"]
                .as_str()
                .unwrap()
                .contains("no rule"),
            "{waiting}"
        );
        // Its cause, searched once decided (after the incident event, nothing written): the
        // replica's row was written with sql_log_bin=0, so its binary log holds no trace.
        let cause = a.wait_event("cause of the waiting incident", |e| {
            e["event"] == "cause"
                && e["incident"]["fingerprint"] == waiting["incident"]["fingerprint"]
        });
        assert_eq!(cause["cause"]["kind"], "no_trace", "{cause}");
        assert_eq!(
            cause["origins"][0]["replica"]["reason"], "not_in_retained_logs",
            "{cause}"
        );
        assert_eq!(cause["origins"][0]["source"]["found"], true, "{cause}");
        std::thread::sleep(Duration::from_millis(1500));
        assert_eq!(n2.sql_error().unwrap().map(|e| e.0), Some(1062));
        assert_eq!(
            n2.query_value("SELECT v FROM w.t WHERE id = 2")
                .unwrap()
                .as_deref(),
            Some("replica")
        );
        let metrics = get(&a.metrics_url());
        assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
        for line in [
            "replmend_watch_up{replica=\"127.0.0.1:",
            "errno=\"1062\"} 2",
            "errno=\"1032\"} 1",
            ",result=\"ok\"} 2",
            "replmend_watch_waiting_for_human{replica=",
            "replmend_watch_applier_running{replica=",
        ] {
            assert!(metrics.contains(line), "{line} in\n{metrics}");
        }
        assert!(metrics.contains("replmend_watch_waiting_for_human{") && metrics.contains("} 1\n"));
        let (code, events) = a.stop();
        assert_eq!(code, 0);
        assert_eq!(events.last().unwrap()["event"], "stopped");
        let hooked = std::fs::read_to_string(&hook_file).unwrap();
        let kinds: Vec<String> = hooked
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["event"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        for k in [
            "watching", "incident", "action", "cause", "errant", "stopped",
        ] {
            assert!(kinds.iter().any(|x| x == k), "{k} not hooked: {kinds:?}");
        }

        // The source hangs (SIGSTOP: connections to it time out): the stop cannot be
        // diagnosed, so it waits for a human; the watcher stays responsive and stops cleanly.
        unsafe { libc::kill(n1.pid as i32, libc::SIGSTOP) };
        let hung = Watch::start(
            &dir,
            "source-hung",
            &["--replica", &url, "--diagnose-timeout", "3"],
        );
        let waiting = hung.wait_event("incident without its source", |e| e["event"] == "incident");
        assert_eq!(waiting["decision"]["action"], "wait", "{waiting}");
        assert!(
            waiting["decision"]["reason"]
                .as_str()
                .unwrap()
                .contains("did not finish within 3 s"),
            "{waiting}"
        );
        assert_eq!(n2.sql_error().unwrap().map(|e| e.0), Some(1062));
        // The source answers again: the same stop is diagnosed again on its own (15 s later)
        // and now judged by the policy.
        unsafe { libc::kill(n1.pid as i32, libc::SIGCONT) };
        let judged = hung.wait_event("the stop diagnosed once the source is back", |e| {
            e["event"] == "incident" && e["incident"]["fingerprint"].is_string()
        });
        assert!(
            judged["decision"]["reason"]
                .as_str()
                .unwrap()
                .contains("no rule"),
            "{judged}"
        );
        let (code, _) = hung.stop();
        assert_eq!(code, 0);
        // Stopped while a diagnosis hangs: it exits at once, having changed nothing.
        unsafe { libc::kill(n1.pid as i32, libc::SIGSTOP) };
        let again = Watch::start(&dir, "source-hung-2", &["--replica", &url]);
        again.wait_event("watching", |e| e["event"] == "watching");
        std::thread::sleep(Duration::from_millis(500));
        let started = Instant::now();
        let (code, events) = again.stop();
        unsafe { libc::kill(n1.pid as i32, libc::SIGCONT) };
        assert_eq!(code, 0);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "stopping took {:?}",
            started.elapsed()
        );
        assert!(!events.iter().any(|e| e["event"] == "action"), "{events:?}");

        // A policy file opts this table in to overwrite: the source's version wins, the
        // replica's row is journaled first.
        let policy = dir.join("policy.json");
        std::fs::write(
            &policy,
            r#"{"schema": "replmend.watch-policy/1", "rules": [{"match": {"tables": ["w.*"], "errnos": [1062]}, "remedies": ["overwrite"]}]}"#,
        )
        .unwrap();
        let journal = dir.join("journal.jsonl");
        let b = Watch::start(
            &dir,
            "b",
            &[
                "--replica",
                &url,
                "--policy",
                policy.to_str().unwrap(),
                "--journal",
                journal.to_str().unwrap(),
            ],
        );
        wait_healthy(n2, &b);
        let action = b.wait_event("overwrite", |e| e["event"] == "action");
        assert_eq!(action["action"]["remedy"], "overwrite", "{action}");
        assert_eq!(action["action"]["rows_journaled"], 1, "{action}");
        assert_eq!(journaled_rows(journal.to_str().unwrap()), 1);
        assert_eq!(
            n2.query_value("SELECT v FROM w.t WHERE id = 2")
                .unwrap()
                .as_deref(),
            Some("source")
        );

        // Its connections killed (as a server restart would): it reconnects and keeps watching.
        let ids = n2
            .query_rows("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'root' AND COMMAND = 'Sleep' AND ID <> CONNECTION_ID()")
            .unwrap();
        for id in ids.into_iter().flatten().flatten() {
            let _ = n2.exec(&format!("KILL {id}"));
        }
        b.wait_event("connection_lost", |e| e["event"] == "connection_lost");
        b.wait_event("connection_restored", |e| {
            e["event"] == "connection_restored"
        });
        conflict(
            &sb,
            "INSERT INTO w.t VALUES (4, 'replica')",
            "INSERT INTO w.t VALUES (4, 'source')",
        );
        wait_healthy(n2, &b);
        assert_eq!(
            n2.query_value("SELECT v FROM w.t WHERE id = 4")
                .unwrap()
                .as_deref(),
            Some("source")
        );
        // Stopped by someone, without an error: reported once, left alone.
        n2.stop_replication().unwrap();
        let stopped = b.wait_event("not_running", |e| e["event"] == "not_running");
        assert!(
            stopped["message"]
                .as_str()
                .unwrap()
                .contains("WAITING FOR A HUMAN"),
            "{stopped}"
        );
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(
            b.events()
                .iter()
                .filter(|e| e["event"] == "not_running")
                .count(),
            1
        );
        n2.start_replication().unwrap();
        let (code, _) = b.stop();
        assert_eq!(code, 0);
        assert!(healthy(n2));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn watch_on_both_nodes_of_a_read_only_dual_master_pair_converges_after_a_crash() {
    for flavor in FLAVORS {
        let sb = incident(flavor, Topology::DualMaster, "seed-dual-master-1062");
        let (n1, n2) = (sb.node("n1"), sb.node("n2"));
        let (set_ro, check) = match flavor {
            Flavor::MariaDb => ("SET GLOBAL read_only = ON", "SELECT @@read_only"),
            Flavor::MySql => (
                "SET GLOBAL super_read_only = ON",
                "SELECT @@super_read_only",
            ),
        };
        for n in [n1, n2] {
            n.exec(set_ro).unwrap();
        }
        let dir =
            std::env::temp_dir().join(format!("replmend-watch-dm-{}-{flavor}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let policy = dir.join("policy.json");
        std::fs::write(
            &policy,
            r#"{"lift_read_only": true, "rules": [{"match": {"tables": ["zeus.*"]}, "remedies": ["overwrite"], "winner": "source"}]}"#,
        )
        .unwrap();
        let (u1, u2) = (n1.url(), n2.url());
        let args = [
            "--replica",
            &u1,
            "--replica",
            &u2,
            "--policy",
            policy.to_str().unwrap(),
        ];
        // Killed (abort, like kill -9) right after the repair's second step.
        let crashed = Watch::start_env(
            &dir,
            "crashed",
            &args,
            &[("REPLMEND_TEST_CRASH_AFTER_STEP", "2")],
        );
        let mut child = crashed;
        let started = Instant::now();
        let status = loop {
            if let Some(s) = child.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{}",
                child.stdout()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(
            status.code(),
            None,
            "{flavor}: not killed mid-repair: {}",
            child.stderr()
        );
        assert!(
            child.stdout().contains("\"remedy\":\"overwrite\""),
            "{}",
            child.stdout()
        );
        // The next watcher puts read_only back and finishes the job.
        let w = Watch::start(&dir, "again", &args);
        wait_healthy(n2, &w);
        wait_healthy(n1, &w);
        let seed = "SELECT payload, hits, created_at FROM zeus.xinyan_cache";
        assert_eq!(n1.query_rows(seed).unwrap(), n2.query_rows(seed).unwrap());
        for n in [n1, n2] {
            assert_eq!(
                n.query_value(check).unwrap().as_deref(),
                Some("1"),
                "{flavor}: read_only"
            );
        }
        let (code, _) = w.stop();
        assert_eq!(code, 0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The accounts docs/privileges.md documents, on MariaDB 10.5 and 11.8 (server defaults) and
/// MySQL 9.7: the watcher works with nothing more.
#[test]
fn watch_with_the_documented_grants_on_mariadb_10_5_11_8_and_mysql() {
    use replmend_sandbox::Build;
    let mariadb = "GRANT SELECT, INSERT, DELETE, SUPER, REPLICATION SLAVE, REPLICATION SLAVE ADMIN, \
                   SLAVE MONITOR, BINLOG ADMIN, BINLOG MONITOR ON *.* TO 'replmend'@'127.0.0.1'";
    let mysql = "GRANT SELECT, INSERT, DELETE, REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'replmend'@'127.0.0.1'; \
                 GRANT REPLICATION_SLAVE_ADMIN, SYSTEM_VARIABLES_ADMIN ON *.* TO 'replmend'@'127.0.0.1'";
    for (build, grants) in [
        (Build::MariaDb105, mariadb),
        (Build::MariaDb118, mariadb),
        (Build::MySql, mysql),
    ] {
        let sb = Sandbox::start_build(build, Topology::SourceReplica)
            .unwrap_or_else(|e| panic!("{build:?}: {e:#}"));
        let (n1, n2) = (sb.node("n1"), sb.node("n2"));
        n1.exec(&format!(
            "CREATE USER 'replmend'@'127.0.0.1' IDENTIFIED BY 'Wat-ch9!'; {grants}; \
             CREATE DATABASE w; CREATE TABLE w.t (id INT PRIMARY KEY, v VARCHAR(20))"
        ))
        .unwrap();
        n2.wait_caught_up(Duration::from_secs(60)).unwrap();
        let dir =
            std::env::temp_dir().join(format!("replmend-watch-grants-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("mysql://replmend:Wat-ch9%21@127.0.0.1:{}", n2.port);
        let mut waiting = false;
        if build == Build::MySql {
            // Observe only: the decision is reported, nothing is done.
            let w = Watch::start(&dir, "dry-run", &["--replica", &url, "--dry-run"]);
            w.wait_event("watching", |e| e["event"] == "watching");
            conflict(
                &sb,
                "INSERT INTO w.t VALUES (1, 'same')",
                "INSERT INTO w.t VALUES (1, 'same')",
            );
            let seen = w.wait_event("incident", |e| e["event"] == "incident");
            assert!(
                seen["message"]
                    .as_str()
                    .unwrap()
                    .contains("DRY RUN, nothing done: "),
                "{seen}"
            );
            assert_eq!(seen["decision"]["action"], "repair", "{seen}");
            std::thread::sleep(Duration::from_millis(1000));
            assert_eq!(
                n2.sql_error().unwrap().map(|e| e.0),
                Some(1062),
                "a dry run acted"
            );
            let (code, events) = w.stop();
            assert_eq!(code, 0);
            assert!(!events.iter().any(|e| e["event"] == "action"), "{events:?}");
            waiting = true;
        }
        if build == Build::MariaDb118 {
            // 11.x's SUPER no longer reads binlog positions: without BINLOG MONITOR the
            // preflight refuses before anything changes, and the incident waits.
            n1.exec("REVOKE BINLOG MONITOR ON *.* FROM 'replmend'@'127.0.0.1'")
                .unwrap();
            n2.wait_caught_up(Duration::from_secs(60)).unwrap();
            let w = Watch::start(&dir, "without-binlog-monitor", &["--replica", &url]);
            w.wait_event("watching", |e| e["event"] == "watching");
            conflict(
                &sb,
                "INSERT INTO w.t VALUES (1, 'same')",
                "INSERT INTO w.t VALUES (1, 'same')",
            );
            let failed = w.wait_event("action", |e| e["event"] == "action");
            let error = failed["action"]["error"].as_str().unwrap_or_default();
            assert!(
                error.contains("preflight refused") && error.contains("BINLOG MONITOR"),
                "{failed}"
            );
            assert_eq!(
                n2.sql_error().unwrap().map(|e| e.0),
                Some(1062),
                "nothing changed"
            );
            let (code, _) = w.stop();
            assert_eq!(code, 0);
            // n2 is stopped: the grant is made on both nodes, unlogged on the source.
            for n in [n1, n2] {
                n.exec(
                    "SET sql_log_bin = 0; GRANT BINLOG MONITOR ON *.* TO 'replmend'@'127.0.0.1'",
                )
                .unwrap();
            }
            waiting = true;
        }
        let w = Watch::start(&dir, &format!("{build:?}"), &["--replica", &url]);
        w.wait_event("watching", |e| e["event"] == "watching");
        if !waiting {
            conflict(
                &sb,
                "INSERT INTO w.t VALUES (1, 'same')",
                "INSERT INTO w.t VALUES (1, 'same')",
            );
        }
        wait_healthy(n2, &w);
        let action = w.wait_event("action", |e| e["event"] == "action");
        assert_eq!(
            action["action"]["outcome"], "repaired",
            "{build:?}: {action}"
        );
        assert!(!w.stdout().contains("Wat-ch9"), "the password was printed");
        let (code, _) = w.stop();
        assert_eq!(code, 0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn watch_refuses_bad_input_before_touching_a_server() {
    let dir = std::env::temp_dir().join(format!("replmend-watch-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("p.json");
    std::fs::write(&policy, r#"{"rules": [{"remedies": ["nuke"]}]}"#).unwrap();
    let p = policy.to_str().unwrap();
    // Port 9 on loopback: nothing listens; bad input must be found before trying it.
    for (args, needle) in [
        (vec!["--policy", p], "rules[0].remedies"),
        (vec!["--metrics-addr", "x"], "not [HOST:]PORT"),
        (vec!["--interval", "0"], "--interval"),
    ] {
        let mut all = vec!["watch", "--replica", "mysql://root@127.0.0.1:9"];
        all.extend(args);
        let run = replmend(&all);
        assert_eq!(run.code, exit::BAD_INPUT, "{all:?}: {}", run.stderr);
        assert!(run.stderr.contains(needle), "{}", run.stderr);
        assert!(!run.stderr.contains("Error {"), "{}", run.stderr);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A receiver reconnecting to a source that does not answer (the source restarting) is one
/// state, reported once whatever its attempt counter says, not "waiting for a human"; its
/// recovery is reported once too.
#[test]
fn a_reconnecting_receiver_is_one_state_reported_once_with_its_recovery() {
    let base =
        std::env::temp_dir().join(format!("replmend-watch-reconnect-{}", std::process::id()));
    for flavor in FLAVORS {
        let sb = Sandbox::start(flavor, Topology::SourceReplicaGtid).unwrap();
        let (n1, n2) = (sb.node("n1"), sb.node("n2"));
        let w = Watch::start(&base, &format!("{flavor}"), &["--replica", &n2.url()]);
        w.wait_event("watching", |e| e["event"] == "watching");
        let point = |port: u16| match flavor {
            Flavor::MariaDb => {
                format!("STOP SLAVE; CHANGE MASTER TO MASTER_PORT = {port}; START SLAVE")
            }
            Flavor::MySql => format!(
                "STOP REPLICA IO_THREAD; CHANGE REPLICATION SOURCE TO SOURCE_PORT = {port}; START REPLICA IO_THREAD"
            ),
        };
        // Port 1 refuses every connection: the receiver retries every second.
        n2.exec(&point(1)).unwrap();
        w.wait_event("reconnecting", |e| {
            e["event"] == "not_running"
                && e["message"].as_str().unwrap_or("").contains("reconnecting")
        });
        std::thread::sleep(Duration::from_secs(5));
        // The outage, as reported before the test itself stops the receiver to point it back
        // (that stop, with the reconnect's last error still shown, is a human's own state).
        let outage = w.events();
        n2.exec(&point(n1.port)).unwrap();
        w.wait_event("recovered", |e| e["event"] == "recovered");
        let (code, events) = w.stop();
        assert_eq!(code, 0, "{flavor}");
        let of = |kind: &str| events.iter().filter(|e| e["event"] == kind).count();
        let reconnecting = outage
            .iter()
            .filter(|e| e["message"].as_str().unwrap_or("").contains("reconnecting"))
            .count();
        assert_eq!(
            reconnecting, 1,
            "{flavor}: one event for the whole outage: {outage:?}"
        );
        assert!(
            !outage.iter().any(|e| {
                let m = e["message"].as_str().unwrap_or("");
                m.contains("WAITING FOR A HUMAN") && m.contains("connect")
            }),
            "{flavor}: a reconnect is not a human's job: {outage:?}"
        );
        assert_eq!(of("recovered"), 1, "{flavor}: {events:?}");
        sb.stop();
    }
}

// Issue 23: one watcher, twenty replicas, each polled on its own thread. One replica's server
// frozen (SIGSTOP: it accepts connections and answers nothing) delays no other: a lossless
// conflict on another replica is resolved while it is frozen. (`cargo bench --bench
// watch_fleet` prints the reaction time; here only that it happened is asserted.)
#[test]
fn one_watcher_of_twenty_replicas_one_frozen_still_resolves_a_conflict_elsewhere() {
    for flavor in FLAVORS {
        let sb = started(flavor, Topology::FanOut(20));
        let n1 = sb.node("n1");
        n1.exec("CREATE DATABASE w; CREATE TABLE w.t (id INT PRIMARY KEY, v INT NOT NULL)")
            .unwrap();
        let replicas: Vec<&Node> = (2..=21).map(|i| sb.node(&format!("n{i}"))).collect();
        for r in &replicas {
            r.wait_caught_up(Duration::from_secs(60)).unwrap();
        }
        let dir = std::env::temp_dir().join(format!("replmend-watch-fleet-{}", std::process::id()));
        let urls: Vec<String> = replicas.iter().map(|r| r.url()).collect();
        let mut args: Vec<&str> = Vec::new();
        for u in &urls {
            args.extend(["--replica", u.as_str()]);
        }
        let w = Watch::start(&dir, &format!("fleet-{flavor}"), &args);
        let started = Instant::now();
        while w
            .events()
            .iter()
            .filter(|e| e["event"] == "watching")
            .count()
            < 20
        {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{}\n{}",
                w.stdout(),
                w.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let (frozen, target) = (sb.node("n5"), sb.node("n12"));
        signal(frozen.pid, "-STOP");
        target
            .exec("SET SESSION sql_log_bin = 0; INSERT INTO w.t VALUES (1, 7)")
            .unwrap();
        let conflict_at = Instant::now();
        n1.exec("INSERT INTO w.t VALUES (1, 7)").unwrap();
        let at = format!("127.0.0.1:{}", target.port);
        let action = w.wait_event("action on the live replica", |e| {
            e["event"] == "action" && e["replica"] == at.as_str()
        });
        let reaction = conflict_at.elapsed();
        signal(frozen.pid, "-CONT");
        // The lossless remedy of a GTID replica: the transaction skipped (by an empty one).
        assert!(
            matches!(
                action["action"]["remedy"].as_str(),
                Some("skip" | "inject-gtid")
            ),
            "{flavor}: {action}"
        );
        assert_eq!(
            action["action"]["outcome"], "repaired",
            "{flavor}: {action}"
        );
        assert!(healthy(target), "{flavor}");
        eprintln!(
            "{flavor}: 20 replicas, one frozen: a lossless 1062 elsewhere resolved {reaction:?} after the source's write"
        );
        let (code, _) = w.stop();
        assert_eq!(code, 0, "{flavor}");
        let _ = std::fs::remove_dir_all(&dir);
        sb.stop();
    }
}

// Issue 23: the policy's max_actions_per_minute hands a replica to a human after N automatic
// actions; SIGHUP reads the policy file again, and the incident waiting under the old policy
// is decided again under the new one.
#[test]
fn a_rate_limit_waits_for_a_human_and_sighup_reloads_the_policy() {
    let flavor = Flavor::MariaDb;
    let sb = started(flavor, Topology::SourceReplica);
    let (n1, n2) = (sb.node("n1"), sb.node("n2"));
    n1.exec("CREATE DATABASE w; CREATE TABLE w.t (id INT PRIMARY KEY, v INT NOT NULL)")
        .unwrap();
    n2.wait_caught_up(Duration::from_secs(60)).unwrap();
    let dir = std::env::temp_dir().join(format!("replmend-watch-hup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("policy.json");
    std::fs::write(&policy, r#"{"max_actions_per_minute": 1}"#).unwrap();
    let url = n2.url();
    let w = Watch::start(
        &dir,
        "hup",
        &["--replica", &url, "--policy", policy.to_str().unwrap()],
    );
    w.wait_event("watching", |e| e["event"] == "watching");
    conflict(
        &sb,
        "INSERT INTO w.t VALUES (1, 1)",
        "INSERT INTO w.t VALUES (1, 1)",
    );
    w.wait_event("first action", |e| e["event"] == "action");
    assert!(healthy(n2));
    conflict(
        &sb,
        "INSERT INTO w.t VALUES (2, 2)",
        "INSERT INTO w.t VALUES (2, 2)",
    );
    let held = w.wait_event("the rate limit", |e| {
        e["event"] == "incident" && e["decision"]["action"] == "wait"
    });
    assert!(
        held["decision"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("max_actions_per_minute (1)")),
        "{held}"
    );
    assert!(n2.sql_error().unwrap().is_some(), "left for a human");
    // The human raises the limit and reloads: the waiting incident is decided again.
    std::fs::write(&policy, r#"{"max_actions_per_minute": 10}"#).unwrap();
    signal(w.child.id(), "-HUP");
    let started = Instant::now();
    while w.events().iter().filter(|e| e["event"] == "action").count() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{}\n{}",
            w.stdout(),
            w.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(healthy(n2));
    assert!(w.stderr().contains("policy reloaded"), "{}", w.stderr());
    // A policy file broken later is refused on SIGHUP; the running policy stays.
    std::fs::write(&policy, "{not json").unwrap();
    signal(w.child.id(), "-HUP");
    let started = Instant::now();
    while !w.stderr().contains("the running policy stays") {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{}",
            w.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, _) = w.stop();
    assert_eq!(code, 0);
    let _ = std::fs::remove_dir_all(&dir);
    sb.stop();
}
