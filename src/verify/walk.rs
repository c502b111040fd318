//! The walk over one table: its chunks read and hashed by both nodes at once (pipelined,
//! each node on its own connection), paired, and the differing ones handed to the differ.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::diff::ChunkDiff;
use super::differ::{RECHECK_BATCH, read_buckets};
use super::lag::LagGuard;
use super::model::{Key, TableDrift};
use super::table_plan::{IntRanges, adapt, chunk_bucket_ranges, chunk_key, is_integer, min_max};
use super::{Options, Pair};
use crate::conn::Server;
use crate::schema::TableSchema;
use crate::sql::{self, Statement};
use crate::vocab::TableRef;

/// One worker's walk over a table.
pub(super) struct Walk<'a> {
    pub(super) pair: &'a Pair,
    pub(super) opts: &'a Options,
    pub(super) source: &'a mut Server,
    pub(super) replica: &'a mut Server,
    /// The worker's second session on the source, for chunk bounds and the lag guard's
    /// reads: kept across tables (a connection per table was most of a small table's cost).
    pub(super) bounds: &'a mut Server,
    pub(super) lag: &'a mut LagGuard,
    pub(super) bar: &'a indicatif::ProgressBar,
    /// The source's row estimate for the table being walked.
    pub(super) estimate: u64,
    /// Where the walk got to, for `--resume`.
    pub(super) checkpoint: &'a super::checkpoint::Checkpoint,
}
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
const NARROW_RANGES: usize = 256;

/// One chunk of a table: (lo, hi] along its key, and the bucket width for an integer key.
#[derive(Debug)]
pub(super) struct Chunk {
    pub(super) index: usize,
    pub(super) lo: Option<Key>,
    pub(super) hi: Option<Key>,
    pub(super) step: u64,
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
            _ => Some(Vec::new()),
        }
    }
}

