//! What `replmend watch` may resolve on its own: a policy file (JSON, in the playbooks' style)
//! and the decision it leads to for one diagnosed incident. Pure: the planner's ranked
//! options in, a decision out.
//!
//! Built in, always first: a skip that loses nothing (the conflicting rows are identical, or
//! every row a delete wanted gone is already gone) touches no row and is taken. Anything else
//! needs a rule that names the table and the remedy; without one the watcher alerts and waits
//! for a human.

use std::path::Path;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::diagnosis::{Diagnosis, TableRef};
use crate::planner::{PlanSet, Policy, RemedyId, Winner};
use crate::vocab::Endpoint;

pub const POLICY_SCHEMA: &str = "replmend.watch-policy/1";

#[derive(Debug, Error)]
#[error("watch policy {file}: {reason}")]
pub struct PolicyError {
    pub file: String,
    pub reason: String,
}

/// The policy file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WatchPolicy {
    #[serde(default)]
    pub schema: Option<String>,
    /// The built-in lossless skip (default true); false: every incident needs a rule.
    #[serde(default = "yes")]
    pub lossless_skip: bool,
    /// Turn read_only / super_read_only off on a node just for replmend's own writes (as
    /// `repair --lift-read-only`), for every remedy; a rule may say otherwise. Replicas run
    /// read-only, and a MariaDB skip by GTID is a write there.
    #[serde(default)]
    pub lift_read_only: bool,
    /// At most this many automatic actions per replica in any minute; past it the replica's
    /// incidents wait for a human until the policy is reloaded (SIGHUP) or the watcher
    /// restarts: a stream of conflicts that fast means something upstream is wrong.
    #[serde(default)]
    pub max_actions_per_minute: Option<u32>,
    /// Tried in order; the first whose `match` fits the incident decides.
    #[serde(default)]
    pub rules: Vec<Rule>,
}

fn yes() -> bool {
    true
}

impl Default for WatchPolicy {
    fn default() -> Self {
        WatchPolicy {
            schema: None,
            lossless_skip: true,
            lift_read_only: false,
            max_actions_per_minute: None,
            rules: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    #[serde(default, rename = "match")]
    pub matches: Match,
    /// Remedies this rule allows, most preferred first.
    pub remedies: Vec<RemedyName>,
    /// Dual-master: whose version both nodes keep (source, replica, newest:COLUMN).
    #[serde(default)]
    pub winner: Option<String>,
    /// Turn read_only off on a node just for replmend's writes (default: the policy's).
    #[serde(default)]
    pub lift_read_only: Option<bool>,
    /// Also a remedy that loses rows or versions (as `repair --allow-data-loss`); a cache
    /// table's rule, never a default.
    #[serde(default)]
    pub allow_data_loss: bool,
}

/// `tables`: `db.table`, `db.*` or `*`; `errnos`: empty means any; `replicas`: the
/// replicas (`host:port`, as watched) the rule is for, empty means any.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Match {
    #[serde(default)]
    pub tables: Vec<String>,
    #[serde(default)]
    pub errnos: Vec<u32>,
    #[serde(default)]
    pub replicas: Vec<String>,
}

/// A remedy as a policy file names it (the CLI's spelling).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemedyName(pub RemedyId);

impl<'de> Deserialize<'de> for RemedyName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map(RemedyName).map_err(serde::de::Error::custom)
    }
}

impl Match {
    fn table_fits(pattern: &str, t: &TableRef) -> bool {
        match pattern.split_once('.') {
            _ if pattern == "*" => true,
            Some((db, "*")) => db == t.schema,
            Some((db, name)) => db == t.schema && name == t.name,
            None => false,
        }
    }

    pub fn fits(&self, table: &TableRef, errno: u32, replica: &Endpoint) -> bool {
        (self.tables.is_empty() || self.tables.iter().any(|p| Match::table_fits(p, table)))
            && (self.errnos.is_empty() || self.errnos.contains(&errno))
            && (self.replicas.is_empty()
                || self
                    .replicas
                    .iter()
                    .any(|r| Endpoint::parse(r).is_some_and(|e| e == *replica)))
    }
}

