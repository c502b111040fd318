//! The registry of live sandbox directories, and the sweep of those whose owner died.

use std::fs;
use std::path::PathBuf;

use crate::flavor::BUILDS;
use crate::paths::sandboxes_root;
use crate::process::{alive, start_time};
use crate::registry::{registry, unregister};
use crate::state::{destroy, load_state};

/// Stops and removes sandboxes whose owning process is gone (a test run killed by SIGKILL or
/// Ctrl-C). Kept sandboxes are left alone: they belong to `down`.
pub(crate) fn sweep_stale() {
    for dir in candidates() {
        // The owner is in the name (sb-PID-STARTTIME-…), so even a sandbox that died before
        // writing sandbox.json is recognised.
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut parts = name.strip_prefix("sb-").unwrap_or("").split('-');
        let owner: Option<u32> = parts.next().and_then(|p| p.parse().ok());
        let owner_start: Option<u64> = parts.next().and_then(|p| p.parse().ok());
        let Some(owner) = owner else { continue };
        let owner_alive =
            alive(owner) && (owner_start.is_none_or(|s| s == 0 || start_time(owner) == Some(s)));
        if !dir.exists() {
            unregister(&dir);
            continue;
        }
        if owner_alive {
            continue;
        }
        match load_state(&dir) {
            // Kept sandboxes belong to `down`, unless every server of theirs is gone.
            Ok(info) if info.kept && info.nodes.iter().any(|n| alive(n.pid)) => continue,
            Ok(info) => destroy(&info),
            // A state file we cannot read: servers may run, leave it alone.
            Err(_) if dir.join("sandbox.json").exists() => continue,
            // No state file: its owner died before starting any server.
            Err(_) => {
                let _ = fs::remove_dir_all(&dir);
                unregister(&dir);
            }
        }
    }
}

/// Every sandbox directory: the registered ones and the `sb-*` of each build's root.
fn candidates() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Ok(entries) = fs::read_dir(registry()) {
        for e in entries.flatten() {
            match fs::read_to_string(e.path()) {
                Ok(d) => dirs.push(PathBuf::from(d)),
                Err(_) => continue,
            }
        }
    }
    for build in BUILDS {
        if let Ok(entries) = fs::read_dir(sandboxes_root(build)) {
            dirs.extend(entries.flatten().map(|e| e.path()).filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("sb-"))
            }));
        }
    }
    dirs.sort();
    dirs.dedup();
    dirs
}
