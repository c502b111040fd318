//! The journal: every row replmend changes, with the node, the action and the plan's
//! fingerprint, in JSON lines. An entry is written as an *intent* (after the row was checked,
//! synced to disk before the transaction that writes it commits) and followed by its *outcome*
//! (`done` after COMMIT, `rolled_back` when the change did not happen), so it never claims a
//! change that did not happen and never misses one that did. `replmend restore` reads it back.
//!
//! Journals hold whole rows (customers' data, password hashes): they are created 0600 in a
//! 0700 directory, and replmend refuses to append to one that is a symlink or that other users
//! can read or write. Nothing is created until the first entry is written.
//!
//! Beside the rows, a repair or resync appends *records* of what it saw and did (the
//! diagnosis, the plan, each step, the verification): lines with a `record` field, carried
//! here as JSON and modelled by `report`, which writes the incident's postmortem from them.
//!
//! This file holds the entry model and the `Journal` that appends (and its file checks); the
//! lines it appends are built in `lines`, and journals are read back by `read`.

mod lines;
mod read;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::value::Row;
use crate::value::{Cell, StoredCell};
use crate::vocab::{Endpoint, ReadOnly, TableRef};
use lines::lines;
pub use lines::{Intents, RowIntent};
pub use read::{Line, latest, pending_read_only, read, read_lines, reinserted};

pub const JOURNAL_SCHEMA: &str = "replmend.journal/2";

/// The field that makes a journal line a record (not a row entry), naming its kind.
pub const RECORD_TAG: &str = "record";

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
    #[error("journal {path}: {reason}; nothing was changed")]
    Unsafe { path: String, reason: String },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoredTable {
    pub schema: String,
    pub name: String,
}

/// What was done (or about to be done) to the row or node.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The row (`columns`/`values`) was deleted.
    Delete,
    /// The row was inserted (restore takes it out again).
    Insert,
    /// `restore --force` overwrote this row (it can be restored in turn).
    Overwrite,
    /// read_only was turned off on the node; `read_only` holds what to put back.
    LiftReadOnly,
    /// read_only was put back.
    RestoreReadOnly,
}

/// Where an entry's change stands.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Checked and about to be written, inside an open transaction.
    Intent,
    /// Committed. (journal/1 entries, written just before the change, read as done.)
    #[default]
    Done,
    /// The transaction was rolled back: nothing changed.
    RolledBack,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub schema: String,
    /// Seconds since the epoch, UTC.
    pub at: u64,
    pub fingerprint: String,
    /// Ties an outcome to its intent: fingerprint, step and row.
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub state: State,
    /// host:port of the node.
    pub node: Endpoint,
    pub action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<StoredTable>,
    /// Whether the change was made with the binary log on (a restore does the same).
    #[serde(default)]
    pub sql_log_bin: bool,
    /// The row's full image: before a delete or overwrite, the inserted row for an insert.
    #[serde(default)]
    pub columns: Vec<String>,
    #[serde(default)]
    pub values: Vec<StoredCell>,
    /// The key columns that identify the row.
    #[serde(default)]
    pub key: Vec<String>,
    /// The version the repair left at this key (absent: none, or unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<StoredRow>,
    /// Lift/restore entries: the node's read-only state before replmend lifted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<ReadOnly>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoredRow {
    pub columns: Vec<String>,
    pub values: Vec<StoredCell>,
}

