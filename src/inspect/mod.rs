//! The inspector: from a stopped channel to a full `Diagnosis`, reading the replica's status,
//! the failing transaction from the source's binlog, and both nodes' current rows. This is
//! the I/O side of diagnosis; the model and its pure logic are in `diagnosis`.

mod outcome;

use anyhow::Result;
use mysql::prelude::Queryable;

use crate::binlog::fetch::{self, EventHead, FetchRequest, RawTransaction};
use crate::conn::{ConnSpec, Server};
use crate::diagnosis::finder::{self, event_matches};
use crate::diagnosis::*;
use crate::schema::TableSchema;
use crate::status::errortext::{self, ParsedError, Undiagnosable};
use crate::status::model::{ChannelStatus, ErrorInfo, Failure};
use crate::status::{self, Health, StatusReport};
use crate::value::Cell;
use crate::vocab::{Gtid, MariadbGtidList};
pub use outcome::{Diagnosed, InspectError, NoIncident};

/// The whole diagnosis of the replica at `spec`, with the reverse direction when the pair is
/// dual-master; or why there is nothing to diagnose.
pub fn diagnose(
    spec: &ConnSpec,
    source_dsn: Option<&str>,
    channel: Option<&str>,
) -> Result<Diagnosed> {
    diagnose_with_source(spec, SourceAt::Dsn(source_dsn), channel)
}

