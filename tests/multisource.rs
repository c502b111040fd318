//! Multi-source replication on real servers of both flavors: n3 replicates from n1 on the
//! channel (MySQL) / named connection (MariaDB) `n1` and from n2 on `n2`. The recipe
//! `multi-source-1062` stops channel `n1` with 1062 while `n2` keeps applying. `status`,
//! `diagnose` and `repair` must see both channels, act on the stopped one only, and never stop
//! (or restart) the healthy one.

mod support;

use std::time::Duration;

use replmend_sandbox::Node;
use serde_json::Value;
use support::*;

const RECIPE: &str = "multi-source-1062";
const WAIT: Duration = Duration::from_secs(60);

fn multi_source(flavor: Flavor) -> Sandbox {
    incident(flavor, Topology::MultiSource, RECIPE)
}

/// The channel named `name` in a status report.
fn channel<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no channel {name} in {status}"))
}

fn status(sb: &Sandbox) -> (i32, Value) {
    let run = replmend(&[
        "status",
        "--replica",
        &sb.node("n3").url(),
        "--format",
        "json",
    ]);
    let code = run.code;
    (code, run.json())
}

fn one(node: &Node, sql: &str) -> Vec<Option<String>> {
    node.query_rows(sql)
        .unwrap()
        .into_iter()
        .next()
        .unwrap_or_default()
}

/// n3's row 1001 of shop_eu.orders: (customer, total).
fn row_1001(n3: &Node) -> Vec<Option<String>> {
    one(
        n3,
        "SELECT customer, total FROM shop_eu.orders WHERE id = 1001",
    )
}

const BY_HAND: &str = "written on n3 by hand";

/// What identifies the replication threads of channel `name` on n3: a thread that is
/// stopped and started again comes back under another id. MySQL names the channel of each
/// thread in performance_schema; MariaDB's processlist does not, so there every Slave_IO and
/// Slave_SQL thread id is returned (`io …`, `sql …`).
fn thread_ids(flavor: Flavor, n3: &Node, name: &str) -> Vec<String> {
    let sql = match flavor {
        Flavor::MySql => format!(
            "SELECT CONCAT('io ', THREAD_ID) FROM performance_schema.replication_connection_status \
             WHERE CHANNEL_NAME = '{name}' AND THREAD_ID IS NOT NULL \
             UNION ALL SELECT CONCAT('sql ', THREAD_ID) \
             FROM performance_schema.replication_applier_status_by_coordinator \
             WHERE CHANNEL_NAME = '{name}' AND THREAD_ID IS NOT NULL \
             UNION ALL SELECT CONCAT('worker ', THREAD_ID) \
             FROM performance_schema.replication_applier_status_by_worker \
             WHERE CHANNEL_NAME = '{name}' AND THREAD_ID IS NOT NULL"
        ),
        Flavor::MariaDb => "SELECT CONCAT(IF(COMMAND = 'Slave_IO', 'io ', 'sql '), ID) \
             FROM information_schema.PROCESSLIST WHERE COMMAND IN ('Slave_IO', 'Slave_SQL')"
            .to_string(),
    };
    let mut ids: Vec<String> = n3
        .query_rows(&sql)
        .unwrap()
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .collect();
    ids.sort();
    ids
}

/// Channel n2's threads, taken while channel n1's applier is stopped on its error.
struct N2Threads {
    flavor: Flavor,
    ids: Vec<String>,
}

impl N2Threads {
    fn take(flavor: Flavor, n3: &Node) -> N2Threads {
        let ids = thread_ids(flavor, n3, "n2");
        let want = match flavor {
            // Its receiver, coordinator and four workers.
            Flavor::MySql => 6,
            // Both receivers (n1's still runs) and n2's applier.
            Flavor::MariaDb => 3,
        };
        assert_eq!(ids.len(), want, "{flavor}: {ids:?}");
        N2Threads { flavor, ids }
    }

