//! Real MariaDB and Oracle MySQL servers on 127.0.0.1 for replmend's tests, demo and benchmarks.
//!
//! Every instance gets its own port, datadir, socket and pid file under a per-sandbox
//! directory; instances start from a template datadir made once per flavor and version, so a
//! pair is up in seconds. Dropping a `Sandbox` stops its servers by PID (SIGTERM, then SIGKILL
//! after a grace period) and removes their directories, also when the owning test panics; a
//! sandbox whose owning process died (SIGKILL, Ctrl-C) is swept by the next `Sandbox::start`.
//! MySQL runs inside the debootstrap chroot that `scripts/install-deps` builds; its instance
//! directories live inside the chroot.
//!
//! Incident recipes (`tests/incidents/<name>/`, plain SQL) turn a healthy topology into a real
//! replication incident; see `tests/incidents/README.md`.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use mysql::prelude::Queryable;
use mysql::{Conn, OptsBuilder};
use serde::{Deserialize, Serialize};

/// Bumped whenever the way templates are made changes, so old templates are not reused.
const TEMPLATE_FORMAT: &str = "t2";
/// How long a server may take to shut down after SIGTERM before it gets SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(15);
const READY_TIMEOUT: Duration = Duration::from_secs(90);
const RECIPE_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavor {
    MariaDb,
    MySql,
}

pub const FLAVORS: [Flavor; 2] = [Flavor::MariaDb, Flavor::MySql];

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
        match s.trim() {
            "mariadb" => Ok(Flavor::MariaDb),
            "mysql" => Ok(Flavor::MySql),
            _ => bail!("unknown flavor {s:?} (mariadb or mysql)"),
        }
    }
}

impl Flavor {
    /// Prefix of binary log names: `maria1-bin`, `mysql2-bin`, like the seed incident.
    fn binlog_prefix(self) -> &'static str {
        match self {
            Flavor::MariaDb => "maria",
            Flavor::MySql => "mysql",
        }
    }
    fn replica_word(self) -> &'static str {
        match self {
            Flavor::MariaDb => "SLAVE",
            Flavor::MySql => "REPLICA",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Topology {
    /// n1 → n2 by binlog file and position.
    SourceReplica,
    /// n1 → n2 by GTID auto-positioning.
    SourceReplicaGtid,
    /// n1 ⇄ n2, GTID.
    DualMaster,
}

impl std::fmt::Display for Topology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Topology::SourceReplica => "source-replica",
            Topology::SourceReplicaGtid => "source-replica-gtid",
            Topology::DualMaster => "dual-master",
        })
    }
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

// ---------------------------------------------------------------------------------------------
// Paths and binaries

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
fn run_dir() -> PathBuf {
    std::env::temp_dir().join("replmend-sandbox")
}

/// Where sandboxes of a flavor live: MySQL's must be inside the chroot.
fn sandboxes_root(flavor: Flavor) -> PathBuf {
    match flavor {
        Flavor::MariaDb => run_dir(),
        Flavor::MySql => mysql_chroot().join("replmend-sandbox"),
    }
}

fn host_binary(name: &str) -> PathBuf {
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

// ---------------------------------------------------------------------------------------------
// Processes

/// Running (not a zombie).
fn alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        let state = s.rsplit_once(") ").map(|(_, r)| r.chars().next());
        !matches!(state, Some(Some('Z' | 'X')) | None)
    })
}

/// Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat): with the
/// PID it identifies a process even after PIDs wrap around.
fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(") ")?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether `pid` is the server started with `marker` (its `--datadir=` argument).
fn is_server(pid: u32, marker: &str) -> bool {
    fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| c.split(|b| *b == 0).any(|arg| arg == marker.as_bytes()))
}

fn signal(pid: u32, sig: i32) {
    if pid > 1 {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe {
            libc::kill(pid as libc::pid_t, sig);
        }
    }
}

/// A server process to stop: a child of ours (reaped here) or a PID found in a state file
/// (checked against its command line first, so a recycled PID is never signalled).
struct Victim {
    pid: u32,
    marker: String,
    child: Option<Child>,
}

impl Victim {
    fn gone(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => !matches!(c.try_wait(), Ok(None)),
            None => !alive(self.pid) || !is_server(self.pid, &self.marker),
        }
    }
}

/// Makes servers quick to stop: a MySQL server shutting down gives its binlog dump threads
/// (the connections of its replicas) about ten seconds "to die gracefully". Stops every
/// replication channel first (so no receiver reconnects), then kills the dump threads.
/// Best effort with short timeouts; only for nodes whose server is known to be running.
fn quiesce(nodes: &[&Node]) {
    let quick = |port: u16| {
        let opts = OptsBuilder::new()
            .ip_or_hostname(Some("127.0.0.1"))
            .tcp_port(port)
            .user(Some("root"))
            .prefer_socket(false)
            .tcp_connect_timeout(Some(Duration::from_secs(1)))
            .read_timeout(Some(Duration::from_secs(5)))
            .write_timeout(Some(Duration::from_secs(5)));
        Conn::new(opts).ok()
    };
    for n in nodes.iter().filter(|n| n.source_port.is_some()) {
        if let Some(mut c) = quick(n.port) {
            let _ = c.query_drop(format!("STOP {}", n.flavor.replica_word()));
        }
    }
    for n in nodes {
        if let Some(mut c) = quick(n.port) {
            let ids: Vec<u64> = c
                .query(
                    "SELECT ID FROM information_schema.PROCESSLIST \
                     WHERE COMMAND LIKE 'Binlog Dump%'",
                )
                .unwrap_or_default();
            for id in ids {
                let _ = c.query_drop(format!("KILL {id}"));
            }
        }
    }
}

