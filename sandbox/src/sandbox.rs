//! A sandbox: two fresh servers from the template (three in multi-source), replication wired
//! and running, stopped and removed on drop unless kept.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use mysql::prelude::Queryable;

use crate::flavor::quote;
use crate::flavor::{Build, Flavor, Topology};
use crate::instance::Instance;
use crate::node::quiesce;
use crate::node::{Channel, Node, field, tcp_conn};
use crate::paths::sandboxes_root;
use crate::process::{STOP_GRACE, start_time, stop_processes};
use crate::recipe::Recipe;
use crate::registry::{register, unregister};
use crate::server::Role;
use crate::state::{SandboxInfo, write_info};
use crate::sweep::sweep_stale;
use crate::template::template;

/// Two servers (three in multi-source) on 127.0.0.1 with replication wired and running. Dropping it stops the servers
/// and removes their directories; [`Sandbox::keep`] detaches them instead.
pub struct Sandbox {
    /// The SQL dialect of the nodes (`build.flavor()`).
    pub flavor: Flavor,
    /// The server build the nodes run.
    pub build: Build,
    pub topology: Topology,
    pub nodes: Vec<Node>,
    /// The sandbox directory (holds `sandbox.json` and `n1/`, `n2/`, and `n3/` in multi-source).
    pub dir: PathBuf,
    instances: Vec<Instance>,
    kept: bool,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// TLS for a sandbox's servers: PEM files on the host.
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// The CA the servers trust for client certificates.
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl ServerTls {
    /// Copies the files into `dir/tls` and returns the server options naming them as the
    /// server sees them (inside its chroot, for a chroot build).
    fn install(&self, build: Build, dir: &Path) -> Result<Vec<String>> {
        let tls = dir.join("tls");
        fs::create_dir_all(&tls)?;
        let mut args = Vec::new();
        for (option, src) in [
            ("ssl-ca", &self.ca),
            ("ssl-cert", &self.cert),
            ("ssl-key", &self.key),
        ] {
            let dst = tls.join(format!("{option}.pem"));
            fs::copy(src, &dst).with_context(|| format!("copying {}", src.display()))?;
            args.push(format!(
                "--{option}={}",
                crate::server::server_path(build, &dst).display()
            ));
        }
        Ok(args)
    }
}

impl Sandbox {
    /// Fresh, isolated instances of the flavor's default build (the host's MariaDB 10.11, or
    /// MySQL 9.7 in its chroot) from the template, replication wired and running.
    pub fn start(flavor: Flavor, topology: Topology) -> Result<Sandbox> {
        Sandbox::start_build(flavor.into(), topology)
    }

    /// Like [`Sandbox::start`], with the servers of `build` (e.g. [`Build::MariaDb118`]).
    pub fn start_build(build: Build, topology: Topology) -> Result<Sandbox> {
        Sandbox::start_inner(build, topology, None, &[])
    }

    /// Like [`Sandbox::start_build`], every server offering TLS with the given CA, certificate
    /// and key (copied into the sandbox directory, where a chroot build's server can read them).
    pub fn start_with_tls(build: Build, topology: Topology, tls: &ServerTls) -> Result<Sandbox> {
        Sandbox::start_inner(build, topology, Some(tls), &[])
    }

    /// Like [`Sandbox::start_build`], one node started with extra server options (given after
    /// the sandbox's own, so they win): e.g. `("n2", &["--skip-log-bin"])` for a replica
    /// without a binary log.
    pub fn start_with_node_args(
        build: Build,
        topology: Topology,
        node: &str,
        args: &[&str],
    ) -> Result<Sandbox> {
        let i: u32 = node
            .strip_prefix('n')
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| anyhow!("no node {node}"))?;
        let extra = [(i, args.iter().map(|a| a.to_string()).collect())];
        Sandbox::start_inner(build, topology, None, &extra)
    }

