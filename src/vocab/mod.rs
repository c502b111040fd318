//! The words every layer shares: GTIDs and GTID sets, server endpoints. Value types, pure,
//! depending on nothing else in the crate; any module may use them.

pub mod endpoint;
pub mod gtid;

pub use endpoint::Endpoint;
pub use gtid::{Gtid, GtidSet, MariadbGtidList, MysqlGtidSet};
