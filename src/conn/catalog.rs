//! A table's definition read from the server's data dictionary (the statements are
//! `sql::catalog`'s; the rows become `schema` types there, purely).

use crate::conn::Server;
use crate::schema::{
    ColumnRow, ForeignKeyColumn, SchemaError, TableSchema, column_def, foreign_keys, unique_keys,
};
use crate::vocab::{ForeignKeyRef, TableRef};

/// The table's columns and unique keys on this server.
pub fn load(server: &mut Server, table: &TableRef) -> Result<TableSchema, SchemaError> {
    let endpoint = server.spec.address();
    let err = |source| SchemaError::Query {
        table: table.clone(),
        endpoint: endpoint.clone(),
        source: Box::new(source),
    };
    let cols: Vec<ColumnRow> = server
        .all(&crate::sql::catalog::table_columns(table))
        .map_err(err)?;
    crate::timing::mark(format_args!("schema of {table} read on {endpoint}"));
    if cols.is_empty() {
        return Err(SchemaError::NoSuchTable(table.clone(), endpoint.clone()));
    }
    let key_rows: Vec<(String, String)> = server
        .all(&crate::sql::catalog::unique_key_columns(table))
        .map_err(err)?;
    Ok(TableSchema {
        table: table.clone(),
        columns: cols.into_iter().map(column_def).collect(),
        unique_keys: unique_keys(key_rows),
    })
}

/// Every foreign key, on any table of the node, that references `table` (rekey's fact: child
/// rows follow a key value, not a record). information_schema lists only the child tables the
/// account has a privilege on (docs/privileges.md).
pub fn referencing(
    server: &mut Server,
    table: &TableRef,
) -> Result<Vec<ForeignKeyRef>, SchemaError> {
    let endpoint = server.spec.address();
    let rows: Vec<ForeignKeyColumn> = server
        .all(&crate::sql::catalog::referencing_foreign_keys(table))
        .map_err(|source| SchemaError::Query {
            table: table.clone(),
            endpoint,
            source: Box::new(source),
        })?;
    Ok(foreign_keys(rows))
}
