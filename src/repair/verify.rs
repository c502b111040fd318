//! After a remedy: is the channel applying again, has it caught up, do the nodes agree?

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::conn::Server;
use crate::status::model::{ChannelStatus, ThreadState};
use crate::status::{self, Health};

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Resumed {
    /// Applier running, no error, everything received has been applied.
    CaughtUp,
    /// The applier stopped again, on this error (possibly the next conflict).
    StoppedAgain { errno: u32, message: String },
    /// Still applying when the timeout passed.
    StillBehind { bytes_behind: u64 },
}

/// Bytes the applier still has to apply to reach `target` (the source's binlog end when the
/// wait began). Read_Source_Log_Pos alone is not enough: right after START the receiver may
/// not have fetched anything yet, and a replica that received nothing looks caught up.
fn behind(ch: &ChannelStatus, target: &(String, u64)) -> Option<u64> {
    let (file, pos) = target;
    match (&ch.relay_source_log_file, ch.exec_source_log_pos) {
        (Some(f), Some(e)) if f == file => Some(pos.saturating_sub(e)),
        (Some(f), Some(_)) if f > file => Some(0),
        (Some(_), Some(_)) => Some(pos.max(&1).to_owned()),
        _ => None,
    }
}

/// Where a resumed applier must get to, in its source's binlog.
#[derive(Debug, Clone, PartialEq)]
pub enum CatchUp {
    /// The source's binlog end when the wait began.
    SourceEnd((String, u64)),
    /// What the replica's receiver had fetched: the source is unreachable, its end unknown.
    Received((String, u64)),
}

impl CatchUp {
    pub fn position(&self) -> (String, u64) {
        match self {
            CatchUp::SourceEnd(p) | CatchUp::Received(p) => p.clone(),
        }
    }
}

/// How far the channel's receiver has read its source's binlog (Source_Log_File,
/// Read_Source_Log_Pos): all a replica can catch up to while its source is down.
pub fn received(ch: &ChannelStatus) -> Option<(String, u64)> {
    Some((ch.source_log_file.clone()?, ch.read_source_log_pos?))
}

/// The server's current binlog file and position.
pub fn binlog_end(server: &mut Server) -> anyhow::Result<(String, u64)> {
    let sql = server.flavor.show_binlog_status();
    let row: Option<mysql::Row> = server.first(&crate::sql::Statement::plain(sql))?;
    let row = row.ok_or_else(|| anyhow::anyhow!("{}: binary logging is off", server.spec))?;
    let file: String = row.get(0).unwrap_or_default();
    let pos: u64 = row.get(1).unwrap_or(0);
    Ok((file, pos))
}

fn channel(server: &mut Server, name: &str) -> anyhow::Result<ChannelStatus> {
    let report = status::read_status(server)?;
    report
        .channels
        .into_iter()
        .find(|c| c.name == name)
        .ok_or_else(|| anyhow::anyhow!("channel '{name}' disappeared from {}", server.spec))
}

/// Polls the channel until it has applied everything it received, stopped again, or `timeout`
/// passed. A progress bar follows the bytes still to apply (hidden when not on a terminal).
pub fn wait_resumed(
    server: &mut Server,
    name: &str,
    target: (String, u64),
    timeout: Duration,
) -> anyhow::Result<Resumed> {
    let started = Instant::now();
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} bytes applied")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar.set_message(format!("catching up on {}", server.spec.endpoint()));
    let mut initial: Option<u64> = None;
    loop {
        let ch = channel(server, name)?;
        if ch.health == Health::SqlError {
            bar.finish_and_clear();
            let e = ch.applier_error().cloned().expect("sql error has an error");
            return Ok(Resumed::StoppedAgain {
                errno: e.number,
                message: e.message,
            });
        }
        let lag = behind(&ch, &target);
        if ch.sql_thread == ThreadState::Running && lag == Some(0) {
            bar.finish_and_clear();
            return Ok(Resumed::CaughtUp);
        }
        if let Some(l) = lag {
            let total = *initial.get_or_insert(l);
            bar.set_length(total.max(l));
            bar.set_position(total.max(l) - l);
        }
        let left = timeout.saturating_sub(started.elapsed());
        if left.is_zero() {
            bar.finish_and_clear();
            return Ok(Resumed::StillBehind {
                bytes_behind: lag.unwrap_or(0),
            });
        }
        wait_applied(server, name, &target);
    }
}

/// Blocks in the server until the channel has applied up to `target`, stops, or a second
/// passes (then the caller reads the status again and moves the progress bar): a batch of a
/// thousand transactions takes a fraction of a second to apply, and a polling interval would
/// dominate it. The wait function answers NULL at once when the applier is not running (just
/// started, or stopped on an error): a short pause then keeps the status reads from spinning.
/// If the server refuses the function, the status is polled as before: the wait is only an
/// optimization, never a reason for a repair to fail.
fn wait_applied(server: &mut Server, name: &str, target: &(String, u64)) {
    let st = server.flavor.source_pos_wait(&target.0, target.1, 1, name);
    let waited: mysql::Result<Option<Option<i64>>> = server.first(&st);
    let pause = match waited {
        Ok(Some(Some(_))) => return,
        Ok(_) => 5,
        Err(_) => 100,
    };
    std::thread::sleep(Duration::from_millis(pause));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(pairs: &[(&str, &str)]) -> ChannelStatus {
        let row = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Some(v.to_string())))
            .collect();
        crate::status::read::channel_from_row(&row)
    }

    // With the source down, catching up means applying what the receiver had read.
    #[test]
    fn received_is_how_far_the_receiver_read() {
        let ch = channel(&[
            ("Source_Log_File", "mysql1-bin.000001"),
            ("Read_Source_Log_Pos", "4505678"),
            ("Relay_Source_Log_File", "mysql1-bin.000001"),
            ("Exec_Source_Log_Pos", "4502223"),
        ]);
        let target = CatchUp::Received(received(&ch).unwrap());
        assert_eq!(target.position(), ("mysql1-bin.000001".into(), 4505678));
        assert_eq!(behind(&ch, &target.position()), Some(4505678 - 4502223));
        assert_eq!(received(&channel(&[])), None);
    }
}
