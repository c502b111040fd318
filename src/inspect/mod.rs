//! The inspector: from a stopped channel to a full `Diagnosis`, reading the replica's status,
//! the failing transaction from the source's binlog, and both nodes' current rows. This is
//! the I/O side of diagnosis; the model and its pure logic are in `diagnosis`.
//!
//! This file holds the overall flow: `diagnose` / `diagnose_with_origin`, one channel's
//! diagnosis (`diagnose_channel`) and its re-check under the repair lock (`refresh`). The
//! parts it calls: `channel` (which channel failed and on what, the status and GTID reads, the
//! reverse direction of a dual-master pair, the MTA worker positions), `transaction` (the
//! failing transaction from the source's binlog, its failed event, the transactions after
//! it), `rows` (both nodes' current rows, the conflicting key, the AUTO_INCREMENT and unique
//! clash facts, batch look-ahead). They use the same lower layers as this file and nothing
//! above `inspect`.

mod channel;
mod origin;
mod outcome;
mod rows;
mod skipped;
mod transaction;
mod unchanged;

use anyhow::Result;

use crate::conn::{ConnSpec, Server};
use crate::diagnosis::finder;
use crate::diagnosis::*;
use crate::status::errortext;
use crate::status::model::ChannelStatus;
use crate::status::topology::{Named, Topology};
use crate::status::{self, StatusReport};
use crate::vocab::Gtid;
use channel::{
    conflict_kind, gtid_executed_on, incident_fingerprint, node_ref, pick_channel, reverse_channel,
};
pub use outcome::{Diagnosed, InspectError, NoIncident};
pub use rows::{Versions, fetch_row, fetch_rows, look_ahead, rows_on, rows_on_both};
use rows::{auto_key, conflicting_key, rekey_facts};
pub use transaction::following_transactions;
use transaction::{Tables, failed_event, read_transaction, summarize, transaction_request};
pub use unchanged::what_changed;

/// The whole diagnosis of the replica at `spec`, with the reverse direction when the pair is
/// dual-master; or why there is nothing to diagnose. `source` is the server the command line
/// named for the diagnosed channel (None: the address in the replica's status, with the
/// replica's credentials; see `topology`).
pub fn diagnose(
    spec: &ConnSpec,
    source: Option<&ConnSpec>,
    channel: Option<&str>,
) -> Result<Diagnosed> {
    diagnose_full(spec, source, channel, None, None)
}

/// `diagnose`, with each conflicting row's origin searched in both nodes' binary logs (within
/// `budget`) and the incident's cause classified.
pub fn diagnose_with_origin(
    spec: &ConnSpec,
    source: Option<&ConnSpec>,
    channel: Option<&str>,
    budget: crate::binlog::origin::Budget,
) -> Result<Diagnosed> {
    diagnose_full(spec, source, channel, Some(budget), None)
}

/// Runs on the diagnosis's own sessions (the replica's; the source's when reachable) once
/// both are open and before anything is read: a scripted repair takes its lock there, so
/// the one diagnosis it plans from is made under the lock (`repair::session`).
pub type Guard<'a> = dyn FnMut(&mut Server, Option<&mut Server>) -> Result<()> + 'a;

/// `diagnose` (no origin search), after `guard` ran on its sessions. The sessions are handed
/// on (`Server::release`) with whatever `guard` left on them.
pub fn diagnose_guarded(
    spec: &ConnSpec,
    source: Option<&ConnSpec>,
    channel: Option<&str>,
    guard: &mut Guard,
) -> Result<Diagnosed> {
    diagnose_full(spec, source, channel, None, Some(guard))
}

/// How the channel's source is reached: the server named on the command line, which stands
/// for the diagnosed channel whatever its address; else the address in the replica's status,
/// with the replica's credentials (`status::topology`).
fn source_spec(
    replica: &ConnSpec,
    report: &StatusReport,
    named: Option<&ConnSpec>,
    ch: &ChannelStatus,
) -> ConnSpec {
    let named = named.map(|s| Named::new(s, Some(&ch.name)));
    Topology::of(replica, report, named)
        .source_of(&ch.name)
        .cloned()
        .unwrap_or_else(|| replica.at(&ch.source_endpoint()))
}

