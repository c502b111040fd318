//! The origin of each conflicting row and the incident's cause: the I/O side (each node's
//! binary log list and its search, the AUTO_INCREMENT settings, replmend's journals). What
//! matches a key, what the origins say and the cause itself are pure (`diagnosis::origin`,
//! `diagnosis::cause`).

use crate::binlog::origin::{self as search, Budget, LogFile};
use crate::conn::Server;
use crate::diagnosis::cause::{self, AutoIncrement, CauseKind, Facts};
use crate::diagnosis::finder::Key;
use crate::diagnosis::origin::{self, ErrantSpan, KeyMatcher, NodeIds, NodeOrigin, Origins};
use crate::diagnosis::*;
use crate::status::errant::Errant;
use crate::status::filters::Filters;
use crate::vocab::{GtidSet, MariadbGtidList, MysqlGtidSet};

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
        let replica_errant = span(&d.errant);
        // The source has errant GTIDs only as a replica itself: of this node, in a pair.
        let dual = d.reverse.as_ref().is_some_and(|r| r.dual_master);
        let source_errant = match (dual, source.as_deref_mut()) {
            (true, Some(s)) => crate::status::read_status(s)
                .ok()
                .and_then(|r| span(&crate::status::errant::find(s, &r, Some(&mut *replica)))),
            _ => None,
        };
        let node = |table, errant| Node {
            table,
            key: &key,
            keys: &keys,
            errant,
            budget,
            end: None,
        };
        let on_replica = node_origins(
            replica,
            &node(&d.table, replica_errant),
            source_ids.as_ref(),
        );
        let on_source = source
            .as_deref_mut()
            .map(|s| node_origins(s, &node(&d.table, source_errant), Some(&replica_ids)));
        for (i, (c, r)) in d.conflicts.iter_mut().zip(on_replica).enumerate() {
            c.origin = Some(Origins {
                replica: r,
                source: on_source.as_ref().map(|s| s[i].clone()),
            });
        }
    }
    let mut facts = Facts {
        auto_increment: match (d.auto_key.is_some(), source.as_deref_mut()) {
            (true, Some(s)) => auto_increment(replica).zip(auto_increment(s)),
            _ => None,
        },
        journal: journal_evidence(&d.table, &keys, &d.fingerprint),
        filtered: filters.excludes(&d.table),
        skipped: None,
    };
    let mut c = cause::classify(d, &facts);
    // Only when nothing stronger explains it: an earlier skip costs a second search of the
    // source's binary log (the writers before the failing transaction).
    if matches!(c.kind, CauseKind::Unknown | CauseKind::NoTrace)
        && let Some(s) = source
    {
        facts.skipped = super::skipped::find(d, replica, s, &keys, budget);
        if facts.skipped.is_some() {
            c = cause::classify(d, &facts);
        }
    }
    d.cause = Some(c);
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
    // An earlier skip is the replica's, in this direction: the other direction's replica is
    // this one's source, where nothing was skipped.
    rd.cause = cause.filter(|c| c.kind != CauseKind::EarlierSkip);
}

pub(super) fn ids(s: &Server) -> NodeIds {
    NodeIds {
        server_id: s.server_id,
        server_uuid: s.server_uuid.clone(),
    }
}

/// The errant GTIDs as the search locates them (None: there are none).
fn span(errant: &[Errant]) -> Option<ErrantSpan> {
    let e = errant.first()?;
    match &e.gtids {
        GtidSet::Mysql(set) => (!set.is_empty()).then(|| ErrantSpan::Mysql(set.clone())),
        GtidSet::Mariadb(list) => {
            let logged = e.sources_logged.clone().unwrap_or_default();
            let entries: Vec<_> = list
                .iter()
                .filter_map(|g| match g {
                    crate::vocab::Gtid::Mariadb {
                        domain,
                        server_id,
                        seq,
                    } => Some((
                        domain,
                        server_id,
                        logged.seq_of(domain, server_id).unwrap_or(0),
                        seq,
                    )),
                    _ => None,
                })
                .collect();
            (!entries.is_empty()).then_some(ErrantSpan::Mariadb(entries))
        }
    }
}

