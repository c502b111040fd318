//! The origin of each conflicting row and the incident's cause: the I/O side (each node's
//! binary log list and its search, the AUTO_INCREMENT settings, replmend's journals). What
//! matches a key, what the origins say and the cause itself are pure (`diagnosis::origin`,
//! `diagnosis::cause`).

use crate::binlog::origin::{self as search, Budget, LogFile};
use crate::conn::Server;
use crate::diagnosis::cause::{self, AutoIncrement, Facts};
use crate::diagnosis::finder::Key;
use crate::diagnosis::origin::{self, KeyMatcher, NodeIds, NodeOrigin, Origins};
use crate::diagnosis::*;
use crate::status::filters::Filters;

/// Conflicts whose origins are searched (a batch's thousands of rows are one cause).
const MAX_KEYS: usize = 16;

/// Searches both nodes' binary logs for the writers of the conflicting keys, and classifies
/// the cause. Never fails: what could not be read is said in the origins.
pub fn attach(
    d: &mut Diagnosis,
    replica: &mut Server,
    mut source: Option<&mut Server>,
    filters: &Filters,
    budget: Budget,
) {
    let keys: Vec<Key> = d
        .conflicts
        .iter()
        .take(MAX_KEYS)
        .map(|c| c.key.clone())
        .collect();
    let replica_ids = ids(replica);
    let source_ids = source.as_deref().map(ids);
    if let Some(key) = d.key.clone()
        && !keys.is_empty()
    {
        let on_replica = node_origins(replica, &d.table, &key, &keys, source_ids.as_ref(), budget);
        let on_source = source
            .as_deref_mut()
            .map(|s| node_origins(s, &d.table, &key, &keys, Some(&replica_ids), budget));
        for (i, (c, r)) in d.conflicts.iter_mut().zip(on_replica).enumerate() {
            c.origin = Some(Origins {
                replica: r,
                source: on_source.as_ref().map(|s| s[i].clone()),
            });
        }
    }
    let facts = Facts {
        auto_increment: match (d.auto_key.is_some(), source) {
            (true, Some(s)) => auto_increment(replica).zip(auto_increment(s)),
            _ => None,
        },
        journal: journal_evidence(&d.table, &keys),
        filtered: filters.excludes(&d.table),
    };
    d.cause = Some(cause::classify(d, &facts));
}

/// The other direction of a dual-master pair stopped on the same keys: its replica is this
/// incident's source and the other way round, so each key's origins are the ones found
/// already, the two nodes swapped (nothing is searched twice); the cause is the same one.
pub fn mirror_to_reverse(d: &mut Diagnosis) {
    let found: Vec<(Key, Origins)> = d
        .conflicts
        .iter()
        .filter_map(|c| Some((c.key.clone(), c.origin.clone()?)))
        .collect();
    let cause = d.cause.clone();
    let Some(rd) = d.reverse.as_mut().and_then(|r| r.diagnosis.as_deref_mut()) else {
        return;
    };
    for c in &mut rd.conflicts {
        let Some((_, o)) = found.iter().find(|(k, _)| *k == c.key) else {
            continue;
        };
        if let Some(source) = &o.source {
            c.origin = Some(Origins {
                replica: source.clone(),
                source: Some(o.replica.clone()),
            });
        }
    }
    rd.cause = cause;
}

fn ids(s: &Server) -> NodeIds {
    NodeIds {
        server_id: s.server_id,
        server_uuid: s.server_uuid.clone(),
    }
}

/// Each key's origin on one node.
fn node_origins(
    node: &mut Server,
    table: &TableRef,
    key: &KeyRef,
    keys: &[Key],
    other: Option<&NodeIds>,
    budget: Budget,
) -> Vec<NodeOrigin> {
    let all = |o: NodeOrigin| vec![o; keys.len()];
    match node.first::<u32>(&crate::sql::admin::log_bin()) {
        Ok(Some(0)) => return all(origin::no_binary_log()),
        Ok(_) => {}
        Err(e) => return all(origin::unreadable(crate::describe::describe_mysql(&e))),
    }
    let logs: Vec<LogFile> = match node.all::<mysql::Row>(&crate::sql::admin::binary_logs()) {
        Ok(rows) => rows
            .into_iter()
            .map(|row| LogFile {
                name: row.get::<String, _>(0).unwrap_or_default(),
                size: row.get::<u64, _>(1).unwrap_or(0),
            })
            .collect(),
        Err(e) => return all(origin::unreadable(crate::describe::describe_mysql(&e))),
    };
    let schema = match node.table(table) {
        Ok(s) => s,
        Err(e) => return all(origin::unreadable(e.to_string())),
    };
    let this = ids(node);
    let matcher = KeyMatcher::new(table, key, &schema, keys);
    let searched = search::search(
        &node.spec,
        node.flavor,
        &logs,
        budget,
        keys.len(),
        &mut |ev| matcher.hits(ev),
    );
    crate::timing::mark("origin searched");
    match searched {
        Err(e) => all(origin::unreadable(e.to_string())),
        Ok(s) => s
            .hits
            .iter()
            .map(|h| match h {
                Some(h) => origin::found(h, &schema, &this, other, &s),
                None => origin::not_found(&s, budget),
            })
            .collect(),
    }
}

fn auto_increment(s: &mut Server) -> Option<AutoIncrement> {
    let (increment, offset) = s
        .first::<(u64, u64)>(&crate::sql::admin::auto_increment_settings())
        .ok()??;
    Some(AutoIncrement { increment, offset })
}

/// Journals read for earlier repairs (the newest ones in the default journal directory).
const JOURNALS_READ: usize = 14;

/// An earlier replmend repair that changed one of `keys` of `table`, from the journals in the
/// default journal directory, in words.
fn journal_evidence(table: &TableRef, keys: &[Key]) -> Option<String> {
    let dir = crate::journal::default_path().parent()?.to_path_buf();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("journal-") && n.ends_with(".jsonl"))
        })
        .collect();
    files.sort();
    for path in files.iter().rev().take(JOURNALS_READ) {
        let Ok(entries) = crate::journal::read(path) else {
            continue;
        };
        for e in entries.iter().rev() {
            if e.table_ref().as_ref() != Some(table) {
                continue;
            }
            let Ok(row) = e.image() else { continue };
            let holds = keys.iter().any(|k| {
                k.iter()
                    .all(|(col, v)| row.get(col).is_some_and(|have| have == v))
            });
            if holds {
                let action = serde_json::to_string(&e.action).unwrap_or_default();
                return Some(format!(
                    "{} records a {} of this row on {} at {} UTC",
                    path.display(),
                    action.trim_matches('"'),
                    e.node,
                    crate::value::utc_datetime(e.at as i64, 0, 0)
                ));
            }
        }
    }
    None
}
