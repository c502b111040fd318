//! What verify found, as reported (text and `replmend.verify/1` JSON) and as resync reads it
//! back (`--from`). Pure data.

use serde::{Deserialize, Serialize};

use crate::value::Cell;
use crate::vocab::TableRef;

pub const VERIFY_SCHEMA: &str = "replmend.verify/1";

/// A row's key: column names with values, in key order.
pub use crate::value::Key;

/// One key column as reported: its name and value as every report shows values (a string,
/// `{"hex": …}` for bytes, null). Read back with the table's definition (`key_in`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyPart {
    pub column: String,
    pub value: serde_json::Value,
}

pub type KeyOut = Vec<KeyPart>;

pub fn key_out(key: &Key) -> KeyOut {
    key.iter()
        .map(|(c, v)| KeyPart {
            column: c.clone(),
            value: serde_json::to_value(v).unwrap_or(serde_json::Value::Null),
        })
        .collect()
}

/// A reported key back as values of the table's columns; None when it names a column the
/// table lacks or a value it cannot hold.
pub fn key_in(key: &KeyOut, schema: &crate::schema::TableSchema) -> Option<Key> {
    key.iter()
        .map(|p| {
            let col = schema.column(&p.column)?;
            Some((p.column.clone(), cell_in(&p.value, col)?))
        })
        .collect()
}

fn cell_in(v: &serde_json::Value, col: &crate::schema::ColumnDef) -> Option<Cell> {
    use serde_json::Value;
    match v {
        Value::Null => Some(Cell::Null),
        Value::Object(m) => {
            let h = m.get("hex")?.as_str()?;
            let bytes = (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(h.get(i..i + 2)?, 16).ok())
                .collect::<Option<Vec<u8>>>()?;
            Some(Cell::Bytes(bytes))
        }
        Value::String(s) => Some(match col.data_type.as_str() {
            "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "decimal"
            | "float" | "double" | "real" | "year" => Cell::Number(s.clone()),
            "date" | "datetime" | "timestamp" | "time" => Cell::Temporal(s.clone()),
            "json" => Cell::Json(s.clone()),
            _ => Cell::Text(s.clone()),
        }),
        Value::Number(n) => Some(Cell::Number(n.to_string())),
        Value::Bool(_) | Value::Array(_) => None,
    }
}

/// A row whose versions differ, and in which columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Different {
    pub key: KeyOut,
    pub columns: Vec<String>,
    /// The replica's key when it differs from the source's only in bytes the key's collation
    /// treats as equal (`'abc'`/`'ABC'`, `'pad'`/`'pad '`, `'e'`/`'é'`): to the server it is
    /// the same key, so the same row in another version, not one missing and one extra row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_key: Option<KeyOut>,
}

/// A row of a table without a usable key, by its hash and how many copies each node holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MultisetRow {
    pub hash: String,
    pub source_count: u64,
    pub replica_count: u64,
    /// The row's values, when they could be read (reports only; not read back).
    #[serde(default, skip_deserializing)]
    pub row: Option<crate::value::Row>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableDrift {
    pub table: TableRef,
    /// The key chunks follow (None: no usable key; compared as a multiset of rows).
    pub key: Option<Vec<String>>,
    /// Rows on the source (the reference side).
    pub rows: u64,
    pub chunks: u64,
    /// Rows that differed when first read and matched once the replica had caught up (in
    /// flight, not drift).
    pub converged: usize,
    /// Rows still being written when the rechecks ran out (their versions changed between the
    /// last two reads): not judged, neither drift nor identical. Verify them again when quiet.
    #[serde(default)]
    pub unsettled: usize,
    /// The keys of the rows not judged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unsettled_keys: Vec<KeyOut>,
    /// Rows were not judged because the replica had not caught up when a catch-up wait
    /// (`--wait-timeout`) ran out: it lags, or applies with a delay.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub not_caught_up: bool,
    pub missing: usize,
    pub extra: usize,
    pub different: usize,
    /// Keys on the source, not on the replica.
    pub missing_keys: Vec<KeyOut>,
    /// Keys on the replica, not on the source.
    pub extra_keys: Vec<KeyOut>,
    pub different_rows: Vec<Different>,
    /// Tables without a usable key: the rows whose counts differ.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub multiset_rows: Vec<MultisetRow>,
    /// Why the table could not be compared (then nothing else is known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why the replica's replication filters keep the table out: it may differ on purpose,
    /// so it is not compared (neither identical nor drift) and resync never writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filtered: Option<String>,
    /// The one node the table exists on (its endpoint): drift no row comparison can fix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_on: Option<crate::vocab::Endpoint>,
}

