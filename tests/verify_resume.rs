//! `replmend verify --resume` on real servers of both flavors: a verify killed part way
//! through a table continues from its checkpoint. Tables it finished keep their result, the
//! table it was walking continues from the last key it compared (drift found before the kill
//! is still narrowed and reported, a change made after the kill to a range already compared
//! is not read again), and the finished verify leaves nothing to resume.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use replmend_sandbox::Node;
use serde_json::Value;
use support::*;

const CATCH_UP: Duration = Duration::from_secs(120);
/// Rows of `resumedb.t2`: enough that its walk in chunks of 25 takes several seconds.
const BIG: u32 = 300_000;

/// Filled, with fresh statistics: verify cuts an integer key by the row estimate, and a
/// stale one (MySQL caches it) makes few big chunks, a walk too quick to kill part way.
fn fill(source: &Node) {
    let digits = "(SELECT 0 i UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 \
                  UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 \
                  UNION ALL SELECT 8 UNION ALL SELECT 9)";
    source
        .exec(&format!(
            "CREATE DATABASE resumedb; \
             CREATE TABLE resumedb.t1 (id INT PRIMARY KEY, v VARCHAR(20)); \
             CREATE TABLE resumedb.t2 (id INT PRIMARY KEY, v VARCHAR(20)); \
             CREATE TABLE resumedb.t3 (k VARCHAR(20), n INT, v INT, PRIMARY KEY (k, n)); \
             INSERT INTO resumedb.t2 \
               SELECT n, CONCAT('v', n) FROM (SELECT a.i + 10*b.i + 100*c.i + 1000*d.i \
               + 10000*e.i + 100000*f.i + 1 AS n FROM {digits} a, {digits} b, {digits} c, \
               {digits} d, {digits} e, {digits} f) s WHERE n <= {BIG}; \
             INSERT INTO resumedb.t1 SELECT id, v FROM resumedb.t2 WHERE id <= 2000; \
             INSERT INTO resumedb.t3 SELECT CONCAT('k', id % 7), id, id FROM resumedb.t2 \
               WHERE id <= 5000; \
             ANALYZE TABLE resumedb.t2"
        ))
        .unwrap();
}

/// Drift made on the replica alone.
fn drift_on(replica: &Node, sql: &str) {
    replica
        .exec(&format!("SET SESSION sql_log_bin = 0; {sql}"))
        .unwrap();
}

/// The state directory both runs keep their checkpoint in.
fn state_dir(flavor: Flavor) -> std::path::PathBuf {
    test_home().join(format!("state-resume-{flavor}"))
}

fn spawn_verify(replica: &Node, state: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_replmend"))
        .args([
            "verify",
            "--replica",
            &replica.url(),
            "--databases",
            "resumedb",
            "--chunk-size",
            "25",
            "--format",
            "json",
        ])
        .env("HOME", test_home())
        .env("XDG_STATE_HOME", state)
        .env_remove("MYSQL_PWD")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(state.with_extension("stderr")).expect("stderr file"))
        .spawn()
        .expect("spawn replmend verify")
}

/// The checkpoint's progress through `resumedb.t2` (the last key compared), once written.
fn through_t2(state: &std::path::Path) -> Option<i64> {
    let dir = state.join("replmend/verify");
    let file = std::fs::read_dir(dir).ok()?.flatten().find(|e| {
        e.file_name()
            .to_string_lossy()
            .ends_with(".checkpoint.json")
    })?;
    let cp: Value = serde_json::from_slice(&std::fs::read(file.path()).ok()?).ok()?;
    let partial = cp["partial"].as_array()?;
    let t2 = partial.iter().find(|p| p["table"]["name"] == "t2")?;
    t2["through"][0][1]["v"].as_str()?.parse().ok()
}

