//! `replmend repair`: glue from the command line to a repair session — diagnose, plan, show
//! or confirm (wizard or --yes), apply, and repeat with --until-healthy.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use super::Outcome;
use super::plan::{PlanReport, playbooks, policy, report_text};
use crate::cli::{Format, RepairArgs};
use crate::conn::ConnSpec;
use crate::diagnosis::Diagnosis;
use crate::exit::{self, Coded};
use crate::journal::{self, Journal};
use crate::planner::PlanSet;
use crate::planner::Policy;
use crate::repair::session::{self, Incident, Options, RepairOutcome, Session, Target};

#[derive(Debug, Serialize)]
pub struct RepairReport {
    pub schema: &'static str,
    pub outcome: RepairOutcome,
    pub message: String,
    pub incidents: Vec<Incident>,
    /// --verify-table: the repaired tables compared between the nodes afterwards.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<crate::verify::model::Report>,
}

/// The incidents' tables (each once) verified between the replica and its source.
pub fn verify_tables(
    spec: &ConnSpec,
    source: Option<&ConnSpec>,
    incidents: &[Incident],
) -> Result<crate::verify::model::Report> {
    let mut tables: Vec<crate::vocab::TableRef> = Vec::new();
    for i in incidents {
        if !tables.contains(&i.table_ref) {
            tables.push(i.table_ref.clone());
        }
    }
    let pair = crate::verify::Pair::of_replica(spec, source)?;
    let opts = crate::verify::Options {
        tables,
        progress: std::io::stderr().is_terminal(),
        ..Default::default()
    };
    let report = crate::verify::run(&pair, &opts)?;
    super::verify::keep(&report, &opts);
    Ok(report)
}

fn data_loss_refusal(ps: &PlanSet) -> Option<String> {
    let plan = ps.plan.as_ref()?;
    let option = ps.options.iter().find(|o| o.remedy == plan.remedy)?;
    option.loses_data().then(|| {
        format!(
            "remedy {} loses data ({}); pass --allow-data-loss to accept; nothing was changed",
            plan.remedy, option.loses
        )
    })
}

fn options(args: &RepairArgs, spec: &ConnSpec, interactive: bool) -> Result<Options> {
    Ok(Options {
        source: super::connect::source_spec(args.target.source.as_deref(), spec)?,
        channel: args.target.channel.clone(),
        timeout: Duration::from_secs(args.timeout),
        lookahead: if args.until_healthy { args.max } else { 0 },
        allow_data_loss: args.allow_data_loss,
        allow_triggers: args.policy.allow_triggers,
        allow_errant_gtid: args.allow_errant_gtid,
        // For the journal's postmortem (the cause); `--origin-budget 0` skips the search.
        origin_budget: Some(args.target.origin_budget).filter(|b| b.bytes > 0 && b.seconds > 0),
        // Scripted: one diagnosis, made under the repair lock (no human thinks in between).
        diagnose_under_lock: !interactive && !args.dry_run,
    })
}

pub fn run(args: &RepairArgs, format: Format) -> Result<Outcome> {
    let outcome = repair(args, format);
    // A scripted run that diagnosed under the lock and then refused or found nothing to do
    // still holds it on the diagnosis's sessions: released now, answered, before exit.
    crate::repair::lock::release_pooled();
    outcome
}

fn repair(args: &RepairArgs, format: Format) -> Result<Outcome> {
    let spec = super::connect::replica_spec(&args.target.replica)?;
    let base_policy = policy(&args.policy);
    let pbs = playbooks(args.policy.playbooks.as_deref())?;
    // Decided before touching anything: no prompt can be answered without a terminal.
    let interactive = super::interactive(args.yes, args.dry_run)?;
    if args.policy.remedy == Some(crate::planner::RemedyId::InjectErrant) {
        return super::errant::run(args, format);
    }
    let journal_path = args.journal.clone().unwrap_or_else(journal::default_path);
    // Checked now, created only when the first row is journaled.
    let mut journal = Journal::new(&journal_path)?;
    let opts = options(args, &spec, interactive)?;
    if !args.dry_run {
        for note in session::recover_read_only(&mut journal, &spec)? {
            eprintln!("replmend: {note}");
        }
    }
    crate::timing::mark("finding the incident");
    let Some((d, target, pol)) = session::find_incident(&spec, &opts, &base_policy)? else {
        return Ok(Outcome {
            output: super::render(
                format,
                &serde_json::json!({"schema": "replmend.repair/1", "outcome": "nothing_to_do", "incidents": []}),
                |_| match &args.target.channel {
                    // Another channel of a multi-source replica may still be stopped.
                    Some(c) => format!("channel '{c}' is healthy; nothing to repair\n"),
                    None => "replication is healthy; nothing to repair\n".to_string(),
                },
            ),
            code: exit::OK,
        });
    };
    crate::timing::mark("diagnosed");
    let pol = session::with_history(&journal, &d, pol)?;
    if args.dry_run {
        let mut d = d;
        let ps = session::dry_run_plan(&mut d, &target, &opts, &pbs, &pol)?;
        let report = PlanReport {
            schema: "replmend.plan-report/1",
            diagnosis: &d,
            plan: &ps,
        };
        let output = super::render(format, &report, |r| {
            format!(
                "{}\nDry run: nothing was changed.\n",
                report_text(r.diagnosis, r.plan)
            )
        });
        return Ok(Outcome {
            output,
            code: exit::OK,
        });
    }
    let mut session = Session {
        options: opts,
        playbooks: pbs,
        journal,
        on_step: super::print_step,
    };
    if interactive {
        return super::wizard::run(&mut session, &spec, d, target, pol, format);
    }
    scripted(args, &mut session, &spec, (d, target, pol), format)
}

