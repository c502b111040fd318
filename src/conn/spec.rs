//! Where and how to connect: merged from a DSN, flags, `MYSQL_PWD` and an option file, in the
//! precedence a DBA expects from the mysql client (explicit > environment > option file).
//! Pure: nothing here opens a socket or prompts.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;
use thiserror::Error;

use super::mycnf::OptionFile;
use crate::vocab::Endpoint;

#[derive(Debug, Error, PartialEq)]
#[allow(clippy::enum_variant_names)]
pub enum SpecError {
    #[error(
        "invalid DSN {dsn}: {why} (expected mysql://user[:password]@host[:port][?socket=PATH])"
    )]
    BadDsn { dsn: String, why: String },
    /// The usual cause of a DSN that does not parse: a password typed as is. Said in words,
    /// with the two ways around it, instead of the parse failure it leads to (`invalid port`).
    #[error(
        "invalid DSN {dsn}: the {part} contains {chars}, which a URL cannot carry as is; {hint}"
    )]
    NeedsEncoding {
        dsn: String,
        part: &'static str,
        chars: String,
        hint: &'static str,
    },
    #[error("invalid port '{0}' (a number from 1 to 65535)")]
    BadPort(String),
    #[error("invalid ssl-mode '{0}' (DISABLED, PREFERRED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY)")]
    BadSslMode(String),
    #[error(
        "--ssl-mode {0} needs --ssl-ca FILE, the certificate of the CA that signed the server's (as the mysql client does)"
    )]
    VerifyNeedsCa(SslMode),
    #[error("cannot use {option} {path}: {why}")]
    TlsFile {
        option: &'static str,
        path: String,
        why: String,
    },
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

/// How a connection is secured, with the mysql client's names and meanings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SslMode {
    Disabled,
    /// TLS when the server offers it, plain otherwise; the certificate is not checked. The
    /// mysql client's default, so an account created `REQUIRE SSL` connects without flags.
    #[default]
    Preferred,
    /// TLS or no connection; the certificate is not checked.
    Required,
    /// TLS, and the server's certificate must be signed by `--ssl-ca`.
    VerifyCa,
    /// As `VerifyCa`, and the certificate must name the host connected to.
    VerifyIdentity,
}

