//! Isolation and cleanup: parallel sandboxes never share a port, servers stop by PID on drop
//! and on panic, a SIGKILLed owner's servers are swept by the next start, and the CLI's
//! up/sql/recipe/down cycle leaves nothing behind.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use replmend_sandbox::{Flavor, Sandbox, Topology};

mod support;

use support::{BIN, Down, alive, cli, hold, need, pids, wait_dead};

#[test]
fn parallel_sandboxes_get_their_own_ports_and_stop_on_drop_and_panic() {
    need(Flavor::MariaDb);
    let handles: Vec<_> = (0..3)
        .map(|_| {
            std::thread::spawn(|| {
                let sb = Sandbox::start(Flavor::MariaDb, Topology::DualMaster).unwrap();
                sb.node("n1")
                    .exec("CREATE DATABASE p; CREATE TABLE p.t (id INT PRIMARY KEY)")
                    .unwrap();
                sb.node("n2")
                    .wait_caught_up(Duration::from_secs(30))
                    .unwrap();
                sb
            })
        })
        .collect();
    let sandboxes: Vec<Sandbox> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let mut ports: Vec<u16> = sandboxes
        .iter()
        .flat_map(|s| s.nodes.iter().map(|n| n.port))
        .collect();
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 6, "{ports:?}");
    let all: Vec<(Vec<u32>, PathBuf)> = sandboxes
        .iter()
        .map(|s| (s.nodes.iter().map(|n| n.pid).collect(), s.dir.clone()))
        .collect();
    drop(sandboxes);
    for (p, dir) in &all {
        assert!(p.iter().all(|p| !alive(*p)), "servers still running");
        assert!(!dir.exists(), "{} left behind", dir.display());
    }

    let (tx, rx) = std::sync::mpsc::channel();
    let panicked = std::thread::spawn(move || {
        let sb = Sandbox::start(Flavor::MariaDb, Topology::SourceReplica).unwrap();
        tx.send((
            sb.nodes.iter().map(|n| n.pid).collect::<Vec<_>>(),
            sb.dir.clone(),
        ))
        .unwrap();
        panic!("a test failing while it owns a sandbox");
    })
    .join();
    assert!(panicked.is_err());
    let (p, dir) = rx.recv().unwrap();
    assert!(p.iter().all(|p| !alive(*p)), "servers survived a panic");
    assert!(!dir.exists());
}

/// A process that owns a sandbox is SIGKILLed (no Drop runs): the next `Sandbox::start` of
/// any process stops its servers and removes its directories.
fn sigkilled_owner_is_swept(flavor: Flavor) {
    need(flavor);
    let (mut holder, servers, dir) = hold(&["--flavor", &flavor.to_string()]);
    holder.kill().unwrap(); // SIGKILL: no destructor runs
    holder.wait().unwrap();
    assert!(
        servers.iter().all(|p| alive(*p)),
        "servers outlive their killed owner until the sweep"
    );
    let sb = Sandbox::start(flavor, Topology::SourceReplica).unwrap();
    assert!(
        wait_dead(&servers),
        "{flavor}: the stale sandbox's servers still run"
    );
    assert!(!dir.exists(), "{} left behind", dir.display());
    drop(sb);
}

#[test]
fn sigkilled_owner_is_swept_mariadb() {
    sigkilled_owner_is_swept(Flavor::MariaDb);
}

#[test]
fn sigkilled_owner_is_swept_mysql() {
    sigkilled_owner_is_swept(Flavor::MySql);
}

fn cli_cycle(flavor: Flavor) {
    need(flavor);
    let state = std::env::temp_dir().join(format!(
        "replmend-sandbox-cli-test-{}-{flavor}",
        std::process::id()
    ));
    let _guard = Down(state.clone());
    let s = state.to_str().unwrap();
    let f = flavor.to_string();
    let up = [
        "up",
        "--flavor",
        &f,
        "--topology",
        "source-replica",
        "--state-dir",
        s,
    ];
    let (ok, out, err) = cli(&up);
    assert!(ok, "{err}");
    let first: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(first["flavor"], f.as_str());
    assert_eq!(first["topology"], "source-replica");
    assert_eq!(first["state_dir"], s);
    let nodes = first["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2);
    assert!(
        nodes[0]["url"]
            .as_str()
            .unwrap()
            .starts_with("mysql://root@127.0.0.1:")
    );
    let servers = pids(&first);
    assert!(Path::new(s).join("sandbox.json").exists());

    // Idempotent: the same running sandbox again.
    let (ok, out, err) = cli(&up);
    assert!(ok, "{err}");
    let again: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(pids(&again), servers);

    let (ok, out, err) = cli(&[
        "sql",
        "--state-dir",
        s,
        "--node",
        "n2",
        "SELECT 1, NULL, 'a'",
    ]);
    assert!(ok, "{err}");
    assert_eq!(out, "1\tNULL\ta\n");

    let (ok, out, err) = cli(&["recipe", "unique-secondary-1062", "--state-dir", s]);
    assert!(ok, "{err}");
    assert!(out.starts_with("n2\t1062\t"), "{out}");
    assert!(out.contains("uk_email"), "{out}");

    let (ok, _, err) = cli(&["down", "--state-dir", s]);
    assert!(ok, "{err}");
    assert!(wait_dead(&servers), "servers still running after down");
    assert!(!state.exists(), "{s} left behind");
    let sandbox_dir = first["sandbox_dir"].as_str().unwrap();
    assert!(
        !Path::new(sandbox_dir).exists(),
        "{sandbox_dir} left behind"
    );
}

#[test]
fn cli_up_sql_recipe_down_mariadb() {
    cli_cycle(Flavor::MariaDb);
}

#[test]
fn cli_up_sql_recipe_down_mysql() {
    cli_cycle(Flavor::MySql);
}

#[test]
fn a_missing_server_says_how_to_install_it() {
    let empty = std::env::temp_dir().join(format!("replmend-no-cache-{}", std::process::id()));
    let out = Command::new(BIN)
        .args(["up", "--flavor", "mysql", "--state-dir"])
        .arg(empty.join("state"))
        .env("REPLMEND_CACHE", &empty)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("scripts/install-deps"), "{err}");
    let _ = std::fs::remove_dir_all(&empty);
}
