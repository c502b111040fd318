//! Planner unit tests over fixture diagnoses: every class × flavor × GTID mode, dual-master
//! winners, losses and ranking, hostile identifiers, and golden renderings of the seed plan.

use super::plan::{NodeRole, PlanSet, Policy, Winner, plan};
use super::playbook::{self, RemedyId, StepTemplate};
use crate::diagnosis::*;
use crate::flavor::Flavor;
use crate::flavor::advanced_slave_pos;
use crate::value::Cell;
use crate::vocab::Gtid;

const KEY: &str = "b98e4fab203607559fc5347b60cb64a41cf50a79650fbda3a1a4be5a1cfd16d9";

fn row(id: &str, payload: &str) -> Row {
    Row {
        columns: vec!["id".into(), "payload".into(), "hits".into()],
        values: vec![
            Cell::Text(id.into()),
            Cell::Text(payload.into()),
            Cell::Number("1".into()),
        ],
    }
}

/// A fixture diagnosis; the watcher's policy tests build theirs with it too.
pub(crate) struct Fx {
    pub(crate) version: &'static str,
    pub(crate) kind: ConflictKind,
    pub(crate) gtid_on: bool,
    pub(crate) positioning: bool,
    pub(crate) rows_total: usize,
    pub(crate) identical: bool,
    pub(crate) transaction_known: bool,
    /// The replica's status names the GTID (a MySQL worker's APPLYING_TRANSACTION) while the
    /// transaction itself could not be read.
    pub(crate) gtid_from_status: bool,
}

impl Fx {
    pub(crate) fn new(version: &'static str) -> Fx {
        Fx {
            version,
            kind: ConflictKind::DuplicateOnWrite,
            gtid_on: true,
            positioning: true,
            rows_total: 1,
            identical: false,
            transaction_known: true,
            gtid_from_status: false,
        }
    }

    pub(crate) fn build(&self, replica_port: u16, source_port: u16) -> Diagnosis {
        let flavor = Flavor::parse(self.version).unwrap();
        let gtid = if flavor.is_mariadb() {
            Gtid::Mariadb {
                domain: 1,
                server_id: 1,
                seq: 6,
            }
        } else {
            Gtid::Mysql {
                uuid: "3e11fa47-71ca-11e1-9e33-c80aa9429562".into(),
                tag: None,
                gno: 23,
            }
        };
        let node = |port: u16| NodeRef {
            endpoint: format!("127.0.0.1:{port}"),
            flavor,
            server_id: port as u32,
            server_uuid: None,
            read_only: ReadOnly::Off,
        };
        let (replica_row, source_row) = match self.kind {
            ConflictKind::MissingOnUpdate | ConflictKind::MissingOnDelete => {
                (None, Some(row(KEY, "src")))
            }
            _ if self.identical => (Some(row(KEY, "same")), Some(row(KEY, "same"))),
            _ => (Some(row(KEY, "replica")), Some(row(KEY, "source"))),
        };
        let verdict =
            crate::diagnosis::compare::verdict(replica_row.as_ref(), source_row.as_ref(), true);
        Diagnosis {
            schema: DIAGNOSIS_SCHEMA,
            replica: node(replica_port),
            source: Some(node(source_port)),
            channel: String::new(),
            kind: self.kind,
            error: ErrorFacts {
                errno: if matches!(
                    self.kind,
                    ConflictKind::MissingOnUpdate | ConflictKind::MissingOnDelete
                ) {
                    1032
                } else {
                    1062
                },
                message: "fixture".into(),
                key_name: Some("PRIMARY".into()),
                quoted_value: None,
                worker: None,
            },
            table: TableRef {
                schema: "zeus".into(),
                name: "xinyan_cache".into(),
            },
            key: Some(KeyRef {
                name: "PRIMARY".into(),
                kind: KeyKind::Primary,
                columns: vec!["id".into()],
            }),
            row_key: vec!["id".into()],
            generated_columns: vec![],
            converted_charsets: vec![],
            integer_columns: vec!["id".into()],
            auto_key: None,
            gtid_positioning: self.positioning,
            gtid_enabled: self.gtid_on,
            gtid_slave_pos: flavor.is_mariadb().then(|| "1-1-5,2-2-9".to_string()),
            gtid: (self.transaction_known || self.gtid_from_status).then(|| gtid.clone()),
            conflicting_rows: self.transaction_known.then_some(1),
            transaction: self.transaction_known.then(|| Transaction {
                source_log_file: "mysql2-bin.000006".into(),
                start_pos: 560082351,
                end_pos: 560082889,
                failed_event_end_log_pos: 560082858,
                gtid: Some(gtid),
                events: vec![],
                rows_total: self.rows_total,
                statement: None,
                bytes_read: 538,
            }),
            transaction_executed: false,
            upcoming: vec![],
            conflicts: vec![Conflict {
                row_index: 0,
                key: vec![("id".into(), Cell::Text(KEY.into()))],
                event_row: source_row.clone().unwrap(),
                event_before: None,
                replica_row,
                source_row,
                verdict,
            }],
            reverse: None,
            errant: Vec::new(),
            missing: vec![],
            fingerprint: format!("fp{replica_port}"),
        }
    }
}

