//! `replmend watch`: a daemon that polls every channel of one or more replicas, diagnoses each
//! new applier error, resolves on its own only what its policy allows (through the same
//! session as `repair --yes`: lock, re-check, preflight, journal, verification), and reports
//! everything else for a human — as log lines, hook commands and Prometheus metrics.
//!
//! One watcher per replica: it holds the named lock `replmend.watch` there for as long as it
//! watches. A lost server is retried with a growing backoff; SIGTERM/SIGINT let the current
//! repair finish, then the watcher exits.

pub mod event;
pub mod hook;
pub mod metrics;
pub mod policy;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use mysql::prelude::Queryable;

use crate::conn::{ConnSpec, ConnectError, Server};
use crate::diagnosis::Diagnosis;
use crate::journal::{self, Journal};
use crate::planner::playbook::Playbook;
use crate::planner::{Policy, RemedyId, Winner};
use crate::repair::lock::LockError;
use crate::repair::session::{self, Options, Session};
use crate::repair::verify::Resumed;
use crate::status::model::{ChannelStatus, StatusReport};
use crate::status::{Health, errant};
use event::{ActionFacts, ActionOutcome, Event, IncidentFacts, Kind};
use metrics::{ChannelGauges, Shared};
use policy::{Decision, WatchPolicy};

pub const WATCH_LOCK: &str = "replmend.watch";

const MAX_BACKOFF: Duration = Duration::from_secs(30);

pub struct Config {
    pub replicas: Vec<ConnSpec>,
    pub policy: WatchPolicy,
    pub playbooks: Vec<Playbook>,
    /// None: the dated default journal, chosen at each repair.
    pub journal: Option<PathBuf>,
    pub interval: Duration,
    pub errant_interval: Duration,
    /// How long a repair waits for the replica to catch up.
    pub timeout: Duration,
    /// How long a diagnosis may take before the incident is left for a human.
    pub diagnose_timeout: Duration,
    /// Batch repairs: how many following transactions an overwrite reads ahead.
    pub lookahead: usize,
    /// Report what the policy would do, never do it.
    pub dry_run: bool,
}

/// Where events go: the log (stdout), the hooks, and nothing else.
pub struct Sinks {
    pub print: Box<dyn Fn(&Event)>,
    pub hooks: hook::Hooks,
    pub metrics: Shared,
}

impl Sinks {
    fn emit(&self, e: &Event) {
        (self.print)(e);
        let kind = serde_json::to_value(e.event)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        self.hooks.send(&kind, e.json());
    }

    fn metrics(&self) -> std::sync::MutexGuard<'_, metrics::Metrics> {
        // A panicked holder cannot leave the counters half-written in a way that matters.
        self.metrics.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What the watcher did about the applier error a channel is stopped on.
#[derive(Debug, Clone, PartialEq)]
enum Handled {
    /// Reported; waiting for a human.
    Waiting,
    /// Repaired (the channel will show a new error, or none, if it worked).
    Acted,
    /// The repair was refused because another repair held the lock: tried again later.
    LockHeld { attempts: u32, retry_at: Instant },
    /// The stop could not be diagnosed (a source down or not answering): waits for a human,
    /// and is diagnosed again later, so it is resolved once the source is back.
    Undiagnosed { attempts: u32, retry_at: Instant },
}

/// How a stop already seen is looked at again.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Again {
    /// First time: reported whatever is decided.
    New,
    /// After a held lock: the decision was reported the first time.
    LockHeld,
    /// After a failed diagnosis: reported only once it is diagnosed.
    Undiagnosed(u32),
}

/// A channel that is not running without an applier error, as one state each.
#[derive(Debug, Clone, PartialEq)]
enum NotRunning {
    /// The receiver is (re)connecting to its source, the applier runs: it resolves itself
    /// when the source answers again.
    Reconnecting { last_error: Option<(u32, String)> },
    /// The receiver stopped on an error: a human must look.
    ReceiverFailed { errno: u32, message: String },
    /// A thread stopped without an error (stopped by someone, or by an interrupted repair).
    Stopped,
}

