//! The fleet around a node: from any node, its sources (every channel) and the replicas that
//! replicate from it, and theirs in turn (a chain), to a depth limit — each node with its
//! health, lag and errant GTIDs (`replmend status --topology`).
//!
//! Replicas are found as the source sees them: `SHOW REPLICAS` / `SHOW SLAVE HOSTS` names each
//! registered replica's server_id and port, and its host when the replica sets `report_host`
//! (MariaDB fills in the connection's address itself). A replica listed without a host is
//! looked for at the address of each binlog dump thread in the processlist, and accepted
//! there only when that server's server_id is the one listed. A replica that cannot be
//! reached is named with why. Nodes are looked at level by level, the nodes of a level in
//! parallel, each connection with a deadline: one unreachable host does not hold up the rest.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Serialize;

use super::errant::Errant;
use super::model::{ChannelStatus, Health};
use super::read::{self, RowMap};
use crate::conn::{ConnSpec, Server};
use crate::vocab::Endpoint;

pub const FLEET_SCHEMA: &str = "replmend.topology/1";

/// How long connecting to one node, and each read from it, may take.
const CONNECT_DEADLINE: Duration = Duration::from_secs(5);

/// Every node found, in the order found (the start first).
#[derive(Debug, Clone, Serialize)]
pub struct Fleet {
    pub schema: &'static str,
    pub start: Endpoint,
    /// How many hops from the start were followed.
    pub depth: usize,
    pub nodes: Vec<FleetNode>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FleetNode {
    pub endpoint: Endpoint,
    pub server_id: Option<u32>,
    pub version: Option<String>,
    /// Why the node could not be looked at (None: it was).
    pub error: Option<String>,
    /// Hops from the start.
    pub hops: usize,
    /// Its replication channels: where it replicates from, and how that goes.
    pub channels: Vec<Channel>,
    /// The replicas that replicate from it, as it sees them.
    pub replicas: Vec<ReplicaSeen>,
    /// Transactions it executed that none of its sources has.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errant: Vec<Errant>,
}

/// One channel of a node.
#[derive(Debug, Clone, Serialize)]
pub struct Channel {
    pub name: String,
    pub source: Endpoint,
    pub source_server_id: Option<u32>,
    pub health: Health,
    pub seconds_behind: Option<u64>,
    /// The receiver's or applier's error, when stopped on one.
    pub error: Option<String>,
}

/// A replica as its source lists it.
#[derive(Debug, Clone, Serialize)]
pub struct ReplicaSeen {
    pub server_id: Option<u32>,
    /// Where it was found (None: not found, see `error`).
    pub endpoint: Option<Endpoint>,
    pub found_by: FoundBy,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FoundBy {
    /// `SHOW REPLICAS` / `SHOW SLAVE HOSTS` named its host and port (`report_host`).
    Registered,
    /// Registered without a host: found at a binlog dump thread's address, its server_id
    /// checked there.
    DumpThread,
    /// A binlog dump thread the replica list does not name: its address only.
    Unregistered,
}

impl FleetNode {
    /// The worst health of its channels (a node that replicates nothing is healthy).
    pub fn health(&self) -> Option<Health> {
        self.channels
            .iter()
            .map(|c| c.health)
            .max_by_key(|h| rank(*h))
    }
}

fn rank(h: Health) -> u8 {
    match h {
        Health::Healthy => 0,
        Health::NotRunning => 1,
        Health::IoError => 2,
        Health::SqlError => 3,
    }
}

impl Fleet {
    pub fn node(&self, at: &Endpoint) -> Option<&FleetNode> {
        self.nodes.iter().find(|n| n.endpoint == *at)
    }
}

/// The fleet around `start`, `depth` hops in every direction; every node is reached with
/// `start`'s credentials.
pub fn discover(start: &ConnSpec, depth: usize) -> Fleet {
    let mut fleet = Fleet {
        schema: FLEET_SCHEMA,
        start: start.address(),
        depth,
        nodes: Vec::new(),
    };
    let mut seen: BTreeSet<Endpoint> = BTreeSet::from([start.address()]);
    let mut level = vec![start.clone()];
    for hops in 0..=depth {
        let looked: Vec<FleetNode> = std::thread::scope(|s| {
            let handles: Vec<_> = level
                .iter()
                .map(|spec| s.spawn(|| look(spec, hops)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        let mut next = Vec::new();
        for node in &looked {
            for at in neighbours(node) {
                // The same server under another name (an IP, a hostname) is one node.
                let known_id = |id: Option<u32>| {
                    id.is_some() && fleet.nodes.iter().chain(&looked).any(|n| n.server_id == id)
                };
                if seen.insert(at.0.clone()) && !known_id(at.1) && hops < depth {
                    next.push(start.at(&at.0));
                }
            }
        }
        fleet.nodes.extend(looked);
        if next.is_empty() {
            break;
        }
        level = next;
    }
    fleet
}

/// The nodes next to `node`: its sources and its replicas found, with their server_ids.
fn neighbours(node: &FleetNode) -> Vec<(Endpoint, Option<u32>)> {
    let sources = node
        .channels
        .iter()
        .map(|c| (c.source.clone(), c.source_server_id.filter(|id| *id != 0)));
    let replicas = node
        .replicas
        .iter()
        .filter_map(|r| Some((r.endpoint.clone()?, r.server_id)));
    sources.chain(replicas).collect()
}

/// One node: its status, its replicas, its errant GTIDs.
fn look(spec: &ConnSpec, hops: usize) -> FleetNode {
    let mut node = FleetNode {
        endpoint: spec.address(),
        server_id: None,
        version: None,
        error: None,
        hops,
        channels: Vec::new(),
        replicas: Vec::new(),
        errant: Vec::new(),
    };
    let mut server = match Server::connect_within(spec, CONNECT_DEADLINE) {
        Ok(s) => s,
        Err(e) => {
            node.error = Some(e.to_string());
            return node;
        }
    };
    node.server_id = Some(server.server_id);
    node.version = Some(server.version_string.clone());
    match super::read_status(&mut server) {
        Ok(report) => {
            node.channels = report.channels.iter().map(channel).collect();
            node.errant = super::errant::find(&mut server, &report, None);
        }
        Err(super::StatusError::NotAReplica { .. }) => {}
        Err(e) => node.error = Some(e.to_string()),
    }
    node.replicas = replicas(&mut server, spec);
    node
}

fn channel(c: &ChannelStatus) -> Channel {
    Channel {
        name: c.name.clone(),
        source: c.source_endpoint(),
        source_server_id: c.source_server_id.filter(|id| *id != 0),
        health: c.health,
        seconds_behind: c.seconds_behind_source,
        error: c
            .applier_error()
            .or(c.last_io_error.as_ref())
            .map(|e| format!("error {}: {}", e.number, e.message)),
    }
}

/// The replicas `server` lists, each found where it can be, and the dump threads no listed
/// replica accounts for.
fn replicas(server: &mut Server, spec: &ConnSpec) -> Vec<ReplicaSeen> {
    let st = crate::sql::Statement::plain(server.flavor.show_replicas());
    let listed: Vec<Listed> = match read::query_maps(server, &st) {
        Ok(rows) => rows.iter().map(Listed::of).collect(),
        Err(e) => {
            return vec![ReplicaSeen {
                server_id: None,
                endpoint: None,
                found_by: FoundBy::Registered,
                error: Some(format!("its replicas could not be listed ({e})")),
            }];
        }
    };
    let dumps = dump_hosts(server);
    let mut out: Vec<ReplicaSeen> = listed.iter().map(|l| l.find(spec, &dumps)).collect();
    // A dump thread from a host no listed replica was found at (an old replica, or a
    // binlog reader such as a CDC tool): named, its port unknown.
    for host in &dumps {
        let accounted = out
            .iter()
            .any(|r| r.endpoint.as_ref().is_some_and(|e| e.host() == host));
        if !accounted {
            out.push(ReplicaSeen {
                server_id: None,
                endpoint: None,
                found_by: FoundBy::Unregistered,
                error: Some(format!(
                    "a binlog dump thread from {host} that no listed replica accounts for (a replica without report_port, or a binlog reader); its port is unknown"
                )),
            });
        }
    }
    out
}

/// The hosts binlog dump threads come from (the processlist; another account's threads need
/// the PROCESS privilege). Empty when they cannot be read.
fn dump_hosts(server: &mut Server) -> Vec<String> {
    let rows = read::query_maps(server, &crate::sql::admin::processlist()).unwrap_or_default();
    let mut hosts: Vec<String> = rows
        .iter()
        .filter(|r| field(r, "Command").is_some_and(|c| c.starts_with("Binlog Dump")))
        .filter_map(|r| field(r, "Host").map(host_part))
        .collect();
    hosts.sort();
    hosts.dedup();
    hosts
}

fn field<'a>(row: &'a RowMap, name: &str) -> Option<&'a str> {
    row.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_deref())
}

/// `10.0.0.5:41234` → `10.0.0.5`; `[::1]:41234` → `::1`.
fn host_part(host: &str) -> String {
    let h = match host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    };
    h.trim_start_matches('[').trim_end_matches(']').to_string()
}

/// A row of SHOW REPLICAS / SHOW SLAVE HOSTS.
struct Listed {
    server_id: Option<u32>,
    host: Option<String>,
    port: Option<u16>,
}

impl Listed {
    fn of(row: &RowMap) -> Listed {
        let num = |name: &str| field(row, name).and_then(|v| v.trim().parse().ok());
        Listed {
            server_id: num("Server_id"),
            host: field(row, "Host")
                .filter(|h| !h.is_empty())
                .map(String::from),
            port: num("Port").and_then(|p: u32| u16::try_from(p).ok()),
        }
    }

