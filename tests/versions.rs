//! The MariaDB versions fleets run besides 10.11, each in its own chroot with the server's
//! default settings: 10.5 (Debian bullseye) and 11.8 (trixie), where binlog_legacy_event_pos=OFF
//! puts end_log_pos 0 in the error text and on the events inside a transaction. The seed and
//! every incident recipe are diagnosed and repaired with their recommended remedy.

mod support;

use std::time::Duration;

use replmend_sandbox::Build;
use support::*;

const SEED_ROW: &str = "SELECT payload, hits, created_at FROM zeus.xinyan_cache WHERE id = 'b98e4fab203607559fc5347b60cb64a41cf50a79650fbda3a1a4be5a1cfd16d9'";

const BUILDS: [Build; 2] = [Build::MariaDb105, Build::MariaDb118];

fn incident_on(build: Build, topology: Topology, recipe: &str) -> Sandbox {
    let sb = Sandbox::start_build(build, topology)
        .unwrap_or_else(|e| panic!("{build:?} {topology:?}: {e:#}"));
    sb.recipe(recipe)
        .unwrap_or_else(|e| panic!("{build:?} recipe {recipe}: {e:#}"));
    sb
}

#[test]
fn the_seed_is_diagnosed_and_repaired_on_mariadb_11_8_defaults() {
    let sb = incident_on(
        Build::MariaDb118,
        Topology::DualMaster,
        "seed-dual-master-1062",
    );
    let (n1, n2) = (sb.node("n1"), sb.node("n2"));
    assert_eq!(
        n2.query_value("SELECT @@binlog_legacy_event_pos")
            .unwrap()
            .as_deref(),
        Some("0")
    );
    let d = replmend(&["diagnose", "--replica", &n2.url(), "--format", "json"]);
    assert_eq!(d.code, exit::REPLICATION_ERROR, "{}", d.stderr);
    let j = d.json();
    assert!(
        j["error"]["message"]
            .as_str()
            .unwrap()
            .contains("end_log_pos 0"),
        "{j}"
    );
    assert_eq!(j["transaction"]["rows_total"], 1, "{j}");
    assert_eq!(j["conflicts"].as_array().unwrap().len(), 1, "{j}");
    assert_eq!(j["reverse"]["same_key"], true, "{j}");
    let winner = n1.query_rows(SEED_ROW).unwrap();
    let run = replmend(&[
        "repair",
        "--replica",
        &n2.url(),
        "--yes",
        "--journal",
        &std::env::temp_dir()
            .join(format!("replmend-118-seed-{}.jsonl", std::process::id()))
            .display()
            .to_string(),
    ]);
    assert_eq!(run.code, exit::OK, "{}{}", run.stdout, run.stderr);
    assert_eq!(n1.query_rows(SEED_ROW).unwrap(), winner);
    assert_eq!(n2.query_rows(SEED_ROW).unwrap(), winner);
    assert!(n1.sql_error().unwrap().is_none() && n2.sql_error().unwrap().is_none());
}

/// Every recipe with a `repair` file (its expected remedy and outcome), on each build.
#[test]
fn every_recipe_is_repaired_with_its_recommended_remedy_on_mariadb_10_5_and_11_8() {
    let expected = expected_repairs();
    assert!(expected.len() >= 20, "{expected:?}");
    for (build, e) in BUILDS
        .iter()
        .flat_map(|b| expected.iter().map(move |e| (*b, e)))
    {
        let recipe = e.recipe.as_str();
        let sb = incident_on(build, e.topology, recipe);
        // The node that stops: the multi-source replica is n3.
        let n2 = sb.node(match e.topology {
            Topology::MultiSource => "n3",
            _ => "n2",
        });
        let journal = std::env::temp_dir()
            .join(format!(
                "replmend-118-{}-{recipe}.jsonl",
                std::process::id()
            ))
            .display()
            .to_string();
        let run = replmend(&[
            "repair",
            "--replica",
            &n2.url(),
            "--yes",
            "--allow-data-loss",
            "--until-healthy",
            "--journal",
            &journal,
            "--format",
            "json",
        ]);
        assert_eq!(
            run.code,
            exit::OK,
            "{build:?} {recipe}: {}{}",
            run.stdout,
            run.stderr
        );
        let report = run.json();
        assert_eq!(
            report["outcome"],
            e.outcome.as_str(),
            "{build:?} {recipe}: {report}"
        );
        assert_eq!(
            report["incidents"][0]["remedy"],
            e.remedy.as_str(),
            "{build:?} {recipe}: the recommended remedy: {report}"
        );
        n2.wait_caught_up(Duration::from_secs(30)).unwrap();
        assert!(n2.sql_error().unwrap().is_none(), "{build:?} {recipe}");
        let _ = std::fs::remove_file(&journal);
    }
}

