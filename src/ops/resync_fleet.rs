//! `replmend resync --from FLEET.json`: a fleet verify's report (`replmend.verify-fleet/1`)
//! fixed replica by replica. Each drifted replica gets its own guarded apply, exactly the one
//! `resync --from` gives a single report: its own preflight, the repair lock on its pair, its
//! own confirmation and its own journal (`--journal` with the replica's address added to the
//! file name: one replica's rows never mix with another's). Replicas the report found
//! identical are skipped, saying so; one replica's failure does not stop the others.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use super::Outcome;
use super::resync::{Drift, DriftFrom, Fix};
use crate::cli::{Format, ResyncArgs};
use crate::exit::{self, Coded};
use crate::verify::model::{FLEET_SCHEMA, FleetReport, NotCompared, Report};
use crate::vocab::Endpoint;

#[derive(Serialize)]
struct FleetResync {
    schema: &'static str,
    source: Endpoint,
    dry_run: bool,
    replicas: Vec<ReplicaResync>,
    /// Replicas the verify could not compare: nothing is known of their drift.
    not_compared: Vec<NotCompared>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Done {
    /// The report found no drift on it: nothing to do.
    Skipped,
    /// Resynced (or planned, in a dry run): see `resync`.
    Resynced,
    /// Its resync stopped on an error (or a refusal): see `error`.
    Failed,
}

#[derive(Serialize)]
struct ReplicaResync {
    replica: Endpoint,
    outcome: Done,
    /// Its journal (a real run).
    journal: Option<PathBuf>,
    error: Option<String>,
    exit_code: u8,
    /// Its `replmend.resync/1` document.
    resync: Option<serde_json::Value>,
    #[serde(skip)]
    text: String,
}

/// The file is a fleet verify's report.
pub fn is_fleet_report(path: &Path) -> bool {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .is_some_and(|v| v["schema"] == FLEET_SCHEMA)
}

fn load(path: &Path) -> Result<FleetReport> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the verify report {}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| {
        Coded(
            exit::BAD_INPUT,
            format!("{} is not a fleet verify report ({e})", path.display()),
        )
        .into()
    })
}

pub fn run(args: &ResyncArgs, format: Format, path: &Path) -> Result<Outcome> {
    if !super::resync::nodes_unnamed(args) {
        return Err(Coded(
            exit::BAD_INPUT,
            "a fleet report names its nodes: resync --from it with no node named (no --replica, --source, -h, -P or -S); nothing was changed".into(),
        )
        .into());
    }
    let interactive = super::interactive(args.yes, args.dry_run)?;
    let fleet = load(path)?;
    let replicas: Vec<ReplicaResync> = fleet
        .replicas
        .into_iter()
        .map(|report| one(args, interactive, path, report))
        .collect();
    let code = replicas
        .iter()
        .find(|r| r.outcome == Done::Failed)
        .or_else(|| replicas.iter().find(|r| r.exit_code != exit::OK))
        .map_or(exit::OK, |r| r.exit_code);
    let done = FleetResync {
        schema: "replmend.resync-fleet/1",
        source: fleet.source,
        dry_run: args.dry_run,
        replicas,
        not_compared: fleet.not_compared,
    };
    Ok(Outcome {
        output: super::render(format, &done, text),
        code,
    })
}

/// One replica's report fixed with a resync of its own.
fn one(args: &ResyncArgs, interactive: bool, path: &Path, report: Report) -> ReplicaResync {
    let mut out = ReplicaResync {
        replica: report.replica.clone(),
        outcome: Done::Skipped,
        journal: None,
        error: None,
        exit_code: exit::OK,
        resync: None,
        text: String::new(),
    };
    if !report.drifted() {
        return out;
    }
    let mut fix = Fix::of(args, interactive);
    let journal = journal_for(args.journal.as_deref(), &report.replica);
    fix.journal = Some(journal.clone());
    let from = DriftFrom::Report {
        path: path.to_path_buf(),
    };
    let result = super::resync::pair_of_report(args, &report)
        .and_then(|pair| super::resync::resync(&fix, &pair, Drift::Given(report, from)));
    match result {
        Ok((done, code)) => {
            out.outcome = Done::Resynced;
            out.journal = (!fix.dry_run).then_some(journal);
            out.exit_code = code;
            out.resync = Some(done.json());
            out.text = done.text();
        }
        Err(e) => {
            out.outcome = Done::Failed;
            out.exit_code = crate::error::exit_code(&e);
            out.error = Some(crate::describe::message(&e));
        }
    }
    out
}

/// The replica's own journal: `--journal` (or the default journal) with its address added
/// to the file name, `resync.jsonl` → `resync-127.0.0.1_3307.jsonl`.
fn journal_for(base: Option<&Path>, replica: &Endpoint) -> PathBuf {
    let base = base
        .map(Path::to_path_buf)
        .unwrap_or_else(crate::journal::default_path);
    let stem = base
        .file_stem()
        .map_or("journal".into(), |s| s.to_string_lossy().into_owned());
    let node: String = replica
        .to_string()
        .chars()
        .map(
            |c| match c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                true => c,
                false => '_',
            },
        )
        .collect();
    let name = match base.extension() {
        Some(ext) => format!("{stem}-{node}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{node}"),
    };
    base.with_file_name(name)
}

fn text(r: &FleetResync) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "resync of the fleet of {} (source): {} replica(s) in the report",
        r.source,
        r.replicas.len()
    );
    for x in &r.replicas {
        match x.outcome {
            Done::Skipped => {
                let _ = writeln!(out, "\n== {}: no drift in the report: skipped", x.replica);
            }
            Done::Resynced => {
                let journal = x
                    .journal
                    .as_ref()
                    .map(|j| format!(" (journal {})", j.display()))
                    .unwrap_or_default();
                let _ = writeln!(out, "\n== {}{journal}", x.replica);
                out.push_str(&x.text);
            }
            Done::Failed => {
                let _ = writeln!(
                    out,
                    "\n== {}: not resynced: {}",
                    x.replica,
                    x.error.as_deref().unwrap_or("")
                );
            }
        }
    }
    for n in &r.not_compared {
        let at = n
            .replica
            .as_ref()
            .map_or("a replica".into(), ToString::to_string);
        let _ = writeln!(
            out,
            "\nnot in the report (verify could not compare it): {at}: {}",
            n.error
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_replica_has_its_own_journal_beside_the_one_named() {
        let at = Endpoint::new("127.0.0.1", 3307);
        let j = journal_for(Some(Path::new("/tmp/fix.jsonl")), &at);
        assert_eq!(j, Path::new("/tmp/fix-127.0.0.1_3307.jsonl"));
        let j = journal_for(Some(Path::new("/tmp/fix")), &at);
        assert_eq!(j, Path::new("/tmp/fix-127.0.0.1_3307"));
    }
}
