//! The command line: parsing only. Work happens in `ops`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::conn::SslMode;
use crate::planner::{RemedyId, Winner};
use crate::vocab::TableRef;

fn parse_ssl_mode(s: &str) -> Result<SslMode, String> {
    s.parse()
        .map_err(|e: crate::conn::spec::SpecError| e.to_string())
}

fn parse_winner(s: &str) -> Result<Winner, String> {
    s.parse()
}

#[derive(Debug, Parser)]
#[command(
    name = "replmend",
    version,
    about = "Diagnose and repair MySQL/MariaDB replication stopped by duplicate-key (1062) and missing-row (1032) errors",
    long_about = "replmend finds the transaction a replica failed on, decodes its rows from the source's binlog, \
compares them with both nodes' current rows, and proposes ranked, journaled remedies.\n\n\
Connection options follow the mysql client: -h/-P/-u/-S/-p, MYSQL_PWD, ~/.my.cnf ([client] and [replmend] groups), \
--login-path (~/.mylogin.cnf, written by mysql_config_editor), or a DSN mysql://user[:password]@host:port. \
TLS as the mysql client: PREFERRED by default, --ssl-mode/--ssl-ca/--ssl-cert/--ssl-key. Passwords are never printed.",
    after_help = "Examples:\n  replmend status --replica mysql://root@127.0.0.1:3307\n  \
replmend status -h db2.example -u dba -p --format json\n\n\
Exit codes: 0 healthy/success, 3 a channel stopped on an applier error, 4 not running (no applier error), \
5 not a replica, 6 unreachable, 7 access denied, 8 bad input, 9 error not diagnosable, 10 refused, \
11 drift (verify, resync), 12 TLS failed. See docs/exit-codes.md.",
    disable_help_flag = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Print a man page or a shell completion script, generated from these very options,
    /// and exit (`replmend --generate man > /usr/local/share/man/man1/replmend.1`).
    #[arg(long, value_enum, value_name = "KIND")]
    pub generate: Option<Generate>,

    /// Output format: human-readable text, or a stable, versioned JSON document (docs/json.md);
    /// `report` also writes markdown (its text) and html.
    #[arg(long, global = true, value_enum, default_value_t = Format::Text, env = "REPLMEND_FORMAT")]
    pub format: Format,

    /// Colour: auto (only on a terminal), always, never. NO_COLOR is honoured.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    /// Print help (-h is --host, as in the mysql client).
    #[arg(long, global = true, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Generate {
    Man,
    CompleteBash,
    CompleteZsh,
    CompleteFish,
    CompletePowershell,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    /// `report` only (its default, as text).
    Markdown,
    /// `report` only: one self-contained HTML file.
    Html,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show every replication channel of a replica: threads, last errors, coordinates, GTIDs, lag.
    ///
    /// Exit code 0 when all channels are healthy, 3 when one is stopped on an applier error,
    /// 4 when one is stopped without one.
    Status(StatusArgs),

    /// Find the transaction a stopped replica failed on, decode its rows from the source's
    /// binlog, and compare the conflicting rows on both nodes, column by column.
    ///
    /// The source is found from the replica's status and reached with the replica's
    /// credentials unless --source is given. In a dual-master pair both directions are
    /// diagnosed together. Exit code 3 when an incident was diagnosed, 0 when there is none,
    /// 9 when the error is not a row conflict replmend handles.
    Diagnose(DiagnoseArgs),

    /// Diagnose, then rank the remedies the playbooks offer (with what each loses) and show
    /// the recommended plan's exact SQL per node. Changes nothing.
    Plan(PlanArgs),

    /// Apply a remedy: interactively (a wizard, when stdin is a terminal), or scripted with
    /// --yes. Every row changed or deleted is journaled first; --dry-run changes nothing.
    #[command(
        after_help = "Examples:\n  replmend repair --replica mysql://root@db2:3306 --dry-run\n  replmend repair --replica mysql://root@db2:3306 --yes --remedy overwrite --winner source\n  replmend repair --replica … --yes --remedy overwrite --until-healthy --max 500"
    )]
    Repair(RepairArgs),

    /// List the playbooks (embedded, plus --playbooks DIR), or show one by id.
    Playbooks(PlaybooksArgs),

    /// Put rows from a repair journal back on the nodes they came from, newest first.
    ///
    /// Connects to each journaled node with the credentials given (-u, MYSQL_PWD, option file);
    /// a row already equal to its journaled image is left alone, so running it twice is safe.
    Restore(RestoreArgs),

    /// Compare whole tables between a replica and its source (or the two nodes of a
    /// dual-master pair): chunked strong checksums on both servers at once, differing chunks
    /// narrowed down to the exact rows missing, extra or different on the replica.
    ///
    /// A row counts as drift only if it still differs after the replica has caught up with
    /// what the source had committed (rechecked a bounded number of times). Reads only.
    /// Exit code 0 when identical, 11 when drift is found.
    ///
    /// A fleet: `--source` with no replica named compares every replica the source lists
    /// (`--replica` repeated: those replicas) in one pass, each chunk hashed once on the source;
    /// `resync --from` its JSON report fixes each drifted replica.
    #[command(after_help = "Examples:
  replmend verify --replica mysql://root@db2:3306
  replmend verify --replica mysql://root@db2 --tables shop.orders,shop.items --format json > drift.json
  replmend verify --replica mysql://root@db2 --resume   # continue a verify that was stopped
  replmend verify --source mysql://root@db1 --format json > fleet.json
  replmend resync --from fleet.json --dry-run")]
    Verify(VerifyCmd),

    /// Make the replica's rows equal to its source's (or, in a dual-master pair, the loser's to
    /// the winner's): verify, plan the exact SQL per row, confirm, then apply with every row
    /// journaled first (`restore` undoes it) and the binary log off.
    #[command(
        after_help = "Examples:\n  replmend resync --replica mysql://root@db2 --tables shop.orders --dry-run\n  replmend resync --replica mysql://root@db2 --from drift.json --yes"
    )]
    Resync(ResyncArgs),

    /// Watch replicas as a daemon: every channel polled (default every 0.25 s), each new
    /// applier error diagnosed, resolved only when the policy allows it (by default only a
    /// skip that loses nothing), everything else reported for a human. Every repair goes
    /// through the same lock, re-check, preflight, journal and verification as `repair`.
    ///
    /// Events are printed one per line (JSON lines with --format json) and given to --hook
    /// commands on stdin. SIGTERM/SIGINT finish the current repair, then exit 0.
    #[command(
        after_help = "Examples:\n  replmend watch --replica mysql://repl_admin@db2:3306 --metrics-addr 9104\n  replmend watch --replica mysql://a@db1 --replica mysql://a@db2 --policy /etc/replmend/watch.json --hook /usr/local/bin/page-dba"
    )]
    Watch(WatchArgs),

    /// Write an incident's postmortem from a repair's (or resync's) journal: a timeline (when
    /// the applier stopped, the diagnosis, each step with its time and result), the cause and
    /// origin, each changed row before and after, what was lost, and the verification.
    ///
    /// --format markdown (the default; pastes into a ticket), html (one self-contained file,
    /// readable on a phone and printable) or json. Reads the journal only. Exit code 8 when
    /// the journal is missing, is not a journal, or has no such incident.
    #[command(
        after_help = "Examples:\n  replmend report ~/.local/state/replmend/journal-2026-12-07.jsonl > incident.md\n  replmend report J --incident 3f2a9c --format html -o incident.html"
    )]
    Report(ReportArgs),
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The journal (JSON lines) a repair or resync wrote.
    pub journal: PathBuf,

    /// Only this incident: its fingerprint (as repair prints it), or a prefix only it has.
    /// Default: every incident of the journal, in order.
    #[arg(long, value_name = "ID")]
    pub incident: Option<String>,

    /// Write the report to FILE (created 0600: it holds rows) instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// A replica to watch, as a DSN; repeat for several (watch both nodes of a dual-master
    /// pair). Default: the server -h/-P/-S name.
    #[arg(
        long = "replica",
        value_name = "DSN",
        env = "REPLMEND_REPLICA",
        hide_env_values = true
    )]
    pub replicas: Vec<String>,

    #[command(flatten)]
    pub conn: ConnOpts,

    /// What may be resolved without a human (docs/watch.md). Default: only skips that lose
    /// nothing.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,

    /// A command run (by /bin/sh) for every event, with the event's JSON on stdin and
    /// REPLMEND_EVENT set to its kind. Repeatable.
    #[arg(long, value_name = "CMD")]
    pub hook: Vec<String>,

    /// Serve Prometheus metrics at http://ADDR/metrics: PORT or :PORT (127.0.0.1), or HOST:PORT.
    #[arg(long, value_name = "[HOST:]PORT")]
    pub metrics_addr: Option<String>,

    /// The journal file. Default: ~/.local/state/replmend/journal-DATE.jsonl at each repair.
    #[arg(long, value_name = "PATH")]
    pub journal: Option<PathBuf>,

    /// Write each handled incident's postmortem (as `replmend report` writes it: Markdown
    /// and HTML, 0600) into this directory, created if missing.
    #[arg(long, value_name = "DIR")]
    pub reports: Option<PathBuf>,

    /// How much of each node's binary log the search for an incident's conflicting rows'
    /// writers (its cause, in the `cause` event, the journal and the report) may read, per
    /// node: bytes (K/M/G) and/or seconds. The watcher searches after it decided and acted,
    /// while that replica's polling waits: smaller than diagnose's `256M,10s` so a slow
    /// search cannot hold the next incident back for long; `0` skips the search.
    #[arg(long, value_name = "BYTES,SECONDS", default_value = "64M,2s")]
    pub origin_budget: crate::binlog::origin::Budget,

    /// Seconds between two looks at a replica's channels.
    #[arg(long, default_value_t = 0.25, value_name = "SECONDS")]
    pub interval: f64,

    /// Seconds between two errant-GTID checks (each connects to the sources).
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    pub errant_interval: f64,

    /// Seconds a repair waits for the replica to catch up.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,

    /// Seconds a diagnosis may take (a node that accepts connections but does not answer)
    /// before the incident is left for a human.
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
    pub diagnose_timeout: f64,

    /// Observe only: diagnose and report what the policy would do, change nothing (to try a
    /// policy on a production replica before letting it act).
    #[arg(long, alias = "print")]
    pub dry_run: bool,

    /// A directory of playbooks (*.json) adding to or overriding the embedded ones by id.
    #[arg(long, value_name = "DIR", env = "REPLMEND_PLAYBOOKS")]
    pub playbooks: Option<PathBuf>,
}

