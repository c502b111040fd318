//! Connections: the edge where replmend meets a server.

mod account;
pub mod catalog;
pub mod mycnf;
pub mod mylogin;
mod run;
pub mod spec;

use std::sync::Arc;
use std::time::Duration;

use mysql::prelude::Queryable;
use mysql::{ClientIdentity, Conn, OptsBuilder, SslOpts};
use thiserror::Error;

pub use account::Account;
pub use spec::{ConnSpec, SpecInput, SslMode, Tls};

use crate::flavor::Flavor;
use crate::schema::{SchemaError, TableSchema};

#[derive(Debug, Error)]
pub enum ConnectError {
    #[error("cannot reach {endpoint}: {reason}")]
    Unreachable { endpoint: Account, reason: String },
    #[error("access denied for {who}: {reason}")]
    AccessDenied { who: Account, reason: String },
    #[error("{endpoint} answered, but {reason}")]
    Protocol { endpoint: Account, reason: String },
    /// The connection could not be secured as `--ssl-mode` asks.
    #[error("TLS with {endpoint} failed: {reason}")]
    Tls { endpoint: Account, reason: String },
    /// The client certificate and key given cannot be used together.
    #[error("cannot use --ssl-cert {cert} with --ssl-key {key}: {reason}")]
    TlsInput {
        cert: String,
        key: String,
        reason: String,
    },
}

/// An open connection to one server, with what replmend needs to know about it.
pub struct Server {
    pub spec: ConnSpec,
    /// Private: everything runs through the methods of `run` (the builder's statements).
    conn: Conn,
    pub flavor: Flavor,
    pub version_string: String,
    pub server_id: u32,
    pub server_uuid: Option<String>,
    /// Table definitions used by this session, each checked once: a session lives for one
    /// phase (a diagnosis, one repair under its lock), whose reads must agree with each other.
    schemas: std::collections::HashMap<crate::vocab::TableRef, Arc<TableSchema>>,
    /// This session took the repair lock (`repair::lock::take`). A lock belongs to its
    /// connection: a session opened again (`revive`) starts without it.
    repair_lock: bool,
    /// How this server evaluates verify's row text (`verify::walk::text_eval`): probed once
    /// per session, on its first chunk.
    pub text_eval: Option<crate::sql::TextEval>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Server({} {})", self.spec, self.flavor)
    }
}

/// How long connecting, and each read or write afterwards, may take.
#[derive(Debug, Clone, Copy)]
struct Deadlines {
    connect: Duration,
    io: Duration,
}

/// A statement of replmend's may run long (a chunk of a big table, a catch-up wait): reads
/// and writes wait up to this long unless the caller asked for less.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

fn opts(spec: &ConnSpec, t: Deadlines, ssl: Option<SslOpts>) -> OptsBuilder {
    OptsBuilder::new()
        .ip_or_hostname(Some(spec.host.clone()))
        .tcp_port(spec.port)
        .user(Some(spec.user.clone()))
        .pass(spec.password.as_ref().map(|p| p.expose().to_string()))
        // Without this the crate silently switches to the server's @@socket on loopback,
        // which is a different path inside a chroot or container.
        .prefer_socket(false)
        .tcp_connect_timeout(Some(t.connect))
        .read_timeout(Some(t.io))
        .write_timeout(Some(t.io))
        .socket(spec.socket.as_ref().map(|s| s.display().to_string()))
        // The driver otherwise refuses any packet longer than the server's
        // @@max_allowed_packet, yet a server stores and sends rows longer than that (built
        // from columns each below it): verify could find such a row differing and not read
        // it. 1 GiB is the protocol's limit, as for the mysql client; what the server takes
        // stays its own limit.
        .max_allowed_packet(Some(1 << 30))
        .ssl_opts(ssl)
}