/// How to reach the source of the diagnosed channel.
pub enum SourceAt<'a> {
    /// A DSN of its own, or (None) the address in the replica's status with the replica's
    /// credentials.
    Dsn(Option<&'a str>),
    /// Exactly this server (the other node of a dual-master pair, already known).
    Spec(&'a ConnSpec),
}

pub fn diagnose_with_source(
    spec: &ConnSpec,
    source_at: SourceAt<'_>,
    channel: Option<&str>,
) -> Result<Diagnosed> {
    let mut replica = Server::connect(spec)?;
    let report = status::read_status(&mut replica)?;
    crate::timing::mark("replica's status read");
    let ch = match pick_channel(&report, channel)? {
        Ok(ch) => ch,
        Err(healthy) => return Ok(Diagnosed::Healthy(healthy)),
    };
    let source_spec = match source_at {
        SourceAt::Dsn(dsn) => crate::conn::other_spec(dsn, spec, &ch.source_host, ch.source_port)?,
        SourceAt::Spec(s) => s.clone(),
    };
    let mut source = Server::connect(&source_spec);
    let mut d = diagnose_channel(&mut replica, &report, &ch, source.as_mut().ok())?;
    if let Err(e) = &source {
        d.missing.push(format!(
            "the source {} could not be reached ({e}): row images and the source's rows are unknown",
            source_spec
        ));
    }
    crate::timing::mark("incident diagnosed");
    if let Ok(src) = source.as_mut() {
        d.reverse = reverse_channel(src, &mut replica, &d, None);
    }
    crate::timing::mark("reverse direction read");
    d.errant = crate::status::errant::find(&mut replica, spec, &report, source.as_mut().ok());
    // Only read on: the repair that usually follows takes them instead of connecting again.
    replica.release();
    if let Ok(src) = source {
        src.release();
    }
    Ok(Diagnosed::Stopped(Box::new(d)))
}

/// The same incident, looked at again just before a repair acts (under the repair lock):
/// where the replica stopped and on what must be unchanged, and then the failing transaction
/// is the same one and is not read again; only what can have changed meanwhile is read again
/// (both nodes' conflicting rows, read_only, the key counters, the other direction). When the
/// replica has moved on, a full diagnosis of where it is now is returned (its fingerprint
/// differs).
///
/// `replica` and `source` are the repair's own sessions (None: the source is unreachable);
/// `source_spec` is how to reach the source for a full diagnosis. A replica no longer
/// stopped on an applier error is an error here (`NoIncident`): the incident changed.
pub fn refresh(
    d: &Diagnosis,
    replica: &mut Server,
    mut source: Option<&mut Server>,
    source_spec: Option<&ConnSpec>,
) -> Result<Diagnosis> {
    let spec = replica.spec.clone();
    let full = || -> Result<Diagnosis> {
        let diagnosed = match source_spec {
            Some(s) => diagnose_with_source(&spec, SourceAt::Spec(s), Some(&d.channel)),
            None => diagnose(&spec, None, Some(&d.channel)),
        };
        Ok(diagnosed?.stopped()?)
    };
    let report = status::read_status(replica)?;
    let ch = pick_channel(&report, Some(&d.channel))??;
    if source.is_none() != d.source.is_none() {
        return full();
    }
    let Some(mut again) = refresh_channel(d, replica, &report, &ch, source.as_deref_mut())? else {
        return full();
    };
    if let Some(src) = source {
        let previous = d.reverse.as_ref().and_then(|r| r.diagnosis.as_deref());
        again.reverse = reverse_channel(src, replica, &again, previous);
    }
    Ok(again)
}

/// `d` looked at again on the same channel; None when the incident is not the same any more.
fn refresh_channel(
    d: &Diagnosis,
    replica: &mut Server,
    report: &StatusReport,
    ch: &ChannelStatus,
    mut source: Option<&mut Server>,
) -> Result<Option<Diagnosis>> {
    let Some(err) = ch.applier_error() else {
        return Ok(None);
    };
    let parsed = errortext::parse(err.number, &err.message);
    // The same stop (file, position, end_log_pos) is the same transaction, so its GTID is
    // the one read from the binlog before.
    let gtid = d
        .transaction
        .as_ref()
        .and_then(|t| t.gtid.clone())
        .or_else(|| {
            ch.failed_worker()
                .and_then(|w| w.applying_transaction.clone())
                .or_else(|| parsed.gtid.clone())
                .and_then(|g| Gtid::parse(&g))
        });
    if incident_fingerprint(report, ch, err, &parsed, gtid.as_ref()) != d.fingerprint {
        return Ok(None);
    }
    let mut again = d.clone();
    again.replica = node_ref(replica);
    again.source = source.as_deref_mut().map(node_ref);
    again.gtid_slave_pos = report.server.gtid_slave_pos.clone();
    again.transaction_executed = match &gtid {
        Some(g) => gtid_executed_on(replica, g, report.server.gtid_slave_pos.as_deref()),
        None => false,
    };
    again.upcoming = Vec::new();
    again.reverse = None;
    let replica_schema = replica.table(&d.table)?;
    again.auto_key = auto_key(replica, &replica_schema, d.key.as_ref());
    let keys: Vec<finder::Key> = d.conflicts.iter().map(|c| c.key.clone()).collect();
    let replica_rows = fetch_rows(replica, &replica_schema, &keys)?;
    let source_rows = match source {
        Some(src) => {
            let ss = src.table(&d.table)?;
            Some(fetch_rows(src, &ss, &keys)?)
        }
        None => None,
    };
    again.conflicts = Vec::new();
    for (i, (c, replica_row)) in d.conflicts.iter().zip(replica_rows).enumerate() {
        // A row the replica no longer conflicts on is no conflict of this incident now.
        if !finder::conflicts_here(d.kind, replica_row.as_ref()) {
            continue;
        }
        let source_row = source_rows.as_ref().and_then(|s| s[i].clone());
        let verdict = compare::verdict(
            replica_row.as_ref(),
            source_row.as_ref(),
            source_rows.is_some(),
        );
        again.conflicts.push(Conflict {
            replica_row,
            source_row,
            verdict,
            ..c.clone()
        });
    }
    again.conflicting_rows = d.conflicting_rows.map(|_| again.conflicts.len());
    if let Some(a) = again.auto_key.as_mut() {
        rekey_facts(replica, &replica_schema, a, &again.conflicts)?;
    }
    Ok(Some(again))
}

/// The channel to diagnose (the one named, else the first stopped on an applier error), or
/// why there is none.
fn pick_channel(
    report: &StatusReport,
    wanted: Option<&str>,
) -> Result<Result<ChannelStatus, NoIncident>, InspectError> {
    if let Some(name) = wanted {
        let ch = report
            .channels
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| InspectError::NoSuchChannel(name.to_string()))?;
        if ch.health != Health::SqlError {
            return Ok(Err(NoIncident::ChannelNotStopped {
                channel: name.to_string(),
            }));
        }
        return Ok(Ok(ch.clone()));
    }
    Ok(report
        .channels
        .iter()
        .find(|c| c.health == Health::SqlError)
        .cloned()
        .ok_or_else(|| NoIncident::NoneStopped {
            endpoint: report.server.endpoint.clone(),
        }))
}

