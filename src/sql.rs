//! The one SQL builder: every statement replmend sends to change or read a row is built here,
//! with quoted identifiers and bound parameters. The planner puts these statements in the
//! plan; the applier, diagnose and restore execute exactly them. Pure: no I/O.
//!
//! This file holds `Statement` and the row statements (select, delete, insert by key, the
//! batches' runs and IN lists, the table's definition); verify's chunk checksums and row
//! hashes are in `checksum`, re-exported here; the data dictionary's reads in `catalog`,
//! the session's and server's statements (locks, settings, GTID state) in `admin`.

pub mod admin;
pub mod catalog;
mod checksum;
mod table;

use serde::Serialize;

use crate::value::Cell;
use crate::vocab::TableRef;
pub use checksum::{
    RowDigest, TextEval, bucket_row_hashes, chunk_bound, chunk_bucket_checksums, chunk_checksum,
    chunk_row_hashes, multiset_hashes, row_digest, row_hash, row_hashes_by_key, rows_by_hash,
    text_once_probe, text_var_cleared,
};
pub use table::TableSql;

/// What a statement is for, so the applier knows what to do with its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Role {
    /// Run it; no result expected (STOP/START, SET).
    Control,
    /// Opens a row step's transaction (`start_transaction()`): its writes are not durable
    /// before `Commit`. In JSON a control statement, as before the applier told them apart.
    #[serde(rename = "control")]
    Begin,
    /// Ends a row step's transaction (`commit()`): once sent, a failure no longer proves
    /// the writes did not happen. In JSON a control statement.
    #[serde(rename = "control")]
    Commit,
    /// A locking read of the step's row `row`: its result is compared with what the plan
    /// expects there before anything is written.
    Check { row: usize },
    /// Changes the step's row `row` (journaled first).
    Write { row: usize },
    /// A locking read of the step's rows `first..first + count` in one round trip.
    CheckRows { first: usize, count: usize },
    /// Changes the step's rows `first..first + count` in one statement (journaled first).
    WriteRows { first: usize, count: usize },
    /// Reads back, inside the step's transaction and before COMMIT, the rows
    /// `first..first + count` it inserted: each must be exactly the image journaled (a
    /// trigger, a column conversion or a generated key would make the server write another
    /// row), else the step rolls back.
    ReadBack { first: usize, count: usize },
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

/// The session every row write runs in: the binary log as the write needs it (off where the
/// fix must not replicate), foreign key checks off (a replaced parent row must not cascade
/// into its child rows: its key comes straight back), and NO_AUTO_VALUE_ON_ZERO added to
/// the session's sql_mode, so a journaled or copied row whose AUTO_INCREMENT key is 0
/// (written under that mode) lands as 0, not as the next counter value. Row images always
/// carry their key: no write of replmend's wants a value generated.
pub fn row_write_session(log_bin: bool) -> Vec<Statement> {
    vec![
        Statement::plain(format!("SET SESSION sql_log_bin = {}", u8::from(log_bin))),
        Statement::plain("SET SESSION foreign_key_checks = 0"),
        Statement::plain(
            "SET SESSION sql_mode = CONCAT_WS(',', NULLIF(@@SESSION.sql_mode, ''), 'NO_AUTO_VALUE_ON_ZERO')",
        ),
    ]
}

/// `row_write_session` without touching sql_log_bin: a managed service's account may not set
/// it, so the writes are logged (with this node's own GTID).
pub fn row_write_session_logged() -> Vec<Statement> {
    row_write_session(false).split_off(1)
}

/// The statement is one of `row_write_session`'s sql_log_bin settings (either value).
pub fn sets_sql_log_bin(st: &Statement) -> bool {
    [false, true]
        .iter()
        .any(|on| row_write_session(*on)[0] == *st)
}

/// The statements that open and end a row step's transaction; the applier knows them by
/// their role.
pub fn start_transaction() -> Statement {
    Statement::plain("START TRANSACTION").with_role(Role::Begin)
}

pub fn commit() -> Statement {
    Statement::plain("COMMIT").with_role(Role::Commit)
}