    fn start_inner(
        build: Build,
        topology: Topology,
        tls: Option<&ServerTls>,
        extra: &[(u32, Vec<String>)],
    ) -> Result<Sandbox> {
        let flavor = build.flavor();
        sweep_stale();
        let tpl = template(build)?;
        let root = sandboxes_root(build);
        fs::create_dir_all(&root)?;
        let me = std::process::id();
        let dir = root.join(format!(
            "sb-{me}-{}-{}-{flavor}",
            start_time(me).unwrap_or(0),
            SEQ.fetch_add(1, Ordering::SeqCst),
        ));
        fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut sb = Sandbox {
            flavor,
            build,
            topology,
            nodes: Vec::new(),
            dir: dir.clone(),
            instances: Vec::new(),
            kept: false,
        };
        register(&dir)?;
        sb.write_state()?;
        let server_args = match tls {
            Some(t) => t.install(build, &dir)?,
            None => Vec::new(),
        };
        let mut first_err = None;
        for r in start_nodes(build, &tpl, &dir, topology.nodes(), &server_args, extra) {
            match r {
                Ok((node, inst)) => {
                    sb.nodes.push(node);
                    sb.instances.push(inst);
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        sb.write_state()?;
        if let Some(e) = first_err {
            return Err(e); // `sb` drops: the node that did start is stopped and removed
        }
        let gtid = topology != Topology::SourceReplica;
        let (p1, p2) = (sb.nodes[0].port, sb.nodes[1].port);
        if topology == Topology::MultiSource {
            // n3 ← n1 on channel 'n1', n3 ← n2 on channel 'n2'.
            sb.nodes[2].channels = vec![
                Channel {
                    name: "n1".into(),
                    source_port: p1,
                },
                Channel {
                    name: "n2".into(),
                    source_port: p2,
                },
            ];
            sb.nodes[2].gtid = true;
        } else if let Topology::FanOut(n) = topology {
            // n1 → n2 … n(N+1).
            for replica in &mut sb.nodes[1..=n as usize] {
                replica.source_port = Some(p1);
                replica.gtid = true;
            }
        } else if topology == Topology::Chain {
            // n1 → n2 → n3: n2 relays (every node logs what it applies).
            sb.nodes[1].source_port = Some(p1);
            sb.nodes[2].source_port = Some(p2);
            sb.nodes[1].gtid = true;
            sb.nodes[2].gtid = true;
        } else {
            sb.nodes[1].source_port = Some(p1);
            sb.nodes[1].gtid = gtid;
        }
        if topology == Topology::DualMaster {
            sb.nodes[0].source_port = Some(p2);
            sb.nodes[0].gtid = gtid;
        }
        sb.write_state()?;
        for n in sb.nodes.iter().filter(|n| n.is_replica()) {
            for ch in n.sources() {
                wire(n, &ch)?;
            }
        }
        for n in sb.nodes.iter().filter(|n| n.is_replica()) {
            for ch in n.sources() {
                wait_running(n, &ch.name)?;
            }
        }
        Ok(sb)
    }

    fn info(&self) -> SandboxInfo {
        let owner = std::process::id();
        SandboxInfo {
            flavor: self.flavor,
            build: self.build,
            topology: self.topology,
            dir: self.dir.clone(),
            owner,
            owner_start: start_time(owner),
            kept: self.kept,
            nodes: self.nodes.clone(),
        }
    }

    fn write_state(&self) -> Result<()> {
        write_info(&self.dir, &self.info())
    }

    /// "n1" (the source), "n2" (the replica) or, in multi-source, "n3" (the replica of both).
    /// Panics on another name.
    pub fn node(&self, name: &str) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name} in this sandbox"))
    }

    /// Stops one node's server, as a source that went down: its binlog dump threads are
    /// killed first (MySQL gives them about ten seconds at shutdown), then SHUTDOWN, SIGKILL
    /// after the grace period. Its port stays reserved; the sandbox removes it on drop.
    pub fn stop_node(&mut self, name: &str) -> Result<()> {
        let i = self
            .nodes
            .iter()
            .position(|n| n.name == name)
            .ok_or_else(|| anyhow!("no node {name} in this sandbox"))?;
        quiesce(&[&self.nodes[i]]);
        self.instances[i].shutdown(true)
    }

    /// Runs the incident recipe `tests/incidents/<name>` and waits for its expected errors.
    pub fn recipe(&self, name: &str) -> Result<()> {
        Recipe::load(name)?.run(&self.nodes, self.flavor)
    }

    /// Leaves the servers running after this value is dropped; `down(dir)` stops them.
    /// Returns the sandbox directory (holding `sandbox.json`).
    pub fn keep(mut self) -> PathBuf {
        self.kept = true;
        let _ = self.write_state();
        for inst in &mut self.instances {
            // Not reaped by us any more; the port lock stays until `down`.
            inst.child = None;
            if let Some(l) = inst.lease.take() {
                std::mem::forget(l);
            }
        }
        self.dir.clone()
    }

    /// Like [`Sandbox::keep`], and also writes `state_dir/sandbox.json` pointing at the
    /// sandbox, so `down(state_dir)` and the CLI find it there.
    pub fn keep_at(self, state_dir: &Path) -> Result<PathBuf> {
        let info = {
            let mut i = self.info();
            i.kept = true;
            i
        };
        fs::create_dir_all(state_dir)?;
        let dir = self.keep();
        if fs::canonicalize(&dir).ok() != fs::canonicalize(state_dir).ok() {
            write_info(state_dir, &info)?;
        }
        Ok(state_dir.to_path_buf())
    }

    /// Stops the servers by PID and removes the sandbox directory (what Drop does).
    pub fn stop(self) {
        drop(self)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        let up: Vec<bool> = self
            .instances
            .iter_mut()
            .map(|i| {
                i.child
                    .as_mut()
                    .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
            })
            .collect();
        let running: Vec<&Node> = self
            .nodes
            .iter()
            .zip(up)
            .filter_map(|(n, up)| up.then_some(n))
            .collect();
        quiesce(&running);
        let victims = self.instances.iter_mut().map(Instance::victim).collect();
        stop_processes(victims, STOP_GRACE);
        self.instances.clear(); // releases the port leases
        crate::paths::remove_dir_settled(&self.dir);
        unregister(&self.dir);
    }
}

/// Every node at once: copy the template, start, wait for readiness.
fn start_nodes(
    build: Build,
    tpl: &Path,
    dir: &Path,
    count: u32,
    server_args: &[String],
    extra: &[(u32, Vec<String>)],
) -> Vec<Result<(Node, Instance)>> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (1..=count)
            .map(|i| {
                let mut args = server_args.to_vec();
                for (_, more) in extra.iter().filter(|(n, _)| *n == i) {
                    args.extend(more.iter().cloned());
                }
                s.spawn(move || start_node(build, tpl, dir, i, &args))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow!("node start panicked")))
            })
            .collect()
    })
}

