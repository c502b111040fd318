//! MariaDB 10.5 (Debian bullseye, in its own debootstrap chroot) with the server's default
//! settings: the seed incident, what differs from 10.11 (status columns, SUPER and read_only),
//! every recipe unchanged, the CLI and the sweep. Real servers: run scripts/install-deps first;
//! a missing chroot is a failure, never a skip.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use mysql::{Conn, OptsBuilder};
use replmend_sandbox::{Build, Flavor, Node, Recipe, Sandbox, Topology, available};

const BIN: &str = env!("CARGO_BIN_EXE_replmend-sandbox");
const SEED_KEY: &str = "b98e4fab203607559fc5347b60cb64a41cf50a79650fbda3a1a4be5a1cfd16d9";

fn need() {
    if let Err(e) = available(Build::MariaDb105) {
        panic!("{e}");
    }
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit_once(") ")
            .is_some_and(|(_, r)| r.starts_with('Z') || r.starts_with('X'))
    })
}

fn wait_dead(pids: &[u32]) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if pids.iter().all(|p| !alive(*p)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn pids(json: &serde_json::Value) -> Vec<u32> {
    json["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["pid"].as_u64().unwrap() as u32)
        .collect()
}

/// The default channel's row of `SHOW ALL SLAVES STATUS`, by column name, in the server's
/// column order.
fn all_slaves_status(n: &Node) -> Vec<(String, String)> {
    let mut c = n.conn().unwrap();
    let row: mysql::Row = c
        .query_first("SHOW ALL SLAVES STATUS")
        .unwrap()
        .unwrap_or_else(|| panic!("{}: not a replica", n.name));
    let names: Vec<String> = row
        .columns_ref()
        .iter()
        .map(|c| c.name_str().into_owned())
        .collect();
    let values = row.unwrap().into_iter().map(|v| match v {
        mysql::Value::NULL => String::new(),
        mysql::Value::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
        other => other.as_sql(true).trim_matches('\'').to_string(),
    });
    names.into_iter().zip(values).collect()
}

fn col<'a>(status: &'a [(String, String)], name: &str) -> &'a str {
    status
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no column {name}"))
}

fn login(n: &Node, user: &str) -> Conn {
    let opts = OptsBuilder::new()
        .ip_or_hostname(Some("127.0.0.1"))
        .tcp_port(n.port)
        .user(Some(user))
        .prefer_socket(false);
    Conn::new(opts).unwrap_or_else(|e| panic!("{user}@{}: {e}", n.name))
}

/// What 10.5 says differently from 10.11: `SHOW ALL SLAVES STATUS` has no
/// `Replicate_Rewrite_DB` column (and there is no information_schema.SLAVE_STATUS); the
/// `READ_ONLY ADMIN` privilege exists (since 10.5.2), but SUPER still includes it, so an
/// account with SUPER alone may write under `read_only=ON` (on 10.11 it gets 1290).
#[test]
fn status_columns_and_read_only_admin_on_mariadb_105() {
    need();
    let sb = Sandbox::start_build(Build::MariaDb105, Topology::SourceReplica).unwrap();
    let (n1, n2) = (sb.node("n1"), sb.node("n2"));

    let st = all_slaves_status(n2);
    let names: Vec<&str> = st.iter().map(|(n, _)| n.as_str()).collect();
    eprintln!("[mariadb-10.5] SHOW ALL SLAVES STATUS: {names:?}");
    assert_eq!(
        names[..3],
        ["Connection_name", "Slave_SQL_State", "Slave_IO_State"]
    );
    assert_eq!(names.last(), Some(&"Gtid_Slave_Pos"));
    for want in [
        "Slave_IO_Running",
        "Slave_SQL_Running",
        "Last_SQL_Errno",
        "Last_SQL_Error",
        "Exec_Master_Log_Pos",
        "Relay_Master_Log_File",
        "Using_Gtid",
        "Gtid_IO_Pos",
        "Parallel_Mode",
        "Slave_DDL_Groups",
        "Retried_transactions",
    ] {
        assert!(names.contains(&want), "{want} missing: {names:?}");
    }
    assert!(!names.contains(&"Replicate_Rewrite_DB"), "{names:?}");
    assert_eq!(col(&st, "Using_Gtid"), "No");
    assert_eq!(col(&st, "Slave_SQL_Running"), "Yes");
    assert!(
        n2.query_value("SELECT COUNT(*) FROM information_schema.SLAVE_STATUS")
            .is_err()
    );

    let privileges = n1.query_rows("SHOW PRIVILEGES").unwrap();
    assert!(
        privileges
            .iter()
            .any(|r| r[0].as_deref() == Some("Read_only admin")),
        "{privileges:?}"
    );
    n1.exec(
        "CREATE DATABASE ro; CREATE TABLE ro.t (id INT PRIMARY KEY); \
         CREATE USER su@'%'; GRANT SUPER ON *.* TO su@'%'; \
         CREATE USER roa@'%'; GRANT READ_ONLY ADMIN ON *.* TO roa@'%'; \
         CREATE USER plain@'%'; \
         GRANT INSERT ON ro.* TO su@'%', roa@'%', plain@'%'; \
         SET GLOBAL read_only = ON",
    )
    .unwrap();
    let grants = n1.query_rows("SHOW GRANTS FOR roa@'%'").unwrap();
    assert!(
        grants.iter().any(|r| r[0]
            .as_deref()
            .is_some_and(|g| g.contains("READ_ONLY ADMIN"))),
        "{grants:?}"
    );
    let insert =
        |user: &str, id: u32| login(n1, user).query_drop(format!("INSERT INTO ro.t VALUES ({id})"));
    insert("su", 1).expect("SUPER includes READ_ONLY ADMIN on 10.5");
    insert("roa", 2).expect("READ_ONLY ADMIN");
    match insert("plain", 3) {
        Err(mysql::Error::MySqlError(e)) => assert_eq!(e.code, 1290, "{e}"),
        other => panic!("plain account under read_only: {other:?}"),
    }
    n1.exec("SET GLOBAL read_only = OFF").unwrap();
    n2.wait_caught_up(Duration::from_secs(30)).unwrap();
    assert_eq!(
        n2.query_value("SELECT COUNT(*) FROM ro.t")
            .unwrap()
            .as_deref(),
        Some("2")
    );
}