    /// Channel n2's threads are the very same ones: it was never stopped and restarted.
    /// `n1_restarted`: channel n1's were (MariaDB cannot tell the channels' threads apart).
    fn unchanged(&self, n3: &Node, n1_restarted: bool) {
        let now = thread_ids(self.flavor, n3, "n2");
        match self.flavor {
            Flavor::MySql => assert_eq!(now, self.ids, "channel n2 was restarted"),
            Flavor::MariaDb if !n1_restarted => {
                assert_eq!(now, self.ids, "a replication thread was restarted")
            }
            Flavor::MariaDb => {
                // Channel n1's applier was restarted (a new id), and its receiver too when the
                // plan skips there (both threads stopped): the one applier from before (n2's)
                // and n2's receiver survive.
                let kept: Vec<&String> = self.ids.iter().filter(|i| now.contains(i)).collect();
                let io = kept.iter().filter(|i| i.starts_with("io ")).count();
                let sql = kept.iter().filter(|i| i.starts_with("sql ")).count();
                assert!(
                    (1..=2).contains(&io) && sql == 1,
                    "channel n2 was restarted: before {:?}, after {now:?}",
                    self.ids
                );
            }
        }
    }
}

/// Every statement sent to n3 from now on is logged in mysql.general_log.
fn log_statements(n3: &Node) {
    n3.exec(
        "SET GLOBAL general_log = 'OFF'; TRUNCATE TABLE mysql.general_log; \
         SET GLOBAL log_output = 'TABLE'; SET GLOBAL general_log = 'ON'",
    )
    .unwrap();
}

/// The statements sent to n3 since `log_statements` that control replication or its
/// positions (STOP/START, the skip counter, gtid_slave_pos, GTID_NEXT).
fn replication_statements(n3: &Node) -> Vec<String> {
    let rows = n3
        .query_rows(
            "SELECT CONVERT(argument USING utf8mb4) AS a FROM mysql.general_log \
             WHERE command_type = 'Query' HAVING a NOT LIKE '%general_log%' \
             AND (a LIKE 'STOP SLAVE%' OR a LIKE 'START SLAVE%' OR a LIKE 'STOP REPLICA%' \
             OR a LIKE 'START REPLICA%' OR a LIKE 'STOP ALL%' OR a LIKE 'START ALL%' \
             OR a LIKE '%skip_counter%' \
             OR a LIKE '%gtid_slave_pos =%' OR a LIKE '%default_master_connection%' \
             OR a LIKE 'SET GTID_NEXT%') ORDER BY a",
        )
        .unwrap();
    n3.exec("SET GLOBAL general_log = 'OFF'").unwrap();
    rows.into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .collect()
}

/// A STOP/START statement names channel n1 (and only it).
fn names_channel_n1(flavor: Flavor, sql: &str) -> bool {
    match flavor {
        Flavor::MySql => sql.ends_with("FOR CHANNEL 'n1'"),
        Flavor::MariaDb => {
            sql.starts_with("STOP SLAVE 'n1'") || sql.starts_with("START SLAVE 'n1'")
        }
    }
}

