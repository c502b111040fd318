//! Shared by the sandbox's integration tests: the CLI, process checks, and the checks every
//! chroot build of MariaDB passes (seed incident, every recipe, CLI cycle, sweep), so a new
//! build's test file only says what is particular to it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use replmend_sandbox::{Build, Flavor, Node, Recipe, Sandbox, Topology, available};

pub const BIN: &str = env!("CARGO_BIN_EXE_replmend-sandbox");
pub const SEED_KEY: &str = "b98e4fab203607559fc5347b60cb64a41cf50a79650fbda3a1a4be5a1cfd16d9";

/// Never skip: a missing server is a failure that says how to fix it.
/// Each node's applier error after a recipe, asserted to be the one the recipe expects.
pub fn stops_as_expected<'a>(
    sb: &'a Sandbox,
    recipe: &Recipe,
    label: &str,
) -> Vec<(&'a Node, Option<(u32, String)>)> {
    sb.nodes
        .iter()
        .map(|node| {
            let got = node.sql_error().unwrap();
            let want = recipe
                .expect
                .iter()
                .find(|(n, _)| *n == node.name)
                .map(|(_, e)| *e);
            assert_eq!(
                got.as_ref().map(|(e, _)| *e),
                want,
                "{label} {} {}: {got:?}",
                recipe.name,
                node.name
            );
            (node, got)
        })
        .collect()
}

/// `replmend-sandbox hold ARGS…` started: the holder, its servers' PIDs and the sandbox
/// directory, the servers checked alive.
pub fn hold(args: &[&str]) -> (std::process::Child, Vec<u32>, PathBuf) {
    let mut holder = Command::new(BIN)
        .arg("hold")
        .args(args)
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
    (holder, servers, dir)
}

pub fn need(build: impl Into<Build>) {
    if let Err(e) = available(build) {
        panic!("{e}");
    }
}

pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit_once(") ")
            .is_some_and(|(_, r)| r.starts_with('Z') || r.starts_with('X'))
    })
}

pub fn wait_dead(pids: &[u32]) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if pids.iter().all(|p| !alive(*p)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

pub fn pids(json: &serde_json::Value) -> Vec<u32> {
    json["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["pid"].as_u64().unwrap() as u32)
        .collect()
}

pub fn cli(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Downs the kept sandbox even when an assertion fails.
pub struct Down(pub PathBuf);

impl Drop for Down {
    fn drop(&mut self) {
        if self.0.join("sandbox.json").exists() {
            let _ = replmend_sandbox::down(&self.0);
        }
    }
}

/// A chroot build of MariaDB under test: its CLI name (`mariadb-11.8`) and version prefix.
pub struct Chroot {
    pub build: Build,
    pub name: &'static str,
    pub version: &'static str,
}

impl Chroot {
    /// The seed's dual-master 1062 on this build. `node` checks what is particular to the
    /// build on each node before the incident, `error` on each node's error text after it.
    pub fn seed(&self, node: impl Fn(&Node), error: impl Fn(&Node, &str)) {
        need(self.build);
        let tag = format!("[{}]", self.name);
        let started = Instant::now();
        let sb = Sandbox::start_build(self.build, Topology::DualMaster).unwrap();
        let up = started.elapsed();
        assert_eq!(sb.flavor, Flavor::MariaDb);
        assert_eq!(sb.build, self.build);
        let chroot = self.build.chroot().unwrap();
        assert!(sb.dir.starts_with(&chroot), "{}", sb.dir.display());
        for n in &sb.nodes {
            let version = n.query_value("SELECT @@version").unwrap().unwrap();
            assert!(version.starts_with(self.version), "{}: {version}", n.name);
            node(n);
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
            eprintln!("{tag} {} {version}", n.name);
        }
        let incident = Instant::now();
        sb.recipe("seed-dual-master-1062").unwrap();
        let incident = incident.elapsed();
        for n in &sb.nodes {
            let (errno, text) = n
                .sql_error()
                .unwrap()
                .unwrap_or_else(|| panic!("{} did not stop", n.name));
            eprintln!("{tag} {} Last_SQL_Error {errno}: {text}", n.name);
            assert_eq!(errno, 1062, "{}: {text}", n.name);
            assert!(
                text.contains("zeus.xinyan_cache") && text.contains(SEED_KEY),
                "{}: {text}",
                n.name
            );
            error(n, &text);
        }
        eprintln!(
            "{tag} dual-master up in {up:.2?}, seed incident in {incident:.2?}; RSS {} MiB, {} MiB",
            sb.nodes[0].rss_kib().unwrap_or(0) / 1024,
            sb.nodes[1].rss_kib().unwrap_or(0) / 1024
        );
        let servers: Vec<u32> = sb.nodes.iter().map(|n| n.pid).collect();
        let dir = sb.dir.clone();
        drop(sb);
        assert!(servers.iter().all(|p| !alive(*p)), "servers still running");
        assert!(!dir.exists(), "{} left behind", dir.display());
    }

    /// The recipes, unchanged (the `mariadb` flavor's SQL), give their expected errors.
    pub fn every_recipe(&self) {
        need(self.build);
        let recipes = Recipe::all().unwrap();
        assert!(recipes.len() >= 7, "{recipes:?}");
        for recipe in recipes {
            let started = Instant::now();
            let sb = Sandbox::start_build(self.build, recipe.topology)
                .unwrap_or_else(|e| panic!("{}: {e:#}", recipe.topology));
            sb.recipe(&recipe.name)
                .unwrap_or_else(|e| panic!("{}: {e:#}", recipe.name));
            stops_as_expected(&sb, &recipe, self.name);
            eprintln!("[{}] {}: {:.2?}", self.name, recipe.name, started.elapsed());
        }
    }

    /// `up --build` (idempotent), `sql`, `down` leave nothing behind; `status` checks the
    /// build's replica status through the CLI on the kept sandbox's state directory.
    pub fn cli_cycle(&self, status: impl Fn(&str)) {
        need(self.build);
        let state = std::env::temp_dir().join(format!(
            "replmend-sandbox-cli-{}-{}",
            self.name,
            std::process::id()
        ));
        let _guard = Down(state.clone());
        let s = state.to_str().unwrap();
        let up = [
            "up",
            "--build",
            self.name,
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
        assert_eq!(json["build"], self.name);
        let servers = pids(&json);
        assert_eq!(replmend_sandbox::build_of(&state).unwrap(), self.build);

        // Idempotent for the same build; the flavor's default build is another sandbox.
        let (ok, out, err) = cli(&up);
        assert!(ok, "{err}");
        let again: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(pids(&again), servers);
        let (ok, _, err) = cli(&["up", "--flavor", "mysql", "--build", self.name]);
        assert!(!ok && err.contains("not mysql"), "{err}");

        let (ok, out, err) = cli(&["sql", "--state-dir", s, "--node", "n2", "SELECT @@version"]);
        assert!(ok, "{err}");
        assert!(out.starts_with(self.version), "{out}");
        status(s);

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

    /// A SIGKILLed owner's servers (inside the build's chroot) are swept by the next start.
    pub fn sweep(&self) {
        need(self.build);
        let (mut holder, servers, dir) = hold(&["--build", self.name]);
        holder.kill().unwrap();
        holder.wait().unwrap();
        let sb = Sandbox::start(Flavor::MariaDb, Topology::SourceReplica).unwrap();
        assert!(
            wait_dead(&servers),
            "the stale {} sandbox's servers still run",
            self.name
        );
        assert!(!dir.exists(), "{} left behind", dir.display());
        drop(sb);
    }
}
