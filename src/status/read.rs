//! Reads replica status from a live server (the edge) and turns its rows into the model (pure).

use std::collections::BTreeMap;

use thiserror::Error;

use super::model::*;
use crate::conn::Server;
use crate::flavor::{Flavor, status_column_names};
use crate::sql::Statement;

#[derive(Debug, Error)]
pub enum StatusError {
    #[error("{endpoint} is not a replica: {statement} returned no channel")]
    NotAReplica {
        endpoint: crate::conn::Account,
        statement: &'static str,
    },
    #[error("{endpoint}: {statement} failed: {}", crate::describe::describe_mysql(.source))]
    Query {
        endpoint: Box<crate::conn::Account>,
        statement: String,
        source: mysql::Error,
    },
}

/// One result row, by column name. Values are text as the server sends them; bytes that are not
/// UTF-8 (binary keys quoted in an error message) are kept lossily, for display only.
pub type RowMap = BTreeMap<String, Option<String>>;

pub fn query_maps(server: &mut Server, st: &Statement) -> Result<Vec<RowMap>, StatusError> {
    let rows: Vec<mysql::Row> = server.all(st).map_err(|source| StatusError::Query {
        endpoint: Box::new(server.spec.account()),
        statement: st.sql.clone(),
        source,
    })?;
    Ok(rows.into_iter().map(row_to_map).collect())
}

pub fn row_to_map(row: mysql::Row) -> RowMap {
    let names: Vec<String> = row
        .columns_ref()
        .iter()
        .map(|c| c.name_str().into_owned())
        .collect();
    let values = row.unwrap();
    names
        .into_iter()
        .zip(values)
        .map(|(n, v)| (n, value_text(v)))
        .collect()
}