fn diagnose_full(
    spec: &ConnSpec,
    named: Option<&ConnSpec>,
    channel: Option<&str>,
    origin_budget: Option<crate::binlog::origin::Budget>,
    guard: Option<&mut Guard>,
) -> Result<Diagnosed> {
    let mut replica = Server::connect(spec)?;
    let mut report = status::read_status(&mut replica)?;
    crate::timing::mark("replica's status read");
    let mut ch = match pick_channel(&report, channel)? {
        Ok(ch) => ch,
        Err(healthy) => return Ok(Diagnosed::Healthy(healthy)),
    };
    let source_spec = source_spec(&replica.spec, &report, named, &ch);
    let mut source = Server::connect(&source_spec);
    if let Some(guard) = guard {
        guard(&mut replica, source.as_mut().ok())?;
        // The status read before the guard may predate another run's repair: read again.
        let was = ch.source_endpoint();
        report = status::read_status(&mut replica)?;
        ch = match pick_channel(&report, Some(&ch.name))? {
            Ok(ch) => ch,
            Err(healthy) => return Ok(Diagnosed::Healthy(healthy)),
        };
        anyhow::ensure!(
            ch.source_endpoint() == was,
            "channel '{}' of {} changed its source to {} while it was being diagnosed",
            ch.name,
            spec.endpoint(),
            ch.source_endpoint()
        );
    }
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
    d.errant = crate::status::errant::find(&mut replica, &report, source.as_mut().ok());
    if let Some(budget) = origin_budget {
        origin::attach(
            &mut d,
            &mut replica,
            source.as_mut().ok(),
            &ch.filters,
            budget,
        );
        origin::mirror_to_reverse(&mut d);
        crate::timing::mark("origins searched");
    }
    // Only read on: the repair that usually follows takes them instead of connecting again.
    replica.release();
    if let Ok(src) = source {
        src.release();
    }
    Ok(Diagnosed::Stopped(Box::new(d)))
}

/// The origins and cause of an incident diagnosed earlier without them (`d`), searched now,
/// on sessions of its own (never the idle pool's, which may hold a repair's lock): `watch`
/// searches after it decided and acted, and a scripted repair beside its own reads, so that
/// neither is delayed. The writers are in the binary logs whatever a repair did since: a
/// repair writes rows with the binary log off (or leaves an errant GTID it said it would),
/// and a skip logs an empty transaction. The channel is found by name whether it runs again
/// or not; its source is `source` when given, else as the replica's status names it.
pub fn search_origins(
    d: &mut Diagnosis,
    spec: &ConnSpec,
    source: Option<&ConnSpec>,
    budget: crate::binlog::origin::Budget,
) -> Result<()> {
    let open = |s: &ConnSpec| Server::connect_with_timeout(s, std::time::Duration::from_secs(10));
    let mut replica = open(spec)?;
    let report = status::read_status(&mut replica)?;
    let ch = report
        .channels
        .iter()
        .find(|c| c.name == d.channel)
        .cloned()
        .ok_or_else(|| InspectError::NoSuchChannel(d.channel.clone()))?;
    let mut source = open(&source_spec(&replica.spec, &report, source, &ch)).ok();
    origin::attach(d, &mut replica, source.as_mut(), &ch.filters, budget);
    origin::mirror_to_reverse(d);
    crate::timing::mark("origins searched");
    Ok(())
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
    let full =
        || -> Result<Diagnosis> { Ok(diagnose(&spec, source_spec, Some(&d.channel))?.stopped()?) };
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

/// Whether `ch` is still stopped on `d`'s incident (the same error at the same place, by the
/// fingerprint); Some with the failing transaction's GTID (when known) if so.
fn same_stop(d: &Diagnosis, report: &StatusReport, ch: &ChannelStatus) -> Option<Option<Gtid>> {
    let err = ch.applier_error()?;
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
    (incident_fingerprint(report, ch, err, &parsed, gtid.as_ref()) == d.fingerprint).then_some(gtid)
}

/// `d` looked at again on the same channel; None when the incident is not the same any more.
fn refresh_channel(
    d: &Diagnosis,
    replica: &mut Server,
    report: &StatusReport,
    ch: &ChannelStatus,
    mut source: Option<&mut Server>,
) -> Result<Option<Diagnosis>> {
    let Some(gtid) = same_stop(d, report, ch) else {
        return Ok(None);
    };
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
        facts: replica_schema.facts(),
        auto_key,
        channel: ch.name.clone(),
        kind,
        error: ErrorFacts {
            errno: err.number,
            message: err.message.clone(),
            key_name: parsed.key_name.clone(),
            quoted_value: parsed.quoted_value.clone(),
            worker: parsed.worker,
            timestamp: err.timestamp.clone(),
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
        cause: None,
        missing,
        fingerprint,
    })
}
