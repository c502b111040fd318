//! The diagnosis: everything known about one stopped channel, as plain data. Built by
//! `inspect` from live servers, consumed by the planner and the renderers. Serialized as
//! the versioned JSON document described in docs/json.md (`replmend.diagnosis/1`).

use serde::Serialize;

use crate::flavor::Flavor;
use crate::value::Cell;
pub use crate::value::Row;
pub use crate::vocab::{
    ConflictKind, ForeignKeyRef, KeyKind, KeyRef, ReadOnly, ReferentialAction, RowsEventKind,
    TableRef,
};
use crate::vocab::{Endpoint, Gtid};

pub const DIAGNOSIS_SCHEMA: &str = "replmend.diagnosis/1";

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NodeRef {
    pub endpoint: Endpoint,
    pub flavor: Flavor,
    pub server_id: u32,
    pub server_uuid: Option<String>,
    /// read_only / super_read_only when the node was diagnosed.
    pub read_only: ReadOnly,
    /// What this account may do there (the probe): plain statements, or the managed
    /// service's procedures instead.
    pub capabilities: crate::capability::Capabilities,
}

/// The conflicting key is one AUTO_INCREMENT column (a generated invisible primary key is
/// one too): what rekey needs.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AutoKey {
    pub column: String,
    /// MySQL's generated invisible primary key (my_row_id) or another INVISIBLE column.
    pub invisible: bool,
    /// The first value above everything this node has used or reserved
    /// (MAX(column) + 1 and the table's AUTO_INCREMENT counter).
    pub next: u64,
    /// Foreign keys on this node whose referenced columns include `column`: their child rows
    /// follow the key value, not the record, so rekey cannot move them with it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub referenced_by: Vec<ForeignKeyRef>,
    /// Rows on this node that already hold the other node's record's values in another
    /// unique key: that record cannot be added here under any key.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unique_clashes: Vec<UniqueClash>,
}

/// The other node's record holds `values` in unique key `key`, and so does the row
/// `holder` on this node (matched as the server compares them, under the columns'
/// collation).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct UniqueClash {
    pub key: String,
    #[serde(serialize_with = "key_as_objects")]
    pub values: Vec<(String, Cell)>,
    /// The holding row's identifying key.
    #[serde(serialize_with = "key_as_objects")]
    pub holder: Vec<(String, Cell)>,
}

/// One rows event of the failing transaction.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EventSummary {
    pub kind: RowsEventKind,
    pub table: TableRef,
    pub rows: usize,
    pub end_log_pos: u64,
    /// True for the event the applier failed on.
    pub failed: bool,
}

/// The failing transaction as read from the source's binlog.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Transaction {
    pub source_log_file: String,
    /// Where the transaction starts (its GTID or BEGIN event).
    pub start_pos: u64,
    /// Where the transaction ends (after its XID/COMMIT).
    pub end_pos: u64,
    /// end_log_pos of the failing event, from the error.
    pub failed_event_end_log_pos: u64,
    pub gtid: Option<Gtid>,
    pub events: Vec<EventSummary>,
    /// Rows in all rows events of the transaction.
    pub rows_total: usize,
    /// The original statement, when the source logs it (MySQL binlog_rows_query_log_events).
    pub statement: Option<String>,
    /// Bytes read from the source's binlog to find and decode it.
    pub bytes_read: u64,
}

/// How the two nodes' current versions of a conflicting row compare.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    Identical,
    Differs {
        columns: Vec<String>,
    },
    AbsentOnSource,
    AbsentOnReplica,
    AbsentOnBoth,
    /// The source could not be read: only the replica's side is known.
    SourceUnknown,
}

/// One row of the failing transaction that conflicts on the replica.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Conflict {
    /// Index of the row within the failing event (0-based).
    pub row_index: usize,
    /// The unique key and its values, taken from the row image, in key order.
    #[serde(serialize_with = "key_as_objects")]
    pub key: Vec<(String, Cell)>,
    /// What the event wanted: the after image of a write/update, the before image of a delete
    /// (columns present in the image only, with binlog_row_image=MINIMAL).
    pub event_row: Row,
    /// For updates, the before image.
    pub event_before: Option<Row>,
    pub replica_row: Option<Row>,
    pub source_row: Option<Row>,
    pub verdict: Verdict,
    /// Who last wrote the key on each node (`diagnose`/`plan` search the nodes' binary logs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<super::origin::Origins>,
}