/// The driver's TLS options for the mode, as the mysql client applies them: PREFERRED and
/// REQUIRED encrypt without checking the certificate, VERIFY_CA checks who signed it,
/// VERIFY_IDENTITY also the host name. None: no TLS (DISABLED, or a Unix socket, which the
/// servers treat as secure and the driver never encrypts). Only `--ssl-ca` is trusted: the
/// public web roots the driver adds come from `vendor/webpki-roots-none`, which has none.
fn ssl_opts(spec: &ConnSpec) -> Option<SslOpts> {
    let tls = &spec.tls;
    if tls.mode == SslMode::Disabled || spec.socket.is_some() {
        return None;
    }
    let verify = tls.mode.verifies();
    let identity = match (&tls.cert, &tls.key) {
        (Some(c), Some(k)) => Some(ClientIdentity::new(c.clone(), k.clone())),
        _ => None,
    };
    Some(
        SslOpts::default()
            .with_client_identity(identity)
            .with_root_cert_path(tls.ca.clone().filter(|_| verify))
            .with_danger_accept_invalid_certs(!verify)
            .with_danger_skip_domain_validation(tls.mode != SslMode::VerifyIdentity),
    )
}

/// Endpoints found without TLS under PREFERRED in this process: asked once, not at every
/// connection, because each refused attempt counts in the server's Aborted_connects.
static PLAIN_ONLY: std::sync::Mutex<std::collections::BTreeSet<crate::vocab::Endpoint>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// Opens the session. PREFERRED falls back to a plain connection when the server offers no
/// TLS, as the mysql client does; the driver has no such mode (it refuses the server), so
/// the connection is opened again without TLS.
fn open(spec: &ConnSpec, timeout: Deadlines) -> Result<Conn, ConnectError> {
    let preferred = spec.tls.mode == SslMode::Preferred;
    let plain_only = || PLAIN_ONLY.lock().unwrap_or_else(|p| p.into_inner());
    let ssl = ssl_opts(spec).filter(|_| !(preferred && plain_only().contains(&spec.address())));
    let tried_tls = ssl.is_some();
    match Conn::new(opts(spec, timeout, ssl)) {
        Err(mysql::Error::DriverError(mysql::DriverError::TlsNotSupported)) if preferred => {
            plain_only().insert(spec.address());
            Conn::new(opts(spec, timeout, None)).map_err(|e| classify(spec, e, false))
        }
        r => r.map_err(|e| classify(spec, e, tried_tls)),
    }
}

/// A failed connection in one sentence, with the exit code its kind stands for. `encrypted`:
/// whether the attempt was made over TLS.
fn classify(spec: &ConnSpec, err: mysql::Error, encrypted: bool) -> ConnectError {
    let endpoint = spec.account();
    if let Some(reason) = tls_failure(spec, &err) {
        return reason;
    }
    match err {
        mysql::Error::MySqlError(e) if matches!(e.code, 1045 | 1044 | 1698 | 1130) => {
            let mut reason = redact(&e.message, spec);
            // The server says the same for a wrong password and for a connection that lacks
            // what the account REQUIREs: name the latter when the options made it likely.
            if e.code == 1045 && spec.socket.is_none() {
                if spec.tls.mode == SslMode::Disabled {
                    reason.push_str(
                        " (the connection was not encrypted: an account created REQUIRE SSL needs --ssl-mode PREFERRED or stronger)",
                    );
                } else if encrypted && spec.tls.cert.is_none() {
                    reason.push_str(
                        " (if the account was created REQUIRE X509, SUBJECT or ISSUER, it also needs --ssl-cert and --ssl-key)",
                    );
                }
            }
            ConnectError::AccessDenied {
                who: endpoint,
                reason,
            }
        }
        mysql::Error::IoError(e) => ConnectError::Unreachable {
            endpoint,
            reason: e.to_string(),
        },
        // A read that timed out during the handshake: the port accepted the connection (the
        // kernel does that for a frozen server too) and nothing answered.
        mysql::Error::CodecError(mysql_common::proto::codec::error::PacketCodecError::Io(e))
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            ConnectError::Unreachable {
                endpoint,
                reason: "it accepted the connection but did not answer in time (hung, frozen or overloaded)".into(),
            }
        }
        mysql::Error::DriverError(
            e @ (mysql::DriverError::ConnectTimeout | mysql::DriverError::CouldNotConnect(_)),
        ) => ConnectError::Unreachable {
            endpoint,
            reason: e.to_string(),
        },
        // MySQL switches an account that does not exist to sha256_password, so that a client
        // cannot tell a wrong user from a wrong password.
        mysql::Error::DriverError(mysql::DriverError::UnknownAuthPlugin(plugin))
            if plugin == "sha256_password" =>
        {
            ConnectError::AccessDenied {
                who: endpoint,
                reason: "the server demanded sha256_password, as MySQL does for an account that does not exist".into(),
            }
        }
        other => ConnectError::Protocol {
            endpoint,
            reason: redact(&crate::describe::describe_mysql(&other), spec),
        },
    }
}

