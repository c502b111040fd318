//! The capability probe: what this account may do on a node — the privileges it holds (its
//! active roles' included), the managed service's procedures present there (which make the
//! provider), and how long the node keeps its binary logs. The planner reads it as a fact
//! (`NodeRef::capabilities`): where a plain statement is not allowed and the provider offers
//! a procedure, the plan calls the procedure.

pub mod grants;

use serde::Serialize;

use crate::conn::Server;
use crate::flavor::{Need, Procedure, Provider};
use crate::sql::admin;

/// How long a node keeps its binary logs, as its setting says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(tag = "setting", rename_all = "snake_case")]
pub enum Retention {
    /// Not read (no privilege, an old server, MariaDB before 10.6).
    #[default]
    Unknown,
    /// Amazon RDS: `binlog retention hours` (None: NULL, the default: purged as soon as
    /// no replica needs them).
    RdsHours { hours: Option<u64> },
    /// binlog_expire_logs_seconds (0: never purged by age).
    ExpireSeconds { seconds: u64 },
}

/// Below this a failing transaction may be purged before anyone reads it: a replica stopped
/// overnight, a weekend.
const SHORT_RETENTION_SECONDS: u64 = 24 * 3600;

impl Retention {
    /// Why the retention is too short to count on fetching the failing transaction, if it is.
    pub fn warning(&self, provider: Provider) -> Option<String> {
        let why = match *self {
            Retention::RdsHours { hours: None } => {
                "binlog retention hours is NULL: the binary logs are purged as soon as no replica needs them".to_string()
            }
            Retention::RdsHours { hours: Some(h) } if h * 3600 < SHORT_RETENTION_SECONDS => {
                format!("binlog retention hours is {h}")
            }
            Retention::ExpireSeconds { seconds } if seconds > 0 && seconds < SHORT_RETENTION_SECONDS => {
                format!("binlog_expire_logs_seconds is {seconds}")
            }
            _ => return None,
        };
        Some(format!(
            "{why}; the failing transaction may be gone from the source's binary log before it is read (diagnose, overwrite and the origin search need it): keep at least a day, {}",
            provider.retention_setting()
        ))
    }
}

/// A replication user's authentication plugin, as read on its source.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AuthPlugin {
    Known {
        plugin: String,
    },
    /// Not read, and why (the account may not read mysql.user there, the source is not
    /// reached, no such account, accounts of that name with different plugins).
    Unknown {
        why: String,
    },
}

impl AuthPlugin {
    /// Connecting with it needs TLS or the source's RSA public key (MySQL 8.4: the
    /// `caching_sha2_password` default, and `sha256_password`).
    fn needs_tls_or_key(&self) -> bool {
        match self {
            AuthPlugin::Known { plugin } => {
                plugin == "caching_sha2_password" || plugin == "sha256_password"
            }
            AuthPlugin::Unknown { .. } => true,
        }
    }
}

/// How a channel's receiver authenticates to its source (the replica's status, and the
/// user's plugin where it was read on the source).
pub struct Receiver<'a> {
    /// Source_SSL_Allowed.
    pub tls: Option<bool>,
    /// Get_Source_public_key (or a key path).
    pub public_key: Option<bool>,
    pub user: Option<&'a str>,
    pub plugin: Option<&'a AuthPlugin>,
}

/// RDS for MySQL 8.4 creates replication users with caching_sha2_password, which its
/// procedures only connect with over TLS (SOURCE_SSL=1): a receiver without TLS that does not
/// fetch the source's public key fails at its next reconnect (restart, failover). Warned on a
/// managed 8.4+ replica unless the channel uses TLS, fetches the key, or its user's plugin is
/// known not to need either.
pub fn tls_warning(
    flavor: crate::flavor::Flavor,
    provider: Provider,
    ch: &Receiver<'_>,
) -> Option<String> {
    let newer = !flavor.is_mariadb() && flavor.version >= crate::flavor::Version::new(8, 4, 0);
    if provider == Provider::None || !newer || ch.tls != Some(false) {
        return None;
    }
    if ch.public_key == Some(true) {
        return None;
    }
    let user = ch.user.unwrap_or("?");
    let plugin = match ch.plugin {
        Some(p) if !p.needs_tls_or_key() => return None,
        Some(AuthPlugin::Known { plugin }) => {
            format!(
                "its replication user '{user}' authenticates with {plugin} (read on the source)"
            )
        }
        Some(AuthPlugin::Unknown { why }) => format!(
            "its replication user '{user}'s authentication plugin is unknown ({why}); on {} {} replication users authenticate with caching_sha2_password",
            provider.words(),
            flavor.version
        ),
        None => format!(
            "on {} {} replication users authenticate with caching_sha2_password",
            provider.words(),
            flavor.version
        ),
    };
    Some(format!(
        "this channel connects to its source without TLS and does not fetch the source's public key; {plugin}, which needs TLS (SOURCE_SSL=1 in the provider's procedure that sets the source) or the source's RSA public key (GET_SOURCE_PUBLIC_KEY=1), or the receiver fails at its next reconnect"
    ))
}