impl TableDrift {
    pub fn new(table: TableRef, key: Option<Vec<String>>) -> TableDrift {
        TableDrift {
            table,
            key,
            rows: 0,
            chunks: 0,
            converged: 0,
            unsettled: 0,
            unsettled_keys: Vec::new(),
            not_caught_up: false,
            missing: 0,
            extra: 0,
            different: 0,
            missing_keys: Vec::new(),
            extra_keys: Vec::new(),
            different_rows: Vec::new(),
            multiset_rows: Vec::new(),
            error: None,
            filtered: None,
            only_on: None,
        }
    }

    /// A table the replica's replication filters keep out, not compared.
    pub fn filtered(table: TableRef, why: String) -> TableDrift {
        TableDrift {
            filtered: Some(why),
            ..TableDrift::new(table, None)
        }
    }

    /// A table that exists on one node only (`node`, its endpoint).
    pub fn only_on(table: TableRef, node: crate::vocab::Endpoint) -> TableDrift {
        TableDrift {
            only_on: Some(node),
            ..TableDrift::new(table, None)
        }
    }

    pub fn identical(&self) -> bool {
        self.error.is_none()
            && self.filtered.is_none()
            && self.only_on.is_none()
            && self.missing + self.extra + self.different == 0
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub tables: usize,
    pub identical: usize,
    pub drifted: usize,
    pub failed: usize,
    pub rows: u64,
    pub missing: usize,
    pub extra: usize,
    pub different: usize,
    /// Tables the replica's replication filters keep out (not compared).
    #[serde(default)]
    pub filtered: usize,
    /// Tables that exist on one node only (counted as drifted too).
    #[serde(default)]
    pub only_on_one_node: usize,
    /// Tables without drift but with rows not judged (`unsettled`): not counted identical.
    #[serde(default)]
    pub unsettled_tables: usize,
    /// Rows not judged, over every table.
    #[serde(default)]
    pub unsettled: usize,
}

/// How the replica replicated from the source during a verify. Anything but `Running` means
/// verify could not wait for lag: rows the replica had not applied counted as drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Replication {
    /// Its channel from the source (and in a dual-master pair the source's from it) ran,
    /// receiver and applier, from start to end.
    Running,
    /// A channel between the nodes was not running when verify began.
    Stopped,
    /// It ran when verify began, and a catch-up wait found it stopped or it had stopped by
    /// the end (it may run again by then).
    StoppedDuring,
    /// Its channels replicate from another server than the source named.
    OtherSource,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema: String,
    /// The reference node (the replica's source, or the other node of a dual-master pair).
    pub source: crate::vocab::Endpoint,
    pub replica: crate::vocab::Endpoint,
    pub dual_master: bool,
    /// What limits the result (e.g. the replica is not applying: lag counts as drift).
    pub warnings: Vec<String>,
    pub tables: Vec<TableDrift>,
    pub summary: Summary,
    pub elapsed_ms: u64,
    /// When this verify continued a stopped one (`--resume`): when that one started (seconds
    /// since the epoch). Rows compared before the stop were read then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed: Option<u64>,
    /// How the replica replicated from the source during the run (`Replication`). Absent from
    /// reports written before it was added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication: Option<Replication>,
    /// The row digest both nodes computed (`sql::RowDigest::name`): what `multiset_rows[].hash`
    /// values are. Absent from reports written before it was added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

impl Report {
    /// Rows the replica had not applied may have counted as drift (replication between the
    /// nodes was not running throughout, or runs from another server): no resync before
    /// replication is sorted out and verify has run again.
    pub fn lag_counted_as_drift(&self) -> bool {
        self.replication.is_some_and(|r| r != Replication::Running)
    }

    /// Replication between the nodes was stopped at the start of the verify or during it.
    pub fn replication_stopped(&self) -> bool {
        matches!(
            self.replication,
            Some(Replication::Stopped | Replication::StoppedDuring)
        )
    }

    pub fn new(
        source: crate::vocab::Endpoint,
        replica: crate::vocab::Endpoint,
        dual_master: bool,
    ) -> Report {
        Report {
            schema: VERIFY_SCHEMA.into(),
            source,
            replica,
            dual_master,
            warnings: Vec::new(),
            tables: Vec::new(),
            summary: Summary {
                tables: 0,
                identical: 0,
                drifted: 0,
                failed: 0,
                rows: 0,
                missing: 0,
                extra: 0,
                different: 0,
                filtered: 0,
                only_on_one_node: 0,
                unsettled_tables: 0,
                unsettled: 0,
            },
            elapsed_ms: 0,
            resumed: None,
            replication: None,
            digest: None,
        }
    }

    pub fn add(&mut self, t: TableDrift) {
        let s = &mut self.summary;
        s.tables += 1;
        match (t.error.is_some(), t.filtered.is_some(), t.identical()) {
            (true, _, _) => s.failed += 1,
            (false, true, _) => s.filtered += 1,
            (false, false, true) if t.unsettled > 0 => s.unsettled_tables += 1,
            (false, false, true) => s.identical += 1,
            (false, false, false) => s.drifted += 1,
        }
        s.only_on_one_node += usize::from(t.only_on.is_some());
        s.rows += t.rows;
        s.missing += t.missing;
        s.extra += t.extra;
        s.different += t.different;
        s.unsettled += t.unsettled;
        self.tables.push(t);
    }

