//! The replicas of one source a fleet verify compares: the ones named (`--replica` repeated),
//! or, with the source alone, every replica the source lists (`status::fleet`'s discovery:
//! `SHOW REPLICAS` / `SHOW SLAVE HOSTS` and the binlog dump threads), reached with the
//! source's credentials. A replica that cannot be reached, or that does not replicate from
//! this source, is kept with why: a fleet report names it as not compared.

use std::time::Duration;

use anyhow::Result;

use super::Pair;
use super::model::NotCompared;
use crate::conn::{ConnSpec, Server};

/// The pairs to verify (all of one source) and the replicas that cannot be compared.
#[derive(Debug)]
pub struct Fleet {
    pub source: ConnSpec,
    pub pairs: Vec<Pair>,
    pub not_compared: Vec<NotCompared>,
}

/// Why the replicas of a fleet cannot be compared at all.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error(
        "{node} lists no replicas (SHOW REPLICAS and its binlog dump threads name none): name them with --replica"
    )]
    NoReplicas { node: crate::vocab::Endpoint },
    #[error(
        "the replicas named replicate from different sources ({0}): name the one to compare them with as --source"
    )]
    SourcesDiffer(String),
}

/// Every replica `source` lists, each paired with it.
pub fn discover(source: &ConnSpec) -> Result<Fleet> {
    // Reached first with the usual errors (unreachable, access denied): without the source
    // there is no fleet.
    Server::connect(source)?;
    let found = crate::status::fleet::discover(source, 0);
    let listed = found
        .nodes
        .into_iter()
        .next()
        .map(|n| n.replicas)
        .unwrap_or_default();
    if listed.is_empty() {
        return Err(FleetError::NoReplicas {
            node: source.address(),
        }
        .into());
    }
    let mut fleet = Fleet {
        source: source.clone(),
        pairs: Vec::new(),
        not_compared: Vec::new(),
    };
    for seen in listed {
        let paired = match (&seen.endpoint, &seen.error) {
            (Some(at), None) => {
                reach(&source.at(at), source).map_err(|e| crate::describe::message(&e))
            }
            (_, Some(why)) => Err(why.clone()),
            (None, None) => Err("listed without an address".into()),
        };
        match paired {
            Ok(pair) => fleet.pairs.push(pair),
            Err(error) => fleet.not_compared.push(NotCompared {
                replica: seen.endpoint,
                server_id: seen.server_id,
                error,
            }),
        }
    }
    // In the order of their addresses: the same fleet reads the same every time.
    fleet.pairs.sort_by_key(|p| p.replica.address());
    Ok(fleet)
}

/// How long a discovered replica may take to answer before it is named as not compared: a
/// frozen one (it accepts connections and answers nothing) must not hold up the fleet.
const REACH_DEADLINE: Duration = Duration::from_secs(5);

/// A discovered replica paired with its source, once it answered within the deadline.
fn reach(replica: &ConnSpec, source: &ConnSpec) -> Result<Pair> {
    Server::connect_within(replica, REACH_DEADLINE)?;
    Pair::between(replica, Some(source.clone()))
}

/// The replicas named, each with `source` (None: the source in its status; then they must
/// all name the same one).
pub fn named(replicas: &[ConnSpec], source: Option<&ConnSpec>) -> Result<Fleet> {
    let mut pairs = Vec::new();
    let mut not_compared = Vec::new();
    let mut first_error = None;
    for r in replicas {
        match Pair::of_replica(r, source) {
            Ok(p) => pairs.push(p),
            Err(e) => {
                not_compared.push(NotCompared {
                    replica: Some(r.address()),
                    server_id: None,
                    error: crate::describe::message(&e),
                });
                first_error.get_or_insert(e);
            }
        }
    }
    let mut sources: Vec<String> = pairs.iter().map(|p| p.source.endpoint()).collect();
    sources.sort();
    sources.dedup();
    if sources.len() > 1 {
        return Err(FleetError::SourcesDiffer(sources.join(", ")).into());
    }
    let source = match (source, pairs.first(), first_error) {
        (Some(s), _, _) => s.clone(),
        (None, Some(p), _) => p.source.clone(),
        // Not one replica reached, no source named: the first one's error says why.
        (None, None, Some(e)) => return Err(e),
        (None, None, None) => anyhow::bail!("no replica named"),
    };
    Ok(Fleet {
        source,
        pairs,
        not_compared,
    })
}