/// `*`, `db.*` or `db.table`: a star anywhere else would silently match nothing.
fn table_pattern_ok(t: &str) -> bool {
    match t.split_once('.') {
        _ if t == "*" => true,
        Some((db, name)) => {
            !db.is_empty()
                && !db.contains('*')
                && !name.is_empty()
                && (name == "*" || !name.contains('*'))
        }
        None => false,
    }
}

impl WatchPolicy {
    pub fn parse(file: &str, text: &str) -> Result<WatchPolicy, PolicyError> {
        let bad = |reason: String| PolicyError {
            file: file.to_string(),
            reason,
        };
        let mut de = serde_json::Deserializer::from_str(text);
        let p: WatchPolicy = serde_path_to_error::deserialize(&mut de)
            .map_err(|e| bad(format!("field {}: {}", e.path(), e.inner())))?;
        if let Some(s) = p.schema.as_deref().filter(|s| *s != POLICY_SCHEMA) {
            return Err(bad(format!("schema {s:?} is not {POLICY_SCHEMA:?}")));
        }
        for (i, r) in p.rules.iter().enumerate() {
            if r.remedies.is_empty() {
                return Err(bad(format!("rules[{i}].remedies is empty")));
            }
            if let Some(w) = &r.winner {
                w.parse::<Winner>()
                    .map_err(|e| bad(format!("rules[{i}].winner: {e}")))?;
            }
            if let Some(e) = r
                .matches
                .replicas
                .iter()
                .find(|e| Endpoint::parse(e).is_none())
            {
                return Err(bad(format!(
                    "rules[{i}].match.replicas: {e:?} is not host:port"
                )));
            }
            if let Some(t) = r.matches.tables.iter().find(|t| !table_pattern_ok(t)) {
                return Err(bad(format!(
                    "rules[{i}].match.tables: {t:?} is not db.table, db.* or *"
                )));
            }
        }
        Ok(p)
    }

    pub fn load(path: &Path) -> Result<WatchPolicy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError {
            file: path.display().to_string(),
            reason: e.to_string(),
        })?;
        WatchPolicy::parse(&path.display().to_string(), &text)
    }
}

/// What the watcher does about one incident.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Decision {
    /// Repair with this remedy, through the same session as `repair --yes`.
    Repair {
        remedy: RemedyId,
        /// Which policy allowed it, in words.
        rule: String,
        #[serde(skip)]
        policy: Policy,
        #[serde(skip)]
        allow_data_loss: bool,
    },
    /// Leave it alone and wait for a human.
    Wait { reason: String },
}

/// Remedies that change no row: a skip of the failing transaction.
fn skips(r: RemedyId) -> bool {
    matches!(r, RemedyId::Skip | RemedyId::InjectGtid | RemedyId::Keep)
}

