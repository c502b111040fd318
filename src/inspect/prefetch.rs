//! Batch mode, ahead of time: the transactions after the incident's, read from the source's
//! binlog, their conflicts decoded and the source's versions of those rows looked up, in the
//! background from the moment the diagnosis knows the failing transaction until the repair,
//! under its lock, wants them. Under the lock only the replica's rows are then read. Only
//! reads; a prefetch that is not used, or no longer valid, is simply not used.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::binlog::fetch::{self, Following};
use crate::conn::{ConnSpec, Server};
use crate::diagnosis::finder::{self, Key};
use crate::diagnosis::{ConflictKind, Diagnosis, KeyRef, TableRef};
use crate::flavor::Flavor;
use crate::schema::TableSchema;

/// What the background read found for one incident.
pub struct Prefetched {
    fingerprint: String,
    /// The definition the images were decoded with.
    schema: Arc<TableSchema>,
    /// The incident's own conflicting keys at the time (the read-ahead leaves them to it).
    conflict_keys: HashSet<Key>,
    pub following: Vec<Following>,
    pub candidates: Vec<finder::Ahead>,
    pub source_rows: super::Versions,
}

impl Prefetched {
    /// Usable for the incident as diagnosed again under the lock: the same incident, the
    /// same conflicting keys, and the source's table definition as read under the lock is
    /// the one the images were decoded with (the process keeps one per unchanged definition).
    pub fn still_valid(&self, d: &Diagnosis, schema: &Arc<TableSchema>) -> bool {
        self.fingerprint == d.fingerprint
            && Arc::ptr_eq(&self.schema, schema)
            && self.conflict_keys == super::conflict_keys(d)
    }
}

/// Everything the background read needs, owned.
struct Job {
    fingerprint: String,
    spec: ConnSpec,
    flavor: Flavor,
    file: String,
    end_pos: u64,
    table: TableRef,
    kind: ConflictKind,
    key: KeyRef,
    conflict_keys: HashSet<Key>,
    schema: Arc<TableSchema>,
    max: usize,
}

impl Job {
    fn run(self) -> Option<Prefetched> {
        let table = self.table.clone();
        let following = fetch::fetch_following(
            &self.spec,
            self.flavor,
            &self.file,
            self.end_pos,
            self.max,
            64 << 20,
            &|e| e.table == table,
        )
        .ok()?;
        crate::timing::mark("following transactions read (ahead)");
        let mut seen = self.conflict_keys.clone();
        let events = following.iter().flat_map(|(_, evs)| evs);
        let candidates = finder::ahead(self.kind, events, &self.key, &self.schema, &mut seen);
        let keys: Vec<Key> = candidates.iter().map(|c| c.key.clone()).collect();
        let mut source = Server::connect(&self.spec).ok()?;
        let source_rows = super::rows_on(&mut source, &self.table, &[keys]).ok()?;
        source.release();
        crate::timing::mark("the source's rows read (ahead)");
        Some(Prefetched {
            fingerprint: self.fingerprint,
            schema: self.schema,
            conflict_keys: self.conflict_keys,
            following,
            candidates,
            source_rows,
        })
    }
}

/// The one prefetch in flight, by incident fingerprint (a newer incident's replaces it).
type Slot = Option<(String, JoinHandle<Option<Prefetched>>)>;

static SLOT: Mutex<Slot> = Mutex::new(None);

/// Starts the background read for the diagnosed incident (`source` is the diagnosis's
/// session to the source, `spec` how to reach it). Nothing starts without the failing
/// transaction, a key or the source's definition of the table.
pub fn start(d: &Diagnosis, source: &mut Server, spec: &ConnSpec, max: usize) {
    let (Some(trx), Some(src), Some(key)) = (&d.transaction, &d.source, &d.key) else {
        return;
    };
    let Ok(schema) = source.table(&d.table) else {
        return;
    };
    let job = Job {
        fingerprint: d.fingerprint.clone(),
        spec: spec.clone(),
        flavor: src.flavor,
        file: trx.source_log_file.clone(),
        end_pos: trx.end_pos,
        table: d.table.clone(),
        kind: d.kind,
        key: key.clone(),
        conflict_keys: super::conflict_keys(d),
        schema,
        max,
    };
    // A previous incident's that nobody took (its plan did not read ahead) is finished
    // first: two binlog dumps of this process never run side by side.
    let previous = SLOT.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some((_, running)) = previous {
        let _ = running.join();
    }
    let running = std::thread::spawn(move || job.run());
    *SLOT.lock().unwrap_or_else(|p| p.into_inner()) = Some((d.fingerprint.clone(), running));
}

/// The prefetch for this incident, waited for; None when there is none or it failed.
pub fn take(fingerprint: &str) -> Option<Prefetched> {
    let (fp, running) = SLOT.lock().unwrap_or_else(|p| p.into_inner()).take()?;
    // Waited for even when it is another incident's: its binlog dump must not run beside
    // the one the caller starts next.
    let prefetched = running.join().ok().flatten();
    prefetched.filter(|_| fp == fingerprint)
}
