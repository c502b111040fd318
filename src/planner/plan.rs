//! The planner: (diagnosis, playbooks, policy) → ranked remedies and, for the chosen one, an
//! ordered plan of steps with their exact SQL per node. Pure: no I/O.

use serde::Serialize;
use thiserror::Error;

use super::playbook::{Playbook, RemedyId, RemedySpec, Risk, StepTemplate, When};
use crate::diagnosis::{ConflictKind, Diagnosis, Gtid, Row, TableRef};
use crate::flavor::{Flavor, Kind, Thread, quote_ident, quote_string};
use crate::value::Cell;

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
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            remedy: None,
            winner: Winner::Source,
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

/// One SQL statement with its bound parameters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Statement {
    pub sql: String,
    pub params: Vec<Cell>,
}

impl Statement {
    fn plain(sql: impl Into<String>) -> Statement {
        Statement {
            sql: sql.into(),
            params: Vec::new(),
        }
    }
}

/// A row a step deletes or inserts: journaled first (deletes), checked first (both).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowChange {
    pub table: TableRef,
    /// The columns and values that identify the row.
    pub key: Vec<(String, Cell)>,
    /// Delete: the version that must still be there (and goes to the journal).
    /// Insert: the version to insert.
    pub image: Row,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub node: NodeRole,
    pub endpoint: String,
    pub flavor: Flavor,
    pub channel: String,
    pub action: StepTemplate,
    pub description: String,
    /// Session settings applied before the statements.
    pub session: Vec<String>,
    pub statements: Vec<Statement>,
    pub rows: Vec<RowChange>,
    /// What is checked first; a step whose effect is already there is skipped (re-runs converge).
    pub precondition: String,
    pub verification: String,
    /// MySQL GTID injection: skipped when the GTID is already executed.
    pub gtid: Option<Gtid>,
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
    /// The failing transaction could not be read: a skip would lose an unknown number of rows.
    pub loss_unknown: bool,
    pub loses: String,
    pub recommended: bool,
}

impl RemedyOption {
    pub fn loses_data(&self) -> bool {
        self.rows_lost > 0 || self.versions_lost > 0 || self.loss_unknown
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
    pub steps: Vec<Step>,
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
    rows_total: usize,
    conflicting: usize,
    identical: bool,
    gtid_known: bool,
    /// The failing transaction can be skipped by GTID: MySQL with gtid_mode=ON (which also
    /// refuses the skip counter), MariaDB replicating with GTID positioning.
    gtid_enabled: bool,
    source_row_known: bool,
    dual_master: bool,
}

fn facts(d: &Diagnosis) -> Facts {
    let rev = dual(d);
    let mut f = Facts {
        rows_total: d.rows_in_transaction().unwrap_or(d.conflicts.len()),
        conflicting: d.conflicts.len(),
        identical: d.all_identical(),
        gtid_known: d.transaction.as_ref().is_some_and(|t| t.gtid.is_some()),
        gtid_enabled: gtid_skip(d),
        // Conflicts may already be resolved (a repair killed halfway deleted them): the
        // transaction itself is what overwriting needs.
        source_row_known: d.transaction.is_some(),
        dual_master: rev.is_some(),
    };
    if let Some(r) = rev {
        f.gtid_known &= r.transaction.as_ref().is_some_and(|t| t.gtid.is_some());
        f.gtid_enabled &= gtid_skip(r);
        f.source_row_known &= r.transaction.is_some();
    }
    f
}

fn gtid_skip(d: &Diagnosis) -> bool {
    match d.replica.flavor.kind {
        Kind::Mysql => d.gtid_enabled,
        // Advancing gtid_slave_pos rewrites every domain: it needs the current value.
        Kind::Mariadb => d.gtid_positioning && d.gtid_slave_pos.is_some(),
    }
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
                f.rows_total == f.conflicting,
                "every row of the transaction conflicts",
                "the transaction holds rows that do not conflict",
            )
        })
        .or_else(|| check(w.dual_master, f.dual_master, "the pair is dual-master", "not a dual-master pair"))
        .or_else(|| match (w.key_kind, d.key.as_ref()) {
            (Some(k), Some(key)) if key.kind != k => Some(format!("the key is {:?}", key.kind)),
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

fn losses(spec: &RemedySpec, f: &Facts, d: &Diagnosis, policy: &Policy) -> (usize, usize) {
    let other = f.rows_total.saturating_sub(f.conflicting);
    let versions = if f.identical { 0 } else { f.conflicting };
    match (spec.remedy, d.kind) {
        (RemedyId::Overwrite, _) if !f.dual_master => (0, 0),
        // The winner's node skips the loser's transaction: the loser's other rows of it
        // never reach the winner.
        (RemedyId::Overwrite, _) => {
            let source_wins = match &policy.winner {
                Winner::Source => true,
                Winner::Replica => false,
                Winner::Newest(c) => newest_is_source(d, c).unwrap_or(true),
            };
            let skipped = if source_wins { dual(d).unwrap_or(d) } else { d };
            let lost = skipped
                .rows_in_transaction()
                .unwrap_or(0)
                .saturating_sub(skipped.conflicts.len());
            (lost, 0)
        }
        (_, ConflictKind::MissingOnDelete) => (other, 0),
        (RemedyId::Keep, _) if f.dual_master => {
            let rev_other = dual(d).map_or(0, |r| {
                r.rows_in_transaction()
                    .unwrap_or(0)
                    .saturating_sub(r.conflicts.len())
            });
            (other + rev_other, versions)
        }
        _ => (other, versions),
    }
}

fn render_loses(template: &str, rows_other: usize, conflicting: usize) -> String {
    template
        .replace("{rows_other}", &rows_other.to_string())
        .replace("{conflicting}", &conflicting.to_string())
}

pub fn choose_playbook<'p>(d: &Diagnosis, playbooks: &'p [Playbook]) -> Option<&'p Playbook> {
    let is_dual = dual(d).is_some();
    playbooks.iter().find(|p| {
        p.applies_to.dual_master == is_dual
            && p.applies_to.errno == d.error.errno
            && p.applies_to.kinds.contains(&d.kind)
    })
}

