//! Why the incident happened, in words, with what prevents it: classified from the evidence
//! (the conflicting rows' origins, the AUTO_INCREMENT settings, replmend's journals, the
//! channel's filters). Pure.

use serde::Serialize;

use super::model::{ConflictKind, Diagnosis};
use super::origin::{NodeOrigin, NotFoundReason, Writer};

#[derive(Debug, Clone, Copy, Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CauseKind {
    ErrantWrite,
    DualMasterRace,
    AutoIncrementCollision,
    EarlierSkip,
    Filtered,
    NoTrace,
    Unknown,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Cause {
    pub kind: CauseKind,
    pub evidence: String,
    pub prevention: String,
    /// dual_master_race: seconds between the two nodes' commits of the key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gap_seconds: Option<u64>,
    /// earlier_skip: the transaction skipped on the replica, when it is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped_gtid: Option<crate::vocab::Gtid>,
}

/// A node's auto_increment_increment and auto_increment_offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AutoIncrement {
    pub increment: u64,
    pub offset: u64,
}

/// What the I/O side read beside the origins.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// (replica, source) settings, when both were read.
    pub auto_increment: Option<(AutoIncrement, AutoIncrement)>,
    /// An earlier replmend repair that changed this key, in words (from the journals).
    pub journal: Option<String>,
    /// The channel's filters keep the table out: why.
    pub filtered: Option<String>,
    /// The source's earlier transaction on the key, skipped on the replica (proven).
    pub skipped: Option<super::skipped::Skipped>,
}

fn cause(kind: CauseKind, evidence: String, prevention: &str) -> Cause {
    Cause {
        kind,
        evidence,
        prevention: prevention.to_string(),
        gap_seconds: None,
        skipped_gtid: None,
    }
}

const READ_ONLY: &str = "Make replicas refuse direct writes: SET PERSIST super_read_only = ON (MariaDB: read_only = ON, with the application's accounts lacking READ_ONLY ADMIN / SUPER), and point the application's writers at the source only.";
const ONE_WRITER: &str = "Route the writes of a key range (or of the whole table) to one master at a time: an active/passive pair (the other node read_only), or a proxy that sends each table's writes to one node; if both must write, make keys that cannot collide (distinct auto_increment_offset, UUIDs, or a node prefix).";
const OFFSETS: &str = "Give each master its own AUTO_INCREMENT sequence: auto_increment_increment = the number of masters (2) on both, auto_increment_offset = 1 on one and 2 on the other (SET PERSIST, and in the option file), or write through one master only.";

