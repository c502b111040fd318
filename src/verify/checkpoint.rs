//! Where a verify got to, kept on disk while it runs: `verify --resume` continues a verify
//! that was stopped (Ctrl-C, killed, a lost connection) from there instead of from the first
//! row, as VDiff v2 resumes from each table's last key.
//!
//! One file per pair of nodes, beside the saved reports (private: it names drifted keys),
//! rewritten atomically at most once a second, removed when the verify finishes. A stopped
//! verify loses at most the last second of its walk.
//!
//! What a resumed verify means: the tables and key ranges compared before the stop were read
//! then, the rest now; a row changed in a finished range after the stop is not seen. The
//! report says so.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::model::{Key, TableDrift};
use super::saved::Selection;
use super::walk::Chunk;
use crate::value::{Cell, StoredCell};
use crate::vocab::{Endpoint, TableRef};

pub const CHECKPOINT_SCHEMA: &str = "replmend.verify-checkpoint/1";

/// How often a running verify writes its checkpoint, at most.
const EVERY: Duration = Duration::from_secs(1);

/// Whether a verify keeps a checkpoint, and whether it starts from one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// No checkpoint (resync's and the wizard's verifies: they are not resumed).
    #[default]
    Off,
    /// A new verify: any earlier checkpoint of the pair is replaced.
    Fresh,
    /// Continue the pair's stopped verify of the same tables.
    Resume,
}

/// A key as the checkpoint stores it: every value round-trips exactly.
type StoredKey = Vec<(String, StoredCell)>;

fn store(k: &Key) -> StoredKey {
    k.iter().map(|(c, v)| (c.clone(), v.into())).collect()
}

/// None when a value does not decode (a damaged file): then the table starts over.
fn load(k: &StoredKey) -> Option<Key> {
    k.iter()
        .map(|(c, v)| Cell::try_from(v).ok().map(|v| (c.clone(), v)))
        .collect()
}

/// A chunk found differing and not narrowed yet.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingChunk {
    lo: Option<StoredKey>,
    hi: Option<StoredKey>,
    step: u64,
    buckets: Vec<i128>,
}

/// A table walked part way.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Partial {
    pub table: TableRef,
    /// Chunks up to this key (inclusive) were compared; None with `walked`: all of them.
    through: Option<StoredKey>,
    /// The checksum pass reached the table's end (only narrowing was left).
    walked: bool,
    rows: u64,
    chunks: u64,
    differing: Vec<PendingChunk>,
}

/// Where one table's walk starts again.
#[derive(Debug, Default)]
pub(super) struct Start {
    /// The next chunk's lower bound (exclusive); None: the table's first key.
    pub(super) lo: Option<Key>,
    pub(super) walked: bool,
    pub(super) rows: u64,
    pub(super) chunks: u64,
    pub(super) differing: Vec<(std::sync::Arc<Chunk>, Vec<i128>)>,
}

impl Partial {
    fn start(&self) -> Option<Start> {
        let key = |k: &Option<StoredKey>| -> Option<Option<Key>> {
            match k {
                None => Some(None),
                Some(k) => load(k).map(Some),
            }
        };
        let differing = self
            .differing
            .iter()
            .enumerate()
            .map(|(index, c)| {
                let chunk = Chunk {
                    index,
                    lo: key(&c.lo)?,
                    hi: key(&c.hi)?,
                    step: c.step,
                };
                // Its differing buckets are kept (none: a node summed it whole).
                Some((std::sync::Arc::new(chunk), c.buckets.clone()))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Start {
            lo: key(&self.through)?,
            walked: self.walked,
            rows: self.rows,
            chunks: self.chunks,
            differing,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct File {
    schema: String,
    source: Endpoint,
    replica: Endpoint,
    selection: Selection,
    /// Seconds since the epoch when the verify first started.
    started_at: u64,
    done: Vec<TableDrift>,
    partial: Vec<Partial>,
}

/// Why a verify cannot resume.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error(
        "there is no stopped verify of {source_node} against {replica} to resume: run verify without --resume"
    )]
    Nothing {
        source_node: Endpoint,
        replica: Endpoint,
    },
    #[error(
        "the stopped verify of these nodes compared other tables ({was}): give the same --databases/--tables/--ignore-tables, or run without --resume to start over"
    )]
    OtherTables { was: String },
    #[error("the checkpoint {path} cannot be read ({why}): run verify without --resume")]
    Unreadable { path: PathBuf, why: String },
}