pub fn plan(d: &Diagnosis, playbooks: &[Playbook], policy: &Policy) -> Result<PlanSet, PlanError> {
    let pb = choose_playbook(d, playbooks)
        .ok_or_else(|| PlanError::NoPlaybook(format!("{:?} (errno {})", d.kind, d.error.errno)))?;
    let f = facts(d);
    let mut options: Vec<(RemedyOption, &RemedySpec)> = pb
        .remedies
        .iter()
        .map(|spec| {
            let why = why_not(&spec.when, &f, d).or_else(|| {
                // MySQL with GTIDs refuses the skip counter: skipping needs the GTID.
                (spec.steps.contains(&StepTemplate::SkipTransaction)
                    && d.replica.flavor.kind == Kind::Mysql
                    && d.gtid_enabled
                    && !f.gtid_known)
                    .then(|| "the failing transaction's GTID is not known, and MySQL with GTIDs refuses the skip counter".to_string())
            })
            .or_else(|| {
                let touches = spec
                    .steps
                    .iter()
                    .any(|s| matches!(s, StepTemplate::DeleteConflictingRows | StepTemplate::InsertMissingRows));
                if !touches {
                    None
                } else if d.row_key.is_empty() {
                    Some(format!("{} has no primary or unique key: its rows cannot be identified exactly", d.table))
                } else if spec.steps.contains(&StepTemplate::InsertMissingRows) && d.conflicts.is_empty() {
                    Some("the missing rows could not be identified from the row image".to_string())
                } else {
                    None
                }
            });
            let (rows_lost, versions_lost) = losses(spec, &f, d, policy);
            let skips = spec.steps.contains(&StepTemplate::SkipTransaction);
            let loss_unknown = skips && d.transaction.is_none();
            (
                RemedyOption {
                    remedy: spec.remedy,
                    title: spec.title.clone(),
                    risk: spec.risk,
                    applicable: why.is_none(),
                    why_not: why,
                    rows_lost,
                    versions_lost,
                    loss_unknown,
                    loses: if loss_unknown {
                        "an unknown number of rows: the failing transaction could not be read from the source".into()
                    } else {
                        render_loses(&spec.loses, f.rows_total.saturating_sub(f.conflicting), f.conflicting)
                    },
                    recommended: false,
                },
                spec,
            )
        })
        .collect();
    // The same remedy may be listed under different conditions: keep the applicable one.
    let mut seen = std::collections::HashSet::new();
    // Equal losses: when the nodes already agree, prefer the remedy that touches no row.
    let touches_rows = |spec: &RemedySpec| {
        f.identical
            && spec.steps.iter().any(|s| {
                matches!(
                    s,
                    StepTemplate::DeleteConflictingRows | StepTemplate::InsertMissingRows
                )
            })
    };
    options.sort_by_key(|(o, spec)| {
        (
            !o.applicable,
            o.loss_unknown,
            o.rows_lost,
            o.versions_lost,
            touches_rows(spec),
            o.risk,
        )
    });
    options.retain(|(o, _)| seen.insert(o.remedy));
    if let Some((first, _)) = options.first_mut().filter(|(o, _)| o.applicable) {
        first.recommended = true;
    }
    let chosen = match policy.remedy {
        Some(r) => {
            let (o, spec) = options.iter().find(|(o, _)| o.remedy == r).ok_or_else(|| {
                PlanError::NotApplicable {
                    remedy: r,
                    why: format!("playbook {} does not offer it", pb.id),
                }
            })?;
            if !o.applicable {
                return Err(PlanError::NotApplicable {
                    remedy: r,
                    why: o.why_not.clone().unwrap_or_default(),
                });
            }
            Some((o.clone(), *spec))
        }
        None => options
            .iter()
            .find(|(o, _)| o.applicable)
            .map(|(o, s)| (o.clone(), *s)),
    };
    let plan = match chosen {
        Some((option, spec)) => Some(build(d, spec, &option, policy)?),
        None => None,
    };
    Ok(PlanSet {
        schema: PLAN_SCHEMA,
        fingerprint: d.fingerprint.clone(),
        reverse_fingerprint: dual(d).map(|r| r.fingerprint.clone()),
        playbook: pb.id.clone(),
        playbook_title: pb.title.clone(),
        options: options.into_iter().map(|(o, _)| o).collect(),
        plan,
    })
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
    s
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

fn row_key(d: &Diagnosis, row: &Row) -> Vec<(String, Cell)> {
    d.row_key
        .iter()
        .filter_map(|c| row.get(c).map(|v| (c.clone(), v.clone())))
        .collect()
}

fn where_clause(key: &[(String, Cell)]) -> String {
    key.iter()
        .map(|(c, _)| format!("{} <=> ?", quote_ident(c)))
        .collect::<Vec<_>>()
        .join(" AND ")
}

fn table_sql(t: &TableRef) -> String {
    format!("{}.{}", quote_ident(&t.schema), quote_ident(&t.name))
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
    s.session.push("SET SESSION sql_log_bin = 0".into());
    // No ON DELETE CASCADE / SET NULL into child tables: the key comes straight back.
    s.session.push("SET SESSION foreign_key_checks = 0".into());
    for c in d.conflicts.iter().chain(&d.upcoming) {
        let Some(image) = &c.replica_row else {
            continue;
        };
        let key = row_key(d, image);
        s.statements.push(Statement {
            sql: format!(
                "DELETE FROM {} WHERE {}",
                table_sql(&d.table),
                where_clause(&key)
            ),
            params: key.iter().map(|(_, v)| v.clone()).collect(),
        });
        s.rows.push(RowChange {
            table: d.table.clone(),
            key,
            image: image.clone(),
        });
    }
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
            d.conflicts.len(),
            d.table,
            d.replica.endpoint
        ),
    );
    s.session.push("SET SESSION sql_log_bin = 0".into());
    // No ON DELETE CASCADE / SET NULL into child tables: the key comes straight back.
    s.session.push("SET SESSION foreign_key_checks = 0".into());
    for c in &d.conflicts {
        // The event's before image is the row as the transaction expects it; under MINIMAL
        // images it lacks columns, and the source's current row stands in.
        let full_width = c.source_row.as_ref().map(|r| r.columns.len());
        let image = match (&c.event_before, &c.source_row) {
            (Some(b), _) if Some(b.columns.len()) == full_width || c.source_row.is_none() => {
                Some(b.clone())
            }
            (_, Some(src)) => Some(src.clone()),
            _ if d.kind == ConflictKind::MissingOnDelete => Some(c.event_row.clone()),
            _ => None,
        };
        let Some(image) = image else { continue };
        let cols: Vec<String> = image.columns.iter().map(|c| quote_ident(c)).collect();
        s.statements.push(Statement {
            sql: format!(
                "INSERT INTO {} ({}) VALUES ({})",
                table_sql(&d.table),
                cols.join(", "),
                vec!["?"; cols.len()].join(", ")
            ),
            params: image.values.clone(),
        });
        s.rows.push(RowChange {
            table: d.table.clone(),
            key: row_key(d, &image),
            image,
        });
    }
    s.precondition = "each row is still absent (already there: done)".into();
    s.verification = "the rows exist; the transaction then applies over them".into();
    s
}