    /// Where this replica is: its reported host, or a dump thread's host whose server has
    /// the listed server_id.
    fn find(&self, creds: &ConnSpec, dumps: &[String]) -> ReplicaSeen {
        let seen = |endpoint, found_by, error| ReplicaSeen {
            server_id: self.server_id,
            endpoint,
            found_by,
            error,
        };
        let Some(port) = self.port.filter(|p| *p != 0) else {
            return seen(
                None,
                FoundBy::Registered,
                Some("listed without a port".into()),
            );
        };
        if let Some(host) = &self.host {
            return seen(Some(Endpoint::new(host, port)), FoundBy::Registered, None);
        }
        let mut tried = Vec::new();
        for host in dumps {
            let at = Endpoint::new(host, port);
            match Server::connect_within(&creds.at(&at), CONNECT_DEADLINE) {
                Ok(s) if Some(s.server_id) == self.server_id => {
                    return seen(Some(at), FoundBy::DumpThread, None);
                }
                Ok(s) => tried.push(format!("{at} is server_id {}", s.server_id)),
                Err(e) => tried.push(format!("{at}: {e}")),
            }
        }
        let why = match tried.is_empty() {
            true => "listed without report_host, and no binlog dump thread shows its address"
                .to_string(),
            false => format!(
                "listed without report_host; looked for at its dump thread's address: {}",
                tried.join("; ")
            ),
        };
        seen(None, FoundBy::DumpThread, Some(why))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dump_threads_host_is_its_address_without_the_port() {
        assert_eq!(host_part("10.0.0.5:41234"), "10.0.0.5");
        assert_eq!(host_part("[::1]:41234"), "::1");
        assert_eq!(host_part("db2.example"), "db2.example");
        assert_eq!(host_part("localhost"), "localhost");
    }

    #[test]
    fn a_listed_replica_without_a_host_or_a_dump_thread_is_named_with_why() {
        let row: RowMap = [("Server_id", "7"), ("Host", ""), ("Port", "3307")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), Some(v.to_string())))
            .collect();
        let l = Listed::of(&row);
        assert_eq!(
            (l.server_id, l.host.as_deref(), l.port),
            (Some(7), None, Some(3307))
        );
        let input = crate::conn::SpecInput {
            dsn: Some("mysql://u@127.0.0.1:1".into()),
            ..Default::default()
        };
        let creds = crate::conn::spec::resolve(&input, None).unwrap();
        let r = l.find(&creds, &[]);
        assert!(r.endpoint.is_none());
        assert!(r.error.unwrap().contains("report_host"));
    }
}