/// What the scripted loop does after one incident.
enum Next {
    Done(RepairOutcome, String),
    Continue,
}

/// Plans and applies one incident under the policy; says whether to go on.
fn scripted_one(
    args: &RepairArgs,
    session: &mut Session,
    incident: &(Diagnosis, Target, Policy),
    incidents: &mut Vec<Incident>,
) -> Result<Next> {
    let (d, target, pol) = incident;
    let ps = crate::planner::plan(d, &session.playbooks, pol)?;
    let Some(plan) = &ps.plan else {
        let why = format!(
            "incident {} on {} is not covered by the policy: no remedy applies",
            d.fingerprint, d.table
        );
        return Ok(Next::Done(RepairOutcome::StoppedAgain, why));
    };
    if !args.allow_data_loss
        && let Some(why) = data_loss_refusal(&ps)
    {
        if incidents.is_empty() {
            return Err(Coded(exit::REFUSED, why).into());
        }
        return Ok(Next::Done(RepairOutcome::StoppedAgain, why));
    }
    eprintln!(
        "replmend: incident {} on {} ({}): applying {}",
        d.fingerprint, d.table, d.error.errno, plan.remedy
    );
    let inc = session.apply_one(d, &ps, target, pol)?;
    let stopped_again = inc.stopped_again();
    incidents.push(inc);
    Ok(if !stopped_again {
        Next::Done(RepairOutcome::Repaired, CAUGHT_UP.into())
    } else if !args.until_healthy || incidents.len() >= args.max {
        Next::Done(
            RepairOutcome::StoppedAgain,
            "replication stopped again on another incident".into(),
        )
    } else {
        Next::Continue
    })
}

const CAUGHT_UP: &str = "replication is running and caught up";

fn scripted(
    args: &RepairArgs,
    session: &mut Session,
    spec: &ConnSpec,
    first: (Diagnosis, Target, Policy),
    format: Format,
) -> Result<Outcome> {
    let base_policy = policy(&args.policy);
    let mut incidents = Vec::new();
    let mut incident = first;
    let bar = ProgressBar::new(args.max as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos} incident(s)")
            .expect("static")
            .progress_chars("=> "),
    );
    let (outcome, message) = loop {
        bar.set_message(format!("{}", incident.0.table));
        let next = scripted_one(args, session, &incident, &mut incidents)?;
        bar.inc(1);
        if let Next::Done(outcome, message) = next {
            break (outcome, message);
        }
        match session.find(spec, &base_policy)? {
            Some(next) => incident = next,
            None => break (RepairOutcome::Repaired, CAUGHT_UP.into()),
        }
    };
    bar.finish_and_clear();
    let verify = match (args.verify_table, outcome) {
        (true, RepairOutcome::Repaired) => Some(verify_tables(
            spec,
            session.options.source.as_ref(),
            &incidents,
        )?),
        _ => None,
    };
    let drifted = verify.as_ref().is_some_and(|v| v.drifted());
    let report = RepairReport {
        schema: "replmend.repair/1",
        outcome,
        message,
        incidents,
        verify,
    };
    let code = match outcome {
        RepairOutcome::Repaired | RepairOutcome::NothingToDo if drifted => exit::DRIFT,
        RepairOutcome::Repaired | RepairOutcome::NothingToDo => exit::OK,
        RepairOutcome::StoppedAgain => exit::REPLICATION_ERROR,
    };
    Ok(Outcome {
        output: super::render(format, &report, repair_text),
        code,
    })
}

/// Whether the incident's rows agree on both nodes, as compared after the repair: "yes" only
/// when compared; the differing keys and the command that brings them together otherwise.
fn agreement_text(i: &Incident) -> String {
    let differ = &i.applied.rows_differ;
    match i.applied.rows_agree {
        Some(true) => "  rows identical on both nodes: yes (compared)\n".into(),
        None => "  rows identical on both nodes: unknown (not compared)\n".into(),
        Some(false) => {
            let shown: Vec<&str> = differ.iter().take(5).map(String::as_str).collect();
            format!(
                "  rows identical on both nodes: NO — {} row(s) differ ({}{}); the remedy left the versions apart: `replmend resync --tables {}` with the same connection options brings them together\n",
                differ.len(),
                shown.join("; "),
                if differ.len() > shown.len() {
                    "; …"
                } else {
                    ""
                },
                i.table_ref.cli_name()
            )
        }
    }
}

/// The report of what ran. The steps were already printed (stderr) as they ran; stdout gets
/// the summary: per incident its remedy, journal and verification, then the outcome.
pub fn repair_text(r: &RepairReport) -> String {
    let mut out = String::new();
    for i in &r.incidents {
        out.push_str(&format!(
            "incident {} on {} (error {}): {}{} — {} step(s) run\n",
            i.fingerprint,
            i.table,
            i.errno,
            i.remedy,
            i.winner
                .as_ref()
                .map(|w| format!(", winner {w}"))
                .unwrap_or_default(),
            i.applied.steps.len()
        ));
        if i.applied.journaled_rows > 0 {
            out.push_str(&format!(
                "  journal: {} row(s) in {}\n",
                i.applied.journaled_rows, i.applied.journal
            ));
        }
        out.push_str(&agreement_text(i));
        for a in &i.plan.advice {
            out.push_str(&format!("  advice: {a}\n"));
        }
    }
    let outcome = match r.outcome {
        RepairOutcome::Repaired => "repaired",
        RepairOutcome::StoppedAgain => "stopped_again",
        RepairOutcome::NothingToDo => "nothing_to_do",
    };
    if let Some(v) = &r.verify {
        out.push('\n');
        out.push_str(&super::verify::text(v));
    }
    out.push_str(&format!("{outcome}: {}\n", r.message));
    out
}
