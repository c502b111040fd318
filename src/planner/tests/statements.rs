//! The SQL each step runs, per class, flavor and GTID mode: skips and GTID injection,
//! overwrites and inserts with the binary log off, and the golden renderings of the seed plans.

use super::{Fx, KEY, dual, option, planned, sql_of};
use crate::diagnosis::*;
use crate::flavor::advanced_slave_pos;
use crate::planner::plan::{Policy, plan};
use crate::planner::playbook::{self, RemedyId, StepTemplate};
use crate::value::Cell;
use crate::vocab::Gtid;

#[test]
fn skip_statements_per_flavor_and_gtid_mode() {
    let skip = Policy {
        remedy: Some(RemedyId::Skip),
        ..Policy::default()
    };
    for (version, stop, counter) in [
        (
            "5.7.44-log",
            "STOP SLAVE",
            "SET GLOBAL sql_slave_skip_counter = 1",
        ),
        (
            "8.0.21",
            "STOP SLAVE",
            "SET GLOBAL sql_slave_skip_counter = 1",
        ),
        (
            "8.0.30",
            "STOP REPLICA",
            "SET GLOBAL sql_replica_skip_counter = 1",
        ),
        (
            "8.4.3",
            "STOP REPLICA",
            "SET GLOBAL sql_replica_skip_counter = 1",
        ),
        (
            "9.7.0",
            "STOP REPLICA",
            "SET GLOBAL sql_replica_skip_counter = 1",
        ),
        (
            "10.11.6-MariaDB",
            "STOP SLAVE",
            "SET GLOBAL sql_slave_skip_counter = 1",
        ),
        (
            "11.4.2-MariaDB",
            "STOP SLAVE",
            "SET GLOBAL sql_slave_skip_counter = 1",
        ),
    ] {
        let mut fx = Fx::new(version);
        fx.gtid_on = version.contains("MariaDB");
        fx.positioning = false;
        let ps = planned(&fx.build(3307, 3306), &skip);
        assert_eq!(
            sql_of(&ps, StepTemplate::StopApplier),
            vec![stop.to_string()],
            "{version}"
        );
        assert_eq!(
            sql_of(&ps, StepTemplate::SkipTransaction),
            vec![counter.to_string()],
            "{version}"
        );
    }
}

#[test]
fn gtid_injection_per_flavor() {
    let inject = Policy {
        remedy: Some(RemedyId::InjectGtid),
        ..Policy::default()
    };
    let ps = planned(&Fx::new("8.0.36").build(3307, 3306), &inject);
    assert_eq!(
        sql_of(&ps, StepTemplate::SkipTransaction),
        vec![
            "SET GTID_NEXT = '3e11fa47-71ca-11e1-9e33-c80aa9429562:23'",
            "BEGIN",
            "COMMIT",
            "SET GTID_NEXT = 'AUTOMATIC'"
        ]
    );
    // MySQL with GTIDs refuses the skip counter.
    let skip = plan(
        &Fx::new("8.0.36").build(3307, 3306),
        &playbook::load(None).unwrap(),
        &Policy {
            remedy: Some(RemedyId::Skip),
            ..Policy::default()
        },
    );
    assert!(skip.is_err());
    let ps = planned(&Fx::new("10.11.6-MariaDB").build(3307, 3306), &inject);
    assert_eq!(
        sql_of(&ps, StepTemplate::SkipTransaction),
        vec!["SET GLOBAL gtid_slave_pos = '1-1-6,2-2-9'"]
    );
    assert_eq!(
        advanced_slave_pos("0-1-100,1-1-5", &Gtid::parse("1-1-6").unwrap()).unwrap(),
        "0-1-100,1-1-6"
    );
    // Without the current position, a MariaDB GTID skip would erase other domains: refused.
    let mut d = Fx::new("10.11.6-MariaDB").build(3307, 3306);
    d.gtid_slave_pos = None;
    assert!(!option(&planned(&d, &Policy::default()), RemedyId::InjectGtid).applicable);
}
// The source is down: no transaction, no rows compared, but the failed worker's
// APPLYING_TRANSACTION names the GTID. inject-gtid is planned with it, and what it loses is
// unknown (so it needs the data-loss confirmation), never "nothing".
#[test]
fn a_gtid_from_the_replicas_status_is_enough_to_inject_it() {
    let mut fx = Fx::new("9.7.4");
    fx.transaction_known = false;
    fx.gtid_from_status = true;
    let mut d = fx.build(3307, 3306);
    d.source = None;
    d.conflicts.clear();
    let inject = Policy {
        remedy: Some(RemedyId::InjectGtid),
        ..Policy::default()
    };
    let ps = planned(&d, &inject);
    let o = option(&ps, RemedyId::InjectGtid);
    assert!(o.applicable, "{o:?}");
    assert!(o.loss_unknown && o.loses_data(), "{o:?}");
    assert!(o.loses.contains("not compared"), "{}", o.loses);
    let plan = ps.plan.as_ref().unwrap();
    assert!(plan.loss_unknown);
    let skip = plan
        .steps
        .iter()
        .find(|s| s.action() == StepTemplate::SkipTransaction)
        .unwrap();
    let gtid = "3e11fa47-71ca-11e1-9e33-c80aa9429562:23";
    assert_eq!(skip.gtid().map(|g| g.to_string()).as_deref(), Some(gtid));
    assert!(
        skip.statements.iter().any(|s| s.sql.contains(gtid)),
        "{:?}",
        skip.statements
    );
    // Overwrite needs the source's rows: not offered.
    assert!(!option(&ps, RemedyId::Overwrite).applicable);
}

