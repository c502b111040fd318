//! Where things live (cache, chroot, run directory, incident recipes) and whether a flavor's
//! server is installed.

use std::fs;
use std::path::{Path, PathBuf};

use crate::flavor::Flavor;

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
    cache_dir().join("mysql-chroot")
}

/// Shared by every sandbox of every process on this machine: port leases and the registry.
pub(crate) fn run_dir() -> PathBuf {
    std::env::temp_dir().join("replmend-sandbox")
}

/// Where sandboxes of a flavor live: MySQL's must be inside the chroot.
pub(crate) fn sandboxes_root(flavor: Flavor) -> PathBuf {
    match flavor {
        Flavor::MariaDb => run_dir(),
        Flavor::MySql => mysql_chroot().join("replmend-sandbox"),
    }
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

/// Whether this flavor's server can run here; the error says how to fix it.
pub fn available(flavor: Flavor) -> Result<(), String> {
    let hint = "run scripts/install-deps (as root)";
    match flavor {
        Flavor::MariaDb => {
            for b in ["mariadbd", "mariadb-install-db"] {
                if !host_binary(b).is_absolute() {
                    return Err(format!("MariaDB is not installed ({b} not found): {hint}"));
                }
            }
            Ok(())
        }
        Flavor::MySql => {
            let mysqld = mysql_chroot().join("usr/sbin/mysqld");
            if !mysqld.exists() {
                return Err(format!(
                    "Oracle MySQL is not installed ({} not found): {hint}",
                    mysqld.display()
                ));
            }
            if !is_root() {
                return Err("Oracle MySQL runs in a chroot, which needs root".into());
            }
            Ok(())
        }
    }
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
