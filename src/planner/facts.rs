//! The facts a playbook's conditions are evaluated over (`Facts`, `facts`), and why an option
//! does not apply to an incident (`why_not` and the structural checks): which remedies are
//! offered at all. Pure; called by `plan`.

use super::plan::Policy;
use super::playbook::{Playbook, RemedySpec, StepTemplate, When};
use crate::diagnosis::render::key_words;
use crate::diagnosis::{AutoKey, ConflictKind, Diagnosis, KeyKind, Verdict};
use crate::vocab::Endpoint;

/// Facts the playbook conditions are evaluated over.
#[derive(Debug, Clone)]
pub(super) struct Facts {
    pub(super) identical: bool,
    pub(super) gtid_known: bool,
    /// The failing transaction can be skipped by GTID.
    pub(super) gtid_enabled: bool,
    pub(super) source_row_known: bool,
    pub(super) all_rows_conflict: bool,
    pub(super) dual_master: bool,
    /// The conflicting key is an AUTO_INCREMENT (or generated invisible) primary key and
    /// the rows differ beyond it: most likely two different records, not two versions. Also
    /// when an interrupted rekey of this incident already moved the loser's records (its row
    /// at the old key is gone, so the rows no longer show it).
    pub(super) two_records: bool,
}

pub(super) fn facts(d: &Diagnosis, policy: &Policy) -> Facts {
    let rev = dual(d);
    let rows_total = d.rows_in_transaction().unwrap_or(d.conflicts.len());
    let mut f = Facts {
        identical: d.all_identical(),
        gtid_known: d.gtid.is_some(),
        gtid_enabled: gtid_skip(d),
        // Conflicts may already be resolved (a repair killed halfway deleted them): the
        // transaction itself is what overwriting needs.
        source_row_known: d.transaction.is_some(),
        all_rows_conflict: rows_total == d.conflicts.len(),
        dual_master: rev.is_some(),
        two_records: false,
    };
    if let Some(r) = rev {
        f.gtid_known &= r.gtid.is_some();
        f.gtid_enabled &= gtid_skip(r);
        f.source_row_known &= r.transaction.is_some();
        let differ = !d.conflicts.is_empty()
            && d.conflicts
                .iter()
                .all(|c| matches!(c.verdict, Verdict::Differs { .. }));
        f.two_records = d.auto_key.is_some() && (differ || !policy.rekeyed.is_empty());
    }
    f
}

pub(super) fn gtids_on(d: &Diagnosis) -> bool {
    d.replica
        .flavor
        .skip_needs_gtid(d.gtid_enabled, d.gtid_positioning)
}

pub(super) fn gtid_skip(d: &Diagnosis) -> bool {
    d.replica.flavor.can_skip_by_gtid(
        d.gtid_enabled,
        d.gtid_positioning,
        d.gtid_slave_pos.is_some(),
    )
}

/// The reverse direction's diagnosis when the pair is dual-master and both directions stopped.
pub(super) fn dual(d: &Diagnosis) -> Option<&Diagnosis> {
    d.reverse
        .as_ref()
        .filter(|r| r.dual_master && r.stopped)
        // One coordinated plan only for one incident seen from both sides (the same key, or
        // one side already resolved by an interrupted repair); unrelated incidents are
        // planned one direction at a time.
        .filter(|r| {
            r.same_key
                || d.conflicts.is_empty()
                || r.diagnosis
                    .as_ref()
                    .is_some_and(|rd| rd.conflicts.is_empty())
        })
        .and_then(|r| r.diagnosis.as_deref())
        .filter(|r| r.table == d.table)
        .filter(|r| {
            matches!(
                r.kind,
                ConflictKind::DuplicateOnWrite | ConflictKind::DuplicateOnUpdate
            )
        })
}

