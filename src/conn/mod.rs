//! Connections: the edge where replmend meets a server.

pub mod mycnf;
pub mod spec;

use std::time::Duration;

use mysql::prelude::Queryable;
use mysql::{Conn, OptsBuilder, SslOpts};
use thiserror::Error;

pub use spec::{ConnSpec, SpecInput, SslMode};

use crate::flavor::Flavor;

#[derive(Debug, Error)]
pub enum ConnectError {
    #[error("cannot reach {endpoint}: {reason}")]
    Unreachable { endpoint: String, reason: String },
    #[error("access denied for {who}: {reason}")]
    AccessDenied { who: String, reason: String },
    #[error("{endpoint} answered, but {reason}")]
    Protocol { endpoint: String, reason: String },
}

/// An open connection to one server, with what replmend needs to know about it.
pub struct Server {
    pub spec: ConnSpec,
    pub conn: Conn,
    pub flavor: Flavor,
    pub version_string: String,
    pub server_id: u32,
    pub server_uuid: Option<String>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Server({} {})", self.spec, self.flavor)
    }
}

pub(crate) fn opts(spec: &ConnSpec, connect_timeout: Duration) -> OptsBuilder {
    let mut b = OptsBuilder::new()
        .ip_or_hostname(Some(spec.host.clone()))
        .tcp_port(spec.port)
        .user(Some(spec.user.clone()))
        .pass(spec.password.as_ref().map(|p| p.expose().to_string()))
        // Without this the crate silently switches to the server's @@socket on loopback,
        // which is a different path inside a chroot or container.
        .prefer_socket(false)
        .tcp_connect_timeout(Some(connect_timeout))
        .read_timeout(Some(Duration::from_secs(60)))
        .write_timeout(Some(Duration::from_secs(60)))
        .socket(spec.socket.as_ref().map(|s| s.display().to_string()));
    let ssl = match spec.ssl_mode {
        SslMode::Disabled => None,
        SslMode::Required => Some(
            SslOpts::default()
                .with_danger_accept_invalid_certs(true)
                .with_danger_skip_domain_validation(true),
        ),
        SslMode::VerifyCa => Some(
            SslOpts::default()
                .with_root_cert_path(spec.ssl_ca.clone())
                .with_danger_skip_domain_validation(true),
        ),
        SslMode::VerifyIdentity => {
            Some(SslOpts::default().with_root_cert_path(spec.ssl_ca.clone()))
        }
    };
    b = b.ssl_opts(ssl);
    b
}

fn classify(spec: &ConnSpec, err: mysql::Error) -> ConnectError {
    let endpoint = spec.to_string();
    match err {
        mysql::Error::MySqlError(e) if matches!(e.code, 1045 | 1044 | 1698 | 1130) => {
            ConnectError::AccessDenied {
                who: endpoint,
                reason: redact(&e.message, spec),
            }
        }
        mysql::Error::IoError(e) => ConnectError::Unreachable {
            endpoint,
            reason: e.to_string(),
        },
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
            reason: redact(&other.to_string(), spec),
        },
    }
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
) -> crate::diagnosis::Row {
    crate::diagnosis::Row {
        values: values
            .zip(columns)
            .map(|(v, name)| match schema.column(name) {
                Some(c) => crate::binlog::decode::cell_from_value(v, c),
                None => crate::value::Cell::Null,
            })
            .collect(),
        columns: columns.to_vec(),
    }
}

/// Runs a statement selecting `columns`: every row it returns.
pub fn read_rows(
    conn: &mut Conn,
    schema: &crate::schema::TableSchema,
    columns: &[String],
    st: &crate::sql::Statement,
) -> mysql::Result<Vec<crate::diagnosis::Row>> {
    let rows: Vec<mysql::Row> = conn.exec(&st.sql, st.bind())?;
    Ok(rows
        .into_iter()
        .map(|r| decode_row(r.unwrap().into_iter(), schema, columns))
        .collect())
}

