//! Real MariaDB and Oracle MySQL servers on 127.0.0.1 for replmend's tests, demo and benchmarks.
//!
//! Every instance gets its own port, datadir, socket and pid file under a per-sandbox
//! directory; instances start from a template datadir made once per flavor and version, so a
//! pair is up in seconds. Dropping a `Sandbox` kills its servers by PID and removes their
//! directories (also on panic); a sandbox whose owning process died is swept by the next
//! `Sandbox::start`. MySQL runs inside the debootstrap chroot that `scripts/install-deps`
//! builds; its instance directories live inside the chroot.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use mysql::prelude::Queryable;
use mysql::{Conn, OptsBuilder};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavor {
    MariaDb,
    MySql,
}

impl std::fmt::Display for Flavor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Flavor::MariaDb => "mariadb",
            Flavor::MySql => "mysql",
        })
    }
}

impl FromStr for Flavor {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Flavor> {
        match s {
            "mariadb" => Ok(Flavor::MariaDb),
            "mysql" => Ok(Flavor::MySql),
            _ => bail!("unknown flavor {s:?} (mariadb or mysql)"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Topology {
    /// n1 → n2 by binlog file and position.
    SourceReplica,
    /// n1 → n2 by GTID auto-positioning.
    SourceReplicaGtid,
    /// n1 ⇄ n2, GTID.
    DualMaster,
}

impl FromStr for Topology {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Topology> {
        match s.trim() {
            "source-replica" => Ok(Topology::SourceReplica),
            "source-replica-gtid" => Ok(Topology::SourceReplicaGtid),
            "dual-master" => Ok(Topology::DualMaster),
            _ => bail!("unknown topology {s:?} (source-replica, source-replica-gtid, dual-master)"),
        }
    }
}

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

fn run_dir() -> PathBuf {
    std::env::temp_dir().join("replmend-sandbox")
}

/// Whether this flavor's server can run here; the error says how to fix it.
pub fn available(flavor: Flavor) -> Result<(), String> {
    let ok = match flavor {
        Flavor::MariaDb => Path::new("/usr/sbin/mariadbd").exists(),
        Flavor::MySql => mysql_chroot().join("usr/sbin/mysqld").exists(),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{flavor} is not installed: run scripts/install-deps (as root)"
        ))
    }
}

pub fn incidents_dir() -> PathBuf {
    std::env::var_os("REPLMEND_INCIDENTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/incidents"))
}

// ---------------------------------------------------------------------------------------------
// Ports

struct PortLease {
    port: u16,
    lock: PathBuf,
}

impl Drop for PortLease {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.lock);
    }
}

/// A free loopback port, reserved against other sandboxes (threads and processes) by a lock
/// file until the lease is dropped.
fn lease_port() -> Result<PortLease> {
    let dir = run_dir().join("ports");
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
                // Held by another sandbox, or left by a dead one.
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

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false)
}

fn kill9(pid: u32) {
    let _ = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

// ---------------------------------------------------------------------------------------------
// Templates

fn server_version(flavor: Flavor) -> Result<String> {
    let out = match flavor {
        Flavor::MariaDb => Command::new("mariadbd").arg("--version").output()?,
        Flavor::MySql => Command::new("chroot")
            .arg(mysql_chroot())
            .args(["mysqld", "--version"])
            .output()?,
    };
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .split_whitespace()
        .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()) && w.contains('.'))
        .unwrap_or("unknown")
        .to_string())
}

/// Where templates live: MySQL's must be inside the chroot.
fn template_root(flavor: Flavor) -> PathBuf {
    match flavor {
        Flavor::MariaDb => cache_dir().join("templates"),
        Flavor::MySql => mysql_chroot().join("replmend-templates"),
    }
}

/// A path as the server sees it (inside the chroot for MySQL).
fn server_path(flavor: Flavor, host_path: &Path) -> PathBuf {
    match flavor {
        Flavor::MariaDb => host_path.to_path_buf(),
        Flavor::MySql => {
            let root = mysql_chroot();
            Path::new("/").join(host_path.strip_prefix(&root).unwrap_or(host_path))
        }
    }
}

