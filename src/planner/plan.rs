//! The planner: (diagnosis, playbooks, policy) → ranked remedies and, for each applicable one,
//! an ordered plan of steps with the exact SQL per node. What a remedy loses is computed from
//! its plan's steps (what they skip, delete, journal and re-insert), never from prose. Pure:
//! no I/O.
//!
//! This file holds the model (`Plan`, `Step`, `RemedyOption`, `Policy`, …) and `plan()`, which
//! ranks the options. The rest of the planner is beside it: `facts` (the playbook conditions and
//! why an option does not apply), `steps` (the step builders), `rows` (the SQL of a row step)
//! and `losses` (what a plan loses).

use serde::Serialize;
use thiserror::Error;

pub use super::facts::choose_playbook;
use super::facts::{Facts, dual, facts, structural_why_not, why_not};
use super::losses::losses;
use super::playbook::{Playbook, RemedyId, RemedySpec, Risk, StepTemplate};
use super::steps::{
    add_read_only_steps, auto_increment_advice, dual_steps, narrow_stops, retention_warnings,
    single_steps, source_wins,
};
use crate::diagnosis::{Diagnosis, ReadOnly, Row};
use crate::flavor::{Flavor, Procedure, Thread};
use crate::sql::Statement;
use crate::value::Cell;
use crate::vocab::{Endpoint, Gtid};

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
    pub table: crate::vocab::TableRef,
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

/// What a step does, with the data only that kind of step has.
#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    /// Stops replication on the channel: `threads`, the threads the statement stops.
    Stop {
        threads: Thread,
    },
    /// Skips the failing transaction: by recording `gtid` as executed, or (None) with the
    /// skip counter. `loss`: what the node then never applies.
    Skip {
        gtid: Option<Gtid>,
        loss: StepLoss,
    },
    /// Deletes and inserts `rows` in one transaction. `action`: which row step (one of the
    /// templates whose `writes_rows()` holds).
    Rows {
        action: StepTemplate,
        rows: Vec<RowChange>,
    },
    /// Turns read_only off; `state`: the node's read-only state before replmend lifted it.
    LiftReadOnly {
        state: ReadOnly,
    },
    /// Turns read_only back on to `state`.
    RestoreReadOnly {
        state: ReadOnly,
    },
    Start,
    Verify,
}

impl StepKind {
    /// A row step of `action` (a template that writes rows).
    pub fn rows(action: StepTemplate, rows: Vec<RowChange>) -> StepKind {
        debug_assert!(action.writes_rows(), "{action:?} is not a row step");
        StepKind::Rows { action, rows }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub node: NodeRole,
    pub endpoint: Endpoint,
    pub flavor: Flavor,
    pub channel: String,
    /// What the step does, and the data only that kind of step has; its action is `action()`.
    pub kind: StepKind,
    pub description: String,
    /// Session settings, run first on the step's own connection.
    pub session: Vec<Statement>,
    /// Exactly what the applier sends, in order, parameters included.
    pub statements: Vec<Statement>,
    /// What is checked first; a step whose effect is already there is skipped (re-runs converge).
    pub precondition: String,
    pub verification: String,
    /// The managed service's procedure the step's statement calls instead of the plain
    /// statement the account may not run (None: plain SQL).
    pub calls: Option<Procedure>,
}

/// The plan's JSON (`steps[]` in docs/json.md): `rows` on every step (empty but on row
/// steps), `gtid` null but on a skip by GTID, `read_only` only on lift/restore steps.
impl Serialize for Step {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let read_only = self.read_only();
        let fields = 12 + usize::from(read_only.is_some()) + usize::from(self.calls.is_some());
        let mut st = s.serialize_struct("Step", fields)?;
        st.serialize_field("node", &self.node)?;
        st.serialize_field("endpoint", &self.endpoint)?;
        st.serialize_field("flavor", &self.flavor)?;
        st.serialize_field("channel", &self.channel)?;
        st.serialize_field("action", &self.action())?;
        st.serialize_field("description", &self.description)?;
        st.serialize_field("session", &self.session)?;
        st.serialize_field("statements", &self.statements)?;
        st.serialize_field("rows", self.rows())?;
        st.serialize_field("precondition", &self.precondition)?;
        st.serialize_field("verification", &self.verification)?;
        st.serialize_field("gtid", &self.gtid())?;
        match read_only {
            Some(state) => st.serialize_field("read_only", &state)?,
            None => st.skip_field("read_only")?,
        }
        match self.calls {
            Some(p) => st.serialize_field("calls", &p.to_string())?,
            None => st.skip_field("calls")?,
        }
        st.end()
    }
}

