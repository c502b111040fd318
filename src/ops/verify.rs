//! `replmend verify`: arguments to options, the report rendered, drift to exit code 11.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::time::Duration;

use anyhow::Result;

use super::Outcome;
use crate::cli::{Format, VerifyArgs, VerifyCmd};
use crate::exit;
use crate::verify::model::{KeyOut, Replication, Report, TableDrift};
use crate::verify::{self, Options, Pair};

pub fn options(args: &VerifyArgs) -> Result<Options> {
    let seconds = |s: Option<f64>, what: &str| -> Result<Option<Duration>> {
        match s {
            None => Ok(None),
            Some(v) if v.is_finite() && v > 0.0 => Ok(Some(Duration::from_secs_f64(v))),
            Some(v) => Err(exit::Coded(
                exit::BAD_INPUT,
                format!("--{what} {v}: give a number of seconds above 0"),
            )
            .into()),
        }
    };
    if args.chunk_size == 0 || args.threads == 0 {
        return Err(exit::Coded(
            exit::BAD_INPUT,
            "--chunk-size and --threads must be at least 1".into(),
        )
        .into());
    }
    Ok(Options {
        databases: args.databases.clone(),
        tables: args.tables.clone(),
        ignore_tables: args.ignore_tables.clone(),
        threads: args.threads,
        chunk_size: args.chunk_size,
        chunk_time: seconds(args.chunk_time, "chunk-time")?,
        max_lag: seconds(args.max_lag, "max-lag")?,
        wait_timeout: wait_timeout(args.wait_timeout)?,
        progress: std::io::stderr().is_terminal(),
        lines: !std::io::stderr().is_terminal(),
        ..Options::default()
    })
}

/// `--wait-timeout`: whole seconds from 1 to 50 (a session's reads give up after 60).
fn wait_timeout(seconds: f64) -> Result<Duration> {
    match seconds {
        s if (1.0..=50.0).contains(&s) => Ok(Duration::from_secs(s as u64)),
        s => Err(exit::Coded(
            exit::BAD_INPUT,
            format!("--wait-timeout {s}: give a number of seconds from 1 to 50"),
        )
        .into()),
    }
}

/// Keeps the report as its pair's last verify (`verify::saved`): a resync soon after fixes
/// what it found without hashing again. Not kept is only a warning: the verify itself worked.
pub fn keep(report: &Report, opts: &Options) {
    let selection = verify::saved::Selection::of(opts);
    if let Err(e) = verify::saved::save(&verify::saved::dir(), report, &selection) {
        eprintln!(
            "replmend: warning: the verify report could not be kept for a later resync ({e})"
        );
    }
}

/// Several `--replica`, or `--source` with no replica named (no --replica, -h, -P, -S): the
/// source's fleet.
pub fn fleet_asked(args: &VerifyArgs) -> bool {
    let (r, o) = (&args.replica, &args.replica.opts);
    r.replicas.len() > 1
        || (args.source.is_some()
            && r.replicas.is_empty()
            && o.host.is_none()
            && o.port.is_none()
            && o.socket.is_none())
}

pub fn pair(args: &VerifyArgs) -> Result<Pair> {
    if fleet_asked(args) {
        return Err(exit::Coded(
            exit::BAD_INPUT,
            "resync fixes one replica at a time: for a fleet, run `replmend verify … --format json > fleet.json`, then `replmend resync --from fleet.json`".into(),
        )
        .into());
    }
    let spec = super::connect::replica_specs(&args.replica)?.remove(0);
    let source = super::connect::source_spec(args.source.as_deref(), &spec)?;
    Pair::of_replica(&spec, source.as_ref())
}

pub fn run(cmd: &VerifyCmd, format: Format) -> Result<Outcome> {
    let args = &cmd.verify;
    if fleet_asked(args) {
        if cmd.resume {
            return Err(exit::Coded(
                exit::BAD_INPUT,
                "--resume continues the verify of one replica; a fleet's verify is run again whole"
                    .into(),
            )
            .into());
        }
        return super::verify_fleet::run(args, format);
    }
    let pair = pair(args)?;
    let opts = Options {
        checkpoint: match cmd.resume {
            true => verify::checkpoint::Mode::Resume,
            false => verify::checkpoint::Mode::Fresh,
        },
        ..options(args)?
    };
    let mut report = verify::run(&pair, &opts)?;
    if report.summary.failed > 0 {
        report.warnings.push(
            "`replmend verify --resume` (same options) walks the tables not compared again, and only them"
                .into(),
        );
    }
    keep(&report, &opts);
    Ok(Outcome {
        output: super::render(format, &report, text),
        code: code(&report),
    })
}

pub fn code(report: &Report) -> u8 {
    match (report.drifted(), report.summary.failed > 0) {
        (true, _) => exit::DRIFT,
        (false, true) => exit::FAILURE,
        (false, false) => exit::OK,
    }
}

