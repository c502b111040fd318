//! `replmend plan` / `repair` on real servers of both flavors: dry runs change nothing, every
//! remedy ends with replication running and the expected rows, journal + restore, the crash
//! test, the concurrency test.

mod support;

use std::time::Duration;

use support::*;

const SEED_ROW: &str = "SELECT payload, hits, created_at FROM zeus.xinyan_cache WHERE id = 'b98e4fab203607559fc5347b60cb64a41cf50a79650fbda3a1a4be5a1cfd16d9'";

fn one(node: &replmend_sandbox::Node, sql: &str) -> Vec<Option<String>> {
    node.query_rows(sql)
        .unwrap()
        .into_iter()
        .next()
        .unwrap_or_default()
}

fn healthy(node: &replmend_sandbox::Node) -> bool {
    let run = replmend(&["status", "--replica", &node.url(), "--format", "json"]);
    if run.code != exit::OK {
        eprintln!(
            "status of {}: exit {}: {}{}",
            node.name, run.code, run.stdout, run.stderr
        );
    }
    run.code == exit::OK
}

/// Everything a dry run must leave untouched: binlog coordinates, GTID state, table checksums.
fn fingerprint_of_world(sb: &Sandbox, tables: &[(&str, &str)]) -> Vec<String> {
    let mut out = Vec::new();
    for n in &sb.nodes {
        let status = match sb.flavor {
            Flavor::MariaDb => "SHOW MASTER STATUS",
            Flavor::MySql => "SHOW BINARY LOG STATUS",
        };
        out.push(format!("{:?}", n.query_rows(status).unwrap()));
        let gtid = match sb.flavor {
            Flavor::MariaDb => "SELECT @@gtid_binlog_pos, @@gtid_slave_pos",
            Flavor::MySql => "SELECT @@gtid_executed, ''",
        };
        out.push(format!("{:?}", n.query_rows(gtid).unwrap()));
        for (db, t) in tables {
            out.push(format!("{:?}", n.checksum_table(db, t).unwrap()));
        }
        out.push(format!("{:?}", n.sql_error().unwrap()));
    }
    out
}

#[test]
fn seed_dry_run_changes_nothing_and_shows_sql_per_node() {
    for flavor in FLAVORS {
        let sb = incident(flavor, Topology::DualMaster, "seed-dual-master-1062");
        let before = fingerprint_of_world(&sb, &[("zeus", "xinyan_cache")]);
        let run = replmend(&["repair", "--replica", &sb.node("n2").url(), "--dry-run"]);
        assert_eq!(run.code, exit::OK, "{flavor}: {}", run.stderr);
        let out = &run.stdout;
        assert!(
            out.contains("differs in payload, hits, created_at"),
            "{out}"
        );
        assert!(
            out.contains("1. overwrite") && out.contains("(recommended)"),
            "{out}"
        );
        assert!(out.contains("SET SESSION sql_log_bin = 0;"), "{out}");
        assert!(
            out.contains("DELETE FROM `zeus`.`xinyan_cache` WHERE `id` <=> ?;"),
            "{out}"
        );
        assert!(
            out.contains(&format!(
                "[replica {}",
                sb.node("n2").url().trim_start_matches("mysql://root@")
            )),
            "{out}"
        );
        assert!(
            out.contains(&format!(
                "[source {}",
                sb.node("n1").url().trim_start_matches("mysql://root@")
            )),
            "{out}"
        );
        match flavor {
            Flavor::MySql => assert!(out.contains("SET GTID_NEXT = '"), "{out}"),
            Flavor::MariaDb => assert!(out.contains("SET GLOBAL gtid_slave_pos = '"), "{out}"),
        }
        let json = replmend(&[
            "plan",
            "--replica",
            &sb.node("n2").url(),
            "--format",
            "json",
        ]);
        assert_eq!(json.code, exit::REPLICATION_ERROR, "{}", json.stderr);
        let j = json.json();
        assert_eq!(j["plan"]["plan"]["remedy"], "overwrite");
        assert_eq!(j["plan"]["options"][0]["rows_lost"], 0);
        let after = fingerprint_of_world(&sb, &[("zeus", "xinyan_cache")]);
        assert_eq!(before, after, "{flavor}: a dry run changed something");
    }
}