impl NotRunning {
    fn of(ch: &ChannelStatus) -> NotRunning {
        use crate::status::model::ThreadState;
        let err = ch
            .last_io_error
            .as_ref()
            .map(|e| (e.number, e.message.clone()));
        match (ch.io_thread, ch.sql_thread, err) {
            (ThreadState::Connecting, ThreadState::Running, last_error) => {
                NotRunning::Reconnecting { last_error }
            }
            (ThreadState::Stopped, _, Some((errno, message))) => {
                NotRunning::ReceiverFailed { errno, message }
            }
            _ => NotRunning::Stopped,
        }
    }

    /// The state's identity: a reconnect's attempt counters and a message's numbers (retry
    /// counts, times) do not make a new state.
    fn key(&self) -> String {
        match self {
            NotRunning::Reconnecting { .. } => "reconnecting".into(),
            NotRunning::ReceiverFailed { errno, message } => {
                let words: String = message.chars().filter(|c| !c.is_ascii_digit()).collect();
                format!("io|{errno}|{words}")
            }
            NotRunning::Stopped => "not_running".into(),
        }
    }

    /// Whether a seen key is one of these states (not an applier incident's).
    fn is_key(key: &str) -> bool {
        key == "reconnecting" || key == "not_running" || key.starts_with("io|")
    }

    fn text(&self) -> String {
        match self {
            NotRunning::Reconnecting { last_error: None } => {
                "the receiver is reconnecting to its source; the applier runs (reported once; recovered is reported when it is back)".into()
            }
            NotRunning::Reconnecting {
                last_error: Some((n, m)),
            } => format!(
                "the receiver is reconnecting to its source (last error {n}: {m}); the applier runs (reported once; recovered is reported when it is back)"
            ),
            NotRunning::ReceiverFailed { errno, message } => {
                format!("WAITING FOR A HUMAN: the receiver stopped on error {errno}: {message}")
            }
            NotRunning::Stopped => "WAITING FOR A HUMAN: a replication thread is stopped, with no applier error (stopped by someone, or left by an interrupted repair): check it, then START it".into(),
        }
    }
}

/// Diagnosis retries: 15 s, 30 s, 60 s … at most 5 minutes apart.
fn undiagnosed_retry(attempts: u32) -> Instant {
    Instant::now() + Duration::from_secs((15u64 << attempts.min(5).saturating_sub(1)).min(300))
}

/// One replica being watched.
struct Replica {
    spec: ConnSpec,
    endpoint: String,
    conn: Option<Server>,
    /// The connection holding `replmend.watch` on this replica.
    lock: Option<Server>,
    backoff: Duration,
    next_try: Instant,
    /// Per channel: the error seen (its identity) and what was done about it.
    seen: HashMap<String, (String, Handled)>,
    errant: Option<String>,
    next_errant: Instant,
    /// An errant-GTID look running on its own thread.
    errant_job: Option<std::sync::mpsc::Receiver<Vec<errant::Errant>>>,
    ever_connected: bool,
}

/// The identity of an applier stop: the same error at the same place is the same incident.
fn stop_key(ch: &ChannelStatus) -> String {
    let err = ch.applier_error();
    format!(
        "{}|{}|{:?}|{:?}",
        err.map_or(0, |e| e.number),
        err.map(|e| e.message.as_str()).unwrap_or(""),
        ch.relay_source_log_file,
        ch.exec_source_log_pos
    )
}

/// Another watcher holds the replica's watch lock: this one refuses to watch it too.
#[derive(Debug, thiserror::Error)]
#[error("another replmend watch is watching {endpoint} (lock '{WATCH_LOCK}' is held there)")]
pub struct WatchedElsewhere {
    pub endpoint: String,
}

