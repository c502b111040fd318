//! An incident as the watcher handles it: a channel stopped on an applier error is diagnosed
//! (within the time allowed), decided on by the policy, and repaired through a repair session;
//! and the words its events carry. The polling loop that finds incidents is in `mod.rs`.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::event::{ActionFacts, ActionOutcome, Event, IncidentFacts, Kind};
use super::policy::{self, Decision};
use super::{Again, Handled, Replica, Worker, stop_key, undiagnosed_retry};
use crate::diagnosis::Diagnosis;
use crate::journal::{self, Journal};
use crate::planner::{Policy, RemedyId, Winner};
use crate::repair::lock::LockError;
use crate::repair::session::{self, Options, Session};
use crate::repair::verify::Resumed;
use crate::status::model::ChannelStatus;

impl Worker<'_> {
    /// A channel stopped on an applier error: new ones are diagnosed and decided on.
    pub(super) fn incident(&mut self, ch: &ChannelStatus) -> bool {
        let key = stop_key(ch);
        let r = &self.r;
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
                    .entry((r.endpoint.to_string(), ch.name.clone(), errno))
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
        let (decision, diagnosis) = self.decide(ch, &mut facts);
        let decision = self.rate_limited(decision);
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
        let repairing = matches!(decision, Decision::Repair { .. })
            && diagnosis.is_some()
            && !self.config.dry_run;
        // Not repaired (waiting, or a dry run): the cause once decided, nothing written.
        let cause_of = (report && !repairing).then(|| diagnosis.clone()).flatten();
        let handled = match (decision, diagnosis) {
            (
                Decision::Repair {
                    remedy,
                    policy,
                    allow_data_loss,
                    ..
                },
                Some(d),
            ) if !self.config.dry_run => self.repair(ch, &d, remedy, policy, allow_data_loss),
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
        self.r.seen.insert(ch.name.clone(), (key, handled));
        if let Some(d) = cause_of
            && let Some(searched) = self.origins(&d)
        {
            self.emit_cause(ch, &searched, None);
        }
        acted
    }

    /// The incident's origins and cause (`d` as diagnosed, searched now within
    /// --origin-budget), on a thread of its own like the diagnosis: a node that stops
    /// answering cannot hold the watcher past twice the budget's seconds (two nodes) and a
    /// margin for connecting. None: not searched (no budget, a signal, an error: said on
    /// stderr).
    fn origins(&self, d: &Diagnosis) -> Option<Diagnosis> {
        let budget = self.config.origin_budget?;
        let (spec, mut found) = (self.r.spec.clone(), d.clone());
        let limit = Duration::from_secs(2 * budget.seconds + 20);
        let searched = self.within("origins", "the search", limit, move || {
            crate::inspect::search_origins(&mut found, &spec, None, budget).map(|()| found)
        });
        match searched {
            Ok(found) => Some(found),
            // Stopping on a signal is not a failure to report.
            Err(_) if self.stop.load(Ordering::SeqCst) => None,
            Err(e) => {
                eprintln!(
                    "replmend: the cause of incident {} was not searched: {}",
                    d.fingerprint,
                    crate::describe::message(&e)
                );
                None
            }
        }
    }

    /// The `cause` event: the incident's cause and origins (`d` searched; unsearched: the
    /// cause is unknown), and the report written with `--reports`.
    fn emit_cause(&self, ch: &ChannelStatus, d: &Diagnosis, report: Option<String>) {
        let mut text = match &d.cause {
            Some(c) => format!(
                "cause of the applier error {} on {}: {}: {}",
                d.error.errno,
                d.table,
                serde_json::to_string(&c.kind)
                    .unwrap_or_default()
                    .trim_matches('"'),
                c.evidence
            ),
            None => format!(
                "cause of the applier error {} on {}: unknown (the origins were not searched)",
                d.error.errno, d.table
            ),
        };
        if let Some(r) = &report {
            text.push_str(&format!("; report: {r}"));
        }
        let mut e = Event::new(Kind::Cause, &self.r.endpoint, text).on_channel(&ch.name);
        e.incident = Some(facts_of(d));
        e.cause = d.cause.clone();
        e.origins = d
            .conflicts
            .iter()
            .filter_map(|c| c.origin.clone())
            .collect();
        e.report = report;
        self.sinks.emit(&e);
    }

    /// The channel's diagnosis, on a thread of its own: a node that accepts connections but
    /// does not answer (hung, overloaded) would hold it until the driver's read timeout, and
    /// the watcher must keep answering signals and watching its other replicas. Past
    /// `diagnose_timeout` the diagnosis is abandoned (it only reads) and the incident waits;
    /// on SIGTERM/SIGINT it is abandoned at once.
    fn diagnose_within(&self, channel: &str) -> Result<Diagnosis> {
        let (spec, name) = (self.r.spec.clone(), channel.to_string());
        self.within(
            "diagnose",
            "the diagnosis",
            self.config.diagnose_timeout,
            move || {
                // Nothing to diagnose any more (it started again) is not a diagnosis.
                Ok(crate::inspect::diagnose(&spec, None, Some(&name))?.stopped()?)
            },
        )
    }

    /// `work` on a thread of its own, waited for at most `limit` and only while the watcher is
    /// not stopping: a node that accepts connections and answers nothing cannot hold this
    /// replica's watch (the thread is left to end on its own). `what` names it in errors.
    fn within<T: Send + 'static>(
        &self,
        thread: &str,
        what: &str,
        limit: Duration,
        work: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name(thread.into())
            .spawn(move || {
                let _ = tx.send(work());
            })?;
        let started = Instant::now();
        loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(result) => return result,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    anyhow::bail!("{what} ended without a result")
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            }
            if self.stop.load(Ordering::SeqCst) {
                anyhow::bail!("stopping on a signal");
            }
            if started.elapsed() > limit {
                anyhow::bail!(
                    "{what} did not finish within {} s: a node accepts connections but does not answer",
                    limit.as_secs()
                );
            }
        }
    }

    /// The policy's `max_actions_per_minute` on this replica: an action past it is not taken,
    /// and the replica's incidents wait for a human until the policy is reloaded (a new
    /// generation) or the watcher restarts.
    fn rate_limited(&mut self, decision: Decision) -> Decision {
        let generation = self.r.generation;
        let max = self.live.policy().max_actions_per_minute;
        let (Decision::Repair { .. }, Some(max)) = (&decision, max) else {
            return decision;
        };
        let now = Instant::now();
        self.r
            .actions
            .retain(|t| now.duration_since(*t) < Duration::from_secs(60));
        if self.r.held.is_none() && self.r.actions.len() < max as usize {
            if !self.config.dry_run {
                self.r.actions.push_back(now);
            }
            return decision;
        }
        self.r.held = Some(generation);
        self.sinks
            .metrics()
            .held
            .insert(self.r.endpoint.to_string(), 1);
        Decision::Wait {
            reason: format!(
                "the policy's max_actions_per_minute ({max}) was reached on this replica: its automatic actions stop until a human looks (SIGHUP reloading the policy, or a restart, resumes them)"
            ),
        }
    }

    /// Diagnoses the channel and applies the policy; the facts get what was learnt.
    fn decide(
        &self,
        ch: &ChannelStatus,
        facts: &mut IncidentFacts,
    ) -> (Decision, Option<Diagnosis>) {
        let d = match self.diagnose_within(&ch.name) {
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
            Some(ps) => policy::decide(&d, &ps, &self.live.policy(), &plan_for),
            None => Decision::Wait {
                reason: "no playbook handles this incident; waiting for a human".into(),
            },
        };
        (decision, Some(d))
    }

    /// Runs the allowed remedy through a repair session and reports what happened.
    fn repair(
        &mut self,
        ch: &ChannelStatus,
        d: &Diagnosis,
        remedy: RemedyId,
        policy: Policy,
        allow_data_loss: bool,
    ) -> Handled {
        let r = &self.r;
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
                    .entry(r.endpoint.to_string())
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
                r.endpoint.to_string(),
                ch.name.clone(),
                remedy.to_string(),
                result_label,
            ))
            .or_default() += 1;
        let mut e =
            Event::new(Kind::Action, &r.endpoint, action_text(&action)).on_channel(&ch.name);
        e.incident = Some(facts_of(d));
        e.action = Some(action);
        self.sinks.emit(&e);
        // After the action event (its time is the watcher's reaction): the origins and cause,
        // recorded beside the repair's diagnosis, then the report that names them.
        let searched = self.origins(d);
        if let Some(found) = &searched {
            self.record_origins(found);
        }
        let report = self.write_report(&d.fingerprint);
        self.emit_cause(ch, searched.as_ref().unwrap_or(d), report);
        handled
    }

    /// The searched origins and cause appended to the journal the repair wrote (a record the
    /// report merges into the incident's diagnosis). Not written: said on stderr.
    fn record_origins(&self, d: &Diagnosis) {
        let record =
            crate::report::record::Record::new(&d.fingerprint, crate::report::record::origins(d));
        let written = Journal::new(&self.journal_path())
            .map_err(anyhow::Error::from)
            .and_then(|mut j| Ok(j.append_records(&[record])?));
        if let Err(e) = written {
            eprintln!(
                "replmend: the cause of incident {} was not journaled: {}",
                d.fingerprint,
                crate::describe::message(&e)
            );
        }
    }

    /// `--reports DIR`: the incident's postmortem from the journal its repair wrote. A
    /// report that cannot be written is said on stderr; it never stops the watcher.
    fn write_report(&self, fingerprint: &str) -> Option<String> {
        let dir = self.config.reports.as_ref()?;
        let journal = self.journal_path();
        match crate::report::file::write_incident(dir, &journal, fingerprint) {
            Ok(path) => Some(path.display().to_string()),
            Err(e) => {
                eprintln!(
                    "replmend: the report of incident {fingerprint} was not written: {}",
                    crate::describe::message(&e)
                );
                None
            }
        }
    }

    fn journal_path(&self) -> std::path::PathBuf {
        self.config
            .journal
            .clone()
            .unwrap_or_else(journal::default_path)
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
        let journal = Journal::new(&self.journal_path())?;
        let policy = session::with_history(&journal, d, policy)?;
        let ps = crate::planner::plan(d, &self.config.playbooks, &policy)?;
        let mut session = Session {
            options: Options {
                source: None,
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
                // Nor leaves errant GTIDs behind.
                allow_errant_gtid: false,
                // The watcher's diagnosis is its own (bounded by --diagnose-timeout).
                origin_budget: None,
                // A watcher's diagnosis is its own; the session re-checks under the lock.
                diagnose_under_lock: false,
            },
            playbooks: self.config.playbooks.clone(),
            journal,
            on_step: crate::repair::report::print_step,
        };
        session.apply_one(
            d,
            &ps,
            &crate::repair::session::Target::replica(&r.spec),
            &policy,
        )
    }
}
fn facts_of(d: &Diagnosis) -> IncidentFacts {
    IncidentFacts {
        errno: d.error.errno,
        error: d.error.message.clone(),
        fingerprint: Some(d.fingerprint.clone()),
        table: Some(d.table.to_string()),
        kind: Some(d.kind.to_string()),
    }
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
