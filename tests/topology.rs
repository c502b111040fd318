//! `replmend status --topology` on real fleets of both flavors (issue 23): a fan-out (one
//! source, three replicas) and a chain (source → relay → leaf), discovered from any node;
//! a replica stopped on an error, one with errant GTIDs, and one whose server process is
//! frozen (SIGSTOP: it accepts no query) are each named, and the frozen one does not hold up
//! the others beyond the connect deadline.

mod support;

use std::time::{Duration, Instant};

use replmend_sandbox::{Node, Sandbox};
use serde_json::Value;
use support::*;

fn topology(from: &Node) -> (Run, Value) {
    let run = replmend(&[
        "status",
        "--topology",
        "--replica",
        &from.url(),
        "--format",
        "json",
    ]);
    let j = run.json();
    assert_eq!(j["schema"], "replmend.topology/1", "{j}\n{}", run.stderr);
    (run, j)
}

fn endpoint(n: &Node) -> String {
    format!("127.0.0.1:{}", n.port)
}

/// The fleet's node at `n`.
fn at<'a>(j: &'a Value, n: &Node) -> &'a Value {
    j["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["endpoint"] == endpoint(n))
        .unwrap_or_else(|| panic!("{} not found: {j}", endpoint(n)))
}

/// The source each of its channels names.
fn sources(j: &Value, n: &Node) -> Vec<String> {
    at(j, n)["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["source"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_fan_out_is_found_from_any_node_with_each_replicas_state() {
    for flavor in FLAVORS {
        let sb: Sandbox = started(flavor, Topology::FanOut(3));
        let (n1, n2, n3, n4) = (sb.node("n1"), sb.node("n2"), sb.node("n3"), sb.node("n4"));
        // From a replica: up to the source, and down to its other replicas.
        let (run, j) = topology(n3);
        assert_eq!(run.code, exit::OK, "{flavor}: {j}");
        assert_eq!(j["nodes"].as_array().unwrap().len(), 4, "{flavor}: {j}");
        for r in [n2, n3, n4] {
            assert_eq!(sources(&j, r), [endpoint(n1)], "{flavor}: {j}");
        }
        let listed = at(&j, n1)["replicas"].as_array().unwrap().len();
        assert_eq!(listed, 3, "{flavor}: {j}");
        // One replica stopped on an error, one with an errant write.
        n1.exec("CREATE DATABASE t; CREATE TABLE t.k (id INT PRIMARY KEY)")
            .unwrap();
        for r in [n2, n3, n4] {
            r.wait_caught_up(Duration::from_secs(60)).unwrap();
        }
        n2.exec("SET SESSION sql_log_bin = 0; INSERT INTO t.k VALUES (1)")
            .unwrap();
        n1.exec("INSERT INTO t.k VALUES (1)").unwrap();
        n4.exec("CREATE DATABASE errant").unwrap();
        let stopped =
            wait_until(|| at(&topology(n1).1, n2)["channels"][0]["health"] == "sql_error");
        assert!(stopped, "{flavor}: n2 did not stop on its error");
        let (run, j) = topology(n1);
        assert_eq!(run.code, exit::REPLICATION_ERROR, "{flavor}: {j}");
        assert!(
            at(&j, n4)["errant"][0]["gtids"].is_string(),
            "{flavor}: {j}"
        );
        let text = replmend(&["status", "--topology", "--replica", &n1.url()]);
        assert!(
            text.stdout.contains("APPLIER STOPPED"),
            "{flavor}: {}",
            text.stdout
        );
        assert!(
            text.stdout.contains("errant GTIDs"),
            "{flavor}: {}",
            text.stdout
        );
        // A frozen replica: named unreachable, the others still looked at in time.
        signal(n3.pid, "-STOP");
        let started = Instant::now();
        let (run, j) = topology(n1);
        let took = started.elapsed();
        signal(n3.pid, "-CONT");
        assert_ne!(run.code, exit::OK, "{flavor}: {j}");
        // Named unreachable: as a node (its host was listed: MariaDB), or, listed without a
        // host (MySQL), as the source's replica that could not be confirmed at its address.
        let as_node = j["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["endpoint"] == endpoint(n3));
        let named = match as_node {
            Some(node) => node["error"].as_str(),
            None => at(&j, n1)["replicas"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["server_id"] == 3)
                .and_then(|r| r["error"].as_str()),
        };
        assert!(
            named.is_some_and(|e| e.contains("did not answer in time")),
            "{flavor}: {j}"
        );
        assert!(at(&j, n4)["error"].is_null(), "{flavor}: {j}");
        assert!(took < Duration::from_secs(30), "{flavor}: {took:?}");
        sb.stop();
    }
}

#[test]
fn a_chain_is_drawn_source_relay_leaf_from_the_leaf() {
    for flavor in FLAVORS {
        let sb = started(flavor, Topology::Chain);
        let (n1, n2, n3) = (sb.node("n1"), sb.node("n2"), sb.node("n3"));
        let (run, j) = topology(n3);
        assert_eq!(run.code, exit::OK, "{flavor}: {j}");
        assert_eq!(sources(&j, n3), [endpoint(n2)], "{flavor}: {j}");
        assert_eq!(sources(&j, n2), [endpoint(n1)], "{flavor}: {j}");
        assert!(sources(&j, n1).is_empty(), "{flavor}: {j}");
        let text = replmend(&["status", "--topology", "--replica", &n3.url()]);
        // After the heading (which names the node it started from).
        let lines: Vec<&str> = text.stdout.lines().skip(1).collect();
        let line_of = |n: &Node| {
            lines
                .iter()
                .position(|l| l.contains(&endpoint(n)))
                .unwrap_or_else(|| panic!("{flavor}: {}", text.stdout))
        };
        assert!(line_of(n1) < line_of(n2) && line_of(n2) < line_of(n3));
        assert!(
            lines[line_of(n3)].starts_with("   └─ "),
            "{flavor}: {}",
            text.stdout
        );
        // One hop from the leaf: its relay only.
        let run = replmend(&[
            "status",
            "--topology",
            "--depth",
            "1",
            "--replica",
            &n3.url(),
            "--format",
            "json",
        ]);
        assert_eq!(run.json()["nodes"].as_array().unwrap().len(), 2, "{flavor}");
        // verify of the leaf against the chain's head: no channel of the leaf comes from it,
        // so verify cannot wait for lag behind it, and says so.
        n1.exec("CREATE DATABASE ch; CREATE TABLE ch.t (id INT PRIMARY KEY); INSERT INTO ch.t VALUES (1)")
            .unwrap();
        n2.wait_caught_up(Duration::from_secs(60)).unwrap();
        n3.wait_caught_up(Duration::from_secs(60)).unwrap();
        let (s, r) = (n1.url(), n3.url());
        let args = [
            "verify",
            "--source",
            &s,
            "--replica",
            &r,
            "--tables",
            "ch.t",
        ];
        let run = replmend(&[&args[..], &["--format", "json"]].concat());
        let j = run.json();
        assert_eq!(run.code, exit::OK, "{flavor}: {j}");
        assert_eq!(j["replication"], "other_source", "{flavor}: {j}");
        let says = format!(
            "replicates from {}, not from {}",
            endpoint(n2),
            endpoint(n1)
        );
        assert!(j["warnings"].to_string().contains(&says), "{flavor}: {j}");
        sb.stop();
    }
}

fn wait_until(mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    false
}
