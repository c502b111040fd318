//! The step builders: stop, start, verify, skip, the row steps (delete, insert, the rekey's
//! copy and move), lifting and restoring read_only, and the single and dual-master step
//! sequences a remedy is made of. Pure; called by `plan`; a row step's SQL is `rows`.

use super::facts::{dual, gtid_skip, gtids_on};
use super::plan::{
    NodeRole, PlanError, Policy, RowAction, RowChange, Step, StepKind, StepLoss, Winner,
};
use super::playbook::{RemedyId, RemedySpec, StepTemplate};
use super::rows::{after_image, row_key, row_statements};
use crate::diagnosis::render::key_words;
use crate::diagnosis::{ConflictKind, Diagnosis, ReadOnly, Row, Verdict};
use crate::flavor::{Need, Thread};
use crate::sql::Statement;
use crate::value::Cell;

/// One direction of replication: the node that applies, and the diagnosis made on it.
struct Direction<'d> {
    role: NodeRole,
    d: &'d Diagnosis,
}

fn step(dir: &Direction<'_>, kind: StepKind, description: String) -> Step {
    Step {
        node: dir.role,
        endpoint: dir.d.replica.endpoint.clone(),
        flavor: dir.d.replica.flavor,
        channel: dir.d.channel.clone(),
        kind,
        description,
        session: Vec::new(),
        statements: Vec::new(),
        precondition: String::new(),
        verification: String::new(),
        calls: None,
    }
}

/// What the account may do on the direction's node (the probe's facts).
fn caps<'d>(dir: &Direction<'d>) -> &'d crate::capability::Capabilities {
    &dir.d.replica.capabilities
}

/// Puts the provider's procedure in the step in place of its plain statements.
fn through(s: &mut Step, (p, call): (crate::flavor::Procedure, String)) {
    s.statements = vec![Statement::plain(call)];
    s.calls = Some(p);
}

/// A row step: its rows, then their statements (`rows::row_statements`).
fn row_step(
    dir: &Direction<'_>,
    action: StepTemplate,
    rows: Vec<RowChange>,
    description: String,
) -> Step {
    let statements = row_statements(action, &rows, dir.d);
    let logged = caps(dir).via_provider(Need::SqlLogBin).is_some();
    let description = match logged {
        false => description,
        // The plan says what the session cannot avoid: the rows go to this node's binlog.
        true => super::logged::description(&description, &dir.d.replica.endpoint),
    };
    let mut s = step(dir, StepKind::rows(action, rows), description);
    s.session = match logged {
        false => unlogged_session(),
        true => crate::sql::row_write_session_logged(),
    };
    s.statements = statements;
    s
}

fn stop(dir: &Direction<'_>) -> Step {
    let mut s = step(
        dir,
        StepKind::Stop {
            threads: Thread::Both,
        },
        format!("stop replication on {}", dir.d.replica.endpoint),
    );
    // Both threads: MariaDB only lets gtid_slave_pos change with the whole replica stopped.
    s.statements.push(Statement::plain(
        dir.d
            .replica
            .flavor
            .stop_replica(Thread::Both, &dir.d.channel),
    ));
    s.precondition = format!(
        "the channel is still stopped on incident {}",
        dir.d.fingerprint
    );
    if let Some(call) = caps(dir)
        .via_provider(Need::ControlReplication)
        .and_then(|p| p.stop(&dir.d.channel))
    {
        through(&mut s, call);
    }
    s
}

