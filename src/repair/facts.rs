//! Facts about the world a row write lands in, read on the node written just before the
//! first change: triggers that fire on replmend's DELETE and INSERT (no session variable turns
//! them off, binary log off or not), and the child rows of a table replmend deletes rows of
//! (its foreign keys are `conn::catalog::referencing`). The preflight refuses what they forbid,
//! naming them.

use crate::conn::Server;
use crate::value::Cell;
use crate::value::Row;
use crate::vocab::{ForeignKeyRef, TableRef};

/// A trigger on a table, as information_schema.TRIGGERS names it.
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    pub name: String,
    /// BEFORE / AFTER.
    pub timing: String,
    /// INSERT / UPDATE / DELETE.
    pub event: String,
}

impl std::fmt::Display for Trigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({} {})", self.name, self.timing, self.event)
    }
}

/// The triggers on `table` that fire on a DELETE or an INSERT. information_schema shows a
/// trigger only to an account with the TRIGGER privilege on its table (docs/safety.md).
pub fn triggers(server: &mut Server, table: &TableRef) -> anyhow::Result<Vec<Trigger>> {
    let rows: Vec<(String, String, String)> =
        server.all(&crate::sql::catalog::insert_delete_triggers(table))?;
    Ok(rows
        .into_iter()
        .map(|(name, timing, event)| Trigger {
            name,
            timing,
            event,
        })
        .collect())
}

/// Rows of the child table that reference any of the parent rows (a parent row with a NULL
/// in a referenced column is referenced by none).
pub fn referencing_rows(
    server: &mut Server,
    fk: &ForeignKeyRef,
    parents: &[&Row],
) -> anyhow::Result<u64> {
    let keys: Vec<Vec<(String, Cell)>> = parents
        .iter()
        .filter_map(|row| {
            fk.columns
                .iter()
                .zip(&fk.referenced_columns)
                .map(|(c, p)| match row.get(p) {
                    Some(Cell::Null) | None => None,
                    Some(v) => Some((c.clone(), v.clone())),
                })
                .collect::<Option<Vec<_>>>()
        })
        .collect();
    let mut n = 0;
    for chunk in keys.chunks(500) {
        let st = crate::sql::count_referencing(&fk.child, chunk);
        n += server.first::<u64>(&st)?.unwrap_or(0);
    }
    Ok(n)
}
