//! `replmend verify`: every drifted row between two nodes. Each table is walked in chunks
//! along its key; each chunk is hashed by both servers at once (a 64-bit row digest of two
//! CRC32s, XORed, with the row count); a differing chunk is narrowed down to exact rows; a row counts
//! as drifted only if it still differs after the replica has applied everything its source
//! had committed when the chunk was read, rechecked a bounded number of times. Reads only:
//! no locks beyond one chunk's consistent read, nothing replicated.

pub mod checkpoint;
pub mod diff;
mod differ;
pub mod fleet;
mod lag;
pub mod model;
mod pairing;
pub(crate) mod replication;
pub mod saved;
mod table_plan;
mod walk;

use std::time::{Duration, Instant};

use anyhow::Result;

use crate::conn::{ConnSpec, Server};
use crate::flavor::Flavor;
use crate::status::topology::{Named, Topology};
use crate::vocab::TableRef;
use model::{Report, TableDrift};
use table_plan::{select, tables};
use walk::{Fan, Side};

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
    /// Without a progress bar (stderr not a terminal): one plain line per table as it
    /// finishes (stderr), so a log shows the walk advance.
    pub lines: bool,
    /// Keep a checkpoint to resume from (`verify` of one replica only), or resume from one.
    pub checkpoint: checkpoint::Mode,
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
            lines: false,
            checkpoint: checkpoint::Mode::Off,
        }
    }
}

