//! The resync planner: drifted rows, as both nodes hold them now, and a winner policy → a plan
//! of row steps on the losing node (delete its version, insert the winner's), each step one
//! transaction with every row checked by a locking read first. Same plan model as a repair:
//! what it shows is exactly what runs. Pure: no I/O.

use super::plan::{NodeRole, Plan, RowAction, RowChange, Step, StepKind, Winner};
use super::playbook::{RemedyId, StepTemplate};
use crate::flavor::{Flavor, Provider};
use crate::schema::TableFacts;
use crate::sql::TableSql;
use crate::sql::{self, Statement};
use crate::value::Cell;
use crate::value::Row;
use crate::vocab::{ReadOnly, TableRef};

/// One drifted key with each node's current version.
#[derive(Debug, Clone, PartialEq)]
pub struct RowPair {
    pub key: Vec<(String, Cell)>,
    pub source: Option<Row>,
    pub replica: Option<Row>,
}

/// A table's drifted rows and what its statements need to know about it.
#[derive(Debug, Clone)]
pub struct TableRows {
    pub table: TableRef,
    pub rows: Vec<RowPair>,
    /// What the row statements need to know of its columns (the replica's definition).
    pub facts: TableFacts,
    /// The columns of each UNIQUE key beside the one the rows are addressed by: a row may
    /// take a value of one that another drifted row still holds.
    pub unique: Vec<Vec<String>>,
}

/// A node of the pair as the plan names it.
#[derive(Debug, Clone)]
pub struct Node {
    pub role: NodeRole,
    pub endpoint: crate::vocab::Endpoint,
    pub flavor: Flavor,
    pub read_only: ReadOnly,
    /// A managed service where no account may turn the binary log off for a session: its
    /// row changes are logged there with its own GTID (the plan's consequence).
    pub binlog_stays_on: Option<Provider>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ResyncError {
    #[error(
        "--winner {0} needs a dual-master pair: on a plain replica only the source's rows can win (writing them on the source would replicate to the replica)"
    )]
    NeedsDualMaster(String),
    #[error("--winner newest:{0}: table {1} has no column {0}")]
    NoSuchColumn(String, TableRef),
    /// A dual-master pair where a node to be written logs every change: it would replicate
    /// to the other node and undo (or break on) the fix there.
    #[error(
        "{0} ({1}) lets no account turn the binary log off for a session, so resync's row changes there would replicate to {2} and undo the fix on that node (or stop its applier); nothing was changed"
    )]
    LoggedInPair(crate::vocab::Endpoint, &'static str, crate::vocab::Endpoint),
}

/// Rows per step (one transaction each): small enough for short locks and any
/// max_allowed_packet, large enough that a journal fsync serves many rows.
pub const ROWS_PER_STEP: usize = 500;

/// Which node's version of a key wins: the source's or the replica's side.
fn winner_side(pair: &RowPair, winner: &Winner) -> NodeRole {
    match winner {
        Winner::Source => NodeRole::Source,
        Winner::Replica => NodeRole::Replica,
        Winner::Newest(col) => match (&pair.source, &pair.replica) {
            // A row on one node only is copied to the other: newest never deletes.
            (Some(_), None) => NodeRole::Source,
            (None, Some(_)) => NodeRole::Replica,
            (Some(s), Some(r)) => match compare_values(s.get(col), r.get(col)) {
                std::cmp::Ordering::Less => NodeRole::Replica,
                _ => NodeRole::Source,
            },
            (None, None) => NodeRole::Source,
        },
    }
}

/// Numbers compare as numbers, everything else (temporal text sorts in time order) as text.
fn compare_values(a: Option<&Cell>, b: Option<&Cell>) -> std::cmp::Ordering {
    match (a, b) {
        (Some(Cell::Number(x)), Some(Cell::Number(y))) => {
            match (x.parse::<f64>(), y.parse::<f64>()) {
                (Ok(x), Ok(y)) => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
                _ => x.cmp(y),
            }
        }
        (Some(x), Some(y)) => x.display().cmp(&y.display()),
        (Some(_), None) => std::cmp::Ordering::Greater,
        (None, Some(_)) => std::cmp::Ordering::Less,
        (None, None) => std::cmp::Ordering::Equal,
    }
}

