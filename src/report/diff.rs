//! Rows side by side: a changed row before and after (from its journal entry), or the two
//! nodes' versions of a conflicting row (from the diagnosis), column by column with the
//! differing columns marked. Pure.

use serde::Serialize;

use crate::journal::{Action, Entry, State, StoredRow};
use crate::value::{Cell, Row};

/// One column of two versions.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ColumnPair {
    pub column: String,
    /// None: that side has no row (or not this column).
    pub left: Option<String>,
    pub right: Option<String>,
    pub differs: bool,
}

/// Two versions of one row.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RowPair {
    /// "db2:3306 · shop.orders · id=7"
    pub title: String,
    /// What happened to it, in words.
    pub what: String,
    pub left_label: String,
    pub right_label: String,
    /// The left side's words when it has no row ("no row at this key").
    pub left_absent: Option<String>,
    pub right_absent: Option<String>,
    pub columns: Vec<ColumnPair>,
}

fn shown(c: &Cell) -> String {
    c.display()
}

fn decoded(r: &StoredRow) -> Option<Row> {
    r.row().ok()
}

fn value<'r>(r: Option<&'r Row>, name: &str) -> Option<&'r Cell> {
    r.and_then(|r| {
        r.columns
            .iter()
            .position(|c| c == name)
            .map(|i| &r.values[i])
    })
}

/// The columns of both versions, the left's order first, each compared.
pub fn pair_columns(left: Option<&Row>, right: Option<&Row>) -> Vec<ColumnPair> {
    let mut names: Vec<&String> = Vec::new();
    for r in left.iter().chain(right.iter()) {
        for c in &r.columns {
            if !names.contains(&c) {
                names.push(c);
            }
        }
    }
    names
        .into_iter()
        .map(|name| {
            let (l, r) = (value(left, name), value(right, name));
            ColumnPair {
                column: name.clone(),
                left: l.map(shown),
                right: r.map(shown),
                differs: match (l, r) {
                    (Some(a), Some(b)) => a != b,
                    _ => left.is_some() && right.is_some(),
                },
            }
        })
        .collect()
}

