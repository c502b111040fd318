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
    /// False when a wait timed out (`Options::wait_timeout`): a difference may still be in flight. A
    /// stopped applier answers at once (NULL): verify says elsewhere that it is not
    /// replicating, and a difference then counts as drift.
    pub(super) fn catch_up(&mut self) -> Result<bool> {
        let timeout = self.opts.wait_timeout.as_secs().max(1);
        let mut caught_up = true;
        if let Some(ch) = &self.pair.replica_channel {
            let (file, pos) = crate::repair::verify::binlog_end(self.source)?;
            let st = self.replica.flavor.source_pos_wait(&file, pos, timeout, ch);
            let waited: Option<Option<i64>> = self.replica.first(&st)?;
            caught_up &= waited.flatten() != Some(-1);
        }
        if let Some(ch) = &self.pair.source_channel {
            let (file, pos) = crate::repair::verify::binlog_end(self.replica)?;
            let st = self.source.flavor.source_pos_wait(&file, pos, timeout, ch);
            let waited: Option<Option<i64>> = self.source.first(&st)?;
            caught_up &= waited.flatten() != Some(-1);
        }
        Ok(caught_up)
    }
}
