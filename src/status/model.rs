//! What a replica says about its channels, flavor-neutral. Pure data: read by `status::read`,
//! judged here, printed by `status::render`.

use serde::Serialize;

use crate::flavor::Flavor;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ServerInfo {
    pub endpoint: String,
    pub flavor: Flavor,
    pub version: String,
    pub server_id: u32,
    pub server_uuid: Option<String>,
    /// MySQL: gtid_mode; MariaDB: ON when it has GTID positions.
    pub gtid_mode: Option<String>,
    /// MySQL: gtid_executed; MariaDB: gtid_current_pos.
    pub gtid_executed: Option<String>,
    /// MariaDB only.
    pub gtid_slave_pos: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ErrorInfo {
    pub number: u32,
    pub message: String,
    pub timestamp: Option<String>,
}

/// The state of one applier worker of a multi-threaded MySQL replica
/// (performance_schema.replication_applier_status_by_worker).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WorkerStatus {
    pub worker_id: u64,
    pub service_state: String,
    pub last_error: Option<ErrorInfo>,
    /// The GTID the worker was applying when it failed (APPLYING_TRANSACTION, 5.7's
    /// LAST_SEEN_TRANSACTION). START REPLICA clears it, so it is read before anything else.
    pub applying_transaction: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ThreadState {
    Running,
    Connecting,
    Stopped,
}

impl ThreadState {
    pub fn parse(s: &str) -> ThreadState {
        match s {
            "Yes" => ThreadState::Running,
            "Connecting" | "Preparing" => ThreadState::Connecting,
            _ => ThreadState::Stopped,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Both threads running, no error.
    Healthy,
    /// The SQL (applier) thread stopped on an error: the incidents replmend exists for.
    SqlError,
    /// The IO (receiver) thread stopped on an error.
    IoError,
    /// A thread is not running, without an error (someone stopped it, or it is connecting).
    NotRunning,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ChannelStatus {
    /// "" is the default channel (MySQL) / default connection (MariaDB).
    pub name: String,
    pub health: Health,
    pub source_host: String,
    pub source_port: u16,
    pub source_server_id: Option<u32>,
    pub source_uuid: Option<String>,
    pub io_thread: ThreadState,
    pub sql_thread: ThreadState,
    pub last_io_error: Option<ErrorInfo>,
    pub last_sql_error: Option<ErrorInfo>,
    /// The source binlog the receiver is reading, and how far.
    pub source_log_file: Option<String>,
    pub read_source_log_pos: Option<u64>,
    /// The source binlog coordinates of the last applied transaction's end, i.e. where the
    /// failing transaction starts.
    pub relay_source_log_file: Option<String>,
    pub exec_source_log_pos: Option<u64>,
    pub relay_log_file: Option<String>,
    pub relay_log_pos: Option<u64>,
    pub seconds_behind_source: Option<u64>,
    /// MySQL: SOURCE_AUTO_POSITION; MariaDB: Using_Gtid is not No.
    pub gtid_positioning: bool,
    pub retrieved_gtid_set: Option<String>,
    pub executed_gtid_set: Option<String>,
    /// MariaDB's Gtid_IO_Pos.
    pub gtid_io_pos: Option<String>,
    pub workers: Vec<WorkerStatus>,
    /// The channel's replication filters (empty: every table is replicated).
    #[serde(skip_serializing_if = "super::filters::Filters::is_empty")]
    pub filters: super::filters::Filters,
}

impl ChannelStatus {
    pub fn judge(
        io: ThreadState,
        sql: ThreadState,
        io_err: &Option<ErrorInfo>,
        sql_err: &Option<ErrorInfo>,
    ) -> Health {
        if sql != ThreadState::Running && sql_err.is_some() {
            Health::SqlError
        } else if io != ThreadState::Running && io_err.is_some() {
            Health::IoError
        } else if io == ThreadState::Running && sql == ThreadState::Running {
            Health::Healthy
        } else {
            Health::NotRunning
        }
    }

    /// The most informative error text: a failed worker's own message beats the coordinator's
    /// summary on a multi-threaded MySQL replica.
    pub fn applier_error(&self) -> Option<&ErrorInfo> {
        self.workers
            .iter()
            .filter_map(|w| w.last_error.as_ref())
            .find(|e| Some(e.number) == self.last_sql_error.as_ref().map(|s| s.number))
            .or(self.last_sql_error.as_ref())
    }

    /// Events the receiver wrote to the relay log that the applier has not applied yet:
    /// `(received up to, applied up to)` as source binlog coordinates.
    pub fn unapplied(&self) -> Option<(String, String)> {
        let read = (self.source_log_file.as_deref()?, self.read_source_log_pos?);
        let exec = (
            self.relay_source_log_file.as_deref()?,
            self.exec_source_log_pos?,
        );
        (read != exec).then(|| {
            (
                format!("{}:{}", read.0, read.1),
                format!("{}:{}", exec.0, exec.1),
            )
        })
    }

    pub fn failed_worker(&self) -> Option<&WorkerStatus> {
        self.workers.iter().find(|w| w.last_error.is_some())
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StatusReport {
    pub schema: &'static str,
    pub server: ServerInfo,
    pub channels: Vec<ChannelStatus>,
    /// Transactions executed here that a channel's source has not got (`status` fills it in
    /// when it can reach the sources).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errant: Vec<super::errant::Errant>,
}

pub const STATUS_SCHEMA: &str = "replmend.status/1";

impl StatusReport {
    /// Keeps only the channel named (`status --channel`); the error names the ones there are.
    pub fn retain_channel(&mut self, name: &str) -> Result<(), String> {
        if !self.channels.iter().any(|c| c.name == name) {
            let names: Vec<String> = self
                .channels
                .iter()
                .map(|c| format!("'{}'", c.name))
                .collect();
            return Err(format!(
                "no replication channel named '{name}' (there is {})",
                names.join(", ")
            ));
        }
        self.channels.retain(|c| c.name == name);
        Ok(())
    }

    /// The worst health over all channels, which decides the exit code.
    pub fn overall(&self) -> Health {
        let rank = |h: &Health| match h {
            Health::Healthy => 0,
            Health::NotRunning => 1,
            Health::IoError => 2,
            Health::SqlError => 3,
        };
        self.channels
            .iter()
            .map(|c| c.health)
            .max_by_key(rank)
            .unwrap_or(Health::Healthy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(n: u32) -> Option<ErrorInfo> {
        Some(ErrorInfo {
            number: n,
            message: "x".into(),
            timestamp: None,
        })
    }

    #[test]
    fn judging() {
        use ThreadState::*;
        assert_eq!(
            ChannelStatus::judge(Running, Running, &None, &None),
            Health::Healthy
        );
        assert_eq!(
            ChannelStatus::judge(Running, Stopped, &None, &err(1062)),
            Health::SqlError
        );
        assert_eq!(
            ChannelStatus::judge(Stopped, Stopped, &err(2003), &err(1062)),
            Health::SqlError
        );
        assert_eq!(
            ChannelStatus::judge(Connecting, Running, &err(2003), &None),
            Health::IoError
        );
        assert_eq!(
            ChannelStatus::judge(Stopped, Running, &None, &None),
            Health::NotRunning
        );
        // An old error left behind by a running thread is not an incident.
        assert_eq!(
            ChannelStatus::judge(Running, Running, &None, &err(1062)),
            Health::Healthy
        );
    }
}