/// A node that skips nothing keeps its receiver running: only the applier must be stopped
/// for its rows to change, and the receiver is not reconnected to the source on restart.
pub(super) fn narrow_stops(steps: &mut [Step]) {
    let skipping: Vec<crate::vocab::Endpoint> = steps
        .iter()
        .filter(|s| matches!(s.kind, StepKind::Skip { .. }))
        .map(|s| s.endpoint.clone())
        .collect();
    for s in steps.iter_mut() {
        // A provider's procedure stops both threads: there is no narrower one.
        if !matches!(s.kind, StepKind::Stop { .. })
            || skipping.contains(&s.endpoint)
            || s.calls.is_some()
        {
            continue;
        }
        s.statements = vec![Statement::plain(
            s.flavor.stop_replica(Thread::Sql, &s.channel),
        )];
        s.description = format!(
            "stop the applier on {} (its receiver keeps running)",
            s.endpoint
        );
        s.kind = StepKind::Stop {
            threads: Thread::Sql,
        };
    }
}

fn start(dir: &Direction<'_>) -> Step {
    let mut s = step(
        dir,
        StepKind::Start,
        format!("start replication on {}", dir.d.replica.endpoint),
    );
    s.statements.push(Statement::plain(
        dir.d
            .replica
            .flavor
            .start_replica(Thread::Both, &dir.d.channel),
    ));
    s.verification = "the applier runs and the error is cleared".into();
    if let Some(call) = caps(dir)
        .via_provider(Need::ControlReplication)
        .and_then(|p| p.start(&dir.d.channel))
    {
        through(&mut s, call);
    }
    s
}

fn verify(dir: &Direction<'_>, other: &dyn std::fmt::Display) -> Step {
    let mut s = step(
        dir,
        StepKind::Verify,
        format!(
            "wait until {} has applied everything it received",
            dir.d.replica.endpoint
        ),
    );
    s.verification = format!(
        "applier running, no error, caught up; the repaired rows are identical on {} and {other}",
        dir.d.replica.endpoint
    );
    s
}

/// The source could not be reached: the replica can only apply what it received, and no row
/// can be compared with the source's.
fn verify_unreachable_source(dir: &Direction<'_>) -> Step {
    let mut s = verify(dir, &"the source");
    s.verification = "applier running, no error, everything received from the source applied; the source is unreachable, so no row is compared with it".into();
    s
}

/// Binary log off (a fix on one node of a dual-master pair must not travel to the other),
/// foreign key checks off (a delete must not cascade into child tables: the key comes
/// straight back with the replicated transaction), a zero key written as zero.
fn unlogged_session() -> Vec<Statement> {
    crate::sql::row_write_session(false)
}

fn delete_rows(dir: &Direction<'_>) -> Step {
    let d = dir.d;
    let mut rows = Vec::new();
    for c in d.conflicts.iter().chain(&d.upcoming) {
        let Some(image) = &c.replica_row else {
            continue;
        };
        rows.push(RowChange {
            table: d.table.clone(),
            action: RowAction::Delete,
            key: row_key(d, image),
            image: image.clone(),
            after: after_image(c),
        });
    }
    let mut s = row_step(
        dir,
        StepTemplate::DeleteConflictingRows,
        rows,
        format!(
            "journal, then delete {} conflicting row(s) of {} on {} (binary log off: the delete must not replicate)",
            d.conflicts.len() + d.upcoming.len(),
            d.table,
            d.replica.endpoint
        ),
    );
    s.precondition = "each row still equals the diagnosed version byte for byte (already gone: done; changed: refuse)".into();
    s.verification = "the rows are gone; their images are in the journal".into();
    s
}

fn insert_rows(dir: &Direction<'_>) -> Step {
    let d = dir.d;
    let mut rows = Vec::new();
    // The incident's rows, then (batch mode) the rows the following transactions will miss.
    for c in d.conflicts.iter().chain(&d.upcoming) {
        // The event's before image is the row as the transaction expects it; under MINIMAL
        // images it lacks columns, and the source's current row stands in. A delete's row is
        // its event row (its before image); the source no longer has it.
        let image = match (&c.event_before, &c.source_row) {
            (Some(b), Some(src)) if b.columns.len() != src.columns.len() => src.clone(),
            (Some(b), _) => b.clone(),
            (None, Some(src)) => src.clone(),
            (None, None) => c.event_row.clone(),
        };
        rows.push(RowChange {
            table: d.table.clone(),
            action: RowAction::Insert,
            key: row_key(d, &image),
            after: None,
            image,
        });
    }
    let mut s = row_step(
        dir,
        StepTemplate::InsertMissingRows,
        rows,
        format!(
            "insert {} missing row(s) of {} on {} so the transaction applies (binary log off)",
            d.conflicts.len() + d.upcoming.len(),
            d.table,
            d.replica.endpoint
        ),
    );
    s.precondition = "each row is still absent (already there: done)".into();
    s.verification = "the rows exist; the transaction then applies over them".into();
    s
}

