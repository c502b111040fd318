//! `replmend verify`: every drifted row between two nodes. Each table is walked in chunks
//! along its key; each chunk is hashed by both servers at once (a strong 64-bit row hash,
//! XORed, with the row count); a differing chunk is narrowed down to exact rows; a row counts
//! as drifted only if it still differs after the replica has applied everything its source
//! had committed when the chunk was read, rechecked a bounded number of times. Reads only:
//! no locks beyond one chunk's consistent read, nothing replicated.

pub mod diff;
pub mod model;

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use mysql::prelude::Queryable;

use crate::conn::{ConnSpec, Server};
use crate::diagnosis::{Row, TableRef, Verdict};
use crate::schema::{self, TableSchema};
use crate::sql::{self, Statement};
use crate::status::filters::Filters;
use crate::value::Cell;
use diff::ChunkDiff;
use model::{Key, Report, TableDrift};

/// How verify walks the tables.
#[derive(Debug, Clone)]
pub struct Options {
    /// Only these schemas (empty: every schema but the system ones).
    pub databases: Vec<String>,
    /// Only these tables (empty: every table of `databases`).
    pub tables: Vec<TableRef>,
    pub ignore_tables: Vec<TableRef>,
    /// Tables verified at once.
    pub threads: usize,
    /// Rows per chunk (the starting size when `chunk_time` is set).
    pub chunk_size: usize,
    /// Adapt the chunk size so one chunk takes about this long.
    pub chunk_time: Option<Duration>,
    /// Pause while the replica lags more than this.
    pub max_lag: Option<Duration>,
    /// How many times a differing chunk is read again after the replica caught up.
    pub rechecks: usize,
    /// How long to wait for the replica to catch up before a recheck.
    pub wait_timeout: Duration,
    /// Show a progress bar per table (stderr).
    pub progress: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            databases: Vec::new(),
            tables: Vec::new(),
            ignore_tables: Vec::new(),
            threads: 1,
            chunk_size: 5000,
            chunk_time: None,
            max_lag: None,
            rechecks: 3,
            wait_timeout: Duration::from_secs(30),
            progress: false,
        }
    }
}

/// Why the nodes or tables to compare cannot be worked out.
#[derive(Debug, thiserror::Error)]
pub enum PairError {
    /// A multi-source replica with no `--source`: which source is meant is not known.
    #[error("{replica} replicates from {sources} sources: name the one to compare with --source")]
    WhichSource { replica: String, sources: usize },
    /// No channel and no `--source`: nothing to compare with.
    #[error("{replica} is not a replica: give the node to compare it with as --source")]
    NotAReplica { replica: String },
    /// A table named with `--tables` is on neither node.
    #[error("table {table} does not exist on {endpoint}")]
    NoSuchTable { table: TableRef, endpoint: String },
}

/// The two nodes compared: the reference ("source") and the replica, with the channels that
/// carry each one's writes to the other.
#[derive(Debug, Clone)]
pub struct Pair {
    pub source: ConnSpec,
    pub replica: ConnSpec,
    /// The replica's channel from the source.
    pub replica_channel: Option<String>,
    /// In a dual-master pair, the source's channel from the replica.
    pub source_channel: Option<String>,
}

impl Pair {
    pub fn dual_master(&self) -> bool {
        self.source_channel.is_some()
    }

