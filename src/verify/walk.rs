//! The walk over one table: its chunks read and hashed by the source and every replica at
//! once (pipelined, each node on its own connection), each replica's sums paired with the
//! source's, and each replica's differing chunks handed to the differ between the source and
//! that replica alone.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::diff::ChunkDiff;
use super::differ::{RECHECK_BATCH, read_buckets};
use super::lag::LagGuard;
use super::model::{Key, TableDrift};
use super::pairing::Pairing;
use super::table_plan::{IntRanges, adapt, chunk_bucket_ranges, chunk_key, is_integer, min_max};
use super::{Options, Pair};
use crate::conn::Server;
use crate::schema::TableSchema;
use crate::sql::{self, Statement};
use crate::vocab::TableRef;

/// One worker's walk over a table, between the source and one replica: what is narrowed,
/// rechecked and recorded pair by pair (the differ, the catch-up wait).
pub(super) struct Walk<'a> {
    pub(super) pair: &'a Pair,
    pub(super) opts: &'a Options,
    pub(super) source: &'a mut Server,
    pub(super) replica: &'a mut Server,
    pub(super) bar: &'a indicatif::ProgressBar,
    /// The row digest every node of the run computes.
    pub(super) digest: sql::RowDigest,
    /// The last catch-up wait returned at once (the replica keeps up): suspects are then
    /// rechecked as soon as they are found, while their pages are still in the buffer pool.
    /// Kept across tables: a replica found lagging is not waited for per batch again.
    pub(super) keeps_up: &'a mut bool,
}

/// One replica of a walk: its pair with the source, and the worker's connection to it.
pub(super) struct Side<'a> {
    pub(super) pair: &'a Pair,
    pub(super) server: &'a mut Server,
    /// `Walk::keeps_up` of this replica, kept across the worker's tables.
    pub(super) keeps_up: &'a mut bool,
}

/// One worker's walk over a table: the source and each replica compared with it (one for
/// `verify --replica`, several for a fleet). Each chunk is hashed once on the source and once
/// on each replica, all at once; a replica's differing chunks are narrowed between the source
/// and that replica alone (`Walk`).
pub(super) struct Fan<'a> {
    pub(super) opts: &'a Options,
    pub(super) source: &'a mut Server,
    pub(super) replicas: Vec<Side<'a>>,
    /// The worker's second session on the source, for chunk bounds: kept across tables.
    pub(super) bounds: &'a mut Server,
    pub(super) lag: &'a mut LagGuard,
    pub(super) bar: &'a indicatif::ProgressBar,
    /// The row digest every node of the run computes (`RowDigest::common`).
    pub(super) digest: sql::RowDigest,
    /// The source's row estimate for the table being walked.
    pub(super) estimate: u64,
    /// Where the walk got to, for `--resume` (one replica only: a fleet's is off).
    pub(super) checkpoint: &'a super::checkpoint::Checkpoint,
}

/// A replica's chunks whose sums differ from the source's (with the differing buckets when
/// the key is a single integer).
pub(super) type Differing = Vec<(std::sync::Arc<Chunk>, Vec<i128>)>;
/// Rows of (key…, hash) as a statement returns them.
pub(super) fn read_key_hashes(
    server: &mut Server,
    schema: &TableSchema,
    key: &[String],
    st: &Statement,
) -> Result<Vec<(Key, String)>> {
    let cols: Vec<&crate::schema::ColumnDef> = key
        .iter()
        .map(|c| schema.column(c).context("key column"))
        .collect::<Result<_>>()?;
    let mut out = Vec::new();
    server.for_each_row(st, |row| -> Result<()> {
        let mut values = row.unwrap().into_iter();
        let mut k = Vec::with_capacity(cols.len());
        for col in &cols {
            let v = values.next().unwrap_or(mysql::Value::NULL);
            k.push((
                col.name.clone(),
                crate::binlog::decode::cell_from_value(v, col),
            ));
        }
        let hash = match values.next() {
            Some(mysql::Value::Bytes(b)) => String::from_utf8_lossy(&b).into_owned(),
            _ => String::new(),
        };
        out.push((k, hash));
        Ok(())
    })?;
    Ok(out)
}

