//! Server flavor and version, and every statement or name that differs between them. This is
//! the one place per flavor difference: callers ask "what is the statement here", never
//! "is this MariaDB".

pub mod provider;

pub use crate::sql::{quote_ident, quote_string};
pub use provider::{Procedure, Provider};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::value::Cell;
use crate::vocab::{Gtid, MariadbGtidList};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Mysql,
    Mariadb,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u16,
    pub minor: u16,
    pub patch: u16,
}

impl Version {
    pub const fn new(major: u16, minor: u16, patch: u16) -> Version {
        Version {
            major,
            minor,
            patch,
        }
    }
}

impl Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Flavor {
    pub kind: Kind,
    pub version: Version,
}

impl fmt::Display for Flavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.kind {
            Kind::Mysql => "MySQL",
            Kind::Mariadb => "MariaDB",
        };
        write!(f, "{name} {}", self.version)
    }
}

/// Something a plan step does that needs a privilege.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// STOP/START REPLICA|SLAVE.
    ControlReplication,
    /// SET GLOBAL sql_(replica|slave)_skip_counter.
    SkipCounter,
    /// SET GTID_NEXT (MySQL) / SET GLOBAL gtid_slave_pos (MariaDB).
    GtidPosition,
    /// SET SESSION sql_log_bin = 0.
    SqlLogBin,
    /// SELECT/INSERT/DELETE on the conflicting table.
    RowWrite,
    /// SET GLOBAL read_only / super_read_only (--lift-read-only).
    SetReadOnly,
    /// SHOW MASTER STATUS / SHOW BINARY LOG STATUS on a source, to verify that its replica
    /// caught up with it.
    ReadBinlogPosition,
    /// CALL of a managed service's procedure (EXECUTE on it, and the procedure present).
    Execute(Procedure),
}

impl Need {
    pub fn words(self) -> &'static str {
        match self {
            Need::ControlReplication => "stopping and starting replication",
            Need::SkipCounter => "setting the skip counter",
            Need::GtidPosition => "skipping a transaction by its GTID",
            Need::SqlLogBin => "turning the binary log off for replmend's session",
            Need::RowWrite => "reading, deleting and inserting the conflicting rows",
            Need::SetReadOnly => "turning read_only off and on again",
            Need::ReadBinlogPosition => {
                "reading its binary log position (to verify that its replica caught up)"
            }
            Need::Execute(_) => "calling the provider's procedure",
        }
    }
}

/// Which replication threads a STOP/START statement names. Plans stop and start both; the
/// single-thread forms are part of the flavor table and tested with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code)]
pub enum Thread {
    Both,
    Io,
    Sql,
}

impl Flavor {
    /// From `SELECT @@version` (e.g. `8.0.36-log`, `10.11.6-MariaDB-0+deb12u1-log`,
    /// `5.5.5-10.11.6-MariaDB` as some proxies report it).
    pub fn parse(version: &str) -> Option<Flavor> {
        let kind = if version.contains("MariaDB") {
            Kind::Mariadb
        } else {
            Kind::Mysql
        };
        let v = version.strip_prefix("5.5.5-").unwrap_or(version);
        let mut nums = v
            .split(|c: char| !c.is_ascii_digit())
            .take(3)
            .map(|n| n.parse::<u16>().ok());
        let major = nums.next()??;
        let minor = nums.next().flatten().unwrap_or(0);
        let patch = nums.next().flatten().unwrap_or(0);
        Some(Flavor {
            kind,
            version: Version::new(major, minor, patch),
        })
    }

    pub fn is_mariadb(&self) -> bool {
        self.kind == Kind::Mariadb
    }

    /// `CRC32C()` (MariaDB 10.8 and later): verify's cheaper second CRC (`sql::RowDigest`).
    pub fn has_crc32c(&self) -> bool {
        self.is_mariadb() && self.at_least(10, 8, 0)
    }

    /// A user variable may be set inside an expression (`@v := …`; `sql::TextEval::Once`).
    /// MySQL deprecated that outside SET in 8.0.13 and warns on every such statement.
    pub fn sets_variables_in_expressions(&self) -> bool {
        self.is_mariadb()
    }

    fn at_least(&self, major: u16, minor: u16, patch: u16) -> bool {
        self.version >= Version::new(major, minor, patch)
    }