/// Decides from the planner's options. `plan_for` plans under a policy (the planner, in the
/// caller), so a rule's winner is judged on the plan it would really run.
pub fn decide(
    d: &Diagnosis,
    default_plan: &PlanSet,
    policy: &WatchPolicy,
    plan_for: &dyn Fn(&Policy) -> Option<PlanSet>,
) -> Decision {
    let recommended = default_plan.options.iter().find(|o| o.recommended);
    if policy.lossless_skip
        && let Some(o) = recommended.filter(|o| skips(o.remedy) && !o.loses_data())
    {
        return Decision::Repair {
            remedy: o.remedy,
            rule: "built-in: a skip that loses nothing".into(),
            policy: Policy {
                remedy: Some(o.remedy),
                lift_read_only: policy.lift_read_only,
                ..Policy::default()
            },
            allow_data_loss: false,
        };
    }
    let Some((i, rule)) = policy
        .rules
        .iter()
        .enumerate()
        .find(|(_, r)| r.matches.fits(&d.table, d.error.errno, &d.replica.endpoint))
    else {
        return Decision::Wait {
            reason: wait_reason(
                recommended,
                "no rule of the policy covers this table and error",
            ),
        };
    };
    let winner = rule
        .winner
        .as_deref()
        .map_or(Winner::Source, |w| w.parse().unwrap_or(Winner::Source));
    let base = Policy {
        winner,
        lift_read_only: rule.lift_read_only.unwrap_or(policy.lift_read_only),
        ..Policy::default()
    };
    let Some(ps) = plan_for(&base) else {
        return Decision::Wait {
            reason: format!("rules[{i}]: no plan can be made with its winner"),
        };
    };
    for RemedyName(r) in &rule.remedies {
        let Some(o) = ps.options.iter().find(|o| o.remedy == *r && o.applicable) else {
            continue;
        };
        if o.loses_data() && !rule.allow_data_loss {
            continue;
        }
        return Decision::Repair {
            remedy: *r,
            rule: format!("rules[{i}] allows {r} on {}", d.table),
            policy: Policy {
                remedy: Some(*r),
                ..base
            },
            allow_data_loss: rule.allow_data_loss,
        };
    }
    let names: Vec<String> = rule.remedies.iter().map(|r| r.0.to_string()).collect();
    Decision::Wait {
        reason: wait_reason(
            recommended,
            &format!(
                "rules[{i}] allows {} but none applies here without losing data",
                names.join(", ")
            ),
        ),
    }
}

