//! Errant GTIDs: transactions executed on a replica that its source has not got — written
//! directly on the replica with its binlog on. They are what a later failover replays or
//! misses, and a 1062 they cause is not the source's doing.
//!
//! MySQL: GTID set arithmetic (`MysqlGtidSet::subtract`, what the server's `GTID_SUBTRACT`
//! does). MariaDB: per (domain, server_id) the last sequence number (`gtid_binlog_state`):
//! entries written under the replica's own server_id that the source's binlog state does not
//! reach. The arithmetic (`mysql`, `mariadb`) is pure; `find` reads the sets.

use crate::sql::admin;
use serde::Serialize;

use super::StatusReport;
use super::topology::Topology;
use crate::conn::Server;
use crate::vocab::{GtidSet, MariadbGtidList, MysqlGtidSet};

/// Errant transactions of a replica: executed there, on none of its sources.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Errant {
    /// The replica's channels (comma-separated).
    pub channel: String,
    /// The sources they are missing from (comma-separated endpoints).
    pub source: String,
    /// MySQL: a GTID set; MariaDB: `domain-server_id-seq` entries (up to seq). Serialized as
    /// the server writes it.
    pub gtids: GtidSet,
    /// MariaDB: what the sources have logged (binlog state, slave position, in flight): the
    /// errant transactions of an entry (domain, server_id, seq) are those after the sources'
    /// seq for that domain and server_id, up to seq. Not serialized.
    #[serde(skip)]
    pub sources_logged: Option<MariadbGtidList>,
}

/// MariaDB: the replica's own entries (written under its server_id) that the source's binlog
/// state does not reach.
pub fn mariadb(
    replica_state: &MariadbGtidList,
    replica_server_id: u32,
    source_state: &MariadbGtidList,
) -> MariadbGtidList {
    replica_state
        .from_server(replica_server_id)
        .subtract(source_state)
}

/// MySQL: what the replica executed that no source has, given per source what it executed
/// and what it received but has not applied yet (in flight).
pub fn mysql(
    replica_executed: &MysqlGtidSet,
    sources: &[(MysqlGtidSet, MysqlGtidSet)],
) -> MysqlGtidSet {
    sources
        .iter()
        .fold(replica_executed.clone(), |left, (executed, in_flight)| {
            left.subtract(executed).subtract(in_flight)
        })
}

// ---- I/O: reading the sets from the replica and its sources ------------------------------

/// Transactions executed on the replica that none of its sources has (on a multi-source
/// replica each source lacks the other's: only what all of them lack is errant). A source
/// that cannot be reached with the replica's credentials leaves the question open: nothing
/// is reported then. `open` is a session already open to one of the sources (the
/// diagnosis's), used instead of connecting again.
pub fn find(
    replica: &mut Server,
    report: &StatusReport,
    mut open: Option<&mut Server>,
) -> Vec<Errant> {
    // One channel (the first whose source it reaches) is served by `open` (None below); every
    // other channel gets a session of its own.
    let topology = Topology::of(&replica.spec, report, None);
    let mut owned: Vec<(String, Option<Server>)> = Vec::new();
    for link in &topology.links {
        let (ch, src_spec) = (&link.channel, &link.source);
        let served_by_open = open
            .as_ref()
            .is_some_and(|s| s.spec.address() == src_spec.address())
            && owned.iter().all(|(_, s)| s.is_some());
        let session = match served_by_open {
            true => None,
            false => match Server::connect(src_spec) {
                Ok(s) => Some(s),
                Err(_) => return Vec::new(),
            },
        };
        owned.push((ch.name.clone(), session));
    }
    let mut sources: Vec<(String, &mut Server)> = Vec::new();
    for (name, server) in owned.iter_mut() {
        let s = match server {
            Some(s) => s,
            None => open.take().expect("`open` serves one channel"),
        };
        sources.push((name.clone(), s));
    }
    if sources.is_empty() {
        return Vec::new();
    }
    let (gtids, sources_logged) = match replica.flavor.is_mariadb() {
        true => match mariadb_errant(replica, &mut sources, &topology) {
            Some((e, logged)) => (Some(GtidSet::Mariadb(e)), Some(logged)),
            None => (None, None),
        },
        false => (
            mysql_errant(replica, &mut sources, &topology).map(GtidSet::Mysql),
            None,
        ),
    };
    match gtids.filter(|g| !g.is_empty()) {
        Some(g) => vec![Errant {
            channel: sources
                .iter()
                .map(|(n, _)| n.clone())
                .collect::<Vec<_>>()
                .join(","),
            source: sources
                .iter()
                .map(|(_, s)| s.spec.endpoint())
                .collect::<Vec<_>>()
                .join(","),
            gtids: g,
            sources_logged,
        }],
        None => Vec::new(),
    }
}

