//! The journal: every row replmend is about to change or delete is appended here, with the
//! node, the action and the plan's fingerprint, and flushed to disk before the change is made.
//! JSON lines, one entry per row; `replmend restore` reads it back.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::diagnosis::{Row, TableRef};
use crate::value::{Cell, StoredCell};

pub const JOURNAL_SCHEMA: &str = "replmend.journal/1";

#[derive(Debug, Error)]
pub enum JournalError {
    #[error("journal {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("journal {path}, line {line}: {reason}")]
    Malformed {
        path: String,
        line: usize,
        reason: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoredTable {
    pub schema: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub schema: String,
    /// Seconds since the epoch, UTC.
    pub at: u64,
    pub fingerprint: String,
    /// host:port of the node whose row this is.
    pub node: String,
    /// What replmend was about to do: `delete`, `replace`.
    pub action: String,
    pub table: StoredTable,
    /// Whether the change was made with sql_log_bin=0 (a restore does the same).
    pub sql_log_bin: bool,
    /// Column names and values of the row's full image before the change.
    pub columns: Vec<String>,
    pub values: Vec<StoredCell>,
    /// The key columns that identify the row.
    pub key: Vec<String>,
}

impl Entry {
    pub fn new(
        fingerprint: &str,
        node: &str,
        action: &str,
        table: &TableRef,
        sql_log_bin: bool,
        row: &Row,
        key: &[String],
    ) -> Entry {
        Entry {
            schema: JOURNAL_SCHEMA.to_string(),
            at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            fingerprint: fingerprint.to_string(),
            node: node.to_string(),
            action: action.to_string(),
            table: StoredTable {
                schema: table.schema.clone(),
                name: table.name.clone(),
            },
            sql_log_bin,
            columns: row.columns.clone(),
            values: row.values.iter().map(StoredCell::from).collect(),
            key: key.to_vec(),
        }
    }

    pub fn row(&self) -> Result<Row, String> {
        Ok(Row {
            columns: self.columns.clone(),
            values: self
                .values
                .iter()
                .map(Cell::try_from)
                .collect::<Result<_, _>>()?,
        })
    }

    pub fn table_ref(&self) -> TableRef {
        TableRef {
            schema: self.table.schema.clone(),
            name: self.table.name.clone(),
        }
    }
}

/// Where journals go unless `--journal` says otherwise: `$XDG_STATE_HOME/replmend/` or
/// `~/.local/state/replmend/`, one file per day.
pub fn default_path() -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(std::env::temp_dir);
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or(0);
    let date = crate::value::utc_datetime((days * 86_400) as i64, 0, 0);
    base.join("replmend")
        .join(format!("journal-{}.jsonl", &date[..10]))
}

pub struct Journal {
    path: PathBuf,
    file: File,
}

impl Journal {
    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        let io = |source| JournalError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        Ok(Journal {
            path: path.to_path_buf(),
            file,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends and syncs: when this returns, the entry survives a crash or kill -9.
    pub fn append(&mut self, entry: &Entry) -> Result<(), JournalError> {
        let mut line = serde_json::to_string(entry).expect("entries serialize");
        line.push('\n');
        let io = |source| JournalError::Io {
            path: self.path.display().to_string(),
            source,
        };
        self.file.write_all(line.as_bytes()).map_err(io)?;
        self.file.sync_data().map_err(io)
    }
}

pub fn read(path: &Path) -> Result<Vec<Entry>, JournalError> {
    let file = File::open(path).map_err(|source| JournalError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| JournalError::Io {
            path: path.display().to_string(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        // A kill -9 mid-write can leave a torn last line; it was never acted on.
        match serde_json::from_str::<Entry>(&line) {
            Ok(e) => out.push(e),
            Err(e) => {
                return Err(JournalError::Malformed {
                    path: path.display().to_string(),
                    line: i + 1,
                    reason: e.to_string(),
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_then_read_round_trips_hostile_values() {
        let dir =
            std::env::temp_dir().join(format!("replmend-journal-test-{}", std::process::id()));
        let path = dir.join("j.jsonl");
        let row = Row {
            columns: vec!["we`ird col".into(), "b".into(), "n".into()],
            values: vec![
                Cell::Text("quote ' \" \\ 😀".into()),
                Cell::Bytes((0..=255).collect()),
                Cell::Null,
            ],
        };
        let table = TableRef {
            schema: "db".into(),
            name: "t`x".into(),
        };
        let mut j = Journal::open(&path).unwrap();
        j.append(&Entry::new(
            "fp",
            "127.0.0.1:3306",
            "delete",
            &table,
            false,
            &row,
            &["we`ird col".into()],
        ))
        .unwrap();
        let entries = read(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].row().unwrap(), row);
        assert_eq!(entries[0].table_ref(), table);
    }
}