/// What the account may do on one node. `Default`: not probed — every plain statement is
/// assumed allowed (the preflight reads the grants again and names what is missing).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Capabilities {
    pub provider: Provider,
    /// STOP/START REPLICA.
    pub control_replication: bool,
    /// SET GLOBAL sql_replica_skip_counter.
    pub skip_counter: bool,
    /// SET GTID_NEXT (MariaDB: gtid_slave_pos).
    pub gtid_next: bool,
    /// SET SESSION sql_log_bin.
    pub sql_log_bin: bool,
    /// The provider's procedures present here and executable by this account.
    pub procedures: Vec<Procedure>,
    pub binlog_retention: Retention,
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities {
            provider: Provider::None,
            control_replication: true,
            skip_counter: true,
            gtid_next: true,
            sql_log_bin: true,
            procedures: Vec::new(),
            binlog_retention: Retention::Unknown,
        }
    }
}

impl Capabilities {
    /// The plain statement of `need` is allowed to this account.
    pub fn allows(&self, need: Need) -> bool {
        match need {
            Need::ControlReplication => self.control_replication,
            Need::SkipCounter => self.skip_counter,
            Need::GtidPosition => self.gtid_next,
            Need::SqlLogBin => self.sql_log_bin,
            _ => true,
        }
    }

    /// The provider's procedure stands in for the plain statement of `need`: a managed
    /// service where the statement is not allowed.
    pub fn via_provider(&self, need: Need) -> Option<Provider> {
        (self.provider != Provider::None && !self.allows(need)).then_some(self.provider)
    }

    /// What replmend can do here, in words (status).
    pub fn words(&self) -> Vec<String> {
        let how = |need: Need, plain: &str, call: Option<(Procedure, String)>| match (
            self.allows(need),
            call,
        ) {
            (true, _) => format!("{plain}: yes"),
            (false, Some((p, _))) if self.procedures.contains(&p) => {
                format!("{plain}: through CALL {p}")
            }
            (false, Some((p, _))) => format!("{plain}: no ({p} not executable here)"),
            (false, None) => format!("{plain}: no"),
        };
        let gtid = crate::vocab::Gtid::parse("00000000-0000-0000-0000-000000000000:1");
        let mut out = vec![
            how(
                Need::ControlReplication,
                "stop/start replication",
                self.provider.stop(""),
            ),
            how(
                Need::GtidPosition,
                "skip a transaction by its GTID",
                gtid.and_then(|g| self.provider.skip_gtid(&g)),
            ),
            how(
                Need::SkipCounter,
                "skip the current error",
                self.provider.skip_current(),
            ),
        ];
        out.push(match self.allows(Need::SqlLogBin) {
            true => "overwrite rows with the binary log off: yes".into(),
            false => "overwrite rows with the binary log off: no (sql_log_bin cannot be set; an overwrite is logged here with this node's own GTID, an errant transaction)".into(),
        });
        out
    }
}