/// MariaDB: what each source has of the replica's own writes: its binlog state, its
/// gtid_slave_pos (a transaction a repair skipped there is in it, not in its binlog) and, in
/// a dual-master pair, what its channel from this replica received and has not applied yet
/// (in flight, not errant).
fn mariadb_errant(
    replica: &mut Server,
    sources: &mut [(String, &mut Server)],
    topology: &Topology,
) -> Option<(MariadbGtidList, MariadbGtidList)> {
    let mine: String = replica.first(&admin::gtid_binlog_state()).ok()??;
    let mut theirs = MariadbGtidList::default();
    for (_, s) in sources.iter_mut() {
        let st: String = s.first(&admin::gtid_binlog_state_and_slave_pos()).ok()??;
        theirs = theirs.union(&MariadbGtidList::parse(&st)?);
        let in_flight = super::read_status(s)
            .ok()
            .and_then(|r| topology.reverse_in(&r).and_then(|c| c.gtid_io_pos.clone()));
        if let Some(pos) = in_flight {
            theirs = theirs.union(&MariadbGtidList::parse(&pos)?);
        }
    }
    let errant = mariadb(&MariadbGtidList::parse(&mine)?, replica.server_id, &theirs);
    Some((errant, theirs))
}

/// What the replica executed that each source has not, nor, in a dual-master pair, has
/// received from this replica but not applied yet (in flight).
fn mysql_errant(
    replica: &mut Server,
    sources: &mut [(String, &mut Server)],
    topology: &Topology,
) -> Option<MysqlGtidSet> {
    let mine: String = replica.first(&admin::gtid_executed()).ok()??;
    let mut theirs = Vec::new();
    for (_, source) in sources.iter_mut() {
        let executed: String = source.first(&admin::gtid_executed()).ok()??;
        let in_flight = super::read_status(source)
            .ok()
            .and_then(|r| {
                topology
                    .reverse_in(&r)
                    .and_then(|c| c.retrieved_gtid_set.clone())
            })
            .unwrap_or_default();
        theirs.push((
            MysqlGtidSet::parse(&executed)?,
            MysqlGtidSet::parse(&in_flight)?,
        ));
    }
    Some(mysql(&MysqlGtidSet::parse(&mine)?, &theirs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_replicas_own_writes_the_source_lacks_are_errant() {
        let l = |s: &str| MariadbGtidList::parse(s).unwrap();
        let errant = |r: &str, id: u32, s: &str| mariadb(&l(r), id, &l(s)).to_string();
        // Replica (server 2) wrote 0-2-7 locally; 0-1-100 came from the source.
        assert_eq!(errant("0-1-100,0-2-7", 2, "0-1-101"), "0-2-7");
        // Dual-master: the source applied (and logged) the replica's writes up to seq 7.
        assert_eq!(errant("0-1-100,0-2-7", 2, "0-1-101,0-2-7"), "");
        assert_eq!(errant("0-2-9,1-2-3", 2, "0-2-7"), "0-2-9,1-2-3");
        assert_eq!(errant("", 2, "0-1-1"), "");
    }

    #[test]
    fn what_no_source_executed_nor_has_in_flight_is_errant() {
        let s = |t: &str| MysqlGtidSet::parse(t).unwrap();
        let replica = s("a:1-10,b:1-5");
        // One source executed a:1-10 and b:1-3, and has b:4 in flight.
        let one = [(s("a:1-10,b:1-3"), s("b:4"))];
        assert_eq!(mysql(&replica, &one).to_string(), "b:5");
        // Multi-source: each lacks the other's; only what both lack is errant.
        let two = [(s("a:1-10"), s("")), (s("b:1-4"), s(""))];
        assert_eq!(mysql(&replica, &two).to_string(), "b:5");
        assert!(mysql(&replica, &[(s("a:1-10,b:1-5"), s(""))]).is_empty());
    }
}
