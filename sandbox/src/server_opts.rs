//! What differs between the builds' servers, as data: the binary, where it runs, the options
//! every start gets, the options of each role, and how a template datadir is initialised.
//! `server.rs` builds the command lines from these tables.

use crate::flavor::Build;

/// How one build's server is run, configured and initialised.
pub(crate) struct ServerOpts {
    /// The server binary.
    pub(crate) server: &'static str,
    /// The debootstrap chroot (a directory of the cache, see `scripts/install-deps`) the
    /// build's programs run in, seeing paths relative to it; `None`: on the host.
    pub(crate) chroot: Option<&'static str>,
    /// Small memory, fast durability settings (the data is thrown away): used for the template
    /// and for every instance so that nothing is resized at startup.
    pub(crate) resources: &'static [&'static str],
    /// Every start (template and node), after `resources`.
    pub(crate) always: &'static [&'static str],
    /// The template's one-off start runs without a binary log.
    pub(crate) no_binlog: &'static str,
    /// A node's replication options, after `--server-id`, `--log-bin` and `--binlog-format`;
    /// `{server_id}` is replaced by the node's server id.
    pub(crate) node: &'static [&'static str],
    /// Making the template datadir.
    pub(crate) init: DatadirInit,
}

/// The command that makes a fresh datadir: `program args… [resources…] --datadir=…`.
pub(crate) struct DatadirInit {
    /// Run like the server: on the host, or inside the chroot.
    pub(crate) program: &'static str,
    pub(crate) args: &'static [&'static str],
    /// Whether [`ServerOpts::resources`] are passed as well.
    pub(crate) resources: bool,
    pub(crate) log: InitLog,
}

/// Where the init command's messages go (`init.log` in the template directory).
pub(crate) enum InitLog {
    /// Its stdout and stderr.
    Output,
    /// A `--log-error=` option (after `--datadir=`); stdout and stderr are discarded.
    LogError,
}

/// The host's MariaDB 10.11.
pub(crate) static MARIADB: ServerOpts = MARIADB_COMMON;

/// MariaDB 11.8 in its chroot: the same options as 10.11 (11.8 accepts every one of them) and
/// otherwise the server's defaults; in particular `binlog_legacy_event_pos` stays OFF, so the
/// events inside a transaction carry end_log_pos 0.
pub(crate) static MARIADB_118: ServerOpts = ServerOpts {
    chroot: Some("mariadb-11.8-chroot"),
    ..MARIADB_COMMON
};

/// MariaDB 10.5 in its chroot: the same options as 10.11 (10.5 knows every one of them: its
/// error log has no unknown-option warning) and otherwise the server's defaults.
pub(crate) static MARIADB_105: ServerOpts = ServerOpts {
    chroot: Some("mariadb-10.5-chroot"),
    ..MARIADB_COMMON
};

const MARIADB_COMMON: ServerOpts = ServerOpts {
    server: "mariadbd",
    chroot: None,
    resources: &[
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
    always: &[],
    no_binlog: "--skip-log-bin",
    node: &["--log-slave-updates", "--gtid-domain-id={server_id}"],
    init: DatadirInit {
        program: "mariadb-install-db",
        args: &[
            "--no-defaults",
            "--user=root",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ],
        resources: false,
        log: InitLog::Output,
    },
};

pub(crate) static MYSQL: ServerOpts = ServerOpts {
    server: "mysqld",
    chroot: Some("mysql-chroot"),
    resources: &[
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
    always: &["--mysqlx=OFF", "--secure-file-priv="],
    no_binlog: "--disable-log-bin",
    node: &[
        "--log-replica-updates=ON",
        "--gtid-mode=ON",
        "--enforce-gtid-consistency=ON",
    ],
    init: DatadirInit {
        program: "mysqld",
        args: &["--no-defaults", "--initialize-insecure", "--user=root"],
        resources: true,
        log: InitLog::LogError,
    },
};

impl Build {
    pub(crate) fn opts(self) -> &'static ServerOpts {
        match self {
            Build::Host => &MARIADB,
            Build::MariaDb118 => &MARIADB_118,
            Build::MariaDb105 => &MARIADB_105,
            Build::MySql => &MYSQL,
        }
    }
}