#[test]
fn seed_dual_master_1062_on_mariadb_105() {
    need();
    let started = Instant::now();
    let sb = Sandbox::start_build(Build::MariaDb105, Topology::DualMaster).unwrap();
    let up = started.elapsed();
    assert_eq!(sb.flavor, Flavor::MariaDb);
    assert_eq!(sb.build, Build::MariaDb105);
    let chroot = Build::MariaDb105.chroot().unwrap();
    assert!(sb.dir.starts_with(&chroot), "{}", sb.dir.display());
    for n in &sb.nodes {
        let version = n.query_value("SELECT @@version").unwrap().unwrap();
        assert!(version.starts_with("10.5."), "{}: {version}", n.name);
        // 10.5 predates binlog_legacy_event_pos (11.8's OFF default): its events always
        // carry their real end_log_pos.
        assert!(
            n.query_value("SELECT @@binlog_legacy_event_pos").is_err(),
            "{}",
            n.name
        );
        assert_eq!(
            n.query_value("SELECT @@gtid_domain_id").unwrap(),
            Some(n.server_id.to_string())
        );
        assert_eq!(
            n.query_value("SELECT @@log_slave_updates")
                .unwrap()
                .as_deref(),
            Some("1")
        );
        eprintln!("[mariadb-10.5] {} {version}", n.name);
    }
    let incident = Instant::now();
    sb.recipe("seed-dual-master-1062").unwrap();
    let incident = incident.elapsed();
    for n in &sb.nodes {
        let (errno, text) = n
            .sql_error()
            .unwrap()
            .unwrap_or_else(|| panic!("{} did not stop", n.name));
        eprintln!("[mariadb-10.5] {} Last_SQL_Error {errno}: {text}", n.name);
        assert_eq!(errno, 1062, "{}: {text}", n.name);
        assert!(
            text.contains("zeus.xinyan_cache") && text.contains(SEED_KEY),
            "{}: {text}",
            n.name
        );
        let end_log_pos: u64 = text
            .rsplit_once("end_log_pos ")
            .and_then(|(_, p)| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("{}: no end_log_pos in {text}", n.name));
        assert!(end_log_pos > 0, "{}: {text}", n.name);
        let other = if n.name == "n1" { "maria2" } else { "maria1" };
        assert!(
            text.contains(&format!("master log {other}-bin.000001")),
            "{}: {text}",
            n.name
        );
        // Same GTID handling as 10.11: the channel positions by slave_pos, one domain per node,
        // and the conflicting transaction (the source's domain) has been received.
        let st = all_slaves_status(n);
        assert_eq!(col(&st, "Using_Gtid"), "Slave_Pos");
        let source_id = 3 - n.server_id;
        assert!(
            col(&st, "Gtid_IO_Pos").contains(&format!("{source_id}-{source_id}-")),
            "{}: {st:?}",
            n.name
        );
    }
    eprintln!(
        "[mariadb-10.5] dual-master up in {up:.2?}, seed incident in {incident:.2?}; RSS {} MiB, {} MiB",
        sb.nodes[0].rss_kib().unwrap_or(0) / 1024,
        sb.nodes[1].rss_kib().unwrap_or(0) / 1024
    );
    let servers: Vec<u32> = sb.nodes.iter().map(|n| n.pid).collect();
    let dir = sb.dir.clone();
    drop(sb);
    assert!(servers.iter().all(|p| !alive(*p)), "servers still running");
    assert!(!dir.exists(), "{} left behind", dir.display());
}

