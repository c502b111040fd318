//! Both nodes' current rows: the conflicting key, each key's row on a node (many keys per
//! round trip, `fetch_rows`), the rows read live for the conflict finder, batch look-ahead
//! over the transactions that follow, and rekey's facts (the AUTO_INCREMENT key, the foreign
//! keys referencing it, the unique keys the other node's records would clash on).

use anyhow::Result;

use crate::binlog::fetch;
use crate::conn::Server;
use crate::diagnosis::finder;
use crate::diagnosis::*;
use crate::schema::TableSchema;
use crate::sql::TableSql;
use crate::status::errortext::ParsedError;
use crate::value::Cell;

/// rekey's facts: the conflicting key is one AUTO_INCREMENT column, and the first value above
/// every row this node holds.
pub(super) fn auto_key(
    server: &mut Server,
    schema: &TableSchema,
    key: Option<&KeyRef>,
) -> Option<AutoKey> {
    let col = schema.auto_increment_key(key?)?;
    let above_max = crate::sql::next_above_max(&schema.table, &col.name);
    let max: Option<u64> = server.first(&above_max).ok().flatten();
    // The live counter can be above MAX + 1 (rows inserted, then deleted): a fresh key must
    // be above what the node will hand out next, too.
    let create: Option<(String, String)> = server
        .first(&crate::sql::show_create_table(&schema.table))
        .ok()
        .flatten();
    let counter = create.and_then(|(_, text)| crate::sql::auto_increment_option(&text));
    Some(AutoKey {
        column: col.name.clone(),
        invisible: col.invisible,
        next: max?.max(counter.unwrap_or(0)),
        referenced_by: Vec::new(),
        unique_clashes: Vec::new(),
    })
}

/// The facts that decide whether rekey keeps every record whole on this node: the foreign
/// keys referencing the AUTO_INCREMENT column, and the rows that already hold the other node's
/// record's values in another unique key. Read only for an AUTO_INCREMENT key (the only case
/// rekey is for), and again under the repair lock.
pub(super) fn rekey_facts(
    server: &mut Server,
    schema: &TableSchema,
    auto: &mut AutoKey,
    conflicts: &[Conflict],
) -> Result<()> {
    auto.referenced_by = crate::conn::catalog::referencing(server, &schema.table)?
        .into_iter()
        .filter(|fk| fk.references(&auto.column))
        .collect();
    auto.unique_clashes = unique_clashes(server, schema, &auto.column, conflicts)?;
    Ok(())
}

/// For each unique key without the AUTO_INCREMENT column (rekey changes that one, so a key
/// holding it cannot clash), the rows of this node that hold the other node's record's values
/// in it, looked up as the server compares them (collation, trailing spaces). The record itself
/// already copied here under a fresh key (an interrupted rekey) is no clash.
fn unique_clashes(
    server: &mut Server,
    schema: &TableSchema,
    auto: &str,
    conflicts: &[Conflict],
) -> Result<Vec<UniqueClash>> {
    // The other node's version of each record: its current row, else the event's.
    let records: Vec<&Row> = conflicts
        .iter()
        .map(|c| c.source_row.as_ref().unwrap_or(&c.event_row))
        .collect();
    let mut out = Vec::new();
    for key in schema
        .unique_keys
        .iter()
        .filter(|k| !k.columns.iter().any(|c| c == auto))
    {
        let asked: Vec<(&Row, finder::Key)> = records
            .iter()
            .filter_map(|r| Some((*r, unique_values(r, key)?)))
            .collect();
        let keys: Vec<finder::Key> = asked.iter().map(|(_, k)| k.clone()).collect();
        let found = fetch_rows(server, schema, &keys)?;
        for ((record, values), holder) in asked.into_iter().zip(found) {
            if let Some(h) = holder.filter(|h| !h.same_but(record, auto)) {
                out.push(UniqueClash {
                    key: key.name.clone(),
                    values,
                    holder: identifying(schema, &h),
                });
            }
        }
    }
    Ok(out)
}

/// The record's values in `key`; None when one is NULL (NULLs never clash in a unique key)
/// or missing from the row image (not known).
fn unique_values(record: &Row, key: &KeyRef) -> Option<finder::Key> {
    key.columns
        .iter()
        .map(|c| {
            record
                .get(c)
                .filter(|v| **v != Cell::Null)
                .map(|v| (c.clone(), v.clone()))
        })
        .collect()
}

/// The row's identifying key (its primary key, else its first unique key).
fn identifying(schema: &TableSchema, row: &Row) -> Vec<(String, Cell)> {
    let columns = schema.identifying_key().map(|k| k.columns.as_slice());
    columns
        .unwrap_or_default()
        .iter()
        .filter_map(|c| row.get(c).map(|v| (c.clone(), v.clone())))
        .collect()
}

