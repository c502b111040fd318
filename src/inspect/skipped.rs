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
use crate::report::record::{Body, Record, RunEnd};
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
    // The cheap conditions first: without a journal of a skip on this replica, only a
    // replica that logs what it applies can prove one.
    let skips = journal_skips(&d.replica.endpoint);
    let logs_applied = logs_applied(replica);
    if skips.is_empty() && !logs_applied {
        return None;
    }
    // The search stops at the failing transaction: only where its place is certain (a scan
    // by GTID may have found it in a later file than the one it started in).
    if !starts_at(source, &t.source_log_file, t.start_pos, d.gtid.as_ref()?) {
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
        let proof = match skips.iter().find(|(s, _)| *s == g.to_string()) {
            Some((_, words)) => Proof::Journal(words.clone()),
            None if logs_applied && logged_across(replica, &g) => Proof::ReplicaLogSilent,
            None => continue,
        };
        if let Some(s) = skipped::judge(c, p, g, proof) {
            return Some(s);
        }
    }
    None
}

/// Whether the transaction at `pos` of the source's binary log `file` is `gtid`'s.
fn starts_at(source: &mut Server, file: &str, pos: u64, gtid: &Gtid) -> bool {
    let want = gtid.to_string();
    super::origin::binlog_events(source, file, pos, 1)
        .ok()
        .and_then(|events| events.into_iter().next())
        .is_some_and(|(_, info)| {
            info.contains(&format!("'{want}'")) || info.ends_with(&format!("GTID {want}"))
        })
}

/// Events of the replica's oldest log looked at for a transaction older than a skipped one.
const FIRST_EVENTS: u64 = 256;

/// Whether the replica writes what it applies to its own binary log.
fn logs_applied(replica: &mut Server) -> bool {
    let query = replica.flavor.logs_applied_query();
    replica.first::<i64>(&query).ok().flatten() == Some(1)
}

/// Whether the replica's retained binary logs were being written across `g`, so that `g`'s
/// writes would be in them had it applied them. Positive evidence only (a replica restored
/// from a backup holds transactions in its GTID state that no log of its own has):
/// MySQL: `g` is executed but not purged, i.e. in a retained log (a skip by hand logs an
/// empty transaction); MariaDB: its oldest log already holds (or starts after) an earlier
/// transaction of `g`'s server in `g`'s domain (a skip counter logs nothing).
fn logged_across(replica: &mut Server, g: &Gtid) -> bool {
    match g {
        Gtid::Mysql { .. } => {
            let st = crate::sql::Statement::plain("SELECT GTID_SUBSET(?, @@GLOBAL.gtid_purged)")
                .params(vec![crate::value::Cell::Text(g.to_string())]);
            replica.first::<i64>(&st).ok().flatten() == Some(0)
        }
        Gtid::Mariadb {
            domain,
            server_id,
            seq,
        } => {
            let oldest = replica
                .all::<mysql::Row>(&crate::sql::admin::binary_logs())
                .ok()
                .and_then(|rows| rows.first().and_then(|r| r.get::<String, _>(0)));
            let Some(oldest) = oldest else {
                return false;
            };
            // Its Gtid_list (what came before it), else one of its first transactions.
            let before = |g: &Gtid| {
                matches!(*g, Gtid::Mariadb { domain: d, server_id: s, seq: n }
                    if d == *domain && s == *server_id && n < *seq)
            };
            if let Some(crate::vocab::GtidSet::Mariadb(list)) = file_start_state(replica, &oldest)
                && list.iter().any(|g| before(&g))
            {
                return true;
            }
            super::origin::binlog_events(replica, &oldest, 4, FIRST_EVENTS)
                .unwrap_or_default()
                .iter()
                .filter_map(|(_, info)| info.split("GTID ").nth(1))
                .filter_map(|g| g.split_whitespace().next().and_then(Gtid::parse))
                .any(|g| before(&g))
        }
    }
}

/// The skips replmend's journals (the newest ones in the default directory) record on
/// `replica`: (GTID, in words), one per repair whose remedy skips the failing transaction
/// and whose run got through its steps (its verification says it did not fail). (The
/// replica is compared too: MariaDB's GTIDs repeat from one replication domain of a fleet to
/// the next.)
fn journal_skips(replica: &Endpoint) -> Vec<(String, String)> {
    let mut out = Vec::new();
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
            let Some(gtid) = dr.gtid.as_ref().filter(|_| dr.replica == *replica) else {
                continue;
            };
            let of_it = || records.iter().filter(|x| x.fingerprint == r.fingerprint);
            let remedy = of_it().find_map(|x| match &x.body {
                Body::Plan(p) if skips(p.remedy) => Some(p.remedy),
                _ => None,
            });
            let ran = of_it().find_map(|x| match &x.body {
                Body::Verification(v) if v.end != RunEnd::Failed => Some(x.at_ms),
                _ => None,
            });
            if let (Some(remedy), Some(at_ms)) = (remedy, ran) {
                out.push((
                    gtid.clone(),
                    format!(
                        "{} records its `{remedy}` of {gtid} on {} at {} UTC",
                        path.display(),
                        dr.replica,
                        crate::value::utc_datetime((at_ms / 1000) as i64, 0, 0)
                    ),
                ));
            }
        }
    }
    out
}

/// Remedies that skip the failing transaction on the replica.
fn skips(r: RemedyId) -> bool {
    matches!(r, RemedyId::Skip | RemedyId::InjectGtid | RemedyId::Keep)
}
