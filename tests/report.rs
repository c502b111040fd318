//! `replmend report` (issue 22, part 3): a 1062 caused on real servers of both flavors,
//! repaired with `repair --yes --journal J`, then the postmortem written from J — the
//! Markdown checked as text, the HTML rendered by a real headless browser (Debian's
//! chromium, installed by scripts/install-deps) — and bad input refused in one sentence.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::*;

const CATCH_UP: Duration = Duration::from_secs(60);

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("replmend-report-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// The errant write on the replica (its binary log on) repaired with `--yes`: its journal.
fn repaired(flavor: Flavor) -> (Sandbox, String) {
    let sb = incident(flavor, Topology::SourceReplica, "errant-replica-write-1062");
    let journal = journal_path(&format!("report-{flavor}"));
    let _ = std::fs::remove_file(&journal);
    let url = sb.node("n2").url();
    let run = replmend(&["repair", "--replica", &url, "--yes", "--journal", &journal]);
    assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
    (sb, journal)
}

fn report(args: &[&str]) -> Run {
    let mut all = vec!["report"];
    all.extend_from_slice(args);
    replmend(&all)
}

fn assert_contains(text: &str, wants: &[&str], what: &str) {
    for want in wants {
        assert!(text.contains(want), "{what}: no {want:?} in\n{text}");
    }
}

fn markdown_checked(flavor: Flavor, journal: &str) {
    let md = report(&[journal, "--format", "markdown"]);
    assert_eq!(md.code, exit::OK, "{flavor}: {}", md.stderr);
    // Kept for a human to read, beside the screenshots.
    let kept = tmp(&format!("report-{flavor}.md"));
    std::fs::write(&kept, &md.stdout).unwrap();
    eprintln!("{flavor}: markdown {}", kept.display());
    assert_contains(
        &md.stdout,
        &[
            "## Replication incident: error 1062 on hr.staff",
            "### Timeline (UTC",
            "| diagnosis confirmed under the repair lock | a duplicate key on insert on hr.staff; cause: a write made directly on the replica |",
            "| plan to run | overwrite",
            "| verified | replication running and caught up |",
            "**A write made directly on the replica.**",
            "**Prevention:**",
            "super_read_only",
            "### Origin",
            "replica: last written by",
            "### Rows changed (before → after)",
            "| name | `'written on the replica'` | `'written on the source'` | **≠ differs** |",
            "| id | `42` | `42` |  |",
            "### What was lost",
            "### Verification",
            "the incident's rows are identical on both nodes (compared)",
        ],
        &format!("{flavor} markdown"),
    );
    // A step line per step run, each with its time and result.
    let steps = md
        .stdout
        .lines()
        .filter(|l| l.contains(" | step ") && l.contains(" — "))
        .count();
    assert!(steps >= 3, "{flavor}: {}", md.stdout);
    // Markdown is the text format's: the same report without --format.
    assert_eq!(report(&[journal]).stdout, md.stdout);
    if flavor == Flavor::MySql {
        // MySQL reports when the applier stopped; MariaDB does not (the report says so).
        assert!(md.stdout.contains("(server) | applier of"), "{}", md.stdout);
    } else {
        assert!(
            md.stdout
                .contains("when the applier stopped: the server does not report it"),
            "{}",
            md.stdout
        );
    }
}

/// chromium renders the file headless; the screenshot is kept for a human to look at.
fn screenshot(html: &Path, png: &Path, size: &str) {
    let profile = tmp(&format!("chromium-profile-{size}"));
    let out = Command::new("timeout")
        .arg("120")
        .arg("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            &format!("--user-data-dir={}", profile.display()),
            &format!("--screenshot={}", png.display()),
            &format!("--window-size={size}"),
        ])
        .arg(format!("file://{}", html.display()))
        .output()
        .expect("run chromium (scripts/install-deps installs it)");
    let _ = std::fs::remove_dir_all(&profile);
    let len = std::fs::metadata(png).map(|m| m.len()).unwrap_or(0);
    assert!(
        len > 20_000,
        "chromium wrote no real screenshot ({len} bytes) of {}: {}",
        html.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let head = std::fs::read(png).unwrap();
    assert_eq!(&head[1..4], b"PNG");
}

fn html_checked(flavor: Flavor, journal: &str) {
    let html = tmp(&format!("report-{flavor}.html"));
    let run = report(&[journal, "--format", "html", "-o", html.to_str().unwrap()]);
    assert_eq!(run.code, exit::OK, "{flavor}: {}", run.stderr);
    assert!(run.stdout.is_empty(), "-o writes the file only");
    let mode = std::fs::metadata(&html).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "it holds rows, as the journal does");
    let text = std::fs::read_to_string(&html).unwrap();
    assert_contains(
        &text,
        &[
            "<!DOCTYPE html>",
            "name=\"viewport\"",
            "@media print",
            "class=\"timeline\"",
            "class=\"diff\"",
            "<tr class=\"d\"><td class=\"k\">name</td>",
            "&#39;written on the replica&#39;",
        ],
        &format!("{flavor} html"),
    );
    for external in ["src=", "href=", "@import", "url("] {
        assert!(!text.contains(external), "{flavor}: {external} in the HTML");
    }
    for (size, tag) in [("412,3000", "phone"), ("1280,2400", "desktop")] {
        let png = tmp(&format!("report-{flavor}-{tag}.png"));
        screenshot(&html, &png, size);
        eprintln!("{flavor}: screenshot {}", png.display());
    }
}

