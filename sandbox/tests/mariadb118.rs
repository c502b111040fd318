//! MariaDB 11.8 (Debian trixie, in its own debootstrap chroot) with the server's default
//! settings: the seed incident, every recipe unchanged, the CLI and the sweep. Real servers:
//! run scripts/install-deps first; a missing chroot is a failure, never a skip.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use replmend_sandbox::{Build, Flavor, Recipe, Sandbox, Topology, available};

const BIN: &str = env!("CARGO_BIN_EXE_replmend-sandbox");
const SEED_KEY: &str = "b98e4fab203607559fc5347b60cb64a41cf50a79650fbda3a1a4be5a1cfd16d9";

fn need() {
    if let Err(e) = available(Build::MariaDb118) {
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

#[test]
fn seed_dual_master_1062_on_mariadb_118() {
    need();
    let started = Instant::now();
    let sb = Sandbox::start_build(Build::MariaDb118, Topology::DualMaster).unwrap();
    let up = started.elapsed();
    assert_eq!(sb.flavor, Flavor::MariaDb);
    assert_eq!(sb.build, Build::MariaDb118);
    let chroot = Build::MariaDb118.chroot().unwrap();
    assert!(sb.dir.starts_with(&chroot), "{}", sb.dir.display());
    for n in &sb.nodes {
        let version = n.query_value("SELECT @@version").unwrap().unwrap();
        assert!(version.starts_with("11.8"), "{}: {version}", n.name);
        // The server's default, not set by the sandbox.
        assert_eq!(
            n.query_value("SELECT @@binlog_legacy_event_pos")
                .unwrap()
                .as_deref(),
            Some("0"),
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
        eprintln!("[mariadb-11.8] {} {version}", n.name);
    }
    let incident = Instant::now();
    sb.recipe("seed-dual-master-1062").unwrap();
    let incident = incident.elapsed();
    for n in &sb.nodes {
        let (errno, text) = n
            .sql_error()
            .unwrap()
            .unwrap_or_else(|| panic!("{} did not stop", n.name));
        eprintln!("[mariadb-11.8] {} Last_SQL_Error {errno}: {text}", n.name);
        assert_eq!(errno, 1062, "{}: {text}", n.name);
        assert!(
            text.contains("zeus.xinyan_cache") && text.contains(SEED_KEY),
            "{}: {text}",
            n.name
        );
    }
    eprintln!(
        "[mariadb-11.8] dual-master up in {up:.2?}, seed incident in {incident:.2?}; RSS {} MiB, {} MiB",
        sb.nodes[0].rss_kib().unwrap_or(0) / 1024,
        sb.nodes[1].rss_kib().unwrap_or(0) / 1024
    );
    let servers: Vec<u32> = sb.nodes.iter().map(|n| n.pid).collect();
    let dir = sb.dir.clone();
    drop(sb);
    assert!(servers.iter().all(|p| !alive(*p)), "servers still running");
    assert!(!dir.exists(), "{} left behind", dir.display());
}

/// The recipes, unchanged (the `mariadb` flavor's SQL), give their expected errors on 11.8.
#[test]
fn every_recipe_on_mariadb_118() {
    need();
    let recipes = Recipe::all().unwrap();
    assert!(recipes.len() >= 7, "{recipes:?}");
    for recipe in recipes {
        let started = Instant::now();
        let sb = Sandbox::start_build(Build::MariaDb118, recipe.topology)
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
        eprintln!("[mariadb-11.8] {}: {:.2?}", recipe.name, started.elapsed());
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
fn cli_up_build_mariadb_118_recipe_down() {
    need();
    let state =
        std::env::temp_dir().join(format!("replmend-sandbox-cli118-{}", std::process::id()));
    let _guard = Down(state.clone());
    let s = state.to_str().unwrap();
    let up = [
        "up",
        "--build",
        "mariadb-11.8",
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
    assert_eq!(json["build"], "mariadb-11.8");
    let servers = pids(&json);
    assert_eq!(
        replmend_sandbox::build_of(&state).unwrap(),
        Build::MariaDb118
    );

    // Idempotent for the same build; the flavor's default build is another sandbox.
    let (ok, out, err) = cli(&up);
    assert!(ok, "{err}");
    let again: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(pids(&again), servers);
    let (ok, _, err) = cli(&["up", "--flavor", "mysql", "--build", "mariadb-11.8"]);
    assert!(!ok && err.contains("not mysql"), "{err}");

    let (ok, out, err) = cli(&["sql", "--state-dir", s, "--node", "n2", "SELECT @@version"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("11.8"), "{out}");
    let (ok, out, err) = cli(&[
        "sql",
        "--state-dir",
        s,
        "--node",
        "n1",
        "SELECT Last_Errno FROM information_schema.SLAVE_STATUS",
    ]);
    assert!(ok, "{err}");
    eprintln!("[mariadb-11.8] cli: n1 SLAVE_STATUS: {out}");

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

/// A SIGKILLed owner's 11.8 servers (inside the 11.8 chroot) are swept by the next start.
#[test]
fn sigkilled_owner_is_swept_mariadb_118() {
    need();
    let mut holder = Command::new(BIN)
        .args(["hold", "--build", "mariadb-11.8"])
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
        "the stale 11.8 sandbox's servers still run"
    );
    assert!(!dir.exists(), "{} left behind", dir.display());
    drop(sb);
}
