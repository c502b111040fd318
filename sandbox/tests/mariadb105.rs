//! MariaDB 10.5 (Debian bullseye, in its own debootstrap chroot) with the server's default
//! settings: the seed incident, what differs from 10.11 (status columns, SUPER and read_only),
//! every recipe unchanged, the CLI and the sweep. Real servers: run scripts/install-deps first;
//! a missing chroot is a failure, never a skip.

mod support;

use std::process::Command;
use std::time::Duration;

use mysql::prelude::Queryable;
use mysql::{Conn, OptsBuilder};
use replmend_sandbox::{Build, Node, Sandbox, Topology};
use support::{BIN, Chroot, cli};

const V105: Chroot = Chroot {
    build: Build::MariaDb105,
    name: "mariadb-10.5",
    version: "10.5.",
};

fn need() {
    support::need(Build::MariaDb105);
}

/// The default channel's row of `SHOW ALL SLAVES STATUS`, by column name, in the server's
/// column order.
fn all_slaves_status(n: &Node) -> Vec<(String, String)> {
    let mut c = n.conn().unwrap();
    let row: mysql::Row = c
        .query_first("SHOW ALL SLAVES STATUS")
        .unwrap()
        .unwrap_or_else(|| panic!("{}: not a replica", n.name));
    let names: Vec<String> = row
        .columns_ref()
        .iter()
        .map(|c| c.name_str().into_owned())
        .collect();
    let values = row.unwrap().into_iter().map(|v| match v {
        mysql::Value::NULL => String::new(),
        mysql::Value::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
        other => other.as_sql(true).trim_matches('\'').to_string(),
    });
    names.into_iter().zip(values).collect()
}

fn col<'a>(status: &'a [(String, String)], name: &str) -> &'a str {
    status
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no column {name}"))
}

fn login(n: &Node, user: &str) -> Conn {
    let opts = OptsBuilder::new()
        .ip_or_hostname(Some("127.0.0.1"))
        .tcp_port(n.port)
        .user(Some(user))
        .prefer_socket(false);
    Conn::new(opts).unwrap_or_else(|e| panic!("{user}@{}: {e}", n.name))
}

/// What 10.5 says differently from 10.11: `SHOW ALL SLAVES STATUS` has no
/// `Replicate_Rewrite_DB` column (and there is no information_schema.SLAVE_STATUS); the
/// `READ_ONLY ADMIN` privilege exists (since 10.5.2), but SUPER still includes it, so an
/// account with SUPER alone may write under `read_only=ON` (on 10.11 it gets 1290).
#[test]
fn status_columns_and_read_only_admin_on_mariadb_105() {
    need();
    let sb = Sandbox::start_build(Build::MariaDb105, Topology::SourceReplica).unwrap();
    let (n1, n2) = (sb.node("n1"), sb.node("n2"));

    let st = all_slaves_status(n2);
    let names: Vec<&str> = st.iter().map(|(n, _)| n.as_str()).collect();
    eprintln!("[mariadb-10.5] SHOW ALL SLAVES STATUS: {names:?}");
    assert_eq!(
        names[..3],
        ["Connection_name", "Slave_SQL_State", "Slave_IO_State"]
    );
    assert_eq!(names.last(), Some(&"Gtid_Slave_Pos"));
    for want in [
        "Slave_IO_Running",
        "Slave_SQL_Running",
        "Last_SQL_Errno",
        "Last_SQL_Error",
        "Exec_Master_Log_Pos",
        "Relay_Master_Log_File",
        "Using_Gtid",
        "Gtid_IO_Pos",
        "Parallel_Mode",
        "Slave_DDL_Groups",
        "Retried_transactions",
    ] {
        assert!(names.contains(&want), "{want} missing: {names:?}");
    }
    assert!(!names.contains(&"Replicate_Rewrite_DB"), "{names:?}");
    assert_eq!(col(&st, "Using_Gtid"), "No");
    assert_eq!(col(&st, "Slave_SQL_Running"), "Yes");
    assert!(
        n2.query_value("SELECT COUNT(*) FROM information_schema.SLAVE_STATUS")
            .is_err()
    );

    let privileges = n1.query_rows("SHOW PRIVILEGES").unwrap();
    assert!(
        privileges
            .iter()
            .any(|r| r[0].as_deref() == Some("Read_only admin")),
        "{privileges:?}"
    );
    n1.exec(
        "CREATE DATABASE ro; CREATE TABLE ro.t (id INT PRIMARY KEY); \
         CREATE USER su@'%'; GRANT SUPER ON *.* TO su@'%'; \
         CREATE USER roa@'%'; GRANT READ_ONLY ADMIN ON *.* TO roa@'%'; \
         CREATE USER plain@'%'; \
         GRANT INSERT ON ro.* TO su@'%', roa@'%', plain@'%'; \
         SET GLOBAL read_only = ON",
    )
    .unwrap();
    let grants = n1.query_rows("SHOW GRANTS FOR roa@'%'").unwrap();
    assert!(
        grants.iter().any(|r| r[0]
            .as_deref()
            .is_some_and(|g| g.contains("READ_ONLY ADMIN"))),
        "{grants:?}"
    );
    let insert =
        |user: &str, id: u32| login(n1, user).query_drop(format!("INSERT INTO ro.t VALUES ({id})"));
    insert("su", 1).expect("SUPER includes READ_ONLY ADMIN on 10.5");
    insert("roa", 2).expect("READ_ONLY ADMIN");
    match insert("plain", 3) {
        Err(mysql::Error::MySqlError(e)) => assert_eq!(e.code, 1290, "{e}"),
        other => panic!("plain account under read_only: {other:?}"),
    }
    n1.exec("SET GLOBAL read_only = OFF").unwrap();
    n2.wait_caught_up(Duration::from_secs(30)).unwrap();
    assert_eq!(
        n2.query_value("SELECT COUNT(*) FROM ro.t")
            .unwrap()
            .as_deref(),
        Some("2")
    );
}

