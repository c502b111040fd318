//! Replica lag: the guard that pauses a walk while a replica lags more than --max-lag, and
//! the catch-up wait after which a difference still there is not lag but drift.

use std::time::{Duration, Instant};

use anyhow::Result;

use super::walk::Walk;
use super::{Options, Pair};
use crate::conn::Server;

/// Pauses while any replica lags more than --max-lag (checked at most once a second), each
/// watched on a connection of its own.
pub(super) struct LagGuard {
    pub(super) max: Option<Duration>,
    /// Each replica watched: its channel from the source and the connection to it.
    pub(super) replicas: Vec<(String, Server)>,
    pub(super) last: Option<Instant>,
}

impl LagGuard {
    pub(super) fn new(pairs: &[&Pair], opts: &Options) -> Result<LagGuard> {
        let mut replicas = Vec::new();
        if opts.max_lag.is_some() {
            for p in pairs {
                if let Some(ch) = &p.replica_channel {
                    replicas.push((ch.clone(), Server::connect(&p.replica)?));
                }
            }
        }
        Ok(LagGuard {
            max: opts.max_lag,
            replicas,
            last: None,
        })
    }

    pub(super) fn respect(&mut self, bar: &indicatif::ProgressBar) -> Result<()> {
        let Some(max) = self.max.filter(|_| !self.replicas.is_empty()) else {
            return Ok(());
        };
        if self
            .last
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return Ok(());
        }
        loop {
            self.last = Some(Instant::now());
            match self.furthest_behind()? {
                Some((who, l)) if Duration::from_secs(l) > max => {
                    bar.set_message(format!("paused: {who} {l} s behind"));
                    std::thread::sleep(Duration::from_secs(1));
                }
                _ => return Ok(()),
            }
        }
    }

    /// The replica furthest behind, and by how many seconds (a stopped channel says none).
    fn furthest_behind(&mut self) -> Result<Option<(String, u64)>> {
        let mut worst: Option<(String, u64)> = None;
        let one = self.replicas.len() == 1;
        for (name, replica) in self.replicas.iter_mut() {
            let report = crate::status::read_status(replica)?;
            let lag = report
                .channels
                .iter()
                .find(|c| c.name == *name)
                .and_then(|c| c.seconds_behind_source);
            if let Some(l) = lag.filter(|l| worst.as_ref().is_none_or(|w| *l > w.1)) {
                let who = match one {
                    true => "replica".to_string(),
                    false => format!("replica {}", replica.spec.endpoint()),
                };
                worst = Some((who, l));
            }
        }
        Ok(worst)
    }
}
/// Replica lag: a walk waits for it before calling a difference drift.
impl Walk<'_> {
    /// Waits until the replica applied what the source had committed (and, in a dual-master
    /// pair, the other way round), so a difference still there is not replication lag.
    /// False when a wait timed out (`Options::wait_timeout`) on a healthy channel from the
    /// source itself: a difference may still be in flight. A channel whose applier is stopped
    /// or failed is not waited for, one whose receiver is stopped only until it applied what
    /// it received; both count as caught up, as does a named source no channel replicates
    /// from: verify warns that lag then counts as drift.
    pub(super) fn catch_up(&mut self) -> Result<bool> {
        use std::sync::atomic::Ordering::Relaxed;
        // A replica a whole --wait-timeout was not enough for is waited for a second at a
        // time until it catches up: its rows are then not judged at once, instead of every
        // batch of every table waiting out the timeout again behind the same lag.
        let behind = self.pair.behind.load(Relaxed);
        let timeout = match behind {
            true => BEHIND_WAIT,
            false => self.opts.wait_timeout.as_secs().max(1),
        };
        let mut waits = Vec::new();
        // A channel from another server has no position of the source's to wait for.
        let from_source = self.pair.replica_channel.as_ref();
        if let Some(ch) = from_source.filter(|_| self.pair.channel_from_source) {
            waits.push(wait_for(self.replica, self.source, ch, timeout)?);
        }
        if let Some(ch) = &self.pair.source_channel {
            waits.push(wait_for(self.source, self.replica, ch, timeout)?);
        }
        if waits.contains(&Waited::NotRunning) {
            self.pair.stopped_seen.store(true, Relaxed);
        }
        let timed_out = waits.contains(&Waited::TimedOut);
        if timed_out != behind {
            self.pair.behind.store(timed_out, Relaxed);
        }
        Ok(!timed_out)
    }
}

/// The wait, in seconds, for a replica already found behind by a whole --wait-timeout.
const BEHIND_WAIT: u64 = 1;

/// How a catch-up wait on one channel ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waited {
    /// Applied up to the upstream's binlog end.
    CaughtUp,
    /// The timeout ran out on a healthy channel: rows may still be on their way.
    TimedOut,
    /// The channel was not running (or stopped during the wait): what it had not applied
    /// counts as drift.
    NotRunning,
}