fn node_ref(s: &mut Server) -> NodeRef {
    let flags: Option<(i64, i64)> = s
        .first(&crate::sql::Statement::plain(s.flavor.read_only_query()))
        .ok()
        .flatten();
    let (ro, sro) = flags.unwrap_or((0, 0));
    NodeRef {
        endpoint: s.spec.endpoint(),
        flavor: s.flavor,
        server_id: s.server_id,
        server_uuid: s.server_uuid.clone(),
        read_only: ReadOnly::from_flags(ro != 0, sro != 0),
    }
}

/// rekey's facts: the conflicting key is one AUTO_INCREMENT column, and the first value above
/// every row this node holds.
fn auto_key(server: &mut Server, schema: &TableSchema, key: Option<&KeyRef>) -> Option<AutoKey> {
    let col = schema.auto_increment_key(key?)?;
    let above_max = crate::sql::next_above_max(&schema.table, &col.name);
    let max: Option<u64> = server.raw_conn().query_first(&above_max.sql).ok().flatten();
    // The live counter can be above MAX + 1 (rows inserted, then deleted): a fresh key must
    // be above what the node will hand out next, too.
    let create: Option<(String, String)> = server
        .raw_conn()
        .query_first(&crate::sql::show_create_table(&schema.table).sql)
        .ok()
        .flatten();
    let counter = create.and_then(|(_, text)| crate::sql::auto_increment_option(&text));
    Some(AutoKey {
        column: col.name.clone(),
        invisible: col.invisible,
        next: max?.max(counter.unwrap_or(0)),
        referenced_by: Vec::new(),
        unique_clashes: Vec::new(),
    })
}

/// The facts that decide whether rekey keeps every record whole on this node: the foreign
/// keys referencing the AUTO_INCREMENT column, and the rows that already hold the other node's
/// record's values in another unique key. Read only for an AUTO_INCREMENT key (the only case
/// rekey is for), and again under the repair lock.
fn rekey_facts(
    server: &mut Server,
    schema: &TableSchema,
    auto: &mut AutoKey,
    conflicts: &[Conflict],
) -> Result<()> {
    auto.referenced_by = crate::schema::referencing(server, &schema.table)?
        .into_iter()
        .filter(|fk| fk.references(&auto.column))
        .collect();
    auto.unique_clashes = unique_clashes(server, schema, &auto.column, conflicts)?;
    Ok(())
}

/// For each unique key without the AUTO_INCREMENT column (rekey changes that one, so a key
/// holding it cannot clash), the rows of this node that hold the other node's record's values
/// in it, looked up as the server compares them (collation, trailing spaces). The record itself
/// already copied here under a fresh key (an interrupted rekey) is no clash.
fn unique_clashes(
    server: &mut Server,
    schema: &TableSchema,
    auto: &str,
    conflicts: &[Conflict],
) -> Result<Vec<UniqueClash>> {
    // The other node's version of each record: its current row, else the event's.
    let records: Vec<&Row> = conflicts
        .iter()
        .map(|c| c.source_row.as_ref().unwrap_or(&c.event_row))
        .collect();
    let mut out = Vec::new();
    for key in schema
        .unique_keys
        .iter()
        .filter(|k| !k.columns.iter().any(|c| c == auto))
    {
        let asked: Vec<(&Row, finder::Key)> = records
            .iter()
            .filter_map(|r| Some((*r, unique_values(r, key)?)))
            .collect();
        let keys: Vec<finder::Key> = asked.iter().map(|(_, k)| k.clone()).collect();
        let found = fetch_rows(server, schema, &keys)?;
        for ((record, values), holder) in asked.into_iter().zip(found) {
            if let Some(h) = holder.filter(|h| !h.same_but(record, auto)) {
                out.push(UniqueClash {
                    key: key.name.clone(),
                    values,
                    holder: identifying(schema, &h),
                });
            }
        }
    }
    Ok(out)
}

