//! The human report of a diagnosis: the incident in one sentence, then each conflicting row
//! side by side (coloured on a terminal, plain when piped).

use std::fmt::Write;

use console::{measure_text_width, style};

use super::model::*;
use crate::value::Cell;

const COLUMN_WIDTH: usize = 40;

pub fn text(d: &Diagnosis) -> String {
    let mut out = String::new();
    section(&mut out, d, "");
    for e in &d.errant {
        let _ = writeln!(
            out,
            "\n{} {} executed on this replica are on no source ({}): rows written directly on the replica may be why it conflicts",
            style("Errant GTIDs:").bold(),
            e.gtids,
            e.source
        );
    }
    if let Some(rev) = &d.reverse {
        reverse(&mut out, d, rev);
    }
    if let Some(c) = &d.cause {
        let _ = writeln!(
            out,
            "\n{} {}: {}\n  prevention: {}",
            style("Cause:").bold(),
            serde_json::to_string(&c.kind)
                .unwrap_or_default()
                .trim_matches('"'),
            c.evidence,
            c.prevention
        );
    }
    out
}

fn reverse(out: &mut String, d: &Diagnosis, rev: &ReverseChannel) {
    if let Some(rd) = &rev.diagnosis {
        let _ = writeln!(
            out,
            "\n{} the reverse direction is stopped too{}:",
            style("Dual-master:").bold(),
            if rev.same_key {
                ", on the same key"
            } else {
                ""
            }
        );
        section(out, rd, "  ");
    } else if rev.stopped {
        let _ = writeln!(
            out,
            "\nDual-master: the reverse channel on {} is stopped ({}).",
            d.source
                .as_ref()
                .map(|s| s.endpoint.to_string())
                .unwrap_or("the source".to_string()),
            rev.error.as_deref().unwrap_or("no applier error")
        );
    } else {
        let _ = writeln!(
            out,
            "\nDual-master: {} also replicates from this replica; that direction is running.",
            d.source
                .as_ref()
                .map(|s| s.endpoint.to_string())
                .unwrap_or("the source".to_string())
        );
    }
}

fn sentence(d: &Diagnosis) -> String {
    let what = match d.kind {
        ConflictKind::DuplicateOnWrite => "an insert found the row already there",
        ConflictKind::DuplicateOnUpdate => "an update's new key value already exists",
        ConflictKind::MissingOnUpdate => "an update found no row to change",
        ConflictKind::MissingOnDelete => "a delete found no row to remove",
    };
    let key = d
        .key
        .as_ref()
        .map(|k| format!(" on key {} ({})", k.name, k.columns.join(", ")))
        .unwrap_or_default();
    format!(
        "Replica {} ({}) stopped with error {} on {}{}: {}.",
        d.replica.endpoint, d.replica.flavor, d.error.errno, d.table, key, what
    )
}

fn section(out: &mut String, d: &Diagnosis, indent: &str) {
    let _ = writeln!(out, "{indent}{}", style(sentence(d)).bold());
    let channel = if d.channel.is_empty() {
        "default channel".to_string()
    } else {
        format!("channel '{}'", d.channel)
    };
    let _ = writeln!(
        out,
        "{indent}  {channel} from {}",
        d.source
            .as_ref()
            .map(|s| format!("{} ({})", s.endpoint, s.flavor))
            .unwrap_or_else(|| "(source not read)".into())
    );
    if let Some(t) = &d.transaction {
        let _ = writeln!(
            out,
            "{indent}  transaction {}:{}..{}{}, {} row(s) in {} event(s), failed event ends at {}",
            t.source_log_file,
            t.start_pos,
            t.end_pos,
            t.gtid
                .as_ref()
                .map(|g| format!(" GTID {g}"))
                .unwrap_or_default(),
            t.rows_total,
            t.events.len(),
            t.failed_event_end_log_pos
        );
        if let Some(stmt) = &t.statement {
            let _ = writeln!(out, "{indent}  statement   {}", abbreviate(stmt, 200));
        }
    } else if let Some(g) = &d.gtid {
        let _ = writeln!(
            out,
            "{indent}  transaction GTID {g} (from the replica's status; the source's binlog was not read)"
        );
    }
    let _ = writeln!(out, "{indent}  {}", conflict_count(d));
    for c in &d.conflicts {
        conflict(out, d, c, indent);
        if let Some(o) = &c.origin {
            let _ = writeln!(
                out,
                "{indent}    {} {}",
                style("origin").dim(),
                super::origin::describe(&o.replica, "replica")
            );
            if let Some(s) = &o.source {
                let _ = writeln!(
                    out,
                    "{indent}    {} {}",
                    style("origin").dim(),
                    super::origin::describe(s, "source")
                );
            }
        }
    }
    if let Some(a) = &d.auto_key {
        rekey_facts(out, a, indent);
    }
    for m in &d.missing {
        let _ = writeln!(out, "{indent}  {} {m}", style("unknown:").yellow());
    }
}

