//! Journal lines built: a row's intent written straight from the plan's parts (`RowIntent`,
//! byte for byte what serializing its `Entry` writes), intents kept as their lines
//! (`Intents`), and outcome lines derived from intent lines. Used by `Journal` to append.

use super::{Action, Entry, JOURNAL_SCHEMA, State, now};
use crate::value::Cell;
use crate::value::Row;
use crate::vocab::{Endpoint, TableRef};

/// Row intents as their journal lines (`RowIntent::line`), in order: their outcomes are
/// derived from the lines instead of serializing every row image again.
#[derive(Debug, Default)]
pub struct Intents {
    count: usize,
    pub(super) lines: String,
}

impl Intents {
    pub fn push(&mut self, line: &str) {
        self.lines.push_str(line);
        self.count += 1;
    }

    /// Intents already written out as lines: `count` of them in `lines`.
    pub fn from_lines(lines: String, count: usize) -> Intents {
        Intents { count, lines }
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The outcome lines of these intents.
    pub(super) fn outcomes(&self, state: State) -> String {
        let at = now();
        outcome_lines(&self.lines, state, at).unwrap_or_else(|| {
            // Not of the shape `RowIntent::line` writes: read back and written anew.
            let outcomes: Vec<Entry> = self
                .lines
                .lines()
                .filter_map(|l| serde_json::from_str::<Entry>(l).ok())
                .map(|e| Entry {
                    at,
                    ..e.outcome(state)
                })
                .collect();
            lines(&outcomes)
        })
    }
}

/// A row change's intent, borrowed from the plan: its journal line is written straight from
/// these parts, byte for byte what serializing the same `Entry` writes (tested), without
/// building the entry first (a batch journals thousands).
pub struct RowIntent<'a> {
    pub fingerprint: &'a str,
    pub id: &'a str,
    pub node: &'a Endpoint,
    pub action: Action,
    pub table: &'a TableRef,
    pub sql_log_bin: bool,
    pub image: &'a Row,
    /// The key's columns (their values are in the image).
    pub key: &'a [(String, Cell)],
    pub after: Option<&'a Row>,
}

impl RowIntent<'_> {
    pub fn line(&self) -> String {
        let mut out: Vec<u8> = Vec::with_capacity(256 + 64 * self.image.values.len());
        let s = |out: &mut Vec<u8>, v: &str| serde_json::to_writer(out, v).expect("a str");
        out.extend_from_slice(b"{\"schema\":");
        s(&mut out, JOURNAL_SCHEMA);
        out.extend_from_slice(format!(",\"at\":{},\"fingerprint\":", now()).as_bytes());
        s(&mut out, self.fingerprint);
        out.extend_from_slice(b",\"id\":");
        s(&mut out, self.id);
        out.extend_from_slice(b",\"state\":\"intent\",\"node\":");
        s(&mut out, &self.node.to_string());
        out.extend_from_slice(b",\"action\":");
        serde_json::to_writer(&mut out, &self.action).expect("an action");
        out.extend_from_slice(b",\"table\":{\"schema\":");
        s(&mut out, &self.table.schema);
        out.extend_from_slice(b",\"name\":");
        s(&mut out, &self.table.name);
        out.extend_from_slice(format!("}},\"sql_log_bin\":{},", self.sql_log_bin).as_bytes());
        row_fields(&mut out, self.image);
        out.extend_from_slice(b",\"key\":[");
        for (i, (k, _)) in self.key.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            s(&mut out, k);
        }
        out.push(b']');
        if let Some(after) = self.after {
            out.extend_from_slice(b",\"after\":{");
            row_fields(&mut out, after);
            out.push(b'}');
        }
        out.extend_from_slice(b"}\n");
        String::from_utf8(out).expect("JSON is UTF-8")
    }
}

/// `"columns":[…],"values":[…]` of a row, each value as `StoredCell` serializes.
fn row_fields(out: &mut Vec<u8>, row: &Row) {
    out.extend_from_slice(b"\"columns\":[");
    for (i, c) in row.columns.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, c).expect("a str");
    }
    out.extend_from_slice(b"],\"values\":[");
    for (i, v) in row.values.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let (tag, text): (&str, Option<&str>) = match v {
            Cell::Null => ("null", None),
            Cell::Number(t) => ("number", Some(t)),
            Cell::Text(t) => ("text", Some(t)),
            Cell::Temporal(t) => ("temporal", Some(t)),
            Cell::Json(t) => ("json", Some(t)),
            Cell::Bytes(b) => {
                out.extend_from_slice(b"{\"t\":\"hex\",\"v\":\"");
                out.extend_from_slice(crate::value::hex(b).as_bytes());
                out.extend_from_slice(b"\"}");
                continue;
            }
        };
        out.extend_from_slice(format!("{{\"t\":\"{tag}\"").as_bytes());
        if let Some(t) = text {
            out.extend_from_slice(b",\"v\":");
            serde_json::to_writer(&mut *out, t).expect("a str");
        }
        out.push(b'}');
    }
    out.push(b']');
}
pub(super) fn lines(entries: &[Entry]) -> String {
    let mut text = Vec::with_capacity(entries.len() * 256);
    for e in entries {
        serde_json::to_writer(&mut text, e).expect("entries serialize");
        text.push(b'\n');
    }
    String::from_utf8(text).expect("serde_json writes UTF-8")
}

/// The outcome lines of intents already written as `intent_lines`: each line with its time and
/// state replaced, the rest (row images and all) as it is. JSON escapes every quote inside a
/// string, so `"state":"intent"` can only be that field. None when a line is not of that shape
/// (then the outcomes are serialized).
pub(super) fn outcome_lines(intent_lines: &str, state: State, at: u64) -> Option<String> {
    let state = serde_json::to_string(&state).ok()?;
    let prefix = format!("{{\"schema\":\"{JOURNAL_SCHEMA}\",\"at\":");
    let mut out = String::with_capacity(intent_lines.len() + 64);
    for line in intent_lines.lines() {
        let rest = line.strip_prefix(&prefix)?;
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        let (head, tail) = rest[digits..].split_once("\"state\":\"intent\"")?;
        out.push_str(&prefix);
        out.push_str(&at.to_string());
        out.push_str(head);
        out.push_str("\"state\":");
        out.push_str(&state);
        out.push_str(tail);
        out.push('\n');
    }
    Some(out)
}
