//! Table definitions from information_schema: column names (the binlog carries none unless
//! binlog_row_metadata=FULL), types needed to decode and print values, and unique keys.

use serde::Serialize;
use thiserror::Error;

use crate::vocab::{ForeignKeyRef, KeyKind, KeyRef, ReferentialAction, TableRef};

#[derive(Debug, Error)]
pub enum SchemaError {
    #[error("table {0} does not exist on {1}")]
    NoSuchTable(TableRef, crate::vocab::Endpoint),
    #[error("reading the definition of {table} on {endpoint}: {}", crate::describe::describe_mysql(.source))]
    Query {
        table: TableRef,
        endpoint: crate::vocab::Endpoint,
        source: Box<mysql::Error>,
    },
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ColumnDef {
    pub name: String,
    /// information_schema DATA_TYPE, lower case (`int`, `varchar`, `enum`, …).
    pub data_type: String,
    /// information_schema COLUMN_TYPE (`int(10) unsigned`, `enum('a','b')`, …).
    pub column_type: String,
    pub unsigned: bool,
    /// Fractional seconds digits of temporal columns.
    pub fsp: u8,
    /// Binary strings (BINARY, VARBINARY, BLOB) have no character set.
    pub binary: bool,
    /// information_schema CHARACTER_SET_NAME of character columns.
    pub charset: Option<String>,
    pub generated: bool,
    pub auto_increment: bool,
    /// INVISIBLE (MySQL's generated invisible primary key my_row_id is one).
    pub invisible: bool,
    /// IS_NULLABLE: only such columns carry a NULL marker in verify's row text. Not
    /// serialized (the forms plans and reports print stay as they were).
    #[serde(skip)]
    pub nullable: bool,
}

impl ColumnDef {
    pub fn enum_or_set_values(&self) -> Vec<String> {
        let inner = self.column_type.find('(').and_then(|i| {
            self.column_type
                .rfind(')')
                .map(|j| &self.column_type[i + 1..j])
        });
        let Some(inner) = inner else {
            return Vec::new();
        };
        // 'a','it''s','b' — quotes doubled inside values.
        let mut out = Vec::new();
        let mut cur = String::new();
        let mut in_quote = false;
        let mut chars = inner.chars().peekable();
        while let Some(c) = chars.next() {
            match (c, in_quote) {
                ('\'', false) => in_quote = true,
                ('\'', true) if chars.peek() == Some(&'\'') => {
                    chars.next();
                    cur.push('\'');
                }
                ('\'', true) => {
                    in_quote = false;
                    out.push(std::mem::take(&mut cur));
                }
                (c, true) => cur.push(c),
                _ => {}
            }
        }
        out
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TableSchema {
    pub table: TableRef,
    pub columns: Vec<ColumnDef>,
    /// PRIMARY first, then other unique keys by name.
    pub unique_keys: Vec<KeyRef>,
}

/// What statements about a table need to know of its columns beyond their names, read once
/// from its definition: the per-table builder (`sql::TableSql`) holds them, and a diagnosis
/// carries them to the pure planner.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct TableFacts {
    /// Generated columns: an INSERT leaves them to the server.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub generated_columns: Vec<String>,
    /// `(column, charset)` of character columns in a set other than UTF-8: key comparisons
    /// convert the bound value to it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub converted_charsets: Vec<(String, String)>,
    /// The table's integer columns: a batch's keys in runs of consecutive integers are
    /// matched as ranges (see `sql`).
    #[serde(skip)]
    pub integer_columns: Vec<String>,
}

impl TableSchema {
    /// The facts the statement builder needs (see [`TableFacts`]).
    pub fn facts(&self) -> TableFacts {
        TableFacts {
            generated_columns: self.generated_columns(),
            converted_charsets: self.converted_charsets(),
            integer_columns: self.integer_columns(),
        }
    }

