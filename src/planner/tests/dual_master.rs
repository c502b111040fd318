//! Dual-master pairs: one winner converging both nodes, unrelated reverse incidents kept
//! apart, two records sharing an AUTO_INCREMENT key (rekey and when it is refused), and
//! lifting read_only around exactly the steps it refuses.

use super::{Fx, KEY, dual, option, planned, sql_of, step_of};
use crate::diagnosis::*;
use crate::planner::plan::{NodeRole, PlanSet, Policy, Winner, plan};
use crate::planner::playbook::{self, RemedyId, StepTemplate};
use crate::value::Cell;

#[test]
fn dual_master_one_winner_converges() {
    for version in ["9.7.0", "10.11.6-MariaDB"] {
        let d = dual(version);
        for (winner, loser_node, winner_node) in [
            (Winner::Source, NodeRole::Replica, NodeRole::Source),
            (Winner::Replica, NodeRole::Source, NodeRole::Replica),
        ] {
            let ps = planned(
                &d,
                &Policy {
                    remedy: None,
                    winner,
                    ..Policy::default()
                },
            );
            let p = ps.plan.as_ref().unwrap();
            assert_eq!(p.remedy, RemedyId::Overwrite);
            let deletes: Vec<_> = p
                .steps
                .iter()
                .filter(|s| s.action() == StepTemplate::DeleteConflictingRows)
                .collect();
            let skips: Vec<_> = p
                .steps
                .iter()
                .filter(|s| s.action() == StepTemplate::SkipTransaction)
                .collect();
            assert_eq!(deletes.len(), 1, "only the loser's row is replaced");
            assert_eq!(deletes[0].node, loser_node);
            assert_eq!(skips.len(), 1);
            assert_eq!(skips[0].node, winner_node);
            assert_eq!(
                p.steps
                    .iter()
                    .filter(|s| s.action() == StepTemplate::StartApplier)
                    .count(),
                2
            );
        }
        // newest:COLUMN — compare exactly, not through floats.
        let mut d = dual(version);
        let c = &mut d.conflicts[0];
        c.replica_row.as_mut().unwrap().values[2] = Cell::Number("9007199254740993".into());
        c.source_row.as_mut().unwrap().values[2] = Cell::Number("9007199254740992".into());
        let ps = planned(
            &d,
            &Policy {
                remedy: None,
                winner: Winner::Newest("hits".into()),
                ..Policy::default()
            },
        );
        assert_eq!(
            ps.plan
                .as_ref()
                .unwrap()
                .winner_endpoint
                .as_ref()
                .map(|e| e.to_string())
                .as_deref(),
            Some("127.0.0.1:3307")
        );
    }
}

#[test]
fn unrelated_reverse_incident_is_not_merged() {
    let mut d = dual("9.7.0");
    if let Some(r) = d.reverse.as_mut() {
        r.same_key = false;
        r.diagnosis.as_mut().unwrap().conflicts[0].key =
            vec![("id".into(), Cell::Text("other".into()))];
    }
    let ps = planned(&d, &Policy::default());
    assert_eq!(ps.playbook, "dup-write-1062");
}

