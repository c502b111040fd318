//! `replmend resync`: verify (or read a verify report), read every drifted row on both nodes,
//! plan the exact SQL per row on the losing node, confirm, then apply through the repair
//! applier: preflight, the repair lock, every row journaled before it changes, a row changed
//! since it was read left alone. Afterwards the rows are compared again.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;

use super::Outcome;
use crate::cli::{Format, ResyncArgs};
use crate::conn::Server;
use crate::exit::{self, Coded};
use crate::journal::{self, Journal};
use crate::planner::Plan;
use crate::planner::Winner;
use crate::planner::plan::NodeRole;
use crate::planner::resync::{self, Node, RowPair, TableRows};
use crate::repair::apply::{ApplyReport, Nodes};
use crate::repair::lock::RepairLock;
use crate::report::record::{self, Body, Record, RunEnd, RunKind, VerificationRecord};
use crate::verify::model::{self, Report, VERIFY_SCHEMA};
use crate::verify::{self, Pair, saved};
use crate::vocab::{ReadOnly, TableRef};

#[derive(Serialize)]
struct ResyncReport<'a> {
    schema: &'static str,
    source: &'a crate::vocab::Endpoint,
    replica: &'a crate::vocab::Endpoint,
    /// The drift resync started from.
    verify: &'a model::Summary,
    /// Where that drift was read: a verify run now, a report file (`--from`), or a recent
    /// verify of the same tables (reused: drift newer than it is not seen).
    drift_from: &'a DriftFrom,
    /// Tables resync does not touch, and why.
    refused: Vec<String>,
    /// What a dry run found that a real run refuses or was told to accept (a node's applier
    /// with events still on their way).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
    plan: &'a Plan,
    dry_run: bool,
    applied: Option<&'a ApplyReport>,
    /// Keys still different after the resync (left alone, or changed meanwhile).
    remaining: usize,
}

/// Where the drift a resync fixes was found.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DriftFrom {
    /// verify ran as part of this resync.
    Verified,
    /// `--from FILE`.
    Report { path: PathBuf },
    /// The pair's last verify (of these tables), `age_s` seconds old.
    Recent { path: PathBuf, age_s: u64 },
    /// A verify of this run (the wizard's, after a repair).
    ThisRun,
}

/// What a resync is asked to do, from the command line or the wizard.
pub struct Fix {
    pub dry_run: bool,
    /// Ask before applying (a terminal, no --yes).
    pub interactive: bool,
    pub winner: Winner,
    pub lift_read_only: bool,
    pub allow_pending_relay: bool,
    pub allow_triggers: bool,
    /// Rows may be written with the binary log on where it cannot be turned off (a managed
    /// service), leaving an errant GTID there: `--allow-errant-gtid`, or the consequence
    /// confirmed at the prompt.
    pub allow_errant_gtid: bool,
    pub journal: Option<PathBuf>,
}

impl Fix {
    pub(super) fn of(args: &ResyncArgs, interactive: bool) -> Fix {
        Fix {
            dry_run: args.dry_run,
            interactive,
            winner: args.winner.clone(),
            lift_read_only: args.lift_read_only,
            allow_pending_relay: args.allow_pending_relay,
            allow_triggers: args.allow_triggers,
            allow_errant_gtid: args.allow_errant_gtid,
            journal: args.journal.clone(),
        }
    }
}

/// `--from` with no node named (no DSN, host, port, socket or --source): the report's own
/// nodes are the ones to fix.
pub(super) fn nodes_unnamed(args: &ResyncArgs) -> bool {
    let (target, opts) = (&args.verify.replica, &args.verify.replica.opts);
    target.replicas.is_empty()
        && args.verify.source.is_none()
        && opts.host.is_none()
        && opts.port.is_none()
        && opts.socket.is_none()
}

/// The nodes a report compared, reached with the credentials the options and option files
/// give (as `mysql` would use them for any host).
pub(super) fn pair_of_report(args: &ResyncArgs, report: &Report) -> Result<Pair> {
    let base = super::connect::specs(&[None], &args.verify.replica.opts)?.remove(0);
    let (source, replica) = (base.at(&report.source), base.at(&report.replica));
    Pair::between(&replica, Some(source))
}

