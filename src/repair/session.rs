//! A repair session: find the incident, and for each one take the lock, re-diagnose and
//! compare fingerprints, run the preflight, apply the plan, verify. Used by scripted
//! `repair --yes` and by the wizard alike; `ops::repair` only glues arguments to it.

use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

use super::apply::{Applier, ApplyReport, Nodes, StepResult};
use super::verify::Resumed;
use crate::binlog::fetch::Following;
use crate::conn::{ConnSpec, Server};
use crate::diagnosis::Diagnosis;
use crate::inspect::Diagnosed;
use crate::journal::{self, Entry, Journal};
use crate::planner::plan::StepKind;
use crate::planner::playbook::Playbook;
use crate::planner::{Plan, PlanSet, Policy, RemedyId, Winner};
use crate::report::record::{self, Record, RunEnd, RunKind, VerificationRecord};
use crate::status::Health;
use crate::status::topology::{Named, Topology};
use crate::value::Cell;
use crate::vocab::Endpoint;

/// What the session needs besides the policy.
#[derive(Debug, Clone)]
pub struct Options {
    /// The source named on the command line (resolved by `ops`), when it is not reached at
    /// the address the replica's status gives with the replica's credentials.
    pub source: Option<ConnSpec>,
    pub channel: Option<String>,
    pub timeout: Duration,
    /// Batch mode: how many following transactions to read ahead for the same conflicts.
    pub lookahead: usize,
    /// A remedy that loses data may run (checked again on the plan actually applied).
    pub allow_data_loss: bool,
    /// Rows may be written in tables with triggers on the written node.
    pub allow_triggers: bool,
    /// Rows may be written with the binary log on where it cannot be turned off (a managed
    /// service), leaving an errant GTID on that node.
    pub allow_errant_gtid: bool,
    /// Search the conflicting rows' origins (and so the cause) within this budget when the
    /// incident is found: the journal records them for the postmortem. None: not searched.
    pub origin_budget: Option<crate::binlog::origin::Budget>,
    /// A scripted run: the repair lock is taken before the diagnosis (held by the sessions
    /// the repair then uses), so the incident is diagnosed once, under the lock, and not
    /// re-checked; the origins are searched beside the repair's own reads. Not for a wizard,
    /// whose human may think for minutes, nor a dry run, which takes no lock. The diagnosis's
    /// sessions wait in the idle pool with the lock until the repair takes them or the
    /// process exits: for a run that repairs right after, not for a long-lived caller.
    pub diagnose_under_lock: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RepairOutcome {
    /// Replication runs and has caught up.
    Repaired,
    /// It stopped again (another incident, or one the policy does not cover).
    StoppedAgain,
    NothingToDo,
}

/// A channel stopped without an applier error: not healthy, and nothing replmend can repair.
#[derive(Debug, thiserror::Error)]
#[error(
    "{endpoint}: channel '{channel}' is not running ({why}) but stopped on no applier error: nothing replmend can repair; see `replmend status`"
)]
pub struct NotRunning {
    pub endpoint: Endpoint,
    pub channel: String,
    pub why: &'static str,
}

/// Why a repair refused to change anything (the safety checks of a session).
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("no remedy applies to this incident; nothing was changed")]
    NoRemedy,
    /// Looking at the incident again under the lock failed (its words).
    #[error("the incident changed since it was diagnosed ({0}); nothing was changed")]
    Changed(String),
    #[error(
        "the replica moved on since the diagnosis (incident {was} is now {now}); nothing was changed"
    )]
    MovedOn { was: String, now: String },
    #[error("no remedy applies any more under the lock; nothing was changed")]
    NoRemedyUnderLock,
    #[error(
        "remedy {remedy} loses data ({loses}); pass --allow-data-loss to accept; nothing was changed"
    )]
    LosesData { remedy: RemedyId, loses: String },
}

#[derive(Debug, Serialize)]
pub struct Incident {
    pub fingerprint: String,
    pub table: String,
    /// The table, for verifying it afterwards.
    #[serde(skip)]
    pub table_ref: crate::vocab::TableRef,
    pub errno: u32,
    pub remedy: RemedyId,
    pub winner: Option<Endpoint>,
    pub plan: Plan,
    pub applied: ApplyReport,
}