/// The changes on the losing node for one key: its version deleted (journaled), the winner's
/// inserted; nothing when they already agree.
fn changes(table: &TableRef, pair: &RowPair, win: NodeRole) -> (NodeRole, Vec<RowChange>) {
    let (winning, losing, loser) = match win {
        NodeRole::Source => (&pair.source, &pair.replica, NodeRole::Replica),
        NodeRole::Replica => (&pair.replica, &pair.source, NodeRole::Source),
    };
    let mut out = Vec::new();
    if winning == losing {
        return (loser, out);
    }
    // Each change is keyed by its own row's key bytes: under a case-, accent- or
    // pad-insensitive collation the two versions may hold the key in different bytes, and
    // the replica must end with the winner's exact bytes.
    if let Some(old) = losing {
        out.push(RowChange {
            table: table.clone(),
            action: RowAction::Delete,
            key: own_key(old, &pair.key),
            image: old.clone(),
            after: winning.clone(),
        });
    }
    if let Some(new) = winning {
        out.push(RowChange {
            table: table.clone(),
            action: RowAction::Insert,
            key: own_key(new, &pair.key),
            image: new.clone(),
            after: Some(new.clone()),
        });
    }
    (loser, out)
}

/// The row's own values of the key's columns (the key as asked when the row lacks one).
pub fn own_key(row: &Row, key: &[(String, Cell)]) -> Vec<(String, Cell)> {
    key.iter()
        .map(|(c, v)| (c.clone(), row.get(c).unwrap_or(v).clone()))
        .collect()
}

fn row_step(node: &Node, t: &TableRows, rows: Vec<RowChange>) -> Step {
    let keys = {
        let mut k: Vec<&Vec<(String, Cell)>> = rows.iter().map(|r| &r.key).collect();
        k.dedup();
        k.len()
    };
    let target = RowTarget {
        facts: &t.facts,
        log_bin: false,
        description: format!(
            "journal, then make {keys} row(s) of {} on {} equal to the other node's (binary log off: the fix must not replicate)",
            t.table, node.endpoint
        ),
    };
    rows_step(node, target, rows)
}

/// What a step of row changes writes into: the table's facts its statements need, whether
/// the binary log stays on for them, and the step's description.
pub struct RowTarget<'a> {
    pub facts: &'a TableFacts,
    pub log_bin: bool,
    pub description: String,
}

/// One transaction of row changes on one node: every row checked by a locking read first,
/// then each written (resync and restore build theirs here; the applier runs them as built).
pub fn rows_step(node: &Node, target: RowTarget<'_>, mut rows: Vec<RowChange>) -> Step {
    // Every delete before any insert (a stable sort keeps a key's delete before its
    // insert): a missing row may hold a UNIQUE value that an extra or replaced row of the
    // same step still holds until its delete ('a@x' under id 1 on the source, id 2 on the
    // replica). Every row is checked before the first write, so the order of the writes
    // changes nothing else.
    rows.sort_by_key(|r| r.action != RowAction::Delete);
    // Where the binary log cannot be turned off (nor set, on or off), the writes are logged
    // with this node's own GTID: the step says so (`Step::logs_errant_rows`).
    let (session, description) = match node.binlog_stays_on {
        None => (sql::row_write_session(target.log_bin), target.description),
        Some(_) => (
            sql::row_write_session_logged(),
            super::logged::description(&target.description, &node.endpoint),
        ),
    };
    let mut statements = vec![sql::start_transaction()];
    for (i, r) in rows.iter().enumerate() {
        let t = TableSql::of(&r.table, target.facts);
        statements.push(t.select_by_key(&r.image.columns, &r.key, true).check(i));
    }
    for (i, r) in rows.iter().enumerate() {
        let t = TableSql::of(&r.table, target.facts);
        let write = match r.action {
            RowAction::Delete => t.delete_by_key(&r.key),
            RowAction::Insert => t.insert_row(&r.image),
        };
        statements.push(write.write(i));
    }
    statements.extend(read_back(&rows, target.facts));
    statements.push(sql::commit());
    Step {
        node: node.role,
        endpoint: node.endpoint.clone(),
        flavor: node.flavor,
        channel: String::new(),
        kind: StepKind::rows(StepTemplate::ResyncRows, rows),
        description,
        session,
        statements,
        precondition: "each row still holds the version read for this plan (else it is left alone and reported)".into(),
        verification: "the rows are equal on both nodes".into(),
        calls: None,
    }
}