/// (rows, xor, sum) of a checksum statement, as the server printed them.
pub(super) fn read_checksum(server: &mut Server, st: &Statement) -> Result<(u64, String, String)> {
    let row: Option<mysql::Row> = server.first_prepared(st)?;
    let text = |v: Option<mysql::Value>| v.map(value_text).unwrap_or_default();
    let Some(row) = row else {
        return Ok((0, String::new(), String::new()));
    };
    let mut values = row.unwrap().into_iter();
    let count = text(values.next()).parse().unwrap_or(0);
    Ok((count, text(values.next()), text(values.next())))
}
/// Chunks in flight between the bounds thread and each node's hashing thread.
const PIPELINE: usize = 16;
/// Differing buckets narrowed in one statement (a few dozen rows each).
const NARROW_RANGES: usize = 64;

/// One chunk of a table: (lo, hi] along its key, and the bucket width for an integer key.
#[derive(Debug)]
pub(super) struct Chunk {
    pub(super) index: usize,
    pub(super) lo: Option<Key>,
    pub(super) hi: Option<Key>,
    pub(super) step: u64,
}

/// After a differing chunk, the chunks summed by bucket in the pass: drift comes in runs, and
/// a chunk summed whole that differs costs a second, bucketed, statement to narrow.
const BUCKETED_RUN: usize = 32;

/// Whether chunk `index` is summed by bucket, `last` being one past the index of the last
/// chunk found differing (0: none yet).
fn near_drift(last: usize, index: usize) -> bool {
    last != 0 && index < last + BUCKETED_RUN
}

/// A chunk's checksums as one node computed them.
#[derive(Debug, PartialEq)]
pub(super) enum Sums {
    Whole((u64, String, String)),
    Buckets(std::collections::HashMap<i128, (u64, String)>),
}

impl Sums {
    pub(super) fn rows(&self) -> u64 {
        match self {
            Sums::Whole((n, _, _)) => *n,
            Sums::Buckets(b) => b.values().map(|(n, _)| n).sum(),
        }
    }

    /// None when both nodes agree; else the differing buckets (empty: the whole chunk).
    pub(super) fn differing(&self, other: &Sums) -> Option<Vec<i128>> {
        match (self, other) {
            (a, b) if a == b => None,
            (Sums::Buckets(a), Sums::Buckets(b)) => {
                let mut out: Vec<i128> = a
                    .iter()
                    .filter(|(k, v)| b.get(*k) != Some(*v))
                    .map(|(k, _)| *k)
                    .chain(b.keys().filter(|k| !a.contains_key(*k)).copied())
                    .collect();
                out.sort();
                Some(out)
            }
            // The nodes decided apart (drift was found between their reads): compared whole.
            (a, b) if a.folded().is_some_and(|f| Some(f) == b.folded()) => None,
            _ => Some(Vec::new()),
        }
    }

    /// The chunk's (rows, XOR of its row digests), its buckets folded together.
    fn folded(&self) -> Option<(u64, u64)> {
        match self {
            Sums::Whole((n, x, _)) => Some((*n, x.parse().ok()?)),
            Sums::Buckets(b) => b.values().try_fold((0, 0), |(n, x), (bn, bx)| {
                Some((n + bn, x ^ bx.parse::<u64>().ok()?))
            }),
        }
    }
}

/// How `server` evaluates the row text of the pass's statements: once when its flavor
/// allows setting a variable in an expression and the probe finds it set before it is read;
/// twice otherwise (or when the probe fails: the saving is never a reason to fail).
fn text_eval(server: &mut Server, digest: sql::RowDigest) -> sql::TextEval {
    if let Some(e) = server.text_eval {
        return e;
    }
    let once = server.flavor.sets_variables_in_expressions()
        && matches!(
            server.first::<Option<i64>>(&sql::text_once_probe(digest)),
            Ok(Some(Some(1)))
        );
    let e = match once {
        true => sql::TextEval::Once,
        false => sql::TextEval::Twice,
    };
    server.text_eval = Some(e);
    crate::timing::mark(format_args!(
        "row text evaluated {e:?} on {}",
        server.spec.endpoint()
    ));
    e
}

/// The last row's text is not left in the session's variable (`sql::text_var_cleared`) for
/// the rest of a run (pooled sessions, a watch daemon). A failure here is ignored: it changes
/// nothing verify found.
fn forget_row_text(server: &mut Server) {
    if server.text_eval == Some(sql::TextEval::Once) {
        let _ = server.run(&sql::text_var_cleared());
    }
}