impl Incident {
    pub fn stopped_again(&self) -> bool {
        self.applied
            .resumed
            .values()
            .any(|r| matches!(r, Resumed::StoppedAgain { .. }))
    }
}

/// The nodes of an incident: the replica stopped on it and how its source is reached (None:
/// the replica's credentials at the address the diagnosis names, see `specs_for`).
#[derive(Debug, Clone)]
pub struct Target {
    pub replica: ConnSpec,
    pub source: Option<ConnSpec>,
    /// Diagnosed on sessions holding the repair lock (`Options::diagnose_under_lock`).
    pub under_lock: bool,
}

impl Target {
    /// A replica whose source is reached at the address its status gives.
    pub fn replica(spec: &ConnSpec) -> Target {
        Target {
            replica: spec.clone(),
            source: None,
            under_lock: false,
        }
    }
}

pub struct Session {
    pub options: Options,
    pub playbooks: Vec<Playbook>,
    pub journal: Journal,
    pub on_step: fn(&StepResult),
}

/// The incident to work on: this replica's, or, in a dual-master pair whose replica is
/// already running again (a repair interrupted halfway), its source's — with the winner
/// named from that side.
pub fn find_incident(
    spec: &ConnSpec,
    options: &Options,
    policy: &Policy,
) -> Result<Option<(Diagnosis, Target, Policy)>> {
    let (source, channel) = (options.source.as_ref(), options.channel.as_deref());
    let lock = &mut super::under_lock::lock_both;
    let diagnosed = match options.origin_budget {
        _ if options.diagnose_under_lock => {
            crate::inspect::diagnose_guarded(spec, source, channel, lock)?
        }
        Some(budget) => crate::inspect::diagnose_with_origin(spec, source, channel, budget)?,
        None => crate::inspect::diagnose(spec, source, channel)?,
    };
    match diagnosed {
        Diagnosed::Stopped(d) => {
            let target = Target {
                replica: spec.clone(),
                source: options.source.clone(),
                under_lock: options.diagnose_under_lock,
            };
            Ok(Some((*d, target, policy.clone())))
        }
        Diagnosed::Healthy(_) => other_side(spec, options, policy),
    }
}

fn other_side(
    spec: &ConnSpec,
    options: &Options,
    policy: &Policy,
) -> Result<Option<(Diagnosis, Target, Policy)>> {
    let mut replica = Server::connect(spec)?;
    let report = crate::status::read_status(&mut replica)?;
    let named = options
        .source
        .as_ref()
        .map(|s| Named::new(s, options.channel.as_deref()));
    let topology = Topology::of(&replica.spec, &report, named);
    // --channel names the one channel to look at: another channel of a multi-source replica,
    // stopped or not, is not this run's business.
    let links: Vec<&crate::status::topology::Link> = topology
        .links
        .iter()
        .filter(|l| {
            options
                .channel
                .as_ref()
                .is_none_or(|n| l.channel.name == *n)
        })
        .collect();
    for link in &links {
        let (ch, src) = (&link.channel, &link.source);
        let Ok(mut s) = Server::connect(src) else {
            continue;
        };
        // A direction restarted by an interrupted repair may still be applying: let it
        // finish, so the other side is judged on the rows as they will be.
        if ch.sql_thread == crate::status::model::ThreadState::Running {
            let target = super::verify::binlog_end(&mut s)?;
            super::verify::wait_resumed(&mut replica, &ch.name, target, options.timeout)?;
        }
        let Ok(sr) = crate::status::read_status(&mut s) else {
            continue;
        };
        let stopped_on_us = topology
            .reverse_in(&sr)
            .is_some_and(|c| c.health == Health::SqlError);
        if stopped_on_us {
            let d = crate::inspect::diagnose(src, Some(spec), None)?.stopped()?;
            let winner = match &policy.winner {
                Winner::Source => Winner::Replica,
                Winner::Replica => Winner::Source,
                w => w.clone(),
            };
            let pol = Policy {
                winner,
                ..policy.clone()
            };
            let target = Target {
                replica: src.clone(),
                source: Some(spec.clone()),
                under_lock: false,
            };
            return Ok(Some((d, target, pol)));
        }
    }
    // Nothing stopped on an error anywhere: healthy, or stopped without an error — which is
    // not "nothing to do".
    if let Some(ch) = links
        .iter()
        .map(|l| &l.channel)
        .find(|c| c.health != Health::Healthy)
    {
        return Err(NotRunning {
            endpoint: report.server.endpoint.clone(),
            channel: ch.name.clone(),
            why: match ch.health {
                Health::IoError => "its receiver stopped on an error",
                _ => "a replication thread is stopped or still connecting",
            },
        }
        .into());
    }
    Ok(None)
}

