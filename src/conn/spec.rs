//! Where and how to connect: merged from a DSN, flags, `MYSQL_PWD` and an option file, in the
//! precedence a DBA expects from the mysql client (explicit > environment > option file).
//! Pure: nothing here opens a socket or prompts.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;
use thiserror::Error;

use super::mycnf::OptionFile;

#[derive(Debug, Error, PartialEq)]
#[allow(clippy::enum_variant_names)]
pub enum SpecError {
    #[error("invalid DSN: {0} (expected mysql://user[:password]@host[:port][?socket=PATH])")]
    BadDsn(String),
    #[error("invalid port {0:?}")]
    BadPort(String),
    #[error("invalid --ssl-mode {0:?} (DISABLED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY)")]
    BadSslMode(String),
}

/// A password that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SslMode {
    #[default]
    Disabled,
    Required,
    VerifyCa,
    VerifyIdentity,
}

impl std::str::FromStr for SslMode {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, SpecError> {
        match s.to_ascii_uppercase().replace('-', "_").as_str() {
            "DISABLED" | "PREFERRED" => Ok(SslMode::Disabled),
            "REQUIRED" => Ok(SslMode::Required),
            "VERIFY_CA" => Ok(SslMode::VerifyCa),
            "VERIFY_IDENTITY" => Ok(SslMode::VerifyIdentity),
            _ => Err(SpecError::BadSslMode(s.to_string())),
        }
    }
}

/// Everything needed to open one connection. `Debug` and `Display` never show the password.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnSpec {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<Secret>,
    pub socket: Option<PathBuf>,
    pub ssl_mode: SslMode,
    pub ssl_ca: Option<PathBuf>,
}

impl fmt::Display for ConnSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.socket {
            Some(s) => write!(f, "{}@{}", self.user, s.display()),
            None => write!(f, "{}@{}", self.user, self.endpoint()),
        }
    }
}