/// `db.table`, or with backquotes around names holding dots: `` `my.db`.`t` ``.
fn parse_table(s: &str) -> Result<TableRef, String> {
    let bad = || format!("{s:?} is not DATABASE.TABLE (quote names holding a dot: `my.db`.`t`)");
    let (db, rest) = match s.strip_prefix('`') {
        Some(q) => {
            let end = q.find("`.").ok_or_else(bad)?;
            (q[..end].to_string(), &q[end + 2..])
        }
        None => {
            let (db, rest) = s.split_once('.').ok_or_else(bad)?;
            (db.to_string(), rest)
        }
    };
    let name = match rest.strip_prefix('`') {
        Some(q) => q.strip_suffix('`').ok_or_else(bad)?.to_string(),
        None => rest.to_string(),
    };
    if db.is_empty() || name.is_empty() {
        return Err(bad());
    }
    Ok(TableRef { schema: db, name })
}

#[cfg(test)]
mod table_tests {
    use super::parse_table;

    #[test]
    fn tables_with_and_without_backquotes() {
        let t = parse_table("shop.orders").unwrap();
        assert_eq!((t.schema.as_str(), t.name.as_str()), ("shop", "orders"));
        let t = parse_table("`my.db`.`we.ird`").unwrap();
        assert_eq!((t.schema.as_str(), t.name.as_str()), ("my.db", "we.ird"));
        let t = parse_table("`my.db`.t").unwrap();
        assert_eq!((t.schema.as_str(), t.name.as_str()), ("my.db", "t"));
        assert!(parse_table("orders").is_err());
        assert!(parse_table("shop.").is_err());
        assert!(parse_table("`shop.orders").is_err());
    }
}