    /// MySQL renamed SLAVE/MASTER to REPLICA/SOURCE in 8.0.22 and removed the old names in 8.4.
    fn mysql_replica_words(&self) -> bool {
        self.kind == Kind::Mysql && self.at_least(8, 0, 22)
    }

    /// The status statement listing every channel.
    pub fn show_replica_status(&self) -> &'static str {
        match self.kind {
            Kind::Mariadb => "SHOW ALL SLAVES STATUS",
            Kind::Mysql if self.mysql_replica_words() => "SHOW REPLICA STATUS",
            Kind::Mysql => "SHOW SLAVE STATUS",
        }
    }

    /// Does this server know `SHOW REPLICAS` / `SHOW SLAVE HOSTS` for finding who replicates
    /// from it?
    pub fn show_replicas(&self) -> &'static str {
        if self.mysql_replica_words() {
            "SHOW REPLICAS"
        } else {
            "SHOW SLAVE HOSTS"
        }
    }

    fn channel_clause(&self, channel: &str) -> String {
        match self.kind {
            // MariaDB names the connection right after SLAVE; the default one is ''.
            Kind::Mariadb => String::new(),
            Kind::Mysql if channel.is_empty() => String::new(),
            Kind::Mysql => format!(" FOR CHANNEL {}", quote_string(channel)),
        }
    }

    fn replication_statement(&self, verb: &str, thread: Thread, channel: &str) -> String {
        let threads = match thread {
            Thread::Both => "",
            Thread::Io => " IO_THREAD",
            Thread::Sql => " SQL_THREAD",
        };
        match self.kind {
            Kind::Mariadb => {
                let name = if channel.is_empty() {
                    String::new()
                } else {
                    format!(" {}", quote_string(channel))
                };
                format!("{verb} SLAVE{name}{threads}")
            }
            Kind::Mysql => {
                let word = if self.mysql_replica_words() {
                    "REPLICA"
                } else {
                    "SLAVE"
                };
                format!("{verb} {word}{threads}{}", self.channel_clause(channel))
            }
        }
    }

    pub fn stop_replica(&self, thread: Thread, channel: &str) -> String {
        self.replication_statement("STOP", thread, channel)
    }

    pub fn start_replica(&self, thread: Thread, channel: &str) -> String {
        self.replication_statement("START", thread, channel)
    }

    /// The global that skips the next N events (transactions when GTIDs are on).
    pub fn skip_counter_variable(&self) -> &'static str {
        match self.kind {
            Kind::Mysql if self.at_least(8, 0, 26) => "sql_replica_skip_counter",
            _ => "sql_slave_skip_counter",
        }
    }

    /// Statements that set the skip counter for one channel. MariaDB scopes it through
    /// `default_master_connection`; MySQL's counter applies to the next channel started.
    pub fn set_skip_counter(&self, channel: &str, n: u64) -> Vec<String> {
        let set = format!("SET GLOBAL {} = {n}", self.skip_counter_variable());
        match self.kind {
            Kind::Mariadb if !channel.is_empty() => vec![
                format!(
                    "SET @@default_master_connection = {}",
                    quote_string(channel)
                ),
                set,
            ],
            _ => vec![set],
        }
    }

    /// The performance_schema column holding the GTID a worker is (or was) applying.
    /// Where the applier's last error time is kept when the status statement does not say:
    /// MariaDB (10.6+) has no Last_SQL_Error_Timestamp column, only performance_schema's
    /// coordinator table (filled when performance_schema is ON).
    pub fn applier_error_time_query(&self) -> Option<&'static str> {
        match self.kind {
            Kind::Mariadb => Some(
                "SELECT CHANNEL_NAME, LAST_ERROR_NUMBER, LAST_ERROR_TIMESTAMP \
                 FROM performance_schema.replication_applier_status_by_coordinator",
            ),
            Kind::Mysql => None,
        }
    }

    pub fn worker_transaction_column(&self) -> Option<&'static str> {
        match self.kind {
            Kind::Mysql if self.version.major >= 8 => Some("APPLYING_TRANSACTION"),
            Kind::Mysql => Some("LAST_SEEN_TRANSACTION"),
            Kind::Mariadb => None,
        }
    }

    /// performance_schema lists a single-threaded applier as a worker (MySQL 8.0 and later;
    /// 5.7 lists none then).
    pub fn lists_single_applier(&self) -> bool {
        self.kind == Kind::Mysql && self.version.major >= 8
    }

    /// Waits until the channel has applied its source's binlog up to (file, pos), at most
    /// `timeout` seconds: -1 on timeout, NULL when the channel is not running. All four bound.
    pub fn source_pos_wait(
        &self,
        file: &str,
        pos: u64,
        timeout: u64,
        channel: &str,
    ) -> crate::sql::Statement {
        let sql = if self.kind == Kind::Mysql && self.at_least(8, 0, 26) {
            "SELECT SOURCE_POS_WAIT(?, ?, ?, ?)"
        } else {
            "SELECT MASTER_POS_WAIT(?, ?, ?, ?)"
        };
        crate::sql::Statement::plain(sql).params(vec![
            Cell::Text(file.to_string()),
            Cell::Number(pos.to_string()),
            Cell::Number(timeout.to_string()),
            Cell::Text(channel.to_string()),
        ])
    }

    /// The statement reporting the server's current binlog file and position. MySQL 8.2
    /// added SHOW BINARY LOG STATUS and 8.4 removed SHOW MASTER STATUS.
    pub fn show_binlog_status(&self) -> &'static str {
        if self.kind == Kind::Mysql && self.at_least(8, 2, 0) {
            "SHOW BINARY LOG STATUS"
        } else {
            "SHOW MASTER STATUS"
        }
    }

    /// Whether a GTID (bound as the one parameter) is executed here; None where a skip is
    /// idempotent anyway (MariaDB's gtid_slave_pos is set, not added to).
    pub fn gtid_executed_query(&self) -> Option<&'static str> {
        match self.kind {
            Kind::Mysql => Some("SELECT GTID_SUBSET(?, @@GLOBAL.gtid_executed)"),
            Kind::Mariadb => None,
        }
    }

    /// Whether `gtid` is executed here (`gtid_executed_query`, the GTID bound); None where a
    /// skip is idempotent anyway.
    pub fn gtid_executed_check(&self, gtid: &str) -> Option<crate::sql::Statement> {
        let sql = self.gtid_executed_query()?;
        Some(crate::sql::Statement::plain(sql).params(vec![Cell::Text(gtid.to_string())]))
    }

    /// Whether the server writes what it applies as a replica to its own binary log: 1 or 0
    /// (log_replica_updates from MySQL 8.0.26, log_slave_updates before and on MariaDB).
    pub fn logs_applied_query(&self) -> crate::sql::Statement {
        let replica_word = self.kind == Kind::Mysql
            && (self.version.major, self.version.minor, self.version.patch) >= (8, 0, 26);
        crate::sql::Statement::plain(match replica_word {
            true => "SELECT @@GLOBAL.log_bin AND @@GLOBAL.log_replica_updates",
            false => "SELECT @@GLOBAL.log_bin AND @@GLOBAL.log_slave_updates",
        })
    }

    /// Alternatives: having any one privilege of a list satisfies the need.
    pub fn privileges(&self, need: Need) -> &'static [&'static str] {
        let mysql8 = self.kind == Kind::Mysql && self.version.major >= 8;
        match (need, self.kind) {
            (Need::ControlReplication, Kind::Mariadb) => &["REPLICATION SLAVE ADMIN", "SUPER"],
            (Need::SkipCounter, Kind::Mariadb) => &["SUPER"],
            (Need::GtidPosition, Kind::Mariadb) => &["REPLICATION SLAVE ADMIN", "SUPER"],
            (Need::SqlLogBin, Kind::Mariadb) => &["BINLOG ADMIN", "SUPER"],
            (Need::ControlReplication, Kind::Mysql) if mysql8 => {
                &["REPLICATION_SLAVE_ADMIN", "SUPER"]
            }
            (Need::SkipCounter, Kind::Mysql) if mysql8 => &["SYSTEM_VARIABLES_ADMIN", "SUPER"],
            // gtid_next is a session variable: SESSION_VARIABLES_ADMIN (or REPLICATION_APPLIER)
            // is enough.
            (Need::GtidPosition, Kind::Mysql) if mysql8 => &[
                "SYSTEM_VARIABLES_ADMIN",
                "SESSION_VARIABLES_ADMIN",
                "REPLICATION_APPLIER",
                "SUPER",
            ],
            (Need::SqlLogBin, Kind::Mysql) if mysql8 => {
                &["SYSTEM_VARIABLES_ADMIN", "SESSION_VARIABLES_ADMIN", "SUPER"]
            }
            // MariaDB 10.5 renamed REPLICATION CLIENT to BINLOG MONITOR; SUPER stopped
            // including it in 11.0 (measured: 11.8 refuses SHOW BINLOG STATUS to SUPER).
            (Need::ReadBinlogPosition, Kind::Mariadb) if self.version.major >= 11 => {
                &["BINLOG MONITOR"]
            }
            (Need::ReadBinlogPosition, Kind::Mariadb) => {
                &["BINLOG MONITOR", "REPLICATION CLIENT", "SUPER"]
            }
            (Need::ReadBinlogPosition, Kind::Mysql) => &["REPLICATION CLIENT", "SUPER"],
            (Need::RowWrite, _) => &["INSERT", "DELETE", "SELECT"],
            (Need::Execute(_), _) => &["EXECUTE"],
            (Need::SetReadOnly, _) => self.set_read_only_privileges(),
            (_, Kind::Mysql) => &["SUPER"],
        }
    }

    /// GTIDs are on for this channel: a skip must name the transaction's GTID. MySQL refuses
    /// the skip counter with gtid_mode=ON; on MariaDB replicating by GTID the counter would
    /// skip whatever comes next if the failing transaction is not known, so replmend never
    /// uses it there.
    pub fn skip_needs_gtid(&self, gtid_enabled: bool, gtid_positioning: bool) -> bool {
        match self.kind {
            Kind::Mysql => gtid_enabled,
            Kind::Mariadb => gtid_positioning,
        }
    }

    /// A transaction can be skipped by its GTID here. MariaDB advances gtid_slave_pos, which
    /// rewrites every domain: it needs the current value.
    pub fn can_skip_by_gtid(
        &self,
        gtid_enabled: bool,
        gtid_positioning: bool,
        slave_pos_known: bool,
    ) -> bool {
        match self.kind {
            Kind::Mysql => gtid_enabled,
            Kind::Mariadb => gtid_positioning && slave_pos_known,
        }
    }

    /// Statements that mark `gtid` executed without applying it: an empty transaction with
    /// that GTID (MySQL), gtid_slave_pos advanced past it in its domain (MariaDB, from the
    /// current `slave_pos`).
    pub fn skip_by_gtid(&self, gtid: &Gtid, slave_pos: &str) -> Vec<String> {
        match self.kind {
            Kind::Mysql => vec![
                format!("SET GTID_NEXT = {}", quote_string(&gtid.to_string())),
                "BEGIN".into(),
                "COMMIT".into(),
                "SET GTID_NEXT = 'AUTOMATIC'".into(),
            ],
            Kind::Mariadb => {
                let next = advanced_slave_pos(slave_pos, gtid).unwrap_or_else(|| gtid.to_string());
                vec![format!(
                    "SET GLOBAL gtid_slave_pos = {}",
                    quote_string(&next)
                )]
            }
        }
    }

    /// How a GTID skip is described in a plan.
    pub fn skip_by_gtid_words(&self) -> &'static str {
        match self.kind {
            Kind::Mysql => "with an empty transaction of that GTID",
            Kind::Mariadb => "by advancing gtid_slave_pos past it",
        }
    }

    /// The query reading gtid_mode, where the server has one.
    pub fn gtid_mode_query(&self) -> Option<&'static str> {
        match self.kind {
            Kind::Mysql => Some("SELECT @@GLOBAL.gtid_mode"),
            Kind::Mariadb => None,
        }
    }

    /// A session setting a binlog dump connection needs: without it a MariaDB source replaces
    /// its GTID events with BEGIN queries.
    pub fn dump_session_statement(&self) -> Option<&'static str> {
        match self.kind {
            Kind::Mariadb => Some("SET @mariadb_slave_capability = 4"),
            Kind::Mysql => None,
        }
    }

    /// Where each applier worker's last committed transaction ended in the source's binlog
    /// (file, position), for a channel bound as the one parameter. MySQL's multi-threaded
    /// applier reports only a checkpoint as Exec_Source_Log_Pos, which can lag the failing
    /// transaction by hundreds of transactions; a worker's position is a transaction boundary
    /// closer to it. MariaDB's parallel applier commits in order and stops at the failing
    /// transaction itself: nothing to ask.
    pub fn worker_positions_query(&self) -> Option<&'static str> {
        match self.kind {
            Kind::Mysql => Some(
                "SELECT Master_log_name, Master_log_pos FROM mysql.slave_worker_info WHERE Channel_name = ?",
            ),
            Kind::Mariadb => None,
        }
    }

    /// One row: read_only and super_read_only as 0/1 (MariaDB has no super_read_only).
    pub fn read_only_query(&self) -> &'static str {
        match self.kind {
            Kind::Mysql => "SELECT @@global.read_only, @@global.super_read_only",
            Kind::Mariadb => "SELECT @@global.read_only, 0",
        }
    }

    /// Turns read_only (and with it MySQL's super_read_only) off.
    pub fn lift_read_only(&self) -> &'static str {
        "SET GLOBAL read_only = OFF"
    }

    /// Puts a lifted read-only state back exactly: on MySQL, super_read_only=ON also sets
    /// read_only=ON (measured on 9.7).
    pub fn restore_read_only(&self, state: crate::vocab::ReadOnly) -> Vec<String> {
        use crate::vocab::ReadOnly;
        match state {
            ReadOnly::Off => Vec::new(),
            ReadOnly::ReadOnly => vec!["SET GLOBAL read_only = ON".into()],
            ReadOnly::SuperReadOnly => vec!["SET GLOBAL super_read_only = ON".into()],
        }
    }

    /// The statement that restores `state` on either flavor, for a message when the node's
    /// flavor is not known (it could not be reached).
    pub fn restore_read_only_any(state: crate::vocab::ReadOnly) -> &'static str {
        match state {
            crate::vocab::ReadOnly::SuperReadOnly => "SET GLOBAL super_read_only = ON",
            _ => "SET GLOBAL read_only = ON",
        }
    }

    /// A read-only node refuses a skip's statements: MariaDB's SET GLOBAL gtid_slave_pos
    /// fails with 1290 (measured on 10.11); MySQL's empty GTID transaction and both flavors'
    /// skip counter are allowed.
    pub fn gtid_skip_blocked_by_read_only(&self, by_gtid: bool) -> bool {
        self.kind == Kind::Mariadb && by_gtid
    }

    /// A skip by GTID needs every replication channel of the node stopped, not just the
    /// failing one: MariaDB's SET GLOBAL gtid_slave_pos fails with 1198 while any connection
    /// runs (measured on 10.11 with a second, healthy named connection); MySQL's empty GTID
    /// transaction does not care.
    pub fn gtid_skip_needs_every_channel_stopped(&self, by_gtid: bool) -> bool {
        self.kind == Kind::Mariadb && by_gtid
    }

    /// Privileges that let an account write despite the read-only state (any one suffices);
    /// empty: nobody can.
    pub fn read_only_bypass(&self, state: crate::vocab::ReadOnly) -> &'static [&'static str] {
        use crate::vocab::ReadOnly;
        match (self.kind, state) {
            (_, ReadOnly::Off) => &["USAGE"],
            // MariaDB 10.11 split READ_ONLY ADMIN out of SUPER.
            (Kind::Mariadb, _) if self.at_least(10, 11, 0) => &["READ_ONLY ADMIN"],
            (Kind::Mariadb, _) => &["READ_ONLY ADMIN", "SUPER"],
            (Kind::Mysql, ReadOnly::ReadOnly) => &["CONNECTION_ADMIN", "SUPER"],
            (Kind::Mysql, ReadOnly::SuperReadOnly) => &[],
        }
    }

    /// Privileges that may change read_only / super_read_only (any one suffices).
    pub fn set_read_only_privileges(&self) -> &'static [&'static str] {
        match self.kind {
            Kind::Mariadb if self.at_least(10, 11, 0) => &["READ_ONLY ADMIN"],
            Kind::Mariadb => &["READ_ONLY ADMIN", "SUPER"],
            Kind::Mysql => &["SYSTEM_VARIABLES_ADMIN", "SUPER"],
        }
    }

    /// The server has GTIDs: MariaDB always; MySQL with gtid_mode=ON.
    pub fn has_gtids(&self, gtid_mode_on: bool) -> bool {
        self.kind == Kind::Mariadb || gtid_mode_on
    }

    /// GTIDs are on for a channel: skips must name the GTID, never the skip counter.
    pub fn gtids_on(&self, gtid_mode_on: bool, channel_uses_gtid: bool) -> bool {
        match self.kind {
            Kind::Mysql => gtid_mode_on,
            Kind::Mariadb => channel_uses_gtid,
        }
    }

    /// The query that reports GTID state: MySQL's executed set, MariaDB's positions.
    pub fn gtid_state_query(&self) -> &'static str {
        match self.kind {
            Kind::Mysql => {
                "SELECT @@GLOBAL.gtid_mode, @@GLOBAL.gtid_executed, @@GLOBAL.server_uuid, NULL"
            }
            Kind::Mariadb => {
                "SELECT IF(@@GLOBAL.gtid_slave_pos <> '' OR @@GLOBAL.gtid_binlog_pos <> '', 'ON', 'OFF'), \
                 @@GLOBAL.gtid_current_pos, NULL, @@GLOBAL.gtid_slave_pos"
            }
        }
    }
}

