//! The diagnosis's text, on the planner's fixtures (a diagnosis as inspect builds it).

use super::Fx;
use crate::diagnosis::render::text;

#[test]
fn conflict_counts_known_and_unknown() {
    let d = Fx::new("9.7.4").build(3307, 3306);
    let t = text(&d);
    assert!(
        t.contains("1 conflicting row(s) of 1 in the transaction"),
        "{t}"
    );
    // The source down: no transaction, nothing compared; the GTID is the worker's.
    let mut fx = Fx::new("9.7.4");
    fx.transaction_known = false;
    fx.gtid_from_status = true;
    let mut d = fx.build(3307, 3306);
    d.conflicts.clear();
    let t = text(&d);
    assert!(
        t.contains("unknown conflicting row(s): the transaction's rows were not compared"),
        "{t}"
    );
    assert!(!t.contains("0 conflicting"), "{t}");
    assert!(
        t.contains(
            "transaction GTID 3e11fa47-71ca-11e1-9e33-c80aa9429562:23 (from the replica's status"
        ),
        "{t}"
    );
}