/// `replmend verify`: what to compare, and whether to continue a stopped verify.
#[derive(Debug, Args, Clone)]
pub struct VerifyCmd {
    #[command(flatten)]
    pub verify: VerifyArgs,

    /// Continue the last verify of the same nodes and tables that was stopped (Ctrl-C,
    /// killed, a lost connection) from where it got to, instead of from the first row.
    /// Tables it finished keep their result; rows compared before the stop are not read
    /// again (a change to them since is not seen: the report says so).
    #[arg(long)]
    pub resume: bool,
}

/// Which tables verify compares and how it walks them.
#[derive(Debug, Args, Clone)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub replica: ReplicasConn,

    /// The node to compare with, as a DSN. Default: the replica's source (the address in its
    /// status, with the replica's credentials). With no replica named (no --replica, -h, -P
    /// or -S): the whole fleet, every replica this source lists, reached with its credentials.
    #[arg(
        long,
        value_name = "DSN",
        env = "REPLMEND_SOURCE",
        hide_env_values = true
    )]
    pub source: Option<String>,

    /// Only these databases (comma-separated). Default: all but the system schemas.
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub databases: Vec<String>,

    /// Only these tables (comma-separated DB.TABLE).
    #[arg(long, value_delimiter = ',', value_name = "DB.TABLE,…", value_parser = parse_table)]
    pub tables: Vec<TableRef>,

    /// Leave these tables out (comma-separated DB.TABLE).
    #[arg(long, value_delimiter = ',', value_name = "DB.TABLE,…", value_parser = parse_table)]
    pub ignore_tables: Vec<TableRef>,

    /// Tables compared at once.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub threads: usize,

    /// Rows per chunk.
    #[arg(long, default_value_t = 5000, value_name = "ROWS")]
    pub chunk_size: usize,

    /// Adapt the chunk size so one chunk takes about this long.
    #[arg(long, value_name = "SECONDS")]
    pub chunk_time: Option<f64>,

    /// Pause while the replica (any replica of a fleet) is more than this many seconds behind.
    #[arg(long, value_name = "SECONDS")]
    pub max_lag: Option<f64>,

    /// Before differing rows are judged, wait for the replica to apply what its source had
    /// written, at most this long each time (up to three waits per batch of rows), from 1 to 50
    /// seconds; once a wait has run out, the next ones last a second until the replica catches
    /// up. A row still differing after a timed-out wait is reported as not judged.
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
    pub wait_timeout: f64,
}

