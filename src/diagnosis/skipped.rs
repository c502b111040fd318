//! An earlier skip, proven: the transaction that last wrote a conflicting key on the source
//! *before* the failing one is counted as executed on the replica, yet the replica's row is
//! not what it left there; and either a replmend journal records skipping it, or the
//! replica's own binary log (which logs what it applies, and reaches back before it) shows
//! it never wrote the key. Pure: the I/O side (`inspect::skipped`) reads the facts.

use super::model::{Conflict, RowsEventKind};
use super::origin::{NodeOrigin, NotFoundReason};
use crate::vocab::Gtid;

/// How the skip is known.
#[derive(Debug, Clone, PartialEq)]
pub enum Proof {
    /// A replmend journal records the skip, in words.
    Journal(String),
    /// The replica logs what it applies (log_replica_updates) and its oldest retained binary
    /// log starts before the transaction: had it been applied, its write would be there.
    ReplicaLogSilent,
}

/// The transaction skipped on the replica, and how that is known.
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    pub gtid: Gtid,
    pub operation: RowsEventKind,
    pub timestamp: Option<String>,
    pub at: Option<(String, u64)>,
    /// The replica still holds the row the transaction deleted (else: lacks the one it wrote).
    pub holds_removed_row: bool,
    pub proof: Proof,
}

/// The GTID of the source's last write of `c`'s key before the failing transaction (`prior`)
/// when the replica counts it as executed (`executed`) but does not hold what it left: a row
/// it wrote is missing, or a row it deleted is still there. Only presence is compared: the
/// values of an image decoded from the binlog and of a row read back are not held to be
/// byte-equal here.
pub fn left_apart(
    c: &Conflict,
    prior: &NodeOrigin,
    executed: &mut dyn FnMut(&Gtid) -> bool,
) -> Option<Gtid> {
    let g = prior.gtid.clone().filter(|_| prior.found)?;
    // Only an insert's missing row or a delete's remaining row: an update skipped on a row
    // the replica already lacked (1032) did not lose the row, something before it did.
    let left = match (prior.operation, c.replica_row.is_some()) {
        (Some(RowsEventKind::Write), false) => prior.row.is_some(),
        (Some(RowsEventKind::Delete), true) => true,
        _ => false,
    };
    if !left {
        return None;
    }
    // The replica's own log names this transaction as its last write of the key: applied.
    let replica = c.origin.as_ref().map(|o| &o.replica);
    if replica.is_some_and(|r| r.found && r.gtid.as_ref() == Some(&g)) {
        return None;
    }
    executed(&g).then_some(g)
}

/// The skip, when `proof` holds: a journal's word stands alone; the replica's silent log
/// needs its search to have read every retained file without finding the key, or found only
/// a write older than the skipped transaction.
pub fn judge(c: &Conflict, prior: &NodeOrigin, g: Gtid, proof: Proof) -> Option<Skipped> {
    if proof == Proof::ReplicaLogSilent {
        let r = &c.origin.as_ref()?.replica;
        let silent = match r.found {
            false => r.reason == Some(NotFoundReason::NotInRetainedLogs),
            true => matches!((r.epoch, prior.epoch), (Some(a), Some(b)) if a < b),
        };
        if !silent {
            return None;
        }
    }
    Some(Skipped {
        gtid: g,
        operation: prior.operation?,
        timestamp: prior.timestamp.clone(),
        at: prior.log_file.clone().zip(prior.log_pos),
        holds_removed_row: c.replica_row.is_some(),
        proof,
    })
}

impl Skipped {
    /// The evidence, in words, for `table`.
    pub fn evidence(&self, table: &str) -> String {
        let what = match self.operation {
            RowsEventKind::Write => "insert",
            RowsEventKind::Update => "update",
            RowsEventKind::Delete => "delete",
        };
        let left = match self.holds_removed_row {
            true => "still holds the row it deleted",
            false => "does not hold the row it wrote",
        };
        let how = match &self.proof {
            Proof::Journal(words) => format!("replmend skipped it: {words}"),
            Proof::ReplicaLogSilent => format!(
                "the replica's binary log, which logs what it applies (log_replica_updates / log_slave_updates) and starts before {g}, has no write of the key by it: {g} was skipped on the replica outside replmend (an empty transaction under SET GTID_NEXT, sql_slave_skip_counter, or gtid_purged / gtid_slave_pos set by hand)",
                g = self.gtid
            ),
        };
        format!(
            "the source's last write of this key of {table} before the failing transaction was GTID {g} (an {what} at {ts} UTC{at}); the replica counts {g} as executed yet {left}: {how}",
            g = self.gtid,
            ts = self.timestamp.as_deref().unwrap_or("?"),
            at = self
                .at
                .as_ref()
                .map(|(f, p)| format!(", {f}:{p} on the source"))
                .unwrap_or_default(),
        )
    }
}

