//! Server command lines, built from the per-build tables in `server_opts.rs`.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use anyhow::{Result, anyhow};

use crate::flavor::Build;
use crate::paths::host_binary;
use crate::server_opts::InitLog;

/// A program of this build: a host binary, or `chroot <the build's chroot> <name>`.
fn program(build: Build, name: &str) -> Command {
    match build.chroot() {
        Some(root) => {
            let mut c = Command::new("chroot");
            c.arg(root).arg(name);
            c
        }
        None => Command::new(host_binary(name)),
    }
}

pub(crate) fn server_version(build: Build) -> Result<String> {
    static CACHE: OnceLock<std::sync::Mutex<BTreeMap<String, String>>> = OnceLock::new();
    let root = build.chroot().unwrap_or_default();
    let key = format!("{build}:{}", root.display());
    let cache = CACHE.get_or_init(Default::default);
    if let Some(v) = cache.lock().unwrap().get(&key) {
        return Ok(v.clone());
    }
    let out = program(build, build.opts().server)
        .arg("--version")
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let v = text
        .split_whitespace()
        .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()) && w.contains('.'))
        .ok_or_else(|| anyhow!("cannot read the {build} version from {text:?}"))?
        .to_string();
    cache.lock().unwrap().insert(key, v.clone());
    Ok(v)
}

/// A path as the server sees it (inside the chroot for a chroot build).
pub(crate) fn server_path(build: Build, host_path: &Path) -> PathBuf {
    match build.chroot() {
        Some(root) => Path::new("/").join(host_path.strip_prefix(&root).unwrap_or(host_path)),
        None => host_path.to_path_buf(),
    }
}

pub(crate) fn datadir_marker(build: Build, data: &Path) -> String {
    format!("--datadir={}", server_path(build, data).display())
}

pub(crate) enum Role<'a> {
    /// The one-off start of a template (no binary log).
    Template,
    /// A sandbox node.
    Node { server_id: u32, binlog: &'a str },
}

/// The command that initialises a template datadir at `data`, its messages going to `log`
/// (`out` is `log`, opened for writing).
pub(crate) fn init_command(build: Build, data: &Path, log: &Path, out: File) -> Result<Command> {
    let opts = build.opts();
    let init = &opts.init;
    let mut cmd = program(build, init.program);
    cmd.args(init.args);
    if init.resources {
        cmd.args(opts.resources);
    }
    cmd.arg(format!("--datadir={}", server_path(build, data).display()));
    match init.log {
        InitLog::Output => {
            cmd.stdout(out.try_clone()?).stderr(out);
        }
        InitLog::LogError => {
            cmd.arg(format!("--log-error={}", server_path(build, log).display()))
                .stdout(Stdio::null())
                .stderr(Stdio::null());
        }
    }
    Ok(cmd)
}

/// The options of a server on `data` with its socket, pid file and error log in `dir`.
pub(crate) fn instance_args(
    build: Build,
    dir: &Path,
    data: &Path,
    port: u16,
    role: &Role,
) -> Vec<String> {
    let opts = build.opts();
    let sp = |p: &Path| server_path(build, p).display().to_string();
    let mut args: Vec<String> = vec![
        "--no-defaults".into(),
        datadir_marker(build, data),
        format!("--port={port}"),
        "--bind-address=127.0.0.1".into(),
        format!("--socket={}", sp(&dir.join("mysqld.sock"))),
        format!("--pid-file={}", sp(&dir.join("mysqld.pid"))),
        format!("--log-error={}", sp(&dir.join("error.log"))),
        // A private tmpdir: a server starting up deletes every `#sql*` file in its tmpdir, so
        // in a shared /tmp each new sandbox destroyed the running servers' temporary tables
        // ("Error on delete of '/tmp/#sql-temptable-…'", dropped sessions).
        format!("--tmpdir={}", sp(dir)),
        "--user=root".into(),
        "--skip-name-resolve".into(),
        "--max-allowed-packet=64M".into(),
    ];
    args.extend(opts.resources.iter().map(|s| s.to_string()));
    args.extend(opts.always.iter().map(|s| s.to_string()));
    match role {
        Role::Template => {
            args.push("--server-id=1".into());
            args.push(opts.no_binlog.into());
        }
        Role::Node { server_id, binlog } => {
            args.extend([
                format!("--server-id={server_id}"),
                format!("--log-bin={binlog}"),
                "--binlog-format=ROW".into(),
            ]);
            let id = server_id.to_string();
            args.extend(opts.node.iter().map(|s| s.replace("{server_id}", &id)));
        }
    }
    args
}