impl ConnSpec {
    pub fn endpoint(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The same credentials pointed at another server (how the source is reached by default).
    pub fn with_endpoint(&self, host: &str, port: u16) -> ConnSpec {
        ConnSpec {
            host: host.to_string(),
            port,
            socket: None,
            ..self.clone()
        }
    }
}

/// The raw inputs, as the CLI collected them.
#[derive(Debug, Default, Clone)]
pub struct SpecInput {
    pub dsn: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub socket: Option<PathBuf>,
    pub ssl_mode: Option<SslMode>,
    pub ssl_ca: Option<PathBuf>,
    /// `MYSQL_PWD`.
    pub env_password: Option<String>,
    /// A password typed at a prompt.
    pub prompted_password: Option<String>,
    /// The user running replmend, the client's default user name.
    pub login_user: Option<String>,
}

#[derive(Debug, Default, PartialEq)]
struct DsnParts {
    user: Option<String>,
    password: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    socket: Option<PathBuf>,
}

fn parse_dsn(dsn: &str) -> Result<DsnParts, SpecError> {
    let bad = |why: &str| SpecError::BadDsn(format!("{why} in {}", redact_dsn(dsn)));
    let rest = dsn
        .strip_prefix("mysql://")
        .or_else(|| dsn.strip_prefix("mariadb://"))
        .ok_or_else(|| bad("missing mysql:// scheme"))?;
    let (rest, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let rest = rest.split('/').next().unwrap_or_default();
    let mut parts = DsnParts::default();
    let hostport = match rest.rsplit_once('@') {
        Some((cred, hp)) => {
            let (u, p) = match cred.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (cred, None),
            };
            if !u.is_empty() {
                parts.user = Some(percent_decode(u));
            }
            parts.password = p.map(percent_decode);
            hp
        }
        None => rest,
    };
    if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed ["))?;
        parts.host = Some(h.to_string());
        if let Some(p) = after.strip_prefix(':') {
            parts.port = Some(p.parse().map_err(|_| SpecError::BadPort(p.into()))?);
        }
    } else if let Some((h, p)) = hostport.rsplit_once(':') {
        parts.host = (!h.is_empty()).then(|| h.to_string());
        parts.port = Some(p.parse().map_err(|_| SpecError::BadPort(p.into()))?);
    } else if !hostport.is_empty() {
        parts.host = Some(hostport.to_string());
    }
    for kv in query.into_iter().flat_map(|q| q.split('&')) {
        if let Some(path) = kv.strip_prefix("socket=") {
            parts.socket = Some(PathBuf::from(percent_decode(path)));
        }
    }
    Ok(parts)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Splits `host:port` (or `[v6]:port`), the form `ConnSpec::endpoint` writes.
pub fn split_endpoint(endpoint: &str) -> Option<(&str, u16)> {
    let (h, p) = endpoint.rsplit_once(':')?;
    Some((h.trim_matches(['[', ']']), p.parse().ok()?))
}

/// A DSN with its password replaced, safe for messages.
pub fn redact_dsn(dsn: &str) -> String {
    let Some((scheme, rest)) = dsn.split_once("://") else {
        return dsn.to_string();
    };
    match rest.rsplit_once('@') {
        Some((cred, hp)) => match cred.split_once(':') {
            Some((u, _)) => format!("{scheme}://{u}:***@{hp}"),
            None => dsn.to_string(),
        },
        None => dsn.to_string(),
    }
}

/// Merges the inputs. Precedence per field: DSN, then the individual flag, then the option file;
/// for the password: DSN, prompt, `MYSQL_PWD`, option file.
pub fn resolve(input: &SpecInput, file: Option<&OptionFile>) -> Result<ConnSpec, SpecError> {
    let dsn = match &input.dsn {
        Some(d) => parse_dsn(d)?,
        None => DsnParts::default(),
    };
    let from_file = |k: &str| file.and_then(|f| f.get(k)).map(str::to_string);
    let port = match dsn.port.or(input.port) {
        Some(p) => p,
        None => match from_file("port") {
            Some(p) => p.parse().map_err(|_| SpecError::BadPort(p))?,
            None => 3306,
        },
    };
    let ssl_mode = match (input.ssl_mode, from_file("ssl_mode")) {
        (Some(m), _) => m,
        (None, Some(m)) => m.parse()?,
        (None, None) => SslMode::Disabled,
    };
    let password = dsn
        .password
        .or_else(|| input.prompted_password.clone())
        .or_else(|| input.env_password.clone())
        .or_else(|| from_file("password"))
        .map(Secret);
    Ok(ConnSpec {
        host: dsn
            .host
            .or_else(|| input.host.clone())
            .or_else(|| from_file("host"))
            .unwrap_or_else(|| "127.0.0.1".into()),
        port,
        user: dsn
            .user
            .or_else(|| input.user.clone())
            .or_else(|| from_file("user"))
            .or_else(|| input.login_user.clone())
            .unwrap_or_else(|| "root".into()),
        password,
        socket: dsn
            .socket
            .or_else(|| input.socket.clone())
            .or_else(|| from_file("socket").map(PathBuf::from)),
        ssl_mode,
        ssl_ca: input
            .ssl_ca
            .clone()
            .or_else(|| from_file("ssl_ca").map(PathBuf::from)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(dsn: &str) -> SpecInput {
        SpecInput {
            dsn: Some(dsn.into()),
            ..Default::default()
        }
    }

    #[test]
    fn dsn_with_everything() {
        let s = resolve(&input("mysql://dba:s%40cret@10.0.0.5:3307"), None).unwrap();
        assert_eq!(s.host, "10.0.0.5");
        assert_eq!(s.port, 3307);
        assert_eq!(s.user, "dba");
        assert_eq!(s.password.as_ref().unwrap().expose(), "s@cret");
        assert_eq!(s.to_string(), "dba@10.0.0.5:3307");
        assert!(!format!("{s:?}").contains("cret"));
    }

    #[test]
    fn dsn_without_password_takes_env_then_file() {
        let mut i = input("mysql://root@127.0.0.1:3310");
        let file = OptionFile::parse("[client]\npassword=fromfile\nuser=ignored\n");
        assert_eq!(
            resolve(&i, Some(&file)).unwrap().password.unwrap().expose(),
            "fromfile"
        );
        i.env_password = Some("fromenv".into());
        let s = resolve(&i, Some(&file)).unwrap();
        assert_eq!(s.password.unwrap().expose(), "fromenv");
        assert_eq!(s.user, "root");
    }

    #[test]
    fn flags_and_defaults() {
        let i = SpecInput {
            port: Some(4000),
            login_user: Some("alice".into()),
            ..Default::default()
        };
        let s = resolve(&i, None).unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.user.as_str()),
            ("127.0.0.1", 4000, "alice")
        );
        assert!(s.password.is_none());
    }

    #[test]
    fn socket_in_query_and_ipv6() {
        let s = resolve(
            &input("mysql://u@[::1]:3306?socket=/run/my%20sql.sock"),
            None,
        )
        .unwrap();
        assert_eq!(s.host, "::1");
        assert_eq!(s.endpoint(), "[::1]:3306");
        assert_eq!(s.socket.unwrap(), PathBuf::from("/run/my sql.sock"));
    }

    #[test]
    fn bad_dsns_are_named_without_password() {
        let e = resolve(&input("postgres://u:topsecret@h"), None).unwrap_err();
        assert!(!e.to_string().contains("topsecret"), "{e}");
        assert!(matches!(
            resolve(&input("mysql://u@h:notaport"), None),
            Err(SpecError::BadPort(_))
        ));
        assert_eq!(redact_dsn("mysql://u:pw@h:1"), "mysql://u:***@h:1");
    }

    #[test]
    fn endpoints_round_trip() {
        let s = resolve(&input("mysql://u@[::1]:3306"), None).unwrap();
        assert_eq!(split_endpoint(&s.endpoint()), Some(("::1", 3306)));
        assert_eq!(split_endpoint("127.0.0.1:3307"), Some(("127.0.0.1", 3307)));
        assert_eq!(split_endpoint("nope"), None);
    }

    #[test]
    fn ssl_modes() {
        assert_eq!("verify-ca".parse::<SslMode>().unwrap(), SslMode::VerifyCa);
        assert!("sometimes".parse::<SslMode>().is_err());
    }
}