/// Probes the node: grants (roles included), provider procedures, binlog retention. A read
/// that fails leaves its part at the default.
pub fn probe(server: &mut Server) -> Capabilities {
    let mut caps = Capabilities::default();
    let present: Vec<Procedure> = server
        .all::<String>(&admin::provider_procedures())
        .unwrap_or_default()
        .iter()
        .filter_map(|n| Procedure::from_name(n))
        .collect();
    caps.provider = Provider::detect(&present);
    if let Ok(held) = effective_grants(server) {
        let flavor = server.flavor;
        let allowed = |need: Need| grants::missing(&[need], flavor, &held).is_empty();
        caps.control_replication = allowed(Need::ControlReplication);
        caps.skip_counter = allowed(Need::SkipCounter);
        caps.gtid_next = allowed(Need::GtidPosition);
        caps.sql_log_bin = allowed(Need::SqlLogBin);
        caps.procedures = present
            .into_iter()
            .filter(|p| grants::may_execute(&held, *p))
            .collect();
    }
    caps.binlog_retention = retention(server, caps.provider);
    caps
}

fn retention(server: &mut Server, provider: Provider) -> Retention {
    if provider == Provider::Rds {
        let rows: Vec<(String, Option<String>, Option<String>)> = server
            .all(&admin::rds_show_configuration())
            .unwrap_or_default();
        return match rows.iter().find(|r| r.0 == "binlog retention hours") {
            Some((_, v, _)) => Retention::RdsHours {
                hours: v.as_deref().and_then(|v| v.trim().parse().ok()),
            },
            None => Retention::Unknown,
        };
    }
    match server.first::<u64>(&admin::binlog_expire_logs_seconds()) {
        Ok(Some(seconds)) => Retention::ExpireSeconds { seconds },
        _ => Retention::Unknown,
    }
}

/// The account's grants with those of its active roles: SHOW GRANTS alone names a role
/// granted (`GRANT `fix`@`%` TO …`), not what the role grants, and an account that holds its
/// privileges through a role would be refused. MySQL expands the active roles with `USING`;
/// MariaDB's one active role is read with `SHOW GRANTS FOR role`. A role that cannot be read
/// adds nothing (the preflight then names what is missing).
pub fn effective_grants(server: &mut crate::conn::Server) -> anyhow::Result<Vec<String>> {
    use crate::sql::admin;
    let mut grants: Vec<String> = server.all(&admin::show_grants())?;
    // NULL (MariaDB, no role) is a row holding NULL: Option<Option<_>>.
    let active: Option<String> = server
        .first::<Option<String>>(&admin::current_role())
        .ok()
        .flatten()
        .flatten();
    let Some(active) = active.filter(|r| !r.is_empty() && r != "NONE") else {
        return Ok(grants);
    };
    if server.flavor.is_mariadb() {
        let more: Vec<String> = server
            .all(&admin::show_grants_for_role(&active))
            .unwrap_or_default();
        grants.extend(more);
        return Ok(grants);
    }
    let roles = grants::parse_roles(&active);
    if !roles.is_empty()
        && let Ok(expanded) = server.all::<String>(&admin::show_grants_using(&roles))
    {
        grants = expanded;
    }
    Ok(grants)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_warning_weighs_tls_the_public_key_and_the_plugin() {
        let f = crate::flavor::Flavor::parse("8.4.3").unwrap();
        let sha2 = AuthPlugin::Known {
            plugin: "caching_sha2_password".into(),
        };
        let other = AuthPlugin::Known {
            plugin: "auth_socket".into(),
        };
        let unknown = AuthPlugin::Unknown {
            why: "this account may not read mysql.user".into(),
        };
        let rx = |tls, key, plugin| Receiver {
            tls: Some(tls),
            public_key: Some(key),
            user: Some("repl"),
            plugin,
        };
        let warn = |r: Receiver<'_>| tls_warning(f, Provider::Rds, &r);
        assert!(warn(rx(true, false, Some(&sha2))).is_none());
        assert!(warn(rx(false, true, Some(&sha2))).is_none());
        assert!(warn(rx(false, false, Some(&other))).is_none());
        let w = warn(rx(false, false, Some(&sha2))).unwrap();
        assert!(
            w.contains("'repl' authenticates with caching_sha2_password"),
            "{w}"
        );
        let w = warn(rx(false, false, Some(&unknown))).unwrap();
        assert!(
            w.contains("unknown (this account may not read mysql.user)"),
            "{w}"
        );
        assert!(warn(rx(false, false, None)).is_some());
        assert!(tls_warning(f, Provider::None, &rx(false, false, Some(&sha2))).is_none());
    }
}