fn chunk_sums(
    server: &mut Server,
    ss: &TableSchema,
    key: &[String],
    charsets: &sql::Charsets,
    buckets: bool,
    chunk: &Chunk,
    digest: sql::RowDigest,
) -> Result<Sums> {
    let (lo, hi) = (chunk.lo.as_deref(), chunk.hi.as_deref());
    let digest = (digest, text_eval(server, digest));
    match buckets {
        true => {
            let st = sql::chunk_bucket_checksums(ss, digest, &key[0], chunk.step, lo, hi);
            Ok(Sums::Buckets(read_buckets(server, &st)?))
        }
        false => {
            let st = sql::chunk_checksum(ss, digest, lo, hi, charsets, false);
            Ok(Sums::Whole(read_checksum(server, &st)?))
        }
    }
}
impl<'a> Fan<'a> {
    /// Each replica's drift of `table`, in the order of `replicas`.
    pub(super) fn table(&mut self, table: &TableRef) -> Vec<TableDrift> {
        let mut drifts: Vec<TableDrift> = self
            .replicas
            .iter()
            .map(|_| TableDrift::new(table.clone(), None))
            .collect();
        if let Err(e) = self.compare_table(table, &mut drifts) {
            // The source's side failed: no replica was compared.
            let message = crate::describe::message(&e);
            for d in drifts.iter_mut().filter(|d| d.error.is_none()) {
                d.error = Some(message.clone());
            }
        }
        drifts
    }

