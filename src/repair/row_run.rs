//! A row step in progress (`RowRun`): each row checked with a locking read, decided (still as
//! diagnosed, already done, or changed since and left alone), journaled as an intent, written,
//! read back and committed; and the intent lines journaled ahead of it. Driven by the
//! applier's step loop in `apply`.

use std::collections::HashMap;

use super::apply::{Applier, ApplyError, injected_failure, key_text};
use crate::journal;
use crate::planner::Step;
use crate::planner::plan::{RowAction, RowChange};
use crate::planner::playbook::StepTemplate;
use crate::schema::TableSchema;
use crate::sql::{Role, Statement};
use crate::value::Cell;

pub(super) fn same_key(rows: &[RowChange]) -> HashMap<&[(String, Cell)], Vec<usize>> {
    let mut by_key: HashMap<&[(String, Cell)], Vec<usize>> = HashMap::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        by_key.entry(r.key.as_slice()).or_default().push(i);
    }
    by_key
}

/// One row step in progress.
pub(super) struct RowRun<'s> {
    pub(super) n: usize,
    pub(super) step: &'s Step,
    pub(super) fingerprint: String,
    pub(super) schema: &'s TableSchema,
    /// Rows whose effect is already there: their write is not needed.
    pub(super) skip: Vec<bool>,
    /// Each key's rows in the step, in order: a row's replaced or replacing version is found
    /// without scanning the step (a batch holds thousands of rows).
    pub(super) same_key: HashMap<&'s [(String, Cell)], Vec<usize>>,
    /// The rows whose write is needed, in the order they were checked.
    pub(super) needed: Vec<usize>,
    /// Every row's intent and journal line, being built on a thread of their own while the
    /// step's first statements run (serializing thousands of row images took milliseconds
    /// between the locking read and the journal's sync).
    pub(super) prepared: Option<std::sync::mpsc::Receiver<IntentLines>>,
    pub(super) intents: journal::Intents,
    pub(super) journaled: bool,
    /// START TRANSACTION ran: a write is not durable (nor seen) before COMMIT, so the intents'
    /// sync may run beside it, and COMMIT waits for it.
    pub(super) in_transaction: bool,
    pub(super) syncing: Option<journal::Syncing>,
    /// COMMIT was sent: from here a failure does not prove the change did not happen.
    pub(super) committing: bool,
    /// resync: rows found changed since they were read, skipped.
    pub(super) left_alone: Vec<usize>,
}