#[test]
fn a_repaired_1062_gives_its_postmortem_in_markdown_and_html() {
    for flavor in FLAVORS {
        let (sb, journal) = repaired(flavor);
        markdown_checked(flavor, &journal);
        html_checked(flavor, &journal);
        let json = report(&[&journal, "--format", "json"]).json();
        assert_eq!(json["schema"], "replmend.report/1");
        assert_eq!(json["incidents"][0]["cause"]["kind"], "errant_write");
        drop(sb);
        let _ = std::fs::remove_file(&journal);
    }
}

/// A journal without records (written before they existed) still gives a report, which
/// says what it cannot know.
#[test]
fn an_old_journal_of_rows_only_still_reports_and_says_what_is_unknown() {
    let (sb, journal) = repaired(Flavor::MariaDb);
    drop(sb);
    let text = std::fs::read_to_string(&journal).unwrap();
    let rows_only: String = text
        .lines()
        .filter(|l| !l.contains("\"record\":"))
        .map(|l| format!("{l}\n"))
        .collect();
    let old = tmp("old.jsonl");
    std::fs::write(&old, rows_only).unwrap();
    let md = report(&[old.to_str().unwrap()]);
    assert_eq!(md.code, exit::OK, "{}", md.stderr);
    assert_contains(
        &md.stdout,
        &[
            "## Changes journaled by replmend",
            "first row journaled",
            "Unknown: the journal records no cause.",
            "the diagnosis (error, cause, origins) is not in the journal",
            "| name | `'written on the replica'` | `'written on the source'` | **≠ differs** |",
        ],
        "old journal",
    );
    let _ = std::fs::remove_file(&journal);
}