    /// The walk between the source and replica `i`.
    fn pairwise(&mut self, i: usize) -> Walk<'_> {
        let side = &mut self.replicas[i];
        Walk {
            pair: side.pair,
            opts: self.opts,
            source: &mut *self.source,
            replica: &mut *side.server,
            bar: self.bar,
            digest: self.digest,
            keeps_up: &mut *side.keeps_up,
        }
    }

    fn compare_table(&mut self, table: &TableRef, drifts: &mut [TableDrift]) -> Result<()> {
        let ss = crate::conn::catalog::load(self.source, table)?;
        // A replica whose columns differ is not compared; the others are.
        for (side, drift) in self.replicas.iter_mut().zip(drifts.iter_mut()) {
            let same = crate::conn::catalog::load(side.server, table)
                .map_err(anyhow::Error::from)
                .and_then(|rs| same_columns(&ss, &rs));
            if let Err(e) = same {
                drift.error = Some(crate::describe::message(&e));
            }
        }
        let Some(key) = chunk_key(self.source, &ss)? else {
            for (i, drift) in drifts.iter_mut().enumerate() {
                if drift.error.is_none()
                    && let Err(e) = self.pairwise(i).multiset(&ss, drift)
                {
                    drift.error = Some(crate::describe::message(&e));
                }
            }
            return Ok(());
        };
        for d in drifts.iter_mut() {
            d.key = Some(key.clone());
        }
        self.chunks(&ss, &key, drifts)
    }

    /// The table's chunks, pipelined (`pass`); then each replica's differing chunks narrowed,
    /// rechecked after a catch-up and recorded, between the source and that replica alone.
    pub(super) fn chunks(
        &mut self,
        ss: &TableSchema,
        key: &[String],
        drifts: &mut [TableDrift],
    ) -> Result<()> {
        let charsets = ss.converted_charsets();
        let int_key = key.len() == 1 && ss.column(&key[0]).is_some_and(is_integer);
        let t0 = Instant::now();
        let found = self.pass(ss, key, &charsets, int_key, drifts)?;
        if std::env::var_os("REPLMEND_VERIFY_TIMING").is_some() {
            let n: usize = found.iter().flatten().map(Vec::len).sum();
            eprintln!("pass {:?}, {n} differing chunks", t0.elapsed());
        }
        for (i, differing) in found.into_iter().enumerate() {
            let drift = &mut drifts[i];
            let narrowed = differing.and_then(|d| {
                self.pairwise(i)
                    .narrow(ss, key, &charsets, int_key, d, drift)
            });
            if let Err(e) = narrowed {
                drift.error = Some(crate::describe::message(&e));
            }
        }
        if std::env::var_os("REPLMEND_VERIFY_TIMING").is_some() {
            eprintln!("settled {:?}", t0.elapsed());
        }
        Ok(())
    }

    /// Every compared replica's key range joined: rows above the source's largest key are
    /// extra rows of some replica.
    fn replica_range(
        &mut self,
        ss: &TableSchema,
        key: &str,
        live: &[usize],
    ) -> Result<Option<(i128, i128)>> {
        let mut range: Option<(i128, i128)> = None;
        for &i in live {
            if let Some((a, b)) = min_max(self.replicas[i].server, ss, key)? {
                range = Some(range.map_or((a, b), |(c, d)| (a.min(c), b.max(d))));
            }
        }
        Ok(range)
    }

    /// The checksum pass: one thread finds the chunk bounds on the source, the source and
    /// each replica hash the chunks on their own connections as fast as they can (no waiting
    /// for another node between chunks), and this thread pairs each replica's sums with the
    /// source's. Returns, per replica, its differing chunks, or why its hashing failed (the
    /// other replicas go on); a replica already not compared (`drifts[i].error`) is left out.
    pub(super) fn pass(
        &mut self,
        ss: &TableSchema,
        key: &[String],
        charsets: &sql::Charsets,
        int_key: bool,
        drifts: &mut [TableDrift],
    ) -> Result<Vec<Result<Differing>>> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::mpsc::{channel, sync_channel};
        let live: Vec<usize> = (0..drifts.len())
            .filter(|i| drifts[*i].error.is_none())
            .collect();
        if live.is_empty() {
            return Ok(drifts.iter().map(|_| Ok(Vec::new())).collect());
        }
        let size = &AtomicUsize::new(self.opts.chunk_size.max(1));
        let (opts, bar, estimate, digest) = (self.opts, self.bar, self.estimate, self.digest);
        // A resumed table starts after the last key compared, with what was found before.
        let start = self.checkpoint.start(&ss.table);
        let checkpoint = self.checkpoint;
        bar.inc(start.rows);
        if start.walked && drifts.len() == 1 && live.len() == 1 {
            // Stopped while narrowing: only that is left.
            (drifts[0].rows, drifts[0].chunks) = (start.rows, start.chunks);
            return Ok(vec![Ok(start.differing)]);
        }
        // Chunks are cut by value on an integer key and summed by bucket near drift (a
        // differing chunk is then narrowed without hashing it again), else whole: grouping
        // costs the server a sixth (MariaDB) to a third (MySQL) more per row (docs/verify.md),
        // for nothing on an identical table.
        let last_differing = &std::sync::atomic::AtomicUsize::new(0);
        let rep_min_max = match int_key {
            true => Some(self.replica_range(ss, &key[0], &live)?),
            false => None,
        };
        let (conn, lag) = (&mut *self.bounds, &mut *self.lag);
        let src = &mut *self.source;
        let reps: Vec<&mut Server> = self
            .replicas
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| live.contains(i))
            .map(|(_, s)| &mut *s.server)
            .collect();
        let (to_src, src_inbox) = sync_channel::<Arc<Chunk>>(PIPELINE);
        let (to_reps, rep_inboxes): (Vec<_>, Vec<_>) = (0..reps.len())
            .map(|_| sync_channel::<Arc<Chunk>>(PIPELINE))
            .unzip();
        let (results, sums) = channel::<(usize, Arc<Chunk>, Result<Sums>, Duration)>();
        let mut pairing = Pairing::new(reps.len());
        let first_lo = match reps.len() {
            1 => pairing.resume(start),
            _ => None,
        };
        std::thread::scope(|s| -> Result<()> {
            // Owns every sender: when it ends, the hashing threads' inboxes close.
            let bounds = s.spawn(move || -> Result<()> {
                let ranges = match int_key {
                    true => Some(IntRanges::new(
                        &mut *conn,
                        rep_min_max,
                        ss,
                        &key[0],
                        estimate,
                    )?),
                    false => None,
                };
                let mut bounds = Bounds {
                    conn,
                    ranges,
                    lo: first_lo,
                };
                let mut to_reps: Vec<Option<_>> = to_reps.into_iter().map(Some).collect();
                for index in 0.. {
                    lag.respect(bar)?;
                    let chunk = Arc::new(bounds.next(ss, key, charsets, index, size)?);
                    // Without the source's sums no chunk is compared; a replica whose
                    // hashing failed takes no more chunks, the others go on.
                    if to_src.send(chunk.clone()).is_err() {
                        return Ok(());
                    }
                    for to in to_reps.iter_mut() {
                        if to.as_ref().is_some_and(|t| t.send(chunk.clone()).is_err()) {
                            *to = None;
                        }
                    }
                    if chunk.hi.is_none() || to_reps.iter().all(Option::is_none) {
                        return Ok(());
                    }
                }
                Ok(())
            });
            let servers = std::iter::once(src).chain(reps);
            let inboxes = std::iter::once(src_inbox).chain(rep_inboxes);
            for (side, (server, inbox)) in servers.zip(inboxes).enumerate() {
                let results = results.clone();
                s.spawn(move || {
                    for chunk in inbox {
                        let started = Instant::now();
                        // Decided now, not when the chunk was cut: the chunks queued
                        // before drift was found are summed by bucket too (a chunk summed
                        // whole that differs costs another statement on both nodes).
                        let near = last_differing.load(Ordering::Relaxed);
                        let by_bucket = int_key && near_drift(near, chunk.index);
                        let r = chunk_sums(server, ss, key, charsets, by_bucket, &chunk, digest);
                        let failed = r.is_err();
                        if results.send((side, chunk, r, started.elapsed())).is_err() || failed {
                            return;
                        }
                    }
                    forget_row_text(server);
                });
            }
            drop(results);
            for (side, chunk, r, took) in sums {
                let through = chunk.hi.clone();
                let index = chunk.index;
                let before = pairing.differing();
                let done = match side {
                    0 => pairing.source(chunk, r?),
                    n => pairing.replica(n - 1, chunk, r),
                };
                if pairing.differing() > before {
                    // Results arrive out of order: the window only moves forward.
                    last_differing.fetch_max(index + 1, Ordering::Relaxed);
                }
                if let Some(rows) = done {
                    bar.inc(rows);
                    if let Some((differing, counted)) = pairing.only() {
                        let walked = through.is_none();
                        let at = (through.as_ref(), walked);
                        checkpoint.progress(&ss.table, at, counted, differing);
                    }
                    if let Some(target) = opts.chunk_time {
                        let n = size.load(Ordering::Relaxed);
                        size.store(adapt(n, took, target), Ordering::Relaxed);
                    }
                }
            }
            bounds
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))?;
            Ok(())
        })?;
        Ok(pairing.into_found(&live, drifts))
    }
}