    /// The pair a replica forms with its source (`source_dsn`, else the address in its
    /// status, with the replica's credentials).
    pub fn of_replica(replica: &ConnSpec, source_dsn: Option<&str>) -> Result<Pair> {
        let mut r = Server::connect(replica)?;
        let report = crate::status::read_status(&mut r)?;
        let wanted = match source_dsn {
            Some(d) => Some(crate::conn::other_spec(Some(d), replica, "", 0)?),
            None => None,
        };
        let ch = match &wanted {
            Some(w) => report
                .channels
                .iter()
                .find(|c| c.source_port == w.port)
                .or(report.channels.first()),
            None => match report.channels.as_slice() {
                [one] => Some(one),
                [] => None,
                _ => {
                    return Err(PairError::WhichSource {
                        replica: replica.endpoint(),
                        sources: report.channels.len(),
                    }
                    .into());
                }
            },
        };
        let source = match (wanted, ch) {
            (Some(w), _) => w,
            (None, Some(c)) => {
                crate::conn::other_spec(None, replica, &c.source_host, c.source_port)?
            }
            (None, None) => {
                return Err(PairError::NotAReplica {
                    replica: replica.endpoint(),
                }
                .into());
            }
        };
        let mut s = Server::connect(&source)?;
        // A source that replicates from the replica makes a dual-master pair; one that is
        // not a replica at all is the usual case.
        let source_channel = crate::status::read_status(&mut s).ok().and_then(|back| {
            back.channels
                .iter()
                .find(|c| c.source_port == replica.port || c.source_server_id == Some(r.server_id))
                .map(|c| c.name.clone())
        });
        Ok(Pair {
            replica_channel: ch.map(|c| c.name.clone()),
            source,
            replica: replica.clone(),
            source_channel,
        })
    }
}

const SYSTEM_SCHEMAS: [&str; 4] = ["mysql", "information_schema", "performance_schema", "sys"];

/// Tables with their row estimates.
type Estimated = Vec<(TableRef, u64)>;

/// A node's tables among those selected, with its row estimates.
fn tables(server: &mut Server, opts: &Options) -> Result<Estimated> {
    // MySQL 8+ caches these statistics for a day (information_schema_stats_expiry): TABLE_ROWS
    // can be far behind (3 for a table of 20,000 rows), and the estimate sizes integer chunks.
    if !server.flavor.is_mariadb() {
        let _ = server
            .conn
            .query_drop("SET SESSION information_schema_stats_expiry = 0");
    }
    let rows: Vec<(String, String, Option<u64>)> = server.conn.query(
        "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_ROWS FROM information_schema.TABLES \
         WHERE TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_SCHEMA, TABLE_NAME",
    )?;
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
fn select(
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
                endpoint: pair.source.endpoint(),
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
            (None, false) => aside.push(TableDrift::only_on(t, pair.source.endpoint())),
        }
    }
    for (t, _) in on_replica {
        if on_source.iter().any(|(o, _)| *o == t) {
            continue;
        }
        aside.push(match filters.iter().find_map(|f| f.excludes(&t)) {
            Some(why) => TableDrift::filtered(t, why),
            None => TableDrift::only_on(t, pair.replica.endpoint()),
        });
    }
    Ok((list, aside))
}