/// Ends a row step's transaction that failed, undoing its writes.
pub fn rollback() -> Statement {
    Statement::plain("ROLLBACK")
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
pub(crate) fn where_key(key: &[(String, Cell)], charsets: &Charsets) -> String {
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

pub(crate) fn key_params(key: &[(String, Cell)]) -> Vec<Cell> {
    key.iter().map(|(_, v)| v.clone()).collect()
}

/// How many rows of `child` reference any of `keys` (the child's own column names, each
/// key's values those of the parent row): `SELECT COUNT(*) FROM child WHERE (c1 <=> ? AND …)
/// OR …`. A foreign key compares under the child column's collation, as `<=>` does.
pub fn count_referencing(child: &TableRef, keys: &[Vec<(String, Cell)>]) -> Statement {
    let terms: Vec<String> = keys
        .iter()
        .map(|k| format!("({})", where_key(k, &[])))
        .collect();
    Statement::plain(format!(
        "SELECT COUNT(*) FROM {} WHERE {}",
        table_sql(child),
        terms.join(" OR ")
    ))
    .params(keys.iter().flat_map(|k| key_params(k)).collect())
}

/// `SELECT cols FROM t WHERE <condition><suffix>` with the condition's parameters.
pub(crate) fn select_where(
    table: &TableRef,
    columns: &[String],
    condition: &str,
    suffix: &str,
    params: Vec<Cell>,
) -> Statement {
    let cols: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
    Statement::plain(format!(
        "SELECT {} FROM {} WHERE {condition}{suffix}",
        cols.join(", "),
        table_sql(table),
    ))
    .params(params)
}

/// Runs this long or longer of consecutive values become one `BETWEEN` (shorter ones stay in
/// the `IN` list): a range is one index dive and scan where an `IN` list dives per value.
const RUN_MIN: usize = 3;

/// The values of a one-column integer key (`integers` names the table's integer columns),
/// sorted and without repeats: None for any other key.
fn integer_values(keys: &[Vec<(String, Cell)>], integers: &[String]) -> Option<Vec<i128>> {
    let column = match keys.first().map(Vec::as_slice) {
        Some([(c, _)]) if integers.contains(c) => c,
        _ => return None,
    };
    let mut values = Vec::with_capacity(keys.len());
    for key in keys {
        match key.as_slice() {
            [(c, Cell::Number(n))] if c == column => values.push(n.parse::<i128>().ok()?),
            _ => return None,
        }
    }
    values.sort_unstable();
    values.dedup();
    Some(values)
}

/// Consecutive runs of sorted distinct integers: (first, last) pairs.
fn runs(values: &[i128]) -> Vec<(i128, i128)> {
    let mut out: Vec<(i128, i128)> = Vec::new();
    for &v in values {
        match out.last_mut() {
            Some((_, last)) if *last + 1 == v => *last = v,
            _ => out.push((v, v)),
        }
    }
    out
}

/// Matches exactly these keys (none holding NULL), with their parameters: a one-column integer
/// key's runs of consecutive values as `k BETWEEN ? AND ?` (a stream of conflicts on
/// AUTO_INCREMENT keys is mostly runs: one index range each instead of a dive per key; an
/// integer range holds no value but its integers, so it matches the same rows), the rest as an
/// `IN` list.
pub(crate) fn any_of(
    keys: &[Vec<(String, Cell)>],
    charsets: &Charsets,
    integers: &[String],
) -> (String, Vec<Cell>) {
    let Some(values) = integer_values(keys, integers) else {
        let params = keys.iter().flat_map(|k| key_params(k)).collect();
        return (in_list(keys, charsets), params);
    };
    let k = quote_ident(&keys[0][0].0);
    let (mut terms, mut params, mut single) = (Vec::new(), Vec::new(), Vec::new());
    for (first, last) in runs(&values) {
        if (last - first) as usize + 1 >= RUN_MIN {
            terms.push(format!("{k} BETWEEN ? AND ?"));
            params.push(Cell::Number(first.to_string()));
            params.push(Cell::Number(last.to_string()));
        } else {
            single.extend((first..=last).map(|v| Cell::Number(v.to_string())));
        }
    }
    if !single.is_empty() {
        terms.push(format!("{k} IN ({})", vec!["?"; single.len()].join(", ")));
        params.extend(single);
    }
    match terms.len() {
        1 => (terms.remove(0), params),
        _ => (format!("({})", terms.join(" OR ")), params),
    }
}

/// `k IN (?, …)` or `(k1, k2) IN ((?, ?), …)` over the first key's columns (every key has
/// the same ones), parameters converted as in `where_key`.
fn in_list(keys: &[Vec<(String, Cell)>], charsets: &Charsets) -> String {
    let first = keys.first().map(Vec::as_slice).unwrap_or_default();
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
    format!("{lhs} IN ({})", vec![one; keys.len()].join(", "))
}

/// Matches exactly these keys: an `IN` list (three times faster for the server than as many
/// `OR`ed lookups), or, when a key holds NULL (which never matches `IN`), `(key0) OR (key1)
/// OR …` with `where_key`'s NULL-safe comparisons.
pub(crate) fn where_any_key(
    keys: &[Vec<(String, Cell)>],
    charsets: &Charsets,
    integers: &[String],
) -> (String, Vec<Cell>) {
    if !keys.iter().flatten().any(|(_, v)| *v == Cell::Null) {
        return any_of(keys, charsets, integers);
    }
    let condition = keys
        .iter()
        .map(|k| format!("({})", where_key(k, charsets)))
        .collect::<Vec<_>>()
        .join(" OR ");
    (condition, keys.iter().flat_map(|k| key_params(k)).collect())
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

/// A CREATE TABLE text without its `AUTO_INCREMENT=N` table option (on the line of table
/// options, the first that starts with `)`; a column's text never does).
pub fn without_auto_increment_option(create: &str) -> String {
    let mut out = String::with_capacity(create.len());
    let mut options_seen = false;
    for (i, line) in create.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if !options_seen && line.starts_with(')') {
            options_seen = true;
            if let Some(at) = line.find(" AUTO_INCREMENT=") {
                let rest = &line[at + " AUTO_INCREMENT=".len()..];
                let digits =
                    rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
                out.push_str(&line[..at]);
                out.push_str(&rest[digits..]);
                continue;
            }
        }
        out.push_str(line);
    }
    out
}

impl Statement {
    pub(crate) fn params(mut self, params: Vec<Cell>) -> Statement {
        self.params = params;
        self
    }

    pub fn check(self, row: usize) -> Statement {
        self.with_role(Role::Check { row })
    }

    pub fn write(self, row: usize) -> Statement {
        self.with_role(Role::Write { row })
    }

    pub fn check_rows(self, first: usize, count: usize) -> Statement {
        self.with_role(Role::CheckRows { first, count })
    }

    pub fn write_rows(self, first: usize, count: usize) -> Statement {
        self.with_role(Role::WriteRows { first, count })
    }

    pub fn read_back(self, first: usize, count: usize) -> Statement {
        self.with_role(Role::ReadBack { first, count })
    }
}

/// Quotes a string literal for the rare statements that cannot take a bound parameter
/// (channel names in STOP/START, SET GTID_NEXT).
pub fn quote_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            _ => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Quotes an identifier with backticks, doubling any backtick inside it.
pub fn quote_ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Row;

    // The builder's statements under the arguments these tests were written with.
    fn on(
        t: &TableRef,
        charsets: &Charsets,
        integers: &[String],
        generated: &[String],
    ) -> Statement0 {
        let facts = crate::schema::TableFacts {
            converted_charsets: charsets.to_vec(),
            integer_columns: integers.to_vec(),
            generated_columns: generated.to_vec(),
        };
        Statement0(t.clone(), facts)
    }

    struct Statement0(TableRef, crate::schema::TableFacts);

    impl Statement0 {
        fn sql(&self) -> TableSql<'_> {
            TableSql::of(&self.0, &self.1)
        }
    }

    fn select_keys_for_update(
        t: &TableRef,
        cols: &[String],
        keys: &[Vec<(String, Cell)>],
        cs: &Charsets,
        ints: &[String],
    ) -> Statement {
        on(t, cs, ints, &[])
            .sql()
            .select_keys_for_update(cols, keys)
    }

    fn delete_by_keys(
        t: &TableRef,
        keys: &[Vec<(String, Cell)>],
        cs: &Charsets,
        ints: &[String],
    ) -> Statement {
        on(t, cs, ints, &[]).sql().delete_by_keys(keys)
    }

    fn insert_rows(t: &TableRef, rows: &[Row], generated: &[String]) -> Statement {
        on(t, &[], &[], generated).sql().insert_rows(rows)
    }

    fn insert_row(t: &TableRef, row: &Row, generated: &[String]) -> Statement {
        on(t, &[], &[], generated).sql().insert_row(row)
    }

    fn select_in(
        t: &TableRef,
        cols: &[String],
        keys: &[Vec<(String, Cell)>],
        cs: &Charsets,
        ints: &[String],
    ) -> Statement {
        on(t, cs, ints, &[]).sql().select_in(cols, keys)
    }

    fn delete_by_key(t: &TableRef, key: &[(String, Cell)], cs: &Charsets) -> Statement {
        on(t, cs, &[], &[]).sql().delete_by_key(key)
    }

    fn select_many_by_key(
        t: &TableRef,
        cols: &[String],
        keys: &[Vec<(String, Cell)>],
        cs: &Charsets,
    ) -> Statement {
        on(t, cs, &[], &[]).sql().select_many_by_key(cols, keys)
    }

    fn select_by_key(
        t: &TableRef,
        cols: &[String],
        key: &[(String, Cell)],
        cs: &Charsets,
        for_update: bool,
    ) -> Statement {
        on(t, cs, &[], &[])
            .sql()
            .select_by_key(cols, key, for_update)
    }

    fn t() -> TableRef {
        TableRef {
            schema: "we`ird db".into(),
            name: "t".into(),
        }
    }

    #[test]
    fn the_auto_increment_counter_is_not_part_of_a_definition() {
        let create = "CREATE TABLE `t` (\n  `id` int NOT NULL AUTO_INCREMENT,\n  `d` varchar(9) DEFAULT ' AUTO_INCREMENT=5',\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB AUTO_INCREMENT=42 DEFAULT CHARSET=utf8mb4";
        assert_eq!(
            without_auto_increment_option(create),
            "CREATE TABLE `t` (\n  `id` int NOT NULL AUTO_INCREMENT,\n  `d` varchar(9) DEFAULT ' AUTO_INCREMENT=5',\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
        );
        let plain = "CREATE TABLE `t` (\n  `id` int NOT NULL\n) ENGINE=InnoDB";
        assert_eq!(without_auto_increment_option(plain), plain);
    }

    #[test]
    fn batch_statements_match_every_key_in_one_statement() {
        let key = |id: &str| vec![("id".to_string(), Cell::Number(id.into()))];
        let keys = [key("1"), key("2")];
        let check = select_keys_for_update(&t(), &["id".into(), "v".into()], &keys, &[], &[]);
        assert_eq!(
            check.sql,
            "SELECT `id`, `v` FROM `we``ird db`.`t` WHERE `id` IN (?, ?) FOR UPDATE"
        );
        assert_eq!(
            check.params,
            vec![Cell::Number("1".into()), Cell::Number("2".into())]
        );
        // NULL never matches IN: every key by its NULL-safe comparison instead.
        let nullable = [key("1"), vec![("id".to_string(), Cell::Null)]];
        assert_eq!(
            delete_by_keys(&t(), &nullable, &[], &["id".into()]).sql,
            "DELETE FROM `we``ird db`.`t` WHERE (`id` <=> ?) OR (`id` <=> ?)"
        );
        let row = |id: &str| Row {
            columns: vec!["id".into(), "total".into(), "v".into()],
            values: vec![Cell::Number(id.into()), Cell::Null, Cell::Text(id.into())],
        };
        let insert = insert_rows(&t(), &[row("1"), row("2")], &["total".into()]);
        assert_eq!(
            insert.sql,
            "INSERT INTO `we``ird db`.`t` (`id`, `v`) VALUES (?, ?), (?, ?)"
        );
        assert_eq!(insert.params.len(), 4);
        assert_eq!(insert_row(&t(), &row("1"), &[]).params.len(), 3);
    }

    #[test]
    fn runs_of_a_one_column_integer_key_are_matched_as_ranges() {
        let key = |id: &str| vec![("id".to_string(), Cell::Number(id.into()))];
        let ints = ["id".to_string()];
        // Out of order, repeated, a run of three, one of two, a lone value.
        let keys: Vec<_> = ["7", "5", "6", "5", "10", "11", "20", "-1"]
            .iter()
            .map(|v| key(v))
            .collect();
        let d = delete_by_keys(&t(), &keys, &[], &ints);
        assert_eq!(
            d.sql,
            "DELETE FROM `we``ird db`.`t` WHERE (`id` BETWEEN ? AND ? OR `id` IN (?, ?, ?, ?))"
        );
        let shown: Vec<String> = d.params.iter().map(Cell::display).collect();
        assert_eq!(shown, ["5", "7", "-1", "10", "11", "20"]);
        let run: Vec<_> = (1..=1000).map(|i| key(&i.to_string())).collect();
        let s = select_keys_for_update(&t(), &["id".into()], &run, &[], &ints);
        assert_eq!(
            s.sql,
            "SELECT `id` FROM `we``ird db`.`t` WHERE `id` BETWEEN ? AND ? FOR UPDATE"
        );
        // BIGINT UNSIGNED's top values are integers too.
        let top: Vec<_> = [
            "18446744073709551614",
            "18446744073709551615",
            "18446744073709551613",
        ]
        .iter()
        .map(|v| key(v))
        .collect();
        assert_eq!(
            select_in(&t(), &["id".into()], &top, &[], &ints).params,
            vec![
                Cell::Number("18446744073709551613".into()),
                Cell::Number("18446744073709551615".into())
            ]
        );
        // Not an integer column (DECIMAL, FLOAT: 1.5 lies between 1 and 2), not one column,
        // or a value that is not an integer: the IN list, as given.
        assert!(
            select_in(&t(), &["id".into()], &run, &[], &[])
                .sql
                .contains("IN (?, ?, ?")
        );
        let odd = vec![key("1"), key("2"), key("3.0")];
        assert!(
            select_in(&t(), &["id".into()], &odd, &[], &ints)
                .sql
                .contains("`id` IN (?, ?, ?)")
        );
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
            &["a".into()],
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