/// SIGTERM to all, wait up to `grace`, SIGKILL what is left, wait for that too.
fn stop_processes(mut victims: Vec<Victim>, grace: Duration) {
    victims.retain_mut(|v| !v.gone());
    for v in &victims {
        signal(v.pid, libc::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while !victims.is_empty() && Instant::now() < deadline {
        victims.retain_mut(|v| !v.gone());
        std::thread::sleep(Duration::from_millis(20));
    }
    for v in &victims {
        signal(v.pid, libc::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !victims.is_empty() && Instant::now() < deadline {
        victims.retain_mut(|v| !v.gone());
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------------
// Ports

/// A loopback port reserved against other sandboxes (threads and processes) by an O_EXCL lock
/// file until the lease is dropped. The server binding it can still lose a race against an
/// unrelated process (an outgoing connection's ephemeral port): `launch` retries on that.
struct PortLease {
    port: u16,
    lock: PathBuf,
}

impl Drop for PortLease {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.lock);
    }
}

fn ports_dir() -> PathBuf {
    run_dir().join("ports")
}

fn lease_port() -> Result<PortLease> {
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

// ---------------------------------------------------------------------------------------------
// Server command lines

fn server_version(flavor: Flavor) -> Result<String> {
    static CACHE: OnceLock<std::sync::Mutex<BTreeMap<String, String>>> = OnceLock::new();
    let key = format!("{flavor}:{}", mysql_chroot().display());
    let cache = CACHE.get_or_init(Default::default);
    if let Some(v) = cache.lock().unwrap().get(&key) {
        return Ok(v.clone());
    }
    let out = match flavor {
        Flavor::MariaDb => Command::new(host_binary("mariadbd"))
            .arg("--version")
            .output()?,
        Flavor::MySql => Command::new("chroot")
            .arg(mysql_chroot())
            .args(["mysqld", "--version"])
            .output()?,
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let v = text
        .split_whitespace()
        .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()) && w.contains('.'))
        .ok_or_else(|| anyhow!("cannot read the {flavor} version from {text:?}"))?
        .to_string();
    cache.lock().unwrap().insert(key, v.clone());
    Ok(v)
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

fn datadir_marker(flavor: Flavor, data: &Path) -> String {
    format!("--datadir={}", server_path(flavor, data).display())
}

/// Small memory, fast durability settings (the data is thrown away): used for the template
/// and for every instance so that nothing is resized at startup.
fn resource_args(flavor: Flavor) -> &'static [&'static str] {
    match flavor {
        Flavor::MariaDb => &[
            "--innodb-buffer-pool-size=24M",
            "--innodb-log-file-size=16M",
            "--innodb-log-buffer-size=2M",
            "--innodb-flush-log-at-trx-commit=2",
            "--sync-binlog=0",
            "--key-buffer-size=1M",
            "--aria-pagecache-buffer-size=2M",
            "--query-cache-size=0",
            "--max-connections=40",
            "--table-open-cache=200",
            "--table-definition-cache=400",
            "--thread-cache-size=4",
        ],
        Flavor::MySql => &[
            "--innodb-buffer-pool-size=16M",
            "--innodb-redo-log-capacity=8M",
            "--innodb-log-buffer-size=1M",
            "--innodb-flush-log-at-trx-commit=2",
            "--sync-binlog=0",
            "--innodb-read-io-threads=1",
            "--innodb-write-io-threads=1",
            "--innodb-purge-threads=1",
            "--innodb-page-cleaners=1",
            "--innodb-numa-interleave=OFF",
            "--key-buffer-size=1M",
            "--temptable-max-ram=8M",
            "--max-connections=40",
            "--table-open-cache=200",
            "--table-definition-cache=400",
            "--thread-cache-size=4",
            "--stored-program-cache=64",
            "--open-files-limit=2048",
            "--innodb-ddl-threads=1",
            "--innodb-parallel-read-threads=1",
            // performance_schema stays ON (the applier's real error lives there), sized for a
            // handful of connections: its autosized defaults are most of MySQL's memory.
            "--performance-schema-max-thread-instances=200",
            "--performance-schema-accounts-size=10",
            "--performance-schema-hosts-size=10",
            "--performance-schema-users-size=10",
            "--performance-schema-error-size=100",
            "--performance-schema-max-table-instances=200",
            "--performance-schema-max-table-handles=200",
            "--performance-schema-max-index-stat=500",
            "--performance-schema-max-table-lock-stat=500",
            "--performance-schema-max-file-instances=500",
            "--performance-schema-digests-size=100",
            "--performance-schema-max-sql-text-length=1024",
            "--performance-schema-max-digest-length=256",
            "--performance-schema-events-statements-history-long-size=100",
            "--performance-schema-events-transactions-history-long-size=100",
        ],
    }
}

enum Role<'a> {
    /// The one-off start of a template (no binary log).
    Template,
    /// A sandbox node.
    Node { server_id: u32, binlog: &'a str },
}

fn server_command(flavor: Flavor, args: &[String]) -> Command {
    let mut cmd = match flavor {
        Flavor::MariaDb => Command::new(host_binary("mariadbd")),
        Flavor::MySql => {
            let mut c = Command::new("chroot");
            c.arg(mysql_chroot()).arg("mysqld");
            c
        }
    };
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Own process group: terminal signals aimed at a test run or a demo script do not
        // reach the servers; they are stopped by PID only.
        .process_group(0);
    cmd
}

// ---------------------------------------------------------------------------------------------
// Templates

fn template_root(flavor: Flavor) -> PathBuf {
    match flavor {
        Flavor::MariaDb => cache_dir().join("templates"),
        Flavor::MySql => mysql_chroot().join("replmend-templates"),
    }
}

/// The template datadir of this flavor and version (`<dir>/data`), made once under a lock
/// (threads and processes), then copied per instance.
fn template(flavor: Flavor) -> Result<PathBuf> {
    available(flavor).map_err(|e| anyhow!(e))?;
    let root = template_root(flavor);
    fs::create_dir_all(&root)?;
    let dir = root.join(format!(
        "{flavor}-{}-{TEMPLATE_FORMAT}",
        server_version(flavor)?
    ));
    if dir.join("ready").exists() {
        return Ok(dir);
    }
    let lock = File::create(root.join(".lock"))?;
    lock.lock()?;
    if dir.join("ready").exists() {
        return Ok(dir);
    }
    let started = Instant::now();
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    let data = dir.join("data");
    let log = dir.join("init.log");
    let out = File::create(&log)?;
    let status = match flavor {
        Flavor::MariaDb => Command::new(host_binary("mariadb-install-db"))
            .args([
                "--no-defaults",
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ])
            .arg(format!("--datadir={}", data.display()))
            .stdout(out.try_clone()?)
            .stderr(out)
            .status()?,
        Flavor::MySql => Command::new("chroot")
            .arg(mysql_chroot())
            .args([
                "mysqld",
                "--no-defaults",
                "--initialize-insecure",
                "--user=root",
            ])
            .args(resource_args(flavor))
            .arg(format!(
                "--datadir={}",
                server_path(flavor, &data).display()
            ))
            .arg(format!(
                "--log-error={}",
                server_path(flavor, &log).display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?,
    };
    if !status.success() {
        bail!(
            "initialising the {flavor} template datadir in {} failed; {}:\n{}",
            dir.display(),
            log.display(),
            tail(&log, 20)
        );
    }
    // Accounts for TCP logins from 127.0.0.1 (and anywhere), no password. The template runs
    // without a binary log, so these are not transactions any replica would ever see.
    let mut inst = Instance::launch(flavor, &dir, &data, Role::Template)?;
    let setup = (|| -> Result<()> {
        let mut c = inst.conn_socket()?;
        let anonymous: Vec<String> = c.query("SELECT Host FROM mysql.user WHERE User = ''")?;
        for host in anonymous {
            c.query_drop(format!("DROP USER ''@'{}'", host.replace('\'', "''")))?;
        }
        for host in ["127.0.0.1", "%"] {
            c.query_drop(format!(
                "CREATE USER IF NOT EXISTS 'root'@'{host}'; \
                 GRANT ALL PRIVILEGES ON *.* TO 'root'@'{host}' WITH GRANT OPTION"
            ))?;
        }
        // A clean, slow shutdown: the copies must start without crash recovery.
        c.query_drop("SET GLOBAL innodb_fast_shutdown = 0")?;
        Ok(())
    })();
    inst.shutdown(setup.is_ok())?;
    setup.with_context(|| format!("setting up the {flavor} template"))?;
    // Each copy must make its own server_uuid.
    let _ = fs::remove_file(data.join("auto.cnf"));
    for f in ["error.log", "mysqld.pid"] {
        let _ = fs::remove_file(dir.join(f));
    }
    File::create(dir.join("ready"))?;
    eprintln!(
        "replmend-sandbox: made the {flavor} template {} in {:.1?}",
        dir.display(),
        started.elapsed()
    );
    Ok(dir)
}

fn tail(path: &Path, n: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

// ---------------------------------------------------------------------------------------------
// Instances

struct Instance {
    child: Option<Child>,
    pid: u32,
    port: u16,
    socket: PathBuf,
    marker: String,
    lease: Option<PortLease>,
}

/// Why a start failed, and whether another port may help.
struct LaunchFailure {
    port_taken: bool,
    error: anyhow::Error,
}

impl Instance {
    /// Starts a server on `data` with its socket, pid file and error log in `dir`; retries on
    /// another port when the chosen one was taken in the meantime.
    fn launch(flavor: Flavor, dir: &Path, data: &Path, role: Role) -> Result<Instance> {
        let socket = dir.join("mysqld.sock");
        if socket.as_os_str().len() > 100 {
            bail!(
                "socket path {} is too long for a unix socket; use a shorter REPLMEND_CACHE/TMPDIR",
                socket.display()
            );
        }
        let mut last = None;
        for _ in 0..5 {
            match Instance::try_launch(flavor, dir, data, &role) {
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
        flavor: Flavor,
        dir: &Path,
        data: &Path,
        role: &Role,
    ) -> Result<Instance, LaunchFailure> {
        let other = |error: anyhow::Error| LaunchFailure {
            port_taken: false,
            error,
        };
        let lease = lease_port().map_err(other)?;
        let port = lease.port;
        let socket = dir.join("mysqld.sock");
        let error_log = dir.join("error.log");
        let log_offset = fs::metadata(&error_log).map(|m| m.len()).unwrap_or(0);
        let sp = |p: &Path| server_path(flavor, p).display().to_string();
        let marker = datadir_marker(flavor, data);
        let mut args: Vec<String> = vec![
            "--no-defaults".into(),
            marker.clone(),
            format!("--port={port}"),
            "--bind-address=127.0.0.1".into(),
            format!("--socket={}", sp(&socket)),
            format!("--pid-file={}", sp(&dir.join("mysqld.pid"))),
            format!("--log-error={}", sp(&error_log)),
            "--user=root".into(),
            "--skip-name-resolve".into(),
            "--max-allowed-packet=64M".into(),
        ];
        args.extend(resource_args(flavor).iter().map(|s| s.to_string()));
        if flavor == Flavor::MySql {
            args.extend(["--mysqlx=OFF".into(), "--secure-file-priv=".into()]);
        }
        match role {
            Role::Template => {
                args.push("--server-id=1".into());
                args.push(match flavor {
                    Flavor::MariaDb => "--skip-log-bin".into(),
                    Flavor::MySql => "--disable-log-bin".into(),
                });
            }
            Role::Node { server_id, binlog } => {
                args.extend([
                    format!("--server-id={server_id}"),
                    format!("--log-bin={binlog}"),
                    "--binlog-format=ROW".into(),
                ]);
                match flavor {
                    Flavor::MariaDb => args.extend([
                        "--log-slave-updates".into(),
                        format!("--gtid-domain-id={server_id}"),
                    ]),
                    Flavor::MySql => args.extend([
                        "--log-replica-updates=ON".into(),
                        "--gtid-mode=ON".into(),
                        "--enforce-gtid-consistency=ON".into(),
                    ]),
                }
            }
        }
        // Extra server options for debugging, e.g. "--log-error-verbosity=3".
        if let Some(extra) = std::env::var_os("REPLMEND_SANDBOX_SERVER_ARGS") {
            args.extend(extra.to_string_lossy().split_whitespace().map(String::from));
        }
        let child = server_command(flavor, &args)
            .spawn()
            .with_context(|| format!("starting {flavor}"))
            .map_err(other)?;
        let pid = child.id();
        let _ = fs::write(dir.join("server.pid"), pid.to_string());
        let mut inst = Instance {
            child: Some(child),
            pid,
            port,
            socket,
            marker,
            lease: Some(lease),
        };
        let check_tcp = matches!(role, Role::Node { .. });
        match inst.wait_ready(flavor, data, check_tcp) {
            Ok(()) => Ok(inst),
            Err(e) => {
                inst.stop(Duration::from_secs(5));
                let log = fs::read(&error_log).unwrap_or_default();
                let new = String::from_utf8_lossy(&log[(log_offset as usize).min(log.len())..]);
                let port_taken =
                    new.contains("Address already in use") || new.contains("Bind on TCP/IP port");
                let tail: Vec<&str> = new.lines().collect();
                let tail = tail[tail.len().saturating_sub(20)..].join("\n");
                Err(LaunchFailure {
                    port_taken,
                    error: e.context(format!(
                        "{flavor} on port {port} (datadir {}), end of {}:\n{tail}",
                        data.display(),
                        error_log.display()
                    )),
                })
            }
        }
    }

    fn wait_ready(&mut self, flavor: Flavor, data: &Path, check_tcp: bool) -> Result<()> {
        let started = Instant::now();
        let want = server_path(flavor, data);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!("{flavor} exited during startup ({status})");
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
                    "{flavor} did not accept connections within {:?}",
                    READY_TIMEOUT
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn conn_socket(&self) -> Result<Conn> {
        let opts = OptsBuilder::new()
            .socket(Some(self.socket.display().to_string()))
            .prefer_socket(true)
            .user(Some("root"))
            .init(vec!["SET NAMES utf8mb4"]);
        Ok(Conn::new(opts)?)
    }

    /// SHUTDOWN (when `clean`) or SIGTERM, then SIGKILL after the grace period.
    fn shutdown(&mut self, clean: bool) -> Result<()> {
        if clean && let Ok(mut c) = self.conn_socket() {
            let _ = c.query_drop("SHUTDOWN");
        }
        self.stop(Duration::from_secs(120));
        Ok(())
    }

    fn victim(&mut self) -> Victim {
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

// ---------------------------------------------------------------------------------------------
// Nodes

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Node {
    /// "n1" (the source) or "n2" (the replica); in dual-master each replicates the other.
    pub name: String,
    pub flavor: Flavor,
    pub port: u16,
    pub server_id: u32,
    pub pid: u32,
    /// Host path of the instance directory (datadir in `data/`, `error.log`, `mysqld.sock`).
    pub dir: PathBuf,
    /// `maria1-bin`, `mysql2-bin`, ...
    pub binlog_basename: String,
    /// Port of the node this one replicates from.
    pub source_port: Option<u16>,
    /// Whether this node's replication channel positions by GTID.
    #[serde(default)]
    pub gtid: bool,
}

/// A MySQL applier worker's error, from performance_schema.replication_applier_status_by_worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerError {
    pub worker_id: u32,
    pub errno: u32,
    pub message: String,
    /// The GTID the worker failed on (APPLYING_TRANSACTION).
    pub applying_transaction: String,
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

fn abbreviate(s: &str) -> String {
    let one: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() > 160 {
        format!("{}…", one.chars().take(160).collect::<String>())
    } else {
        one
    }
}

/// MariaDB GTID positions: the highest sequence number per replication domain.
fn domains(pos: &str) -> BTreeMap<u32, u64> {
    let mut out = BTreeMap::new();
    for g in pos.split(',').map(str::trim).filter(|g| !g.is_empty()) {
        let parts: Vec<&str> = g.split('-').collect();
        if let [d, _, n] = parts[..]
            && let (Ok(d), Ok(n)) = (d.parse::<u32>(), n.parse::<u64>())
        {
            let e = out.entry(d).or_insert(0);
            *e = (*e).max(n);
        }
    }
    out
}

impl Node {
    pub fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}", self.port)
    }

    /// A new connection as root over TCP to 127.0.0.1 (session character set utf8mb4).
    pub fn conn(&self) -> Result<Conn> {
        tcp_conn(self.port)
    }

    /// Runs SQL text, several statements allowed; the error names the node and the statement.
    pub fn exec(&self, sql: &str) -> Result<()> {
        self.conn()?
            .query_drop(sql)
            .with_context(|| format!("on {} ({}): {}", self.name, self.flavor, abbreviate(sql)))
    }

    /// Rows of the first result set, every value as text (lossy UTF-8), NULL as None.
    pub fn query_rows(&self, sql: &str) -> Result<Vec<Vec<Option<String>>>> {
        let rows: Vec<mysql::Row> = self
            .conn()?
            .query(sql)
            .with_context(|| format!("on {} ({}): {}", self.name, self.flavor, abbreviate(sql)))?;
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

    pub fn stop_replication(&self) -> Result<()> {
        self.exec(&format!("STOP {}", self.flavor.replica_word()))
    }
    pub fn start_replication(&self) -> Result<()> {
        self.exec(&format!("START {}", self.flavor.replica_word()))
    }
    pub fn stop_io(&self) -> Result<()> {
        self.exec(&format!("STOP {} IO_THREAD", self.flavor.replica_word()))
    }
    pub fn start_io(&self) -> Result<()> {
        self.exec(&format!("START {} IO_THREAD", self.flavor.replica_word()))
    }

    /// The status row of the default channel, by column name (None: not a replica).
    pub fn replica_status(&self) -> Result<Option<BTreeMap<String, Option<String>>>> {
        let mut conn = self.conn()?;
        let sql = format!("SHOW {} STATUS", self.flavor.replica_word());
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

    /// The applier's `(Last_SQL_Errno, Last_SQL_Error)` when its SQL thread has stopped on an
    /// error. On a multi-threaded MySQL applier the text is the coordinator's sentence; the
    /// worker's full text is in [`Node::worker_errors`].
    pub fn sql_error(&self) -> Result<Option<(u32, String)>> {
        let Some(st) = self.replica_status()? else {
            return Ok(None);
        };
        let get = |a: &str, b: &str| {
            st.get(a)
                .or_else(|| st.get(b))
                .cloned()
                .flatten()
                .unwrap_or_default()
        };
        let running = get("Slave_SQL_Running", "Replica_SQL_Running") == "Yes";
        let errno: u32 = get("Last_SQL_Errno", "Last_SQL_Errno").parse().unwrap_or(0);
        Ok((!running && errno != 0).then(|| (errno, get("Last_SQL_Error", "Last_SQL_Error"))))
    }

    /// MySQL: the failing workers' full error texts and GTIDs (empty on MariaDB, whose
    /// performance_schema is off).
    pub fn worker_errors(&self) -> Result<Vec<WorkerError>> {
        if self.flavor != Flavor::MySql {
            return Ok(Vec::new());
        }
        let rows = self.query_rows(
            "SELECT WORKER_ID, LAST_ERROR_NUMBER, LAST_ERROR_MESSAGE, APPLYING_TRANSACTION \
             FROM performance_schema.replication_applier_status_by_worker \
             WHERE CHANNEL_NAME = '' AND LAST_ERROR_NUMBER <> 0 ORDER BY WORKER_ID",
        )?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let s = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
                WorkerError {
                    worker_id: s(0).parse().unwrap_or(0),
                    errno: s(1).parse().unwrap_or(0),
                    message: s(2),
                    applying_transaction: s(3),
                }
            })
            .collect())
    }

    fn io_summary(&self) -> String {
        match self.replica_status() {
            Ok(Some(st)) => {
                let get = |a: &str, b: &str| {
                    st.get(a)
                        .or_else(|| st.get(b))
                        .cloned()
                        .flatten()
                        .unwrap_or_default()
                };
                format!(
                    "IO thread {}, SQL thread {}, last IO error {:?}, last SQL error {:?}",
                    get("Slave_IO_Running", "Replica_IO_Running"),
                    get("Slave_SQL_Running", "Replica_SQL_Running"),
                    get("Last_IO_Error", "Last_IO_Error"),
                    get("Last_SQL_Error", "Last_SQL_Error"),
                )
            }
            Ok(None) => "not a replica".into(),
            Err(e) => format!("status unreadable: {e:#}"),
        }
    }

    /// Waits until the SQL thread stops with `errno`; fails at once on another error.
    pub fn wait_sql_error(&self, errno: u32, timeout: Duration) -> Result<()> {
        let started = Instant::now();
        loop {
            if let Some((e, msg)) = self.sql_error()? {
                if e == errno {
                    return Ok(());
                }
                bail!(
                    "{} ({}) stopped with error {e} instead of {errno}: {msg}",
                    self.name,
                    self.flavor
                );
            }
            if started.elapsed() > timeout {
                bail!(
                    "{} ({}) did not stop with error {errno} within {timeout:?}: {}",
                    self.name,
                    self.flavor,
                    self.io_summary()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until this replica has applied everything its source has written: GTID sets
    /// (MySQL: GTID_SUBSET of gtid_executed; MariaDB: per-domain sequence numbers of
    /// gtid_binlog_pos/gtid_slave_pos) on GTID channels, binlog coordinates on file/position
    /// channels. Fails at once when the SQL thread stops on an error. No-op on a non-replica.
    pub fn wait_caught_up(&self, timeout: Duration) -> Result<()> {
        let Some(src_port) = self.source_port else {
            return Ok(());
        };
        let mut src = tcp_conn(src_port)?;
        let mut me = self.conn()?;
        let started = Instant::now();
        // What the source has, read once: later writes are not waited for.
        enum Target {
            MySqlGtid(String),
            MariaDomains(BTreeMap<u32, u64>),
            Coordinates(String, u64),
        }
        let target = if self.gtid {
            match self.flavor {
                Flavor::MySql => Target::MySqlGtid(
                    src.query_first("SELECT @@GLOBAL.gtid_executed")?
                        .unwrap_or_default(),
                ),
                Flavor::MariaDb => Target::MariaDomains(domains(
                    &src.query_first::<String, _>("SELECT @@GLOBAL.gtid_binlog_pos")?
                        .unwrap_or_default(),
                )),
            }
        } else {
            let sql = match self.flavor {
                Flavor::MySql => "SHOW BINARY LOG STATUS",
                Flavor::MariaDb => "SHOW MASTER STATUS",
            };
            let row: mysql::Row = src
                .query_first(sql)?
                .ok_or_else(|| anyhow!("the source of {} has no binary log", self.name))?;
            let file: String = row.get(0).unwrap_or_default();
            let pos: u64 = row.get(1).unwrap_or_default();
            Target::Coordinates(file, pos)
        };
        loop {
            let done = match &target {
                Target::MySqlGtid(set) => {
                    me.exec_first::<i64, _, _>(
                        "SELECT GTID_SUBSET(?, @@GLOBAL.gtid_executed)",
                        (set,),
                    )? == Some(1)
                }
                Target::MariaDomains(want) => {
                    let (b, s): (Option<String>, Option<String>) = me
                        .query_first("SELECT @@GLOBAL.gtid_binlog_pos, @@GLOBAL.gtid_slave_pos")?
                        .unwrap_or_default();
                    let mut have = domains(&b.unwrap_or_default());
                    for (d, n) in domains(&s.unwrap_or_default()) {
                        let e = have.entry(d).or_insert(0);
                        *e = (*e).max(n);
                    }
                    want.iter()
                        .all(|(d, n)| have.get(d).is_some_and(|h| h >= n))
                }
                Target::Coordinates(file, pos) => {
                    let st = self.replica_status()?.unwrap_or_default();
                    let get = |a: &str, b: &str| {
                        st.get(a)
                            .or_else(|| st.get(b))
                            .cloned()
                            .flatten()
                            .unwrap_or_default()
                    };
                    let f = get("Relay_Master_Log_File", "Relay_Source_Log_File");
                    let p: u64 = get("Exec_Master_Log_Pos", "Exec_Source_Log_Pos")
                        .parse()
                        .unwrap_or(0);
                    (f.as_str(), p) >= (file.as_str(), *pos)
                }
            };
            if done {
                return Ok(());
            }
            if let Some((e, m)) = self.sql_error()? {
                bail!(
                    "{} ({}) stopped with error {e} before catching up: {m}",
                    self.name,
                    self.flavor
                );
            }
            if started.elapsed() > timeout {
                bail!(
                    "{} ({}) did not catch up with its source within {timeout:?}: {}",
                    self.name,
                    self.flavor,
                    self.io_summary()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
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

    /// Resident memory of the server process in KiB (from /proc).
    pub fn rss_kib(&self) -> Option<u64> {
        fs::read_to_string(format!("/proc/{}/status", self.pid))
            .ok()?
            .lines()
            .find(|l| l.starts_with("VmRSS:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }

    fn victim(&self) -> Victim {
        Victim {
            pid: self.pid,
            marker: datadir_marker(self.flavor, &self.dir.join("data")),
            child: None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Sandboxes

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

/// Two servers on 127.0.0.1 with replication wired and running. Dropping it stops the servers
/// and removes their directories; [`Sandbox::keep`] detaches them instead.
pub struct Sandbox {
    pub flavor: Flavor,
    pub topology: Topology,
    pub nodes: Vec<Node>,
    /// The sandbox directory (holds `sandbox.json` and `n1/`, `n2/`).
    pub dir: PathBuf,
    instances: Vec<Instance>,
    kept: bool,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

impl Sandbox {
    /// Fresh, isolated instances from the template, replication wired and running.
    pub fn start(flavor: Flavor, topology: Topology) -> Result<Sandbox> {
        sweep_stale();
        let tpl = template(flavor)?;
        let root = sandboxes_root(flavor);
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
            topology,
            nodes: Vec::new(),
            dir: dir.clone(),
            instances: Vec::new(),
            kept: false,
        };
        register(&dir)?;
        sb.write_state()?;
        // Both nodes at once: copy the template, start, wait for readiness.
        let launched: Vec<Result<(Node, Instance)>> = std::thread::scope(|s| {
            let handles: Vec<_> = (1..=2u32)
                .map(|i| {
                    let (tpl, dir) = (&tpl, &dir);
                    s.spawn(move || start_node(flavor, tpl, dir, i))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow!("node start panicked")))
                })
                .collect()
        });
        let mut first_err = None;
        for r in launched {
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
        sb.nodes[1].source_port = Some(p1);
        sb.nodes[1].gtid = gtid;
        if topology == Topology::DualMaster {
            sb.nodes[0].source_port = Some(p2);
            sb.nodes[0].gtid = gtid;
        }
        sb.write_state()?;
        for n in sb.nodes.iter().filter(|n| n.source_port.is_some()) {
            wire(n)?;
        }
        for n in sb.nodes.iter().filter(|n| n.source_port.is_some()) {
            wait_running(n)?;
        }
        Ok(sb)
    }

    fn info(&self) -> SandboxInfo {
        let owner = std::process::id();
        SandboxInfo {
            flavor: self.flavor,
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

    /// "n1" (the source) or "n2" (the replica). Panics on another name.
    pub fn node(&self, name: &str) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name} in this sandbox"))
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
        let _ = fs::remove_dir_all(&self.dir);
        unregister(&self.dir);
    }
}

fn start_node(flavor: Flavor, tpl: &Path, dir: &Path, i: u32) -> Result<(Node, Instance)> {
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
        flavor,
        &ndir,
        &ndir.join("data"),
        Role::Node {
            server_id: i,
            binlog: &binlog,
        },
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
    };
    Ok((node, inst))
}

fn wire(node: &Node) -> Result<()> {
    let port = node.source_port.expect("a replica");
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
    let sql = match node.flavor {
        Flavor::MariaDb => format!(
            "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={port}, MASTER_USER='root', \
             MASTER_CONNECT_RETRY=1, MASTER_USE_GTID={}{coordinates}; START SLAVE",
            if node.gtid { "slave_pos" } else { "no" }
        ),
        Flavor::MySql => format!(
            "CHANGE REPLICATION SOURCE TO SOURCE_HOST='127.0.0.1', SOURCE_PORT={port}, \
             SOURCE_USER='root', SOURCE_CONNECT_RETRY=1, SOURCE_AUTO_POSITION={}, \
             GET_SOURCE_PUBLIC_KEY=1{coordinates}; START REPLICA",
            u8::from(node.gtid),
        ),
    };
    node.exec(&sql)
}

/// Waits until both replication threads of `node` run (the receiver has connected).
fn wait_running(node: &Node) -> Result<()> {
    let started = Instant::now();
    loop {
        let st = node.replica_status()?.unwrap_or_default();
        let get = |a: &str, b: &str| {
            st.get(a)
                .or_else(|| st.get(b))
                .cloned()
                .flatten()
                .unwrap_or_default()
        };
        if get("Slave_IO_Running", "Replica_IO_Running") == "Yes"
            && get("Slave_SQL_Running", "Replica_SQL_Running") == "Yes"
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

fn write_info(dir: &Path, info: &SandboxInfo) -> Result<()> {
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

fn destroy(info: &SandboxInfo) {
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

/// Live sandbox directories, wherever they are (MySQL's are inside the chroot of whichever
/// REPLMEND_CACHE their process used), so a sweep finds them.
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

/// Stops and removes sandboxes whose owning process is gone (a test run killed by SIGKILL or
/// Ctrl-C). Kept sandboxes are left alone: they belong to `down`.
fn sweep_stale() {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Ok(entries) = fs::read_dir(registry()) {
        for e in entries.flatten() {
            match fs::read_to_string(e.path()) {
                Ok(d) => dirs.push(PathBuf::from(d)),
                Err(_) => continue,
            }
        }
    }
    for flavor in FLAVORS {
        if let Ok(entries) = fs::read_dir(sandboxes_root(flavor)) {
            dirs.extend(entries.flatten().map(|e| e.path()).filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("sb-"))
            }));
        }
    }
    dirs.sort();
    dirs.dedup();
    for dir in dirs {
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

// ---------------------------------------------------------------------------------------------
// Recipes

/// An incident recipe: `tests/incidents/<name>/` (see its README.md).
#[derive(Debug, Clone)]
pub struct Recipe {
    pub name: String,
    pub dir: PathBuf,
    /// The topology the recipe is written for (`topology` file).
    pub topology: Topology,
    /// `(node, errno)` from `expect`.
    pub expect: Vec<(String, u32)>,
}

impl Recipe {
    pub fn load(name: &str) -> Result<Recipe> {
        Recipe::from_dir(&incidents_dir().join(name))
    }

    pub fn from_dir(dir: &Path) -> Result<Recipe> {
        if !dir.is_dir() {
            bail!("no incident recipe at {}", dir.display());
        }
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let topology = fs::read_to_string(dir.join("topology"))
            .with_context(|| format!("{}: no topology file", dir.display()))?
            .parse()
            .with_context(|| format!("{}/topology", dir.display()))?;
        let expect = fs::read_to_string(dir.join("expect"))
            .with_context(|| format!("{}: no expect file", dir.display()))?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                let (n, e) = l
                    .split_once(char::is_whitespace)
                    .ok_or_else(|| anyhow!("{}/expect: bad line {l:?}", dir.display()))?;
                Ok((n.to_string(), e.trim().parse()?))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Recipe {
            name,
            dir: dir.to_path_buf(),
            topology,
            expect,
        })
    }

    /// Every recipe in [`incidents_dir`], by name.
    pub fn all() -> Result<Vec<Recipe>> {
        let mut out = Vec::new();
        for e in fs::read_dir(incidents_dir())?.flatten() {
            if e.path().is_dir() {
                out.push(Recipe::from_dir(&e.path())?);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// `<base>.<flavor>.sql` if present, else `<base>.sql`.
    pub fn sql(&self, base: &str, flavor: Flavor) -> Option<String> {
        fs::read_to_string(self.dir.join(format!("{base}.{flavor}.sql")))
            .or_else(|_| fs::read_to_string(self.dir.join(format!("{base}.sql"))))
            .ok()
    }

    /// schema on n1, caught up everywhere; every receiver stopped; n2's then n1's writes;
    /// receivers started; then each expected error is awaited (lines naming a node that does
    /// not replicate in this topology are ignored), and every other replica must catch up
    /// without error.
    pub fn run(&self, nodes: &[Node], flavor: Flavor) -> Result<()> {
        let ctx = || format!("recipe {} on {flavor}", self.name);
        let node = |n: &str| {
            nodes
                .iter()
                .find(|x| x.name == n)
                .ok_or_else(|| anyhow!("no node {n}"))
        };
        let replicas: Vec<&Node> = nodes.iter().filter(|n| n.source_port.is_some()).collect();
        if let Some(schema) = self.sql("schema", flavor) {
            node("n1")?.exec(&schema).with_context(ctx)?;
            for r in &replicas {
                r.wait_caught_up(RECIPE_TIMEOUT).with_context(ctx)?;
            }
        }
        for r in &replicas {
            r.stop_io().with_context(ctx)?;
        }
        for n in ["n2", "n1"] {
            if let Some(sql) = self.sql(n, flavor) {
                node(n)?.exec(&sql).with_context(ctx)?;
            }
        }
        for r in &replicas {
            r.start_io().with_context(ctx)?;
        }
        for (n, errno) in &self.expect {
            let n = node(n)?;
            if n.source_port.is_some() {
                n.wait_sql_error(*errno, RECIPE_TIMEOUT).with_context(ctx)?;
            }
        }
        for r in replicas
            .iter()
            .filter(|r| !self.expect.iter().any(|(n, _)| *n == r.name))
        {
            r.wait_caught_up(RECIPE_TIMEOUT).with_context(ctx)?;
        }
        Ok(())
    }
}

/// Runs the recipe in `dir` on these nodes (see [`Recipe::run`]).
pub fn run_recipe(nodes: &[Node], flavor: Flavor, dir: &Path) -> Result<()> {
    Recipe::from_dir(dir)?.run(nodes, flavor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names() {
        assert_eq!("mariadb".parse::<Flavor>().unwrap(), Flavor::MariaDb);
        assert_eq!(Flavor::MySql.to_string(), "mysql");
        for t in ["source-replica", "source-replica-gtid", "dual-master"] {
            assert_eq!(t.parse::<Topology>().unwrap().to_string(), t);
        }
        assert!("ring".parse::<Topology>().is_err());
    }

    #[test]
    fn mariadb_domains() {
        let d = domains("1-1-7,2-2-3, 1-5-9");
        assert_eq!(d.get(&1), Some(&9));
        assert_eq!(d.get(&2), Some(&3));
        assert!(domains("").is_empty());
    }

    #[test]
    fn this_process_is_alive_and_has_a_start_time() {
        let me = std::process::id();
        assert!(alive(me));
        assert!(start_time(me).is_some_and(|t| t > 0));
        assert!(!is_server(me, "--datadir=/nowhere"));
    }

    #[test]
    fn every_recipe_parses() {
        let all = Recipe::all().unwrap();
        assert!(all.len() >= 7, "{all:?}");
        let readme = fs::read_to_string(incidents_dir().join("README.md")).unwrap();
        for r in all {
            assert!(
                readme.contains(&format!("| {} |", r.name)),
                "tests/incidents/README.md does not list {}",
                r.name
            );
            assert!(!r.expect.is_empty(), "{}", r.name);
            assert!(r.sql("n1", Flavor::MariaDb).is_some(), "{}", r.name);
        }
    }
}