/// The policy with what an interrupted run of this incident already did (rekey's
/// re-inserted records), so the plan shown and the plan applied resume it instead of
/// repeating it.
pub fn with_history(journal: &Journal, d: &Diagnosis, policy: Policy) -> Result<Policy> {
    Ok(Policy {
        rekeyed: journal::reinserted(journal.path(), &d.fingerprint)?,
        ..policy
    })
}

/// A run killed after lifting read_only left it off (recorded in this journal or in the
/// fixed ledger): put it back before anything else. A node that cannot be reached is named
/// with the statement to run there; it does not stop this run.
/// A pending lift on a node where another run holds the repair lock: that run's own.
#[derive(Debug, thiserror::Error)]
#[error("another replmend run holds the repair lock there")]
struct InUse;

pub fn recover_read_only(journal: &mut Journal, creds: &ConnSpec) -> Result<Vec<String>> {
    let ledger = journal::read_only_ledger();
    let mut notes = Vec::new();
    for (node, state) in journal::pending_read_only(&[journal.path(), &ledger])? {
        let statements = crate::flavor::Flavor::restore_read_only_any(state);
        let put_back = Server::connect(&creds.at(&node))
            .map_err(anyhow::Error::from)
            .and_then(|mut server| {
                // A run that lifted it and is still going holds the repair lock there (from
                // before its lift to after its restore): its lift is not left pending, and
                // putting read_only back under it would fail its writes. Only a lift whose
                // run is gone (its lock released with its connection) is recovered.
                if super::lock::held_elsewhere(&mut server)? {
                    return Err(anyhow::anyhow!(InUse));
                }
                for sql in server.flavor.restore_read_only(state) {
                    server
                        .run(&crate::sql::Statement::plain(sql))
                        .map_err(|e| anyhow::anyhow!(crate::describe::describe_mysql(&e)))?;
                }
                Ok(())
            });
        match put_back {
            Err(e) if e.downcast_ref::<InUse>().is_some() => {}
            Ok(()) => {
                journal.record_read_only(&Entry::read_only(
                    "recovery",
                    &node,
                    journal::Action::RestoreReadOnly,
                    state,
                ))?;
                notes.push(format!(
                    "{} was left off on {node} by an interrupted run: it is ON again",
                    state.variable()
                ));
            }
            Err(e) => notes.push(format!(
                "{} was left off on {node} by an interrupted run and could not be put back ({}): run {} there",
                state.variable(),
                crate::describe::message(&e),
                statements
            )),
        }
    }
    Ok(notes)
}

/// The nodes a plan for `d` may touch: the replica, and its source as the target reaches it.
fn specs_for(d: &Diagnosis, target: &Target) -> Vec<ConnSpec> {
    let mut specs = vec![target.replica.clone()];
    if let Some(src) = &d.source {
        specs.push(match &target.source {
            Some(s) => s.clone(),
            None => target.replica.at(&src.endpoint),
        });
    }
    specs
}

/// The source the diagnosis names: the plan's verification needs it even when no step runs
/// there, so the preflight checks it too.
fn source_endpoint(d: &Diagnosis) -> Vec<Endpoint> {
    d.source.iter().map(|s| s.endpoint.clone()).collect()
}

