//! The failing transaction: where it is in the source's binlog, reading it (streamed through
//! the conflict finder, with the failed table's definition on both nodes), its failed event
//! and its summary, and the transactions after it that a batch repair reads ahead.

use anyhow::Result;

use super::channel::closest_worker_boundary;
use super::rows::LiveRows;
use crate::binlog::fetch::{self, EventHead, FetchRequest, RawTransaction};
use crate::conn::{ConnSpec, Server};
use crate::diagnosis::finder::{self, event_matches};
use crate::diagnosis::*;
use crate::schema::TableSchema;
use crate::status::errortext::ParsedError;
use crate::status::model::ChannelStatus;
use crate::vocab::Gtid;

/// Where the failing transaction is in the source's binlog: from where the applier stopped.
pub(super) fn transaction_request(
    replica: &mut Server,
    ch: &ChannelStatus,
    parsed: &ParsedError,
    gtid: Option<Gtid>,
    missing: &mut Vec<String>,
) -> Option<FetchRequest> {
    let (Some(file), Some(pos)) = (ch.relay_source_log_file.clone(), ch.exec_source_log_pos) else {
        missing.push("the replica reports no executed source coordinates".into());
        return None;
    };
    // MariaDB 11.8 reports end_log_pos 0 (binlog_legacy_event_pos=OFF): no position.
    let failed_end_log_pos = parsed.end_log_pos.filter(|p| *p > 0);
    // Exec_Source_Log_Pos is in Relay_Source_Log_File: the failing transaction starts there,
    // or, on a multi-threaded applier, after it and after every transaction a worker
    // committed before the failed event.
    let start_pos = match failed_end_log_pos {
        Some(failed) => {
            closest_worker_boundary(replica, &ch.name, &file, failed).map_or(pos, |w| w.max(pos))
        }
        None => pos,
    };
    Some(FetchRequest {
        file,
        start_pos,
        failed_end_log_pos,
        gtid,
    })
}

/// Reads the failing transaction from the source's binlog, handing its rows events to
/// `on_rows` as they arrive. A transaction that cannot be read is noted in `missing`.
pub(super) fn read_transaction(
    source: &mut Server,
    req: &FetchRequest,
    missing: &mut Vec<String>,
    on_rows: &mut dyn FnMut(fetch::Item) -> Result<()>,
) -> Result<Option<RawTransaction>> {
    // The binlog is read on a connection of its own; the source's session may have timed
    // out meanwhile.
    let fetched = fetch::stream_transaction(&source.spec, source.flavor, req, on_rows)?;
    if let Err(e) = source.revive() {
        missing.push(format!(
            "the source's session was lost after reading its binlog: {e}"
        ));
    }
    match fetched {
        Ok(t) => Ok(Some(t)),
        Err(e) => {
            missing.push(format!(
                "the failing transaction could not be read from the source: {e}"
            ));
            Ok(None)
        }
    }
}

/// The failed table's definition on both nodes (the source's decodes its binlog rows).
pub(super) struct Tables {
    pub(super) replica: std::sync::Arc<TableSchema>,
    pub(super) source: Option<std::sync::Arc<TableSchema>>,
}

/// One read of the failing transaction with the conflict finder fed as it goes.
pub(super) struct Pass {
    pub(super) transaction: Option<RawTransaction>,
    pub(super) conflicts: Vec<Conflict>,
    /// Rows events of the table in the transaction.
    pub(super) table_events: usize,
}

