//! `replmend restore JOURNAL`: puts journaled rows back, newest first, exactly as they were.
//! Only changes that happened are undone (a rolled-back intent never did; an intent without
//! an outcome is judged by the row itself). A row that differs from what the repair left is
//! not overwritten without --force, and with --force the row found is journaled first.
//! Idempotent: a row already back is left alone.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Result;
use serde::Serialize;

use super::Outcome;
use crate::cli::{Format, RestoreArgs};
use crate::conn::{ConnSpec, Server};
use crate::exit;
use crate::journal::{self, Action, Entry, Journal, State};
use crate::planner::plan::{NodeRole, RowAction, RowChange};
use crate::planner::playbook::RemedyId;
use crate::planner::resync;
use crate::planner::{Plan, Step};
use crate::repair::apply::{ApplyReport, Nodes};
use crate::repair::lock::RepairLock;
use crate::schema::TableSchema;
use crate::status::topology::Topology;
use crate::value::Cell;
use crate::value::Row;
use crate::vocab::Endpoint;
use crate::vocab::{ReadOnly, TableRef};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum RowOutcome {
    Restored,
    WouldRestore,
    AlreadyPresent,
    /// The change was rolled back, or a crash came before it: nothing to undo.
    NeverApplied,
    /// The row changed since the repair; --force overwrites it.
    Differs,
    /// --force: the row found was journaled, then replaced.
    Overwritten,
}

#[derive(Debug, Serialize)]
struct Restored {
    node: Endpoint,
    table: String,
    key: Vec<String>,
    outcome: RowOutcome,
}

#[derive(Debug, Serialize)]
struct Report {
    schema: &'static str,
    journal: String,
    dry_run: bool,
    rows: Vec<Restored>,
    /// What the restore leaves (or would leave) that a DBA must know: a dual-master pair
    /// made to differ, with the command that brings it back together.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
    /// --dry-run: the plan that would run, its exact SQL per node.
    #[serde(skip_serializing_if = "Option::is_none")]
    plan: Option<Plan>,
    /// Where this restore journaled the rows it changed (itself undoable).
    #[serde(skip_serializing_if = "Option::is_none")]
    restore_journal: Option<String>,
}

/// What the repair changed at an entry's key, judged against the row there now.
enum Judged {
    Back,
    NeverApplied,
    AsLeft,
    Differs,
}

fn judge(e: &Entry, image: &Row, current: Option<&Row>) -> Result<Judged> {
    let after = e
        .after
        .as_ref()
        .map(|a| a.row())
        .transpose()
        .map_err(|x| anyhow::anyhow!("journal entry: {x}"))?;
    let as_left = |c: Option<&Row>| match (&after, c) {
        (_, None) => after.is_none(),
        (Some(a), Some(c)) => a
            .columns
            .iter()
            .zip(&a.values)
            .all(|(k, v)| c.get(k) == Some(v)),
        (None, Some(_)) => false,
    };
    Ok(match e.action {
        Action::Insert => match current {
            None if e.state == State::Intent => Judged::NeverApplied,
            None => Judged::Back,
            Some(c) if c == image => Judged::AsLeft,
            Some(_) => Judged::Differs,
        },
        _ => match current {
            Some(c) if c == image && e.state == State::Intent => Judged::NeverApplied,
            Some(c) if c == image => Judged::Back,
            // Gone and nothing in its place (the repair stopped before the replicated row
            // came): putting it back overwrites nothing.
            c if as_left(c) || c.is_none() => Judged::AsLeft,
            _ => Judged::Differs,
        },
    })
}

/// The nodes the journal names, each reached once, with its tables' definitions.
struct World {
    creds: ConnSpec,
    servers: HashMap<Endpoint, Server>,
}

impl World {
    fn server(&mut self, node: &Endpoint) -> Result<&mut Server> {
        if !self.servers.contains_key(node) {
            let server = Server::connect(&self.spec(node))?;
            self.servers.insert(node.clone(), server);
        }
        Ok(self.servers.get_mut(node).expect("just inserted"))
    }

    /// The connection of every node the plan writes.
    fn specs(&self, plan: &Plan) -> Result<Vec<ConnSpec>> {
        plan.endpoints()
            .into_iter()
            .map(|ep| Ok(self.spec(ep)))
            .collect()
    }

    fn spec(&self, node: &Endpoint) -> ConnSpec {
        self.creds.at(node)
    }
}

/// One journal entry being restored: its image, key, and the row its key holds now.
struct Restoring<'e> {
    entry: &'e Entry,
    table: TableRef,
    image: Row,
    key: Vec<(String, Cell)>,
    current: Option<Row>,
}

