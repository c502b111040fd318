//! `replmend resync`.

use anyhow::Result;

use super::Outcome;
use crate::cli::{Format, ResyncArgs};

pub fn run(_args: &ResyncArgs, _format: Format) -> Result<Outcome> {
    anyhow::bail!("resync is not built yet")
}