fn load_report(path: &std::path::Path) -> Result<Report> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the verify report {}", path.display()))?;
    // A `repair --verify-table --format json` report carries its verify: fixed the same way.
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let text = match (doc["schema"].as_str(), doc.get("verify")) {
        (Some("replmend.repair/1"), Some(v)) if !v.is_null() => v.to_string(),
        _ => text,
    };
    let report: Report = serde_json::from_str(&text).map_err(|e| {
        Coded(
            exit::BAD_INPUT,
            format!(
                "{} is not a `replmend verify --format json` report, nor a repair report with its verify ({e})",
                path.display()
            ),
        )
    })?;
    if report.schema != VERIFY_SCHEMA {
        return Err(Coded(
            exit::BAD_INPUT,
            format!(
                "{} has schema {:?}, not {VERIFY_SCHEMA}",
                path.display(),
                report.schema
            ),
        )
        .into());
    }
    Ok(report)
}

/// The provider, where no account may turn the binary log off for a session (the probe's
/// facts: the provider's procedures present, sql_log_bin not granted).
pub(super) fn binlog_stays_on(server: &mut Server) -> Option<crate::flavor::Provider> {
    crate::capability::probe(server).via_provider(crate::flavor::Need::SqlLogBin)
}

fn node(server: &mut Server, role: NodeRole) -> Result<Node> {
    let (ro, sro): (i64, i64) = server
        .first(&crate::sql::Statement::plain(
            server.flavor.read_only_query(),
        ))?
        .unwrap_or((0, 0));
    Ok(Node {
        role,
        endpoint: server.spec.address(),
        flavor: server.flavor,
        read_only: ReadOnly::from_flags(ro != 0, sro != 0),
        binlog_stays_on: binlog_stays_on(server),
    })
}

/// Every drifted key of a table, as values of its columns.
fn drifted_keys(
    t: &model::TableDrift,
    schema: &crate::schema::TableSchema,
) -> Result<Vec<model::Key>> {
    let all = t
        .missing_keys
        .iter()
        .chain(&t.extra_keys)
        .chain(t.different_rows.iter().map(|d| &d.key));
    all.map(|k| {
        model::key_in(k, schema).ok_or_else(|| {
            Coded(
                exit::BAD_INPUT,
                format!(
                    "the report names a key of {} this table cannot hold",
                    t.table
                ),
            )
            .into()
        })
    })
    .collect()
}

/// Both nodes' current versions of each drifted row of the keyed tables; the tables resync
/// refuses, named.
fn read_rows(
    report: &Report,
    filters: &[crate::status::filters::Filters],
    source: &mut Server,
    replica: &mut Server,
) -> Result<(Vec<TableRows>, Vec<String>)> {
    let mut tables = Vec::new();
    let mut refused = Vec::new();
    // A table the report found filtered is not drift: nothing to say about it here.
    for t in report
        .tables
        .iter()
        .filter(|t| !t.identical() && t.filtered.is_none())
    {
        if let Some(e) = &t.error {
            refused.push(format!("{}: not compared ({e})", t.table));
            continue;
        }
        if let Some(node) = &t.only_on {
            refused.push(format!(
                "{}: exists only on {node}; resync does not create or drop tables",
                t.table
            ));
            continue;
        }
        if let Some(why) = filtered(filters, &t.table) {
            refused.push(format!(
                "{}: a replication filter between the nodes ({why}); resync never writes a filtered table",
                t.table
            ));
            continue;
        }
        if t.key.is_none() {
            refused.push(format!(
                "{}: no primary key or NOT NULL unique key, so its rows cannot be addressed one by one; resync leaves it alone (verify lists the differing rows)",
                t.table
            ));
            continue;
        }
        let ss = crate::conn::catalog::load(source, &t.table)?;
        let rs = crate::conn::catalog::load(replica, &t.table)?;
        let keys = drifted_keys(t, &ss)?;
        let unique = secondary_unique(&rs, &keys);
        let on_source = crate::inspect::fetch_rows(source, &ss, &keys)?;
        let on_replica = crate::inspect::fetch_rows(replica, &rs, &keys)?;
        let rows = one_pair_per_row(
            keys.into_iter()
                .zip(on_source.into_iter().zip(on_replica))
                .map(|(key, (source, replica))| RowPair {
                    key,
                    source,
                    replica,
                }),
        );
        tables.push(TableRows {
            table: t.table.clone(),
            rows,
            facts: rs.facts(),
            unique,
        });
    }
    Ok((tables, refused))
}