type Schemas = HashMap<(Endpoint, TableRef), Arc<TableSchema>>;

fn restoring(e: &Entry) -> Result<Restoring<'_>> {
    let table = e.table_ref().expect("chosen entries have a table");
    let image = e
        .image()
        .map_err(|x| anyhow::anyhow!("journal entry: {x}"))?;
    let key = key_of(e, &image);
    Ok(Restoring {
        entry: e,
        table,
        image,
        key,
        current: None,
    })
}

/// The entries to restore (newest first), each with the row its key holds now: read once per
/// node and table, many keys a round trip (time linear in the journal).
fn read_current<'e>(
    world: &mut World,
    entries: &'e [Entry],
    chosen: &[usize],
) -> Result<(Vec<Restoring<'e>>, Schemas)> {
    let mut out: Vec<Restoring<'e>> = chosen
        .iter()
        .map(|&i| restoring(&entries[i]))
        .collect::<Result<_>>()?;
    let mut groups: HashMap<(Endpoint, TableRef), Vec<usize>> = HashMap::new();
    for (i, r) in out.iter().enumerate() {
        groups
            .entry((r.entry.node.clone(), r.table.clone()))
            .or_default()
            .push(i);
    }
    let mut schemas = Schemas::new();
    for ((node, table), at) in groups {
        let server = world.server(&node)?;
        let schema = server.table(&table)?;
        let keys: Vec<Vec<(String, Cell)>> = at.iter().map(|&i| out[i].key.clone()).collect();
        let rows = crate::inspect::fetch_rows(server, &schema, &keys)?;
        for (i, row) in at.into_iter().zip(rows) {
            out[i].current = row;
        }
        schemas.insert((node, table), schema);
    }
    Ok((out, schemas))
}

type Slot = (Endpoint, String, String, String);

/// Older deletes by node, fingerprint, table and image (their position in the journal): an
/// insert whose key holds an older delete's image was undone by that delete's restore.
struct OlderDeletes(HashMap<Slot, usize>);

impl OlderDeletes {
    fn index(entries: &[Entry]) -> OlderDeletes {
        let mut m = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            if e.action != Action::Delete || e.state == State::RolledBack {
                continue;
            }
            if let (Some(t), Ok(img)) = (e.table_ref(), e.image()) {
                m.entry(Self::slot(e, &t, &img)).or_insert(i);
            }
        }
        OlderDeletes(m)
    }

    fn slot(e: &Entry, t: &TableRef, row: &Row) -> Slot {
        let image = serde_json::to_string(row).unwrap_or_default();
        (e.node.clone(), e.fingerprint.clone(), t.to_string(), image)
    }

    /// Whether a delete older than entry `i` removed exactly `row`.
    fn undid(&self, i: usize, e: &Entry, t: &TableRef, row: &Row) -> bool {
        self.0
            .get(&Self::slot(e, t, row))
            .is_some_and(|&older| older < i)
    }
}

/// What restoring one entry means: its outcome, and the row changes that do it.
fn decide(
    r: &Restoring<'_>,
    current: Option<&Row>,
    back: bool,
    force: bool,
) -> Result<(RowOutcome, Vec<RowChange>)> {
    if r.entry.state == State::RolledBack {
        return Ok((RowOutcome::NeverApplied, Vec::new()));
    }
    let judged = match back {
        true => Judged::Back,
        false => judge(r.entry, &r.image, current)?,
    };
    Ok(match judged {
        Judged::Back => (RowOutcome::AlreadyPresent, Vec::new()),
        Judged::NeverApplied => (RowOutcome::NeverApplied, Vec::new()),
        Judged::Differs if !force => (RowOutcome::Differs, Vec::new()),
        Judged::Differs => (RowOutcome::Overwritten, put_back(r, current)),
        Judged::AsLeft => (RowOutcome::Restored, put_back(r, current)),
    })
}

/// The changes that put the journaled image back: the row at the key goes (by its own key
/// bytes, as found), and for a deleted or overwritten row the image comes back.
fn put_back(r: &Restoring<'_>, current: Option<&Row>) -> Vec<RowChange> {
    let restored = (r.entry.action != Action::Insert).then(|| r.image.clone());
    let mut out = Vec::new();
    if let Some(c) = current {
        out.push(RowChange {
            table: r.table.clone(),
            action: RowAction::Delete,
            key: resync::own_key(c, &r.key),
            image: c.clone(),
            after: restored.clone(),
        });
    }
    if let Some(img) = restored {
        out.push(RowChange {
            table: r.table.clone(),
            action: RowAction::Insert,
            key: r.key.clone(),
            image: img.clone(),
            after: Some(img),
        });
    }
    out
}