impl Step {
    /// The step's template (its `action` in the plan's JSON).
    pub fn action(&self) -> StepTemplate {
        match &self.kind {
            StepKind::Stop { .. } => StepTemplate::StopApplier,
            StepKind::Skip { .. } => StepTemplate::SkipTransaction,
            StepKind::Rows { action, .. } => *action,
            StepKind::LiftReadOnly { .. } => StepTemplate::LiftReadOnly,
            StepKind::RestoreReadOnly { .. } => StepTemplate::RestoreReadOnly,
            StepKind::Start => StepTemplate::StartApplier,
            StepKind::Verify => StepTemplate::Verify,
        }
    }

    /// The rows a row step changes (none for other steps).
    pub fn rows(&self) -> &[RowChange] {
        match &self.kind {
            StepKind::Rows { rows, .. } => rows,
            _ => &[],
        }
    }

    /// The GTID a skip step records as executed.
    pub fn gtid(&self) -> Option<&Gtid> {
        match &self.kind {
            StepKind::Skip { gtid, .. } => gtid.as_ref(),
            _ => None,
        }
    }

    /// Lift/restore steps: the node's read-only state before replmend lifted it.
    pub fn read_only(&self) -> Option<ReadOnly> {
        match self.kind {
            StepKind::LiftReadOnly { state } | StepKind::RestoreReadOnly { state } => Some(state),
            _ => None,
        }
    }

    /// A row step whose writes go to the node's binary log with its own GTID (the session
    /// cannot turn it off: a managed service): an errant transaction there.
    pub fn logs_errant_rows(&self) -> bool {
        matches!(self.kind, StepKind::Rows { .. })
            && !self.statements.is_empty()
            && !self.session.iter().any(crate::sql::sets_sql_log_bin)
    }

    /// Steps whose statements a read-only node refuses (error 1290) unless the account may
    /// write there: row writes everywhere, and MariaDB's SET GLOBAL gtid_slave_pos.
    pub fn blocked_by_read_only(&self) -> bool {
        match &self.kind {
            StepKind::Rows { .. } => !self.statements.is_empty(),
            StepKind::Skip { gtid, .. } => {
                self.flavor.gtid_skip_blocked_by_read_only(gtid.is_some())
            }
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
    /// Its plan writes rows with the binary log on where it cannot be turned off: an errant
    /// GTID on that node (the plan's consequence).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub leaves_errant_gtid: bool,
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
    pub winner_endpoint: Option<Endpoint>,
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
    /// What the plan does beyond what it loses, that the DBA must accept and follow up: rows
    /// changed with the binary log on where it cannot be turned off (errant GTIDs).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub consequences: Vec<String>,
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
            consequences: Vec::new(),
        }
    }

    /// Every node the plan touches, in first-use order.
    pub fn endpoints(&self) -> Vec<&Endpoint> {
        let mut out: Vec<&Endpoint> = Vec::new();
        for s in &self.steps {
            if !out.contains(&&s.endpoint) {
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
        leaves_errant_gtid: false,
    };
    let plan = built.ok().map(|mut p| {
        let l = losses(&p, f.two_records);
        (o.rows_lost, o.versions_lost, o.records_lost) = (l.rows, l.versions, l.records);
        (o.loss_unknown, o.rows_journaled) = (l.unknown, l.journaled);
        o.loses = l.text();
        (p.rows_lost, p.versions_lost, p.records_lost) = (l.rows, l.versions, l.records);
        p.loss_unknown = l.unknown;
        p.loses = o.loses.clone();
        o.leaves_errant_gtid = !p.consequences.is_empty();
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
    let consequences = super::logged::consequences(&steps, d.replica.capabilities.provider);
    advice.extend(retention_warnings(d));
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
        consequences,
    }))
}