/// The column lists of the replica's UNIQUE keys other than the one the keys address.
fn secondary_unique(schema: &crate::schema::TableSchema, keys: &[model::Key]) -> Vec<Vec<String>> {
    let by: Vec<&String> = keys
        .first()
        .map_or(Vec::new(), |k| k.iter().map(|(c, _)| c).collect());
    schema
        .unique_keys
        .iter()
        .map(|k| k.columns.clone())
        .filter(|cols| cols.iter().collect::<Vec<_>>() != by)
        .collect()
}

/// Each pair of rows once: keys are looked up under their collation, so a missing `'abc'`
/// and an extra `'ABC'` (a report from before keys were paired, or both keys listed) find the
/// same two rows. Two pairs holding the same rows would delete the replacement again.
fn one_pair_per_row(pairs: impl Iterator<Item = RowPair>) -> Vec<RowPair> {
    let mut seen = std::collections::HashSet::new();
    pairs
        .filter(|p| {
            let own =
                |r: &Option<crate::value::Row>| r.as_ref().map(|r| resync::own_key(r, &p.key));
            seen.insert((own(&p.source), own(&p.replica)))
                || (p.source.is_none() && p.replica.is_none())
        })
        .collect()
}

/// The replication filters of the channels between the nodes, read now (a report read with
/// --from may be older than a filter): the replica's from the source and, in a dual-master
/// pair, the source's from the replica.
fn channel_filters(
    source: &mut Server,
    replica: &mut Server,
    pair: &Pair,
) -> Result<Vec<crate::status::filters::Filters>> {
    let mut out = Vec::new();
    for (server, channel) in [
        (replica, pair.replica_channel.as_ref()),
        (source, pair.source_channel.as_ref()),
    ] {
        let Some(channel) = channel else {
            continue;
        };
        let report = crate::status::read_status(server)?;
        out.extend(
            report
                .channels
                .into_iter()
                .filter(|c| &c.name == channel)
                .map(|c| c.filters),
        );
    }
    Ok(out)
}

fn filtered(
    filters: &[crate::status::filters::Filters],
    t: &crate::vocab::TableRef,
) -> Option<String> {
    filters.iter().find_map(|f| f.excludes(t))
}

fn plan_text(plan: &Plan) -> String {
    let mut out = crate::planner::render::consequences_text(plan);
    out.push_str(&crate::planner::render::facts_text(plan));
    for (i, s) in plan.steps.iter().enumerate() {
        out.push_str(&crate::planner::render::step_text(i, s));
    }
    out
}

/// Keys that still differ between the nodes once the plan ran.
fn remaining(tables: &[TableRows], source: &mut Server, replica: &mut Server) -> Result<usize> {
    let mut n = 0;
    for t in tables {
        let ss = crate::conn::catalog::load(source, &t.table)?;
        let rs = crate::conn::catalog::load(replica, &t.table)?;
        let keys: Vec<model::Key> = t.rows.iter().map(|r| r.key.clone()).collect();
        let a = crate::inspect::fetch_rows(source, &ss, &keys)?;
        let b = crate::inspect::fetch_rows(replica, &rs, &keys)?;
        n += a.iter().zip(&b).filter(|(x, y)| x != y).count();
    }
    Ok(n)
}

/// The plan's errant-GTID consequence (shown above) accepted at a prompt, when it has one
/// and --allow-errant-gtid did not accept it already: that answer is the consent.
fn confirm_errant(plan: &Plan, allowed: bool) -> Result<bool> {
    let nodes: Vec<String> = plan
        .steps
        .iter()
        .filter(|s| s.logs_errant_rows())
        .map(|s| s.endpoint.to_string())
        .fold(Vec::new(), |mut v, e| {
            if !v.contains(&e) {
                v.push(e);
            }
            v
        });
    if allowed || nodes.is_empty() {
        return Ok(allowed);
    }
    let theme = dialoguer::theme::ColorfulTheme::default();
    Ok(dialoguer::Confirm::with_theme(&theme)
        .with_prompt(format!(
            "The binary log cannot be turned off on {}: the row changes are logged there with that node's own GTID, an errant transaction (the consequence and follow-up above). Accept it?",
            nodes.join(" and ")
        ))
        .default(false)
        .interact()?)
}