/// The conflicting key: the one the error names for a duplicate, the row's identifying key
/// for a missing row.
pub(super) fn conflicting_key(
    kind: ConflictKind,
    parsed: &ParsedError,
    schema: &TableSchema,
    missing: &mut Vec<String>,
) -> Option<KeyRef> {
    let key = match kind {
        ConflictKind::DuplicateOnWrite | ConflictKind::DuplicateOnUpdate => parsed
            .key_name
            .as_deref()
            .and_then(|n| schema.key(n))
            .cloned(),
        _ => schema.identifying_key().cloned(),
    };
    if key.is_none() {
        missing.push(format!(
            "{} has no usable unique key{}: rows cannot be identified exactly",
            schema.table,
            parsed
                .key_name
                .as_deref()
                .map(|k| format!(" named {k}"))
                .unwrap_or_default()
        ));
    }
    key
}

/// Both nodes' rows, read live for the finder.
pub(super) struct LiveRows<'a> {
    pub(super) replica: &'a mut Server,
    pub(super) replica_schema: &'a TableSchema,
    pub(super) source: Option<(&'a mut Server, &'a TableSchema)>,
}

impl finder::Rows for LiveRows<'_> {
    fn replica(&mut self, keys: &[finder::Key]) -> Result<Vec<Option<Row>>> {
        fetch_rows(self.replica, self.replica_schema, keys)
    }

    fn source(&mut self, keys: &[finder::Key]) -> Result<Option<Vec<Option<Row>>>> {
        match self.source.as_mut() {
            Some((server, schema)) => Ok(Some(fetch_rows(server, schema, keys)?)),
            None => Ok(None),
        }
    }
}

/// Keys looked up per round trip: a million-row transaction needs a thousand round trips;
/// small enough for any max_allowed_packet.
const KEYS_PER_QUERY: usize = 1000;

/// The node's current row for each key, many keys per round trip.
pub fn fetch_rows(
    server: &mut Server,
    schema: &TableSchema,
    keys: &[finder::Key],
) -> Result<Vec<Option<Row>>> {
    let columns = schema.column_names();
    let sql = TableSql::new(schema);
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(KEYS_PER_QUERY) {
        out.extend(fetch_chunk(server, schema, &sql, &columns, chunk)?);
    }
    Ok(out)
}

/// The keys, the last one repeated up to the next power of two (at most KEYS_PER_QUERY): a
/// session that looks up 999 keys and then 1,000 prepares one statement, not two (a prepare
/// of 1,000 placeholders costs about as much as its execution). Repeats match nothing new.
fn padded(keys: &[finder::Key]) -> std::borrow::Cow<'_, [finder::Key]> {
    let n = keys
        .len()
        .next_power_of_two()
        .min(KEYS_PER_QUERY)
        .max(keys.len());
    match keys.last() {
        Some(last) if n > keys.len() => {
            let mut v = keys.to_vec();
            v.resize(n, last.clone());
            std::borrow::Cow::Owned(v)
        }
        _ => std::borrow::Cow::Borrowed(keys),
    }
}

/// One `IN` query for the chunk; rows are mapped back to keys byte for byte. Keys holding
/// NULL, or a row that matched its key only under the collation (case, trailing spaces), send
/// the chunk to one point lookup per key instead (a UNION ALL, still one round trip).
fn fetch_chunk(
    server: &mut Server,
    schema: &TableSchema,
    sql: &TableSql<'_>,
    columns: &[String],
    keys: &[finder::Key],
) -> Result<Vec<Option<Row>>> {
    let integers = &sql.facts().integer_columns;
    let has_null = keys.iter().any(|k| k.iter().any(|(_, v)| *v == Cell::Null));
    if !has_null && let Some(first) = keys.first() {
        // A one-column integer key's statement follows its runs, not the number of keys:
        // padding it would only copy the keys.
        let ranged = matches!(first.as_slice(), [(c, _)] if integers.contains(c));
        let asked = match ranged {
            true => std::borrow::Cow::Borrowed(keys),
            false => padded(keys),
        };
        let st = sql.select_in(columns, &asked);
        let found = server.read_rows(schema, columns, &st)?;
        if found.is_empty() {
            return Ok(vec![None; keys.len()]);
        }
        // Each key's first place in the chunk; a row is moved there, and a key asked for
        // twice gets a copy.
        let mut place: std::collections::HashMap<&finder::Key, usize> =
            std::collections::HashMap::with_capacity(keys.len());
        for (i, k) in keys.iter().enumerate() {
            place.entry(k).or_insert(i);
        }
        let mut out: Vec<Option<Row>> = vec![None; keys.len()];
        let mut all_exact = true;
        for row in found {
            let key: Option<finder::Key> = first
                .iter()
                .map(|(c, _)| row.get(c).map(|v| (c.clone(), v.clone())))
                .collect();
            match key.as_ref().and_then(|k| place.get(k)) {
                Some(&i) => out[i] = Some(row),
                None => all_exact = false,
            }
        }
        if all_exact {
            if place.len() < keys.len() {
                for (i, k) in keys.iter().enumerate() {
                    let at = place[k];
                    if at != i {
                        out[i] = out[at].clone();
                    }
                }
            }
            return Ok(out);
        }
    }
    let st = sql.select_many_by_key(columns, keys);
    Ok(server.read_rows_by_index(schema, columns, &st, keys.len())?)
}