impl RowRun<'_> {
    pub(super) fn run(
        &mut self,
        server: &mut crate::conn::Server,
        a: &mut Applier<'_>,
    ) -> Result<(), ApplyError> {
        let err = Applier::sql_err(self.n, &self.step.endpoint);
        for st in &self.step.session {
            server.run(st).map_err(&err)?;
        }
        crate::timing::mark("row step session set up");
        for st in &self.step.statements {
            match st.role {
                Role::Check { row } => self.check(server, st, row)?,
                Role::CheckRows { first, count } => self.check_rows(server, st, first, count)?,
                Role::Write { row } => self.write(server, st, row..row + 1, a)?,
                Role::WriteRows { first, count } => {
                    self.write(server, st, first..first + count, a)?
                }
                Role::ReadBack { first, count } => self.read_back(server, st, first, count)?,
                Role::Commit => {
                    self.synced()?;
                    injected_failure(self.n)?;
                    self.committing = true;
                    server.run(st).map_err(&err)?;
                }
                Role::Begin => {
                    server.run(st).map_err(&err)?;
                    self.in_transaction = true;
                }
                Role::Control => server.run(st).map_err(&err)?,
            }
        }
        self.synced()
    }

    /// Waits for the intents being synced (if any) and takes them back.
    pub(super) fn synced(&mut self) -> Result<(), ApplyError> {
        let Some(s) = self.syncing.take() else {
            return Ok(());
        };
        let (intents, done) = s.wait();
        self.intents = intents;
        Ok(done?)
    }

    /// The write of rows `rows` (one statement), once every row is checked: the intents are
    /// journaled (one fsync) before the first write. Rows already done are no-ops of a
    /// delete (their key is gone); an insert batch runs whole or not at all (a row of it
    /// that appeared since the diagnosis refuses the step). The rows it changes must be
    /// exactly the ones still needed.
    fn write(
        &mut self,
        server: &mut crate::conn::Server,
        st: &Statement,
        rows: std::ops::Range<usize>,
        a: &mut Applier<'_>,
    ) -> Result<(), ApplyError> {
        let needed = rows.clone().filter(|r| !self.skip[*r]).count();
        if needed == 0 {
            return Ok(());
        }
        let insert = self.step.rows()[rows.start].action == RowAction::Insert;
        if let Some(done) = rows.clone().find(|r| self.skip[*r]).filter(|_| insert) {
            return Err(self.changed(done));
        }
        if !self.journaled {
            crate::timing::mark("rows checked");
            let intents = self.take_intents();
            if self.in_transaction {
                self.syncing = Some(a.journal.append_syncing(intents)?);
            } else {
                a.journal.append_intents(&intents)?;
                self.intents = intents;
            }
            crate::timing::mark("intents journaled");
            self.journaled = true;
        }
        server
            .run(st)
            .map_err(Applier::sql_err(self.n, &self.step.endpoint))?;
        crate::timing::mark("rows written");
        if server.affected_rows() != needed as u64 {
            return Err(self.changed(rows.start));
        }
        Ok(())
    }

    /// What the server wrote for the step's inserted rows `first..first + count`, read
    /// inside the transaction before COMMIT: each insert that ran must be there exactly as
    /// journaled, else the step rolls back (its intents get their rolled_back outcome).
    fn read_back(
        &mut self,
        server: &mut crate::conn::Server,
        st: &Statement,
        first: usize,
        count: usize,
    ) -> Result<(), ApplyError> {
        if (first..first + count).all(|i| self.skip[i]) {
            return Ok(());
        }
        let planned = &self.step.rows()[first];
        let found = server
            .read_rows(self.schema, &planned.image.columns, st)
            .map_err(Applier::sql_err(self.n, &self.step.endpoint))?;
        let written: HashMap<Vec<(String, Cell)>, crate::value::Row> = found
            .into_iter()
            .filter_map(|row| {
                let key: Option<Vec<(String, Cell)>> = planned
                    .key
                    .iter()
                    .map(|(c, _)| row.get(c).map(|v| (c.clone(), v.clone())))
                    .collect();
                Some((key?, row))
            })
            .collect();
        for i in (first..first + count).filter(|i| !self.skip[*i]) {
            let r = &self.step.rows()[i];
            match written.get(&r.key) {
                Some(w) if *w == r.image => {}
                other => {
                    return Err(ApplyError::WrittenOtherwise {
                        step: self.n,
                        table: r.table.to_string(),
                        key: key_text(&r.key),
                        found: other.map_or(
                            "no row at that key".into(),
                            crate::diagnosis::render::row_words,
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    fn changed(&self, row: usize) -> ApplyError {
        let r = &self.step.rows()[row];
        let (table, key) = (r.table.to_string(), key_text(&r.key));
        let rekey = matches!(
            self.step.action(),
            StepTemplate::ReinsertUnderFreshKey | StepTemplate::CopyUnderFreshKey
        );
        match r.action {
            RowAction::Insert if rekey => ApplyError::KeyTaken {
                step: self.n,
                table,
                key,
            },
            _ => ApplyError::RowChanged {
                step: self.n,
                table,
                key,
            },
        }
    }

    /// The locking read of one row: decides whether its write is needed, already done, or
    /// must not happen (the row changed since the diagnosis).
    fn check(
        &mut self,
        server: &mut crate::conn::Server,
        st: &Statement,
        row: usize,
    ) -> Result<(), ApplyError> {
        let r: &RowChange = &self.step.rows()[row];
        let current = server
            .read_row(self.schema, &r.image.columns, st)
            .map_err(Applier::sql_err(self.n, &self.step.endpoint))?;
        self.decide(row, current)
    }

    /// The locking read of rows `first..first + count` at once: each row found is matched to
    /// its key by the key columns' values. A row the server matched under its collation but
    /// whose key differs byte for byte holds a planned key with another version: the step
    /// refuses, as for any row changed since the diagnosis.
    fn check_rows(
        &mut self,
        server: &mut crate::conn::Server,
        st: &Statement,
        first: usize,
        count: usize,
    ) -> Result<(), ApplyError> {
        let batch = first..first + count;
        let planned = &self.step.rows()[first];
        let found = server
            .read_rows(self.schema, &planned.image.columns, st)
            .map_err(Applier::sql_err(self.n, &self.step.endpoint))?;
        crate::timing::mark(format_args!("{} rows read for update", found.len()));
        let mut current: Vec<Option<crate::value::Row>> = vec![None; count];
        for row in found {
            let key: Option<Vec<(String, Cell)>> = planned
                .key
                .iter()
                .map(|(c, _)| row.get(c).map(|v| (c.clone(), v.clone())))
                .collect();
            let at = key
                .as_deref()
                .and_then(|k| self.same_key.get(k))
                .and_then(|rows| rows.iter().find(|i| batch.contains(i)));
            let Some(&i) = at else {
                return Err(ApplyError::RowChanged {
                    step: self.n,
                    table: planned.table.to_string(),
                    key: key.map(|k| key_text(&k)).unwrap_or_default(),
                });
            };
            current[i - first] = Some(row);
        }
        for (i, c) in current.into_iter().enumerate() {
            self.decide(first + i, c)?;
        }
        Ok(())
    }

    /// What the row's current version (read under the lock) means for its write: needed,
    /// already done, or refused (it changed since the diagnosis); a needed row's intent is
    /// recorded for the journal.
    fn decide(&mut self, row: usize, current: Option<crate::value::Row>) -> Result<(), ApplyError> {
        let r: &RowChange = &self.step.rows()[row];
        // An insert after the same step deletes the same key (resync replaces a version):
        // at check time the row to be deleted is still there.
        let same = &self.same_key[r.key.as_slice()];
        let replaced = same
            .iter()
            .take_while(|i| **i < row)
            .find(|i| self.step.rows()[**i].action == RowAction::Delete && !self.skip[**i])
            .map(|i| &self.step.rows()[*i].image);
        // ...and a delete whose key the same step inserts again: already replaced when the
        // row holds the version to insert (a re-run).
        let replacement = same
            .iter()
            .filter(|i| **i > row)
            .find(|i| self.step.rows()[**i].action == RowAction::Insert)
            .map(|i| &self.step.rows()[*i].image);
        let needed = match (r.action, current) {
            (RowAction::Delete, None) => false,
            (RowAction::Delete, Some(c)) if c == r.image => true,
            (RowAction::Delete, Some(c)) if Some(&c) == replacement => false,
            // Replaced under a collation-equal key by an earlier run of this step.
            (RowAction::Delete, Some(c))
                if self.step.action() == StepTemplate::ResyncRows
                    && Some(&c) == r.after.as_ref() =>
            {
                false
            }
            (RowAction::Insert, None) => true,
            (RowAction::Insert, Some(c)) if Some(&c) == replaced => true,
            (RowAction::Insert, Some(c)) if self.replaced_under_collation(row, &c) => true,
            (RowAction::Insert, Some(c)) if c == r.image => false,
            _ if self.step.action() == StepTemplate::ResyncRows => {
                self.skip[row] = true;
                self.left_alone.push(row);
                return Ok(());
            }
            _ => return Err(self.changed(row)),
        };
        self.skip[row] = !needed;
        if needed {
            self.needed.push(row);
        }
        Ok(())
    }

    /// resync and restore: whether an earlier delete of this step removes `current`, the
    /// version the locking read of this insert's key found when the delete holds the key in
    /// other bytes its collation calls equal (`'ABC'` replaced by `'abc'`): it is gone
    /// before the insert runs.
    fn replaced_under_collation(&self, row: usize, current: &crate::value::Row) -> bool {
        let r = &self.step.rows()[row];
        self.step.action() == StepTemplate::ResyncRows
            && r.action == RowAction::Insert
            && self.step.rows()[..row].iter().enumerate().any(|(i, d)| {
                d.action == RowAction::Delete
                    && !self.skip[i]
                    && d.table == r.table
                    && d.image == *current
            })
    }

    /// The needed rows' intents: the lines built beside the step's first statements (all of
    /// them as they are when every row is needed, the usual case), or (if that thread is
    /// gone) built now.
    fn take_intents(&mut self) -> journal::Intents {
        let built = self.prepared.take().and_then(|rx| rx.recv().ok());
        crate::timing::mark("intents received");
        let all = self.needed.len() == self.step.rows().len()
            && self.needed.iter().enumerate().all(|(i, &row)| i == row);
        match built {
            Some(b) if all && b.ends.len() == self.step.rows().len() => {
                journal::Intents::from_lines(b.text, b.ends.len())
            }
            _ => {
                let mut intents = journal::Intents::default();
                for &row in &self.needed {
                    match built.as_ref().and_then(|b| b.line(row)) {
                        Some(line) => intents.push(line),
                        None => {
                            intents.push(&intent_line(self.step, self.n, &self.fingerprint, row))
                        }
                    }
                }
                intents
            }
        }
    }
}

/// The journal line of the intent of the step's row `row` (the plan's row: what the locking
/// read then finds decides only whether it is needed).
fn intent_line(step: &Step, n: usize, fingerprint: &str, row: usize) -> String {
    let r = &step.rows()[row];
    let action = match r.action {
        RowAction::Delete => journal::Action::Delete,
        RowAction::Insert => journal::Action::Insert,
    };
    // As the step's session runs it: a restore of a change made with the binary log on
    // writes with it on too.
    let sql_log_bin = !step
        .session
        .contains(&crate::sql::row_write_session(false)[0]);
    journal::RowIntent {
        fingerprint,
        id: &format!("{fingerprint}/{n}/{row}"),
        node: &step.endpoint,
        action,
        table: &r.table,
        sql_log_bin,
        image: &r.image,
        key: &r.key,
        after: r.after.as_ref(),
    }
    .line()
}

/// Every row's intent line, in row order, in one text.
pub struct IntentLines {
    text: String,
    /// Where each row's line ends in `text`.
    ends: Vec<usize>,
}

impl IntentLines {
    fn line(&self, row: usize) -> Option<&str> {
        let start = match row {
            0 => 0,
            _ => *self.ends.get(row - 1)?,
        };
        self.text.get(start..*self.ends.get(row)?)
    }
}

pub(super) fn intent_lines(step: &Step, n: usize, fingerprint: &str) -> IntentLines {
    let mut text = String::new();
    let mut ends = Vec::with_capacity(step.rows().len());
    for row in 0..step.rows().len() {
        text.push_str(&intent_line(step, n, fingerprint, row));
        ends.push(text.len());
    }
    IntentLines { text, ends }
}

#[cfg(test)]
mod tests {
    use super::IntentLines;

    #[test]
    fn intent_lines_give_back_each_row_line() {
        let b = IntentLines {
            text: "{\"a\":1}\n{\"b\":22}\n{}\n".into(),
            ends: vec![8, 17, 20],
        };
        let lines: Vec<Option<&str>> = (0..4).map(|i| b.line(i)).collect();
        assert_eq!(
            lines,
            [
                Some("{\"a\":1}\n"),
                Some("{\"b\":22}\n"),
                Some("{}\n"),
                None
            ]
        );
    }
}
