//! Statements about the session and the server rather than a table's rows: named locks,
//! session settings, grants, GTID state, replication status tables. Flavor-specific ones are
//! in `crate::flavor`.

use super::Statement;
use super::quote_string;
use crate::value::Cell;

/// `SELECT GET_LOCK(?, 0)`: takes the named lock without waiting (1: taken, 0: held by
/// another session), the name bound.
pub fn get_lock(name: &str) -> Statement {
    Statement::plain("SELECT GET_LOCK(?, 0)").params(vec![Cell::Text(name.to_string())])
}

/// `SELECT GET_LOCK('name', 0)` with a constant name written in: one text round trip, no
/// statement to prepare.
pub fn get_lock_const(name: &'static str) -> Statement {
    Statement::plain(format!("SELECT GET_LOCK({}, 0)", quote_string(name)))
}

/// `SELECT RELEASE_LOCK('name')` with a constant name written in.
pub fn release_lock_const(name: &'static str) -> Statement {
    Statement::plain(format!("SELECT RELEASE_LOCK({})", quote_string(name)))
}

/// `SELECT IS_FREE_LOCK('name')` with a constant name written in (0: another session
/// holds it).
pub fn is_free_lock_const(name: &'static str) -> Statement {
    Statement::plain(format!("SELECT IS_FREE_LOCK({})", quote_string(name)))
}

/// `SET SESSION wait_timeout = n`: how long the server keeps an idle session.
pub fn session_wait_timeout(seconds: u64) -> Statement {
    Statement::plain(format!("SET SESSION wait_timeout = {seconds}"))
}

/// MySQL 8+ caches information_schema's table statistics for a day: this session reads them
/// fresh.
pub fn fresh_table_statistics() -> Statement {
    Statement::plain("SET SESSION information_schema_stats_expiry = 0")
}

/// The account's grants, one per row.
pub fn show_grants() -> Statement {
    Statement::plain("SHOW GRANTS FOR CURRENT_USER()")
}

/// The roles active in this session: MySQL `NONE` or `` `r1`@`%`,`r2`@`%` ``; MariaDB NULL
/// or the role's name.
pub fn current_role() -> Statement {
    Statement::plain("SELECT CURRENT_ROLE()")
}

/// MySQL: the account's grants with those of its active roles expanded (plain SHOW GRANTS
/// names a role granted, not what it grants).
pub fn show_grants_using(roles: &[(String, String)]) -> Statement {
    let list: Vec<String> = roles
        .iter()
        .map(|(name, host)| format!("{}@{}", quote_string(name), quote_string(host)))
        .collect();
    Statement::plain(format!(
        "SHOW GRANTS FOR CURRENT_USER() USING {}",
        list.join(", ")
    ))
}

/// MariaDB: what a role grants.
pub fn show_grants_for_role(role: &str) -> Statement {
    Statement::plain(format!("SHOW GRANTS FOR {}", quote_string(role)))
}

/// The server's threads (binlog dump threads among them: the replicas connected to it).
pub fn processlist() -> Statement {
    Statement::plain("SHOW PROCESSLIST")
}

/// The server's id.
pub fn server_id() -> Statement {
    Statement::plain("SELECT @@server_id")
}

/// Whether the server writes a binary log (1) or not (0).
pub fn log_bin() -> Statement {
    Statement::plain("SELECT @@log_bin")
}

/// The server's binary logs, oldest first: name and size.
pub fn binary_logs() -> Statement {
    Statement::plain("SHOW BINARY LOGS")
}

/// Up to `limit` events of binary log `file` from position `pos` (Log_name, Pos, Event_type,
/// Server_id, End_log_pos, Info). MySQL needs REPLICATION SLAVE, MariaDB 10.5.2+ BINLOG
/// MONITOR. The server stops reading at the limit.
pub fn binlog_events(file: &str, pos: u64, limit: u64) -> Statement {
    Statement::plain(format!(
        "SHOW BINLOG EVENTS IN {} FROM {pos} LIMIT {limit}",
        quote_string(file)
    ))
}

/// The AUTO_INCREMENT settings new sessions get: increment and offset.
pub fn auto_increment_settings() -> Statement {
    Statement::plain("SELECT @@GLOBAL.auto_increment_increment, @@GLOBAL.auto_increment_offset")
}

/// MySQL: the GTIDs the server executed.
pub fn gtid_executed() -> Statement {
    Statement::plain("SELECT @@GLOBAL.gtid_executed")
}

/// MariaDB: the last GTID of each domain and server in the server's binlog.
pub fn gtid_binlog_state() -> Statement {
    Statement::plain("SELECT @@global.gtid_binlog_state")
}