/// The keys of every row the plan changed (including rekeyed ones), each once, in groups of
/// the same columns: every row step of a plan changes the diagnosed table, and its keys are
/// looked up many at a time (a batch repair changes thousands); rekey's fresh keys may be
/// another key's.
fn changed_keys(plan: &Plan) -> Vec<Vec<Vec<(String, Cell)>>> {
    let mut seen = std::collections::HashSet::new();
    let mut groups: Vec<Vec<Vec<(String, Cell)>>> = Vec::new();
    for r in plan.steps.iter().flat_map(|s| s.rows()) {
        if !seen.insert(&r.key) {
            continue;
        }
        let same_columns = |g: &&mut Vec<Vec<(String, Cell)>>| {
            g[0].iter().map(|(c, _)| c).eq(r.key.iter().map(|(c, _)| c))
        };
        match groups.iter_mut().find(same_columns) {
            Some(g) => g.push(r.key.clone()),
            None => groups.push(vec![r.key.clone()]),
        }
    }
    groups
}

/// The keys to compare once repaired: every row the plan changed, and every conflicting key
/// of the incident (a skip or keep changes none, yet its rows may differ).
fn compared_keys(d: &Diagnosis, plan: &Plan) -> Vec<Vec<Vec<(String, Cell)>>> {
    let mut groups = changed_keys(plan);
    // A batch's thousands of conflicts are mostly the changed rows again: a set, not a scan
    // of the group per key (1,000 conflicts cost 9 ms of CPU that way).
    let mut seen: std::collections::HashSet<Vec<(String, Cell)>> =
        groups.iter().flatten().cloned().collect();
    for c in d.conflicts.iter().chain(&d.upcoming) {
        if !seen.insert(c.key.clone()) {
            continue;
        }
        let same_columns = |g: &&mut Vec<Vec<(String, Cell)>>| {
            g[0].iter().map(|(c, _)| c).eq(c.key.iter().map(|(c, _)| c))
        };
        match groups.iter_mut().find(same_columns) {
            Some(g) => g.push(c.key.clone()),
            None => groups.push(vec![c.key.clone()]),
        }
    }
    groups
}

/// Whether both nodes hold the same version of every compared row (None: nothing could be
/// compared), and the keys that differ.
fn rows_agree(
    d: &Diagnosis,
    plan: &Plan,
    nodes: &mut Nodes,
) -> Result<(Option<bool>, Vec<String>)> {
    let groups = compared_keys(d, plan);
    let Some(src) = d.source.as_ref().filter(|_| !groups.is_empty()) else {
        return Ok((None, Vec::new()));
    };
    let (replica, source) = nodes.pair(&d.replica.endpoint, &src.endpoint)?;
    let (a, b) = crate::inspect::rows_on_both(replica, source, &d.table, &groups)?;
    let differ: Vec<String> = groups
        .iter()
        .flatten()
        .zip(a.iter().zip(&b))
        .filter(|(_, (x, y))| x != y)
        .map(|(k, _)| super::apply::key_text(k))
        .collect();
    Ok((Some(differ.is_empty()), differ))
}

/// Batch mode (`--until-healthy`) reads ahead only for overwrite with the source's version:
/// it replaces every upcoming conflicting row with the source's, which no other remedy's
/// steps cover (a replica or newest:COLUMN winner is decided row by row, which the read-ahead
/// does not do).
fn reads_ahead(ps: &PlanSet, options: &Options) -> bool {
    options.lookahead > 0
        && ps.plan.as_ref().is_some_and(|p| {
            p.remedy == RemedyId::Overwrite && matches!(p.winner, None | Some(Winner::Source))
        })
}

/// The transactions after the incident's, when the plan reads ahead (else none).
fn following(
    d: &Diagnosis,
    ps: &PlanSet,
    specs: &[ConnSpec],
    options: &Options,
) -> Result<Vec<Following>> {
    match specs.get(1) {
        Some(source) if reads_ahead(ps, options) => {
            crate::inspect::following_transactions(d, source, options.lookahead)
        }
        _ => Ok(Vec::new()),
    }
}