fn take_lock(server: &mut Server) -> Result<bool> {
    // The lock's connection is otherwise idle: the server's wait_timeout (8 hours by default)
    // would end it, and the lock with it, without a word.
    server
        .conn
        .query_drop("SET SESSION wait_timeout = 31536000")
        .map_err(|e| anyhow::anyhow!(crate::describe::describe_mysql(&e)))?;
    let got: Option<Option<i64>> = server
        .conn
        .exec_first("SELECT GET_LOCK(?, 0)", (WATCH_LOCK,))
        .map_err(|e| anyhow::anyhow!(crate::describe::describe_mysql(&e)))?;
    Ok(got.flatten() == Some(1))
}

impl Replica {
    fn new(spec: ConnSpec) -> Replica {
        let now = Instant::now();
        Replica {
            endpoint: spec.endpoint(),
            spec,
            conn: None,
            lock: None,
            backoff: Duration::from_millis(500),
            next_try: now,
            seen: HashMap::new(),
            errant: None,
            next_errant: now,
            errant_job: None,
            ever_connected: false,
        }
    }

    /// Opens the status connection and takes the watch lock. Ok(false): not now (retry).
    fn connect(&mut self) -> Result<()> {
        let mut lock = Server::connect_with_timeout(&self.spec, Duration::from_secs(5))?;
        if !take_lock(&mut lock)? {
            return Err(WatchedElsewhere {
                endpoint: self.endpoint.clone(),
            }
            .into());
        }
        let mut conn = Server::connect_with_timeout(&self.spec, Duration::from_secs(5))?;
        // Fails here, at start, for a server that is not a replica.
        crate::status::read_status(&mut conn)?;
        self.lock = Some(lock);
        self.conn = Some(conn);
        self.backoff = Duration::from_millis(500);
        Ok(())
    }

    fn lost(&mut self) {
        self.conn = None;
        self.lock = None;
        self.next_try = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }
}

pub struct Watcher {
    config: Config,
    sinks: Sinks,
    replicas: Vec<Replica>,
    stop: Arc<AtomicBool>,
}

impl Watcher {
    /// Connects to every replica and takes its watch lock. A replica that cannot be reached
    /// is retried in the loop (a daemon may start before its servers); one held by another
    /// watcher, refusing the credentials or not a replica fails here.
    pub fn start(config: Config, sinks: Sinks, stop: Arc<AtomicBool>) -> Result<Watcher> {
        let mut replicas: Vec<Replica> =
            config.replicas.iter().cloned().map(Replica::new).collect();
        for r in &mut replicas {
            match r.connect() {
                Ok(()) => r.ever_connected = true,
                Err(e) if is_unreachable(&e) => {
                    sinks.metrics().up.insert(r.endpoint.clone(), 0);
                    sinks.emit(&Event::new(
                        Kind::ConnectionLost,
                        &r.endpoint,
                        format!("{}; retrying", crate::describe::message(&e)),
                    ));
                    r.lost();
                }
                Err(e) => return Err(e),
            }
        }
        let w = Watcher {
            config,
            sinks,
            replicas,
            stop,
        };
        for r in w.replicas.iter().filter(|r| r.conn.is_some()) {
            w.sinks.emit(&Event::new(
                Kind::Watching,
                &r.endpoint,
                "watching every channel".into(),
            ));
        }
        Ok(w)
    }

    /// Polls until SIGTERM/SIGINT. A repair in progress finishes first.
    pub fn run(mut self) -> Result<()> {
        while !self.stop.load(Ordering::SeqCst) {
            let mut acted = false;
            for i in 0..self.replicas.len() {
                acted |= self.poll(i);
                if self.stop.load(Ordering::SeqCst) {
                    break;
                }
            }
            // Right after a repair the next conflict of a stream is usually waiting.
            if !acted {
                self.sleep(self.config.interval);
            }
        }
        for r in &self.replicas {
            self.sinks.emit(&Event::new(
                Kind::Stopped,
                &r.endpoint,
                "stopped on a signal".into(),
            ));
        }
        self.sinks.hooks.finish();
        Ok(())
    }

