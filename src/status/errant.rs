//! Errant GTIDs: transactions executed on a replica that its source has not got — written
//! directly on the replica with its binlog on. They are what a later failover replays or
//! misses, and a 1062 they cause is not the source's doing.
//!
//! MySQL: GTID set arithmetic, done by the server (`GTID_SUBTRACT`). MariaDB: per
//! (domain, server_id) the last sequence number (`gtid_binlog_state`): entries written under
//! the replica's own server_id that the source's binlog state does not reach.

use mysql::prelude::Queryable;
use serde::Serialize;

use super::StatusReport;
use crate::conn::{ConnSpec, Server};

/// Errant transactions of a replica: executed there, on none of its sources.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Errant {
    /// The replica's channels (comma-separated).
    pub channel: String,
    /// The sources they are missing from (comma-separated endpoints).
    pub source: String,
    /// MySQL: a GTID set; MariaDB: `domain-server_id-seq` entries (up to seq).
    pub gtids: String,
}

/// `domain-server-seq` entries of a MariaDB GTID list.
fn entries(list: &str) -> Vec<(u32, u32, u64)> {
    list.split(',')
        .filter_map(|e| {
            let mut p = e.trim().split('-');
            Some((
                p.next()?.parse().ok()?,
                p.next()?.parse().ok()?,
                p.next()?.parse().ok()?,
            ))
        })
        .collect()
}

/// MariaDB: the replica's own entries (written under its server_id) that the source's binlog
/// state does not reach.
pub fn mariadb(replica_state: &str, replica_server_id: u32, source_state: &str) -> Vec<String> {
    let source = entries(source_state);
    entries(replica_state)
        .into_iter()
        .filter(|(_, s, _)| *s == replica_server_id)
        .filter(|(d, s, n)| {
            !source
                .iter()
                .any(|(sd, ss, sn)| sd == d && ss == s && sn >= n)
        })
        .map(|(d, s, n)| format!("{d}-{s}-{n}"))
        .collect()
}

// ---- I/O: reading the sets from the replica and its sources ------------------------------

/// Transactions executed on the replica that none of its sources has (on a multi-source
/// replica each source lacks the other's: only what all of them lack is errant). A source
/// that cannot be reached with the replica's credentials leaves the question open: nothing
/// is reported then. `open` is a session already open to one of the sources (the
/// diagnosis's), used instead of connecting again.
pub fn find(
    replica: &mut Server,
    spec: &ConnSpec,
    report: &StatusReport,
    mut open: Option<&mut Server>,
) -> Vec<Errant> {
    // One channel (the first whose source it reaches) is served by `open` (None below); every
    // other channel gets a session of its own.
    let mut owned: Vec<(String, Option<Server>)> = Vec::new();
    for ch in &report.channels {
        let Ok(src_spec) = crate::conn::other_spec(None, spec, &ch.source_host, ch.source_port)
        else {
            return Vec::new();
        };
        let served_by_open = open
            .as_ref()
            .is_some_and(|s| s.spec.endpoint() == src_spec.endpoint())
            && owned.iter().all(|(_, s)| s.is_some());
        let session = match served_by_open {
            true => None,
            false => match Server::connect(&src_spec) {
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
    let gtids = match replica.flavor.is_mariadb() {
        true => mariadb_errant(replica, &mut sources, spec),
        false => mysql_errant(replica, &mut sources, spec),
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
    spec: &ConnSpec,
) -> Option<String> {
    let mine: String = replica
        .conn
        .query_first("SELECT @@global.gtid_binlog_state")
        .ok()??;
    let mut theirs = Vec::new();
    for (_, s) in sources.iter_mut() {
        let st: String = s
            .conn
            .query_first(
                "SELECT CONCAT_WS(',', @@global.gtid_binlog_state, @@global.gtid_slave_pos)",
            )
            .ok()??;
        theirs.push(st);
        let in_flight = super::read_status(s).ok().and_then(|r| {
            r.channels
                .into_iter()
                .find(|c| c.source_port == spec.port)
                .and_then(|c| c.gtid_io_pos)
        });
        theirs.extend(in_flight);
    }
    Some(mariadb(&mine, replica.server_id, &theirs.join(",")).join(","))
}

/// GTID_SUBTRACT, on the replica, of what each source executed and, in a dual-master pair,
/// what the source has received from this replica but not applied yet (in flight).
fn mysql_errant(
    replica: &mut Server,
    sources: &mut [(String, &mut Server)],
    spec: &ConnSpec,
) -> Option<String> {
    let mut left: String = replica
        .conn
        .query_first("SELECT @@GLOBAL.gtid_executed")
        .ok()??;
    for (_, source) in sources.iter_mut() {
        let executed: String = source
            .conn
            .query_first("SELECT @@GLOBAL.gtid_executed")
            .ok()??;
        let in_flight = super::read_status(source)
            .ok()
            .and_then(|r| {
                r.channels
                    .into_iter()
                    .find(|c| c.source_port == spec.port)
                    .and_then(|c| c.retrieved_gtid_set)
            })
            .unwrap_or_default();
        left = replica
            .conn
            .exec_first(
                "SELECT GTID_SUBTRACT(GTID_SUBTRACT(?, ?), ?)",
                (left, executed, in_flight),
            )
            .ok()??;
    }
    Some(left)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_replicas_own_writes_the_source_lacks_are_errant() {
        // Replica (server 2) wrote 0-2-7 locally; 0-1-100 came from the source.
        assert_eq!(mariadb("0-1-100,0-2-7", 2, "0-1-101"), vec!["0-2-7"]);
        // Dual-master: the source applied (and logged) the replica's writes up to seq 7.
        assert!(mariadb("0-1-100,0-2-7", 2, "0-1-101,0-2-7").is_empty());
        assert_eq!(mariadb("0-2-9,1-2-3", 2, "0-2-7"), vec!["0-2-9", "1-2-3"]);
        assert!(mariadb("", 2, "0-1-1").is_empty());
    }
}