/// Why the nodes or tables to compare cannot be worked out.
#[derive(Debug, thiserror::Error)]
pub enum PairError {
    /// A multi-source replica with no `--source`: which source is meant is not known.
    #[error("{replica} replicates from {sources} sources: name the one to compare with --source")]
    WhichSource {
        replica: crate::vocab::Endpoint,
        sources: usize,
    },
    /// No channel and no `--source`: nothing to compare with.
    #[error("{replica} is not a replica: give the node to compare it with as --source")]
    NotAReplica { replica: crate::vocab::Endpoint },
    /// A table named with `--tables` is on neither node.
    #[error("table {table} does not exist on {endpoint}")]
    NoSuchTable {
        table: TableRef,
        endpoint: crate::vocab::Endpoint,
    },
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
    /// The replica's channel replicates from `source` itself (not a named source that no
    /// channel comes from): a wait for the source's binlog position there is meaningful.
    pub channel_from_source: bool,
    /// A catch-up wait found a channel between the nodes not running (shared by the run's
    /// workers): the report then says replication stopped during the verify.
    pub stopped_seen: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The last catch-up wait on the replica ran out its --wait-timeout (shared by the run's
    /// workers): the next ones last a second until one returns in time.
    pub behind: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Pair {
    pub fn dual_master(&self) -> bool {
        self.source_channel.is_some()
    }

    /// The pair a replica forms with its source (`source`, named on the command line, else
    /// the address in its status with the replica's credentials).
    pub fn of_replica(replica: &ConnSpec, source: Option<&ConnSpec>) -> Result<Pair> {
        Pair::between(replica, source.cloned())
    }

    /// The pair of `replica` and `wanted` (None: the replica's one source, from its status).
    /// The channel between them and the reverse one (a dual-master pair) are found by
    /// `topology`'s one rule.
    pub fn between(replica: &ConnSpec, wanted: Option<ConnSpec>) -> Result<Pair> {
        let mut r = Server::connect(replica)?;
        let report = crate::status::read_status(&mut r)?;
        let wanted_server = match &wanted {
            Some(w) => Some(Server::connect(w)?),
            None => None,
        };
        let named = wanted
            .as_ref()
            .zip(wanted_server.as_ref())
            .map(|(w, s)| Named {
                source: w,
                channel: None,
                server_id: Some(s.server_id),
            });
        let topology = Topology::of(replica, &report, named);
        let link = match (&wanted, topology.links.as_slice()) {
            // A named source no channel replicates from is still compared with (the first
            // channel's lag and filters stand for it).
            (Some(_), links) => links.iter().find(|l| l.named).or(links.first()),
            (None, [one]) => Some(one),
            (None, []) => None,
            (None, links) => {
                return Err(PairError::WhichSource {
                    replica: replica.address(),
                    sources: links.len(),
                }
                .into());
            }
        };
        // The only channel stands for a named source (reached at another address, say)
        // unless the channel has seen its source's server_id and it is another server's.
        let named_id = wanted_server.as_ref().map(|s| s.server_id);
        let channel_from_source = link.is_some_and(|l| {
            wanted.is_none()
                || (l.named
                    && l.channel
                        .replicates_from(&l.channel.source_endpoint(), named_id))
        });
        let source = match (wanted, link) {
            (Some(w), _) => w,
            (None, Some(l)) => l.source.clone(),
            (None, None) => {
                return Err(PairError::NotAReplica {
                    replica: replica.address(),
                }
                .into());
            }
        };
        let mut s = match wanted_server {
            Some(s) => s,
            None => Server::connect(&source)?,
        };
        // A source that replicates from the replica makes a dual-master pair; one that is
        // not a replica at all is the usual case.
        let source_channel = crate::status::read_status(&mut s)
            .ok()
            .and_then(|back| topology.reverse_in(&back).map(|c| c.name.clone()));
        let ch = link.map(|l| &l.channel);
        Ok(Pair {
            replica_channel: ch.map(|c| c.name.clone()),
            channel_from_source,
            source,
            replica: replica.clone(),
            source_channel,
            stopped_seen: Default::default(),
            behind: Default::default(),
        })
    }
}

/// Verifies every selected table between `pair`'s nodes.
pub fn run(pair: &Pair, opts: &Options) -> Result<Report> {
    let mut reports = run_fleet(std::slice::from_ref(pair), opts)?;
    Ok(reports.remove(0))
}

/// A table to walk, with the source's row estimate and the replicas (indexes into the pairs)
/// that compare it.
type Work = (TableRef, u64, Vec<usize>);

/// Verifies every selected table between one source and each replica of `pairs` (all pairs
/// of that source) in one pass: each chunk is hashed once on the source and once on each
/// replica. One report per pair, in the order of `pairs`. Tables are spread over `threads`
/// workers, each with its own connections to every node.
pub fn run_fleet(pairs: &[Pair], opts: &Options) -> Result<Vec<Report>> {
    let started = Instant::now();
    let Some(first) = pairs.first() else {
        return Ok(Vec::new());
    };
    let mut source = Server::connect(&first.source)?;
    let on_source = tables(&mut source, opts)?;
    let mut reports = Vec::new();
    let mut lists = Vec::new();
    let mut aside = Vec::new();
    let mut flavors = vec![source.flavor];
    for pair in pairs {
        let (report, list, set_aside, flavor) = prepare(pair, opts, &on_source)?;
        reports.push(report);
        lists.push(list);
        aside.push(set_aside);
        flavors.push(flavor);
    }
    // One digest for the run: every replica's sums are compared with the source's.
    let digest = digest_for(&flavors);
    for report in reports.iter_mut() {
        report.digest = Some(digest.name().to_string());
    }
    // Each table of the source once, with every replica that compares it.
    let work: Vec<Work> = on_source
        .iter()
        .map(|(t, n)| {
            let which = (0..lists.len())
                .filter(|r| lists[*r].iter().any(|(o, _)| o == t))
                .collect();
            (t.clone(), *n, which)
        })
        .filter(|(_, _, which): &Work| !which.is_empty())
        .collect();
    // One replica's verify can be resumed; a fleet's is run again whole.
    let mode = match pairs.len() {
        1 => opts.checkpoint,
        _ => checkpoint::Mode::Off,
    };
    let checkpoint = checkpoint::Checkpoint::open(
        mode,
        &saved::dir(),
        &first.source.address(),
        &first.replica.address(),
        &saved::Selection::of(opts),
    )?;
    if let Some(r) = checkpoint.resumed {
        reports[0].warnings.push(resumed_words(r));
        reports[0].resumed = Some(r.started_at);
    }
    // Each replica's tables: those set aside, then those walked.
    let mut per_replica = aside;
    for (r, drift) in walk_tables(pairs, opts, work, &checkpoint, digest)? {
        per_replica[r].push(drift);
    }
    for ((report, mut tables), pair) in reports.iter_mut().zip(per_replica).zip(pairs) {
        replication::at_end(pair, report);
        tables.sort_by(|a, b| {
            (&a.table.schema, &a.table.name).cmp(&(&b.table.schema, &b.table.name))
        });
        for t in tables {
            report.add(t);
        }
        report.elapsed_ms = started.elapsed().as_millis() as u64;
    }
    if reports.iter().all(|r| r.summary.failed == 0) {
        checkpoint.complete();
    }
    Ok(reports)
}

/// The row digest of a run whose nodes are of these flavors (`sql::RowDigest`).
fn digest_for(flavors: &[Flavor]) -> crate::sql::RowDigest {
    crate::sql::RowDigest::common(flavors.iter().all(Flavor::has_crc32c))
}

/// What a resumed verify's result means.
fn resumed_words(r: checkpoint::Resumed) -> String {
    let at = crate::value::utc_datetime(r.started_at as i64, 0, 0);
    format!(
        "resumed the verify started at {at} UTC ({} table(s) finished then, {} part way): rows compared before the stop were read then, the rest now; a change made in between to rows already compared is not seen",
        r.tables_done, r.tables_partial
    )
}

/// A pair's report before the walk (its warnings), the tables it compares and the entries
/// of those it does not (filtered, on one node only).
fn prepare(
    pair: &Pair,
    opts: &Options,
    on_source: &table_plan::Estimated,
) -> Result<(Report, table_plan::Estimated, Vec<TableDrift>, Flavor)> {
    let mut replica = Server::connect(&pair.replica)?;
    let on_replica = tables(&mut replica, opts)?;
    let mut report = Report::new(
        pair.source.address(),
        pair.replica.address(),
        pair.dual_master(),
    );
    let (state, warnings, filters) = replication::at_start(pair)?;
    let (list, aside) = select(pair, opts, on_source.clone(), on_replica, &filters)?;
    replication::record(&mut report, state, warnings);
    Ok((report, list, aside, replica.flavor))
}

/// Every table of `work` walked by the workers: (replica, its drift of the table).
fn walk_tables(
    pairs: &[Pair],
    opts: &Options,
    work: Vec<Work>,
    checkpoint: &checkpoint::Checkpoint,
    digest: crate::sql::RowDigest,
) -> Result<Vec<(usize, TableDrift)>> {
    let threads = opts.threads.clamp(1, work.len().max(1));
    let results = std::sync::Mutex::new(Vec::new());
    let bars = indicatif::MultiProgress::new();
    if !opts.progress {
        bars.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let total = bars.add(total_bar(&work));
    let (done, count) = (std::sync::atomic::AtomicUsize::new(0), work.len());
    let table_done = |estimate: u64| {
        let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        total.inc(estimate);
        total.set_prefix(format!("{n}/{count} tables"));
    };
    let queue = std::sync::Mutex::new(work.into_iter());
    let all: Vec<&Pair> = pairs.iter().collect();
    // A fleet's lines name the replica each is about.
    let fleet = pairs.len() > 1;
    std::thread::scope(|s| -> Result<()> {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    let mut src = Server::connect(&pairs[0].source)?;
                    let mut reps = pairs
                        .iter()
                        .map(|p| Server::connect(&p.replica))
                        .collect::<Result<Vec<_>, _>>()?;
                    // The worker's second source session (chunk bounds) and lag guard, kept
                    // across tables: a connection per table was most of a small table's cost.
                    let mut bounds = Server::connect(&pairs[0].source)?;
                    let mut lag = lag::LagGuard::new(&all, opts)?;
                    // Each replica starts out keeping up (`Walk::keeps_up`).
                    let mut keeps_up = vec![true; reps.len()];
                    loop {
                        let next = queue.lock().expect("queue").next();
                        let Some((table, estimate, which)) = next else {
                            return Ok(());
                        };
                        if let Some(before) = checkpoint.done(&table) {
                            if opts.lines {
                                eprintln!("verify: {table}: compared before the stop");
                            }
                            table_done(estimate);
                            results.lock().expect("results").push((0, before));
                            continue;
                        }
                        let bar = bars.add(table_bar(&table, estimate));
                        let replicas = reps
                            .iter_mut()
                            .zip(pairs)
                            .zip(keeps_up.iter_mut())
                            .enumerate()
                            .filter(|(r, _)| which.contains(r))
                            .map(|(_, ((server, pair), keeps_up))| Side {
                                pair,
                                server,
                                keeps_up,
                            })
                            .collect();
                        let mut fan = Fan {
                            opts,
                            source: &mut src,
                            replicas,
                            bounds: &mut bounds,
                            lag: &mut lag,
                            bar: &bar,
                            digest,
                            estimate,
                            checkpoint,
                        };
                        let table_started = Instant::now();
                        let drifts = fan.table(&table);
                        bar.finish_and_clear();
                        table_done(estimate);
                        // A table that failed is walked again by --resume.
                        if let [one] = drifts.as_slice()
                            && one.error.is_none()
                        {
                            checkpoint.finished(one);
                        }
                        for (r, drift) in which.into_iter().zip(drifts) {
                            if opts.lines {
                                let on = fleet.then(|| pairs[r].replica.address());
                                let took = table_started.elapsed();
                                eprintln!("{}", table_line(&drift, on, took));
                            }
                            results.lock().expect("results").push((r, drift));
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap_or_else(|p| std::panic::resume_unwind(p))?;
        }
        Ok(())
    })?;
    total.finish_and_clear();
    Ok(results.into_inner().expect("results"))
}

/// The whole verify: tables done of all, rows by the source's estimates, ETA. Hidden for one
/// table (its own bar says it all).
fn total_bar(work: &[Work]) -> indicatif::ProgressBar {
    let rows: u64 = work.iter().map(|(_, e, _)| e).sum();
    let bar = indicatif::ProgressBar::new(rows.max(1));
    if work.len() < 2 {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        return bar;
    }
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{prefix:30} [{bar:30}] ~{human_pos}/~{human_len} rows, {per_sec}, ETA {eta}",
        )
        .expect("static template")
        .progress_chars("#> "),
    );
    bar.set_prefix(format!("0/{} tables", work.len()));
    bar
}

/// `verify: shop.items: 1000000 rows in 2.3 s (434783 rows/s): identical` (a fleet's line
/// adds `on REPLICA` after the table).
fn table_line(t: &TableDrift, on: Option<crate::vocab::Endpoint>, took: Duration) -> String {
    let verdict = match (&t.error, t.identical()) {
        (Some(e), _) => format!("not compared ({e})"),
        (None, true) if t.unsettled > 0 => {
            format!("no drift found, {} row(s) not judged", t.unsettled)
        }
        (None, true) => "identical".to_string(),
        (None, false) => format!(
            "DRIFT: {} missing, {} extra, {} different",
            t.missing, t.extra, t.different
        ),
    };
    let rate = t.rows as f64 / took.as_secs_f64().max(0.001);
    let on = on.map(|e| format!(" on {e}")).unwrap_or_default();
    format!(
        "verify: {}{on}: {} rows in {:.1} s ({rate:.0} rows/s): {verdict}",
        t.table,
        t.rows,
        took.as_secs_f64()
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::RowDigest;

    #[test]
    fn one_node_without_crc32c_makes_every_node_reverse_the_text() {
        let f = |v: &str| Flavor::parse(v).expect("version");
        let (new, old) = (f("10.11.6-MariaDB-0+deb12u1-log"), f("10.6.16-MariaDB"));
        let (first, mysql) = (f("10.8.0-MariaDB"), f("9.7.0"));
        assert_eq!(digest_for(&[new, first]), RowDigest::Castagnoli);
        assert_eq!(digest_for(&[new, old]), RowDigest::Reversed);
        assert_eq!(digest_for(&[new, mysql]), RowDigest::Reversed);
        assert_eq!(digest_for(&[mysql]), RowDigest::Reversed);
    }
}