#[test]
fn seed_scripted_overwrite_winner_source_both_flavors() {
    for flavor in FLAVORS {
        let sb = incident(flavor, Topology::DualMaster, "seed-dual-master-1062");
        let (n1, n2) = (sb.node("n1"), sb.node("n2"));
        let winner = one(n1, SEED_ROW);
        let loser = one(n2, SEED_ROW);
        assert_ne!(winner, loser);
        let journal = journal_path(&format!("seed-{flavor}"));
        let run = replmend(&[
            "repair",
            "--replica",
            &n2.url(),
            "--yes",
            "--remedy",
            "overwrite",
            "--winner",
            "source",
            "--journal",
            &journal,
            "--format",
            "json",
        ]);
        assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
        assert_eq!(run.stderr.matches("step  1 [").count(), 1, "{}", run.stderr);
        let j = run.json();
        assert_eq!(j["outcome"], "repaired", "{j}");
        assert_eq!(j["incidents"][0]["applied"]["rows_agree"], true, "{j}");
        assert!(healthy(n1) && healthy(n2), "{flavor}: both SQL threads run");
        assert_eq!(one(n1, SEED_ROW), winner);
        assert_eq!(one(n2, SEED_ROW), winner);
        let text = std::fs::read_to_string(&journal).unwrap();
        assert_eq!(journaled_rows(&journal), 1, "{text}");
        assert!(
            text.contains("db02") && text.contains(&n2.port.to_string()),
            "the loser's row is journaled: {text}"
        );

        // restore gives back the exact previous row on the loser.
        let restore = replmend(&["restore", &journal, "--format", "json"]);
        assert_eq!(restore.code, exit::OK, "{}", restore.stderr);
        assert_eq!(restore.json()["rows"][0]["outcome"], "restored");
        assert_eq!(one(n2, SEED_ROW), loser, "{flavor}: restore");
        assert_eq!(one(n1, SEED_ROW), winner, "the restore did not replicate");
        // The pair now differs: the restore says so and names the command that mends it.
        let warning = restore.json()["warnings"][0]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(warning.contains("dual-master pair"), "{}", restore.stdout);
        let command = warning
            .split_once("with these versions: replmend ")
            .map(|(_, c)| c.to_string())
            .unwrap_or_else(|| panic!("no command in {warning}"));
        let mut args: Vec<&str> = command.split_whitespace().collect();
        args.push("--yes");
        let mend = replmend(&args);
        assert_eq!(
            mend.code,
            exit::OK,
            "{command}: {}{}",
            mend.stdout,
            mend.stderr
        );
        assert!(healthy(n1) && healthy(n2));
        assert_eq!(
            one(n1, SEED_ROW),
            loser,
            "{flavor}: the restored version on both"
        );
        let again = replmend(&["restore", &journal, "--format", "json"]);
        assert_eq!(again.json()["rows"][0]["outcome"], "already_present");
        assert!(again.json().get("warnings").is_none(), "{}", again.stdout);
        let _ = std::fs::remove_file(&journal);
    }
}

#[test]
fn winner_replica_and_newest() {
    for flavor in FLAVORS {
        for (winner, expect_from) in [
            ("replica", "n2"),
            ("newest:created_at", "n2"),
            ("newest:hits", "n2"),
        ] {
            let sb = incident(flavor, Topology::DualMaster, "seed-dual-master-1062");
            let expected = one(sb.node(expect_from), SEED_ROW);
            let journal = journal_path(&format!("w-{flavor}-{}", winner.replace(':', "-")));
            let run = replmend(&[
                "repair",
                "--replica",
                &sb.node("n2").url(),
                "--yes",
                "--winner",
                winner,
                "--journal",
                &journal,
            ]);
            assert_eq!(
                run.code,
                exit::OK,
                "{flavor} {winner}: {}{}",
                run.stdout,
                run.stderr
            );
            assert_eq!(one(sb.node("n1"), SEED_ROW), expected, "{flavor} {winner}");
            assert_eq!(one(sb.node("n2"), SEED_ROW), expected, "{flavor} {winner}");
            assert!(healthy(sb.node("n1")) && healthy(sb.node("n2")));
            let _ = std::fs::remove_file(&journal);
        }
    }
}

