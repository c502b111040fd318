//! A server of a sandbox as tests see it: connections, queries, replication status and waits.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use mysql::prelude::Queryable;
use mysql::{Conn, OptsBuilder};
use serde::{Deserialize, Serialize};

use crate::flavor::{Build, Flavor};
use crate::process::Victim;
use crate::server::datadir_marker;

/// A named replication channel (MySQL) / connection (MariaDB) of a multi-source replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channel {
    /// The channel or connection name; "" is the default channel.
    pub name: String,
    /// Port of the node it replicates from.
    pub source_port: u16,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Node {
    /// "n1" (the source) or "n2" (the replica); in dual-master each replicates the other; in
    /// multi-source n3 replicates from n1 and n2.
    pub name: String,
    pub flavor: Flavor,
    pub port: u16,
    pub server_id: u32,
    pub pid: u32,
    /// Host path of the instance directory (datadir in `data/`, `error.log`, `mysqld.sock`).
    pub dir: PathBuf,
    /// `maria1-bin`, `mysql2-bin`, ...
    pub binlog_basename: String,
    /// Port of the node this one replicates from on its default channel (None on a
    /// multi-source replica: see `channels`).
    pub source_port: Option<u16>,
    /// Whether this node's replication channels position by GTID.
    #[serde(default)]
    pub gtid: bool,
    /// Multi-source: the named channels this node replicates on (`n1`, `n2`: named after the
    /// node each replicates from). Empty: at most the default channel of `source_port`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<Channel>,
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

/// The status row of a replication channel, by column name.
pub type ReplicaStatus = BTreeMap<String, Option<String>>;

/// A status column under its MariaDB (`a`) or MySQL (`b`) name; empty when absent or NULL.
pub(crate) fn field(st: &ReplicaStatus, a: &str, b: &str) -> String {
    st.get(a)
        .or_else(|| st.get(b))
        .cloned()
        .flatten()
        .unwrap_or_default()
}

pub(crate) fn tcp_conn(port: u16) -> Result<Conn> {
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

/// What a replica must have applied to have caught up with its source.
enum Target {
    MySqlGtid(String),
    MariaDomains(BTreeMap<u32, u64>),
    Coordinates(String, u64),
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
        let context = || format!("on {} ({}): {}", self.name, self.flavor, abbreviate(sql));
        let mut conn = self.conn()?;
        // Every statement's result is read: dropping a multi-statement result unread would
        // swallow the error of any statement after the first.
        let mut result = conn.query_iter(sql).with_context(context)?;
        while let Some(set) = result.iter() {
            for row in set {
                row.with_context(context)?;
            }
        }
        Ok(())
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

    /// Whether this node replicates (on the default channel or on named ones).
    pub fn is_replica(&self) -> bool {
        self.source_port.is_some() || !self.channels.is_empty()
    }

    /// Every channel this node replicates on: its named channels, or the default channel
    /// (name "") of `source_port`; empty when it does not replicate.
    pub fn sources(&self) -> Vec<Channel> {
        if !self.channels.is_empty() {
            return self.channels.clone();
        }
        self.source_port
            .map(|p| Channel {
                name: String::new(),
                source_port: p,
            })
            .into_iter()
            .collect()
    }

    /// The names of the channels this node replicates on ("" alone when it does not, so a
    /// status query still answers "not a replica").
    fn channel_names(&self) -> Vec<String> {
        let names: Vec<String> = self.sources().into_iter().map(|c| c.name).collect();
        if names.is_empty() {
            vec![String::new()]
        } else {
            names
        }
    }

    /// `verb` (STOP/START) of `threads` on every channel, one channel at a time (MariaDB's
    /// plain STOP SLAVE only names the default connection).
    fn every_channel(&self, verb: &str, threads: &str) -> Result<()> {
        for ch in self.channel_names() {
            self.exec(&self.flavor.replication(verb, threads, &ch))?;
        }
        Ok(())
    }

    pub fn stop_replication(&self) -> Result<()> {
        self.every_channel("STOP", "")
    }
    pub fn start_replication(&self) -> Result<()> {
        self.every_channel("START", "")
    }
    pub fn stop_io(&self) -> Result<()> {
        self.every_channel("STOP", " IO_THREAD")
    }
    pub fn start_io(&self) -> Result<()> {
        self.every_channel("START", " IO_THREAD")
    }

    /// The status row of the default channel (a multi-source replica: of its first named
    /// channel), by column name (None: not a replica).
    pub fn replica_status(&self) -> Result<Option<ReplicaStatus>> {
        self.channel_status(&self.channel_names()[0])
    }

    /// The status row of one channel ("" the default one), by column name (None: no such
    /// channel is configured; MySQL and MariaDB refuse to show an unknown named channel).
    pub fn channel_status(&self, channel: &str) -> Result<Option<ReplicaStatus>> {
        let mut conn = self.conn()?;
        let sql = self.flavor.show_status(channel);
        let row: Option<mysql::Row> = conn
            .query_first(&sql)
            .with_context(|| format!("on {} ({}): {sql}", self.name, self.flavor))?;
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
    /// error (a multi-source replica: the first channel so stopped). On a multi-threaded MySQL
    /// applier the text is the coordinator's sentence; the worker's full text is in
    /// [`Node::worker_errors`].
    pub fn sql_error(&self) -> Result<Option<(u32, String)>> {
        for ch in self.channel_names() {
            if let Some(e) = self.channel_sql_error(&ch)? {
                return Ok(Some(e));
            }
        }
        Ok(None)
    }

    /// Like [`Node::sql_error`], for one channel ("" the default one).
    pub fn channel_sql_error(&self, channel: &str) -> Result<Option<(u32, String)>> {
        let Some(st) = self.channel_status(channel)? else {
            return Ok(None);
        };
        let get = |a: &str, b: &str| field(&st, a, b);
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
        let channels: Vec<String> = self
            .channel_names()
            .iter()
            .map(|c| crate::flavor::quote(c))
            .collect();
        let rows = self.query_rows(&format!(
            "SELECT WORKER_ID, LAST_ERROR_NUMBER, LAST_ERROR_MESSAGE, APPLYING_TRANSACTION \
             FROM performance_schema.replication_applier_status_by_worker \
             WHERE CHANNEL_NAME IN ({}) AND LAST_ERROR_NUMBER <> 0 ORDER BY CHANNEL_NAME, WORKER_ID",
            channels.join(", ")
        ))?;
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

    pub(crate) fn io_summary(&self) -> String {
        let names = self.channel_names();
        let mut parts = Vec::new();
        for ch in &names {
            let prefix = if ch.is_empty() {
                String::new()
            } else {
                format!("channel '{ch}': ")
            };
            parts.push(format!("{prefix}{}", self.channel_summary(ch)));
        }
        parts.join("; ")
    }

    fn channel_summary(&self, channel: &str) -> String {
        match self.channel_status(channel) {
            Ok(Some(st)) => {
                let get = |a: &str, b: &str| field(&st, a, b);
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

    /// Waits until the SQL thread (of any channel) stops with `errno`; fails at once on
    /// another error.
    pub fn wait_sql_error(&self, errno: u32, timeout: Duration) -> Result<()> {
        self.wait_error(None, errno, timeout)
    }

    /// Waits until the SQL thread of `channel` stops with `errno`; fails at once on another
    /// error.
    pub fn wait_channel_error(&self, channel: &str, errno: u32, timeout: Duration) -> Result<()> {
        self.wait_error(Some(channel), errno, timeout)
    }

    fn wait_error(&self, channel: Option<&str>, errno: u32, timeout: Duration) -> Result<()> {
        let started = Instant::now();
        let which = channel
            .map(|c| format!(" channel '{c}'"))
            .unwrap_or_default();
        loop {
            let err = match channel {
                Some(c) => self.channel_sql_error(c)?,
                None => self.sql_error()?,
            };
            if let Some((e, msg)) = err {
                if e == errno {
                    return Ok(());
                }
                bail!(
                    "{} ({}){which} stopped with error {e} instead of {errno}: {msg}",
                    self.name,
                    self.flavor
                );
            }
            if started.elapsed() > timeout {
                bail!(
                    "{} ({}){which} did not stop with error {errno} within {timeout:?}: {}",
                    self.name,
                    self.flavor,
                    self.io_summary()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until this replica has applied everything its sources have written: GTID sets
    /// (MySQL: GTID_SUBSET of gtid_executed; MariaDB: per-domain sequence numbers of
    /// gtid_binlog_pos/gtid_slave_pos) on GTID channels, binlog coordinates on file/position
    /// channels. Fails at once when an SQL thread stops on an error. No-op on a non-replica.
    pub fn wait_caught_up(&self, timeout: Duration) -> Result<()> {
        let names: Vec<String> = self.sources().into_iter().map(|c| c.name).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        self.wait_channels_caught_up(&names, timeout)
    }

    /// Like [`Node::wait_caught_up`], for these channels only (the others may be stopped).
    pub fn wait_channels_caught_up(&self, channels: &[&str], timeout: Duration) -> Result<()> {
        let mut targets = Vec::new();
        for name in channels {
            let ch = self
                .sources()
                .into_iter()
                .find(|c| c.name == *name)
                .ok_or_else(|| anyhow!("{} has no replication channel '{name}'", self.name))?;
            let mut src = tcp_conn(ch.source_port)?;
            targets.push((ch.name, self.catch_up_target(&mut src)?));
        }
        let mut me = self.conn()?;
        let started = Instant::now();
        loop {
            let mut all = true;
            for (ch, target) in &targets {
                all &= self.reached(&mut me, ch, target)?;
            }
            if all {
                return Ok(());
            }
            for (ch, _) in &targets {
                if let Some((e, m)) = self.channel_sql_error(ch)? {
                    let which = if ch.is_empty() {
                        String::new()
                    } else {
                        format!(" channel '{ch}'")
                    };
                    bail!(
                        "{} ({}){which} stopped with error {e} before catching up: {m}",
                        self.name,
                        self.flavor
                    );
                }
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

    /// What a source has, read once: later writes are not waited for.
    fn catch_up_target(&self, src: &mut Conn) -> Result<Target> {
        Ok(if self.gtid {
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
        })
    }

    /// Whether this replica (`me`, a connection to it) has applied `target` (on `channel`).
    fn reached(&self, me: &mut Conn, channel: &str, target: &Target) -> Result<bool> {
        Ok(match target {
            Target::MySqlGtid(set) => {
                me.exec_first::<i64, _, _>("SELECT GTID_SUBSET(?, @@GLOBAL.gtid_executed)", (set,))?
                    == Some(1)
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
                let st = self.channel_status(channel)?.unwrap_or_default();
                let f = field(&st, "Relay_Master_Log_File", "Relay_Source_Log_File");
                let p: u64 = field(&st, "Exec_Master_Log_Pos", "Exec_Source_Log_Pos")
                    .parse()
                    .unwrap_or(0);
                (f.as_str(), p) >= (file.as_str(), *pos)
            }
        })
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

    /// This node's server as a process to stop (`build`: the sandbox's).
    pub(crate) fn victim(&self, build: Build) -> Victim {
        Victim {
            pid: self.pid,
            marker: datadir_marker(build, &self.dir.join("data")),
            child: None,
        }
    }
}

/// Makes servers quick to stop: a MySQL server shutting down gives its binlog dump threads
/// (the connections of its replicas) about ten seconds "to die gracefully". Stops every
/// replication channel first (so no receiver reconnects), then kills the dump threads.
/// Best effort with short timeouts; only for nodes whose server is known to be running.
pub(crate) fn quiesce(nodes: &[&Node]) {
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
    for n in nodes.iter().filter(|n| n.is_replica()) {
        if let Some(mut c) = quick(n.port) {
            for ch in n.sources() {
                let _ = c.query_drop(n.flavor.replication("STOP", "", &ch.name));
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mariadb_domains() {
        let d = domains("1-1-7,2-2-3, 1-5-9");
        assert_eq!(d.get(&1), Some(&9));
        assert_eq!(d.get(&2), Some(&3));
        assert!(domains("").is_empty());
    }
}