/// Verifies every selected table; tables are spread over `threads` workers, each with its
/// own connections to both nodes.
pub fn run(pair: &Pair, opts: &Options) -> Result<Report> {
    let started = Instant::now();
    let mut source = Server::connect(&pair.source)?;
    let mut replica = Server::connect(&pair.replica)?;
    let (on_source, on_replica) = (tables(&mut source, opts)?, tables(&mut replica, opts)?);
    let mut report = Report::new(
        pair.source.endpoint(),
        pair.replica.endpoint(),
        pair.dual_master(),
    );
    let (replica_running, filters) = channel_facts(pair)?;
    let (list, aside) = select(pair, opts, on_source, on_replica, &filters)?;
    if !replica_running {
        report.warnings.push(format!(
            "{}'s replication from {} is not running: rows it has not applied yet count as drift",
            pair.replica.endpoint(),
            pair.source.endpoint()
        ));
    }
    let hash = row_hash_for(&mut source, &pair.replica)?;
    let threads = opts.threads.clamp(1, list.len().max(1));
    let queue = std::sync::Mutex::new(list.into_iter().enumerate());
    let results = std::sync::Mutex::new(Vec::new());
    let bars = indicatif::MultiProgress::new();
    if !opts.progress {
        bars.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    std::thread::scope(|s| -> Result<()> {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    let mut src = Server::connect(&pair.source)?;
                    let mut rep = Server::connect(&pair.replica)?;
                    loop {
                        let next = queue.lock().expect("queue").next();
                        let Some((i, (table, estimate))) = next else {
                            return Ok(());
                        };
                        let bar = bars.add(table_bar(&table, estimate));
                        let mut walk = Walk {
                            pair,
                            opts,
                            source: &mut src,
                            replica: &mut rep,
                            bar: &bar,
                            estimate,
                            hash,
                        };
                        let drift = walk.table(&table);
                        bar.finish_and_clear();
                        results.lock().expect("results").push((i, drift));
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap_or_else(|p| std::panic::resume_unwind(p))?;
        }
        Ok(())
    })?;
    let mut results: Vec<TableDrift> = results
        .into_inner()
        .expect("results")
        .into_iter()
        .map(|(_, t)| t)
        .chain(aside)
        .collect();
    results.sort_by(|a, b| (&a.table.schema, &a.table.name).cmp(&(&b.table.schema, &b.table.name)));
    for t in results {
        report.add(t);
    }
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// MD5 when both nodes are MariaDB (or MySQL before 9, which still has it), SHA-256
/// otherwise: both nodes must hash with the same function.
fn row_hash_for(source: &mut Server, replica: &ConnSpec) -> Result<sql::RowHash> {
    let r = Server::connect(replica)?;
    let has_md5 = |s: &Server| s.flavor.has_md5();
    Ok(match has_md5(source) && has_md5(&r) {
        true => sql::RowHash::Md5,
        false => sql::RowHash::Sha256,
    })
}

fn table_bar(table: &TableRef, estimate: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(estimate.max(1));
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg:30} [{bar:30}] {human_pos}/~{human_len} rows, {per_sec}, ETA {eta}",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    bar.set_message(table.to_string());
    bar
}

/// Whether the replica's channel from the source is applying (else waits cannot help), and
/// the replication filters of the channels between the nodes (both directions of a
/// dual-master pair): a table they keep out may differ on purpose.
fn channel_facts(pair: &Pair) -> Result<(bool, Vec<Filters>)> {
    let mut r = Server::connect(&pair.replica)?;
    let report = crate::status::read_status(&mut r)?;
    let ch = pair
        .replica_channel
        .as_ref()
        .and_then(|name| report.channels.iter().find(|c| &c.name == name));
    let applying = ch.is_some_and(|c| c.health == crate::status::Health::Healthy);
    let mut filters: Vec<Filters> = ch.map(|c| c.filters.clone()).into_iter().collect();
    if let Some(back) = &pair.source_channel {
        let mut s = Server::connect(&pair.source)?;
        let report = crate::status::read_status(&mut s)?;
        filters.extend(
            report
                .channels
                .iter()
                .filter(|c| &c.name == back)
                .map(|c| c.filters.clone()),
        );
    }
    filters.retain(|f| !f.is_empty());
    Ok((applying, filters))
}

/// One worker's walk over a table.
struct Walk<'a> {
    pair: &'a Pair,
    opts: &'a Options,
    source: &'a mut Server,
    replica: &'a mut Server,
    bar: &'a indicatif::ProgressBar,
    /// The source's row estimate for the table being walked.
    estimate: u64,
    hash: sql::RowHash,
}

/// The key a table is chunked along: the primary key, else the first unique key whose
/// columns are all NOT NULL (a NULL falls outside every range).
fn chunk_key(server: &mut Server, schema: &TableSchema) -> Result<Option<Vec<String>>> {
    let not_null: Vec<String> = server.conn.exec(
        "SELECT COLUMN_NAME FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND IS_NULLABLE = 'NO'",
        (&schema.table.schema, &schema.table.name),
    )?;
    Ok(schema
        .unique_keys
        .iter()
        .find(|k| k.columns.iter().all(|c| not_null.contains(c)))
        .map(|k| k.columns.clone()))
}