/// A running verify's checkpoint, shared by its workers.
pub struct Checkpoint {
    path: Option<PathBuf>,
    /// How often it is written, at most (EVERY).
    every: Duration,
    state: Mutex<(File, Instant)>,
    /// What was resumed: tables finished before, and when that verify started.
    pub resumed: Option<Resumed>,
}

#[derive(Debug, Clone, Copy)]
pub struct Resumed {
    pub started_at: u64,
    pub tables_done: usize,
    pub tables_partial: usize,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

pub fn path_for(dir: &Path, source: &Endpoint, replica: &Endpoint) -> PathBuf {
    super::saved::path_for(dir, source, replica).with_extension("checkpoint.json")
}

fn selection_words(s: &Selection) -> String {
    let mut parts = Vec::new();
    let list = |v: Vec<String>| v.join(",");
    if !s.databases.is_empty() {
        parts.push(format!("--databases {}", list(s.databases.clone())));
    }
    if !s.tables.is_empty() {
        parts.push(format!(
            "--tables {}",
            list(s.tables.iter().map(|t| t.to_string()).collect())
        ));
    }
    if !s.ignore_tables.is_empty() {
        parts.push(format!(
            "--ignore-tables {}",
            list(s.ignore_tables.iter().map(|t| t.to_string()).collect())
        ));
    }
    match parts.is_empty() {
        true => "every table".into(),
        false => parts.join(" "),
    }
}

impl Checkpoint {
    /// The checkpoint of a verify of `source` against `replica` over `selection`, as `mode`
    /// asks (`dir`: where checkpoints live).
    pub fn open(
        mode: Mode,
        dir: &Path,
        source: &Endpoint,
        replica: &Endpoint,
        selection: &Selection,
    ) -> Result<Checkpoint, ResumeError> {
        let fresh = File {
            schema: CHECKPOINT_SCHEMA.into(),
            source: source.clone(),
            replica: replica.clone(),
            selection: selection.clone(),
            started_at: now(),
            done: Vec::new(),
            partial: Vec::new(),
        };
        let path = path_for(dir, source, replica);
        let (file, resumed) = match mode {
            Mode::Off => (fresh, None),
            Mode::Fresh => (fresh, None),
            Mode::Resume => {
                let file = read(&path, source, replica)?;
                if &file.selection != selection {
                    return Err(ResumeError::OtherTables {
                        was: selection_words(&file.selection),
                    });
                }
                let resumed = Resumed {
                    started_at: file.started_at,
                    tables_done: file.done.len(),
                    tables_partial: file.partial.len(),
                };
                (file, Some(resumed))
            }
        };
        let cp = Checkpoint {
            path: (mode != Mode::Off).then_some(path),
            every: EVERY,
            state: Mutex::new((file, Instant::now())),
            resumed,
        };
        cp.write_now();
        Ok(cp)
    }

    /// A table finished before the stop, with its result.
    pub fn done(&self, table: &TableRef) -> Option<TableDrift> {
        let state = self.state.lock().expect("checkpoint");
        state.0.done.iter().find(|t| &t.table == table).cloned()
    }

    /// Where a table's walk starts (its first key when it was not started before).
    pub(super) fn start(&self, table: &TableRef) -> Start {
        let state = self.state.lock().expect("checkpoint");
        let partial = state.0.partial.iter().find(|p| &p.table == table);
        partial.and_then(Partial::start).unwrap_or_default()
    }

    /// Chunks through `through` are compared (`differing` so far): written within a second.
    /// `at`: the last key compared (None: the table's end when `walked`); `counted`: chunks
    /// and rows compared.
    pub(super) fn progress(
        &self,
        table: &TableRef,
        at: (Option<&Key>, bool),
        counted: (u64, u64),
        differing: &[(std::sync::Arc<Chunk>, Vec<i128>)],
    ) {
        let ((through, walked), (chunks, rows)) = (at, counted);
        if self.path.is_none() || !self.due() {
            return;
        }
        let partial = Partial {
            table: table.clone(),
            through: through.map(store),
            walked,
            rows,
            chunks,
            differing: differing
                .iter()
                .map(|(c, b)| PendingChunk {
                    lo: c.lo.as_ref().map(store),
                    hi: c.hi.as_ref().map(store),
                    step: c.step,
                    buckets: b.clone(),
                })
                .collect(),
        };
        let mut state = self.state.lock().expect("checkpoint");
        state.0.partial.retain(|p| &p.table != table);
        state.0.partial.push(partial);
        state.1 = Instant::now();
        self.write(&state.0);
    }

    /// Whether the last write is a second old: the progress of a walk is only built then (a
    /// table with thousands of differing chunks is not copied per chunk).
    fn due(&self) -> bool {
        self.state.lock().expect("checkpoint").1.elapsed() >= self.every
    }

