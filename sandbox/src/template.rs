//! Template datadirs: made once per build and version, then copied for every instance.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use mysql::prelude::Queryable;

use crate::flavor::Build;
use crate::instance::Instance;
use crate::paths::{available, templates_root};
use crate::server::{Role, init_command, server_version};

/// Bumped whenever the way templates are made changes, so old templates are not reused.
const TEMPLATE_FORMAT: &str = "t2";

/// The template datadir of this build and version (`<dir>/data`), made once under a lock
/// (threads and processes), then copied per instance. Each build has its own templates
/// directory (a chroot build's is inside its chroot), so builds never share a template.
pub(crate) fn template(build: Build) -> Result<PathBuf> {
    available(build).map_err(|e| anyhow!(e))?;
    let root = templates_root(build);
    fs::create_dir_all(&root)?;
    let dir = root.join(format!(
        "{}-{}-{TEMPLATE_FORMAT}",
        build.flavor(),
        server_version(build)?
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
    init_datadir(build, &dir, &data)?;
    set_up(build, &dir, &data)?;
    File::create(dir.join("ready"))?;
    eprintln!(
        "replmend-sandbox: made the {build} template {} in {:.1?}",
        dir.display(),
        started.elapsed()
    );
    Ok(dir)
}

/// A fresh datadir at `data`; the init's messages go to `dir/init.log`.
fn init_datadir(build: Build, dir: &Path, data: &Path) -> Result<()> {
    let log = dir.join("init.log");
    let out = File::create(&log)?;
    let status = init_command(build, data, &log, out)?.status()?;
    if !status.success() {
        bail!(
            "initialising the {build} template datadir in {} failed; {}:\n{}",
            dir.display(),
            log.display(),
            tail(&log, 20)
        );
    }
    Ok(())
}

/// Starts the template once to create the accounts, and shuts it down cleanly.
fn set_up(build: Build, dir: &Path, data: &Path) -> Result<()> {
    // Accounts for TCP logins from 127.0.0.1 (and anywhere), no password. The template runs
    // without a binary log, so these are not transactions any replica would ever see.
    let mut inst = Instance::launch(build, dir, data, Role::Template, &[])?;
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
    setup.with_context(|| format!("setting up the {build} template"))?;
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
