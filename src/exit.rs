//! Exit codes, documented in docs/exit-codes.md. Scripts depend on these numbers: never reuse
//! or renumber one.

use crate::conn::ConnectError;
use crate::conn::mycnf::MyCnfError;
use crate::conn::spec::SpecError;
use crate::status::StatusError;

pub const OK: u8 = 0;
/// Something unexpected failed (a query, I/O); the message says what.
pub const FAILURE: u8 = 1;
/// Bad command line: clap exits with 2 itself, so nothing here returns it.
#[allow(dead_code)]
pub const USAGE: u8 = 2;
/// A replication channel is stopped with an applier (SQL thread) error.
pub const REPLICATION_ERROR: u8 = 3;
/// A channel is not running, or its receiver stopped on an error, but no applier error.
pub const NOT_RUNNING: u8 = 4;
/// The server is not a replica (no channel configured).
pub const NOT_A_REPLICA: u8 = 5;
/// The server could not be reached.
pub const UNREACHABLE: u8 = 6;
/// The server refused the credentials.
pub const ACCESS_DENIED: u8 = 7;
/// Bad input other than the command line: a malformed DSN, option file or playbook.
pub const BAD_INPUT: u8 = 8;
/// The replica stopped on an error replmend cannot diagnose (not a row conflict it knows).
pub const UNSUPPORTED_INCIDENT: u8 = 9;
/// replmend refused to act (safety check, missing confirmation, lock held); nothing changed.
pub const REFUSED: u8 = 10;

/// The exit code an error stands for.
pub fn for_error(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<ConnectError>() {
            return match e {
                ConnectError::Unreachable { .. } => UNREACHABLE,
                ConnectError::AccessDenied { .. } => ACCESS_DENIED,
                ConnectError::Protocol { .. } => FAILURE,
            };
        }
        if let Some(StatusError::NotAReplica { .. }) = cause.downcast_ref::<StatusError>() {
            return NOT_A_REPLICA;
        }
        if cause.downcast_ref::<SpecError>().is_some()
            || cause.downcast_ref::<MyCnfError>().is_some()
        {
            return BAD_INPUT;
        }
        if let Some(code) = cause.downcast_ref::<Coded>() {
            return code.0;
        }
    }
    FAILURE
}

/// An error that carries its exit code, for conditions judged at the top (e.g. "refused").
#[derive(Debug, thiserror::Error)]
#[error("{1}")]
pub struct Coded(pub u8, pub String);
