//! What a plan loses, counted from its steps (what they skip, delete, journal and re-insert):
//! the words and numbers an option and its plan carry. Pure; called by `plan`.

use super::plan::{Plan, RowAction, StepKind};
use super::playbook::StepTemplate;
use crate::value::Cell;

/// What a plan loses, from its steps.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Losses {
    pub(super) rows: usize,
    pub(super) versions: usize,
    pub(super) records: usize,
    pub(super) unknown: bool,
    pub(super) journaled: usize,
}

impl Losses {
    pub(super) fn text(&self) -> String {
        if self.unknown {
            return "an unknown number of rows: a skipped transaction could not be read from its source, so its rows were not compared with the replica's".into();
        }
        let mut parts = Vec::new();
        if self.rows > 0 {
            parts.push(format!(
                "{} other row(s) of the skipped transaction(s)",
                self.rows
            ));
        }
        if self.versions > 0 {
            parts.push(format!(
                "one version of {} conflicting row(s) (not journaled; the nodes may keep different versions)",
                self.versions
            ));
        }
        if self.records > 0 {
            parts.push(format!(
                "{} record(s) that merely share a key with another: journaled, but on neither node afterwards",
                self.records
            ));
        }
        let journal = match self.journaled {
            0 => String::new(),
            n => format!("; {n} row(s) journaled before they change"),
        };
        if parts.is_empty() {
            format!("nothing{journal}")
        } else {
            format!("{}{journal}", parts.join(", "))
        }
    }
}

pub(super) fn losses(plan: &Plan, two_records: bool) -> Losses {
    let mut l = Losses::default();
    let journaled: Vec<&Vec<(String, Cell)>> = plan
        .steps
        .iter()
        .flat_map(|s| s.rows())
        .filter(|r| r.action == RowAction::Delete)
        .map(|r| &r.key)
        .collect();
    // The loser's records moved to a fresh key (the move's inserts; the winner's copies are
    // the same records).
    let reinserted = plan
        .steps
        .iter()
        .filter(|s| s.action() == StepTemplate::ReinsertUnderFreshKey)
        .flat_map(|s| s.rows())
        .filter(|r| r.action == RowAction::Insert)
        .count();
    l.journaled = plan.steps.iter().map(|s| s.rows().len()).sum();
    let mut versions: Vec<&Vec<(String, Cell)>> = Vec::new();
    for s in &plan.steps {
        let StepKind::Skip { loss, .. } = &s.kind else {
            continue;
        };
        match loss.rows {
            Some(n) => l.rows += n,
            None => l.unknown = true,
        }
        for k in &loss.versions {
            if !journaled.contains(&k) && !versions.contains(&k) {
                versions.push(k);
            }
        }
    }
    l.versions = versions.len();
    if two_records {
        l.records = journaled.len().saturating_sub(reinserted);
    }
    l
}