/// MariaDB: gtid_slave_pos with the failing GTID's domain advanced to it.
pub fn advanced_slave_pos(current: &str, gtid: &Gtid) -> Option<String> {
    let Gtid::Mariadb { domain, .. } = gtid else {
        return None;
    };
    let mut parts: Vec<String> = current
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .filter(|p| p.split('-').next().and_then(|d| d.parse::<u32>().ok()) != Some(*domain))
        .map(str::to_string)
        .collect();
    parts.push(gtid.to_string());
    parts.sort_by_key(|p| {
        p.split('-')
            .next()
            .and_then(|d| d.parse::<u32>().ok())
            .unwrap_or(0)
    });
    Some(parts.join(","))
}

fn skip(dir: &Direction<'_>) -> Step {
    let d = dir.d;
    let flavor = d.replica.flavor;
    let gtid = d.transaction.as_ref().and_then(|t| t.gtid.clone());
    let mut s = step(dir, StepTemplate::SkipTransaction, String::new());
    match (flavor.kind, gtid_skip(d), gtid) {
        (Kind::Mysql, true, Some(g)) => {
            s.description = format!(
                "skip transaction {g} on {} with an empty transaction of that GTID",
                d.replica.endpoint
            );
            s.statements = vec![
                Statement::plain(format!("SET GTID_NEXT = {}", quote_string(&g.to_string()))),
                Statement::plain("BEGIN"),
                Statement::plain("COMMIT"),
                Statement::plain("SET GTID_NEXT = 'AUTOMATIC'"),
            ];
            s.precondition = format!("{g} is not yet in gtid_executed (already there: done)");
            s.gtid = Some(g);
        }
        (Kind::Mariadb, true, Some(g)) => {
            let current = d.gtid_slave_pos.clone().unwrap_or_default();
            let next = advanced_slave_pos(&current, &g).unwrap_or_else(|| g.to_string());
            s.description = format!(
                "skip transaction {g} on {} by advancing gtid_slave_pos past it",
                d.replica.endpoint
            );
            s.statements = vec![Statement::plain(format!(
                "SET GLOBAL gtid_slave_pos = {}",
                quote_string(&next)
            ))];
            s.precondition = format!("gtid_slave_pos is still {current:?}");
            s.gtid = Some(g);
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
    s
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

fn build(
    d: &Diagnosis,
    spec: &RemedySpec,
    option: &RemedyOption,
    policy: &Policy,
) -> Result<Plan, PlanError> {
    let here = Direction {
        role: NodeRole::Replica,
        d,
    };
    let mut steps = Vec::new();
    let (mut winner, mut winner_endpoint) = (None, None);
    match dual(d) {
        None => {
            for t in &spec.steps {
                match t {
                    StepTemplate::StopApplier => steps.push(stop(&here)),
                    StepTemplate::DeleteConflictingRows if already_agree(d) => {
                        steps.push(skip(&here))
                    }
                    StepTemplate::DeleteConflictingRows => steps.push(delete_rows(&here)),
                    StepTemplate::InsertMissingRows => steps.push(insert_rows(&here)),
                    StepTemplate::SkipTransaction => steps.push(skip(&here)),
                    StepTemplate::StartApplier => steps.push(start(&here)),
                    StepTemplate::Verify => steps.push(verify(
                        &here,
                        d.source
                            .as_ref()
                            .map_or("the source", |s| s.endpoint.as_str()),
                    )),
                }
            }
        }
        Some(rev) => {
            let there = Direction {
                role: NodeRole::Source,
                d: rev,
            };
            // The loser's row is replaced by the winner's transaction; the winner skips the
            // loser's transaction. Both nodes end with the winner's version.
            let source_wins = match &policy.winner {
                Winner::Source => true,
                Winner::Replica => false,
                Winner::Newest(col) => newest_is_source(d, col)?,
            };
            let (loser, winner_dir) = if source_wins {
                (&here, &there)
            } else {
                (&there, &here)
            };
            if spec.remedy == RemedyId::Overwrite {
                winner = Some(policy.winner.clone());
                winner_endpoint = Some(winner_dir.d.replica.endpoint.clone());
            }
            for t in &spec.steps {
                match t {
                    StepTemplate::StopApplier => {
                        steps.push(stop(&here));
                        steps.push(stop(&there));
                    }
                    StepTemplate::DeleteConflictingRows if already_agree(loser.d) => {
                        steps.push(skip(loser))
                    }
                    StepTemplate::DeleteConflictingRows => steps.push(delete_rows(loser)),
                    StepTemplate::InsertMissingRows => steps.push(insert_rows(loser)),
                    StepTemplate::SkipTransaction if spec.remedy == RemedyId::Keep => {
                        steps.push(skip(&here));
                        steps.push(skip(&there));
                    }
                    StepTemplate::SkipTransaction => steps.push(skip(winner_dir)),
                    StepTemplate::StartApplier => {
                        steps.push(start(&here));
                        steps.push(start(&there));
                    }
                    StepTemplate::Verify => {
                        steps.push(verify(&here, &rev.replica.endpoint));
                        steps.push(verify(&there, &d.replica.endpoint));
                    }
                }
            }
        }
    }
    Ok(Plan {
        remedy: spec.remedy,
        winner,
        winner_endpoint,
        loses: option.loses.clone(),
        rows_lost: option.rows_lost,
        versions_lost: option.versions_lost,
        steps,
    })
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
