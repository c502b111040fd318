//! The differ: a differing chunk narrowed down to rows (by bucket, else by row hashes), the
//! rows rechecked after the replica caught up, and the drift recorded (collation-equal keys
//! paired, tables without a usable key compared as multisets).

use anyhow::Result;

use super::diff::ChunkDiff;
use super::model::{Key, TableDrift};
use super::walk::{Walk, read_checksum, read_key_hashes, value_text};
use super::{diff, model};
use crate::conn::Server;
use crate::diagnosis::{Row, Verdict};
use crate::schema::TableSchema;
use crate::sql::{self, Statement};
use crate::value::Cell;

/// (key, row hash) rows as one node read them.
pub(super) type Hashed = Vec<(Key, String)>;

/// Each key's row hash on the source and on the replica (None: no such row there).
pub(super) type Versions = super::diff::Seen;

fn versions(source: &Hashed, replica: &Hashed) -> Versions {
    let mut out = Versions::new();
    for (k, h) in source {
        out.entry(k.clone()).or_default().0 = Some(h.clone());
    }
    for (k, h) in replica {
        out.entry(k.clone()).or_default().1 = Some(h.clone());
    }
    out
}

/// Differing rows rechecked together (one catch-up wait for all of them).
pub(super) const RECHECK_BATCH: usize = 2000;
/// A catch-up shorter than this found the replica keeping up (`Walk::keeps_up`).
const KEEPS_UP: std::time::Duration = std::time::Duration::from_millis(20);
/// Narrowing a differing chunk to rows, rechecking them and recording the drift.
impl Walk<'_> {
    /// Differing buckets (a few dozen rows each, of any chunks: key ranges cut to their
    /// chunks) read as row hashes on both nodes in one statement and compared.
    pub(super) fn narrow_ranges(
        &mut self,
        ss: &TableSchema,
        key: &str,
        ranges: &[(i128, i128)],
    ) -> Result<ChunkDiff> {
        let keys = [key.to_string()];
        let st = sql::bucket_row_hashes(ss, self.digest, key, ranges, None, None);
        let (x, y) = crate::conn::both(self.source, self.replica, |s| {
            read_key_hashes(s, ss, &keys, &st)
        })?;
        Ok(diff::compare(x, y))
    }

    /// Both nodes' (key, hash) rows of the chunk, compared.
    pub(super) fn row_hashes(
        &mut self,
        ss: &TableSchema,
        key: &[String],
        lo: Option<&[(String, Cell)]>,
        hi: Option<&[(String, Cell)]>,
        charsets: &sql::Charsets,
    ) -> Result<(u64, ChunkDiff)> {
        let st = sql::chunk_row_hashes(ss, self.digest, key, lo, hi, charsets);
        let (a, b) = crate::conn::both(self.source, self.replica, |s| {
            read_key_hashes(s, ss, key, &st)
        })?;
        Ok((a.len() as u64, diff::compare(a, b)))
    }
}
impl Walk<'_> {
    /// Reads the differing rows again after the replica caught up: what still differs, with
    /// the same versions as the read before (nothing in flight on them), is drift; rows that
    /// converged were in flight; rows still changing are read again, up to --rechecks times,
    /// and are in flight, not drift, if they changed between the last two reads.
    ///
    /// Returns what is drift, the keys not judged, and whether the last catch-up wait timed
    /// out (then every row still differing is not judged).
    pub(super) fn recheck(
        &mut self,
        ss: &TableSchema,
        key: &[String],
        charsets: &sql::Charsets,
        mut diff: ChunkDiff,
    ) -> Result<(ChunkDiff, Vec<Key>, bool)> {
        // Each row's (source, replica) versions in the previous and in the latest read. The
        // read that found the rows differing is the first: a row whose versions are the same
        // after the catch-up was not in flight (one read fewer of every drifted row).
        let mut previous: Option<Versions> = None;
        let mut latest: Option<Versions> = match diff.seen.is_empty() {
            true => None,
            false => Some(std::mem::take(&mut diff.seen)),
        };
        let mut caught_up = true;
        for _ in 0..self.opts.rechecks.max(1) {
            if diff.is_empty() {
                break;
            }
            let waited = std::time::Instant::now();
            caught_up = self.catch_up()?;
            *self.keeps_up = waited.elapsed() < KEEPS_UP;
            crate::timing::mark("recheck: caught up");
            let keys = diff.keys();
            let mut a = Vec::new();
            let mut b = Vec::new();
            for chunk in keys.chunks(1000) {
                let st = sql::row_hashes_by_key(ss, self.digest, key, chunk, charsets);
                let (x, y) = crate::conn::both(self.source, self.replica, |s| {
                    read_key_hashes(s, ss, key, &st)
                })?;
                a.extend(x);
                b.extend(y);
            }
            crate::timing::mark("recheck: rows read again");
            let now = versions(&a, &b);
            diff = diff::compare(a, b);
            previous = latest.replace(now);
            // After a timed-out wait the rows read the same as before: wait again.
            if caught_up
                && let (Some(p), Some(l)) = (&previous, &latest)
                && diff.keys().iter().all(|k| p.get(k) == l.get(k))
            {
                break;
            }
        }
        // A row that changed between the last two reads is still in flight, not drift: it is
        // counted as unsettled; so is every row still differing when the replica did not
        // catch up within the wait (its change may not have been applied yet).
        let settled = |k: &Key| match (&previous, &latest) {
            _ if !caught_up => false,
            (Some(p), Some(l)) => p.get(k) == l.get(k),
            _ => true,
        };
        let unsettled: Vec<Key> = diff.keys().into_iter().filter(|k| !settled(k)).collect();
        diff.retain(settled);
        Ok((diff, unsettled, !caught_up))
    }

    /// Adds a chunk's drift to the table's, with the columns of each differing row. A
    /// missing key whose row the replica holds under a collation-equal key is one different
    /// row, reported with both keys.
    pub(super) fn record(
        &mut self,
        ss: &TableSchema,
        mut diff: ChunkDiff,
        drift: &mut TableDrift,
    ) -> Result<()> {
        let pairs = self.collation_pairs(ss, &mut diff)?;
        drift.missing += diff.missing.len();
        drift.extra += diff.extra.len();
        drift.different += diff.different.len() + pairs.len();
        drift
            .missing_keys
            .extend(diff.missing.iter().map(model::key_out));
        drift
            .extra_keys
            .extend(diff.extra.iter().map(model::key_out));
        let (source_keys, replica_keys): (Vec<Key>, Vec<Key>) = diff
            .different
            .iter()
            .map(|k| (k.clone(), k.clone()))
            .chain(pairs)
            .unzip();
        if source_keys.is_empty() {
            return Ok(());
        }
        let (a, b) = crate::conn::each(
            self.source,
            self.replica,
            |s| crate::inspect::fetch_rows(s, ss, &source_keys),
            |r| crate::inspect::fetch_rows(r, ss, &replica_keys),
        )?;
        for (((k, rk), src), rep) in source_keys.iter().zip(&replica_keys).zip(a).zip(b) {
            let columns = match crate::diagnosis::compare::verdict(rep.as_ref(), src.as_ref(), true)
            {
                Verdict::Differs { columns } => columns,
                _ => Vec::new(),
            };
            drift.different_rows.push(model::Different {
                key: model::key_out(k),
                columns,
                replica_key: (k != rk).then(|| model::key_out(rk)),
            });
        }
        Ok(())
    }

    /// Missing keys whose row the replica holds under another key its collation calls equal
    /// (case, accents, trailing spaces): `(source key, replica key)`, taken out of `diff`'s
    /// missing and extra keys. Only keys with a character column can pair.
    pub(super) fn collation_pairs(
        &mut self,
        ss: &TableSchema,
        diff: &mut ChunkDiff,
    ) -> Result<Vec<(Key, Key)>> {
        let textual = diff.missing.first().is_some_and(|k| {
            k.iter()
                .any(|(c, _)| ss.column(c).is_some_and(|c| c.charset.is_some()))
        });
        if !textual || diff.extra.is_empty() {
            return Ok(Vec::new());
        }
        // The server's own comparison decides: a missing key looked up on the replica finds
        // the row its collation matches.
        let found = crate::inspect::fetch_rows(self.replica, ss, &diff.missing)?;
        let extra: std::collections::HashSet<&Key> = diff.extra.iter().collect();
        let mut pairs = Vec::new();
        for (k, row) in diff.missing.iter().zip(found) {
            let own: Option<Key> = row.and_then(|r| {
                k.iter()
                    .map(|(c, _)| r.get(c).map(|v| (c.clone(), v.clone())))
                    .collect()
            });
            if let Some(rk) = own.filter(|rk| rk != k && extra.contains(rk)) {
                pairs.push((k.clone(), rk));
            }
        }
        let (paired_src, paired_rep): (
            std::collections::HashSet<Key>,
            std::collections::HashSet<Key>,
        ) = pairs.iter().cloned().unzip();
        diff.missing.retain(|k| !paired_src.contains(k));
        diff.extra.retain(|k| !paired_rep.contains(k));
        Ok(pairs)
    }

    /// A table without a usable key: compared whole, as a multiset of rows.
    pub(super) fn multiset(&mut self, ss: &TableSchema, drift: &mut TableDrift) -> Result<()> {
        let st = sql::chunk_checksum(
            ss,
            (self.digest, sql::TextEval::Twice),
            None,
            None,
            &[],
            true,
        );
        let mut sums = crate::conn::both(self.source, self.replica, |s| read_checksum(s, &st))?;
        let mut caught_up = true;
        for _ in 0..self.opts.rechecks.max(1) {
            if sums.0 == sums.1 {
                break;
            }
            caught_up = self.catch_up()?;
            sums = crate::conn::both(self.source, self.replica, |s| read_checksum(s, &st))?;
        }
        drift.chunks = 1;
        drift.rows = sums.0.0;
        self.bar.inc(sums.0.0);
        if sums.0 == sums.1 {
            return Ok(());
        }
        let st = sql::multiset_hashes(ss, self.digest);
        let (a, b) = crate::conn::both(self.source, self.replica, |s| {
            let rows: Vec<(String, u64)> = s.all_prepared(&st)?;
            Ok(rows)
        })?;
        let columns = ss.column_names();
        let differing = diff::compare_multisets(a, b);
        if !caught_up {
            // The replica did not catch up within the wait: not judged.
            drift.not_caught_up = true;
            drift.unsettled += differing
                .iter()
                .map(|(_, s, r)| s.abs_diff(*r) as usize)
                .sum::<usize>();
            return Ok(());
        }
        for (hash, on_source, on_replica) in differing {
            match on_source.cmp(&on_replica) {
                std::cmp::Ordering::Greater => drift.missing += (on_source - on_replica) as usize,
                _ => drift.extra += (on_replica - on_source) as usize,
            }
            let holder = match on_source > 0 {
                true => &mut *self.source,
                false => &mut *self.replica,
            };
            let st = sql::rows_by_hash(ss, self.digest, &columns, std::slice::from_ref(&hash));
            let row = read_row_by_hash(holder, ss, &columns, &st)?;
            drift.multiset_rows.push(model::MultisetRow {
                hash,
                source_count: on_source,
                replica_count: on_replica,
                row,
            });
        }
        Ok(())
    }
}
fn read_row_by_hash(
    server: &mut Server,
    schema: &TableSchema,
    columns: &[String],
    st: &Statement,
) -> Result<Option<Row>> {
    let row: Option<mysql::Row> = server.first_prepared(st)?;
    // The hash comes first; the row's columns follow.
    Ok(row.map(|r| crate::conn::decode_row(r.unwrap().into_iter().skip(1), schema, columns)))
}
/// bucket → (rows, xor) of a bucket checksum statement.
pub(super) fn read_buckets(
    server: &mut Server,
    st: &Statement,
) -> Result<std::collections::HashMap<i128, (u64, String)>> {
    let text = value_text;
    let mut out = std::collections::HashMap::new();
    server.for_each_row(st, |row| -> Result<()> {
        let mut v = row.unwrap().into_iter();
        let (Some(b), Some(n), Some(x)) = (v.next(), v.next(), v.next()) else {
            return Ok(());
        };
        let b: i128 = text(b).parse().unwrap_or(0);
        out.insert(b, (text(n).parse().unwrap_or(0), text(x)));
        Ok(())
    })?;
    Ok(out)
}
