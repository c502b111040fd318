//! The postmortem as Markdown (GitHub/GitLab/Jira-style tables): pastes into a ticket. Pure.

use super::diff::RowPair;
use super::view::{IncidentView, Postmortem};

/// Text safe inside a Markdown table cell or line: pipes escaped, newlines flattened, and
/// the characters that would start emphasis, code or HTML escaped (underscores are left:
/// GitHub-style Markdown does not take them as emphasis inside words like auto_increment).
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '|' | '*' | '`' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn list(out: &mut String, items: &[String]) {
    for i in items {
        out.push_str(&format!("- {}\n", esc(i)));
    }
    out.push('\n');
}

fn pair(out: &mut String, p: &RowPair) {
    out.push_str(&format!("**{}** — {}\n\n", esc(&p.title), esc(&p.what)));
    if p.columns.is_empty() {
        out.push_str("(no row image recorded)\n\n");
        return;
    }
    out.push_str(&format!(
        "| column | {} | {} | |\n|---|---|---|---|\n",
        p.left_label, p.right_label
    ));
    let side = |v: &Option<String>, absent: &Option<String>| match (v, absent) {
        (Some(v), _) => format!("`{}`", v.replace('`', "'").replace('|', "\\|")),
        (None, Some(a)) => format!("*{}*", esc(a)),
        (None, None) => "—".into(),
    };
    for c in &p.columns {
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            esc(&c.column),
            side(&c.left, &p.left_absent),
            side(&c.right, &p.right_absent),
            if c.differs { "**≠ differs**" } else { "" }
        ));
    }
    out.push('\n');
}

/// "UTC" and the day, when every event falls on one.
pub fn timeline_heading(inc: &IncidentView) -> String {
    match &inc.timeline_date {
        Some(d) => format!("UTC, {d}"),
        None => "UTC".into(),
    }
}

fn incident(out: &mut String, inc: &IncidentView) {
    out.push_str(&format!("## {}\n\n", esc(&inc.title)));
    out.push_str("| | |\n|---|---|\n");
    for (k, v) in &inc.summary {
        out.push_str(&format!("| {} | {} |\n", esc(k), esc(v)));
    }
    out.push_str(&format!(
        "\n### Timeline ({})\n\n| time | what | result |\n|---|---|---|\n",
        timeline_heading(inc)
    ));
    for e in &inc.timeline {
        let result = match e.bad {
            true => format!("**{}**", esc(&e.result)),
            false => esc(&e.result),
        };
        out.push_str(&format!(
            "| {} | {} | {result} |\n",
            esc(&e.at),
            esc(&e.what)
        ));
    }
    out.push('\n');
    // A resync mends drift it found, not an incident with a cause.
    if inc.kind != super::incident::Kind::Resync {
        out.push_str("### Cause\n\n");
    }
    match &inc.cause {
        None if inc.kind == super::incident::Kind::Resync => {}
        Some(c) => out.push_str(&format!(
            "**{}.** {}\n\n**Prevention:** {}\n\n",
            esc(&c.title),
            esc(&c.evidence),
            esc(&c.prevention)
        )),
        None => out.push_str("Unknown: the journal records no cause.\n\n"),
    }
    if !inc.origins.is_empty() {
        out.push_str("### Origin\n\n");
        list(out, &inc.origins);
    }
    if !inc.conflicts.is_empty() {
        out.push_str("### Conflicting rows as diagnosed\n\n");
        for p in &inc.conflicts {
            pair(out, p);
        }
    }
    out.push_str("### Rows changed (before → after)\n\n");
    if inc.changes.is_empty() {
        out.push_str("No row was changed.\n\n");
    }
    for p in &inc.changes {
        pair(out, p);
    }
    if inc.changes_not_shown > 0 {
        out.push_str(&format!(
            "… and {} more row(s), all in the journal.\n\n",
            inc.changes_not_shown
        ));
    }
    out.push_str("### What was lost\n\n");
    match inc.lost.is_empty() {
        true => out.push_str("Unknown: the journal records no plan.\n\n"),
        false => list(out, &inc.lost),
    }
    out.push_str("### Verification\n\n");
    list(out, &inc.verification);
    if !inc.advice.is_empty() {
        out.push_str("### Advice\n\n");
        list(out, &inc.advice);
    }
    if !inc.unknown.is_empty() {
        out.push_str("### Not known from the journal\n\n");
        list(out, &inc.unknown);
    }
}

pub fn render(pm: &Postmortem) -> String {
    let mut out = format!(
        "# replmend postmortem\n\nFrom the journal `{}` ({} incident(s)).\n\n",
        pm.journal.replace('`', "'"),
        pm.incidents.len()
    );
    for inc in &pm.incidents {
        incident(&mut out, inc);
    }
    out
}
