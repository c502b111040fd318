//! `replmend status` against real servers of both flavors.

mod support;

use support::*;

#[test]
fn seed_dual_master_reports_both_channels_stopped_with_1062() {
    for flavor in FLAVORS {
        let sb = incident(flavor, Topology::DualMaster, "seed-dual-master-1062");
        for node in ["n1", "n2"] {
            let url = sb.node(node).url();
            let run = replmend(&["status", "--replica", &url, "--format", "json"]);
            assert_eq!(
                run.code,
                exit::REPLICATION_ERROR,
                "{flavor} {node}: {}{}",
                run.stdout,
                run.stderr
            );
            let j = run.json();
            assert_eq!(j["schema"], "replmend.status/1");
            let ch = &j["channels"][0];
            assert_eq!(ch["health"], "sql_error", "{flavor} {node}: {j}");
            assert_eq!(ch["sql_thread"], "stopped");
            let err = &ch["last_sql_error"];
            assert_eq!(err["number"], 1062, "{flavor} {node}: {j}");
            let peer = if node == "n1" { "n2" } else { "n1" };
            assert_eq!(ch["source_port"], sb.node(peer).port);
            let expected_kind = if flavor == Flavor::MySql {
                "mysql"
            } else {
                "mariadb"
            };
            assert_eq!(j["server"]["flavor"]["kind"], expected_kind);
            if flavor == Flavor::MySql {
                // The multi-threaded applier's worker holds the full text and the GTID.
                let worker = ch["workers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|w| !w["last_error"].is_null());
                let worker = worker.unwrap_or_else(|| panic!("no failed worker in {j}"));
                assert!(
                    worker["applying_transaction"]
                        .as_str()
                        .unwrap()
                        .contains(':')
                );
            }
            let text = replmend(&["status", "--replica", &url]);
            assert_eq!(text.code, exit::REPLICATION_ERROR);
            assert!(text.stdout.contains("1062"), "{}", text.stdout);
        }
    }
}

#[test]
fn healthy_replica_not_a_replica_and_bad_input() {
    for flavor in FLAVORS {
        let sb = Sandbox::start(flavor, Topology::SourceReplica).unwrap();
        let replica = sb.node("n2");
        let ok = replmend(&["status", "--replica", &replica.url(), "--format", "json"]);
        assert_eq!(ok.code, exit::OK, "{flavor}: {}{}", ok.stdout, ok.stderr);
        assert_eq!(ok.json()["channels"][0]["health"], "healthy");

        // -h/-P/-u like the mysql client.
        let port = replica.port.to_string();
        let flags = replmend(&["status", "-h", "127.0.0.1", "-P", &port, "-u", "root"]);
        assert_eq!(flags.code, exit::OK, "{}", flags.stderr);

        let source = replmend(&["status", "--replica", &sb.node("n1").url()]);
        assert_eq!(
            source.code,
            exit::NOT_A_REPLICA,
            "{flavor}: {}",
            source.stderr
        );
        assert!(source.stderr.contains("not a replica"), "{}", source.stderr);

        // Wrong password: exit 7, one line, and the password never printed.
        let secret = "S3cr3t-n0t-pr1nted";
        let dsn = format!("mysql://root:{secret}@127.0.0.1:{}", replica.port);
        for run in [
            replmend(&["status", "--replica", &dsn]),
            replmend(&["status", "--replica", &dsn, "--format", "json"]),
            replmend_env(
                &[
                    "status",
                    "--replica",
                    &replica.url().replace("root@", "nosuchuser@"),
                ],
                &[("MYSQL_PWD", secret)],
            ),
        ] {
            assert_eq!(run.code, exit::ACCESS_DENIED, "{flavor}: {}", run.stderr);
            assert!(!run.stderr.contains(secret) && !run.stdout.contains(secret));
            assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        }
    }
    // Unreachable: nothing listens on port 1 of loopback.
    let run = replmend(&["status", "--replica", "mysql://root@127.0.0.1:1"]);
    assert_eq!(run.code, exit::UNREACHABLE, "{}", run.stderr);
    assert!(run.stderr.contains("cannot reach"), "{}", run.stderr);
    let bad = replmend(&["status", "--replica", "postgres://u:pw@127.0.0.1"]);
    assert_eq!(bad.code, exit::BAD_INPUT, "{}", bad.stderr);
    assert!(!bad.stderr.contains(":pw@"));
}

#[test]
fn defaults_file_supplies_credentials() {
    let sb = Sandbox::start(Flavor::MariaDb, Topology::SourceReplica).unwrap();
    let replica = sb.node("n2");
    let dir = std::env::temp_dir().join(format!("replmend-cnf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cnf = dir.join("my.cnf");
    std::fs::write(
        &cnf,
        format!(
            "[client]\nuser=root\nhost=127.0.0.1\nport={}\n",
            replica.port
        ),
    )
    .unwrap();
    let run = replmend(&[
        "status",
        "--defaults-file",
        cnf.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(run.code, exit::OK, "{}", run.stderr);
}

#[test]
fn gtid_positioned_replicas_and_tls() {
    for flavor in FLAVORS {
        let sb = Sandbox::start(flavor, Topology::SourceReplicaGtid).unwrap();
        let run = replmend(&[
            "status",
            "--replica",
            &sb.node("n2").url(),
            "--format",
            "json",
        ]);
        assert_eq!(run.code, exit::OK, "{}", run.stderr);
        assert_eq!(
            run.json()["channels"][0]["gtid_positioning"],
            true,
            "{flavor}"
        );
    }
    // MySQL generates its own certificates: TLS without verification works.
    let sb = Sandbox::start(Flavor::MySql, Topology::SourceReplica).unwrap();
    let run = replmend(&[
        "status",
        "--replica",
        &sb.node("n2").url(),
        "--ssl-mode",
        "REQUIRED",
    ]);
    assert_eq!(run.code, exit::OK, "{}", run.stderr);
    let bad = replmend(&[
        "status",
        "--replica",
        &sb.node("n2").url(),
        "--ssl-mode",
        "sometimes",
    ]);
    // A bad value on the command line is a usage error (2), named by clap.
    assert_eq!(bad.code, exit::USAGE, "{}", bad.stderr);
    assert!(bad.stderr.contains("VERIFY_CA"), "{}", bad.stderr);
}

/// A write made directly on a replica with its binlog on is an errant GTID: `status` names it
/// (MySQL: its GTID set; MariaDB: domain-server_id-seq under the replica's own server_id);
/// writes on both nodes of a dual-master pair, which each applies from the other, are not.
#[test]
fn status_names_errant_gtids_written_on_the_replica() {
    for flavor in FLAVORS {
        let sb = Sandbox::start(flavor, Topology::SourceReplicaGtid).unwrap();
        let (n1, n2) = (sb.node("n1"), sb.node("n2"));
        n1.exec("CREATE DATABASE errant; CREATE TABLE errant.t (id INT PRIMARY KEY)")
            .unwrap();
        n2.wait_caught_up(std::time::Duration::from_secs(30))
            .unwrap();
        let st = replmend(&["status", "--replica", &n2.url(), "--format", "json"]);
        assert!(st.json().get("errant").is_none(), "{flavor}: {}", st.stdout);
        n2.exec("INSERT INTO errant.t VALUES (7)").unwrap();
        let st = replmend(&["status", "--replica", &n2.url(), "--format", "json"]);
        let j = st.json();
        let gtids = j["errant"][0]["gtids"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let own = match flavor {
            Flavor::MySql => n2.query_value("SELECT @@server_uuid").unwrap().unwrap(),
            Flavor::MariaDb => format!("-{}-", n2.server_id),
        };
        assert!(gtids.contains(&own), "{flavor}: {j}");
        let text = replmend(&["status", "--replica", &n2.url()]);
        assert!(
            text.stdout.contains("errant GTIDs"),
            "{flavor}: {}",
            text.stdout
        );

        let pair = Sandbox::start(flavor, Topology::DualMaster).unwrap();
        let (a, b) = (pair.node("n1"), pair.node("n2"));
        a.exec("CREATE DATABASE dm; CREATE TABLE dm.t (id INT PRIMARY KEY)")
            .unwrap();
        b.wait_caught_up(std::time::Duration::from_secs(30))
            .unwrap();
        b.exec("INSERT INTO dm.t VALUES (1)").unwrap();
        a.exec("INSERT INTO dm.t VALUES (2)").unwrap();
        a.wait_caught_up(std::time::Duration::from_secs(30))
            .unwrap();
        b.wait_caught_up(std::time::Duration::from_secs(30))
            .unwrap();
        for n in [a, b] {
            let st = replmend(&["status", "--replica", &n.url(), "--format", "json"]);
            assert!(st.json().get("errant").is_none(), "{flavor}: {}", st.stdout);
        }
    }
}

/// The conflicting row was written on the replica directly (its binlog on): diagnose names
/// the errant transaction beside the conflict.
#[test]
fn diagnose_names_errant_gtids_next_to_the_conflict() {
    for flavor in FLAVORS {
        let sb = Sandbox::start(flavor, Topology::SourceReplicaGtid).unwrap();
        let (n1, n2) = (sb.node("n1"), sb.node("n2"));
        n1.exec("CREATE DATABASE errant; CREATE TABLE errant.t (id INT PRIMARY KEY, v INT)")
            .unwrap();
        n2.wait_caught_up(std::time::Duration::from_secs(30))
            .unwrap();
        n2.exec("INSERT INTO errant.t VALUES (1, 2)").unwrap();
        n1.exec("INSERT INTO errant.t VALUES (1, 1)").unwrap();
        n2.wait_sql_error(1062, std::time::Duration::from_secs(30))
            .unwrap();
        let d = replmend(&["diagnose", "--replica", &n2.url(), "--format", "json"]);
        assert_eq!(d.code, exit::REPLICATION_ERROR, "{flavor}: {}", d.stderr);
        let j = d.json();
        assert!(
            j["errant"][0]["gtids"]
                .as_str()
                .is_some_and(|g| !g.is_empty()),
            "{flavor}: {j}"
        );
        let text = replmend(&["diagnose", "--replica", &n2.url()]);
        assert!(
            text.stdout.contains("Errant GTIDs"),
            "{flavor}: {}",
            text.stdout
        );
    }
}

/// `repair --remedy inject-errant`: MySQL gets the replica's errant GTIDs as empty
/// transactions on the source (dry run first changes nothing); MariaDB is told what to do
/// instead, with nothing changed.
#[test]
fn inject_errant_gtids_on_the_source() {
    for flavor in FLAVORS {
        let sb = Sandbox::start(flavor, Topology::SourceReplicaGtid).unwrap();
        let (n1, n2) = (sb.node("n1"), sb.node("n2"));
        n1.exec("CREATE DATABASE errant; CREATE TABLE errant.t (id INT PRIMARY KEY)")
            .unwrap();
        n2.wait_caught_up(std::time::Duration::from_secs(30))
            .unwrap();
        n2.exec("INSERT INTO errant.t VALUES (7); INSERT INTO errant.t VALUES (8)")
            .unwrap();
        let executed = |n: &replmend_sandbox::Node| {
            n.query_value(match flavor {
                Flavor::MySql => "SELECT @@GLOBAL.gtid_executed",
                Flavor::MariaDb => "SELECT @@GLOBAL.gtid_binlog_state",
            })
            .unwrap()
        };
        let before = executed(n1);
        let journal = std::env::temp_dir()
            .join(format!(
                "replmend-errant-{}-{flavor}.jsonl",
                std::process::id()
            ))
            .display()
            .to_string();
        let base = [
            "repair",
            "--replica",
            &n2.url(),
            "--remedy",
            "inject-errant",
        ];
        let dry = replmend(&[&base[..], &["--dry-run"]].concat());
        assert_eq!(
            executed(n1),
            before,
            "{flavor}: the dry run changed nothing"
        );
        let run = replmend(&[&base[..], &["--yes", "--journal", &journal]].concat());
        match flavor {
            Flavor::MySql => {
                assert_eq!(dry.code, exit::OK, "{}", dry.stderr);
                assert!(dry.stdout.contains("SET GTID_NEXT"), "{}", dry.stdout);
                assert_eq!(run.code, exit::OK, "{}{}", run.stdout, run.stderr);
                let st = replmend(&["status", "--replica", &n2.url(), "--format", "json"]);
                assert!(st.json().get("errant").is_none(), "{}", st.stdout);
                let uuid = n2.query_value("SELECT @@server_uuid").unwrap().unwrap();
                assert!(executed(n1).unwrap().contains(&uuid), "the source has them");
                // Again: already done, nothing left.
                let again = replmend(&[&base[..], &["--yes", "--journal", &journal]].concat());
                assert_eq!(again.code, exit::OK, "{}", again.stderr);
            }
            Flavor::MariaDb => {
                assert_eq!(
                    run.code,
                    exit::UNSUPPORTED_INCIDENT,
                    "{}{}",
                    run.stdout,
                    run.stderr
                );
                assert!(
                    run.stderr.contains("MariaDB cannot inject"),
                    "{}",
                    run.stderr
                );
                assert_eq!(executed(n1), before, "nothing changed");
            }
        }
        let _ = std::fs::remove_file(&journal);
    }
}
