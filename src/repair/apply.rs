//! Executes a plan step by step: exactly the statements the plan shows, in order, parameters
//! included. Every step first checks whether its effect is already there (so a run killed at
//! any point converges when run again); rows are checked with a locking read, journaled as an
//! intent, written, committed, and their outcome journaled; rows that changed since the
//! diagnosis are never touched. If a step fails, what replmend stopped or lifted is put back
//! (threads started again, read_only on again) and the error says what was done.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use mysql::prelude::Queryable;
use serde::Serialize;
use thiserror::Error;

use super::verify::{self, CatchUp, Resumed};
use crate::conn::{ConnSpec, Server};
use crate::flavor::Thread;
use crate::journal::{self, Entry, Journal, State};
use crate::planner::plan::{RowAction, RowChange};
use crate::planner::playbook::StepTemplate;
use crate::planner::{Plan, Step};
use crate::schema::TableSchema;
use crate::sql::{Role, Statement};
use crate::status::model::ThreadState;
use crate::value::Cell;

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
        endpoint: String,
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
    pub endpoint: String,
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
    pub resumed: BTreeMap<String, Resumed>,
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
}

/// Connections by endpoint, opened on first use with the replica's credentials (or the
/// source's own, when one was given).
pub struct Nodes {
    specs: BTreeMap<String, ConnSpec>,
    open: BTreeMap<String, Server>,
    /// Sessions being opened (and their statements prepared) ahead, in the background, each
    /// handed out once to a step that needs a session of its own.
    spare: BTreeMap<String, std::thread::JoinHandle<Option<Server>>>,
    /// Nodes whose session holds the repair lock (`lock_all`).
    locked: std::collections::BTreeSet<String>,
}

impl Nodes {
    pub fn new(specs: impl IntoIterator<Item = ConnSpec>) -> Nodes {
        Nodes {
            specs: specs.into_iter().map(|s| (s.endpoint(), s)).collect(),
            open: BTreeMap::new(),
            spare: BTreeMap::new(),
            locked: Default::default(),
        }
    }

    pub fn has(&self, endpoint: &str) -> bool {
        self.specs.contains_key(endpoint)
    }

    pub fn spec(&self, endpoint: &str) -> anyhow::Result<&ConnSpec> {
        self.specs
            .get(endpoint)
            .ok_or_else(|| anyhow::anyhow!("no connection settings for {endpoint}"))
    }

    pub fn port_endpoint(&self, port: u16) -> Option<String> {
        self.specs
            .values()
            .find(|s| s.port == port)
            .map(|s| s.endpoint())
    }

    /// The node's session, opened on first use. A session the server has closed meanwhile
    /// (seen under load while replication threads restart) is opened again: these sessions
    /// only read status and rows and run single statements; row writes have sessions of
    /// their own.
    pub fn get(&mut self, endpoint: &str) -> anyhow::Result<&mut Server> {
        if let Some(server) = self.open.get_mut(endpoint) {
            // A reopened session that held the repair lock takes it again, or another repair
            // got it meanwhile and this one stops.
            if server.revive()? && self.locked.contains(endpoint) {
                super::lock::take(server)?;
            }
        } else {
            let server = Server::connect(self.spec(endpoint)?)?;
            self.open.insert(endpoint.to_string(), server);
        }
        Ok(self.open.get_mut(endpoint).expect("just inserted"))
    }
}