/// Rows of (key…, hash) as a statement returns them.
fn read_key_hashes(
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
    let result = server.conn.exec_iter(&st.sql, st.bind())?;
    for row in result {
        let mut values = row?.unwrap().into_iter();
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
    }
    Ok(out)
}

/// (rows, xor, sum) of a checksum statement, as the server printed them.
fn read_checksum(server: &mut Server, st: &Statement) -> Result<(u64, String, String)> {
    let row: Option<mysql::Row> = server.conn.exec_first(&st.sql, st.bind())?;
    let text = |v: Option<mysql::Value>| v.map(value_text).unwrap_or_default();
    let Some(row) = row else {
        return Ok((0, String::new(), String::new()));
    };
    let mut values = row.unwrap().into_iter();
    let count = text(values.next()).parse().unwrap_or(0);
    Ok((count, text(values.next()), text(values.next())))
}

/// A single integer key's range, cut into spans of about `size` rows each (by the table's
/// row estimate), each span in `BUCKETS` buckets.
struct IntRanges {
    name: String,
    min: i128,
    max: i128,
    /// Key values per row, on average.
    per_row: f64,
}

fn min_max(server: &mut Server, ss: &TableSchema, key: &str) -> Result<Option<(i128, i128)>> {
    let k = crate::flavor::quote_ident(key);
    let row: Option<(Option<String>, Option<String>)> = server.conn.query_first(format!(
        "SELECT CAST(MIN({k}) AS CHAR), CAST(MAX({k}) AS CHAR) FROM {}",
        sql::table_sql(&ss.table)
    ))?;
    Ok(match row {
        Some((Some(a), Some(b))) => Some((a.parse()?, b.parse()?)),
        _ => None,
    })
}

impl IntRanges {
    fn new(
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
                let n: Option<u64> = source.conn.query_first(format!(
                    "SELECT COUNT(*) FROM {}",
                    sql::table_sql(&ss.table)
                ))?;
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

    fn span(&self, size: usize) -> i128 {
        ((self.per_row * size as f64) as i128).max(1)
    }

    fn step(&self, size: usize) -> u64 {
        (self.span(size) / BUCKETS).clamp(1, u64::MAX as i128) as u64
    }

    /// The next chunk's upper bound; None: the chunk reaches past the largest key.
    fn next_hi(&self, lo: Option<&[(String, Cell)]>, size: usize) -> Option<Key> {
        let from = key_number(lo).unwrap_or(self.min - 1);
        let hi = from + self.span(size);
        (hi < self.max).then(|| vec![(self.name.clone(), Cell::Number(hi.to_string()))])
    }
}

/// Chunks in flight between the bounds thread and each node's hashing thread.
const PIPELINE: usize = 16;

/// One chunk of a table: (lo, hi] along its key, and the bucket width for an integer key.
#[derive(Debug)]
struct Chunk {
    index: usize,
    lo: Option<Key>,
    hi: Option<Key>,
    step: u64,
}

/// A chunk's checksums as one node computed them.
#[derive(Debug, PartialEq)]
enum Sums {
    Whole((u64, String, String)),
    Buckets(std::collections::HashMap<i128, (u64, String)>),
}

impl Sums {
    fn rows(&self) -> u64 {
        match self {
            Sums::Whole((n, _, _)) => *n,
            Sums::Buckets(b) => b.values().map(|(n, _)| n).sum(),
        }
    }

