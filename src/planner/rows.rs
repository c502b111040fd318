//! The SQL of a row step: its rows cut into batches, each checked with a locking read, then
//! written and read back. Pure; called by the step builders in `steps`.

use std::ops::Range;

use super::plan::{RowAction, RowChange};
use super::playbook::StepTemplate;
use crate::diagnosis::{Diagnosis, Row};
use crate::sql::TableSql;
use crate::sql::{self, Statement};
use crate::value::Cell;

pub(super) fn row_key(d: &Diagnosis, row: &Row) -> Vec<(String, Cell)> {
    d.row_key
        .iter()
        .filter_map(|c| row.get(c).map(|v| (c.clone(), v.clone())))
        .collect()
}

/// Turns the step's row changes into its statements: one transaction, every row checked
/// with a locking read first, then written. The applier journals between the two. The rows of
/// an overwrite (thousands, read ahead) go in batches: one locking read and one write per
/// batch instead of two round trips per row.
pub(super) fn row_statements(
    action: StepTemplate,
    rows: &[RowChange],
    d: &Diagnosis,
) -> Vec<Statement> {
    if rows.is_empty() {
        return Vec::new();
    }
    let batched = matches!(
        action,
        StepTemplate::DeleteConflictingRows | StepTemplate::InsertMissingRows
    );
    let batches: Vec<Range<usize>> = match batched {
        true => batches(rows),
        false => (0..rows.len()).map(|i| i..i + 1).collect(),
    };
    let mut out = vec![sql::start_transaction()];
    for b in &batches {
        out.push(check_statement(rows, b.clone(), d));
    }
    for b in &batches {
        out.push(write_statement(rows, b.clone(), d));
    }
    for b in batches
        .iter()
        .filter(|b| rows[b.start].action == RowAction::Insert)
    {
        out.push(read_back_statement(rows, b.clone(), d));
    }
    out.push(sql::commit());
    out
}

/// The read of a batch of inserted rows before COMMIT: what the server wrote (a trigger, a
/// default, a key of 0 turned into the next AUTO_INCREMENT value) is compared with what was
/// journaled, and a difference rolls the step back.
fn read_back_statement(rows: &[RowChange], b: Range<usize>, d: &Diagnosis) -> Statement {
    let r = &rows[b.start];
    let keys: Vec<Vec<(String, Cell)>> = rows[b.clone()].iter().map(|r| r.key.clone()).collect();
    TableSql::of(&r.table, &d.facts)
        .select_in(&r.image.columns, &keys)
        .read_back(b.start, b.len())
}

/// Rows one statement carries at most, and the bound parameters and value bytes: a batch of
/// thousands of rows is a few round trips, each well inside the 65,535 placeholders of a
/// prepared statement and MariaDB's default max_allowed_packet (16 MiB).
const BATCH_ROWS: usize = 1000;
const BATCH_PARAMS: usize = 30_000;
const BATCH_BYTES: usize = 4 << 20;

/// Consecutive rows one statement can carry: same table, action and columns, within the
/// limits above.
fn batches(rows: &[RowChange]) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::new();
    let (mut params, mut bytes) = (0, 0);
    for (i, r) in rows.iter().enumerate() {
        let (p, b) = (
            r.image.values.len().max(2 * r.key.len()),
            row_bytes(&r.image),
        );
        let joins = out.last().is_some_and(|last| {
            let first = &rows[last.start];
            (first.table == r.table && first.action == r.action)
                && first.image.columns == r.image.columns
                && last.len() < BATCH_ROWS
                && params + p <= BATCH_PARAMS
                && bytes + b <= BATCH_BYTES
        });
        match (joins, out.last_mut()) {
            (true, Some(last)) => last.end = i + 1,
            _ => {
                out.push(i..i + 1);
                (params, bytes) = (0, 0);
            }
        }
        (params, bytes) = (params + p, bytes + b);
    }
    out
}

fn row_bytes(row: &Row) -> usize {
    row.values
        .iter()
        .map(|v| match v {
            Cell::Null => 1,
            Cell::Number(t) | Cell::Text(t) | Cell::Temporal(t) | Cell::Json(t) => t.len(),
            Cell::Bytes(b) => b.len(),
        })
        .sum()
}

/// The locking read of a batch: a single row's by its key (as a DBA would write it), a
/// batch's by all its keys at once.
fn check_statement(rows: &[RowChange], b: Range<usize>, d: &Diagnosis) -> Statement {
    let r = &rows[b.start];
    let t = TableSql::of(&r.table, &d.facts);
    if b.len() == 1 {
        return t
            .select_by_key(&r.image.columns, &r.key, true)
            .check(b.start);
    }
    let keys: Vec<Vec<(String, Cell)>> = rows[b.clone()].iter().map(|r| r.key.clone()).collect();
    t.select_keys_for_update(&r.image.columns, &keys)
        .check_rows(b.start, b.len())
}

fn write_statement(rows: &[RowChange], b: Range<usize>, d: &Diagnosis) -> Statement {
    let r = &rows[b.start];
    let t = TableSql::of(&r.table, &d.facts);
    match (r.action, b.len()) {
        (RowAction::Delete, 1) => t.delete_by_key(&r.key).write(b.start),
        (RowAction::Insert, 1) => t.insert_row(&r.image).write(b.start),
        (RowAction::Delete, n) => {
            let keys: Vec<Vec<(String, Cell)>> =
                rows[b.clone()].iter().map(|r| r.key.clone()).collect();
            t.delete_by_keys(&keys).write_rows(b.start, n)
        }
        (RowAction::Insert, n) => {
            let images: Vec<Row> = rows[b.clone()].iter().map(|r| r.image.clone()).collect();
            t.insert_rows(&images).write_rows(b.start, n)
        }
    }
}

/// The row the repaired transaction leaves at a key: the event's full image, else the
/// source's current row (MINIMAL images carry only some columns).
pub(super) fn after_image(c: &crate::diagnosis::Conflict) -> Option<Row> {
    let full = c.source_row.as_ref().map(|r| r.columns.len());
    if Some(c.event_row.columns.len()) == full || c.source_row.is_none() {
        Some(c.event_row.clone())
    } else {
        c.source_row.clone()
    }
}

#[cfg(test)]
mod batch_tests {
    use super::*;

    fn change(id: usize, action: RowAction, columns: &[&str]) -> RowChange {
        let image = Row {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            values: columns
                .iter()
                .map(|_| Cell::Number(id.to_string()))
                .collect(),
        };
        RowChange {
            table: crate::vocab::TableRef {
                schema: "s".into(),
                name: "t".into(),
            },
            action,
            key: vec![("id".into(), Cell::Number(id.to_string()))],
            image,
            after: None,
        }
    }

    #[test]
    fn batches_keep_one_statement_to_one_action_and_column_list_within_limits() {
        let mut rows: Vec<RowChange> = (0..2500)
            .map(|i| change(i, RowAction::Delete, &["id", "v"]))
            .collect();
        assert_eq!(batches(&rows), vec![0..1000, 1000..2000, 2000..2500]);
        rows.push(change(2500, RowAction::Insert, &["id", "v"]));
        rows.push(change(2501, RowAction::Insert, &["id"]));
        assert_eq!(batches(&rows)[3..], [2500..2501, 2501..2502]);
        let wide: Vec<RowChange> = (0..100)
            .map(|i| {
                let mut c = change(i, RowAction::Insert, &["id"]);
                c.image.values = vec![Cell::Text("x".repeat(100_000))];
                c
            })
            .collect();
        // 4 MiB of values per statement: 41 rows of 100 kB.
        assert_eq!(batches(&wide)[0], 0..41);
    }
}
