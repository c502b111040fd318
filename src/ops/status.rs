use anyhow::Result;

use super::Outcome;
use crate::cli::{Format, StatusArgs};
use crate::conn::Server;
use crate::exit;
use crate::status::errant;
use crate::status::{self, Health};

pub fn run(args: &StatusArgs, format: Format) -> Result<Outcome> {
    let spec = super::connect::replica_spec(&args.replica)?;
    if args.topology {
        return Ok(topology(&spec, args.depth, format));
    }
    let mut server = Server::connect(&spec)?;
    let mut report = status::read_status(&mut server)?;
    // Errant transactions are judged against every source, before any channel is set aside:
    // on a multi-source replica one source's transactions are not errant for lacking on another.
    report.errant = errant::find(&mut server, &report, None);
    let caps = crate::capability::probe(&mut server);
    // The TLS warning's facts: only on a managed MySQL 8.4+ replica, where it is given.
    let newer = !server.flavor.is_mariadb()
        && server.flavor.version >= crate::flavor::Version::new(8, 4, 0);
    if caps.provider != crate::flavor::Provider::None && newer {
        status::auth::read_plugins(&server, &mut report);
    }
    report.capabilities = Some(caps);
    if let Some(name) = &args.channel {
        report
            .retain_channel(name)
            .map_err(|e| crate::exit::Coded(exit::BAD_INPUT, e))?;
    }
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

/// `status --topology`: the fleet around the node. The exit code is the worst of its nodes: an
/// applier stopped on an error anywhere, else a node unreachable or a channel not running.
fn topology(spec: &crate::conn::ConnSpec, depth: usize, format: Format) -> Outcome {
    let fleet = status::fleet::discover(spec, depth);
    let worst = fleet
        .nodes
        .iter()
        .filter_map(|n| n.health())
        .fold(Health::Healthy, |a, h| match (a, h) {
            (Health::SqlError, _) | (_, Health::SqlError) => Health::SqlError,
            (Health::Healthy, h) => h,
            (a, _) => a,
        });
    let unreachable = fleet.nodes.iter().any(|n| n.error.is_some());
    let code = match (worst, unreachable) {
        (Health::SqlError, _) => exit::REPLICATION_ERROR,
        (Health::Healthy, false) => exit::OK,
        _ => exit::NOT_RUNNING,
    };
    Outcome {
        output: super::render(format, &fleet, status::fleet_render::text),
        code,
    }
}
