//! The last look before a repair acts on a diagnosis it made under its own lock: the lock
//! keeps other replmend runs out, not a DBA or a failover tool. So, just before the preflight,
//! one status read per node confirms that nothing a plan's control steps rely on moved since
//! the diagnosis: the replica is stopped on the same incident, its GTID position and the
//! failing transaction's state are the same, neither node's read_only changed, and the other
//! direction of a pair is as it was. The rows themselves are checked by the row steps (each
//! read FOR UPDATE and compared with the diagnosed version).

use anyhow::Result;

use super::channel::{gtid_executed_on, pick_channel, read_only};
use super::same_stop;
use crate::conn::Server;
use crate::diagnosis::Diagnosis;
use crate::status::{self, Health};
use crate::vocab::{Gtid, MariadbGtidList, ReadOnly};

/// None when the replica (and its source, when reachable) are as `d` saw them; else what
/// changed, in words.
pub fn what_changed(
    d: &Diagnosis,
    replica: &mut Server,
    source: Option<&mut Server>,
) -> Result<Option<String>> {
    let report = status::read_status(replica)?;
    let here = replica.spec.endpoint();
    let Ok(ch) = pick_channel(&report, Some(&d.channel))? else {
        return Ok(Some(format!(
            "channel '{}' of {here} is no longer stopped on an error",
            d.channel
        )));
    };
    let Some(gtid) = same_stop(d, &report, &ch) else {
        return Ok(Some(format!(
            "channel '{}' of {here} is stopped somewhere else now",
            d.channel
        )));
    };
    let now = report.server.gtid_slave_pos.as_deref();
    if domain_pos(now, gtid.as_ref()) != domain_pos(d.gtid_slave_pos.as_deref(), gtid.as_ref()) {
        return Ok(Some(format!("gtid_slave_pos of {here} moved")));
    }
    let executed = gtid
        .as_ref()
        .is_some_and(|g| gtid_executed_on(replica, g, report.server.gtid_slave_pos.as_deref()));
    if executed != d.transaction_executed {
        return Ok(Some(format!(
            "the failing transaction's GTID was added to {here}'s executed set"
        )));
    }
    if read_only(replica) != d.replica.read_only {
        return Ok(Some(format!("read_only of {here} changed")));
    }
    match (source, &d.source) {
        (Some(src), Some(seen)) => source_changed(d, replica, src, seen.read_only),
        _ => Ok(None),
    }
}

/// The source's read_only and the other direction of a pair, against the diagnosis.
fn source_changed(
    d: &Diagnosis,
    replica: &mut Server,
    src: &mut Server,
    seen: ReadOnly,
) -> Result<Option<String>> {
    let there = src.spec.endpoint();
    if read_only(src) != seen {
        return Ok(Some(format!("read_only of {there} changed")));
    }
    let before = d.reverse.as_ref().filter(|r| r.dual_master);
    // A source that replicates from nothing (the usual case) has no status to compare.
    let report = match status::read_status(src) {
        Ok(report) => report,
        Err(_) if before.is_none() => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let now = crate::status::topology::replicating_from(
        &report,
        &replica.spec.address(),
        replica.server_id,
    );
    let same = match (before, now) {
        (None, None) => true,
        (None, Some(ch)) => ch.health != Health::SqlError,
        (Some(_), None) => false,
        (Some(r), Some(ch)) => match r.diagnosis.as_deref() {
            Some(rd) => same_stop(rd, &report, ch).is_some(),
            None => {
                (ch.health != Health::Healthy) == r.stopped
                    && ch.applier_error().map(|e| e.number) == r.errno
            }
        },
    };
    Ok((!same).then(|| format!("the other direction ({there}'s channel) changed")))
}

/// A MariaDB gtid_slave_pos as it concerns the incident: the failing transaction's domain
/// only, since another connection of a multi-source replica may go on applying its own
/// domain meanwhile. Nothing without the transaction's MariaDB GTID: no plan then sets the
/// position (a skip by GTID needs it), and the stop itself is compared by its fingerprint.
fn domain_pos(pos: Option<&str>, gtid: Option<&Gtid>) -> Option<Vec<Gtid>> {
    let Some(Gtid::Mariadb { domain, .. }) = gtid else {
        return None;
    };
    let list = MariadbGtidList::parse(pos.unwrap_or(""))?;
    Some(
        list.iter()
            .filter(|g| matches!(g, Gtid::Mariadb { domain: d, .. } if d == domain))
            .collect(),
    )
}