    pub fn column(&self, name: &str) -> Option<&ColumnDef> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn key(&self, name: &str) -> Option<&KeyRef> {
        self.unique_keys
            .iter()
            .find(|k| k.name.eq_ignore_ascii_case(name))
    }

    /// The key a row is identified by: the primary key, else the first unique key whose
    /// columns are all NOT NULL is what InnoDB uses; we take the first unique key.
    pub fn identifying_key(&self) -> Option<&KeyRef> {
        self.unique_keys.first()
    }

    pub fn column_names(&self) -> Vec<String> {
        self.columns.iter().map(|c| c.name.clone()).collect()
    }

    /// Character columns a utf8mb4 parameter must be converted for (see `sql::Charsets`).
    pub fn converted_charsets(&self) -> Vec<(String, String)> {
        self.columns
            .iter()
            .filter_map(|c| {
                let cs = c.charset.as_deref()?;
                crate::value::needs_convert(cs).then(|| (c.name.clone(), cs.to_string()))
            })
            .collect()
    }

    /// Columns of the integer types (TINYINT … BIGINT, signed or not): `sql` matches runs of
    /// a one-column integer key's values as ranges.
    pub fn integer_columns(&self) -> Vec<String> {
        self.columns
            .iter()
            .filter(|c| {
                matches!(
                    c.data_type.as_str(),
                    "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint"
                )
            })
            .map(|c| c.name.clone())
            .collect()
    }

    pub fn generated_columns(&self) -> Vec<String> {
        self.columns
            .iter()
            .filter(|c| c.generated)
            .map(|c| c.name.clone())
            .collect()
    }

