//! The conflict finder: from the failing transaction's rows events, the table's definition and
//! the conflicting key, which rows conflict on the replica and how both nodes' versions compare.
//! Pure: the nodes' current rows come through the `Rows` lookup (live servers in `inspect`,
//! fixtures in the tests).

use super::compare;
use super::model::{Conflict, ConflictKind, KeyKind, KeyRef, Row, RowsEventKind, TableRef};
use crate::binlog::fetch::{ImageRow, RawRowsEvent};
use crate::decode::cell_from_binlog;
use crate::schema::TableSchema;
use crate::value::Cell;

/// A row's key values, in key order.
pub use crate::value::Key;

/// The nodes' current rows, looked up many keys at a time (a transaction can hold millions of
/// rows: one round trip per row is what made big transactions slow).
pub trait Rows {
    /// The replica's row for each key.
    fn replica(&mut self, keys: &[Key]) -> anyhow::Result<Vec<Option<Row>>>;
    /// The source's row for each key; Ok(None): the source cannot be read.
    fn source(&mut self, keys: &[Key]) -> anyhow::Result<Option<Vec<Option<Row>>>>;
}

#[derive(Debug, Default)]
pub struct Found {
    pub conflicts: Vec<Conflict>,
    /// What could not be determined, in words.
    pub missing: Vec<String>,
}

/// The rows events that can have failed with this kind of conflict.
pub fn event_matches(ev: RowsEventKind, kind: ConflictKind) -> bool {
    matches!(
        (ev, kind),
        (RowsEventKind::Write, ConflictKind::DuplicateOnWrite)
            | (RowsEventKind::Update, ConflictKind::DuplicateOnUpdate)
            | (RowsEventKind::Update, ConflictKind::MissingOnUpdate)
            | (RowsEventKind::Delete, ConflictKind::MissingOnDelete)
    )
}

/// A row image as named columns (only the columns the image carries).
pub fn image_row(image: &ImageRow, schema: &TableSchema) -> Row {
    let mut columns = Vec::new();
    let mut values = Vec::new();
    for (i, v) in image.iter().enumerate() {
        let (Some(v), Some(col)) = (v, schema.columns.get(i)) else {
            continue;
        };
        columns.push(col.name.clone());
        values.push(cell_from_binlog(v, col));
    }
    Row { columns, values }
}

/// The key's values in a row, in key order; None when the image lacks a key column.
pub fn key_values(row: &Row, key: &KeyRef) -> Option<Vec<(String, Cell)>> {
    key.columns
        .iter()
        .map(|c| row.get(c).map(|v| (c.clone(), v.clone())))
        .collect()
}

/// Each key column's position in a row image of `schema`; None when one is not in it.
pub fn key_slots(key: &KeyRef, schema: &TableSchema) -> Option<Vec<(String, usize)>> {
    key.columns
        .iter()
        .map(|c| {
            let i = schema.columns.iter().position(|col| col.name == *c)?;
            Some((c.clone(), i))
        })
        .collect()
}

/// The key's values in a row image, decoded as the diagnosis decodes them, in key order;
/// None when the image lacks a key column.
pub fn image_key(slots: &[(String, usize)], schema: &TableSchema, image: &ImageRow) -> Option<Key> {
    slots
        .iter()
        .map(|(name, i)| {
            let v = image.get(*i)?.as_ref()?;
            Some((name.clone(), cell_from_binlog(v, &schema.columns[*i])))
        })
        .collect()
}

/// A duplicate conflicts where the replica has the key; a missing row where it has not.
pub fn conflicts_here(kind: ConflictKind, replica_row: Option<&Row>) -> bool {
    match kind {
        ConflictKind::DuplicateOnWrite | ConflictKind::DuplicateOnUpdate => replica_row.is_some(),
        _ => replica_row.is_none(),
    }
}

/// One row of a matching event: where it is, its images (its key is kept beside it). The
/// images stay as the binlog decoded them: only the few rows that conflict are turned into
/// named rows.
struct Candidate {
    row_index: usize,
    before: Option<ImageRow>,
    image: ImageRow,
    is_update: bool,
}