/// The key value a record already re-inserted by an interrupted rekey of this incident got:
/// the same record (every column but the key) in `done`.
fn earlier_key(own: &Row, auto: &str, done: &[Row]) -> Option<Cell> {
    done.iter()
        .find(|r| r.same_but(own, auto))
        .and_then(|r| r.get(auto).cloned())
}

/// One of the loser's records: its row at the old key (deleted) and the same record under
/// its fresh key (inserted).
struct Rekeyed {
    old: RowChange,
    fresh: RowChange,
}

/// rekey's records: each of the loser's conflicting rows under a fresh key, numbered from
/// `fresh_from` (above every key either node used); a re-run reuses the key an interrupted
/// run gave the same record (`done`, from the journal).
fn rekeyed(loser: &Diagnosis, fresh_from: u64, done: &[Row]) -> Vec<Rekeyed> {
    let Some(auto) = loser.auto_key.as_ref().map(|a| a.column.as_str()) else {
        return Vec::new();
    };
    let mut next = fresh_from;
    let mut out = Vec::new();
    for c in &loser.conflicts {
        let Some(own) = &c.replica_row else { continue };
        let key = earlier_key(own, auto, done).unwrap_or_else(|| {
            next += 1;
            Cell::Number((next - 1).to_string())
        });
        let mut image = own.clone();
        if let Some(i) = image.columns.iter().position(|col| col == auto) {
            image.values[i] = key.clone();
        }
        out.push(Rekeyed {
            old: RowChange {
                table: loser.table.clone(),
                action: RowAction::Delete,
                key: row_key(loser, own),
                image: own.clone(),
                after: after_image(c),
            },
            fresh: RowChange {
                table: loser.table.clone(),
                action: RowAction::Insert,
                key: vec![(auto.to_string(), key)],
                after: Some(image.clone()),
                image,
            },
        });
    }
    out
}

fn fresh_words(records: &[Rekeyed]) -> String {
    records
        .iter()
        .map(|r| key_words(&r.fresh.key))
        .collect::<Vec<_>>()
        .join(", ")
}

/// rekey on the winner: the loser's records inserted under their fresh keys. Binary log off,
/// as on the loser (see `move_rekeyed`): each node gets its copy directly. It runs before the
/// move, so a record is on the winner before it leaves its old key on the loser.
fn copy_rekeyed(winner: &Direction<'_>, loser: &Diagnosis, records: &[Rekeyed]) -> Step {
    let mut s = row_step(
        winner,
        StepTemplate::CopyUnderFreshKey,
        records.iter().map(|r| r.fresh.clone()).collect(),
        format!(
            "journal, then insert {}'s record(s) of {} on {} under fresh key(s) {} (binary log off: each node gets its copy directly)",
            loser.replica.endpoint,
            loser.table,
            winner.d.replica.endpoint,
            fresh_words(records)
        ),
    );
    s.precondition = "each fresh key is still free on this node (taken by the same record: done; by another: refuse)".into();
    s.verification = "the loser's records are on the winner under their fresh keys".into();
    s
}

