//! Every incident recipe on both flavors produces exactly its expected errors, and every
//! topology replicates when healthy. Real servers: run scripts/install-deps first.

use std::time::{Duration, Instant};

use replmend_sandbox::{Flavor, Recipe, Sandbox, Topology};

mod support;

use support::{SEED_KEY, need, stops_as_expected};

fn all_recipes(flavor: Flavor) {
    need(flavor);
    let recipes = Recipe::all().unwrap();
    assert!(recipes.len() >= 7, "{recipes:?}");
    for recipe in recipes {
        let started = Instant::now();
        let sb = Sandbox::start(flavor, recipe.topology)
            .unwrap_or_else(|e| panic!("{flavor} {}: {e:#}", recipe.topology));
        let up = started.elapsed();
        sb.recipe(&recipe.name)
            .unwrap_or_else(|e| panic!("{flavor} {}: {e:#}", recipe.name));
        for (node, got) in stops_as_expected(&sb, &recipe, &flavor.to_string()) {
            if let Some((errno, text)) = &got {
                eprintln!(
                    "[{flavor}] {} {} Last_SQL_Error {errno}: {text}",
                    recipe.name, node.name
                );
                let workers = node.worker_errors().unwrap();
                if flavor == Flavor::MySql {
                    assert!(
                        workers.iter().any(|w| w.errno == *errno
                            && !w.applying_transaction.is_empty()
                            && w.message.contains("Worker")),
                        "{} {}: {workers:?}",
                        recipe.name,
                        node.name
                    );
                }
                for w in workers {
                    eprintln!(
                        "[{flavor}] {} {} worker {} {} ({}): {}",
                        recipe.name,
                        node.name,
                        w.worker_id,
                        w.errno,
                        w.applying_transaction,
                        w.message
                    );
                }
            }
        }
        if recipe.name == "seed-dual-master-1062" {
            for node in &sb.nodes {
                let (errno, text) = node.sql_error().unwrap().unwrap();
                assert_eq!(errno, 1062);
                let full = match flavor {
                    Flavor::MariaDb => text,
                    Flavor::MySql => node.worker_errors().unwrap()[0].message.clone(),
                };
                assert!(
                    full.contains("zeus.xinyan_cache") && full.contains(SEED_KEY),
                    "{flavor} {}: {full}",
                    node.name
                );
            }
        }
        eprintln!(
            "[{flavor}] {}: sandbox up in {up:.2?}, incident in {:.2?}",
            recipe.name,
            started.elapsed() - up
        );
    }
}

#[test]
fn every_recipe_on_mariadb() {
    all_recipes(Flavor::MariaDb);
}

#[test]
fn every_recipe_on_mysql() {
    all_recipes(Flavor::MySql);
}

/// Writes on one node arrive on the other in every topology (all three ways of waiting in
/// `wait_caught_up`: MySQL GTID sets, MariaDB GTID domains, binlog coordinates).
fn healthy_topologies(flavor: Flavor) {
    need(flavor);
    for topology in [
        Topology::SourceReplica,
        Topology::SourceReplicaGtid,
        Topology::DualMaster,
    ] {
        let started = Instant::now();
        let sb = Sandbox::start(flavor, topology).unwrap();
        let up = started.elapsed();
        let (n1, n2) = (sb.node("n1"), sb.node("n2"));
        assert_eq!(n1.source_port.is_some(), topology == Topology::DualMaster);
        assert_eq!(n2.source_port, Some(n1.port));
        n1.exec("CREATE DATABASE h; CREATE TABLE h.t (id INT PRIMARY KEY, v TEXT); INSERT INTO h.t VALUES (1, 'a')")
            .unwrap();
        n2.wait_caught_up(Duration::from_secs(30)).unwrap();
        assert_eq!(
            n2.query_value("SELECT v FROM h.t WHERE id = 1").unwrap(),
            Some("a".into())
        );
        if topology == Topology::DualMaster {
            n2.exec("INSERT INTO h.t VALUES (2, NULL)").unwrap();
            n1.wait_caught_up(Duration::from_secs(30)).unwrap();
            assert_eq!(
                n1.query_rows("SELECT id, v FROM h.t ORDER BY id").unwrap(),
                vec![
                    vec![Some("1".into()), Some("a".into())],
                    vec![Some("2".into()), None]
                ]
            );
            n2.wait_caught_up(Duration::from_secs(30)).unwrap();
        }
        for n in &sb.nodes {
            assert_eq!(n.sql_error().unwrap(), None, "{flavor} {topology}");
        }
        // Statements of the right dialect, and the flavor's settings.
        n2.stop_io().unwrap();
        n2.start_io().unwrap();
        n2.stop_replication().unwrap();
        n2.start_replication().unwrap();
        let binlog = n1
            .query_value("SELECT @@log_bin_basename")
            .unwrap()
            .unwrap();
        assert!(binlog.ends_with(&n1.binlog_basename), "{binlog}");
        assert_eq!(
            n1.query_value("SELECT @@binlog_format").unwrap().as_deref(),
            Some("ROW")
        );
        assert!(n1.checksum_table("h", "t").unwrap().is_some());
        if flavor == Flavor::MySql {
            assert_eq!(
                n1.query_value("SELECT @@gtid_mode").unwrap().as_deref(),
                Some("ON")
            );
            assert_eq!(
                n1.query_value("SELECT @@performance_schema")
                    .unwrap()
                    .as_deref(),
                Some("1")
            );
            let uuids: Vec<_> = sb
                .nodes
                .iter()
                .map(|n| n.query_value("SELECT @@server_uuid").unwrap())
                .collect();
            assert_ne!(uuids[0], uuids[1], "each instance has its own server_uuid");
        }
        let rss: Vec<String> = sb
            .nodes
            .iter()
            .map(|n| format!("{} {} MiB", n.name, n.rss_kib().unwrap_or(0) / 1024))
            .collect();
        eprintln!(
            "[{flavor}] {topology}: up in {up:.2?}; RSS {}",
            rss.join(", ")
        );
        let stopping = Instant::now();
        drop(sb);
        eprintln!(
            "[{flavor}] {topology}: stopped in {:.2?}",
            stopping.elapsed()
        );
    }
}

#[test]
fn healthy_topologies_on_mariadb() {
    healthy_topologies(Flavor::MariaDb);
}

#[test]
fn healthy_topologies_on_mysql() {
    healthy_topologies(Flavor::MySql);
}
