//! The two server flavors and the replication topologies a sandbox can be wired as.

use std::str::FromStr;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavor {
    MariaDb,
    MySql,
}

pub const FLAVORS: [Flavor; 2] = [Flavor::MariaDb, Flavor::MySql];

impl std::fmt::Display for Flavor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Flavor::MariaDb => "mariadb",
            Flavor::MySql => "mysql",
        })
    }
}

impl FromStr for Flavor {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Flavor> {
        match s.trim() {
            "mariadb" => Ok(Flavor::MariaDb),
            "mysql" => Ok(Flavor::MySql),
            _ => bail!("unknown flavor {s:?} (mariadb or mysql)"),
        }
    }
}

impl Flavor {
    /// Prefix of binary log names: `maria1-bin`, `mysql2-bin`, like the seed incident.
    pub(crate) fn binlog_prefix(self) -> &'static str {
        match self {
            Flavor::MariaDb => "maria",
            Flavor::MySql => "mysql",
        }
    }
    pub(crate) fn replica_word(self) -> &'static str {
        match self {
            Flavor::MariaDb => "SLAVE",
            Flavor::MySql => "REPLICA",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Topology {
    /// n1 → n2 by binlog file and position.
    SourceReplica,
    /// n1 → n2 by GTID auto-positioning.
    SourceReplicaGtid,
    /// n1 ⇄ n2, GTID.
    DualMaster,
}

impl std::fmt::Display for Topology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Topology::SourceReplica => "source-replica",
            Topology::SourceReplicaGtid => "source-replica-gtid",
            Topology::DualMaster => "dual-master",
        })
    }
}

impl FromStr for Topology {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Topology> {
        match s.trim() {
            "source-replica" => Ok(Topology::SourceReplica),
            "source-replica-gtid" => Ok(Topology::SourceReplicaGtid),
            "dual-master" => Ok(Topology::DualMaster),
            _ => bail!("unknown topology {s:?} (source-replica, source-replica-gtid, dual-master)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names() {
        assert_eq!("mariadb".parse::<Flavor>().unwrap(), Flavor::MariaDb);
        assert_eq!(Flavor::MySql.to_string(), "mysql");
        for t in ["source-replica", "source-replica-gtid", "dual-master"] {
            assert_eq!(t.parse::<Topology>().unwrap().to_string(), t);
        }
        assert!("ring".parse::<Topology>().is_err());
    }
}