/// Kills the verify once the checkpoint shows it past key 3000 of t2 (and before its end).
fn kill_part_way(mut child: Child, state: &std::path::Path, flavor: Flavor) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(k) = through_t2(state).filter(|k| *k > 3000) {
            child.kill().expect("kill verify");
            child.wait().expect("reap verify");
            assert!(
                k < i64::from(BIG),
                "{flavor}: the verify got to the end before it could be killed"
            );
            return k;
        }
        if let Some(status) = child.try_wait().expect("verify status") {
            let log = std::fs::read_to_string(state.with_extension("stderr")).unwrap_or_default();
            panic!(
                "{flavor}: verify finished ({status}) before it could be killed part way:\n{log}"
            );
        }
        assert!(Instant::now() < deadline, "{flavor}: no checkpoint written");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn keys(t: &Value, what: &str) -> Vec<String> {
    t[what]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            let k = k.get("key").unwrap_or(k);
            k.as_array()
                .unwrap()
                .iter()
                .map(|p| p["value"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect()
}

fn resume(replica: &Node, state: &std::path::Path) -> Run {
    let url = replica.url();
    replmend_env(
        &[
            "verify",
            "--replica",
            &url,
            "--databases",
            "resumedb",
            "--chunk-size",
            "25",
            "--format",
            "json",
            "--resume",
        ],
        &[("XDG_STATE_HOME", state.to_str().unwrap())],
    )
}

#[test]
fn a_killed_verify_resumes_from_its_checkpoint() {
    for flavor in FLAVORS {
        let sb = started(flavor, Topology::SourceReplica);
        let (n1, n2) = (sb.node("n1"), sb.node("n2"));
        fill(n1);
        n2.wait_caught_up(CATCH_UP).unwrap();
        drift_on(
            n2,
            "UPDATE resumedb.t1 SET v = 'changed' WHERE id = 7; \
             UPDATE resumedb.t2 SET v = 'early' WHERE id = 10; \
             DELETE FROM resumedb.t2 WHERE id = 299990; \
             DELETE FROM resumedb.t3 WHERE k = 'k3' AND n = 10",
        );
        let state = state_dir(flavor);
        let _ = std::fs::remove_dir_all(&state);
        std::fs::create_dir_all(&state).unwrap();
        let through = kill_part_way(spawn_verify(n2, &state), &state, flavor);

        // After the kill: a change inside the range already compared (not read again) and
        // one beyond it (read by the resumed walk).
        drift_on(
            n2,
            "UPDATE resumedb.t2 SET v = 'late, compared' WHERE id = 1500; \
             UPDATE resumedb.t2 SET v = 'late, ahead' WHERE id = 299000",
        );
        let run = resume(n2, &state);
        assert_eq!(run.code, 11, "{flavor}: {}{}", run.stdout, run.stderr);
        let report = run.json();
        assert!(report["resumed"].is_u64(), "{flavor}: {report}");
        assert!(
            report["warnings"]
                .to_string()
                .contains("resumed the verify"),
            "{flavor}: {report}"
        );
        let t1 = table(&report, "resumedb", "t1");
        assert_eq!(keys(t1, "different_rows"), ["7"], "{flavor}: {t1}");
        let t2 = table(&report, "resumedb", "t2");
        assert_eq!(
            t2["rows"],
            u64::from(BIG),
            "{flavor}: t2's rows counted once (killed after key {through}): {t2}"
        );
        assert_eq!(
            keys(t2, "different_rows"),
            ["10", "299000"],
            "{flavor}: drift before the kill point found, the change behind it not read again: {t2}"
        );
        assert_eq!(keys(t2, "missing_keys"), ["299990"], "{flavor}: {t2}");
        let t3 = table(&report, "resumedb", "t3");
        assert_eq!(keys(t3, "missing_keys"), ["k3,10"], "{flavor}: {t3}");

        // Finished: nothing left to resume; a fresh verify sees the change behind the kill point.
        let again = resume(n2, &state);
        assert_eq!(again.code, 8, "{flavor}: {}{}", again.stdout, again.stderr);
        assert!(
            again.stderr.contains("no stopped verify"),
            "{flavor}: {}",
            again.stderr
        );
        let (run, report) = verify(n2, &["--databases", "resumedb", "--tables", "resumedb.t2"]);
        assert_eq!(run.code, 11, "{flavor}: {}", run.stderr);
        let t2 = table(&report, "resumedb", "t2");
        assert_eq!(
            keys(t2, "different_rows"),
            ["10", "1500", "299000"],
            "{flavor}: {t2}"
        );
        let _ = std::fs::remove_dir_all(&state);
    }
}