pub(crate) fn server_command(build: Build, args: &[String]) -> Command {
    let mut cmd = program(build, build.opts().server);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Own process group: terminal signals aimed at a test run or a demo script do not
        // reach the servers; they are stopped by PID only.
        .process_group(0);
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::mysql_chroot;

    fn argv(cmd: &Command) -> Vec<String> {
        std::iter::once(cmd.get_program())
            .chain(cmd.get_args())
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// The options every start begins with, for an instance in `/s/n2` (as the server sees it).
    fn common(port: &str) -> Vec<String> {
        strs(&[
            "--no-defaults",
            "--datadir=/s/n2/data",
            port,
            "--bind-address=127.0.0.1",
            "--socket=/s/n2/mysqld.sock",
            "--pid-file=/s/n2/mysqld.pid",
            "--log-error=/s/n2/error.log",
            "--tmpdir=/s/n2",
            "--user=root",
            "--skip-name-resolve",
            "--max-allowed-packet=64M",
        ])
    }

    /// The command lines as they were before the options became tables.
    #[test]
    fn mariadb_command_lines() {
        let (dir, data) = (Path::new("/s/n2"), Path::new("/s/n2/data"));
        let mut want = common("--port=3307");
        want.extend(strs(MARIADB_RESOURCES));
        want.extend(strs(&["--server-id=1", "--skip-log-bin"]));
        let got = instance_args(Build::Host, dir, data, 3307, &Role::Template);
        assert_eq!(got, want);

        let node = Role::Node {
            server_id: 2,
            binlog: "maria2-bin",
        };
        let mut want = common("--port=3308");
        want.extend(strs(MARIADB_RESOURCES));
        want.extend(strs(&[
            "--server-id=2",
            "--log-bin=maria2-bin",
            "--binlog-format=ROW",
            "--log-slave-updates",
            "--gtid-domain-id=2",
        ]));
        assert_eq!(instance_args(Build::Host, dir, data, 3308, &node), want);

        let cmd = server_command(Build::Host, &strs(&["--x"]));
        let want = vec![host_binary("mariadbd").display().to_string(), "--x".into()];
        assert_eq!(argv(&cmd), want);
    }

    #[test]
    fn mysql_command_lines() {
        // MySQL paths are as seen inside the chroot.
        let root = mysql_chroot();
        let (dir, data) = (root.join("s/n2"), root.join("s/n2/data"));
        let mut want = common("--port=3309");
        want.extend(strs(MYSQL_RESOURCES));
        want.extend(strs(&[
            "--mysqlx=OFF",
            "--secure-file-priv=",
            "--server-id=1",
            "--disable-log-bin",
        ]));
        let got = instance_args(Build::MySql, &dir, &data, 3309, &Role::Template);
        assert_eq!(got, want);

        let node = Role::Node {
            server_id: 2,
            binlog: "mysql2-bin",
        };
        let mut want = common("--port=3310");
        want.extend(strs(MYSQL_RESOURCES));
        want.extend(strs(&[
            "--mysqlx=OFF",
            "--secure-file-priv=",
            "--server-id=2",
            "--log-bin=mysql2-bin",
            "--binlog-format=ROW",
            "--log-replica-updates=ON",
            "--gtid-mode=ON",
            "--enforce-gtid-consistency=ON",
        ]));
        assert_eq!(instance_args(Build::MySql, &dir, &data, 3310, &node), want);

        let cmd = server_command(Build::MySql, &strs(&["--x"]));
        let want = vec![
            "chroot".into(),
            root.display().to_string(),
            "mysqld".into(),
            "--x".into(),
        ];
        assert_eq!(argv(&cmd), want);
    }

    /// MariaDB 11.8: 10.11's options (nothing more: the server's defaults otherwise), run in
    /// its own chroot and with paths as seen inside it.
    #[test]
    fn mariadb_118_command_lines() {
        let root = Build::MariaDb118.chroot().unwrap();
        assert!(root.ends_with("mariadb-11.8-chroot"), "{}", root.display());
        let (dir, data) = (root.join("s/n2"), root.join("s/n2/data"));
        let node = Role::Node {
            server_id: 2,
            binlog: "maria2-bin",
        };
        let got = instance_args(Build::MariaDb118, &dir, &data, 3308, &node);
        assert_eq!(
            got,
            instance_args(
                Build::Host,
                Path::new("/s/n2"),
                Path::new("/s/n2/data"),
                3308,
                &node
            )
        );
        assert!(!got.iter().any(|a| a.contains("legacy")), "{got:?}");

        chroot_mariadb_runs_in_its_chroot(Build::MariaDb118, &root);
    }

    /// A chroot build of MariaDB runs its server and `mariadb-install-db` inside `root`, with
    /// the same install options as the host's.
    fn chroot_mariadb_runs_in_its_chroot(build: Build, root: &Path) {
        let cmd = server_command(build, &strs(&["--x"]));
        let want = vec![
            "chroot".into(),
            root.display().to_string(),
            "mariadbd".into(),
            "--x".into(),
        ];
        assert_eq!(argv(&cmd), want);

        let tmp = std::env::temp_dir().join(format!(
            "replmend-sandbox-init-{build:?}-{}",
            std::process::id()
        ));
        let (data, log) = (root.join("t/data"), root.join("t/init.log"));
        let cmd = init_command(build, &data, &log, File::create(&tmp).unwrap());
        let mut want = vec!["chroot".into(), root.display().to_string()];
        want.extend(strs(&[
            "mariadb-install-db",
            "--no-defaults",
            "--user=root",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            "--datadir=/t/data",
        ]));
        assert_eq!(argv(&cmd.unwrap()), want);
        let _ = std::fs::remove_file(&tmp);
    }

    /// MariaDB 10.5: likewise 10.11's options (it knows every one), in its own chroot.
    #[test]
    fn mariadb_105_command_lines() {
        let root = Build::MariaDb105.chroot().unwrap();
        assert!(root.ends_with("mariadb-10.5-chroot"), "{}", root.display());
        let (dir, data) = (root.join("s/n2"), root.join("s/n2/data"));
        for role in [
            Role::Template,
            Role::Node {
                server_id: 2,
                binlog: "maria2-bin",
            },
        ] {
            let host = instance_args(
                Build::Host,
                Path::new("/s/n2"),
                Path::new("/s/n2/data"),
                3308,
                &role,
            );
            assert_eq!(
                instance_args(Build::MariaDb105, &dir, &data, 3308, &role),
                host
            );
        }

        chroot_mariadb_runs_in_its_chroot(Build::MariaDb105, &root);
    }

    #[test]
    fn init_command_lines() {
        let tmp =
            std::env::temp_dir().join(format!("replmend-sandbox-init-{}", std::process::id()));
        let out = || File::create(&tmp).unwrap();

        let cmd = init_command(
            Build::Host,
            Path::new("/t/data"),
            Path::new("/t/init.log"),
            out(),
        );
        let mut want = vec![host_binary("mariadb-install-db").display().to_string()];
        want.extend(strs(&[
            "--no-defaults",
            "--user=root",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            "--datadir=/t/data",
        ]));
        assert_eq!(argv(&cmd.unwrap()), want);

        let root = mysql_chroot();
        let (data, log) = (root.join("t/data"), root.join("t/init.log"));
        let cmd = init_command(Build::MySql, &data, &log, out());
        let mut want = vec!["chroot".into(), root.display().to_string()];
        want.extend(strs(&[
            "mysqld",
            "--no-defaults",
            "--initialize-insecure",
            "--user=root",
        ]));
        want.extend(strs(MYSQL_RESOURCES));
        want.extend(strs(&["--datadir=/t/data", "--log-error=/t/init.log"]));
        assert_eq!(argv(&cmd.unwrap()), want);
        let _ = std::fs::remove_file(&tmp);
    }

    /// `resource_args` as it was, spelled out so that the tables cannot drift unnoticed.
    const MARIADB_RESOURCES: &[&str] = &[
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
    ];
    const MYSQL_RESOURCES: &[&str] = &[
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
    ];
}