pub(super) fn two_records(version: &'static str) -> Diagnosis {
    let mut d = dual(version);
    let ak = AutoKey {
        column: "id".into(),
        invisible: false,
        next: 42,
        referenced_by: Vec::new(),
        unique_clashes: Vec::new(),
    };
    if let Some(r) = d.reverse.as_mut().and_then(|r| r.diagnosis.as_mut()) {
        r.auto_key = Some(AutoKey {
            next: 40,
            ..ak.clone()
        });
    }
    d.auto_key = Some(ak);
    d
}
#[test]
fn two_records_on_an_auto_increment_key_recommend_rekey() {
    for version in ["9.7.0", "10.11.6-MariaDB"] {
        let ps = planned(&two_records(version), &Policy::default());
        let first = &ps.options[0];
        assert_eq!(first.remedy, RemedyId::Rekey, "{version}: {:?}", ps.options);
        assert!(first.recommended && !first.loses_data(), "{first:?}");
        let overwrite = option(&ps, RemedyId::Overwrite);
        assert_eq!(
            overwrite.records_lost, 1,
            "overwrite would lose the loser's record"
        );
        let p = ps.plan.as_ref().unwrap();
        use StepTemplate::*;
        let actions: Vec<StepTemplate> = p.steps.iter().map(|s| s.action()).collect();
        assert_eq!(
            actions,
            [
                StopApplier,
                StopApplier,
                CopyUnderFreshKey,
                ReinsertUnderFreshKey,
                SkipTransaction,
                StartApplier,
                StartApplier,
                Verify,
                Verify
            ],
            "the winner gets its copy before the loser's record leaves its old key"
        );
        let (copy, moved) = (
            step_of(&ps, CopyUnderFreshKey),
            step_of(&ps, ReinsertUnderFreshKey),
        );
        assert_eq!(
            copy.node,
            NodeRole::Source,
            "the source wins: it gets a copy"
        );
        assert_eq!(moved.node, NodeRole::Replica, "the replica's record moves");
        for s in [copy, moved] {
            assert_eq!(s.session[0].sql, "SET SESSION sql_log_bin = 0", "{s:?}");
        }
        let sql: Vec<&str> = moved.statements.iter().map(|s| s.sql.as_str()).collect();
        assert_eq!(sql[0], "START TRANSACTION");
        assert!(
            sql[3].starts_with("DELETE FROM `zeus`.`xinyan_cache`"),
            "{sql:?}"
        );
        assert!(
            sql[4].starts_with("INSERT INTO `zeus`.`xinyan_cache`"),
            "{sql:?}"
        );
        assert!(
            sql[5].starts_with("SELECT") && sql[5].contains(" IN ("),
            "the moved record is read back before COMMIT: {sql:?}"
        );
        assert_eq!(sql[6], "COMMIT", "one transaction: {sql:?}");
        let fresh = |s: &crate::planner::plan::Step| {
            s.rows()
                .iter()
                .find(|r| r.action == crate::planner::plan::RowAction::Insert)
                .map(|r| r.key.clone())
        };
        assert_eq!(
            fresh(moved),
            Some(vec![("id".to_string(), Cell::Number("42".into()))]),
            "above both nodes' keys"
        );
        assert_eq!(fresh(copy), fresh(moved), "one fresh key on both nodes");
        assert_eq!(first.rows_journaled, 3, "{first:?}");
        assert!(
            p.advice[0].contains("auto_increment_offset"),
            "{:?}",
            p.advice
        );
        // Two versions of one record: rekey does not apply.
        let ps = planned(&dual(version), &Policy::default());
        assert!(!option(&ps, RemedyId::Rekey).applicable);
    }
}

fn fk(
    name: &str,
    columns: &[&str],
    referenced: &[&str],
    on_delete: ReferentialAction,
) -> ForeignKeyRef {
    ForeignKeyRef {
        name: name.into(),
        child: TableRef {
            schema: "zeus".into(),
            name: "xinyan_items".into(),
        },
        columns: columns.iter().map(|c| c.to_string()).collect(),
        referenced_columns: referenced.iter().map(|c| c.to_string()).collect(),
        on_delete,
        on_update: ReferentialAction::Restrict,
    }
}

fn reverse_mut(d: &mut Diagnosis) -> &mut Diagnosis {
    d.reverse.as_mut().unwrap().diagnosis.as_mut().unwrap()
}

#[test]
fn rekey_is_not_offered_when_a_foreign_key_references_the_key_on_either_node() {
    let cases = [
        fk(
            "fk_cascade",
            &["cache_id"],
            &["id"],
            ReferentialAction::Cascade,
        ),
        fk(
            "fk_restrict",
            &["cache_id"],
            &["id"],
            ReferentialAction::Restrict,
        ),
        fk(
            "fk_composite",
            &["cache_id", "region"],
            &["id", "region"],
            ReferentialAction::NoAction,
        ),
    ];
    for version in ["9.7.0", "10.11.6-MariaDB"] {
        for (on_replica, key) in [true, false]
            .into_iter()
            .flat_map(|n| cases.iter().map(move |k| (n, k)))
        {
            let mut d = two_records(version);
            let node = if on_replica {
                &mut d
            } else {
                reverse_mut(&mut d)
            };
            node.auto_key.as_mut().unwrap().referenced_by = vec![key.clone()];
            let ps = planned(&d, &Policy::default());
            let rekey = option(&ps, RemedyId::Rekey);
            assert!(!rekey.applicable && !rekey.recommended, "{rekey:?}");
            let why = rekey.why_not.as_deref().unwrap();
            assert!(
                why.contains("zeus.xinyan_items") && why.contains(&key.name),
                "names the child table and the constraint: {why}"
            );
            assert!(
                why.contains(&format!("ON DELETE {}", key.on_delete)),
                "{why}"
            );
            assert_ne!(ps.plan.as_ref().map(|p| p.remedy), Some(RemedyId::Rekey));
            let asked = Policy {
                remedy: Some(RemedyId::Rekey),
                ..Policy::default()
            };
            let refused = plan(&d, &playbook::load(None).unwrap(), &asked).unwrap_err();
            assert!(
                matches!(&refused, crate::planner::plan::PlanError::NotApplicable { remedy: RemedyId::Rekey, why: w } if w == why),
                "{refused:?}"
            );
        }
    }
}