/// What one node's search looks for.
pub(super) struct Node<'a> {
    pub table: &'a TableRef,
    pub key: &'a KeyRef,
    pub keys: &'a [Key],
    /// The node's errant GTIDs: their files are read first.
    pub errant: Option<ErrantSpan>,
    pub budget: Budget,
    /// Only the writers before this transaction (its binary log and start position).
    pub end: Option<(&'a str, u64)>,
}

/// The GTID state binary log `file` starts with: MySQL's Previous_gtids event, MariaDB's
/// Gtid_list (the second event of every file; SHOW BINLOG EVENTS reads no further).
pub(super) fn file_start_state(node: &mut Server, file: &str) -> Option<GtidSet> {
    let events = binlog_events(node, file, 4, 3).ok()?;
    events.iter().find_map(|(kind, info)| match kind.as_str() {
        "Previous_gtids" => MysqlGtidSet::parse(info).map(GtidSet::Mysql),
        "Gtid_list" => {
            MariadbGtidList::parse(info.trim().trim_start_matches('[').trim_end_matches(']'))
                .map(GtidSet::Mariadb)
        }
        _ => None,
    })
}

/// SHOW BINLOG EVENTS IN `file` FROM `pos` LIMIT `limit`, as (event type, info) pairs.
pub(super) fn binlog_events(
    node: &mut Server,
    file: &str,
    pos: u64,
    limit: u64,
) -> Result<Vec<(String, String)>, mysql::Error> {
    let rows: Vec<mysql::Row> = node.all(&crate::sql::admin::binlog_events(file, pos, limit))?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                r.get::<String, _>(2).unwrap_or_default(),
                r.get::<Option<String>, _>(5).flatten().unwrap_or_default(),
            )
        })
        .collect())
}

/// A transaction's events as SHOW BINLOG EVENTS lists them, read once per transaction (the
/// keys of one batch were mostly written by the same one), as far as its furthest rows event
/// that wrote a key: (file, start) → (that rows event's index, the events once read).
type EventsRead = std::collections::HashMap<
    (String, u64),
    (usize, Option<Result<Vec<(String, String)>, String>>),
>;

/// MariaDB: the statement of a found transaction's rows event, from its Annotate_rows event
/// (the dump cannot ask for them: the driver masks BINLOG_SEND_ANNOTATE_ROWS_EVENT), read
/// with SHOW BINLOG EVENTS from the transaction's start. Sets `statement` or says why not.
fn read_annotate(node: &mut Server, o: &mut NodeOrigin, hit: &search::Hit, read: &mut EventsRead) {
    if !node.flavor.is_mariadb() || o.statement.is_some() {
        return;
    }
    let Some((furthest, listed)) = read.get_mut(&(hit.file.clone(), hit.trx.start_pos)) else {
        return;
    };
    // Enough events for every rows event up to the furthest one a key needs (each statement
    // an Annotate_rows, a table map and its rows events), at most 4,096.
    let limit = (64 + 4 * *furthest as u64).min(4096);
    let listed = listed.get_or_insert_with(|| {
        binlog_events(node, &hit.file, hit.trx.start_pos, limit).map_err(|e| {
            match matches!(&e, mysql::Error::MySqlError(m) if m.code == 1227) {
                true => "reading its Annotate_rows event was refused (SHOW BINLOG EVENTS needs BINLOG MONITOR)".into(),
                false => format!(
                    "reading its Annotate_rows event failed: {}",
                    crate::describe::describe_mysql(&e)
                ),
            }
        })
    });
    let events = match listed {
        Ok(events) => events,
        Err(why) => {
            o.statement_note = Some(why.clone());
            return;
        }
    };
    match origin::annotate_of(events, hit.rows_index) {
        Ok(text) => o.statement = Some(text),
        Err(why) => o.statement_note = Some(why),
    }
}