fn confirm(plan: &Plan, rows: usize) -> Result<bool> {
    let theme = dialoguer::theme::ColorfulTheme::default();
    Ok(dialoguer::Confirm::with_theme(&theme)
        .with_prompt(format!(
            "Apply these {} step(s), changing {rows} row(s) (each journaled first)?",
            plan.steps.len()
        ))
        .default(false)
        .interact()?)
}

pub fn run(args: &ResyncArgs, format: Format) -> Result<Outcome> {
    if let Some(path) = &args.from
        && super::resync_fleet::is_fleet_report(path)
    {
        return super::resync_fleet::run(args, format, path);
    }
    let interactive = super::interactive(args.yes, args.dry_run)?;
    let from = args.from.as_deref().map(load_report).transpose()?;
    let pair: Pair = match &from {
        Some(report) if nodes_unnamed(args) => pair_of_report(args, report)?,
        _ => super::verify::pair(&args.verify)?,
    };
    let fix = Fix::of(args, interactive);
    let opts = super::verify::options(&args.verify)?;
    let drift = match (from, &args.from) {
        (Some(report), Some(path)) => {
            Drift::Given(report, DriftFrom::Report { path: path.clone() })
        }
        _ => match recent(args, &pair, &opts) {
            Some(found) => Drift::Given(
                found.report,
                DriftFrom::Recent {
                    path: found.path,
                    age_s: found.age.as_secs(),
                },
            ),
            None => Drift::Verify(opts),
        },
    };
    let (out, code) = resync(&fix, &pair, drift)?;
    Ok(Outcome {
        output: super::render(format, &out.view(), text),
        code,
    })
}

/// The drift to fix: a report at hand, or verify to run now (after the appliers settled).
pub enum Drift {
    Given(Report, DriftFrom),
    Verify(crate::verify::Options),
}

/// The pair's last verify when it answers this resync's tables and is recent enough
/// (`--reuse-verify` seconds; 0 never reuses).
fn recent(args: &ResyncArgs, pair: &Pair, opts: &verify::Options) -> Option<saved::Found> {
    let max_age = Duration::from_secs(args.reuse_verify);
    if max_age.is_zero() {
        return None;
    }
    let selection = saved::Selection::of(opts);
    let (s, r) = (pair.source.address(), pair.replica.address());
    saved::recent(&saved::dir(), &s, &r, &selection, max_age)
}

/// A resync's result, owned (the wizard and `run` render it).
pub struct Resynced {
    report: Report,
    drift_from: DriftFrom,
    refused: Vec<String>,
    warnings: Vec<String>,
    plan: Plan,
    dry_run: bool,
    applied: Option<ApplyReport>,
    remaining: usize,
}

impl Resynced {
    fn view(&self) -> ResyncReport<'_> {
        ResyncReport {
            schema: "replmend.resync/1",
            source: &self.report.source,
            replica: &self.report.replica,
            verify: &self.report.summary,
            drift_from: &self.drift_from,
            refused: self.refused.clone(),
            warnings: self.warnings.clone(),
            plan: &self.plan,
            dry_run: self.dry_run,
            applied: self.applied.as_ref(),
            remaining: self.remaining,
        }
    }

    pub fn text(&self) -> String {
        text(&self.view())
    }

    /// The `replmend.resync/1` document.
    pub fn json(&self) -> serde_json::Value {
        serde_json::to_value(self.view()).expect("report types always serialize")
    }
}

