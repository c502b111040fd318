//! The planner: (diagnosis, playbooks, policy) → ranked remedies and, for each applicable one,
//! an ordered plan of steps with the exact SQL per node. What a remedy loses is computed from
//! its plan's steps (what they skip, delete, journal and re-insert), never from prose. Pure:
//! no I/O.

use std::ops::Range;

use serde::Serialize;
use thiserror::Error;

use super::playbook::{Playbook, RemedyId, RemedySpec, Risk, StepTemplate, When};
use crate::diagnosis::render::key_words;
use crate::diagnosis::{AutoKey, ConflictKind, Diagnosis, KeyKind, ReadOnly, Row, Verdict};
use crate::flavor::{Flavor, Thread};
use crate::sql::{self, Statement};
use crate::value::Cell;
use crate::vocab::Gtid;

pub const PLAN_SCHEMA: &str = "replmend.plan/1";

#[derive(Debug, Error, PartialEq)]
pub enum PlanError {
    #[error("no playbook handles {0}")]
    NoPlaybook(String),
    #[error("remedy {remedy} does not apply here: {why}")]
    NotApplicable { remedy: RemedyId, why: String },
    #[error("--winner newest:{0}: the conflicting rows have no column {0} on both nodes")]
    NoSuchColumn(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Winner {
    Source,
    Replica,
    #[serde(rename = "newest")]
    Newest(String),
}

impl std::str::FromStr for Winner {
    type Err = String;
    fn from_str(s: &str) -> Result<Winner, String> {
        match s {
            "source" => Ok(Winner::Source),
            "replica" => Ok(Winner::Replica),
            _ => match s.strip_prefix("newest:") {
                Some(c) if !c.is_empty() => Ok(Winner::Newest(c.to_string())),
                _ => Err(format!(
                    "unknown winner {s:?} (source, replica or newest:COLUMN)"
                )),
            },
        }
    }
}

#[derive(Debug, Clone)]
pub struct Policy {
    pub remedy: Option<RemedyId>,
    pub winner: Winner,
    /// Plan explicit steps that turn read_only off on a node around replmend's own writes.
    pub lift_read_only: bool,
    /// Records an interrupted rekey of this incident already re-inserted (from the journal):
    /// a re-run gives them the same keys instead of inserting them twice.
    pub rekeyed: Vec<Row>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            remedy: None,
            winner: Winner::Source,
            lift_read_only: false,
            rekeyed: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeRole {
    /// The replica the diagnosis was made on.
    Replica,
    /// Its source (in a dual-master pair, the other node).
    Source,
}

/// What a step does to one row; it is also the journal's action for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RowAction {
    /// The row must be there, equal to `image`; it is journaled, then deleted.
    Delete,
    /// The row must be absent; `image` is inserted (and journaled, so restore can take it out).
    Insert,
}

/// A row a step deletes or inserts: checked first (inside the step's transaction, with a
/// locking read), journaled, then written.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowChange {
    pub table: crate::diagnosis::TableRef,
    pub action: RowAction,
    /// The columns and values that identify the row.
    pub key: Vec<(String, Cell)>,
    /// Delete: the version that must still be there (and goes to the journal).
    /// Insert: the version to insert.
    pub image: Row,
    /// The version the whole plan leaves at this key (None: none, or not known). Journaled,
    /// so `restore` can tell a row the repair left from one changed since.
    pub after: Option<Row>,
}

/// What a step makes a node never apply: the rows of a skipped transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepLoss {
    /// Rows of the skipped transaction that are not conflicting rows (None: unknown, the
    /// transaction could not be read).
    pub rows: Option<usize>,
    /// Keys whose skipped version differs from the node's (the transaction's version of
    /// them is never applied there).
    pub versions: Vec<Vec<(String, Cell)>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub node: NodeRole,
    pub endpoint: String,
    pub flavor: Flavor,
    pub channel: String,
    pub action: StepTemplate,
    pub description: String,
    /// Session settings, run first on the step's own connection.
    pub session: Vec<Statement>,
    /// Exactly what the applier sends, in order, parameters included.
    pub statements: Vec<Statement>,
    pub rows: Vec<RowChange>,
    /// What is checked first; a step whose effect is already there is skipped (re-runs converge).
    pub precondition: String,
    pub verification: String,
    /// The GTID a skip step records as executed.
    pub gtid: Option<Gtid>,
    /// Lift/restore steps: the node's read-only state before replmend lifted it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only: Option<ReadOnly>,
    #[serde(skip)]
    pub loss: StepLoss,
    /// Stop steps: the threads the statement stops.
    #[serde(skip)]
    pub stops: Option<Thread>,
}