/// (recipe, table, key condition) of the source-replica incidents.
const RECIPES: &[(&str, &str)] = &[
    (
        "unique-secondary-1062",
        "SELECT id, email, name FROM shop.users ORDER BY id",
    ),
    (
        "composite-pk-quotes-1062",
        "SELECT sku, bin, qty FROM inv.stock ORDER BY sku, bin",
    ),
    (
        "batch-50-one-conflict-1062",
        "SELECT COUNT(*), SUM(v) FROM metrics.samples",
    ),
    (
        "update-missing-1032",
        "SELECT id, status, balance FROM crm.accounts ORDER BY id",
    ),
    (
        "delete-missing-1032",
        "SELECT id, status, balance FROM crm.accounts ORDER BY id",
    ),
    (
        "hostile-values-1062",
        "SELECT HEX(`id ``k```), `näme`, `maybe`, LENGTH(`big`) FROM `we``ird db`.`tab le ✓`",
    ),
];

#[test]
fn every_remedy_on_every_recipe_mariadb() {
    every_remedy_on_every_recipe(Flavor::MariaDb);
}

#[test]
fn every_remedy_on_every_recipe_mysql() {
    every_remedy_on_every_recipe(Flavor::MySql);
}

fn every_remedy_on_every_recipe(flavor: Flavor) {
    {
        for (recipe, query) in RECIPES {
            let sb = incident(flavor, Topology::SourceReplica, recipe);
            let plan = replmend(&[
                "plan",
                "--replica",
                &sb.node("n2").url(),
                "--format",
                "json",
            ])
            .json();
            let remedies: Vec<String> = plan["plan"]["options"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|o| o["applicable"] == true)
                .map(|o| o["remedy"].as_str().unwrap().to_string())
                .collect();
            assert!(!remedies.is_empty(), "{flavor} {recipe}: {plan}");
            drop(sb);
            for remedy in remedies {
                let sb = incident(flavor, Topology::SourceReplica, recipe);
                let (n1, n2) = (sb.node("n1"), sb.node("n2"));
                let replica_before = n2.query_rows(query).unwrap();
                let journal = journal_path(&format!("r-{flavor}-{recipe}-{remedy}"));
                let run = replmend(&[
                    "repair",
                    "--replica",
                    &n2.url(),
                    "--yes",
                    "--remedy",
                    &remedy,
                    "--allow-data-loss",
                    "--journal",
                    &journal,
                ]);
                assert_eq!(
                    run.code,
                    exit::OK,
                    "{flavor} {recipe} {remedy}: {}{}",
                    run.stdout,
                    run.stderr
                );
                assert!(healthy(n2), "{flavor} {recipe} {remedy}: replication runs");
                n2.wait_caught_up(Duration::from_secs(30)).unwrap();
                let (src, rep) = (n1.query_rows(query).unwrap(), n2.query_rows(query).unwrap());
                if *recipe == "unique-secondary-1062" {
                    let orders = n2.query_rows("SELECT id FROM shop.orders").unwrap();
                    assert_eq!(
                        orders.len(),
                        1,
                        "{flavor} {remedy}: deleting a parent must not cascade"
                    );
                }
                match remedy.as_str() {
                    // The whole transaction applied: the replica matches the source.
                    "overwrite" => assert_eq!(src, rep, "{flavor} {recipe} {remedy}"),
                    // The transaction was skipped: the replica kept what it had.
                    _ => assert_eq!(rep, replica_before, "{flavor} {recipe} {remedy}"),
                }
                let _ = std::fs::remove_file(&journal);
            }
        }
    }
}