/// Fixes `drift` between the nodes of `pair` as `fix` asks: the exit code is DRIFT when rows
/// still differ (or a table was left alone) after a real run.
pub fn resync(fix: &Fix, pair: &Pair, drift: Drift) -> Result<(Resynced, u8)> {
    let mut source = Server::connect(&pair.source)?;
    let mut replica = Server::connect(&pair.replica)?;
    let (mut warnings, settled) =
        super::resync_pending::appliers(fix, pair, &mut source, &mut replica)?;
    let (report, drift_from) = match drift {
        Drift::Given(report, from) => (report, from),
        Drift::Verify(opts) => {
            let report = verify::run(pair, &opts)?;
            super::verify::keep(&report, &opts);
            (report, DriftFrom::Verified)
        }
    };
    if let DriftFrom::Recent { path, age_s } = &drift_from {
        eprintln!(
            "replmend: fixing the drift found by the verify of {age_s} s ago ({}): each row it names is read again now; drift since then is not seen (--reuse-verify 0 verifies again)",
            path.display()
        );
    }
    if (&report.source, &report.replica) != (&pair.source.address(), &pair.replica.address()) {
        return Err(Coded(
            exit::BAD_INPUT,
            format!(
                "the report compares {} with {}, not {} with {}; nothing was changed",
                report.source,
                report.replica,
                pair.source.endpoint(),
                pair.replica.endpoint()
            ),
        )
        .into());
    }
    let filters = channel_filters(&mut source, &mut replica, pair)?;
    let (tables, refused) = read_rows(&report, &filters, &mut source, &mut replica)?;
    let mut plan = resync::plan(
        &tables,
        &node(&mut source, NodeRole::Source)?,
        &node(&mut replica, NodeRole::Replica)?,
        &fix.winner,
        pair.dual_master(),
        fix.lift_read_only,
    )
    .map_err(|e| match e {
        // Nothing wrong with the input: the pair cannot be fixed this way.
        resync::ResyncError::LoggedInPair(..) => Coded(exit::REFUSED, e.to_string()),
        e => Coded(exit::BAD_INPUT, e.to_string()),
    })?;
    if !plan.steps.is_empty() {
        let mut nodes = Nodes::new(vec![pair.replica.clone(), pair.source.clone()]);
        plan.facts = crate::repair::preflight::facts(&plan, &mut nodes);
        plan.facts.extend(settled);
    }
    let rows: usize = plan.steps.iter().map(|s| s.rows().len()).sum();
    if fix.dry_run && !plan.steps.is_empty() {
        warnings.extend(preflight_problems(fix, pair, &plan));
    }
    let mut applied = None;
    let mut errant = fix.allow_errant_gtid;
    if !fix.dry_run && !plan.steps.is_empty() {
        if fix.interactive {
            eprint!("{}", plan_text(&plan));
            errant = confirm_errant(&plan, errant)?;
            if !errant && plan.steps.iter().any(|s| s.logs_errant_rows()) {
                return Err(Coded(
                    exit::REFUSED,
                    "the errant transaction was not accepted; nothing was changed".into(),
                )
                .into());
            }
            if !confirm(&plan, rows)? {
                return Err(
                    Coded(exit::REFUSED, "not confirmed; nothing was changed".into()).into(),
                );
            }
        }
        let record = plan_record(&plan, &tables, &report.summary);
        let mut report = apply(fix, pair, &plan, record, errant)?;
        // A replaced row is two changes (its delete and its insert, not next to each other
        // since a step's deletes run first): left alone, it is one row.
        let mut seen = std::collections::HashSet::new();
        report.left_alone.retain(|k| seen.insert(k.clone()));
        applied = Some(report);
    }
    let left = match applied.is_some() {
        true => remaining(&tables, &mut source, &mut replica)?,
        // Nothing written: the keys whose versions, as just read, differ (a key of the
        // report that agrees by now is not left different).
        false => tables
            .iter()
            .flat_map(|t| &t.rows)
            .filter(|p| p.source != p.replica)
            .count(),
    };
    if let Some(a) = &applied {
        journal_end(fix, a, left)?;
    }
    if !fix.dry_run {
        // Acted on: the next resync verifies again.
        saved::forget(&saved::dir(), &report.source, &report.replica);
    }
    let code = match (fix.dry_run, left == 0 && refused.is_empty()) {
        (true, _) => exit::OK,
        (false, true) => exit::OK,
        (false, false) => exit::DRIFT,
    };
    let done = Resynced {
        report,
        drift_from,
        refused,
        warnings,
        plan,
        dry_run: fix.dry_run,
        applied,
        remaining: left,
    };
    Ok((done, code))
}

/// A dry run shows what the preflight of a real run would refuse (triggers, child rows,
/// read_only, privileges), each as a warning: the facts the plan rests on, checked now.
fn preflight_problems(fix: &Fix, pair: &Pair, plan: &Plan) -> Vec<String> {
    let mut nodes = Nodes::new(vec![pair.replica.clone(), pair.source.clone()]);
    let accept = crate::repair::preflight::Accept {
        triggers: fix.allow_triggers,
        errant: fix.allow_errant_gtid,
    };
    match crate::repair::preflight::check_with(plan, &mut nodes, &[], accept) {
        Ok(()) => Vec::new(),
        Err(e) => e
            .problems
            .into_iter()
            .map(|p| format!("a real run's preflight would refuse: {p}"))
            .collect(),
    }
}