/// Candidates looked up at a time: memory stays flat however many rows the transaction has.
const CHUNK: usize = 4096;

/// Finds the conflicting rows of a transaction fed to it one rows event at a time, as the
/// binlog is read: candidates are looked up on the replica in batches and dropped unless they
/// conflict.
pub struct Finder<'s> {
    table: &'s TableRef,
    kind: ConflictKind,
    key: &'s KeyRef,
    schema: &'s TableSchema,
    /// Each key column's position in the row image.
    key_slots: Option<Vec<(String, usize)>>,
    pending: Vec<Candidate>,
    pending_keys: Vec<Key>,
    conflicting: Vec<(Candidate, Key, Option<Row>)>,
    /// Rows events of the table seen (of any kind).
    pub table_events: usize,
    keyless_rows: usize,
    first_keyless: Option<usize>,
}

impl<'s> Finder<'s> {
    pub fn new(
        table: &'s TableRef,
        kind: ConflictKind,
        key: &'s KeyRef,
        schema: &'s TableSchema,
    ) -> Self {
        let key_slots = key_slots(key, schema);
        Finder {
            table,
            kind,
            key,
            schema,
            key_slots,
            pending: Vec::new(),
            pending_keys: Vec::new(),
            conflicting: Vec::new(),
            table_events: 0,
            keyless_rows: 0,
            first_keyless: None,
        }
    }

    /// A new transaction starts: what was seen belonged to another one.
    pub fn reset(&mut self) {
        self.pending.clear();
        self.pending_keys.clear();
        self.conflicting.clear();
        self.table_events = 0;
        self.keyless_rows = 0;
        self.first_keyless = None;
    }

    /// The key's values in an image, in key order; None when the image lacks a key column.
    fn image_key(&self, image: &ImageRow) -> Option<Key> {
        image_key(self.key_slots.as_deref()?, self.schema, image)
    }

    /// One rows event of the transaction, in binlog order.
    pub fn push(&mut self, ev: RawRowsEvent, rows: &mut dyn Rows) -> anyhow::Result<()> {
        if ev.table != *self.table {
            return Ok(());
        }
        self.table_events += 1;
        if !event_matches(ev.kind, self.kind) {
            return Ok(());
        }
        let is_update = ev.kind == RowsEventKind::Update;
        let on_after = matches!(
            self.kind,
            ConflictKind::DuplicateOnWrite | ConflictKind::DuplicateOnUpdate
        );
        for (row_index, (before, after)) in ev.rows.into_iter().enumerate() {
            // A missing row is identified by its before image, which is then also the
            // update's "before"; a duplicate by its after image.
            let (image, before) = match on_after {
                true => (after, before.filter(|_| is_update)),
                false => (before, None),
            };
            let Some(image) = image else { continue };
            let Some(key) = self.image_key(&image) else {
                self.keyless_rows += 1;
                self.first_keyless.get_or_insert(row_index);
                continue;
            };
            self.pending.push(Candidate {
                row_index,
                before,
                image,
                is_update,
            });
            self.pending_keys.push(key);
            if self.pending.len() >= CHUNK {
                self.flush(rows)?;
            }
        }
        Ok(())
    }

