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
use crate::vocab::{Gtid, GtidSet, MysqlGtidSet};

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
    /// Why `statement` is null when the transaction was found (one clause): not logged, or
    /// the read of MariaDB's Annotate_rows event refused.
    pub statement_note: Option<String>,
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
    /// The files holding the node's errant GTIDs, read before the others (in that order).
    pub searched_first: Vec<String>,
    /// budget_exhausted: a transaction of a file read first (errant) that wrote the key, but
    /// newer files were not all read, so it may not be the last writer: never the origin.
    pub candidate: Option<CandidateOrigin>,
}

/// A possible writer: found in a file read ahead of its turn, newer files left unread.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CandidateOrigin {
    pub gtid: Option<Gtid>,
    pub server_id: u32,
    pub writer: Writer,
    pub timestamp: String,
    pub log_file: String,
    pub log_pos: u64,
    pub operation: RowsEventKind,
    /// The newer files not read (oldest first).
    pub unread_newer: Vec<String>,
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
        statement_note: None,
        row: None,
        reason: None,
        explanation: None,
        oldest_log: None,
        oldest_log_timestamp: None,
        searched_bytes: searched.map_or(0, |s| s.bytes),
        searched_files: searched.map_or(0, |s| s.files_read.len()),
        searched_ms: searched.map_or(0, |s| s.elapsed.as_millis() as u64),
        searched_first: searched.map_or_else(Vec::new, |s| s.read_first.clone()),
        candidate: None,
    }
}

fn writer_of(server_id: u32, this: &NodeIds, other: Option<&NodeIds>) -> Writer {
    if server_id == this.server_id {
        Writer::ThisNode
    } else if other.is_some_and(|o| o.server_id == server_id) {
        Writer::OtherNode
    } else {
        Writer::Another
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
    let writer = writer_of(t.server_id, this, other);
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
        // MariaDB's Annotate_rows is read afterwards (`annotate_of`); MySQL's Rows_query is
        // in the transaction when the session logged it.
        statement_note: match t.gtid {
            Some(Gtid::Mysql { .. }) | None
                if t.statement.is_none() && t.annotate.is_none() =>
            {
                Some(
                    "not logged: no Rows_query event in the transaction (binlog_rows_query_log_events was OFF where it was written)"
                        .into(),
                )
            }
            _ => None,
        },
        row: hit.image.as_ref().map(|i| finder::image_row(i, schema)),
        ..empty(Some(searched))
    }
}

/// How the files were read, in words: `3 whole file(s) read, newest first` or `…, the
/// errant GTIDs' file(s) n2-bin.000001 first, then newest first`.
fn order_words(searched: &Searched) -> String {
    match searched.read_first.is_empty() {
        true => format!(
            "{} whole file(s) read, newest first",
            searched.files_read.len()
        ),
        false => format!(
            "{} whole file(s) read, the errant GTIDs' file(s) {} first, then newest first",
            searched.files_read.len(),
            searched.read_first.join(", ")
        ),
    }
}

