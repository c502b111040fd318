//! The table plan: which tables are verified (the selection, with their row estimates), the
//! key each is chunked along, and how a single integer key's range is cut into chunks and
//! buckets (and the chunk size adapted to the target time). Read by `run` and the walk.

use std::time::Duration;

use anyhow::Result;

use super::model::{Key, TableDrift};
use super::{Options, Pair, PairError};
use crate::conn::Server;
use crate::schema::TableSchema;
use crate::sql;
use crate::status::filters::Filters;
use crate::value::Cell;
use crate::vocab::TableRef;

const SYSTEM_SCHEMAS: [&str; 4] = ["mysql", "information_schema", "performance_schema", "sys"];

/// Tables with their row estimates.
pub(super) type Estimated = Vec<(TableRef, u64)>;

/// A node's tables among those selected, with its row estimates.
pub(super) fn tables(server: &mut Server, opts: &Options) -> Result<Estimated> {
    // MySQL 8+ caches these statistics for a day (information_schema_stats_expiry): TABLE_ROWS
    // can be far behind (3 for a table of 20,000 rows), and the estimate sizes integer chunks.
    if !server.flavor.is_mariadb() {
        let _ = server.run(&crate::sql::admin::fresh_table_statistics());
    }
    let rows: Vec<(String, String, Option<u64>)> = server.all(&sql::catalog::base_tables())?;
    let listed = |t: &TableRef| opts.tables.is_empty() || opts.tables.contains(t);
    let in_db = |db: &str| match opts.databases.is_empty() {
        true => !SYSTEM_SCHEMAS.contains(&db) && db != "percona",
        false => opts.databases.iter().any(|d| d == db),
    };
    Ok(rows
        .into_iter()
        .map(|(schema, name, n)| (TableRef { schema, name }, n.unwrap_or(0)))
        .filter(|(t, _)| in_db(&t.schema) || opts.tables.contains(t))
        .filter(|(t, _)| listed(t) && !opts.ignore_tables.contains(t))
        .collect())
}

/// The tables to compare (on both nodes, not filtered), and the report's entries for the
/// others: kept out by the replica's replication filters, or on one node only. A table named
/// with --tables must exist on at least one node.
pub(super) fn select(
    pair: &Pair,
    opts: &Options,
    on_source: Estimated,
    on_replica: Estimated,
    filters: &[Filters],
) -> Result<(Estimated, Vec<TableDrift>)> {
    for t in &opts.tables {
        if !on_source.iter().chain(&on_replica).any(|(o, _)| o == t) {
            return Err(PairError::NoSuchTable {
                table: t.clone(),
                endpoint: pair.source.address(),
            }
            .into());
        }
    }
    let mut aside = Vec::new();
    let mut list = Vec::new();
    let replica_has = |t: &TableRef| on_replica.iter().any(|(o, _)| o == t);
    for (t, n) in on_source.iter().cloned() {
        match (filters.iter().find_map(|f| f.excludes(&t)), replica_has(&t)) {
            (Some(why), _) => aside.push(TableDrift::filtered(t, why)),
            (None, true) => list.push((t, n)),
            (None, false) => aside.push(TableDrift::only_on(t, pair.source.address())),
        }
    }
    for (t, _) in on_replica {
        if on_source.iter().any(|(o, _)| *o == t) {
            continue;
        }
        aside.push(match filters.iter().find_map(|f| f.excludes(&t)) {
            Some(why) => TableDrift::filtered(t, why),
            None => TableDrift::only_on(t, pair.replica.address()),
        });
    }
    Ok((list, aside))
}
/// The key a table is chunked along: the primary key, else the first unique key whose
/// columns are all NOT NULL (a NULL falls outside every range).
pub(super) fn chunk_key(server: &mut Server, schema: &TableSchema) -> Result<Option<Vec<String>>> {
    let not_null: Vec<String> = server.all(&sql::catalog::not_null_columns(&schema.table))?;
    Ok(schema
        .unique_keys
        .iter()
        .find(|k| k.columns.iter().all(|c| not_null.contains(c)))
        .map(|k| k.columns.clone()))
}
/// A single integer key's range, cut into spans of about `size` rows each (by the table's
/// row estimate), each span in `BUCKETS` buckets.
pub(super) struct IntRanges {
    pub(super) name: String,
    pub(super) min: i128,
    pub(super) max: i128,
    /// Key values per row, on average.
    pub(super) per_row: f64,
}

pub(super) fn min_max(
    server: &mut Server,
    ss: &TableSchema,
    key: &str,
) -> Result<Option<(i128, i128)>> {
    let row: Option<(Option<String>, Option<String>)> =
        server.first(&sql::catalog::min_max_text(&ss.table, key))?;
    Ok(match row {
        Some((Some(a), Some(b))) => Some((a.parse()?, b.parse()?)),
        _ => None,
    })
}