/// The read of the inserted rows (after the deletes, the step's last rows) before COMMIT:
/// what the server wrote, compared with what was journaled.
fn read_back(rows: &[RowChange], facts: &TableFacts) -> Option<Statement> {
    let first = rows.iter().position(|r| r.action == RowAction::Insert)?;
    let inserted = &rows[first..];
    let keys: Vec<Vec<(String, Cell)>> = inserted.iter().map(|r| r.key.clone()).collect();
    let columns = &inserted[0].image.columns;
    let st = TableSql::of(&inserted[0].table, facts).select_in(columns, &keys);
    Some(st.read_back(first, inserted.len()))
}

/// A node's steps, between a lift of its read_only and the restore of it when `lift` is
/// asked and the node is read-only (and has steps).
pub fn lifted(node: &Node, node_steps: Vec<Step>, lift: bool) -> Vec<Step> {
    if !lift || node.read_only == ReadOnly::Off || node_steps.is_empty() {
        return node_steps;
    }
    let mut out = vec![read_only_step(node, true)];
    out.extend(node_steps);
    out.push(read_only_step(node, false));
    out
}

fn read_only_step(node: &Node, lift: bool) -> Step {
    let state = node.read_only;
    Step {
        node: node.role,
        endpoint: node.endpoint.clone(),
        flavor: node.flavor,
        channel: String::new(),
        kind: match lift {
            true => StepKind::LiftReadOnly { state },
            false => StepKind::RestoreReadOnly { state },
        },
        description: match lift {
            true => format!(
                "turn {} off on {} for replmend's own writes (journaled; turned back on right after)",
                state.variable(),
                node.endpoint
            ),
            false => format!("turn {} back on on {}", state.variable(), node.endpoint),
        },
        session: Vec::new(),
        statements: match lift {
            true => vec![Statement::plain(node.flavor.lift_read_only())],
            false => node
                .flavor
                .restore_read_only(state)
                .into_iter()
                .map(Statement::plain)
                .collect(),
        },
        precondition: String::new(),
        verification: String::new(),
        calls: None,
    }
}

