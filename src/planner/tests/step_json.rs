//! The JSON of a plan's steps, one plan of every kind of step: stop (both threads and the
//! applier only), skip (by GTID on each flavor, by the skip counter, errant injection), row
//! steps (delete, insert, rekey's copy and move, resync's), lifting and restoring read_only,
//! start and verify. Golden: `plan`, `repair --dry-run`, resync, restore and the journal print
//! exactly this.

use super::statements::golden;
use super::*;
use crate::planner::plan::NodeRole;
use crate::planner::resync::{self, Node, RowPair, TableRows};
use crate::planner::{Plan, Winner};

fn chosen(d: &Diagnosis, policy: &Policy) -> Plan {
    planned(d, policy).plan.expect("a plan")
}

fn resync_plan() -> Plan {
    let flavor = Flavor::parse("10.11.6-MariaDB").unwrap();
    let node = |role, endpoint: &str| Node {
        role,
        endpoint: crate::vocab::Endpoint::parse(endpoint).unwrap(),
        flavor,
        read_only: ReadOnly::ReadOnly,
        binlog_stays_on: None,
    };
    let row = |id: i64, v: &str| Row {
        columns: vec!["id".into(), "v".into()],
        values: vec![Cell::Number(id.to_string()), Cell::Text(v.into())],
    };
    let key = |id: i64| vec![("id".to_string(), Cell::Number(id.to_string()))];
    let t = TableRows {
        table: TableRef {
            schema: "shop".into(),
            name: "t".into(),
        },
        rows: vec![
            RowPair {
                key: key(1),
                source: Some(row(1, "src")),
                replica: Some(row(1, "rep")),
            },
            RowPair {
                key: key(2),
                source: Some(row(2, "src")),
                replica: None,
            },
            RowPair {
                key: key(3),
                source: None,
                replica: Some(row(3, "rep")),
            },
        ],
        facts: Default::default(),
        unique: Vec::new(),
    };
    let (s, r) = (
        node(NodeRole::Source, "s:1"),
        node(NodeRole::Replica, "r:2"),
    );
    resync::plan(&[t], &s, &r, &Winner::Source, false, true).unwrap()
}

#[test]
fn every_kind_of_step_serializes_as_before() {
    let lift = Policy {
        lift_read_only: true,
        ..Policy::default()
    };
    let mut plans: Vec<(&str, Plan)> = Vec::new();
    for version in ["9.7.0", "10.11.6-MariaDB"] {
        // Stop (applier only), lift, delete, restore, start, verify.
        let mut d = Fx::new(version).build(3307, 3306);
        d.replica.read_only = ReadOnly::SuperReadOnly;
        plans.push(("overwrite, read_only lifted", chosen(&d, &lift)));
        // Stop (both threads), skip by GTID.
        let inject = Policy {
            remedy: Some(RemedyId::InjectGtid),
            ..lift.clone()
        };
        plans.push(("inject-gtid", chosen(&d, &inject)));
        // Insert the missing rows.
        let mut fx = Fx::new(version);
        fx.kind = ConflictKind::MissingOnUpdate;
        plans.push(("insert missing", chosen(&fx.build(3307, 3306), &lift)));
        // The skip counter.
        let mut fx = Fx::new(version);
        (fx.gtid_on, fx.positioning) = (false, false);
        let skip = Policy {
            remedy: Some(RemedyId::Skip),
            ..Policy::default()
        };
        plans.push(("skip counter", chosen(&fx.build(3307, 3306), &skip)));
        // Dual-master: both nodes stopped, the loser's rows deleted, the winner skips.
        plans.push(("dual overwrite", chosen(&dual(version), &Policy::default())));
        // rekey: copy on the winner, move on the loser.
        let rekey = Policy {
            remedy: Some(RemedyId::Rekey),
            ..Policy::default()
        };
        plans.push(("rekey", chosen(&dual_master::two_records(version), &rekey)));
    }
    let flavor = Flavor::parse("9.7.0").unwrap();
    let g = Gtid::parse("3e11fa47-71ca-11e1-9e33-c80aa9429562:4").unwrap();
    plans.push((
        "inject-errant",
        crate::planner::errant::plan(&[g], &crate::vocab::Endpoint::parse("s:1").unwrap(), flavor),
    ));
    plans.push(("resync, read_only lifted", resync_plan()));
    let mut out = String::new();
    for (name, p) in &plans {
        out.push_str(&format!(
            "// {name}\n{}\n",
            serde_json::to_string_pretty(p).unwrap()
        ));
    }
    golden("steps-every-kind.json.txt", &out);
}