impl SslMode {
    pub fn name(self) -> &'static str {
        match self {
            SslMode::Disabled => "DISABLED",
            SslMode::Preferred => "PREFERRED",
            SslMode::Required => "REQUIRED",
            SslMode::VerifyCa => "VERIFY_CA",
            SslMode::VerifyIdentity => "VERIFY_IDENTITY",
        }
    }

    pub fn verifies(self) -> bool {
        matches!(self, SslMode::VerifyCa | SslMode::VerifyIdentity)
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for SslMode {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, SpecError> {
        match s.trim().to_ascii_uppercase().replace('-', "_").as_str() {
            "DISABLED" => Ok(SslMode::Disabled),
            "PREFERRED" => Ok(SslMode::Preferred),
            "REQUIRED" => Ok(SslMode::Required),
            "VERIFY_CA" => Ok(SslMode::VerifyCa),
            "VERIFY_IDENTITY" => Ok(SslMode::VerifyIdentity),
            _ => Err(SpecError::BadSslMode(s.to_string())),
        }
    }
}

/// TLS settings of a connection: the mode and the files it uses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tls {
    pub mode: SslMode,
    /// The CA that must have signed the server's certificate (VERIFY_CA, VERIFY_IDENTITY).
    pub ca: Option<PathBuf>,
    /// A client certificate and its key, for accounts created `REQUIRE X509`/`SUBJECT`.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// TLS settings as given (flags, a DSN's fallback): each one unset unless given.
#[derive(Debug, Clone, Default)]
pub struct TlsInput {
    pub mode: Option<SslMode>,
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl From<&Tls> for TlsInput {
    fn from(t: &Tls) -> TlsInput {
        TlsInput {
            mode: Some(t.mode),
            ca: t.ca.clone(),
            cert: t.cert.clone(),
            key: t.key.clone(),
        }
    }
}

impl Tls {
    /// The files named, each with the option that names it.
    pub fn files(&self) -> impl Iterator<Item = (&'static str, &PathBuf)> {
        [
            ("--ssl-ca", &self.ca),
            ("--ssl-cert", &self.cert),
            ("--ssl-key", &self.key),
        ]
        .into_iter()
        .filter_map(|(o, p)| p.as_ref().map(|p| (o, p)))
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
    pub tls: Tls,
}

impl fmt::Display for ConnSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.account().fmt(f)
    }
}

impl ConnSpec {
    /// The server's host and port.
    pub fn address(&self) -> Endpoint {
        Endpoint::new(&self.host, self.port)
    }

    /// The server's host and port as text: `host:port`, `[v6]:port`.
    pub fn endpoint(&self) -> String {
        self.address().to_string()
    }

    /// The same credentials pointed at another server (how the source is reached by default).
    pub fn at(&self, endpoint: &Endpoint) -> ConnSpec {
        self.with_endpoint(endpoint.host(), endpoint.port())
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
    pub tls: TlsInput,
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
    let bad = |why: &str| SpecError::BadDsn {
        dsn: redact_dsn(dsn),
        why: why.to_string(),
    };
    let rest = dsn
        .strip_prefix("mysql://")
        .or_else(|| dsn.strip_prefix("mariadb://"))
        .ok_or_else(|| bad("it does not start with mysql:// or mariadb://"))?;
    // As a URL: the authority ends at the first '/', '?' or '#', its credentials at its last
    // '@'. A password typed as is breaks that: its '@' stays in the credentials, or its '/',
    // '?' or '#' ends the authority early and leaves an '@' behind (where only a socket path
    // may have one). Either is named for what it is instead of the parse failure it leads to.
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(auth_end);
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    if misplaced_at(tail) || userinfo.and_then(unencoded).is_some() {
        return Err(needs_encoding(dsn, rest));
    }
    let mut parts = DsnParts::default();
    if let Some(cred) = userinfo {
        let (u, p) = match cred.split_once(':') {
            Some((u, p)) => (u, Some(p)),
            None => (cred, None),
        };
        if !u.is_empty() {
            parts.user = Some(percent_decode(u));
        }
        parts.password = p.map(percent_decode);
    }
    // A path (a database name) and a fragment are accepted and ignored.
    let query = tail
        .split_once('?')
        .map(|(_, q)| q.split('#').next().unwrap_or_default());
    let port = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| bad(&format!("the port '{p}' is not a number from 1 to 65535")))
    };
    if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| bad("an IPv6 address opened with '[' is not closed with ']'"))?;
        parts.host = Some(h.to_string());
        match after.strip_prefix(':') {
            Some(p) => parts.port = Some(port(p)?),
            None if !after.is_empty() => {
                return Err(bad(&format!("'{after}' after the IPv6 address")));
            }
            None => {}
        }
    } else if let Some((h, p)) = hostport.rsplit_once(':') {
        if h.contains(':') {
            return Err(bad(
                "an IPv6 address must be written in brackets, [::1]:3306",
            ));
        }
        parts.host = (!h.is_empty()).then(|| h.to_string());
        parts.port = Some(port(p)?);
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

/// Whether what follows the authority holds an '@' outside a `socket=` path: the rest of
/// credentials cut short by an unencoded '/', '?' or '#'.
fn misplaced_at(tail: &str) -> bool {
    let (path, query) = tail.split_once('?').unwrap_or((tail, ""));
    path.contains('@')
        || query
            .split('&')
            .any(|kv| kv.contains('@') && !kv.starts_with("socket="))
}

/// The error for a DSN whose user name or password holds characters a URL cannot carry as
/// is.
fn needs_encoding(dsn: &str, rest: &str) -> SpecError {
    let cred = credentials(rest).unwrap_or_default();
    let (u, p) = match cred.split_once(':') {
        Some((u, p)) => (u, Some(p)),
        None => (cred, None),
    };
    for (part, text, hint) in [
        ("user name", Some(u), "URL-encode the user name, or use -u"),
        (
            "password",
            p,
            "URL-encode the password, or use MYSQL_PWD / -p",
        ),
    ] {
        if let Some(chars) = text.and_then(unencoded) {
            return SpecError::NeedsEncoding {
                dsn: redact_dsn(dsn),
                part,
                chars,
                hint,
            };
        }
    }
    SpecError::BadDsn {
        dsn: redact_dsn(dsn),
        why: "an '@' where only the credentials may have one".into(),
    }
}

/// The characters of a DSN's user name or password that a URL cannot carry unencoded (an
/// '@', '/', '?', '#', or a '%' that does not start an escape), quoted for a message.
fn unencoded(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let mut found: Vec<String> = Vec::new();
    for (i, &c) in b.iter().enumerate() {
        let hex = |j: usize| b.get(j).is_some_and(u8::is_ascii_hexdigit);
        let lone_percent = c == b'%' && !(hex(i + 1) && hex(i + 2));
        if matches!(c, b'@' | b'/' | b'?' | b'#') || lone_percent {
            let s = format!("'{}'", c as char);
            if !found.contains(&s) {
                found.push(s);
            }
        }
    }
    (!found.is_empty()).then(|| found.join(" "))
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

/// A DSN with its password replaced, safe for messages.
pub fn redact_dsn(dsn: &str) -> String {
    let Some((scheme, rest)) = dsn.split_once("://") else {
        return dsn.to_string();
    };
    match credentials(rest) {
        Some(cred) => match cred.split_once(':') {
            Some((u, _)) => format!("{scheme}://{u}:***@{}", &rest[cred.len() + 1..]),
            None => dsn.to_string(),
        },
        None => dsn.to_string(),
    }
}

/// A DSN's credentials (after the scheme) as a person typed them: up to the last '@' before
/// any socket path (which may hold one), so a password with an unencoded '@' is all in them.
fn credentials(rest: &str) -> Option<&str> {
    let scope = rest.split("socket=").next().unwrap_or_default();
    scope.rsplit_once('@').map(|(cred, _)| cred)
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
    let tls = resolve_tls(&input.tls, file)?;
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
        tls,
    })
}

