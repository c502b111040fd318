//! `replmend watch`: a daemon that polls every channel of one or more replicas, diagnoses each
//! new applier error, resolves on its own only what its policy allows (through the same
//! session as `repair --yes`: lock, re-check, preflight, journal, verification), and reports
//! everything else for a human — as log lines, hook commands and Prometheus metrics.
//!
//! One watcher per replica: it holds the named lock `replmend.watch` there for as long as it
//! watches. Each replica is polled by a `Worker` on a thread of its own (a replica that hangs
//! delays no other); the main thread waits for signals: SIGHUP reloads the policy,
//! SIGTERM/SIGINT let the current repairs finish, then the watcher exits. A lost server is
//! retried with a growing backoff.

pub mod event;
pub mod hook;
mod incident;
pub mod metrics;
pub mod policy;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    /// Where `policy` was read (SIGHUP reads it again); None: the built-in policy.
    pub policy_file: Option<PathBuf>,
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
    /// Each diagnosed incident's origins and cause are searched within this budget once it
    /// was decided on and acted upon (None: not searched).
    pub origin_budget: Option<crate::binlog::origin::Budget>,
}

/// Where events go: the log (stdout), the hooks, and nothing else.
pub struct Sinks {
    pub print: Box<dyn Fn(&Event) + Send + Sync>,
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
    /// When its automatic actions of the last minute were taken (`max_actions_per_minute`).
    actions: std::collections::VecDeque<Instant>,
    /// Held for a human by the rate limit, under this policy generation.
    held: Option<u64>,
    /// The policy generation this replica's decisions were last made under.
    generation: u64,
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
            actions: Default::default(),
            held: None,
            generation: 0,
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
    live: Live,
}

/// What every replica's worker reads and the main thread may change while they run: the
/// policy (reloaded on SIGHUP) and its generation (a reload also releases the replicas a
/// rate limit handed to a human).
pub(crate) struct Live {
    policy: RwLock<WatchPolicy>,
    generation: AtomicU64,
}

impl Live {
    fn policy(&self) -> std::sync::RwLockReadGuard<'_, WatchPolicy> {
        self.policy.read().unwrap_or_else(|p| p.into_inner())
    }
}

