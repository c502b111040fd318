//! The records a repair or resync appends to its journal beside the rows: what it diagnosed
//! (cause and origins included), the plan it ran, each step with its time and result, and the
//! verification. The journal carries them as JSON lines with a `record` field; this is their
//! model, written by `repair` and read back by `report`. Every field a later version adds
//! must be optional: old journals stay readable.

use serde::{Deserialize, Serialize};

use crate::diagnosis::cause::CauseKind;
use crate::diagnosis::model::{Conflict, Diagnosis, Verdict};
use crate::journal::{JOURNAL_SCHEMA, StoredRow};
use crate::planner::{Plan, RemedyId};
use crate::value::StoredCell;
use crate::vocab::{ConflictKind, Endpoint, TableRef};

/// One record line.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub schema: String,
    /// The incident (a repair's fingerprint) or the run (a resync's) it belongs to.
    pub fingerprint: String,
    /// Milliseconds since the epoch, UTC.
    pub at_ms: u64,
    #[serde(flatten)]
    pub body: Body,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum Body {
    Diagnosis(Box<DiagnosisRecord>),
    Plan(PlanRecord),
    Step(StepRecord),
    Verification(VerificationRecord),
    /// The origins and cause searched after the repair (`watch`): they complete the
    /// incident's diagnosis record where it has none.
    Origins(OriginsRecord),
}

/// The cause and each recorded conflict's origins (in the diagnosis record's order), from a
/// search made after the diagnosis record was written.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OriginsRecord {
    pub cause: Option<CauseRecord>,
    pub origins: Vec<Option<Vec<OriginRecord>>>,
}

