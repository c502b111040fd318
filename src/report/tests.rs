//! The report from journal lines built by hand: a repair with every record, and an old
//! journal with rows only.

use super::record::*;
use super::*;
use crate::diagnosis::cause::CauseKind;
use crate::journal::{Action, Entry, State, StoredRow};
use crate::planner::RemedyId;
use crate::value::{Cell, Row, StoredCell};
use crate::vocab::{ConflictKind, Endpoint, TableRef};

fn row(v: &str) -> Row {
    Row {
        columns: vec!["id".into(), "v".into()],
        values: vec![Cell::Number("7".into()), Cell::Text(v.into())],
    }
}

fn table() -> TableRef {
    TableRef {
        schema: "shop".into(),
        name: "orders".into(),
    }
}

fn record(body: Body, at_ms: u64) -> Line {
    let r = Record {
        at_ms,
        ..Record::new("fp1", body)
    };
    Line::Record(serde_json::to_value(r).unwrap())
}

fn deleted() -> Entry {
    Entry {
        key: vec!["id".into()],
        after: Some(StoredRow::from_row(&row("from <source>"))),
        state: State::Done,
        ..Entry::row(
            "fp1",
            "fp1/2/0".into(),
            &Endpoint::new("db2", 3306),
            Action::Delete,
            &table(),
            &row("on replica"),
        )
    }
}

fn repair_lines() -> Vec<Line> {
    let replica = Endpoint::new("db2", 3306);
    let diagnosis = Body::Diagnosis(Box::new(DiagnosisRecord {
        replica: replica.clone(),
        replica_server: "MariaDB 10.11.6".into(),
        source: Some(Endpoint::new("db1", 3306)),
        source_server: Some("MariaDB 10.11.6".into()),
        channel: String::new(),
        kind: ConflictKind::DuplicateOnWrite,
        errno: 1062,
        message: "Duplicate entry '7' for key 'PRIMARY'".into(),
        stopped_at: None,
        table: table(),
        key_name: Some("PRIMARY".into()),
        gtid: Some("0-1-9".into()),
        transaction: None,
        statement: None,
        conflicts: vec![ConflictRecord {
            key: vec![KeyPart {
                column: "id".into(),
                value: StoredCell::Number("7".into()),
            }],
            event_row: StoredRow::from_row(&row("from <source>")),
            replica_row: Some(StoredRow::from_row(&row("on replica"))),
            source_row: Some(StoredRow::from_row(&row("from <source>"))),
            verdict: "differs in v".into(),
            origins: Some(vec![OriginRecord {
                node: "replica".into(),
                found: true,
                words: "replica: last written by GTID 0-2-4 at 2026-12-07 03:00:00 UTC".into(),
            }]),
        }],
        more_conflicts: 0,
        cause: Some(CauseRecord {
            kind: CauseKind::ErrantWrite,
            evidence: "the replica's row was written on the replica itself".into(),
            prevention: "SET PERSIST super_read_only = ON".into(),
        }),
        missing: Vec::new(),
    }));
    let plan = Body::Plan(PlanRecord {
        kind: RunKind::Repair,
        remedy: RemedyId::Overwrite,
        winner: None,
        loses: "the replica's version of 1 row (journaled)".into(),
        rows_lost: 0,
        versions_lost: 0,
        records_lost: 0,
        loss_unknown: false,
        tables: Vec::new(),
        drift: None,
        steps: Vec::new(),
        advice: Vec::new(),
    });
    let step = |n: usize, end: StepEnd| {
        Body::Step(StepRecord {
            step: n,
            endpoint: replica.clone(),
            description: format!("step {n}"),
            end,
            detail: "1 row(s) journaled and deleted".into(),
            started_ms: 0,
        })
    };
    let verified = Body::Verification(VerificationRecord {
        end: RunEnd::Repaired,
        resumed: vec![(replica.clone(), "caught up".into())],
        rows_agree: Some(true),
        rows_differ: Vec::new(),
        left_alone: Vec::new(),
        journaled_rows: 1,
        notes: Vec::new(),
    });
    vec![
        record(diagnosis, 1_765_000_000_000),
        record(plan, 1_765_000_000_100),
        Line::Entry(deleted()),
        record(step(2, StepEnd::Done), 1_765_000_000_200),
        record(step(5, StepEnd::CaughtUp), 1_765_000_000_900),
        record(verified, 1_765_000_001_000),
    ]
}

#[test]
fn a_repair_journal_gives_timeline_cause_rows_and_verification() {
    let pm = postmortem("j.jsonl", &repair_lines(), None).unwrap();
    let md = render(&pm, Style::Markdown);
    for want in [
        "## Replication incident: error 1062 on shop.orders",
        "### Timeline (UTC, 2025-12-06)",
        "| 05:46:40.000 | diagnosis confirmed under the repair lock | a duplicate key on insert on shop.orders; cause: a write made directly on the replica |",
        "| 05:46:40.200 | step 2 on db2:3306: step 2 | done — 1 row(s) journaled and deleted |",
        "**A write made directly on the replica.**",
        "**Prevention:** SET PERSIST super_read_only",
        "| v | `'on replica'` | `'from <source>'` | **≠ differs** |",
        "the incident's rows are identical on both nodes (compared)",
        "the replica's version of 1 row (journaled)",
        "when the applier stopped: the server does not report it",
    ] {
        assert!(md.contains(want), "{want}\n---\n{md}");
    }
    let html = render(&pm, Style::Html);
    assert!(html.contains("from &lt;source&gt;"), "escaped");
    assert!(!html.contains("from <source>"));
    assert!(html.contains("class=\"timeline\"") && html.contains("class=\"diff\""));
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("<script"));
}

#[test]
fn an_old_journal_of_rows_only_says_what_is_unknown() {
    let pm = postmortem("old.jsonl", &[Line::Entry(deleted())], None).unwrap();
    let md = render(&pm, Style::Markdown);
    for want in [
        "## Changes journaled by replmend",
        "first row journaled",
        "Unknown: the journal records no cause.",
        "the diagnosis (error, cause, origins) is not in the journal",
        "unknown: no verification recorded",
        "| v | `'on replica'` | `'from <source>'` | **≠ differs** |",
    ] {
        assert!(md.contains(want), "{want}\n---\n{md}");
    }
}

#[test]
fn bad_input_is_named() {
    assert_eq!(
        postmortem("x", &[], None).unwrap_err().to_string(),
        "x holds no journal entries: it is not a replmend journal, or is empty"
    );
    let e = postmortem("j", &repair_lines(), Some("nope")).unwrap_err();
    assert_eq!(e.to_string(), "j has no incident nope; it has fp1");
    assert_eq!(
        postmortem("j", &repair_lines(), Some("fp"))
            .unwrap()
            .incidents
            .len(),
        1
    );
}
