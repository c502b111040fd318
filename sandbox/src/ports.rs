//! Loopback ports leased to sandboxes.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::paths::run_dir;
use crate::process::alive;

/// A loopback port reserved against other sandboxes (threads and processes) by an O_EXCL lock
/// file until the lease is dropped. The server binding it can still lose a race against an
/// unrelated process (an outgoing connection's ephemeral port): `launch` retries on that.
pub(crate) struct PortLease {
    pub(crate) port: u16,
    lock: PathBuf,
}

impl Drop for PortLease {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.lock);
    }
}

pub(crate) fn ports_dir() -> PathBuf {
    run_dir().join("ports")
}

pub(crate) fn lease_port() -> Result<PortLease> {
    let dir = ports_dir();
    fs::create_dir_all(&dir)?;
    for _ in 0..200 {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let lock = dir.join(port.to_string());
        match OpenOptions::new().write(true).create_new(true).open(&lock) {
            Ok(mut f) => {
                let _ = writeln!(f, "{}", std::process::id());
                return Ok(PortLease { port, lock });
            }
            Err(_) => {
                // Held by another sandbox, or left by a dead process: free it for next time.
                if let Ok(owner) = fs::read_to_string(&lock)
                    && owner.trim().parse::<u32>().is_ok_and(|p| !alive(p))
                {
                    let _ = fs::remove_file(&lock);
                }
            }
        }
    }
    bail!("no free port on 127.0.0.1")
}