/// How far a wait on a channel can get.
enum Reach {
    /// Receiving (or reconnecting without an error: it may receive again within the wait)
    /// and applying: the upstream's binlog end.
    End,
    /// The receiver stopped (or failing to reconnect), the applier running: what it
    /// received, in the upstream's coordinates. A wait for more would last the whole timeout.
    Received(String, u64),
    /// The applier is stopped or failed: nothing to wait for.
    Nowhere,
}

/// One status read (the channel rows alone: this runs before every recheck).
fn reach(server: &mut Server, channel: &str) -> Result<Reach> {
    let channels = crate::status::read_channels(server)?;
    let Some(c) = channels.into_iter().find(|c| c.name == channel) else {
        return Ok(Reach::Nowhere);
    };
    if !c.applying() {
        return Ok(Reach::Nowhere);
    }
    Ok(
        match (c.receiving(), c.source_log_file, c.read_source_log_pos) {
            (false, Some(file), Some(pos)) => Reach::Received(file, pos),
            _ => Reach::End,
        },
    )
}

/// Waits until `replica`'s `channel` applied what it can of `upstream`'s binlog (`Reach`).
/// False only when the wait timed out on a channel still healthy. A receiver stopped is a
/// channel not running: what the applier has not applied when the wait ends (received and
/// delayed, or never received: verify cannot tell them apart) counts as drift, as verify
/// warns; "not judged" would exit 0 on rows the replica may never receive.
fn wait_for(
    replica: &mut Server,
    upstream: &mut Server,
    channel: &str,
    timeout: u64,
) -> Result<Waited> {
    let deadline = Instant::now() + Duration::from_secs(timeout);
    loop {
        let (file, pos) = match reach(replica, channel)? {
            Reach::End => crate::repair::verify::binlog_end(upstream)?,
            Reach::Received(file, pos) => {
                wait_received(replica, channel, (&file, pos), deadline)?;
                return Ok(Waited::NotRunning);
            }
            Reach::Nowhere => return Ok(Waited::NotRunning),
        };
        let left = deadline.saturating_duration_since(Instant::now()).as_secs();
        let st = replica
            .flavor
            .source_pos_wait(&file, pos, left.max(1), channel);
        let waited: Option<Option<i64>> = replica.first(&st)?;
        match waited.flatten() {
            Some(-1) if healthy(replica, channel)? => return Ok(Waited::TimedOut),
            Some(-1) => return Ok(Waited::NotRunning),
            Some(_) => return Ok(Waited::CaughtUp),
            // NULL: the applier stopped during the wait. Started again already (a STOP and
            // START while verify ran), it is waited for again within the same timeout.
            None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            None => return Ok(Waited::NotRunning),
        }
    }
}

/// How long an applier must sit idle at one position, its receiver stopped, before the rest
/// of what was received counts as a transaction cut short.
const STALLED: Duration = Duration::from_secs(2);

/// With the receiver stopped, waits until the applier applied what was received, a second
/// at a time, until `deadline`. A receiver stopped inside a transaction left a part
/// the applier can never finish: once the applier says it has read all its relay log and
/// its position has not moved for `STALLED` (no worker applying either), nothing more
/// will come and the wait ends. Without that every recheck waited out `--wait-timeout`.
fn wait_received(
    replica: &mut Server,
    channel: &str,
    (file, pos): (&str, u64),
    deadline: Instant,
) -> Result<()> {
    let mut idle: Option<(u64, Instant)> = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now()).as_secs();
        if left == 0 {
            return Ok(());
        }
        let st = replica
            .flavor
            .source_pos_wait(file, pos, left.min(1), channel);
        let waited: Option<Option<i64>> = replica.first(&st)?;
        // Reached, or the channel stopped (NULL): nothing more to wait for.
        if waited.flatten() != Some(-1) {
            return Ok(());
        }
        let at = idle_at(replica, channel)?;
        match (at, idle) {
            (Some(p), Some((q, since))) if p == q => {
                if since.elapsed() >= STALLED {
                    crate::timing::mark("catch-up: applier idle on a partly received transaction");
                    return Ok(());
                }
            }
            (Some(p), _) => idle = Some((p, Instant::now())),
            (None, _) => idle = None,
        }
    }
}

/// The channel's applied position when its applier waits for events and no worker applies
/// any; None while it is busy (or gone).
fn idle_at(replica: &mut Server, channel: &str) -> Result<Option<u64>> {
    let channels = crate::status::read_channels(replica)?;
    let Some(c) = channels.into_iter().find(|c| c.name == channel) else {
        return Ok(None);
    };
    // A MySQL worker handed the cut transaction's first events waits for the rest: it shows
    // the transaction as applying, but waits for its coordinator like an idle one.
    let idle = c.applier_waits_for_events() && !crate::status::workers_busy(replica, channel);
    Ok(c.exec_source_log_pos.filter(|_| idle))
}

/// Whether `channel` still runs now (a position wait on it timed out: then the rows waited
/// for may simply not be applied yet). A receiver reconnecting without an error runs.
fn healthy(server: &mut Server, channel: &str) -> Result<bool> {
    let channels = crate::status::read_channels(server)?;
    Ok(channels
        .iter()
        .any(|c| c.name == channel && c.applying() && c.receiving()))
}
