//! What a replica says about its channels, flavor-neutral. Pure data: read by `status::read`,
//! judged here, printed by `status::render`.

use serde::Serialize;

use crate::flavor::Flavor;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ServerInfo {
    pub endpoint: crate::vocab::Endpoint,
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
    /// What the applier is doing (`Replica_SQL_Running_State`), as the server words it.
    #[serde(skip)]
    pub sql_state: Option<String>,
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
    /// The receiver connects to its source over TLS (Source_SSL_Allowed); None: not shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ssl: Option<bool>,
    /// The account the receiver connects as (Source_User).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_user: Option<String>,
    /// The receiver asks the source for its RSA public key (Get_Source_public_key = 1, or a
    /// Source_public_key_path): caching_sha2_password then works without TLS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_public_key: Option<bool>,
    /// The replication user's authentication plugin, as read on the source (status on a
    /// managed replica whose receiver connects without TLS); None: not read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_user_plugin: Option<crate::capability::AuthPlugin>,
}

impl ChannelStatus {
    /// The applier has applied all it can from its relay log and waits for the receiver
    /// (both flavors say "… has read all relay log; waiting for more updates").
    pub fn applier_waits_for_events(&self) -> bool {
        self.sql_thread == ThreadState::Running
            && self
                .sql_state
                .as_deref()
                .is_some_and(|s| s.contains("read all relay log"))
    }

    /// The applier runs and has not failed.
    pub fn applying(&self) -> bool {
        self.sql_thread == ThreadState::Running && self.last_sql_error.is_none()
    }

    /// The receiver gets (or is about to get again) its source's events: running, or
    /// reconnecting without an error yet (a connection just started or just dropped). One
    /// that keeps failing to connect shows its error, and receives nothing meanwhile.
    pub fn receiving(&self) -> bool {
        match self.io_thread {
            ThreadState::Running => true,
            ThreadState::Connecting => self.last_io_error.is_none(),
            ThreadState::Stopped => false,
        }
    }

    /// How its receiver authenticates to the source, as the TLS warning reads it.
    pub fn receiver(&self) -> crate::capability::Receiver<'_> {
        crate::capability::Receiver {
            tls: self.source_ssl,
            public_key: self.source_public_key,
            user: self.source_user.as_deref(),
            plugin: self.source_user_plugin.as_ref(),
        }
    }

    /// The source this channel replicates from.
    pub fn source_endpoint(&self) -> crate::vocab::Endpoint {
        crate::vocab::Endpoint::new(&self.source_host, self.source_port)
    }

    /// Whether this channel replicates from the server at `at` (with `server_id` when
    /// known): the one rule behind every "do these two nodes form a dual-master pair"
    /// question. By server_id once the channel has seen its source's (it is 0 until the
    /// receiver first connects), else by host and port compared as endpoints: a port alone
    /// names no server when every host of a fleet listens on 3306.
    pub fn replicates_from(&self, at: &crate::vocab::Endpoint, server_id: Option<u32>) -> bool {
        match (self.source_server_id.filter(|id| *id != 0), server_id) {
            (Some(theirs), Some(id)) => theirs == id,
            _ => self.source_endpoint() == *at,
        }
    }

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

    /// The most informative error text: the failed worker's own message (see
    /// [`ChannelStatus::failed_worker`]) beats the coordinator's summary on a multi-threaded
    /// MySQL replica.
    pub fn applier_error(&self) -> Option<&ErrorInfo> {
        let channel = self.last_sql_error.as_ref()?;
        let worker = self.failed_worker().and_then(|w| w.last_error.as_ref());
        match worker {
            Some(w) if w.number == channel.number => Some(w),
            Some(w) if Failure::of(channel.number) == Failure::AnotherWorkers => Some(w),
            _ => Some(channel),
        }
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

    /// The worker whose own transaction stopped the applier. Usually the one whose error is
    /// the channel's; but when the channel reports a worker that only stopped because another
    /// failed (3030: commit order preserved), it is the worker holding an error of its own —
    /// the earliest in the source's binlog when several do, since replication must get past
    /// that one first. Otherwise the first worker with an error.
    pub fn failed_worker(&self) -> Option<&WorkerStatus> {
        let failed = || self.workers.iter().filter(|w| w.last_error.is_some());
        let errno = |w: &WorkerStatus| w.last_error.as_ref().map_or(0, |e| e.number);
        let chosen = match self.last_sql_error.as_ref().map(|e| e.number) {
            Some(n) if Failure::of(n) == Failure::AnotherWorkers => failed()
                .filter(|w| Failure::of(errno(w)) == Failure::Own)
                .min_by_key(|w| binlog_place(w)),
            Some(n) => failed().find(|w| errno(w) == n),
            None => None,
        };
        chosen.or_else(|| failed().next())
    }
}

/// Why an applier worker (or the channel, which reports its most recent worker failure)
/// stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Its own transaction failed (1062, 1032, …): the incident.
    Own,
    /// It stopped because another worker failed; its own transaction was rolled back and is
    /// applied again on restart. MySQL 3030 ER_REPLICA_WORKER_STOPPED_PREVIOUS_THD_ERROR
    /// (replica_preserve_commit_order=ON, the default since 8.0.27: a later transaction that
    /// finished first may not commit before the failed one) and 1756 ER_MTA_INCONSISTENT_DATA
    /// (the coordinator stopped with transactions of workers unfinished).
    AnotherWorkers,
}

impl Failure {
    pub fn of(errno: u32) -> Failure {
        match errno {
            3030 | 1756 => Failure::AnotherWorkers,
            _ => Failure::Own,
        }
    }
}

