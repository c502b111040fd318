//! The postmortem as plain data, built from a journal's incident: what the Markdown and HTML
//! renderers (and `--format json`) show. Everything the journal does not say is listed as
//! unknown rather than left out. Pure.

use serde::Serialize;

use super::diff::{self, RowPair};
use super::incident::{Incident, Kind};
use super::record::{DiagnosisRecord, PlanRecord, RunEnd, VerificationRecord};
use super::timeline::{self, Event};
use crate::diagnosis::cause::CauseKind;

pub const REPORT_SCHEMA: &str = "replmend.report/1";

/// Changed rows shown side by side; the rest are counted (all are in the journal).
const ROWS_SHOWN: usize = 50;

#[derive(Debug, Clone, Serialize)]
pub struct Postmortem {
    pub schema: &'static str,
    pub journal: String,
    pub incidents: Vec<IncidentView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CauseView {
    pub kind: CauseKind,
    pub title: String,
    pub evidence: String,
    pub prevention: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct IncidentView {
    pub id: String,
    pub kind: Kind,
    /// The run ended as it should (replication caught up; resync: the rows agree).
    pub resolved: bool,
    pub title: String,
    /// Label and value: where, what, when, outcome.
    pub summary: Vec<(String, String)>,
    /// The day every timeline event falls on (then their times are times of day).
    pub timeline_date: Option<String>,
    pub timeline: Vec<Event>,
    pub cause: Option<CauseView>,
    /// Who last wrote each conflicting key, per node, in words.
    pub origins: Vec<String>,
    /// The conflicting rows as diagnosed: replica beside source.
    pub conflicts: Vec<RowPair>,
    pub changes: Vec<RowPair>,
    /// Changed rows not shown (all are in the journal).
    pub changes_not_shown: usize,
    pub lost: Vec<String>,
    pub verification: Vec<String>,
    pub advice: Vec<String>,
    /// What the journal does not tell.
    pub unknown: Vec<String>,
}

pub fn cause_words(k: CauseKind) -> &'static str {
    match k {
        CauseKind::ErrantWrite => "a write made directly on the replica",
        CauseKind::DualMasterRace => "both masters wrote the same key",
        CauseKind::AutoIncrementCollision => "an AUTO_INCREMENT collision between the masters",
        CauseKind::EarlierSkip => "an earlier skip or one-sided repair",
        CauseKind::Filtered => "a replication filter keeps the table out",
        CauseKind::NoTrace => "no trace in the binary log",
        CauseKind::Unknown => "unknown",
    }
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn title(inc: &Incident) -> String {
    match (inc.kind(), inc.diagnosis(), inc.plan()) {
        (_, Some((d, _)), _) => format!("Replication incident: error {} on {}", d.errno, d.table),
        (Kind::Resync, _, Some((p, _))) => format!(
            "Drift repair (resync) of {}",
            p.tables
                .iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => "Changes journaled by replmend".into(),
    }
}

fn summary(inc: &Incident) -> Vec<(String, String)> {
    let mut s = vec![("Incident".to_string(), inc.fingerprint.clone())];
    if let Some((d, _)) = inc.diagnosis() {
        let channel = match d.channel.as_str() {
            "" => String::new(),
            c => format!(", channel '{c}'"),
        };
        s.push((
            "Replica".into(),
            format!("{} ({}){channel}", d.replica, d.replica_server),
        ));
        if let Some(src) = &d.source {
            let server = d.source_server.as_deref().unwrap_or("?");
            s.push(("Source".into(), format!("{src} ({server})")));
        }
        s.push(("Error".into(), format!("{}: {}", d.errno, d.message)));
        let key = d.key_name.as_deref().unwrap_or("?");
        s.push(("Table".into(), format!("{} (key {key})", d.table)));
        if let Some(g) = &d.gtid {
            s.push(("Failing transaction".into(), g.clone()));
        }
    }
    if let Some(drift) = inc.plan().and_then(|(p, _)| p.drift.as_ref()) {
        s.push(("Drift found".into(), drift.clone()));
    }
    if let Some((p, _)) = inc.plan() {
        let winner = p.winner.as_ref().map(|w| format!(", winner {w}"));
        s.push((
            "Remedy".into(),
            format!("{}{}", p.remedy, winner.unwrap_or_default()),
        ));
    }
    if let Some((lo, hi)) = inc.span() {
        s.push(("Journaled".into(), {
            let (from, to) = (timeline::utc_ms(lo), timeline::utc_ms(hi));
            // The end's date only when it is another day.
            let to = match from[..10] == to[..10] {
                true => &to[11..],
                false => &to[..],
            };
            format!("{from} – {to} UTC")
        }));
    }
    let outcome = match inc.verification() {
        Some((v, _)) => timeline::end_words(v.end, inc.kind()).to_string(),
        None => "unknown (no verification recorded)".into(),
    };
    s.push(("Outcome".into(), outcome));
    s
}

fn key_title(d: &DiagnosisRecord, c: &super::record::ConflictRecord) -> String {
    let key: Vec<String> = c
        .key
        .iter()
        .map(|k| {
            let v = crate::value::Cell::try_from(&k.value)
                .map(|c| c.display())
                .unwrap_or_else(|_| "?".into());
            format!("{}={v}", k.column)
        })
        .collect();
    format!("{} · {}", d.table, key.join(", "))
}

fn origins(d: &DiagnosisRecord) -> Vec<String> {
    let mut out = Vec::new();
    for c in &d.conflicts {
        if let Some(os) = &c.origins {
            let key = key_title(d, c);
            out.extend(os.iter().map(|o| format!("{key}: {}", o.words)));
        }
    }
    out
}

fn lost(p: &PlanRecord) -> Vec<String> {
    let mut out = vec![p.loses.clone()];
    let counts = [
        (
            p.rows_lost,
            "row(s) of the failing transaction(s) never applied",
        ),
        (
            p.versions_lost,
            "conflicting version(s) gone (not journaled)",
        ),
        (
            p.records_lost,
            "record(s) journaled but on neither node afterwards",
        ),
    ];
    out.extend(
        counts
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!("{n} {what}")),
    );
    if p.loss_unknown {
        out.push(
            "the skipped transaction could not be read: how many rows it lost is unknown".into(),
        );
    }
    out
}

fn verification(v: &VerificationRecord, kind: Kind) -> Vec<String> {
    let mut out = vec![timeline::end_words(v.end, kind).to_string()];
    out.extend(v.resumed.iter().map(|(n, w)| format!("{n}: {w}")));
    out.push(match v.rows_agree {
        Some(true) if kind == Kind::Resync => {
            "the rows resync wrote are identical on both nodes (compared again)".into()
        }
        Some(true) => "the incident's rows are identical on both nodes (compared)".into(),
        Some(false) => format!(
            "{} row(s) still differ between the nodes: {}",
            v.rows_differ.len(),
            v.rows_differ.join("; ")
        ),
        None => "the incident's rows were not compared on both nodes".into(),
    });
    out.push(format!("{} row(s) journaled", v.journaled_rows));
    if !v.left_alone.is_empty() {
        out.push(format!(
            "{} row(s) left alone (changed since they were read): {}",
            v.left_alone.len(),
            v.left_alone.join("; ")
        ));
    }
    out.extend(v.notes.iter().cloned());
    out
}

fn unknown(inc: &Incident) -> Vec<String> {
    let mut out = Vec::new();
    match inc.diagnosis() {
        None if inc.kind() != Kind::Resync => out.push(
            "the diagnosis (error, cause, origins) is not in the journal: it was written by a replmend without incident records, or by a run that stopped before applying".into(),
        ),
        Some((d, _)) => {
            if d.stopped_at.is_none() {
                out.push("when the applier stopped: the server does not report it (MariaDB); it was before the diagnosis the timeline shows".into());
            }
            if d.cause.is_none() {
                out.push("the cause: the conflicting rows' origins were not searched".into());
            }
            out.extend(d.missing.iter().cloned());
        }
        None => {}
    }
    if inc.plan().is_none() {
        out.push("the plan, and so what it lost, is not in the journal".into());
    }
    if inc.verification().is_none() {
        out.push("the verification is not in the journal: the run did not finish, or predates incident records".into());
    }
    out
}

pub fn incident(inc: &Incident) -> IncidentView {
    let diagnosis = inc.diagnosis().map(|(d, _)| d);
    let conflicts = diagnosis
        .map(|d| {
            d.conflicts
                .iter()
                .map(|c| {
                    diff::conflict(
                        key_title(d, c),
                        &c.verdict,
                        c.replica_row.as_ref(),
                        c.source_row.as_ref(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let verification = match inc.verification() {
        Some((v, _)) => verification(v, inc.kind()),
        None => vec!["unknown: no verification recorded".into()],
    };
    let (timeline_date, timeline) = timeline::on_one_day(timeline::events(inc));
    let changes = diff::changes(&inc.rows);
    IncidentView {
        id: inc.fingerprint.clone(),
        kind: inc.kind(),
        resolved: inc
            .verification()
            .is_some_and(|(v, _)| v.end == RunEnd::Repaired),
        title: title(inc),
        summary: summary(inc),
        timeline_date,
        timeline,
        cause: diagnosis.and_then(|d| d.cause.as_ref()).map(|c| CauseView {
            kind: c.kind,
            title: capitalized(cause_words(c.kind)),
            evidence: capitalized(&c.evidence),
            prevention: c.prevention.clone(),
        }),
        origins: diagnosis.map(origins).unwrap_or_default(),
        conflicts,
        changes_not_shown: changes.len().saturating_sub(ROWS_SHOWN),
        changes: changes.into_iter().take(ROWS_SHOWN).collect(),
        lost: inc.plan().map(|(p, _)| lost(p)).unwrap_or_default(),
        verification,
        advice: inc
            .plan()
            .map(|(p, _)| p.advice.clone())
            .unwrap_or_default(),
        unknown: unknown(inc),
    }
}