/// rekey on the loser: each record deleted at its old key, then inserted at its fresh one, in
/// one transaction: deleting first, a second unique key never holds the record twice, and no
/// run ends with the record at neither key. Binary log off (a transaction cannot switch it):
/// the delete must not reach the winner, whose own record holds the old key.
fn move_rekeyed(loser: &Direction<'_>, records: &[Rekeyed]) -> Step {
    let d = loser.d;
    let rows = records.iter().map(|r| r.old.clone());
    let mut s = row_step(
        loser,
        StepTemplate::ReinsertUnderFreshKey,
        rows.chain(records.iter().map(|r| r.fresh.clone()))
            .collect(),
        format!(
            "journal, then move {}'s own record(s) of {} to fresh key(s) {} in one transaction: deleted at the old key, inserted at the fresh one (binary log off)",
            d.replica.endpoint,
            d.table,
            fresh_words(records)
        ),
    );
    s.precondition = "each old row still equals the diagnosed version and each fresh key is free (moved already: done; changed or taken: refuse)".into();
    s.verification =
        "both records exist on both nodes once the winner's transaction applies here".into();
    s
}

fn lift_read_only(dir: &Direction<'_>, state: ReadOnly) -> Step {
    let flavor = dir.d.replica.flavor;
    let mut s = step(
        dir,
        StepKind::LiftReadOnly { state },
        format!(
            "turn {} off on {} for replmend's own writes (journaled; turned back on right after)",
            state.variable(),
            dir.d.replica.endpoint
        ),
    );
    s.statements = vec![Statement::plain(flavor.lift_read_only())];
    s.precondition = format!("{} is still {}", state.variable(), "ON");
    s
}

fn restore_read_only(dir: &Direction<'_>, state: ReadOnly) -> Step {
    let flavor = dir.d.replica.flavor;
    let mut s = step(
        dir,
        StepKind::RestoreReadOnly { state },
        format!(
            "turn {} back on on {}",
            state.variable(),
            dir.d.replica.endpoint
        ),
    );
    s.statements = flavor
        .restore_read_only(state)
        .into_iter()
        .map(Statement::plain)
        .collect();
    s.verification = format!("{} is ON again", state.variable());
    s
}

/// What skipping the direction's failing transaction makes its node never apply.
fn skip_loss(d: &Diagnosis) -> StepLoss {
    let Some(total) = d.rows_in_transaction() else {
        return StepLoss::default();
    };
    let versions = match d.kind {
        // The rows a 1032 delete wanted gone are already absent.
        ConflictKind::MissingOnDelete => Vec::new(),
        _ => d
            .conflicts
            .iter()
            .filter(|c| !matches!(c.verdict, Verdict::Identical))
            .map(|c| c.key.clone())
            .collect(),
    };
    StepLoss {
        rows: Some(total.saturating_sub(d.conflicts.len())),
        versions,
    }
}

fn skip(dir: &Direction<'_>) -> Result<Step, String> {
    let d = dir.d;
    let flavor = d.replica.flavor;
    let by_gtid = d.gtid.clone().filter(|_| gtid_skip(d));
    let mut s = step(
        dir,
        StepKind::Skip {
            gtid: by_gtid.clone(),
            loss: skip_loss(d),
        },
        String::new(),
    );
    match by_gtid {
        Some(g) => {
            let current = d.gtid_slave_pos.clone().unwrap_or_default();
            s.description = format!(
                "skip transaction {g} on {} {}",
                d.replica.endpoint,
                flavor.skip_by_gtid_words()
            );
            s.statements = flavor
                .skip_by_gtid(&g, &current)
                .into_iter()
                .map(Statement::plain)
                .collect();
            s.precondition = match flavor.gtid_executed_query() {
                Some(_) => format!("{g} is not yet in gtid_executed (already there: done)"),
                None => format!("gtid_slave_pos is still {current:?}"),
            };
            if let Some(call) = caps(dir)
                .via_provider(Need::GtidPosition)
                .and_then(|p| p.skip_gtid(&g))
            {
                s.description.push_str(" (the provider's procedure)");
                through(&mut s, call);
            }
        }
        None if gtids_on(d) => {
            return Err(format!(
                "GTIDs are on for {} and the failing transaction's GTID is not known ({}): replmend never skips blindly with the skip counter",
                d.replica.endpoint,
                if d.transaction.is_none() {
                    "its source could not be read, and the replica's status names none"
                } else {
                    "the binlog carried none"
                }
            ));
        }
        None => {
            s.description = format!(
                "skip the failing transaction on {} with the skip counter",
                d.replica.endpoint
            );
            s.statements = flavor
                .set_skip_counter(&d.channel, 1)
                .into_iter()
                .map(Statement::plain)
                .collect();
            s.precondition = "the channel is still stopped on the diagnosed incident".into();
            if let Some(call) = caps(dir)
                .via_provider(Need::SkipCounter)
                .and_then(|p| p.skip_current())
            {
                s.description = format!(
                    "skip the failing transaction on {} with the provider's procedure (it starts replication again)",
                    d.replica.endpoint
                );
                through(&mut s, call);
            }
        }
    }
    s.verification = "the applier moves past the transaction".into();
    Ok(s)
}