    pub fn drifted(&self) -> bool {
        self.summary.drifted > 0
    }

    /// Some rows were not judged (still being written, or the replica had not caught up).
    pub fn unsettled(&self) -> bool {
        self.summary.unsettled > 0
    }
}

pub const FLEET_SCHEMA: &str = "replmend.verify-fleet/1";

/// A replica a fleet verify did not compare, and why (never left out silently).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotCompared {
    /// Where it is (None: its source lists it, but where it is could not be found).
    pub replica: Option<crate::vocab::Endpoint>,
    pub server_id: Option<u32>,
    pub error: String,
}

/// One table across the fleet: how each compared replica stands against the source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetTable {
    pub table: TableRef,
    /// The replicas whose rows differ (or that lack the table, or hold it alone).
    pub drifted: Vec<crate::vocab::Endpoint>,
    /// The replicas whose every row of the table was judged the same.
    pub identical: Vec<crate::vocab::Endpoint>,
    /// The replicas without drift in the table but with rows not judged (`unsettled` in their
    /// own report): neither identical nor drifted.
    #[serde(default)]
    pub unsettled: Vec<crate::vocab::Endpoint>,
    /// The replicas whose replication filters keep the table out.
    pub filtered: Vec<crate::vocab::Endpoint>,
    /// The replicas where the table could not be compared.
    pub failed: Vec<crate::vocab::Endpoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetSummary {
    /// Replicas found or named.
    pub replicas: usize,
    pub compared: usize,
    /// Compared replicas with no drift and every row judged (some tables may have failed:
    /// see `failed`).
    pub identical: usize,
    pub drifted: usize,
    /// Compared replicas with no drift but rows not judged (`unsettled` in their report).
    #[serde(default)]
    pub unsettled: usize,
    /// Compared replicas where some table could not be compared.
    pub failed: usize,
    pub not_compared: usize,
}

/// `replmend verify` of one source against several replicas: one `replmend.verify/1` report
/// per compared replica (what `resync --from` fixes, replica by replica), and per table which
/// replicas differ.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetReport {
    pub schema: String,
    pub source: crate::vocab::Endpoint,
    pub summary: FleetSummary,
    pub tables: Vec<FleetTable>,
    pub not_compared: Vec<NotCompared>,
    pub replicas: Vec<Report>,
    pub elapsed_ms: u64,
}

impl FleetReport {
    pub fn new(
        source: crate::vocab::Endpoint,
        replicas: Vec<Report>,
        not_compared: Vec<NotCompared>,
    ) -> FleetReport {
        let summary = FleetSummary {
            replicas: replicas.len() + not_compared.len(),
            compared: replicas.len(),
            identical: replicas
                .iter()
                .filter(|r| !r.drifted() && !r.unsettled())
                .count(),
            drifted: replicas.iter().filter(|r| r.drifted()).count(),
            unsettled: replicas
                .iter()
                .filter(|r| !r.drifted() && r.unsettled())
                .count(),
            failed: replicas.iter().filter(|r| r.summary.failed > 0).count(),
            not_compared: not_compared.len(),
        };
        FleetReport {
            schema: FLEET_SCHEMA.into(),
            source,
            summary,
            tables: fleet_tables(&replicas),
            elapsed_ms: replicas.iter().map(|r| r.elapsed_ms).max().unwrap_or(0),
            not_compared,
            replicas,
        }
    }

    pub fn drifted(&self) -> bool {
        self.summary.drifted > 0
    }
}

/// Every table any replica's report names, sorted, with where it drifted.
fn fleet_tables(replicas: &[Report]) -> Vec<FleetTable> {
    let mut out: Vec<FleetTable> = Vec::new();
    for r in replicas {
        for t in &r.tables {
            let i = match out.iter().position(|f| f.table == t.table) {
                Some(i) => i,
                None => {
                    out.push(FleetTable {
                        table: t.table.clone(),
                        drifted: Vec::new(),
                        identical: Vec::new(),
                        unsettled: Vec::new(),
                        filtered: Vec::new(),
                        failed: Vec::new(),
                    });
                    out.len() - 1
                }
            };
            let f = &mut out[i];
            let list = match (&t.error, &t.filtered, t.identical()) {
                (Some(_), _, _) => &mut f.failed,
                (None, Some(_), _) => &mut f.filtered,
                (None, None, true) if t.unsettled > 0 => &mut f.unsettled,
                (None, None, true) => &mut f.identical,
                (None, None, false) => &mut f.drifted,
            };
            list.push(r.replica.clone());
        }
    }
    out.sort_by(|a, b| (&a.table.schema, &a.table.name).cmp(&(&b.table.schema, &b.table.name)));
    out
}