#[derive(Debug, Args)]
pub struct ResyncArgs {
    #[command(flatten)]
    pub verify: VerifyArgs,

    /// Resync the drift of a `verify --format json` report (or of a `repair --verify-table
    /// --format json` report's verify) instead of verifying again (each row is still read
    /// again and checked just before it is written). With no node named (no DSN, -h, -P, -S
    /// or --source), the nodes are the report's. A fleet verify's report: each drifted replica
    /// fixed on its own (its own preflight, lock, confirmation and journal: --journal with the
    /// replica's address added to the file name).
    #[arg(long, value_name = "VERIFY.json")]
    pub from: Option<PathBuf>,

    /// Whose rows win: `source` (the replica is made equal to it), `replica` (dual-master: the
    /// source is made equal to the replica), or `newest:COLUMN` (dual-master: per row, the
    /// version with the larger COLUMN; a row on one node only is copied to the other).
    #[arg(
        long,
        default_value = "source",
        value_name = "source|replica|newest:COLUMN",
        value_parser = clap::builder::ValueParser::new(parse_winner)
    )]
    pub winner: Winner,

    /// Show the plan (the exact SQL per node) and change nothing.
    #[arg(long, alias = "print")]
    pub dry_run: bool,

    /// Apply without asking (scripts).
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Turn read_only / super_read_only off on the written node just for replmend's writes.
    #[arg(long)]
    pub lift_read_only: bool,

    /// Write even though a written node's applier is stopped with events still in its relay
    /// log (they will stop it with 1062/1032 when it starts), or rows may still be on their way
    /// (a receiver between the nodes not receiving, or a replica that replicates from another
    /// server than the source named): they would be overwritten. Default: refuse.
    #[arg(long)]
    pub allow_pending_relay: bool,

    /// Write tables that have triggers on the written node (they fire on replmend's DELETE
    /// and INSERT, binary log off or not). Default: refuse, naming them.
    #[arg(long)]
    pub allow_triggers: bool,

    /// Write the rows with the binary log on where it cannot be turned off for a session (a
    /// managed service: RDS, Azure), each change logged there with that node's own GTID (an
    /// errant transaction). The plan states the consequence and the follow-up. Default: the
    /// preflight refuses.
    #[arg(long)]
    pub allow_errant_gtid: bool,

    /// The journal file (default: ~/.local/state/replmend/journal-<time>.jsonl).
    #[arg(long, value_name = "PATH")]
    pub journal: Option<PathBuf>,

    /// Fix what the last `verify` of the same nodes and tables found, when it finished at
    /// most this many seconds ago, instead of hashing every table again (each row it names is
    /// still read again just before it is written; drift newer than that verify is not
    /// seen). 0: always verify again.
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub reuse_verify: u64,
}