fn key_words(e: &Entry, row: Option<&Row>) -> String {
    let Some(row) = row else {
        return e.key.join(", ");
    };
    e.key
        .iter()
        .filter_map(|k| {
            let i = row.columns.iter().position(|c| c == k)?;
            Some(format!("{k}={}", shown(&row.values[i])))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn state_words(s: State) -> &'static str {
    match s {
        State::Done => "",
        State::RolledBack => " — rolled back: nothing changed",
        State::Intent => {
            " — its outcome was not recorded (the run was interrupted; `replmend restore` judges it by the row itself)"
        }
    }
}

/// A changed row before and after, from its journal entry.
pub fn change(e: &Entry) -> RowPair {
    let image = e.image().ok();
    let after = e.after.as_ref().and_then(decoded);
    let (before, after, what) = match e.action {
        Action::Insert => (None, image.clone(), "inserted"),
        Action::Delete if e.after.is_some() => (
            image.clone(),
            after,
            "deleted (journaled whole); after: the version the repair left at this key",
        ),
        Action::Delete => (image.clone(), after, "deleted (journaled whole)"),
        Action::Overwrite => (image.clone(), after, "overwritten by restore --force"),
        Action::LiftReadOnly | Action::RestoreReadOnly => (None, None, "read_only changed"),
    };
    let after_absent = match (e.action, e.after.is_some()) {
        (Action::Delete, false) => Some("no row left at this key (or not recorded)".to_string()),
        _ => None,
    };
    let table = e
        .table_ref()
        .map(|t| t.to_string())
        .unwrap_or_else(|| "?".into());
    RowPair {
        title: format!("{} · {} · {}", e.node, table, key_words(e, image.as_ref())),
        what: format!("{what}{}", state_words(e.state)),
        left_label: "before".into(),
        right_label: "after".into(),
        left_absent: before.is_none().then(|| "no row at this key".to_string()),
        right_absent: after.is_none().then(|| {
            after_absent
                .clone()
                .unwrap_or_else(|| "no row at this key".into())
        }),
        columns: pair_columns(before.as_ref(), after.as_ref()),
    }
}

/// A row's key values in its image, to tell two entries of the same row.
fn key_of(e: &Entry) -> Option<Vec<String>> {
    let row = e.image().ok()?;
    e.key
        .iter()
        .map(|k| {
            let i = row.columns.iter().position(|c| c == k)?;
            Some(row.values[i].display())
        })
        .collect()
}

/// The changed rows before and after: a delete and a later insert of the same row (a resync
/// replaces a row so) are one row, replaced.
pub fn changes<'e>(rows: impl IntoIterator<Item = &'e Entry>) -> Vec<RowPair> {
    let rows: Vec<&Entry> = rows.into_iter().collect();
    let same = |a: &Entry, b: &Entry| {
        a.node == b.node && a.table == b.table && a.key == b.key && key_of(a) == key_of(b)
    };
    let mut merged = vec![false; rows.len()];
    let mut out = Vec::new();
    for (i, e) in rows.iter().enumerate() {
        if merged[i] {
            continue;
        }
        let insert = (e.action == Action::Delete)
            .then(|| {
                (i + 1..rows.len())
                    .find(|&j| !merged[j] && rows[j].action == Action::Insert && same(e, rows[j]))
            })
            .flatten();
        match insert {
            Some(j) => {
                merged[j] = true;
                out.push(replaced(e, rows[j]));
            }
            None => out.push(change(e)),
        }
    }
    out
}

/// A row deleted and inserted again in another version.
fn replaced(delete: &Entry, insert: &Entry) -> RowPair {
    let before = delete.image().ok();
    let after = insert.image().ok();
    RowPair {
        what: format!(
            "replaced (the old version journaled whole){}",
            state_words(insert.state)
        ),
        left_absent: before.is_none().then(|| "unknown".to_string()),
        right_absent: after.is_none().then(|| "unknown".to_string()),
        columns: pair_columns(before.as_ref(), after.as_ref()),
        ..change(delete)
    }
}

/// The two nodes' versions of a conflicting row, as diagnosed.
pub fn conflict(
    title: String,
    verdict: &str,
    replica: Option<&StoredRow>,
    source: Option<&StoredRow>,
) -> RowPair {
    let (r, s) = (replica.and_then(decoded), source.and_then(decoded));
    RowPair {
        title,
        what: verdict.to_string(),
        left_label: "replica".into(),
        right_label: "source".into(),
        left_absent: r.is_none().then(|| "no row (or unknown)".to_string()),
        right_absent: s.is_none().then(|| "no row (or unknown)".to_string()),
        columns: pair_columns(r.as_ref(), s.as_ref()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::{Endpoint, TableRef};

    fn row(vals: &[(&str, Cell)]) -> Row {
        Row::of(vals)
    }

    #[test]
    fn a_deleted_row_shows_before_and_after_with_differing_columns_marked() {
        let before = row(&[
            ("id", Cell::Number("7".into())),
            ("v", Cell::Text("replica".into())),
        ]);
        let after = row(&[
            ("id", Cell::Number("7".into())),
            ("v", Cell::Text("source".into())),
        ]);
        let table = TableRef {
            schema: "shop".into(),
            name: "orders".into(),
        };
        let e = Entry {
            key: vec!["id".into()],
            after: Some(StoredRow::from_row(&after)),
            state: State::Done,
            ..Entry::row(
                "fp",
                "fp/2/0".into(),
                &Endpoint::new("db2", 3306),
                Action::Delete,
                &table,
                &before,
            )
        };
        let p = change(&e);
        assert_eq!(p.title, "db2:3306 · shop.orders · id=7");
        assert_eq!(
            p.what,
            "deleted (journaled whole); after: the version the repair left at this key"
        );
        let marks: Vec<(&str, bool)> = p
            .columns
            .iter()
            .map(|c| (c.column.as_str(), c.differs))
            .collect();
        assert_eq!(marks, [("id", false), ("v", true)]);
        assert_eq!(p.columns[1].left.as_deref(), Some("'replica'"));
        assert_eq!(p.columns[1].right.as_deref(), Some("'source'"));
        let inserted = change(&Entry {
            action: Action::Insert,
            after: None,
            state: State::Intent,
            ..e
        });
        assert_eq!(inserted.left_absent.as_deref(), Some("no row at this key"));
        assert!(inserted.what.contains("not recorded"), "{}", inserted.what);
    }
}