impl StoredRow {
    pub fn from_row(row: &Row) -> StoredRow {
        StoredRow {
            columns: row.columns.clone(),
            values: row.values.iter().map(StoredCell::from).collect(),
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
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Entry {
    /// A row entry, as an intent; set `key`, `after` and `sql_log_bin` on it as they apply.
    pub fn row(
        fingerprint: &str,
        id: String,
        node: &Endpoint,
        action: Action,
        table: &TableRef,
        row: &Row,
    ) -> Entry {
        Entry {
            schema: JOURNAL_SCHEMA.to_string(),
            at: now(),
            fingerprint: fingerprint.to_string(),
            id,
            state: State::Intent,
            node: node.clone(),
            action,
            table: Some(StoredTable {
                schema: table.schema.clone(),
                name: table.name.clone(),
            }),
            sql_log_bin: false,
            columns: row.columns.clone(),
            values: row.values.iter().map(StoredCell::from).collect(),
            key: Vec::new(),
            after: None,
            read_only: None,
        }
    }

    /// A read-only lift or restore on a node (written once it happened).
    pub fn read_only(fingerprint: &str, node: &Endpoint, action: Action, state: ReadOnly) -> Entry {
        Entry {
            schema: JOURNAL_SCHEMA.to_string(),
            at: now(),
            fingerprint: fingerprint.to_string(),
            id: format!("{fingerprint}/{node}/read_only"),
            state: State::Done,
            node: node.clone(),
            action,
            table: None,
            sql_log_bin: false,
            columns: Vec::new(),
            values: Vec::new(),
            key: Vec::new(),
            after: None,
            read_only: Some(state),
        }
    }

    /// The same entry with its outcome.
    pub fn outcome(&self, state: State) -> Entry {
        Entry {
            at: now(),
            state,
            ..self.clone()
        }
    }

    pub fn image(&self) -> Result<Row, String> {
        StoredRow {
            columns: self.columns.clone(),
            values: self.values.clone(),
        }
        .row()
    }

    pub fn table_ref(&self) -> Option<TableRef> {
        self.table.as_ref().map(|t| TableRef {
            schema: t.schema.clone(),
            name: t.name.clone(),
        })
    }
}

/// Where journals go unless `--journal` says otherwise: `$XDG_STATE_HOME/replmend/` or
/// `~/.local/state/replmend/`, one file per day.
pub fn default_path() -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(std::env::temp_dir);
    let days = now() / 86_400;
    let date = crate::value::utc_datetime((days * 86_400) as i64, 0, 0);
    base.join("replmend")
        .join(format!("journal-{}.jsonl", &date[..10]))
}

/// Where read_only lifts are also recorded, whatever `--journal` says: a run killed after
/// lifting read_only is found by the next run even on another day or with another journal.
pub fn read_only_ledger() -> PathBuf {
    default_path().with_file_name("read-only-lifts.jsonl")
}

/// A journal file, opened (and created, privately) on the first append.
pub struct Journal {
    path: PathBuf,
    file: Option<File>,
    /// Outcomes being serialized and written off the critical path (a batch's thousands of
    /// rows), by a thread that writes them the moment they are ready; every other write, and
    /// `flush`, waits for it first.
    pending: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

/// Intents written and being synced while the transaction that changes their rows runs; it
/// commits only once `wait` says they are on disk.
#[must_use]
pub struct Syncing {
    sync: std::thread::JoinHandle<(Intents, std::io::Result<()>)>,
    path: String,
}

impl Syncing {
    /// The intents back, once they are on disk (or the error that kept them from it).
    pub fn wait(self) -> (Intents, Result<(), JournalError>) {
        let (intents, done) = self
            .sync
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        let path = self.path;
        (
            intents,
            done.map_err(|source| JournalError::Io { path, source }),
        )
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

impl Journal {
    /// Checks the path now (a refusal comes before anything changes); creates nothing.
    pub fn new(path: &Path) -> Result<Journal, JournalError> {
        check_private(path)?;
        Ok(Journal {
            path: path.to_path_buf(),
            file: None,
            pending: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn file(&mut self) -> Result<&mut File, JournalError> {
        if self.file.is_none() {
            self.file = Some(open_private(&self.path)?);
        }
        Ok(self.file.as_mut().expect("just opened"))
    }

    /// A read-only lift or restore: in this journal and in the fixed ledger, so the next run
    /// finds a lift left pending whatever journal it is given.
    pub fn record_read_only(&mut self, entry: &Entry) -> Result<(), JournalError> {
        self.append(std::slice::from_ref(entry))?;
        let ledger = read_only_ledger();
        if ledger != self.path {
            Journal::new(&ledger)?.append(std::slice::from_ref(entry))?;
        }
        Ok(())
    }

    /// Appends and syncs once: when this returns, the entries survive a crash or kill -9.
    pub fn append(&mut self, entries: &[Entry]) -> Result<(), JournalError> {
        self.write(entries)
    }

    /// Appends the outcomes (done, rolled back) of these intents without waiting for the
    /// disk: a thread of their own serializes and writes them (within milliseconds) while the
    /// repair goes on. Written, they survive a kill -9, and a power cut once the next synced
    /// append or the kernel flushed them; one lost before that leaves its intent alone, which
    /// `restore` judges by the row itself, as it does an ambiguous COMMIT.
    pub fn append_outcomes(&mut self, intents: Intents, state: State) -> Result<(), JournalError> {
        self.flush()?;
        if intents.is_empty() {
            return Ok(());
        }
        let mut file = self
            .file()?
            .try_clone()
            .map_err(|source| JournalError::Io {
                path: self.path.display().to_string(),
                source,
            })?;
        self.pending = Some(std::thread::spawn(move || {
            file.write_all(intents.outcomes(state).as_bytes())
        }));
        Ok(())
    }

    /// Waits for the outcomes being written.
    pub fn flush(&mut self) -> Result<(), JournalError> {
        match self.pending.take() {
            Some(p) => p
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
                .map_err(|source| JournalError::Io {
                    path: self.path.display().to_string(),
                    source,
                }),
            None => Ok(()),
        }
    }

    /// Appends intents and syncs them on a thread while the caller goes on with its
    /// transaction, which may COMMIT only after `Syncing::wait` returned Ok. Nothing else is
    /// written to the journal meanwhile (the caller holds it until then).
    pub fn append_syncing(&mut self, intents: Intents) -> Result<Syncing, JournalError> {
        self.flush()?;
        let path = self.path.display().to_string();
        let mut file = self
            .file()?
            .try_clone()
            .map_err(|source| JournalError::Io {
                path: path.clone(),
                source,
            })?;
        let sync = std::thread::spawn(move || {
            let done = file
                .write_all(intents.lines.as_bytes())
                .and_then(|()| file.sync_data());
            (intents, done)
        });
        Ok(Syncing { sync, path })
    }

    /// Appends records (JSON objects with a `record` field, see `Line::Record`): what the run
    /// saw and did, beside its rows, for `replmend report`. Not synced: they are an account,
    /// not a safety record (restore never reads them), and a repair's time is counted in
    /// milliseconds; the next synced append or the kernel puts them on disk.
    pub fn append_records<T: Serialize>(&mut self, records: &[T]) -> Result<(), JournalError> {
        self.flush()?;
        if records.is_empty() {
            return Ok(());
        }
        let mut text = String::new();
        for r in records {
            text.push_str(&serde_json::to_string(r).expect("records serialize"));
            text.push('\n');
        }
        let path = self.path.display().to_string();
        self.file()?
            .write_all(text.as_bytes())
            .map_err(|source| JournalError::Io { path, source })
    }

    /// Appends intents and syncs once (outside a transaction).
    pub fn append_intents(&mut self, intents: &Intents) -> Result<(), JournalError> {
        self.write_text(&intents.lines)
    }

    fn write(&mut self, entries: &[Entry]) -> Result<(), JournalError> {
        self.write_text(&lines(entries))
    }

    fn write_text(&mut self, text: &str) -> Result<(), JournalError> {
        self.flush()?;
        if text.is_empty() {
            return Ok(());
        }
        let path = self.path.display().to_string();
        let file = self.file()?;
        let io = |source| JournalError::Io {
            path: path.clone(),
            source,
        };
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_data().map_err(io)
    }
}

fn unsafe_journal(path: &Path, reason: impl Into<String>) -> JournalError {
    JournalError::Unsafe {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// An existing journal must be a regular file of ours that nobody else can read or write.
fn check_private(path: &Path) -> Result<(), JournalError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(JournalError::Io {
                path: path.display().to_string(),
                source,
            });
        }
    };
    if meta.file_type().is_symlink() {
        return Err(unsafe_journal(
            path,
            "is a symbolic link; give the real file",
        ));
    }
    if !meta.is_file() {
        return Err(unsafe_journal(path, "is not a regular file"));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(unsafe_journal(
            path,
            format!("belongs to uid {}, not to you", meta.uid()),
        ));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(unsafe_journal(
            path,
            format!(
                "other users can read or write it (mode {:o}); it holds whole rows: chmod 600 it",
                meta.mode() & 0o777
            ),
        ));
    }
    Ok(())
}

fn open_private(path: &Path) -> Result<File, JournalError> {
    let io = |source| JournalError::Io {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io)?;
    }
    check_private(path)?;
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(io)
}

#[cfg(test)]
mod tests {
    use super::lines::outcome_lines;
    use super::*;

    fn tmp(tag: &str) -> PathBuf {
        std::env::temp_dir().join(format!("replmend-journal-{tag}-{}", std::process::id()))
    }

    fn entry(row: &Row, table: &TableRef) -> Entry {
        Entry {
            key: vec!["we`ird col".into()],
            ..Entry::row(
                "fp",
                "fp/1/0".into(),
                &Endpoint::parse("127.0.0.1:3306").unwrap(),
                Action::Delete,
                table,
                row,
            )
        }
    }

    #[test]
    fn intent_lines_written_from_parts_equal_serialized_entries_and_their_outcomes() {
        let table = TableRef {
            schema: "s\"state\":\"intent\"".into(),
            name: "t`\\\n".into(),
        };
        let row = Row {
            columns: vec![
                "state".into(),
                "v".into(),
                "n".into(),
                "d".into(),
                "j".into(),
            ],
            values: vec![
                Cell::Text("\"state\":\"intent\" 😀 \u{1}".into()),
                Cell::Bytes(vec![0, 255, b'"']),
                Cell::Null,
                Cell::Temporal("2026-12-02 10:00:00.5".into()),
                Cell::Json("{\"a\":[1]}".into()),
            ],
        };
        let number = Row {
            columns: vec!["id".into()],
            values: vec![Cell::Number("-12.50".into())],
        };
        let key = vec![("state".to_string(), Cell::Null)];
        let cases = [
            (Action::Delete, false, &row, None, "fp/1/0"),
            (
                Action::Insert,
                true,
                &number,
                Some(&row),
                "fp/1/\"state\":\"intent\"",
            ),
        ];
        let mut intents = Intents::default();
        let mut entries = Vec::new();
        for (action, sql_log_bin, image, after, id) in cases {
            let part = RowIntent {
                fingerprint: "fp",
                id,
                node: &Endpoint::parse("127.0.0.1:3306").unwrap(),
                action,
                table: &table,
                sql_log_bin,
                image,
                key: &key,
                after,
            };
            let written = part.line();
            let entry: Entry = serde_json::from_str(&written).unwrap();
            let expected = Entry {
                key: vec!["state".into()],
                sql_log_bin,
                after: after.map(StoredRow::from_row),
                at: entry.at,
                ..Entry::row(
                    "fp",
                    id.into(),
                    &Endpoint::parse("127.0.0.1:3306").unwrap(),
                    action,
                    &table,
                    image,
                )
            };
            assert_eq!(written, lines(std::slice::from_ref(&expected)));
            intents.push(&written);
            entries.push(expected);
        }
        for state in [State::Done, State::RolledBack] {
            let outcomes: Vec<Entry> = entries
                .iter()
                .map(|e| Entry {
                    at: 42,
                    ..e.outcome(state)
                })
                .collect();
            assert_eq!(
                outcome_lines(&intents.lines, state, 42),
                Some(lines(&outcomes))
            );
        }
        assert_eq!(
            outcome_lines("{\"schema\":\"other\"}\n", State::Done, 1),
            None
        );
    }

    #[test]
    fn append_then_read_round_trips_hostile_values() {
        let dir = tmp("rt");
        let path = dir.join("sub/j.jsonl");
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
        let mut j = Journal::new(&path).unwrap();
        assert!(!path.exists(), "nothing is created before the first entry");
        let e = entry(&row, &table);
        j.append(std::slice::from_ref(&e)).unwrap();
        j.append(&[e.outcome(State::Done)]).unwrap();
        let mode = std::fs::metadata(&path).unwrap().mode() & 0o777;
        let dir_mode = std::fs::metadata(path.parent().unwrap()).unwrap().mode() & 0o777;
        let entries = read(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!((mode, dir_mode), (0o600, 0o700));
        assert_eq!(entries.len(), 2);
        let l = latest(&entries);
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].state, State::Done);
        assert_eq!(l[0].image().unwrap(), row);
        assert_eq!(l[0].table_ref(), Some(table));
    }

    #[test]
    fn refuses_symlinks_and_shared_files() {
        let dir = tmp("unsafe");
        std::fs::create_dir_all(&dir).unwrap();
        let shared = dir.join("shared.jsonl");
        std::fs::write(&shared, "").unwrap();
        std::fs::set_permissions(&shared, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .unwrap();
        let link = dir.join("link.jsonl");
        std::os::unix::fs::symlink(&shared, &link).unwrap();
        let e1 = Journal::new(&shared).err().unwrap().to_string();
        let e2 = Journal::new(&link).err().unwrap().to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(e1.contains("other users can read"), "{e1}");
        assert!(e2.contains("symbolic link"), "{e2}");
    }

    #[test]
    fn journal_v1_entries_still_read_as_done_deletes() {
        let dir = tmp("v1");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("old.jsonl");
        std::fs::write(&path, r#"{"schema":"replmend.journal/1","at":1,"fingerprint":"f","node":"h:1","action":"delete","table":{"schema":"s","name":"t"},"sql_log_bin":false,"columns":["id"],"values":[{"t":"number","v":"1"}],"key":["id"]}
{"torn"#).unwrap();
        let e = read(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].action, e[0].state), (Action::Delete, State::Done));
        assert_eq!(e[0].node, Endpoint::new("h", 1));
    }

    #[test]
    fn an_entry_naming_no_endpoint_is_malformed() {
        let dir = tmp("badnode");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.jsonl");
        let line = |node: &str| {
            format!(
                r#"{{"schema":"replmend.journal/1","at":1,"fingerprint":"f","node":"{node}","action":"delete","table":{{"schema":"s","name":"t"}},"sql_log_bin":false,"columns":["id"],"values":[{{"t":"number","v":"1"}}],"key":["id"]}}"#
            )
        };
        std::fs::write(&path, format!("{}\n{}\n", line("nope"), line("h:1"))).unwrap();
        let e = read(&path).unwrap_err().to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            e.contains("line 1") && e.contains("\"nope\" is not an endpoint"),
            "{e}"
        );
    }

    #[test]
    fn a_lift_without_its_restore_is_pending() {
        let dir = tmp("ro");
        let path = dir.join("j.jsonl");
        let mut j = Journal::new(&path).unwrap();
        j.append(&[
            Entry::read_only(
                "f",
                &Endpoint::new("a", 1),
                Action::LiftReadOnly,
                ReadOnly::SuperReadOnly,
            ),
            Entry::read_only(
                "f",
                &Endpoint::new("b", 1),
                Action::LiftReadOnly,
                ReadOnly::ReadOnly,
            ),
            Entry::read_only(
                "f",
                &Endpoint::new("a", 1),
                Action::RestoreReadOnly,
                ReadOnly::SuperReadOnly,
            ),
        ])
        .unwrap();
        let p = pending_read_only(&[&path, &dir.join("absent")]).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(p, vec![(Endpoint::new("b", 1), ReadOnly::ReadOnly)]);
    }
}
