//! Applying a plan: the lock, the journal-first row writes, the re-check of the incident, and
//! the verification that replication resumed.

pub mod apply;
pub mod facts;
pub mod lock;
pub mod preflight;
pub mod privileges;
pub mod report;
pub mod session;
pub mod verify;