/// Missing file, a file that is not a journal, an unknown incident: exit 8 and one sentence.
#[test]
fn bad_input_is_refused_in_one_sentence() {
    let not_journal = tmp("notes.txt");
    std::fs::write(&not_journal, "meeting notes\nsecond line\n").unwrap();
    let binary = tmp("binary.bin");
    std::fs::write(&binary, [0xff, 0xfe, 0x00, b'\n', 0xc3, b'\n']).unwrap();
    let journal = tmp("one.jsonl");
    std::fs::write(
        &journal,
        r#"{"schema":"replmend.journal/1","at":1,"fingerprint":"abc123","node":"h:1","action":"delete","table":{"schema":"s","name":"t"},"sql_log_bin":false,"columns":["id"],"values":[{"t":"number","v":"1"}],"key":["id"]}
"#,
    )
    .unwrap();
    let missing = tmp("absent.jsonl");
    let cases: [(Vec<&str>, &str); 4] = [
        (vec![missing.to_str().unwrap()], "no such file"),
        (
            vec![not_journal.to_str().unwrap()],
            "is not a replmend journal: line 1 is no journal entry",
        ),
        (
            vec![binary.to_str().unwrap()],
            "is not a replmend journal: it is not text",
        ),
        (
            vec![journal.to_str().unwrap(), "--incident", "zzz"],
            "has no incident zzz; it has abc123",
        ),
    ];
    for (args, want) in cases {
        let run = report(&args);
        assert_eq!(run.code, exit::BAD_INPUT, "{args:?}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{args:?}: {}", run.stderr);
        assert!(run.stderr.starts_with("replmend: "), "{}", run.stderr);
        assert!(run.stderr.contains(want), "{args:?}: {}", run.stderr);
        for debug in ["Os {", "Error {", "kind:", "Custom {"] {
            assert!(!run.stderr.contains(debug), "{}", run.stderr);
        }
    }
    let ok = report(&[journal.to_str().unwrap(), "--incident", "abc"]);
    assert_eq!(ok.code, exit::OK, "{}", ok.stderr);
    // markdown and html are the report's formats only.
    let status = replmend(&["status", "--format", "html"]);
    assert_eq!(status.code, exit::USAGE, "{}", status.stderr);
}

/// A resync's journal gives a drift report the same way: tables, rows, what changed.
#[test]
fn a_resync_journal_gives_a_drift_report() {
    for flavor in FLAVORS {
        let sb = started(flavor, Topology::SourceReplica);
        let (n1, n2) = (sb.node("n1"), sb.node("n2"));
        n1.exec("CREATE DATABASE t; CREATE TABLE t.x (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL)")
            .unwrap();
        insert(n1, "t.x", (1..=20).map(|i| format!("({i}, 'v{i}')")));
        n2.wait_caught_up(CATCH_UP).unwrap();
        drift(
            n2,
            "UPDATE t.x SET v = 'drift' WHERE id = 5; DELETE FROM t.x WHERE id = 6; \
             INSERT INTO t.x VALUES (200, 'extra')",
        );
        let journal = journal_path(&format!("resync-report-{flavor}"));
        let _ = std::fs::remove_file(&journal);
        let url = n2.url();
        let run = replmend(&["resync", "--replica", &url, "--yes", "--journal", &journal]);
        assert_eq!(run.code, exit::OK, "{flavor}: {}{}", run.stdout, run.stderr);
        let md = report(&[&journal]);
        assert_eq!(md.code, exit::OK, "{flavor}: {}", md.stderr);
        let text = md.stdout.replace(&n2.port.to_string(), "PORT");
        assert!(!text.contains("### Cause"), "{text}");
        assert_contains(
            &text,
            &[
                "## Drift repair (resync) of t.x",
                "| Drift found | 1 drifted table(s): 1 row(s) missing on the replica, 1 extra, 1 different |",
                "| plan to run | resync",
                "| verified | every row written; the rows resync wrote agree on both nodes (compared again) |",
                "| v | `'extra'` | *no row left at this key (or not recorded)* |  |",
                "**127.0.0.1:PORT · t.x · id=5** — replaced (the old version journaled whole)",
                "| v | `'drift'` | `'v5'` | **≠ differs** |",
                "| v | *no row at this key* | `'v6'` |  |",
                "the rows resync wrote are identical on both nodes (compared again)",
            ],
            &format!("{flavor} resync report"),
        );
        let _ = std::fs::remove_file(&journal);
    }
}

/// `watch --reports DIR` writes one report per incident it handles, and names its cause: the
/// watcher searches the conflicting rows' origins after it acted (within its
/// `--origin-budget`), journals them beside the repair's diagnosis and reports them in a
/// `cause` event, after the `action` event.
#[test]
fn watch_writes_a_report_per_incident_it_handles() {
    for flavor in FLAVORS {
        watch_report(flavor);
    }
}