    fn sleep(&self, d: Duration) {
        let until = Instant::now() + d;
        while !self.stop.load(Ordering::SeqCst) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20).min(d));
        }
    }

    /// One look at one replica; true when a repair ran.
    fn poll(&mut self, i: usize) -> bool {
        if !self.ensure_connected(i) {
            return false;
        }
        let r = &mut self.replicas[i];
        let conn = r.conn.as_mut().expect("connected");
        let report = match crate::status::read_status(conn) {
            Ok(report) => report,
            Err(e) => {
                let msg = crate::describe::message(&anyhow::Error::from(e));
                self.connection_lost(i, msg);
                return false;
            }
        };
        self.gauges(i, &report);
        if !self.check_errant(i, &report) {
            self.connection_lost(i, "the connection holding the watch lock was lost".into());
            return false;
        }
        let mut acted = false;
        for ch in &report.channels {
            match ch.health {
                Health::SqlError => acted |= self.incident(i, ch),
                Health::Healthy => self.running(i, ch),
                Health::IoError | Health::NotRunning => self.not_running(i, ch),
            }
        }
        acted
    }

    /// A healthy channel: whatever was seen on it is over; a stop or a reconnecting receiver
    /// that was reported gets its recovery reported, once.
    fn running(&mut self, i: usize, ch: &ChannelStatus) {
        let r = &mut self.replicas[i];
        let Some((key, _)) = r.seen.remove(&ch.name) else {
            return;
        };
        if !NotRunning::is_key(&key) {
            return;
        }
        let e = Event::new(
            Kind::Recovered,
            &r.endpoint,
            "replication runs again (receiver and applier)".into(),
        )
        .on_channel(&ch.name);
        self.sinks.emit(&e);
    }

    /// A channel stopped without an applier error (by someone, by an interrupted repair of
    /// the other direction), whose receiver failed, or whose receiver is reconnecting to its
    /// source: nothing the watcher repairs, reported once per state (a reconnect's attempt
    /// counter is not a new state) so a human knows.
    fn not_running(&mut self, i: usize, ch: &ChannelStatus) {
        let state = NotRunning::of(ch);
        let key = state.key();
        let r = &mut self.replicas[i];
        if r.seen.get(&ch.name).is_some_and(|(k, _)| *k == key) {
            return;
        }
        r.seen.insert(ch.name.clone(), (key, Handled::Waiting));
        let e = Event::new(Kind::NotRunning, &r.endpoint, state.text()).on_channel(&ch.name);
        self.sinks.emit(&e);
    }

    fn ensure_connected(&mut self, i: usize) -> bool {
        let r = &mut self.replicas[i];
        if r.conn.is_some() {
            return true;
        }
        if Instant::now() < r.next_try {
            return false;
        }
        match r.connect() {
            Ok(()) => {
                let first = !r.ever_connected;
                r.ever_connected = true;
                let (kind, msg) = match first {
                    true => (Kind::Watching, "reachable; watching every channel"),
                    false => (
                        Kind::ConnectionRestored,
                        "reconnected; watching every channel",
                    ),
                };
                let e = Event::new(kind, &r.endpoint, msg.into());
                if !first {
                    *self
                        .sinks
                        .metrics()
                        .reconnects
                        .entry(r.endpoint.clone())
                        .or_default() += 1;
                }
                self.sinks.emit(&e);
                true
            }
            Err(e) => {
                // Quietly: the loss was reported once; each retry is not news.
                r.lost();
                if !is_unreachable(&e) {
                    eprintln!("replmend: {}: {}", r.endpoint, crate::describe::message(&e));
                }
                false
            }
        }
    }

    fn connection_lost(&mut self, i: usize, msg: String) {
        let r = &mut self.replicas[i];
        r.lost();
        self.sinks.metrics().up.insert(r.endpoint.clone(), 0);
        let e = Event::new(
            Kind::ConnectionLost,
            &r.endpoint,
            format!("{msg}; reconnecting"),
        );
        self.sinks.emit(&e);
    }

    fn gauges(&self, i: usize, report: &StatusReport) {
        let r = &self.replicas[i];
        let mut m = self.sinks.metrics();
        m.up.insert(r.endpoint.clone(), 1);
        for ch in &report.channels {
            let waiting = matches!(
                r.seen.get(&ch.name),
                Some((_, Handled::Waiting | Handled::Undiagnosed { .. }))
            ) && ch.health == Health::SqlError;
            m.channels.insert(
                (r.endpoint.clone(), ch.name.clone()),
                ChannelGauges {
                    io_running: ch.io_thread == crate::status::model::ThreadState::Running,
                    sql_running: ch.sql_thread == crate::status::model::ThreadState::Running,
                    lag_seconds: ch.seconds_behind_source,
                    last_errno: ch.applier_error().map_or(0, |e| e.number),
                    waiting,
                },
            );
        }
    }

    /// Every `errant_interval`: whether the lock is still held (false: its connection is
    /// gone), and errant GTIDs. Those connect to every source, which may hang until a
    /// connect timeout when a source is down: they are looked for on a thread of their own,
    /// and the result is taken at a later poll, so a reaction is never delayed by them.
    fn check_errant(&mut self, i: usize, report: &StatusReport) -> bool {
        let r = &mut self.replicas[i];
        if let Some(rx) = &r.errant_job {
            match rx.try_recv() {
                Ok(found) => {
                    r.errant_job = None;
                    self.errant_found(i, found);
                }
                Err(std::sync::mpsc::TryRecvError::Empty) => {}
                Err(std::sync::mpsc::TryRecvError::Disconnected) => r.errant_job = None,
            }
            return true;
        }
        let r = &mut self.replicas[i];
        if Instant::now() < r.next_errant {
            return true;
        }
        r.next_errant = Instant::now() + self.config.errant_interval;
        if r.lock.as_mut().is_none_or(|l| l.conn.ping().is_err()) {
            return false;
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let (spec, report) = (r.spec.clone(), report.clone());
        let spawned = std::thread::Builder::new()
            .name("errant".into())
            .spawn(move || {
                let found = Server::connect(&spec)
                    .map(|mut s| errant::find(&mut s, &spec, &report, None))
                    .unwrap_or_default();
                let _ = tx.send(found);
            });
        if spawned.is_ok() {
            r.errant_job = Some(rx);
        }
        true
    }

    /// Reports errant GTIDs when they differ from the last ones reported.
    fn errant_found(&mut self, i: usize, found: Vec<errant::Errant>) {
        let r = &mut self.replicas[i];
        let summary: Vec<String> = found.iter().map(|e| e.gtids.clone()).collect();
        let summary = summary.join(",");
        self.sinks
            .metrics()
            .errant
            .insert(r.endpoint.clone(), found.len() as u64);
        if r.errant.as_deref() == Some(summary.as_str()) {
            return;
        }
        r.errant = Some(summary.clone());
        if found.is_empty() {
            return;
        }
        let mut e = Event::new(
            Kind::Errant,
            &r.endpoint,
            format!(
                "errant GTIDs (executed here, absent from its sources): {summary}; see `replmend repair --remedy inject-errant --dry-run`"
            ),
        );
        e.errant = found;
        self.sinks.emit(&e);
    }

    /// A channel stopped on an applier error: new ones are diagnosed and decided on.
    fn incident(&mut self, i: usize, ch: &ChannelStatus) -> bool {
        let key = stop_key(ch);
        let r = &self.replicas[i];
        let mut again = Again::New;
        match r.seen.get(&ch.name) {
            Some((k, Handled::LockHeld { retry_at, .. })) if *k == key => {
                if Instant::now() < *retry_at {
                    return false;
                }
                again = Again::LockHeld;
            }
            Some((k, Handled::Undiagnosed { retry_at, attempts })) if *k == key => {
                if Instant::now() < *retry_at {
                    return false;
                }
                again = Again::Undiagnosed(*attempts);
            }
            Some((k, _)) if *k == key => return false,
            _ => {
                let errno = ch.applier_error().map_or(0, |e| e.number);
                *self
                    .sinks
                    .metrics()
                    .incidents
                    .entry((r.endpoint.clone(), ch.name.clone(), errno))
                    .or_default() += 1;
            }
        }
        let endpoint = r.endpoint.clone();
        let err = ch.applier_error();
        let mut facts = IncidentFacts {
            errno: err.map_or(0, |e| e.number),
            error: err.map(|e| e.message.clone()).unwrap_or_default(),
            fingerprint: None,
            table: None,
            kind: None,
        };
        let (decision, diagnosis) = self.decide(i, ch, &mut facts);
        if self.stop.load(Ordering::SeqCst) {
            // Interrupted by a signal: nothing was decided, nothing to report.
            return false;
        }
        let report = match again {
            Again::New => true,
            Again::LockHeld => false,
            Again::Undiagnosed(_) => diagnosis.is_some(),
        };
        if report {
            let mut text = incident_text(&facts, &decision);
            if self.config.dry_run && matches!(decision, Decision::Repair { .. }) {
                text = format!(
                    "DRY RUN, nothing done: {}",
                    text.replacen("repairing", "would repair", 1)
                );
            }
            let mut e = Event::new(Kind::Incident, &endpoint, text).on_channel(&ch.name);
            e.incident = Some(facts.clone());
            e.decision = Some(decision.clone());
            self.sinks.emit(&e);
        }
        let handled = match (decision, diagnosis) {
            (
                Decision::Repair {
                    remedy,
                    policy,
                    allow_data_loss,
                    ..
                },
                Some(d),
            ) if !self.config.dry_run => self.repair(i, ch, &d, remedy, policy, allow_data_loss),
            (_, None) => {
                let attempts = match again {
                    Again::Undiagnosed(n) => n + 1,
                    _ => 1,
                };
                Handled::Undiagnosed {
                    attempts,
                    retry_at: undiagnosed_retry(attempts),
                }
            }
            _ => Handled::Waiting,
        };
        let acted = handled == Handled::Acted;
        self.replicas[i]
            .seen
            .insert(ch.name.clone(), (key, handled));
        acted
    }

    /// The channel's diagnosis, on a thread of its own: a node that accepts connections but
    /// does not answer (hung, overloaded) would hold it until the driver's read timeout, and
    /// the watcher must keep answering signals and watching its other replicas. Past
    /// `diagnose_timeout` the diagnosis is abandoned (it only reads) and the incident waits;
    /// on SIGTERM/SIGINT it is abandoned at once.
    fn diagnose_within(&self, i: usize, channel: &str) -> Result<Diagnosis> {
        let (tx, rx) = std::sync::mpsc::channel();
        let (spec, name) = (self.replicas[i].spec.clone(), channel.to_string());
        std::thread::Builder::new()
            .name("diagnose".into())
            .spawn(move || {
                let diagnosed = crate::inspect::diagnose(&spec, None, Some(&name));
                // Nothing to diagnose any more (it started again) is not a diagnosis.
                let _ = tx.send(diagnosed.and_then(|d| Ok(d.stopped()?)));
            })?;
        let started = Instant::now();
        loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(result) => return result,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    anyhow::bail!("the diagnosis ended without a result")
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            }
            if self.stop.load(Ordering::SeqCst) {
                anyhow::bail!("stopping on a signal");
            }
            if started.elapsed() > self.config.diagnose_timeout {
                anyhow::bail!(
                    "the diagnosis did not finish within {} s: a node accepts connections but does not answer",
                    self.config.diagnose_timeout.as_secs()
                );
            }
        }
    }

    /// Diagnoses the channel and applies the policy; the facts get what was learnt.
    fn decide(
        &self,
        i: usize,
        ch: &ChannelStatus,
        facts: &mut IncidentFacts,
    ) -> (Decision, Option<Diagnosis>) {
        let d = match self.diagnose_within(i, &ch.name) {
            Ok(d) => d,
            Err(e) => {
                let reason = format!(
                    "not diagnosed ({}); waiting for a human",
                    crate::describe::message(&e)
                );
                return (Decision::Wait { reason }, None);
            }
        };
        facts.fingerprint = Some(d.fingerprint.clone());
        facts.table = Some(d.table.to_string());
        facts.kind = Some(d.kind.to_string());
        let pbs = &self.config.playbooks;
        let plan_for = |p: &Policy| crate::planner::plan(&d, pbs, p).ok();
        let decision = match plan_for(&Policy::default()) {
            Some(ps) => policy::decide(&d, &ps, &self.config.policy, &plan_for),
            None => Decision::Wait {
                reason: "no playbook handles this incident; waiting for a human".into(),
            },
        };
        (decision, Some(d))
    }

    /// Runs the allowed remedy through a repair session and reports what happened.
    fn repair(
        &mut self,
        i: usize,
        ch: &ChannelStatus,
        d: &Diagnosis,
        remedy: RemedyId,
        policy: Policy,
        allow_data_loss: bool,
    ) -> Handled {
        let r = &self.replicas[i];
        let result = self.apply(r, ch, d, remedy, policy, allow_data_loss);
        let (handled, action) = match result {
            Ok(inc) => {
                // Not compared is not verified: only a checked agreement counts as repaired.
                let unverified = inc.applied.rows_agree != Some(true)
                    || !inc.applied.left_alone.is_empty()
                    || inc
                        .applied
                        .resumed
                        .values()
                        .any(|r| matches!(r, Resumed::StillBehind { .. }));
                let outcome = match (inc.stopped_again(), unverified) {
                    (true, _) => ActionOutcome::StoppedAgain,
                    (false, true) => ActionOutcome::Unverified,
                    (false, false) => ActionOutcome::Repaired,
                };
                *self
                    .sinks
                    .metrics()
                    .rows_journaled
                    .entry(r.endpoint.clone())
                    .or_default() += inc.applied.journaled_rows as u64;
                let facts = ActionFacts {
                    remedy: remedy.to_string(),
                    outcome,
                    steps: inc.applied.steps.len(),
                    rows_journaled: inc.applied.journaled_rows,
                    journal: (inc.applied.journaled_rows > 0).then(|| inc.applied.journal.clone()),
                    error: None,
                };
                (Handled::Acted, facts)
            }
            Err(e) => {
                let held = e
                    .chain()
                    .any(|c| matches!(c.downcast_ref::<LockError>(), Some(LockError::Held(_))));
                if held {
                    // Another repair (a human's, or the other node's watcher) is on it: look
                    // again later, quietly, until the stop changes.
                    let attempts = match r.seen.get(&ch.name) {
                        Some((_, Handled::LockHeld { attempts, .. })) => attempts + 1,
                        _ => 1,
                    };
                    let jitter = Duration::from_millis(u64::from(std::process::id() % 500));
                    let wait = Duration::from_secs(u64::from(attempts.min(10))) + jitter;
                    return Handled::LockHeld {
                        attempts,
                        retry_at: Instant::now() + wait,
                    };
                }
                let facts = ActionFacts {
                    remedy: remedy.to_string(),
                    outcome: ActionOutcome::Failed,
                    steps: 0,
                    rows_journaled: 0,
                    journal: None,
                    error: Some(crate::describe::message(&e)),
                };
                (Handled::Waiting, facts)
            }
        };
        let result_label = match action.outcome {
            ActionOutcome::Failed | ActionOutcome::Unverified => "failed",
            ActionOutcome::Repaired | ActionOutcome::StoppedAgain => "ok",
        };
        *self
            .sinks
            .metrics()
            .actions
            .entry((
                r.endpoint.clone(),
                ch.name.clone(),
                remedy.to_string(),
                result_label,
            ))
            .or_default() += 1;
        let mut e =
            Event::new(Kind::Action, &r.endpoint, action_text(&action)).on_channel(&ch.name);
        e.incident = Some(IncidentFacts {
            errno: d.error.errno,
            error: d.error.message.clone(),
            fingerprint: Some(d.fingerprint.clone()),
            table: Some(d.table.to_string()),
            kind: Some(d.kind.to_string()),
        });
        e.action = Some(action);
        self.sinks.emit(&e);
        handled
    }

    fn apply(
        &self,
        r: &Replica,
        ch: &ChannelStatus,
        d: &Diagnosis,
        remedy: RemedyId,
        policy: Policy,
        allow_data_loss: bool,
    ) -> Result<session::Incident> {
        let path = self
            .config
            .journal
            .clone()
            .unwrap_or_else(journal::default_path);
        let journal = Journal::new(&path)?;
        let policy = session::with_history(&journal, d, policy)?;
        let ps = crate::planner::plan(d, &self.config.playbooks, &policy)?;
        let mut session = Session {
            options: Options {
                source_dsn: None,
                channel: Some(ch.name.clone()),
                timeout: self.config.timeout,
                // Reading ahead replaces every upcoming conflicting row with the source's
                // version: only when the source's version is the one the rule chose.
                lookahead: match (remedy, &policy.winner) {
                    (RemedyId::Overwrite, Winner::Source) => self.config.lookahead,
                    _ => 0,
                },
                allow_data_loss,
                // A daemon never writes through triggers: that is a human's call.
                allow_triggers: false,
            },
            playbooks: self.config.playbooks.clone(),
            journal,
            on_step: crate::repair::report::print_step,
        };
        session.apply_one(d, &ps, &r.spec, &policy)
    }
}