fn template(flavor: Flavor) -> Result<PathBuf> {
    available(flavor).map_err(|e| anyhow!(e))?;
    let root = template_root(flavor);
    fs::create_dir_all(&root)?;
    let dir = root.join(format!("{flavor}-{}", server_version(flavor)?));
    if dir.join("ready").exists() {
        return Ok(dir);
    }
    let lock = File::create(root.join(".lock"))?;
    lock.lock()?;
    if dir.join("ready").exists() {
        return Ok(dir);
    }
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    let data = dir.join("data");
    let status = match flavor {
        Flavor::MariaDb => Command::new("mariadb-install-db")
            .args([
                "--no-defaults",
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ])
            .arg(format!("--datadir={}", data.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?,
        Flavor::MySql => Command::new("chroot")
            .arg(mysql_chroot())
            .args([
                "mysqld",
                "--no-defaults",
                "--initialize-insecure",
                "--user=root",
            ])
            .arg(format!(
                "--datadir={}",
                server_path(flavor, &data).display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?,
    };
    if !status.success() {
        bail!(
            "initialising the {flavor} template datadir in {} failed",
            dir.display()
        );
    }
    if flavor == Flavor::MySql {
        // TCP logins from 127.0.0.1 need their own account; the template has no binlog, so the
        // account is not a transaction any replica would ever see.
        let mut inst = Instance::launch(flavor, &dir, &data, 1, None, &[])?;
        inst.conn_socket()?.query_drop(
            "CREATE USER 'root'@'127.0.0.1'; GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION; \
             CREATE USER 'root'@'%'; GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION",
        )?;
        inst.shutdown_clean()?;
        let _ = fs::remove_file(data.join("auto.cnf"));
    }
    File::create(dir.join("ready"))?;
    Ok(dir)
}

// ---------------------------------------------------------------------------------------------
// Instances

struct Instance {
    child: Option<Child>,
    pid: u32,
    port: u16,
    socket: PathBuf,
    error_log: PathBuf,
    flavor: Flavor,
    _lease: Option<PortLease>,
}

impl Instance {
    /// Starts a server on `data`. `binlog`: the basename, or None for no binary log (templates).
    fn launch(
        flavor: Flavor,
        dir: &Path,
        data: &Path,
        server_id: u32,
        binlog: Option<&str>,
        extra: &[String],
    ) -> Result<Instance> {
        let lease = lease_port()?;
        let port = lease.port;
        let socket = dir.join("mysqld.sock");
        let pid_file = dir.join("mysqld.pid");
        let error_log = dir.join("error.log");
        let sp = |p: &Path| server_path(flavor, p).display().to_string();
        let mut args: Vec<String> = vec![
            "--no-defaults".into(),
            format!("--datadir={}", sp(data)),
            format!("--port={port}"),
            "--bind-address=127.0.0.1".into(),
            format!("--socket={}", sp(&socket)),
            format!("--pid-file={}", sp(&pid_file)),
            format!("--log-error={}", sp(&error_log)),
            format!("--server-id={server_id}"),
            "--user=root".into(),
            "--max-allowed-packet=64M".into(),
        ];
        match binlog {
            Some(name) => {
                args.push(format!("--log-bin={name}"));
                args.push("--binlog-format=ROW".into());
            }
            None => args.push(match flavor {
                Flavor::MariaDb => "--skip-log-bin".into(),
                Flavor::MySql => "--disable-log-bin".into(),
            }),
        }
        let mut cmd = match flavor {
            Flavor::MariaDb => {
                args.extend([
                    "--skip-name-resolve".into(),
                    "--log-slave-updates".into(),
                    format!("--gtid-domain-id={server_id}"),
                    "--innodb-buffer-pool-size=32M".into(),
                    "--innodb-log-file-size=16M".into(),
                ]);
                Command::new("mariadbd")
            }
            Flavor::MySql => {
                args.extend([
                    "--mysqlx=OFF".into(),
                    "--secure-file-priv=".into(),
                    "--gtid-mode=ON".into(),
                    "--enforce-gtid-consistency=ON".into(),
                    "--skip-name-resolve".into(),
                    "--innodb-buffer-pool-size=16M".into(),
                    "--innodb-redo-log-capacity=8M".into(),
                    "--innodb-log-buffer-size=1M".into(),
                    "--table-open-cache=200".into(),
                    "--max-connections=40".into(),
                    "--temptable-max-ram=8M".into(),
                    "--performance-schema-max-table-instances=200".into(),
                    "--performance-schema-max-table-handles=200".into(),
                    "--performance-schema-digests-size=100".into(),
                    "--performance-schema-max-sql-text-length=256".into(),
                ]);
                let mut c = Command::new("chroot");
                c.arg(mysql_chroot()).arg("mysqld");
                c
            }
        };
        args.extend(extra.iter().cloned());
        let child = cmd
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {flavor}"))?;
        let pid = child.id();
        fs::write(dir.join("server.pid"), pid.to_string())?;
        let mut inst = Instance {
            child: Some(child),
            pid,
            port,
            socket,
            error_log,
            flavor,
            _lease: Some(lease),
        };
        inst.wait_ready(Duration::from_secs(90))?;
        Ok(inst)
    }

    fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.error_log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let started = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!(
                    "{} exited during startup ({status}); error log {}:\n{}",
                    self.flavor,
                    self.error_log.display(),
                    self.log_tail()
                );
            }
            if self.conn_socket().is_ok() {
                return Ok(());
            }
            if started.elapsed() > timeout {
                self.kill();
                bail!(
                    "{} did not accept connections within {timeout:?}:\n{}",
                    self.flavor,
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn conn_socket(&self) -> Result<Conn> {
        let opts = OptsBuilder::new()
            .socket(Some(self.socket.display().to_string()))
            .user(Some("root"))
            .init(vec!["SET NAMES utf8mb4"]);
        Ok(Conn::new(opts)?)
    }

    fn shutdown_clean(&mut self) -> Result<()> {
        let _ = self.conn_socket()?.query_drop("SHUTDOWN");
        if let Some(mut c) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(60);
            while c.try_wait()?.is_none() {
                if Instant::now() > deadline {
                    let _ = c.kill();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.wait();
        }
        Ok(())
    }

    fn kill(&mut self) {
        match self.child.take() {
            Some(mut c) => {
                let _ = c.kill();
                let _ = c.wait();
            }
            None => kill9(self.pid),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Nodes

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Node {
    pub name: String,
    pub flavor: Flavor,
    pub port: u16,
    pub server_id: u32,
    pub pid: u32,
    /// Host path of the instance directory.
    pub dir: PathBuf,
    pub binlog_basename: String,
    /// Port of the node this one replicates from.
    pub source_port: Option<u16>,
}

fn tcp_conn(port: u16) -> Result<Conn> {
    let opts = OptsBuilder::new()
        .ip_or_hostname(Some("127.0.0.1"))
        .tcp_port(port)
        .user(Some("root"))
        .prefer_socket(false)
        .tcp_connect_timeout(Some(Duration::from_secs(10)))
        .init(vec!["SET NAMES utf8mb4"]);
    Conn::new(opts).with_context(|| format!("connecting to 127.0.0.1:{port}"))
}

fn text(v: mysql::Value) -> Option<String> {
    match v {
        mysql::Value::NULL => None,
        mysql::Value::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
        other => Some(other.as_sql(true).trim_matches('\'').to_string()),
    }
}

impl Node {
    pub fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}", self.port)
    }

    pub fn conn(&self) -> Result<Conn> {
        tcp_conn(self.port)
    }

    pub fn exec(&self, sql: &str) -> Result<()> {
        self.conn()?
            .query_drop(sql)
            .with_context(|| format!("on {} ({}): {}", self.name, self.flavor, abbreviate(sql)))
    }

    pub fn query_rows(&self, sql: &str) -> Result<Vec<Vec<Option<String>>>> {
        let rows: Vec<mysql::Row> = self.conn()?.query(sql)?;
        Ok(rows
            .into_iter()
            .map(|r| r.unwrap().into_iter().map(text).collect())
            .collect())
    }

    /// A single value (first column of the first row).
    pub fn query_value(&self, sql: &str) -> Result<Option<String>> {
        Ok(self
            .query_rows(sql)?
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next().flatten()))
    }

    fn replica_word(&self) -> &'static str {
        match self.flavor {
            Flavor::MariaDb => "SLAVE",
            Flavor::MySql => "REPLICA",
        }
    }

    pub fn stop_replication(&self) -> Result<()> {
        self.exec(&format!("STOP {}", self.replica_word()))
    }
    pub fn start_replication(&self) -> Result<()> {
        self.exec(&format!("START {}", self.replica_word()))
    }
    pub fn stop_io(&self) -> Result<()> {
        self.exec(&format!("STOP {} IO_THREAD", self.replica_word()))
    }
    pub fn start_io(&self) -> Result<()> {
        self.exec(&format!("START {} IO_THREAD", self.replica_word()))
    }

    /// The status row of the default channel, by column name.
    pub fn replica_status(
        &self,
    ) -> Result<Option<std::collections::BTreeMap<String, Option<String>>>> {
        let mut conn = self.conn()?;
        let sql = match self.flavor {
            Flavor::MariaDb => "SHOW SLAVE STATUS",
            Flavor::MySql => "SHOW REPLICA STATUS",
        };
        let row: Option<mysql::Row> = conn.query_first(sql)?;
        Ok(row.map(|r| {
            let names: Vec<String> = r
                .columns_ref()
                .iter()
                .map(|c| c.name_str().into_owned())
                .collect();
            names
                .into_iter()
                .zip(r.unwrap().into_iter().map(text))
                .collect()
        }))
    }

    /// The applier's error, when its SQL thread has stopped on one.
    pub fn sql_error(&self) -> Result<Option<(u32, String)>> {
        let Some(st) = self.replica_status()? else {
            return Ok(None);
        };
        let get = |k: &str| st.get(k).cloned().flatten().unwrap_or_default();
        let running = get("Slave_SQL_Running") == "Yes" || get("Replica_SQL_Running") == "Yes";
        let errno: u32 = get("Last_SQL_Errno").parse().unwrap_or(0);
        Ok((!running && errno != 0).then(|| (errno, get("Last_SQL_Error"))))
    }

    pub fn wait_sql_error(&self, errno: u32, timeout: Duration) -> Result<()> {
        let started = Instant::now();
        loop {
            if let Some((e, msg)) = self.sql_error()? {
                if e == errno {
                    return Ok(());
                }
                bail!(
                    "{} stopped with error {e} instead of {errno}: {msg}",
                    self.name
                );
            }
            if started.elapsed() > timeout {
                bail!(
                    "{} did not stop with error {errno} within {timeout:?}",
                    self.name
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until this replica has applied everything its source has written.
    pub fn wait_caught_up(&self, timeout: Duration) -> Result<()> {
        let Some(src_port) = self.source_port else {
            return Ok(());
        };
        let mut src = tcp_conn(src_port)?;
        let secs = timeout.as_secs().max(1);
        let mut me = self.conn()?;
        let ok: Option<i64> = match self.flavor {
            Flavor::MySql => {
                let set: String = src
                    .query_first("SELECT @@GLOBAL.gtid_executed")?
                    .unwrap_or_default();
                me.exec_first("SELECT WAIT_FOR_EXECUTED_GTID_SET(?, ?) = 0", (set, secs))?
            }
            Flavor::MariaDb => {
                let pos: String = src
                    .query_first("SELECT @@GLOBAL.gtid_binlog_pos")?
                    .unwrap_or_default();
                me.exec_first("SELECT MASTER_GTID_WAIT(?, ?) = 0", (pos, secs))?
            }
        };
        if ok != Some(1) {
            let err = self
                .sql_error()?
                .map(|(e, m)| format!(": stopped with {e}: {m}"))
                .unwrap_or_default();
            bail!(
                "{} did not catch up with its source within {timeout:?}{err}",
                self.name
            );
        }
        Ok(())
    }

    /// CHECKSUM TABLE, for proving that a dry run changed nothing.
    pub fn checksum_table(&self, db: &str, table: &str) -> Result<Option<String>> {
        let q = format!(
            "CHECKSUM TABLE `{}`.`{}`",
            db.replace('`', "``"),
            table.replace('`', "``")
        );
        Ok(self
            .query_rows(&q)?
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().nth(1).flatten()))
    }
}

fn abbreviate(s: &str) -> String {
    let one: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() > 160 {
        format!("{}…", one.chars().take(160).collect::<String>())
    } else {
        one
    }
}

// ---------------------------------------------------------------------------------------------
// Sandboxes

#[derive(Debug, Serialize, Deserialize)]
struct State {
    flavor: Flavor,
    topology: Topology,
    owner: u32,
    kept: bool,
    nodes: Vec<Node>,
}

pub struct Sandbox {
    pub flavor: Flavor,
    pub topology: Topology,
    pub nodes: Vec<Node>,
    pub dir: PathBuf,
    instances: Vec<Instance>,
    kept: bool,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

impl Sandbox {
    pub fn start(flavor: Flavor, topology: Topology) -> Result<Sandbox> {
        sweep_stale();
        let tpl = template(flavor)?;
        let id = format!(
            "{}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst),
            flavor
        );
        let dir = match flavor {
            Flavor::MariaDb => run_dir().join(format!("sb-{id}")),
            Flavor::MySql => mysql_chroot()
                .join("replmend-sandbox")
                .join(format!("sb-{id}")),
        };
        fs::create_dir_all(&dir)?;
        let mut sb = Sandbox {
            flavor,
            topology,
            nodes: Vec::new(),
            dir: dir.clone(),
            instances: Vec::new(),
            kept: false,
        };
        sb.write_state()?;
        register(&dir)?;
        let prefix = match flavor {
            Flavor::MariaDb => "maria",
            Flavor::MySql => "mysql",
        };
        for i in 1..=2u32 {
            let ndir = dir.join(format!("n{i}"));
            fs::create_dir_all(&ndir)?;
            let status = Command::new("cp")
                .arg("-a")
                .arg(tpl.join("data"))
                .arg(&ndir)
                .status()?;
            if !status.success() {
                bail!("copying the template datadir failed");
            }
            let binlog = format!("{prefix}{i}-bin");
            let inst = Instance::launch(flavor, &ndir, &ndir.join("data"), i, Some(&binlog), &[])?;
            sb.nodes.push(Node {
                name: format!("n{i}"),
                flavor,
                port: inst.port,
                server_id: i,
                pid: inst.pid,
                dir: ndir,
                binlog_basename: binlog,
                source_port: None,
            });
            sb.instances.push(inst);
            sb.write_state()?;
        }
        let (p1, p2) = (sb.nodes[0].port, sb.nodes[1].port);
        let gtid = topology != Topology::SourceReplica;
        sb.wire(1, p1, gtid)?;
        sb.nodes[1].source_port = Some(p1);
        if topology == Topology::DualMaster {
            sb.wire(0, p2, gtid)?;
            sb.nodes[0].source_port = Some(p2);
        }
        sb.write_state()?;
        Ok(sb)
    }

    fn wire(&self, replica: usize, source_port: u16, gtid: bool) -> Result<()> {
        let node = &self.nodes[replica];
        let sql = match self.flavor {
            Flavor::MariaDb => format!(
                "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={source_port}, MASTER_USER='root', \
                 MASTER_USE_GTID={}; START SLAVE",
                if gtid { "slave_pos" } else { "no" }
            ),
            Flavor::MySql => format!(
                "CHANGE REPLICATION SOURCE TO SOURCE_HOST='127.0.0.1', SOURCE_PORT={source_port}, \
                 SOURCE_USER='root', SOURCE_AUTO_POSITION={}, GET_SOURCE_PUBLIC_KEY=1; START REPLICA",
                u8::from(gtid)
            ),
        };
        node.exec(&sql)?;
        // Wait for the receiver to connect so the topology is really up when start returns.
        let started = Instant::now();
        loop {
            let st = node.replica_status()?.unwrap_or_default();
            let io = st
                .get("Slave_IO_Running")
                .or_else(|| st.get("Replica_IO_Running"))
                .cloned()
                .flatten()
                .unwrap_or_default();
            if io == "Yes" {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(30) {
                bail!(
                    "{} could not connect to its source: {:?}",
                    node.name,
                    st.get("Last_IO_Error")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn write_state(&self) -> Result<()> {
        let state = State {
            flavor: self.flavor,
            topology: self.topology,
            owner: std::process::id(),
            kept: self.kept,
            nodes: self.nodes.clone(),
        };
        fs::write(
            self.dir.join("sandbox.json"),
            serde_json::to_string_pretty(&state)?,
        )?;
        Ok(())
    }

    pub fn node(&self, name: &str) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name} in this sandbox"))
    }

    /// Runs the incident recipe `tests/incidents/<name>` and waits for its expected errors.
    pub fn recipe(&self, name: &str) -> Result<()> {
        run_recipe(&self.nodes, self.flavor, &incidents_dir().join(name))
    }

    /// Leaves the servers running after this value is dropped; `down(dir)` stops them.
    pub fn keep(mut self) -> PathBuf {
        self.kept = true;
        let _ = self.write_state();
        for inst in &mut self.instances {
            inst.child = None; // not reaped by us any more
            if let Some(l) = inst._lease.take() {
                std::mem::forget(l);
            }
        }
        unregister(&self.dir);
        self.dir.clone()
    }

    pub fn stop(self) {
        drop(self)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        for inst in &mut self.instances {
            inst.kill();
        }
        let _ = fs::remove_dir_all(&self.dir);
        unregister(&self.dir);
    }
}

/// A registry of live sandbox directories (MySQL's live inside the chroot), so a sweep finds
/// them wherever they are.
fn registry() -> PathBuf {
    run_dir().join("registry")
}

fn reg_name(dir: &Path) -> String {
    dir.display().to_string().replace('/', "%")
}

fn register(dir: &Path) -> Result<()> {
    fs::create_dir_all(registry())?;
    fs::write(registry().join(reg_name(dir)), dir.display().to_string())?;
    Ok(())
}

fn unregister(dir: &Path) {
    let _ = fs::remove_file(registry().join(reg_name(dir)));
}

/// Stops servers of sandboxes whose owning process is gone (a test run killed with SIGKILL).
fn sweep_stale() {
    let Ok(entries) = fs::read_dir(registry()) else {
        return;
    };
    for e in entries.flatten() {
        let Ok(dir) = fs::read_to_string(e.path()) else {
            continue;
        };
        let dir = PathBuf::from(dir);
        let state: Option<State> = fs::read_to_string(dir.join("sandbox.json"))
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok());
        let stale = match &state {
            Some(s) => !s.kept && !alive(s.owner),
            None => !dir.exists(),
        };
        if stale {
            if let Some(s) = &state {
                for n in &s.nodes {
                    kill9(n.pid);
                }
            }
            let _ = fs::remove_dir_all(&dir);
            let _ = fs::remove_file(e.path());
        }
    }
}

/// Stops a kept sandbox by the PIDs in its state file and removes it.
pub fn down(state_dir: &Path) -> Result<()> {
    let state: State = serde_json::from_str(
        &fs::read_to_string(state_dir.join("sandbox.json"))
            .with_context(|| format!("{}", state_dir.display()))?,
    )?;
    for n in &state.nodes {
        kill9(n.pid);
        let lock = run_dir().join("ports").join(n.port.to_string());
        let _ = fs::remove_file(lock);
    }
    // Give the kernel a moment to reap before removing the datadirs.
    for n in &state.nodes {
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive(n.pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    fs::remove_dir_all(state_dir)?;
    unregister(state_dir);
    Ok(())
}

/// A kept sandbox's nodes, from its state directory.
pub fn nodes_of(state_dir: &Path) -> Result<Vec<Node>> {
    let state: State = serde_json::from_str(&fs::read_to_string(state_dir.join("sandbox.json"))?)?;
    Ok(state.nodes)
}

pub fn flavor_of(state_dir: &Path) -> Result<Flavor> {
    let state: State = serde_json::from_str(&fs::read_to_string(state_dir.join("sandbox.json"))?)?;
    Ok(state.flavor)
}

// ---------------------------------------------------------------------------------------------
// Recipes

fn recipe_file(dir: &Path, base: &str, flavor: Flavor) -> Option<String> {
    let specific = dir.join(format!("{base}.{flavor}.sql"));
    let generic = dir.join(format!("{base}.sql"));
    fs::read_to_string(specific)
        .or_else(|_| fs::read_to_string(generic))
        .ok()
}

/// schema.sql on n1 (replicated everywhere), then with every receiver stopped: n2.sql on n2
/// and n1.sql on n1; receivers restarted; then the errors listed in `expect` are awaited.
pub fn run_recipe(nodes: &[Node], flavor: Flavor, dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        bail!("no incident recipe at {}", dir.display());
    }
    let node = |n: &str| {
        nodes
            .iter()
            .find(|x| x.name == n)
            .ok_or_else(|| anyhow!("no node {n}"))
    };
    let replicas: Vec<&Node> = nodes.iter().filter(|n| n.source_port.is_some()).collect();
    if let Some(schema) = recipe_file(dir, "schema", flavor) {
        node("n1")?.exec(&schema)?;
        for r in &replicas {
            r.wait_caught_up(Duration::from_secs(60))?;
        }
    }
    for r in &replicas {
        r.stop_io()?;
    }
    for n in ["n2", "n1"] {
        if let Some(sql) = recipe_file(dir, n, flavor) {
            node(n)?.exec(&sql)?;
        }
    }
    for r in &replicas {
        r.start_io()?;
    }
    let expect = fs::read_to_string(dir.join("expect")).unwrap_or_default();
    for line in expect
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (n, errno) = line
            .split_once(char::is_whitespace)
            .ok_or_else(|| anyhow!("{}: bad expect line {line:?}", dir.display()))?;
        node(n)?.wait_sql_error(errno.trim().parse()?, Duration::from_secs(60))?;
    }
    Ok(())
}