/// MariaDB: what the server has, written to its binlog or applied as a replica
/// (gtid_binlog_state and gtid_slave_pos, one list).
pub fn gtid_binlog_state_and_slave_pos() -> Statement {
    Statement::plain("SELECT CONCAT_WS(',', @@global.gtid_binlog_state, @@global.gtid_slave_pos)")
}

/// MySQL: each applier worker's state, with `trx_column` the column naming the transaction
/// it applies (its name differs between versions).
pub fn applier_workers(trx_column: &'static str) -> Statement {
    Statement::plain(format!(
        "SELECT CHANNEL_NAME, WORKER_ID, SERVICE_STATE, LAST_ERROR_NUMBER, LAST_ERROR_MESSAGE, \
         LAST_ERROR_TIMESTAMP, {trx_column} FROM performance_schema.replication_applier_status_by_worker \
         ORDER BY CHANNEL_NAME, WORKER_ID"
    ))
}

/// `channel`'s applier workers this account can see, those of them waiting for events, and
/// at least how many it should see (MariaDB's `slave_parallel_threads`; MySQL 8.0 and later
/// list even a single-threaded applier, 5.7 lists no worker then: `single_listed`). MySQL: performance_schema's workers waiting for their
/// coordinator, or the single applier having read all its relay log. MariaDB: its parallel
/// workers (one pool for every connection) waiting for work; an account without PROCESS sees
/// none of them.
pub fn applier_workers_idle(mariadb: bool, single_listed: bool, channel: &str) -> Statement {
    match mariadb {
        true => Statement::plain(
            "SELECT COUNT(*), COALESCE(SUM(STATE LIKE 'Waiting for work from SQL thread%'), 0), \
             @@global.slave_parallel_threads FROM information_schema.PROCESSLIST \
             WHERE COMMAND = 'Slave_worker'",
        ),
        false => Statement::plain(format!(
            "SELECT COUNT(*), COALESCE(SUM(t.PROCESSLIST_STATE LIKE 'Waiting for an event from Coordinator%' \
             OR t.PROCESSLIST_STATE LIKE '%has read all relay log%'), 0), {} \
             FROM performance_schema.replication_applier_status_by_worker w \
             JOIN performance_schema.threads t ON t.THREAD_ID = w.THREAD_ID \
             WHERE w.CHANNEL_NAME = ?",
            u8::from(single_listed)
        ))
        .params(vec![crate::value::Cell::Text(channel.to_string())]),
    }
}

/// The managed services' procedures in the `mysql` schema this account can see (a routine
/// is listed to an account that may execute, alter or create it, or is its definer).
pub fn provider_procedures() -> Statement {
    Statement::plain(
        "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'mysql' \
         AND ROUTINE_TYPE = 'PROCEDURE' AND (ROUTINE_NAME LIKE 'rds\\_%' OR ROUTINE_NAME LIKE 'az\\_%')",
    )
}

/// The authentication plugin of each account named `user` (any host), on the server holding
/// the account (a replication user: the source). Needs SELECT on mysql.user.
pub fn account_plugins(user: &str) -> Statement {
    Statement::plain("SELECT DISTINCT plugin FROM mysql.user WHERE user = ? ORDER BY plugin")
        .params(vec![crate::value::Cell::Text(user.to_string())])
}

/// Amazon RDS: its settings (name, value, description), `binlog retention hours` among them.
pub fn rds_show_configuration() -> Statement {
    Statement::plain("CALL mysql.rds_show_configuration()")
}

/// MySQL 8.0+ and MariaDB 10.6+: seconds before binary logs are purged (0: never).
pub fn binlog_expire_logs_seconds() -> Statement {
    Statement::plain("SELECT @@GLOBAL.binlog_expire_logs_seconds")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_and_settings_read_as_sent_before() {
        assert_eq!(
            get_lock_const("replmend.repair").sql,
            "SELECT GET_LOCK('replmend.repair', 0)"
        );
        assert_eq!(
            is_free_lock_const("replmend.repair").sql,
            "SELECT IS_FREE_LOCK('replmend.repair')"
        );
        let st = get_lock("replmend.watch");
        assert_eq!(st.sql, "SELECT GET_LOCK(?, 0)");
        assert_eq!(st.params, vec![Cell::Text("replmend.watch".into())]);
        assert_eq!(
            binlog_events("n2-bin.000001", 4, 3).sql,
            "SHOW BINLOG EVENTS IN 'n2-bin.000001' FROM 4 LIMIT 3"
        );
        assert_eq!(
            session_wait_timeout(31536000).sql,
            "SET SESSION wait_timeout = 31536000"
        );
    }
}
