//! Parses applier error texts, as servers report them and as DBAs paste them, into typed facts.
//! The text is never the source of row values: a composite key is joined with '-', values are
//! truncated by MariaDB, and quotes inside values are not escaped. It gives the error class,
//! the coordinates, the key's name and the failing GTID; the row image gives the values.

use std::sync::LazyLock;

// regex-lite, not regex: these few patterns match short texts once or twice a run, and
// regex's compilation (DFAs and all) was 2.7 ms of a batch repair's critical path; lite's 0.3.
use regex_lite::Regex;
use serde::Serialize;
use thiserror::Error;

use crate::vocab::{ConflictKind, RowsEventKind};

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ParsedError {
    pub errno: u32,
    pub event: Option<RowsEventKind>,
    /// A statement-based (Query event) failure: there is no row image to decode.
    pub statement_based: bool,
    /// `db.table` as the text spells it (unquoted, so ambiguous if names contain dots).
    pub table_text: Option<String>,
    pub key_name: Option<String>,
    pub quoted_value: Option<String>,
    pub source_log_file: Option<String>,
    pub end_log_pos: Option<u64>,
    pub worker: Option<u32>,
    /// `uuid:n` a multi-threaded MySQL worker names; None for ANONYMOUS.
    pub gtid: Option<String>,
    /// The statement of a statement-based failure.
    pub query: Option<String>,
}

#[derive(Debug, Error, PartialEq)]
pub enum Undiagnosable {
    #[error(
        "error {errno} is not a row conflict replmend can diagnose (it handles 1062 and 1032): {text}"
    )]
    UnknownError { errno: u32, text: String },
    #[error(
        "error {errno} happened in a statement-based event (no row image to decode); query: {query}"
    )]
    StatementBased { errno: u32, query: String },
    #[error("error 1062 on a {event} event is not a conflict replmend knows how to resolve")]
    UnexpectedEvent { event: RowsEventKind },
}

static EVENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"Could not execute (Write|Update|Delete)_rows(?:_v1|_partial)? event on table (.*?); ",
    )
    .unwrap()
});
static DUP: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"Duplicate entry '(?s:(.*))' for key '([^']*)'").unwrap());
static LOG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:the event's|at) (?:master|source) log ([^,\s]+), end_log_pos (\d+)").unwrap()
});
static WORKER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"Worker (\d+) failed executing transaction '([^']*)'").unwrap());
static MARIADB_GTID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\bGtid (\d+-\d+-\d+)").unwrap());
static QUERY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?s)' on query\. Default database: '[^']*'\. Query: '(.*)'$").unwrap()
});
static ERROR_CODE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"Error_code: (\d+)").unwrap());

pub fn parse(errno: u32, text: &str) -> ParsedError {
    let mut p = ParsedError {
        errno,
        ..Default::default()
    };
    if p.errno == 0
        && let Some(c) = ERROR_CODE.captures(text)
    {
        p.errno = c[1].parse().unwrap_or(0);
    }
    if let Some(c) = EVENT.captures(text) {
        p.event = Some(match &c[1] {
            "Write" => RowsEventKind::Write,
            "Update" => RowsEventKind::Update,
            _ => RowsEventKind::Delete,
        });
        p.table_text = Some(c[2].to_string());
    }
    if let Some(c) = DUP.captures(text) {
        p.quoted_value = Some(c[1].to_string());
        p.key_name = Some(strip_table_qualifier(&c[2], p.table_text.as_deref()));
        if p.errno == 0 {
            p.errno = 1062;
        }
    }
    // The failing event's coordinates: the last mention wins, since a worker's message names
    // them twice and the coordinator's summary once.
    if let Some(c) = LOG.captures_iter(text).last() {
        p.source_log_file = Some(c[1].to_string());
        p.end_log_pos = c[2].parse().ok();
    }
    if let Some(c) = WORKER.captures(text) {
        p.worker = c[1].parse().ok();
        let trx = &c[2];
        if !trx.is_empty() && !trx.eq_ignore_ascii_case("ANONYMOUS") {
            p.gtid = Some(trx.to_string());
        }
    }
    if p.gtid.is_none()
        && let Some(c) = MARIADB_GTID.captures(text)
    {
        p.gtid = Some(c[1].to_string());
    }
    // A multi-threaded MySQL worker prefixes the statement error with its own sentence.
    if p.event.is_none() && (text.starts_with("Error '") || text.contains("; Error '")) {
        p.statement_based = true;
        p.query = QUERY.captures(text).map(|c| c[1].to_string());
    }
    p
}

/// MySQL 8.0.19+ qualifies the key with its table (`'t.PRIMARY'`).
fn strip_table_qualifier(key: &str, table_text: Option<&str>) -> String {
    if let Some(table) = table_text.and_then(|t| t.split_once('.').map(|(_, t)| t))
        && let Some(rest) = key.strip_prefix(&format!("{table}."))
    {
        return rest.to_string();
    }
    match key.split_once('.') {
        Some((_, rest)) if table_text.is_none() => rest.to_string(),
        _ => key.to_string(),
    }
}

