//! Where a server sits in replication: the sources it replicates from (one link per channel),
//! how each is reached, and whether a source replicates back (a dual-master pair).
//!
//! Every command that needs "the source" or "the other node" asks here, so the rules are
//! stated once: a source named on the command line (`--source`, resolved in `ops`) stands for
//! the channel it matches; every other source is reached at the address the replica's status
//! names, with the replica's own credentials; and two nodes form a pair when each replicates
//! from the other by `ChannelStatus::replicates_from`.
//!
//! Callers: inspect (the diagnosed channel's source), verify (`Pair`), repair (the other
//! direction, the nodes a plan touches), status (errant GTIDs per channel), ops (errant,
//! restore). Depends on `conn` and the rest of `status`.

use crate::conn::{ConnSpec, Server};
use crate::status::model::{ChannelStatus, StatusReport};
use crate::vocab::Endpoint;

/// One replication channel of a server and how to reach its source.
#[derive(Debug, Clone)]
pub struct Link {
    pub channel: ChannelStatus,
    pub source: ConnSpec,
    /// The source is the one named on the command line.
    pub named: bool,
}

/// A server's sources, as its status names them.
#[derive(Debug, Clone)]
pub struct Topology {
    /// The server looked at (a replica, usually).
    pub node: ConnSpec,
    pub server_id: u32,
    /// One per channel, in the order the server lists them.
    pub links: Vec<Link>,
}

/// A source named on the command line (`--source`): the channel it stands for is the one
/// named (`--channel`), else the one replicating from its address, else the only one.
#[derive(Debug, Clone, Copy)]
pub struct Named<'a> {
    pub source: &'a ConnSpec,
    pub channel: Option<&'a str>,
    /// The named source's server_id, when a session to it is open already.
    pub server_id: Option<u32>,
}

impl<'a> Named<'a> {
    pub fn new(source: &'a ConnSpec, channel: Option<&'a str>) -> Named<'a> {
        Named {
            source,
            channel,
            server_id: None,
        }
    }
}

impl Topology {
    /// The links of `report`, the status of the server at `node`. Pure: nothing is connected
    /// to.
    pub fn of(node: &ConnSpec, report: &StatusReport, named: Option<Named<'_>>) -> Topology {
        let node = node.clone();
        let taker = named.and_then(|n| n.channel_in(report));
        let links = report
            .channels
            .iter()
            .enumerate()
            .map(|(i, ch)| {
                let named = named.filter(|_| taker == Some(i));
                Link {
                    channel: ch.clone(),
                    source: match named {
                        Some(n) => n.source.clone(),
                        None => node.at(&ch.source_endpoint()),
                    },
                    named: named.is_some(),
                }
            })
            .collect();
        Topology {
            node,
            server_id: report.server.server_id,
            links,
        }
    }

    /// Reads `server`'s status and its links.
    pub fn read(server: &mut Server, named: Option<Named<'_>>) -> anyhow::Result<Topology> {
        let report = crate::status::read_status(server)?;
        Ok(Topology::of(&server.spec, &report, named))
    }

    pub fn link(&self, channel: &str) -> Option<&Link> {
        self.links.iter().find(|l| l.channel.name == channel)
    }

    /// How `channel`'s source is reached.
    pub fn source_of(&self, channel: &str) -> Option<&ConnSpec> {
        self.link(channel).map(|l| &l.source)
    }

    /// The channel of `source` (its status) that replicates from this node: Some makes the two
    /// a dual-master pair. The one place that question is answered.
    pub fn reverse_in<'r>(&self, source: &'r StatusReport) -> Option<&'r ChannelStatus> {
        replicating_from(source, &self.node.address(), self.server_id)
    }

    /// The other node of a dual-master pair this node is in, with the channel each side
    /// replicates on: (link here, the peer's channel back). Sources that cannot be reached
    /// are passed over (unknown is not a pair).
    pub fn dual_master_peer(&self) -> Option<(&Link, ChannelStatus)> {
        self.links.iter().find_map(|l| {
            let mut s = Server::connect(&l.source).ok()?;
            let back = crate::status::read_status(&mut s).ok()?;
            self.reverse_in(&back).cloned().map(|c| (l, c))
        })
    }
}

/// The channel of `report` (a source's status) replicating from the server at `at` with
/// `server_id`: the reverse direction of a dual-master pair, when there is one.
pub fn replicating_from<'r>(
    report: &'r StatusReport,
    at: &Endpoint,
    server_id: u32,
) -> Option<&'r ChannelStatus> {
    report
        .channels
        .iter()
        .find(|c| c.replicates_from(at, Some(server_id)))
}

