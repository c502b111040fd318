//! Which channel failed and on what: the channel to diagnose, the applier error's conflict
//! class and the incident's fingerprint, a node's identity and read_only state, whether the
//! replica already executed a GTID, the MTA workers' positions, and the reverse direction of a
//! dual-master pair (the source's own channel from this replica).

use super::{InspectError, NoIncident, diagnose_channel, refresh_channel};
use crate::conn::Server;
use crate::diagnosis::*;
use crate::status::errortext::{ParsedError, Undiagnosable};
use crate::status::model::{ChannelStatus, ErrorInfo, Failure};
use crate::status::{self, Health, StatusReport};
use crate::vocab::{Gtid, MariadbGtidList};

/// The channel to diagnose (the one named, else the first stopped on an applier error), or
/// why there is none.
pub(super) fn pick_channel(
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

pub(super) fn node_ref(s: &mut Server) -> NodeRef {
    NodeRef {
        endpoint: s.spec.address(),
        flavor: s.flavor,
        server_id: s.server_id,
        server_uuid: s.server_uuid.clone(),
        read_only: read_only(s),
        capabilities: crate::capability::probe(s),
    }
}

/// The node's read_only / super_read_only (off when they cannot be read).
pub(super) fn read_only(s: &mut Server) -> ReadOnly {
    let query = crate::sql::Statement::plain(s.flavor.read_only_query());
    let flags: Option<(i64, i64)> = s.first(&query).ok().flatten();
    let (ro, sro) = flags.unwrap_or((0, 0));
    ReadOnly::from_flags(ro != 0, sro != 0)
}

/// The conflict class of an applier error, or why replmend cannot diagnose it.
pub(super) fn conflict_kind(
    err: &ErrorInfo,
    parsed: &ParsedError,
) -> Result<ConflictKind, InspectError> {
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

/// The last transaction boundary before the failed event that an applier worker reports:
/// a transaction a worker committed ended before the failing one began (transactions do
/// not overlap, and the failing one did not commit). None when the server keeps no such
/// positions or they cannot be read (no SELECT on mysql.slave_worker_info).
pub(super) fn closest_worker_boundary(
    replica: &mut Server,
    channel: &str,
    file: &str,
    failed_end_log_pos: u64,
) -> Option<u64> {
    let st = crate::sql::Statement::plain(replica.flavor.worker_positions_query()?)
        .params(vec![crate::value::Cell::Text(channel.to_string())]);
    let rows: Vec<(Option<String>, Option<u64>)> = replica.all(&st).ok()?;
    rows.into_iter()
        .filter_map(|(name, pos)| match (name?, pos?) {
            (name, pos) if name == file && pos < failed_end_log_pos => Some(pos),
            _ => None,
        })
        .max()
}

/// What identifies an incident: where the replica stopped and on what.
pub(super) fn incident_fingerprint(
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

/// Looks at the source's own replication: in a dual-master pair it replicates from this
/// replica, and may be stopped on the same key.
pub(super) fn reverse_channel(
    source: &mut Server,
    replica: &mut Server,
    d: &Diagnosis,
    previous: Option<&Diagnosis>,
) -> Option<ReverseChannel> {
    let report = status::read_status(source).ok()?;
    let ch = crate::status::topology::replicating_from(
        &report,
        &replica.spec.address(),
        replica.server_id,
    )?;
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

/// Whether the replica already counts this GTID as executed.
pub(super) fn gtid_executed_on(replica: &mut Server, gtid: &Gtid, slave_pos: Option<&str>) -> bool {
    match gtid {
        Gtid::Mysql { .. } => {
            let Some(check) = replica.flavor.gtid_executed_check(&gtid.to_string()) else {
                return false;
            };
            replica.first::<i64>(&check).ok().flatten() == Some(1)
        }
        Gtid::Mariadb { .. } => {
            MariadbGtidList::parse(slave_pos.unwrap_or("")).is_some_and(|pos| pos.contains(gtid))
        }
    }
}