pub(super) fn why_not(w: &When, f: &Facts, d: &Diagnosis) -> Option<String> {
    let check = |want: Option<bool>, have: bool, yes: &str, no: &str| -> Option<String> {
        match want {
            Some(w) if w != have => Some(if have { yes } else { no }.to_string()),
            _ => None,
        }
    };
    check(w.rows_identical, f.identical, "the rows are identical", "the rows differ")
        .or_else(|| check(w.gtid_known, f.gtid_known, "the GTID is known", "the failing transaction's GTID is not known"))
        .or_else(|| {
            check(
                w.gtid_enabled,
                f.gtid_enabled,
                "GTIDs are on (MySQL refuses the skip counter with gtid_mode=ON; MariaDB skips by gtid_slave_pos)",
                "GTID skipping is not possible (GTIDs off, or MariaDB replicating by file/position)",
            )
        })
        .or_else(|| check(w.source_row_known, f.source_row_known, "", "the failing transaction could not be read from the source"))
        .or_else(|| {
            check(
                w.all_rows_conflict,
                f.all_rows_conflict,
                "every row of the transaction conflicts",
                "the transaction holds rows that do not conflict",
            )
        })
        .or_else(|| check(w.dual_master, f.dual_master, "the pair is dual-master", "not a dual-master pair"))
        .or_else(|| {
            check(
                w.two_records,
                f.two_records,
                "the rows look like two different records on one AUTO_INCREMENT key: keeping only one would lose the other record",
                "the conflicting rows are versions of one record (rekey is for two different records sharing an AUTO_INCREMENT or generated key)",
            )
        })
        .or_else(|| match (w.key_kind, d.key.as_ref()) {
            (Some(k), Some(key)) if key.kind != k => Some(format!("the conflicting key is {} {}", match key.kind { KeyKind::Primary => "the primary key", KeyKind::Unique => "a unique key" }, key.name)),
            _ => None,
        })
        .or_else(|| match w.flavor {
            Some(k) if k != d.replica.flavor.kind => Some(format!("not for {}", d.replica.flavor)),
            _ => None,
        })
        .or_else(|| {
            let min = w.min_version.as_deref().and_then(super::playbook::parse_version)?;
            (d.replica.flavor.version < min).then(|| format!("needs version {min} or later"))
        })
}

pub fn choose_playbook<'p>(d: &Diagnosis, playbooks: &'p [Playbook]) -> Option<&'p Playbook> {
    let is_dual = dual(d).is_some();
    playbooks.iter().find(|p| {
        p.applies_to.dual_master == is_dual
            && p.applies_to.errno == d.error.errno
            && p.applies_to.kinds.contains(&d.kind)
    })
}

/// Why a remedy cannot be built at all here, beyond its playbook conditions.
pub(super) fn structural_why_not(spec: &RemedySpec, d: &Diagnosis) -> Option<String> {
    let touches = spec.steps.iter().any(|s| s.writes_rows());
    if !touches {
        None
    } else if d.row_key.is_empty() {
        Some(format!(
            "{} has no primary or unique key: its rows cannot be identified exactly",
            d.table
        ))
    } else if spec.steps.contains(&StepTemplate::InsertMissingRows) && d.conflicts.is_empty() {
        Some("the missing rows could not be identified from the row image".to_string())
    } else if spec.steps.contains(&StepTemplate::ReinsertUnderFreshKey) {
        children_why_not(d).or_else(|| clash_why_not(d))
    } else {
        None
    }
}

/// Both nodes' rekey facts (the replica's, and the other node's in a dual-master pair).
fn auto_keys(d: &Diagnosis) -> Vec<(&Endpoint, &AutoKey)> {
    [Some(d), dual(d)]
        .into_iter()
        .flatten()
        .filter_map(|n| n.auto_key.as_ref().map(|a| (&n.replica.endpoint, a)))
        .collect()
}

/// rekey moves a record to a fresh key, but child rows follow the key value: the children of
/// both records reference the same old value and cannot be told apart, so moving the record
/// would hand its children to the other record (or orphan them).
fn children_why_not(d: &Diagnosis) -> Option<String> {
    let nodes = auto_keys(d);
    // Each constraint once, with the nodes it is on when not on all of them.
    let mut named: Vec<(String, Vec<&Endpoint>)> = Vec::new();
    for (endpoint, a) in &nodes {
        for fk in &a.referenced_by {
            let text = format!("{} ({}, ON DELETE {})", fk.child, fk.name, fk.on_delete);
            match named.iter_mut().find(|(t, _)| *t == text) {
                Some((_, on)) => on.push(*endpoint),
                None => named.push((text, vec![*endpoint])),
            }
        }
    }
    let column = nodes.first().map(|(_, a)| a.column.as_str())?;
    let children: Vec<String> = named
        .into_iter()
        .map(|(text, on)| match on.len() == nodes.len() {
            true => text,
            false => format!(
                "{text} on {}",
                on.iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
        .collect();
    (!children.is_empty()).then(|| {
        format!(
            "foreign keys reference {}.{column}, so the child rows of the two records hold the same {column} and cannot be told apart (moving one record would give its child rows to the other): {}",
            d.table,
            children.join(", ")
        )
    })
}

/// Two records holding the same value in another unique key cannot both exist, whatever
/// their AUTO_INCREMENT keys.
fn clash_why_not(d: &Diagnosis) -> Option<String> {
    let (endpoint, clash) = auto_keys(d)
        .into_iter()
        .find_map(|(endpoint, a)| a.unique_clashes.first().map(|c| (endpoint, c)))?;
    let values = key_words(&clash.values);
    Some(format!(
        "the other node's record holds {values} in unique key {}, a value the row {} on {endpoint} already holds (as the server compares them): two records with the same {} cannot both exist under any {}",
        clash.key,
        key_words(&clash.holder),
        clash.key,
        d.auto_key.as_ref().map_or("key", |a| a.column.as_str())
    ))
}