/// Every row of the transaction conflicts and the replica already holds the source's current
/// version of each: there is nothing to overwrite, and re-applying the event could bring back
/// an older version (after a repair that was interrupted halfway). Skipping is exact.
fn already_agree(d: &Diagnosis) -> bool {
    (d.all_identical() && d.rows_in_transaction() == Some(d.conflicts.len()))
        // The event will be passed over anyway: deleting the replica's row would lose it.
        || d.transaction_executed
}

fn newest_is_source(d: &Diagnosis, column: &str) -> Result<bool, PlanError> {
    let c = d
        .conflicts
        .first()
        .ok_or_else(|| PlanError::NoSuchColumn(column.into()))?;
    let get = |r: &Option<Row>| r.as_ref().and_then(|r| r.get(column)).cloned();
    let (Some(rep), Some(src)) = (get(&c.replica_row), get(&c.source_row)) else {
        return Err(PlanError::NoSuchColumn(column.into()));
    };
    Ok(match (&rep, &src) {
        (Cell::Number(a), Cell::Number(b)) => compare_decimal(b, a) != std::cmp::Ordering::Less,
        // Temporal text sorts chronologically; NULL is oldest. Ties go to the source.
        (Cell::Null, _) => true,
        (_, Cell::Null) => false,
        (Cell::Text(a), Cell::Text(b)) | (Cell::Temporal(a), Cell::Temporal(b)) => b >= a,
        (a, b) => b.display() >= a.display(),
    })
}

pub(super) fn source_wins(d: &Diagnosis, policy: &Policy) -> Result<bool, PlanError> {
    Ok(match &policy.winner {
        Winner::Source => true,
        Winner::Replica => false,
        Winner::Newest(col) => newest_is_source(d, col)?,
    })
}

/// The first fresh key for rekey: above every key either node has used or reserved.
fn fresh_key(d: &Diagnosis, rev: &Diagnosis) -> u64 {
    let mut next = 0;
    for x in [d, rev] {
        if let Some(a) = &x.auto_key {
            next = next.max(a.next);
        }
        for c in &x.conflicts {
            for (_, v) in &c.key {
                if let Cell::Number(n) = v
                    && let Ok(n) = n.parse::<u64>()
                {
                    next = next.max(n + 1);
                }
            }
        }
    }
    next
}