impl Named<'_> {
    /// The index of the channel in `report` this named source stands for.
    fn channel_in(&self, report: &StatusReport) -> Option<usize> {
        let chans = &report.channels;
        if let Some(name) = self.channel {
            return chans.iter().position(|c| c.name == name);
        }
        let at = self.source.address();
        chans
            .iter()
            .position(|c| c.replicates_from(&at, self.server_id))
            .or((chans.len() == 1).then_some(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::model::ServerInfo;

    fn channel(name: &str, host: &str, port: u16, source_id: u32) -> ChannelStatus {
        let row = [
            ("Channel_Name", name.to_string()),
            ("Source_Host", host.to_string()),
            ("Source_Port", port.to_string()),
            ("Source_Server_Id", source_id.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), Some(v)))
        .collect();
        crate::status::read::channel_from_row(&row)
    }

    fn report(channels: Vec<ChannelStatus>) -> StatusReport {
        StatusReport {
            schema: "test",
            server: ServerInfo {
                endpoint: Endpoint::new("10.0.0.2", 3306),
                flavor: crate::flavor::Flavor::parse("9.7.0").unwrap(),
                version: "9.7.0".into(),
                server_id: 2,
                server_uuid: None,
                gtid_mode: None,
                gtid_executed: None,
                gtid_slave_pos: None,
            },
            channels,
            errant: Vec::new(),
            capabilities: None,
        }
    }

    fn spec(dsn: &str) -> ConnSpec {
        let input = crate::conn::SpecInput {
            dsn: Some(dsn.into()),
            ..Default::default()
        };
        crate::conn::spec::resolve(&input, None).unwrap()
    }

    fn sources(t: &Topology) -> Vec<String> {
        t.links.iter().map(|l| l.source.endpoint()).collect()
    }

    #[test]
    fn each_source_is_reached_with_the_replicas_credentials_at_its_status_address() {
        let replica = spec("mysql://repl:pw@10.0.0.2:3306");
        let r = report(vec![
            channel("a", "10.0.0.1", 3306, 1),
            channel("b", "10.0.0.3", 3306, 3),
        ]);
        let t = Topology::of(&replica, &r, None);
        assert_eq!(sources(&t), ["10.0.0.1:3306", "10.0.0.3:3306"]);
        assert!(t.links.iter().all(|l| l.source.user == "repl" && !l.named));
    }

    // --source stands for the channel named, else the one replicating from it (by server_id
    // when known: a hostname and an IP are one server), else the only one.
    #[test]
    fn a_named_source_stands_for_one_channel() {
        let replica = spec("mysql://repl:pw@10.0.0.2:3306");
        let named = spec("mysql://admin@db3.example:3306");
        let two = report(vec![
            channel("a", "10.0.0.1", 3306, 1),
            channel("b", "10.0.0.3", 3306, 3),
        ]);
        let by_name = Topology::of(&replica, &two, Some(Named::new(&named, Some("b"))));
        assert_eq!(sources(&by_name), ["10.0.0.1:3306", "db3.example:3306"]);
        let by_id = Named {
            server_id: Some(3),
            ..Named::new(&named, None)
        };
        let t = Topology::of(&replica, &two, Some(by_id));
        assert!(t.link("b").unwrap().named && !t.link("a").unwrap().named);
        // Matching nothing among two: no channel takes it (replmend does not guess).
        let t = Topology::of(&replica, &two, Some(Named::new(&named, None)));
        assert!(t.links.iter().all(|l| !l.named));
        let one = report(vec![channel("", "10.0.0.1", 3306, 1)]);
        let t = Topology::of(&replica, &one, Some(Named::new(&named, None)));
        assert_eq!(sources(&t), ["db3.example:3306"]);
    }

    #[test]
    fn the_reverse_direction_is_found_by_server_id_then_address() {
        let replica = spec("mysql://repl:pw@10.0.0.2:3306");
        let t = Topology::of(&replica, &report(vec![]), None);
        // The source's status: it replicates from 10.0.0.2 under another name, server_id 2.
        let back = report(vec![channel("x", "db2.example", 3306, 2)]);
        assert_eq!(t.reverse_in(&back).unwrap().name, "x");
        let other = report(vec![channel("y", "10.0.0.2", 3306, 9)]);
        assert!(
            t.reverse_in(&other).is_none(),
            "same address, another server"
        );
        let unseen = report(vec![channel("z", "10.0.0.2", 3306, 0)]);
        assert_eq!(t.reverse_in(&unseen).unwrap().name, "z");
    }
}