pub(super) fn key_text(k: &KeyOut) -> String {
    k.iter()
        .map(|p| {
            let v = match &p.value {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            format!("{}={v}", p.column)
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// At most this many keys of each kind are listed per table in text (JSON has them all).
const LISTED: usize = 10;

fn list(out: &mut String, what: &str, keys: Vec<String>) {
    if keys.is_empty() {
        return;
    }
    let more = keys.len().saturating_sub(LISTED);
    let shown: Vec<String> = keys.into_iter().take(LISTED).collect();
    let _ = write!(out, "  {what}: {}", shown.join("; "));
    if more > 0 {
        let _ = write!(out, "; … {more} more (--format json lists all)");
    }
    out.push('\n');
}

pub(super) fn table_lines(out: &mut String, t: &TableDrift) {
    if let Some(e) = &t.error {
        let _ = writeln!(out, "{}: not compared: {e}", t.table);
        return;
    }
    if let Some(why) = &t.filtered {
        let _ = writeln!(
            out,
            "{}: filtered, not compared: the replica's {why} (it may differ on purpose; resync never writes it)",
            t.table
        );
        return;
    }
    if let Some(node) = &t.only_on {
        let _ = writeln!(
            out,
            "{}: exists only on {node} (no rows compared; resync does not create or drop tables)",
            t.table
        );
        return;
    }
    if t.unsettled > 0 {
        let why = match t.not_caught_up {
            true => {
                "the replica had not applied its source's writes when the wait for it ran out (--wait-timeout once, then a second at a time while it stays behind: it lags, or applies with a delay); verify again once it has caught up, or with a longer --wait-timeout"
            }
            false => "they were still being written during the rechecks; verify again when quiet",
        };
        let _ = writeln!(out, "{}: {} row(s) not judged: {why}", t.table, t.unsettled);
        list(
            out,
            "not judged",
            t.unsettled_keys.iter().map(key_text).collect(),
        );
    }
    if t.identical() {
        return;
    }
    let _ = writeln!(out, "{}:", t.table);
    list(
        out,
        "missing on the replica",
        t.missing_keys.iter().map(key_text).collect(),
    );
    list(
        out,
        "extra on the replica",
        t.extra_keys.iter().map(key_text).collect(),
    );
    list(
        out,
        "different",
        t.different_rows
            .iter()
            .map(|d| match &d.replica_key {
                Some(rk) => format!(
                    "{} ({}; the replica holds it under {}, equal under the collation)",
                    key_text(&d.key),
                    d.columns.join(", "),
                    key_text(rk)
                ),
                None => format!("{} ({})", key_text(&d.key), d.columns.join(", ")),
            })
            .collect(),
    );
    list(
        out,
        "rows (no usable key; compared as a multiset)",
        t.multiset_rows
            .iter()
            .map(|m| {
                format!(
                    "{} copies on the source, {} on the replica{}",
                    m.source_count,
                    m.replica_count,
                    m.row
                        .as_ref()
                        .map(|r| format!(": {}", crate::diagnosis::render::row_words(r)))
                        .unwrap_or_default()
                )
            })
            .collect(),
    );
}

pub fn text(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "verify {} (source) against {} (replica){}: {} table(s), {} rows in {:.1} s",
        r.source,
        r.replica,
        if r.dual_master { ", dual-master" } else { "" },
        r.summary.tables,
        r.summary.rows,
        r.elapsed_ms as f64 / 1000.0
    );
    for w in &r.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    let _ = writeln!(
        out,
        "\n{:<40} {:>10} {:>7} {:>8} {:>6} {:>9}  result",
        "table", "rows", "chunks", "missing", "extra", "different"
    );
    for t in &r.tables {
        let result = match (&t.error, &t.filtered, &t.only_on, t.identical()) {
            (Some(_), _, _, _) => console::style("not compared").yellow().to_string(),
            (None, Some(_), _, _) => console::style("filtered").yellow().to_string(),
            (None, None, Some(n), _) => console::style(format!("DRIFT: only on {n}"))
                .red()
                .bold()
                .to_string(),
            (None, None, None, true) if t.unsettled > 0 => {
                console::style("not judged").yellow().to_string()
            }
            (None, None, None, true) => console::style("identical").green().to_string(),
            (None, None, None, false) => console::style("DRIFT").red().bold().to_string(),
        };
        let _ = writeln!(
            out,
            "{:<40} {:>10} {:>7} {:>8} {:>6} {:>9}  {result}",
            t.table.to_string(),
            t.rows,
            t.chunks,
            t.missing,
            t.extra,
            t.different
        );
    }
    out.push('\n');
    for t in &r.tables {
        table_lines(&mut out, t);
    }
    let s = &r.summary;
    let _ = writeln!(
        out,
        "{} identical, {} drifted ({} missing, {} extra, {} different row(s)){}",
        s.identical,
        s.drifted,
        s.missing,
        s.extra,
        s.different,
        match s.failed {
            0 => String::new(),
            n => format!(", {n} not compared"),
        }
    );
    if s.unsettled_tables > 0 {
        let rows: usize = r
            .tables
            .iter()
            .filter(|t| t.identical())
            .map(|t| t.unsettled)
            .sum();
        let _ = writeln!(
            out,
            "{} table(s) without drift found but with {rows} row(s) not judged: verify them again when quiet",
            s.unsettled_tables
        );
    }
    if s.filtered > 0 {
        let _ = writeln!(
            out,
            "{} table(s) filtered by the replica's replication filters: not compared",
            s.filtered
        );
    }
    if s.drifted > 0 {
        out.push_str(drift_hint(r.replication));
    }
    out
}

/// What to do about drift found, by how replication ran during the verify: rows not applied
/// yet count as drift unless it ran throughout, and resync then waits.
pub(super) fn drift_hint(state: Option<Replication>) -> &'static str {
    match state {
        Some(Replication::OtherSource) => {
            "the replica does not replicate from this source: verify it against its own source (or once it has caught up) before fixing rows with replmend resync\n"
        }
        Some(Replication::Stopped) => {
            "replication is not running: start it (or replmend repair its error) and verify again before fixing rows with replmend resync\n"
        }
        Some(Replication::StoppedDuring) => {
            "replication stopped during the verify: once it runs and has caught up, verify again before fixing rows with replmend resync\n"
        }
        Some(Replication::Running) | None => {
            "fix with: replmend resync (same options; --dry-run shows the SQL first)\n"
        }
    }
}
