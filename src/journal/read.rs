//! Journals read back: every entry of a file, each row's latest state, the rows a rekey
//! re-inserted, and the read_only a killed run left lifted. Used by restore, repair and watch.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use super::{Action, Entry, JournalError, RECORD_TAG, State};
use crate::value::Row;
use crate::vocab::{Endpoint, ReadOnly};

pub fn read(path: &Path) -> Result<Vec<Entry>, JournalError> {
    Ok(read_lines(path)?
        .into_iter()
        .filter_map(|l| match l {
            Line::Entry(e) => Some(e),
            Line::Record(_) => None,
        })
        .collect())
}

/// One line of a journal: a row or read-only entry, or a record of what the run saw and did
/// (the diagnosis, the plan, a step, the verification: what `replmend report` writes up),
/// kept as JSON — its model belongs to `report`, the journal only carries it.
// Nearly every line is an entry: boxing them would cost an allocation per row for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    Entry(Entry),
    Record(serde_json::Value),
}

/// Every line of a journal, entries and records, in the order written.
pub fn read_lines(path: &Path) -> Result<Vec<Line>, JournalError> {
    let file = File::open(path).map_err(|source| JournalError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let mut out = Vec::new();
    let lines: Vec<_> = BufReader::new(file).lines().collect();
    let last = lines.len();
    for (i, line) in lines.into_iter().enumerate() {
        let line = line.map_err(|source| JournalError::Io {
            path: path.display().to_string(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(&line) {
            Ok(l) => out.push(l),
            // A kill -9 mid-write can leave a torn last line: that intent was never acted on
            // (the row is written only after the sync returned).
            Err(_) if i + 1 == last => {}
            Err(e) => {
                return Err(JournalError::Malformed {
                    path: path.display().to_string(),
                    line: i + 1,
                    reason: e.to_string(),
                });
            }
        }
    }
    Ok(out)
}

/// An entry, else a record (a JSON object naming its `record` kind); the entry's error when
/// it is neither. Entries are tried first: they are nearly all of a journal's lines.
fn parse_line(line: &str) -> Result<Line, serde_json::Error> {
    let entry_error = match serde_json::from_str::<Entry>(line) {
        Ok(e) => return Ok(Line::Entry(e)),
        Err(e) => e,
    };
    match serde_json::from_str::<serde_json::Value>(line) {
        Ok(v) if v.get(RECORD_TAG).is_some_and(|r| r.is_string()) => Ok(Line::Record(v)),
        _ => Err(entry_error),
    }
}

/// Each change's latest record (an intent followed by its outcome reads as the outcome), in
/// the order the changes were first journaled.
pub fn latest(entries: &[Entry]) -> Vec<Entry> {
    // By id and action, not by a scan of what is kept: a batch's journal holds thousands of
    // changes (a scan per entry made restore quadratic in them).
    let mut out: Vec<Entry> = Vec::new();
    let mut at: std::collections::HashMap<(&str, Action), usize> = Default::default();
    for e in entries {
        let slot = (!e.id.is_empty()).then(|| at.get(&(e.id.as_str(), e.action)).copied());
        match slot.flatten() {
            Some(i) => out[i] = e.clone(),
            None => {
                if !e.id.is_empty() {
                    at.insert((e.id.as_str(), e.action), out.len());
                }
                out.push(e.clone());
            }
        }
    }
    out
}

/// Records rekey already re-inserted for this incident (its inserts not rolled back: of a
/// 1062 incident's remedies only rekey inserts, on the loser and on the winner alike):
/// a re-run after an interruption gives them the same keys instead of inserting them twice.
pub fn reinserted(path: &Path, fingerprint: &str) -> Result<Vec<Row>, JournalError> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    Ok(latest(&read(path)?)
        .into_iter()
        .filter(|e| e.fingerprint == fingerprint && e.action == Action::Insert)
        .filter(|e| e.state != State::RolledBack)
        .filter_map(|e| e.image().ok())
        .collect())
}

/// Nodes whose read_only replmend lifted and never put back (a run killed in between), with
/// the state to restore, from any of these journals.
pub fn pending_read_only(paths: &[&Path]) -> Result<Vec<(Endpoint, ReadOnly)>, JournalError> {
    let mut entries = Vec::new();
    for path in paths.iter().filter(|p| p.exists()) {
        entries.extend(read(path)?);
    }
    entries.sort_by_key(|e| e.at);
    let mut pending: Vec<(Endpoint, ReadOnly)> = Vec::new();
    for e in entries {
        match (e.action, e.read_only) {
            (Action::LiftReadOnly, Some(state)) if !pending.iter().any(|(n, _)| *n == e.node) => {
                pending.push((e.node.clone(), state))
            }
            (Action::RestoreReadOnly, _) => pending.retain(|(n, _)| *n != e.node),
            _ => {}
        }
    }
    Ok(pending)
}