/// The record's values in `key`; None when one is NULL (NULLs never clash in a unique key)
/// or missing from the row image (not known).
fn unique_values(record: &Row, key: &KeyRef) -> Option<finder::Key> {
    key.columns
        .iter()
        .map(|c| {
            record
                .get(c)
                .filter(|v| **v != Cell::Null)
                .map(|v| (c.clone(), v.clone()))
        })
        .collect()
}

/// The row's identifying key (its primary key, else its first unique key).
fn identifying(schema: &TableSchema, row: &Row) -> Vec<(String, Cell)> {
    let columns = schema.identifying_key().map(|k| k.columns.as_slice());
    columns
        .unwrap_or_default()
        .iter()
        .filter_map(|c| row.get(c).map(|v| (c.clone(), v.clone())))
        .collect()
}

/// The conflict class of an applier error, or why replmend cannot diagnose it.
fn conflict_kind(err: &ErrorInfo, parsed: &ParsedError) -> Result<ConflictKind, InspectError> {
    // `applier_error` already went to the worker with a row error of its own when there is
    // one: this worker (or the channel) only stopped because another failed.
    if Failure::of(err.number) == Failure::AnotherWorkers {
        return Err(InspectError::AnotherWorkerFailed {
            errno: err.number,
            message: err.message.clone(),
        });
    }
    if parsed.event.is_none()
        && !parsed.statement_based
        && err.message.starts_with("Coordinator stopped")
    {
        return Err(InspectError::CoordinatorOnly {
            message: err.message.clone(),
        });
    }
    parsed.conflict_kind().map_err(|e| match e {
        Undiagnosable::UnknownError { errno, .. } => InspectError::NotARowConflict {
            errno,
            message: err.message.clone(),
        },
        other => InspectError::Undiagnosable(other),
    })
}