/// A column of the replica status read by name; the names changed in MySQL 8.0.22, and
/// column order changes between versions, so never read by position.
pub fn status_column_names(canonical: &'static str) -> &'static [&'static str] {
    match canonical {
        "io_running" => &["Replica_IO_Running", "Slave_IO_Running"],
        "sql_running" => &["Replica_SQL_Running", "Slave_SQL_Running"],
        "sql_running_state" => &["Replica_SQL_Running_State", "Slave_SQL_Running_State"],
        "source_host" => &["Source_Host", "Master_Host"],
        "source_port" => &["Source_Port", "Master_Port"],
        "source_user" => &["Source_User", "Master_User"],
        "source_log_file" => &["Source_Log_File", "Master_Log_File"],
        "read_source_log_pos" => &["Read_Source_Log_Pos", "Read_Master_Log_Pos"],
        "relay_source_log_file" => &["Relay_Source_Log_File", "Relay_Master_Log_File"],
        "exec_source_log_pos" => &["Exec_Source_Log_Pos", "Exec_Master_Log_Pos"],
        "seconds_behind" => &["Seconds_Behind_Source", "Seconds_Behind_Master"],
        "source_server_id" => &["Source_Server_Id", "Master_Server_Id"],
        "source_uuid" => &["Source_UUID", "Master_UUID"],
        "channel" => &["Channel_Name", "Connection_name"],
        "auto_position" => &["Auto_Position"],
        "source_ssl_allowed" => &["Source_SSL_Allowed", "Master_SSL_Allowed"],
        "get_source_public_key" => &["Get_Source_public_key", "Get_master_public_key"],
        "source_public_key_path" => &["Source_public_key_path", "Master_public_key_path"],
        "using_gtid" => &["Using_Gtid"],
        "gtid_io_pos" => &["Gtid_IO_Pos"],
        "retrieved_gtid_set" => &["Retrieved_Gtid_Set"],
        "executed_gtid_set" => &["Executed_Gtid_Set"],
        "last_io_errno" => &["Last_IO_Errno"],
        "last_io_error" => &["Last_IO_Error"],
        "last_io_error_timestamp" => &["Last_IO_Error_Timestamp"],
        "last_sql_errno" => &["Last_SQL_Errno"],
        "last_sql_error" => &["Last_SQL_Error"],
        "last_sql_error_timestamp" => &["Last_SQL_Error_Timestamp"],
        "relay_log_file" => &["Relay_Log_File"],
        "relay_log_pos" => &["Relay_Log_Pos"],
        "sql_delay" => &["SQL_Delay"],
        "parallel_mode" => &["Parallel_Mode"],
        "replicate_do_db" => &["Replicate_Do_DB"],
        "replicate_ignore_db" => &["Replicate_Ignore_DB"],
        "replicate_do_table" => &["Replicate_Do_Table"],
        "replicate_ignore_table" => &["Replicate_Ignore_Table"],
        "replicate_wild_do_table" => &["Replicate_Wild_Do_Table"],
        "replicate_wild_ignore_table" => &["Replicate_Wild_Ignore_Table"],
        _ => &[],
    }
}

/// MariaDB: gtid_slave_pos with the failing GTID's domain advanced to it (None for a MySQL
/// GTID; a position that is not one is replaced by the GTID alone).
pub fn advanced_slave_pos(current: &str, gtid: &Gtid) -> Option<String> {
    let Gtid::Mariadb { .. } = gtid else {
        return None;
    };
    let pos = MariadbGtidList::parse(current).unwrap_or_default();
    Some(pos.advanced_to(gtid).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(v: &str) -> Flavor {
        Flavor::parse(v).unwrap()
    }

    #[test]
    fn parses_versions() {
        assert_eq!(
            f("10.11.6-MariaDB-0+deb12u1-log").to_string(),
            "MariaDB 10.11.6"
        );
        assert_eq!(f("5.5.5-10.6.12-MariaDB").to_string(), "MariaDB 10.6.12");
        assert_eq!(f("8.0.36-0ubuntu0.22.04.1").to_string(), "MySQL 8.0.36");
        assert_eq!(f("5.7.44-log").to_string(), "MySQL 5.7.44");
        assert_eq!(f("9.7.0").to_string(), "MySQL 9.7.0");
        assert_eq!(f("11.4.2-MariaDB").kind, Kind::Mariadb);
        assert!(Flavor::parse("garbage").is_none());
    }

    #[test]
    fn status_statements_per_flavor() {
        assert_eq!(f("5.7.44").show_replica_status(), "SHOW SLAVE STATUS");
        assert_eq!(f("8.0.21").show_replica_status(), "SHOW SLAVE STATUS");
        assert_eq!(f("8.0.22").show_replica_status(), "SHOW REPLICA STATUS");
        assert_eq!(f("8.4.3").show_replica_status(), "SHOW REPLICA STATUS");
        assert_eq!(f("9.7.0").show_replica_status(), "SHOW REPLICA STATUS");
        assert_eq!(
            f("10.11.6-MariaDB").show_replica_status(),
            "SHOW ALL SLAVES STATUS"
        );
        assert_eq!(
            f("11.4.2-MariaDB").show_replica_status(),
            "SHOW ALL SLAVES STATUS"
        );
    }

    #[test]
    fn start_stop_per_flavor() {
        assert_eq!(f("5.7.44").stop_replica(Thread::Both, ""), "STOP SLAVE");
        assert_eq!(
            f("8.0.36").start_replica(Thread::Sql, "ch1"),
            "START REPLICA SQL_THREAD FOR CHANNEL 'ch1'"
        );
        assert_eq!(
            f("9.7.0").stop_replica(Thread::Io, ""),
            "STOP REPLICA IO_THREAD"
        );
        assert_eq!(
            f("10.11.6-MariaDB").stop_replica(Thread::Both, ""),
            "STOP SLAVE"
        );
        assert_eq!(
            f("10.11.6-MariaDB").start_replica(Thread::Sql, "east"),
            "START SLAVE 'east' SQL_THREAD"
        );
    }

    #[test]
    fn skip_counter_per_flavor() {
        assert_eq!(
            f("5.7.44").skip_counter_variable(),
            "sql_slave_skip_counter"
        );
        assert_eq!(
            f("8.0.25").skip_counter_variable(),
            "sql_slave_skip_counter"
        );
        assert_eq!(
            f("8.0.26").skip_counter_variable(),
            "sql_replica_skip_counter"
        );
        assert_eq!(
            f("8.4.0").skip_counter_variable(),
            "sql_replica_skip_counter"
        );
        assert_eq!(
            f("10.11.6-MariaDB").set_skip_counter("east", 1),
            vec![
                "SET @@default_master_connection = 'east'".to_string(),
                "SET GLOBAL sql_slave_skip_counter = 1".to_string()
            ]
        );
        assert_eq!(
            f("5.7.44").worker_transaction_column(),
            Some("LAST_SEEN_TRANSACTION")
        );
        assert_eq!(
            f("8.0.36").worker_transaction_column(),
            Some("APPLYING_TRANSACTION")
        );
    }

    #[test]
    fn gtid_skip_and_other_channels() {
        assert!(f("10.11.6-MariaDB").gtid_skip_needs_every_channel_stopped(true));
        assert!(!f("10.11.6-MariaDB").gtid_skip_needs_every_channel_stopped(false));
        assert!(!f("9.7.0").gtid_skip_needs_every_channel_stopped(true));
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("we`ird name"), "`we``ird name`");
        assert_eq!(quote_string("it's\\"), "'it''s\\\\'");
    }
}