#[test]
fn overwrite_binds_values_and_keeps_binlog_off() {
    let mut d = Fx::new("8.0.36").build(3307, 3306);
    d.table.name = "we`ird tab'le".into();
    d.row_key = vec!["i`d".into()];
    let evil = "x'); DROP TABLE t; -- `";
    for c in &mut d.conflicts {
        for r in [
            c.replica_row.as_mut().unwrap(),
            c.source_row.as_mut().unwrap(),
        ] {
            r.columns[0] = "i`d".into();
            r.values[0] = Cell::Text(evil.into());
        }
    }
    let ps = planned(&d, &Policy::default());
    let step = ps
        .plan
        .as_ref()
        .unwrap()
        .steps
        .iter()
        .find(|s| s.action() == StepTemplate::DeleteConflictingRows)
        .unwrap();
    assert_eq!(
        step.session
            .iter()
            .map(|s| s.sql.as_str())
            .collect::<Vec<_>>(),
        vec![
            "SET SESSION sql_log_bin = 0",
            "SET SESSION foreign_key_checks = 0",
            "SET SESSION sql_mode = CONCAT_WS(',', NULLIF(@@SESSION.sql_mode, ''), 'NO_AUTO_VALUE_ON_ZERO')"
        ]
    );
    let sqls: Vec<&str> = step.statements.iter().map(|s| s.sql.as_str()).collect();
    assert_eq!(
        sqls,
        vec![
            "START TRANSACTION",
            "SELECT `i``d`, `payload`, `hits` FROM `zeus`.`we``ird tab'le` WHERE `i``d` <=> ? FOR UPDATE",
            "DELETE FROM `zeus`.`we``ird tab'le` WHERE `i``d` <=> ?",
            "COMMIT"
        ]
    );
    assert_eq!(step.statements[2].params, vec![Cell::Text(evil.into())]);
    assert!(!step.statements[2].sql.contains("DROP"));
}

#[test]
fn missing_rows_insert_with_binlog_off() {
    let mut fx = Fx::new("10.11.6-MariaDB");
    fx.kind = ConflictKind::MissingOnUpdate;
    let ps = planned(&fx.build(3307, 3306), &Policy::default());
    assert_eq!(ps.plan.as_ref().unwrap().remedy, RemedyId::Overwrite);
    let step = ps
        .plan
        .as_ref()
        .unwrap()
        .steps
        .iter()
        .find(|s| s.action() == StepTemplate::InsertMissingRows)
        .unwrap();
    let write = step
        .statements
        .iter()
        .find(|s| matches!(s.role, crate::sql::Role::Write { .. }))
        .unwrap();
    assert_eq!(
        write.sql,
        "INSERT INTO `zeus`.`xinyan_cache` (`id`, `payload`, `hits`) VALUES (?, ?, ?)"
    );
    fx.kind = ConflictKind::MissingOnDelete;
    let ps = planned(&fx.build(3307, 3306), &Policy::default());
    assert!(!ps.options[0].loses_data(), "{:?}", ps.options[0]);
}
pub(super) fn golden(name: &str, actual: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/planner/testdata")
        .join(name);
    if std::env::var_os("REPLMEND_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        actual, expected,
        "golden {name} differs (REPLMEND_UPDATE_GOLDEN=1 rewrites it)"
    );
}