fn status_and_diagnose(flavor: Flavor) {
    let sb = multi_source(flavor);
    let (n1, n2, n3) = (sb.node("n1"), sb.node("n2"), sb.node("n3"));
    let url = n3.url();

    // status: both channels, each with its source and its health.
    let (code, st) = status(&sb);
    assert_eq!(code, 3, "{flavor}: {st}");
    assert_eq!(
        st["channels"].as_array().unwrap().len(),
        2,
        "{flavor}: {st}"
    );
    let c1 = channel(&st, "n1");
    assert_eq!(c1["health"], "sql_error", "{flavor}: {c1}");
    assert_eq!(c1["sql_thread"], "stopped");
    assert_eq!(c1["io_thread"], "running");
    assert_eq!(c1["last_sql_error"]["number"], 1062, "{flavor}: {c1}");
    assert_eq!(c1["source_port"], n1.port);
    assert_eq!(c1["gtid_positioning"], true);
    let c2 = channel(&st, "n2");
    assert_eq!(c2["health"], "healthy", "{flavor}: {c2}");
    assert_eq!(c2["sql_thread"], "running");
    assert_eq!(c2["io_thread"], "running");
    assert!(c2["last_sql_error"].is_null(), "{flavor}: {c2}");
    assert_eq!(c2["source_port"], n2.port);
    assert_eq!(c2["gtid_positioning"], true);
    if flavor == Flavor::MySql {
        assert!(
            c1["workers"]
                .as_array()
                .unwrap()
                .iter()
                .any(|w| w["last_error"]["number"] == 1062),
            "{c1}"
        );
        assert!(
            c2["workers"]
                .as_array()
                .unwrap()
                .iter()
                .all(|w| w["last_error"].is_null()),
            "{c2}"
        );
    }
    let text = replmend(&["status", "--replica", &url]);
    assert_eq!(text.code, exit::REPLICATION_ERROR);
    assert!(
        text.stdout.contains("channel 'n1'") && text.stdout.contains("channel 'n2'"),
        "{}",
        text.stdout
    );

    // diagnose: the stopped channel, named, with the conflict; the same with --channel n1.
    let mut fingerprints = Vec::new();
    for args in [&[][..], &["--channel", "n1"][..]] {
        let mut argv = vec!["diagnose", "--replica", &url, "--format", "json"];
        argv.extend_from_slice(args);
        let run = replmend(&argv);
        assert_eq!(
            run.code,
            exit::REPLICATION_ERROR,
            "{flavor} {args:?}: {}{}",
            run.stdout,
            run.stderr
        );
        let d = run.json();
        assert_eq!(d["schema"], "replmend.diagnosis/1");
        assert_eq!(d["channel"], "n1", "{flavor} {args:?}: {d}");
        assert_eq!(d["kind"], "duplicate_on_write");
        assert_eq!(d["table"]["schema"], "shop_eu");
        assert_eq!(d["table"]["name"], "orders");
        assert_eq!(d["key"]["name"], "PRIMARY");
        assert_eq!(d["error"]["errno"], 1062);
        assert_eq!(
            d["source"]["endpoint"],
            format!("127.0.0.1:{}", n1.port),
            "{flavor}: the source of channel n1, not n2: {d}"
        );
        let conflicts = d["conflicts"].as_array().unwrap();
        assert_eq!(conflicts.len(), 1, "{flavor}: {d}");
        let c = &conflicts[0];
        assert_eq!(c["key"][0]["value"], "1001", "{flavor}: {c}");
        assert_eq!(c["verdict"]["verdict"], "differs", "{flavor}: {c}");
        assert!(c["replica_row"].to_string().contains(BY_HAND), "{c}");
        assert!(c["source_row"].to_string().contains("Zoë"), "{c}");
        assert_eq!(c["event_row"], c["source_row"]);
        assert!(d["transaction"]["gtid"].is_string(), "{flavor}: {d}");
        assert!(
            d["transaction"]["source_log_file"]
                .as_str()
                .unwrap()
                .contains("1-bin."),
            "{flavor}: n1's binary log: {d}"
        );
        // n1 does not replicate: no reverse direction.
        assert!(
            d["reverse"].is_null() || d["reverse"]["dual_master"] == false,
            "{d}"
        );
        fingerprints.push(d["fingerprint"].clone());
    }
    assert_eq!(fingerprints[0], fingerprints[1]);
    let text = replmend(&["diagnose", "--replica", &url]);
    assert_eq!(text.code, exit::REPLICATION_ERROR);
    assert!(
        text.stdout.contains("channel 'n1' from 127.0.0.1:") && text.stdout.contains("1001"),
        "{}",
        text.stdout
    );

    // The healthy channel: exit 0 and a sentence saying why there is nothing to diagnose.
    let healthy = replmend(&["diagnose", "--replica", &url, "--channel", "n2"]);
    assert_eq!(
        healthy.code,
        exit::OK,
        "{flavor}: {}{}",
        healthy.stdout,
        healthy.stderr
    );
    assert!(
        healthy
            .stderr
            .contains("channel 'n2' is not stopped on an applier error"),
        "{flavor}: {}",
        healthy.stderr
    );
    let healthy = replmend(&[
        "diagnose",
        "--replica",
        &url,
        "--channel",
        "n2",
        "--format",
        "json",
    ]);
    assert_eq!(healthy.code, exit::OK);
    assert_eq!(healthy.json()["exit_code"], 0);
    assert_eq!(healthy.json()["schema"], "replmend.diagnose-healthy/1");

    // An unknown channel is bad input (exit 8), for diagnose and repair alike.
    let unknown = replmend(&["diagnose", "--replica", &url, "--channel", "n9"]);
    assert_eq!(
        unknown.code,
        exit::BAD_INPUT,
        "{flavor}: {}{}",
        unknown.stdout,
        unknown.stderr
    );
    assert!(
        unknown.stderr.contains("no replication channel named 'n9'"),
        "{}",
        unknown.stderr
    );
    let journal = journal_path(&format!("unknown-{flavor}"));
    let unknown = replmend(&[
        "repair",
        "--replica",
        &url,
        "--channel",
        "n9",
        "--yes",
        "--journal",
        &journal,
    ]);
    assert_eq!(
        unknown.code,
        exit::BAD_INPUT,
        "{flavor}: {}{}",
        unknown.stdout,
        unknown.stderr
    );

    // repair --channel n2: that channel is healthy, nothing to do, whatever n1 is doing.
    let nothing = replmend(&[
        "repair",
        "--replica",
        &url,
        "--channel",
        "n2",
        "--yes",
        "--remedy",
        "overwrite",
        "--journal",
        &journal,
        "--format",
        "json",
    ]);
    assert_eq!(
        nothing.code,
        exit::OK,
        "{flavor}: {}{}",
        nothing.stdout,
        nothing.stderr
    );
    assert_eq!(nothing.json()["outcome"], "nothing_to_do");
    let nothing = replmend(&[
        "repair",
        "--replica",
        &url,
        "--channel",
        "n2",
        "--yes",
        "--journal",
        &journal,
    ]);
    assert_eq!(
        nothing.code,
        exit::OK,
        "{flavor}: {}{}",
        nothing.stdout,
        nothing.stderr
    );
    assert!(
        nothing
            .stdout
            .contains("channel 'n2' is healthy; nothing to repair"),
        "{}",
        nothing.stdout
    );
    assert_eq!(journaled_rows(&journal), 0);

    // Nothing of the above changed anything.
    assert_eq!(row_1001(n3)[0].as_deref(), Some(BY_HAND));
    let (_, st) = status(&sb);
    assert_eq!(channel(&st, "n1")["health"], "sql_error");
    assert_eq!(channel(&st, "n2")["health"], "healthy");
}