/// The incident's cause, from its first conflict's origins and the facts.
pub fn classify(d: &Diagnosis, facts: &Facts) -> Cause {
    let table = format!("{}.{}", d.table.schema, d.table.name);
    if let Some(why) = &facts.filtered {
        return cause(
            CauseKind::Filtered,
            format!(
                "the channel's replication filters keep {table} out ({why}): its rows on the replica are not maintained by replication"
            ),
            "Either replicate the table (remove the filter) or stop writing it on the source; a filtered table's rows must not be relied on by replicated transactions.",
        );
    }
    let dual = d.reverse.as_ref().is_some_and(|r| r.dual_master);
    let origins = d.conflicts.iter().find_map(|c| c.origin.as_ref());
    let replica = origins.map(|o| &o.replica);
    let source = origins.and_then(|o| o.source.as_ref());
    let own =
        |o: Option<&NodeOrigin>| o.is_some_and(|o| o.found && o.writer == Some(Writer::ThisNode));
    if let (Some(a), Some((r, s))) = (&d.auto_key, facts.auto_increment)
        && d.kind == ConflictKind::DuplicateOnWrite
        && dual
        && r == s
    {
        return cause(
            CauseKind::AutoIncrementCollision,
            format!(
                "{table}.{} is AUTO_INCREMENT and both masters hand out the same values: auto_increment_increment={} and auto_increment_offset={} on both nodes, so each inserted a new record under the same id{}",
                a.column,
                r.increment,
                r.offset,
                match (own(replica), own(source)) {
                    (true, true) => " (the origins confirm: each node wrote its own row)",
                    _ => "",
                }
            ),
            OFFSETS,
        );
    }
    if own(replica) {
        let r = replica.expect("own");
        if dual {
            let gap = match (
                r.epoch,
                source.filter(|s| own(Some(s))).and_then(|s| s.epoch),
            ) {
                (Some(a), Some(b)) => Some(a.abs_diff(b) as u64),
                _ => None,
            };
            let mut c = cause(
                CauseKind::DualMasterRace,
                format!(
                    "both masters wrote this key of {table}: the replica's row by itself (server_id {}) at {} UTC{}",
                    r.server_id.unwrap_or(0),
                    r.timestamp.as_deref().unwrap_or("?"),
                    match (source, gap) {
                        (Some(s), Some(g)) => format!(
                            ", the source's by itself (server_id {}) at {} UTC: {g} s apart, before either had replicated the other's",
                            s.server_id.unwrap_or(0),
                            s.timestamp.as_deref().unwrap_or("?")
                        ),
                        _ => ", and the source's arrived from the other master".into(),
                    }
                ),
                ONE_WRITER,
            );
            c.gap_seconds = gap;
            return c;
        }
        return cause(
            CauseKind::ErrantWrite,
            format!(
                "the replica's row was written on the replica itself (server_id {}, {}) at {} UTC{}, not by replication",
                r.server_id.unwrap_or(0),
                r.gtid
                    .as_ref()
                    .map(|g| format!("GTID {g}"))
                    .unwrap_or_else(|| "no GTID".into()),
                r.timestamp.as_deref().unwrap_or("?"),
                r.statement
                    .as_deref()
                    .map(|s| format!(" by `{}`", s.trim()))
                    .unwrap_or_default()
            ),
            READ_ONLY,
        );
    }
    if let Some(j) = &facts.journal {
        return cause(
            CauseKind::EarlierSkip,
            format!(
                "an earlier replmend repair touched this key of {table}: {j}; the rows it skipped or replaced left the nodes apart"
            ),
            "After a skip or a one-sided repair, verify the table (`replmend verify --tables`) and resync it before the next write reaches the rows it left apart.",
        );
    }
    if let Some(s) = &facts.skipped {
        let mut c = cause(
            CauseKind::EarlierSkip,
            s.evidence(&table),
            super::skipped::PREVENTION,
        );
        c.skipped_gtid = Some(s.gtid.clone());
        return c;
    }
    if let Some(r) = replica
        && !r.found
        && matches!(
            r.reason,
            Some(NotFoundReason::NoBinaryLog | NotFoundReason::NotInRetainedLogs)
        )
    {
        return cause(
            CauseKind::NoTrace,
            format!(
                "no trace of the replica's side of this key of {table} in its binary log: {}",
                r.explanation.as_deref().unwrap_or("")
            ),
            "Keep the binary log on everywhere (log_bin, log_replica_updates) and forbid sql_log_bin=0 to applications (it needs SUPER/SYSTEM_VARIABLES_ADMIN: do not grant it); load or restore data on the source so that it replicates, and keep replicas super_read_only.",
        );
    }
    let evidence = match replica {
        Some(r) if r.found => format!(
            "the replica's version of the key was last written by server_id {} ({}), neither node of this pair's own write",
            r.server_id.unwrap_or(0),
            r.gtid
                .as_ref()
                .map(|g| format!("GTID {g}"))
                .unwrap_or_else(|| "no GTID".into())
        ),
        Some(r) => r
            .explanation
            .clone()
            .unwrap_or_else(|| "the row's origin is unknown".into()),
        None => "the conflicting rows' origins were not searched".into(),
    };
    cause(
        CauseKind::Unknown,
        evidence,
        "Compare the nodes (`replmend verify`) to see how far they drifted, keep replicas super_read_only, and keep the binary log on so the next incident's origin can be found.",
    )
}
