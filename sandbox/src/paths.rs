//! Where things live (cache, chroots, run directory, incident recipes) and whether a build's
//! server is installed.

use std::fs;
use std::path::{Path, PathBuf};

use crate::flavor::{Build, Flavor};

/// `$REPLMEND_CACHE`, else `$XDG_CACHE_HOME/replmend`, else `~/.cache/replmend`.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("REPLMEND_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|p| PathBuf::from(p).join("replmend")))
        .or_else(|| std::env::var_os("HOME").map(|p| PathBuf::from(p).join(".cache/replmend")))
        .unwrap_or_else(|| PathBuf::from("/var/cache/replmend"))
}

/// The debootstrap chroot holding Oracle MySQL.
pub fn mysql_chroot() -> PathBuf {
    Build::MySql.chroot().expect("MySQL runs in a chroot")
}

impl Build {
    /// The debootstrap chroot this build runs in (built by `scripts/install-deps`), or `None`
    /// when it runs on the host.
    pub fn chroot(self) -> Option<PathBuf> {
        self.opts().chroot.map(|name| cache_dir().join(name))
    }
}

/// Shared by every sandbox of every process on this machine: port leases and the registry.
pub(crate) fn run_dir() -> PathBuf {
    std::env::temp_dir().join("replmend-sandbox")
}

/// Where sandboxes of a build live: a chroot build's must be inside its chroot. The MariaDB
/// 11.8 and 10.5 chroots have longer names, so their directories are short: a unix socket path
/// (`…/n1/mysqld.sock`) must stay under 100 bytes.
pub(crate) fn sandboxes_root(build: Build) -> PathBuf {
    match build {
        Build::Host => run_dir(),
        Build::MySql => mysql_chroot().join("replmend-sandbox"),
        Build::MariaDb118 | Build::MariaDb105 => chroot_of(build).join("sb"),
    }
}

/// Where a build's template datadirs live (short inside the 11.8 and 10.5 chroots, for the
/// same reason).
pub(crate) fn templates_root(build: Build) -> PathBuf {
    match build {
        Build::Host => cache_dir().join("templates"),
        Build::MySql => mysql_chroot().join("replmend-templates"),
        Build::MariaDb118 | Build::MariaDb105 => chroot_of(build).join("tpl"),
    }
}

fn chroot_of(build: Build) -> PathBuf {
    build.chroot().expect("a chroot build")
}

pub(crate) fn host_binary(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    PathBuf::from(name)
}

/// Whether this build's server can run here (a [`Flavor`] means its default
/// build); the error says how to fix it.
pub fn available(build: impl Into<Build>) -> Result<(), String> {
    let build = build.into();
    let hint = "run scripts/install-deps (as root)";
    let opts = build.opts();
    let name = match build {
        Build::Host => "MariaDB",
        Build::MariaDb118 => "MariaDB 11.8",
        Build::MariaDb105 => "MariaDB 10.5",
        Build::MySql => "Oracle MySQL",
    };
    let Some(root) = build.chroot() else {
        for b in [opts.server, opts.init.program] {
            if !host_binary(b).is_absolute() {
                return Err(format!("{name} is not installed ({b} not found): {hint}"));
            }
        }
        return Ok(());
    };
    let mut needed = vec![root.join("usr/sbin").join(opts.server)];
    if build.flavor() == Flavor::MariaDb {
        // mariadb-install-db, which refuses to run unless it can look up the host name or
        // localhost: install-deps copies the host's /etc/hosts into the chroot.
        needed.push(root.join("usr/bin").join(opts.init.program));
        needed.push(root.join("etc/hosts"));
    }
    if let Some(missing) = needed.iter().find(|p| !p.exists()) {
        return Err(format!(
            "{name} is not installed ({} not found): {hint}",
            missing.display()
        ));
    }
    if !is_root() {
        return Err(format!("{name} runs in a chroot, which needs root"));
    }
    Ok(())
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// `tests/incidents` of this repository, or `$REPLMEND_INCIDENTS`.
pub fn incidents_dir() -> PathBuf {
    std::env::var_os("REPLMEND_INCIDENTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/incidents"))
}

/// Removes a stopped sandbox's directory. A server that has just exited may still have its
/// last files (temporary tables in its private tmpdir) disappearing under us: try again
/// briefly instead of leaving the directory behind.
pub(crate) fn remove_dir_settled(dir: &Path) {
    for _ in 0..200 {
        if std::fs::remove_dir_all(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