/// How a remedy is chosen.
#[derive(Debug, Args, Clone)]
pub struct PolicyArgs {
    /// The remedy. Default: the recommended one.
    #[arg(long, value_enum, value_name = "REMEDY")]
    pub remedy: Option<RemedyId>,

    /// Dual-master: whose row both nodes keep. `source` is the node whose event failed on
    /// this replica; `newest:COLUMN` picks the version with the larger COLUMN.
    #[arg(
        long,
        default_value = "source",
        value_name = "source|replica|newest:COLUMN",
        value_parser = clap::builder::ValueParser::new(parse_winner)
    )]
    pub winner: Winner,

    /// Turn read_only / super_read_only off on a node just for replmend's row writes, and back
    /// on right after (explicit plan steps; restored on error and by a re-run after a crash).
    #[arg(long)]
    pub lift_read_only: bool,

    /// Write rows of tables that have triggers on the written node (they fire on replmend's
    /// DELETE and INSERT). Default: the preflight refuses, naming them.
    #[arg(long)]
    pub allow_triggers: bool,

    /// A directory of playbooks (*.json) adding to or overriding the embedded ones by id.
    #[arg(long, value_name = "DIR", env = "REPLMEND_PLAYBOOKS")]
    pub playbooks: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub target: DiagnoseArgs,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

#[derive(Debug, Args)]
pub struct RepairArgs {
    #[command(flatten)]
    pub target: DiagnoseArgs,
    #[command(flatten)]
    pub policy: PolicyArgs,

    /// Show the diagnosis, the ranked remedies and the plan's SQL; change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Apply without asking (scripted mode). Without it and without a terminal, nothing is done.
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Allow a remedy that loses rows or versions (skip, keep, inject-gtid on differing rows).
    #[arg(long)]
    pub allow_data_loss: bool,

