//! The preflight: one step, before the first change, that checks everything the chosen plan
//! needs on every node it touches — the node is reachable, the account holds the privileges
//! each step needs, a read-only node either lets this account write or the plan lifts
//! read_only (and may), a skip never uses the skip counter where GTIDs are on and always
//! knows its GTID. Anything missing is named with how to fix it, and nothing is changed.

use thiserror::Error;

use crate::vocab::Endpoint;

use super::apply::Nodes;
use super::privileges::{self, Need};
use crate::flavor::Flavor;
use crate::planner::plan::{RowAction, StepKind};
use crate::planner::{Plan, Step};
use crate::sql::Statement;
use crate::status::model::ThreadState;
use crate::value::Row;
use crate::vocab::{ReadOnly, TableRef};

#[derive(Debug, Error)]
#[error("preflight refused the plan, nothing was changed: {}", .problems.join("; "))]
pub struct PreflightError {
    pub problems: Vec<String>,
}

/// What a step needs from the account on its node: EXECUTE on the provider's procedure it
/// calls, or the plain statement's privilege.
fn needs(step: &Step) -> Vec<Need> {
    if let Some(p) = step.calls {
        return vec![Need::Execute(p)];
    }
    match step.kind {
        StepKind::Stop { .. } | StepKind::Start => vec![Need::ControlReplication],
        StepKind::Rows { .. } if step.logs_errant_rows() => vec![Need::RowWrite],
        StepKind::Rows { .. } => vec![Need::SqlLogBin, Need::RowWrite],
        StepKind::Skip { gtid: Some(_), .. } => vec![Need::GtidPosition],
        StepKind::Skip { gtid: None, .. } => vec![Need::SkipCounter],
        StepKind::LiftReadOnly { .. } | StepKind::RestoreReadOnly { .. } => {
            vec![Need::SetReadOnly]
        }
        StepKind::Verify => vec![],
    }
}

/// A node's state as the preflight reads it.
struct NodeFacts {
    flavor: Flavor,
    /// The provider's procedures present here (whatever the account may execute).
    procedures: Vec<crate::flavor::Procedure>,
    grants: Vec<String>,
    read_only: ReadOnly,
    gtid_mode_on: bool,
}

/// Every node's facts, the usual two at once (each is a few round trips).
fn all_facts(nodes: &mut Nodes, endpoints: &[Endpoint]) -> Vec<anyhow::Result<NodeFacts>> {
    if let [a, b] = endpoints
        && let Ok((x, y)) = nodes.pair(a, b)
    {
        return std::thread::scope(|scope| {
            let on_b = scope.spawn(|| facts_of(y));
            let on_a = facts_of(x);
            vec![
                on_a,
                on_b.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
            ]
        });
    }
    endpoints
        .iter()
        .map(|ep| nodes.get(ep).and_then(facts_of))
        .collect()
}

fn facts_of(server: &mut crate::conn::Server) -> anyhow::Result<NodeFacts> {
    let grants = crate::capability::effective_grants(server)?;
    let (ro, sro): (i64, i64) = server
        .first(&Statement::plain(server.flavor.read_only_query()))?
        .unwrap_or((0, 0));
    let gtid_mode_on = match server.flavor.gtid_mode_query() {
        None => false,
        Some(q) => server.first::<String>(&Statement::plain(q))?.as_deref() == Some("ON"),
    };
    let procedures = server
        .all::<String>(&crate::sql::admin::provider_procedures())
        .unwrap_or_default()
        .iter()
        .filter_map(|n| crate::flavor::Procedure::from_name(n))
        .collect();
    Ok(NodeFacts {
        flavor: server.flavor,
        procedures,
        grants,
        read_only: ReadOnly::from_flags(ro != 0, sro != 0),
        gtid_mode_on,
    })
}

/// What the DBA explicitly accepted that the preflight otherwise refuses.
#[derive(Debug, Clone, Copy, Default)]
pub struct Accept {
    /// `--allow-triggers`: write tables that have triggers on the written node.
    pub triggers: bool,
    /// `--allow-errant-gtid`: write rows with the binary log on where it cannot be turned off
    /// (a managed service), leaving an errant transaction on that node.
    pub errant: bool,
}

/// Checks the plan against every node it names; Ok only when every step can run.
pub fn check(plan: &Plan, nodes: &mut Nodes, extra: &[Endpoint]) -> Result<(), PreflightError> {
    check_with(plan, nodes, extra, Accept::default())
}

