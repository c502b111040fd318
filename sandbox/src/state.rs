//! `sandbox.json` state files: what a kept sandbox is, and stopping it from another process.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::flavor::{Flavor, Topology};
use crate::node::Node;
use crate::ports::ports_dir;
use crate::process::{STOP_GRACE, alive, is_server, quiesce, stop_processes};
use crate::sweep::unregister;

/// `sandbox.json`: what `down`, the sweep and the CLI need to find and stop a sandbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxInfo {
    pub flavor: Flavor,
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
    let mut info: SandboxInfo =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
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

/// Whether every server of a kept sandbox still runs.
pub fn running(info: &SandboxInfo) -> bool {
    !info.nodes.is_empty()
        && info
            .nodes
            .iter()
            .all(|n| alive(n.pid) && is_server(n.pid, &n.victim().marker))
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
        .filter(|n| alive(n.pid) && is_server(n.pid, &n.victim().marker))
        .collect();
    quiesce(&running);
    stop_processes(info.nodes.iter().map(Node::victim).collect(), STOP_GRACE);
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
        let _ = fs::remove_dir_all(&info.dir);
    }
    unregister(&info.dir);
}
