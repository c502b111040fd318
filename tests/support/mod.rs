//! Shared helpers for the real-server integration tests: run the real binary, read its JSON.
#![allow(dead_code)]

use std::process::{Command, Output};

pub mod lag;
pub mod providers;
pub mod report;
pub mod tmux;

pub use replmend_sandbox::{Build, Flavor, Node, Sandbox, Topology};
#[allow(unused_imports)]
pub use report::*;

pub const FLAVORS: [Flavor; 2] = [Flavor::MariaDb, Flavor::MySql];

/// Source-replica recipes whose one incident a single repair resolves: the core of the
/// executed-SQL and server-version tests.
pub const ONE_INCIDENT_RECIPES: [(Topology, &str); 11] = [
    (Topology::SourceReplica, "unique-secondary-1062"),
    (Topology::SourceReplica, "composite-pk-quotes-1062"),
    (Topology::SourceReplica, "batch-50-one-conflict-1062"),
    (Topology::SourceReplica, "update-missing-1032"),
    (Topology::SourceReplica, "delete-missing-1032"),
    (Topology::SourceReplica, "hostile-values-1062"),
    (Topology::SourceReplica, "minimal-image-1032"),
    (Topology::SourceReplica, "all-types-1062"),
    (Topology::SourceReplica, "generated-columns-1032"),
    (Topology::SourceReplica, "case-insensitive-key-1062"),
    (Topology::SourceReplica, "partial-json-1032"),
];

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

pub fn replmend(args: &[&str]) -> Run {
    replmend_env(args, &[])
}

pub fn replmend_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_replmend"));
    cmd.args(args)
        .env_remove("MYSQL_PWD")
        .env_remove("REPLMEND_REPLICA")
        .env_remove("REPLMEND_SOURCE")
        .env("HOME", test_home())
        .env("NO_COLOR", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("run replmend");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// A sandbox with the recipe applied: both flavors must be available (never skip).
pub fn incident(flavor: Flavor, topology: Topology, recipe: &str) -> Sandbox {
    let sb =
        Sandbox::start(flavor, topology).unwrap_or_else(|e| panic!("{flavor} {topology:?}: {e:#}"));
    sb.recipe(recipe)
        .unwrap_or_else(|e| panic!("{flavor} recipe {recipe}: {e:#}"));
    sb
}

/// A journal path of this test binary's own, under the temporary directory.
/// Sends `sig` (`-STOP`, `-CONT`, `-HUP`) to a process: a server frozen, thawed, a daemon
/// told to reload.
pub fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {sig} {pid}");
}

/// This test process's run: its id and start time (process ids alone repeat across runs).
fn run_id() -> &'static str {
    static RUN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    RUN.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        format!("{}-{nanos}", std::process::id())
    })
}

/// The HOME replmend runs with in tests: no ~/.my.cnf, and a state directory (default
/// journals, the read_only ledger, kept verify reports) of this test process alone — another
/// run's ledger entry for a reused port, or its verify report of a pair on the same ports,
/// is not this run's history.
pub fn test_home() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("replmend-test-home-{}", run_id()))
}

pub fn journal_path(tag: &str) -> String {
    // The process id alone repeats across runs (ids are reused): a journal left by an
    // earlier run of the same incident (same fingerprint on a fresh sandbox) would be taken
    // for this run's history. The path is made fresh, and anything there removed.
    // Each call its own file: tests running at once may use the same tag.
    static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let run = run_id();
    let path = std::env::temp_dir().join(format!(
        "replmend-{}-{run}-{seq}-{tag}.jsonl",
        env!("CARGO_CRATE_NAME"),
    ));
    let _ = std::fs::remove_file(&path);
    path.display().to_string()
}

/// Rows a journal records as changed: entries whose latest record is `done` (an intent is
/// followed by its outcome, so lines are not rows).
pub fn journaled_rows(path: &str) -> usize {
    let Ok(text) = std::fs::read_to_string(path) else {
        return 0;
    };
    let mut latest: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("journal line is JSON");
        // Records (the diagnosis, plan, steps and verification a report is written from)
        // are not rows.
        if v["table"].is_null() || v.get("record").is_some() {
            continue;
        }
        let id = v["id"].as_str().unwrap_or_default().to_string();
        let state = v["state"].as_str().unwrap_or("done").to_string();
        match latest.iter_mut().find(|(i, _)| *i == id) {
            Some(e) => e.1 = state,
            None => latest.push((id, state)),
        }
    }
    latest.iter().filter(|(_, s)| s == "done").count()
}

/// A string literal for SQL text (backslashes and quotes escaped).
pub fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// An identifier quoted for SQL text (backticks doubled).
pub fn ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

/// Inserts rows (each a parenthesised tuple of SQL literals) in statements of 1,000 rows.
pub fn insert(node: &Node, table: &str, rows: impl IntoIterator<Item = String>) {
    let rows: Vec<String> = rows.into_iter().collect();
    for batch in rows.chunks(1000) {
        node.exec(&format!("INSERT INTO {table} VALUES {}", batch.join(", ")))
            .unwrap();
    }
}

/// Runs SQL on the node without writing it to the binary log: drift that does not replicate.
pub fn drift(node: &Node, sql: &str) {
    node.exec(&format!("SET SESSION sql_log_bin = 0; {sql}"))
        .unwrap();
}

/// A sandbox of the build (a flavor's default build, or a named one) and topology.
pub fn started(build: impl Into<Build>, topology: Topology) -> Sandbox {
    let build = build.into();
    Sandbox::start_build(build, topology).unwrap_or_else(|e| panic!("{build} {topology:?}: {e:#}"))
}

/// replmend's exit codes (docs/exit-codes.md) by name, as a process status compares.
pub mod exit {
    macro_rules! codes {
        ($($name:ident),*) => { $(pub const $name: i32 = replmend::exit::$name as i32;)* };
    }
    codes!(
        OK,
        FAILURE,
        USAGE,
        REPLICATION_ERROR,
        NOT_RUNNING,
        NOT_A_REPLICA,
        UNREACHABLE,
        ACCESS_DENIED,
        BAD_INPUT,
        UNSUPPORTED_INCIDENT,
        REFUSED,
        DRIFT,
        TLS
    );
}

/// What a recipe's `repair` file says a scripted repair of its incident does: the remedy it
/// recommends and applies, and the outcome (tests as data, as gh-ost's localtests state theirs).
#[derive(Debug, Clone)]
pub struct Expected {
    pub recipe: String,
    pub topology: Topology,
    pub remedy: String,
    pub outcome: String,
}

/// Every recipe with a `repair` file, by name.
pub fn expected_repairs() -> Vec<Expected> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/incidents");
    let mut out: Vec<Expected> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let text = std::fs::read_to_string(e.path().join("repair")).ok()?;
            let topology = std::fs::read_to_string(e.path().join("topology")).unwrap();
            let field = |name: &str| {
                text.lines()
                    .map(|l| l.split('#').next().unwrap().trim())
                    .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
                    .unwrap_or_else(|| panic!("{:?}: no `{name}` line", e.path()))
            };
            Some(Expected {
                recipe: e.file_name().to_string_lossy().into_owned(),
                topology: topology.trim().parse().unwrap(),
                remedy: field("remedy "),
                outcome: field("outcome "),
            })
        })
        .collect();
    out.sort_by(|a, b| a.recipe.cmp(&b.recipe));
    out
}