/// `check`, with what the DBA accepted.
pub fn check_with(
    plan: &Plan,
    nodes: &mut Nodes,
    extra: &[Endpoint],
    accept: Accept,
) -> Result<(), PreflightError> {
    let mut problems = Vec::new();
    let mut endpoints: Vec<Endpoint> = plan.endpoints().into_iter().cloned().collect();
    endpoints.extend(
        extra
            .iter()
            .filter(|e| !endpoints.contains(e))
            .cloned()
            .collect::<Vec<_>>(),
    );
    let facts = all_facts(nodes, &endpoints);
    for (ep, facts) in endpoints.iter().zip(facts) {
        let facts = match facts {
            Ok(f) => f,
            Err(e) => {
                problems.push(format!(
                    "{ep} cannot be checked ({}): every node the plan names must be reachable",
                    crate::describe::message(&e)
                ));
                continue;
            }
        };
        let steps: Vec<&Step> = plan.steps.iter().filter(|s| s.endpoint == *ep).collect();
        // A verification on another node waits for it to catch up with this one's binlog.
        let source_of_a_verify = plan
            .steps
            .iter()
            .any(|s| matches!(s.kind, StepKind::Verify) && s.endpoint != *ep);
        let extra_needs = match source_of_a_verify {
            true => vec![Need::ReadBinlogPosition],
            false => Vec::new(),
        };
        problems.extend(privilege_problems(ep, &steps, &extra_needs, &facts));
        problems.extend(procedure_problems(ep, &steps, &facts));
        problems.extend(errant_problems(ep, plan, &steps, &facts, accept));
        problems.extend(read_only_problems(ep, plan, &steps, &facts));
        problems.extend(gtid_problems(ep, &steps, &facts));
        problems.extend(other_channel_problems(ep, &steps, &facts, nodes));
        problems.extend(world_problems(ep, &steps, plan, nodes, accept));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(PreflightError { problems })
    }
}

fn privilege_problems(
    ep: &Endpoint,
    steps: &[&Step],
    extra: &[Need],
    f: &NodeFacts,
) -> Vec<String> {
    let mut wanted: Vec<Need> = steps.iter().flat_map(|s| needs(s)).collect();
    wanted.extend_from_slice(extra);
    privileges::missing(&wanted, f.flavor, &f.grants)
        .into_iter()
        .map(|(need, options)| {
            format!(
                "{ep}: {} needs {} (GRANT {} ON *.* TO …)",
                need.words(),
                options.join(" or "),
                options[0]
            )
        })
        .collect()
}

/// A step calls a procedure this node does not have.
fn procedure_problems(ep: &Endpoint, steps: &[&Step], f: &NodeFacts) -> Vec<String> {
    let mut absent: Vec<String> = Vec::new();
    for p in steps.iter().filter_map(|s| s.calls) {
        if !f.procedures.contains(&p) && !absent.contains(&p.to_string()) {
            absent.push(p.to_string());
        }
    }
    absent
        .into_iter()
        .map(|p| format!("{ep}: the plan calls {p}, which this server does not have (or this account cannot see)"))
        .collect()
}

/// Row steps logged with the node's own GTID run only when the DBA accepted that: refused in
/// one sentence naming what is missing (the privilege to set sql_log_bin, which the managed
/// service grants no account) and what would do.
fn errant_problems(
    ep: &Endpoint,
    plan: &Plan,
    steps: &[&Step],
    f: &NodeFacts,
    accept: Accept,
) -> Vec<String> {
    let n = steps.iter().filter(|s| s.logs_errant_rows()).count();
    if n == 0 || accept.errant {
        return Vec::new();
    }
    let instead = match plan.remedy {
        // resync and restore: every change of theirs is a row change.
        crate::planner::RemedyId::Resync => "or rebuild the replica from its source",
        _ => "or choose --remedy skip or inject-gtid",
    };
    vec![format!(
        "{ep}: the binary log cannot be turned off there (a managed service grants no account {}, which SET SESSION sql_log_bin needs), so the plan's {n} row step(s) would be logged with {ep}'s own GTID, an errant transaction (the plan's consequence); pass --allow-errant-gtid to accept it, {instead}",
        f.flavor.privileges(Need::SqlLogBin).join(" or ")
    )]
}

fn read_only_problems(ep: &Endpoint, plan: &Plan, steps: &[&Step], f: &NodeFacts) -> Vec<String> {
    if f.read_only == ReadOnly::Off {
        return Vec::new();
    }
    let lifted = steps
        .iter()
        .any(|s| matches!(s.kind, StepKind::LiftReadOnly { .. }));
    let blocked: Vec<usize> = plan
        .steps
        .iter()
        .enumerate()
        .filter(|(_, s)| s.endpoint == *ep && s.blocked_by_read_only())
        .map(|(i, _)| i + 1)
        .collect();
    if blocked.is_empty() || lifted {
        return Vec::new();
    }
    let bypass = f.flavor.read_only_bypass(f.read_only);
    if !bypass.is_empty() && privileges::has_any(f.flavor, &f.grants, bypass) {
        return Vec::new();
    }
    let how = match bypass {
        [] => String::new(),
        b => format!(", or grant {} to this account", b.join(" or ")),
    };
    vec![format!(
        "{ep} has {}=ON: step(s) {} would fail with error 1290; pass --lift-read-only (replmend turns it off for its own writes and back on right after){how}",
        f.read_only.variable(),
        blocked
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(", "),
    )]
}

