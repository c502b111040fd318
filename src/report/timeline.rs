//! The incident's timeline: when the applier stopped, the diagnosis, the plan, each step with
//! its time and result, the verification — or, from a journal without records, what its rows
//! tell. Pure.

use serde::Serialize;

use super::incident::{Incident, Kind};
use super::record::{RunEnd, StepEnd};
use crate::journal::State;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Event {
    /// UTC, `YYYY-MM-DD HH:MM:SS.mmm` (or the server's own words for when it stopped).
    pub at: String,
    pub what: String,
    pub result: String,
    /// Whether the result is a failure or a stop (marked in the report).
    pub bad: bool,
}

/// A time in milliseconds since the epoch, in UTC.
pub fn utc_ms(ms: u64) -> String {
    crate::value::utc_datetime((ms / 1000) as i64, ((ms % 1000) * 1000) as u32, 3)
}

fn event(at: String, what: String, result: String, bad: bool) -> Event {
    Event {
        at,
        what,
        result,
        bad,
    }
}

fn step_result(end: StepEnd, detail: &str) -> (String, bool) {
    let word = match end {
        StepEnd::Done => "done",
        StepEnd::AlreadyDone => "already done",
        StepEnd::CaughtUp => "caught up",
        StepEnd::StoppedAgain => "STOPPED AGAIN",
        StepEnd::StillBehind => "still behind",
        StepEnd::Failed => "FAILED",
        StepEnd::Other => "ended",
    };
    let bad = matches!(
        end,
        StepEnd::StoppedAgain | StepEnd::Failed | StepEnd::StillBehind
    );
    (format!("{word} — {detail}"), bad)
}

/// How the run ended, in words: a resync's success is its rows, a repair's is replication.
pub fn end_words(end: RunEnd, kind: Kind) -> &'static str {
    match (end, kind) {
        (RunEnd::Repaired, Kind::Resync) => {
            "every row written; the rows resync wrote agree on both nodes (compared again)"
        }
        (RunEnd::Repaired, _) => "replication running and caught up",
        (RunEnd::StoppedAgain, _) => "replication stopped again (another incident)",
        (RunEnd::StillBehind, _) => "replication still behind when the wait ended",
        (RunEnd::Differs, _) => "rows still differ between the nodes (compared again)",
        (RunEnd::Failed, _) => {
            "a step failed; what replmend had changed on the topology was put back"
        }
        (RunEnd::Other, _) => "ended",
    }
}

/// The events with the date taken out of their times when they all fall on one day: that
/// date, and the events (times of day only).
pub fn on_one_day(mut events: Vec<Event>) -> (Option<String>, Vec<Event>) {
    let dated = |e: &Event| {
        let b = e.at.as_bytes();
        (b.len() > 11 && b[4] == b'-' && b[7] == b'-' && b[10] == b' ')
            .then(|| e.at[..10].to_string())
    };
    let dates: Vec<Option<String>> = events.iter().map(dated).collect();
    let first = dates.iter().flatten().next().cloned();
    let Some(day) = first.filter(|d| dates.iter().flatten().all(|x| x == d)) else {
        return (None, events);
    };
    for (e, d) in events.iter_mut().zip(&dates) {
        if d.is_some() {
            e.at = e.at[11..].to_string();
        }
    }
    (Some(day), events)
}

/// The server's error text, cut for the timeline (the summary has it whole).
fn shortened(message: &str) -> String {
    const SHOWN: usize = 160;
    match message.char_indices().nth(SHOWN) {
        Some((i, _)) => format!("{}…", &message[..i]),
        None => message.to_string(),
    }
}

/// The events the records tell, in order.
pub fn events(inc: &Incident) -> Vec<Event> {
    let mut out = Vec::new();
    if let Some((d, at)) = inc.diagnosis() {
        out.push(event(
            d.stopped_at
                .clone()
                .map(|t| format!("{t} (server)"))
                .unwrap_or_else(|| "unknown".into()),
            format!("applier of {} stopped", d.replica),
            format!("error {}: {}", d.errno, shortened(&d.message)),
            true,
        ));
        out.push(event(
            utc_ms(at),
            // Written once the diagnosis was confirmed under the repair lock, right before
            // the first step.
            "diagnosis confirmed under the repair lock".into(),
            format!(
                "{} on {}{}",
                d.kind,
                d.table,
                d.cause
                    .as_ref()
                    .map(|c| format!("; cause: {}", super::view::cause_words(c.kind)))
                    .unwrap_or_default()
            ),
            false,
        ));
    }
    if let Some((p, at)) = inc.plan() {
        out.push(event(
            utc_ms(at),
            "plan to run".into(),
            format!(
                "{}{} — {} step(s)",
                p.remedy,
                p.winner
                    .as_ref()
                    .map(|w| format!(", winner {w}"))
                    .unwrap_or_default(),
                p.steps.len()
            ),
            false,
        ));
    }
    for (s, at) in inc.steps() {
        let (result, bad) = step_result(s.end, &s.detail);
        out.push(event(
            utc_ms(at),
            format!("step {} on {}: {}", s.step, s.endpoint, s.description),
            result,
            bad,
        ));
    }
    if inc.records.is_empty() {
        out.extend(row_events(inc));
    }
    if let Some((v, at)) = inc.verification() {
        out.push(event(
            utc_ms(at),
            "verified".into(),
            end_words(v.end, inc.kind()).to_string(),
            v.end != RunEnd::Repaired,
        ));
    }
    out
}

/// A journal without records: the first and last row change, and how many ended how.
fn row_events(inc: &Incident) -> Vec<Event> {
    let mut out = Vec::new();
    let Some(first) = inc.rows.iter().map(|e| e.at).min() else {
        return out;
    };
    let last = inc.rows.iter().map(|e| e.at).max().unwrap_or(first);
    let count = |s: State| inc.rows.iter().filter(|e| e.state == s).count();
    out.push(event(
        utc_ms(first * 1000),
        "first row journaled".into(),
        format!("{} row change(s) in all", inc.rows.len()),
        false,
    ));
    out.push(event(
        utc_ms(last * 1000),
        "last row change recorded".into(),
        format!(
            "{} done, {} rolled back, {} without a recorded outcome",
            count(State::Done),
            count(State::RolledBack),
            count(State::Intent)
        ),
        count(State::Intent) > 0,
    ));
    out
}