impl Nodes {
    /// Opens every node's session at once (each connection waits on its own server); one
    /// that fails is left for `get` to report. A spare session on each node in `spare_on`
    /// (the nodes whose steps will want a session of their own) is opened in the background,
    /// for `session_of_its_own` to take later.
    pub fn open_all(&mut self, spare_on: &[&str]) {
        let wanted: Vec<&ConnSpec> = self
            .specs
            .iter()
            .filter(|(ep, _)| !self.open.contains_key(*ep))
            .map(|(_, s)| s)
            .collect();
        let opened = crate::conn::connect_all(&wanted).into_iter().flatten();
        for server in opened {
            self.open.insert(server.spec.endpoint(), server);
        }
        // After the nodes' own sessions, which take the ones a diagnosis handed back.
        for ep in spare_on {
            if self.spare.contains_key(*ep) {
                continue;
            }
            let Some(spec) = self.specs.get(*ep).cloned() else {
                continue;
            };
            let opening = std::thread::spawn(move || Server::connect(&spec).ok());
            self.spare.insert(ep.to_string(), opening);
        }
    }

    /// Takes the repair lock on every node's own session, always in the same order whichever
    /// node is the replica (two repairs of the two directions of a dual-master pair then meet
    /// on the first lock instead of each holding one). Held while these sessions are open;
    /// one lost and opened again takes it again (`get`).
    pub fn lock_all(&mut self) -> anyhow::Result<()> {
        let endpoints: Vec<String> = self.specs.keys().cloned().collect();
        for ep in endpoints {
            super::lock::take(self.get(&ep)?)?;
            self.locked.insert(ep);
        }
        Ok(())
    }

    /// A session nothing else uses (its session settings stay its own): the spare opened
    /// ahead, if it is still alive, else a new one.
    pub fn session_of_its_own(&mut self, endpoint: &str) -> anyhow::Result<Server> {
        match self.spare_session(endpoint) {
            Some(server) => Ok(server),
            None => Ok(Server::connect(self.spec(endpoint)?)?),
        }
    }

    /// The spare session opened ahead on the node, if there is one and it is still alive.
    pub fn spare_session(&mut self, endpoint: &str) -> Option<Server> {
        let mut server = self.spare.remove(endpoint)?.join().ok()??;
        server.conn.ping().is_ok().then_some(server)
    }

    /// Prepares `statements` on the node's spare session in the background, while other
    /// steps run: a statement of a thousand placeholders takes about as long to prepare as to
    /// execute, and the row step that takes the session finds them ready (the driver keeps
    /// them by their text). A statement that fails to prepare is left for its step to run
    /// and report.
    pub fn prepare_ahead(&mut self, endpoint: &str, statements: Vec<String>) {
        let Some(opening) = self.spare.remove(endpoint) else {
            return;
        };
        let preparing = std::thread::spawn(move || {
            let mut server = opening.join().ok()??;
            for sql in &statements {
                if server.conn.prep(sql).is_err() {
                    break;
                }
            }
            Some(server)
        });
        self.spare.insert(endpoint.to_string(), preparing);
    }