#[test]
fn refusals_change_nothing() {
    for flavor in FLAVORS {
        let sb = incident(
            flavor,
            Topology::SourceReplica,
            "batch-50-one-conflict-1062",
        );
        let n2 = sb.node("n2");
        let tables = [("metrics", "samples")];
        let before = fingerprint_of_world(&sb, &tables);
        // No terminal and no --yes.
        let run = replmend(&["repair", "--replica", &n2.url()]);
        assert_eq!(run.code, exit::REFUSED, "{}", run.stderr);
        // A remedy that loses 49 rows, without --allow-data-loss.
        let skip = if flavor == Flavor::MySql {
            "inject-gtid"
        } else {
            "skip"
        };
        let run = replmend(&["repair", "--replica", &n2.url(), "--yes", "--remedy", skip]);
        assert_eq!(run.code, exit::REFUSED, "{flavor}: {}", run.stderr);
        assert!(run.stderr.contains("49 other row(s)"), "{}", run.stderr);
        // A remedy that does not apply.
        let other = if flavor == Flavor::MySql {
            "skip"
        } else {
            "inject-gtid"
        };
        let run = replmend(&["repair", "--replica", &n2.url(), "--yes", "--remedy", other]);
        assert_eq!(run.code, exit::REFUSED, "{flavor}: {}", run.stderr);
        // Another repair holds the lock.
        let mut holder = n2.conn().unwrap();
        use mysql::prelude::Queryable;
        let got: Option<i64> = holder
            .query_first("SELECT GET_LOCK('replmend.repair', 0)")
            .unwrap();
        assert_eq!(got, Some(1));
        let run = replmend(&["repair", "--replica", &n2.url(), "--yes"]);
        assert_eq!(run.code, exit::REFUSED, "{flavor}: {}", run.stderr);
        assert!(
            run.stderr.contains("another repair is running"),
            "{}",
            run.stderr
        );
        drop(holder);
        assert_eq!(
            before,
            fingerprint_of_world(&sb, &tables),
            "{flavor}: a refusal changed something"
        );
    }
}

#[test]
fn two_concurrent_repairs_only_one_acts() {
    for flavor in FLAVORS {
        let sb = incident(flavor, Topology::DualMaster, "seed-dual-master-1062");
        let url = sb.node("n2").url();
        let j1 = journal_path(&format!("c1-{flavor}"));
        let j2 = journal_path(&format!("c2-{flavor}"));
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(|| replmend(&["repair", "--replica", &url, "--yes", "--journal", &j1]));
            let b = s.spawn(|| replmend(&["repair", "--replica", &url, "--yes", "--journal", &j2]));
            (a.join().unwrap(), b.join().unwrap())
        });
        let codes = [a.code, b.code];
        assert!(
            codes.contains(&0),
            "{flavor}: one repairs: {}{}",
            a.stderr,
            b.stderr
        );
        // The other either found the lock held or, arriving later, nothing left to repair.
        let journaled: usize = [&j1, &j2].iter().map(|j| journaled_rows(j)).sum();
        assert_eq!(journaled, 1, "{flavor}: exactly one row journaled");
        assert!(healthy(sb.node("n1")) && healthy(sb.node("n2")));
        assert_eq!(one(sb.node("n1"), SEED_ROW), one(sb.node("n2"), SEED_ROW));
        let _ = (std::fs::remove_file(&j1), std::fs::remove_file(&j2));
    }
}