/// The resync plan. `dual_master`: the source may be written too (its writes would otherwise
/// replicate to the replica and back).
pub fn plan(
    tables: &[TableRows],
    source: &Node,
    replica: &Node,
    winner: &Winner,
    dual_master: bool,
    lift_read_only: bool,
) -> Result<Plan, ResyncError> {
    if !dual_master && *winner != Winner::Source {
        let w = match winner {
            Winner::Newest(c) => format!("newest:{c}"),
            _ => "replica".into(),
        };
        return Err(ResyncError::NeedsDualMaster(w));
    }
    let mut steps = Vec::new();
    let mut consequences = Vec::new();
    for node in [replica, source] {
        let mut node_steps = Vec::new();
        for t in tables {
            if let Winner::Newest(col) = winner
                && t.rows
                    .iter()
                    .filter_map(|p| p.source.as_ref().or(p.replica.as_ref()))
                    .any(|r| r.get(col).is_none())
            {
                return Err(ResyncError::NoSuchColumn(col.clone(), t.table.clone()));
            }
            let mut sets: Vec<Vec<RowChange>> = Vec::new();
            for pair in &t.rows {
                let (loser, ch) = changes(&t.table, pair, winner_side(pair, winner));
                if loser == node.role {
                    sets.push(ch);
                }
            }
            // Rows only deleted (extra on the loser) go first, so the UNIQUE values they hold
            // are free before a later step inserts a missing row holding one of them.
            sets.sort_by_key(|ch| ch.iter().any(|c| c.action == RowAction::Insert));
            let mut pending = Vec::new();
            for ch in linked(sets, &t.unique) {
                // A key's delete and insert stay in the same step (one transaction).
                if pending.len() + ch.len() > ROWS_PER_STEP && !pending.is_empty() {
                    node_steps.push(row_step(node, t, std::mem::take(&mut pending)));
                }
                pending.extend(ch);
            }
            if !pending.is_empty() {
                node_steps.push(row_step(node, t, pending));
            }
        }
        if let Some(provider) = node.binlog_stays_on
            && !node_steps.is_empty()
        {
            if dual_master {
                let other = match node.role {
                    NodeRole::Replica => source,
                    NodeRole::Source => replica,
                };
                return Err(ResyncError::LoggedInPair(
                    node.endpoint.clone(),
                    provider.words(),
                    other.endpoint.clone(),
                ));
            }
            consequences.extend(super::logged::consequences(&node_steps, provider));
        }
        steps.extend(lifted(node, node_steps, lift_read_only));
    }
    let mut plan = Plan::lossless(
        RemedyId::Resync,
        "nothing: every row deleted or replaced is journaled first (restore puts it back)",
        steps,
    );
    plan.consequences = consequences;
    plan.winner = Some(winner.clone());
    plan.winner_endpoint = match winner {
        Winner::Source => Some(source.endpoint.clone()),
        Winner::Replica => Some(replica.endpoint.clone()),
        Winner::Newest(_) => None,
    };
    Ok(plan)
}

/// The change sets, those that must share a transaction merged (in first-member order): a
/// row inserted with a UNIQUE value that another set's delete frees (two rows swapping their
/// e-mail addresses) fails with 1062 unless that delete runs first in the same transaction.
/// Values are compared case-folded and without trailing spaces, as a case-insensitive PAD
/// SPACE collation would: merging too much only makes a transaction larger.
fn linked(sets: Vec<Vec<RowChange>>, unique: &[Vec<String>]) -> Vec<Vec<RowChange>> {
    if unique.is_empty() {
        return sets;
    }
    let mut parent: Vec<usize> = (0..sets.len()).collect();
    let mut freed: std::collections::HashMap<(usize, Vec<String>), usize> = Default::default();
    for (i, ch) in sets.iter().enumerate() {
        for c in ch.iter().filter(|c| c.action == RowAction::Delete) {
            for v in unique_values(&c.image, unique) {
                freed.entry(v).or_insert(i);
            }
        }
    }
    for (i, ch) in sets.iter().enumerate() {
        for c in ch.iter().filter(|c| c.action == RowAction::Insert) {
            for v in unique_values(&c.image, unique) {
                if let Some(&j) = freed.get(&v) {
                    let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                    parent[a.max(b)] = a.min(b);
                }
            }
        }
    }
    let mut groups: Vec<Vec<RowChange>> = vec![Vec::new(); sets.len()];
    for (i, ch) in sets.into_iter().enumerate() {
        let r = root(&mut parent, i);
        groups[r].extend(ch);
    }
    groups.retain(|g| !g.is_empty());
    groups
}