    /// Two nodes' sessions at once (to work on both in parallel), opened on first use.
    pub fn pair(&mut self, a: &str, b: &str) -> anyhow::Result<(&mut Server, &mut Server)> {
        self.get(a)?;
        self.get(b)?;
        let mut open = self.open.iter_mut().filter(|(ep, _)| *ep == a || *ep == b);
        match (open.next(), open.next()) {
            (Some((first, x)), Some((_, y))) if first == a => Ok((x, y)),
            (Some((_, x)), Some((_, y))) => Ok((y, x)),
            _ => anyhow::bail!("{a} and {b} are the same node"),
        }
    }
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
fn injected_failure(step: usize) -> Result<(), ApplyError> {
    match test_hook("REPLMEND_TEST_FAIL_AT_STEP") == Some(step) {
        true => Err(ApplyError::Injected { step }),
        false => Ok(()),
    }
}

/// Something replmend changed on a node that must be put back if a later step fails.
struct Undo {
    endpoint: String,
    action: StepTemplate,
    statements: Vec<String>,
    words: String,
    /// Journaled once it is done (read_only put back).
    journal: Option<Entry>,
}

fn exec(conn: &mut mysql::Conn, st: &Statement) -> mysql::Result<()> {
    if st.params.is_empty() {
        conn.query_drop(&st.sql)
    } else {
        conn.exec_drop(&st.sql, st.bind())
    }
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
        if !step.rows.is_empty() {
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
    fn sql_err(step: usize, endpoint: &str) -> impl Fn(mysql::Error) -> ApplyError + '_ {
        move |source| ApplyError::Sql {
            step,
            endpoint: endpoint.to_string(),
            source,
        }
    }

    /// The step's session settings and statements, in order, on `conn`.
    fn exec_step(conn: &mut mysql::Conn, n: usize, step: &Step) -> Result<(), ApplyError> {
        for st in step.session.iter().chain(&step.statements) {
            exec(conn, st).map_err(Self::sql_err(n, &step.endpoint))?;
        }
        Ok(())
    }

    fn run_statements(&mut self, n: usize, step: &Step) -> Result<(), ApplyError> {
        let server = self.nodes.get(&step.endpoint)?;
        Self::exec_step(&mut server.conn, n, step)
    }

    /// A GTID skip on a connection of its own: if it fails halfway, GTID_NEXT stays set on
    /// that session only, never on the one the undo then uses.
    fn run_alone(&mut self, n: usize, step: &Step) -> Result<(), ApplyError> {
        let mut server = self.nodes.session_of_its_own(&step.endpoint)?;
        Self::exec_step(&mut server.conn, n, step)
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

    fn stop(&mut self, n: usize, step: &Step, undo: &mut Vec<Undo>) -> Result<(), ApplyError> {
        // Put back on failure: the threads that ran and that this step stops.
        let running = match (self.running_threads(step)?, step.stops) {
            (Some(Thread::Io), Some(Thread::Sql)) => None,
            (Some(_), Some(Thread::Sql)) => Some(Thread::Sql),
            (running, _) => running,
        };
        self.run_statements(n, step)?;
        if let Some(t) = running {
            let sql = step.flavor.start_replica(t, &step.channel);
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

    fn lift(&mut self, n: usize, step: &Step, undo: &mut Vec<Undo>) -> Result<(), ApplyError> {
        let state = step.read_only.unwrap_or_default();
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

    fn restore_read_only(&mut self, n: usize, step: &Step) -> Result<(), ApplyError> {
        self.run_statements(n, step)?;
        self.journal.record_read_only(&Entry::read_only(
            &self.fingerprint,
            &step.endpoint,
            journal::Action::RestoreReadOnly,
            step.read_only.unwrap_or_default(),
        ))?;
        Ok(())
    }

    fn gtid_executed(&mut self, step: &Step) -> anyhow::Result<bool> {
        let Some(g) = &step.gtid else {
            return Ok(false);
        };
        let server = self.nodes.get(&step.endpoint)?;
        let Some(sql) = server.flavor.gtid_executed_query() else {
            // Advancing gtid_slave_pos is idempotent: setting it again is harmless.
            return Ok(false);
        };
        let r: Option<i64> = server.conn.exec_first(sql, (g.to_string(),))?;
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
        // The replica may name its source differently (a hostname) than we reached it.
        let endpoint = match self.nodes.has(&named) {
            true => Some(named.clone()),
            false => self.nodes.port_endpoint(ch.source_port),
        };
        if let Some(endpoint) = endpoint {
            let source = self.nodes.get(&endpoint)?;
            return Ok(CatchUp::SourceEnd(verify::binlog_end(source)?));
        }
        verify::received(ch).map(CatchUp::Received).ok_or_else(|| {
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
        if !step.action.writes_rows() {
            injected_failure(n)?;
        }
        let done = |d: &str| Ok((StepOutcome::Done, d.to_string()));
        match step.action {
            StepTemplate::StopApplier => {
                self.stop(n, step, undo)?;
                done("stopped")
            }
            StepTemplate::StartApplier => {
                self.run_statements(n, step)?;
                undo.retain(|u| {
                    !(u.endpoint == step.endpoint && u.action == StepTemplate::StartApplier)
                });
                done("started")
            }
            StepTemplate::LiftReadOnly => {
                self.lift(n, step, undo)?;
                done("read_only off")
            }
            StepTemplate::RestoreReadOnly => {
                self.restore_read_only(n, step)?;
                undo.retain(|u| {
                    !(u.endpoint == step.endpoint && u.action == StepTemplate::RestoreReadOnly)
                });
                done("read_only on again")
            }
            StepTemplate::SkipTransaction if self.gtid_executed(step)? => Ok((
                StepOutcome::AlreadyDone,
                "already done (GTID executed)".into(),
            )),
            StepTemplate::SkipTransaction => {
                self.run_alone(n, step)?;
                done("skipped")
            }
            StepTemplate::DeleteConflictingRows
            | StepTemplate::InsertMissingRows
            | StepTemplate::ReinsertUnderFreshKey
            | StepTemplate::CopyUnderFreshKey
            | StepTemplate::ResyncRows => {
                let t = self.row_step(n, step)?;
                report.journaled_rows += t.written;
                report.left_alone.extend(t.left_alone.iter().cloned());
                let what = match step.action {
                    StepTemplate::DeleteConflictingRows => "journaled and deleted",
                    StepTemplate::ResyncRows | StepTemplate::ReinsertUnderFreshKey => {
                        "journaled and written"
                    }
                    _ => "journaled and inserted",
                };
                let mut detail = format!("{} row(s) {what}, {} already done", t.written, t.already);
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
            StepTemplate::Verify => Ok(self.verify(step, report)?),
        }
    }

    /// A row step on its own connection (its session settings apply to it alone): the plan's
    /// statements in order; checks decide which writes are still needed; the intents are
    /// journaled (one fsync) right before the first write, the outcomes right after COMMIT.
    fn row_step(&mut self, n: usize, step: &Step) -> Result<RowTally, ApplyError> {
        let mut tally = RowTally::default();
        if step.rows.is_empty() {
            return Ok(tally);
        }
        // The definition read under this repair's lock (by the re-check), once.
        let schema = self
            .nodes
            .get(&step.endpoint)?
            .table(&step.rows[0].table)
            .map_err(anyhow::Error::from)?;
        let mut server = self.nodes.session_of_its_own(&step.endpoint)?;
        crate::timing::mark("row step session taken");
        let mut rows = RowRun {
            n,
            step,
            fingerprint: self.fingerprint.clone(),
            schema: &schema,
            skip: vec![false; step.rows.len()],
            same_key: same_key(&step.rows),
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
            rows.run(&mut server.conn, self)
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
                    .map(|&i| left_alone_text(&step.rows[i]))
                    .collect();
                Ok(tally)
            }
            Err(e) => {
                let _ = server.conn.query_drop("ROLLBACK");
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
        };
        let mut undo = Vec::new();
        for (i, step) in plan.steps.iter().enumerate() {
            let (outcome, detail) = match self.run_step(i + 1, step, &mut undo, &mut report) {
                Ok(r) => r,
                Err(error) => {
                    let _ = self.journal.flush();
                    let undone = self.undo(undo);
                    return Err(Box::new(ApplyFailure {
                        error,
                        completed: report.steps.iter().map(|s| s.step).collect(),
                        undone,
                    }));
                }
            };
            let result = StepResult {
                step: i + 1,
                endpoint: step.endpoint.clone(),
                action: step.action,
                description: step.description.clone(),
                outcome,
                detail,
            };
            crate::timing::mark(format_args!(
                "step {} {:?} {}",
                i + 1,
                step.action,
                result.detail
            ));
            (self.on_step)(&result);
            report.steps.push(result);
            crash_point(i + 1);
        }
        if let Err(e) = self.journal.flush() {
            return Err(Box::new(ApplyFailure {
                error: e.into(),
                completed: report.steps.iter().map(|s| s.step).collect(),
                undone: Vec::new(),
            }));
        }
        Ok(report)
    }

    /// Puts back, newest first, what the completed steps changed on the topology; says what
    /// it did and what it could not do.
    fn undo(&mut self, undo: Vec<Undo>) -> Vec<String> {
        let mut notes = Vec::new();
        for u in undo.into_iter().rev() {
            let r: anyhow::Result<()> = (|| {
                let server = self.nodes.get(&u.endpoint)?;
                for sql in &u.statements {
                    server.conn.query_drop(sql)?;
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

fn same_key(rows: &[RowChange]) -> HashMap<&[(String, Cell)], Vec<usize>> {
    let mut by_key: HashMap<&[(String, Cell)], Vec<usize>> = HashMap::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        by_key.entry(r.key.as_slice()).or_default().push(i);
    }
    by_key
}

/// One row step in progress.
struct RowRun<'s> {
    n: usize,
    step: &'s Step,
    fingerprint: String,
    schema: &'s TableSchema,
    /// Rows whose effect is already there: their write is not needed.
    skip: Vec<bool>,
    /// Each key's rows in the step, in order: a row's replaced or replacing version is found
    /// without scanning the step (a batch holds thousands of rows).
    same_key: HashMap<&'s [(String, Cell)], Vec<usize>>,
    /// The rows whose write is needed, in the order they were checked.
    needed: Vec<usize>,
    /// Every row's intent and journal line, being built on a thread of their own while the
    /// step's first statements run (serializing thousands of row images took milliseconds
    /// between the locking read and the journal's sync).
    prepared: Option<std::sync::mpsc::Receiver<IntentLines>>,
    intents: journal::Intents,
    journaled: bool,
    /// START TRANSACTION ran: a write is not durable (nor seen) before COMMIT, so the intents'
    /// sync may run beside it, and COMMIT waits for it.
    in_transaction: bool,
    syncing: Option<journal::Syncing>,
    /// COMMIT was sent: from here a failure does not prove the change did not happen.
    committing: bool,
    /// resync: rows found changed since they were read, skipped.
    left_alone: Vec<usize>,
}

impl RowRun<'_> {
    fn run(&mut self, conn: &mut mysql::Conn, a: &mut Applier<'_>) -> Result<(), ApplyError> {
        let err = Applier::sql_err(self.n, &self.step.endpoint);
        for st in &self.step.session {
            exec(conn, st).map_err(&err)?;
        }
        crate::timing::mark("row step session set up");
        for st in &self.step.statements {
            match st.role {
                Role::Check { row } => self.check(conn, st, row)?,
                Role::CheckRows { first, count } => self.check_rows(conn, st, first, count)?,
                Role::Write { row } => self.write(conn, st, row..row + 1, a)?,
                Role::WriteRows { first, count } => {
                    self.write(conn, st, first..first + count, a)?
                }
                Role::ReadBack { first, count } => self.read_back(conn, st, first, count)?,
                Role::Control if st.sql == "COMMIT" => {
                    self.synced()?;
                    injected_failure(self.n)?;
                    self.committing = true;
                    exec(conn, st).map_err(&err)?;
                }
                Role::Control => {
                    exec(conn, st).map_err(&err)?;
                    if st.sql == "START TRANSACTION" {
                        self.in_transaction = true;
                    }
                }
            }
        }
        self.synced()
    }

    /// Waits for the intents being synced (if any) and takes them back.
    fn synced(&mut self) -> Result<(), ApplyError> {
        let Some(s) = self.syncing.take() else {
            return Ok(());
        };
        let (intents, done) = s.wait();
        self.intents = intents;
        Ok(done?)
    }

    /// The write of rows `rows` (one statement), once every row is checked: the intents are
    /// journaled (one fsync) before the first write. Rows already done are no-ops of a
    /// delete (their key is gone); an insert batch runs whole or not at all (a row of it
    /// that appeared since the diagnosis refuses the step). The rows it changes must be
    /// exactly the ones still needed.
    fn write(
        &mut self,
        conn: &mut mysql::Conn,
        st: &Statement,
        rows: std::ops::Range<usize>,
        a: &mut Applier<'_>,
    ) -> Result<(), ApplyError> {
        let needed = rows.clone().filter(|r| !self.skip[*r]).count();
        if needed == 0 {
            return Ok(());
        }
        let insert = self.step.rows[rows.start].action == RowAction::Insert;
        if let Some(done) = rows.clone().find(|r| self.skip[*r]).filter(|_| insert) {
            return Err(self.changed(done));
        }
        if !self.journaled {
            crate::timing::mark("rows checked");
            let intents = self.take_intents();
            if self.in_transaction {
                self.syncing = Some(a.journal.append_syncing(intents)?);
            } else {
                a.journal.append_intents(&intents)?;
                self.intents = intents;
            }
            crate::timing::mark("intents journaled");
            self.journaled = true;
        }
        exec(conn, st).map_err(Applier::sql_err(self.n, &self.step.endpoint))?;
        crate::timing::mark("rows written");
        if conn.affected_rows() != needed as u64 {
            return Err(self.changed(rows.start));
        }
        Ok(())
    }

    /// What the server wrote for the step's inserted rows `first..first + count`, read
    /// inside the transaction before COMMIT: each insert that ran must be there exactly as
    /// journaled, else the step rolls back (its intents get their rolled_back outcome).
    fn read_back(
        &mut self,
        conn: &mut mysql::Conn,
        st: &Statement,
        first: usize,
        count: usize,
    ) -> Result<(), ApplyError> {
        if (first..first + count).all(|i| self.skip[i]) {
            return Ok(());
        }
        let planned = &self.step.rows[first];
        let found = crate::conn::read_rows(conn, self.schema, &planned.image.columns, st)
            .map_err(Applier::sql_err(self.n, &self.step.endpoint))?;
        let written: HashMap<Vec<(String, Cell)>, crate::diagnosis::Row> = found
            .into_iter()
            .filter_map(|row| {
                let key: Option<Vec<(String, Cell)>> = planned
                    .key
                    .iter()
                    .map(|(c, _)| row.get(c).map(|v| (c.clone(), v.clone())))
                    .collect();
                Some((key?, row))
            })
            .collect();
        for i in (first..first + count).filter(|i| !self.skip[*i]) {
            let r = &self.step.rows[i];
            match written.get(&r.key) {
                Some(w) if *w == r.image => {}
                other => {
                    return Err(ApplyError::WrittenOtherwise {
                        step: self.n,
                        table: r.table.to_string(),
                        key: key_text(&r.key),
                        found: other.map_or(
                            "no row at that key".into(),
                            crate::diagnosis::render::row_words,
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    fn changed(&self, row: usize) -> ApplyError {
        let r = &self.step.rows[row];
        let (table, key) = (r.table.to_string(), key_text(&r.key));
        let rekey = matches!(
            self.step.action,
            StepTemplate::ReinsertUnderFreshKey | StepTemplate::CopyUnderFreshKey
        );
        match r.action {
            RowAction::Insert if rekey => ApplyError::KeyTaken {
                step: self.n,
                table,
                key,
            },
            _ => ApplyError::RowChanged {
                step: self.n,
                table,
                key,
            },
        }
    }

    /// The locking read of one row: decides whether its write is needed, already done, or
    /// must not happen (the row changed since the diagnosis).
    fn check(
        &mut self,
        conn: &mut mysql::Conn,
        st: &Statement,
        row: usize,
    ) -> Result<(), ApplyError> {
        let r: &RowChange = &self.step.rows[row];
        let current = crate::conn::read_row(conn, self.schema, &r.image.columns, st)
            .map_err(Applier::sql_err(self.n, &self.step.endpoint))?;
        self.decide(row, current)
    }

    /// The locking read of rows `first..first + count` at once: each row found is matched to
    /// its key by the key columns' values. A row the server matched under its collation but
    /// whose key differs byte for byte holds a planned key with another version: the step
    /// refuses, as for any row changed since the diagnosis.
    fn check_rows(
        &mut self,
        conn: &mut mysql::Conn,
        st: &Statement,
        first: usize,
        count: usize,
    ) -> Result<(), ApplyError> {
        let batch = first..first + count;
        let planned = &self.step.rows[first];
        let found = crate::conn::read_rows(conn, self.schema, &planned.image.columns, st)
            .map_err(Applier::sql_err(self.n, &self.step.endpoint))?;
        crate::timing::mark(format_args!("{} rows read for update", found.len()));
        let mut current: Vec<Option<crate::diagnosis::Row>> = vec![None; count];
        for row in found {
            let key: Option<Vec<(String, Cell)>> = planned
                .key
                .iter()
                .map(|(c, _)| row.get(c).map(|v| (c.clone(), v.clone())))
                .collect();
            let at = key
                .as_deref()
                .and_then(|k| self.same_key.get(k))
                .and_then(|rows| rows.iter().find(|i| batch.contains(i)));
            let Some(&i) = at else {
                return Err(ApplyError::RowChanged {
                    step: self.n,
                    table: planned.table.to_string(),
                    key: key.map(|k| key_text(&k)).unwrap_or_default(),
                });
            };
            current[i - first] = Some(row);
        }
        for (i, c) in current.into_iter().enumerate() {
            self.decide(first + i, c)?;
        }
        Ok(())
    }

    /// What the row's current version (read under the lock) means for its write: needed,
    /// already done, or refused (it changed since the diagnosis); a needed row's intent is
    /// recorded for the journal.
    fn decide(
        &mut self,
        row: usize,
        current: Option<crate::diagnosis::Row>,
    ) -> Result<(), ApplyError> {
        let r: &RowChange = &self.step.rows[row];
        // An insert after the same step deletes the same key (resync replaces a version):
        // at check time the row to be deleted is still there.
        let same = &self.same_key[r.key.as_slice()];
        let replaced = same
            .iter()
            .take_while(|i| **i < row)
            .find(|i| self.step.rows[**i].action == RowAction::Delete && !self.skip[**i])
            .map(|i| &self.step.rows[*i].image);
        // ...and a delete whose key the same step inserts again: already replaced when the
        // row holds the version to insert (a re-run).
        let replacement = same
            .iter()
            .filter(|i| **i > row)
            .find(|i| self.step.rows[**i].action == RowAction::Insert)
            .map(|i| &self.step.rows[*i].image);
        let needed = match (r.action, current) {
            (RowAction::Delete, None) => false,
            (RowAction::Delete, Some(c)) if c == r.image => true,
            (RowAction::Delete, Some(c)) if Some(&c) == replacement => false,
            // Replaced under a collation-equal key by an earlier run of this step.
            (RowAction::Delete, Some(c))
                if self.step.action == StepTemplate::ResyncRows && Some(&c) == r.after.as_ref() =>
            {
                false
            }
            (RowAction::Insert, None) => true,
            (RowAction::Insert, Some(c)) if Some(&c) == replaced => true,
            (RowAction::Insert, Some(c)) if self.replaced_under_collation(row, &c) => true,
            (RowAction::Insert, Some(c)) if c == r.image => false,
            _ if self.step.action == StepTemplate::ResyncRows => {
                self.skip[row] = true;
                self.left_alone.push(row);
                return Ok(());
            }
            _ => return Err(self.changed(row)),
        };
        self.skip[row] = !needed;
        if needed {
            self.needed.push(row);
        }
        Ok(())
    }

    /// resync and restore: whether an earlier delete of this step removes `current`, the
    /// version the locking read of this insert's key found when the delete holds the key in
    /// other bytes its collation calls equal (`'ABC'` replaced by `'abc'`): it is gone
    /// before the insert runs.
    fn replaced_under_collation(&self, row: usize, current: &crate::diagnosis::Row) -> bool {
        let r = &self.step.rows[row];
        self.step.action == StepTemplate::ResyncRows
            && r.action == RowAction::Insert
            && self.step.rows[..row].iter().enumerate().any(|(i, d)| {
                d.action == RowAction::Delete
                    && !self.skip[i]
                    && d.table == r.table
                    && d.image == *current
            })
    }

    /// The needed rows' intents: the lines built beside the step's first statements (all of
    /// them as they are when every row is needed, the usual case), or (if that thread is
    /// gone) built now.
    fn take_intents(&mut self) -> journal::Intents {
        let built = self.prepared.take().and_then(|rx| rx.recv().ok());
        crate::timing::mark("intents received");
        let all = self.needed.len() == self.step.rows.len()
            && self.needed.iter().enumerate().all(|(i, &row)| i == row);
        match built {
            Some(b) if all && b.ends.len() == self.step.rows.len() => {
                journal::Intents::from_lines(b.text, b.ends.len())
            }
            _ => {
                let mut intents = journal::Intents::default();
                for &row in &self.needed {
                    match built.as_ref().and_then(|b| b.line(row)) {
                        Some(line) => intents.push(line),
                        None => {
                            intents.push(&intent_line(self.step, self.n, &self.fingerprint, row))
                        }
                    }
                }
                intents
            }
        }
    }
}

/// The journal line of the intent of the step's row `row` (the plan's row: what the locking
/// read then finds decides only whether it is needed).
fn intent_line(step: &Step, n: usize, fingerprint: &str, row: usize) -> String {
    let r = &step.rows[row];
    let action = match r.action {
        RowAction::Delete => journal::Action::Delete,
        RowAction::Insert => journal::Action::Insert,
    };
    // As the step's session runs it: a restore of a change made with the binary log on
    // writes with it on too.
    let sql_log_bin = !step
        .session
        .contains(&crate::sql::row_write_session(false)[0]);
    journal::RowIntent {
        fingerprint,
        id: &format!("{fingerprint}/{n}/{row}"),
        node: &step.endpoint,
        action,
        table: &r.table,
        sql_log_bin,
        image: &r.image,
        key: &r.key,
        after: r.after.as_ref(),
    }
    .line()
}

/// Every row's intent line, in row order, in one text.
pub struct IntentLines {
    text: String,
    /// Where each row's line ends in `text`.
    ends: Vec<usize>,
}

impl IntentLines {
    fn line(&self, row: usize) -> Option<&str> {
        let start = match row {
            0 => 0,
            _ => *self.ends.get(row - 1)?,
        };
        self.text.get(start..*self.ends.get(row)?)
    }
}

fn intent_lines(step: &Step, n: usize, fingerprint: &str) -> IntentLines {
    let mut text = String::new();
    let mut ends = Vec::with_capacity(step.rows.len());
    for row in 0..step.rows.len() {
        text.push_str(&intent_line(step, n, fingerprint, row));
        ends.push(text.len());
    }
    IntentLines { text, ends }
}

#[cfg(test)]
mod tests {
    use super::IntentLines;

    #[test]
    fn intent_lines_give_back_each_row_line() {
        let b = IntentLines {
            text: "{\"a\":1}\n{\"b\":22}\n{}\n".into(),
            ends: vec![8, 17, 20],
        };
        let lines: Vec<Option<&str>> = (0..4).map(|i| b.line(i)).collect();
        assert_eq!(
            lines,
            [
                Some("{\"a\":1}\n"),
                Some("{\"b\":22}\n"),
                Some("{}\n"),
                None
            ]
        );
    }
}