fn gtid_problems(ep: &Endpoint, steps: &[&Step], f: &NodeFacts) -> Vec<String> {
    steps
        .iter()
        .filter(|s| matches!(s.kind, StepKind::Skip { gtid: None, .. }))
        .filter(|_| f.gtid_mode_on)
        .map(|_| {
            format!(
                "{ep} has gtid_mode=ON: a skip must name the failing transaction's GTID, and it is not known"
            )
        })
        .collect()
}

/// A multi-source MariaDB replica: a skip by GTID sets gtid_slave_pos, which the server only
/// allows with every connection stopped. The plan stops only the failing one, and replmend
/// never stops a healthy channel on its own, so the plan is refused before anything changes.
fn other_channel_problems(
    ep: &Endpoint,
    steps: &[&Step],
    f: &NodeFacts,
    nodes: &mut Nodes,
) -> Vec<String> {
    let Some(skip) = steps.iter().find(|s| {
        matches!(&s.kind, StepKind::Skip { gtid, .. }
            if f.flavor.gtid_skip_needs_every_channel_stopped(gtid.is_some()))
    }) else {
        return Vec::new();
    };
    let report = match nodes
        .get(ep)
        .and_then(|server| Ok(crate::status::read_status(server)?))
    {
        Ok(r) => r,
        Err(e) => {
            return vec![format!(
                "{ep}: its replication channels cannot be read ({})",
                crate::describe::message(&e)
            )];
        }
    };
    let running: Vec<String> = report
        .channels
        .iter()
        .filter(|c| c.name != skip.channel)
        .filter(|c| c.io_thread != ThreadState::Stopped || c.sql_thread != ThreadState::Stopped)
        .map(|c| format!("'{}'", c.name))
        .collect();
    if running.is_empty() {
        return Vec::new();
    }
    vec![format!(
        "{ep}: skipping a transaction by its GTID sets gtid_slave_pos, which MariaDB only allows with every replication connection stopped, \
         and connection(s) {} run besides '{}' (replmend does not stop a healthy connection); choose --remedy overwrite, \
         or stop them first (STOP ALL SLAVES), run replmend again, then start them",
        running.join(", "),
        skip.channel
    )]
}

/// Why rows must not be written on this node now, if they must not: one of its channels
/// stopped its applier with events still in the relay log (rows that look missing or
/// different may be on their way, and writing them stops the applier with 1062/1032 when it
/// starts). A running applier that is behind is waited for, up to `wait`. A node that is not
/// a replica has nothing on its way.
pub fn appliers_settled(
    server: &mut crate::conn::Server,
    wait: std::time::Duration,
) -> anyhow::Result<Option<String>> {
    let deadline = std::time::Instant::now() + wait;
    let endpoint = server.spec.endpoint();
    loop {
        let report = match crate::status::read_status(server) {
            Err(crate::status::StatusError::NotAReplica { .. }) => return Ok(None),
            r => r?,
        };
        let mut behind = None;
        for ch in &report.channels {
            let Some((received, applied)) = ch.unapplied() else {
                continue;
            };
            let channel = match ch.name.as_str() {
                "" => String::new(),
                n => format!(" (channel {n})"),
            };
            if ch.sql_thread != ThreadState::Running {
                return Ok(Some(format!(
                    "{endpoint}'s applier{channel} is stopped with events still in its relay log (received up to {received}, applied up to {applied}): rows that look missing or different may be on their way; start it and let it catch up"
                )));
            }
            behind = Some(format!(
                "{endpoint}'s applier{channel} was still applying after {} s (received up to {received}, applied up to {applied}); run again when it has caught up",
                wait.as_secs()
            ));
        }
        match behind {
            None => return Ok(None),
            Some(why) if std::time::Instant::now() >= deadline => return Ok(Some(why)),
            Some(_) => std::thread::sleep(std::time::Duration::from_millis(100)),
        }
    }
}

/// The tables this node's row steps write, each with the rows deleted that nothing
/// replaces (a version replaced by another keeps its key, so its child rows keep a parent).
fn written_tables<'p>(steps: &[&'p Step]) -> Vec<(&'p TableRef, Vec<&'p Row>)> {
    let mut out: Vec<(&TableRef, Vec<&Row>)> = Vec::new();
    for r in steps.iter().flat_map(|s| s.rows()) {
        let at = match out.iter().position(|(t, _)| **t == r.table) {
            Some(i) => i,
            None => {
                out.push((&r.table, Vec::new()));
                out.len() - 1
            }
        };
        if r.action == RowAction::Delete && r.after.is_none() {
            out[at].1.push(&r.image);
        }
    }
    out
}

