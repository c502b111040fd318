//! The words every layer shares: GTIDs and GTID sets, server endpoints, tables and keys. Value types, pure,
//! depending on nothing else in the crate; any module may use them.

pub mod endpoint;
pub mod gtid;
pub mod table;

pub use endpoint::Endpoint;
pub use gtid::{Gtid, GtidSet, MariadbGtidList, MysqlGtidSet};
pub use table::{
    ConflictKind, ForeignKeyRef, KeyKind, KeyRef, ReadOnly, ReferentialAction, RowsEventKind,
    TableRef,
};
