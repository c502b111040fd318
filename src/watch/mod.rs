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
mod incident;
pub mod metrics;
pub mod policy;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::conn::{ConnSpec, ConnectError, Server};
use crate::journal::{self, Journal};
use crate::planner::playbook::Playbook;
use crate::repair::session;
use crate::status::model::{ChannelStatus, StatusReport};
use crate::status::{Health, errant};
use event::{Event, Kind};
use metrics::{ChannelGauges, Shared};
use policy::WatchPolicy;

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
    /// Where each incident's postmortem is written once it was handled.
    pub reports: Option<PathBuf>,
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
    endpoint: crate::vocab::Endpoint,
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
    pub endpoint: crate::vocab::Endpoint,
}

fn take_lock(server: &mut Server) -> Result<bool> {
    // The lock's connection is otherwise idle: the server's wait_timeout (8 hours by default)
    // would end it, and the lock with it, without a word.
    server
        .run(&crate::sql::admin::session_wait_timeout(31536000))
        .map_err(|e| anyhow::anyhow!(crate::describe::describe_mysql(&e)))?;
    let got: Option<Option<i64>> = server
        .first(&crate::sql::admin::get_lock(WATCH_LOCK))
        .map_err(|e| anyhow::anyhow!(crate::describe::describe_mysql(&e)))?;
    Ok(got.flatten() == Some(1))
}

impl Replica {
    fn new(spec: ConnSpec) -> Replica {
        let now = Instant::now();
        Replica {
            endpoint: spec.address(),
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
                    sinks.metrics().up.insert(r.endpoint.to_string(), 0);
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
                        .entry(r.endpoint.to_string())
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
        self.sinks.metrics().up.insert(r.endpoint.to_string(), 0);
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
        m.up.insert(r.endpoint.to_string(), 1);
        for ch in &report.channels {
            let waiting = matches!(
                r.seen.get(&ch.name),
                Some((_, Handled::Waiting | Handled::Undiagnosed { .. }))
            ) && ch.health == Health::SqlError;
            m.channels.insert(
                (r.endpoint.to_string(), ch.name.clone()),
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
        if r.lock.as_mut().is_none_or(|l| l.ping().is_err()) {
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
        let summary: Vec<String> = found.iter().map(|e| e.gtids.to_string()).collect();
        let summary = summary.join(",");
        self.sinks
            .metrics()
            .errant
            .insert(r.endpoint.to_string(), found.len() as u64);
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
}

fn is_unreachable(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<ConnectError>(),
            Some(ConnectError::Unreachable { .. })
        )
    })
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
