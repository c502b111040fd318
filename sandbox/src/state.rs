//! `sandbox.json` state files: what a kept sandbox is, and stopping it from another process.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::flavor::{Build, Flavor, Topology};
use crate::node::Node;
use crate::node::quiesce;
use crate::ports::ports_dir;
use crate::process::{STOP_GRACE, alive, is_server, stop_processes};
use crate::registry::unregister;

/// `sandbox.json`: what `down`, the sweep and the CLI need to find and stop a sandbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxInfo {
    pub flavor: Flavor,
    /// The server build (absent from older files: the flavor's default build, filled in by
    /// [`load_state`]).
    pub build: Build,
    pub topology: Topology,
    /// Where the instances live (for MySQL inside the chroot).
    #[serde(default)]
    pub dir: PathBuf,
    pub owner: u32,
    #[serde(default)]
    pub owner_start: Option<u64>,
    pub kept: bool,
    pub nodes: Vec<Node>,
}

pub(crate) fn write_info(dir: &Path, info: &SandboxInfo) -> Result<()> {
    let tmp = dir.join(".sandbox.json.tmp");
    fs::write(&tmp, serde_json::to_string_pretty(info)?)?;
    fs::rename(&tmp, dir.join("sandbox.json"))?;
    Ok(())
}

/// The `sandbox.json` of a sandbox directory or of a state directory written by `keep_at`.
pub fn load_state(state_dir: &Path) -> Result<SandboxInfo> {
    let path = state_dir.join("sandbox.json");
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let parsing = || format!("parsing {}", path.display());
    let mut json: serde_json::Value = serde_json::from_str(&text).with_context(parsing)?;
    if let Some(obj) = json.as_object_mut()
        && !obj.contains_key("build")
    {
        // Written by an older version: the flavor's default build.
        let flavor: Flavor = serde_json::from_value(obj.get("flavor").cloned().unwrap_or_default())
            .with_context(parsing)?;
        obj.insert("build".into(), serde_json::to_value(Build::from(flavor))?);
    }
    let mut info: SandboxInfo = serde_json::from_value(json).with_context(parsing)?;
    if info.dir.as_os_str().is_empty() {
        info.dir = state_dir.to_path_buf(); // written by an older version
    }
    Ok(info)
}

/// A kept sandbox's nodes, from its state directory.
pub fn nodes_of(state_dir: &Path) -> Result<Vec<Node>> {
    Ok(load_state(state_dir)?.nodes)
}

pub fn flavor_of(state_dir: &Path) -> Result<Flavor> {
    Ok(load_state(state_dir)?.flavor)
}

pub fn build_of(state_dir: &Path) -> Result<Build> {
    Ok(load_state(state_dir)?.build)
}

/// Whether every server of a kept sandbox still runs.
pub fn running(info: &SandboxInfo) -> bool {
    !info.nodes.is_empty()
        && info
            .nodes
            .iter()
            .all(|n| alive(n.pid) && is_server(n.pid, &n.victim(info.build).marker))
}

/// Stops a kept sandbox by the PIDs in its state file (checked against the servers' command
/// lines) and removes its directories.
pub fn down(state_dir: &Path) -> Result<()> {
    let info = load_state(state_dir)?;
    destroy(&info);
    if state_dir.join("sandbox.json").exists() {
        // A state directory written by `keep_at`: remove our file, and the directory if empty.
        let _ = fs::remove_file(state_dir.join("sandbox.json"));
        let _ = fs::remove_dir(state_dir);
    }
    Ok(())
}

pub(crate) fn destroy(info: &SandboxInfo) {
    let running: Vec<&Node> = info
        .nodes
        .iter()
        .filter(|n| alive(n.pid) && is_server(n.pid, &n.victim(info.build).marker))
        .collect();
    quiesce(&running);
    let victims = info.nodes.iter().map(|n| n.victim(info.build)).collect();
    stop_processes(victims, STOP_GRACE);
    // A server counts as stopped once its command line is gone, which happens before the
    // kernel has closed its files: wait until the processes have exited before removing
    // their directory (a MariaDB flushing InnoDB on a loaded machine takes more than 5 s).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while info.nodes.iter().any(|n| alive(n.pid) && n.pid > 1)
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    for n in &info.nodes {
        let lock = ports_dir().join(n.port.to_string());
        if fs::read_to_string(&lock).is_ok_and(|p| p.trim().parse::<u32>().is_ok_and(|p| !alive(p)))
        {
            let _ = fs::remove_file(lock);
        }
    }
    // Only ever remove a directory that is a sandbox (named sb-… and holding sandbox.json).
    let is_sandbox = info
        .dir
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("sb-"))
        && info.dir.join("sandbox.json").exists();
    if is_sandbox {
        // A server that outlived the waits above (a loaded machine) writes files back into
        // the removed directory: what is left of the nodes is killed and the directory
        // removed again, until it stays gone.
        for _ in 0..3 {
            crate::paths::remove_dir_settled(&info.dir);
            std::thread::sleep(std::time::Duration::from_millis(200));
            if !info.dir.exists() {
                break;
            }
            let left = info.nodes.iter().map(|n| n.victim(info.build)).collect();
            stop_processes(left, std::time::Duration::ZERO);
        }
    }
    unregister(&info.dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state file written before builds existed means the flavor's default build.
    #[test]
    fn old_state_files_get_the_flavors_build() {
        let dir = std::env::temp_dir().join(format!("replmend-state-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        for (flavor, build) in [("mysql", Build::MySql), ("mariadb", Build::Host)] {
            let old = format!(
                r#"{{"flavor": "{flavor}", "topology": "dual-master", "owner": 1, "kept": true, "nodes": []}}"#
            );
            fs::write(dir.join("sandbox.json"), old).unwrap();
            let info = load_state(&dir).unwrap();
            assert_eq!(info.build, build);
            assert_eq!(info.dir, dir);
        }
        let mut info = load_state(&dir).unwrap();
        for build in [Build::MariaDb118, Build::MariaDb105] {
            info.build = build;
            write_info(&dir, &info).unwrap();
            assert_eq!(load_state(&dir).unwrap().build, build);
        }
        let _ = fs::remove_dir_all(&dir);
    }
}