impl Step {
    /// Steps whose statements a read-only node refuses (error 1290) unless the account may
    /// write there: row writes everywhere, and MariaDB's SET GLOBAL gtid_slave_pos.
    pub fn blocked_by_read_only(&self) -> bool {
        match self.action {
            StepTemplate::DeleteConflictingRows
            | StepTemplate::InsertMissingRows
            | StepTemplate::ReinsertUnderFreshKey
            | StepTemplate::CopyUnderFreshKey
            | StepTemplate::ResyncRows => !self.statements.is_empty(),
            StepTemplate::SkipTransaction => self
                .flavor
                .gtid_skip_blocked_by_read_only(self.gtid.is_some()),
            _ => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RemedyOption {
    pub remedy: RemedyId,
    pub title: String,
    pub risk: Risk,
    pub applicable: bool,
    pub why_not: Option<String>,
    /// Rows of the failing transaction(s) that would never be applied.
    pub rows_lost: usize,
    /// Conflicting rows whose other version would be gone (not journaled).
    pub versions_lost: usize,
    /// Different records sharing one key: journaled, but on neither node afterwards.
    pub records_lost: usize,
    /// A skipped transaction could not be read: the number of rows lost is unknown.
    pub loss_unknown: bool,
    /// Rows journaled before they change.
    pub rows_journaled: usize,
    pub loses: String,
    pub recommended: bool,
}

impl RemedyOption {
    pub fn loses_data(&self) -> bool {
        self.rows_lost > 0 || self.versions_lost > 0 || self.records_lost > 0 || self.loss_unknown
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub remedy: RemedyId,
    pub winner: Option<Winner>,
    /// In a dual-master plan, which node's version both end with.
    pub winner_endpoint: Option<String>,
    pub loses: String,
    pub rows_lost: usize,
    pub versions_lost: usize,
    pub records_lost: usize,
    pub loss_unknown: bool,
    pub steps: Vec<Step>,
    /// What the DBA should change so this does not happen again.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub advice: Vec<String>,
    /// The facts about the written nodes this plan rests on, as read when it was made
    /// (triggers, child tables, appliers); the preflight reads them again before the first
    /// change and refuses what they forbid.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub facts: Vec<String>,
}

impl Plan {
    /// A plan whose every change is journaled first and nothing is skipped (resync, restore):
    /// it loses nothing.
    pub fn lossless(remedy: RemedyId, loses: &str, steps: Vec<Step>) -> Plan {
        Plan {
            remedy,
            winner: None,
            winner_endpoint: None,
            loses: loses.into(),
            rows_lost: 0,
            versions_lost: 0,
            records_lost: 0,
            loss_unknown: false,
            steps,
            advice: Vec::new(),
            facts: Vec::new(),
        }
    }

    /// Every node the plan touches, in first-use order.
    pub fn endpoints(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for s in &self.steps {
            if !out.contains(&s.endpoint.as_str()) {
                out.push(&s.endpoint);
            }
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanSet {
    pub schema: &'static str,
    pub fingerprint: String,
    /// The reverse direction's fingerprint, for a dual-master plan.
    pub reverse_fingerprint: Option<String>,
    pub playbook: String,
    pub playbook_title: String,
    pub options: Vec<RemedyOption>,
    pub plan: Option<Plan>,
}

/// Facts the playbook conditions are evaluated over.
#[derive(Debug, Clone)]
struct Facts {
    identical: bool,
    gtid_known: bool,
    /// The failing transaction can be skipped by GTID.
    gtid_enabled: bool,
    source_row_known: bool,
    all_rows_conflict: bool,
    dual_master: bool,
    /// The conflicting key is an AUTO_INCREMENT (or generated invisible) primary key and
    /// the rows differ beyond it: most likely two different records, not two versions. Also
    /// when an interrupted rekey of this incident already moved the loser's records (its row
    /// at the old key is gone, so the rows no longer show it).
    two_records: bool,
}

fn facts(d: &Diagnosis, policy: &Policy) -> Facts {
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

fn gtids_on(d: &Diagnosis) -> bool {
    d.replica
        .flavor
        .skip_needs_gtid(d.gtid_enabled, d.gtid_positioning)
}

fn gtid_skip(d: &Diagnosis) -> bool {
    d.replica.flavor.can_skip_by_gtid(
        d.gtid_enabled,
        d.gtid_positioning,
        d.gtid_slave_pos.is_some(),
    )
}

/// The reverse direction's diagnosis when the pair is dual-master and both directions stopped.
fn dual(d: &Diagnosis) -> Option<&Diagnosis> {
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

fn why_not(w: &When, f: &Facts, d: &Diagnosis) -> Option<String> {
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
fn structural_why_not(spec: &RemedySpec, d: &Diagnosis) -> Option<String> {
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
fn auto_keys(d: &Diagnosis) -> Vec<(&str, &AutoKey)> {
    [Some(d), dual(d)]
        .into_iter()
        .flatten()
        .filter_map(|n| {
            n.auto_key
                .as_ref()
                .map(|a| (n.replica.endpoint.as_str(), a))
        })
        .collect()
}

/// rekey moves a record to a fresh key, but child rows follow the key value: the children of
/// both records reference the same old value and cannot be told apart, so moving the record
/// would hand its children to the other record (or orphan them).
fn children_why_not(d: &Diagnosis) -> Option<String> {
    let nodes = auto_keys(d);
    // Each constraint once, with the nodes it is on when not on all of them.
    let mut named: Vec<(String, Vec<&str>)> = Vec::new();
    for (endpoint, a) in &nodes {
        for fk in &a.referenced_by {
            let text = format!("{} ({}, ON DELETE {})", fk.child, fk.name, fk.on_delete);
            match named.iter_mut().find(|(t, _)| *t == text) {
                Some((_, on)) => on.push(endpoint),
                None => named.push((text, vec![endpoint])),
            }
        }
    }
    let column = nodes.first().map(|(_, a)| a.column.as_str())?;
    let children: Vec<String> = named
        .into_iter()
        .map(|(text, on)| match on.len() == nodes.len() {
            true => text,
            false => format!("{text} on {}", on.join(", ")),
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

/// One option: applicable or not, and, when it is, its plan and what that plan loses.
fn option(
    d: &Diagnosis,
    spec: &RemedySpec,
    f: &Facts,
    policy: &Policy,
) -> Result<(RemedyOption, Option<Plan>), PlanError> {
    let why = why_not(&spec.when, f, d).or_else(|| structural_why_not(spec, d));
    let built = match why {
        Some(w) => Err(w),
        None => build(d, spec, policy, f)?,
    };
    let mut o = RemedyOption {
        remedy: spec.remedy,
        title: spec.title.clone(),
        risk: spec.risk,
        applicable: built.is_ok(),
        why_not: built.as_ref().err().cloned(),
        rows_lost: 0,
        versions_lost: 0,
        records_lost: 0,
        loss_unknown: false,
        rows_journaled: 0,
        loses: String::new(),
        recommended: false,
    };
    let plan = built.ok().map(|mut p| {
        let l = losses(&p, f.two_records);
        (o.rows_lost, o.versions_lost, o.records_lost) = (l.rows, l.versions, l.records);
        (o.loss_unknown, o.rows_journaled) = (l.unknown, l.journaled);
        o.loses = l.text();
        (p.rows_lost, p.versions_lost, p.records_lost) = (l.rows, l.versions, l.records);
        p.loss_unknown = l.unknown;
        p.loses = o.loses.clone();
        p
    });
    Ok((o, plan))
}

pub fn plan(d: &Diagnosis, playbooks: &[Playbook], policy: &Policy) -> Result<PlanSet, PlanError> {
    let pb = choose_playbook(d, playbooks)
        .ok_or_else(|| PlanError::NoPlaybook(format!("{} (errno {})", d.kind, d.error.errno)))?;
    let f = facts(d, policy);
    let mut options = Vec::new();
    for spec in &pb.remedies {
        let (o, p) = option(d, spec, &f, policy)?;
        // Equal losses: when the nodes already agree, prefer the remedy that touches no row.
        let touches_rows = f.identical && spec.steps.iter().any(|s| s.writes_rows());
        options.push((o, p, touches_rows));
    }
    options.sort_by_key(|(o, _, touches)| {
        (
            !o.applicable,
            o.loss_unknown,
            o.rows_lost,
            o.records_lost,
            o.versions_lost,
            *touches,
            o.risk,
        )
    });
    // The same remedy may be listed under different conditions: keep the applicable one.
    let mut seen = std::collections::HashSet::new();
    options.retain(|(o, _, _)| seen.insert(o.remedy));
    if let Some((first, _, _)) = options.first_mut().filter(|(o, _, _)| o.applicable) {
        first.recommended = true;
    }
    let chosen = match policy.remedy {
        Some(r) => {
            let (o, _, _) = options
                .iter()
                .find(|(o, _, _)| o.remedy == r)
                .ok_or_else(|| PlanError::NotApplicable {
                    remedy: r,
                    why: format!("playbook {} does not offer it", pb.id),
                })?;
            if !o.applicable {
                return Err(PlanError::NotApplicable {
                    remedy: r,
                    why: o.why_not.clone().unwrap_or_default(),
                });
            }
            options.iter().position(|(o, _, _)| o.remedy == r)
        }
        None => options
            .iter()
            .position(|(o, p, _)| o.applicable && p.is_some()),
    };
    // Moved out, not copied: a batch's plan holds thousands of rows.
    let plan = chosen.and_then(|i| options[i].1.take());
    Ok(PlanSet {
        schema: PLAN_SCHEMA,
        fingerprint: d.fingerprint.clone(),
        reverse_fingerprint: dual(d).map(|r| r.fingerprint.clone()),
        playbook: pb.id.clone(),
        playbook_title: pb.title.clone(),
        options: options.into_iter().map(|(o, _, _)| o).collect(),
        plan,
    })
}

/// What a plan loses, from its steps.
#[derive(Debug, Default, Clone, Copy)]
struct Losses {
    rows: usize,
    versions: usize,
    records: usize,
    unknown: bool,
    journaled: usize,
}

impl Losses {
    fn text(&self) -> String {
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

fn losses(plan: &Plan, two_records: bool) -> Losses {
    let mut l = Losses::default();
    let journaled: Vec<&Vec<(String, Cell)>> = plan
        .steps
        .iter()
        .flat_map(|s| &s.rows)
        .filter(|r| r.action == RowAction::Delete)
        .map(|r| &r.key)
        .collect();
    // The loser's records moved to a fresh key (the move's inserts; the winner's copies are
    // the same records).
    let reinserted = plan
        .steps
        .iter()
        .filter(|s| s.action == StepTemplate::ReinsertUnderFreshKey)
        .flat_map(|s| &s.rows)
        .filter(|r| r.action == RowAction::Insert)
        .count();
    l.journaled = plan.steps.iter().map(|s| s.rows.len()).sum();
    let mut versions: Vec<&Vec<(String, Cell)>> = Vec::new();
    for s in &plan.steps {
        match s.loss.rows {
            Some(n) => l.rows += n,
            None if s.action == StepTemplate::SkipTransaction => l.unknown = true,
            None => {}
        }
        for k in &s.loss.versions {
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

/// One direction of replication: the node that applies, and the diagnosis made on it.
struct Direction<'d> {
    role: NodeRole,
    d: &'d Diagnosis,
}

fn step(dir: &Direction<'_>, action: StepTemplate, description: String) -> Step {
    Step {
        node: dir.role,
        endpoint: dir.d.replica.endpoint.clone(),
        flavor: dir.d.replica.flavor,
        channel: dir.d.channel.clone(),
        action,
        description,
        session: Vec::new(),
        statements: Vec::new(),
        rows: Vec::new(),
        precondition: String::new(),
        verification: String::new(),
        gtid: None,
        read_only: None,
        loss: StepLoss::default(),
        stops: None,
    }
}

fn stop(dir: &Direction<'_>) -> Step {
    let mut s = step(
        dir,
        StepTemplate::StopApplier,
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
    s.stops = Some(Thread::Both);
    s
}

/// A node that skips nothing keeps its receiver running: only the applier must be stopped
/// for its rows to change, and the receiver is not reconnected to the source on restart.
fn narrow_stops(steps: &mut [Step]) {
    let skipping: Vec<String> = steps
        .iter()
        .filter(|s| s.action == StepTemplate::SkipTransaction)
        .map(|s| s.endpoint.clone())
        .collect();
    for s in steps.iter_mut() {
        if s.action != StepTemplate::StopApplier || skipping.contains(&s.endpoint) {
            continue;
        }
        s.statements = vec![Statement::plain(
            s.flavor.stop_replica(Thread::Sql, &s.channel),
        )];
        s.description = format!(
            "stop the applier on {} (its receiver keeps running)",
            s.endpoint
        );
        s.stops = Some(Thread::Sql);
    }
}

fn start(dir: &Direction<'_>) -> Step {
    let mut s = step(
        dir,
        StepTemplate::StartApplier,
        format!("start replication on {}", dir.d.replica.endpoint),
    );
    s.statements.push(Statement::plain(
        dir.d
            .replica
            .flavor
            .start_replica(Thread::Both, &dir.d.channel),
    ));
    s.verification = "the applier runs and the error is cleared".into();
    s
}

fn verify(dir: &Direction<'_>, other: &str) -> Step {
    let mut s = step(
        dir,
        StepTemplate::Verify,
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
    let mut s = verify(dir, "the source");
    s.verification = "applier running, no error, everything received from the source applied; the source is unreachable, so no row is compared with it".into();
    s
}

fn row_key(d: &Diagnosis, row: &Row) -> Vec<(String, Cell)> {
    d.row_key
        .iter()
        .filter_map(|c| row.get(c).map(|v| (c.clone(), v.clone())))
        .collect()
}

/// Turns the step's row changes into its statements: one transaction, every row checked
/// with a locking read first, then written. The applier journals between the two. The rows of
/// an overwrite (thousands, read ahead) go in batches: one locking read and one write per
/// batch instead of two round trips per row.
fn row_statements(s: &mut Step, d: &Diagnosis) {
    if s.rows.is_empty() {
        return;
    }
    let batched = matches!(
        s.action,
        StepTemplate::DeleteConflictingRows | StepTemplate::InsertMissingRows
    );
    let batches: Vec<Range<usize>> = match batched {
        true => batches(&s.rows),
        false => (0..s.rows.len()).map(|i| i..i + 1).collect(),
    };
    s.statements.push(Statement::plain("START TRANSACTION"));
    for b in &batches {
        s.statements.push(check_statement(&s.rows, b.clone(), d));
    }
    for b in &batches {
        s.statements.push(write_statement(&s.rows, b.clone(), d));
    }
    for b in batches
        .iter()
        .filter(|b| s.rows[b.start].action == RowAction::Insert)
    {
        s.statements
            .push(read_back_statement(&s.rows, b.clone(), d));
    }
    s.statements.push(Statement::plain("COMMIT"));
}

/// The read of a batch of inserted rows before COMMIT: what the server wrote (a trigger, a
/// default, a key of 0 turned into the next AUTO_INCREMENT value) is compared with what was
/// journaled, and a difference rolls the step back.
fn read_back_statement(rows: &[RowChange], b: Range<usize>, d: &Diagnosis) -> Statement {
    let r = &rows[b.start];
    let keys: Vec<Vec<(String, Cell)>> = rows[b.clone()].iter().map(|r| r.key.clone()).collect();
    sql::select_in(
        &r.table,
        &r.image.columns,
        &keys,
        &d.converted_charsets,
        &d.integer_columns,
    )
    .read_back(b.start, b.len())
}

/// Rows one statement carries at most, and the bound parameters and value bytes: a batch of
/// thousands of rows is a few round trips, each well inside the 65,535 placeholders of a
/// prepared statement and MariaDB's default max_allowed_packet (16 MiB).
const BATCH_ROWS: usize = 1000;
const BATCH_PARAMS: usize = 30_000;
const BATCH_BYTES: usize = 4 << 20;

/// Consecutive rows one statement can carry: same table, action and columns, within the
/// limits above.
fn batches(rows: &[RowChange]) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::new();
    let (mut params, mut bytes) = (0, 0);
    for (i, r) in rows.iter().enumerate() {
        let (p, b) = (
            r.image.values.len().max(2 * r.key.len()),
            row_bytes(&r.image),
        );
        let joins = out.last().is_some_and(|last| {
            let first = &rows[last.start];
            (first.table == r.table && first.action == r.action)
                && first.image.columns == r.image.columns
                && last.len() < BATCH_ROWS
                && params + p <= BATCH_PARAMS
                && bytes + b <= BATCH_BYTES
        });
        match (joins, out.last_mut()) {
            (true, Some(last)) => last.end = i + 1,
            _ => {
                out.push(i..i + 1);
                (params, bytes) = (0, 0);
            }
        }
        (params, bytes) = (params + p, bytes + b);
    }
    out
}

fn row_bytes(row: &Row) -> usize {
    row.values
        .iter()
        .map(|v| match v {
            Cell::Null => 1,
            Cell::Number(t) | Cell::Text(t) | Cell::Temporal(t) | Cell::Json(t) => t.len(),
            Cell::Bytes(b) => b.len(),
        })
        .sum()
}

/// The locking read of a batch: a single row's by its key (as a DBA would write it), a
/// batch's by all its keys at once.
fn check_statement(rows: &[RowChange], b: Range<usize>, d: &Diagnosis) -> Statement {
    let r = &rows[b.start];
    let cs = &d.converted_charsets;
    if b.len() == 1 {
        return sql::select_by_key(&r.table, &r.image.columns, &r.key, cs, true).check(b.start);
    }
    let keys: Vec<Vec<(String, Cell)>> = rows[b.clone()].iter().map(|r| r.key.clone()).collect();
    sql::select_keys_for_update(&r.table, &r.image.columns, &keys, cs, &d.integer_columns)
        .check_rows(b.start, b.len())
}

fn write_statement(rows: &[RowChange], b: Range<usize>, d: &Diagnosis) -> Statement {
    let r = &rows[b.start];
    let cs = &d.converted_charsets;
    match (r.action, b.len()) {
        (RowAction::Delete, 1) => sql::delete_by_key(&r.table, &r.key, cs).write(b.start),
        (RowAction::Insert, 1) => {
            sql::insert_row(&r.table, &r.image, &d.generated_columns).write(b.start)
        }
        (RowAction::Delete, n) => {
            let keys: Vec<Vec<(String, Cell)>> =
                rows[b.clone()].iter().map(|r| r.key.clone()).collect();
            sql::delete_by_keys(&r.table, &keys, cs, &d.integer_columns).write_rows(b.start, n)
        }
        (RowAction::Insert, n) => {
            let images: Vec<Row> = rows[b.clone()].iter().map(|r| r.image.clone()).collect();
            sql::insert_rows(&r.table, &images, &d.generated_columns).write_rows(b.start, n)
        }
    }
}

/// The row the repaired transaction leaves at a key: the event's full image, else the
/// source's current row (MINIMAL images carry only some columns).
fn after_image(c: &crate::diagnosis::Conflict) -> Option<Row> {
    let full = c.source_row.as_ref().map(|r| r.columns.len());
    if Some(c.event_row.columns.len()) == full || c.source_row.is_none() {
        Some(c.event_row.clone())
    } else {
        c.source_row.clone()
    }
}

/// Binary log off (a fix on one node of a dual-master pair must not travel to the other),
/// foreign key checks off (a delete must not cascade into child tables: the key comes
/// straight back with the replicated transaction), a zero key written as zero.
fn unlogged_session() -> Vec<Statement> {
    crate::sql::row_write_session(false)
}

fn delete_rows(dir: &Direction<'_>) -> Step {
    let d = dir.d;
    let mut s = step(
        dir,
        StepTemplate::DeleteConflictingRows,
        format!(
            "journal, then delete {} conflicting row(s) of {} on {} (binary log off: the delete must not replicate)",
            d.conflicts.len() + d.upcoming.len(),
            d.table,
            d.replica.endpoint
        ),
    );
    s.session = unlogged_session();
    for c in d.conflicts.iter().chain(&d.upcoming) {
        let Some(image) = &c.replica_row else {
            continue;
        };
        s.rows.push(RowChange {
            table: d.table.clone(),
            action: RowAction::Delete,
            key: row_key(d, image),
            image: image.clone(),
            after: after_image(c),
        });
    }
    row_statements(&mut s, d);
    s.precondition = "each row still equals the diagnosed version byte for byte (already gone: done; changed: refuse)".into();
    s.verification = "the rows are gone; their images are in the journal".into();
    s
}

fn insert_rows(dir: &Direction<'_>) -> Step {
    let d = dir.d;
    let mut s = step(
        dir,
        StepTemplate::InsertMissingRows,
        format!(
            "insert {} missing row(s) of {} on {} so the transaction applies (binary log off)",
            d.conflicts.len() + d.upcoming.len(),
            d.table,
            d.replica.endpoint
        ),
    );
    s.session = unlogged_session();
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
        s.rows.push(RowChange {
            table: d.table.clone(),
            action: RowAction::Insert,
            key: row_key(d, &image),
            after: None,
            image,
        });
    }
    row_statements(&mut s, d);
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
    let mut s = step(
        winner,
        StepTemplate::CopyUnderFreshKey,
        format!(
            "journal, then insert {}'s record(s) of {} on {} under fresh key(s) {} (binary log off: each node gets its copy directly)",
            loser.replica.endpoint,
            loser.table,
            winner.d.replica.endpoint,
            fresh_words(records)
        ),
    );
    s.session = unlogged_session();
    s.rows = records.iter().map(|r| r.fresh.clone()).collect();
    row_statements(&mut s, winner.d);
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
    let mut s = step(
        loser,
        StepTemplate::ReinsertUnderFreshKey,
        format!(
            "journal, then move {}'s own record(s) of {} to fresh key(s) {} in one transaction: deleted at the old key, inserted at the fresh one (binary log off)",
            d.replica.endpoint,
            d.table,
            fresh_words(records)
        ),
    );
    s.session = unlogged_session();
    s.rows = records.iter().map(|r| r.old.clone()).collect();
    s.rows.extend(records.iter().map(|r| r.fresh.clone()));
    row_statements(&mut s, d);
    s.precondition = "each old row still equals the diagnosed version and each fresh key is free (moved already: done; changed or taken: refuse)".into();
    s.verification =
        "both records exist on both nodes once the winner's transaction applies here".into();
    s
}

fn lift_read_only(dir: &Direction<'_>, state: ReadOnly) -> Step {
    let flavor = dir.d.replica.flavor;
    let mut s = step(
        dir,
        StepTemplate::LiftReadOnly,
        format!(
            "turn {} off on {} for replmend's own writes (journaled; turned back on right after)",
            state.variable(),
            dir.d.replica.endpoint
        ),
    );
    s.statements = vec![Statement::plain(flavor.lift_read_only())];
    s.read_only = Some(state);
    s.precondition = format!("{} is still {}", state.variable(), "ON");
    s
}

fn restore_read_only(dir: &Direction<'_>, state: ReadOnly) -> Step {
    let flavor = dir.d.replica.flavor;
    let mut s = step(
        dir,
        StepTemplate::RestoreReadOnly,
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
    s.read_only = Some(state);
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
    let gtid = d.gtid.clone();
    let mut s = step(dir, StepTemplate::SkipTransaction, String::new());
    s.loss = skip_loss(d);
    match (gtid_skip(d), gtid) {
        (true, Some(g)) => {
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
            s.gtid = Some(g);
        }
        _ if gtids_on(d) => {
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
        _ => {
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

fn source_wins(d: &Diagnosis, policy: &Policy) -> Result<bool, PlanError> {
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

fn single_steps(d: &Diagnosis, spec: &RemedySpec) -> Result<Vec<Step>, String> {
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
fn dual_steps(
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
                s.loss.versions.clear();
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
fn add_read_only_steps(steps: &mut Vec<Step>, d: &Diagnosis) {
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

fn auto_increment_advice(d: &Diagnosis, rev: &Diagnosis) -> Vec<String> {
    vec![format!(
        "{} and {} both hand out the same AUTO_INCREMENT values: give each node its own, e.g. \
         on {}: SET GLOBAL auto_increment_increment = 2, auto_increment_offset = 1; \
         on {}: SET GLOBAL auto_increment_increment = 2, auto_increment_offset = 2 \
         (and the same in each server's option file)",
        d.replica.endpoint, rev.replica.endpoint, d.replica.endpoint, rev.replica.endpoint
    )]
}

/// The plan of one remedy, or why it cannot be built here (Ok(Err(why))).
fn build(
    d: &Diagnosis,
    spec: &RemedySpec,
    policy: &Policy,
    f: &Facts,
) -> Result<Result<Plan, String>, PlanError> {
    let (mut winner, mut winner_endpoint, mut advice) = (None, None, Vec::new());
    let steps = match dual(d) {
        None => single_steps(d, spec),
        Some(rev) => {
            let source_wins = source_wins(d, policy)?;
            if matches!(spec.remedy, RemedyId::Overwrite | RemedyId::Rekey) {
                winner = Some(policy.winner.clone());
                winner_endpoint = Some(if source_wins { rev } else { d }.replica.endpoint.clone());
            }
            if f.two_records {
                advice = auto_increment_advice(d, rev);
            }
            dual_steps(d, rev, spec, policy, source_wins)
        }
    };
    let mut steps = match steps {
        Ok(s) => s,
        Err(why) => return Ok(Err(why)),
    };
    narrow_stops(&mut steps);
    if policy.lift_read_only {
        add_read_only_steps(&mut steps, d);
    }
    Ok(Ok(Plan {
        remedy: spec.remedy,
        winner,
        winner_endpoint,
        loses: String::new(),
        rows_lost: 0,
        versions_lost: 0,
        records_lost: 0,
        loss_unknown: false,
        steps,
        advice,
        facts: Vec::new(),
    }))
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

#[cfg(test)]
mod batch_tests {
    use super::*;

    fn change(id: usize, action: RowAction, columns: &[&str]) -> RowChange {
        let image = Row {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            values: columns
                .iter()
                .map(|_| Cell::Number(id.to_string()))
                .collect(),
        };
        RowChange {
            table: crate::diagnosis::TableRef {
                schema: "s".into(),
                name: "t".into(),
            },
            action,
            key: vec![("id".into(), Cell::Number(id.to_string()))],
            image,
            after: None,
        }
    }

    #[test]
    fn batches_keep_one_statement_to_one_action_and_column_list_within_limits() {
        let mut rows: Vec<RowChange> = (0..2500)
            .map(|i| change(i, RowAction::Delete, &["id", "v"]))
            .collect();
        assert_eq!(batches(&rows), vec![0..1000, 1000..2000, 2000..2500]);
        rows.push(change(2500, RowAction::Insert, &["id", "v"]));
        rows.push(change(2501, RowAction::Insert, &["id"]));
        assert_eq!(batches(&rows)[3..], [2500..2501, 2501..2502]);
        let wide: Vec<RowChange> = (0..100)
            .map(|i| {
                let mut c = change(i, RowAction::Insert, &["id"]);
                c.image.values = vec![Cell::Text("x".repeat(100_000))];
                c
            })
            .collect();
        // 4 MiB of values per statement: 41 rows of 100 kB.
        assert_eq!(batches(&wide)[0], 0..41);
    }
}