    /// None when both nodes agree; else the differing buckets (empty: the whole chunk).
    fn differing(&self, other: &Sums) -> Option<Vec<i128>> {
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
    hash: sql::RowHash,
    ss: &TableSchema,
    key: &[String],
    charsets: &sql::Charsets,
    int_key: bool,
    chunk: &Chunk,
) -> Result<Sums> {
    let (lo, hi) = (chunk.lo.as_deref(), chunk.hi.as_deref());
    match int_key {
        true => {
            let st = sql::chunk_bucket_checksums(ss, hash, &key[0], chunk.step, lo, hi);
            Ok(Sums::Buckets(read_buckets(server, &st)?))
        }
        false => {
            let st = sql::chunk_checksum(ss, hash, lo, hi, charsets, false);
            Ok(Sums::Whole(read_checksum(server, &st)?))
        }
    }
}

/// Pauses while the replica lags more than --max-lag (checked at most once a second), on a
/// connection of its own.
struct LagGuard<'a> {
    channel: Option<&'a str>,
    max: Option<Duration>,
    replica: Option<Server>,
    last: Option<Instant>,
}

impl<'a> LagGuard<'a> {
    fn new(pair: &'a Pair, opts: &Options) -> Result<LagGuard<'a>> {
        let replica = match (opts.max_lag, &pair.replica_channel) {
            (Some(_), Some(_)) => Some(Server::connect(&pair.replica)?),
            _ => None,
        };
        Ok(LagGuard {
            channel: pair.replica_channel.as_deref(),
            max: opts.max_lag,
            replica,
            last: None,
        })
    }

    fn respect(&mut self, bar: &indicatif::ProgressBar) -> Result<()> {
        let (Some(max), Some(name), Some(replica)) =
            (self.max, self.channel, self.replica.as_mut())
        else {
            return Ok(());
        };
        if self
            .last
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return Ok(());
        }
        loop {
            self.last = Some(Instant::now());
            let report = crate::status::read_status(replica)?;
            let lag = report
                .channels
                .iter()
                .find(|c| c.name == name)
                .and_then(|c| c.seconds_behind_source);
            match lag {
                Some(l) if Duration::from_secs(l) > max => {
                    bar.set_message(format!("paused: replica {l} s behind"));
                    std::thread::sleep(Duration::from_secs(1));
                }
                _ => return Ok(()),
            }
        }
    }
}

/// (key, row hash) rows as one node read them.
type Hashed = Vec<(Key, String)>;

/// Each key's row hash on the source and on the replica (None: no such row there).
type Versions = std::collections::HashMap<Key, (Option<String>, Option<String>)>;

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
const RECHECK_BATCH: usize = 2000;

impl Walk<'_> {
    fn table(&mut self, table: &TableRef) -> TableDrift {
        let mut drift = TableDrift::new(table.clone(), None);
        if let Err(e) = self.compare_table(table, &mut drift) {
            drift.error = Some(crate::describe::message(&e));
        }
        drift
    }

