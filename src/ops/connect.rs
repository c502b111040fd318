//! Turns connection flags into a `ConnSpec`: reads the option files, the environment and, when
//! asked, a hidden prompt.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::cli::{ConnOpts, ReplicaConn, ReplicasConn};
use crate::conn::mycnf::OptionFile;
use crate::conn::spec::{self, ConnSpec, SpecInput, TlsInput};

fn home_file(name: &str) -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(name))
}

/// The login file: `MYSQL_TEST_LOGIN_FILE` names it, as for the mysql client.
fn login_file() -> Option<PathBuf> {
    std::env::var_os("MYSQL_TEST_LOGIN_FILE")
        .map(PathBuf::from)
        .or_else(|| home_file(".mylogin.cnf"))
}

/// The options from files, in the mysql client's order: `~/.my.cnf` (or `--defaults-file`;
/// none with `--no-defaults`), then the login file's `[client]`, `[replmend]` and
/// `--login-path` group over them. The login file is read in every case, `--no-defaults`
/// included, as the client reads it.
pub fn option_file(args: &ConnOpts) -> Result<Option<OptionFile>> {
    let mut warn = |w: String| eprintln!("replmend: warning: {w}");
    let cnf = match (&args.defaults_file, args.no_defaults) {
        (Some(path), _) => OptionFile::load(path, &mut warn)?,
        (None, true) => None,
        (None, false) => match home_file(".my.cnf").filter(|p| p.is_file()) {
            Some(p) => OptionFile::load(&p, &mut warn)?,
            None => None,
        },
    };
    let login = match login_file() {
        Some(p) => OptionFile::load_login(&p, args.login_path.as_deref(), &mut warn)?,
        None => None,
    };
    Ok(match (cnf, login) {
        (Some(c), Some(l)) => Some(c.overlay(l)),
        (c, l) => c.or(l),
    })
}

/// The server a `--source` DSN names, resolved once here: what the DSN leaves out (user,
/// password, TLS) is the replica's. None: no source named (`topology` then reaches each
/// source at the address the replica's status gives, with the replica's credentials).
pub fn source_spec(dsn: Option<&str>, replica: &ConnSpec) -> Result<Option<ConnSpec>> {
    let Some(d) = dsn else {
        return Ok(None);
    };
    let input = SpecInput {
        dsn: Some(d.to_string()),
        env_password: replica.password.as_ref().map(|p| p.expose().to_string()),
        login_user: Some(replica.user.clone()),
        tls: (&replica.tls).into(),
        ..Default::default()
    };
    Ok(Some(spec::resolve(&input, None)?))
}

pub fn replica_spec(args: &ReplicaConn) -> Result<ConnSpec> {
    Ok(specs(std::slice::from_ref(&args.replica), &args.opts)?.remove(0))
}

/// Each `--replica` named (none: the server the options name), the password asked for once.
pub fn replica_specs(args: &ReplicasConn) -> Result<Vec<ConnSpec>> {
    let dsns: Vec<Option<String>> = match args.replicas.is_empty() {
        true => vec![None],
        false => args.replicas.iter().cloned().map(Some).collect(),
    };
    specs(&dsns, &args.opts)
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
                tls: TlsInput {
                    mode: args.ssl_mode,
                    ca: args.ssl_ca.clone(),
                    cert: args.ssl_cert.clone(),
                    key: args.ssl_key.clone(),
                },
                env_password: std::env::var("MYSQL_PWD").ok(),
                prompted_password: prompted_password.clone(),
                login_user: std::env::var("USER").ok(),
            };
            let spec = spec::resolve(&input, file.as_ref())?;
            spec::check_tls_files(&spec.tls)?;
            Ok(spec)
        })
        .collect()
}