fn dual(version: &'static str) -> Diagnosis {
    let fx = Fx::new(version);
    let mut d = fx.build(3307, 3306);
    let mut rev = fx.build(3306, 3307);
    // The other node's view: its row is the source's here.
    let c = &mut rev.conflicts[0];
    std::mem::swap(&mut c.replica_row, &mut c.source_row);
    c.event_row = c.source_row.clone().unwrap();
    if let Some(t) = rev.transaction.as_mut() {
        t.gtid = Some(match &t.gtid {
            Some(Gtid::Mariadb { .. }) => Gtid::Mariadb {
                domain: 2,
                server_id: 2,
                seq: 10,
            },
            _ => Gtid::Mysql {
                uuid: "4f22aa47-71ca-11e1-9e33-c80aa9429562".into(),
                tag: None,
                gno: 7,
            },
        });
    }
    rev.gtid = rev.transaction.as_ref().and_then(|t| t.gtid.clone());
    d.reverse = Some(ReverseChannel {
        dual_master: true,
        channel: String::new(),
        stopped: true,
        errno: Some(1062),
        error: None,
        same_key: true,
        diagnosis: Some(Box::new(rev)),
    });
    d
}

fn planned(d: &Diagnosis, policy: &Policy) -> PlanSet {
    plan(d, &playbook::load(None).unwrap(), policy).unwrap()
}

fn sql_of(ps: &PlanSet, action: StepTemplate) -> Vec<String> {
    ps.plan
        .as_ref()
        .unwrap()
        .steps
        .iter()
        .filter(|s| s.action == action)
        .flat_map(|s| s.statements.iter().map(|st| st.sql.clone()))
        .collect()
}

fn option(ps: &PlanSet, r: RemedyId) -> &super::plan::RemedyOption {
    ps.options.iter().find(|o| o.remedy == r).unwrap()
}

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

#[test]
fn fifty_rows_one_conflict_ranks_by_loss() {
    let mut fx = Fx::new("9.7.0");
    fx.rows_total = 50;
    let ps = planned(&fx.build(3307, 3306), &Policy::default());
    assert_eq!(ps.options[0].remedy, RemedyId::Overwrite);
    assert!(ps.options[0].recommended && !ps.options[0].loses_data());
    let inject = option(&ps, RemedyId::InjectGtid);
    assert_eq!(inject.rows_lost, 49);
    assert!(inject.loses.contains("49 other row(s)"), "{}", inject.loses);
}

#[test]
fn identical_rows_make_skipping_lossless_and_preferred() {
    let mut fx = Fx::new("8.0.36");
    fx.identical = true;
    let ps = planned(&fx.build(3307, 3306), &Policy::default());
    assert_eq!(ps.options[0].remedy, RemedyId::InjectGtid);
    assert!(!ps.options[0].loses_data());
}

#[test]
fn unknown_transaction_never_counts_as_lossless() {
    let mut fx = Fx::new("5.7.44");
    fx.gtid_on = false;
    fx.positioning = false;
    fx.transaction_known = false;
    let ps = planned(&fx.build(3307, 3306), &Policy::default());
    let skip = option(&ps, RemedyId::Skip);
    assert!(skip.loss_unknown && skip.loses_data());
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
        .find(|s| s.action == StepTemplate::SkipTransaction)
        .unwrap();
    let gtid = "3e11fa47-71ca-11e1-9e33-c80aa9429562:23";
    assert_eq!(
        skip.gtid.as_ref().map(|g| g.to_string()).as_deref(),
        Some(gtid)
    );
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
        .find(|s| s.action == StepTemplate::DeleteConflictingRows)
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
        .find(|s| s.action == StepTemplate::InsertMissingRows)
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
                .filter(|s| s.action == StepTemplate::DeleteConflictingRows)
                .collect();
            let skips: Vec<_> = p
                .steps
                .iter()
                .filter(|s| s.action == StepTemplate::SkipTransaction)
                .collect();
            assert_eq!(deletes.len(), 1, "only the loser's row is replaced");
            assert_eq!(deletes[0].node, loser_node);
            assert_eq!(skips.len(), 1);
            assert_eq!(skips[0].node, winner_node);
            assert_eq!(
                p.steps
                    .iter()
                    .filter(|s| s.action == StepTemplate::StartApplier)
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
            ps.plan.as_ref().unwrap().winner_endpoint.as_deref(),
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

fn golden(name: &str, actual: &str) {
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
        golden(&format!("{name}.txt"), &super::render::plan_text(&ps));
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
                    .any(|s| s.action == crate::planner::playbook::StepTemplate::SkipTransaction);
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

fn two_records(version: &'static str) -> Diagnosis {
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

fn step_of(ps: &PlanSet, action: StepTemplate) -> &super::plan::Step {
    let p = ps.plan.as_ref().unwrap();
    p.steps.iter().find(|s| s.action == action).unwrap()
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
        let actions: Vec<StepTemplate> = p.steps.iter().map(|s| s.action).collect();
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
        let fresh = |s: &super::plan::Step| {
            s.rows
                .iter()
                .find(|r| r.action == super::plan::RowAction::Insert)
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
                matches!(&refused, super::plan::PlanError::NotApplicable { remedy: RemedyId::Rekey, why: w } if w == why),
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
                .rows
                .iter()
                .find(|r| r.action == super::plan::RowAction::Insert);
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
        assert!(p.steps.iter().all(|s| s.rows.is_empty()), "{p:?}");
        assert!(
            !p.steps
                .iter()
                .any(|s| s.action == StepTemplate::ReinsertUnderFreshKey),
            "{p:?}"
        );
        assert!(
            p.steps
                .iter()
                .any(|s| s.action == StepTemplate::SkipTransaction)
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
            .map(|s| s.action)
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
