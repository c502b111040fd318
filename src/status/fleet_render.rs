//! The fleet as a tree, in text: each source with the replicas that replicate from it under
//! it (a chain nests), every node with its health, lag and errant GTIDs; a dual-master pair
//! shows the way back as a note instead of looping.

use std::fmt::Write;

use super::fleet::{Channel, Fleet, FleetNode};
use super::model::Health;
use crate::vocab::Endpoint;

pub fn text(fleet: &Fleet) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "topology around {} ({} node(s), {} hop(s) followed)",
        fleet.start,
        fleet.nodes.len(),
        fleet.depth
    );
    let mut drawn: Vec<Endpoint> = Vec::new();
    for root in roots(fleet) {
        draw(fleet, root, None, "", "", &mut drawn, &mut out);
    }
    // Nodes only a cycle reaches (both sides of a dual-master pair replicate): from the first.
    while let Some(n) = fleet.nodes.iter().find(|n| !drawn.contains(&n.endpoint)) {
        draw(fleet, n, None, "", "", &mut drawn, &mut out);
    }
    for n in &fleet.nodes {
        for r in n.replicas.iter().filter(|r| r.endpoint.is_none()) {
            let id = r
                .server_id
                .map(|i| format!("server_id {i} "))
                .unwrap_or_default();
            let why = r.error.as_deref().unwrap_or("not found");
            let _ = writeln!(out, "note: a replica {id}of {}: {why}", n.endpoint);
        }
    }
    out
}

/// Nodes that replicate from no node of the fleet.
fn roots(fleet: &Fleet) -> Vec<&FleetNode> {
    fleet
        .nodes
        .iter()
        .filter(|n| !n.channels.iter().any(|c| source_in(fleet, c).is_some()))
        .collect()
}

/// The node of the fleet a channel replicates from.
fn source_in<'f>(fleet: &'f Fleet, c: &Channel) -> Option<&'f FleetNode> {
    fleet
        .nodes
        .iter()
        .find(|n| match (c.source_server_id, n.server_id) {
            (Some(a), Some(b)) => a == b,
            _ => n.endpoint == c.source,
        })
}

/// The nodes replicating from `node`, each with the channel they do it on.
/// The nodes replicating from `node`, each with the channel they do it on, by server_id.
fn children<'f>(fleet: &'f Fleet, node: &FleetNode) -> Vec<(&'f FleetNode, &'f Channel)> {
    let mut kids: Vec<(&FleetNode, &Channel)> = fleet
        .nodes
        .iter()
        .filter_map(|n| {
            let c = n
                .channels
                .iter()
                .find(|c| source_in(fleet, c).is_some_and(|s| s.endpoint == node.endpoint))?;
            Some((n, c))
        })
        .collect();
    kids.sort_by_key(|(n, _)| (n.server_id, n.endpoint.clone()));
    kids
}

fn draw(
    fleet: &Fleet,
    node: &FleetNode,
    via: Option<&Channel>,
    lead: &str,
    rest: &str,
    drawn: &mut Vec<Endpoint>,
    out: &mut String,
) {
    if drawn.contains(&node.endpoint) {
        let _ = writeln!(
            out,
            "{lead}{} (shown above: replicates both ways)",
            node.endpoint
        );
        return;
    }
    drawn.push(node.endpoint.clone());
    let _ = writeln!(out, "{lead}{}", line(node, via));
    let kids = children(fleet, node);
    for (i, (child, ch)) in kids.iter().enumerate() {
        let last = i + 1 == kids.len();
        let (l, r) = if last {
            ("└─ ", "   ")
        } else {
            ("├─ ", "│  ")
        };
        draw(
            fleet,
            child,
            Some(ch),
            &format!("{rest}{l}"),
            &format!("{rest}{r}"),
            drawn,
            out,
        );
    }
}

/// `127.0.0.1:3307  server_id 2  9.7.0  healthy, 0 s behind  errant: …`
fn line(node: &FleetNode, via: Option<&Channel>) -> String {
    let mut s = node.endpoint.to_string();
    if let Some(id) = node.server_id {
        let _ = write!(s, "  server_id {id}");
    }
    if let Some(v) = &node.version {
        let _ = write!(s, "  {v}");
    }
    if let Some(e) = &node.error {
        let _ = write!(s, "  UNREACHABLE: {e}");
        return s;
    }
    match via {
        Some(c) => {
            let _ = write!(s, "  {}", channel_words(c));
        }
        None if node.channels.is_empty() => s.push_str("  (replicates from nothing)"),
        None => {}
    }
    // Channels from sources outside the drawing (another source of a multi-source replica).
    for c in node
        .channels
        .iter()
        .filter(|c| via.is_none_or(|v| v.name != c.name))
    {
        let _ = write!(s, "  [from {}: {}]", c.source, channel_words(c));
    }
    for e in &node.errant {
        let _ = write!(s, "  errant GTIDs: {}", e.gtids);
    }
    s
}

fn channel_words(c: &Channel) -> String {
    let name = match c.name.as_str() {
        "" => String::new(),
        n => format!("channel '{n}' "),
    };
    let state = match c.health {
        Health::Healthy => match c.seconds_behind {
            Some(s) => format!("healthy, {s} s behind"),
            None => "healthy".to_string(),
        },
        Health::SqlError => "APPLIER STOPPED".to_string(),
        Health::IoError => "RECEIVER STOPPED".to_string(),
        Health::NotRunning => "not running".to_string(),
    };
    match &c.error {
        Some(e) => format!("{name}{state} ({e})"),
        None => format!("{name}{state}"),
    }
}