fn key_as_objects<S: serde::Serializer>(key: &[(String, Cell)], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    #[derive(Serialize)]
    struct Part<'a> {
        column: &'a str,
        value: &'a Cell,
    }
    let mut seq = s.serialize_seq(Some(key.len()))?;
    for (column, value) in key {
        seq.serialize_element(&Part { column, value })?;
    }
    seq.end()
}

/// The other direction of a dual-master pair, seen from the replica's source.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReverseChannel {
    /// The source replicates from this replica: a dual-master (circular) pair.
    pub dual_master: bool,
    pub channel: String,
    pub stopped: bool,
    pub errno: Option<u32>,
    pub error: Option<String>,
    /// The reverse channel stopped on the same table and key values.
    pub same_key: bool,
    /// The reverse direction's own diagnosis (without its own reverse), when it is stopped.
    pub diagnosis: Option<Box<Diagnosis>>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ErrorFacts {
    pub errno: u32,
    pub message: String,
    /// Key name as the error text gives it (`PRIMARY`, `uk_email`), table qualifier removed.
    pub key_name: Option<String>,
    /// The value as the error quotes it: display only, it is ambiguous for composite keys.
    pub quoted_value: Option<String>,
    pub worker: Option<u32>,
    /// When the applier stopped, as the server reports it (MySQL's LAST_ERROR_TIMESTAMP;
    /// MariaDB reports none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Diagnosis {
    pub schema: &'static str,
    pub replica: NodeRef,
    pub source: Option<NodeRef>,
    pub channel: String,
    pub kind: ConflictKind,
    pub error: ErrorFacts,
    pub table: TableRef,
    pub key: Option<KeyRef>,
    /// The columns that identify one row of the table: its primary key, else the
    /// conflicting unique key. A repair deletes a row by these.
    pub row_key: Vec<String>,
    /// What the statement builder needs to know of the table's columns (generated, other
    /// character sets, integers), as read from the replica's definition.
    #[serde(flatten)]
    pub facts: crate::schema::TableFacts,
    /// Set when the conflicting key is a single AUTO_INCREMENT primary key column.
    pub auto_key: Option<AutoKey>,
    /// GTID-based replication is in use on this channel.
    pub gtid_positioning: bool,
    /// GTIDs are on (MySQL gtid_mode=ON on the replica; MariaDB always has GTIDs).
    pub gtid_enabled: bool,
    /// MariaDB: the replica's gtid_slave_pos, which an injected skip advances.
    pub gtid_slave_pos: Option<String>,
    pub transaction: Option<Transaction>,
    /// The failing transaction's GTID: from its GTID event in the source's binlog, else from
    /// the replica's own status (the failed worker's APPLYING_TRANSACTION on a multi-threaded
    /// MySQL replica, a GTID the error text names). The replica's word is enough to skip the
    /// transaction by GTID while its source is down.
    pub gtid: Option<Gtid>,
    /// How many rows of the failing transaction conflict on the replica; None when the rows
    /// were not compared (the transaction could not be read from the source, or the table has
    /// no key to identify them): `conflicts` being empty then says nothing.
    pub conflicting_rows: Option<usize>,
    /// The failing transaction's GTID is already recorded as executed on the replica (a skip
    /// that was interrupted before START): the applier will pass over it when started.
    pub transaction_executed: bool,
    pub conflicts: Vec<Conflict>,
    /// Batch repairs only (`repair --until-healthy`): rows of the transactions after the
    /// failing one that will conflict the same way, found by reading ahead in the source's
    /// binlog, so one stop/start resolves them all.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub upcoming: Vec<Conflict>,
    pub reverse: Option<ReverseChannel>,
    /// Transactions executed on the replica that none of its sources has (written on it
    /// directly): a conflict on a row they wrote is not the source's doing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errant: Vec<crate::status::errant::Errant>,
    /// Why it happened, from the conflicts' origins (when they were searched).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<super::cause::Cause>,
    /// What could not be determined, in words a DBA can act on.
    pub missing: Vec<String>,
    /// A stable hash of what identifies this incident; a plan made for it is refused if the
    /// replica has moved on (see `fingerprint`).
    pub fingerprint: String,
}

impl Diagnosis {
    pub fn rows_in_transaction(&self) -> Option<usize> {
        self.transaction.as_ref().map(|t| t.rows_total)
    }

    pub fn all_identical(&self) -> bool {
        !self.conflicts.is_empty()
            && self
                .conflicts
                .iter()
                .all(|c| matches!(c.verdict, Verdict::Identical))
    }
}
