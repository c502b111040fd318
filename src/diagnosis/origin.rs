//! The origin of a conflicting row on one node: the transaction that last wrote its key in
//! that node's own binary log, or exactly why none was found. Pure: which rows of a rows event
//! hold a wanted key (`KeyMatcher`, decoded as the diagnosis decodes keys), and the report
//! made of what the search (`binlog::origin`, I/O) read.

use serde::Serialize;

use super::finder::{self, Key};
use super::model::{Row, RowsEventKind, TableRef};
use crate::binlog::fetch::RawRowsEvent;
use crate::binlog::origin::{Budget, Hit, KeyHit, Searched};
use crate::schema::TableSchema;
use crate::vocab::Gtid;

/// The origin on each node of one conflict's key.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Origins {
    pub replica: NodeOrigin,
    /// None when there is no source to search (unreachable).
    pub source: Option<NodeOrigin>,
}

/// Who wrote the transaction, seen from the node whose binlog holds it.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Writer {
    /// The node itself (its own server_id): a write made on it directly.
    ThisNode,
    /// The other node of the incident (replicated from it).
    OtherNode,
    /// Neither: a third server upstream.
    Another,
}

/// Why no writer was found.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum NotFoundReason {
    /// log_bin is OFF on the node: nothing it writes is logged.
    NoBinaryLog,
    /// The budget ran out before the whole retained log was read.
    BudgetExhausted,
    /// Every retained log was read: none wrote the key.
    NotInRetainedLogs,
    /// The binary log could not be read (privileges, connection).
    Unreadable,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NodeOrigin {
    pub found: bool,
    pub gtid: Option<Gtid>,
    pub server_id: Option<u32>,
    /// MySQL: the GTID's server UUID; the node's own when it wrote it.
    pub server_uuid: Option<String>,
    pub writer: Option<Writer>,
    /// The transaction's event time, UTC (`YYYY-MM-DD HH:MM:SS`).
    pub timestamp: Option<String>,
    #[serde(skip)]
    pub epoch: Option<u32>,
    pub log_file: Option<String>,
    /// Where the transaction starts in `log_file`.
    pub log_pos: Option<u64>,
    /// write | update | delete: what the newest event on the key did.
    pub operation: Option<RowsEventKind>,
    /// The statement, when the server logged it (MySQL binlog_rows_query_log_events, MariaDB
    /// binlog_annotate_row_events).
    pub statement: Option<String>,
    /// The image it wrote (columns the image carries).
    pub row: Option<Row>,
    pub reason: Option<NotFoundReason>,
    /// Why not found and what it implies, in words.
    pub explanation: Option<String>,
    /// The oldest retained binary log and its first event's time, when read.
    pub oldest_log: Option<String>,
    pub oldest_log_timestamp: Option<String>,
    pub searched_bytes: u64,
    pub searched_files: usize,
    pub searched_ms: u64,
}

/// A node's identity, to tell who wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeIds {
    pub server_id: u32,
    pub server_uuid: Option<String>,
}

/// Which rows of an event hold one of the wanted keys.
pub struct KeyMatcher<'a> {
    table: &'a TableRef,
    schema: &'a TableSchema,
    slots: Option<Vec<(String, usize)>>,
    keys: &'a [Key],
}

impl<'a> KeyMatcher<'a> {
    pub fn new(
        table: &'a TableRef,
        key: &super::model::KeyRef,
        schema: &'a TableSchema,
        keys: &'a [Key],
    ) -> Self {
        KeyMatcher {
            table,
            schema,
            slots: finder::key_slots(key, schema),
            keys,
        }
    }

    /// The wanted keys an event's rows write (after image) or remove (before image of a
    /// delete, or of an update that moves the key away), with what the row became.
    pub fn hits(&self, ev: &RawRowsEvent) -> Vec<KeyHit> {
        let Some(slots) = self.slots.as_deref() else {
            return Vec::new();
        };
        if ev.table != *self.table {
            return Vec::new();
        }
        let mut out = Vec::new();
        for (before, after) in &ev.rows {
            let key_of = |img: &Option<_>| {
                img.as_ref()
                    .and_then(|i| finder::image_key(slots, self.schema, i))
            };
            let after_key = key_of(after);
            let before_key = key_of(before);
            for (i, want) in self.keys.iter().enumerate() {
                if ev.kind != RowsEventKind::Delete && after_key.as_ref() == Some(want) {
                    out.push(KeyHit {
                        key: i,
                        kind: ev.kind,
                        image: after.clone(),
                    });
                } else if before_key.as_ref() == Some(want) {
                    out.push(KeyHit {
                        key: i,
                        kind: RowsEventKind::Delete,
                        image: None,
                    });
                }
            }
        }
        out
    }
}

fn utc(secs: u32) -> String {
    crate::value::utc_datetime(secs as i64, 0, 0)
}