/// A TLS failure in words. The driver hands rustls' errors over inside I/O errors (the
/// handshake runs on the first read or write) or as its own TLS error; either way the cause
/// is one of rustls' error values, matched here rather than printed (they print as
/// `InvalidCertificate(UnknownIssuer)`).
fn tls_failure(spec: &ConnSpec, err: &mysql::Error) -> Option<ConnectError> {
    use rustls::{CertificateError as C, Error as R};
    let endpoint = spec.account();
    let fail = |reason: String| {
        Some(ConnectError::Tls {
            endpoint: endpoint.clone(),
            reason,
        })
    };
    let io_cause = |io: &std::io::Error| {
        io.get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .cloned()
    };
    let rustls_err = match err {
        mysql::Error::DriverError(mysql::DriverError::TlsNotSupported) => {
            return fail(format!(
                "the server does not offer TLS, which --ssl-mode {} demands (PREFERRED connects unencrypted to such a server)",
                spec.tls.mode
            ));
        }
        mysql::Error::IoError(io) => io_cause(io),
        mysql::Error::CodecError(mysql_common::proto::codec::error::PacketCodecError::Io(io)) => {
            io_cause(io)
        }
        mysql::Error::TlsError(mysql::error::tls::TlsError::Tls(e)) => Some(e.clone()),
        mysql::Error::TlsError(other) => {
            return fail(format!("the TLS setup failed ({other})"));
        }
        _ => None,
    }?;
    let ca = spec
        .tls
        .ca
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let reason = match rustls_err {
        R::InvalidCertificate(c) => match c {
            C::UnknownIssuer => format!("its certificate is not signed by the CA in {ca}"),
            C::NotValidForName | C::NotValidForNameContext { .. } => format!(
                "its certificate is not issued for {} (VERIFY_IDENTITY checks the host connected to against the certificate's names; connect by one of them, or use VERIFY_CA)",
                spec.host
            ),
            C::Expired | C::ExpiredContext { .. } => "its certificate has expired".into(),
            C::NotValidYet | C::NotValidYetContext { .. } => {
                "its certificate is not valid yet (check the clocks)".into()
            }
            C::BadSignature => {
                format!("its certificate's signature does not verify against the CA in {ca}")
            }
            C::Revoked => "its certificate has been revoked".into(),
            C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
                "its certificate is not meant for a TLS server".into()
            }
            _ => "its certificate cannot be verified".into(),
        },
        R::InconsistentKeys(_) => {
            return Some(ConnectError::TlsInput {
                cert: path_text(&spec.tls.cert),
                key: path_text(&spec.tls.key),
                reason: "the key does not belong to the certificate".into(),
            });
        }
        R::AlertReceived(alert) => {
            let words = alert_words(&format!("{alert:?}"));
            if spec.tls.cert.is_some() {
                format!(
                    "the server ended the handshake with the alert '{words}' (it did not accept the client certificate --ssl-cert)"
                )
            } else {
                format!("the server ended the handshake with the alert '{words}'")
            }
        }
        R::PeerIncompatible(_) => {
            "the server and replmend share no TLS version or cipher (replmend needs TLS 1.2 or 1.3)"
                .into()
        }
        R::NoCertificatesPresented => "the server presented no certificate".into(),
        _ => "the TLS handshake failed".into(),
    };
    fail(reason)
}