    /// The AUTO_INCREMENT column when `key` is exactly that one column.
    pub fn auto_increment_key(&self, key: &KeyRef) -> Option<&ColumnDef> {
        match key.columns.as_slice() {
            [only] if key.kind == KeyKind::Primary => {
                self.column(only).filter(|c| c.auto_increment)
            }
            _ => None,
        }
    }
}

/// COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, DATETIME_PRECISION, CHARACTER_SET_NAME, EXTRA,
/// IS_NULLABLE = 'YES'.
pub type ColumnRow = (
    String,
    String,
    String,
    Option<u64>,
    Option<String>,
    Option<String>,
    bool,
);

/// Whether EXTRA holds `word` as a word of its own: MySQL marks a column with an expression
/// default (`DEFAULT CURRENT_TIMESTAMP`) `DEFAULT_GENERATED`, which is not a generated column
/// (taken for one, its value was left out of inserts and the server wrote the current time).
fn extra_has(extra: &Option<String>, word: &str) -> bool {
    extra.as_deref().is_some_and(|e| {
        e.split(|c: char| c.is_whitespace() || c == ',')
            .any(|w| w.eq_ignore_ascii_case(word))
    })
}

/// A column's definition from its information_schema row.
pub fn column_def(row: ColumnRow) -> ColumnDef {
    let (name, data_type, column_type, fsp, charset, extra, nullable) = row;
    ColumnDef {
        unsigned: column_type.contains("unsigned"),
        fsp: fsp.unwrap_or(0) as u8,
        binary: charset.is_none()
            && matches!(
                data_type.as_str(),
                "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob"
            ),
        charset: charset.clone(),
        generated: extra_has(&extra, "generated"),
        // EXTRA reads `auto_increment, INVISIBLE` on MariaDB, `auto_increment
        // INVISIBLE` on MySQL: look for words, not a fixed string.
        auto_increment: extra_has(&extra, "auto_increment"),
        invisible: extra_has(&extra, "invisible"),
        nullable,
        name,
        data_type,
        column_type,
    }
}

/// The unique keys from their (index, column) rows, in order: PRIMARY first, as listed.
pub fn unique_keys(rows: Vec<(String, String)>) -> Vec<KeyRef> {
    let mut unique_keys: Vec<KeyRef> = Vec::new();
    for (index, column) in rows {
        match unique_keys.last_mut() {
            Some(k) if k.name == index => k.columns.push(column),
            _ => unique_keys.push(KeyRef {
                kind: if index == "PRIMARY" {
                    KeyKind::Primary
                } else {
                    KeyKind::Unique
                },
                name: index,
                columns: vec![column],
            }),
        }
    }
    unique_keys
}

/// One column of a foreign key as information_schema lists it: CONSTRAINT_NAME, the child's
/// TABLE_SCHEMA and TABLE_NAME, COLUMN_NAME, REFERENCED_COLUMN_NAME, DELETE_RULE, UPDATE_RULE.
pub type ForeignKeyColumn = (String, String, String, String, String, String, String);

/// The columns of each foreign key (in order, as listed) gathered into one.
pub fn foreign_keys(rows: Vec<ForeignKeyColumn>) -> Vec<ForeignKeyRef> {
    let mut out: Vec<ForeignKeyRef> = Vec::new();
    for (name, schema, child, column, referenced, on_delete, on_update) in rows {
        let child = TableRef {
            schema,
            name: child,
        };
        match out.last_mut() {
            Some(fk) if fk.name == name && fk.child == child => {
                fk.columns.push(column);
                fk.referenced_columns.push(referenced);
            }
            _ => out.push(ForeignKeyRef {
                name,
                child,
                columns: vec![column],
                referenced_columns: vec![referenced],
                // Both flavors spell the rule out; an unknown word is the strictest.
                on_delete: ReferentialAction::parse(&on_delete)
                    .unwrap_or(ReferentialAction::Restrict),
                on_update: ReferentialAction::parse(&on_update)
                    .unwrap_or(ReferentialAction::Restrict),
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expression_default_is_not_a_generated_column() {
        let has = |e: &str, w: &str| extra_has(&Some(e.to_string()), w);
        assert!(!has("DEFAULT_GENERATED", "generated"));
        assert!(!has(
            "DEFAULT_GENERATED on update CURRENT_TIMESTAMP",
            "generated"
        ));
        assert!(has("VIRTUAL GENERATED", "generated"));
        assert!(has("STORED GENERATED", "generated"));
        assert!(has("auto_increment, INVISIBLE", "invisible"));
        assert!(has("auto_increment", "auto_increment"));
    }

    #[test]
    fn enum_values_with_quotes() {
        let c = ColumnDef {
            name: "e".into(),
            data_type: "enum".into(),
            column_type: "enum('a','it''s','c,d')".into(),
            unsigned: false,
            fsp: 0,
            binary: false,
            charset: None,
            generated: false,
            auto_increment: false,
            invisible: false,
            nullable: true,
        };
        assert_eq!(c.enum_or_set_values(), vec!["a", "it's", "c,d"]);
    }

    #[test]
    fn a_composite_foreign_key_is_one_with_its_columns_in_order() {
        let row = |name: &str, col: &str, refd: &str, del: &str| {
            (
                name.to_string(),
                "shop".to_string(),
                "items".to_string(),
                col.to_string(),
                refd.to_string(),
                del.to_string(),
                "NO ACTION".to_string(),
            )
        };
        let fks = foreign_keys(vec![
            row("fk_comp", "order_id", "id", "RESTRICT"),
            row("fk_comp", "region", "region", "RESTRICT"),
            row("fk_order", "order_id", "id", "CASCADE"),
        ]);
        assert_eq!(fks.len(), 2);
        assert_eq!(fks[0].columns, ["order_id", "region"]);
        assert_eq!(fks[0].referenced_columns, ["id", "region"]);
        assert_eq!(fks[0].on_delete, ReferentialAction::Restrict);
        assert_eq!(fks[1].on_delete, ReferentialAction::Cascade);
        assert_eq!(fks[1].on_update, ReferentialAction::NoAction);
        assert!(fks[0].references("ID") && !fks[1].references("region"));
    }
}
