//! The I/O side of an earlier skip (`diagnosis::skipped` judges): the source's last writers
//! of the conflicting keys *before* the failing transaction (a search of its binary log that
//! stops at that transaction), whether the replica counts them as executed, and who skipped
//! them: a replmend journal's records, or the replica's own binary log that would hold the
//! write had it been applied.

use super::origin::{Node, file_start_state, ids, node_origins, recent_journals};
use crate::binlog::origin::Budget;
use crate::conn::Server;
use crate::diagnosis::Diagnosis;
use crate::diagnosis::finder::Key;
use crate::diagnosis::skipped::{self, Proof, Skipped};
use crate::journal::Line;
use crate::planner::RemedyId;
use crate::report::record::{Body, Record, StepEnd};
use crate::vocab::{Endpoint, Gtid};

/// The earlier transaction on one of `keys` that the replica skipped, when it is proven.
/// Needs GTIDs (what the replica counts as executed) and the failing transaction's place in
/// the source's binary log.
pub(super) fn find(
    d: &Diagnosis,
    replica: &mut Server,
    source: &mut Server,
    keys: &[Key],
    budget: Budget,
) -> Option<Skipped> {
    let t = d.transaction.as_ref()?;
    let key = d.key.as_ref()?;
    if !d.gtid_enabled || keys.is_empty() {
        return None;
    }
    let node = Node {
        table: &d.table,
        key,
        keys,
        errant: None,
        budget,
        end: Some((&t.source_log_file, t.start_pos)),
    };
    let prior = node_origins(source, &node, Some(&ids(replica)));
    crate::timing::mark("earlier writers searched");
    let slave_pos = d.gtid_slave_pos.as_deref();
    for (c, p) in d.conflicts.iter().zip(&prior) {
        let executed = &mut |g: &Gtid| super::channel::gtid_executed_on(replica, g, slave_pos);
        let Some(g) = skipped::left_apart(c, p, executed) else {
            continue;
        };
        let proof = match journal_skip(&g, &d.replica.endpoint) {
            Some(words) => Proof::Journal(words),
            None if logged_if_applied(replica, &g) => Proof::ReplicaLogSilent,
            None => continue,
        };
        if let Some(s) = skipped::judge(c, p, g, proof) {
            return Some(s);
        }
    }
    None
}

/// Whether `g`'s writes would be in the replica's retained binary logs had it applied them:
/// it logs what it applies, and its oldest retained log starts before `g`.
fn logged_if_applied(replica: &mut Server, g: &Gtid) -> bool {
    let query = replica.flavor.logs_applied_query();
    if replica.first::<i64>(&query).ok().flatten() != Some(1) {
        return false;
    }
    let oldest = replica
        .all::<mysql::Row>(&crate::sql::admin::binary_logs())
        .ok()
        .and_then(|rows| rows.first().and_then(|r| r.get::<String, _>(0)));
    oldest
        .and_then(|f| file_start_state(replica, &f))
        .is_some_and(|state| !state.contains(g))
}

/// A replmend journal (the newest ones in the default directory) that records skipping `g`
/// on `replica`: a repair of the incident whose failing transaction was `g`, with a skipping
/// remedy, that ran a step. In words. (The replica is compared too: MariaDB's GTIDs repeat
/// from one replication domain of a fleet to the next.)
fn journal_skip(g: &Gtid, replica: &Endpoint) -> Option<String> {
    let want = g.to_string();
    for path in recent_journals() {
        let Ok(lines) = crate::journal::read_lines(&path) else {
            continue;
        };
        let records: Vec<Record> = lines
            .iter()
            .filter_map(|l| match l {
                Line::Record(v) => Record::from_json(v),
                Line::Entry(_) => None,
            })
            .collect();
        for r in &records {
            let Body::Diagnosis(dr) = &r.body else {
                continue;
            };
            if dr.gtid.as_deref() != Some(want.as_str()) || dr.replica != *replica {
                continue;
            }
            let of_it = || records.iter().filter(|x| x.fingerprint == r.fingerprint);
            let remedy = of_it().find_map(|x| match &x.body {
                Body::Plan(p) if skips(p.remedy) => Some(p.remedy),
                _ => None,
            });
            let ran = of_it()
                .filter(|x| {
                    matches!(&x.body, Body::Step(s) if matches!(s.end, StepEnd::Done | StepEnd::AlreadyDone))
                })
                .map(|x| x.at_ms)
                .max();
            if let (Some(remedy), Some(at_ms)) = (remedy, ran) {
                return Some(format!(
                    "{} records its `{remedy}` of {want} on {} at {} UTC",
                    path.display(),
                    dr.replica,
                    crate::value::utc_datetime((at_ms / 1000) as i64, 0, 0)
                ));
            }
        }
    }
    None
}

/// Remedies that skip the failing transaction on the replica.
fn skips(r: RemedyId) -> bool {
    matches!(r, RemedyId::Skip | RemedyId::InjectGtid | RemedyId::Keep)
}
