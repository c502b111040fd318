//! Tables, keys and foreign keys as the catalog names them, a node's read_only state and the
//! kinds of rows events and of row conflicts: plain data every layer shares. Pure.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    Primary,
    Unique,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq, Hash)]
pub struct TableRef {
    pub schema: String,
    pub name: String,
}

impl TableRef {
    /// The name as `--tables` takes it: `db.t`, each part backquoted when it holds a dot,
    /// a comma or a backquote.
    pub fn cli_name(&self) -> String {
        let part = |p: &str| match p.contains(['.', ',', '`']) {
            true => format!("`{p}`"),
            false => p.to_string(),
        };
        format!("{}.{}", part(&self.schema), part(&self.name))
    }
}

impl std::fmt::Display for TableRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct KeyRef {
    pub name: String,
    pub kind: KeyKind,
    pub columns: Vec<String>,
}

/// A node's read-only state: what refuses replmend's writes (error 1290), and what a
/// --lift-read-only plan must put back.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum ReadOnly {
    #[default]
    Off,
    /// read_only=ON (accounts with SUPER/CONNECTION_ADMIN on MySQL, READ_ONLY ADMIN on
    /// MariaDB still write).
    ReadOnly,
    /// MySQL super_read_only=ON: nobody writes.
    SuperReadOnly,
}

impl ReadOnly {
    /// From the values of @@global.read_only and (MySQL) @@global.super_read_only.
    pub fn from_flags(read_only: bool, super_read_only: bool) -> ReadOnly {
        match (read_only, super_read_only) {
            (_, true) => ReadOnly::SuperReadOnly,
            (true, false) => ReadOnly::ReadOnly,
            (false, false) => ReadOnly::Off,
        }
    }

    pub fn variable(self) -> &'static str {
        match self {
            ReadOnly::SuperReadOnly => "super_read_only",
            _ => "read_only",
        }
    }
}

/// A foreign key (of another table, or of the table itself) that references a table.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ForeignKeyRef {
    pub name: String,
    /// The table holding the foreign key.
    pub child: TableRef,
    pub columns: Vec<String>,
    /// The referenced table's columns, in the order of `columns`.
    pub referenced_columns: Vec<String>,
    pub on_delete: ReferentialAction,
    pub on_update: ReferentialAction,
}

impl ForeignKeyRef {
    pub fn references(&self, column: &str) -> bool {
        self.referenced_columns
            .iter()
            .any(|c| c.eq_ignore_ascii_case(column))
    }
}

/// information_schema.REFERENTIAL_CONSTRAINTS' DELETE_RULE / UPDATE_RULE.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ReferentialAction {
    Cascade,
    SetNull,
    SetDefault,
    Restrict,
    NoAction,
}

impl ReferentialAction {
    pub fn parse(rule: &str) -> Option<ReferentialAction> {
        match rule.to_ascii_uppercase().as_str() {
            "CASCADE" => Some(ReferentialAction::Cascade),
            "SET NULL" => Some(ReferentialAction::SetNull),
            "SET DEFAULT" => Some(ReferentialAction::SetDefault),
            "RESTRICT" => Some(ReferentialAction::Restrict),
            "NO ACTION" => Some(ReferentialAction::NoAction),
            _ => None,
        }
    }
}

impl std::fmt::Display for ReferentialAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ReferentialAction::Cascade => "CASCADE",
            ReferentialAction::SetNull => "SET NULL",
            ReferentialAction::SetDefault => "SET DEFAULT",
            ReferentialAction::Restrict => "RESTRICT",
            ReferentialAction::NoAction => "NO ACTION",
        })
    }
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RowsEventKind {
    Write,
    Update,
    Delete,
}

impl std::fmt::Display for RowsEventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RowsEventKind::Write => "Write_rows",
            RowsEventKind::Update => "Update_rows",
            RowsEventKind::Delete => "Delete_rows",
        })
    }
}

/// What kind of conflict stopped the applier.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ConflictKind {
    /// 1062 on a Write_rows event: the row to insert already exists.
    DuplicateOnWrite,
    /// 1062 on an Update_rows event: the new key value already exists.
    DuplicateOnUpdate,
    /// 1032 on an Update_rows event: the row to update is missing.
    MissingOnUpdate,
    /// 1032 on a Delete_rows event: the row to delete is missing.
    MissingOnDelete,
}

impl std::fmt::Display for ConflictKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ConflictKind::DuplicateOnWrite => "a duplicate key on insert",
            ConflictKind::DuplicateOnUpdate => "a duplicate key on update",
            ConflictKind::MissingOnUpdate => "a missing row on update",
            ConflictKind::MissingOnDelete => "a missing row on delete",
        })
    }
}
