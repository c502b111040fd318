//! Text views of remedies, plans and playbooks (JSON is their serde form).

use std::fmt::Write;

use console::style;

use super::plan::{Plan, PlanSet, Step};
use super::playbook::{Playbook, Risk};

fn risk(r: Risk) -> String {
    match r {
        Risk::Low => style("low").green().to_string(),
        Risk::Medium => style("medium").yellow().to_string(),
        Risk::High => style("high").red().to_string(),
    }
}

pub fn remedies(ps: &PlanSet) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} ({})",
        style(format!("Remedies: {}", ps.playbook_title)).bold(),
        ps.playbook
    );
    for (i, o) in ps.options.iter().enumerate() {
        if o.applicable {
            let lost = if o.loss_unknown {
                style("loses an unknown number of rows").red().to_string()
            } else if o.loses_data() {
                style(format!(
                    "loses {} row(s), {} version(s), {} record(s)",
                    o.rows_lost, o.versions_lost, o.records_lost
                ))
                .red()
                .to_string()
            } else {
                style("loses nothing").green().to_string()
            };
            let lost = match o.leaves_errant_gtid {
                true => format!(
                    "{lost}, {}",
                    style("leaves an errant GTID (binary log on)").yellow()
                ),
                false => lost,
            };
            let _ = writeln!(
                out,
                "  {}. {:<12} risk {:<6}  {}{}\n       {} — {}",
                i + 1,
                o.remedy.to_string(),
                risk(o.risk),
                lost,
                if o.recommended {
                    style("  (recommended)").bold().to_string()
                } else {
                    String::new()
                },
                o.title,
                o.loses
            );
        } else {
            let _ = writeln!(
                out,
                "  -  {:<12} not applicable: {}",
                o.remedy.to_string(),
                o.why_not.as_deref().unwrap_or("")
            );
        }
    }
    out
}

/// The facts the plan rests on, as a list printed above its steps.
/// What the plan leaves behind that the DBA must accept and follow up, one line each.
pub fn consequences_text(plan: &Plan) -> String {
    let mut out = String::new();
    for c in &plan.consequences {
        let _ = writeln!(out, "  {} {c}", style("consequence:").bold());
    }
    out
}

pub fn facts_text(plan: &Plan) -> String {
    let mut out = String::new();
    if !plan.facts.is_empty() {
        out.push_str("Facts this plan rests on (read now; read again before the first change):\n");
    }
    for f in &plan.facts {
        let _ = writeln!(out, "  - {f}");
    }
    out
}

pub fn step_text(i: usize, s: &Step) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "  {}. [{} {}] {}",
        i + 1,
        s.node_label(),
        s.endpoint,
        s.description
    );
    if !s.precondition.is_empty() {
        let _ = writeln!(out, "       check first: {}", s.precondition);
    }
    for st in s.session.iter().chain(&s.statements) {
        let _ = writeln!(out, "       {}", style(format!("{};", st.sql)).cyan());
        for p in &st.params {
            let _ = writeln!(out, "         -- ? = {}", p.display());
        }
    }
    if !s.verification.is_empty() {
        let _ = writeln!(out, "       then: {}", s.verification);
    }
    out
}

impl Step {
    pub fn node_label(&self) -> &'static str {
        match self.node {
            super::plan::NodeRole::Replica => "replica",
            super::plan::NodeRole::Source => "source",
        }
    }
}

pub fn plan_text(ps: &PlanSet) -> String {
    let mut out = remedies(ps);
    match &ps.plan {
        Some(p) => {
            let _ = writeln!(
                out,
                "\n{} remedy {}{}, incident {}",
                style("Plan:").bold(),
                p.remedy,
                p.winner_endpoint
                    .as_ref()
                    .map(|w| format!(", winner {w} (both nodes end with its row)"))
                    .unwrap_or_default(),
                ps.fingerprint
            );
            let _ = writeln!(out, "  loses: {}", p.loses);
            out.push_str(&consequences_text(p));
            out.push_str(&facts_text(p));
            for (i, s) in p.steps.iter().enumerate() {
                out.push_str(&step_text(i, s));
            }
            for a in &p.advice {
                let _ = writeln!(out, "  {} {a}", style("advice:").bold());
            }
        }
        None => {
            let _ = writeln!(out, "\nNo remedy applies; nothing can be planned.");
        }
    }
    out
}

pub fn playbooks_text(pbs: &[Playbook]) -> String {
    let mut out = String::new();
    for pb in pbs {
        let _ = writeln!(
            out,
            "{}  {}  [{}]",
            style(&pb.id).bold(),
            pb.title,
            pb.origin
        );
        let _ = writeln!(out, "  {}", pb.description);
        for r in &pb.remedies {
            let _ = writeln!(
                out,
                "  - {:<12} risk {:<6} steps: {}",
                r.remedy.to_string(),
                risk(r.risk),
                r.steps
                    .iter()
                    .map(|s| serde_json::to_value(s)
                        .ok()
                        .and_then(|v| v.as_str().map(String::from))
                        .unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join(" → ")
            );
        }
        out.push('\n');
    }
    out
}