fn empty(searched: Option<&Searched>) -> NodeOrigin {
    NodeOrigin {
        found: false,
        gtid: None,
        server_id: None,
        server_uuid: None,
        writer: None,
        timestamp: None,
        epoch: None,
        log_file: None,
        log_pos: None,
        operation: None,
        statement: None,
        row: None,
        reason: None,
        explanation: None,
        oldest_log: None,
        oldest_log_timestamp: None,
        searched_bytes: searched.map_or(0, |s| s.bytes),
        searched_files: searched.map_or(0, |s| s.files_read.len()),
        searched_ms: searched.map_or(0, |s| s.elapsed.as_millis() as u64),
    }
}

/// The origin found: `hit` in the binlog of `this`, whose incident partner is `other`.
pub fn found(
    hit: &Hit,
    schema: &TableSchema,
    this: &NodeIds,
    other: Option<&NodeIds>,
    searched: &Searched,
) -> NodeOrigin {
    let t = &hit.trx;
    let gtid_uuid = match &t.gtid {
        Some(Gtid::Mysql { uuid, .. }) => Some(uuid.clone()),
        _ => None,
    };
    let writer = if t.server_id == this.server_id {
        Writer::ThisNode
    } else if other.is_some_and(|o| o.server_id == t.server_id) {
        Writer::OtherNode
    } else {
        Writer::Another
    };
    let server_uuid = gtid_uuid.or_else(|| match writer {
        Writer::ThisNode => this.server_uuid.clone(),
        Writer::OtherNode => other.and_then(|o| o.server_uuid.clone()),
        Writer::Another => None,
    });
    NodeOrigin {
        found: true,
        gtid: t.gtid.clone(),
        server_id: Some(t.server_id),
        server_uuid,
        writer: Some(writer),
        timestamp: Some(utc(t.timestamp)),
        epoch: Some(t.timestamp),
        log_file: Some(hit.file.clone()),
        log_pos: Some(t.start_pos),
        operation: Some(hit.kind),
        statement: t.statement.clone().or_else(|| t.annotate.clone()),
        row: hit.image.as_ref().map(|i| finder::image_row(i, schema)),
        ..empty(Some(searched))
    }
}

/// The key was not found in what `searched` read.
pub fn not_found(searched: &Searched, budget: Budget) -> NodeOrigin {
    let mut o = empty(Some(searched));
    if let Some((file, pos)) = &searched.exhausted_at {
        o.reason = Some(NotFoundReason::BudgetExhausted);
        o.explanation = Some(format!(
            "the search budget ({} MiB, {} s) ran out at {file}:{pos} after {} bytes in {} ms ({} whole file(s) read, newest first) before the write was found; raise --origin-budget to search further back",
            budget.bytes >> 20,
            budget.seconds,
            searched.bytes,
            searched.elapsed.as_millis(),
            searched.files_read.len()
        ));
        return o;
    }
    o.reason = Some(NotFoundReason::NotInRetainedLogs);
    let (oldest, first) = searched.oldest.clone().unwrap_or_default();
    let when = first.map(utc);
    o.explanation = Some(format!(
        "no transaction in the retained binary logs ({} file(s), oldest {oldest}{}) wrote this key: it was written with binary logging off (sql_log_bin=0), by a load or restore that bypassed the binary log, or before {}",
        searched.files_read.len(),
        when.as_deref()
            .map(|w| format!(", first event {w} UTC"))
            .unwrap_or_default(),
        when.as_deref()
            .map(|w| format!("{w} UTC (logs before it were purged)"))
            .unwrap_or_else(|| "the oldest retained log".into()),
    ));
    o.oldest_log = Some(oldest);
    o.oldest_log_timestamp = when;
    o
}

/// log_bin is OFF on the node.
pub fn no_binary_log() -> NodeOrigin {
    let mut o = empty(None);
    o.reason = Some(NotFoundReason::NoBinaryLog);
    o.explanation = Some(
        "the node's binary log is off (log_bin=OFF): nothing written on it is logged, so its row's writer cannot be known".into(),
    );
    o
}

/// The binary log could not be read.
pub fn unreadable(why: String) -> NodeOrigin {
    let mut o = empty(None);
    o.reason = Some(NotFoundReason::Unreadable);
    o.explanation = Some(format!("the binary log could not be read: {why}"));
    o
}

/// One line per node for the text report.
pub fn describe(o: &NodeOrigin, node: &str) -> String {
    if !o.found {
        return format!(
            "{node}: no writer found: {}",
            o.explanation.as_deref().unwrap_or("not searched")
        );
    }
    let who = match o.writer {
        Some(Writer::ThisNode) => "this node itself",
        Some(Writer::OtherNode) => "the other node (replicated)",
        _ => "another server",
    };
    let mut s = format!(
        "{node}: last written by {} {} at {} UTC, server_id {} ({who}), {}:{}",
        o.gtid
            .as_ref()
            .map(|g| format!("GTID {g}"))
            .unwrap_or_else(|| "a transaction".into()),
        o.operation.map(|k| format!("({k})")).unwrap_or_default(),
        o.timestamp.as_deref().unwrap_or("?"),
        o.server_id.unwrap_or(0),
        o.log_file.as_deref().unwrap_or("?"),
        o.log_pos.unwrap_or(0),
    );
    if let Some(st) = &o.statement {
        s.push_str(&format!("; statement: {}", st.trim()));
    }
    s
}