    fn flush(&mut self, rows: &mut dyn Rows) -> anyhow::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let replica_rows = rows.replica(&self.pending_keys)?;
        let kind = self.kind;
        let itself = self.updated_row_test();
        let chunk = self.pending.drain(..).zip(self.pending_keys.drain(..));
        self.conflicting.extend(
            chunk
                .zip(replica_rows)
                .filter(|((c, _), r)| conflicts_here(kind, r.as_ref()) && !itself(c, r.as_ref()))
                .map(|((c, k), r)| (c, k, r)),
        );
        Ok(())
    }

    /// For a duplicate on update: whether the replica's row at a candidate's new key is the
    /// very row the update changes (a row of a multi-row update whose key stays the same).
    /// Such a row is no conflict: deleting it would only make the update fail with 1032.
    fn updated_row_test(&self) -> impl Fn(&Candidate, Option<&Row>) -> bool + use<'s> {
        let schema = self.schema;
        let row_key: Vec<String> = schema
            .identifying_key()
            .filter(|k| k.kind == KeyKind::Primary)
            .unwrap_or(self.key)
            .columns
            .clone();
        let on_update = self.kind == ConflictKind::DuplicateOnUpdate;
        move |c: &Candidate, replica_row: Option<&Row>| match (on_update, &c.before, replica_row) {
            (true, Some(before), Some(r)) => {
                updates_itself(&row_key, r, &image_row(before, schema))
            }
            _ => false,
        }
    }

    /// The transaction is complete: the conflicts, compared with the source's rows.
    pub fn finish(mut self, rows: &mut dyn Rows) -> anyhow::Result<Found> {
        self.flush(rows)?;
        let mut found = Found::default();
        if let Some(first) = self.first_keyless {
            found.missing.push(format!(
                "row {first} of the event{} does not carry all columns of key {}",
                match self.keyless_rows {
                    1 => String::new(),
                    n => format!(" (and {} more rows)", n - 1),
                },
                self.key.name
            ));
        }
        let keys: Vec<Key> = self.conflicting.iter().map(|(_, k, _)| k.clone()).collect();
        let source_rows = rows.source(&keys)?;
        for (i, (c, key, replica_row)) in self.conflicting.into_iter().enumerate() {
            let (source_row, known) = match &source_rows {
                Some(s) => (s.get(i).cloned().flatten(), true),
                None => (None, false),
            };
            let verdict = compare::verdict(replica_row.as_ref(), source_row.as_ref(), known);
            found.conflicts.push(Conflict {
                row_index: c.row_index,
                key,
                event_before: match (c.is_update, &c.before) {
                    (false, _) => None,
                    (true, Some(b)) => Some(image_row(b, self.schema)),
                    (true, None) => Some(image_row(&c.image, self.schema)),
                },
                event_row: image_row(&c.image, self.schema),
                replica_row,
                source_row,
                verdict,
                origin: None,
            });
        }
        Ok(found)
    }
}

/// A row of a transaction after the failing one that can stop the replica the way it did.
pub struct Ahead {
    pub row_index: usize,
    pub key: Key,
    /// As in `Conflict`: the write's or update's after image, the missing row's before image.
    pub event_row: Row,
    /// An update's before image.
    pub event_before: Option<Row>,
}

/// Batch mode: the rows of the following transactions (their rows events of the table, in
/// binlog order) that can stop the replica the way `kind` did — a duplicate: a write or update
/// to a key (`key`) the replica may already hold; a missing row: an update or delete of a key
/// it may lack. Each key once, and the first event touching a key decides: a key the stream
/// itself deletes, updates or creates first is the stream's business (removing the replica's
/// row before the stream deletes it would only move the stop). `seen` holds the incident's own
/// keys. Whether a candidate really conflicts is for the replica's rows to say.
pub fn ahead<'e>(
    kind: ConflictKind,
    events: impl IntoIterator<Item = &'e RawRowsEvent>,
    key: &KeyRef,
    schema: &TableSchema,
    seen: &mut std::collections::HashSet<Key>,
) -> Vec<Ahead> {
    let duplicate = matches!(
        kind,
        ConflictKind::DuplicateOnWrite | ConflictKind::DuplicateOnUpdate
    );
    let mut out = Vec::new();
    for ev in events {
        let update = ev.kind == RowsEventKind::Update;
        for (row_index, (before, after)) in ev.rows.iter().enumerate() {
            let before = before.as_ref().map(|b| image_row(b, schema));
            let after = after.as_ref().map(|a| image_row(a, schema));
            // Each image's key once (a batch decodes thousands of rows).
            let before_key = before.as_ref().and_then(|b| key_values(b, key));
            let after_key = after.as_ref().and_then(|a| key_values(a, key));
            let (target, target_key) = match (duplicate, ev.kind) {
                (true, RowsEventKind::Write | RowsEventKind::Update) => (&after, &after_key),
                (false, RowsEventKind::Update | RowsEventKind::Delete) => (&before, &before_key),
                _ => (&None, &None),
            };
            if let (Some(t), Some(k)) = (target, target_key)
                && !seen.contains(k)
            {
                out.push(Ahead {
                    row_index,
                    key: k.clone(),
                    event_row: t.clone(),
                    event_before: before.clone().filter(|_| update),
                });
            }
            seen.extend(before_key.into_iter().chain(after_key));
        }
    }
    out
}