fn root(parent: &mut [usize], mut i: usize) -> usize {
    while parent[i] != i {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    i
}

/// A row's value of each UNIQUE key (by key index), normalized; none for a key with a NULL
/// column (NULLs never clash).
fn unique_values(row: &Row, unique: &[Vec<String>]) -> Vec<(usize, Vec<String>)> {
    unique
        .iter()
        .enumerate()
        .filter_map(|(k, cols)| {
            let vals: Option<Vec<String>> = cols
                .iter()
                .map(|c| match row.get(c)? {
                    Cell::Null => None,
                    v => Some(v.display().trim_end_matches(' ').to_lowercase()),
                })
                .collect();
            Some((k, vals?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flavor::Flavor;

    fn row(id: i64, v: &str, ts: i64) -> Row {
        Row {
            columns: vec!["id".into(), "v".into(), "ts".into()],
            values: vec![
                Cell::Number(id.to_string()),
                Cell::Text(v.into()),
                Cell::Number(ts.to_string()),
            ],
        }
    }

    fn key(id: i64) -> Vec<(String, Cell)> {
        vec![("id".into(), Cell::Number(id.to_string()))]
    }

    fn node(role: NodeRole, ep: &str) -> Node {
        Node {
            role,
            endpoint: crate::vocab::Endpoint::parse(ep).unwrap(),
            flavor: Flavor::parse("10.11.6-MariaDB").unwrap(),
            read_only: ReadOnly::Off,
            binlog_stays_on: None,
        }
    }

    fn table(rows: Vec<RowPair>) -> TableRows {
        TableRows {
            table: TableRef {
                schema: "shop".into(),
                name: "t".into(),
            },
            rows,
            facts: Default::default(),
            unique: Vec::new(),
        }
    }

    fn drift() -> Vec<RowPair> {
        vec![
            // different
            RowPair {
                key: key(1),
                source: Some(row(1, "src", 5)),
                replica: Some(row(1, "rep", 9)),
            },
            // missing on the replica
            RowPair {
                key: key(2),
                source: Some(row(2, "src", 1)),
                replica: None,
            },
            // extra on the replica
            RowPair {
                key: key(3),
                source: None,
                replica: Some(row(3, "rep", 1)),
            },
        ]
    }

    #[test]
    fn the_replica_is_made_equal_to_the_source() {
        let (s, r) = (
            node(NodeRole::Source, "s:1"),
            node(NodeRole::Replica, "r:2"),
        );
        let p = plan(&[table(drift())], &s, &r, &Winner::Source, false, false).unwrap();
        assert_eq!(p.steps.len(), 1);
        let st = &p.steps[0];
        assert_eq!(
            (st.endpoint.to_string().as_str(), st.action()),
            ("r:2", StepTemplate::ResyncRows)
        );
        let actions: Vec<(RowAction, String)> = st
            .rows()
            .iter()
            .map(|c| (c.action, c.key[0].1.display()))
            .collect();
        // Every delete before any insert: a UNIQUE value an extra row holds is free before a
        // missing row takes it.
        assert_eq!(
            actions,
            vec![
                (RowAction::Delete, "3".into()),
                (RowAction::Delete, "1".into()),
                (RowAction::Insert, "1".into()),
                (RowAction::Insert, "2".into()),
            ]
        );
        assert_eq!(st.session[0].sql, "SET SESSION sql_log_bin = 0");
        // Every row is checked (locking read) before any is written.
        let first_write = st
            .statements
            .iter()
            .position(|x| matches!(x.role, sql::Role::Write { .. }))
            .unwrap();
        assert!(
            st.statements[..first_write]
                .iter()
                .filter(|x| matches!(x.role, sql::Role::Check { .. }))
                .count()
                == 4
        );
        assert_eq!(p.rows_lost + p.versions_lost + p.records_lost, 0);
    }

    #[test]
    fn a_managed_replica_is_written_logged_with_the_consequence_stated() {
        let s = node(NodeRole::Source, "s:1");
        let mut r = node(NodeRole::Replica, "r:2");
        r.binlog_stays_on = Some(Provider::Rds);
        let p = plan(&[table(drift())], &s, &r, &Winner::Source, false, false).unwrap();
        let st = &p.steps[0];
        assert!(st.logs_errant_rows());
        assert!(!st.session.iter().any(sql::sets_sql_log_bin));
        assert!(
            st.description.contains("binary log ON"),
            "{}",
            st.description
        );
        assert!(
            !st.description.contains("binary log off"),
            "{}",
            st.description
        );
        assert_eq!(p.consequences.len(), 1);
        assert!(p.consequences[0].contains("errant transaction"));
        // In a dual-master pair the logged change would replicate back: refused.
        assert!(matches!(
            plan(&[table(drift())], &s, &r, &Winner::Source, true, false),
            Err(ResyncError::LoggedInPair(..))
        ));
    }

    #[test]
    fn newest_wins_per_row_and_never_deletes_and_needs_a_dual_master_pair() {
        let (s, r) = (
            node(NodeRole::Source, "s:1"),
            node(NodeRole::Replica, "r:2"),
        );
        let w = Winner::Newest("ts".into());
        assert!(matches!(
            plan(&[table(drift())], &s, &r, &w, false, false),
            Err(ResyncError::NeedsDualMaster(_))
        ));
        let p = plan(&[table(drift())], &s, &r, &w, true, false).unwrap();
        let on = |ep: &str| -> Vec<(RowAction, String)> {
            p.steps
                .iter()
                .filter(|s| s.endpoint.to_string() == ep)
                .flat_map(|s| s.rows().iter().map(|c| (c.action, c.key[0].1.display())))
                .collect()
        };
        // Key 1: the replica's version is newer (ts 9): the source takes it. Key 2 goes to
        // the replica, key 3 to the source: nothing is deleted outright.
        assert_eq!(
            on("s:1"),
            vec![
                (RowAction::Delete, "1".into()),
                (RowAction::Insert, "1".into()),
                (RowAction::Insert, "3".into())
            ]
        );
        assert_eq!(on("r:2"), vec![(RowAction::Insert, "2".into())]);
        assert!(matches!(
            plan(
                &[table(drift())],
                &s,
                &r,
                &Winner::Newest("nope".into()),
                true,
                false
            ),
            Err(ResyncError::NoSuchColumn(..))
        ));
    }

    #[test]
    fn big_drift_is_split_into_steps_keeping_a_keys_changes_together() {
        let rows: Vec<RowPair> = (0..1200)
            .map(|i| RowPair {
                key: key(i),
                source: Some(row(i, "s", 0)),
                replica: Some(row(i, "r", 0)),
            })
            .collect();
        let (s, mut r) = (
            node(NodeRole::Source, "s:1"),
            node(NodeRole::Replica, "r:2"),
        );
        r.read_only = ReadOnly::ReadOnly;
        let p = plan(&[table(rows)], &s, &r, &Winner::Source, false, true).unwrap();
        let actions: Vec<StepTemplate> = p.steps.iter().map(|s| s.action()).collect();
        assert_eq!(actions.first(), Some(&StepTemplate::LiftReadOnly));
        assert_eq!(actions.last(), Some(&StepTemplate::RestoreReadOnly));
        let row_steps: Vec<&Step> = p
            .steps
            .iter()
            .filter(|s| s.action() == StepTemplate::ResyncRows)
            .collect();
        assert_eq!(row_steps.len(), 5);
        for st in row_steps {
            assert!(st.rows().len() <= ROWS_PER_STEP && st.rows().len() % 2 == 0);
        }
    }

    /// Rows 1 and 600 swap their e-mail addresses (a UNIQUE key): each insert needs the other's
    /// delete first, so both land in one transaction however many rows lie between them.
    #[test]
    fn rows_swapping_a_unique_value_share_a_step() {
        let email = |id: i64, e: &str| Row {
            columns: vec!["id".into(), "email".into()],
            values: vec![Cell::Number(id.to_string()), Cell::Text(e.into())],
        };
        let mut rows: Vec<RowPair> = (1..=600)
            .map(|id| RowPair {
                key: key(id),
                source: Some(email(id, &format!("u{id}@x"))),
                replica: Some(email(id, &format!("old{id}@x"))),
            })
            .collect();
        rows[0].replica = Some(email(1, "U600@x "));
        rows[599].replica = Some(email(600, "u1@x"));
        let mut t = table(rows);
        t.unique = vec![vec!["email".into()]];
        let (s, r) = (
            node(NodeRole::Source, "s:1"),
            node(NodeRole::Replica, "r:2"),
        );
        let p = plan(&[t], &s, &r, &Winner::Source, false, false).unwrap();
        let step_of = |id: i64| {
            p.steps
                .iter()
                .position(|st| st.rows().iter().any(|c| c.key == key(id)))
                .unwrap()
        };
        assert_eq!(step_of(1), step_of(600), "{:?}", p.steps.len());
        assert_ne!(step_of(2), step_of(599), "the others are still split");
    }
}
