//! The conflict finder: from the failing transaction's rows events, the table's definition and
//! the conflicting key, which rows conflict on the replica and how both nodes' versions compare.
//! Pure: the nodes' current rows come through the `Rows` lookup (live servers in `inspect`,
//! fixtures in the tests).

use super::compare;
use super::model::{Conflict, ConflictKind, KeyRef, Row, RowsEventKind, TableRef};
use crate::binlog::decode::cell_from_binlog;
use crate::binlog::fetch::{ImageRow, RawRowsEvent, RawTransaction};
use crate::schema::TableSchema;
use crate::value::Cell;

/// A row's key values, in key order.
pub type Key = Vec<(String, Cell)>;

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
pub fn event_matches(ev: &RawRowsEvent, kind: ConflictKind) -> bool {
    matches!(
        (ev.kind, kind),
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

/// A duplicate conflicts where the replica has the key; a missing row where it has not.
fn conflicts_here(kind: ConflictKind, replica_row: Option<&Row>) -> bool {
    match kind {
        ConflictKind::DuplicateOnWrite | ConflictKind::DuplicateOnUpdate => replica_row.is_some(),
        _ => replica_row.is_none(),
    }
}

/// One row of a matching event: where it is, what it carries, its key.
struct Candidate<'t> {
    row_index: usize,
    before: Option<&'t ImageRow>,
    is_update: bool,
    event_row: Row,
    key: Key,
}

/// Candidates looked up at a time, so a huge transaction's keys are not all cloned at once.
const CHUNK: usize = 4096;

pub fn find(
    trx: &RawTransaction,
    table: &TableRef,
    kind: ConflictKind,
    key: &KeyRef,
    schema: &TableSchema,
    rows: &mut dyn Rows,
) -> anyhow::Result<Found> {
    let mut found = Found::default();
    let mut candidates = Vec::new();
    let events = trx
        .events
        .iter()
        .filter(|e| e.table == *table && event_matches(e, kind));
    for ev in events {
        for (i, (before, after)) in ev.rows.iter().enumerate() {
            let image = match kind {
                ConflictKind::DuplicateOnWrite | ConflictKind::DuplicateOnUpdate => after,
                _ => before,
            };
            let Some(image) = image else { continue };
            let event_row = image_row(image, schema);
            let Some(key_values) = key_values(&event_row, key) else {
                found.missing.push(format!(
                    "row {i} of the event does not carry all columns of key {}",
                    key.name
                ));
                continue;
            };
            candidates.push(Candidate {
                row_index: i,
                before: before.as_ref(),
                is_update: ev.kind == RowsEventKind::Update,
                event_row,
                key: key_values,
            });
        }
    }
    let mut conflicting: Vec<(Candidate, Option<Row>)> = Vec::new();
    let mut pending = candidates.into_iter().peekable();
    while pending.peek().is_some() {
        let chunk: Vec<Candidate> = pending.by_ref().take(CHUNK).collect();
        let keys: Vec<Key> = chunk.iter().map(|c| c.key.clone()).collect();
        let replica_rows = rows.replica(&keys)?;
        conflicting.extend(
            chunk
                .into_iter()
                .zip(replica_rows)
                .filter(|(_, r)| conflicts_here(kind, r.as_ref())),
        );
    }
    let keys: Vec<Key> = conflicting.iter().map(|(c, _)| c.key.clone()).collect();
    let source_rows = rows.source(&keys)?;
    for (i, (c, replica_row)) in conflicting.into_iter().enumerate() {
        let (source_row, known) = match &source_rows {
            Some(s) => (s.get(i).cloned().flatten(), true),
            None => (None, false),
        };
        let verdict = compare::verdict(replica_row.as_ref(), source_row.as_ref(), known);
        found.conflicts.push(Conflict {
            row_index: c.row_index,
            key: c.key,
            event_before: match c.is_update {
                true => c.before.map(|b| image_row(b, schema)),
                false => None,
            },
            event_row: c.event_row,
            replica_row,
            source_row,
            verdict,
        });
    }
    Ok(found)
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

    fn trx(kind: RowsEventKind, rows: Vec<(Option<ImageRow>, Option<ImageRow>)>) -> RawTransaction {
        RawTransaction {
            events: vec![RawRowsEvent {
                kind,
                table: table(),
                end_log_pos: 100,
                rows,
            }],
            ..Default::default()
        }
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
            &t,
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
            &t,
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
            &t,
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
