//! Executes a plan step by step: exactly the statements the plan shows, in order, parameters
//! included. Every step first checks whether its effect is already there (so a run killed at
//! any point converges when run again); rows are checked with a locking read, journaled as an
//! intent, written, committed, and their outcome journaled; rows that changed since the
//! diagnosis are never touched. If a step fails, what replmend stopped or lifted is put back
//! (threads started again, read_only on again) and the error says what was done.
//!
//! This file holds the step loop (`Applier`) and its report; the connections are `nodes`, a
//! row step's rows are run by `row_run`.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::Serialize;
use thiserror::Error;

pub use super::nodes::Nodes;
pub use super::row_run::IntentLines;
use super::row_run::{RowRun, intent_lines, same_key};
use super::verify::{self, CatchUp, Resumed};
use crate::conn::Server;
use crate::flavor::Thread;
use crate::journal::{self, Entry, Journal, State};
use crate::planner::plan::RowChange;
use crate::planner::plan::StepKind;
use crate::planner::playbook::StepTemplate;
use crate::planner::{Plan, Step};
use crate::report::record::{self, Body, Record, RunEnd, StepEnd, StepRecord, VerificationRecord};
use crate::sql::Statement;
use crate::status::model::ThreadState;
use crate::vocab::{Endpoint, Gtid, ReadOnly};

