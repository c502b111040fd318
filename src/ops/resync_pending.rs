//! What may still be on its way between a resync's nodes: rows a receiver has not received,
//! or an applier has not applied, look missing, extra or different, and writing over them
//! loses or duplicates them. Checked before anything is read or planned.

use std::time::Duration;

use anyhow::Result;

use super::resync::Fix;
use crate::conn::Server;
use crate::exit::{self, Coded};
use crate::verify::Pair;

/// Why the channels between the nodes may not have carried every write yet, if they may
/// not: the replica does not replicate from the source itself, or a receiver between them is
/// not receiving. Rows a node wrote that the other has not received look missing, extra or
/// different there, and resync would overwrite them: a replica would get rows its applier
/// inserts again later (1062), and in a dual-master pair the replica would lose its own
/// newest rows.
fn receivers(pair: &Pair, source: &mut Server, replica: &mut Server) -> Result<Option<String>> {
    if !pair.channel_from_source {
        return Ok(Some(format!(
            "{} does not replicate from {}: rows on their way to it through another server would be overwritten; resync it against its own source",
            pair.replica.endpoint(),
            pair.source.endpoint()
        )));
    }
    let directions = [
        (replica, pair.replica_channel.as_deref()),
        (source, pair.source_channel.as_deref()),
    ];
    for (server, name) in directions {
        let Some(name) = name else {
            continue;
        };
        let channels = crate::status::read_channels(server)?;
        let Some(c) = channels.iter().find(|c| c.name == name && !c.receiving()) else {
            continue;
        };
        let what = crate::verify::replication::stopped(c).unwrap_or_default();
        let fix = match c.io_thread {
            crate::status::model::ThreadState::Connecting => "fix its connection",
            _ => "start it",
        };
        return Ok(Some(format!(
            "{}'s replication from {} is not receiving ({what}): rows written there may not have reached it, and resync would overwrite them; {fix} and let it catch up",
            server.spec.endpoint(),
            c.source_endpoint()
        )));
    }
    Ok(None)
}

/// What a dry run adds to a warning a real run would refuse on.
const WOULD_REFUSE: &str = "without --dry-run resync refuses (--allow-pending-relay writes anyway)";

/// How long a running applier that is behind is waited for before rows are read.
const APPLIER_WAIT: Duration = Duration::from_secs(60);

/// Every node resync may write (the replica; the source too in a dual-master pair) must have
/// nothing on its way: a running applier is waited for; one stopped with events still in its
/// relay log refuses the resync (unless --allow-pending-relay), or is a warning of a dry run.
/// Returns the warnings, and the facts found (nodes with nothing on its way).
pub(super) fn appliers(
    fix: &Fix,
    pair: &Pair,
    source: &mut Server,
    replica: &mut Server,
) -> Result<(Vec<String>, Vec<String>)> {
    let mut warnings = Vec::new();
    if let Some(why) = receivers(pair, source, replica)? {
        warnings.push(pending(fix, why)?);
    }
    let mut written = vec![replica];
    if pair.dual_master() {
        written.push(source);
    }
    let mut settled = Vec::new();
    for server in written {
        let Some(why) = crate::repair::preflight::appliers_settled(server, APPLIER_WAIT)? else {
            settled.push(format!(
                "{}: every applier caught up, nothing pending in its relay log",
                server.spec.endpoint()
            ));
            continue;
        };
        warnings.push(pending(fix, why)?);
    }
    Ok((warnings, settled))
}

/// Rows may be on their way (`why`): a refusal, unless --allow-pending-relay (then a
/// warning) or a dry run (a warning that says a real run refuses).
fn pending(fix: &Fix, why: String) -> Result<String> {
    match (fix.allow_pending_relay, fix.dry_run) {
        (true, _) => Ok(why),
        (false, true) => Ok(format!("{why}; {WOULD_REFUSE}")),
        (false, false) => Err(Coded(
            exit::REFUSED,
            format!("{why}; nothing was changed (--allow-pending-relay writes anyway)"),
        )
        .into()),
    }
}