/// The replica's row holding an update's new key is the very row it updates (same
/// identifying key as its before image): no conflict. Unknown (an image without those
/// columns) counts as the same, so the row is left alone.
pub fn updates_itself(row_key: &[String], replica_row: &Row, before: &Row) -> bool {
    row_key
        .iter()
        .all(|c| match (replica_row.get(c), before.get(c)) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        })
}

/// All conflicts of a transaction whose rows events are at hand.
pub fn find(
    events: Vec<RawRowsEvent>,
    table: &TableRef,
    kind: ConflictKind,
    key: &KeyRef,
    schema: &TableSchema,
    rows: &mut dyn Rows,
) -> anyhow::Result<Found> {
    let mut finder = Finder::new(table, kind, key, schema);
    for ev in events {
        finder.push(ev, rows)?;
    }
    finder.finish(rows)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use mysql::Value;
    use mysql::binlog::value::BinlogValue;

    use super::*;
    use crate::diagnosis::{KeyKind, Verdict};
    use crate::schema::ColumnDef;

    fn col(name: &str, data_type: &str) -> ColumnDef {
        ColumnDef {
            name: name.into(),
            data_type: data_type.into(),
            column_type: data_type.into(),
            unsigned: false,
            fsp: 0,
            binary: false,
            charset: (data_type == "varchar").then(|| "utf8mb4".into()),
            generated: false,
            auto_increment: false,
            invisible: false,
            nullable: true,
        }
    }

    fn table() -> TableRef {
        TableRef {
            schema: "shop".into(),
            name: "users".into(),
        }
    }

    fn schema() -> TableSchema {
        TableSchema {
            table: table(),
            columns: vec![col("id", "int"), col("name", "varchar")],
            unique_keys: vec![pk()],
        }
    }

    fn pk() -> KeyRef {
        KeyRef {
            name: "PRIMARY".into(),
            kind: KeyKind::Primary,
            columns: vec!["id".into()],
        }
    }

    fn image(id: i64, name: &str) -> ImageRow {
        vec![
            Some(BinlogValue::Value(Value::Int(id))),
            Some(BinlogValue::Value(Value::Bytes(name.as_bytes().to_vec()))),
        ]
    }

    fn row(id: i64, name: &str) -> Row {
        Row {
            columns: vec!["id".into(), "name".into()],
            values: vec![Cell::Number(id.to_string()), Cell::Text(name.into())],
        }
    }

    /// Rows by id on each node; `source: None` is an unreachable source.
    struct Fixture {
        replica: HashMap<String, Row>,
        source: Option<HashMap<String, Row>>,
    }

    fn id_of(key: &[(String, Cell)]) -> String {
        key[0].1.display()
    }

    impl Rows for Fixture {
        fn replica(&mut self, keys: &[Key]) -> anyhow::Result<Vec<Option<Row>>> {
            Ok(keys
                .iter()
                .map(|k| self.replica.get(&id_of(k)).cloned())
                .collect())
        }
        fn source(&mut self, keys: &[Key]) -> anyhow::Result<Option<Vec<Option<Row>>>> {
            Ok(self
                .source
                .as_ref()
                .map(|s| keys.iter().map(|k| s.get(&id_of(k)).cloned()).collect()))
        }
    }

    fn trx(
        kind: RowsEventKind,
        rows: Vec<(Option<ImageRow>, Option<ImageRow>)>,
    ) -> Vec<RawRowsEvent> {
        vec![RawRowsEvent {
            kind,
            table: table(),
            end_log_pos: 100,
            rows,
        }]
    }

    #[test]
    fn only_rows_present_on_the_replica_conflict_on_insert() {
        let t = trx(
            RowsEventKind::Write,
            (1..=3).map(|i| (None, Some(image(i, "src")))).collect(),
        );
        let mut fx = Fixture {
            replica: HashMap::from([("2".into(), row(2, "mine"))]),
            source: Some(HashMap::from([("2".into(), row(2, "src"))])),
        };
        let f = find(
            t,
            &table(),
            ConflictKind::DuplicateOnWrite,
            &pk(),
            &schema(),
            &mut fx,
        )
        .unwrap();
        assert_eq!(f.conflicts.len(), 1);
        let c = &f.conflicts[0];
        assert_eq!(
            (c.row_index, c.key.clone()),
            (1, vec![("id".into(), Cell::Number("2".into()))])
        );
        assert_eq!(
            c.verdict,
            Verdict::Differs {
                columns: vec!["name".into()]
            }
        );
        assert_eq!(c.event_row, row(2, "src"));
    }

    #[test]
    fn a_row_a_multi_row_update_keeps_under_its_key_is_no_conflict() {
        // UPDATE … SET id = id + 1 WHERE id = 2 together with a change of row 1's name: row 1
        // keeps its key (the replica's row 1 is the updated row itself), row 2 moves onto 3,
        // which the replica already holds: only that is a conflict.
        let t = trx(
            RowsEventKind::Update,
            vec![
                (Some(image(1, "a")), Some(image(1, "b"))),
                (Some(image(2, "x")), Some(image(3, "x"))),
            ],
        );
        let mut fx = Fixture {
            replica: HashMap::from([("1".into(), row(1, "a")), ("3".into(), row(3, "mine"))]),
            source: Some(HashMap::new()),
        };
        let f = find(
            t,
            &table(),
            ConflictKind::DuplicateOnUpdate,
            &pk(),
            &schema(),
            &mut fx,
        )
        .unwrap();
        let keys: Vec<String> = f.conflicts.iter().map(|c| id_of(&c.key)).collect();
        assert_eq!(keys, vec!["3".to_string()]);
    }

    #[test]
    fn missing_rows_conflict_on_update_and_an_unreachable_source_is_unknown() {
        let t = trx(
            RowsEventKind::Update,
            vec![(Some(image(7, "old")), Some(image(7, "new")))],
        );
        let mut fx = Fixture {
            replica: HashMap::new(),
            source: None,
        };
        let f = find(
            t,
            &table(),
            ConflictKind::MissingOnUpdate,
            &pk(),
            &schema(),
            &mut fx,
        )
        .unwrap();
        assert_eq!(f.conflicts.len(), 1);
        assert_eq!(f.conflicts[0].event_before, Some(row(7, "old")));
        assert_eq!(f.conflicts[0].event_row, row(7, "old"));
        assert_eq!(f.conflicts[0].verdict, Verdict::SourceUnknown);
    }

    #[test]
    fn an_image_without_the_key_is_named_not_guessed() {
        let t = trx(
            RowsEventKind::Delete,
            vec![(
                Some(vec![
                    None,
                    Some(BinlogValue::Value(Value::Bytes(b"x".to_vec()))),
                ]),
                None,
            )],
        );
        let mut fx = Fixture {
            replica: HashMap::new(),
            source: Some(HashMap::new()),
        };
        let f = find(
            t,
            &table(),
            ConflictKind::MissingOnDelete,
            &pk(),
            &schema(),
            &mut fx,
        )
        .unwrap();
        assert!(f.conflicts.is_empty());
        assert!(
            f.missing[0].contains("does not carry all columns of key PRIMARY"),
            "{:?}",
            f.missing
        );
    }
}