#[test]
fn golden_seed_plans() {
    console::set_colors_enabled(false);
    for (version, name) in [("9.7.0", "seed-mysql"), ("10.11.6-MariaDB", "seed-mariadb")] {
        let ps = planned(&dual(version), &Policy::default());
        golden(
            &format!("{name}.txt"),
            &crate::planner::render::plan_text(&ps),
        );
        golden(
            &format!("{name}.json"),
            &format!("{}\n", serde_json::to_string_pretty(&ps).unwrap()),
        );
    }
}

#[test]
fn every_class_flavor_and_gtid_mode_gets_a_plan() {
    for version in [
        "5.7.44",
        "8.0.21",
        "8.0.30",
        "8.4.3",
        "9.7.0",
        "10.11.6-MariaDB",
        "11.4.2-MariaDB",
    ] {
        for kind in [
            ConflictKind::DuplicateOnWrite,
            ConflictKind::DuplicateOnUpdate,
            ConflictKind::MissingOnUpdate,
            ConflictKind::MissingOnDelete,
        ] {
            for gtid in [true, false] {
                let mut fx = Fx::new(version);
                fx.kind = kind;
                fx.gtid_on = gtid || version.contains("MariaDB");
                fx.positioning = gtid;
                let d = fx.build(3307, 3306);
                let ps = planned(&d, &Policy::default());
                let p = ps
                    .plan
                    .as_ref()
                    .unwrap_or_else(|| panic!("{version} {kind:?} gtid={gtid}: {:?}", ps.options));
                assert!(
                    !ps.options[0].loses_data(),
                    "{version} {kind:?} gtid={gtid}: the recommended remedy loses nothing"
                );
                let flavor = d.replica.flavor;
                let stop = &p.steps[0].statements[0].sql;
                // A node that skips a transaction stops both threads (MariaDB's
                // gtid_slave_pos); one that only has rows changed keeps its receiver.
                let skips = p
                    .steps
                    .iter()
                    .any(|s| s.action() == crate::planner::playbook::StepTemplate::SkipTransaction);
                let threads = match skips {
                    true => crate::flavor::Thread::Both,
                    false => crate::flavor::Thread::Sql,
                };
                assert_eq!(stop, &flavor.stop_replica(threads, ""));
                for o in ps.options.iter().filter(|o| o.applicable) {
                    let one = planned(
                        &d,
                        &Policy {
                            remedy: Some(o.remedy),
                            ..Policy::default()
                        },
                    );
                    let sql: Vec<String> = one
                        .plan
                        .unwrap()
                        .steps
                        .iter()
                        .flat_map(|s| s.statements.iter().map(|st| st.sql.clone()))
                        .collect();
                    let mysql_gtid = !flavor.is_mariadb() && fx.gtid_on;
                    assert!(
                        !(mysql_gtid && sql.iter().any(|s| s.contains("skip_counter"))),
                        "{version} {kind:?} gtid={gtid} {}: MySQL with GTIDs refuses the skip counter: {sql:?}",
                        o.remedy
                    );
                    assert!(
                        !sql.iter().any(|s| s.contains(KEY)),
                        "values are bound, never inlined: {sql:?}"
                    );
                }
            }
        }
    }
}
#[test]
fn an_unread_transaction_is_never_skipped_blindly_where_gtids_are_on() {
    let mut fx = Fx::new("10.11.6-MariaDB");
    fx.transaction_known = false;
    let ps = planned(&fx.build(3307, 3306), &Policy::default());
    for o in ps
        .options
        .iter()
        .filter(|o| o.remedy != RemedyId::Overwrite)
    {
        assert!(!o.applicable, "{o:?}");
    }
    let keep = option(&ps, RemedyId::Keep);
    assert!(
        keep.why_not.as_deref().unwrap().contains("GTID"),
        "{keep:?}"
    );
    // By file and position the skip counter is the only way; its loss is unknown, never 0.
    fx.positioning = false;
    let ps = planned(&fx.build(3307, 3306), &Policy::default());
    let skip = option(&ps, RemedyId::Skip);
    assert!(
        skip.applicable && skip.loss_unknown && skip.loses_data(),
        "{skip:?}"
    );
    assert!(skip.loses.contains("unknown"), "{skip:?}");
}