    /// Allow row changes logged with the replica's own GTID (an errant transaction) where the
    /// binary log cannot be turned off for a session (a managed service: RDS, Azure). The plan
    /// states the consequence and the follow-up. Default: the preflight refuses.
    #[arg(long)]
    pub allow_errant_gtid: bool,

    /// The journal file (JSON lines). Default: ~/.local/state/replmend/journal-DATE.jsonl.
    #[arg(long, value_name = "PATH")]
    pub journal: Option<PathBuf>,

    /// Once repaired, verify the incident's table(s) between the two nodes (as `replmend
    /// verify --tables`); exit code 11 when they still differ.
    #[arg(long)]
    pub verify_table: bool,

    /// Keep resolving conflicts with the same policy until replication is healthy; stop at
    /// the first incident the policy does not cover.
    #[arg(long)]
    pub until_healthy: bool,

    /// With --until-healthy: at most this many incidents.
    #[arg(long, default_value_t = 100)]
    pub max: usize,

    /// Seconds to wait for a replica to catch up after a remedy.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct PlaybooksArgs {
    /// Show only this playbook.
    pub id: Option<String>,

    /// A directory of playbooks adding to or overriding the embedded ones.
    #[arg(long, value_name = "DIR", env = "REPLMEND_PLAYBOOKS")]
    pub playbooks: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The journal file (JSON lines) written by `replmend repair`.
    pub journal: PathBuf,

    /// Only entries of the plan with this fingerprint.
    #[arg(long)]
    pub fingerprint: Option<String>,

    /// Show what would be restored, change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Also overwrite a row that differs from the version the repair left (the row found is
    /// journaled first, as every row restore changes).
    #[arg(long)]
    pub force: bool,

    /// Where restore journals every row it changes before changing it (so a restore can
    /// itself be restored). Default: a new journal (~/.local/state/replmend/journal-<time>.jsonl).
    #[arg(long, value_name = "PATH")]
    pub journal_to: Option<PathBuf>,

    /// Turn read_only / super_read_only off on a written node just for replmend's writes.
    #[arg(long)]
    pub lift_read_only: bool,

    /// Write tables that have triggers on the written node. Default: refuse, naming them.
    #[arg(long)]
    pub allow_triggers: bool,

    /// Put changes back with the binary log on where it cannot be turned off for a session (a
    /// managed service), logged there with that node's own GTID (an errant transaction).
    /// Default: the preflight refuses.
    #[arg(long)]
    pub allow_errant_gtid: bool,

    #[command(flatten)]
    pub creds: ReplicaConn,
}

#[derive(Debug, Args, Clone)]
pub struct DiagnoseArgs {
    #[command(flatten)]
    pub replica: ReplicaConn,

    /// The source, as a DSN, when it is not reachable at the address the replica uses.
    #[arg(
        long,
        value_name = "DSN",
        env = "REPLMEND_SOURCE",
        hide_env_values = true
    )]
    pub source: Option<String>,

    /// The replication channel (MySQL) or connection name (MariaDB); default: the stopped one.
    #[arg(long)]
    pub channel: Option<String>,

    /// How much of each node's binary log the search for the conflicting rows' writers may
    /// read: bytes (K/M/G) and/or seconds, per node, e.g. `1G,30s`. `repair` searches too,
    /// before it changes anything, so that its journal records the cause for `replmend
    /// report`; `--origin-budget 0` skips the search there.
    #[arg(long, value_name = "BYTES,SECONDS", default_value = "256M,10s")]
    pub origin_budget: crate::binlog::origin::Budget,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub replica: ReplicaConn,

    /// Only this replication channel (MySQL) or connection name (MariaDB); the exit code is
    /// then that channel's.
    #[arg(long, conflicts_with = "topology")]
    pub channel: Option<String>,

    /// The whole topology around this node: its sources, the replicas that replicate from
    /// it (SHOW REPLICAS / SHOW SLAVE HOSTS, the binlog dump threads otherwise) and theirs, as
    /// a tree with each node's health, lag and errant GTIDs. Every node is reached with this
    /// node's credentials.
    #[arg(long)]
    pub topology: bool,

    /// With --topology: how many hops from this node to follow.
    #[arg(long, default_value_t = 3, requires = "topology", value_name = "HOPS")]
    pub depth: usize,
}