/// Triggers on the tables written (unless accepted) and child rows a delete would orphan:
/// read on the node itself, just before the first change.
fn world_problems(
    ep: &Endpoint,
    steps: &[&Step],
    plan: &Plan,
    nodes: &mut Nodes,
    accept: Accept,
) -> Vec<String> {
    let tables = written_tables(steps);
    if tables.is_empty() {
        return Vec::new();
    }
    let server = match nodes.get(ep) {
        Ok(s) => s,
        Err(e) => {
            return vec![format!(
                "{ep} cannot be checked ({})",
                crate::describe::message(&e)
            )];
        }
    };
    let mut problems = Vec::new();
    for (table, deleted) in &tables {
        let found = table_problems(server, ep, table, deleted, plan, accept);
        problems.extend(found.unwrap_or_else(|e| {
            vec![format!(
                "{ep}: the triggers and foreign keys of {table} cannot be read ({})",
                crate::describe::message(&e)
            )]
        }));
    }
    problems
}

fn table_problems(
    server: &mut crate::conn::Server,
    ep: &Endpoint,
    table: &TableRef,
    deleted: &[&Row],
    plan: &Plan,
    accept: Accept,
) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    let triggers = super::facts::triggers(server, table)?;
    if !triggers.is_empty() && !accept.triggers {
        problems.push(format!(
            "{ep}: {table} has trigger(s) {} that fire on replmend's own DELETE and INSERT (binary log off or not: they may write other tables or change the values written); pass --allow-triggers to write anyway",
            triggers.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", ")
        ));
    }
    if deleted.is_empty() {
        return Ok(problems);
    }
    for fk in crate::conn::catalog::referencing(server, table)? {
        let referencing = super::facts::referencing_rows(server, &fk, deleted)?;
        let planned = planned_child_deletes(plan, ep, &fk, deleted);
        if referencing > planned {
            problems.push(format!(
                "{ep}: deleting {} row(s) of {table} would leave {} row(s) of {} without their parent (foreign key {}, ON DELETE {}: replmend writes with foreign_key_checks off, so nothing cascades); resync {} first, then {table}",
                deleted.len(),
                referencing - planned,
                fk.child,
                fk.name,
                fk.on_delete,
                fk.child.cli_name(),
            ));
        }
    }
    Ok(problems)
}

/// Child rows the same plan deletes on the same node that reference one of the deleted
/// parents: they go with it.
fn planned_child_deletes(
    plan: &Plan,
    ep: &Endpoint,
    fk: &crate::vocab::ForeignKeyRef,
    parents: &[&Row],
) -> u64 {
    let parent_keys: std::collections::HashSet<Vec<&crate::value::Cell>> = parents
        .iter()
        .filter_map(|p| fk.referenced_columns.iter().map(|c| p.get(c)).collect())
        .collect();
    plan.steps
        .iter()
        .filter(|s| s.endpoint == *ep)
        .flat_map(|s| s.rows())
        .filter(|r| r.table == fk.child && r.action == RowAction::Delete && r.after.is_none())
        .filter(|r| {
            let refs: Option<Vec<&crate::value::Cell>> =
                fk.columns.iter().map(|c| r.image.get(c)).collect();
            refs.is_some_and(|k| parent_keys.contains(&k))
        })
        .count() as u64
}

/// What the world checks read on each written table, in words, whatever they allow: the facts
/// a plan rests on, printed with it (the preflight reads them again before the first change).
pub fn facts(plan: &Plan, nodes: &mut Nodes) -> Vec<String> {
    let mut out = Vec::new();
    for ep in plan.endpoints() {
        let steps: Vec<&Step> = plan.steps.iter().filter(|s| s.endpoint == *ep).collect();
        for (table, _) in written_tables(&steps) {
            let read = nodes.get(ep).and_then(|server| table_facts(server, table));
            out.push(match read {
                Ok(words) => format!("{ep} {table}: {words}"),
                Err(e) => format!("{ep} {table}: not read ({})", crate::describe::message(&e)),
            });
        }
    }
    out
}

fn table_facts(server: &mut crate::conn::Server, table: &TableRef) -> anyhow::Result<String> {
    let triggers = super::facts::triggers(server, table)?;
    let children = crate::conn::catalog::referencing(server, table)?;
    let list = |v: Vec<String>| match v.is_empty() {
        true => "none".to_string(),
        false => v.join(", "),
    };
    Ok(format!(
        "triggers on INSERT/DELETE: {}; referenced by: {}",
        list(triggers.iter().map(|t| t.to_string()).collect()),
        list(
            children
                .iter()
                .map(|fk| format!("{} ({}, ON DELETE {})", fk.child, fk.name, fk.on_delete))
                .collect()
        )
    ))
}