    /// A table finished: its result is kept, its progress dropped.
    pub fn finished(&self, drift: &TableDrift) {
        if self.path.is_none() {
            return;
        }
        let mut state = self.state.lock().expect("checkpoint");
        state.0.partial.retain(|p| p.table != drift.table);
        state.0.done.retain(|t| t.table != drift.table);
        state.0.done.push(drift.clone());
        // At most once a second too: a schema of a thousand small tables would otherwise
        // rewrite a growing file per table. A table finished in the last second is walked
        // again by --resume.
        if state.1.elapsed() >= self.every {
            state.1 = Instant::now();
            self.write(&state.0);
        }
    }

    /// The verify finished: nothing is left to resume.
    pub fn complete(&self) {
        if let Some(p) = &self.path {
            let _ = std::fs::remove_file(p);
        }
    }

    fn write_now(&self) {
        let state = self.state.lock().expect("checkpoint");
        self.write(&state.0);
    }

    /// Written to a private temporary file and renamed: a verify killed while writing leaves
    /// the previous checkpoint whole. A checkpoint that cannot be written costs only the
    /// ability to resume, so it is not an error (the verify goes on).
    fn write(&self, file: &File) {
        let Some(path) = &self.path else {
            return;
        };
        let go = || -> std::io::Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)?;
            }
            let tmp = path.with_extension(format!("json.{}", std::process::id()));
            let mut out = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            // One write, not one per JSON token.
            std::io::Write::write_all(&mut out, &serde_json::to_vec(file)?)?;
            std::fs::rename(&tmp, path)
        };
        let _ = go();
    }
}

fn read(path: &Path, source: &Endpoint, replica: &Endpoint) -> Result<File, ResumeError> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ResumeError::Nothing {
                source_node: source.clone(),
                replica: replica.clone(),
            });
        }
        Err(e) => {
            return Err(ResumeError::Unreadable {
                path: path.into(),
                why: e.to_string(),
            });
        }
    };
    let file: File = serde_json::from_slice(&text).map_err(|e| ResumeError::Unreadable {
        path: path.into(),
        why: e.to_string(),
    })?;
    match file.schema == CHECKPOINT_SCHEMA {
        true => Ok(file),
        false => Err(ResumeError::Unreadable {
            path: path.into(),
            why: format!("written as {}", file.schema),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(port: u16) -> Endpoint {
        Endpoint::new("127.0.0.1", port)
    }

    #[test]
    fn a_stopped_walk_starts_again_where_it_was() {
        let dir = std::env::temp_dir().join(format!("replmend-cp-{}", std::process::id()));
        let sel = Selection {
            databases: vec!["shop".into()],
            tables: vec![],
            ignore_tables: vec![],
        };
        let t = TableRef {
            schema: "shop".into(),
            name: "items".into(),
        };
        let mut cp = Checkpoint::open(Mode::Fresh, &dir, &ep(1), &ep(2), &sel).unwrap();
        cp.every = Duration::ZERO;
        let drift = TableDrift::new(t.clone(), None);
        let k = |n: u64| vec![("id".to_string(), Cell::Number(n.to_string()))];
        let chunk = std::sync::Arc::new(Chunk {
            index: 3,
            lo: Some(k(300)),
            hi: Some(k(400)),
            step: 1,
        });
        cp.progress(&t, (Some(&k(500)), true), (5, 500), &[(chunk, vec![7])]);
        drop(cp);
        let again = Checkpoint::open(Mode::Resume, &dir, &ep(1), &ep(2), &sel).unwrap();
        let start = again.start(&t);
        assert_eq!(start.lo, Some(k(500)));
        assert_eq!((start.rows, start.chunks, start.walked), (500, 5, true));
        assert_eq!(start.differing[0].0.hi, Some(k(400)));
        assert_eq!(start.differing[0].1, vec![7]);
        assert_eq!(again.resumed.unwrap().tables_partial, 1);
        let other = Selection {
            databases: vec!["crm".into()],
            ..sel.clone()
        };
        let e = Checkpoint::open(Mode::Resume, &dir, &ep(1), &ep(2), &other);
        assert!(matches!(e, Err(ResumeError::OtherTables { .. })));
        again.finished(&drift);
        assert!(again.done(&t).is_some());
        again.complete();
        let e = Checkpoint::open(Mode::Resume, &dir, &ep(1), &ep(2), &sel);
        assert!(matches!(e, Err(ResumeError::Nothing { .. })));
    }
}