/// The TLS settings: each flag over the option file's key of the same name; PREFERRED when
/// neither names a mode. As in the mysql client, a client certificate file given without its
/// key (or a key without its certificate) is used for both: one PEM file may hold the two.
fn resolve_tls(input: &TlsInput, file: Option<&OptionFile>) -> Result<Tls, SpecError> {
    let path = |given: &Option<PathBuf>, key: &str| {
        given
            .clone()
            .or_else(|| file.and_then(|f| f.get(key)).map(PathBuf::from))
    };
    let mode = match (input.mode, file.and_then(|f| f.get("ssl_mode"))) {
        (Some(m), _) => m,
        (None, Some(m)) => m.parse()?,
        (None, None) => SslMode::Preferred,
    };
    let ca = path(&input.ca, "ssl_ca");
    if mode.verifies() && ca.is_none() {
        return Err(SpecError::VerifyNeedsCa(mode));
    }
    let cert = path(&input.cert, "ssl_cert");
    let key = path(&input.key, "ssl_key");
    Ok(Tls {
        mode,
        ca,
        cert: cert.clone().or_else(|| key.clone()),
        key: key.or(cert),
    })
}

/// Checks, before any connection, that every TLS file named can be read and holds what its
/// option needs: a wrong path is bad input, not an unreachable server.
pub fn check_tls_files(tls: &Tls) -> Result<(), SpecError> {
    for (option, path) in tls.files() {
        let fail = |why: String| SpecError::TlsFile {
            option,
            path: path.display().to_string(),
            why,
        };
        let bytes = std::fs::read(path).map_err(|e| fail(io_words(&e)))?;
        let text = String::from_utf8_lossy(&bytes);
        let wanted = if option == "--ssl-key" {
            "PRIVATE KEY-----"
        } else {
            "CERTIFICATE-----"
        };
        // PEM is what the servers and openssl write; DER (binary, starting with a SEQUENCE
        // tag) is accepted by the driver too.
        let is_der = bytes.first() == Some(&0x30);
        if !is_der && !text.contains(wanted) {
            let holds = if option == "--ssl-key" {
                "private key"
            } else {
                "certificate"
            };
            return Err(fail(format!("it holds no {holds} (PEM or DER)")));
        }
    }
    Ok(())
}