pub const PREVENTION: &str = "Skip a transaction only when its other rows are known not to matter (`replmend diagnose` says what a skip loses; prefer a remedy that applies the transaction), and after any skip verify the table (`replmend verify --tables`) and resync the rows the skipped transaction left apart before further writes reach them.";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnosis::model::Verdict;
    use crate::diagnosis::origin::{Origins, no_binary_log};
    use crate::value::{Cell, Row};

    fn gtid(seq: u64) -> Gtid {
        Gtid::Mariadb {
            domain: 0,
            server_id: 1,
            seq,
        }
    }

    fn row() -> Row {
        Row::of(&[("id", Cell::Number("8".into()))])
    }

    /// The source's insert (seq 5, at epoch 100) of the key.
    fn inserted() -> NodeOrigin {
        let mut o = no_binary_log();
        o.found = true;
        o.reason = None;
        o.gtid = Some(gtid(5));
        o.operation = Some(RowsEventKind::Write);
        o.row = Some(row());
        o.epoch = Some(100);
        o
    }

    /// A conflict whose replica holds `held`, the replica's own origin `replica`.
    fn conflict(held: Option<Row>, replica: NodeOrigin) -> Conflict {
        Conflict {
            row_index: 0,
            key: vec![("id".into(), Cell::Number("8".into()))],
            event_row: row(),
            event_before: None,
            replica_row: held,
            source_row: None,
            verdict: Verdict::AbsentOnBoth,
            origin: Some(Origins {
                replica,
                source: None,
            }),
        }
    }

    fn not_in_logs() -> NodeOrigin {
        let mut o = no_binary_log();
        o.reason = Some(NotFoundReason::NotInRetainedLogs);
        o
    }

    #[test]
    fn a_missing_row_of_an_executed_transaction_is_left_apart() {
        let c = conflict(None, not_in_logs());
        assert_eq!(left_apart(&c, &inserted(), &mut |_| true), Some(gtid(5)));
        // Not executed on the replica: it has not got there yet, not a skip.
        assert_eq!(left_apart(&c, &inserted(), &mut |_| false), None);
        // The replica holds the row the transaction wrote: nothing left apart.
        let held = conflict(Some(row()), not_in_logs());
        assert_eq!(left_apart(&held, &inserted(), &mut |_| true), None);
        // The replica's own log shows it applied that transaction.
        let mut applied = inserted();
        applied.found = true;
        let c = conflict(None, applied);
        assert_eq!(left_apart(&c, &inserted(), &mut |_| true), None);
    }

    #[test]
    fn an_update_skipped_on_a_row_already_missing_is_not_blamed() {
        let mut updated = inserted();
        updated.operation = Some(RowsEventKind::Update);
        let c = conflict(None, not_in_logs());
        assert_eq!(left_apart(&c, &updated, &mut |_| true), None);
    }

    #[test]
    fn a_deleted_row_still_held_is_left_apart() {
        let mut deleted = inserted();
        deleted.operation = Some(RowsEventKind::Delete);
        deleted.row = None;
        let c = conflict(Some(row()), not_in_logs());
        assert_eq!(left_apart(&c, &deleted, &mut |_| true), Some(gtid(5)));
        let s = judge(&c, &deleted, gtid(5), Proof::ReplicaLogSilent).unwrap();
        assert!(s.evidence("d.t").contains("still holds the row it deleted"));
    }

    #[test]
    fn the_replica_log_proves_a_skip_only_when_read_whole_or_older() {
        let c = conflict(None, not_in_logs());
        assert!(judge(&c, &inserted(), gtid(5), Proof::ReplicaLogSilent).is_some());
        // The budget ran out on the replica: its silence proves nothing.
        let mut short = no_binary_log();
        short.reason = Some(NotFoundReason::BudgetExhausted);
        let c = conflict(None, short);
        assert!(judge(&c, &inserted(), gtid(5), Proof::ReplicaLogSilent).is_none());
        // A journal's word stands alone.
        let s = judge(&c, &inserted(), gtid(5), Proof::Journal("j".into())).unwrap();
        assert!(s.evidence("d.t").contains("replmend skipped it: j"));
        // The replica's last write of the key is older than the skipped one: silent since.
        let mut older = inserted();
        older.gtid = Some(gtid(2));
        older.epoch = Some(50);
        let c = conflict(None, older);
        assert!(judge(&c, &inserted(), gtid(5), Proof::ReplicaLogSilent).is_some());
    }
}
