use anyhow::Result;
use mysql::prelude::Queryable;

use super::Outcome;
use crate::cli::{Format, StatusArgs};
use crate::conn::{ConnSpec, Server};
use crate::exit;
use crate::status::errant::{self, Errant};
use crate::status::{self, Health, StatusReport};

pub fn run(args: &StatusArgs, format: Format) -> Result<Outcome> {
    let spec = super::connect::replica_spec(&args.replica)?;
    let mut server = Server::connect(&spec)?;
    let mut report = status::read_status(&mut server)?;
    report.errant = errant_gtids(&mut server, &spec, &report);
    let code = match report.overall() {
        Health::Healthy => exit::OK,
        Health::SqlError => exit::REPLICATION_ERROR,
        Health::IoError | Health::NotRunning => exit::NOT_RUNNING,
    };
    Ok(Outcome {
        output: super::render(format, &report, status::render::text),
        code,
    })
}

/// Transactions executed on the replica that none of its sources has (on a multi-source
/// replica each source lacks the other's: only what all of them lack is errant). A source
/// that cannot be reached with the replica's credentials leaves the question open: nothing
/// is reported then.
fn errant_gtids(replica: &mut Server, spec: &ConnSpec, report: &StatusReport) -> Vec<Errant> {
    let mut sources = Vec::new();
    for ch in &report.channels {
        let Ok(src_spec) = crate::conn::other_spec(None, spec, &ch.source_host, ch.source_port)
        else {
            return Vec::new();
        };
        let Ok(source) = Server::connect(&src_spec) else {
            return Vec::new();
        };
        sources.push((ch.name.clone(), source));
    }
    if sources.is_empty() {
        return Vec::new();
    }
    let gtids = match replica.flavor.is_mariadb() {
        true => mariadb_errant(replica, &mut sources),
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

fn mariadb_errant(replica: &mut Server, sources: &mut [(String, Server)]) -> Option<String> {
    let state = "SELECT @@global.gtid_binlog_state";
    let mine: String = replica.conn.query_first(state).ok()??;
    let mut theirs = Vec::new();
    for (_, s) in sources.iter_mut() {
        let st: String = s.conn.query_first(state).ok()??;
        theirs.push(st);
    }
    Some(errant::mariadb(&mine, replica.server_id, &theirs.join(",")).join(","))
}

/// GTID_SUBTRACT, on the replica, of what each source executed and, in a dual-master pair,
/// what the source has received from this replica but not applied yet (in flight).
fn mysql_errant(
    replica: &mut Server,
    sources: &mut [(String, Server)],
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
        let in_flight = status::read_status(source)
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