/// An I/O error in words, without the `(os error 2)` suffix.
fn io_words(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        std::io::ErrorKind::IsADirectory => "it is a directory".into(),
        _ => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_string(),
                None => s,
            }
        }
    }
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
            Err(SpecError::BadDsn { .. })
        ));
        assert_eq!(redact_dsn("mysql://u:pw@h:1"), "mysql://u:***@h:1");
    }

    #[test]
    fn endpoints_round_trip() {
        let s = resolve(&input("mysql://u@[::1]:3306"), None).unwrap();
        assert_eq!(s.endpoint(), "[::1]:3306");
        assert_eq!(Endpoint::parse(&s.endpoint()), Some(s.address()));
        assert_eq!(s.address().host(), "::1");
    }

    #[test]
    fn ssl_modes() {
        assert_eq!("verify-ca".parse::<SslMode>().unwrap(), SslMode::VerifyCa);
        assert_eq!("preferred".parse::<SslMode>().unwrap(), SslMode::Preferred);
        let e = "sometimes".parse::<SslMode>().unwrap_err().to_string();
        assert!(e.contains("PREFERRED") && e.contains("'sometimes'"), "{e}");
    }

    #[test]
    fn tls_defaults_to_preferred_and_flags_beat_the_option_file() {
        let s = resolve(&input("mysql://u@h"), None).unwrap();
        assert_eq!(s.tls, Tls::default());
        assert_eq!(s.tls.mode, SslMode::Preferred);
        let file = OptionFile::parse(
            "[client]\nssl-mode=VERIFY_IDENTITY\nssl-ca=/etc/ca.pem\nssl-cert=/etc/c.pem\nssl-key=/etc/k.pem\n",
        );
        let s = resolve(&input("mysql://u@h"), Some(&file)).unwrap();
        assert_eq!(
            s.tls,
            Tls {
                mode: SslMode::VerifyIdentity,
                ca: Some("/etc/ca.pem".into()),
                cert: Some("/etc/c.pem".into()),
                key: Some("/etc/k.pem".into()),
            }
        );
        let mut i = input("mysql://u@h");
        i.tls = TlsInput {
            mode: Some(SslMode::Required),
            ca: Some("/x/ca.pem".into()),
            ..Default::default()
        };
        let s = resolve(&i, Some(&file)).unwrap();
        assert_eq!(s.tls.mode, SslMode::Required);
        assert_eq!(s.tls.ca, Some("/x/ca.pem".into()));
        // The source reached with the replica's settings keeps every one of them.
        assert_eq!(s.with_endpoint("h2", 1).tls, s.tls);
    }

    #[test]
    fn verify_modes_need_a_ca_and_one_client_file_serves_for_both() {
        let mut i = input("mysql://u@h");
        i.tls.mode = Some(SslMode::VerifyCa);
        let e = resolve(&i, None).unwrap_err();
        assert_eq!(e, SpecError::VerifyNeedsCa(SslMode::VerifyCa));
        assert!(
            e.to_string()
                .starts_with("--ssl-mode VERIFY_CA needs --ssl-ca"),
            "{e}"
        );
        i.tls.ca = Some("/ca.pem".into());
        i.tls.cert = Some("/client.pem".into());
        let s = resolve(&i, None).unwrap();
        assert_eq!(s.tls.key, Some("/client.pem".into()));
        let bad = OptionFile::parse("[client]\nssl-mode=sometimes\n");
        assert!(matches!(
            resolve(&input("mysql://u@h"), Some(&bad)),
            Err(SpecError::BadSslMode(_))
        ));
    }

    #[test]
    fn tls_files_are_checked_before_connecting() {
        let dir = std::env::temp_dir().join(format!("replmend-tlsfiles-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cert = dir.join("c.pem");
        std::fs::write(
            &cert,
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let key = dir.join("k.pem");
        std::fs::write(
            &key,
            "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let ok = Tls {
            mode: SslMode::VerifyCa,
            ca: Some(cert.clone()),
            cert: Some(cert.clone()),
            key: Some(key.clone()),
        };
        assert_eq!(check_tls_files(&ok), Ok(()));
        let missing = Tls {
            ca: Some(dir.join("nope.pem")),
            ..ok.clone()
        };
        let e = check_tls_files(&missing).unwrap_err().to_string();
        assert!(
            e.starts_with("cannot use --ssl-ca ") && e.ends_with(": no such file"),
            "{e}"
        );
        let swapped = Tls {
            key: Some(cert.clone()),
            ..ok.clone()
        };
        let e = check_tls_files(&swapped).unwrap_err().to_string();
        assert!(
            e.contains("--ssl-key") && e.contains("no private key"),
            "{e}"
        );
        let dir_as_ca = Tls {
            ca: Some(dir.clone()),
            ..ok
        };
        assert!(check_tls_files(&dir_as_ca).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unencoded_passwords_get_the_hint() {
        for (dsn, chars) in [
            ("mysql://u:p@ss:w/rd@host:3306", "'@' '/'"),
            ("mysql://u:p@ss@127.0.0.1:3306", "'@'"),
            ("mysql://u:a#b@host", "'#'"),
            ("mysql://u:a/b@host:3306", "'/'"),
            ("mysql://u:100%@host", "'%'"),
            ("mysql://u:wh?t@host", "'?'"),
            // Cut where a URL would parse (port 1234, a database "x@host"): still caught.
            ("mysql://u:1234/x@host", "'/'"),
            ("mysql://u:12?t@host", "'?'"),
            ("mysql://u:p@ss@h?socket=/run/a@b.sock", "'@'"),
        ] {
            let e = resolve(&input(dsn), None).unwrap_err();
            let m = e.to_string();
            assert!(
                matches!(&e, SpecError::NeedsEncoding { part: "password", chars: c, .. } if c == chars),
                "{dsn}: {m}"
            );
            assert!(
                m.ends_with("URL-encode the password, or use MYSQL_PWD / -p"),
                "{dsn}: {m}"
            );
            assert!(m.contains("u:***@"), "{dsn}: {m}");
            for secret in ["p@ss", "a#b", "a/b", "100%", "wh?t"] {
                assert!(!m.contains(secret), "{dsn}: {m}");
            }
        }
        // Encoded, the same passwords work; ':' needs no encoding after the first.
        let s = resolve(&input("mysql://u:p%40ss%3Aw%2Frd@host:3306"), None).unwrap();
        assert_eq!(s.password.unwrap().expose(), "p@ss:w/rd");
        assert_eq!((s.host.as_str(), s.port), ("host", 3306));
        let s = resolve(&input("mysql://u:a:b@host"), None).unwrap();
        assert_eq!(s.password.unwrap().expose(), "a:b");
        // A socket path may hold an '@'.
        assert_eq!(
            redact_dsn("mysql://u:p@ss@h?socket=/run/a@b.sock"),
            "mysql://u:***@h?socket=/run/a@b.sock"
        );
        let s = resolve(&input("mysql://u:pw@h?socket=/run/a@b.sock"), None).unwrap();
        assert_eq!(s.socket.unwrap(), PathBuf::from("/run/a@b.sock"));
        assert_eq!(s.password.unwrap().expose(), "pw");
    }

    #[test]
    fn no_dsn_mistake_reads_like_rust() {
        for dsn in [
            "mysql://u@h:",
            "mysql://u@h:notaport",
            "mysql://u@h:99999",
            "mysql://u@h:0",
            "mysql://u@[::1",
            "mysql://u@[::1]x",
            "mysql://u@::1:3306",
            "postgres://u:pw@h",
            "mysql:/h",
            "",
            "mysql://u:p@ss:@host",
            "mysql://us@er:pw@h",
        ] {
            let m = resolve(&input(dsn), None).unwrap_err().to_string();
            assert!(
                !m.contains('{')
                    && !m.contains("Some(")
                    && !m.contains("\\\"")
                    && !m.contains(":pw"),
                "{dsn}: {m}"
            );
            assert!(m.starts_with("invalid DSN"), "{dsn}: {m}");
        }
        let m = resolve(&input("mysql://u@h:"), None)
            .unwrap_err()
            .to_string();
        assert!(m.contains("the port '' is not a number"), "{m}");
        // A database path and a fragment are ignored, as before.
        let s = resolve(&input("mysql://u@h:3307/shop"), None).unwrap();
        assert_eq!((s.host.as_str(), s.port), ("h", 3307));
    }
}
