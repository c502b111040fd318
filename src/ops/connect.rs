//! Turns connection flags into a `ConnSpec`: reads the option file, the environment and, when
//! asked, a hidden prompt.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::cli::{ConnOpts, ReplicaConn};
use crate::conn::mycnf::OptionFile;
use crate::conn::spec::{self, ConnSpec, SpecInput};

fn default_option_file() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".my.cnf"))
        .filter(|p| p.is_file())
}

pub fn option_file(args: &ConnOpts) -> Result<Option<OptionFile>> {
    if let Some(path) = &args.defaults_file {
        return Ok(Some(OptionFile::load(path)?));
    }
    if args.no_defaults {
        return Ok(None);
    }
    Ok(match default_option_file() {
        Some(p) => Some(OptionFile::load(&p)?),
        None => None,
    })
}

pub fn replica_spec(args: &ReplicaConn) -> Result<ConnSpec> {
    Ok(specs(std::slice::from_ref(&args.replica), &args.opts)?.remove(0))
}

/// One spec per DSN (None: the server the options name), the password asked for once.
pub fn specs(dsns: &[Option<String>], args: &ConnOpts) -> Result<Vec<ConnSpec>> {
    let file = option_file(args)?;
    let prompted_password = if args.ask_password {
        Some(
            dialoguer::Password::new()
                .with_prompt("Password")
                .allow_empty_password(true)
                .interact()
                .context("-p needs a terminal to prompt for the password; use MYSQL_PWD or an option file instead")?,
        )
    } else {
        None
    };
    dsns.iter()
        .map(|dsn| {
            let input = SpecInput {
                dsn: dsn.clone(),
                host: args.host.clone(),
                port: args.port,
                user: args.user.clone(),
                socket: args.socket.clone(),
                ssl_mode: args.ssl_mode,
                ssl_ca: args.ssl_ca.clone(),
                env_password: std::env::var("MYSQL_PWD").ok(),
                prompted_password: prompted_password.clone(),
                login_user: std::env::var("USER").ok(),
            };
            Ok(spec::resolve(&input, file.as_ref())?)
        })
        .collect()
}