/// The key `key` was not found in what `searched` read (this node `this`, its partner
/// `other`, to say who wrote a candidate).
pub fn not_found(
    searched: &Searched,
    key: usize,
    budget: Budget,
    this: &NodeIds,
    other: Option<&NodeIds>,
) -> NodeOrigin {
    let mut o = empty(Some(searched));
    if let Some((file, pos)) = &searched.exhausted_at {
        o.reason = Some(NotFoundReason::BudgetExhausted);
        let candidate = searched.candidates.get(key).and_then(Option::as_ref);
        o.candidate = candidate.map(|c| CandidateOrigin {
            gtid: c.hit.trx.gtid.clone(),
            server_id: c.hit.trx.server_id,
            writer: writer_of(c.hit.trx.server_id, this, other),
            timestamp: utc(c.hit.trx.timestamp),
            log_file: c.hit.file.clone(),
            log_pos: c.hit.trx.start_pos,
            operation: c.hit.kind,
            unread_newer: c.unread_newer.clone(),
        });
        let lead = match &o.candidate {
            Some(c) => format!(
                "; a transaction of a file read first, {} (server_id {}) at {}:{}, wrote it, but {} newer file(s) ({}) were not read, so a later writer is not ruled out",
                c.gtid
                    .as_ref()
                    .map(|g| format!("GTID {g}"))
                    .unwrap_or_else(|| "without a GTID".into()),
                c.server_id,
                c.log_file,
                c.log_pos,
                c.unread_newer.len(),
                c.unread_newer.join(", ")
            ),
            None => String::new(),
        };
        o.explanation = Some(format!(
            "the search budget ({} MiB, {} s) ran out at {file}:{pos} after {} bytes in {} ms ({}) before the write was found{lead}; raise --origin-budget to search further back",
            budget.bytes >> 20,
            budget.seconds,
            searched.bytes,
            searched.elapsed.as_millis(),
            order_words(searched),
        ));
        return o;
    }
    o.reason = Some(NotFoundReason::NotInRetainedLogs);
    let (oldest, first) = searched.oldest.clone().unwrap_or_default();
    let when = first.map(utc);
    o.explanation = Some(format!(
        "no transaction in the retained binary logs ({}, oldest {oldest}{}) wrote this key: it was written with binary logging off (sql_log_bin=0), by a load or restore that bypassed the binary log, or before {}",
        order_words(searched),
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
    match (&o.statement, &o.statement_note) {
        (Some(st), _) => s.push_str(&format!("; statement: {}", st.trim())),
        (None, Some(why)) => s.push_str(&format!("; statement unknown: {why}")),
        (None, None) => {}
    }
    if !o.searched_first.is_empty() {
        s.push_str(&format!(
            "; the errant GTIDs' file(s) {} read first",
            o.searched_first.join(", ")
        ));
    }
    s
}

// ---- MariaDB's statement: the Annotate_rows event before the rows event ----------------

/// The statement of rows event number `rows_index` (0: the first) of a transaction, from
/// SHOW BINLOG EVENTS rows (Event_type, Info) read from the transaction's start: the Info of
/// the last Annotate_rows event before that rows event. Err: why not, in one clause.
pub fn annotate_of(events: &[(String, String)], rows_index: usize) -> Result<String, String> {
    let mut annotate: Option<&str> = None;
    let mut seen = 0usize;
    for (i, (kind, info)) in events.iter().enumerate() {
        if kind == "Annotate_rows" {
            annotate = Some(info);
        } else if kind.contains("_rows") {
            if seen == rows_index {
                return annotate.map(|a| a.trim().to_string()).ok_or_else(|| {
                    "not logged: no Annotate_rows event before its rows event (binlog_annotate_row_events, or replicate_annotate_row_events for a replicated one, was OFF)".into()
                });
            }
            seen += 1;
        } else if i > 0 && (kind == "Xid" || kind == "Gtid") {
            break;
        }
    }
    Err(format!(
        "its rows event was not among the {} events read from the transaction's start",
        events.len()
    ))
}

// ---- The files holding a node's errant GTIDs ----------------------------------------------

/// A node's errant transactions, as the search locates them in its binary log files.
#[derive(Debug, Clone, PartialEq)]
pub enum ErrantSpan {
    Mysql(MysqlGtidSet),
    /// (domain, server_id, after, up to): the node's transactions of that domain and server
    /// with a seq above `after` (what its sources logged) and up to `up to`.
    Mariadb(Vec<(u32, u32, u64, u64)>),
}

impl ErrantSpan {
    /// The part of the span a file's starting GTID state holds, comparable between files
    /// (MySQL: the span's GTIDs logged before the file; MariaDB: each entry's seq reached,
    /// clamped to the span). None: the state is of the other flavor.
    fn reached(&self, before: &GtidSet) -> Option<String> {
        match (self, before) {
            (ErrantSpan::Mysql(span), GtidSet::Mysql(b)) => {
                Some(span.subtract(&span.subtract(b)).to_string())
            }
            (ErrantSpan::Mariadb(span), GtidSet::Mariadb(b)) => Some(
                span.iter()
                    .map(|&(d, sid, after, upto)| {
                        b.seq_of(d, sid)
                            .unwrap_or(0)
                            .max(after)
                            .min(upto)
                            .to_string()
                    })
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            _ => None,
        }
    }

    /// The whole span (what the state after the newest file holds).
    fn all(&self) -> String {
        match self {
            ErrantSpan::Mysql(span) => span.to_string(),
            ErrantSpan::Mariadb(span) => span
                .iter()
                .map(|e| e.3.to_string())
                .collect::<Vec<_>>()
                .join(","),
        }
    }
}

/// The indices of the files (of `n`, oldest 0) that hold errant transactions, newest first,
/// given `before(i)`: the GTID state a file starts with (MySQL's Previous_gtids, MariaDB's
/// Gtid_list). That state only grows from file to file, so a file holds some of the span
/// exactly when the part of the span reached grows across it: a bisection reads about
/// (files holding some) × log2(n) states, not all n. None when a state could not be read.
pub fn errant_files(
    n: usize,
    span: &ErrantSpan,
    before: &mut dyn FnMut(usize) -> Option<GtidSet>,
) -> Option<Vec<usize>> {
    let mut memo: Vec<Option<String>> = vec![None; n + 1];
    memo[n] = Some(span.all());
    let mut reached = |i: usize| -> Option<String> {
        if memo[i].is_none() {
            memo[i] = Some(span.reached(&before(i)?)?);
        }
        memo[i].clone()
    };
    let mut out = Vec::new();
    // Ranges [lo, hi] of states to compare, the newer ranges first.
    let mut todo = vec![(0usize, n)];
    while let Some((lo, hi)) = todo.pop() {
        if hi <= lo || reached(lo)? == reached(hi)? {
            continue;
        }
        if hi - lo == 1 {
            out.push(lo);
            continue;
        }
        let mid = (lo + hi) / 2;
        todo.push((lo, mid));
        todo.push((mid, hi));
    }
    out.sort_unstable_by(|a, b| b.cmp(a));
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::MariadbGtidList;

    #[test]
    fn the_statement_is_the_annotate_before_the_rows_event() {
        let ev = |k: &str, i: &str| (k.to_string(), i.to_string());
        let trx = [
            ev("Gtid", "BEGIN GTID 2-2-3"),
            ev("Annotate_rows", "INSERT INTO t VALUES (1)"),
            ev("Table_map", "table_id: 33 (d.t)"),
            ev("Write_rows_v1", "table_id: 33 flags: STMT_END_F"),
            ev("Annotate_rows", "UPDATE t SET v = 2"),
            ev("Table_map", "table_id: 33 (d.t)"),
            ev("Update_rows_v1", "table_id: 33 flags: STMT_END_F"),
            ev("Xid", "COMMIT /* xid=9 */"),
        ];
        assert_eq!(annotate_of(&trx, 0).unwrap(), "INSERT INTO t VALUES (1)");
        assert_eq!(annotate_of(&trx, 1).unwrap(), "UPDATE t SET v = 2");
        assert!(annotate_of(&trx, 2).unwrap_err().contains("not among"));
        let off = [
            ev("Gtid", "BEGIN GTID 2-2-3"),
            ev("Table_map", "table_id: 33 (d.t)"),
            ev("Write_rows_v1", "table_id: 33 flags: STMT_END_F"),
        ];
        assert!(
            annotate_of(&off, 0)
                .unwrap_err()
                .contains("binlog_annotate_row_events")
        );
    }

    #[test]
    fn errant_files_are_those_the_span_grows_across() {
        let m = |t: &str| GtidSet::Mysql(MysqlGtidSet::parse(t).unwrap());
        // Previous_gtids of 6 files; the errant b:3 was written in file 1, b:7 in file 4.
        let before = [
            "b:1",
            "a:1-2,b:1-2",
            "a:1-9,b:1-3",
            "a:1-20,b:1-5",
            "a:1-30,b:1-6",
            "a:1-31,b:1-7",
        ];
        let span = ErrantSpan::Mysql(MysqlGtidSet::parse("b:3,b:7").unwrap());
        let mut reads = 0;
        let files = errant_files(6, &span, &mut |i| {
            reads += 1;
            Some(m(before[i]))
        })
        .unwrap();
        assert_eq!(files, [4, 1]);
        assert!(reads <= 6, "{reads}");
        // None errant in the retained files (already in the oldest's Previous_gtids).
        let span = ErrantSpan::Mysql(MysqlGtidSet::parse("b:1").unwrap());
        assert_eq!(
            errant_files(6, &span, &mut |i| Some(m(before[i]))).unwrap(),
            Vec::<usize>::new()
        );
        // MariaDB: server 2's domain-2 writes after seq 4 (its source logged up to 4), up to 9.
        let l = |t: &str| GtidSet::Mariadb(MariadbGtidList::parse(t).unwrap());
        let before = ["1-1-5", "1-1-9,2-2-4", "1-1-20,2-2-4", "1-1-20,2-2-9"];
        let span = ErrantSpan::Mariadb(vec![(2, 2, 4, 9)]);
        let files = errant_files(4, &span, &mut |i| Some(l(before[i]))).unwrap();
        assert_eq!(files, [2]);
        // A state that cannot be read: no order rather than a wrong one.
        assert!(errant_files(4, &span, &mut |_| None).is_none());
    }
}
