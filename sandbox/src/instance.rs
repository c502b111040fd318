//! One running server process of ours: started, waited for, stopped.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use mysql::prelude::Queryable;
use mysql::{Conn, OptsBuilder};

use crate::flavor::Build;
use crate::node::tcp_conn;
use crate::ports::{PortLease, lease_port};
use crate::process::{Victim, stop_processes};
use crate::server::{Role, datadir_marker, instance_args, server_command, server_path};

const READY_TIMEOUT: Duration = Duration::from_secs(90);

pub(crate) struct Instance {
    pub(crate) child: Option<Child>,
    pub(crate) pid: u32,
    pub(crate) port: u16,
    socket: PathBuf,
    marker: String,
    pub(crate) lease: Option<PortLease>,
}

/// Why a start failed, and whether another port may help.
struct LaunchFailure {
    port_taken: bool,
    error: anyhow::Error,
}

impl Instance {
    /// Starts a server on `data` with its socket, pid file and error log in `dir`; retries on
    /// another port when the chosen one was taken in the meantime.
    /// `server_args` are added to the role's options (e.g. TLS files).
    pub(crate) fn launch(
        build: Build,
        dir: &Path,
        data: &Path,
        role: Role,
        server_args: &[String],
    ) -> Result<Instance> {
        let socket = dir.join("mysqld.sock");
        if socket.as_os_str().len() > 100 {
            bail!(
                "socket path {} is too long for a unix socket; use a shorter REPLMEND_CACHE/TMPDIR",
                socket.display()
            );
        }
        let mut last = None;
        for _ in 0..5 {
            match Instance::try_launch(build, dir, data, &role, server_args) {
                Ok(i) => return Ok(i),
                Err(LaunchFailure {
                    port_taken: true,
                    error,
                }) => last = Some(error),
                Err(f) => return Err(f.error),
            }
        }
        Err(last
            .unwrap()
            .context("no port could be bound after 5 attempts"))
    }

    fn try_launch(
        build: Build,
        dir: &Path,
        data: &Path,
        role: &Role,
        server_args: &[String],
    ) -> Result<Instance, LaunchFailure> {
        let other = |error: anyhow::Error| LaunchFailure {
            port_taken: false,
            error,
        };
        let lease = lease_port().map_err(other)?;
        let port = lease.port;
        let error_log = dir.join("error.log");
        let log_offset = fs::metadata(&error_log).map(|m| m.len()).unwrap_or(0);
        let mut args = instance_args(build, dir, data, port, role);
        args.extend(server_args.iter().cloned());
        // Extra server options for debugging, e.g. "--log-error-verbosity=3".
        if let Some(extra) = std::env::var_os("REPLMEND_SANDBOX_SERVER_ARGS") {
            args.extend(extra.to_string_lossy().split_whitespace().map(String::from));
        }
        let child = server_command(build, &args)
            .spawn()
            .with_context(|| format!("starting {build}"))
            .map_err(other)?;
        let pid = child.id();
        let _ = fs::write(dir.join("server.pid"), pid.to_string());
        let mut inst = Instance {
            child: Some(child),
            pid,
            port,
            socket: dir.join("mysqld.sock"),
            marker: datadir_marker(build, data),
            lease: Some(lease),
        };
        let check_tcp = matches!(role, Role::Node { .. });
        match inst.wait_ready(build, data, check_tcp) {
            Ok(()) => Ok(inst),
            Err(e) => {
                inst.stop(Duration::from_secs(5));
                let (port_taken, tail) = log_since(&error_log, log_offset);
                Err(LaunchFailure {
                    port_taken,
                    error: e.context(format!(
                        "{build} on port {port} (datadir {}), end of {}:\n{tail}",
                        data.display(),
                        error_log.display()
                    )),
                })
            }
        }
    }

    fn wait_ready(&mut self, build: Build, data: &Path, check_tcp: bool) -> Result<()> {
        let started = Instant::now();
        let want = server_path(build, data);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!("{build} exited during startup ({status})");
            }
            if self.conn_socket().is_ok() {
                if !check_tcp {
                    return Ok(());
                }
                // The port really is ours: the server answering on it has our datadir.
                if let Ok(mut t) = tcp_conn(self.port) {
                    let dd: Option<String> = t.query_first("SELECT @@datadir")?;
                    let dd = dd.unwrap_or_default();
                    if Path::new(dd.trim_end_matches('/')) == want {
                        return Ok(());
                    }
                    bail!("port {} is answered by another server ({dd})", self.port);
                }
            }
            if started.elapsed() > READY_TIMEOUT {
                bail!(
                    "{build} did not accept connections within {:?}",
                    READY_TIMEOUT
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn conn_socket(&self) -> Result<Conn> {
        let opts = OptsBuilder::new()
            .socket(Some(self.socket.display().to_string()))
            .prefer_socket(true)
            .user(Some("root"))
            .init(vec!["SET NAMES utf8mb4"]);
        Ok(Conn::new(opts)?)
    }

    /// SHUTDOWN (when `clean`) or SIGTERM, then SIGKILL after the grace period.
    pub(crate) fn shutdown(&mut self, clean: bool) -> Result<()> {
        if clean && let Ok(mut c) = self.conn_socket() {
            let _ = c.query_drop("SHUTDOWN");
        }
        self.stop(Duration::from_secs(120));
        Ok(())
    }

    pub(crate) fn victim(&mut self) -> Victim {
        Victim {
            pid: self.pid,
            marker: self.marker.clone(),
            child: self.child.take(),
        }
    }

    fn stop(&mut self, grace: Duration) {
        stop_processes(vec![self.victim()], grace);
    }
}

/// What the server wrote to its error log from `offset` on: whether it names a port that was
/// taken, and its last 20 lines.
fn log_since(error_log: &Path, offset: u64) -> (bool, String) {
    let log = fs::read(error_log).unwrap_or_default();
    let new = String::from_utf8_lossy(&log[(offset as usize).min(log.len())..]);
    let port_taken = new.contains("Address already in use") || new.contains("Bind on TCP/IP port");
    let tail: Vec<&str> = new.lines().collect();
    (port_taken, tail[tail.len().saturating_sub(20)..].join("\n"))
}
