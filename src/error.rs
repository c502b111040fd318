//! The one place where a failure becomes an exit code and a sentence for the user.
//!
//! Errors travel as `anyhow::Error` chains of typed causes; here each known cause type is
//! mapped to its documented exit code (docs/exit-codes.md). The library returns typed
//! outcomes and errors and never chooses a code; only `ops` (the edge) builds an
//! `exit::Coded` for its own terminal and confirmation conditions. The message is made
//! readable by `describe` (server and driver errors in words, never Rust debug structures),
//! which the library uses too: this module depends on the library's error types, never the
//! other way round.

use crate::conn::ConnectError;
use crate::conn::mycnf::MyCnfError;
use crate::conn::spec::SpecError;
use crate::exit::{self, Coded};
use crate::inspect::{InspectError, NoIncident};
use crate::journal::JournalError;
use crate::planner::plan::PlanError;
use crate::repair::apply::ApplyError;
use crate::repair::lock::LockError;
use crate::repair::preflight::PreflightError;
use crate::repair::session::{NotRunning, Refused};
use crate::status::StatusError;
use crate::verify::PairError;
use crate::verify::fleet::FleetError;
use crate::watch::WatchedElsewhere;

/// The error and its causes on one line, for the user.
pub use crate::describe::message;

/// The exit code an error stands for.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<ConnectError>() {
            return match e {
                ConnectError::Unreachable { .. } => exit::UNREACHABLE,
                ConnectError::AccessDenied { .. } => exit::ACCESS_DENIED,
                ConnectError::Protocol { .. } => exit::FAILURE,
                ConnectError::Tls { .. } => exit::TLS,
                ConnectError::TlsInput { .. } => exit::BAD_INPUT,
            };
        }
        if let Some(StatusError::NotAReplica { .. }) = cause.downcast_ref::<StatusError>() {
            return exit::NOT_A_REPLICA;
        }
        if cause.downcast_ref::<SpecError>().is_some()
            || cause.downcast_ref::<MyCnfError>().is_some()
        {
            return exit::BAD_INPUT;
        }
        if let Some(e) = cause.downcast_ref::<PlanError>() {
            return match e {
                PlanError::NoSuchColumn(_) => exit::BAD_INPUT,
                _ => exit::REFUSED,
            };
        }
        if let Some(e) = cause.downcast_ref::<ApplyError>() {
            match e {
                ApplyError::RowChanged { .. }
                | ApplyError::KeyTaken { .. }
                | ApplyError::WrittenOtherwise { .. } => {
                    return exit::REFUSED;
                }
                ApplyError::Sql { .. } | ApplyError::Injected { .. } => return exit::FAILURE,
                ApplyError::Journal(_) | ApplyError::Other(_) => {}
            }
        }
        if cause.downcast_ref::<PreflightError>().is_some()
            || cause
                .downcast_ref::<LockError>()
                .is_some_and(|e| matches!(e, LockError::Held(_)))
        {
            return exit::REFUSED;
        }
        if let Some(JournalError::Unsafe { .. }) = cause.downcast_ref::<JournalError>() {
            return exit::REFUSED;
        }
        // "Nothing to do": exits 0, still saying why on stderr.
        if cause.downcast_ref::<NoIncident>().is_some() {
            return exit::OK;
        }
        if let Some(e) = cause.downcast_ref::<InspectError>() {
            return match e {
                InspectError::NoSuchChannel(_) => exit::BAD_INPUT,
                InspectError::AnotherWorkerFailed { .. }
                | InspectError::CoordinatorOnly { .. }
                | InspectError::NotARowConflict { .. }
                | InspectError::Undiagnosable(_)
                | InspectError::UnknownTable { .. } => exit::UNSUPPORTED_INCIDENT,
            };
        }
        if cause.downcast_ref::<NotRunning>().is_some() {
            return exit::NOT_RUNNING;
        }
        if cause.downcast_ref::<Refused>().is_some()
            || cause.downcast_ref::<WatchedElsewhere>().is_some()
        {
            return exit::REFUSED;
        }
        if cause.downcast_ref::<FleetError>().is_some() {
            // No replica listed, or replicas of different sources named: what was asked for
            // cannot be compared as one fleet.
            return exit::BAD_INPUT;
        }
        if let Some(e) = cause.downcast_ref::<PairError>() {
            return match e {
                PairError::WhichSource { .. } | PairError::NoSuchTable { .. } => exit::BAD_INPUT,
                PairError::NotAReplica { .. } => exit::NOT_A_REPLICA,
            };
        }
        if cause
            .downcast_ref::<crate::verify::checkpoint::ResumeError>()
            .is_some()
        {
            return exit::BAD_INPUT;
        }
        if let Some(code) = cause.downcast_ref::<Coded>() {
            return code.0;
        }
    }
    exit::FAILURE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_has_its_documented_code() {
        let changed = ApplyError::RowChanged {
            step: 3,
            table: "t".into(),
            key: "id=1".into(),
        };
        let failure = crate::repair::apply::ApplyFailure {
            error: changed,
            completed: vec![1, 2],
            undone: vec!["ran START SLAVE IO_THREAD on a:1".into()],
        };
        let e = anyhow::Error::from(Box::new(failure));
        assert_eq!(exit_code(&e), exit::REFUSED);
        let m = message(&e);
        assert!(
            m.contains("changed since the diagnosis")
                && m.contains("Steps completed before the failure: 1, 2"),
            "{m}"
        );
        let bad_column = anyhow::Error::from(PlanError::NoSuchColumn("updated_at".into()));
        assert_eq!(exit_code(&bad_column), exit::BAD_INPUT);
        let preflight = anyhow::Error::from(PreflightError {
            problems: vec!["a:1 has read_only=ON".into()],
        });
        assert_eq!(exit_code(&preflight), exit::REFUSED);
        let injected = anyhow::Error::from(ApplyError::Injected { step: 1 });
        assert_eq!(exit_code(&injected), exit::FAILURE);
    }

    /// The library's typed outcomes and refusals, each with the code and words it had when
    /// the library chose them itself.
    #[test]
    fn typed_outcomes_have_their_codes_and_words() {
        let code = |e: anyhow::Error| (exit_code(&e), message(&e));
        let healthy = NoIncident::NoneStopped {
            endpoint: crate::vocab::Endpoint::new("r", 3306),
        };
        assert_eq!(
            code(healthy.into()),
            (
                exit::OK,
                "r:3306: no channel is stopped on an applier error; nothing to diagnose (see `replmend status`)".into()
            )
        );
        let channel = anyhow::Error::from(InspectError::NoSuchChannel("c2".into()));
        assert_eq!(
            code(channel),
            (exit::BAD_INPUT, "no replication channel named 'c2'".into())
        );
        let not_rows = InspectError::NotARowConflict {
            errno: 1146,
            message: "no such table".into(),
        };
        assert_eq!(exit_code(&not_rows.into()), exit::UNSUPPORTED_INCIDENT);
        let stopped = NotRunning {
            endpoint: crate::vocab::Endpoint::new("r", 3306),
            channel: String::new(),
            why: "its receiver stopped on an error",
        };
        assert_eq!(exit_code(&stopped.into()), exit::NOT_RUNNING);
        let loses = Refused::LosesData {
            remedy: crate::planner::RemedyId::Skip,
            loses: "the source's row".into(),
        };
        let (c, m) = code(loses.into());
        assert_eq!(c, exit::REFUSED);
        assert!(
            m.ends_with("pass --allow-data-loss to accept; nothing was changed"),
            "{m}"
        );
        // Under a context, as a caller may add one: the cause still decides.
        let watched = anyhow::Error::from(WatchedElsewhere {
            endpoint: crate::vocab::Endpoint::new("r", 3306),
        })
        .context("starting the watcher");
        assert_eq!(exit_code(&watched), exit::REFUSED);
        let lone = PairError::NotAReplica {
            replica: crate::vocab::Endpoint::new("r", 3306),
        };
        assert_eq!(exit_code(&lone.into()), exit::NOT_A_REPLICA);
        let two = PairError::WhichSource {
            replica: crate::vocab::Endpoint::new("r", 3306),
            sources: 2,
        };
        assert_eq!(exit_code(&two.into()), exit::BAD_INPUT);
    }

    #[test]
    fn connection_failures_have_their_codes() {
        let account = crate::conn::Account {
            user: "u".into(),
            endpoint: crate::vocab::Endpoint::new("db1", 3306),
            socket: None,
        };
        let tls = crate::conn::ConnectError::Tls {
            endpoint: account.clone(),
            reason: "the server does not offer TLS".into(),
        };
        assert_eq!(exit_code(&tls.into()), exit::TLS);
        let denied = crate::conn::ConnectError::AccessDenied {
            who: account,
            reason: "wrong password".into(),
        };
        assert_eq!(exit_code(&denied.into()), exit::ACCESS_DENIED);
    }
}
