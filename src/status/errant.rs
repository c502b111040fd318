//! Errant GTIDs: transactions executed on a replica that its source has not got — written
//! directly on the replica with its binlog on. They are what a later failover replays or
//! misses, and a 1062 they cause is not the source's doing.
//!
//! MySQL: GTID set arithmetic, done by the server (`GTID_SUBTRACT`). MariaDB: per
//! (domain, server_id) the last sequence number (`gtid_binlog_state`): entries written under
//! the replica's own server_id that the source's binlog state does not reach.

use serde::Serialize;

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