pub(super) fn single_steps(d: &Diagnosis, spec: &RemedySpec) -> Result<Vec<Step>, String> {
    let here = Direction {
        role: NodeRole::Replica,
        d,
    };
    let mut steps = Vec::new();
    for t in &spec.steps {
        match t {
            StepTemplate::StopApplier => steps.push(stop(&here)),
            StepTemplate::DeleteConflictingRows if already_agree(d) => steps.push(skip(&here)?),
            StepTemplate::DeleteConflictingRows => steps.push(delete_rows(&here)),
            StepTemplate::InsertMissingRows => steps.push(insert_rows(&here)),
            StepTemplate::SkipTransaction => steps.push(skip(&here)?),
            StepTemplate::StartApplier => steps.push(start(&here)),
            StepTemplate::Verify => steps.push(match &d.source {
                Some(src) => verify(&here, &src.endpoint),
                None => verify_unreachable_source(&here),
            }),
            StepTemplate::ReinsertUnderFreshKey => {
                return Err(
                    "rekey needs a dual-master pair (both records stay on both nodes)".into(),
                );
            }
            // Planned by replmend itself, never by a playbook.
            StepTemplate::LiftReadOnly
            | StepTemplate::RestoreReadOnly
            | StepTemplate::CopyUnderFreshKey
            | StepTemplate::ResyncRows => {}
        }
    }
    Ok(steps)
}

/// Dual-master: the loser's row is replaced by the winner's transaction; the winner skips the
/// loser's transaction. Both nodes end with the winner's version (rekey: with both records).
pub(super) fn dual_steps(
    d: &Diagnosis,
    rev: &Diagnosis,
    spec: &RemedySpec,
    policy: &Policy,
    source_wins: bool,
) -> Result<Vec<Step>, String> {
    let here = Direction {
        role: NodeRole::Replica,
        d,
    };
    let there = Direction {
        role: NodeRole::Source,
        d: rev,
    };
    let (loser, winner_dir) = if source_wins {
        (&here, &there)
    } else {
        (&there, &here)
    };
    let rekeying = spec.steps.contains(&StepTemplate::ReinsertUnderFreshKey);
    if let Some(why) = logged_in_pair(spec, [&here, &there]) {
        return Err(why);
    }
    let mut steps = Vec::new();
    for t in &spec.steps {
        match t {
            StepTemplate::StopApplier => {
                steps.push(stop(&here));
                steps.push(stop(&there));
            }
            // rekey deletes the loser's rows itself, in the transaction that re-inserts them
            // (older playbooks also list this step).
            StepTemplate::DeleteConflictingRows if rekeying => {}
            StepTemplate::DeleteConflictingRows if already_agree(loser.d) => {
                steps.push(skip(loser)?)
            }
            StepTemplate::DeleteConflictingRows => steps.push(delete_rows(loser)),
            StepTemplate::InsertMissingRows => steps.push(insert_rows(loser)),
            StepTemplate::SkipTransaction if spec.remedy == RemedyId::Keep => {
                steps.push(skip(&here)?);
                steps.push(skip(&there)?);
            }
            StepTemplate::SkipTransaction => {
                let mut s = skip(winner_dir)?;
                // The versions the winner never applies are the loser's own rows: the delete
                // on the loser journals them (in this run, or in an interrupted one).
                if let StepKind::Skip { loss, .. } = &mut s.kind {
                    loss.versions.clear();
                }
                steps.push(s);
            }
            StepTemplate::ReinsertUnderFreshKey => {
                let records = rekeyed(loser.d, fresh_key(d, rev), &policy.rekeyed);
                // None left: an interrupted run moved them all (the journal says so).
                if !records.is_empty() {
                    steps.push(copy_rekeyed(winner_dir, loser.d, &records));
                    steps.push(move_rekeyed(loser, &records));
                }
            }
            StepTemplate::StartApplier => {
                steps.push(start(&here));
                steps.push(start(&there));
            }
            StepTemplate::Verify => {
                steps.push(verify(&here, &rev.replica.endpoint));
                steps.push(verify(&there, &d.replica.endpoint));
            }
            // Planned by replmend itself, never by a playbook.
            StepTemplate::LiftReadOnly
            | StepTemplate::RestoreReadOnly
            | StepTemplate::CopyUnderFreshKey
            | StepTemplate::ResyncRows => {}
        }
    }
    Ok(steps)
}