fn watch_report(flavor: Flavor) {
    let sb = started(flavor, Topology::SourceReplica);
    let (n1, n2) = (sb.node("n1"), sb.node("n2"));
    n1.exec("CREATE DATABASE w; CREATE TABLE w.t (id INT PRIMARY KEY, v VARCHAR(20))")
        .unwrap();
    n2.wait_caught_up(CATCH_UP).unwrap();
    let n2_id = n2.query_value("SELECT @@server_id").unwrap().unwrap();
    let reports = tmp(&format!("watch-reports-{flavor}"));
    let _ = std::fs::remove_dir_all(&reports);
    let journal = journal_path(&format!("watch-report-{flavor}"));
    let _ = std::fs::remove_file(&journal);
    let stdout = tmp(&format!("watch-stdout-{flavor}"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_replmend"))
        .args(["watch", "--replica", &n2.url(), "--interval", "0.1"])
        .args(["--format", "json"])
        .args([
            "--journal",
            &journal,
            "--reports",
            reports.to_str().unwrap(),
        ])
        .env_remove("MYSQL_PWD")
        .env_remove("REPLMEND_REPLICA")
        .env("HOME", tmp("watch-home"))
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // A 1062 on identical rows: the default policy skips it on its own. The replica's row
    // was written on the replica with its binary log on: an errant write.
    n2.exec("INSERT INTO w.t VALUES (1, 'same')").unwrap();
    n1.exec("INSERT INTO w.t VALUES (1, 'same')").unwrap();
    let started = std::time::Instant::now();
    let html = loop {
        let found = std::fs::read_dir(&reports).ok().and_then(|d| {
            d.flatten()
                .map(|e| e.path())
                .find(|p| p.extension().is_some_and(|x| x == "html"))
        });
        if let Some(p) = found {
            break p;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{flavor}: no report written: {}",
            std::fs::read_to_string(&stdout).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // The cause event follows the report.
    let events = || -> Vec<serde_json::Value> {
        std::fs::read_to_string(&stdout)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    let cause = loop {
        if let Some(e) = events().into_iter().find(|e| e["event"] == "cause") {
            break e;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{flavor}: no cause event"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // SAFETY: the child is ours; SIGTERM asks it to finish and exit.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
    std::thread::sleep(Duration::from_millis(200));
    let md = std::fs::read_to_string(html.with_extension("md")).unwrap();
    // The transaction skipped: MariaDB's skip counter, MySQL's empty transaction of its GTID.
    let remedy = match flavor {
        Flavor::MariaDb => "| plan to run | skip",
        Flavor::MySql => "| plan to run | inject-gtid",
    };
    assert_contains(
        &md,
        &[
            "## Replication incident: error 1062 on w.t",
            remedy,
            "| verified | replication running and caught up |",
            "a write made directly on the replica",
            &format!("replica's row was written on the replica itself (server_id {n2_id}"),
            "super_read_only",
            "### Origin",
        ],
        &format!("{flavor} watch report"),
    );
    assert!(
        !md.contains("the journal records no cause"),
        "{flavor}: {md}"
    );
    let mode = std::fs::metadata(&html).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // The JSON event: the cause and origins, the report; after the action event.
    assert_eq!(cause["cause"]["kind"], "errant_write", "{flavor}: {cause}");
    let o = &cause["origins"][0]["replica"];
    assert_eq!(o["found"], true, "{flavor}: {cause}");
    assert_eq!(o["writer"], "this_node", "{flavor}: {cause}");
    assert_eq!(
        cause["report"].as_str(),
        Some(html.to_str().unwrap()),
        "{flavor}: {cause}"
    );
    assert!(
        cause["message"].as_str().unwrap().contains("errant_write")
            && cause["message"].as_str().unwrap().contains("report: "),
        "{flavor}: {cause}"
    );
    let all = events();
    let at = |kind: &str| all.iter().position(|e| e["event"] == kind).unwrap();
    assert!(at("action") < at("cause"), "{flavor}: {all:?}");
    assert_eq!(
        all[at("action")]["action"]["outcome"],
        "repaired",
        "{flavor}"
    );
    let _ = std::fs::remove_file(&journal);
}