/// The recipes, unchanged (the `mariadb` flavor's SQL), give their expected errors on 10.5.
#[test]
fn every_recipe_on_mariadb_105() {
    need();
    let recipes = Recipe::all().unwrap();
    assert!(recipes.len() >= 7, "{recipes:?}");
    for recipe in recipes {
        let started = Instant::now();
        let sb = Sandbox::start_build(Build::MariaDb105, recipe.topology)
            .unwrap_or_else(|e| panic!("{}: {e:#}", recipe.topology));
        sb.recipe(&recipe.name)
            .unwrap_or_else(|e| panic!("{}: {e:#}", recipe.name));
        for node in &sb.nodes {
            let got = node.sql_error().unwrap();
            let want = recipe
                .expect
                .iter()
                .find(|(n, _)| *n == node.name)
                .map(|(_, e)| *e);
            assert_eq!(
                got.as_ref().map(|(e, _)| *e),
                want,
                "{} {}: {got:?}",
                recipe.name,
                node.name
            );
        }
        eprintln!("[mariadb-10.5] {}: {:.2?}", recipe.name, started.elapsed());
    }
}

fn cli(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Downs the kept sandbox even when an assertion fails.
struct Down(PathBuf);

impl Drop for Down {
    fn drop(&mut self) {
        if self.0.join("sandbox.json").exists() {
            let _ = replmend_sandbox::down(&self.0);
        }
    }
}

#[test]
fn cli_up_build_mariadb_105_recipe_down() {
    need();
    let state =
        std::env::temp_dir().join(format!("replmend-sandbox-cli105-{}", std::process::id()));
    let _guard = Down(state.clone());
    let s = state.to_str().unwrap();
    let up = [
        "up",
        "--build",
        "mariadb-10.5",
        "--topology",
        "dual-master",
        "--state-dir",
        s,
        "--recipe",
        "seed-dual-master-1062",
    ];
    let (ok, out, err) = cli(&up);
    assert!(ok, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["flavor"], "mariadb");
    assert_eq!(json["build"], "mariadb-10.5");
    let servers = pids(&json);
    assert_eq!(
        replmend_sandbox::build_of(&state).unwrap(),
        Build::MariaDb105
    );

    // Idempotent for the same build; the flavor's default build is another sandbox.
    let (ok, out, err) = cli(&up);
    assert!(ok, "{err}");
    let again: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(pids(&again), servers);
    let (ok, _, err) = cli(&["up", "--flavor", "mysql", "--build", "mariadb-10.5"]);
    assert!(!ok && err.contains("not mysql"), "{err}");

    let (ok, out, err) = cli(&["sql", "--state-dir", s, "--node", "n2", "SELECT @@version"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("10.5."), "{out}");
    let (ok, out, err) = cli(&[
        "sql",
        "--state-dir",
        s,
        "--node",
        "n1",
        "SHOW ALL SLAVES STATUS",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("\t1062\t"), "{out}");
    // 10.5 has no information_schema.SLAVE_STATUS (10.11 has).
    let (ok, _, err) = cli(&[
        "sql",
        "--state-dir",
        s,
        "--node",
        "n1",
        "SELECT Last_Errno FROM information_schema.SLAVE_STATUS",
    ]);
    assert!(!ok && err.contains("SLAVE_STATUS"), "{err}");

    let (ok, _, err) = cli(&["down", "--state-dir", s]);
    assert!(ok, "{err}");
    assert!(wait_dead(&servers), "servers still running after down");
    assert!(!state.exists(), "{s} left behind");
    let sandbox_dir = json["sandbox_dir"].as_str().unwrap();
    assert!(
        !std::path::Path::new(sandbox_dir).exists(),
        "{sandbox_dir} left behind"
    );
}

/// A SIGKILLed owner's 10.5 servers (inside the 10.5 chroot) are swept by the next start.
#[test]
fn sigkilled_owner_is_swept_mariadb_105() {
    need();
    let mut holder = Command::new(BIN)
        .args(["hold", "--build", "mariadb-10.5"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("hold printed {line:?}: {e}"));
    let servers = pids(&json);
    let dir = PathBuf::from(json["sandbox_dir"].as_str().unwrap());
    assert!(servers.iter().all(|p| alive(*p)));
    holder.kill().unwrap();
    holder.wait().unwrap();
    let sb = Sandbox::start(Flavor::MariaDb, Topology::SourceReplica).unwrap();
    assert!(
        wait_dead(&servers),
        "the stale 10.5 sandbox's servers still run"
    );
    assert!(!dir.exists(), "{} left behind", dir.display());
    drop(sb);
}

/// Without the 10.5 chroot, `up --build mariadb-10.5` names the build and the fix.
#[test]
fn a_missing_mariadb_105_chroot_says_how_to_install_it() {
    let empty = std::env::temp_dir().join(format!("replmend-no-cache105-{}", std::process::id()));
    let out = Command::new(BIN)
        .args(["up", "--build", "mariadb-10.5", "--state-dir"])
        .arg(empty.join("state"))
        .env("REPLMEND_CACHE", &empty)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("MariaDB 10.5") && err.contains("mariadb-10.5-chroot"),
        "{err}"
    );
    assert!(err.contains("scripts/install-deps"), "{err}");
    let _ = std::fs::remove_dir_all(&empty);
}
