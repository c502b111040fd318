//! The statements about one table's rows, built by a builder bound to the table once
//! (`TableSql`, as gh-ost's per-table query builders): its quoted name and the column facts
//! every statement needs (character sets to convert bound keys to, integer columns whose
//! runs become ranges, generated columns an INSERT leaves out) are given once, not to each
//! call. The condition builders they share are in `sql`.

use std::borrow::Cow;

use super::{Statement, any_of, key_params, quote_ident, select_where, where_any_key, where_key};
use crate::schema::{TableFacts, TableSchema};
use crate::value::{Cell, Row};
use crate::vocab::TableRef;

/// A builder of one table's row statements.
#[derive(Debug, Clone)]
pub struct TableSql<'a> {
    table: Cow<'a, TableRef>,
    /// `schema`.`name`, quoted once.
    name: String,
    facts: Cow<'a, TableFacts>,
}

/// A key: (column, value) per key column.
type Key = [(String, Cell)];

impl<'a> TableSql<'a> {
    /// The builder for a table whose definition was read.
    pub fn new(schema: &TableSchema) -> TableSql<'static> {
        TableSql::owned(schema.table.clone(), schema.facts())
    }

    /// The builder for `table` with facts carried elsewhere (a diagnosis, a resync plan).
    pub fn of(table: &'a TableRef, facts: &'a TableFacts) -> TableSql<'a> {
        TableSql {
            name: super::table_sql(table),
            table: Cow::Borrowed(table),
            facts: Cow::Borrowed(facts),
        }
    }

    fn owned(table: TableRef, facts: TableFacts) -> TableSql<'static> {
        TableSql {
            name: super::table_sql(&table),
            table: Cow::Owned(table),
            facts: Cow::Owned(facts),
        }
    }

    pub fn table(&self) -> &TableRef {
        &self.table
    }

    pub fn facts(&self) -> &TableFacts {
        &self.facts
    }

    fn charsets(&self) -> &[(String, String)] {
        &self.facts.converted_charsets
    }

    fn integers(&self) -> &[String] {
        &self.facts.integer_columns
    }

    /// `SELECT cols FROM t WHERE key` (with `FOR UPDATE` inside a repair's transaction).
    pub fn select_by_key(&self, columns: &[String], key: &Key, for_update: bool) -> Statement {
        let suffix = if for_update { " FOR UPDATE" } else { "" };
        let condition = where_key(key, self.charsets());
        select_where(&self.table, columns, &condition, suffix, key_params(key))
    }

    /// Many rows by key in one round trip: `SELECT 0, cols FROM t WHERE key0 UNION ALL SELECT
    /// 1, cols FROM t WHERE key1 …`. Each branch is an index lookup compared by the server (its
    /// collation decides what is a duplicate); the leading number says which key a row answers.
    pub fn select_many_by_key(
        &self,
        columns: &[String],
        keys: &[Vec<(String, Cell)>],
    ) -> Statement {
        let cols: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
        let mut branches = Vec::with_capacity(keys.len());
        let mut params = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            branches.push(format!(
                "SELECT {i}, {} FROM {} WHERE {}",
                cols.join(", "),
                self.name,
                where_key(key, self.charsets())
            ));
            params.extend(key_params(key));
        }
        Statement::plain(branches.join(" UNION ALL ")).params(params)
    }

    /// Many rows by key, cheaply: `SELECT cols FROM t WHERE (k1, k2) IN ((?, ?), …)` (runs of a
    /// one-column integer key as `BETWEEN`). The server compares under the columns'
    /// collations; the caller maps rows back to keys and falls back to `select_many_by_key`
    /// when a row does not match its key byte for byte. Keys holding NULL never match IN:
    /// look them up with `select_many_by_key`.
    pub fn select_in(&self, columns: &[String], keys: &[Vec<(String, Cell)>]) -> Statement {
        if keys.is_empty() {
            return Statement::plain("SELECT 1 FROM DUAL WHERE FALSE");
        }
        let (condition, params) = any_of(keys, self.charsets(), self.integers());
        select_where(&self.table, columns, &condition, "", params)
    }

    /// `DELETE FROM t WHERE key` for exactly this key.
    pub fn delete_by_key(&self, key: &Key) -> Statement {
        Statement::plain(format!(
            "DELETE FROM {} WHERE {}",
            self.name,
            where_key(key, self.charsets())
        ))
        .params(key_params(key))
    }

    /// `SELECT cols FROM t WHERE (key0) OR (key1) … FOR UPDATE`: a batch's locking read in one
    /// round trip. The caller maps the rows back to keys by the key columns' values.
    pub fn select_keys_for_update(
        &self,
        columns: &[String],
        keys: &[Vec<(String, Cell)>],
    ) -> Statement {
        let (condition, params) = where_any_key(keys, self.charsets(), self.integers());
        select_where(&self.table, columns, &condition, " FOR UPDATE", params)
    }

    /// `DELETE FROM t WHERE …` for exactly these keys (as `select_keys_for_update` matches
    /// them).
    pub fn delete_by_keys(&self, keys: &[Vec<(String, Cell)>]) -> Statement {
        let (condition, params) = where_any_key(keys, self.charsets(), self.integers());
        Statement::plain(format!("DELETE FROM {} WHERE {condition}", self.name)).params(params)
    }

    /// `INSERT INTO t (cols) VALUES (?, …)` of a row image; generated columns are left to the
    /// server (it refuses values for them).
    pub fn insert_row(&self, row: &Row) -> Statement {
        self.insert_rows(std::slice::from_ref(row))
    }

    /// `INSERT INTO t (cols) VALUES (?, …), (?, …) …` of row images with the same columns (the
    /// first row's), generated columns left out.
    pub fn insert_rows(&self, rows: &[Row]) -> Statement {
        let Some(first) = rows.first() else {
            return Statement::plain("DO 0");
        };
        let generated = &self.facts.generated_columns;
        let kept: Vec<bool> = first
            .columns
            .iter()
            .map(|c| !generated.contains(c))
            .collect();
        let cols: Vec<String> = first
            .columns
            .iter()
            .zip(&kept)
            .filter(|(_, k)| **k)
            .map(|(c, _)| quote_ident(c))
            .collect();
        let tuple = format!("({})", vec!["?"; cols.len()].join(", "));
        let params = rows
            .iter()
            .flat_map(|r| r.values.iter().zip(&kept).filter(|(_, k)| **k))
            .map(|(v, _)| v.clone())
            .collect();
        Statement::plain(format!(
            "INSERT INTO {} ({}) VALUES {}",
            self.name,
            cols.join(", "),
            vec![tuple; rows.len()].join(", ")
        ))
        .params(params)
    }
}
