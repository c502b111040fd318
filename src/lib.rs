//! replmend: diagnose and repair MySQL/MariaDB replication stopped by row conflicts.
//!
//! Layout: `cli` parses; `ops` glues arguments to the work; the edges (`conn`, `binlog::fetch`,
//! `journal`, `repair`) talk to servers and disks; the middle (`vocab`, `flavor`, `diagnosis`,
//! `planner`, `schema`, `value`, `status::model`) is pure and unit-tested. `vocab` holds the
//! shared words (GTIDs, GTID sets, endpoints) and depends on nothing else in the crate.
//! `error` maps every failure to one exit code in one place (the library returns typed
//! outcomes and errors; only `ops` builds an `exit::Coded`); `describe` puts any failure into
//! words.

pub mod binlog;
pub mod capability;
pub mod cli;
pub mod conn;
pub mod decode;
pub mod describe;
pub mod diagnosis;
pub mod error;
pub mod exit;
pub mod flavor;
pub mod inspect;
pub mod journal;
pub mod ops;
pub mod planner;
pub mod repair;
pub mod report;
pub mod schema;
pub mod sql;
pub mod status;
pub mod timing;
pub mod value;
pub mod verify;
pub mod vocab;
pub mod watch;
