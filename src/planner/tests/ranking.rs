//! What each option loses and the order options are ranked in.

use super::{Fx, option, planned};
use crate::planner::plan::Policy;
use crate::planner::playbook::RemedyId;

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
