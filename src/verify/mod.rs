//! `replmend verify`: every drifted row between two nodes. Each table is walked in chunks
//! along its key; each chunk is hashed by both servers at once (a 64-bit row digest of two
//! CRC32s, XORed, with the row count); a differing chunk is narrowed down to exact rows; a row counts
//! as drifted only if it still differs after the replica has applied everything its source
//! had committed when the chunk was read, rechecked a bounded number of times. Reads only:
//! no locks beyond one chunk's consistent read, nothing replicated.

pub mod checkpoint;
pub mod diff;
mod differ;
mod lag;
pub mod model;
pub mod saved;
mod table_plan;
mod walk;

use std::time::{Duration, Instant};

use anyhow::Result;

use crate::conn::{ConnSpec, Server};
use crate::status::filters::Filters;
use crate::status::topology::{Named, Topology};
use crate::vocab::TableRef;
use model::{Report, TableDrift};
use table_plan::{select, tables};
use walk::Walk;

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
    /// Keep a checkpoint to resume from (`verify` only), or resume from one.
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
            source,
            replica: replica.clone(),
            source_channel,
        })
    }
}

/// Verifies every selected table; tables are spread over `threads` workers, each with its
/// own connections to both nodes.
pub fn run(pair: &Pair, opts: &Options) -> Result<Report> {
    let started = Instant::now();
    let mut source = Server::connect(&pair.source)?;
    let mut replica = Server::connect(&pair.replica)?;
    let (on_source, on_replica) = (tables(&mut source, opts)?, tables(&mut replica, opts)?);
    let mut report = Report::new(
        pair.source.address(),
        pair.replica.address(),
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
    let checkpoint = checkpoint::Checkpoint::open(
        opts.checkpoint,
        &saved::dir(),
        &pair.source.address(),
        &pair.replica.address(),
        &saved::Selection::of(opts),
    )?;
    if let Some(r) = checkpoint.resumed {
        report.warnings.push(resumed_words(r));
    }
    let threads = opts.threads.clamp(1, list.len().max(1));
    let results = std::sync::Mutex::new(Vec::new());
    let bars = indicatif::MultiProgress::new();
    if !opts.progress {
        bars.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let total = bars.add(total_bar(&list));
    let (done, count) = (std::sync::atomic::AtomicUsize::new(0), list.len());
    let table_done = |estimate: u64| {
        let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        total.inc(estimate);
        total.set_prefix(format!("{n}/{count} tables"));
    };
    let queue = std::sync::Mutex::new(list.into_iter().enumerate());
    std::thread::scope(|s| -> Result<()> {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    let mut src = Server::connect(&pair.source)?;
                    let mut rep = Server::connect(&pair.replica)?;
                    let mut bounds = Server::connect(&pair.source)?;
                    let mut lag = lag::LagGuard::new(pair, opts)?;
                    loop {
                        let next = queue.lock().expect("queue").next();
                        let Some((i, (table, estimate))) = next else {
                            return Ok(());
                        };
                        if let Some(before) = checkpoint.done(&table) {
                            if opts.lines {
                                eprintln!("verify: {table}: compared before the stop");
                            }
                            table_done(estimate);
                            results.lock().expect("results").push((i, before));
                            continue;
                        }
                        let bar = bars.add(table_bar(&table, estimate));
                        let mut walk = Walk {
                            pair,
                            opts,
                            source: &mut src,
                            replica: &mut rep,
                            bounds: &mut bounds,
                            lag: &mut lag,
                            bar: &bar,
                            estimate,
                            checkpoint: &checkpoint,
                        };
                        let table_started = Instant::now();
                        let drift = walk.table(&table);
                        bar.finish_and_clear();
                        table_done(estimate);
                        // A table that failed is walked again by --resume.
                        if drift.error.is_none() {
                            checkpoint.finished(&drift);
                        }
                        if opts.lines {
                            eprintln!("{}", table_line(&drift, table_started.elapsed()));
                        }
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
    total.finish_and_clear();
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
    if report.summary.failed == 0 {
        checkpoint.complete();
    }
    report.resumed = checkpoint.resumed.map(|r| r.started_at);
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// What a resumed verify's result means.
fn resumed_words(r: checkpoint::Resumed) -> String {
    let at = crate::value::utc_datetime(r.started_at as i64, 0, 0);
    format!(
        "resumed the verify started at {at} UTC ({} table(s) finished then, {} part way): rows compared before the stop were read then, the rest now; a change made in between to rows already compared is not seen",
        r.tables_done, r.tables_partial
    )
}

/// `verify: shop.items: 1000000 rows in 2.3 s (434783 rows/s): identical`
fn table_line(t: &TableDrift, took: Duration) -> String {
    let verdict = match (&t.error, t.identical()) {
        (Some(e), _) => format!("not compared ({e})"),
        (None, true) => "identical".to_string(),
        (None, false) => format!(
            "DRIFT: {} missing, {} extra, {} different",
            t.missing, t.extra, t.different
        ),
    };
    let rate = t.rows as f64 / took.as_secs_f64().max(0.001);
    format!(
        "verify: {}: {} rows in {:.1} s ({rate:.0} rows/s): {verdict}",
        t.table,
        t.rows,
        took.as_secs_f64()
    )
}

/// The whole verify: tables done of all, rows by the source's estimates, ETA. Hidden for one
/// table (its own bar says it all).
fn total_bar(list: &[(TableRef, u64)]) -> indicatif::ProgressBar {
    let rows: u64 = list.iter().map(|(_, e)| e).sum();
    let bar = indicatif::ProgressBar::new(rows.max(1));
    if list.len() < 2 {
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
    bar.set_prefix(format!("0/{} tables", list.len()));
    bar
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