impl IntRanges {
    pub(super) fn new(
        source: &mut Server,
        replica: Option<Option<(i128, i128)>>,
        ss: &TableSchema,
        key: &str,
        estimate: u64,
    ) -> Result<IntRanges> {
        let here = min_max(source, ss, key)?;
        let (min, max) = match (here, replica.flatten()) {
            (Some((a, b)), Some((c, d))) => (a.min(c), b.max(d)),
            (Some(r), None) | (None, Some(r)) => r,
            (None, None) => (0, 0),
        };
        // information_schema's estimate can be 0 (MySQL caches table statistics for a day):
        // then count, which reads the key only, instead of guessing one row per key value.
        let rows = match estimate {
            0 => {
                let n: Option<u64> = source.first(&sql::catalog::count_rows(&ss.table))?;
                n.unwrap_or(0).max(1)
            }
            n => n,
        } as f64;
        Ok(IntRanges {
            name: key.to_string(),
            min,
            max,
            per_row: ((max - min + 1) as f64 / rows).max(1.0),
        })
    }

    pub(super) fn span(&self, size: usize) -> i128 {
        ((self.per_row * size as f64) as i128).max(1)
    }

    pub(super) fn step(&self, size: usize) -> u64 {
        (self.span(size) / BUCKETS).clamp(1, u64::MAX as i128) as u64
    }

    /// The next chunk's upper bound; None: the chunk reaches past the largest key.
    pub(super) fn next_hi(&self, lo: Option<&[(String, Cell)]>, size: usize) -> Option<Key> {
        let from = key_number(lo).unwrap_or(self.min - 1);
        let hi = from + self.span(size);
        (hi < self.max).then(|| vec![(self.name.clone(), Cell::Number(hi.to_string()))])
    }
}
pub(super) fn is_integer(col: &crate::schema::ColumnDef) -> bool {
    matches!(
        col.data_type.as_str(),
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint"
    )
}

/// Buckets per chunk: a differing row costs reading its bucket again, about chunk/256 rows.
const BUCKETS: i128 = 256;

fn key_number(k: Option<&[(String, Cell)]>) -> Option<i128> {
    match k?.first()? {
        (_, Cell::Number(n)) => n.parse().ok(),
        _ => None,
    }
}

/// A chunk's differing buckets as key ranges, cut to the chunk's (lo, hi]: a bucket at the
/// chunk's edge reaches into the next chunk, whose rows that chunk answers for.
pub(super) fn chunk_bucket_ranges(
    lo: Option<&[(String, Cell)]>,
    hi: Option<&[(String, Cell)]>,
    step: u64,
    buckets: &[i128],
) -> Vec<(i128, i128)> {
    let lo = key_number(lo).map(|k| k + 1).unwrap_or(i128::MIN);
    let hi = key_number(hi).unwrap_or(i128::MAX);
    buckets
        .iter()
        .map(|b| bucket_bounds(*b, step))
        .map(|(first, last)| (first.max(lo), last.min(hi)))
        .filter(|(first, last)| first <= last)
        .collect()
}

/// The keys `k DIV step = b` covers (DIV truncates toward zero: bucket 0 spans both signs).
pub(super) fn bucket_bounds(b: i128, step: u64) -> (i128, i128) {
    let step = step as i128;
    match b.cmp(&0) {
        std::cmp::Ordering::Greater => (b * step, b * step + step - 1),
        std::cmp::Ordering::Less => (b * step - (step - 1), b * step),
        std::cmp::Ordering::Equal => (-(step - 1), step - 1),
    }
}
/// The next chunk size: scaled towards the target time, at most doubling or halving at once.
pub(super) fn adapt(size: usize, took: Duration, target: Duration) -> usize {
    let took = took.as_secs_f64().max(1e-4);
    let factor = (target.as_secs_f64() / took).clamp(0.5, 2.0);
    ((size as f64 * factor) as usize).clamp(100, 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_keys_as_div_truncates() {
        assert_eq!(bucket_bounds(3, 10), (30, 39));
        assert_eq!(bucket_bounds(0, 10), (-9, 9));
        assert_eq!(bucket_bounds(-2, 10), (-29, -20));
        for k in -100i128..100 {
            let b = k / 10; // truncating, like DIV
            let (lo, hi) = bucket_bounds(b, 10);
            assert!(lo <= k && k <= hi, "{k} in bucket {b}");
        }
        let r = IntRanges {
            name: "id".into(),
            min: 1,
            max: 1_000_000,
            per_row: 1.0,
        };
        assert_eq!(r.step(5000), 19);
        let n = |v: i64| vec![("id".to_string(), Cell::Number(v.to_string()))];
        assert_eq!(r.next_hi(None, 5000), Some(n(5000)));
        assert_eq!(r.next_hi(Some(&n(5000)), 5000), Some(n(10000)));
        assert_eq!(r.next_hi(Some(&n(995_000)), 5000), None);
        // Buckets at a chunk's edges are cut to the chunk (5000, 10000].
        let cut = chunk_bucket_ranges(Some(&n(5000)), Some(&n(10000)), 19, &[263, 300, 526]);
        assert_eq!(cut, vec![(5001, 5015), (5700, 5718), (9994, 10000)]);
        assert_eq!(chunk_bucket_ranges(None, None, 10, &[-1]), vec![(-19, -10)]);
    }

    #[test]
    fn chunk_size_follows_the_target_time_gently() {
        let t = Duration::from_millis(500);
        assert_eq!(adapt(1000, Duration::from_millis(250), t), 2000);
        assert_eq!(adapt(1000, Duration::from_millis(100), t), 2000);
        assert_eq!(adapt(1000, Duration::from_secs(2), t), 500);
        assert_eq!(adapt(150, Duration::from_secs(2), t), 100);
    }
}
