//! `replmend verify` over a fleet (`--source` alone, or `--replica` repeated): the replicas
//! found or named, one pass over every table, the `replmend.verify-fleet/1` report rendered,
//! drift on any replica to exit code 11.

use std::fmt::Write as _;

use anyhow::Result;

use super::Outcome;
use crate::cli::{Format, VerifyArgs};
use crate::exit;
use crate::verify::fleet::{self, Fleet};
use crate::verify::model::{FleetReport, FleetTable, Report, TableDrift};
use crate::vocab::Endpoint;

pub fn run(args: &VerifyArgs, format: Format) -> Result<Outcome> {
    let fleet = nodes(args)?;
    let opts = super::verify::options(args)?;
    let reports = crate::verify::run_fleet(&fleet.pairs, &opts)?;
    for r in &reports {
        super::verify::keep(r, &opts);
    }
    let report = FleetReport::new(fleet.source.address(), reports, fleet.not_compared);
    Ok(Outcome {
        output: super::render(format, &report, text),
        code: code(&report),
    })
}

/// The replicas named with `--replica`, or those the `--source` lists, reached with its
/// credentials (what its DSN leaves out comes from the options and option files).
fn nodes(args: &VerifyArgs) -> Result<Fleet> {
    if args.replica.replicas.is_empty() {
        let base = super::connect::specs(&[None], &args.replica.opts)?.remove(0);
        let source = super::connect::source_spec(args.source.as_deref(), &base)?
            .expect("a fleet without --replica has --source");
        return fleet::discover(&source);
    }
    let specs = super::connect::replica_specs(&args.replica)?;
    let source = super::connect::source_spec(args.source.as_deref(), &specs[0])?;
    fleet::named(&specs, source.as_ref())
}

/// 11 when any replica drifted; else 1 when a replica or a table was not compared.
pub fn code(report: &FleetReport) -> u8 {
    let s = &report.summary;
    match (report.drifted(), s.failed + s.not_compared > 0) {
        (true, _) => exit::DRIFT,
        (false, true) => exit::FAILURE,
        (false, false) => exit::OK,
    }
}

/// `1 missing, 2 different` (what differs in one replica's table).
fn counts(t: &TableDrift) -> String {
    let parts: Vec<String> = [
        (t.missing, "missing"),
        (t.extra, "extra"),
        (t.different, "different"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    match (&t.only_on, parts.is_empty()) {
        (Some(node), _) => format!("only on {node}"),
        (None, true) => "drift".into(),
        (None, false) => parts.join(", "),
    }
}

fn table_of<'a>(
    reports: &'a [Report],
    replica: &Endpoint,
    t: &crate::vocab::TableRef,
) -> Option<&'a TableDrift> {
    reports
        .iter()
        .find(|r| r.replica == *replica)?
        .tables
        .iter()
        .find(|d| d.table == *t)
}

/// The heading: the source, the replicas compared, those not compared and why, warnings.
fn heading(out: &mut String, r: &FleetReport) {
    let names: Vec<String> = r.replicas.iter().map(|x| x.replica.to_string()).collect();
    let _ = writeln!(
        out,
        "verify {} (source) against {} replica(s): {}: {} table(s) in {:.1} s",
        r.source,
        r.summary.compared,
        names.join(", "),
        r.tables.len(),
        r.elapsed_ms as f64 / 1000.0
    );
    for n in &r.not_compared {
        let at = n
            .replica
            .as_ref()
            .map(ToString::to_string)
            .or(n.server_id.map(|id| format!("server_id {id}")))
            .unwrap_or_else(|| "a replica".into());
        let _ = writeln!(out, "not compared: {at}: {}", n.error);
    }
    for x in &r.replicas {
        for w in &x.warnings {
            let _ = writeln!(out, "warning: {}: {w}", x.replica);
        }
    }
}

/// `shop.items  DRIFT on A (1 missing), B (1 extra); identical on C`.
fn table_line(r: &FleetReport, t: &FleetTable) -> String {
    let mut parts = Vec::new();
    if !t.drifted.is_empty() {
        let who: Vec<String> = t
            .drifted
            .iter()
            .map(|e| {
                let what = table_of(&r.replicas, e, &t.table)
                    .map(counts)
                    .unwrap_or_default();
                format!("{e} ({what})")
            })
            .collect();
        let drift = format!("DRIFT on {}", who.join(", "));
        parts.push(console::style(drift).red().bold().to_string());
    }
    for (list, what) in [
        (&t.identical, "identical"),
        (&t.unsettled, "not judged"),
        (&t.filtered, "filtered"),
        (&t.failed, "not compared"),
    ] {
        if !list.is_empty() {
            let who: Vec<String> = list.iter().map(ToString::to_string).collect();
            parts.push(format!("{what} on {}", who.join(", ")));
        }
    }
    format!("{:<40} {}", t.table.to_string(), parts.join("; "))
}

pub fn text(r: &FleetReport) -> String {
    let mut out = String::new();
    heading(&mut out, r);
    out.push('\n');
    for t in &r.tables {
        let _ = writeln!(out, "{}", table_line(r, t));
    }
    // Each drifted replica's rows, as a pair verify lists them.
    for x in r
        .replicas
        .iter()
        .filter(|x| x.drifted() || x.unsettled() || x.summary.failed > 0)
    {
        let _ = writeln!(out, "\n{} (replica):", x.replica);
        for t in &x.tables {
            super::verify::table_lines(&mut out, t);
        }
    }
    let s = &r.summary;
    let _ = writeln!(
        out,
        "\n{} replica(s) compared: {} identical, {} drifted{}{}{}",
        s.compared,
        s.identical,
        s.drifted,
        match s.unsettled {
            0 => String::new(),
            n => format!(", {n} with rows not judged"),
        },
        match s.failed {
            0 => String::new(),
            n => format!(", {n} with tables not compared"),
        },
        match s.not_compared {
            0 => String::new(),
            n => format!("; {n} replica(s) not compared"),
        }
    );
    if s.drifted > 0 {
        out.push_str("fix with: replmend verify … --format json > fleet.json, then replmend resync --from fleet.json (--dry-run shows each replica's SQL first)\n");
    }
    // Their rows not applied yet may count as drift: replication first, then verify again.
    for x in r
        .replicas
        .iter()
        .filter(|x| x.drifted() && x.lag_counted_as_drift())
    {
        let hint = super::verify::drift_hint(x.replication);
        let _ = write!(out, "{}: {hint}", x.replica);
    }
    out
}
