//! What looking at a replica can come to: an incident diagnosed, nothing to diagnose (a
//! typed outcome, not an error), or a reason it cannot be diagnosed. The exit codes they
//! stand for are chosen at the edge (`error`), not here.

use crate::diagnosis::Diagnosis;
use crate::status::errortext::Undiagnosable;

/// A diagnosis, or why there is nothing to diagnose.
#[derive(Debug)]
pub enum Diagnosed {
    /// A channel is stopped on an applier error: the incident.
    Stopped(Box<Diagnosis>),
    /// No channel (or not the one asked for) is stopped on an applier error.
    Healthy(NoIncident),
}

impl Diagnosed {
    /// The incident; nothing to diagnose is an error here (for a caller that needs one).
    pub fn stopped(self) -> Result<Diagnosis, NoIncident> {
        match self {
            Diagnosed::Stopped(d) => Ok(*d),
            Diagnosed::Healthy(why) => Err(why),
        }
    }
}

/// Why there is no incident to diagnose.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NoIncident {
    #[error("channel '{channel}' is not stopped on an applier error")]
    ChannelNotStopped { channel: String },
    #[error(
        "{endpoint}: no channel is stopped on an applier error; nothing to diagnose (see `replmend status`)"
    )]
    NoneStopped { endpoint: crate::vocab::Endpoint },
}

/// Why a replica cannot be diagnosed.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// `--channel` names a channel the replica does not have.
    #[error("no replication channel named '{0}'")]
    NoSuchChannel(String),
    /// A worker stopped because another failed, and no worker's own error is readable.
    #[error(
        "error {errno}: an applier worker stopped because another worker failed, and no worker's own error could be read from \
         performance_schema.replication_applier_status_by_worker (performance_schema off, SELECT on it not granted, or \
         cleared by START REPLICA); the server said: {message}"
    )]
    AnotherWorkerFailed { errno: u32, message: String },
    /// Only the coordinator's summary is readable.
    #[error(
        "the failed worker's own error could not be read from performance_schema.replication_applier_status_by_worker \
         (performance_schema off, or SELECT on it not granted); the coordinator only says: {message}"
    )]
    CoordinatorOnly { message: String },
    /// An error that is not a row conflict (1062, 1032).
    #[error(
        "error {errno} is not a row conflict replmend can diagnose (it handles 1062 and 1032); the server said: {message}"
    )]
    NotARowConflict { errno: u32, message: String },
    /// A row conflict replmend cannot diagnose (statement-based, an unexpected event).
    #[error("{0}")]
    Undiagnosable(Undiagnosable),
    /// Neither the error nor the binlog names the failed table.
    #[error("cannot tell which table failed from: {message}")]
    UnknownTable { message: String },
}