fn chunk_sums(
    server: &mut Server,
    ss: &TableSchema,
    key: &[String],
    charsets: &sql::Charsets,
    int_key: bool,
    chunk: &Chunk,
) -> Result<Sums> {
    let (lo, hi) = (chunk.lo.as_deref(), chunk.hi.as_deref());
    match int_key {
        true => {
            let st = sql::chunk_bucket_checksums(ss, &key[0], chunk.step, lo, hi);
            Ok(Sums::Buckets(read_buckets(server, &st)?))
        }
        false => {
            let st = sql::chunk_checksum(ss, lo, hi, charsets, false);
            Ok(Sums::Whole(read_checksum(server, &st)?))
        }
    }
}
impl Walk<'_> {
    pub(super) fn table(&mut self, table: &TableRef) -> TableDrift {
        let mut drift = TableDrift::new(table.clone(), None);
        if let Err(e) = self.compare_table(table, &mut drift) {
            drift.error = Some(crate::describe::message(&e));
        }
        drift
    }

    pub(super) fn schemas(&mut self, table: &TableRef) -> Result<(TableSchema, TableSchema)> {
        let ss = crate::conn::catalog::load(self.source, table)?;
        let rs = crate::conn::catalog::load(self.replica, table)?;
        let names = |s: &TableSchema| -> Vec<String> {
            s.columns
                .iter()
                .filter(|c| !c.generated)
                .map(|c| format!("{} {}", c.name, c.column_type))
                .collect()
        };
        if names(&ss) != names(&rs) {
            anyhow::bail!(
                "the table's columns differ between the nodes ({} vs {}): compare the definitions first",
                names(&ss).join(", "),
                names(&rs).join(", ")
            );
        }
        Ok((ss, rs))
    }

    pub(super) fn compare_table(&mut self, table: &TableRef, drift: &mut TableDrift) -> Result<()> {
        let (ss, _rs) = self.schemas(table)?;
        match chunk_key(self.source, &ss)? {
            Some(key) => {
                drift.key = Some(key.clone());
                self.chunks(&ss, &key, drift)
            }
            None => self.multiset(&ss, drift),
        }
    }

    /// The table's chunks, pipelined: one thread finds the chunk bounds on the source, each
    /// node hashes the chunks on its own connection as fast as it can (no waiting for the
    /// other node between chunks), and this thread pairs their results. Differing chunks are
    /// narrowed afterwards (by bucket for a single integer key, else by row hashes), then
    /// rechecked after a catch-up, then recorded.
    pub(super) fn chunks(
        &mut self,
        ss: &TableSchema,
        key: &[String],
        drift: &mut TableDrift,
    ) -> Result<()> {
        let charsets = ss.converted_charsets();
        let int_key = key.len() == 1 && ss.column(&key[0]).is_some_and(is_integer);
        let t0 = Instant::now();
        let start = self.checkpoint.start(&ss.table);
        (drift.rows, drift.chunks) = (start.rows, start.chunks);
        self.bar.inc(start.rows);
        let differing = match start.walked {
            true => start.differing,
            false => self.pass(ss, key, &charsets, int_key, drift, start)?,
        };
        if std::env::var_os("REPLMEND_VERIFY_TIMING").is_some() {
            eprintln!(
                "pass {:?}, {} differing chunks",
                t0.elapsed(),
                differing.len()
            );
        }
        let mut suspects = ChunkDiff::default();
        match int_key {
            // Differing buckets of many chunks read in one statement: a round trip per
            // chunk was most of the time of 1,000 rows drifted over 1,000 chunks.
            true => {
                let ranges: Vec<(i128, i128)> = differing
                    .iter()
                    .flat_map(|(c, b)| {
                        chunk_bucket_ranges(c.lo.as_deref(), c.hi.as_deref(), c.step, b)
                    })
                    .collect();
                for batch in ranges.chunks(NARROW_RANGES) {
                    suspects.absorb(self.narrow_ranges(ss, &key[0], batch)?);
                    self.settle_batch(ss, key, &charsets, &mut suspects, drift)?;
                }
            }
            false => {
                for (chunk, _) in differing {
                    let (lo, hi) = (chunk.lo.as_deref(), chunk.hi.as_deref());
                    suspects.absorb(self.row_hashes(ss, key, lo, hi, &charsets)?.1);
                    self.settle_batch(ss, key, &charsets, &mut suspects, drift)?;
                }
            }
        }
        if std::env::var_os("REPLMEND_VERIFY_TIMING").is_some() {
            eprintln!("narrowed {:?}", t0.elapsed());
        }
        self.settle(ss, key, &charsets, suspects, drift)?;
        if std::env::var_os("REPLMEND_VERIFY_TIMING").is_some() {
            eprintln!("settled {:?}", t0.elapsed());
        }
        Ok(())
    }

    /// Suspects are rechecked together, once there are many: one catch-up for many chunks.
    fn settle_batch(
        &mut self,
        ss: &TableSchema,
        key: &[String],
        charsets: &sql::Charsets,
        suspects: &mut ChunkDiff,
        drift: &mut TableDrift,
    ) -> Result<()> {
        match suspects.len() >= RECHECK_BATCH {
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
        let (still, unsettled) = self.recheck(ss, key, charsets, suspects)?;
        drift.unsettled += unsettled;
        drift.converged += first.saturating_sub(still.len() + unsettled);
        self.record(ss, still, drift)
    }

    /// The checksum pass from `start` (the table's first key unless resumed); returns the
    /// chunks whose checksums differ (with their differing buckets when the key is a single
    /// integer).
    pub(super) fn pass(
        &mut self,
        ss: &TableSchema,
        key: &[String],
        charsets: &sql::Charsets,
        int_key: bool,
        drift: &mut TableDrift,
        start: super::checkpoint::Start,
    ) -> Result<Vec<(std::sync::Arc<Chunk>, Vec<i128>)>> {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::mpsc::{channel, sync_channel};
        let size = AtomicUsize::new(self.opts.chunk_size.max(1));
        let (opts, bar) = (self.opts, self.bar);
        // The replica's key range too: rows above the source's largest key are extra rows.
        let rep_min_max = match int_key {
            true => Some(min_max(self.replica, ss, &key[0])?),
            false => None,
        };
        let (estimate, checkpoint) = (self.estimate, self.checkpoint);
        let (src, rep) = (&mut *self.source, &mut *self.replica);
        let (conn, lag) = (&mut *self.bounds, &mut *self.lag);
        let (to_src, from_bounds_src) = sync_channel::<Arc<Chunk>>(PIPELINE);
        let (to_rep, from_bounds_rep) = sync_channel::<Arc<Chunk>>(PIPELINE);
        let (results, sums) = channel::<(usize, Arc<Chunk>, Result<Sums>, Duration)>();
        let mut differing = start.differing;
        let first_lo = start.lo;
        let size = &size;
        std::thread::scope(|s| -> Result<()> {
            // Owns both senders: when it ends, the hashing threads' inboxes close.
            let bounds = s.spawn(move || -> Result<()> {
                let mut lo: Option<Key> = first_lo;
                // A single integer key is cut by value (no bound query: on a clustered
                // primary key, finding the 5000th next key reads 5000 whole rows).
                let ranges = match int_key {
                    true => Some(IntRanges::new(conn, rep_min_max, ss, &key[0], estimate)?),
                    false => None,
                };
                for index in 0.. {
                    lag.respect(bar)?;
                    let n = size.load(Ordering::Relaxed);
                    let hi = match &ranges {
                        Some(r) => r.next_hi(lo.as_deref(), n),
                        None => {
                            let st = sql::chunk_bound(&ss.table, key, lo.as_deref(), n, charsets);
                            read_bound(conn, ss, key, &st)?
                        }
                    };
                    let step = match &ranges {
                        Some(r) => r.step(n),
                        None => 1,
                    };
                    let last = hi.is_none();
                    let chunk = Arc::new(Chunk {
                        index,
                        lo: lo.take(),
                        hi,
                        step,
                    });
                    if to_src.send(chunk.clone()).is_err() || to_rep.send(chunk.clone()).is_err() {
                        return Ok(());
                    }
                    if last {
                        return Ok(());
                    }
                    lo = chunk.hi.clone();
                }
                Ok(())
            });
            for (side, server, inbox) in [(0, src, from_bounds_src), (1, rep, from_bounds_rep)] {
                let results = results.clone();
                s.spawn(move || {
                    for chunk in inbox {
                        let started = Instant::now();
                        let r = chunk_sums(server, ss, key, charsets, int_key, &chunk);
                        let failed = r.is_err();
                        if results.send((side, chunk, r, started.elapsed())).is_err() || failed {
                            return;
                        }
                    }
                });
            }
            drop(results);
            let mut pending: std::collections::HashMap<usize, Sums> = Default::default();
            for (side, chunk, r, took) in sums {
                let mine = r?;
                let Some(other) = pending.remove(&chunk.index) else {
                    pending.insert(chunk.index, mine);
                    continue;
                };
                let (a, b) = match side {
                    1 => (other, mine),
                    _ => (mine, other),
                };
                drift.chunks += 1;
                drift.rows += a.rows();
                bar.inc(a.rows());
                let through = chunk.hi.clone();
                if let Some(buckets) = a.differing(&b) {
                    differing.push((chunk, buckets));
                }
                let walked = through.is_none();
                checkpoint.progress(&ss.table, through.as_ref(), walked, drift, &differing);
                if let Some(target) = opts.chunk_time {
                    let n = size.load(Ordering::Relaxed);
                    size.store(adapt(n, took, target), Ordering::Relaxed);
                }
            }
            bounds
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))?;
            Ok(())
        })?;
        Ok(differing)
    }
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