/// "N conflicting row(s) of M", or unknown when the rows were not compared: an empty list
/// then is no evidence of "0".
fn conflict_count(d: &Diagnosis) -> String {
    let Some(n) = d.conflicting_rows else {
        return format!(
            "{} conflicting row(s): the transaction's rows were not compared with the replica's",
            style("unknown").yellow()
        );
    };
    let of = d
        .transaction
        .as_ref()
        .map(|t| format!(" of {} in the transaction", t.rows_total))
        .unwrap_or_default();
    format!("{n} conflicting row(s){of}")
}

/// What decides whether rekey can keep both records whole on this node.
fn rekey_facts(out: &mut String, a: &AutoKey, indent: &str) {
    for fk in &a.referenced_by {
        let _ = writeln!(
            out,
            "{indent}  referenced by {} ({}: {} -> {}, ON DELETE {}, ON UPDATE {})",
            fk.child,
            fk.name,
            fk.columns.join(", "),
            fk.referenced_columns.join(", "),
            fk.on_delete,
            fk.on_update
        );
    }
    for c in &a.unique_clashes {
        let _ = writeln!(
            out,
            "{indent}  unique key {}: the other node's {} is held here by the row {}",
            c.key,
            key_words(&c.values),
            key_words(&c.holder)
        );
    }
}

/// A key as `column=value, …`, values displayed unambiguously.
pub fn key_words(key: &[(String, Cell)]) -> String {
    words(key.iter().map(|(c, v)| (c.as_str(), v)))
}

/// A row's values as `column=value, …`.
pub fn row_words(row: &crate::value::Row) -> String {
    words(row.columns.iter().map(String::as_str).zip(&row.values))
}

fn words<'a>(pairs: impl Iterator<Item = (&'a str, &'a Cell)>) -> String {
    pairs
        .map(|(c, v)| format!("{c}={}", v.display()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn verdict_text(v: &Verdict) -> String {
    match v {
        Verdict::Identical => style("identical on both nodes").green().to_string(),
        Verdict::Differs { columns } => style(format!("differs in {}", columns.join(", ")))
            .red()
            .to_string(),
        Verdict::AbsentOnSource => style("absent on the source now").yellow().to_string(),
        Verdict::AbsentOnReplica => "absent on the replica, present on the source".to_string(),
        Verdict::AbsentOnBoth => "absent on both nodes".to_string(),
        Verdict::SourceUnknown => style("source not read").yellow().to_string(),
    }
}

fn conflict(out: &mut String, d: &Diagnosis, c: &Conflict, indent: &str) {
    let key: Vec<String> = c
        .key
        .iter()
        .map(|(k, v)| format!("{k}={}", v.display()))
        .collect();
    let _ = writeln!(
        out,
        "\n{indent}  row {} of the event, key {}: {}",
        c.row_index + 1,
        key.join(", "),
        verdict_text(&c.verdict)
    );
    let differs: Vec<&str> = match &c.verdict {
        Verdict::Differs { columns } => columns.iter().map(String::as_str).collect(),
        _ => Vec::new(),
    };
    let replica_label = format!("replica {}", d.replica.endpoint);
    let source_label = format!(
        "source {}",
        d.source
            .as_ref()
            .map(|s| s.endpoint.to_string())
            .unwrap_or("?".to_string())
    );
    let columns: Vec<&String> = c
        .replica_row
        .as_ref()
        .or(c.source_row.as_ref())
        .map(|r| r.columns.iter().collect())
        .unwrap_or_else(|| c.event_row.columns.iter().collect());
    let name_w = columns
        .iter()
        .map(|c| measure_text_width(c))
        .max()
        .unwrap_or(6)
        .clamp(6, 24);
    let _ = writeln!(
        out,
        "{indent}    {}  {}  {}  event",
        pad("column", name_w),
        pad(&replica_label, COLUMN_WIDTH),
        pad(&source_label, COLUMN_WIDTH)
    );
    for col in columns {
        let cell = |r: &Option<Row>| -> String {
            match r {
                Some(r) => r.get(col).map(Cell::display).unwrap_or_else(|| "-".into()),
                None => "(no row)".into(),
            }
        };
        let ev = c
            .event_row
            .get(col)
            .map(Cell::display)
            .unwrap_or_else(|| "(not in image)".into());
        let (r, s) = (cell(&c.replica_row), cell(&c.source_row));
        let mark = differs.contains(&col.as_str());
        let fmt = |v: &str| {
            let p = pad(&abbreviate(v, COLUMN_WIDTH), COLUMN_WIDTH);
            if mark { style(p).red().to_string() } else { p }
        };
        let _ = writeln!(
            out,
            "{indent}    {}  {}  {}  {}{}",
            pad(col, name_w),
            fmt(&r),
            fmt(&s),
            abbreviate(&ev, COLUMN_WIDTH),
            if mark {
                style("  <- differs").red().to_string()
            } else {
                String::new()
            }
        );
    }
}

fn abbreviate(s: &str, width: usize) -> String {
    if measure_text_width(s) <= width {
        return s.to_string();
    }
    let mut out = String::new();
    for ch in s.chars() {
        if measure_text_width(&out) + 2 > width {
            break;
        }
        out.push(ch);
    }
    out.push('…');
    out
}

fn pad(s: &str, width: usize) -> String {
    let w = measure_text_width(s);
    if w >= width {
        s.to_string()
    } else {
        format!("{s}{}", " ".repeat(width - w))
    }
}