/// The node's current row with these key values, by bound parameters.
pub fn fetch_row(
    server: &mut Server,
    schema: &TableSchema,
    key: &[(String, Cell)],
) -> Result<Option<Row>> {
    let columns = schema.column_names();
    let st = TableSql::new(schema).select_by_key(&columns, key, false);
    Ok(server.read_row(schema, &columns, &st)?)
}

/// Batch mode: the rows the `following` transactions will stop on the way the incident did
/// — a duplicate key the replica already holds (writes and updates), a row it lacks (updates
/// and deletes) — each with both nodes' current versions, so one plan resolves them all in
/// one stop/start.
pub fn look_ahead(
    d: &mut Diagnosis,
    following: &[fetch::Following],
    replica: &mut Server,
    source: &mut Server,
) -> Result<()> {
    let Some(key) = &d.key else {
        return Ok(());
    };
    // The source's definition decodes its binlog's images.
    let ss = source.table(&d.table)?;
    let mut seen: std::collections::HashSet<finder::Key> =
        d.conflicts.iter().map(|c| c.key.clone()).collect();
    let events = following.iter().flat_map(|(_, evs)| evs);
    let candidates = finder::ahead(d.kind, events, key, &ss, &mut seen);
    let keys: Vec<finder::Key> = candidates.iter().map(|c| c.key.clone()).collect();
    crate::timing::mark(format_args!("{} candidates decoded", keys.len()));
    // Both nodes at once: in a stream of conflicts nearly every candidate conflicts, so the
    // source's rows of all of them are wanted anyway.
    let (replica_rows, source_rows) = rows_on_both(replica, source, &d.table, &[keys])?;
    crate::timing::mark("their rows read on both nodes");
    // Reserved at once: growing a vector of 10,000 conflicts by doubling copied it into fresh
    // pages again and again (a tenth of a 10,000-conflict repair's CPU, measured with perf).
    d.upcoming.reserve(candidates.len());
    let found = candidates
        .into_iter()
        .zip(replica_rows)
        .zip(source_rows)
        .filter(|((_, r), _)| finder::conflicts_here(d.kind, r.as_ref()))
        .filter(|((c, r), _)| match (r, &c.event_before) {
            // Updates of duplicates only: a missing row has no replica row.
            (Some(r), Some(b)) => !finder::updates_itself(&d.row_key, r, b),
            _ => true,
        });
    for ((c, replica_row), source_row) in found {
        let verdict = compare::verdict(replica_row.as_ref(), source_row.as_ref(), true);
        d.upcoming.push(Conflict {
            row_index: c.row_index,
            key: c.key,
            event_row: c.event_row,
            event_before: c.event_before,
            replica_row,
            source_row,
            verdict,
            origin: None,
        });
    }
    Ok(())
}

/// Each key's row on one node (None: no such row).
pub type Versions = Vec<Option<Row>>;

/// Both servers' rows of a table for each key, looked up on both at once; the keys come in
/// groups of the same columns (one `IN` list per 1,000 keys of a group).
pub fn rows_on_both(
    a: &mut Server,
    b: &mut Server,
    table: &TableRef,
    groups: &[Vec<finder::Key>],
) -> Result<(Versions, Versions)> {
    crate::conn::both(a, b, |server| rows_on(server, table, groups))
}

/// One server's rows of a table for each key of the groups, in order.
pub fn rows_on(
    server: &mut Server,
    table: &TableRef,
    groups: &[Vec<finder::Key>],
) -> Result<Versions> {
    let sch = server.table(table)?;
    let mut rows = Vec::new();
    for keys in groups {
        rows.extend(fetch_rows(server, &sch, keys)?);
    }
    Ok(rows)
}
