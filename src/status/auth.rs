//! The replication user's authentication plugin, read on each channel's source where the TLS
//! warning needs it (a managed MySQL 8.4+ replica whose receiver connects without TLS and
//! without the source's public key): only what this account may read; otherwise unknown,
//! with why.

use super::model::StatusReport;
use super::topology::Topology;
use crate::capability::AuthPlugin;
use crate::conn::Server;

/// Fills `source_user_plugin` of each channel that connects without TLS and without the
/// source's public key.
pub fn read_plugins(replica: &Server, report: &mut StatusReport) {
    let topology = Topology::of(&replica.spec, report, None);
    for link in &topology.links {
        let ch = &link.channel;
        if ch.source_ssl != Some(false) || ch.source_public_key == Some(true) {
            continue;
        }
        let Some(user) = ch.source_user.clone() else {
            continue;
        };
        let plugin = match Server::connect(&link.source) {
            Ok(mut source) => plugin_of(&mut source, &user),
            Err(e) => AuthPlugin::Unknown {
                why: format!(
                    "the source {} is not reached with this account: {}",
                    link.source.endpoint(),
                    crate::describe::message(&e.into())
                ),
            },
        };
        if let Some(c) = report.channels.iter_mut().find(|c| c.name == ch.name) {
            c.source_user_plugin = Some(plugin);
        }
    }
}

fn plugin_of(source: &mut Server, user: &str) -> AuthPlugin {
    match source.all::<String>(&crate::sql::admin::account_plugins(user)) {
        Err(_) => AuthPlugin::Unknown {
            why: format!(
                "this account may not read mysql.user on the source {}",
                source.spec.endpoint()
            ),
        },
        Ok(plugins) => match plugins.as_slice() {
            [one] => AuthPlugin::Known {
                plugin: one.clone(),
            },
            [] => AuthPlugin::Unknown {
                why: format!("no account '{user}' in mysql.user of the source"),
            },
            many => AuthPlugin::Unknown {
                why: format!(
                    "the source's accounts named '{user}' use different plugins: {}",
                    many.join(", ")
                ),
            },
        },
    }
}
