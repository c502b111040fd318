//! Planner unit tests over fixture diagnoses: every class × flavor × GTID mode, dual-master
//! winners, losses and ranking, hostile identifiers, and golden renderings of the seed plan.
//!
//! This file holds the fixtures (`Fx`, the dual-master pair, lookups into a plan set); the
//! tests are beside it by subject: `statements` (each step's SQL per flavor and GTID mode,
//! golden plans), `ranking` (losses and the order of options), `dual_master` (winners, rekey,
//! read_only).

use super::plan::{PlanSet, Policy, plan};
use super::playbook::{self, RemedyId, StepTemplate};
use crate::diagnosis::*;
use crate::flavor::Flavor;
use crate::value::Cell;
use crate::vocab::Gtid;

mod dual_master;
mod providers;
mod ranking;
mod rendering;
mod statements;
mod step_json;

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
    /// What the account may do on the replica (a managed service's admin: procedures).
    pub(crate) capabilities: crate::capability::Capabilities,
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
            capabilities: Default::default(),
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
            endpoint: crate::vocab::Endpoint::new("127.0.0.1", port),
            flavor,
            server_id: port as u32,
            server_uuid: None,
            read_only: ReadOnly::Off,
            capabilities: self.capabilities.clone(),
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
                timestamp: None,
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
            facts: crate::schema::TableFacts {
                integer_columns: vec!["id".into()],
                ..Default::default()
            },
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
                origin: None,
            }],
            reverse: None,
            errant: Vec::new(),
            cause: None,
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
        .filter(|s| s.action() == action)
        .flat_map(|s| s.statements.iter().map(|st| st.sql.clone()))
        .collect()
}

fn option(ps: &PlanSet, r: RemedyId) -> &super::plan::RemedyOption {
    ps.options.iter().find(|o| o.remedy == r).unwrap()
}

fn step_of(ps: &PlanSet, action: StepTemplate) -> &super::plan::Step {
    let p = ps.plan.as_ref().unwrap();
    p.steps.iter().find(|s| s.action() == action).unwrap()
}