fn start_node(
    build: Build,
    tpl: &Path,
    dir: &Path,
    i: u32,
    server_args: &[String],
) -> Result<(Node, Instance)> {
    let flavor = build.flavor();
    let ndir = dir.join(format!("n{i}"));
    fs::create_dir_all(&ndir)?;
    let status = Command::new("cp")
        .arg("-a")
        .arg(tpl.join("data"))
        .arg(&ndir)
        .status()?;
    if !status.success() {
        bail!("copying the template datadir to {} failed", ndir.display());
    }
    let binlog = format!("{}{i}-bin", flavor.binlog_prefix());
    let inst = Instance::launch(
        build,
        &ndir,
        &ndir.join("data"),
        Role::Node {
            server_id: i,
            binlog: &binlog,
        },
        server_args,
    )?;
    let node = Node {
        name: format!("n{i}"),
        flavor,
        port: inst.port,
        server_id: i,
        pid: inst.pid,
        dir: ndir,
        binlog_basename: binlog,
        source_port: None,
        gtid: false,
        channels: Vec::new(),
    };
    Ok((node, inst))
}

/// Points one channel of `node` at its source and starts it. A named channel is a MySQL
/// channel (`… FOR CHANNEL 'n1'`) or a MariaDB named connection (`CHANGE MASTER 'n1' TO …`).
fn wire(node: &Node, channel: &Channel) -> Result<()> {
    let port = channel.source_port;
    // File/position channels start at the beginning of the source's first binary log.
    let coordinates = if node.gtid {
        String::new()
    } else {
        let first: Option<mysql::Row> = tcp_conn(port)?.query_first("SHOW BINARY LOGS")?;
        let first: String = first
            .and_then(|r| r.get(0))
            .ok_or_else(|| anyhow!("the source of {} has no binary log", node.name))?;
        let kw = match node.flavor {
            Flavor::MariaDb => "MASTER",
            Flavor::MySql => "SOURCE",
        };
        format!(", {kw}_LOG_FILE='{first}', {kw}_LOG_POS=4")
    };
    let name = &channel.name;
    let (connection, for_channel) = match name.as_str() {
        "" => (String::new(), String::new()),
        n => (
            format!(" {}", quote(n)),
            format!(" FOR CHANNEL {}", quote(n)),
        ),
    };
    let sql = match node.flavor {
        Flavor::MariaDb => format!(
            "CHANGE MASTER{connection} TO MASTER_HOST='127.0.0.1', MASTER_PORT={port}, MASTER_USER='root', \
             MASTER_CONNECT_RETRY=1, MASTER_USE_GTID={}{coordinates}",
            if node.gtid { "slave_pos" } else { "no" }
        ),
        Flavor::MySql => format!(
            "CHANGE REPLICATION SOURCE TO SOURCE_HOST='127.0.0.1', SOURCE_PORT={port}, \
             SOURCE_USER='root', SOURCE_CONNECT_RETRY=1, SOURCE_AUTO_POSITION={}, \
             GET_SOURCE_PUBLIC_KEY=1{coordinates}{for_channel}",
            u8::from(node.gtid),
        ),
    };
    node.exec(&sql)?;
    node.exec(&node.flavor.replication("START", "", name))
}

/// Waits until both replication threads of one channel of `node` run (the receiver has
/// connected).
fn wait_running(node: &Node, channel: &str) -> Result<()> {
    let started = Instant::now();
    loop {
        let st = node.channel_status(channel)?.unwrap_or_default();
        if field(&st, "Slave_IO_Running", "Replica_IO_Running") == "Yes"
            && field(&st, "Slave_SQL_Running", "Replica_SQL_Running") == "Yes"
        {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!(
                "{} ({}) could not start replicating: {}",
                node.name,
                node.flavor,
                node.io_summary()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
