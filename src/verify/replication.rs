//! How the replica replicated from the source while verify ran: read when it begins and again
//! when it ends. Anything but a running channel from the source itself means verify cannot
//! wait for lag, so rows not applied yet count as drift: the report says so and why.

use anyhow::Result;

use super::Pair;
use super::model::{Replication, Report};
use crate::conn::Server;
use crate::status::filters::Filters;
use crate::status::model::{ChannelStatus, ThreadState};

/// The replica's channel from the source as verify begins: its replication state and the
/// filters of both directions (a dual-master pair's reverse channel too).
pub(super) fn at_start(pair: &Pair) -> Result<(Replication, Option<String>, Vec<Filters>)> {
    let mut r = Server::connect(&pair.replica)?;
    let report = crate::status::read_status(&mut r)?;
    let ch = channel(pair, &report.channels);
    let (state, why) = judge(pair, ch);
    let mut filters: Vec<Filters> = ch.map(|c| c.filters.clone()).into_iter().collect();
    if let Some(back) = &pair.source_channel {
        let mut s = Server::connect(&pair.source)?;
        let report = crate::status::read_status(&mut s)?;
        filters.extend(
            report
                .channels
                .iter()
                .filter(|c| &c.name == back)
                .map(|c| c.filters.clone()),
        );
    }
    filters.retain(|f| !f.is_empty());
    Ok((state, why, filters))
}

/// The pair's channel on the replica, among `channels`.
fn channel<'c>(pair: &Pair, channels: &'c [ChannelStatus]) -> Option<&'c ChannelStatus> {
    let name = pair.replica_channel.as_ref()?;
    channels.iter().find(|c| &c.name == name)
}

/// The state of the pair's channel and, when it is not running from the source, the
/// report's warning.
fn judge(pair: &Pair, ch: Option<&ChannelStatus>) -> (Replication, Option<String>) {
    let (r, s) = (pair.replica.endpoint(), pair.source.endpoint());
    let Some(c) = ch else {
        return (
            Replication::NoChannel,
            Some(format!(
                "{r} has no replication channel: rows it lacks count as drift"
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

/// What of the channel is not running, and its error; None when both threads run.
fn stopped(c: &ChannelStatus) -> Option<String> {
    let thread =
        |name: &str, state: ThreadState, err: Option<&crate::status::model::ErrorInfo>| match (
            state, err,
        ) {
            (ThreadState::Running, _) => None,
            (ThreadState::Connecting, _) => Some(format!("its {name} is reconnecting")),
            (_, Some(e)) => Some(format!(
                "its {name} stopped on error {}: {}",
                e.number,
                one_line(&e.message)
            )),
            (_, None) => Some(format!("its {name} is stopped")),
        };
    let parts: Vec<String> = [
        thread("receiver", c.io_thread, c.last_io_error.as_ref()),
        thread("applier", c.sql_thread, c.applier_error()),
    ]
    .into_iter()
    .flatten()
    .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// An error message on one line, cut to a length a warning can carry.
fn one_line(message: &str) -> String {
    let flat = message.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(160) {
        Some((i, _)) => format!("{}…", &flat[..i]),
        None => flat,
    }
}

/// Records the state found at the start in the report.
pub(super) fn record(report: &mut Report, state: Replication, why: Option<String>) {
    report.not_replicating = matches!(state, Replication::Stopped | Replication::NoChannel);
    report.replication = Some(state);
    report.warnings.extend(why);
}

/// Reads the channel again as verify ends: one that ran at the start and stopped since left
/// rows unapplied that counted as drift, so the report says so (a status that cannot be
/// read leaves the report as it is: the comparison itself stands).
pub(super) fn at_end(pair: &Pair, report: &mut Report) {
    if report.replication != Some(Replication::Running) {
        return;
    }
    let Ok(mut r) = Server::connect(&pair.replica) else {
        return;
    };
    let Ok(channels) = crate::status::read_channels(&mut r) else {
        return;
    };
    let what = match channel(pair, &channels) {
        Some(c) => stopped(c),
        None => Some("its channel is gone".to_string()),
    };
    r.release();
    if let Some(what) = what {
        report.replication = Some(Replication::StoppedDuring);
        report.not_replicating = true;
        report.warnings.push(format!(
            "{}'s replication from {} stopped during the verify ({what}): rows it had not applied by then count as drift",
            pair.replica.endpoint(),
            pair.source.endpoint()
        ));
    }
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