/// The following transactions' conflicts of the same kind, added to the diagnosis so the
/// plan resolves them all in one stop/start.
fn read_ahead(d: &mut Diagnosis, following: &[Following], nodes: &mut Nodes) -> Result<()> {
    let Some(src) = &d.source else {
        return Ok(());
    };
    if following.is_empty() {
        return Ok(());
    }
    let (replica, source) = nodes.pair(&d.replica.endpoint, &src.endpoint)?;
    crate::inspect::look_ahead(d, following, replica, source)
}

/// The nodes where the plan shown has row steps or a GTID skip (each runs on a session of its
/// own): their sessions are opened ahead, in the background.
fn own_sessions(ps: &PlanSet) -> Vec<&Endpoint> {
    let mut nodes: Vec<&Endpoint> = Vec::new();
    for step in ps.plan.iter().flat_map(|p| &p.steps) {
        let own = !step.rows().is_empty() || matches!(step.kind, StepKind::Skip { .. });
        if own && !nodes.contains(&&step.endpoint) {
            nodes.push(&step.endpoint);
        }
    }
    nodes
}

/// Per node, the statements with parameters of its first row step: the ones the session opened
/// ahead for it will run.
fn first_row_steps(plan: &Plan) -> Vec<(&Endpoint, Vec<String>)> {
    let mut out: Vec<(&Endpoint, Vec<String>)> = Vec::new();
    for step in plan.steps.iter().filter(|s| !s.rows().is_empty()) {
        if out.iter().any(|(ep, _)| **ep == step.endpoint) {
            continue;
        }
        let statements = step.statements.iter().filter(|st| !st.params.is_empty());
        out.push((
            &step.endpoint,
            statements.map(|st| st.sql.clone()).collect(),
        ));
    }
    out
}

/// The replica's session and the source's (None: it cannot be reached).
pub(super) fn sessions<'n>(
    nodes: &'n mut Nodes,
    replica: &Endpoint,
    source: Option<&Endpoint>,
) -> Result<(&'n mut Server, Option<&'n mut Server>)> {
    if let Some(src) = source
        && nodes.get(src).is_ok()
    {
        let (r, s) = nodes.pair(replica, src)?;
        return Ok((r, Some(s)));
    }
    Ok((nodes.get(replica)?, None))
}

/// The plan a dry run shows: the one the repair would apply, read-ahead rows included.
pub fn dry_run_plan(
    d: &mut Diagnosis,
    target: &Target,
    options: &Options,
    playbooks: &[Playbook],
    policy: &Policy,
) -> Result<PlanSet> {
    let mut ps = crate::planner::plan(d, playbooks, policy)?;
    let specs = specs_for(d, target);
    if options.lookahead > 0 {
        let following = following(d, &ps, &specs, options)?;
        read_ahead(d, &following, &mut Nodes::new(specs.iter().cloned()))?;
        ps = crate::planner::plan(d, playbooks, policy)?;
    }
    with_facts(&mut ps, &mut Nodes::new(specs));
    Ok(ps)
}

/// The chosen plan with the facts of the nodes it writes (triggers, child tables), as read
/// now: shown with it; the preflight of a real run reads them again.
pub fn with_facts(ps: &mut PlanSet, nodes: &mut Nodes) {
    if let Some(plan) = &mut ps.plan {
        plan.facts = super::preflight::facts(plan, nodes);
    }
}

/// [`with_facts`] for a plan shown on its own (`replmend plan`).
pub fn plan_with_facts(ps: &mut PlanSet, d: &Diagnosis, target: &Target) {
    with_facts(ps, &mut Nodes::new(specs_for(d, target)));
}

