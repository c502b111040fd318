//! `repair --remedy inject-errant`: the replica's errant GTIDs (MySQL) as empty transactions
//! on its source, one step each, so the source's gtid_executed has them and a failover neither
//! replays nor misses them (`MysqlGtidSet::gtids` lists them). Pure: no I/O.

use super::plan::{NodeRole, Plan, Step, StepKind, StepLoss, Winner};
use super::playbook::RemedyId;
use crate::flavor::Flavor;
use crate::sql::Statement;
use crate::vocab::{Endpoint, Gtid};

/// More than this many errant transactions are not injected one by one.
pub const MAX_INJECTED: usize = 10_000;

pub fn plan(gtids: &[Gtid], source_endpoint: &Endpoint, flavor: Flavor) -> Plan {
    let steps = gtids
        .iter()
        .map(|g| Step {
            node: NodeRole::Source,
            endpoint: source_endpoint.clone(),
            flavor,
            channel: String::new(),
            kind: StepKind::Skip {
                gtid: Some(g.clone()),
                loss: StepLoss::default(),
            },
            description: format!(
                "inject an empty transaction with the replica's errant GTID {g} on the source {source_endpoint}"
            ),
            session: Vec::new(),
            statements: flavor
                .skip_by_gtid(g, "")
                .into_iter()
                .map(Statement::plain)
                .collect(),
            precondition: format!("{g} is not yet in the source's gtid_executed (already there: done)"),
            verification: String::new(),
            calls: None,
        })
        .collect();
    Plan {
        remedy: RemedyId::InjectErrant,
        winner: None::<Winner>,
        winner_endpoint: None,
        loses: "nothing: the transactions are empty; the replica's rows stay as they are (the source does not get them)".into(),
        rows_lost: 0,
        versions_lost: 0,
        records_lost: 0,
        loss_unknown: false,
        steps,
        advice: vec![
            "make the replica read-only (super_read_only=ON) so writes cannot go to it directly".into(),
        ],
        facts: Vec::new(),
        consequences: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_gtid_is_one_empty_transaction_on_the_source() {
        let f = Flavor::parse("9.7.4").unwrap();
        let p = plan(&[Gtid::parse("u:4").unwrap()], &Endpoint::new("s", 1), f);
        assert_eq!(p.steps.len(), 1);
        let sql: Vec<&str> = p.steps[0]
            .statements
            .iter()
            .map(|s| s.sql.as_str())
            .collect();
        assert_eq!(
            sql,
            vec![
                "SET GTID_NEXT = 'u:4'",
                "BEGIN",
                "COMMIT",
                "SET GTID_NEXT = 'AUTOMATIC'"
            ]
        );
        assert_eq!(p.steps[0].endpoint.to_string(), "s:1");
    }
}
