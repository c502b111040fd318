//! `replmend repair`: diagnose, plan, confirm (wizard or --yes), then apply with the journal,
//! the lock, the fingerprint re-check and the privilege check; verify; repeat with
//! --until-healthy.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use mysql::prelude::Queryable;
use serde::Serialize;

use super::Outcome;
use super::plan::{PlanReport, make, playbooks, policy, report_text};
use crate::cli::{Format, RepairArgs};
use crate::conn::{ConnSpec, Server};
use crate::diagnosis::Diagnosis;
use crate::exit::{self, Coded};
use crate::journal::{self, Journal};
use crate::planner::playbook::{Playbook, StepTemplate};
use crate::planner::{Plan, PlanSet, Policy, RemedyId, Winner};
use crate::repair::apply::{Applier, ApplyReport, Nodes, StepResult};
use crate::repair::lock::RepairLock;
use crate::repair::privileges::{self, Need};
use crate::repair::verify::Resumed;
use crate::schema;

#[derive(Debug, Serialize)]
struct Incident {
    fingerprint: String,
    table: String,
    errno: u32,
    remedy: RemedyId,
    winner: Option<String>,
    plan: Plan,
    applied: ApplyReport,
}

#[derive(Debug, Serialize)]
struct RepairReport {
    schema: &'static str,
    /// repaired | stopped_again | nothing_to_do
    outcome: &'static str,
    message: String,
    incidents: Vec<Incident>,
}

