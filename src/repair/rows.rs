//! Row-level writes, always by bound parameters and quoted identifiers, and always after the
//! row has been journaled.

use mysql::prelude::Queryable;

use crate::conn::Server;
use crate::diagnosis::{Row, TableRef};
use crate::flavor::quote_ident;
use crate::schema::TableSchema;
use crate::value::Cell;

fn table_sql(t: &TableRef) -> String {
    format!("{}.{}", quote_ident(&t.schema), quote_ident(&t.name))
}

/// `DELETE … WHERE k1 <=> ? AND …` for exactly this key; returns rows affected.
pub fn delete_by_key(
    conn: &mut mysql::Conn,
    table: &TableRef,
    key: &[(String, Cell)],
) -> mysql::Result<u64> {
    let cond: Vec<String> = key
        .iter()
        .map(|(c, _)| format!("{} <=> ?", quote_ident(c)))
        .collect();
    let sql = format!(
        "DELETE FROM {} WHERE {}",
        table_sql(table),
        cond.join(" AND ")
    );
    let params: Vec<mysql::Value> = key.iter().map(|(_, v)| v.to_param()).collect();
    conn.exec_drop(sql, params)?;
    Ok(conn.affected_rows())
}

/// `INSERT INTO … (cols) VALUES (?, …)` of a full row image; generated columns are left to
/// the server.
pub fn insert_row(conn: &mut mysql::Conn, schema: &TableSchema, row: &Row) -> mysql::Result<()> {
    let mut cols = Vec::new();
    let mut params = Vec::new();
    for (name, value) in row.columns.iter().zip(&row.values) {
        if schema.column(name).is_some_and(|c| c.generated) {
            continue;
        }
        cols.push(quote_ident(name));
        params.push(value.to_param());
    }
    let marks = vec!["?"; cols.len()].join(", ");
    let sql = format!(
        "INSERT INTO {} ({}) VALUES ({marks})",
        table_sql(&schema.table),
        cols.join(", ")
    );
    conn.exec_drop(sql, params)
}

/// Runs `f` in a transaction with binary logging on or off for this session only, so a fix on
/// one node of a dual-master pair does not travel back to the other. Foreign key checks are
/// off for it too: with them on, deleting a parent row would cascade into child tables (the
/// rows pt-table-sync's REPLACE famously destroyed) although the replicated transaction puts the
/// key straight back.
pub fn in_transaction<T>(
    server: &mut Server,
    sql_log_bin: bool,
    f: impl FnOnce(&mut mysql::Conn) -> mysql::Result<T>,
) -> mysql::Result<T> {
    let conn = &mut server.conn;
    conn.query_drop(format!(
        "SET SESSION sql_log_bin = {}",
        u8::from(sql_log_bin)
    ))?;
    conn.query_drop("SET SESSION foreign_key_checks = 0")?;
    conn.query_drop("START TRANSACTION")?;
    let result = f(conn);
    match &result {
        Ok(_) => conn.query_drop("COMMIT")?,
        Err(_) => {
            let _ = conn.query_drop("ROLLBACK");
        }
    }
    conn.query_drop("SET SESSION sql_log_bin = 1, foreign_key_checks = 1")?;
    result
}
