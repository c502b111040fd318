//! Exit codes, documented in docs/exit-codes.md. Scripts depend on these numbers: never reuse
//! or renumber one.

pub const OK: u8 = 0;
/// Something unexpected failed (a query, I/O); the message says what.
pub const FAILURE: u8 = 1;
/// Bad command line (clap exits with it itself: unknown option, bad --remedy, --ssl-mode …).
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
/// verify: the nodes hold different rows (resync: rows were left different).
pub const DRIFT: u8 = 11;
/// The connection could not be secured as --ssl-mode asks: the server offers no TLS, its
/// certificate is not trusted or not issued for the host, or the handshake failed.
pub const TLS: u8 = 12;

/// An error that carries its exit code, for conditions judged at the top (e.g. "refused").
#[derive(Debug, thiserror::Error)]
#[error("{1}")]
pub struct Coded(pub u8, pub String);