fn path_text(p: &Option<std::path::PathBuf>) -> String {
    p.as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// `UnknownCA` → `unknown CA`, `BadCertificate` → `bad certificate`: a TLS alert's name as
/// the TLS specification writes it.
fn alert_words(name: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let starts_word = c.is_ascii_uppercase()
            && i > 0
            && (chars[i - 1].is_ascii_lowercase()
                || chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase()));
        if starts_word {
            out.push(' ');
        }
        out.push(c);
    }
    out.split(' ')
        .map(|w| {
            if w.len() > 1 && w.chars().all(|c| c.is_ascii_uppercase()) {
                w.to_string()
            } else {
                w.to_ascii_lowercase()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Servers echo nothing secret today, but a password must never reach output even if one did.
fn redact(text: &str, spec: &ConnSpec) -> String {
    match &spec.password {
        Some(p) if !p.expose().is_empty() => text.replace(p.expose(), "***"),
        _ => text.to_string(),
    }
}

/// A result row's values for `columns`, decoded by the table's column types so they compare
/// exactly with rows decoded from the binlog.
pub(crate) fn decode_row(
    values: impl Iterator<Item = mysql::Value>,
    schema: &crate::schema::TableSchema,
    columns: &[String],
) -> crate::value::Row {
    crate::value::Row {
        values: values
            .zip(columns)
            .map(|(v, name)| match schema.column(name) {
                Some(c) => crate::decode::cell_from_value(v, c),
                None => crate::value::Cell::Null,
            })
            .collect(),
        columns: columns.to_vec(),
    }
}

impl Server {
    /// Opens the session again if the server closed it (seen under load on MariaDB while a
    /// binlog dump ran beside it). Only for sessions that read or run single statements:
    /// nothing session-scoped is carried over. True when it had to be opened again.
    pub fn revive(&mut self) -> Result<bool, ConnectError> {
        if self.conn.ping().is_ok() {
            return Ok(false);
        }
        *self = Server::connect(&self.spec)?;
        Ok(true)
    }

    /// A session to the server: one a finished phase handed back (`release`), if it is
    /// still alive, else a new one.
    pub fn connect(spec: &ConnSpec) -> Result<Server, ConnectError> {
        if let Some(server) = IDLE.take(spec) {
            crate::timing::mark(format_args!("reused a session to {}", spec.endpoint()));
            return Ok(server);
        }
        Self::connect_with_timeout(spec, Duration::from_secs(10))
    }

    /// Whether this session holds the repair lock (taken on it and its connection alive
    /// since: a lost connection comes back as a new session, without it).
    pub fn holds_repair_lock(&self) -> bool {
        self.repair_lock
    }

    /// Records that the repair lock was taken on this session.
    pub fn set_repair_lock(&mut self) {
        self.repair_lock = true;
    }

    /// Hands the session to the next `connect` to the same server with the same settings: a
    /// repair opens its sessions right after the diagnosis is done with its own. Only for
    /// sessions that ran reads and left no state behind; the definitions it used are
    /// forgotten (the next phase checks its own).
    pub fn release(mut self) {
        self.schemas.clear();
        IDLE.put(self);
    }

    pub fn connect_with_timeout(
        spec: &ConnSpec,
        timeout: Duration,
    ) -> Result<Server, ConnectError> {
        let t = Deadlines {
            connect: timeout,
            io: IO_TIMEOUT,
        };
        Server::open_with(spec, t)
    }

    /// A session for looking only (fleet discovery): connecting and every read or write
    /// afterwards each give up after `deadline`, so a server that accepts connections and
    /// answers nothing (frozen, swapping) costs at most that.
    pub fn connect_within(spec: &ConnSpec, deadline: Duration) -> Result<Server, ConnectError> {
        let t = Deadlines {
            connect: deadline,
            io: deadline,
        };
        Server::open_with(spec, t)
    }

    fn open_with(spec: &ConnSpec, timeout: Deadlines) -> Result<Server, ConnectError> {
        let mut conn = open(spec, timeout)?;
        let row = identify(&mut conn).map_err(|e| classify(spec, e, false))?;
        let (version_string, server_id, server_uuid) =
            row.ok_or_else(|| ConnectError::Protocol {
                endpoint: spec.account(),
                reason: "SELECT @@version returned nothing".into(),
            })?;
        let flavor = Flavor::parse(&version_string).ok_or_else(|| ConnectError::Protocol {
            endpoint: spec.account(),
            reason: format!("its version {version_string:?} is not one replmend knows"),
        })?;
        crate::timing::mark(format_args!("connected to {}", spec.endpoint()));
        Ok(Server {
            spec: spec.clone(),
            conn,
            flavor,
            version_string,
            server_id,
            server_uuid,
            schemas: Default::default(),
            repair_lock: false,
            text_eval: None,
        })
    }

    /// The table's definition on this server, read on first use in this session. A
    /// definition this process already read on the server is reused when the table's
    /// `SHOW CREATE TABLE` text is still the one it was read under: one cheap statement
    /// instead of two information_schema reads (milliseconds each on a busy server) every
    /// time a phase opens its sessions.
    pub fn table(
        &mut self,
        table: &crate::vocab::TableRef,
    ) -> Result<Arc<TableSchema>, SchemaError> {
        if let Some(s) = self.schemas.get(table) {
            return Ok(Arc::clone(s));
        }
        let key = (self.spec.address(), table.clone());
        // Read before the definition: a change in between makes the next check read it again.
        let create = self.create_text(table);
        let known = create.as_ref().and_then(|text| DEFINITIONS.get(&key, text));
        let s = match known {
            Some(s) => {
                crate::timing::mark(format_args!("schema of {table} unchanged on {}", key.0));
                s
            }
            None => {
                let s = Arc::new(catalog::load(self, table)?);
                if let Some(text) = create {
                    DEFINITIONS.put(key, text, Arc::clone(&s));
                }
                s
            }
        };
        self.schemas.insert(table.clone(), Arc::clone(&s));
        Ok(s)
    }

    /// The table's `SHOW CREATE TABLE` text without its `AUTO_INCREMENT=N` option (the
    /// counter moves with every insert; the definition does not). None when it cannot be read
    /// (a view, a missing privilege): the definition is then read in full every time.
    fn create_text(&mut self, table: &crate::vocab::TableRef) -> Option<String> {
        let row: mysql::Row = self.first(&crate::sql::show_create_table(table)).ok()??;
        let text: String = row.get_opt(1)?.ok()?;
        Some(crate::sql::without_auto_increment_option(&text))
    }
}

/// A session to each server, opened at once (each connection waits on its own server), in
/// the order given.
pub fn connect_all(specs: &[&ConnSpec]) -> Vec<Result<Server, ConnectError>> {
    std::thread::scope(|scope| {
        let opening: Vec<_> = specs
            .iter()
            .map(|spec| scope.spawn(move || Server::connect(spec)))
            .collect();
        opening
            .into_iter()
            .map(|t| t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

/// Sessions handed back by a finished phase, newest last; a few at most (a watch daemon
/// diagnoses again and again without always repairing).
struct Idle(std::sync::Mutex<Vec<Server>>);

static IDLE: Idle = Idle(std::sync::Mutex::new(Vec::new()));

/// Every session waiting in the idle pool, taken out of it (to be closed by the caller).
pub fn drain_idle() -> Vec<Server> {
    let mut idle = IDLE.0.lock().unwrap_or_else(|p| p.into_inner());
    std::mem::take(&mut *idle)
}

impl Idle {
    const MAX: usize = 4;

    fn take(&self, spec: &ConnSpec) -> Option<Server> {
        loop {
            let mut server = {
                let mut idle = self.0.lock().unwrap_or_else(|p| p.into_inner());
                let at = idle.iter().rposition(|s| s.spec == *spec)?;
                idle.remove(at)
            };
            // A session the server closed meanwhile (wait_timeout) is dropped, not reused.
            if server.conn.ping().is_ok() {
                return Some(server);
            }
        }
    }

    fn put(&self, server: Server) {
        let mut idle = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() >= Self::MAX {
            idle.remove(0);
        }
        idle.push(server);
    }
}

/// Table definitions read in this process, keyed by server endpoint and table, with the
/// `SHOW CREATE TABLE` text each was read under; an entry is used only when that text is
/// unchanged. Process-wide because the sessions that need a definition are many and short
/// (diagnosis, re-check under the lock, each watch cycle) while the definition rarely changes.
struct Definitions(std::sync::LazyLock<std::sync::Mutex<DefinitionMap>>);

type DefinitionKey = (crate::vocab::Endpoint, crate::vocab::TableRef);
type DefinitionMap = std::collections::HashMap<DefinitionKey, (String, Arc<TableSchema>)>;

static DEFINITIONS: Definitions = Definitions(std::sync::LazyLock::new(Default::default));

impl Definitions {
    fn get(&self, key: &DefinitionKey, text: &str) -> Option<Arc<TableSchema>> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key)
            .filter(|(t, _)| t == text)
            .map(|(_, s)| Arc::clone(s))
    }

    fn put(&self, key: DefinitionKey, text: String, s: Arc<TableSchema>) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(key, (text, s));
    }
}

/// Who the server is, in the round trip that also sets the session up: row values and key
/// bytes must come back exactly as stored, and TIMESTAMPs in UTC as the binlog carries them.
/// MariaDB has no server_uuid (asking for it is an error there); the greeting's version
/// (MariaDB's is 10 and up) says whether to ask, and a wrong guess is asked again.
fn identify(conn: &mut Conn) -> mysql::Result<Option<(String, u32, Option<String>)>> {
    let ask =
        |conn: &mut Conn, uuid: &str| -> mysql::Result<Option<(String, u32, Option<String>)>> {
            let mut result = conn.query_iter(format!(
                "SET NAMES utf8mb4, time_zone = '+00:00'; SELECT @@version, @@server_id, {uuid}"
            ))?;
            let mut found = None;
            while let Some(set) = result.iter() {
                for row in set {
                    found = Some(mysql::from_row_opt(row?).map_err(mysql::Error::from)?);
                }
            }
            Ok(found)
        };
    let guess_mariadb = conn.server_version().0 >= 10;
    let found = match guess_mariadb {
        true => ask(conn, "NULL")?,
        false => ask(conn, "(SELECT @@server_uuid)").or_else(|_| ask(conn, "NULL"))?,
    };
    match found {
        Some((version, id, None)) if Flavor::parse(&version).is_some_and(|f| !f.is_mariadb()) => {
            let uuid: Option<String> = conn.query_first("SELECT @@server_uuid")?;
            Ok(Some((version, id, uuid)))
        }
        other => Ok(other),
    }
}

/// Runs `f` on both servers at once: each server does its own side of a comparison (hashing,
/// looking rows up) while the other does.
pub fn both<T: Send>(
    a: &mut Server,
    b: &mut Server,
    f: impl Fn(&mut Server) -> anyhow::Result<T> + Sync,
) -> anyhow::Result<(T, T)> {
    each(a, b, &f, &f)
}

/// `fa` on `a` and `fb` on `b` at once (the same work with different arguments per node).
pub fn each<T: Send, U: Send>(
    a: &mut Server,
    b: &mut Server,
    fa: impl FnOnce(&mut Server) -> anyhow::Result<T>,
    fb: impl FnOnce(&mut Server) -> anyhow::Result<U> + Send,
) -> anyhow::Result<(T, U)> {
    std::thread::scope(|s| {
        let other = s.spawn(|| fb(b));
        let mine = fa(a);
        let theirs = other
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        Ok((mine?, theirs?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(mode: SslMode) -> ConnSpec {
        let mut input = SpecInput {
            dsn: Some("mysql://u:secret@db1:3306".into()),
            ..Default::default()
        };
        input.tls.mode = Some(mode);
        input.tls.ca = Some("/etc/ca.pem".into());
        spec::resolve(&input, None).unwrap()
    }

    /// The failure in the words the user reads (its exit code is `error`'s, one per kind).
    fn words(e: ConnectError) -> String {
        crate::describe::message(&anyhow::Error::from(e))
    }

    #[test]
    fn tls_failures_are_sentences_with_their_codes() {
        let s = spec(SslMode::Required);
        let e = classify(
            &s,
            mysql::Error::DriverError(mysql::DriverError::TlsNotSupported),
            true,
        );
        assert!(matches!(e, ConnectError::Tls { .. }), "{e:?}");
        let m = words(e);
        assert_eq!(
            m,
            "TLS with u@db1:3306 failed: the server does not offer TLS, which --ssl-mode REQUIRED demands (PREFERRED connects unencrypted to such a server)"
        );
        // rustls' error as the driver hands it over: inside an I/O error of the handshake.
        let s = spec(SslMode::VerifyCa);
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        let e = classify(&s, mysql::Error::IoError(io), true);
        assert!(matches!(e, ConnectError::Tls { .. }), "{e:?}");
        let m = words(e);
        assert_eq!(
            m,
            "TLS with u@db1:3306 failed: its certificate is not signed by the CA in /etc/ca.pem"
        );
        let alert = mysql::Error::TlsError(mysql::error::tls::TlsError::Tls(
            rustls::Error::AlertReceived(rustls::AlertDescription::UnknownCA),
        ));
        let m = words(classify(&s, alert, true));
        assert!(m.ends_with("the alert 'unknown CA'"), "{m}");
    }

    #[test]
    fn access_denied_says_what_the_account_may_require() {
        let denied = || {
            mysql::Error::MySqlError(mysql::MySqlError {
                state: "28000".into(),
                code: 1045,
                message: "Access denied for user 'u'@'10.0.0.9' (using password: YES)".into(),
            })
        };
        let e = classify(&spec(SslMode::Disabled), denied(), false);
        assert!(matches!(e, ConnectError::AccessDenied { .. }), "{e:?}");
        let m = words(e);
        assert!(m.contains("not encrypted") && !m.contains("secret"), "{m}");
        let m = words(classify(&spec(SslMode::Preferred), denied(), false));
        // PREFERRED fell back: the server has no TLS, so no account there can require it.
        assert!(!m.contains("REQUIRE"), "{m}");
        let m = words(classify(&spec(SslMode::Required), denied(), true));
        assert!(m.contains("REQUIRE X509"), "{m}");
    }

    #[test]
    fn alert_names_read_as_the_tls_specification_writes_them() {
        assert_eq!(alert_words("UnknownCA"), "unknown CA");
        assert_eq!(alert_words("BadCertificate"), "bad certificate");
        assert_eq!(alert_words("HandshakeFailure"), "handshake failure");
        assert_eq!(alert_words("CertificateRequired"), "certificate required");
    }
}