    fn schemas(&mut self, table: &TableRef) -> Result<(TableSchema, TableSchema)> {
        let ss = schema::load(&mut self.source.conn, &self.pair.source.endpoint(), table)?;
        let rs = schema::load(&mut self.replica.conn, &self.pair.replica.endpoint(), table)?;
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

    fn compare_table(&mut self, table: &TableRef, drift: &mut TableDrift) -> Result<()> {
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
    fn chunks(&mut self, ss: &TableSchema, key: &[String], drift: &mut TableDrift) -> Result<()> {
        let charsets = ss.converted_charsets();
        let int_key = key.len() == 1 && ss.column(&key[0]).is_some_and(is_integer);
        let t0 = Instant::now();
        let differing = self.pass(ss, key, &charsets, int_key, drift)?;
        if std::env::var_os("REPLMEND_VERIFY_TIMING").is_some() {
            eprintln!(
                "pass {:?}, {} differing chunks",
                t0.elapsed(),
                differing.len()
            );
        }
        let mut suspects = ChunkDiff::default();
        for (chunk, buckets) in differing {
            let (lo, hi) = (chunk.lo.as_deref(), chunk.hi.as_deref());
            let diff = match int_key {
                true => self.narrow_buckets(ss, &key[0], chunk.step, &buckets, lo, hi)?,
                false => self.row_hashes(ss, key, lo, hi, &charsets)?.1,
            };
            suspects.absorb(diff);
            // Suspects are rechecked together: one catch-up for many chunks.
            if suspects.len() >= RECHECK_BATCH {
                self.settle(ss, key, &charsets, std::mem::take(&mut suspects), drift)?;
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

    fn settle(
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

    /// The checksum pass; returns the chunks whose checksums differ (with their differing
    /// buckets when the key is a single integer).
    fn pass(
        &mut self,
        ss: &TableSchema,
        key: &[String],
        charsets: &sql::Charsets,
        int_key: bool,
        drift: &mut TableDrift,
    ) -> Result<Vec<(std::sync::Arc<Chunk>, Vec<i128>)>> {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::mpsc::{channel, sync_channel};
        let size = AtomicUsize::new(self.opts.chunk_size.max(1));
        let (pair, opts, bar) = (self.pair, self.opts, self.bar);
        // The replica's key range too: rows above the source's largest key are extra rows.
        let rep_min_max = match int_key {
            true => Some(min_max(self.replica, ss, &key[0])?),
            false => None,
        };
        let estimate = self.estimate;
        let hash = self.hash;
        let (src, rep) = (&mut *self.source, &mut *self.replica);
        let (to_src, from_bounds_src) = sync_channel::<Arc<Chunk>>(PIPELINE);
        let (to_rep, from_bounds_rep) = sync_channel::<Arc<Chunk>>(PIPELINE);
        let (results, sums) = channel::<(usize, Arc<Chunk>, Result<Sums>, Duration)>();
        let mut differing = Vec::new();
        let size = &size;
        std::thread::scope(|s| -> Result<()> {
            // Owns both senders: when it ends, the hashing threads' inboxes close.
            let bounds = s.spawn(move || -> Result<()> {
                let mut conn = Server::connect(&pair.source)?;
                let mut lag = LagGuard::new(pair, opts)?;
                let mut lo: Option<Key> = None;
                // A single integer key is cut by value (no bound query: on a clustered
                // primary key, finding the 5000th next key reads 5000 whole rows).
                let ranges = match int_key {
                    true => Some(IntRanges::new(
                        &mut conn,
                        rep_min_max,
                        ss,
                        &key[0],
                        estimate,
                    )?),
                    false => None,
                };
                for index in 0.. {
                    lag.respect(bar)?;
                    let n = size.load(Ordering::Relaxed);
                    let hi = match &ranges {
                        Some(r) => r.next_hi(lo.as_deref(), n),
                        None => {
                            let st = sql::chunk_bound(&ss.table, key, lo.as_deref(), n, charsets);
                            read_bound(&mut conn, ss, key, &st)?
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
                        let r = chunk_sums(server, hash, ss, key, charsets, int_key, &chunk);
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
                if let Some(buckets) = a.differing(&b) {
                    differing.push((chunk, buckets));
                }
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

    /// The differing buckets of a chunk (a few dozen rows each) read as row hashes on both
    /// nodes and compared.
    fn narrow_buckets(
        &mut self,
        ss: &TableSchema,
        key: &str,
        step: u64,
        buckets: &[i128],
        lo: Option<&[(String, Cell)]>,
        hi: Option<&[(String, Cell)]>,
    ) -> Result<ChunkDiff> {
        let keys = [key.to_string()];
        let mut ranges: Vec<(i128, i128)> =
            buckets.iter().map(|b| bucket_bounds(*b, step)).collect();
        // As many ranges as the next power of two (the last repeated): few distinct statement
        // texts, so the prepared statements are reused.
        if let Some(last) = ranges.last().copied() {
            ranges.resize(ranges.len().next_power_of_two(), last);
        }
        let st = sql::bucket_row_hashes(ss, self.hash, key, &ranges, lo, hi);
        let (x, y) = crate::conn::both(self.source, self.replica, |s| {
            read_key_hashes(s, ss, &keys, &st)
        })?;
        Ok(diff::compare(x, y))
    }

    /// Both nodes' (key, hash) rows of the chunk, compared.
    fn row_hashes(
        &mut self,
        ss: &TableSchema,
        key: &[String],
        lo: Option<&[(String, Cell)]>,
        hi: Option<&[(String, Cell)]>,
        charsets: &sql::Charsets,
    ) -> Result<(u64, ChunkDiff)> {
        let st = sql::chunk_row_hashes(ss, self.hash, key, lo, hi, charsets);
        let (a, b) = crate::conn::both(self.source, self.replica, |s| {
            read_key_hashes(s, ss, key, &st)
        })?;
        Ok((a.len() as u64, diff::compare(a, b)))
    }

    /// Waits until the replica applied what the source had committed (and, in a dual-master
    /// pair, the other way round), so a difference still there is not replication lag.
    fn catch_up(&mut self) -> Result<()> {
        let timeout = self.opts.wait_timeout.as_secs().max(1);
        if let Some(ch) = &self.pair.replica_channel {
            let (file, pos) = crate::repair::verify::binlog_end(self.source)?;
            let sql = self.replica.flavor.source_pos_wait();
            let _: Option<Option<i64>> = self
                .replica
                .conn
                .exec_first(sql, (file, pos, timeout, ch.as_str()))?;
        }
        if let Some(ch) = &self.pair.source_channel {
            let (file, pos) = crate::repair::verify::binlog_end(self.replica)?;
            let sql = self.source.flavor.source_pos_wait();
            let _: Option<Option<i64>> = self
                .source
                .conn
                .exec_first(sql, (file, pos, timeout, ch.as_str()))?;
        }
        Ok(())
    }

    /// Reads the differing rows again after the replica caught up: what still differs, with
    /// the same versions as the read before (nothing in flight on them), is drift; rows that
    /// converged were in flight; rows still changing are read again, up to --rechecks times,
    /// and are in flight, not drift, if they changed between the last two reads.
    fn recheck(
        &mut self,
        ss: &TableSchema,
        key: &[String],
        charsets: &sql::Charsets,
        mut diff: ChunkDiff,
    ) -> Result<(ChunkDiff, usize)> {
        // Each row's (source, replica) versions in the previous and in the latest read.
        let mut previous: Option<Versions> = None;
        let mut latest: Option<Versions> = None;
        for _ in 0..self.opts.rechecks.max(1) {
            if diff.is_empty() {
                break;
            }
            self.catch_up()?;
            let keys = diff.keys();
            let mut a = Vec::new();
            let mut b = Vec::new();
            for chunk in keys.chunks(1000) {
                let st = sql::row_hashes_by_key(ss, self.hash, key, chunk, charsets);
                let (x, y) = crate::conn::both(self.source, self.replica, |s| {
                    read_key_hashes(s, ss, key, &st)
                })?;
                a.extend(x);
                b.extend(y);
            }
            let now = versions(&a, &b);
            diff = diff::compare(a, b);
            previous = latest.replace(now);
            if let (Some(p), Some(l)) = (&previous, &latest)
                && diff.keys().iter().all(|k| p.get(k) == l.get(k))
            {
                break;
            }
        }
        // A row that changed between the last two reads is still in flight, not drift: it is
        // counted as unsettled.
        let mut unsettled = 0;
        if let (Some(p), Some(l)) = (&previous, &latest) {
            let before = diff.len();
            diff.retain(|k| p.get(k) == l.get(k));
            unsettled = before - diff.len();
        }
        Ok((diff, unsettled))
    }

    /// Adds a chunk's drift to the table's, with the columns of each differing row. A
    /// missing key whose row the replica holds under a collation-equal key is one different
    /// row, reported with both keys.
    fn record(
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
    fn collation_pairs(
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
    fn multiset(&mut self, ss: &TableSchema, drift: &mut TableDrift) -> Result<()> {
        let st = sql::chunk_checksum(ss, self.hash, None, None, &[], true);
        let mut sums = crate::conn::both(self.source, self.replica, |s| read_checksum(s, &st))?;
        for _ in 0..self.opts.rechecks {
            if sums.0 == sums.1 {
                break;
            }
            self.catch_up()?;
            sums = crate::conn::both(self.source, self.replica, |s| read_checksum(s, &st))?;
        }
        drift.chunks = 1;
        drift.rows = sums.0.0;
        self.bar.inc(sums.0.0);
        if sums.0 == sums.1 {
            return Ok(());
        }
        let st = sql::multiset_hashes(ss, self.hash);
        let (a, b) = crate::conn::both(self.source, self.replica, |s| {
            let rows: Vec<(String, u64)> = s.conn.exec(&st.sql, st.bind())?;
            Ok(rows)
        })?;
        let columns = ss.column_names();
        for (hash, on_source, on_replica) in diff::compare_multisets(a, b) {
            match on_source.cmp(&on_replica) {
                std::cmp::Ordering::Greater => drift.missing += (on_source - on_replica) as usize,
                _ => drift.extra += (on_replica - on_source) as usize,
            }
            let holder = match on_source > 0 {
                true => &mut *self.source,
                false => &mut *self.replica,
            };
            let st = sql::rows_by_hash(ss, self.hash, &columns, std::slice::from_ref(&hash));
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

/// The chunk's upper bound: the key of the row the bound statement finds (None: fewer rows
/// are left than a chunk holds; this chunk is the last, open-ended).
fn read_bound(
    server: &mut Server,
    schema: &TableSchema,
    key: &[String],
    st: &Statement,
) -> Result<Option<Key>> {
    let row: Option<mysql::Row> = server.conn.exec_first(&st.sql, st.bind())?;
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

fn read_row_by_hash(
    server: &mut Server,
    schema: &TableSchema,
    columns: &[String],
    st: &Statement,
) -> Result<Option<Row>> {
    let row: Option<mysql::Row> = server.conn.exec_first(&st.sql, st.bind())?;
    // The hash comes first; the row's columns follow.
    Ok(row.map(|r| crate::conn::decode_row(r.unwrap().into_iter().skip(1), schema, columns)))
}

/// A checksum query's value as the server printed it (COUNT and BIT_XOR arrive as integers,
/// SUM as decimal text).
fn value_text(v: mysql::Value) -> String {
    match v {
        mysql::Value::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
        mysql::Value::Int(i) => i.to_string(),
        mysql::Value::UInt(u) => u.to_string(),
        _ => String::new(),
    }
}

fn is_integer(col: &crate::schema::ColumnDef) -> bool {
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

/// The keys `k DIV step = b` covers (DIV truncates toward zero: bucket 0 spans both signs).
fn bucket_bounds(b: i128, step: u64) -> (i128, i128) {
    let step = step as i128;
    match b.cmp(&0) {
        std::cmp::Ordering::Greater => (b * step, b * step + step - 1),
        std::cmp::Ordering::Less => (b * step - (step - 1), b * step),
        std::cmp::Ordering::Equal => (-(step - 1), step - 1),
    }
}

/// bucket → (rows, xor) of a bucket checksum statement.
fn read_buckets(
    server: &mut Server,
    st: &Statement,
) -> Result<std::collections::HashMap<i128, (u64, String)>> {
    let text = value_text;
    let mut out = std::collections::HashMap::new();
    for row in server.conn.exec_iter(&st.sql, st.bind())? {
        let mut v = row?.unwrap().into_iter();
        let (Some(b), Some(n), Some(x)) = (v.next(), v.next(), v.next()) else {
            continue;
        };
        let b: i128 = text(b).parse().unwrap_or(0);
        out.insert(b, (text(n).parse().unwrap_or(0), text(x)));
    }
    Ok(out)
}

/// The next chunk size: scaled towards the target time, at most doubling or halving at once.
fn adapt(size: usize, took: Duration, target: Duration) -> usize {
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