#[test]
fn rekey_is_not_offered_when_the_records_share_another_unique_value() {
    for version in ["9.7.0", "10.11.6-MariaDB"] {
        let mut d = two_records(version);
        reverse_mut(&mut d)
            .auto_key
            .as_mut()
            .unwrap()
            .unique_clashes = vec![UniqueClash {
            key: "uk_email".into(),
            values: vec![("email".into(), Cell::Text("a@example.com".into()))],
            holder: vec![("id".into(), Cell::Text(KEY.into()))],
        }];
        let ps = planned(&d, &Policy::default());
        let rekey = option(&ps, RemedyId::Rekey);
        assert!(!rekey.applicable, "{rekey:?}");
        let why = rekey.why_not.as_deref().unwrap();
        assert!(
            why.contains("uk_email") && why.contains("a@example.com"),
            "{why}"
        );
        assert!(why.contains("127.0.0.1:3306"), "names the node: {why}");
    }
}

#[test]
fn a_rekey_resumed_reuses_its_fresh_key_and_stays_rekey_once_the_old_row_is_gone() {
    for version in ["9.7.0", "10.11.6-MariaDB"] {
        let d = two_records(version);
        // An interrupted run copied the replica's record to the winner under key 50.
        let mut earlier = d.conflicts[0].replica_row.clone().unwrap();
        earlier.values[0] = Cell::Number("50".into());
        let resumed = Policy {
            rekeyed: vec![earlier],
            ..Policy::default()
        };
        let ps = planned(&d, &resumed);
        let moved = step_of(&ps, StepTemplate::ReinsertUnderFreshKey);
        let copy = step_of(&ps, StepTemplate::CopyUnderFreshKey);
        for s in [moved, copy] {
            let insert = s
                .rows()
                .iter()
                .find(|r| r.action == crate::planner::plan::RowAction::Insert);
            assert_eq!(insert.unwrap().key[0].1, Cell::Number("50".into()), "{s:?}");
        }
        // ...and moved it too: the replica no longer conflicts, the rows no longer show two
        // records, but the journal does: rekey still applies, with nothing left to write.
        let mut gone = two_records(version);
        gone.conflicts.clear();
        let asked = Policy {
            remedy: Some(RemedyId::Rekey),
            ..resumed
        };
        let ps = planned(&gone, &asked);
        let p = ps.plan.as_ref().unwrap();
        assert_eq!(p.remedy, RemedyId::Rekey);
        assert!(p.steps.iter().all(|s| s.rows().is_empty()), "{p:?}");
        assert!(
            !p.steps
                .iter()
                .any(|s| s.action() == StepTemplate::ReinsertUnderFreshKey),
            "{p:?}"
        );
        assert!(
            p.steps
                .iter()
                .any(|s| s.action() == StepTemplate::SkipTransaction)
        );
    }
}

#[test]
fn lift_read_only_wraps_exactly_the_steps_read_only_refuses() {
    let actions = |ps: &PlanSet| -> Vec<StepTemplate> {
        ps.plan
            .as_ref()
            .unwrap()
            .steps
            .iter()
            .map(|s| s.action())
            .collect()
    };
    let lift = Policy {
        lift_read_only: true,
        ..Policy::default()
    };
    let mut d = Fx::new("9.7.0").build(3307, 3306);
    d.replica.read_only = ReadOnly::SuperReadOnly;
    let ps = planned(&d, &lift);
    use StepTemplate::*;
    assert_eq!(
        actions(&ps),
        vec![
            StopApplier,
            LiftReadOnly,
            DeleteConflictingRows,
            RestoreReadOnly,
            StartApplier,
            Verify
        ]
    );
    assert_eq!(
        sql_of(&ps, LiftReadOnly),
        vec!["SET GLOBAL read_only = OFF"]
    );
    assert_eq!(
        sql_of(&ps, RestoreReadOnly),
        vec!["SET GLOBAL super_read_only = ON"]
    );
    assert!(!actions(&planned(&d, &Policy::default())).contains(&LiftReadOnly));
    // MySQL lets an empty GTID transaction through super_read_only: nothing to lift.
    let inject = Policy {
        remedy: Some(RemedyId::InjectGtid),
        ..lift.clone()
    };
    assert!(!actions(&planned(&d, &inject)).contains(&LiftReadOnly));
    // MariaDB refuses SET GLOBAL gtid_slave_pos under read_only.
    let mut d = Fx::new("10.11.6-MariaDB").build(3307, 3306);
    d.replica.read_only = ReadOnly::ReadOnly;
    assert_eq!(
        actions(&planned(&d, &inject)),
        vec![
            StopApplier,
            LiftReadOnly,
            SkipTransaction,
            RestoreReadOnly,
            StartApplier,
            Verify
        ]
    );
    assert_eq!(
        sql_of(&planned(&d, &inject), RestoreReadOnly),
        vec!["SET GLOBAL read_only = ON"]
    );
}
