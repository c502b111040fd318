//! Managed services: where the account may not run the plain statement, the plan calls the
//! provider's procedure; a row change that cannot be kept out of the binary log is stated as
//! an errant transaction, and refused outright in a dual-master pair.

use super::{Fx, option, planned, sql_of};
use crate::capability::Capabilities;
use crate::flavor::Provider;
use crate::planner::plan::Policy;
use crate::planner::playbook::{RemedyId, StepTemplate};

/// The RDS master user: none of the plain statements (the probe's facts).
fn managed(provider: Provider) -> Capabilities {
    Capabilities {
        provider,
        control_replication: false,
        skip_counter: false,
        gtid_next: false,
        sql_log_bin: false,
        ..Capabilities::default()
    }
}

fn policy(r: RemedyId) -> Policy {
    Policy {
        remedy: Some(r),
        ..Policy::default()
    }
}

#[test]
fn gtid_skip_stop_and_start_are_the_providers_calls() {
    for (provider, stop, skip) in [
        (
            Provider::Rds,
            "CALL mysql.rds_stop_replication()",
            "CALL mysql.rds_skip_transaction_with_gtid('3e11fa47-71ca-11e1-9e33-c80aa9429562:23')",
        ),
        (
            Provider::Azure,
            "CALL mysql.az_replication_stop()",
            "CALL mysql.az_replication_skip_gtid_transaction('3e11fa47-71ca-11e1-9e33-c80aa9429562:23')",
        ),
    ] {
        let mut fx = Fx::new("8.4.3");
        fx.capabilities = managed(provider);
        let ps = planned(&fx.build(3307, 3306), &policy(RemedyId::InjectGtid));
        assert_eq!(sql_of(&ps, StepTemplate::StopApplier), vec![stop]);
        assert_eq!(sql_of(&ps, StepTemplate::SkipTransaction), vec![skip]);
        let start = sql_of(&ps, StepTemplate::StartApplier);
        assert!(start[0].starts_with("CALL mysql."), "{start:?}");
    }
}

#[test]
fn plain_statements_stay_where_the_account_may_run_them() {
    let mut fx = Fx::new("8.4.3");
    fx.capabilities = Capabilities {
        provider: Provider::Rds,
        ..Capabilities::default()
    };
    let ps = planned(&fx.build(3307, 3306), &policy(RemedyId::InjectGtid));
    assert_eq!(sql_of(&ps, StepTemplate::StopApplier), vec!["STOP REPLICA"]);
}

#[test]
fn overwrite_without_sql_log_bin_states_the_errant_gtid() {
    let mut fx = Fx::new("8.4.3");
    fx.capabilities = managed(Provider::Rds);
    let ps = planned(&fx.build(3307, 3306), &policy(RemedyId::Overwrite));
    let p = ps.plan.as_ref().unwrap();
    let rows = p
        .steps
        .iter()
        .find(|s| s.action() == StepTemplate::DeleteConflictingRows)
        .unwrap();
    assert!(rows.logs_errant_rows());
    assert!(!rows.session.iter().any(crate::sql::sets_sql_log_bin));
    assert!(
        p.consequences[0].contains("errant transaction"),
        "{:?}",
        p.consequences
    );
    assert!(p.consequences[0].contains("follow-up"));
    // The menu says it before the plan is chosen; a skip leaves none.
    assert!(option(&ps, RemedyId::Overwrite).leaves_errant_gtid);
    assert!(!option(&ps, RemedyId::InjectGtid).leaves_errant_gtid);
}

#[test]
fn no_row_remedy_in_a_pair_whose_binlog_cannot_be_turned_off() {
    let mut d = super::dual("8.4.3");
    d.replica.capabilities = managed(Provider::Azure);
    let ps = planned(&d, &Policy::default());
    let o = option(&ps, RemedyId::Overwrite);
    assert!(!o.applicable);
    assert!(
        o.why_not.as_deref().unwrap().contains("undo the fix"),
        "{o:?}"
    );
}