/// The bounds thread's state: the next chunk starts after `lo`.
struct Bounds<'c> {
    conn: &'c mut Server,
    /// A single integer key is cut by value (no bound query: on a clustered primary key,
    /// finding the 5000th next key reads 5000 whole rows).
    ranges: Option<IntRanges>,
    lo: Option<Key>,
}

impl Bounds<'_> {
    fn next(
        &mut self,
        ss: &TableSchema,
        key: &[String],
        charsets: &sql::Charsets,
        index: usize,
        size: &std::sync::atomic::AtomicUsize,
    ) -> Result<Chunk> {
        let n = size.load(std::sync::atomic::Ordering::Relaxed);
        let hi = match &self.ranges {
            Some(r) => r.next_hi(self.lo.as_deref(), n),
            None => {
                let st = sql::chunk_bound(&ss.table, key, self.lo.as_deref(), n, charsets);
                read_bound(self.conn, ss, key, &st)?
            }
        };
        let step = self.ranges.as_ref().map_or(1, |r| r.step(n));
        let lo = std::mem::replace(&mut self.lo, hi.clone());
        Ok(Chunk {
            index,
            lo,
            hi,
            step,
        })
    }
}

impl Walk<'_> {
    /// A replica's differing chunks narrowed to rows (by bucket when the pass summed buckets,
    /// else by row hashes), rechecked after a catch-up, and recorded.
    pub(super) fn narrow(
        &mut self,
        ss: &TableSchema,
        key: &[String],
        charsets: &sql::Charsets,
        buckets: bool,
        differing: Differing,
        drift: &mut TableDrift,
    ) -> Result<()> {
        let mut suspects = ChunkDiff::default();
        match buckets {
            // Differing buckets of many chunks read in one statement: a round trip per
            // chunk was most of the time of 1,000 rows drifted over 1,000 chunks. A chunk
            // the pass summed whole is summed by bucket on both nodes first.
            true => {
                let mut ranges: Vec<(i128, i128)> = Vec::new();
                for (c, b) in &differing {
                    let b = match b.is_empty() {
                        true => self.differing_buckets(ss, key, charsets, c)?,
                        false => b.clone(),
                    };
                    ranges.extend(chunk_bucket_ranges(
                        c.lo.as_deref(),
                        c.hi.as_deref(),
                        c.step,
                        &b,
                    ));
                }
                crate::timing::mark(format!("{} differing buckets to narrow", ranges.len()));
                for batch in ranges.chunks(NARROW_RANGES) {
                    suspects.absorb(self.narrow_ranges(ss, &key[0], batch)?);
                    self.settle_batch(ss, key, charsets, &mut suspects, drift)?;
                }
            }
            false => {
                for (chunk, _) in differing {
                    let (lo, hi) = (chunk.lo.as_deref(), chunk.hi.as_deref());
                    suspects.absorb(self.row_hashes(ss, key, lo, hi, charsets)?.1);
                    self.settle_batch(ss, key, charsets, &mut suspects, drift)?;
                }
            }
        }
        let settled = self.settle(ss, key, charsets, suspects, drift);
        forget_row_text(self.source);
        forget_row_text(self.replica);
        settled
    }

    /// A chunk the pass summed whole, summed by bucket on both nodes: its differing buckets.
    fn differing_buckets(
        &mut self,
        ss: &TableSchema,
        key: &[String],
        charsets: &sql::Charsets,
        c: &Chunk,
    ) -> Result<Vec<i128>> {
        let digest = self.digest;
        let (a, b) = crate::conn::both(self.source, self.replica, |s| {
            chunk_sums(s, ss, key, charsets, true, c, digest)
        })?;
        Ok(a.differing(&b).unwrap_or_default())
    }

    /// Suspects are rechecked together, once there are many: one catch-up for many chunks;
    /// at once while the replica keeps up (a catch-up then costs four round trips, and the
    /// rows just read are read again from memory: measured with a 24 MiB buffer pool, 1,000
    /// rows drifted in 1,000,000 reread in 0.16 s when rechecked together, from disk).
    fn settle_batch(
        &mut self,
        ss: &TableSchema,
        key: &[String],
        charsets: &sql::Charsets,
        suspects: &mut ChunkDiff,
        drift: &mut TableDrift,
    ) -> Result<()> {
        match suspects.len() >= RECHECK_BATCH || (*self.keeps_up && !suspects.is_empty()) {
            true => self.settle(ss, key, charsets, std::mem::take(suspects), drift),
            false => Ok(()),
        }
    }

    pub(super) fn settle(
        &mut self,
        ss: &TableSchema,
        key: &[String],
        charsets: &sql::Charsets,
        suspects: ChunkDiff,
        drift: &mut TableDrift,
    ) -> Result<()> {
        if suspects.is_empty() {
            return Ok(());
        }
        let first = suspects.len();
        let (still, unsettled, timed_out) = self.recheck(ss, key, charsets, suspects)?;
        drift.unsettled += unsettled.len();
        drift.not_caught_up |= timed_out && !unsettled.is_empty();
        drift.converged += first.saturating_sub(still.len() + unsettled.len());
        drift
            .unsettled_keys
            .extend(unsettled.iter().map(super::model::key_out));
        self.record(ss, still, drift)
    }
}