/// Runs a `sql::select_many_by_key` of `columns` over `n` keys: the row found for each key.
pub fn read_rows_by_index(
    conn: &mut Conn,
    schema: &crate::schema::TableSchema,
    columns: &[String],
    st: &crate::sql::Statement,
    n: usize,
) -> mysql::Result<Vec<Option<crate::diagnosis::Row>>> {
    let mut out = vec![None; n];
    let rows: Vec<mysql::Row> = conn.exec(&st.sql, st.bind())?;
    for r in rows {
        let mut values = r.unwrap().into_iter();
        let Some(i) = values
            .next()
            .and_then(|v| mysql::from_value_opt::<usize>(v).ok())
        else {
            continue;
        };
        if let Some(slot) = out.get_mut(i) {
            *slot = Some(decode_row(values, schema, columns));
        }
    }
    Ok(out)
}

/// Runs a row-reading statement (a `sql::select_by_key` of `columns`): the row, if any.
pub fn read_row(
    conn: &mut Conn,
    schema: &crate::schema::TableSchema,
    columns: &[String],
    st: &crate::sql::Statement,
) -> mysql::Result<Option<crate::diagnosis::Row>> {
    let row: Option<mysql::Row> = conn.exec_first(&st.sql, st.bind())?;
    Ok(row.map(|r| decode_row(r.unwrap().into_iter(), schema, columns)))
}

impl Server {
    /// Opens the session again if the server closed it (seen under load on MariaDB while a
    /// binlog dump ran beside it). Only for sessions that read or run single statements:
    /// nothing session-scoped is carried over.
    pub fn revive(&mut self) -> Result<(), ConnectError> {
        if self.conn.ping().is_err() {
            *self = Server::connect(&self.spec)?;
        }
        Ok(())
    }

    pub fn connect(spec: &ConnSpec) -> Result<Server, ConnectError> {
        Self::connect_with_timeout(spec, Duration::from_secs(10))
    }

    pub fn connect_with_timeout(
        spec: &ConnSpec,
        timeout: Duration,
    ) -> Result<Server, ConnectError> {
        let mut conn = Conn::new(opts(spec, timeout)).map_err(|e| classify(spec, e))?;
        let row: Option<(String, u32, Option<String>)> = conn
            .query_first("SELECT @@version, @@server_id, (SELECT @@server_uuid)")
            .or_else(|_| {
                // MariaDB has no server_uuid; asking for it is an error there.
                conn.query_first::<(String, u32), _>("SELECT @@version, @@server_id")
                    .map(|r| r.map(|(v, id)| (v, id, None)))
            })
            .map_err(|e| classify(spec, e))?;
        let (version_string, server_id, server_uuid) =
            row.ok_or_else(|| ConnectError::Protocol {
                endpoint: spec.to_string(),
                reason: "SELECT @@version returned nothing".into(),
            })?;
        let flavor = Flavor::parse(&version_string).ok_or_else(|| ConnectError::Protocol {
            endpoint: spec.to_string(),
            reason: format!("its version {version_string:?} is not one replmend knows"),
        })?;
        // Row values and key bytes must come back exactly as stored, and TIMESTAMPs in UTC
        // as the binlog carries them.
        conn.query_drop("SET NAMES utf8mb4, time_zone = '+00:00'")
            .map_err(|e| classify(spec, e))?;
        Ok(Server {
            spec: spec.clone(),
            conn,
            flavor,
            version_string,
            server_id,
            server_uuid,
        })
    }
}

/// A second server (e.g. the source) reached with a DSN of its own, or else with the replica's
/// credentials at the given endpoint.
pub fn other_spec(
    dsn: Option<&str>,
    fallback: &ConnSpec,
    host: &str,
    port: u16,
) -> Result<ConnSpec, spec::SpecError> {
    match dsn {
        Some(d) => {
            let input = SpecInput {
                dsn: Some(d.to_string()),
                env_password: fallback.password.as_ref().map(|p| p.expose().to_string()),
                login_user: Some(fallback.user.clone()),
                ssl_mode: Some(fallback.ssl_mode),
                ssl_ca: fallback.ssl_ca.clone(),
                ..Default::default()
            };
            spec::resolve(&input, None)
        }
        None => Ok(fallback.with_endpoint(host, port)),
    }
}

/// Runs `f` on both servers at once: each server does its own side of a comparison (hashing,
/// looking rows up) while the other does.
pub fn both<T: Send>(
    a: &mut Server,
    b: &mut Server,
    f: impl Fn(&mut Server) -> anyhow::Result<T> + Sync,
) -> anyhow::Result<(T, T)> {
    std::thread::scope(|s| {
        let other = s.spawn(|| f(b));
        let mine = f(a);
        let theirs = other
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        Ok((mine?, theirs?))
    })
}
