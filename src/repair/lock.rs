//! One repair at a time: a named lock (GET_LOCK) on every node a plan touches, held for the
//! whole run by its own connection. A second replmend finds it taken and refuses.

use thiserror::Error;

use crate::conn::{ConnSpec, ConnectError, Server};
use crate::vocab::Endpoint;

pub const LOCK_NAME: &str = "replmend.repair";

#[derive(Debug, Error)]
pub enum LockError {
    #[error("another repair is running on {0} (lock '{LOCK_NAME}' is held); nothing was changed")]
    Held(Endpoint),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("taking lock '{LOCK_NAME}' on {endpoint}: {}", crate::describe::describe_mysql(.source))]
    Query {
        endpoint: Endpoint,
        source: mysql::Error,
    },
}

/// Takes the lock on this session (it holds it until it closes, also after a crash).
pub fn take(s: &mut Server) -> Result<(), LockError> {
    // Taken on this very connection already (a diagnosis under the lock handed it on).
    if s.holds_repair_lock() {
        return Ok(());
    }
    let got: Option<Option<i64>> = s
        // A constant name: one text round trip, no statement to prepare.
        .first(&crate::sql::admin::get_lock_const(LOCK_NAME))
        .map_err(|source| LockError::Query {
            endpoint: s.spec.address(),
            source,
        })?;
    match got.flatten() {
        Some(1) => {
            s.set_repair_lock();
            Ok(())
        }
        _ => Err(LockError::Held(s.spec.address())),
    }
}

/// Held while alive; the server releases it when the connection closes, also after a crash.
pub struct RepairLock {
    _servers: Vec<Server>,
}

impl RepairLock {
    pub fn acquire(specs: &[&ConnSpec]) -> Result<RepairLock, LockError> {
        // Always in the same order, whichever node is the replica: two repairs of the two
        // directions of a dual-master pair (two watchers) then meet on the first lock
        // instead of each holding one and both giving up.
        let mut specs = specs.to_vec();
        specs.sort_by_key(|s| s.address());
        // The sessions are opened at once (each waits on its own server); the locks are
        // then taken one by one in that order.
        let sessions = crate::conn::connect_all(&specs);
        let mut held = Vec::new();
        for session in sessions {
            let mut s = session?;
            take(&mut s)?;
            held.push(s);
        }
        Ok(RepairLock { _servers: held })
    }
}

/// Releases the lock held by sessions a diagnosis under the lock left in the idle pool (a run
/// that ended without repairing: a refusal, nothing to do), and waits for the server's answer:
/// a session closed at exit lets the server release it a moment later, and a run started
/// right after this one found it still held.
pub fn release_pooled() {
    for mut s in crate::conn::drain_idle() {
        if s.holds_repair_lock() {
            let _ = s.run(&crate::sql::admin::release_lock_const(LOCK_NAME));
        }
    }
}

/// Whether another session holds the repair lock on this server (a replmend run in progress
/// there).
pub fn held_elsewhere(server: &mut Server) -> anyhow::Result<bool> {
    let free: Option<Option<i64>> =
        server.first(&crate::sql::admin::is_free_lock_const(LOCK_NAME))?;
    Ok(free.flatten() == Some(0))
}
