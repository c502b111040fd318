//! The one place where a failure becomes an exit code and a sentence for the user.
//!
//! Errors travel as `anyhow::Error` chains of typed causes; here each known cause type is
//! mapped to its documented exit code (docs/exit-codes.md), and the message is made readable:
//! server and driver errors are described in words, never printed as Rust debug structures.

use crate::conn::ConnectError;
use crate::conn::mycnf::MyCnfError;
use crate::conn::spec::SpecError;
use crate::exit::{self, Coded};
use crate::journal::JournalError;
use crate::planner::plan::PlanError;
use crate::repair::apply::ApplyError;
use crate::repair::lock::LockError;
use crate::repair::preflight::PreflightError;
use crate::status::StatusError;

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
        if let Some(code) = cause.downcast_ref::<Coded>() {
            return code.0;
        }
    }
    exit::FAILURE
}

/// The error and its causes on one line, the way a DBA reads it in a terminal or a log.
pub fn message(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let (s, last) = match cause.downcast_ref::<mysql::Error>() {
            // The description covers the driver error's own causes.
            Some(e) => (describe_mysql(e), true),
            None => (scrub(&cause.to_string()), false),
        };
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        if last {
            break;
        }
    }
    parts.join(": ")
}

/// A driver or server error in words: `server error 1290 (HY000): The MariaDB server is
/// running with the --read-only option …`, never `MySqlError { … }`.
pub fn describe_mysql(e: &mysql::Error) -> String {
    match e {
        mysql::Error::MySqlError(m) => {
            format!("server error {} ({}): {}", m.code, m.state, m.message)
        }
        mysql::Error::IoError(io) => format!("connection error: {io}"),
        mysql::Error::CodecError(c) => scrub(&format!("protocol or TLS error: {c}")),
        mysql::Error::DriverError(d) => format!("client error: {d}"),
        mysql::Error::UrlError(u) => format!("bad connection URL: {u}"),
        mysql::Error::TlsError(t) => scrub(&format!("TLS error: {t}")),
        other => scrub(&other.to_string()),
    }
}

/// Last line of defence: some crates print nested errors with `{:?}`. Turn the common shapes
/// into words so no Rust debug structure reaches a user.
pub fn scrub(text: &str) -> String {
    let mut out = text.to_string();
    // `MySqlError { ERROR 1290 (HY000): text }` → `server error 1290 (HY000): text`
    while let Some(start) = out.find("MySqlError { ERROR ") {
        let tail = &out[start + "MySqlError { ERROR ".len()..];
        let end = tail.rfind(" }").unwrap_or(tail.len());
        let replaced = format!("server error {}", &tail[..end]);
        let rest = tail.get(end + 2..).unwrap_or("");
        out = format!("{}{replaced}{rest}", &out[..start]);
    }
    // `IoError { server disconnected }` and the like: keep the words inside.
    for shape in ["IoError { ", "DriverError { ", "UrlError { "] {
        while let Some(start) = out.find(shape) {
            let inner_start = start + shape.len();
            let Some(len) = out[inner_start..].find(" }") else {
                break;
            };
            let inner = out[inner_start..inner_start + len].to_string();
            out.replace_range(start..inner_start + len + 2, &inner);
        }
    }
    for (needle, words) in [
        (
            "UnknownIssuer",
            "the server's certificate is not signed by a trusted CA (give --ssl-ca)",
        ),
        (
            "NotValidForName",
            "the server's certificate does not match its host name",
        ),
        ("Expired", "the server's certificate has expired"),
    ] {
        if out.contains(needle) && out.contains('{') {
            return format!("TLS: {words}");
        }
    }
    out
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

    #[test]
    fn debug_shapes_become_words() {
        let s = scrub("step 3 on 127.0.0.1:1: MySqlError { ERROR 1290 (HY000): read only }");
        assert_eq!(
            s,
            "step 3 on 127.0.0.1:1: server error 1290 (HY000): read only"
        );
        let t = scrub(
            "CodecError { Custom { kind: InvalidData, error: InvalidCertificate(UnknownIssuer) } }",
        );
        assert!(t.starts_with("TLS: ") && !t.contains('{'), "{t}");
    }
}