#[test]
fn killed_at_every_step_then_rerun_converges() {
    for flavor in FLAVORS {
        for step in 1..=8 {
            let sb = incident(flavor, Topology::DualMaster, "seed-dual-master-1062");
            let (n1, n2) = (sb.node("n1"), sb.node("n2"));
            let winner = one(n1, SEED_ROW);
            let loser = one(n2, SEED_ROW);
            let journal = journal_path(&format!("k-{flavor}-{step}"));
            let crashed = replmend_env(
                &[
                    "repair",
                    "--replica",
                    &n2.url(),
                    "--yes",
                    "--winner",
                    "source",
                    "--journal",
                    &journal,
                ],
                &[("REPLMEND_TEST_CRASH_AFTER_STEP", &step.to_string())],
            );
            assert_ne!(
                crashed.code,
                exit::OK,
                "{flavor} step {step}: the run was killed"
            );
            let rerun = replmend(&[
                "repair",
                "--replica",
                &n2.url(),
                "--yes",
                "--winner",
                "source",
                "--journal",
                &journal,
            ]);
            assert_eq!(
                rerun.code,
                exit::OK,
                "{flavor} killed after step {step}, re-run: {}{}",
                rerun.stdout,
                rerun.stderr
            );
            assert!(healthy(n1) && healthy(n2), "{flavor} step {step}");
            assert_eq!(one(n1, SEED_ROW), winner, "{flavor} step {step}");
            assert_eq!(one(n2, SEED_ROW), winner, "{flavor} step {step}");
            // Nothing lost: the loser's row is in the journal.
            let text = std::fs::read_to_string(&journal).unwrap_or_default();
            if step >= 3 {
                assert!(text.contains("db02"), "{flavor} step {step}: {text}");
            }
            let _ = loser;
            let _ = std::fs::remove_file(&journal);
        }
    }
}

#[test]
fn until_healthy_batches_consecutive_conflicts() {
    let query = "SELECT id, owner FROM queue.jobs ORDER BY id";
    for flavor in FLAVORS {
        let sb = incident(
            flavor,
            Topology::SourceReplica,
            "consecutive-20-conflicts-1062",
        );
        let (n1, n2) = (sb.node("n1"), sb.node("n2"));
        let journal = journal_path(&format!("batch-{flavor}"));
        let run = replmend(&[
            "repair",
            "--replica",
            &n2.url(),
            "--yes",
            "--remedy",
            "overwrite",
            "--until-healthy",
            "--journal",
            &journal,
            "--format",
            "json",
        ]);
        assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
        let j = run.json();
        assert_eq!(j["outcome"], "repaired");
        assert_eq!(
            j["incidents"].as_array().unwrap().len(),
            1,
            "{flavor}: one stop/start for all twenty: {j}"
        );
        assert_eq!(journaled_rows(&journal), 20);
        n2.wait_caught_up(Duration::from_secs(30)).unwrap();
        assert_eq!(n1.query_rows(query).unwrap(), n2.query_rows(query).unwrap());
        let _ = std::fs::remove_file(&journal);

        // A policy that cannot batch goes one incident at a time and stops at --max.
        let sb = incident(
            flavor,
            Topology::SourceReplica,
            "consecutive-20-conflicts-1062",
        );
        let n2 = sb.node("n2");
        let before = n2.query_rows(query).unwrap();
        let skip = if flavor == Flavor::MySql {
            "inject-gtid"
        } else {
            "skip"
        };
        let run = replmend(&[
            "repair",
            "--replica",
            &n2.url(),
            "--yes",
            "--remedy",
            skip,
            "--allow-data-loss",
            "--until-healthy",
            "--max",
            "3",
            "--journal",
            &journal,
            "--format",
            "json",
        ]);
        assert_eq!(
            run.code,
            exit::REPLICATION_ERROR,
            "{flavor}: {}{}",
            run.stdout,
            run.stderr
        );
        let j = run.json();
        assert_eq!(j["incidents"].as_array().unwrap().len(), 3, "{j}");
        assert_eq!(j["outcome"], "stopped_again");
        assert_eq!(
            n2.query_rows(query).unwrap(),
            before,
            "skips keep the replica's rows"
        );
        let _ = std::fs::remove_file(&journal);
    }
}