/// A replica's table has the source's columns (generated ones aside), else it is not compared.
fn same_columns(ss: &TableSchema, rs: &TableSchema) -> Result<()> {
    let names = |s: &TableSchema| -> Vec<String> {
        s.columns
            .iter()
            .filter(|c| !c.generated)
            .map(|c| format!("{} {}", c.name, c.column_type))
            .collect()
    };
    if names(ss) != names(rs) {
        anyhow::bail!(
            "the table's columns differ between the nodes ({} vs {}): compare the definitions first",
            names(ss).join(", "),
            names(rs).join(", ")
        );
    }
    Ok(())
}
/// The chunk's upper bound: the key of the row the bound statement finds (None: fewer rows
/// are left than a chunk holds; this chunk is the last, open-ended).
fn read_bound(
    server: &mut Server,
    schema: &TableSchema,
    key: &[String],
    st: &Statement,
) -> Result<Option<Key>> {
    let row: Option<mysql::Row> = server.first_prepared(st)?;
    let Some(row) = row else {
        return Ok(None);
    };
    let values = row.unwrap();
    let mut k = Vec::with_capacity(key.len());
    for (name, v) in key.iter().zip(values) {
        let col = schema.column(name).context("key column")?;
        k.push((name.clone(), crate::binlog::decode::cell_from_value(v, col)));
    }
    Ok(Some(k))
}
/// A checksum query's value as the server printed it (COUNT and BIT_XOR arrive as integers,
/// SUM as decimal text).
pub(super) fn value_text(v: mysql::Value) -> String {
    match v {
        mysql::Value::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
        mysql::Value::Int(i) => i.to_string(),
        mysql::Value::UInt(u) => u.to_string(),
        _ => String::new(),
    }
}