/// The origin search on 10.5 and 11.8 (events inside a transaction at end_log_pos 0): the
/// errant write is found in the file read first (its Gtid_list bisected) and its statement
/// read from its Annotate_rows event with SHOW BINLOG EVENTS.
#[test]
fn the_origin_and_its_statement_on_mariadb_10_5_and_11_8() {
    for build in BUILDS {
        let sb = incident_on(
            build,
            Topology::SourceReplica,
            "errant-write-older-log-1062",
        );
        let n2 = sb.node("n2");
        let d = replmend(&["diagnose", "--replica", &n2.url(), "--format", "json"]);
        assert_eq!(d.code, exit::REPLICATION_ERROR, "{build:?}: {}", d.stderr);
        let j = d.json();
        let o = &j["conflicts"][0]["origin"]["replica"];
        assert_eq!(o["found"], true, "{build:?}: {o}");
        assert_eq!(o["writer"], "this_node", "{build:?}: {o}");
        assert_eq!(
            o["statement"], "INSERT INTO eo.staff VALUES (42, 'written on the replica')",
            "{build:?}: {o}"
        );
        assert_eq!(o["searched_first"][0], o["log_file"], "{build:?}: {o}");
        assert_eq!(
            j["cause"]["kind"], "errant_write",
            "{build:?}: {}",
            j["cause"]
        );
        the_row_digest_sees_one_microsecond(&sb, build);
    }
}

/// verify's row digest on this build's defaults (10.5: CRC32 of the reversed text; 11.8:
/// CRC32C): one microsecond changed on the replica is the one row found, beside a NULL and
/// an empty string left alone. The replica is stopped on its incident: lag counts as drift,
/// and these rows are written on both nodes with the binary log off.
fn the_row_digest_sees_one_microsecond(sb: &Sandbox, build: Build) {
    let rows = "SET sql_log_bin = 0; CREATE DATABASE vd; \
                CREATE TABLE vd.t (id INT PRIMARY KEY, at DATETIME(6) NOT NULL, v VARCHAR(20)); \
                INSERT INTO vd.t VALUES (1, '2026-01-01 00:00:00.000001', 'a'), \
                (2, '2026-01-01 00:00:00.000002', NULL), (3, '2026-01-01 00:00:00.000003', '')";
    for n in ["n1", "n2"] {
        sb.node(n).exec(rows).unwrap();
    }
    sb.node("n2")
        .exec("SET sql_log_bin = 0; UPDATE vd.t SET at = at + INTERVAL 1 MICROSECOND WHERE id = 1")
        .unwrap();
    let url = sb.node("n2").url();
    let args = [
        "verify",
        "--replica",
        &url,
        "--tables",
        "vd.t",
        "--format",
        "json",
    ];
    let run = replmend_env(&args, &[("REPLMEND_TIMING", "1")]);
    // Both builds' probes find the row text set before it is read: built once, for CRC32C
    // (11.8) and for CRC32 of the reversed text (10.5) alike.
    let once = run.stderr.contains("row text evaluated Once");
    assert!(
        once && !run.stderr.contains("Twice"),
        "{build:?}: {}",
        run.stderr
    );
    assert_eq!(
        run.code,
        exit::DRIFT,
        "{build:?}: {}{}",
        run.stdout,
        run.stderr
    );
    let j = run.json();
    let digest = match build {
        Build::MariaDb105 => "crc32,crc32-reversed",
        _ => "crc32,crc32c",
    };
    assert_eq!(j["digest"], digest, "{build:?}: {j}");
    let t = &j["tables"][0];
    assert_eq!(
        (&t["missing"], &t["extra"], &t["different"]),
        (&0.into(), &0.into(), &1.into()),
        "{build:?}: {j}"
    );
}
