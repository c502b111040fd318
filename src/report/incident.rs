//! A journal's lines grouped by incident (a repair's fingerprint, a resync run's): its
//! records and its rows' latest states, in the order they were first written. Pure.

use super::record::{
    Body, DiagnosisRecord, PlanRecord, Record, RunKind, StepRecord, VerificationRecord,
};
use crate::journal::{Action, Entry, Line};

/// What the journal holds about one incident.
#[derive(Debug, Clone, Default)]
pub struct Incident {
    pub fingerprint: String,
    pub records: Vec<Record>,
    /// Row entries, each change's latest state.
    pub rows: Vec<Entry>,
    /// read_only lifted and put back.
    pub read_only: Vec<Entry>,
}

/// What ran, as far as the journal tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Repair,
    Resync,
    /// A journal without records (written by an earlier version): rows only.
    Unknown,
}

/// A read_only recovery of an interrupted run: not an incident of its own.
const RECOVERY: &str = "recovery";

impl Incident {
    pub fn diagnosis(&self) -> Option<(&DiagnosisRecord, u64)> {
        self.records.iter().find_map(|r| match &r.body {
            Body::Diagnosis(d) => Some((&**d, r.at_ms)),
            _ => None,
        })
    }

    pub fn plan(&self) -> Option<(&PlanRecord, u64)> {
        self.records.iter().find_map(|r| match &r.body {
            Body::Plan(p) => Some((p, r.at_ms)),
            _ => None,
        })
    }

    pub fn steps(&self) -> Vec<(&StepRecord, u64)> {
        self.records
            .iter()
            .filter_map(|r| match &r.body {
                Body::Step(s) => Some((s, r.at_ms)),
                _ => None,
            })
            .collect()
    }

    /// The last verification (a re-run after an interruption writes another).
    pub fn verification(&self) -> Option<(&VerificationRecord, u64)> {
        self.records.iter().rev().find_map(|r| match &r.body {
            Body::Verification(v) => Some((v, r.at_ms)),
            _ => None,
        })
    }

    pub fn kind(&self) -> Kind {
        match self.plan() {
            Some((p, _)) if p.kind == RunKind::Resync => Kind::Resync,
            Some(_) => Kind::Repair,
            None if self.diagnosis().is_some() => Kind::Repair,
            None => Kind::Unknown,
        }
    }

    /// The earliest and latest time the journal has for it, in milliseconds.
    pub fn span(&self) -> Option<(u64, u64)> {
        let times = self
            .records
            .iter()
            .map(|r| r.at_ms)
            .chain(self.rows.iter().chain(&self.read_only).map(|e| e.at * 1000));
        let (mut lo, mut hi) = (u64::MAX, 0);
        for t in times {
            lo = lo.min(t);
            hi = hi.max(t);
        }
        (hi > 0).then_some((lo, hi))
    }
}

/// The journal's incidents, in the order each was first written. Records of a kind this
/// version does not know are left out.
pub fn group(lines: &[Line]) -> Vec<Incident> {
    let mut out: Vec<Incident> = Vec::new();
    let mut entries: Vec<Vec<Entry>> = Vec::new();
    let slot = |out: &mut Vec<Incident>, entries: &mut Vec<Vec<Entry>>, fp: &str| match out
        .iter()
        .position(|i| i.fingerprint == fp)
    {
        Some(i) => i,
        None => {
            out.push(Incident {
                fingerprint: fp.to_string(),
                ..Default::default()
            });
            entries.push(Vec::new());
            out.len() - 1
        }
    };
    for line in lines {
        match line {
            Line::Entry(e) if e.fingerprint == RECOVERY => {}
            Line::Entry(e) => {
                let i = slot(&mut out, &mut entries, &e.fingerprint);
                entries[i].push(e.clone());
            }
            Line::Record(v) => {
                if let Some(r) = Record::from_json(v) {
                    let i = slot(&mut out, &mut entries, &r.fingerprint);
                    out[i].records.push(r);
                }
            }
        }
    }
    for inc in out.iter_mut() {
        complete_diagnosis(inc);
    }
    for (inc, es) in out.iter_mut().zip(entries) {
        let (ro, rows): (Vec<Entry>, Vec<Entry>) = crate::journal::latest(&es)
            .into_iter()
            .partition(|e| matches!(e.action, Action::LiftReadOnly | Action::RestoreReadOnly));
        inc.rows = rows;
        inc.read_only = ro;
    }
    out
}

/// A later origins record (watch searches after it acted) completes the incident's first
/// diagnosis record, which is the one the report reads.
fn complete_diagnosis(inc: &mut Incident) {
    let found: Vec<_> = inc
        .records
        .iter()
        .filter_map(|r| match &r.body {
            Body::Origins(o) => Some(o.clone()),
            _ => None,
        })
        .collect();
    let Some(d) = inc.records.iter_mut().find_map(|r| match &mut r.body {
        Body::Diagnosis(d) => Some(d),
        _ => None,
    }) else {
        return;
    };
    for o in &found {
        d.complete_with(o);
    }
}

/// The incident `id` names: its fingerprint, or a prefix of it that only it has.
pub fn find<'a>(incidents: &'a [Incident], id: &str) -> Option<&'a Incident> {
    if let Some(i) = incidents.iter().find(|i| i.fingerprint == id) {
        return Some(i);
    }
    let mut matching = incidents.iter().filter(|i| i.fingerprint.starts_with(id));
    match (matching.next(), matching.next()) {
        (Some(i), None) if !id.is_empty() => Some(i),
        _ => None,
    }
}
