//! How the replica replicated from the source while verify ran: read when it begins and again
//! when it ends. Anything but a running channel from the source itself means verify cannot
//! wait for lag, so rows not applied yet count as drift: the report says so and why.

use anyhow::Result;

use super::Pair;
use super::model::{Replication, Report};
use crate::conn::Server;
use crate::status::filters::Filters;
use crate::status::model::{ChannelStatus, ErrorInfo, ThreadState};

/// The replica's channel from the source as verify begins: its replication state, the
/// warnings, and the filters of both directions. In a dual-master pair the source's channel
/// from the replica is judged too: rows written on the replica that the source has not
/// applied count as drift as well.
pub(super) fn at_start(pair: &Pair) -> Result<(Replication, Vec<String>, Vec<Filters>)> {
    let mut r = Server::connect(&pair.replica)?;
    let report = crate::status::read_status(&mut r)?;
    let ch = channel(&report.channels, pair.replica_channel.as_deref());
    let (mut state, why) = judge(pair, ch);
    let mut warnings: Vec<String> = why.into_iter().collect();
    let mut filters: Vec<Filters> = ch.map(|c| c.filters.clone()).into_iter().collect();
    if let Some(back) = &pair.source_channel {
        let mut s = Server::connect(&pair.source)?;
        let report = crate::status::read_status(&mut s)?;
        let c = channel(&report.channels, Some(back));
        filters.extend(c.map(|c| c.filters.clone()));
        if let Some(what) = c.map_or(Some(GONE.to_string()), stopped) {
            state = Replication::Stopped;
            warnings.push(format!(
                "{}'s replication from {} is not running ({what}): rows written on {} that it has not applied yet count as drift",
                pair.source.endpoint(),
                pair.replica.endpoint(),
                pair.replica.endpoint()
            ));
        }
    }
    filters.retain(|f| !f.is_empty());
    Ok((state, warnings, filters))
}

const GONE: &str = "its channel is gone";

/// The channel named `name` among `channels`.
fn channel<'c>(channels: &'c [ChannelStatus], name: Option<&str>) -> Option<&'c ChannelStatus> {
    channels.iter().find(|c| Some(c.name.as_str()) == name)
}

/// The state of the pair's channel and, when it is not running from the source, the
/// report's warning.
fn judge(pair: &Pair, ch: Option<&ChannelStatus>) -> (Replication, Option<String>) {
    let (r, s) = (pair.replica.endpoint(), pair.source.endpoint());
    let Some(c) = ch else {
        return (
            Replication::Stopped,
            Some(format!(
                "{r}'s replication from {s} is not running ({GONE}): rows it lacks count as drift"
            )),
        );
    };
    if !pair.channel_from_source {
        return (
            Replication::OtherSource,
            Some(format!(
                "{r} replicates from {}, not from {s}: verify cannot wait for it to catch up with {s}, so rows not there yet count as drift",
                c.source_endpoint()
            )),
        );
    }
    // A source named at another address than the channel's: the warning names both.
    let reads = match c.source_endpoint() == pair.source.address() {
        true => String::new(),
        false => format!(", its channel reading from {}", c.source_endpoint()),
    };
    match stopped(c) {
        None => (Replication::Running, None),
        Some(what) => (
            Replication::Stopped,
            Some(format!(
                "{r}'s replication from {s} is not running ({what}{reads}): rows it has not applied yet count as drift"
            )),
        ),
    }
}

/// What of the channel is not running, with its error; None when both threads run (a
/// receiver reconnecting without an error yet runs: the connection just dropped).
pub(crate) fn stopped(c: &ChannelStatus) -> Option<String> {
    let error = |e: &ErrorInfo| format!("error {}: {}", e.number, one_line(&e.message));
    let receiver = match (c.receiving(), c.io_thread, c.last_io_error.as_ref()) {
        (true, ..) => None,
        (false, ThreadState::Connecting, Some(e)) => {
            Some(format!("its receiver is reconnecting ({})", error(e)))
        }
        (false, _, Some(e)) => Some(format!("its receiver stopped on {}", error(e))),
        (false, _, None) => Some("its receiver is stopped".to_string()),
    };
    let applier = match (c.sql_thread, c.applier_error()) {
        (ThreadState::Running, _) => None,
        (_, Some(e)) => Some(format!("its applier stopped on {}", error(e))),
        (_, None) => Some("its applier is stopped".to_string()),
    };
    let parts: Vec<String> = [receiver, applier].into_iter().flatten().collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// An error message on one line, cut to a length a warning can carry.
pub(crate) fn one_line(message: &str) -> String {
    let flat = message.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(160) {
        Some((i, _)) => format!("{}…", &flat[..i]),
        None => flat,
    }
}

/// Records the state found at the start in the report.
pub(super) fn record(report: &mut Report, state: Replication, warnings: Vec<String>) {
    report.replication = Some(state);
    report.warnings.extend(warnings);
}

/// Reads the channels again as verify ends. One that ran at the start and has stopped since,
/// or that a catch-up found not running on the way (stopped and started again: the rows
/// compared meanwhile were not waited for), may have left rows unapplied that counted as
/// drift, so the report says so. A direction whose status cannot be read now is passed over
/// (the comparison itself stands).
pub(super) fn at_end(pair: &Pair, report: &mut Report) {
    if report.replication != Some(Replication::Running) {
        return;
    }
    let mut what: Vec<String> = Vec::new();
    let directions = [
        (&pair.replica, pair.replica_channel.as_deref()),
        (&pair.source, pair.source_channel.as_deref()),
    ];
    for (node, name) in directions {
        let Some(now) = name.and_then(|name| state_now(node, name)) else {
            continue;
        };
        what.extend(now.map(|w| format!("on {}: {w}", node.endpoint())));
    }
    if what.is_empty() && pair.stopped_seen.load(std::sync::atomic::Ordering::Relaxed) {
        what.push("found stopped by a catch-up wait, running again by the end".to_string());
    }
    if what.is_empty() {
        return;
    }
    report.replication = Some(Replication::StoppedDuring);
    report.warnings.push(format!(
        "replication between {} and {} stopped during the verify ({}): rows not applied while it was stopped may have counted as drift",
        pair.source.endpoint(),
        pair.replica.endpoint(),
        what.join("; ")
    ));
}

/// What of channel `name` on `node` is not running now (`stopped`); None when its status
/// cannot be read.
fn state_now(node: &crate::conn::ConnSpec, name: &str) -> Option<Option<String>> {
    let mut server = Server::connect(node).ok()?;
    let channels = crate::status::read_channels(&mut server).ok()?;
    server.release();
    Some(channel(&channels, Some(name)).map_or(Some(GONE.to_string()), stopped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_error_is_kept_on_one_short_line() {
        assert_eq!(one_line("a\n  b\tc"), "a b c");
        let long = "é".repeat(200);
        assert_eq!(one_line(&long).chars().count(), 161);
    }
}