fn wait_reason(recommended: Option<&crate::planner::plan::RemedyOption>, why: &str) -> String {
    match recommended {
        Some(o) => format!(
            "{why}; the recommended remedy is {} (loses {}): `replmend repair` to choose",
            o.remedy, o.loses
        ),
        None => format!("{why}; no remedy applies: `replmend diagnose` to look"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_policy_and_names_bad_fields() {
        let p = WatchPolicy::parse(
            "p.json",
            r#"{"schema": "replmend.watch-policy/1", "rules": [
                {"match": {"tables": ["shop.*", "zeus.cache"], "errnos": [1062]},
                 "remedies": ["overwrite", "rekey"], "winner": "newest:updated_at"}]}"#,
        )
        .unwrap();
        assert!(p.lossless_skip);
        assert_eq!(p.rules[0].remedies[1], RemedyName(RemedyId::Rekey));
        let err = |t: &str| WatchPolicy::parse("p.json", t).unwrap_err().to_string();
        assert!(err(r#"{"rules": [{"remedies": ["nuke"]}]}"#).contains("rules[0].remedies"));
        assert!(err(r#"{"rules": [{"remedies": []}]}"#).contains("remedies is empty"));
        assert!(err(r#"{"rules": [{"remedies": ["skip"], "winner": "x"}]}"#).contains("winner"));
        assert!(
            err(r#"{"rules": [{"remedies": ["skip"], "match": {"tables": ["t"]}}]}"#)
                .contains("not db.table")
        );
        for pattern in ["*.orders", "shop.ord*", ".t", "shop."] {
            let text = format!(
                r#"{{"rules": [{{"remedies": ["skip"], "match": {{"tables": ["{pattern}"]}}}}]}}"#
            );
            assert!(err(&text).contains("not db.table"), "{pattern}");
        }
        assert!(err(r#"{"rulez": []}"#).contains("rulez"));
        assert!(err(r#"{"schema": "other/1"}"#).contains("schema"));
    }

    #[test]
    fn the_documented_example_parses() {
        let text = include_str!("../../docs/watch-policy.example.json");
        let p = WatchPolicy::parse("docs/watch-policy.example.json", text).unwrap();
        assert_eq!(p.rules.len(), 3);
        assert!(p.lift_read_only);
    }

    #[test]
    fn table_patterns() {
        let t = TableRef {
            schema: "shop".into(),
            name: "orders".into(),
        };
        let m = |tables: &[&str], errnos: &[u32]| Match {
            tables: tables.iter().map(|s| s.to_string()).collect(),
            errnos: errnos.to_vec(),
            replicas: Vec::new(),
        };
        let r = Endpoint::new("127.0.0.1", 3307);
        assert!(m(&[], &[]).fits(&t, 1062, &r));
        assert!(m(&["*"], &[1062]).fits(&t, 1062, &r));
        assert!(m(&["shop.*"], &[]).fits(&t, 1032, &r));
        assert!(m(&["shop.orders"], &[]).fits(&t, 1032, &r));
        assert!(!m(&["shop.items"], &[]).fits(&t, 1032, &r));
        assert!(!m(&["shopx.*"], &[]).fits(&t, 1032, &r));
        assert!(!m(&["shop.*"], &[1032]).fits(&t, 1062, &r));
        // A rule for some replicas only.
        let only = |replicas: &[&str]| Match {
            replicas: replicas.iter().map(|s| s.to_string()).collect(),
            ..m(&[], &[])
        };
        assert!(only(&["127.0.0.1:3307"]).fits(&t, 1062, &r));
        assert!(!only(&["127.0.0.1:3308", "db9:3307"]).fits(&t, 1062, &r));
        let bad = WatchPolicy::parse(
            "p.json",
            r#"{"rules": [{"match": {"replicas": ["db2"]}, "remedies": ["skip"]}]}"#,
        );
        assert!(bad.unwrap_err().to_string().contains("is not host:port"));
    }

    fn decided(fx: &crate::planner::tests::Fx, policy: &str) -> Decision {
        let d = fx.build(3307, 3306);
        let pbs = crate::planner::playbook::load(None).unwrap();
        let plan_for = |p: &Policy| crate::planner::plan(&d, &pbs, p).ok();
        let ps = plan_for(&Policy::default()).unwrap();
        decide(
            &d,
            &ps,
            &WatchPolicy::parse("p.json", policy).unwrap(),
            &plan_for,
        )
    }

    fn remedy(d: &Decision) -> Option<RemedyId> {
        match d {
            Decision::Repair { remedy, .. } => Some(*remedy),
            Decision::Wait { .. } => None,
        }
    }

    #[test]
    fn lossless_skips_are_taken_and_anything_else_waits_for_a_rule() {
        for version in ["10.11.6-MariaDB", "8.0.36"] {
            let mut fx = crate::planner::tests::Fx::new(version);
            fx.identical = true;
            assert_eq!(remedy(&decided(&fx, "{}")), Some(RemedyId::InjectGtid));
            // Switched off: even a lossless skip needs a rule.
            assert_eq!(remedy(&decided(&fx, r#"{"lossless_skip": false}"#)), None);
            fx.identical = false;
            let waits = decided(&fx, "{}");
            assert!(
                matches!(&waits, Decision::Wait { reason } if reason.contains("no rule")),
                "{waits:?}"
            );
            let other_table =
                r#"{"rules": [{"match": {"tables": ["shop.*"]}, "remedies": ["overwrite"]}]}"#;
            assert_eq!(remedy(&decided(&fx, other_table)), None);
            let this_table = r#"{"rules": [{"match": {"tables": ["zeus.*"], "errnos": [1062]}, "remedies": ["overwrite"]}]}"#;
            assert_eq!(remedy(&decided(&fx, this_table)), Some(RemedyId::Overwrite));
            // Skipping differing rows loses the source's version: only with allow_data_loss.
            let lossy = r#"{"rules": [{"remedies": ["inject-gtid"]}]}"#;
            assert_eq!(remedy(&decided(&fx, lossy)), None);
            let allowed = r#"{"rules": [{"remedies": ["inject-gtid"], "allow_data_loss": true}]}"#;
            assert_eq!(remedy(&decided(&fx, allowed)), Some(RemedyId::InjectGtid));
        }
    }

    #[test]
    fn a_delete_of_rows_already_gone_is_skipped() {
        let mut fx = crate::planner::tests::Fx::new("10.11.6-MariaDB");
        fx.kind = crate::vocab::ConflictKind::MissingOnDelete;
        assert_eq!(remedy(&decided(&fx, "{}")), Some(RemedyId::InjectGtid));
        fx.rows_total = 3;
        assert_eq!(remedy(&decided(&fx, "{}")), None);
    }
}