/// --lift-read-only: on each read-only node, an explicit step turning read_only off right
/// before the first step it would refuse, and one turning it back on right after the last.
pub(super) fn add_read_only_steps(steps: &mut Vec<Step>, d: &Diagnosis) {
    let nodes = [Some(d), dual(d)];
    for (role, nd) in [NodeRole::Replica, NodeRole::Source].into_iter().zip(nodes) {
        let Some(nd) = nd else { continue };
        let state = nd.replica.read_only;
        if state == ReadOnly::Off {
            continue;
        }
        let blocked: Vec<usize> = steps
            .iter()
            .enumerate()
            .filter(|(_, s)| s.endpoint == nd.replica.endpoint && s.blocked_by_read_only())
            .map(|(i, _)| i)
            .collect();
        let (Some(&first), Some(&last)) = (blocked.first(), blocked.last()) else {
            continue;
        };
        let dir = Direction { role, d: nd };
        steps.insert(last + 1, restore_read_only(&dir, state));
        steps.insert(first, lift_read_only(&dir, state));
    }
}

/// In a dual-master pair a row change that cannot be kept out of the binary log replicates
/// to the other node and undoes the fix there: no row remedy on such a node.
fn logged_in_pair(spec: &RemedySpec, nodes: [&Direction<'_>; 2]) -> Option<String> {
    if !spec.steps.iter().any(|t| t.writes_rows()) {
        return None;
    }
    let [a, b] = nodes;
    let (node, other) = [(a, b), (b, a)]
        .into_iter()
        .find(|(n, _)| caps(n).via_provider(Need::SqlLogBin).is_some())?;
    Some(format!(
        "{} ({}) lets no account turn the binary log off for a session, so a row change there would replicate to {} and undo the fix on that node",
        node.d.replica.endpoint,
        caps(node).provider.words(),
        other.d.replica.endpoint
    ))
}

/// Nodes that keep their binary logs too briefly for the failing transaction to be read
/// (the source's, where it is fetched from; the replica's, for the origin search).
pub(super) fn retention_warnings(d: &Diagnosis) -> Vec<String> {
    [Some(&d.replica), d.source.as_ref()]
        .into_iter()
        .flatten()
        .filter_map(|n| {
            let c = &n.capabilities;
            let w = c.binlog_retention.warning(c.provider)?;
            Some(format!("{}: {w}", n.endpoint))
        })
        .collect()
}

pub(super) fn auto_increment_advice(d: &Diagnosis, rev: &Diagnosis) -> Vec<String> {
    vec![format!(
        "{} and {} both hand out the same AUTO_INCREMENT values: give each node its own, e.g. \
         on {}: SET GLOBAL auto_increment_increment = 2, auto_increment_offset = 1; \
         on {}: SET GLOBAL auto_increment_increment = 2, auto_increment_offset = 2 \
         (and the same in each server's option file)",
        d.replica.endpoint, rev.replica.endpoint, d.replica.endpoint, rev.replica.endpoint
    )]
}
/// Compares decimal texts exactly (no float rounding of large integers).
fn compare_decimal(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let neg = |s: &str| s.starts_with('-');
    match (neg(a), neg(b)) {
        (true, false) => return Ordering::Less,
        (false, true) => return Ordering::Greater,
        _ => {}
    }
    let split = |s: &str| {
        let s = s.trim_start_matches(['-', '+']);
        let (i, f) = s.split_once('.').unwrap_or((s, ""));
        (
            i.trim_start_matches('0').to_string(),
            f.trim_end_matches('0').to_string(),
        )
    };
    let ((ai, af), (bi, bf)) = (split(a), split(b));
    let magnitude = ai
        .len()
        .cmp(&bi.len())
        .then_with(|| ai.cmp(&bi))
        .then_with(|| af.cmp(&bf));
    if neg(a) {
        magnitude.reverse()
    } else {
        magnitude
    }
}
