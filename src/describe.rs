//! Failures in words: an error chain on one line, driver and server errors described the way
//! a DBA reads them, never as Rust debug structures. A leaf: every layer may use it (the exit
//! code an error stands for is `error`'s, at the edge).

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
