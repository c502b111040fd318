//! A scripted repair's one diagnosis, made under its lock (`Options::diagnose_under_lock`):
//! the lock taken on the diagnosis's own sessions, the origins searched beside the repair's
//! reads, and the last look before the preflight (the lock keeps out only replmend runs).

use std::time::Duration;

use anyhow::Result;

use super::apply::Nodes;
use crate::binlog::origin::Budget;
use crate::conn::{ConnSpec, Server};
use crate::diagnosis::Diagnosis;

/// `d`'s origins and cause, searched on a thread and sessions of their own (`d` with a note
/// saying why when the search could not start). The thread is not scoped: a repair that
/// refuses does not wait for it.
pub(super) fn search_beside(
    d: &Diagnosis,
    specs: &[ConnSpec],
    budget: Budget,
) -> std::thread::JoinHandle<Diagnosis> {
    let (mut searched, specs) = (d.clone(), specs.to_vec());
    std::thread::spawn(move || {
        let found = crate::inspect::search_origins(&mut searched, &specs[0], specs.get(1), budget);
        if let Err(e) = found {
            searched.missing.push(format!(
                "the conflicting rows' origins were not searched: {}",
                crate::describe::message(&e)
            ));
        }
        searched
    })
}

/// A diagnosis made under the lock is not made again, but the lock keeps out only other
/// replmend runs: one status read per node, just before the preflight, confirms the stop, the
/// GTID position, read_only and the other direction are still as diagnosed (`inspect`).
pub(super) fn last_look(d: &Diagnosis, nodes: &mut Nodes) -> Result<()> {
    test_gate("REPLMEND_TEST_GATE_BEFORE_LAST_LOOK");
    let source = d.source.as_ref().map(|s| s.endpoint.clone());
    let (replica, source) = super::session::sessions(nodes, &d.replica.endpoint, source.as_ref())?;
    match crate::inspect::what_changed(d, replica, source)? {
        Some(why) => Err(super::session::Refused::Changed(why).into()),
        None => {
            crate::timing::mark("last look: unchanged since the diagnosis");
            Ok(())
        }
    }
}

/// Test hook: with `VAR=PATH` set, creates PATH and waits (up to a minute) until it is
/// removed, so a test can change the world at this point of a run. Never set in production.
fn test_gate(var: &str) {
    let Some(path) = std::env::var_os(var) else {
        return;
    };
    let _ = std::fs::write(&path, b"waiting\n");
    let until = std::time::Instant::now() + Duration::from_secs(60);
    while std::path::Path::new(&path).exists() && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The repair lock on a diagnosis's sessions, in address order as everywhere (`lock`).
pub(super) fn lock_both(replica: &mut Server, source: Option<&mut Server>) -> Result<()> {
    let mut sessions: Vec<&mut Server> = std::iter::once(replica).chain(source).collect();
    sessions.sort_by_key(|s| s.spec.address());
    for s in sessions {
        super::lock::take(s)?;
    }
    crate::timing::mark("repair lock held");
    Ok(())
}