impl Tables {
    pub(super) fn load(
        replica: &mut Server,
        source: Option<&mut Server>,
        table: &TableRef,
        missing: &mut Vec<String>,
    ) -> Result<Tables> {
        // Both nodes at once: each is a few round trips to information_schema.
        let (replica_schema, source_schema) = std::thread::scope(|scope| {
            let on_source = source.map(|src| scope.spawn(|| src.table(table)));
            let on_replica = replica.table(table);
            let on_source =
                on_source.map(|t| t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
            (on_replica, on_source)
        });
        let replica_schema = replica_schema?;
        let source_schema = match source_schema {
            Some(Ok(s)) => Some(s),
            Some(Err(e)) => {
                missing.push(format!("table definition on the source: {e}"));
                None
            }
            None => None,
        };
        Ok(Tables {
            replica: replica_schema,
            source: source_schema,
        })
    }

    /// Streams the failing transaction through the finder: each batch of its rows is looked
    /// up on the replica while the next is read and decoded, and only conflicts are kept.
    pub(super) fn find(
        &self,
        replica: &mut Server,
        source: &mut Server,
        req: &FetchRequest,
        kind: ConflictKind,
        key: Option<&KeyRef>,
        missing: &mut Vec<String>,
    ) -> Result<Pass> {
        let table = &self.replica.table;
        let Some(key) = key else {
            let transaction = read_transaction(source, req, missing, &mut |_| Ok(()))?;
            let table_events = count_table_events(transaction.as_ref(), table);
            return Ok(Pass {
                transaction,
                conflicts: Vec::new(),
                table_events,
            });
        };
        let decode_schema = self.source.as_ref().unwrap_or(&self.replica);
        let mut finder = finder::Finder::new(table, kind, key, decode_schema);
        // While the binlog is read only the replica is asked (for each batch of keys); the
        // source is asked for the conflicting rows at the end.
        let mut rows = LiveRows {
            replica: &mut *replica,
            replica_schema: &self.replica,
            source: None,
        };
        let transaction = read_transaction(source, req, missing, &mut |item| match item {
            fetch::Item::Begin => {
                finder.reset();
                Ok(())
            }
            fetch::Item::Rows(ev) => finder.push(ev, &mut rows),
            fetch::Item::Done(_) => Ok(()),
        })?;
        let table_events = finder.table_events;
        let mut conflicts = Vec::new();
        if transaction.is_some() {
            rows.source = self.source.as_ref().map(|ss| (source, &**ss));
            let found = finder.finish(&mut rows)?;
            missing.extend(found.missing);
            conflicts = found.conflicts;
        }
        Ok(Pass {
            transaction,
            conflicts,
            table_events,
        })
    }
}

fn count_table_events(trx: Option<&RawTransaction>, table: &TableRef) -> usize {
    trx.map(|t| t.events.iter().filter(|e| e.table == *table).count())
        .unwrap_or(0)
}

pub(super) fn failed_event<'t>(
    trx: &'t RawTransaction,
    parsed: &ParsedError,
    kind: ConflictKind,
) -> Option<&'t EventHead> {
    parsed
        .end_log_pos
        .filter(|p| *p > 0)
        .and_then(|p| trx.events.iter().find(|e| e.end_log_pos == p))
        .or_else(|| trx.events.iter().find(|e| event_matches(e.kind, kind)))
}

pub(super) fn summarize(t: RawTransaction, parsed: &ParsedError, file: &str) -> Transaction {
    let failed_pos = parsed.end_log_pos.unwrap_or(0);
    let events: Vec<EventSummary> = t
        .events
        .iter()
        .map(|e| EventSummary {
            kind: e.kind,
            table: e.table.clone(),
            rows: e.rows,
            end_log_pos: e.end_log_pos,
            failed: e.end_log_pos == failed_pos,
        })
        .collect();
    Transaction {
        source_log_file: file.to_string(),
        start_pos: t.start_pos,
        end_pos: t.end_pos,
        failed_event_end_log_pos: failed_pos,
        gtid: t.gtid,
        rows_total: events.iter().map(|e| e.rows).sum(),
        events,
        statement: t.statement,
        bytes_read: t.bytes_read,
    }
}

/// The transactions after the incident's in the source's binlog (up to `max` of them and
/// 64 MiB), their events of the incident's table: what a batch repair reads ahead. The binlog
/// does not change, so this may run while the incident is re-checked under the lock.
pub fn following_transactions(
    d: &Diagnosis,
    source_spec: &ConnSpec,
    max: usize,
) -> Result<Vec<fetch::Following>> {
    let (Some(trx), Some(src)) = (&d.transaction, &d.source) else {
        return Ok(Vec::new());
    };
    if max == 0 || d.key.is_none() {
        return Ok(Vec::new());
    }
    let table = d.table.clone();
    let following = fetch::fetch_following(
        source_spec,
        src.flavor,
        &trx.source_log_file,
        trx.end_pos,
        max,
        64 << 20,
        &|e| e.table == table,
    )?;
    crate::timing::mark("following transactions read");
    Ok(following)
}