/// Where the failing transaction is in the source's binlog: from where the applier stopped.
fn transaction_request(
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

/// The last transaction boundary before the failed event that an applier worker reports:
/// a transaction a worker committed ended before the failing one began (transactions do
/// not overlap, and the failing one did not commit). None when the server keeps no such
/// positions or they cannot be read (no SELECT on mysql.slave_worker_info).
fn closest_worker_boundary(
    replica: &mut Server,
    channel: &str,
    file: &str,
    failed_end_log_pos: u64,
) -> Option<u64> {
    let sql = replica.flavor.worker_positions_query()?;
    let rows: Vec<(Option<String>, Option<u64>)> = replica.raw_conn().exec(sql, (channel,)).ok()?;
    rows.into_iter()
        .filter_map(|(name, pos)| match (name?, pos?) {
            (name, pos) if name == file && pos < failed_end_log_pos => Some(pos),
            _ => None,
        })
        .max()
}

/// Reads the failing transaction from the source's binlog, handing its rows events to
/// `on_rows` as they arrive. A transaction that cannot be read is noted in `missing`.
fn read_transaction(
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

/// The conflicting key: the one the error names for a duplicate, the row's identifying key
/// for a missing row.
fn conflicting_key(
    kind: ConflictKind,
    parsed: &ParsedError,
    schema: &TableSchema,
    missing: &mut Vec<String>,
) -> Option<KeyRef> {
    let key = match kind {
        ConflictKind::DuplicateOnWrite | ConflictKind::DuplicateOnUpdate => parsed
            .key_name
            .as_deref()
            .and_then(|n| schema.key(n))
            .cloned(),
        _ => schema.identifying_key().cloned(),
    };
    if key.is_none() {
        missing.push(format!(
            "{} has no usable unique key{}: rows cannot be identified exactly",
            schema.table,
            parsed
                .key_name
                .as_deref()
                .map(|k| format!(" named {k}"))
                .unwrap_or_default()
        ));
    }
    key
}

/// The failed table's definition on both nodes (the source's decodes its binlog rows).
struct Tables {
    replica: std::sync::Arc<TableSchema>,
    source: Option<std::sync::Arc<TableSchema>>,
}

/// One read of the failing transaction with the conflict finder fed as it goes.
struct Pass {
    transaction: Option<RawTransaction>,
    conflicts: Vec<Conflict>,
    /// Rows events of the table in the transaction.
    table_events: usize,
}

impl Tables {
    fn load(
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
    fn find(
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

/// Both nodes' rows, read live for the finder.
struct LiveRows<'a> {
    replica: &'a mut Server,
    replica_schema: &'a TableSchema,
    source: Option<(&'a mut Server, &'a TableSchema)>,
}

impl finder::Rows for LiveRows<'_> {
    fn replica(&mut self, keys: &[finder::Key]) -> Result<Vec<Option<Row>>> {
        fetch_rows(self.replica, self.replica_schema, keys)
    }

    fn source(&mut self, keys: &[finder::Key]) -> Result<Option<Vec<Option<Row>>>> {
        match self.source.as_mut() {
            Some((server, schema)) => Ok(Some(fetch_rows(server, schema, keys)?)),
            None => Ok(None),
        }
    }
}

/// Keys looked up per round trip: a million-row transaction needs a thousand round trips;
/// small enough for any max_allowed_packet.
const KEYS_PER_QUERY: usize = 1000;

/// The node's current row for each key, many keys per round trip.
pub fn fetch_rows(
    server: &mut Server,
    schema: &TableSchema,
    keys: &[finder::Key],
) -> Result<Vec<Option<Row>>> {
    let columns = schema.column_names();
    let charsets = schema.converted_charsets();
    let integers = schema.integer_columns();
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(KEYS_PER_QUERY) {
        out.extend(fetch_chunk(
            server, schema, &columns, &charsets, &integers, chunk,
        )?);
    }
    Ok(out)
}

/// The keys, the last one repeated up to the next power of two (at most KEYS_PER_QUERY): a
/// session that looks up 999 keys and then 1,000 prepares one statement, not two (a prepare
/// of 1,000 placeholders costs about as much as its execution). Repeats match nothing new.
fn padded(keys: &[finder::Key]) -> std::borrow::Cow<'_, [finder::Key]> {
    let n = keys
        .len()
        .next_power_of_two()
        .min(KEYS_PER_QUERY)
        .max(keys.len());
    match keys.last() {
        Some(last) if n > keys.len() => {
            let mut v = keys.to_vec();
            v.resize(n, last.clone());
            std::borrow::Cow::Owned(v)
        }
        _ => std::borrow::Cow::Borrowed(keys),
    }
}

/// One `IN` query for the chunk; rows are mapped back to keys byte for byte. Keys holding
/// NULL, or a row that matched its key only under the collation (case, trailing spaces), send
/// the chunk to one point lookup per key instead (a UNION ALL, still one round trip).
fn fetch_chunk(
    server: &mut Server,
    schema: &TableSchema,
    columns: &[String],
    charsets: &crate::sql::Charsets,
    integers: &[String],
    keys: &[finder::Key],
) -> Result<Vec<Option<Row>>> {
    let has_null = keys.iter().any(|k| k.iter().any(|(_, v)| *v == Cell::Null));
    if !has_null && let Some(first) = keys.first() {
        // A one-column integer key's statement follows its runs, not the number of keys:
        // padding it would only copy the keys.
        let ranged = matches!(first.as_slice(), [(c, _)] if integers.contains(c));
        let asked = match ranged {
            true => std::borrow::Cow::Borrowed(keys),
            false => padded(keys),
        };
        let st = crate::sql::select_in(&schema.table, columns, &asked, charsets, integers);
        let found = server.read_rows(schema, columns, &st)?;
        if found.is_empty() {
            return Ok(vec![None; keys.len()]);
        }
        // Each key's first place in the chunk; a row is moved there, and a key asked for
        // twice gets a copy.
        let mut place: std::collections::HashMap<&finder::Key, usize> =
            std::collections::HashMap::with_capacity(keys.len());
        for (i, k) in keys.iter().enumerate() {
            place.entry(k).or_insert(i);
        }
        let mut out: Vec<Option<Row>> = vec![None; keys.len()];
        let mut all_exact = true;
        for row in found {
            let key: Option<finder::Key> = first
                .iter()
                .map(|(c, _)| row.get(c).map(|v| (c.clone(), v.clone())))
                .collect();
            match key.as_ref().and_then(|k| place.get(k)) {
                Some(&i) => out[i] = Some(row),
                None => all_exact = false,
            }
        }
        if all_exact {
            if place.len() < keys.len() {
                for (i, k) in keys.iter().enumerate() {
                    let at = place[k];
                    if at != i {
                        out[i] = out[at].clone();
                    }
                }
            }
            return Ok(out);
        }
    }
    let st = crate::sql::select_many_by_key(&schema.table, columns, keys, charsets);
    Ok(server.read_rows_by_index(schema, columns, &st, keys.len())?)
}

/// What identifies an incident: where the replica stopped and on what.
fn incident_fingerprint(
    report: &StatusReport,
    ch: &ChannelStatus,
    err: &ErrorInfo,
    parsed: &ParsedError,
    gtid: Option<&Gtid>,
) -> String {
    compare::fingerprint(&[
        &report
            .server
            .server_uuid
            .clone()
            .unwrap_or_else(|| report.server.server_id.to_string()),
        &ch.name,
        &err.number.to_string(),
        ch.relay_source_log_file.as_deref().unwrap_or(""),
        &ch.exec_source_log_pos.unwrap_or(0).to_string(),
        &parsed.end_log_pos.unwrap_or(0).to_string(),
        &gtid.map(|g| g.to_string()).unwrap_or_default(),
    ])
}

/// Diagnoses one stopped channel of `replica`. `source` is the server it replicates from, if
/// reachable. I/O only: the conflicts themselves come from the pure `diagnosis::finder`.
pub fn diagnose_channel(
    replica: &mut Server,
    report: &StatusReport,
    ch: &ChannelStatus,
    mut source: Option<&mut Server>,
) -> Result<Diagnosis> {
    let err = ch
        .applier_error()
        .cloned()
        .expect("a channel in SqlError has an error");
    let parsed = errortext::parse(err.number, &err.message);
    let kind = conflict_kind(&err, &parsed)?;
    let mut missing = Vec::new();
    let worker_gtid = ch
        .failed_worker()
        .and_then(|w| w.applying_transaction.clone())
        .or_else(|| parsed.gtid.clone())
        .and_then(|g| Gtid::parse(&g));
    let req = match source.is_some() {
        true => transaction_request(replica, ch, &parsed, worker_gtid.clone(), &mut missing),
        false => None,
    };
    // The error names the table; the binlog's own table map decides when the name is
    // ambiguous (a dot inside a name) or is not in the error at all.
    let named = parsed
        .table_guess()
        .filter(|(schema, name)| !schema.contains('.') && !name.contains('.'))
        .map(|(schema, name)| TableRef { schema, name });
    let mut scanned = None;
    let mut table = named.clone();
    if table.is_none()
        && let (Some(src), Some(req)) = (source.as_deref_mut(), &req)
    {
        scanned = read_transaction(src, req, &mut missing, &mut |_| Ok(()))?;
        table = scanned
            .as_ref()
            .and_then(|t| failed_event(t, &parsed, kind))
            .map(|e| e.table.clone());
    }
    let Some(mut table) = table else {
        return Err(InspectError::UnknownTable {
            message: err.message.clone(),
        }
        .into());
    };
    let mut tables = Tables::load(replica, source.as_deref_mut(), &table, &mut missing)?;
    crate::timing::mark("definitions read");
    let mut key = conflicting_key(kind, &parsed, &tables.replica, &mut missing);
    let mut conflicts = Vec::new();
    let mut transaction = scanned;
    if let (Some(src), Some(req)) = (source.as_deref_mut(), &req) {
        let mut pass = tables.find(replica, src, req, kind, key.as_ref(), &mut missing)?;
        // The error's table had no rows events in the transaction: it was not the table
        // the binlog names (case, or a name read wrongly). Go by the failed event itself.
        if let Some(trx) = &pass.transaction
            && named.is_some()
            && pass.table_events == 0
            && let Some(ev) = failed_event(trx, &parsed, kind).filter(|e| e.table != table)
        {
            table = ev.table.clone();
            tables = Tables::load(replica, Some(&mut *src), &table, &mut missing)?;
            key = conflicting_key(kind, &parsed, &tables.replica, &mut missing);
            pass = tables.find(replica, src, req, kind, key.as_ref(), &mut missing)?;
        }
        (transaction, conflicts) = (pass.transaction, pass.conflicts);
    }
    let replica_schema = tables.replica;
    let file = ch.relay_source_log_file.clone().unwrap_or_default();
    let transaction = transaction.map(|t| summarize(t, &parsed, &file));
    let gtid = transaction
        .as_ref()
        .and_then(|t| t.gtid.clone())
        .or(worker_gtid);
    // Rows were compared only when the transaction was read and its rows can be identified.
    let conflicting_rows = (transaction.is_some() && key.is_some()).then_some(conflicts.len());
    let fingerprint = incident_fingerprint(report, ch, &err, &parsed, gtid.as_ref());
    let gtid_enabled = replica
        .flavor
        .has_gtids(report.server.gtid_mode.as_deref() == Some("ON"));
    let mut auto_key = auto_key(replica, &replica_schema, key.as_ref());
    if let Some(a) = auto_key.as_mut() {
        rekey_facts(replica, &replica_schema, a, &conflicts)?;
    }
    Ok(Diagnosis {
        schema: DIAGNOSIS_SCHEMA,
        replica: node_ref(replica),
        source: source.map(node_ref),
        generated_columns: replica_schema.generated_columns(),
        converted_charsets: replica_schema.converted_charsets(),
        integer_columns: replica_schema.integer_columns(),
        auto_key,
        channel: ch.name.clone(),
        kind,
        error: ErrorFacts {
            errno: err.number,
            message: err.message.clone(),
            key_name: parsed.key_name.clone(),
            quoted_value: parsed.quoted_value.clone(),
            worker: parsed.worker,
        },
        row_key: replica_schema
            .identifying_key()
            .filter(|k| k.kind == KeyKind::Primary)
            .or(key.as_ref())
            .map(|k| k.columns.clone())
            .unwrap_or_default(),
        table,
        key,
        gtid_positioning: ch.gtid_positioning,
        gtid_enabled,
        gtid_slave_pos: report.server.gtid_slave_pos.clone(),
        transaction_executed: match &gtid {
            Some(g) => gtid_executed_on(replica, g, report.server.gtid_slave_pos.as_deref()),
            None => false,
        },
        transaction: transaction.map(|mut t| {
            t.gtid = gtid.clone();
            t
        }),
        gtid,
        conflicting_rows,
        conflicts,
        upcoming: Vec::new(),
        reverse: None,
        errant: Vec::new(),
        missing,
        fingerprint,
    })
}

fn failed_event<'t>(
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

fn summarize(t: RawTransaction, parsed: &ParsedError, file: &str) -> Transaction {
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

/// The node's current row with these key values, by bound parameters.
pub fn fetch_row(
    server: &mut Server,
    schema: &TableSchema,
    key: &[(String, Cell)],
) -> Result<Option<Row>> {
    let columns = schema.column_names();
    let st = crate::sql::select_by_key(
        &schema.table,
        &columns,
        key,
        &schema.converted_charsets(),
        false,
    );
    Ok(server.read_row(schema, &columns, &st)?)
}

/// Looks at the source's own replication: in a dual-master pair it replicates from this
/// replica, and may be stopped on the same key.
fn reverse_channel(
    source: &mut Server,
    replica: &mut Server,
    d: &Diagnosis,
    previous: Option<&Diagnosis>,
) -> Option<ReverseChannel> {
    let report = status::read_status(source).ok()?;
    let ch = report
        .channels
        .iter()
        .find(|c| c.replicates_from(&replica.spec.address(), Some(replica.server_id)))?;
    let mut rc = ReverseChannel {
        dual_master: true,
        channel: ch.name.clone(),
        stopped: ch.health != Health::Healthy,
        errno: ch.applier_error().map(|e| e.number),
        error: ch.applier_error().map(|e| e.message.clone()),
        same_key: false,
        diagnosis: None,
    };
    let looked_again = match previous.filter(|p| p.channel == ch.name) {
        Some(p) if ch.health == Health::SqlError => {
            refresh_channel(p, source, &report, ch, Some(&mut *replica))
                .ok()
                .flatten()
        }
        _ => None,
    };
    let diagnosed = match looked_again {
        Some(rev) => Some(rev),
        None if ch.health == Health::SqlError => {
            diagnose_channel(source, &report, ch, Some(replica)).ok()
        }
        None => None,
    };
    if let Some(rev) = diagnosed {
        rc.same_key = rev.table == d.table
            && !rev.conflicts.is_empty()
            && rev
                .conflicts
                .iter()
                .all(|c| d.conflicts.iter().any(|o| o.key == c.key));
        rc.diagnosis = Some(Box::new(rev));
    }
    Some(rc)
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

/// Batch mode: the rows the `following` transactions will stop on the way the incident did
/// — a duplicate key the replica already holds (writes and updates), a row it lacks (updates
/// and deletes) — each with both nodes' current versions, so one plan resolves them all in
/// one stop/start.
pub fn look_ahead(
    d: &mut Diagnosis,
    following: &[fetch::Following],
    replica: &mut Server,
    source: &mut Server,
) -> Result<()> {
    let Some(key) = &d.key else {
        return Ok(());
    };
    // The source's definition decodes its binlog's images.
    let ss = source.table(&d.table)?;
    let mut seen: std::collections::HashSet<finder::Key> =
        d.conflicts.iter().map(|c| c.key.clone()).collect();
    let events = following.iter().flat_map(|(_, evs)| evs);
    let candidates = finder::ahead(d.kind, events, key, &ss, &mut seen);
    let keys: Vec<finder::Key> = candidates.iter().map(|c| c.key.clone()).collect();
    crate::timing::mark(format_args!("{} candidates decoded", keys.len()));
    // Both nodes at once: in a stream of conflicts nearly every candidate conflicts, so the
    // source's rows of all of them are wanted anyway.
    let (replica_rows, source_rows) = rows_on_both(replica, source, &d.table, &[keys])?;
    crate::timing::mark("their rows read on both nodes");
    let found = candidates
        .into_iter()
        .zip(replica_rows)
        .zip(source_rows)
        .filter(|((_, r), _)| finder::conflicts_here(d.kind, r.as_ref()))
        .filter(|((c, r), _)| match (r, &c.event_before) {
            // Updates of duplicates only: a missing row has no replica row.
            (Some(r), Some(b)) => !finder::updates_itself(&d.row_key, r, b),
            _ => true,
        });
    for ((c, replica_row), source_row) in found {
        let verdict = compare::verdict(replica_row.as_ref(), source_row.as_ref(), true);
        d.upcoming.push(Conflict {
            row_index: c.row_index,
            key: c.key,
            event_row: c.event_row,
            event_before: c.event_before,
            replica_row,
            source_row,
            verdict,
        });
    }
    Ok(())
}

/// Each key's row on one node (None: no such row).
pub type Versions = Vec<Option<Row>>;

/// Both servers' rows of a table for each key, looked up on both at once; the keys come in
/// groups of the same columns (one `IN` list per 1,000 keys of a group).
pub fn rows_on_both(
    a: &mut Server,
    b: &mut Server,
    table: &TableRef,
    groups: &[Vec<finder::Key>],
) -> Result<(Versions, Versions)> {
    crate::conn::both(a, b, |server| rows_on(server, table, groups))
}

/// One server's rows of a table for each key of the groups, in order.
pub fn rows_on(
    server: &mut Server,
    table: &TableRef,
    groups: &[Vec<finder::Key>],
) -> Result<Versions> {
    let sch = server.table(table)?;
    let mut rows = Vec::new();
    for keys in groups {
        rows.extend(fetch_rows(server, &sch, keys)?);
    }
    Ok(rows)
}

/// Whether the replica already counts this GTID as executed.
fn gtid_executed_on(replica: &mut Server, gtid: &Gtid, slave_pos: Option<&str>) -> bool {
    match gtid {
        Gtid::Mysql { .. } => {
            replica
                .raw_conn()
                .exec_first::<i64, _, _>(
                    "SELECT GTID_SUBSET(?, @@GLOBAL.gtid_executed)",
                    (gtid.to_string(),),
                )
                .ok()
                .flatten()
                == Some(1)
        }
        Gtid::Mariadb { .. } => {
            MariadbGtidList::parse(slave_pos.unwrap_or("")).is_some_and(|pos| pos.contains(gtid))
        }
    }
}
