//! Batch repair on real servers of both flavors: `repair --yes --remedy overwrite
//! --until-healthy` reads ahead past the failing transaction and resolves a stream of
//! conflicts of each kind the read-ahead follows (1062 on Update_rows, 1032 on Update_rows and
//! Delete_rows; 1062 on Write_rows is in tests/repair.rs) in one stop/start: every replica row
//! journaled, the nodes identical. The dry run shows the batch the repair runs.

mod support;

use std::time::Duration;

use support::*;

/// Each stream recipe (twenty conflicts in twenty transactions) and the rows to compare.
const STREAMS: [(&str, &str); 3] = [
    (
        "consecutive-20-updates-1062",
        "SELECT id, code, note FROM queue.slots ORDER BY id",
    ),
    (
        "consecutive-20-updates-missing-1032",
        "SELECT id, qty, label FROM queue.items ORDER BY id",
    ),
    (
        "consecutive-20-deletes-missing-1032",
        "SELECT id, qty, label FROM queue.items ORDER BY id",
    ),
];

/// The dry run's row step: all twenty rows, checked in one locking read and written in one
/// statement.
fn assert_one_batch(flavor: Flavor, recipe: &str, plan: &serde_json::Value) {
    let steps = plan["plan"]["plan"]["steps"].as_array().unwrap();
    let rows_step = steps
        .iter()
        .find(|s| !s["rows"].as_array().unwrap().is_empty())
        .unwrap_or_else(|| panic!("{flavor} {recipe}: no row step: {plan}"));
    assert_eq!(
        rows_step["rows"].as_array().unwrap().len(),
        20,
        "{flavor} {recipe}"
    );
    let roles: Vec<&serde_json::Value> = rows_step["statements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["role"])
        .collect();
    for kind in ["check_rows", "write_rows"] {
        let batch: Vec<_> = roles.iter().filter(|r| r["kind"] == kind).collect();
        assert_eq!(batch.len(), 1, "{flavor} {recipe}: {roles:?}");
        assert_eq!(batch[0]["count"], 20, "{flavor} {recipe}: {roles:?}");
    }
}

/// A batch repair of the replica at `url`, the source's version winning (add `--dry-run` or
/// `--yes`).
fn overwrite_args<'a>(url: &'a str, journal: &'a str) -> [&'a str; 10] {
    [
        "repair",
        "--replica",
        url,
        "--remedy",
        "overwrite",
        "--until-healthy",
        "--journal",
        journal,
        "--format",
        "json",
    ]
}

#[test]
fn streams_of_each_kind_are_repaired_in_one_stop_start() {
    for flavor in FLAVORS {
        for (recipe, query) in STREAMS {
            let sb = incident(flavor, Topology::SourceReplica, recipe);
            let (n1, n2) = (sb.node("n1"), sb.node("n2"));
            let journal = journal_path(&format!("batch-{flavor}-{recipe}"));
            let url = n2.url();
            let overwrite = overwrite_args(&url, &journal);
            let dry = replmend(&[&overwrite[..], &["--dry-run"]].concat());
            assert_eq!(
                dry.code,
                exit::OK,
                "{flavor} {recipe}: {}{}",
                dry.stdout,
                dry.stderr
            );
            assert_one_batch(flavor, recipe, &dry.json());

            let run = replmend(&[&overwrite[..], &["--yes"]].concat());
            assert_eq!(
                run.code,
                exit::OK,
                "{flavor} {recipe}: {}{}",
                run.stdout,
                run.stderr
            );
            let j = run.json();
            assert_eq!(j["outcome"], "repaired", "{flavor} {recipe}: {j}");
            assert_eq!(
                j["incidents"].as_array().unwrap().len(),
                1,
                "{flavor} {recipe}: one stop/start for all twenty: {j}"
            );
            assert_eq!(journaled_rows(&journal), 20, "{flavor} {recipe}");
            n2.wait_caught_up(Duration::from_secs(30)).unwrap();
            assert_eq!(
                n1.query_rows(query).unwrap(),
                n2.query_rows(query).unwrap(),
                "{flavor} {recipe}: the nodes differ after the repair"
            );
            let _ = std::fs::remove_file(&journal);
        }
    }
}

/// Conflicting keys in runs with gaps on BIGINT UNSIGNED up to its top value: the batch's
/// locking read and delete match each run of three or more as one range, the rest by value,
/// and the replica-only rows in the gaps (keys the source never wrote) are left as they are.
#[test]
fn runs_of_integer_keys_are_matched_as_ranges_and_the_gaps_left_alone() {
    let top = u64::MAX;
    let replica_only = [6, 8, 13, top - 1];
    for flavor in FLAVORS {
        let sb = incident(flavor, Topology::SourceReplica, "gapped-runs-bigint-1062");
        let n2 = sb.node("n2");
        let journal = journal_path(&format!("gaps-{flavor}"));
        let url = n2.url();
        let overwrite = overwrite_args(&url, &journal);
        let dry = replmend(&[&overwrite[..], &["--dry-run"]].concat());
        assert_eq!(dry.code, exit::OK, "{flavor}: {}{}", dry.stdout, dry.stderr);
        let text = dry.stdout.clone();
        assert!(
            text.contains("`id` BETWEEN ? AND ?") && text.contains("`id` IN (?, ?"),
            "{flavor}: runs as ranges, lone keys by value: {text}"
        );
        let run = replmend_env(
            &[&overwrite[..], &["--yes"]].concat(),
            &[("REPLMEND_TIMING", "1")],
        );
        assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
        assert_eq!(run.json()["outcome"], "repaired", "{flavor}");
        assert_eq!(journaled_rows(&journal), 15, "{flavor}");
        // A scripted run diagnoses once, under the lock, and does not re-check (issue 21).
        let at = |mark: &str| run.stderr.find(mark);
        assert!(
            at("repair lock held") < at("incident diagnosed")
                && at("not re-checked").is_some()
                && at("refreshed").is_none_or(|r| r > at("not re-checked").unwrap()),
            "{flavor}: {}",
            run.stderr
        );
        // Its journal still records the cause, searched beside the repair.
        let report = replmend(&["report", &journal, "--format", "markdown"]);
        assert_eq!(report.code, exit::OK, "{flavor}: {}", report.stderr);
        assert!(
            report.stdout.contains("### Cause")
                && !report.stdout.contains("the journal records no cause")
                && report.stdout.contains("### Origin"),
            "{flavor}: {}",
            report.stdout
        );
        n2.wait_caught_up(Duration::from_secs(30)).unwrap();
        let rows = n2
            .query_rows("SELECT id, owner FROM gaps.ids ORDER BY id")
            .unwrap();
        assert_eq!(rows.len(), 19, "{flavor}: {rows:?}");
        for row in rows {
            let id: u64 = row[0].as_deref().unwrap().parse().unwrap();
            let owner = if replica_only.contains(&id) {
                "replica"
            } else {
                "source"
            };
            assert_eq!(row[1].as_deref(), Some(owner), "{flavor}: row {id}");
        }
        let _ = std::fs::remove_file(&journal);
    }
}