type Decided = Vec<(RowOutcome, Vec<RowChange>)>;

/// Each entry's outcome and changes, newest first. A row found by an entry that a newer
/// entry's changes already delete is not there any more for it.
fn decide_all(
    restoring: &[Restoring<'_>],
    chosen: &[usize],
    older: &OlderDeletes,
    force: bool,
) -> Result<Decided> {
    let mut gone: std::collections::HashSet<(Endpoint, TableRef, String)> = Default::default();
    let mut out = Vec::with_capacity(restoring.len());
    for (r, &i) in restoring.iter().zip(chosen) {
        let id = |row: &Row| {
            let k = resync::own_key(row, &r.key);
            let k = serde_json::to_string(&crate::verify::model::key_out(&k)).unwrap_or_default();
            (r.entry.node.clone(), r.table.clone(), k)
        };
        let current = r.current.as_ref().filter(|c| !gone.contains(&id(c)));
        let back = r.entry.action == Action::Insert
            && current.is_some_and(|c| older.undid(i, r.entry, &r.table, c));
        let (outcome, changes) = decide(r, current, back, force)?;
        for c in changes.iter().filter(|c| c.action == RowAction::Delete) {
            gone.insert(id(&c.image));
        }
        out.push((outcome, changes));
    }
    Ok(out)
}

/// The changes grouped by node, table and binary-log setting, in restore order, at most
/// ROWS_PER_STEP rows a group (an entry's changes kept together).
fn groups(
    restoring: &[Restoring<'_>],
    decided: &Decided,
) -> Vec<((Endpoint, TableRef, bool), Vec<RowChange>)> {
    let mut groups: Vec<((Endpoint, TableRef, bool), Vec<RowChange>)> = Vec::new();
    for (r, (_, changes)) in restoring.iter().zip(decided) {
        if changes.is_empty() {
            continue;
        }
        let id = (r.entry.node.clone(), r.table.clone(), r.entry.sql_log_bin);
        match groups.last_mut() {
            Some((g, rows)) if *g == id && rows.len() + changes.len() <= resync::ROWS_PER_STEP => {
                rows.extend(changes.iter().cloned())
            }
            _ => groups.push((id, changes.clone())),
        }
    }
    groups
}

/// The restore as a plan of row steps (the same steps resync runs), read-only nodes lifted
/// around theirs with --lift-read-only.
fn plan(
    restoring: &[Restoring<'_>],
    decided: &Decided,
    schemas: &Schemas,
    world: &mut World,
    lift_read_only: bool,
) -> Result<Plan> {
    let mut steps: Vec<Step> = Vec::new();
    let mut nodes: Vec<resync::Node> = Vec::new();
    for ((node, table, log_bin), rows) in groups(restoring, decided) {
        if !nodes.iter().any(|n| n.endpoint == node) {
            nodes.push(plan_node(world.server(&node)?)?);
        }
        let n = nodes
            .iter()
            .find(|n| n.endpoint == node)
            .expect("just added");
        let schema = &schemas[&(node.clone(), table.clone())];
        let facts = schema.facts();
        let target = resync::RowTarget {
            facts: &facts,
            log_bin,
            description: format!(
                "journal, then put {} row change(s) of {table} on {node} back as the journal recorded them (binary log {}, as the change was made)",
                rows.len(),
                if log_bin { "on" } else { "off" }
            ),
        };
        steps.push(resync::rows_step(n, target, rows));
    }
    let steps = with_read_only_lifted(steps, &nodes, lift_read_only);
    let mut consequences = Vec::new();
    for n in &nodes {
        let Some(provider) = n.binlog_stays_on else {
            continue;
        };
        let mine: Vec<Step> = steps
            .iter()
            .filter(|s| s.endpoint == n.endpoint)
            .cloned()
            .collect();
        consequences.extend(crate::planner::logged::consequences(&mine, provider));
    }
    let mut plan = Plan::lossless(
        RemedyId::Resync,
        "nothing: every row deleted or replaced is journaled first",
        steps,
    );
    plan.consequences = consequences;
    Ok(plan)
}

fn plan_node(server: &mut Server) -> Result<resync::Node> {
    let (ro, sro): (i64, i64) = server
        .first(&crate::sql::Statement::plain(
            server.flavor.read_only_query(),
        ))?
        .unwrap_or((0, 0));
    Ok(resync::Node {
        role: NodeRole::Replica,
        endpoint: server.spec.address(),
        flavor: server.flavor,
        read_only: ReadOnly::from_flags(ro != 0, sro != 0),
        binlog_stays_on: super::resync::binlog_stays_on(server),
    })
}

/// Each node's steps, between a lift of its read_only and its restore with --lift-read-only.
fn with_read_only_lifted(steps: Vec<Step>, nodes: &[resync::Node], lift: bool) -> Vec<Step> {
    nodes
        .iter()
        .flat_map(|n| {
            let mine: Vec<Step> = steps
                .iter()
                .filter(|s| s.endpoint == n.endpoint)
                .cloned()
                .collect();
            resync::lifted(n, mine, lift)
        })
        .collect()
}

pub fn run(args: &RestoreArgs, format: Format) -> Result<Outcome> {
    if !args.journal.is_file() {
        return Err(crate::exit::Coded(
            exit::BAD_INPUT,
            format!(
                "journal {}: no such file (repair and resync name theirs when they finish)",
                args.journal.display()
            ),
        )
        .into());
    }
    let entries = journal::latest(&journal::read(&args.journal)?);
    let chosen: Vec<usize> = (0..entries.len())
        .rev()
        .filter(|&i| entries[i].table_ref().is_some())
        .filter(|&i| {
            args.fingerprint
                .as_deref()
                .is_none_or(|f| f == entries[i].fingerprint)
        })
        .collect();
    let mut world = World {
        creds: super::connect::replica_spec(&args.creds)?,
        servers: HashMap::new(),
    };
    let (restoring, schemas) = read_current(&mut world, &entries, &chosen)?;
    let decided = decide_all(
        &restoring,
        &chosen,
        &OlderDeletes::index(&entries),
        args.force,
    )?;
    let mut plan = plan(
        &restoring,
        &decided,
        &schemas,
        &mut world,
        args.lift_read_only,
    )?;
    if !plan.steps.is_empty() {
        let specs = world.specs(&plan)?;
        plan.facts = crate::repair::preflight::facts(&plan, &mut Nodes::new(specs));
    }
    let applied = match plan.steps.is_empty() {
        true => None,
        false => apply(args, &mut world, &plan)?,
    };
    let left_alone: std::collections::HashSet<String> = applied
        .as_ref()
        .map(|a| a.left_alone.iter().cloned().collect())
        .unwrap_or_default();
    let mut report = Report {
        schema: "replmend.restore/1",
        journal: args.journal.display().to_string(),
        dry_run: args.dry_run,
        rows: rows(&restoring, &decided, args.dry_run, &left_alone),
        warnings: Vec::new(),
        plan: args.dry_run.then(|| plan.clone()),
        // Named only when it holds a change (a restore that changed nothing wrote none).
        restore_journal: applied
            .as_ref()
            .filter(|a| a.journaled_rows > 0)
            .map(|a| a.journal.clone()),
    };
    report.warnings = dual_master_warnings(&world.creds, &entries, &report);
    let refused = report.rows.iter().any(|r| r.outcome == RowOutcome::Differs);
    let output = super::render(format, &report, text);
    Ok(Outcome {
        output,
        code: if refused { exit::REFUSED } else { exit::OK },
    })
}

/// Each entry's reported outcome: as decided, or (a run) `differs` when its row changed
/// between the read and the locking read and was left alone.
fn rows(
    restoring: &[Restoring<'_>],
    decided: &Decided,
    dry_run: bool,
    left_alone: &std::collections::HashSet<String>,
) -> Vec<Restored> {
    restoring
        .iter()
        .zip(decided)
        .map(|(r, (outcome, changes))| {
            let untouched = changes
                .iter()
                .any(|c| left_alone.contains(&crate::repair::apply::left_alone_text(c)));
            let outcome = match (outcome, dry_run, untouched) {
                (RowOutcome::Restored | RowOutcome::Overwritten, true, _) => {
                    RowOutcome::WouldRestore
                }
                (RowOutcome::Restored | RowOutcome::Overwritten, false, true) => {
                    RowOutcome::Differs
                }
                (o, _, _) => *o,
            };
            Restored {
                node: r.entry.node.clone(),
                table: r.table.to_string(),
                key: r
                    .key
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.display()))
                    .collect(),
                outcome,
            }
        })
        .collect()
}

/// The guarded path: the repair lock on every node written, the preflight, then the applier
/// (every row checked by a locking read and journaled before it changes). A dry run runs the
/// preflight only.
fn apply(args: &RestoreArgs, world: &mut World, plan: &Plan) -> Result<Option<ApplyReport>> {
    let specs = world.specs(plan)?;
    let mut nodes = Nodes::new(specs.clone());
    let accept = crate::repair::preflight::Accept {
        triggers: args.allow_triggers,
        errant: args.allow_errant_gtid,
    };
    if args.dry_run {
        crate::repair::preflight::check_with(plan, &mut nodes, &[], accept)?;
        return Ok(None);
    }
    let path = args
        .journal_to
        .clone()
        .unwrap_or_else(journal::default_path);
    let mut journal = Journal::new(&path)?;
    let _lock = RepairLock::acquire(&specs.iter().collect::<Vec<_>>())?;
    crate::repair::preflight::check_with(plan, &mut nodes, &[], accept)?;
    let what = ["restore".to_string(), args.journal.display().to_string()];
    Ok(Some(super::apply_plan(
        &what,
        &mut nodes,
        &mut journal,
        plan,
        Vec::new(),
    )?))
}

/// The node `node` replicates from, when that node replicates from it too (a dual-master
/// pair): its endpoint. Unknown (unreachable, not a replica) is None.
fn dual_master_peer(creds: &ConnSpec, at: &Endpoint) -> Option<String> {
    let mut server = Server::connect(&creds.at(at)).ok()?;
    let topology = Topology::read(&mut server, None).ok()?;
    let (link, _) = topology.dual_master_peer()?;
    Some(link.source.endpoint())
}

/// Rows restored with the binary log off (as the repair changed them) on a node of a
/// dual-master pair: the other node keeps the version the repair left, so the pair differs.
fn dual_master_warnings(creds: &ConnSpec, entries: &[Entry], report: &Report) -> Vec<String> {
    let changed = |o: RowOutcome| {
        matches!(
            o,
            RowOutcome::Restored | RowOutcome::WouldRestore | RowOutcome::Overwritten
        )
    };
    let mut nodes: Vec<(&Endpoint, Vec<&str>)> = Vec::new();
    for r in report.rows.iter().filter(|r| changed(r.outcome)) {
        let unlogged = entries
            .iter()
            .any(|e| e.node == r.node && !e.sql_log_bin && e.table_ref().is_some());
        if !unlogged {
            continue;
        }
        match nodes.iter_mut().find(|(n, _)| **n == r.node) {
            Some((_, tables)) if !tables.contains(&r.table.as_str()) => tables.push(&r.table),
            Some(_) => {}
            None => nodes.push((&r.node, vec![&r.table])),
        }
    }
    nodes
        .into_iter()
        .filter_map(|(node, tables)| {
            let peer = dual_master_peer(creds, node)?;
            let will = if report.dry_run { "would leave" } else { "leaves" };
            Some(format!(
                "{node} and {peer} are a dual-master pair: this restore {will} {node}'s old rows there only (binary log off, as the repair changed them), so the two nodes hold different versions of them; to bring them back together with these versions: replmend resync --replica mysql://{}@{node} --tables {} --winner replica",
                creds.user,
                tables.join(",")
            ))
        })
        .collect()
}

fn key_of(e: &Entry, image: &Row) -> Vec<(String, Cell)> {
    e.key
        .iter()
        .filter_map(|k| image.get(k).map(|v| (k.clone(), v.clone())))
        .collect()
}

fn text(r: &Report) -> String {
    let mut s = String::new();
    for row in &r.rows {
        let outcome = serde_json::to_value(row.outcome)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        s.push_str(&format!(
            "{:16} {} {} {}\n",
            outcome,
            row.node,
            row.table,
            row.key.join(", ")
        ));
    }
    if r.rows.is_empty() {
        s.push_str("no journaled rows matched\n");
    }
    if let Some(plan) = &r.plan {
        s.push_str(&crate::planner::render::facts_text(plan));
        for (i, step) in plan.steps.iter().enumerate() {
            s.push_str(&crate::planner::render::step_text(i, step));
        }
        s.push_str("Dry run: nothing was changed.\n");
    }
    if let Some(j) = &r.restore_journal {
        s.push_str(&format!(
            "the rows this restore changed are journaled in {j}\n"
        ));
    }
    for w in &r.warnings {
        s.push_str(&format!("warning: {w}\n"));
    }
    if r.rows.iter().any(|x| x.outcome == RowOutcome::Differs) {
        s.push_str("some rows changed since the repair and were left alone: pass --force to overwrite them (the rows found are journaled first)\n");
    }
    s
}
