//! The one SQL builder: every statement replmend sends to change or read a row is built here,
//! with quoted identifiers and bound parameters. The planner puts these statements in the
//! plan; the applier, diagnose and restore execute exactly them. Pure: no I/O.

use serde::Serialize;

use crate::diagnosis::{Row, TableRef};
use crate::flavor::quote_ident;
use crate::value::Cell;

/// What a statement is for, so the applier knows what to do with its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Role {
    /// Run it; no result expected (STOP/START, SET, START TRANSACTION, COMMIT).
    Control,
    /// A locking read of the step's row `row`: its result is compared with what the plan
    /// expects there before anything is written.
    Check { row: usize },
    /// Changes the step's row `row` (journaled first).
    Write { row: usize },
}

/// One SQL statement with its bound parameters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Statement {
    pub sql: String,
    pub params: Vec<Cell>,
    pub role: Role,
}

impl Statement {
    pub fn plain(sql: impl Into<String>) -> Statement {
        Statement {
            sql: sql.into(),
            params: Vec::new(),
            role: Role::Control,
        }
    }

    fn with_role(mut self, role: Role) -> Statement {
        self.role = role;
        self
    }

    /// The parameters as the driver binds them.
    pub fn bind(&self) -> Vec<mysql::Value> {
        self.params.iter().map(Cell::to_param).collect()
    }
}

pub fn table_sql(t: &TableRef) -> String {
    format!("{}.{}", quote_ident(&t.schema), quote_ident(&t.name))
}

/// Columns whose character set a bound (utf8mb4) parameter must be converted to before they
/// compare: `(column, charset)`.
pub type Charsets = [(String, String)];

/// `k1 <=> ? AND k2 <=> CONVERT(? USING gbk)`: NULL-safe, so a key holding NULL (unique keys
/// allow it) matches; a parameter compared with a column of another character set (GBK,
/// Big5, latin1 …) is converted to it, so the server compares in the column's own set.
fn where_key(key: &[(String, Cell)], charsets: &Charsets) -> String {
    key.iter()
        .map(|(c, _)| {
            let cs = charsets
                .iter()
                .find(|(col, _)| col == c)
                .map(|(_, cs)| cs.as_str())
                .filter(|cs| cs.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_'));
            match cs {
                Some(cs) => format!("{} <=> CONVERT(? USING {cs})", quote_ident(c)),
                None => format!("{} <=> ?", quote_ident(c)),
            }
        })
        .collect::<Vec<_>>()
        .join(" AND ")
}

fn key_params(key: &[(String, Cell)]) -> Vec<Cell> {
    key.iter().map(|(_, v)| v.clone()).collect()
}

/// `SELECT cols FROM t WHERE key` (with `FOR UPDATE` inside a repair's transaction).
pub fn select_by_key(
    table: &TableRef,
    columns: &[String],
    key: &[(String, Cell)],
    charsets: &Charsets,
    for_update: bool,
) -> Statement {
    let cols: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
    Statement::plain(format!(
        "SELECT {} FROM {} WHERE {}{}",
        cols.join(", "),
        table_sql(table),
        where_key(key, charsets),
        if for_update { " FOR UPDATE" } else { "" }
    ))
    .params(key_params(key))
}

/// Many rows by key in one round trip: `SELECT 0, cols FROM t WHERE key0 UNION ALL SELECT 1,
/// cols FROM t WHERE key1 …`. Each branch is an index lookup compared by the server (its
/// collation decides what is a duplicate); the leading number says which key a row answers.
pub fn select_many_by_key(
    table: &TableRef,
    columns: &[String],
    keys: &[Vec<(String, Cell)>],
    charsets: &Charsets,
) -> Statement {
    let cols: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
    let mut branches = Vec::with_capacity(keys.len());
    let mut params = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        branches.push(format!(
            "SELECT {i}, {} FROM {} WHERE {}",
            cols.join(", "),
            table_sql(table),
            where_key(key, charsets)
        ));
        params.extend(key_params(key));
    }
    Statement::plain(branches.join(" UNION ALL ")).params(params)
}

/// Many rows by key, cheaply: `SELECT cols FROM t WHERE (k1, k2) IN ((?, ?), …)`. The server
/// compares under the columns' collations; the caller maps rows back to keys and falls back
/// to `select_many_by_key` when a row does not match its key byte for byte. Keys holding NULL
/// never match IN: look them up with `select_many_by_key`.
pub fn select_in(
    table: &TableRef,
    columns: &[String],
    keys: &[Vec<(String, Cell)>],
    charsets: &Charsets,
) -> Statement {
    let cols: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
    let Some(first) = keys.first() else {
        return Statement::plain("SELECT 1 FROM DUAL WHERE FALSE");
    };
    let mark = |c: &str| match charsets.iter().find(|(col, _)| col == c) {
        Some((_, cs)) if cs.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_') => {
            format!("CONVERT(? USING {cs})")
        }
        _ => "?".to_string(),
    };
    let names: Vec<String> = first.iter().map(|(c, _)| quote_ident(c)).collect();
    let tuple: Vec<String> = first.iter().map(|(c, _)| mark(c)).collect();
    let (lhs, one) = match names.len() {
        1 => (names[0].clone(), tuple[0].clone()),
        _ => (
            format!("({})", names.join(", ")),
            format!("({})", tuple.join(", ")),
        ),
    };
    Statement::plain(format!(
        "SELECT {} FROM {} WHERE {lhs} IN ({})",
        cols.join(", "),
        table_sql(table),
        vec![one; keys.len()].join(", ")
    ))
    .params(keys.iter().flat_map(|k| key_params(k)).collect())
}