/// How to reach the replica. Same meaning as the mysql client's options.
#[derive(Debug, Args, Clone)]
pub struct ReplicaConn {
    /// The replica, as mysql://user[:password]@host[:port] (prefer MYSQL_PWD or -p for the password).
    #[arg(
        long,
        env = "REPLMEND_REPLICA",
        value_name = "DSN",
        hide_env_values = true
    )]
    pub replica: Option<String>,

    #[command(flatten)]
    pub opts: ConnOpts,
}

/// The replicas verify and resync compare with one source: one, as for the other commands, or
/// several (`--replica` repeated: a fleet).
#[derive(Debug, Args, Clone)]
pub struct ReplicasConn {
    /// A replica, as mysql://user[:password]@host[:port]; repeat to compare several with the
    /// source in one pass.
    #[arg(
        long = "replica",
        env = "REPLMEND_REPLICA",
        value_name = "DSN",
        hide_env_values = true
    )]
    pub replicas: Vec<String>,

    #[command(flatten)]
    pub opts: ConnOpts,
}

/// The mysql client's connection options, for whichever server the DSN (or -h) names.
#[derive(Debug, Args, Clone)]
pub struct ConnOpts {
    /// Host of the replica (when no DSN is given).
    #[arg(short = 'h', long)]
    pub host: Option<String>,

    /// Port of the replica.
    #[arg(short = 'P', long)]
    pub port: Option<u16>,

    /// User name; defaults to the option file's, then the login name.
    #[arg(short = 'u', long)]
    pub user: Option<String>,

    /// Unix socket of the replica.
    #[arg(short = 'S', long)]
    pub socket: Option<PathBuf>,

    /// Ask for the password at a hidden prompt (otherwise MYSQL_PWD, then the option file).
    #[arg(short = 'p', long = "password")]
    pub ask_password: bool,

    /// Read options from this file only ([client] and [replmend] groups), like the mysql client.
    #[arg(long, value_name = "FILE")]
    pub defaults_file: Option<PathBuf>,

    /// Do not read ~/.my.cnf (the login file is still read, as by the mysql client).
    #[arg(long)]
    pub no_defaults: bool,

    /// Read this login path from ~/.mylogin.cnf (written by mysql_config_editor; the file
    /// MYSQL_TEST_LOGIN_FILE names, if set), over ~/.my.cnf's values.
    #[arg(long, value_name = "NAME")]
    pub login_path: Option<String>,

    /// TLS, as the mysql client: PREFERRED (the default: TLS when the server offers it,
    /// without checking its certificate), DISABLED, REQUIRED, VERIFY_CA (the certificate must
    /// be signed by --ssl-ca) or VERIFY_IDENTITY (and issued for the host connected to).
    #[arg(long, value_name = "MODE", value_parser = parse_ssl_mode)]
    pub ssl_mode: Option<SslMode>,

    /// CA certificate (PEM) that signed the server's, for VERIFY_CA / VERIFY_IDENTITY.
    #[arg(long, value_name = "FILE")]
    pub ssl_ca: Option<PathBuf>,

    /// Client certificate (PEM), for accounts created REQUIRE X509 / SUBJECT / ISSUER.
    #[arg(long, value_name = "FILE")]
    pub ssl_cert: Option<PathBuf>,

    /// The client certificate's private key (PEM).
    #[arg(long, value_name = "FILE")]
    pub ssl_key: Option<PathBuf>,
}