/// How the repair ended, as the journal keeps it.
pub fn verification(applied: &ApplyReport) -> record::Body {
    let resumed = applied.resumed.values();
    let end = if resumed.clone().all(|r| *r == Resumed::CaughtUp) {
        RunEnd::Repaired
    } else if resumed
        .clone()
        .any(|r| matches!(r, Resumed::StoppedAgain { .. }))
    {
        RunEnd::StoppedAgain
    } else {
        RunEnd::StillBehind
    };
    let words = |r: &Resumed| match r {
        Resumed::CaughtUp => "running and caught up".to_string(),
        Resumed::StoppedAgain { errno, message } => {
            format!("stopped again with {errno}: {message}")
        }
        Resumed::StillBehind { bytes_behind } => format!("still {bytes_behind} bytes behind"),
    };
    record::Body::Verification(VerificationRecord {
        end,
        resumed: applied
            .resumed
            .iter()
            .map(|(n, r)| (n.clone(), words(r)))
            .collect(),
        rows_agree: applied.rows_agree,
        rows_differ: applied.rows_differ.clone(),
        left_alone: applied.left_alone.clone(),
        journaled_rows: applied.journaled_rows,
        notes: Vec::new(),
    })
}

impl Session {
    /// The next incident with its policy resumed from the journal.
    pub fn find(
        &self,
        spec: &ConnSpec,
        policy: &Policy,
    ) -> Result<Option<(Diagnosis, Target, Policy)>> {
        match find_incident(spec, &self.options, policy)? {
            Some((d, t, p)) => {
                let p = with_history(&self.journal, &d, p)?;
                Ok(Some((d, t, p)))
            }
            None => Ok(None),
        }
    }

    /// Applies one planned incident after the safety checks; returns what happened.
    pub fn apply_one(
        &mut self,
        d: &Diagnosis,
        ps: &PlanSet,
        target: &Target,
        policy: &Policy,
    ) -> Result<Incident> {
        if ps.plan.is_none() {
            return Err(Refused::NoRemedy.into());
        }
        let specs = specs_for(d, target);
        // A diagnosis made under the lock left its origins for now: searched on sessions of
        // their own beside the repair, and journaled after its steps (`record::origins`, which
        // the report merges into the diagnosis). Never waited for before a change, nor on a
        // refusal (the search then ends with the process).
        let origins = self
            .options
            .origin_budget
            .filter(|_| target.under_lock)
            .map(|b| super::under_lock::search_beside(d, &specs, b));
        let incident = self.apply_with(d, ps, target, policy, &specs)?;
        if let Some(searched) = origins.and_then(|h| h.join().ok()) {
            self.journal
                .append_records(&[Record::new(&d.fingerprint, record::origins(&searched))])?;
        }
        Ok(incident)
    }