/// The incident to work on: this replica's, or, in a dual-master pair whose replica is
/// already running again (a repair interrupted halfway), its source's — with the winner
/// named from that side.
fn find_incident(
    spec: &ConnSpec,
    args: &RepairArgs,
    policy: &Policy,
) -> Result<Option<(Diagnosis, ConnSpec, Policy)>> {
    let t = &args.target;
    match super::diagnose::diagnose(spec, t.source.as_deref(), t.channel.as_deref()) {
        Ok(d) => Ok(Some((d, spec.clone(), policy.clone()))),
        Err(e) if exit::for_error(&e) == exit::OK => {
            let mut replica = Server::connect(spec)?;
            let report = crate::status::read_status(&mut replica)?;
            for ch in &report.channels {
                let src = super::connect::other_spec(
                    t.source.as_deref(),
                    spec,
                    &ch.source_host,
                    ch.source_port,
                )?;
                let Ok(mut s) = Server::connect(&src) else {
                    continue;
                };
                // A direction restarted by an interrupted repair may still be applying: let it
                // finish, so the other side is judged on the rows as they will be.
                if ch.sql_thread == crate::status::model::ThreadState::Running {
                    let target = crate::repair::verify::binlog_end(&mut s)?;
                    crate::repair::verify::wait_resumed(
                        &mut replica,
                        &ch.name,
                        target,
                        Duration::from_secs(args.timeout),
                    )?;
                }
                let Ok(sr) = crate::status::read_status(&mut s) else {
                    continue;
                };
                let stopped_on_us = sr.channels.iter().any(|c| {
                    c.health == crate::status::Health::SqlError
                        && (c.source_server_id == Some(replica.server_id)
                            || c.source_port == spec.port)
                });
                if stopped_on_us {
                    let d = super::diagnose::diagnose_with_source(
                        &src,
                        super::diagnose::SourceAt::Spec(spec),
                        None,
                    )?;
                    let winner = match &policy.winner {
                        Winner::Source => Winner::Replica,
                        Winner::Replica => Winner::Source,
                        w => w.clone(),
                    };
                    return Ok(Some((
                        d,
                        src,
                        Policy {
                            winner,
                            ..policy.clone()
                        },
                    )));
                }
            }
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn needs(step_action: StepTemplate, gtid: bool) -> Vec<Need> {
    match step_action {
        StepTemplate::StopApplier | StepTemplate::StartApplier => vec![Need::ControlReplication],
        StepTemplate::DeleteConflictingRows | StepTemplate::InsertMissingRows => {
            vec![Need::SqlLogBin, Need::RowWrite]
        }
        StepTemplate::SkipTransaction if gtid => vec![Need::GtidPosition],
        StepTemplate::SkipTransaction => vec![Need::SkipCounter],
        StepTemplate::Verify => vec![],
    }
}

fn check_privileges(plan: &Plan, nodes: &mut Nodes) -> Result<()> {
    let mut problems = Vec::new();
    let endpoints: std::collections::BTreeSet<&str> =
        plan.steps.iter().map(|s| s.endpoint.as_str()).collect();
    for ep in endpoints {
        let server = nodes.get(ep)?;
        let grants: Vec<String> = server.conn.query("SHOW GRANTS FOR CURRENT_USER()")?;
        let wanted: Vec<Need> = plan
            .steps
            .iter()
            .filter(|s| s.endpoint == ep)
            .flat_map(|s| needs(s.action, s.gtid.is_some()))
            .collect();
        for (need, options) in privileges::missing(&wanted, server.flavor, &grants) {
            problems.push(format!("{ep}: {need:?} needs {}", options.join(" or ")));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Coded(
            exit::REFUSED,
            format!(
                "missing privileges, nothing was changed: {}",
                problems.join("; ")
            ),
        )
        .into())
    }
}

fn specs_for(d: &Diagnosis, replica: &ConnSpec, source_dsn: Option<&str>) -> Result<Vec<ConnSpec>> {
    let mut specs = vec![replica.clone()];
    if let Some(src) = &d.source {
        let (host, port) =
            crate::conn::spec::split_endpoint(&src.endpoint).context("source endpoint")?;
        specs.push(super::connect::other_spec(source_dsn, replica, host, port)?);
    }
    Ok(specs)
}

/// Both nodes hold the same version of every repaired row.
fn rows_agree(d: &Diagnosis, nodes: &mut Nodes) -> Result<bool> {
    let Some(src) = &d.source else {
        return Ok(false);
    };
    // Each node's table definition once, then every repaired row by its key.
    let mut versions: [Vec<Option<crate::diagnosis::Row>>; 2] = Default::default();
    for (side, ep) in [&d.replica.endpoint, &src.endpoint].into_iter().enumerate() {
        let server = nodes.get(ep)?;
        let sch = schema::load(&mut server.conn, ep, &d.table)?;
        for c in d.conflicts.iter().chain(&d.upcoming) {
            versions[side].push(super::diagnose::fetch_row(server, &sch, &c.key)?);
        }
    }
    Ok(versions[0] == versions[1])
}

fn print_step(r: &StepResult) {
    eprintln!(
        "  step {:>2} [{}] {} — {}",
        r.step, r.endpoint, r.description, r.outcome
    );
}

struct Session<'a> {
    args: &'a RepairArgs,
    /// Batch mode: how many following transactions to read ahead for the same conflicts.
    lookahead: usize,
    playbooks: Vec<Playbook>,
    journal: Journal,
}

impl Session<'_> {
    /// Applies one planned incident after the safety checks; returns what happened.
    fn apply_one(
        &mut self,
        d: &Diagnosis,
        ps: &PlanSet,
        replica: &ConnSpec,
        policy: &Policy,
    ) -> Result<Incident> {
        let plan = ps.plan.clone().ok_or_else(|| {
            Coded(
                exit::REFUSED,
                "no remedy applies to this incident; nothing was changed".into(),
            )
        })?;
        let specs = specs_for(d, replica, self.args.target.source.as_deref())?;
        let spec_refs: Vec<&ConnSpec> = specs.iter().collect();
        let _lock =
            RepairLock::acquire(&spec_refs).map_err(|e| Coded(exit::REFUSED, e.to_string()))?;
        // The incident must still be the one the plan was made for.
        let again = super::diagnose::diagnose(
            replica,
            self.args.target.source.as_deref(),
            self.args.target.channel.as_deref(),
        )
        .map_err(|e| {
            Coded(
                exit::REFUSED,
                format!("the incident changed since it was diagnosed ({e}); nothing was changed"),
            )
        })?;
        let mut again = again;
        if self.lookahead > 0
            && policy.remedy.is_none_or(|r| r == RemedyId::Overwrite)
            && let Some(source) = specs.get(1)
        {
            super::diagnose::look_ahead(&mut again, replica, source, self.lookahead)?;
        }
        let again_ps = make(&again, &self.playbooks, policy)?;
        if again.fingerprint != d.fingerprint
            || again_ps.reverse_fingerprint != ps.reverse_fingerprint
        {
            return Err(Coded(
                exit::REFUSED,
                format!(
                    "the replica moved on since the diagnosis (incident {} is now {}); nothing was changed",
                    d.fingerprint, again.fingerprint
                ),
            )
            .into());
        }
        let plan = again_ps.plan.clone().unwrap_or(plan);
        let mut nodes = Nodes::new(specs);
        check_privileges(&plan, &mut nodes)?;
        let mut printer = |r: &StepResult| print_step(r);
        let mut applier = Applier {
            nodes: &mut nodes,
            journal: &mut self.journal,
            fingerprint: d.fingerprint.clone(),
            timeout: Duration::from_secs(self.args.timeout),
            on_step: &mut printer,
        };
        let mut applied = applier.apply(&plan)?;
        if applied.resumed.values().all(|r| *r == Resumed::CaughtUp) {
            applied.rows_agree = Some(rows_agree(&again, &mut nodes)?);
        }
        Ok(Incident {
            fingerprint: d.fingerprint.clone(),
            table: d.table.to_string(),
            errno: d.error.errno,
            remedy: plan.remedy,
            winner: plan.winner_endpoint.clone(),
            plan,
            applied,
        })
    }
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

pub fn run(args: &RepairArgs, format: Format) -> Result<Outcome> {
    let spec = super::connect::replica_spec(&args.target.replica)?;
    let base_policy = policy(&args.policy)?;
    let pbs = playbooks(args.policy.playbooks.as_deref())?;
    let interactive = !args.yes && !args.dry_run && std::io::stdin().is_terminal();
    if !args.yes && !args.dry_run && !interactive {
        // Decide before touching anything: no prompt can be answered here.
        return Err(Coded(
            exit::REFUSED,
            "no terminal to confirm on: pass --yes to apply, or --dry-run to see the plan; nothing was changed".into(),
        )
        .into());
    }
    let Some((d, target, pol)) = find_incident(&spec, args, &base_policy)? else {
        return Ok(Outcome {
            output: super::render(
                format,
                &serde_json::json!({"schema": "replmend.repair/1", "outcome": "nothing_to_do", "incidents": []}),
                |_| "replication is healthy; nothing to repair\n".to_string(),
            ),
            code: exit::OK,
        });
    };
    if args.dry_run {
        let ps = make(&d, &pbs, &pol)?;
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
    let journal_path = args.journal.clone().unwrap_or_else(journal::default_path);
    let mut session = Session {
        args,
        lookahead: if args.until_healthy { args.max } else { 0 },
        playbooks: pbs,
        journal: Journal::open(&journal_path)?,
    };
    if interactive {
        return super::wizard::run(&mut session_handle(&mut session), d, target, pol, format);
    }
    let mut incidents = Vec::new();
    let (mut d, mut target, mut pol) = (d, target, pol);
    let bar = ProgressBar::new(args.max as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos} incident(s)")
            .expect("static")
            .progress_chars("=> "),
    );
    let (outcome, message) = loop {
        let ps = make(&d, &session.playbooks, &pol)?;
        if ps.plan.is_none() {
            break (
                "stopped_again",
                format!(
                    "incident {} on {} is not covered by the policy: no remedy applies",
                    d.fingerprint, d.table
                ),
            );
        }
        if !args.allow_data_loss
            && let Some(why) = data_loss_refusal(&ps)
        {
            if incidents.is_empty() {
                return Err(Coded(exit::REFUSED, why).into());
            }
            break ("stopped_again", why);
        }
        bar.set_message(format!(
            "{} on {}",
            ps.plan
                .as_ref()
                .map(|p| p.remedy.to_string())
                .unwrap_or_default(),
            d.table
        ));
        eprintln!(
            "replmend: incident {} on {} ({}): applying {}",
            d.fingerprint,
            d.table,
            d.error.errno,
            ps.plan
                .as_ref()
                .map(|p| p.remedy.to_string())
                .unwrap_or_default()
        );
        let inc = session.apply_one(&d, &ps, &target, &pol)?;
        let stopped_again = inc
            .applied
            .resumed
            .values()
            .any(|r| matches!(r, Resumed::StoppedAgain { .. }));
        incidents.push(inc);
        bar.inc(1);
        if !stopped_again {
            break (
                "repaired",
                "replication is running and caught up".to_string(),
            );
        }
        if !args.until_healthy || incidents.len() >= args.max {
            break (
                "stopped_again",
                "replication stopped again on another incident".to_string(),
            );
        }
        match find_incident(&spec, args, &base_policy)? {
            Some((nd, nt, np)) => (d, target, pol) = (nd, nt, np),
            None => {
                break (
                    "repaired",
                    "replication is running and caught up".to_string(),
                );
            }
        }
    };
    bar.finish_and_clear();
    let report = RepairReport {
        schema: "replmend.repair/1",
        outcome,
        message,
        incidents,
    };
    let code = if outcome == "repaired" {
        exit::OK
    } else {
        exit::REPLICATION_ERROR
    };
    let output = super::render(format, &report, repair_text);
    Ok(Outcome { output, code })
}

fn repair_text(r: &RepairReport) -> String {
    let mut out = String::new();
    for i in &r.incidents {
        out.push_str(&format!(
            "incident {} on {} (error {}): {}{}\n",
            i.fingerprint,
            i.table,
            i.errno,
            i.remedy,
            i.winner
                .as_ref()
                .map(|w| format!(", winner {w}"))
                .unwrap_or_default()
        ));
        for s in &i.applied.steps {
            out.push_str(&format!(
                "  {:>2}. [{}] {} — {}\n",
                s.step, s.endpoint, s.description, s.outcome
            ));
        }
        if i.applied.journaled_rows > 0 {
            out.push_str(&format!(
                "  journal: {} row(s) in {}\n",
                i.applied.journaled_rows, i.applied.journal
            ));
        }
        if let Some(agree) = i.applied.rows_agree {
            out.push_str(&format!(
                "  rows identical on both nodes: {}\n",
                if agree { "yes" } else { "NO" }
            ));
        }
    }
    out.push_str(&format!("{}: {}\n", r.outcome, r.message));
    out
}

/// What the wizard needs from a repair session.
pub struct SessionHandle<'s, 'a> {
    session: &'s mut Session<'a>,
}

fn session_handle<'s, 'a>(session: &'s mut Session<'a>) -> SessionHandle<'s, 'a> {
    SessionHandle { session }
}

impl SessionHandle<'_, '_> {
    pub fn plan(&self, d: &Diagnosis, policy: &Policy) -> Result<PlanSet> {
        make(d, &self.session.playbooks, policy)
    }

    pub fn apply(
        &mut self,
        d: &Diagnosis,
        ps: &PlanSet,
        target: &ConnSpec,
        policy: &Policy,
    ) -> Result<(bool, String)> {
        let inc = self.session.apply_one(d, ps, target, policy)?;
        let stopped = inc
            .applied
            .resumed
            .values()
            .any(|r| matches!(r, Resumed::StoppedAgain { .. }));
        let text = repair_text(&RepairReport {
            schema: "replmend.repair/1",
            outcome: if stopped { "stopped_again" } else { "repaired" },
            message: if stopped {
                "replication stopped again".into()
            } else {
                "replication is running and caught up".into()
            },
            incidents: vec![inc],
        });
        Ok((stopped, text))
    }

    pub fn next_incident(
        &self,
        spec: &ConnSpec,
        policy: &Policy,
    ) -> Result<Option<(Diagnosis, ConnSpec, Policy)>> {
        find_incident(spec, self.session.args, policy)
    }

    pub fn replica_spec(&self) -> Result<ConnSpec> {
        super::connect::replica_spec(&self.session.args.target.replica)
    }
}
