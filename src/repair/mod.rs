//! Applying a plan: the lock, the journal-first row writes, the re-check of the incident, and
//! the verification that replication resumed.

pub mod apply;
pub mod facts;
pub mod lock;
pub mod nodes;
pub mod preflight;
pub mod privileges;
pub mod report;
mod row_run;
pub mod session;
mod under_lock;
pub mod verify;