/// Each key's origin on one node.
pub(super) fn node_origins(
    node: &mut Server,
    n: &Node<'_>,
    other: Option<&NodeIds>,
) -> Vec<NodeOrigin> {
    let (table, key, keys, budget) = (n.table, n.key, n.keys, n.budget);
    let all = |o: NodeOrigin| vec![o; keys.len()];
    match node.first::<u32>(&crate::sql::admin::log_bin()) {
        Ok(Some(0)) => return all(origin::no_binary_log()),
        Ok(_) => {}
        Err(e) => return all(origin::unreadable(crate::describe::describe_mysql(&e))),
    }
    let mut logs: Vec<LogFile> = match node.all::<mysql::Row>(&crate::sql::admin::binary_logs()) {
        Ok(rows) => rows
            .into_iter()
            .map(|row| LogFile {
                name: row.get::<String, _>(0).unwrap_or_default(),
                size: row.get::<u64, _>(1).unwrap_or(0),
            })
            .collect(),
        Err(e) => return all(origin::unreadable(crate::describe::describe_mysql(&e))),
    };
    if let Some((file, _)) = n.end {
        match logs.iter().position(|l| l.name == file) {
            Some(i) => logs.truncate(i + 1),
            None => {
                return all(origin::unreadable(format!(
                    "{file}, the failing transaction's binary log, is no longer on the node"
                )));
            }
        }
    }
    let schema = match node.table(table) {
        Ok(s) => s,
        Err(e) => return all(origin::unreadable(e.to_string())),
    };
    let this = ids(node);
    // The files holding the errant GTIDs (a few SHOW BINLOG EVENTS … LIMIT 3); when a file's
    // state cannot be read, every file is read newest first.
    let first = n
        .errant
        .as_ref()
        .and_then(|span| {
            origin::errant_files(logs.len(), span, &mut |i| {
                file_start_state(node, &logs[i].name)
            })
        })
        .unwrap_or_default();
    let matcher = KeyMatcher::new(table, key, &schema, keys);
    let searched = search::search(
        &node.spec,
        node.flavor,
        &logs,
        budget,
        keys.len(),
        search::Scope {
            first: &first,
            end_pos: n.end.map(|(_, pos)| pos),
        },
        &mut |ev| matcher.hits(ev),
    );
    crate::timing::mark("origin searched");
    let mut read = EventsRead::new();
    if let Ok(s) = &searched {
        for h in s.hits.iter().flatten() {
            let e = read.entry((h.file.clone(), h.trx.start_pos)).or_default();
            e.0 = e.0.max(h.rows_index);
        }
    }
    match searched {
        Err(e) => all(origin::unreadable(e.to_string())),
        Ok(s) => s
            .hits
            .iter()
            .enumerate()
            .map(|(k, h)| match h {
                Some(h) => {
                    let mut o = origin::found(h, &schema, &this, other, &s);
                    read_annotate(node, &mut o, h, &mut read);
                    o
                }
                None => origin::not_found(&s, k, budget, &this, other),
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
pub(super) const JOURNALS_READ: usize = 14;

/// The journals in the default journal directory, newest first (at most JOURNALS_READ).
pub(super) fn recent_journals() -> Vec<std::path::PathBuf> {
    let Some(dir) = crate::journal::default_path()
        .parent()
        .map(|p| p.to_path_buf())
    else {
        return Vec::new();
    };
    let Ok(listed) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = listed
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("journal-") && n.ends_with(".jsonl"))
        })
        .collect();
    files.sort();
    files.reverse();
    files.truncate(JOURNALS_READ);
    files
}

/// An earlier replmend repair that changed one of `keys` of `table`, from the journals in the
/// default journal directory, in words.
/// Entries of the incident itself (`fingerprint`: a repair of it, this run's or an earlier
/// attempt's) are not evidence of an earlier one.
fn journal_evidence(table: &TableRef, keys: &[Key], fingerprint: &str) -> Option<String> {
    for path in recent_journals() {
        let Ok(entries) = crate::journal::read(&path) else {
            continue;
        };
        for e in entries.iter().rev() {
            if e.table_ref().as_ref() != Some(table) || e.fingerprint == fingerprint {
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