#[test]
fn missing_privileges_are_named_before_anything_changes() {
    for flavor in FLAVORS {
        let sb = incident(
            flavor,
            Topology::SourceReplica,
            "batch-50-one-conflict-1062",
        );
        let grants = match flavor {
            // No BINLOG ADMIN: sql_log_bin cannot be turned off for the overwrite.
            Flavor::MariaDb => {
                "SELECT, INSERT, DELETE, REPLICATION SLAVE, REPLICATION SLAVE ADMIN, SLAVE MONITOR"
            }
            // No SYSTEM_VARIABLES_ADMIN / SESSION_VARIABLES_ADMIN.
            Flavor::MySql => {
                "SELECT, INSERT, DELETE, REPLICATION SLAVE, REPLICATION CLIENT, REPLICATION_SLAVE_ADMIN"
            }
        };
        for n in &sb.nodes {
            n.exec(&format!(
                "SET SESSION sql_log_bin = 0; CREATE USER 'lim'@'127.0.0.1'; GRANT {grants} ON *.* TO 'lim'@'127.0.0.1'"
            ))
            .unwrap();
        }
        let before = fingerprint_of_world(&sb, &[("metrics", "samples")]);
        let url = sb.node("n2").url().replace("root@", "lim@");
        let journal = journal_path(&format!("priv-{flavor}"));
        let run = replmend(&[
            "repair",
            "--replica",
            &url,
            "--yes",
            "--remedy",
            "overwrite",
            "--journal",
            &journal,
        ]);
        assert_eq!(
            run.code,
            exit::REFUSED,
            "{flavor}: {}{}",
            run.stdout,
            run.stderr
        );
        let needed = if flavor == Flavor::MariaDb {
            "BINLOG ADMIN"
        } else {
            "SYSTEM_VARIABLES_ADMIN"
        };
        assert!(
            run.stderr.contains("preflight refused") && run.stderr.contains(needed),
            "{}",
            run.stderr
        );
        assert_eq!(
            before,
            fingerprint_of_world(&sb, &[("metrics", "samples")]),
            "{flavor}: nothing changed"
        );
        assert!(
            !std::path::Path::new(&journal).exists(),
            "{flavor}: a run that changed nothing leaves no journal behind"
        );
    }
}

// Privileges held through a role count (issue 24): SHOW GRANTS alone names the role granted,
// not what it grants, and the preflight refused an account that holds everything through its
// default role.
#[test]
fn privileges_held_through_a_default_role_pass_the_preflight() {
    for flavor in FLAVORS {
        let sb = incident(
            flavor,
            Topology::SourceReplica,
            "batch-50-one-conflict-1062",
        );
        let (grants, setup) = match flavor {
            Flavor::MariaDb => (
                "SELECT, INSERT, DELETE, SUPER, REPLICATION SLAVE, REPLICATION SLAVE ADMIN, SLAVE MONITOR, BINLOG ADMIN, BINLOG MONITOR",
                "CREATE ROLE fixer; GRANT {g} ON *.* TO fixer; \
                 CREATE USER 'viarole'@'127.0.0.1'; GRANT fixer TO 'viarole'@'127.0.0.1'; \
                 SET DEFAULT ROLE fixer FOR 'viarole'@'127.0.0.1'",
            ),
            Flavor::MySql => (
                "SELECT, INSERT, DELETE, REPLICATION SLAVE, REPLICATION CLIENT, REPLICATION_SLAVE_ADMIN, SYSTEM_VARIABLES_ADMIN",
                "CREATE ROLE 'fixer'; GRANT {g} ON *.* TO 'fixer'; \
                 CREATE USER 'viarole'@'127.0.0.1'; GRANT 'fixer' TO 'viarole'@'127.0.0.1'; \
                 SET DEFAULT ROLE 'fixer' TO 'viarole'@'127.0.0.1'",
            ),
        };
        for n in &sb.nodes {
            n.exec(&format!(
                "SET SESSION sql_log_bin = 0; {}",
                setup.replace("{g}", grants)
            ))
            .unwrap();
        }
        let url = sb.node("n2").url().replace("root@", "viarole@");
        let journal = journal_path(&format!("role-{flavor}"));
        let run = replmend(&[
            "repair",
            "--replica",
            &url,
            "--yes",
            "--remedy",
            "overwrite",
            "--journal",
            &journal,
        ]);
        assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
        assert!(sb.node("n2").sql_error().unwrap().is_none(), "{flavor}");
    }
}
