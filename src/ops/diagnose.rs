//! `replmend diagnose`: the inspector's diagnosis, rendered. A replica with nothing to
//! diagnose (no channel stopped on an applier error) still gets a report: healthy, with the
//! errant GTIDs it holds, which a DBA asking "why" wants named.

use std::fmt::Write as _;

use anyhow::Result;
use serde::Serialize;

use super::Outcome;
use crate::cli::{DiagnoseArgs, Format};
use crate::conn::{ConnSpec, Server};
use crate::diagnosis::render;
use crate::exit;
use crate::inspect::Diagnosed;
use crate::status::errant::{self, Errant};

/// `replmend.diagnose-healthy/1`: no incident; what the replica holds that no source has.
#[derive(Serialize)]
struct Healthy {
    schema: &'static str,
    replica: String,
    message: String,
    /// 0, as the document that said "nothing to diagnose" before this one carried it.
    exit_code: u8,
    errant: Vec<Errant>,
}

pub fn run(args: &DiagnoseArgs, format: Format) -> Result<Outcome> {
    let spec = super::connect::replica_spec(&args.replica)?;
    let source = super::connect::source_spec(args.source.as_deref(), &spec)?;
    match crate::inspect::diagnose_with_origin(
        &spec,
        source.as_ref(),
        args.channel.as_deref(),
        args.origin_budget,
    )? {
        Diagnosed::Stopped(diagnosis) => Ok(Outcome {
            output: super::render(format, &*diagnosis, render::text),
            code: exit::REPLICATION_ERROR,
        }),
        Diagnosed::Healthy(why) => {
            // Why there is nothing to diagnose goes to stderr, as every "nothing to do" does.
            eprintln!("replmend: {why}");
            let report = healthy(&spec, why.to_string())?;
            Ok(Outcome {
                output: super::render(format, &report, healthy_text),
                code: exit::OK,
            })
        }
    }
}

fn healthy(spec: &ConnSpec, message: String) -> Result<Healthy> {
    let mut server = Server::connect(spec)?;
    let status = crate::status::read_status(&mut server)?;
    Ok(Healthy {
        schema: "replmend.diagnose-healthy/1",
        replica: spec.endpoint(),
        message,
        exit_code: exit::OK,
        errant: errant::find(&mut server, &status, None),
    })
}

fn healthy_text(h: &Healthy) -> String {
    let mut out = String::new();
    if h.errant.is_empty() {
        out.push_str("no errant GTIDs: every transaction executed here came from a source\n");
    }
    for e in &h.errant {
        let _ = writeln!(
            out,
            "errant GTIDs {} (executed here, on no source: {}): written on this replica directly; `replmend repair --remedy inject-errant` (MySQL) or see `replmend status`",
            e.gtids, e.source
        );
    }
    out
}