#[derive(Debug, Error)]
pub enum ApplyError {
    #[error(
        "step {step}: the row of {table} with key {key} changed since the diagnosis; it was not touched (re-run replmend to see the new state)"
    )]
    RowChanged {
        step: usize,
        table: String,
        key: String,
    },
    #[error(
        "step {step}: the fresh key {key} of {table} was taken by another row since the plan was made (re-run replmend for a new one)"
    )]
    KeyTaken {
        step: usize,
        table: String,
        key: String,
    },
    #[error(
        "step {step}: the server wrote the row of {table} with key {key} otherwise than journaled ({found}: a trigger, a column's conversion or a generated value changed it); the step was rolled back"
    )]
    WrittenOtherwise {
        step: usize,
        table: String,
        key: String,
        found: String,
    },
    #[error("step {step} on {endpoint}: {}", crate::describe::describe_mysql(.source))]
    Sql {
        step: usize,
        endpoint: Endpoint,
        source: mysql::Error,
    },
    #[error("step {step}: failure injected for testing (REPLMEND_TEST_FAIL_AT_STEP)")]
    Injected { step: usize },
    #[error(transparent)]
    Journal(#[from] journal::JournalError),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// A failed apply: the error, and what was put back afterwards.
#[derive(Debug, Error)]
#[error("{error}{}{}", completed_text(.completed), undone_text(.undone))]
pub struct ApplyFailure {
    #[source]
    pub error: ApplyError,
    /// Steps that completed before the failure.
    pub completed: Vec<usize>,
    /// What was put back, or could not be, in words.
    pub undone: Vec<String>,
}

fn completed_text(steps: &[usize]) -> String {
    match steps {
        [] => ". No step had completed".into(),
        s => format!(
            ". Steps completed before the failure: {}",
            s.iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn undone_text(undone: &[String]) -> String {
    if undone.is_empty() {
        String::new()
    } else {
        format!(". Then: {}", undone.join("; "))
    }
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    Done,
    /// Its effect was already there (a re-run after an interruption).
    AlreadyDone,
    /// Verify: replication is running and caught up.
    CaughtUp,
    /// Verify: the applier stopped again (possibly on the next conflict).
    StoppedAgain,
    /// Verify: still applying when the timeout passed.
    StillBehind,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    pub step: usize,
    pub endpoint: Endpoint,
    pub action: StepTemplate,
    pub description: String,
    pub outcome: StepOutcome,
    /// The outcome in words (rows journaled, already gone, bytes behind …).
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApplyReport {
    pub steps: Vec<StepResult>,
    pub journal: String,
    pub journaled_rows: usize,
    /// Per node: how replication resumed.
    pub resumed: BTreeMap<Endpoint, Resumed>,
    /// The incident's rows (its conflicting keys and every row the plan changed) are
    /// identical on both nodes; None when none were compared (not caught up, no source).
    pub rows_agree: Option<bool>,
    /// The keys whose versions still differ between the nodes when `rows_agree` is false
    /// ("column=value, …"): a remedy that keeps versions apart leaves them to `resync`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rows_differ: Vec<String>,
    /// resync: rows that changed since they were read and were left alone ("table key").
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub left_alone: Vec<String>,
    /// The run's fingerprint, as its journal entries and records carry it.
    #[serde(skip)]
    pub fingerprint: String,
}

/// A row left alone as the report names it: "table key".
pub fn left_alone_text(r: &RowChange) -> String {
    format!("{} {}", r.table, key_text(&r.key))
}

pub use crate::diagnosis::render::key_words as key_text;

fn test_hook(var: &str) -> Option<usize> {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
}

/// Test hook: abort (like kill -9: no cleanup, no flush) right after step N. Used by the crash
/// tests; never set it in production.
fn crash_point(step: usize) {
    if test_hook("REPLMEND_TEST_CRASH_AFTER_STEP") == Some(step) {
        std::process::abort();
    }
}

/// Test hook: step N fails (row steps: after their writes, just before COMMIT). Used by the
/// failure tests; never set it in production.
pub(super) fn injected_failure(step: usize) -> Result<(), ApplyError> {
    match test_hook("REPLMEND_TEST_FAIL_AT_STEP") == Some(step) {
        true => Err(ApplyError::Injected { step }),
        false => Ok(()),
    }
}

/// Something replmend changed on a node that must be put back if a later step fails.
struct Undo {
    endpoint: Endpoint,
    action: StepTemplate,
    statements: Vec<String>,
    words: String,
    /// Journaled once it is done (read_only put back).
    journal: Option<Entry>,
}

pub struct Applier<'a> {
    pub nodes: &'a mut Nodes,
    pub journal: &'a mut Journal,
    pub fingerprint: String,
    pub timeout: Duration,
    pub on_step: &'a mut dyn FnMut(&StepResult),
    /// Row steps' intents being built ahead (`prepare_intents`), by step number; a row step
    /// without builds its own beside its first statements.
    pub prepared: Prepared,
}

/// Each row step's intents and journal lines, by step number, arriving from the thread that
/// builds them.
pub type Prepared = HashMap<usize, std::sync::mpsc::Receiver<IntentLines>>;

/// Builds every row step's intents and journal lines (the plan's rows: the locking reads only
/// decide which are needed) on the calling thread, sending each step's as it is done; the
/// receivers go to `Applier::prepared`. A repair runs it beside its preflight, so the row
/// step's journal sync starts as soon as its locking read has decided.
pub fn prepare_intents<'p>(
    plan: &'p Plan,
    fingerprint: &str,
) -> (Prepared, impl FnOnce() + Send + use<'p>) {
    let mut receivers = Prepared::new();
    let mut senders = Vec::new();
    for (i, step) in plan.steps.iter().enumerate() {
        if !step.rows().is_empty() {
            let (tx, rx) = std::sync::mpsc::channel();
            receivers.insert(i + 1, rx);
            senders.push((i + 1, step, tx));
        }
    }
    let fingerprint = fingerprint.to_string();
    let build = move || {
        for (n, step, tx) in senders {
            let lines = intent_lines(step, n, &fingerprint);
            crate::timing::mark(format_args!("step {n}'s intents built"));
            let _ = tx.send(lines);
        }
    };
    (receivers, build)
}

/// What a row step found and did.
#[derive(Default)]
struct RowTally {
    written: usize,
    already: usize,
    /// resync: rows that changed since they were read, left as they are (table and key).
    left_alone: Vec<String>,
}

impl Applier<'_> {
    pub(super) fn sql_err(
        step: usize,
        endpoint: &Endpoint,
    ) -> impl Fn(mysql::Error) -> ApplyError + '_ {
        move |source| ApplyError::Sql {
            step,
            endpoint: endpoint.clone(),
            source,
        }
    }

    /// The step's session settings and statements, in order, on `conn`.
    fn exec_step(server: &mut Server, n: usize, step: &Step) -> Result<(), ApplyError> {
        for st in step.session.iter().chain(&step.statements) {
            server.run(st).map_err(Self::sql_err(n, &step.endpoint))?;
        }
        Ok(())
    }

    fn run_statements(&mut self, n: usize, step: &Step) -> Result<(), ApplyError> {
        let server = self.nodes.get(&step.endpoint)?;
        Self::exec_step(server, n, step)
    }

    /// A GTID skip on a connection of its own: if it fails halfway, GTID_NEXT stays set on
    /// that session only, never on the one the undo then uses.
    fn run_alone(&mut self, n: usize, step: &Step) -> Result<(), ApplyError> {
        let mut server = self.nodes.session_of_its_own(&step.endpoint)?;
        Self::exec_step(&mut server, n, step)
    }

    /// Which of the channel's threads run now: the ones a failure must start again.
    fn running_threads(&mut self, step: &Step) -> anyhow::Result<Option<Thread>> {
        let server = self.nodes.get(&step.endpoint)?;
        let report = crate::status::read_status(server)?;
        let Some(ch) = report.channels.iter().find(|c| c.name == step.channel) else {
            return Ok(None);
        };
        let running = |t: ThreadState| t != ThreadState::Stopped;
        Ok(match (running(ch.io_thread), running(ch.sql_thread)) {
            (true, true) => Some(Thread::Both),
            (true, false) => Some(Thread::Io),
            (false, true) => Some(Thread::Sql),
            (false, false) => None,
        })
    }

    fn stop(
        &mut self,
        n: usize,
        step: &Step,
        stops: Thread,
        undo: &mut Vec<Undo>,
    ) -> Result<(), ApplyError> {
        // Put back on failure: the threads that ran and that this step stops.
        let running = match (self.running_threads(step)?, stops) {
            (Some(Thread::Io), Thread::Sql) => None,
            (Some(_), Thread::Sql) => Some(Thread::Sql),
            (running, _) => running,
        };
        self.run_statements(n, step)?;
        if let Some(t) = running {
            // Stopped through the provider's procedure: started through it again.
            let call = step
                .calls
                .and_then(|p| p.provider().start(&step.channel))
                .map(|(_, call)| call);
            let sql = call.unwrap_or_else(|| step.flavor.start_replica(t, &step.channel));
            undo.push(Undo {
                endpoint: step.endpoint.clone(),
                action: StepTemplate::StartApplier,
                words: format!(
                    "ran {sql} on {} (the threads replmend had stopped)",
                    step.endpoint
                ),
                statements: vec![sql],
                journal: None,
            });
        }
        Ok(())
    }

    fn lift(
        &mut self,
        n: usize,
        step: &Step,
        state: ReadOnly,
        undo: &mut Vec<Undo>,
    ) -> Result<(), ApplyError> {
        // Journaled before it happens: a run killed right after still has it on record, and
        // the next run puts read_only back first.
        self.journal.record_read_only(&Entry::read_only(
            &self.fingerprint,
            &step.endpoint,
            journal::Action::LiftReadOnly,
            state,
        ))?;
        undo.push(Undo {
            endpoint: step.endpoint.clone(),
            action: StepTemplate::RestoreReadOnly,
            statements: step.flavor.restore_read_only(state),
            words: format!("{} is ON again on {}", state.variable(), step.endpoint),
            journal: Some(Entry::read_only(
                &self.fingerprint,
                &step.endpoint,
                journal::Action::RestoreReadOnly,
                state,
            )),
        });
        self.run_statements(n, step)
    }

    fn restore_read_only(
        &mut self,
        n: usize,
        step: &Step,
        state: ReadOnly,
    ) -> Result<(), ApplyError> {
        self.run_statements(n, step)?;
        self.journal.record_read_only(&Entry::read_only(
            &self.fingerprint,
            &step.endpoint,
            journal::Action::RestoreReadOnly,
            state,
        ))?;
        Ok(())
    }

    fn gtid_executed(&mut self, step: &Step, g: &Gtid) -> anyhow::Result<bool> {
        let server = self.nodes.get(&step.endpoint)?;
        let Some(st) = server.flavor.gtid_executed_check(&g.to_string()) else {
            // Advancing gtid_slave_pos is idempotent: setting it again is harmless.
            return Ok(false);
        };
        let r: Option<i64> = server.first(&st)?;
        Ok(r == Some(1))
    }

    /// What "caught up" means for this wait: the source's binlog end now; or, when the plan
    /// has no session to the source (it could not be reached when the incident was
    /// diagnosed), everything the replica had received from it.
    fn catch_up_target(&mut self, step: &Step) -> anyhow::Result<CatchUp> {
        let server = self.nodes.get(&step.endpoint)?;
        let report = crate::status::read_status(server)?;
        let ch = report
            .channels
            .iter()
            .find(|c| c.name == step.channel)
            .ok_or_else(|| {
                anyhow::anyhow!("channel '{}' is gone from {}", step.channel, step.endpoint)
            })?;
        let named = format!("{}:{}", ch.source_host, ch.source_port);
        let ch = ch.clone();
        if let Some(endpoint) = self.nodes.source_of(&ch) {
            let source = self.nodes.get(&endpoint)?;
            return Ok(CatchUp::SourceEnd(verify::binlog_end(source)?));
        }
        verify::received(&ch).map(CatchUp::Received).ok_or_else(|| {
            anyhow::anyhow!(
                "the source {named} of {} is not part of this plan, and {} reports nothing received from it",
                step.endpoint,
                step.endpoint
            )
        })
    }

    fn verify(
        &mut self,
        step: &Step,
        report: &mut ApplyReport,
    ) -> anyhow::Result<(StepOutcome, String)> {
        let target = self.catch_up_target(step)?;
        let caught_up = match &target {
            CatchUp::SourceEnd(_) => "replication running and caught up".to_string(),
            CatchUp::Received((file, pos)) => format!(
                "replication running; everything received from the source (up to {file}:{pos}) applied — the source was unreachable, so nothing newer was compared"
            ),
        };
        let server = self.nodes.get(&step.endpoint)?;
        let r = verify::wait_resumed(server, &step.channel, target.position(), self.timeout)?;
        let out = match &r {
            Resumed::CaughtUp => (StepOutcome::CaughtUp, caught_up),
            Resumed::StoppedAgain { errno, message } => (
                StepOutcome::StoppedAgain,
                format!("stopped again with {errno}: {message}"),
            ),
            Resumed::StillBehind { bytes_behind } => (
                StepOutcome::StillBehind,
                format!("still {bytes_behind} bytes behind"),
            ),
        };
        report.resumed.insert(step.endpoint.clone(), r);
        Ok(out)
    }

    fn run_step(
        &mut self,
        n: usize,
        step: &Step,
        undo: &mut Vec<Undo>,
        report: &mut ApplyReport,
    ) -> Result<(StepOutcome, String), ApplyError> {
        if !matches!(step.kind, StepKind::Rows { .. }) {
            injected_failure(n)?;
        }
        let done = |d: &str| Ok((StepOutcome::Done, d.to_string()));
        match &step.kind {
            StepKind::Stop { threads } => {
                self.stop(n, step, *threads, undo)?;
                done("stopped")
            }
            StepKind::Start => {
                self.run_statements(n, step)?;
                undo.retain(|u| {
                    !(u.endpoint == step.endpoint && u.action == StepTemplate::StartApplier)
                });
                done("started")
            }
            StepKind::LiftReadOnly { state } => {
                self.lift(n, step, *state, undo)?;
                done("read_only off")
            }
            StepKind::RestoreReadOnly { state } => {
                self.restore_read_only(n, step, *state)?;
                undo.retain(|u| {
                    !(u.endpoint == step.endpoint && u.action == StepTemplate::RestoreReadOnly)
                });
                done("read_only on again")
            }
            StepKind::Skip { gtid: Some(g), .. } if self.gtid_executed(step, g)? => Ok((
                StepOutcome::AlreadyDone,
                "already done (GTID executed)".into(),
            )),
            StepKind::Skip { .. } => {
                self.run_alone(n, step)?;
                done("skipped")
            }
            StepKind::Rows { action, rows } => {
                let t = self.row_step(n, step, rows)?;
                report.journaled_rows += t.written;
                report.left_alone.extend(t.left_alone.iter().cloned());
                // A row replaced is a delete and an insert: counted as changes, not rows.
                let what = match action {
                    StepTemplate::DeleteConflictingRows => "row(s) journaled and deleted",
                    StepTemplate::ResyncRows | StepTemplate::ReinsertUnderFreshKey => {
                        "row change(s) journaled and written"
                    }
                    _ => "row(s) journaled and inserted",
                };
                let mut detail = format!("{} {what}, {} already done", t.written, t.already);
                if !t.left_alone.is_empty() {
                    detail.push_str(&format!(
                        ", {} left alone (changed since they were read)",
                        t.left_alone.len()
                    ));
                }
                let outcome = if t.written == 0 && t.already > 0 {
                    StepOutcome::AlreadyDone
                } else {
                    StepOutcome::Done
                };
                Ok((outcome, detail))
            }
            StepKind::Verify => Ok(self.verify(step, report)?),
        }
    }

    /// A row step on its own connection (its session settings apply to it alone): the plan's
    /// statements in order; checks decide which writes are still needed; the intents are
    /// journaled (one fsync) right before the first write, the outcomes right after COMMIT.
    fn row_step(
        &mut self,
        n: usize,
        step: &Step,
        step_rows: &[RowChange],
    ) -> Result<RowTally, ApplyError> {
        let mut tally = RowTally::default();
        if step_rows.is_empty() {
            return Ok(tally);
        }
        // The definition read under this repair's lock (by the re-check), once.
        let schema = self
            .nodes
            .get(&step.endpoint)?
            .table(&step_rows[0].table)
            .map_err(anyhow::Error::from)?;
        let mut server = self.nodes.session_of_its_own(&step.endpoint)?;
        crate::timing::mark("row step session taken");
        let mut rows = RowRun {
            n,
            step,
            fingerprint: self.fingerprint.clone(),
            schema: &schema,
            skip: vec![false; step_rows.len()],
            same_key: same_key(step_rows),
            needed: Vec::new(),
            prepared: None,
            intents: journal::Intents::default(),
            journaled: false,
            in_transaction: false,
            syncing: None,
            committing: false,
            left_alone: Vec::new(),
        };
        let fingerprint = self.fingerprint.clone();
        let result = std::thread::scope(|s| {
            rows.prepared = Some(match self.prepared.remove(&n) {
                Some(rx) => rx,
                None => {
                    let (tx, rx) = std::sync::mpsc::channel();
                    s.spawn(move || tx.send(intent_lines(step, n, &fingerprint)));
                    rx
                }
            });
            rows.run(&mut server, self)
        });
        crate::timing::mark("row step committed");
        match result {
            Ok(()) => {
                tally.written = rows.intents.len();
                self.journal
                    .append_outcomes(std::mem::take(&mut rows.intents), State::Done)?;
                tally.already = rows.skip.iter().filter(|s| **s).count() - rows.left_alone.len();
                tally.left_alone = rows
                    .left_alone
                    .iter()
                    .map(|&i| left_alone_text(&step_rows[i]))
                    .collect();
                Ok(tally)
            }
            Err(e) => {
                let _ = server.run(&crate::sql::rollback());
                let _ = rows.synced();
                // A COMMIT that failed on the wire may still have committed: the intents stay
                // as they are, and restore judges them by the rows themselves.
                if rows.journaled && !rows.committing {
                    self.journal
                        .append_outcomes(std::mem::take(&mut rows.intents), State::RolledBack)?;
                }
                Err(e)
            }
        }
    }

    pub fn apply(&mut self, plan: &Plan) -> Result<ApplyReport, Box<ApplyFailure>> {
        let mut report = ApplyReport {
            steps: Vec::new(),
            journal: self.journal.path().display().to_string(),
            journaled_rows: 0,
            resumed: BTreeMap::new(),
            rows_agree: None,
            rows_differ: Vec::new(),
            left_alone: Vec::new(),
            fingerprint: self.fingerprint.clone(),
        };
        let mut undo = Vec::new();
        // Each step with its times, journaled once the plan ran (or failed): one sync for all.
        let mut records = Vec::new();
        for (i, step) in plan.steps.iter().enumerate() {
            let started = record::now_ms();
            let (outcome, detail) = match self.run_step(i + 1, step, &mut undo, &mut report) {
                Ok(r) => r,
                Err(error) => {
                    let _ = self.journal.flush();
                    let undone = self.undo(undo);
                    let failure = ApplyFailure {
                        error,
                        completed: report.steps.iter().map(|s| s.step).collect(),
                        undone,
                    };
                    records.extend(self.failure_records(i + 1, step, started, &failure, &report));
                    // The failure is what the caller reports; a journal that cannot take its
                    // record too has already said so on the rows.
                    let _ = self.journal.append_records(&records);
                    return Err(Box::new(failure));
                }
            };
            let result = StepResult {
                step: i + 1,
                endpoint: step.endpoint.clone(),
                action: step.action(),
                description: step.description.clone(),
                outcome,
                detail,
            };
            crate::timing::mark(format_args!(
                "step {} {:?} {}",
                i + 1,
                step.action(),
                result.detail
            ));
            (self.on_step)(&result);
            records.push(self.step_record(&result, started));
            report.steps.push(result);
            crash_point(i + 1);
        }
        let written = self
            .journal
            .flush()
            .and_then(|()| self.journal.append_records(&records));
        if let Err(e) = written {
            return Err(Box::new(ApplyFailure {
                error: e.into(),
                completed: report.steps.iter().map(|s| s.step).collect(),
                undone: Vec::new(),
            }));
        }
        Ok(report)
    }

    fn step_record(&self, r: &StepResult, started_ms: u64) -> Record {
        let end = match r.outcome {
            StepOutcome::Done => StepEnd::Done,
            StepOutcome::AlreadyDone => StepEnd::AlreadyDone,
            StepOutcome::CaughtUp => StepEnd::CaughtUp,
            StepOutcome::StoppedAgain => StepEnd::StoppedAgain,
            StepOutcome::StillBehind => StepEnd::StillBehind,
        };
        Record::new(
            &self.fingerprint,
            Body::Step(StepRecord {
                step: r.step,
                endpoint: r.endpoint.clone(),
                description: r.description.clone(),
                end,
                detail: r.detail.clone(),
                started_ms,
            }),
        )
    }

    /// The failed step, and the run's end with what was put back.
    fn failure_records(
        &self,
        n: usize,
        step: &Step,
        started_ms: u64,
        failure: &ApplyFailure,
        report: &ApplyReport,
    ) -> [Record; 2] {
        let failed = Record::new(
            &self.fingerprint,
            Body::Step(StepRecord {
                step: n,
                endpoint: step.endpoint.clone(),
                description: step.description.clone(),
                end: StepEnd::Failed,
                detail: failure.error.to_string(),
                started_ms,
            }),
        );
        // The failure's words say which steps completed and what was put back.
        let notes = vec![failure.to_string()];
        let end = Record::new(
            &self.fingerprint,
            Body::Verification(VerificationRecord {
                end: RunEnd::Failed,
                resumed: Vec::new(),
                rows_agree: None,
                rows_differ: Vec::new(),
                left_alone: report.left_alone.clone(),
                journaled_rows: report.journaled_rows,
                notes,
            }),
        );
        [failed, end]
    }

    /// Puts back, newest first, what the completed steps changed on the topology; says what
    /// it did and what it could not do.
    fn undo(&mut self, undo: Vec<Undo>) -> Vec<String> {
        let mut notes = Vec::new();
        for u in undo.into_iter().rev() {
            let r: anyhow::Result<()> = (|| {
                let server = self.nodes.get(&u.endpoint)?;
                for sql in &u.statements {
                    server.run(&Statement::plain(sql.as_str()))?;
                }
                if let Some(e) = &u.journal {
                    self.journal.record_read_only(e)?;
                }
                Ok(())
            })();
            match r {
                Ok(()) => notes.push(u.words),
                Err(e) => notes.push(format!(
                    "could not put back on {} ({}): run {} there",
                    u.endpoint,
                    crate::describe::message(&e),
                    u.statements.join("; ")
                )),
            }
        }
        notes
    }
}