impl ParsedError {
    pub fn conflict_kind(&self) -> Result<ConflictKind, Undiagnosable> {
        if self.statement_based && matches!(self.errno, 1062 | 1032) {
            return Err(Undiagnosable::StatementBased {
                errno: self.errno,
                query: self.query.clone().unwrap_or_default(),
            });
        }
        match (self.errno, self.event) {
            (1062, Some(RowsEventKind::Write)) => Ok(ConflictKind::DuplicateOnWrite),
            (1062, Some(RowsEventKind::Update)) => Ok(ConflictKind::DuplicateOnUpdate),
            (1062, Some(event @ RowsEventKind::Delete)) => {
                Err(Undiagnosable::UnexpectedEvent { event })
            }
            (1032, Some(RowsEventKind::Update)) => Ok(ConflictKind::MissingOnUpdate),
            (1032, Some(RowsEventKind::Delete)) => Ok(ConflictKind::MissingOnDelete),
            (errno, _) => Err(Undiagnosable::UnknownError {
                errno,
                text: String::new(),
            }),
        }
    }

    /// (schema, table) guessed from the text; the binlog's table map is the authority.
    pub fn table_guess(&self) -> Option<(String, String)> {
        let t = self.table_text.as_deref()?;
        let (db, table) = t.split_once('.')?;
        Some((db.to_string(), table.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The seed incident, MySQL 5.7 (SHOW SLAVE STATUS, DB01).
    const MYSQL57: &str = "Could not execute Write_rows event on table zeus.xinyan_cache; Duplicate entry 'b98e4fab203607559fc5347b60cb64a41cf50a79650fbda3a1a4be5a1cfd16d9' for key 'PRIMARY', Error_code: 1062; handler error HA_ERR_FOUND_DUPP_KEY; the event's master log mysql2-bin.000006, end_log_pos 560082858";
    // MySQL 8.0.19+: table-qualified key name.
    const MYSQL80: &str = "Could not execute Write_rows event on table zeus.xinyan_cache; Duplicate entry 'b98e4fab' for key 'xinyan_cache.PRIMARY', Error_code: 1062; handler error HA_ERR_FOUND_DUPP_KEY; the event's master log mysql1-bin.000001, end_log_pos 914";
    // MySQL 8.4 / 9.x multi-threaded applier, performance_schema worker message.
    const MYSQL9_WORKER: &str = "Worker 1 failed executing transaction '6f2c9f4e-c9a8-11f0-a5d3-5254004b9c1a:3' at source log mysql1-bin.000001, end_log_pos 914; Could not execute Write_rows event on table zeus.xinyan_cache; Duplicate entry 'b98e4fab' for key 'xinyan_cache.PRIMARY', Error_code: 1062; handler error HA_ERR_FOUND_DUPP_KEY; the event's source log mysql1-bin.000001, end_log_pos 914";
    // ... and the coordinator's summary in Last_SQL_Error.
    const MYSQL9_COORD: &str = "Coordinator stopped because there were error(s) in the worker(s). The most recent failure being: Worker 1 failed executing transaction '6f2c9f4e-c9a8-11f0-a5d3-5254004b9c1a:3' at source log mysql1-bin.000001, end_log_pos 914. See error log and/or performance_schema.replication_applier_status_by_worker table for more details about this failure or others, if any.";
    // MySQL 5.7 multi-threaded without GTIDs.
    const MYSQL57_WORKER: &str = "Worker 1 failed executing transaction 'ANONYMOUS' at master log mysql-bin.000003, end_log_pos 1289; Could not execute Update_rows event on table test.t1; Can't find record in 't1', Error_code: 1032; handler error HA_ERR_KEY_NOT_FOUND; the event's master log mysql-bin.000003, end_log_pos 1289";
    // MariaDB 10.11 (measured on this project's sandbox).
    const MARIADB: &str = "Could not execute Write_rows_v1 event on table zeus.xinyan_cache; Duplicate entry 'b98e4fab203607559fc5347b60cb64a41cf50a79650fbda3a1a4be5a1cfd16d9' for key 'PRIMARY', Error_code: 1062; handler error HA_ERR_FOUND_DUPP_KEY; the event's master log maria2-bin.000001, end_log_pos 1733";
    const MARIADB_1032_DELETE: &str = "Could not execute Delete_rows_v1 event on table shop.orders; Can't find record in 'orders', Error_code: 1032; handler error HA_ERR_KEY_NOT_FOUND; the event's master log maria1-bin.000001, end_log_pos 2201";
    // MariaDB error log line with the GTID.
    const MARIADB_LOG: &str = "Slave SQL: Could not execute Write_rows_v1 event on table zeus.xinyan_cache; Duplicate entry 'x-1'q-7' for key 'PRIMARY', Error_code: 1062; handler error HA_ERR_FOUND_DUPP_KEY; the event's master log maria1-bin.000001, end_log_pos 1733, Gtid 1-1-6, Internal MariaDB error code: 1062";
    // Statement-based (Query event), MySQL 8.0.
    const SBR: &str = "Error 'Duplicate entry '1' for key 't.PRIMARY'' on query. Default database: 'test'. Query: 'insert into t values (1, 'a')'";

    #[test]
    fn mysql57_seed() {
        let p = parse(1062, MYSQL57);
        assert_eq!(p.event, Some(RowsEventKind::Write));
        assert_eq!(
            p.table_guess(),
            Some(("zeus".into(), "xinyan_cache".into()))
        );
        assert_eq!(p.key_name.as_deref(), Some("PRIMARY"));
        assert_eq!(p.source_log_file.as_deref(), Some("mysql2-bin.000006"));
        assert_eq!(p.end_log_pos, Some(560082858));
        assert_eq!(p.conflict_kind(), Ok(ConflictKind::DuplicateOnWrite));
        assert_eq!(p.gtid, None);
    }

    #[test]
    fn mysql80_qualified_key() {
        let p = parse(1062, MYSQL80);
        assert_eq!(p.key_name.as_deref(), Some("PRIMARY"));
        assert_eq!(p.end_log_pos, Some(914));
    }

    #[test]
    fn partial_json_updates_are_update_rows() {
        // binlog_row_value_options=PARTIAL_JSON: MySQL names the event Update_rows_partial.
        let p = parse(
            1032,
            "Worker 1 failed executing transaction '2d0651eb-e8cd-11f1-95e8-02fc00000001:4' at source log mysql1-bin.000001, end_log_pos 1274; Could not execute Update_rows_partial event on table docs.profiles; Can't find record in 'profiles', Error_code: 1032; handler error HA_ERR_KEY_NOT_FOUND; the event's source log mysql1-bin.000001, end_log_pos 1274",
        );
        assert_eq!(p.conflict_kind(), Ok(ConflictKind::MissingOnUpdate));
        assert_eq!(p.table_guess(), Some(("docs".into(), "profiles".into())));
    }

    #[test]
    fn mysql9_worker_and_coordinator() {
        let w = parse(1062, MYSQL9_WORKER);
        assert_eq!(w.worker, Some(1));
        assert_eq!(
            w.gtid.as_deref(),
            Some("6f2c9f4e-c9a8-11f0-a5d3-5254004b9c1a:3")
        );
        assert_eq!(w.source_log_file.as_deref(), Some("mysql1-bin.000001"));
        assert_eq!(w.conflict_kind(), Ok(ConflictKind::DuplicateOnWrite));
        let c = parse(1062, MYSQL9_COORD);
        assert_eq!(c.gtid, w.gtid);
        assert_eq!(c.end_log_pos, Some(914));
        assert_eq!(
            c.event, None,
            "the coordinator's text has no event: read the worker's"
        );
    }

    #[test]
    fn mysql57_worker_anonymous_1032() {
        let p = parse(1032, MYSQL57_WORKER);
        assert_eq!(p.gtid, None);
        assert_eq!(p.conflict_kind(), Ok(ConflictKind::MissingOnUpdate));
        assert_eq!(p.source_log_file.as_deref(), Some("mysql-bin.000003"));
    }

    #[test]
    fn mariadb_forms() {
        let p = parse(1062, MARIADB);
        assert_eq!(p.event, Some(RowsEventKind::Write));
        assert_eq!(p.end_log_pos, Some(1733));
        let d = parse(1032, MARIADB_1032_DELETE);
        assert_eq!(d.conflict_kind(), Ok(ConflictKind::MissingOnDelete));
        assert_eq!(d.table_guess(), Some(("shop".into(), "orders".into())));
        let l = parse(0, MARIADB_LOG);
        assert_eq!(l.errno, 1062);
        assert_eq!(l.gtid.as_deref(), Some("1-1-6"));
        // The composite value is ambiguous in text; it is kept for display only.
        assert_eq!(l.quoted_value.as_deref(), Some("x-1'q-7"));
    }

    #[test]
    fn statement_based_is_named() {
        let p = parse(1062, SBR);
        assert!(p.statement_based);
        assert_eq!(p.query.as_deref(), Some("insert into t values (1, 'a')"));
        assert!(matches!(
            p.conflict_kind(),
            Err(Undiagnosable::StatementBased { .. })
        ));
    }

    #[test]
    fn statement_based_behind_a_worker_prefix() {
        let p = parse(
            1062,
            "Worker 1 failed executing transaction 'u:3' at source log mysql1-bin.000001, end_log_pos 1026; Error 'Duplicate entry '1' for key 't.PRIMARY'' on query. Default database: ''. Query: 'INSERT INTO legacy.t VALUES (1, 'source')'",
        );
        assert!(p.statement_based);
        assert_eq!(
            p.query.as_deref(),
            Some("INSERT INTO legacy.t VALUES (1, 'source')")
        );
        assert_eq!(p.gtid.as_deref(), Some("u:3"));
    }

    #[test]
    fn unknown_errors_are_refused() {
        let p = parse(
            1146,
            "Error executing row event: 'Table 'test.nope' doesn't exist'",
        );
        assert!(matches!(
            p.conflict_kind(),
            Err(Undiagnosable::UnknownError { errno: 1146, .. })
        ));
    }
}
