//! A DBA's habits (issue 12): the man page and completions generated from the options, one
//! channel's status, MariaDB's applier error time, examples one per line in `--help`.

mod support;

use support::*;

#[test]
fn man_page_and_completions_are_generated_from_the_options() {
    let man = replmend(&["--generate", "man"]);
    assert_eq!(man.code, exit::OK, "{}", man.stderr);
    assert!(
        man.stdout.starts_with(".ie") || man.stdout.contains(".TH replmend 1"),
        "{}",
        &man.stdout[..200]
    );
    for section in [
        "REPLMEND REPAIR",
        "REPLMEND WATCH",
        "REPLMEND VERIFY",
        "\\-\\-until\\-healthy",
    ] {
        assert!(
            man.stdout.contains(section),
            "{section} missing from the man page"
        );
    }
    for (kind, marker) in [
        ("complete-bash", "_replmend()"),
        ("complete-zsh", "#compdef replmend"),
        ("complete-fish", "complete -c replmend"),
        ("complete-powershell", "Register-ArgumentCompleter"),
    ] {
        let run = replmend(&["--generate", kind]);
        assert_eq!(run.code, exit::OK, "{kind}: {}", run.stderr);
        assert!(
            run.stdout.contains(marker),
            "{kind}: {}",
            &run.stdout[..200.min(run.stdout.len())]
        );
        assert!(run.stdout.contains("watch"), "{kind}");
    }
    let bad = replmend(&["--generate", "troff"]);
    assert_eq!(bad.code, exit::USAGE);
    let none = replmend(&[]);
    assert_eq!(none.code, exit::USAGE);
    assert!(
        none.stderr.contains("a command is required"),
        "{}",
        none.stderr
    );
    let missing = replmend(&["restore", "/nonexistent/journal.jsonl"]);
    assert_eq!(missing.code, exit::BAD_INPUT, "{}", missing.stderr);
    assert!(
        missing.stderr.contains("no such file"),
        "{}",
        missing.stderr
    );
    let help = replmend(&["repair", "--help"]);
    assert!(
        help.stdout.contains("Examples:\n  replmend repair --replica mysql://root@db2:3306 --dry-run\n  replmend repair"),
        "{}",
        help.stdout
    );
}

#[test]
fn status_of_one_channel_and_mariadb_error_time() {
    // MariaDB keeps the applier's error time only in performance_schema, OFF by default: this
    // test binary's servers run with it ON.
    // SAFETY: set before any server of this process starts; no other thread reads it yet.
    unsafe { std::env::set_var("REPLMEND_SANDBOX_SERVER_ARGS", "--performance-schema=ON") };
    let sb = incident(Flavor::MariaDb, Topology::MultiSource, "multi-source-1062");
    let url = sb.node("n3").url();
    let all = replmend(&["status", "--replica", &url, "--format", "json"]);
    assert_eq!(all.code, exit::REPLICATION_ERROR, "{}", all.stderr);
    let channels = all.json()["channels"].as_array().unwrap().len();
    assert_eq!(channels, 2);
    let stopped = all.json()["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["health"] == "sql_error")
        .cloned()
        .unwrap();
    let ts = stopped["last_sql_error"]["timestamp"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(ts.starts_with("20"), "MariaDB's error time: {stopped}");
    let name = stopped["name"].as_str().unwrap().to_string();
    let other = if name == "n1" { "n2" } else { "n1" };
    let one = replmend(&[
        "status",
        "--replica",
        &url,
        "--channel",
        other,
        "--format",
        "json",
    ]);
    assert_eq!(
        one.code,
        exit::OK,
        "the healthy channel alone: {}",
        one.stdout
    );
    assert_eq!(one.json()["channels"].as_array().unwrap().len(), 1);
    let text = replmend(&["status", "--replica", &url, "--channel", &name]);
    assert_eq!(text.code, exit::REPLICATION_ERROR);
    assert!(text.stdout.contains(&format!("at {ts}")), "{}", text.stdout);
    let unknown = replmend(&["status", "--replica", &url, "--channel", "nope"]);
    assert_eq!(unknown.code, exit::BAD_INPUT);
    assert!(
        unknown
            .stderr
            .contains("no replication channel named 'nope'"),
        "{}",
        unknown.stderr
    );
}
