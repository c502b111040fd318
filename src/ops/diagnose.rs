//! `replmend diagnose`: the inspector's diagnosis, rendered.

use anyhow::Result;

use super::Outcome;
use crate::cli::{DiagnoseArgs, Format};
use crate::diagnosis::render;
use crate::exit;

pub fn run(args: &DiagnoseArgs, format: Format) -> Result<Outcome> {
    let spec = super::connect::replica_spec(&args.replica)?;
    let diagnosis =
        crate::inspect::diagnose(&spec, args.source.as_deref(), args.channel.as_deref())?;
    Ok(Outcome {
        output: super::render(format, &diagnosis, render::text),
        code: exit::REPLICATION_ERROR,
    })
}
