//! The two server flavors (SQL dialects), the server builds that speak them, and the
//! replication topologies a sandbox can be wired as.

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

    /// `STOP`/`START` (`verb`) of one channel's threads (`threads`: "", " IO_THREAD" or
    /// " SQL_THREAD"); `channel` "" is the default channel (MySQL) / connection (MariaDB).
    pub(crate) fn replication(self, verb: &str, threads: &str, channel: &str) -> String {
        match (self, channel) {
            (_, "") => format!("{verb} {}{threads}", self.replica_word()),
            (Flavor::MariaDb, c) => format!("{verb} SLAVE {}{threads}", quote(c)),
            (Flavor::MySql, c) => format!("{verb} REPLICA{threads} FOR CHANNEL {}", quote(c)),
        }
    }

    /// The status row of one channel ("" the default one).
    pub(crate) fn show_status(self, channel: &str) -> String {
        match (self, channel) {
            (_, "") => format!("SHOW {} STATUS", self.replica_word()),
            (Flavor::MariaDb, c) => format!("SHOW SLAVE {} STATUS", quote(c)),
            (Flavor::MySql, c) => format!("SHOW REPLICA STATUS FOR CHANNEL {}", quote(c)),
        }
    }
}

/// A string literal (channel names).
pub(crate) fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// A server build a sandbox can run: where its programs come from. Each build speaks one
/// [`Flavor`]'s dialect; [`Sandbox::start`](crate::Sandbox::start) runs a flavor's default
/// build ([`Build::from`]), [`Sandbox::start_build`](crate::Sandbox::start_build) any build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Build {
    /// MariaDB from the host's apt (10.11 on Debian bookworm): flavor `mariadb`.
    #[serde(rename = "mariadb")]
    Host,
    /// MariaDB 11.8 (Debian trixie) in its own debootstrap chroot, with the server's default
    /// settings (`binlog_legacy_event_pos=OFF`): flavor `mariadb`.
    #[serde(rename = "mariadb-11.8")]
    MariaDb118,
    /// MariaDB 10.5 (Debian bullseye) in its own debootstrap chroot, with the server's default
    /// settings: flavor `mariadb`.
    #[serde(rename = "mariadb-10.5")]
    MariaDb105,
    /// Oracle MySQL (Debian sid, 9.7) in its debootstrap chroot: flavor `mysql`.
    #[serde(rename = "mysql")]
    MySql,
}

pub const BUILDS: [Build; 4] = [
    Build::Host,
    Build::MariaDb118,
    Build::MariaDb105,
    Build::MySql,
];

impl Build {
    /// The SQL dialect this build speaks.
    pub fn flavor(self) -> Flavor {
        match self {
            Build::Host | Build::MariaDb118 | Build::MariaDb105 => Flavor::MariaDb,
            Build::MySql => Flavor::MySql,
        }
    }
}

/// A flavor's default build: the host's MariaDB, or MySQL in its chroot.
impl From<Flavor> for Build {
    fn from(flavor: Flavor) -> Build {
        match flavor {
            Flavor::MariaDb => Build::Host,
            Flavor::MySql => Build::MySql,
        }
    }
}

impl std::fmt::Display for Build {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Build::Host => "mariadb",
            Build::MariaDb118 => "mariadb-11.8",
            Build::MariaDb105 => "mariadb-10.5",
            Build::MySql => "mysql",
        })
    }
}