fn value_text(v: mysql::Value) -> Option<String> {
    use mysql::Value;
    match v {
        Value::NULL => None,
        Value::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
        Value::Int(i) => Some(i.to_string()),
        Value::UInt(u) => Some(u.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Double(d) => Some(d.to_string()),
        other => Some(other.as_sql(true).trim_matches('\'').to_string()),
    }
}

fn get<'a>(row: &'a RowMap, canonical: &'static str) -> Option<&'a str> {
    status_column_names(canonical)
        .iter()
        .find_map(|name| row.get(*name).and_then(|v| v.as_deref()))
}

fn get_nonempty(row: &RowMap, canonical: &'static str) -> Option<String> {
    get(row, canonical)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn get_num<T: std::str::FromStr>(row: &RowMap, canonical: &'static str) -> Option<T> {
    get(row, canonical).and_then(|s| s.trim().parse().ok())
}

fn error_info(
    row: &RowMap,
    num: &'static str,
    msg: &'static str,
    ts: &'static str,
) -> Option<ErrorInfo> {
    let number: u32 = get_num(row, num).unwrap_or(0);
    if number == 0 {
        return None;
    }
    Some(ErrorInfo {
        number,
        message: get(row, msg).unwrap_or_default().to_string(),
        timestamp: get_nonempty(row, ts),
    })
}

/// One channel from one row of SHOW REPLICA STATUS / SHOW SLAVE STATUS / SHOW ALL SLAVES STATUS.
pub fn channel_from_row(row: &RowMap) -> ChannelStatus {
    let io_thread = ThreadState::parse(get(row, "io_running").unwrap_or("No"));
    let sql_thread = ThreadState::parse(get(row, "sql_running").unwrap_or("No"));
    let last_io_error = error_info(
        row,
        "last_io_errno",
        "last_io_error",
        "last_io_error_timestamp",
    );
    let last_sql_error = error_info(
        row,
        "last_sql_errno",
        "last_sql_error",
        "last_sql_error_timestamp",
    );
    let gtid_positioning = get(row, "auto_position") == Some("1")
        || get(row, "using_gtid").is_some_and(|v| !v.eq_ignore_ascii_case("no"));
    ChannelStatus {
        name: get(row, "channel").unwrap_or_default().to_string(),
        health: ChannelStatus::judge(io_thread, sql_thread, &last_io_error, &last_sql_error),
        source_host: get(row, "source_host").unwrap_or_default().to_string(),
        source_port: get_num(row, "source_port").unwrap_or(0),
        source_server_id: get_num(row, "source_server_id"),
        source_uuid: get_nonempty(row, "source_uuid"),
        io_thread,
        sql_thread,
        sql_state: get_nonempty(row, "sql_running_state"),
        last_io_error,
        last_sql_error,
        source_log_file: get_nonempty(row, "source_log_file"),
        read_source_log_pos: get_num(row, "read_source_log_pos"),
        relay_source_log_file: get_nonempty(row, "relay_source_log_file"),
        exec_source_log_pos: get_num(row, "exec_source_log_pos"),
        relay_log_file: get_nonempty(row, "relay_log_file"),
        relay_log_pos: get_num(row, "relay_log_pos"),
        seconds_behind_source: get_num(row, "seconds_behind"),
        gtid_positioning,
        retrieved_gtid_set: get_nonempty(row, "retrieved_gtid_set").map(|s| s.replace('\n', "")),
        executed_gtid_set: get_nonempty(row, "executed_gtid_set").map(|s| s.replace('\n', "")),
        gtid_io_pos: get_nonempty(row, "gtid_io_pos"),
        workers: Vec::new(),
        filters: filters_from_row(row),
        source_ssl: get(row, "source_ssl_allowed").map(|v| !v.eq_ignore_ascii_case("no")),
        source_user: get_nonempty(row, "source_user"),
        source_public_key: get(row, "get_source_public_key")
            .map(|v| v == "1" || get_nonempty(row, "source_public_key_path").is_some()),
        source_user_plugin: None,
    }
}

fn filters_from_row(row: &RowMap) -> super::filters::Filters {
    use super::filters::list;
    super::filters::Filters {
        do_db: list(get(row, "replicate_do_db")),
        ignore_db: list(get(row, "replicate_ignore_db")),
        do_table: list(get(row, "replicate_do_table")),
        ignore_table: list(get(row, "replicate_ignore_table")),
        wild_do_table: list(get(row, "replicate_wild_do_table")),
        wild_ignore_table: list(get(row, "replicate_wild_ignore_table")),
    }
}

/// Applier workers, by channel, from one row of replication_applier_status_by_worker.
pub fn worker_from_row(row: &RowMap, transaction_column: &str) -> (String, WorkerStatus) {
    let text = |k: &str| row.get(k).cloned().flatten().unwrap_or_default();
    let number: u32 = text("LAST_ERROR_NUMBER").parse().unwrap_or(0);
    let ts = text("LAST_ERROR_TIMESTAMP");
    let last_error = (number != 0).then(|| ErrorInfo {
        number,
        message: text("LAST_ERROR_MESSAGE"),
        timestamp: (!ts.is_empty() && !ts.starts_with("0000")).then_some(ts),
    });
    let trx = text(transaction_column);
    (
        text("CHANNEL_NAME"),
        WorkerStatus {
            worker_id: text("WORKER_ID").parse().unwrap_or(0),
            service_state: text("SERVICE_STATE"),
            last_error,
            applying_transaction: (!trx.is_empty()).then_some(trx),
        },
    )
}

/// Fills in the time of each channel's applier error from rows of (CHANNEL_NAME,
/// LAST_ERROR_NUMBER, LAST_ERROR_TIMESTAMP), when it is the same error.
fn add_error_times(channels: &mut [ChannelStatus], rows: &[RowMap]) {
    let text = |r: &RowMap, k: &str| r.get(k).cloned().flatten().unwrap_or_default();
    for ch in channels {
        let Some(e) = ch.last_sql_error.as_mut().filter(|e| e.timestamp.is_none()) else {
            continue;
        };
        e.timestamp = rows
            .iter()
            .find(|r| {
                text(r, "CHANNEL_NAME") == ch.name
                    && text(r, "LAST_ERROR_NUMBER") == e.number.to_string()
            })
            .map(|r| text(r, "LAST_ERROR_TIMESTAMP"))
            .filter(|ts| !ts.is_empty() && !ts.starts_with("0000"));
    }
}

/// gtid_mode, executed set / current pos, server_uuid, gtid_slave_pos.
type GtidState = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

pub fn server_info(server: &mut Server) -> Result<ServerInfo, StatusError> {
    let flavor: Flavor = server.flavor;
    let q = Statement::plain(flavor.gtid_state_query());
    let row: Option<GtidState> = server.first(&q).map_err(|source| StatusError::Query {
        endpoint: Box::new(server.spec.account()),
        statement: q.sql.clone(),
        source,
    })?;
    let (gtid_mode, gtid_executed, _, gtid_slave_pos) = row.unwrap_or_default();
    Ok(ServerInfo {
        endpoint: server.spec.address(),
        flavor,
        version: server.version_string.clone(),
        server_id: server.server_id,
        server_uuid: server.server_uuid.clone(),
        gtid_mode,
        gtid_executed: gtid_executed.map(|s| s.replace('\n', "")),
        gtid_slave_pos: gtid_slave_pos.filter(|s| !s.is_empty()),
    })
}

/// Reads the replica's whole status. Workers are read before anything else could restart them,
/// since START REPLICA clears APPLYING_TRANSACTION.
/// The channels' status rows alone (one round trip, no workers, error times or server
/// facts): what a wait that runs again and again needs to know (verify's catch-up).
pub fn read_channels(server: &mut Server) -> Result<Vec<ChannelStatus>, StatusError> {
    let statement = server.flavor.show_replica_status();
    let rows = query_maps(server, &Statement::plain(statement))?;
    Ok(rows.iter().map(channel_from_row).collect())
}

/// Whether any applier worker of `channel` may be doing something
/// (`sql::admin::applier_workers_idle`): true unless every worker it should see is seen
/// waiting. A caller deciding that nothing will move must not guess: workers it cannot see
/// (no PROCESS, no performance_schema) count as busy.
pub fn workers_busy(server: &mut Server, channel: &str) -> bool {
    let f = server.flavor;
    let st =
        crate::sql::admin::applier_workers_idle(f.is_mariadb(), f.lists_single_applier(), channel);
    let seen: mysql::Result<Option<(u64, u64, u64)>> = server.first(&st);
    match seen {
        Ok(Some((visible, idle, expected))) => idle < visible || visible < expected,
        _ => true,
    }
}

pub fn read_status(server: &mut Server) -> Result<StatusReport, StatusError> {
    let flavor = server.flavor;
    let mut workers: Vec<(String, WorkerStatus)> = Vec::new();
    if let Some(trx_col) = flavor.worker_transaction_column() {
        let st = crate::sql::admin::applier_workers(trx_col);
        // performance_schema may be off or not granted: the channel status still stands.
        if let Ok(rows) = query_maps(server, &st) {
            workers = rows.iter().map(|r| worker_from_row(r, trx_col)).collect();
        }
    }
    let statement = flavor.show_replica_status();
    let rows = query_maps(server, &Statement::plain(statement))?;
    if rows.is_empty() {
        return Err(StatusError::NotAReplica {
            endpoint: server.spec.account(),
            statement,
        });
    }
    let mut channels: Vec<ChannelStatus> = rows.iter().map(channel_from_row).collect();
    for ch in &mut channels {
        ch.workers = workers
            .iter()
            .filter(|(name, _)| *name == ch.name)
            .map(|(_, w)| w.clone())
            .collect();
    }
    if let Some(sql) = flavor.applier_error_time_query()
        && let Ok(rows) = query_maps(server, &Statement::plain(sql))
    {
        add_error_times(&mut channels, &rows);
    }
    let server_info = server_info(server)?;
    Ok(StatusReport {
        schema: STATUS_SCHEMA,
        server: server_info,
        channels,
        errant: Vec::new(),
        capabilities: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> RowMap {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Some(v.to_string())))
            .collect()
    }

    // Columns as MySQL 5.7's SHOW SLAVE STATUS names them (the manual's example output),
    // with the seed incident's error.
    #[test]
    fn mysql57_slave_status_row() {
        let row = map(&[
            ("Slave_IO_State", "Waiting for master to send event"),
            ("Master_Host", "10.0.0.2"),
            ("Master_Port", "3306"),
            ("Master_Log_File", "mysql2-bin.000006"),
            ("Read_Master_Log_Pos", "560099000"),
            ("Relay_Master_Log_File", "mysql2-bin.000006"),
            ("Exec_Master_Log_Pos", "560082351"),
            ("Slave_IO_Running", "Yes"),
            ("Slave_SQL_Running", "No"),
            ("Last_Errno", "1062"),
            ("Last_SQL_Errno", "1062"),
            (
                "Last_SQL_Error",
                "Could not execute Write_rows event on table zeus.xinyan_cache; Duplicate entry 'b98e4fab203607559fc5347b60cb64a41cf50a79650fbda3a1a4be5a1cfd16d9' for key 'PRIMARY', Error_code: 1062; handler error HA_ERR_FOUND_DUPP_KEY; the event's master log mysql2-bin.000006, end_log_pos 560082858",
            ),
            ("Last_SQL_Error_Timestamp", "191029 03:29:51"),
            ("Last_IO_Errno", "0"),
            ("Last_IO_Error", ""),
            ("Seconds_Behind_Master", ""),
            ("Master_Server_Id", "2"),
            ("Auto_Position", "0"),
            ("Channel_Name", ""),
        ]);
        let ch = channel_from_row(&row);
        assert_eq!(ch.health, Health::SqlError);
        assert_eq!(ch.source_host, "10.0.0.2");
        assert_eq!(ch.exec_source_log_pos, Some(560082351));
        assert_eq!(
            ch.relay_source_log_file.as_deref(),
            Some("mysql2-bin.000006")
        );
        assert_eq!(ch.last_sql_error.as_ref().unwrap().number, 1062);
        assert_eq!(ch.seconds_behind_source, None);
        assert!(!ch.gtid_positioning);
    }

    // MySQL 8.0.22+ names (SHOW REPLICA STATUS).
    #[test]
    fn mysql8_replica_status_row() {
        let row = map(&[
            ("Source_Host", "127.0.0.1"),
            ("Source_Port", "3310"),
            ("Replica_IO_Running", "Yes"),
            ("Replica_SQL_Running", "Yes"),
            ("Seconds_Behind_Source", "0"),
            ("Last_SQL_Errno", "0"),
            ("Auto_Position", "1"),
            (
                "Executed_Gtid_Set",
                "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,\n4f22aa47-71ca-11e1-9e33-c80aa9429562:1",
            ),
            ("Channel_Name", "east"),
        ]);
        let ch = channel_from_row(&row);
        assert_eq!(ch.health, Health::Healthy);
        assert_eq!(ch.name, "east");
        assert!(ch.gtid_positioning);
        assert!(!ch.executed_gtid_set.unwrap().contains('\n'));
    }

    // MariaDB's SHOW ALL SLAVES STATUS: Connection_name first, Using_Gtid, Gtid_IO_Pos.
    #[test]
    fn mariadb_all_slaves_status_row() {
        let row = map(&[
            ("Connection_name", ""),
            ("Master_Host", "127.0.0.1"),
            ("Master_Port", "3307"),
            ("Slave_IO_Running", "Yes"),
            ("Slave_SQL_Running", "No"),
            ("Last_SQL_Errno", "1062"),
            (
                "Last_SQL_Error",
                "Could not execute Write_rows_v1 event on table zeus.xinyan_cache; Duplicate entry 'b98e' for key 'PRIMARY', Error_code: 1062; handler error HA_ERR_FOUND_DUPP_KEY; the event's master log maria2-bin.000001, end_log_pos 1733",
            ),
            ("Using_Gtid", "Slave_Pos"),
            ("Gtid_IO_Pos", "2-2-6"),
        ]);
        let ch = channel_from_row(&row);
        assert_eq!(ch.health, Health::SqlError);
        assert!(ch.gtid_positioning);
        assert_eq!(ch.gtid_io_pos.as_deref(), Some("2-2-6"));
    }

    #[test]
    fn worker_row() {
        let row = map(&[
            ("CHANNEL_NAME", ""),
            ("WORKER_ID", "1"),
            ("SERVICE_STATE", "OFF"),
            ("LAST_ERROR_NUMBER", "1062"),
            (
                "LAST_ERROR_MESSAGE",
                "Worker 1 failed executing transaction 'u:3' at source log mysql1-bin.000001, end_log_pos 914; Could not execute Write_rows event",
            ),
            ("LAST_ERROR_TIMESTAMP", "2026-11-24 10:00:00.123456"),
            ("APPLYING_TRANSACTION", "u:3"),
        ]);
        let (ch, w) = worker_from_row(&row, "APPLYING_TRANSACTION");
        assert_eq!(ch, "");
        assert_eq!(w.applying_transaction.as_deref(), Some("u:3"));
        assert_eq!(w.last_error.unwrap().number, 1062);
        let idle = map(&[
            ("LAST_ERROR_NUMBER", "0"),
            ("LAST_ERROR_TIMESTAMP", "0000-00-00 00:00:00.000000"),
            ("APPLYING_TRANSACTION", ""),
        ]);
        let (_, w) = worker_from_row(&idle, "APPLYING_TRANSACTION");
        assert!(w.last_error.is_none() && w.applying_transaction.is_none());
    }
}
