//! Template datadirs: made once per flavor and version, then copied for every instance.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use mysql::prelude::Queryable;

use crate::flavor::Flavor;
use crate::instance::Instance;
use crate::paths::{available, cache_dir, mysql_chroot};
use crate::server::{Role, init_command, server_version};

/// Bumped whenever the way templates are made changes, so old templates are not reused.
const TEMPLATE_FORMAT: &str = "t2";

fn template_root(flavor: Flavor) -> PathBuf {
    match flavor {
        Flavor::MariaDb => cache_dir().join("templates"),
        Flavor::MySql => mysql_chroot().join("replmend-templates"),
    }
}

/// The template datadir of this flavor and version (`<dir>/data`), made once under a lock
/// (threads and processes), then copied per instance.
pub(crate) fn template(flavor: Flavor) -> Result<PathBuf> {
    available(flavor).map_err(|e| anyhow!(e))?;
    let root = template_root(flavor);
    fs::create_dir_all(&root)?;
    let dir = root.join(format!(
        "{flavor}-{}-{TEMPLATE_FORMAT}",
        server_version(flavor)?
    ));
    if dir.join("ready").exists() {
        return Ok(dir);
    }
    let lock = File::create(root.join(".lock"))?;
    lock.lock()?;
    if dir.join("ready").exists() {
        return Ok(dir);
    }
    let started = Instant::now();
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    let data = dir.join("data");
    init_datadir(flavor, &dir, &data)?;
    set_up(flavor, &dir, &data)?;
    File::create(dir.join("ready"))?;
    eprintln!(
        "replmend-sandbox: made the {flavor} template {} in {:.1?}",
        dir.display(),
        started.elapsed()
    );
    Ok(dir)
}

/// A fresh datadir at `data`; the init's messages go to `dir/init.log`.
fn init_datadir(flavor: Flavor, dir: &Path, data: &Path) -> Result<()> {
    let log = dir.join("init.log");
    let out = File::create(&log)?;
    let status = init_command(flavor, data, &log, out)?.status()?;
    if !status.success() {
        bail!(
            "initialising the {flavor} template datadir in {} failed; {}:\n{}",
            dir.display(),
            log.display(),
            tail(&log, 20)
        );
    }
    Ok(())
}

/// Starts the template once to create the accounts, and shuts it down cleanly.
fn set_up(flavor: Flavor, dir: &Path, data: &Path) -> Result<()> {
    // Accounts for TCP logins from 127.0.0.1 (and anywhere), no password. The template runs
    // without a binary log, so these are not transactions any replica would ever see.
    let mut inst = Instance::launch(flavor, dir, data, Role::Template)?;
    let setup = (|| -> Result<()> {
        let mut c = inst.conn_socket()?;
        let anonymous: Vec<String> = c.query("SELECT Host FROM mysql.user WHERE User = ''")?;
        for host in anonymous {
            c.query_drop(format!("DROP USER ''@'{}'", host.replace('\'', "''")))?;
        }
        for host in ["127.0.0.1", "%"] {
            c.query_drop(format!(
                "CREATE USER IF NOT EXISTS 'root'@'{host}'; \
                 GRANT ALL PRIVILEGES ON *.* TO 'root'@'{host}' WITH GRANT OPTION"
            ))?;
        }
        // A clean, slow shutdown: the copies must start without crash recovery.
        c.query_drop("SET GLOBAL innodb_fast_shutdown = 0")?;
        Ok(())
    })();
    inst.shutdown(setup.is_ok())?;
    setup.with_context(|| format!("setting up the {flavor} template"))?;
    // Each copy must make its own server_uuid.
    let _ = fs::remove_file(data.join("auto.cnf"));
    for f in ["error.log", "mysqld.pid"] {
        let _ = fs::remove_file(dir.join(f));
    }
    Ok(())
}

fn tail(path: &Path, n: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