impl FromStr for Build {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Build> {
        match s.trim() {
            "mariadb" | "host" | "mariadb-10.11" => Ok(Build::Host),
            "mariadb-11.8" => Ok(Build::MariaDb118),
            "mariadb-10.5" => Ok(Build::MariaDb105),
            "mysql" => Ok(Build::MySql),
            _ => bail!("unknown build {s:?} (mariadb, mariadb-11.8, mariadb-10.5 or mysql)"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Topology {
    /// n1 → n2 by binlog file and position.
    SourceReplica,
    /// n1 → n2 by GTID auto-positioning.
    SourceReplicaGtid,
    /// n1 ⇄ n2, GTID.
    DualMaster,
    /// n1 → n3 and n2 → n3 on two named channels (MySQL) / connections (MariaDB), `n1` and
    /// `n2`, GTID; n1 and n2 do not replicate. Three nodes.
    MultiSource,
    /// One source and N replicas of it: n1 → n2 … n(N+1), GTID (`fan-out-N`, N from 1 to
    /// `FAN_OUT_MAX`).
    FanOut(u32),
    /// n1 → n2 → n3: n2 is a relay (a replica of n1 that n3 replicates from), GTID.
    Chain,
}

/// The most replicas a `fan-out-N` sandbox starts.
pub const FAN_OUT_MAX: u32 = 32;

impl TryFrom<String> for Topology {
    type Error = anyhow::Error;
    fn try_from(s: String) -> Result<Topology> {
        s.parse()
    }
}

impl From<Topology> for String {
    fn from(t: Topology) -> String {
        t.to_string()
    }
}

impl Topology {
    /// How many servers the topology runs.
    pub fn nodes(self) -> u32 {
        match self {
            Topology::MultiSource | Topology::Chain => 3,
            Topology::FanOut(n) => n + 1,
            _ => 2,
        }
    }
}

impl std::fmt::Display for Topology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Topology::SourceReplica => f.write_str("source-replica"),
            Topology::SourceReplicaGtid => f.write_str("source-replica-gtid"),
            Topology::DualMaster => f.write_str("dual-master"),
            Topology::MultiSource => f.write_str("multi-source"),
            Topology::FanOut(n) => write!(f, "fan-out-{n}"),
            Topology::Chain => f.write_str("chain"),
        }
    }
}

impl FromStr for Topology {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Topology> {
        match s.trim() {
            "source-replica" => Ok(Topology::SourceReplica),
            "source-replica-gtid" => Ok(Topology::SourceReplicaGtid),
            "dual-master" => Ok(Topology::DualMaster),
            "multi-source" => Ok(Topology::MultiSource),
            "chain" => Ok(Topology::Chain),
            other => match other.strip_prefix("fan-out-").map(str::parse::<u32>) {
                Some(Ok(n)) if (1..=FAN_OUT_MAX).contains(&n) => Ok(Topology::FanOut(n)),
                _ => bail!(
                    "unknown topology {s:?} (source-replica, source-replica-gtid, dual-master, multi-source, chain, fan-out-N with N from 1 to {FAN_OUT_MAX})"
                ),
            },
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
        for t in [
            "source-replica",
            "source-replica-gtid",
            "dual-master",
            "multi-source",
            "chain",
            "fan-out-20",
        ] {
            assert_eq!(t.parse::<Topology>().unwrap().to_string(), t);
            let json = serde_json::to_string(&t.parse::<Topology>().unwrap()).unwrap();
            assert_eq!(json, format!("\"{t}\""));
        }
        assert_eq!(Topology::MultiSource.nodes(), 3);
        assert_eq!(Topology::DualMaster.nodes(), 2);
        assert_eq!(Topology::FanOut(20).nodes(), 21);
        assert!("fan-out-0".parse::<Topology>().is_err());
        assert!("fan-out-x".parse::<Topology>().is_err());
    }

    #[test]
    fn channel_statements() {
        let m = Flavor::MariaDb;
        let y = Flavor::MySql;
        assert_eq!(
            m.replication("STOP", " IO_THREAD", ""),
            "STOP SLAVE IO_THREAD"
        );
        assert_eq!(y.replication("START", "", ""), "START REPLICA");
        assert_eq!(
            m.replication("STOP", " IO_THREAD", "n1"),
            "STOP SLAVE 'n1' IO_THREAD"
        );
        assert_eq!(
            y.replication("START", " IO_THREAD", "n2"),
            "START REPLICA IO_THREAD FOR CHANNEL 'n2'"
        );
        assert_eq!(m.show_status(""), "SHOW SLAVE STATUS");
        assert_eq!(m.show_status("n1"), "SHOW SLAVE 'n1' STATUS");
        assert_eq!(
            y.show_status("it's"),
            "SHOW REPLICA STATUS FOR CHANNEL 'it''s'"
        );
        assert!("ring".parse::<Topology>().is_err());
        for b in BUILDS {
            assert_eq!(b.to_string().parse::<Build>().unwrap(), b);
            let json = serde_json::to_string(&b).unwrap();
            assert_eq!(json, format!("\"{b}\""));
        }
        assert_eq!("host".parse::<Build>().unwrap(), Build::Host);
        assert_eq!(Build::MariaDb118.flavor(), Flavor::MariaDb);
        assert_eq!(Build::MariaDb105.flavor(), Flavor::MariaDb);
        assert_eq!("mariadb-10.5".parse::<Build>().unwrap(), Build::MariaDb105);
        assert!("mariadb-10.6".parse::<Build>().is_err());
        for f in FLAVORS {
            assert_eq!(Build::from(f).flavor(), f);
        }
    }
}