/// What the repair found, as diagnosed before it changed anything.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DiagnosisRecord {
    pub replica: Endpoint,
    /// "MariaDB 10.11.6", "MySQL 9.7.0".
    pub replica_server: String,
    pub source: Option<Endpoint>,
    pub source_server: Option<String>,
    pub channel: String,
    pub kind: ConflictKind,
    pub errno: u32,
    pub message: String,
    /// When the applier stopped, as the server reported it (None: it does not say).
    pub stopped_at: Option<String>,
    pub table: TableRef,
    pub key_name: Option<String>,
    pub gtid: Option<String>,
    /// The failing transaction in the source's binlog: `file:start-end`.
    pub transaction: Option<String>,
    pub statement: Option<String>,
    pub conflicts: Vec<ConflictRecord>,
    /// The conflicts beyond those recorded (a batch has thousands).
    #[serde(default)]
    pub more_conflicts: usize,
    pub cause: Option<CauseRecord>,
    #[serde(default)]
    pub missing: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KeyPart {
    pub column: String,
    pub value: StoredCell,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ConflictRecord {
    pub key: Vec<KeyPart>,
    /// The version the failing event carried.
    pub event_row: StoredRow,
    pub replica_row: Option<StoredRow>,
    pub source_row: Option<StoredRow>,
    /// How the nodes' versions compared, in words.
    pub verdict: String,
    /// Who last wrote the key on each node, one line each (None: not searched).
    pub origins: Option<Vec<OriginRecord>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OriginRecord {
    /// "replica" or "source".
    pub node: String,
    pub found: bool,
    /// The origin in words (writer, GTID, time, binlog position, statement; or why none).
    pub words: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CauseRecord {
    pub kind: CauseKind,
    pub evidence: String,
    pub prevention: String,
}

/// What ran: a repair's remedy, or a resync of tables.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    Repair,
    Resync,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PlanRecord {
    pub kind: RunKind,
    pub remedy: RemedyId,
    pub winner: Option<Endpoint>,
    /// What the remedy loses, in words (from the plan).
    pub loses: String,
    pub rows_lost: usize,
    pub versions_lost: usize,
    pub records_lost: usize,
    pub loss_unknown: bool,
    /// resync: the tables it makes equal.
    #[serde(default)]
    pub tables: Vec<TableRef>,
    /// resync: the drift verify found, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<String>,
    pub steps: Vec<PlannedStep>,
    #[serde(default)]
    pub advice: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PlannedStep {
    pub step: usize,
    pub endpoint: Endpoint,
    pub description: String,
}

/// How a step ended, as the report tells it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StepEnd {
    Done,
    AlreadyDone,
    CaughtUp,
    StoppedAgain,
    StillBehind,
    Failed,
    /// Written by a later version.
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StepRecord {
    pub step: usize,
    pub endpoint: Endpoint,
    pub description: String,
    pub end: StepEnd,
    pub detail: String,
    /// When the step started (its end is the record's `at_ms`).
    pub started_ms: u64,
}

/// How the run ended.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RunEnd {
    /// Replication runs and caught up (resync: every row written).
    Repaired,
    StoppedAgain,
    StillBehind,
    /// resync: rows still differ when compared again.
    Differs,
    /// A step failed; what was put back is in `notes`.
    Failed,
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VerificationRecord {
    pub end: RunEnd,
    /// Per node, how replication resumed, in words.
    #[serde(default)]
    pub resumed: Vec<(Endpoint, String)>,
    /// The incident's rows compared on both nodes afterwards (None: not compared).
    pub rows_agree: Option<bool>,
    #[serde(default)]
    pub rows_differ: Vec<String>,
    /// resync: rows left alone (changed since they were read).
    #[serde(default)]
    pub left_alone: Vec<String>,
    pub journaled_rows: usize,
    /// The failure and what was put back, in words.
    #[serde(default)]
    pub notes: Vec<String>,
}

/// Conflicts kept in a diagnosis record: a postmortem shows a few; the journal's row entries
/// hold every changed row anyway.
const CONFLICTS_KEPT: usize = 20;

/// Milliseconds since the epoch, now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Record {
    pub fn new(fingerprint: &str, body: Body) -> Record {
        Record {
            schema: JOURNAL_SCHEMA.to_string(),
            fingerprint: fingerprint.to_string(),
            at_ms: now_ms(),
            body,
        }
    }

    /// A journal line's record; None when it is of a kind this version does not know.
    pub fn from_json(v: &serde_json::Value) -> Option<Record> {
        serde_json::from_value(v.clone()).ok()
    }
}

fn stored(row: &crate::value::Row) -> StoredRow {
    StoredRow::from_row(row)
}

fn verdict_words(v: &Verdict) -> String {
    match v {
        Verdict::Identical => "identical on both nodes".into(),
        Verdict::Differs { columns } => format!("differs in {}", columns.join(", ")),
        Verdict::AbsentOnSource => "absent on the source".into(),
        Verdict::AbsentOnReplica => "absent on the replica".into(),
        Verdict::AbsentOnBoth => "absent on both nodes".into(),
        Verdict::SourceUnknown => "the source's row is unknown".into(),
    }
}

fn origin_records(c: &Conflict) -> Option<Vec<OriginRecord>> {
    c.origin.as_ref().map(|o| {
        let mut v = vec![OriginRecord {
            node: "replica".into(),
            found: o.replica.found,
            words: crate::diagnosis::origin::describe(&o.replica, "replica"),
        }];
        if let Some(s) = &o.source {
            v.push(OriginRecord {
                node: "source".into(),
                found: s.found,
                words: crate::diagnosis::origin::describe(s, "source"),
            });
        }
        v
    })
}

fn conflict(c: &Conflict) -> ConflictRecord {
    let origins = origin_records(c);
    ConflictRecord {
        key: c
            .key
            .iter()
            .map(|(column, v)| KeyPart {
                column: column.clone(),
                value: StoredCell::from(v),
            })
            .collect(),
        event_row: stored(&c.event_row),
        replica_row: c.replica_row.as_ref().map(stored),
        source_row: c.source_row.as_ref().map(stored),
        verdict: verdict_words(&c.verdict),
        origins,
    }
}

/// The diagnosis as the journal keeps it.
pub fn diagnosis(d: &Diagnosis) -> Body {
    let all: Vec<&Conflict> = d.conflicts.iter().chain(&d.upcoming).collect();
    Body::Diagnosis(Box::new(DiagnosisRecord {
        replica: d.replica.endpoint.clone(),
        replica_server: d.replica.flavor.to_string(),
        source: d.source.as_ref().map(|s| s.endpoint.clone()),
        source_server: d.source.as_ref().map(|s| s.flavor.to_string()),
        channel: d.channel.clone(),
        kind: d.kind,
        errno: d.error.errno,
        message: d.error.message.clone(),
        stopped_at: d.error.timestamp.clone(),
        table: d.table.clone(),
        key_name: d.key.as_ref().map(|k| k.name.clone()),
        gtid: d.gtid.as_ref().map(|g| g.to_string()),
        transaction: d
            .transaction
            .as_ref()
            .map(|t| format!("{}:{}-{}", t.source_log_file, t.start_pos, t.end_pos)),
        statement: d.transaction.as_ref().and_then(|t| t.statement.clone()),
        conflicts: all
            .iter()
            .take(CONFLICTS_KEPT)
            .map(|c| conflict(c))
            .collect(),
        more_conflicts: all.len().saturating_sub(CONFLICTS_KEPT),
        cause: cause_record(d),
        missing: d.missing.clone(),
    }))
}

fn cause_record(d: &Diagnosis) -> Option<CauseRecord> {
    d.cause.as_ref().map(|c| CauseRecord {
        kind: c.kind,
        evidence: c.evidence.clone(),
        prevention: c.prevention.clone(),
    })
}

/// The origins and cause of `d`, searched after its diagnosis record was written.
pub fn origins(d: &Diagnosis) -> Body {
    Body::Origins(OriginsRecord {
        cause: cause_record(d),
        origins: d
            .conflicts
            .iter()
            .chain(&d.upcoming)
            .take(CONFLICTS_KEPT)
            .map(origin_records)
            .collect(),
    })
}

impl DiagnosisRecord {
    /// Completes the record with a later search's cause and origins where it has none.
    pub fn complete_with(&mut self, o: &OriginsRecord) {
        if self.cause.is_none() {
            self.cause = o.cause.clone();
        }
        for (c, found) in self.conflicts.iter_mut().zip(&o.origins) {
            if c.origins.is_none() {
                c.origins = found.clone();
            }
        }
    }
}

/// The plan as the journal keeps it (`tables`: what a resync makes equal).
pub fn plan(p: &Plan, kind: RunKind, tables: &[TableRef]) -> Body {
    Body::Plan(PlanRecord {
        kind,
        remedy: p.remedy,
        winner: p.winner_endpoint.clone(),
        loses: p.loses.clone(),
        rows_lost: p.rows_lost,
        versions_lost: p.versions_lost,
        records_lost: p.records_lost,
        loss_unknown: p.loss_unknown,
        tables: tables.to_vec(),
        drift: None,
        steps: p
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| PlannedStep {
                step: i + 1,
                endpoint: s.endpoint.clone(),
                description: s.description.clone(),
            })
            .collect(),
        advice: p.advice.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_unknown_kinds_are_skipped() {
        let r = Record::new(
            "fp",
            Body::Step(StepRecord {
                step: 2,
                endpoint: Endpoint::new("127.0.0.1", 3307),
                description: "delete".into(),
                end: StepEnd::Done,
                detail: "1 row(s)".into(),
                started_ms: 5,
            }),
        );
        let line = serde_json::to_string(&r).unwrap();
        assert!(
            line.starts_with(r#"{"schema":"replmend.journal/2","fingerprint":"fp","at_ms":"#),
            "{line}"
        );
        assert!(line.contains(r#""record":"step""#), "{line}");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(Record::from_json(&v), Some(r));
        let later =
            serde_json::json!({"schema": "x", "fingerprint": "f", "at_ms": 1, "record": "novel"});
        assert_eq!(Record::from_json(&later), None);
    }
}
