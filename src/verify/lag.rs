//! Replica lag: the guard that pauses a walk while the replica lags more than --max-lag, and
//! the catch-up wait after which a difference still there is not lag but drift.

use std::time::{Duration, Instant};

use anyhow::Result;

use super::walk::Walk;
use super::{Options, Pair};
use crate::conn::Server;

/// Pauses while the replica lags more than --max-lag (checked at most once a second), on a
/// connection of its own.
pub(super) struct LagGuard {
    pub(super) channel: Option<String>,
    pub(super) max: Option<Duration>,
    pub(super) replica: Option<Server>,
    pub(super) last: Option<Instant>,
}

impl LagGuard {
    pub(super) fn new(pair: &Pair, opts: &Options) -> Result<LagGuard> {
        let replica = match (opts.max_lag, &pair.replica_channel) {
            (Some(_), Some(_)) => Some(Server::connect(&pair.replica)?),
            _ => None,
        };
        Ok(LagGuard {
            channel: pair.replica_channel.clone(),
            max: opts.max_lag,
            replica,
            last: None,
        })
    }

    pub(super) fn respect(&mut self, bar: &indicatif::ProgressBar) -> Result<()> {
        let (Some(max), Some(name), Some(replica)) =
            (self.max, self.channel.as_deref(), self.replica.as_mut())
        else {
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
            let report = crate::status::read_status(replica)?;
            let lag = report
                .channels
                .iter()
                .find(|c| c.name == name)
                .and_then(|c| c.seconds_behind_source);
            match lag {
                Some(l) if Duration::from_secs(l) > max => {
                    bar.set_message(format!("paused: replica {l} s behind"));
                    std::thread::sleep(Duration::from_secs(1));
                }
                _ => return Ok(()),
            }
        }
    }
}
/// Replica lag: a walk waits for it before calling a difference drift.
impl Walk<'_> {
    /// Waits until the replica applied what the source had committed (and, in a dual-master
    /// pair, the other way round), so a difference still there is not replication lag.
    pub(super) fn catch_up(&mut self) -> Result<()> {
        let timeout = self.opts.wait_timeout.as_secs().max(1);
        if let Some(ch) = &self.pair.replica_channel {
            let (file, pos) = crate::repair::verify::binlog_end(self.source)?;
            let st = self.replica.flavor.source_pos_wait(&file, pos, timeout, ch);
            let _: Option<Option<i64>> = self.replica.first(&st)?;
        }
        if let Some(ch) = &self.pair.source_channel {
            let (file, pos) = crate::repair::verify::binlog_end(self.replica)?;
            let st = self.source.flavor.source_pos_wait(&file, pos, timeout, ch);
            let _: Option<Option<i64>> = self.source.first(&st)?;
        }
        Ok(())
    }
}