fn is_unreachable(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<ConnectError>(),
            Some(ConnectError::Unreachable { .. })
        )
    })
}

fn incident_text(f: &IncidentFacts, d: &Decision) -> String {
    let on = f
        .table
        .as_deref()
        .map(|t| format!(" on {t}"))
        .unwrap_or_default();
    let what = match d {
        Decision::Repair { remedy, rule, .. } => format!("repairing with {remedy} ({rule})"),
        Decision::Wait { reason } => format!("WAITING FOR A HUMAN: {reason}"),
    };
    format!("applier error {}{on}: {what}", f.errno)
}

fn action_text(a: &ActionFacts) -> String {
    match (a.outcome, &a.error) {
        (ActionOutcome::Failed, Some(e)) => format!("{} failed: {e}", a.remedy),
        (outcome, _) => {
            let journal = match &a.journal {
                Some(j) => format!(", {} row(s) journaled in {j}", a.rows_journaled),
                None => String::new(),
            };
            let how = match outcome {
                ActionOutcome::StoppedAgain => "replication stopped again on another incident",
                ActionOutcome::Unverified => {
                    "BUT THE CHECK AFTERWARDS FAILED (rows still differ, a row was left alone, or the replica is still behind): look at it"
                }
                _ => "replication is running and caught up",
            };
            format!(
                "{} applied in {} step(s){journal}; {how}",
                a.remedy, a.steps
            )
        }
    }
}

/// Puts back read_only a killed watcher (or repair) left lifted, on every watched replica.
pub fn recover(config: &Config) -> Vec<String> {
    let path = config.journal.clone().unwrap_or_else(journal::default_path);
    let Ok(mut journal) = Journal::new(&path) else {
        return Vec::new();
    };
    let mut notes = Vec::new();
    for spec in &config.replicas {
        match session::recover_read_only(&mut journal, spec) {
            Ok(n) => notes.extend(n),
            Err(e) => notes.push(crate::describe::message(&e)),
        }
    }
    notes
}
