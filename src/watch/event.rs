//! What the watcher reports: one event per incident, action, errant-GTID finding or
//! connection change. Printed as a log line (text) or a JSON line (`--format json`), and
//! handed to `--hook` commands on stdin. The JSON is `replmend.watch-event/1` (docs/json.md).

use serde::Serialize;

use super::policy::Decision;
use crate::status::errant::Errant;

pub const EVENT_SCHEMA: &str = "replmend.watch-event/1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The watcher started watching a replica (it holds its watch lock).
    Watching,
    /// A channel stopped on an applier error; `decision` says what the watcher does.
    Incident,
    /// A repair the policy allowed ran (or failed: `action.outcome`).
    Action,
    /// An incident's cause and its conflicting rows' origins, searched once it was decided
    /// on and acted upon (after its `action` event, when there is one).
    Cause,
    /// New errant GTIDs on the replica.
    Errant,
    /// A channel stopped without an applier error, or its receiver stopped on an error:
    /// nothing the watcher repairs.
    NotRunning,
    /// A channel reported `not_running` (or reconnecting) runs again, caught or catching up.
    Recovered,
    ConnectionLost,
    ConnectionRestored,
    /// The watcher stopped (SIGTERM / SIGINT).
    Stopped,
}

#[derive(Debug, Clone, Serialize)]
pub struct IncidentFacts {
    pub errno: u32,
    pub error: String,
    /// Set once diagnosed.
    pub fingerprint: Option<String>,
    pub table: Option<String>,
    pub kind: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionOutcome {
    /// Replication runs and caught up.
    Repaired,
    /// The repair ran; replication stopped again on another incident.
    StoppedAgain,
    /// The repair ran, but the check afterwards failed: the repaired rows still differ, a row
    /// was left alone, or the replica had not caught up within --timeout.
    Unverified,
    /// The repair did not run to its end; the error says what was put back.
    Failed,
}

#[derive(Debug, Clone, Serialize)]
pub struct ActionFacts {
    pub remedy: String,
    pub outcome: ActionOutcome,
    pub steps: usize,
    pub rows_journaled: usize,
    pub journal: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub schema: &'static str,
    /// UTC, `YYYY-MM-DDTHH:MM:SSZ`.
    pub time: String,
    pub event: Kind,
    pub replica: crate::vocab::Endpoint,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incident: Option<IncidentFacts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<ActionFacts>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errant: Vec<Errant>,
    /// `cause` events: the incident's cause (as `diagnose` classifies it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<crate::diagnosis::cause::Cause>,
    /// `cause` events: each searched conflict's origins, in the diagnosis's order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub origins: Vec<crate::diagnosis::origin::Origins>,
    /// `cause` events after a repair, with `--reports DIR`: the incident's postmortem written
    /// there (its HTML; the Markdown beside it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
    /// The event in one sentence.
    pub message: String,
}

pub fn now_utc() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    crate::value::utc_datetime(d.as_secs() as i64, 0, 0).replace(' ', "T") + "Z"
}

impl Event {
    pub fn new(event: Kind, replica: &crate::vocab::Endpoint, message: String) -> Event {
        Event {
            schema: EVENT_SCHEMA,
            time: now_utc(),
            event,
            replica: replica.clone(),
            channel: None,
            incident: None,
            decision: None,
            action: None,
            errant: Vec::new(),
            cause: None,
            origins: Vec::new(),
            report: None,
            message,
        }
    }

    pub fn on_channel(mut self, channel: &str) -> Event {
        self.channel = Some(channel.to_string());
        self
    }

    /// The log line: time, replica[/channel], message.
    pub fn text(&self) -> String {
        let channel = match self.channel.as_deref() {
            Some("") | None => String::new(),
            Some(c) => format!(" channel '{c}'"),
        };
        format!("{} {}{channel}: {}", self.time, self.replica, self.message)
    }

    pub fn json(&self) -> String {
        serde_json::to_string(self).expect("events always serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_json_lines() {
        let e = Event::new(
            Kind::Incident,
            &crate::vocab::Endpoint::new("127.0.0.1", 3307),
            "error 1062".into(),
        )
        .on_channel("");
        assert!(
            e.text().ends_with("Z 127.0.0.1:3307: error 1062"),
            "{}",
            e.text()
        );
        let v: serde_json::Value = serde_json::from_str(&e.json()).unwrap();
        assert_eq!(v["schema"], EVENT_SCHEMA);
        assert_eq!(v["event"], "incident");
        assert_eq!(v["channel"], "");
        assert!(v.get("action").is_none());
        assert!(!e.json().contains('\n'));
        let named = Event::new(
            Kind::Errant,
            &crate::vocab::Endpoint::new("h", 1),
            "x".into(),
        )
        .on_channel("n1");
        assert!(named.text().contains("h:1 channel 'n1': x"));
        assert_eq!(now_utc().len(), 20);
    }
}