#[test]
fn seed_dual_master_1062_on_mariadb_105() {
    V105.seed(
        |n| {
            // 10.5 predates binlog_legacy_event_pos (11.8's OFF default): its events always
            // carry their real end_log_pos.
            assert!(
                n.query_value("SELECT @@binlog_legacy_event_pos").is_err(),
                "{}",
                n.name
            );
        },
        |n, text| {
            let end_log_pos: u64 = text
                .rsplit_once("end_log_pos ")
                .and_then(|(_, p)| p.trim().parse().ok())
                .unwrap_or_else(|| panic!("{}: no end_log_pos in {text}", n.name));
            assert!(end_log_pos > 0, "{}: {text}", n.name);
            let other = if n.name == "n1" { "maria2" } else { "maria1" };
            assert!(
                text.contains(&format!("master log {other}-bin.000001")),
                "{}: {text}",
                n.name
            );
            // Same GTID handling as 10.11: the channel positions by slave_pos, one domain per
            // node, and the conflicting transaction (the source's domain) has been received.
            let st = all_slaves_status(n);
            assert_eq!(col(&st, "Using_Gtid"), "Slave_Pos");
            let source_id = 3 - n.server_id;
            assert!(
                col(&st, "Gtid_IO_Pos").contains(&format!("{source_id}-{source_id}-")),
                "{}: {st:?}",
                n.name
            );
        },
    );
}

#[test]
fn every_recipe_on_mariadb_105() {
    V105.every_recipe();
}

#[test]
fn cli_up_build_mariadb_105_recipe_down() {
    V105.cli_cycle(|s| {
        let (ok, out, err) = cli(&[
            "sql",
            "--state-dir",
            s,
            "--node",
            "n1",
            "SHOW ALL SLAVES STATUS",
        ]);
        assert!(ok, "{err}");
        assert!(out.contains("\t1062\t"), "{out}");
        // 10.5 has no information_schema.SLAVE_STATUS (10.11 has).
        let (ok, _, err) = cli(&[
            "sql",
            "--state-dir",
            s,
            "--node",
            "n1",
            "SELECT Last_Errno FROM information_schema.SLAVE_STATUS",
        ]);
        assert!(!ok && err.contains("SLAVE_STATUS"), "{err}");
    });
}

#[test]
fn sigkilled_owner_is_swept_mariadb_105() {
    V105.sweep();
}

/// Without the 10.5 chroot, `up --build mariadb-10.5` names the build and the fix.
#[test]
fn a_missing_mariadb_105_chroot_says_how_to_install_it() {
    let empty = std::env::temp_dir().join(format!("replmend-no-cache105-{}", std::process::id()));
    let out = Command::new(BIN)
        .args(["up", "--build", "mariadb-10.5", "--state-dir"])
        .arg(empty.join("state"))
        .env("REPLMEND_CACHE", &empty)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("MariaDB 10.5") && err.contains("mariadb-10.5-chroot"),
        "{err}"
    );
    assert!(err.contains("scripts/install-deps"), "{err}");
    let _ = std::fs::remove_dir_all(&empty);
}