/// The plan as a resync's journal keeps it, with the drift verify found.
fn plan_record(plan: &Plan, tables: &[TableRows], verify: &model::Summary) -> Body {
    let tables: Vec<TableRef> = tables.iter().map(|t| t.table.clone()).collect();
    let mut body = record::plan(plan, RunKind::Resync, &tables);
    if let Body::Plan(p) = &mut body {
        p.drift = Some(format!(
            "{} drifted table(s): {} row(s) missing on the replica, {} extra, {} different",
            verify.drifted, verify.missing, verify.extra, verify.different
        ));
    }
    body
}

/// How the resync ended, journaled beside its rows: the rows still differing, compared again.
fn journal_end(fix: &Fix, applied: &ApplyReport, left: usize) -> Result<()> {
    let path = fix.journal.clone().unwrap_or_else(journal::default_path);
    let end = Body::Verification(VerificationRecord {
        end: if left == 0 {
            RunEnd::Repaired
        } else {
            RunEnd::Differs
        },
        resumed: Vec::new(),
        rows_agree: Some(left == 0),
        rows_differ: match left {
            0 => Vec::new(),
            n => vec![format!("{n} row(s) still differ (run verify again)")],
        },
        left_alone: applied.left_alone.clone(),
        journaled_rows: applied.journaled_rows,
        notes: Vec::new(),
    });
    Journal::new(&path)?.append_records(&[Record::new(&applied.fingerprint, end)])?;
    Ok(())
}

fn apply(fix: &Fix, pair: &Pair, plan: &Plan, record: Body, errant: bool) -> Result<ApplyReport> {
    let journal_path = fix.journal.clone().unwrap_or_else(journal::default_path);
    let mut journal = Journal::new(&journal_path)?;
    for note in crate::repair::session::recover_read_only(&mut journal, &pair.replica)? {
        eprintln!("replmend: {note}");
    }
    let specs = vec![pair.replica.clone(), pair.source.clone()];
    let _lock = RepairLock::acquire(&[&pair.replica, &pair.source])?;
    let mut nodes = Nodes::new(specs);
    let accept = crate::repair::preflight::Accept {
        triggers: fix.allow_triggers,
        errant,
    };
    crate::repair::preflight::check_with(plan, &mut nodes, &[], accept)?;
    let what = [
        "resync".to_string(),
        pair.source.endpoint(),
        pair.replica.endpoint(),
    ];
    super::apply_plan(&what, &mut nodes, &mut journal, plan, vec![record])
}

fn text(r: &ResyncReport<'_>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "resync {} (source) and {} (replica): {} drifted table(s), {} missing, {} extra, {} different row(s)",
        r.source, r.replica, r.verify.drifted, r.verify.missing, r.verify.extra, r.verify.different
    );
    for why in &r.refused {
        let _ = writeln!(out, "left alone: {why}");
    }
    for w in &r.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    if r.verify.filtered > 0 {
        let _ = writeln!(
            out,
            "not compared: {} table(s) the replica's replication filters leave out (resync never writes them)",
            r.verify.filtered
        );
    }
    if r.plan.steps.is_empty() {
        let verified_now = matches!(r.drift_from, DriftFrom::Verified);
        out.push_str(match (r.refused.is_empty(), r.verify.filtered) {
            (true, 0) if !verified_now => {
                "nothing to change: the rows the report named agree by now (rows it did not name were not compared again)\n"
            }
            (true, 0) => "nothing to change: the rows already agree\n",
            (true, _) => "nothing to change in the tables compared\n",
            (false, _) => "nothing else to change: the tables left alone still differ\n",
        });
        return out;
    }
    if r.dry_run || r.applied.is_none() {
        out.push_str(&plan_text(r.plan));
    }
    match (r.dry_run, r.applied) {
        (true, _) => out.push_str("Dry run: nothing was changed.\n"),
        (false, Some(a)) => {
            let _ = writeln!(
                out,
                "{} row(s) journaled in {} before they changed",
                a.journaled_rows, a.journal
            );
            for k in &a.left_alone {
                let _ = writeln!(out, "left alone (changed since it was read): {k}");
            }
            let _ = writeln!(
                out,
                "{}",
                match r.remaining {
                    0 =>
                        "the rows resync wrote now agree on both nodes (compared again)".to_string(),
                    n => format!("{n} row(s) still differ (run verify again)"),
                }
            );
        }
        (false, None) => {}
    }
    out
}