/// Where a worker's failed event is in the source's binlog (file, end_log_pos), from its
/// error text; unknown places sort last.
fn binlog_place(w: &WorkerStatus) -> (bool, String, u64) {
    let p = w
        .last_error
        .as_ref()
        .map(|e| crate::status::errortext::parse(e.number, &e.message))
        .unwrap_or_default();
    match (p.source_log_file, p.end_log_pos) {
        (Some(file), Some(pos)) => (false, file, pos),
        _ => (true, String::new(), 0),
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
    /// What this account may do here: the provider, privileges, binlog retention (`status`
    /// fills it in).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<crate::capability::Capabilities>,
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

    fn worker(id: u64, errno: u32, message: &str, trx: &str) -> WorkerStatus {
        WorkerStatus {
            worker_id: id,
            service_state: "OFF".into(),
            last_error: (errno != 0).then(|| ErrorInfo {
                number: errno,
                message: message.into(),
                timestamp: None,
            }),
            applying_transaction: Some(trx.into()),
        }
    }

    fn channel(errno: u32, message: &str, workers: Vec<WorkerStatus>) -> ChannelStatus {
        let mut ch = crate::status::read::channel_from_row(&Default::default());
        ch.last_sql_error = Some(ErrorInfo {
            number: errno,
            message: message.into(),
            timestamp: None,
        });
        ch.workers = workers;
        ch
    }

    const DUP: &str = "Worker 2 failed executing transaction 'u:7' at source log b.000001, end_log_pos 900; Could not execute Write_rows event on table d.t; Duplicate entry '1' for key 't.PRIMARY', Error_code: 1062; handler error HA_ERR_FOUND_DUPP_KEY; the event's source log b.000001, end_log_pos 900";
    const LATER_DUP: &str = "Worker 4 failed executing transaction 'u:9' at source log b.000001, end_log_pos 1500; Could not execute Write_rows event on table d.t; Duplicate entry '5' for key 't.PRIMARY', Error_code: 1062; handler error HA_ERR_FOUND_DUPP_KEY; the event's source log b.000001, end_log_pos 1500";
    const ORDER: &str = "Worker 3 failed executing transaction 'u:8' at source log b.000001, end_log_pos 1200; Replica worker has stopped after at least one previous worker encountered an error when replica-preserve-commit-order was enabled.";

    // The channel names a worker that stopped to keep commit order (3030): the incident is
    // the worker whose own transaction failed, wherever it sits in the table.
    #[test]
    fn commit_order_stop_points_at_the_worker_with_the_row_error() {
        let ch = channel(
            3030,
            "Coordinator stopped because there were error(s) in the worker(s). The most recent failure being: Worker 3 failed executing transaction 'u:8' …",
            vec![
                worker(1, 0, "", ""),
                worker(3, 3030, ORDER, "u:8"),
                worker(4, 1062, LATER_DUP, "u:9"),
                worker(2, 1062, DUP, "u:7"),
            ],
        );
        let w = ch.failed_worker().unwrap();
        assert_eq!(w.worker_id, 2, "the earliest row error in the binlog");
        assert_eq!(w.applying_transaction.as_deref(), Some("u:7"));
        assert_eq!(ch.applier_error().unwrap().number, 1062);
        assert_eq!(ch.applier_error().unwrap().message, DUP);
    }

    #[test]
    fn the_channel_errors_worker_is_the_failed_one() {
        let ch = channel(
            1062,
            "Coordinator stopped …",
            vec![worker(3, 3030, ORDER, "u:8"), worker(2, 1062, DUP, "u:7")],
        );
        assert_eq!(ch.failed_worker().unwrap().worker_id, 2);
        assert_eq!(ch.applier_error().unwrap().message, DUP);
    }

    // performance_schema unreadable, or no worker kept a row error: the channel's own words.
    #[test]
    fn without_a_row_error_the_channel_error_stands() {
        let ch = channel(3030, "Coordinator stopped …", Vec::new());
        assert!(ch.failed_worker().is_none());
        assert_eq!(ch.applier_error().unwrap().number, 3030);
        let only_order = channel(3030, "Coordinator …", vec![worker(3, 3030, ORDER, "u:8")]);
        assert_eq!(only_order.applier_error().unwrap().message, ORDER);
    }

    #[test]
    fn failures() {
        assert_eq!(Failure::of(3030), Failure::AnotherWorkers);
        assert_eq!(Failure::of(1756), Failure::AnotherWorkers);
        assert_eq!(Failure::of(1062), Failure::Own);
        assert_eq!(Failure::of(1032), Failure::Own);
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

    /// Two hosts on 3306 are two servers: the port alone never makes a pair.
    #[test]
    fn a_channel_replicates_from_a_server_by_its_id_else_its_endpoint() {
        use crate::vocab::Endpoint;
        let mut c = channel(0, "", Vec::new());
        (c.source_host, c.source_port) = ("db1".into(), 3306);
        let (db1, db2) = (Endpoint::new("DB1", 3306), Endpoint::new("db2", 3306));
        c.source_server_id = None;
        assert!(c.replicates_from(&db1, Some(7)));
        assert!(!c.replicates_from(&db2, Some(7)));
        c.source_server_id = Some(0);
        assert!(!c.replicates_from(&db2, None));
        c.source_server_id = Some(7);
        assert!(
            c.replicates_from(&db2, Some(7)),
            "the id decides once known"
        );
        assert!(!c.replicates_from(&db1, Some(8)));
        assert!(c.replicates_from(&db1, None));
    }
}
