//! Reads of the data dictionary (information_schema) and of a table's extent: the statements
//! that learn what a table is (its columns, keys, foreign keys, triggers) and how big.
//! Names are bound as parameters; a table or column named in the statement is quoted.

use super::quote_ident;
use super::{Statement, table_sql};
use crate::value::Cell;
use crate::vocab::TableRef;

/// The table's schema and name, bound.
fn names(t: &TableRef) -> Vec<Cell> {
    vec![Cell::Text(t.schema.clone()), Cell::Text(t.name.clone())]
}

/// COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, DATETIME_PRECISION, CHARACTER_SET_NAME, EXTRA of
/// each column, in order.
pub fn table_columns(t: &TableRef) -> Statement {
    Statement::plain(
        "SELECT COLUMN_NAME, LOWER(DATA_TYPE), LOWER(COLUMN_TYPE), DATETIME_PRECISION, \
         CHARACTER_SET_NAME, EXTRA, IS_NULLABLE = 'YES' \
         FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? \
         ORDER BY ORDINAL_POSITION",
    )
    .params(names(t))
}

/// (INDEX_NAME, COLUMN_NAME) of each unique key's columns, the primary key first.
pub fn unique_key_columns(t: &TableRef) -> Statement {
    Statement::plain(
        "SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS \
         WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND NON_UNIQUE = 0 \
         ORDER BY INDEX_NAME = 'PRIMARY' DESC, INDEX_NAME, SEQ_IN_INDEX",
    )
    .params(names(t))
}

/// Each column of every foreign key that references `t`: CONSTRAINT_NAME, the child's
/// TABLE_SCHEMA and TABLE_NAME, COLUMN_NAME, REFERENCED_COLUMN_NAME, DELETE_RULE, UPDATE_RULE.
pub fn referencing_foreign_keys(t: &TableRef) -> Statement {
    Statement::plain(
        "SELECT k.CONSTRAINT_NAME, k.TABLE_SCHEMA, k.TABLE_NAME, k.COLUMN_NAME, \
         k.REFERENCED_COLUMN_NAME, r.DELETE_RULE, r.UPDATE_RULE \
         FROM information_schema.KEY_COLUMN_USAGE k \
         JOIN information_schema.REFERENTIAL_CONSTRAINTS r \
         ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA \
         AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME AND r.TABLE_NAME = k.TABLE_NAME \
         WHERE k.REFERENCED_TABLE_SCHEMA = ? AND k.REFERENCED_TABLE_NAME = ? \
         ORDER BY k.TABLE_SCHEMA, k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION",
    )
    .params(names(t))
}

/// (TRIGGER_NAME, ACTION_TIMING, EVENT_MANIPULATION) of the triggers on `t` that fire on an
/// INSERT or a DELETE.
pub fn insert_delete_triggers(t: &TableRef) -> Statement {
    Statement::plain(
        "SELECT TRIGGER_NAME, ACTION_TIMING, EVENT_MANIPULATION FROM information_schema.TRIGGERS \
         WHERE EVENT_OBJECT_SCHEMA = ? AND EVENT_OBJECT_TABLE = ? \
           AND EVENT_MANIPULATION IN ('INSERT', 'DELETE') ORDER BY ACTION_ORDER, TRIGGER_NAME",
    )
    .params(names(t))
}

/// (TABLE_SCHEMA, TABLE_NAME, TABLE_ROWS) of every base table on the server.
pub fn base_tables() -> Statement {
    Statement::plain(
        "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_ROWS FROM information_schema.TABLES \
         WHERE TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_SCHEMA, TABLE_NAME",
    )
}

/// The names of `t`'s NOT NULL columns.
pub fn not_null_columns(t: &TableRef) -> Statement {
    Statement::plain(
        "SELECT COLUMN_NAME FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND IS_NULLABLE = 'NO'",
    )
    .params(names(t))
}

/// `SELECT CAST(MIN(col) AS CHAR), CAST(MAX(col) AS CHAR) FROM t`: an integer key's range,
/// as text (it may not fit an i64).
pub fn min_max_text(t: &TableRef, column: &str) -> Statement {
    let k = quote_ident(column);
    Statement::plain(format!(
        "SELECT CAST(MIN({k}) AS CHAR), CAST(MAX({k}) AS CHAR) FROM {}",
        table_sql(t)
    ))
}

/// `SELECT COUNT(*) FROM t`.
pub fn count_rows(t: &TableRef) -> Statement {
    Statement::plain(format!("SELECT COUNT(*) FROM {}", table_sql(t)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_bound_and_identifiers_quoted() {
        let t = TableRef {
            schema: "d`b".into(),
            name: "t".into(),
        };
        let st = table_columns(&t);
        assert_eq!(st.params, names(&t));
        assert!(st.sql.contains("TABLE_SCHEMA = ? AND TABLE_NAME = ?"));
        assert_eq!(
            min_max_text(&t, "id").sql,
            "SELECT CAST(MIN(`id`) AS CHAR), CAST(MAX(`id`) AS CHAR) FROM `d``b`.`t`"
        );
        assert_eq!(count_rows(&t).sql, "SELECT COUNT(*) FROM `d``b`.`t`");
        assert!(base_tables().params.is_empty());
    }
}