/// `DELETE FROM t WHERE key` for exactly this key.
pub fn delete_by_key(table: &TableRef, key: &[(String, Cell)], charsets: &Charsets) -> Statement {
    Statement::plain(format!(
        "DELETE FROM {} WHERE {}",
        table_sql(table),
        where_key(key, charsets)
    ))
    .params(key_params(key))
}

/// `INSERT INTO t (cols) VALUES (?, …)` of a row image; generated columns are left to the
/// server (it refuses values for them).
pub fn insert_row(table: &TableRef, row: &Row, generated: &[String]) -> Statement {
    let mut cols = Vec::new();
    let mut params = Vec::new();
    for (name, value) in row.columns.iter().zip(&row.values) {
        if generated.contains(name) {
            continue;
        }
        cols.push(quote_ident(name));
        params.push(value.clone());
    }
    Statement::plain(format!(
        "INSERT INTO {} ({}) VALUES ({})",
        table_sql(table),
        cols.join(", "),
        vec!["?"; cols.len()].join(", ")
    ))
    .params(params)
}

/// `SELECT COALESCE(MAX(col), 0) + 1 FROM t`: the first value above every row held.
pub fn next_above_max(table: &TableRef, column: &str) -> Statement {
    Statement::plain(format!(
        "SELECT COALESCE(MAX({}), 0) + 1 FROM {}",
        quote_ident(column),
        table_sql(table)
    ))
}

/// `SHOW CREATE TABLE t`: its `AUTO_INCREMENT=N` is the live counter (information_schema's
/// copy is cached on MySQL 8+).
pub fn show_create_table(table: &TableRef) -> Statement {
    Statement::plain(format!("SHOW CREATE TABLE {}", table_sql(table)))
}

/// The `AUTO_INCREMENT=N` table option of a CREATE TABLE text.
pub fn auto_increment_option(create: &str) -> Option<u64> {
    let rest = &create[create.rfind("AUTO_INCREMENT=")? + "AUTO_INCREMENT=".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

impl Statement {
    fn params(mut self, params: Vec<Cell>) -> Statement {
        self.params = params;
        self
    }

    pub fn check(self, row: usize) -> Statement {
        self.with_role(Role::Check { row })
    }

    pub fn write(self, row: usize) -> Statement {
        self.with_role(Role::Write { row })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> TableRef {
        TableRef {
            schema: "we`ird db".into(),
            name: "t".into(),
        }
    }

    #[test]
    fn statements_quote_identifiers_and_bind_values() {
        let key = vec![("id`x".to_string(), Cell::Text("a'b".into()))];
        let d = delete_by_key(&t(), &key, &[]);
        assert_eq!(d.sql, "DELETE FROM `we``ird db`.`t` WHERE `id``x` <=> ?");
        assert_eq!(d.params, vec![Cell::Text("a'b".into())]);
        let gbk = [("id`x".to_string(), "gbk".to_string())];
        assert_eq!(
            delete_by_key(&t(), &key, &gbk).sql,
            "DELETE FROM `we``ird db`.`t` WHERE `id``x` <=> CONVERT(? USING gbk)"
        );
        let many = select_many_by_key(&t(), &["v".into()], &[key.clone(), key.clone()], &[]);
        assert_eq!(
            many.sql,
            "SELECT 0, `v` FROM `we``ird db`.`t` WHERE `id``x` <=> ? UNION ALL SELECT 1, `v` FROM `we``ird db`.`t` WHERE `id``x` <=> ?"
        );
        assert_eq!(many.params.len(), 2);
        let two = vec![
            ("a".to_string(), Cell::Number("1".into())),
            ("b".to_string(), Cell::Text("x".into())),
        ];
        let inq = select_in(
            &t(),
            &["v".into()],
            &[two.clone(), two],
            &[("b".into(), "big5".into())],
        );
        assert_eq!(
            inq.sql,
            "SELECT `v` FROM `we``ird db`.`t` WHERE (`a`, `b`) IN ((?, CONVERT(? USING big5)), (?, CONVERT(? USING big5)))"
        );
        assert_eq!(inq.params.len(), 4);
        let s = select_by_key(&t(), &["id`x".into(), "v".into()], &key, &[], true);
        assert_eq!(
            s.sql,
            "SELECT `id``x`, `v` FROM `we``ird db`.`t` WHERE `id``x` <=> ? FOR UPDATE"
        );
        let row = Row {
            columns: vec!["id".into(), "total".into(), "v".into()],
            values: vec![
                Cell::Number("1".into()),
                Cell::Number("3".into()),
                Cell::Null,
            ],
        };
        assert_eq!(
            auto_increment_option(") ENGINE=InnoDB AUTO_INCREMENT=42 DEFAULT CHARSET=utf8mb4"),
            Some(42)
        );
        assert_eq!(auto_increment_option(") ENGINE=InnoDB"), None);
        let i = insert_row(&t(), &row, &["total".into()]);
        assert_eq!(
            i.sql,
            "INSERT INTO `we``ird db`.`t` (`id`, `v`) VALUES (?, ?)"
        );
        assert_eq!(i.params.len(), 2);
    }
}