#[test]
fn status_and_diagnose_name_the_stopped_channel_mariadb() {
    status_and_diagnose(Flavor::MariaDb);
}

#[test]
fn status_and_diagnose_name_the_stopped_channel_mysql() {
    status_and_diagnose(Flavor::MySql);
}

/// n2 writes to its own database while `during` runs; returns what `during` returned.
fn with_writes_on_n2<T>(n2: &Node, rows: u32, during: impl FnOnce() -> T) -> T {
    std::thread::scope(|s| {
        let writer = s.spawn(|| {
            for i in 0..rows {
                n2.exec(&format!(
                    "INSERT INTO shop_us.orders VALUES ({}, 'during the repair', {i}.50)",
                    3000 + i
                ))
                .unwrap();
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let out = during();
        writer.join().expect("the writer on n2");
        out
    })
}

/// n3 holds exactly n2's shop_us rows (channel n2 applied every write).
fn n2_rows_arrived(flavor: Flavor, n2: &Node, n3: &Node) {
    n3.wait_channels_caught_up(&["n2"], WAIT)
        .unwrap_or_else(|e| panic!("{flavor}: {e:#}"));
    let q = "SELECT COUNT(*), SUM(total) FROM shop_us.orders";
    assert_eq!(one(n3, q), one(n2, q), "{flavor}");
}

fn exec_pos(st: &Value, name: &str) -> u64 {
    channel(st, name)["exec_source_log_pos"].as_u64().unwrap()
}

fn overwrite_repairs_only_the_stopped_channel(flavor: Flavor) {
    let sb = multi_source(flavor);
    let (n1, n2, n3) = (sb.node("n1"), sb.node("n2"), sb.node("n3"));
    let (_, before) = status(&sb);
    let n2_threads = N2Threads::take(flavor, n3);
    log_statements(n3);
    let journal = journal_path(&format!("overwrite-{flavor}"));
    let run = with_writes_on_n2(n2, 40, || {
        replmend(&[
            "repair",
            "--replica",
            &n3.url(),
            "--yes",
            "--remedy",
            "overwrite",
            "--journal",
            &journal,
            "--format",
            "json",
        ])
    });
    assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
    let r = run.json();
    assert_eq!(r["outcome"], "repaired", "{flavor}: {r}");
    let incidents = r["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 1, "{flavor}: {r}");
    assert_eq!(incidents[0]["remedy"], "overwrite");
    assert_eq!(incidents[0]["applied"]["rows_agree"], true, "{flavor}: {r}");
    assert_eq!(journaled_rows(&journal), 1);
    let journal_text = std::fs::read_to_string(&journal).unwrap();
    assert!(journal_text.contains(BY_HAND), "{journal_text}");

    // Only channel n1 was stopped and started; channel n2's threads are the same ones.
    let statements = replication_statements(n3);
    assert!(
        statements.iter().any(|s| s.starts_with("STOP")),
        "{flavor}: {statements:?}"
    );
    assert!(
        statements.iter().any(|s| s.starts_with("START")),
        "{flavor}: {statements:?}"
    );
    for s in &statements {
        assert!(
            names_channel_n1(flavor, s),
            "{flavor}: a statement for another channel or every channel: {s}"
        );
    }
    n2_threads.unchanged(n3, true);

    // Both channels healthy; n3 has the source's row; n2's writes all arrived.
    n2_rows_arrived(flavor, n2, n3);
    n3.wait_caught_up(WAIT).unwrap();
    let (code, after) = status(&sb);
    assert_eq!(code, 0, "{flavor}: {after}");
    for name in ["n1", "n2"] {
        assert_eq!(
            channel(&after, name)["health"],
            "healthy",
            "{flavor}: {after}"
        );
    }
    assert!(
        exec_pos(&after, "n2") > exec_pos(&before, "n2"),
        "{flavor}: channel n2 applied n2's writes: {before} {after}"
    );
    let q = "SELECT customer, total FROM shop_eu.orders WHERE id = 1001";
    assert_eq!(row_1001(n3), one(n1, q), "{flavor}");
    assert_eq!(row_1001(n3)[0].as_deref(), Some("Zoë"));
    let _ = std::fs::remove_file(&journal);
}

#[test]
fn overwrite_repairs_only_the_stopped_channel_mariadb() {
    overwrite_repairs_only_the_stopped_channel(Flavor::MariaDb);
}

#[test]
fn overwrite_repairs_only_the_stopped_channel_mysql() {
    overwrite_repairs_only_the_stopped_channel(Flavor::MySql);
}

/// A skip (inject-gtid) on a multi-source replica. MySQL marks the GTID executed with an
/// empty transaction and restarts only channel n1. MariaDB can only skip by setting
/// gtid_slave_pos, which it refuses while any connection runs: replmend refuses before it
/// changes anything rather than stop the healthy connection; with every connection stopped
/// by hand first, the skip runs.
fn skip_by_gtid(flavor: Flavor) {
    let sb = multi_source(flavor);
    let (n2, n3) = (sb.node("n2"), sb.node("n3"));
    let url = n3.url();
    let n2_threads = N2Threads::take(flavor, n3);
    log_statements(n3);
    let journal = journal_path(&format!("skip-{flavor}"));
    let skip = |extra: &[&str]| {
        let mut argv = vec![
            "repair",
            "--replica",
            &url,
            "--yes",
            "--remedy",
            "inject-gtid",
            "--allow-data-loss",
            "--journal",
            &journal,
        ];
        argv.extend_from_slice(extra);
        replmend(&argv)
    };
    match flavor {
        Flavor::MySql => {
            let run = with_writes_on_n2(n2, 20, || skip(&[]));
            assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
            let statements = replication_statements(n3);
            assert!(
                statements
                    .iter()
                    .any(|s| s.starts_with("SET GTID_NEXT = '")),
                "{statements:?}"
            );
            for s in statements
                .iter()
                .filter(|s| !s.starts_with("SET GTID_NEXT"))
            {
                assert!(names_channel_n1(flavor, s), "{flavor}: {s}");
            }
            n2_threads.unchanged(n3, true);
        }
        Flavor::MariaDb => {
            let run = with_writes_on_n2(n2, 20, || skip(&[]));
            assert_eq!(
                run.code,
                exit::REFUSED,
                "{flavor}: {}{}",
                run.stdout,
                run.stderr
            );
            assert!(
                run.stderr.contains("preflight refused")
                    && run.stderr.contains("gtid_slave_pos")
                    && run.stderr.contains("'n2'")
                    && run.stderr.contains("--remedy overwrite"),
                "{}",
                run.stderr
            );
            assert_eq!(
                replication_statements(n3),
                Vec::<String>::new(),
                "nothing was stopped"
            );
            n2_threads.unchanged(n3, false);
            let (_, st) = status(&sb);
            assert_eq!(channel(&st, "n1")["health"], "sql_error");
            assert_eq!(channel(&st, "n2")["health"], "healthy");
            n2_rows_arrived(flavor, n2, n3);
            // The way out the refusal names: every connection stopped by hand, then the skip.
            n3.exec("STOP ALL SLAVES").unwrap();
            let run = skip(&[]);
            assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
            let (_, st) = status(&sb);
            assert_eq!(channel(&st, "n1")["health"], "healthy", "{st}");
            assert_eq!(channel(&st, "n2")["health"], "not_running", "{st}");
            n3.exec("START ALL SLAVES").unwrap();
        }
    }
    // The skipped transaction stays skipped, n3 keeps its own row, both channels run.
    n2.exec("INSERT INTO shop_us.orders VALUES (4000, 'after the skip', 1.00)")
        .unwrap();
    n2_rows_arrived(flavor, n2, n3);
    n3.wait_caught_up(WAIT).unwrap();
    let (code, after) = status(&sb);
    assert_eq!(code, 0, "{flavor}: {after}");
    assert_eq!(row_1001(n3)[0].as_deref(), Some(BY_HAND));
    assert_eq!(journaled_rows(&journal), 0);
    let _ = std::fs::remove_file(&journal);
}

#[test]
fn skip_by_gtid_mariadb() {
    skip_by_gtid(Flavor::MariaDb);
}

#[test]
fn skip_by_gtid_mysql() {
    skip_by_gtid(Flavor::MySql);
}

/// A filter on one channel keeps tables out of that channel only (MariaDB's per-connection
/// `SET GLOBAL n1.replicate_wild_ignore_table`, MySQL's `CHANGE REPLICATION FILTER … FOR
/// CHANNEL 'n1'`): verify against n1 calls its matching table filtered; against n2 the same
/// pattern's table is compared, and resync fixes it there and nowhere else.
#[test]
fn a_filter_on_one_channel_keeps_tables_out_of_that_channel_only() {
    for flavor in FLAVORS {
        let sb = Sandbox::start(flavor, Topology::MultiSource)
            .unwrap_or_else(|e| panic!("{flavor}: {e:#}"));
        let (n1, n2, n3) = (sb.node("n1"), sb.node("n2"), sb.node("n3"));
        n1.exec("CREATE DATABASE fa; CREATE TABLE fa.t (id INT PRIMARY KEY); CREATE TABLE fa.ign (id INT PRIMARY KEY)")
            .unwrap();
        n2.exec("CREATE DATABASE fb; CREATE TABLE fb.ign (id INT PRIMARY KEY)")
            .unwrap();
        n3.wait_channels_caught_up(&["n1", "n2"], WAIT).unwrap();
        n3.exec(match flavor {
            Flavor::MariaDb => {
                "STOP SLAVE 'n1'; SET GLOBAL n1.replicate_wild_ignore_table = '%.ign'; START SLAVE 'n1'"
            }
            Flavor::MySql => {
                "STOP REPLICA SQL_THREAD FOR CHANNEL 'n1'; \
                 CHANGE REPLICATION FILTER REPLICATE_WILD_IGNORE_TABLE = ('%.ign') FOR CHANNEL 'n1'; \
                 START REPLICA SQL_THREAD FOR CHANNEL 'n1'"
            }
        })
        .unwrap();
        n1.exec("INSERT INTO fa.t VALUES (1); INSERT INTO fa.ign VALUES (1)")
            .unwrap();
        n2.exec("INSERT INTO fb.ign VALUES (1), (2)").unwrap();
        n3.wait_channels_caught_up(&["n1", "n2"], WAIT).unwrap();
        n3.exec("SET SESSION sql_log_bin = 0; DELETE FROM fb.ign WHERE id = 2")
            .unwrap();
        let replica = n3.url();
        let verify = |source: &Node, db: &str| {
            let run = replmend(&[
                "verify",
                "--replica",
                &replica,
                "--source",
                &source.url(),
                "--databases",
                db,
                "--format",
                "json",
            ]);
            let v = run.json();
            (run.code, v)
        };
        let (code, r) = verify(n1, "fa");
        assert_eq!(code, 0, "{flavor}: channel n1 filters fa.ign: {r}");
        let ign = r["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["table"]["name"] == "ign")
            .unwrap_or_else(|| panic!("{flavor}: {r}"));
        assert!(
            ign["filtered"]
                .as_str()
                .is_some_and(|w| w.contains("replicate_wild_ignore_table")),
            "{flavor}: {ign}"
        );
        let (code, r) = verify(n2, "fb");
        assert_eq!(
            code, 11,
            "{flavor}: channel n2 has no filter: fb.ign is compared: {r}"
        );
        assert_eq!(
            r["summary"]["filtered"].as_u64().unwrap_or(0),
            0,
            "{flavor}: {r}"
        );
        let run = replmend(&[
            "resync",
            "--replica",
            &replica,
            "--source",
            &n2.url(),
            "--databases",
            "fb",
            "--yes",
            "--journal",
            &journal_path(&format!("channel-filter-{flavor}")),
        ]);
        assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
        assert_eq!(
            one(n3, "SELECT COUNT(*) FROM fb.ign"),
            vec![Some("2".into())]
        );
        assert_eq!(
            one(n3, "SELECT COUNT(*) FROM fa.ign"),
            vec![Some("0".into())],
            "{flavor}: the filtered table of channel n1 is left alone"
        );
        sb.stop();
    }
}