impl Watcher {
    /// Connects to every replica (all at once) and takes its watch lock. A replica that
    /// cannot be reached is retried in the loop (a daemon may start before its servers); one
    /// held by another watcher, refusing the credentials or not a replica fails here.
    pub fn start(config: Config, sinks: Sinks, stop: Arc<AtomicBool>) -> Result<Watcher> {
        let mut replicas: Vec<Replica> =
            config.replicas.iter().cloned().map(Replica::new).collect();
        let tried: Vec<Result<()>> = std::thread::scope(|s| {
            let handles: Vec<_> = replicas
                .iter_mut()
                .map(|r| s.spawn(|| r.connect()))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        for (r, result) in replicas.iter_mut().zip(tried) {
            match result {
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
        let live = Live {
            policy: RwLock::new(config.policy.clone()),
            generation: AtomicU64::new(0),
        };
        let w = Watcher {
            config,
            sinks,
            replicas,
            stop,
            live,
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

    /// Watches every replica, each on its own thread, until SIGTERM/SIGINT (a repair in
    /// progress finishes first); `reload` (set by SIGHUP) reloads the policy file.
    pub fn run(self, reload: Arc<AtomicBool>) -> Result<()> {
        let Watcher {
            config,
            sinks,
            replicas,
            stop,
            live,
        } = self;
        let endpoints: Vec<crate::vocab::Endpoint> =
            replicas.iter().map(|r| r.endpoint.clone()).collect();
        std::thread::scope(|s| {
            for r in replicas {
                let worker = Worker {
                    config: &config,
                    sinks: &sinks,
                    stop: &stop,
                    live: &live,
                    r,
                };
                let name = format!("watch {}", worker.r.endpoint);
                std::thread::Builder::new()
                    .name(name)
                    .spawn_scoped(s, move || worker.run())
                    .expect("a thread per watched replica");
            }
            while !stop.load(Ordering::SeqCst) {
                if reload.swap(false, Ordering::SeqCst) {
                    reload_policy(&config, &live, &sinks);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        for endpoint in &endpoints {
            sinks.emit(&Event::new(
                Kind::Stopped,
                endpoint,
                "stopped on a signal".into(),
            ));
        }
        sinks.hooks.finish();
        Ok(())
    }
}

/// SIGHUP: the policy file read again. A file that does not parse leaves the running policy
/// in place, and says why.
fn reload_policy(config: &Config, live: &Live, sinks: &Sinks) {
    let Some(path) = &config.policy_file else {
        eprintln!("replmend: SIGHUP: no --policy file to reload; the built-in policy stays");
        return;
    };
    match WatchPolicy::load(path) {
        Ok(p) => {
            *live.policy.write().unwrap_or_else(|e| e.into_inner()) = p;
            let g = live.generation.fetch_add(1, Ordering::SeqCst) + 1;
            let msg = format!(
                "policy reloaded from {} (generation {g}); replicas held by the rate limit are released",
                path.display()
            );
            eprintln!("replmend: {msg}");
            sinks.metrics().policy_reloads += 1;
        }
        Err(e) => eprintln!("replmend: SIGHUP: {e}; the running policy stays"),
    }
}

/// One replica's watch, on a thread of its own: a replica that stalls (accepts connections,
/// answers nothing) holds up only its own thread, never another replica's reaction.
pub(crate) struct Worker<'w> {
    config: &'w Config,
    sinks: &'w Sinks,
    stop: &'w AtomicBool,
    live: &'w Live,
    r: Replica,
}

impl Worker<'_> {
    /// Polls this replica until SIGTERM/SIGINT, on its own schedule.
    fn run(mut self) {
        while !self.stop.load(Ordering::SeqCst) {
            // Right after a repair the next conflict of a stream is usually waiting.
            if !self.poll() {
                self.sleep(self.config.interval);
            }
        }
    }

    fn sleep(&self, d: Duration) {
        let until = Instant::now() + d;
        while !self.stop.load(Ordering::SeqCst) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20).min(d));
        }
    }

    /// A policy reloaded since the last poll: the incidents waiting for a human here are
    /// decided again under it (as new ones), and a rate-limit hold is released.
    fn policy_changed(&mut self) {
        let generation = self.live.generation.load(Ordering::SeqCst);
        if self.r.generation == generation {
            return;
        }
        self.r.generation = generation;
        self.r.seen.retain(|_, (_, h)| *h != Handled::Waiting);
        if self.r.held.take().is_some() {
            self.r.actions.clear();
            self.sinks
                .metrics()
                .held
                .insert(self.r.endpoint.to_string(), 0);
        }
    }

    /// One look at one replica; true when a repair ran.
    fn poll(&mut self) -> bool {
        self.policy_changed();
        if !self.ensure_connected() {
            return false;
        }
        let r = &mut self.r;
        let conn = r.conn.as_mut().expect("connected");
        let report = match crate::status::read_status(conn) {
            Ok(report) => report,
            Err(e) => {
                let msg = crate::describe::message(&anyhow::Error::from(e));
                self.connection_lost(msg);
                return false;
            }
        };
        self.gauges(&report);
        if !self.check_errant(&report) {
            self.connection_lost("the connection holding the watch lock was lost".into());
            return false;
        }
        let mut acted = false;
        for ch in &report.channels {
            match ch.health {
                Health::SqlError => acted |= self.incident(ch),
                Health::Healthy => self.running(ch),
                Health::IoError | Health::NotRunning => self.not_running(ch),
            }
        }
        acted
    }

    /// A healthy channel: whatever was seen on it is over; a stop or a reconnecting receiver
    /// that was reported gets its recovery reported, once.
    fn running(&mut self, ch: &ChannelStatus) {
        let r = &mut self.r;
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
    fn not_running(&mut self, ch: &ChannelStatus) {
        let state = NotRunning::of(ch);
        let key = state.key();
        let r = &mut self.r;
        if r.seen.get(&ch.name).is_some_and(|(k, _)| *k == key) {
            return;
        }
        r.seen.insert(ch.name.clone(), (key, Handled::Waiting));
        let e = Event::new(Kind::NotRunning, &r.endpoint, state.text()).on_channel(&ch.name);
        self.sinks.emit(&e);
    }

    fn ensure_connected(&mut self) -> bool {
        let r = &mut self.r;
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

    fn connection_lost(&mut self, msg: String) {
        let r = &mut self.r;
        r.lost();
        self.sinks.metrics().up.insert(r.endpoint.to_string(), 0);
        let e = Event::new(
            Kind::ConnectionLost,
            &r.endpoint,
            format!("{msg}; reconnecting"),
        );
        self.sinks.emit(&e);
    }

    fn gauges(&self, report: &StatusReport) {
        let r = &self.r;
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
    fn check_errant(&mut self, report: &StatusReport) -> bool {
        let r = &mut self.r;
        if let Some(rx) = &r.errant_job {
            match rx.try_recv() {
                Ok(found) => {
                    r.errant_job = None;
                    self.errant_found(found);
                }
                Err(std::sync::mpsc::TryRecvError::Empty) => {}
                Err(std::sync::mpsc::TryRecvError::Disconnected) => r.errant_job = None,
            }
            return true;
        }
        let r = &mut self.r;
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
                    .map(|mut s| errant::find(&mut s, &report, None))
                    .unwrap_or_default();
                let _ = tx.send(found);
            });
        if spawned.is_ok() {
            r.errant_job = Some(rx);
        }
        true
    }

    /// Reports errant GTIDs when they differ from the last ones reported.
    fn errant_found(&mut self, found: Vec<errant::Errant>) {
        let r = &mut self.r;
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
