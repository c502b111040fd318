use anyhow::Result;

use super::Outcome;
use crate::cli::{Format, StatusArgs};
use crate::conn::Server;
use crate::exit;
use crate::status::errant;
use crate::status::{self, Health};

pub fn run(args: &StatusArgs, format: Format) -> Result<Outcome> {
    let spec = super::connect::replica_spec(&args.replica)?;
    let mut server = Server::connect(&spec)?;
    let mut report = status::read_status(&mut server)?;
    // Errant transactions are judged against every source, before any channel is set aside:
    // on a multi-source replica one source's transactions are not errant for lacking on another.
    report.errant = errant::find(&mut server, &report, None);
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
