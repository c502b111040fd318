//! The postmortem as one self-contained HTML file: inline CSS, no script, no external
//! resource (it is mailed, attached to tickets, opened offline), a layout that fits a
//! phone's width and prints on paper. Pure.

use super::diff::RowPair;
use super::view::{IncidentView, Postmortem};

/// Text as HTML: the five characters that could open markup escaped.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
:root{--fg:#1b1f24;--mut:#57606a;--line:#d0d7de;--bad:#b42318;--badbg:#fdecea;--ok:#1a7f37;--okbg:#e7f5ec;--diff:#fff4ce}
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:var(--fg);margin:0;padding:16px;max-width:980px;margin:auto}
h1{font-size:1.4em;margin:.2em 0}h2{font-size:1.2em;margin:1.4em 0 .4em;padding-top:.6em;border-top:2px solid var(--line)}
h3{font-size:1.05em;margin:1.2em 0 .4em}
.meta{color:var(--mut)}
.banner{padding:8px 12px;border-radius:6px;margin:.6em 0;font-weight:600}
.banner.ok{background:var(--okbg);color:var(--ok)}.banner.bad{background:var(--badbg);color:var(--bad)}
table{border-collapse:collapse;width:100%;margin:.4em 0 1em;table-layout:auto}
th,td{border:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top;overflow-wrap:break-word}
th{background:#f6f8fa;font-weight:600;white-space:nowrap}
td.k{color:var(--mut);white-space:nowrap;width:1%}
td.v,td.w{overflow-wrap:anywhere}
tr.bad td{color:var(--bad);font-weight:600}
tr.d td{background:var(--diff)}
td.mark{white-space:nowrap;font-weight:700;color:var(--bad);width:1%}
code,td.v{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.92em}
.absent{color:var(--mut);font-style:italic;font-family:inherit}
.row{margin:.8em 0 1.2em}.row .t{font-weight:600}
.cause{border-left:4px solid var(--bad);padding:4px 12px;background:#fafbfc}
ul{padding-left:1.2em}
@media (max-width:600px){body{padding:10px;font-size:14px}th,td{padding:3px 5px}
table.kv,table.kv tbody,table.kv tr,table.kv td,table.timeline,table.timeline tbody,table.timeline tr,table.timeline td{display:block;width:auto;border:0}
table.kv tr,table.timeline tr{border-top:1px solid var(--line);padding:4px 0}
table.kv td,table.timeline td{padding:1px 0}table.kv td.k,table.timeline td.k{font-size:.9em}
table.timeline tr.h{display:none}}
@media print{body{max-width:none;padding:0;font-size:11pt}h2{break-before:auto}.row,tr{break-inside:avoid}a{color:inherit}}
";

fn list(out: &mut String, items: &[String]) {
    out.push_str("<ul>");
    for i in items {
        out.push_str(&format!("<li>{}</li>", esc(i)));
    }
    out.push_str("</ul>\n");
}

fn cell(v: &Option<String>, absent: &Option<String>) -> String {
    match (v, absent) {
        (Some(v), _) => format!("<td class=\"v\">{}</td>", esc(v)),
        (None, Some(a)) => format!("<td class=\"absent\">{}</td>", esc(a)),
        (None, None) => "<td class=\"absent\">—</td>".into(),
    }
}

fn pair(out: &mut String, p: &RowPair) {
    out.push_str(&format!(
        "<div class=\"row\"><div class=\"t\">{}</div><div class=\"meta\">{}</div>\n",
        esc(&p.title),
        esc(&p.what)
    ));
    if p.columns.is_empty() {
        out.push_str("<p class=\"absent\">no row image recorded</p></div>\n");
        return;
    }
    out.push_str(&format!(
        "<table class=\"diff\"><tr><th>column</th><th>{}</th><th>{}</th><th></th></tr>\n",
        esc(&p.left_label),
        esc(&p.right_label)
    ));
    for c in &p.columns {
        out.push_str(&format!(
            "<tr{}><td class=\"k\">{}</td>{}{}<td class=\"mark\">{}</td></tr>\n",
            if c.differs { " class=\"d\"" } else { "" },
            esc(&c.column),
            cell(&c.left, &p.left_absent),
            cell(&c.right, &p.right_absent),
            if c.differs { "≠" } else { "" }
        ));
    }
    out.push_str("</table></div>\n");
}

/// A section heading; its id is unique in the file (several incidents share one report).
fn section(out: &mut String, inc: &IncidentView, id: &str, title: &str) {
    out.push_str(&format!(
        "<h3 id=\"{}-{id}\">{}</h3>\n",
        esc(&inc.id),
        esc(title)
    ));
}

fn incident(out: &mut String, inc: &IncidentView) {
    out.push_str(&format!(
        "<section class=\"incident\" id=\"incident-{}\"><h2>{}</h2>\n",
        esc(&inc.id),
        esc(&inc.title)
    ));
    let (class, words) = match inc.resolved {
        true => ("ok", "Resolved"),
        false => ("bad", "Not resolved, or not known to be"),
    };
    let outcome = inc.summary.last().map(|(_, v)| v.as_str()).unwrap_or("");
    out.push_str(&format!(
        "<div class=\"banner {class}\">{words}: {}</div>\n<table class=\"kv\">",
        esc(outcome)
    ));
    for (k, v) in &inc.summary {
        out.push_str(&format!(
            "<tr><td class=\"k\">{}</td><td class=\"w\">{}</td></tr>",
            esc(k),
            esc(v)
        ));
    }
    out.push_str("</table>\n");
    let heading = format!("Timeline ({})", super::markdown::timeline_heading(inc));
    section(out, inc, "timeline", &heading);
    out.push_str("<table class=\"timeline\"><tr class=\"h\"><th>time</th><th>what</th><th>result</th></tr>\n");
    for e in &inc.timeline {
        out.push_str(&format!(
            "<tr{}><td class=\"k\">{}</td><td class=\"w\">{}</td><td class=\"w\">{}</td></tr>\n",
            if e.bad { " class=\"bad\"" } else { "" },
            esc(&e.at),
            esc(&e.what),
            esc(&e.result)
        ));
    }
    out.push_str("</table>\n");
    // A resync mends drift it found, not an incident with a cause.
    if inc.kind != super::incident::Kind::Resync {
        section(out, inc, "cause", "Cause");
    }
    match &inc.cause {
        None if inc.kind == super::incident::Kind::Resync => {}
        Some(c) => out.push_str(&format!(
            "<div class=\"cause\"><p><b>{}.</b> {}</p><p><b>Prevention:</b> {}</p></div>\n",
            esc(&c.title),
            esc(&c.evidence),
            esc(&c.prevention)
        )),
        None => out.push_str("<p class=\"absent\">Unknown: the journal records no cause.</p>\n"),
    }
    if !inc.origins.is_empty() {
        section(out, inc, "origin", "Origin");
        list(out, &inc.origins);
    }
    if !inc.conflicts.is_empty() {
        section(out, inc, "conflicts", "Conflicting rows as diagnosed");
        for p in &inc.conflicts {
            pair(out, p);
        }
    }
    section(out, inc, "rows", "Rows changed (before → after)");
    if inc.changes.is_empty() {
        out.push_str("<p>No row was changed.</p>\n");
    }
    for p in &inc.changes {
        pair(out, p);
    }
    if inc.changes_not_shown > 0 {
        out.push_str(&format!(
            "<p>… and {} more row(s), all in the journal.</p>\n",
            inc.changes_not_shown
        ));
    }
    section(out, inc, "lost", "What was lost");
    match inc.lost.is_empty() {
        true => out.push_str("<p class=\"absent\">Unknown: the journal records no plan.</p>\n"),
        false => list(out, &inc.lost),
    }
    section(out, inc, "verification", "Verification");
    list(out, &inc.verification);
    if !inc.advice.is_empty() {
        section(out, inc, "advice", "Advice");
        list(out, &inc.advice);
    }
    if !inc.unknown.is_empty() {
        section(out, inc, "unknown", "Not known from the journal");
        list(out, &inc.unknown);
    }
    out.push_str("</section>\n");
}

pub fn render(pm: &Postmortem) -> String {
    let title = pm
        .incidents
        .first()
        .map(|i| i.title.clone())
        .unwrap_or_else(|| "replmend postmortem".into());
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{STYLE}</style></head><body>\n<h1>replmend postmortem</h1>\n<p class=\"meta\">From the journal <code>{}</code> ({} incident(s)).</p>\n",
        esc(&title),
        esc(&pm.journal),
        pm.incidents.len()
    );
    for inc in &pm.incidents {
        incident(&mut out, inc);
    }
    out.push_str("</body></html>\n");
    out
}