    fn apply_with(
        &mut self,
        d: &Diagnosis,
        ps: &PlanSet,
        target: &Target,
        policy: &Policy,
        specs: &[ConnSpec],
    ) -> Result<Incident> {
        let mut nodes = Nodes::new(specs.iter().cloned());
        // The transactions a batch reads ahead are in the source's binlog, which does not
        // change: they are read while the lock is taken and the incident re-checked.
        let (again, plan, held) = std::thread::scope(|scope| -> Result<_> {
            let ahead = scope.spawn(|| following(d, ps, specs, &self.options));
            nodes.open_all(&own_sessions(ps));
            let held_since_diagnosis = nodes.lock_all()? && target.under_lock;
            crate::timing::mark("repair lock held");
            let joined = || {
                ahead
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p))
            };
            let (again, plan) =
                self.recheck(d, ps, &mut nodes, joined, policy, held_since_diagnosis)?;
            Ok((again, plan, held_since_diagnosis))
        })?;
        crate::timing::mark("re-checked and planned");
        if held {
            super::under_lock::last_look(d, &mut nodes)?;
        }
        for (endpoint, statements) in first_row_steps(&plan) {
            nodes.prepare_ahead(endpoint, statements);
        }
        let (prepared, build) = super::apply::prepare_intents(&plan, &d.fingerprint);
        let mut applied = std::thread::scope(|s| -> Result<ApplyReport> {
            s.spawn(build);
            let accept = super::preflight::Accept {
                triggers: self.options.allow_triggers,
                errant: self.options.allow_errant_gtid,
            };
            super::preflight::check_with(&plan, &mut nodes, &source_endpoint(&again), accept)?;
            crate::timing::mark("preflight passed");
            // What was diagnosed and what will run, beside the rows, before anything changes.
            self.journal.append_records(&[
                Record::new(&d.fingerprint, record::diagnosis(d)),
                Record::new(&d.fingerprint, record::plan(&plan, RunKind::Repair, &[])),
            ])?;
            let mut printer = |r: &StepResult| (self.on_step)(r);
            let mut applier = Applier {
                nodes: &mut nodes,
                journal: &mut self.journal,
                fingerprint: d.fingerprint.clone(),
                timeout: self.options.timeout,
                on_step: &mut printer,
                prepared,
            };
            Ok(applier.apply(&plan)?)
        })?;
        // Read after the catch-up, not during it: a read of the source's rows beside the
        // replica's apply took CPU from it and made the whole repair slower (2 cores).
        if applied.resumed.values().all(|r| *r == Resumed::CaughtUp) {
            (applied.rows_agree, applied.rows_differ) = rows_agree(&again, &plan, &mut nodes)?;
            crate::timing::mark("rows compared on both nodes");
        }
        self.journal
            .append_records(&[Record::new(&d.fingerprint, verification(&applied))])?;
        Ok(Incident {
            fingerprint: d.fingerprint.clone(),
            table: d.table.to_string(),
            table_ref: d.table.clone(),
            errno: d.error.errno,
            remedy: plan.remedy,
            winner: plan.winner_endpoint.clone(),
            plan,
            applied,
        })
    }

    /// The incident must still be the one the plan was made for: diagnosed again under the
    /// lock, planned again, fingerprints compared. Returns the fresh diagnosis and plan. A
    /// diagnosis made under the lock still held (`held_since_diagnosis`) is that diagnosis:
    /// only the read-ahead and the plan are done again.
    fn recheck(
        &self,
        d: &Diagnosis,
        ps: &PlanSet,
        nodes: &mut Nodes,
        following: impl FnOnce() -> Result<Vec<Following>>,
        policy: &Policy,
        held_since_diagnosis: bool,
    ) -> Result<(Diagnosis, Plan)> {
        crate::timing::mark("re-checking");
        let replica = d.replica.endpoint.clone();
        let source = d.source.as_ref().map(|s| s.endpoint.clone());
        let source_spec = match &source {
            Some(ep) => Some(nodes.spec(ep)?.clone()),
            None => None,
        };
        // The failing transaction is not read again: an unchanged stop is the same one.
        let refreshed = match held_since_diagnosis {
            true => {
                crate::timing::mark("diagnosed under the lock, still held: not re-checked");
                Ok(d.clone())
            }
            false => sessions(nodes, &replica, source.as_ref())
                .and_then(|(r, s)| crate::inspect::refresh(d, r, s, source_spec.as_ref())),
        };
        let mut again = refreshed.map_err(|e| Refused::Changed(crate::describe::message(&e)))?;
        crate::timing::mark("refreshed");
        let following = following()?;
        if again.fingerprint == d.fingerprint {
            read_ahead(&mut again, &following, nodes)?;
        }
        crate::timing::mark("read ahead");
        let mut again_ps = crate::planner::plan(&again, &self.playbooks, policy)?;
        if again.fingerprint != d.fingerprint
            || again_ps.reverse_fingerprint != ps.reverse_fingerprint
        {
            return Err(Refused::MovedOn {
                was: d.fingerprint.clone(),
                now: again.fingerprint.clone(),
            }
            .into());
        }
        let Some(plan) = again_ps.plan.take() else {
            return Err(Refused::NoRemedyUnderLock.into());
        };
        // The data-loss consent is checked on the plan that will run, not the one shown
        // earlier (reading ahead may have added rows).
        let option = again_ps.options.iter().find(|o| o.remedy == plan.remedy);
        if !self.options.allow_data_loss
            && let Some(o) = option.filter(|o| o.loses_data())
        {
            return Err(Refused::LosesData {
                remedy: plan.remedy,
                loses: o.loses.clone(),
            }
            .into());
        }
        Ok((again, plan))
    }
}
