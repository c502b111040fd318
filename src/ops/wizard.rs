//! The interactive repair wizard (dialoguer): the incident and its row diff, the ranked
//! remedies (recommended first, each with what it loses), the exact SQL, a confirmation per
//! node, then apply, verify, and offer the next conflict if replication stops again.

use std::path::Path;

use anyhow::Result;
use dialoguer::theme::ColorfulTheme;
use dialoguer::{Confirm, Input, Select};

use super::Outcome;
use super::repair::{RepairReport, repair_text};
use crate::cli::Format;
use crate::conn::ConnSpec;
use crate::diagnosis::Diagnosis;
use crate::exit::{self, Coded};
use crate::planner::plan::RemedyOption;
use crate::planner::{PlanSet, Policy, RemedyId, Winner};
use crate::repair::session::{RepairOutcome, Session, Target};

fn say(text: &str) {
    eprint!("{text}");
}

fn cancelled() -> anyhow::Error {
    Coded(
        exit::REFUSED,
        "cancelled at the prompt; nothing was changed".into(),
    )
    .into()
}

fn confirm(theme: &ColorfulTheme, prompt: String, default: bool) -> Result<bool> {
    Confirm::with_theme(theme)
        .with_prompt(prompt)
        .default(default)
        .interact()
        .map_err(|_| cancelled())
}

fn option_label(o: &RemedyOption) -> String {
    let loses = if o.loss_unknown {
        "loses an unknown number of rows".to_string()
    } else if o.loses_data() {
        format!(
            "loses {} row(s)",
            o.rows_lost + o.versions_lost + o.records_lost
        )
    } else {
        "loses nothing".into()
    };
    let recommended = if o.recommended { " (recommended)" } else { "" };
    let errant = match o.leaves_errant_gtid {
        true => ", leaves an errant GTID (binary log on)",
        false => "",
    };
    format!("{} — {loses}{errant}{recommended}", o.remedy)
}

/// The remedy the DBA picks among the applicable ones.
fn pick_remedy(theme: &ColorfulTheme, ps: &PlanSet) -> Result<RemedyId> {
    let applicable: Vec<&RemedyOption> = ps.options.iter().filter(|o| o.applicable).collect();
    if applicable.is_empty() {
        return Err(Coded(
            exit::REFUSED,
            "no remedy applies to this incident; nothing was changed".into(),
        )
        .into());
    }
    let mut items: Vec<String> = applicable.iter().map(|o| option_label(o)).collect();
    items.push("quit, change nothing".into());
    let pick = Select::with_theme(theme)
        .with_prompt("Which remedy?")
        .items(&items)
        .default(0)
        .interact()
        .map_err(|_| cancelled())?;
    applicable.get(pick).map(|o| o.remedy).ok_or_else(cancelled)
}

/// Dual-master: whose row (or, for rekey, whose record keeps the key) both nodes end with.
fn pick_winner(theme: &ColorfulTheme, d: &Diagnosis) -> Result<Winner> {
    let src = d
        .source
        .as_ref()
        .map(|s| s.endpoint.to_string())
        .unwrap_or_default();
    let choices = [
        format!("source {src} (its row wins on both nodes)"),
        format!(
            "replica {} (its row wins on both nodes)",
            d.replica.endpoint
        ),
        "the newest version, by a column".to_string(),
    ];
    let w = Select::with_theme(theme)
        .with_prompt("Whose row should both nodes keep?")
        .items(&choices)
        .default(0)
        .interact()
        .map_err(|_| cancelled())?;
    Ok(match w {
        0 => Winner::Source,
        1 => Winner::Replica,
        _ => Winner::Newest(
            Input::<String>::with_theme(theme)
                .with_prompt("Column to compare (e.g. updated_at)")
                .interact_text()
                .map_err(|_| cancelled())?,
        ),
    })
}

/// What the DBA accepted at the prompts, beyond the steps themselves.
struct Accepted {
    /// A remedy that loses data.
    loss: bool,
    /// Rows logged with the node's own GTID where the binary log cannot be turned off (the
    /// plan's consequence, shown above the prompt): `--allow-errant-gtid`, said at the prompt.
    errant: bool,
}

/// The nodes where the plan's row steps are logged with the node's own GTID, in plan order.
fn errant_nodes(plan: &crate::planner::Plan) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in plan.steps.iter().filter(|s| s.logs_errant_rows()) {
        let ep = s.endpoint.to_string();
        if !out.contains(&ep) {
            out.push(ep);
        }
    }
    out
}

/// The chosen plan shown in full, then a confirmation for its losses, one for an errant
/// transaction it leaves (its consequence), and one per node.
fn confirm_plan(theme: &ColorfulTheme, ps: &PlanSet) -> Result<Accepted> {
    let Some(plan) = &ps.plan else {
        return Err(Coded(
            exit::REFUSED,
            "no plan for that remedy; nothing was changed".into(),
        )
        .into());
    };
    say(&format!("\n{}", crate::planner::render::plan_text(ps)));
    let option = ps.options.iter().find(|o| o.remedy == plan.remedy);
    let loses = option.filter(|o| o.loses_data());
    if let Some(o) = loses
        && !confirm(
            theme,
            format!("This remedy loses data ({}). Continue?", o.loses),
            false,
        )?
    {
        return Err(cancelled());
    }
    let errant = errant_nodes(plan);
    if !errant.is_empty()
        && !confirm(
            theme,
            format!(
                "The binary log cannot be turned off on {}: the row change is logged there with that node's own GTID, an errant transaction (the consequence and follow-up above). Accept it?",
                errant.join(" and ")
            ),
            false,
        )?
    {
        return Err(cancelled());
    }
    for ep in plan.endpoints() {
        let steps: Vec<_> = plan.steps.iter().filter(|s| &s.endpoint == ep).collect();
        let role = steps[0].node_label();
        let prompt = format!("Apply the {} step(s) on the {role} {ep}?", steps.len());
        if !confirm(theme, prompt, false)? {
            return Err(cancelled());
        }
    }
    Ok(Accepted {
        loss: loses.is_some(),
        errant: !errant.is_empty(),
    })
}

/// One incident: choose, confirm, apply. Returns whether replication stopped again and the
/// report's last line.
fn one_incident(
    h: &mut Session,
    theme: &ColorfulTheme,
    d: &Diagnosis,
    target: &Target,
    policy: &Policy,
) -> Result<(bool, Policy, String)> {
    say(&crate::diagnosis::render::text(d));
    let ranked = Policy {
        remedy: None,
        ..policy.clone()
    };
    let ps = crate::planner::plan(d, &h.playbooks, &ranked)?;
    say(&format!("\n{}", crate::planner::render::remedies(&ps)));
    let remedy = pick_remedy(theme, &ps)?;
    let winner = match ps.reverse_fingerprint.is_some()
        && matches!(remedy, RemedyId::Overwrite | RemedyId::Rekey)
    {
        true => pick_winner(theme, d)?,
        false => policy.winner.clone(),
    };
    let chosen = Policy {
        remedy: Some(remedy),
        winner,
        ..policy.clone()
    };
    let ps = crate::planner::plan(d, &h.playbooks, &chosen)?;
    let accepted = confirm_plan(theme, &ps)?;
    // What was accepted at the prompts holds for this plan only.
    let (loss, errant) = (h.options.allow_data_loss, h.options.allow_errant_gtid);
    h.options.allow_data_loss = loss || accepted.loss;
    h.options.allow_errant_gtid = errant || accepted.errant;
    let inc = h.apply_one(d, &ps, target, &chosen);
    h.options.allow_data_loss = loss;
    h.options.allow_errant_gtid = errant;
    let inc = inc?;
    let stopped = inc.stopped_again();
    let text = repair_text(&RepairReport {
        schema: "replmend.repair/1",
        outcome: if stopped {
            RepairOutcome::StoppedAgain
        } else {
            RepairOutcome::Repaired
        },
        message: if stopped {
            "replication stopped again".into()
        } else {
            "replication is running and caught up".into()
        },
        incidents: vec![inc],
        verify: None,
    });
    say(&text);
    // The steps were shown as they ran; stdout gets one line per incident.
    let last = text.lines().last().unwrap_or_default().to_string();
    Ok((stopped, chosen, last))
}

pub fn run(
    h: &mut Session,
    spec: &ConnSpec,
    d: Diagnosis,
    target: Target,
    policy: Policy,
    _format: Format,
) -> Result<Outcome> {
    let theme = ColorfulTheme::default();
    let (mut d, mut target, mut policy) = (d, target, policy);
    let mut transcript = String::new();
    let mut tables: Vec<crate::vocab::TableRef> = Vec::new();
    let mut repaired: Vec<String> = Vec::new();
    loop {
        let (stopped, chosen, line) = one_incident(h, &theme, &d, &target, &policy)?;
        repaired.push(d.fingerprint.clone());
        transcript.push_str(&line);
        transcript.push('\n');
        if !tables.contains(&d.table) {
            tables.push(d.table.clone());
        }
        if !stopped {
            break;
        }
        let prompt =
            "Replication stopped again on another conflict. Diagnose and repair it?".to_string();
        if !confirm(&theme, prompt, true)? {
            offer_report(&theme, h.journal.path(), &repaired);
            return Ok(Outcome {
                output: transcript,
                code: exit::REPLICATION_ERROR,
            });
        }
        match h.find(spec, &chosen)? {
            Some((nd, nt, np)) => (d, target, policy) = (nd, nt, Policy { remedy: None, ..np }),
            None => break,
        }
    }
    let names: Vec<String> = tables.iter().map(|t| t.to_string()).collect();
    let prompt = format!(
        "Repaired. Verify {} between the two nodes now (reads only; other rows may have drifted too)?",
        names.join(", ")
    );
    if confirm(&theme, prompt, true)? {
        let pair = crate::verify::Pair::of_replica(spec, h.options.source.as_ref())?;
        let opts = crate::verify::Options {
            tables,
            progress: true,
            ..Default::default()
        };
        let report = crate::verify::run(&pair, &opts)?;
        super::verify::keep(&report, &opts);
        say(&super::verify::text(&report));
        if report.drifted() {
            // The fix first: the postmortem offered after it covers the resync too.
            let code = resync_offer(h, &theme, &pair, report, &mut transcript)?;
            offer_report(&theme, h.journal.path(), &repaired);
            return Ok(Outcome {
                output: transcript,
                code,
            });
        }
        offer_report(&theme, h.journal.path(), &repaired);
    } else {
        offer_report(&theme, h.journal.path(), &repaired);
    }
    Ok(Outcome {
        output: transcript,
        code: exit::OK,
    })
}

/// The verify after a repair found drift: offer to fix exactly what it found (the rows it
/// names, each read again before it is written), the same path as `resync --from`.
fn resync_offer(
    h: &Session,
    theme: &ColorfulTheme,
    pair: &crate::verify::Pair,
    report: crate::verify::model::Report,
    transcript: &mut String,
) -> Result<u8> {
    if report.lag_counted_as_drift() {
        // Rows not applied yet counted as drift: fixing them now would race the applier. The
        // verify's text above already gave the hint; no resync is offered.
        transcript.push_str("the table still differs, but rows not applied yet may count as drift: see the hint above, then verify again before resync\n");
        return Ok(exit::DRIFT);
    }
    let s = &report.summary;
    let prompt = format!(
        "The nodes still differ ({} missing, {} extra, {} different row(s)). Make {} equal to {} for these rows now (each journaled first; you see the plan before it runs)?",
        s.missing, s.extra, s.different, report.replica, report.source
    );
    if !confirm(theme, prompt, false)? {
        transcript.push_str("the table still differs between the nodes: see `replmend resync`\n");
        return Ok(exit::DRIFT);
    }
    let fix = super::resync::Fix {
        dry_run: false,
        interactive: true,
        winner: Winner::Source,
        lift_read_only: false,
        allow_pending_relay: false,
        allow_triggers: h.options.allow_triggers,
        allow_errant_gtid: h.options.allow_errant_gtid,
        journal: Some(h.journal.path().to_path_buf()),
    };
    let drift = super::resync::Drift::Given(report, super::resync::DriftFrom::ThisRun);
    let (done, code) = super::resync::resync(&fix, pair, drift)?;
    say(&done.text());
    transcript.push_str(match code {
        exit::OK => "resynced: the rows the verify found now agree on both nodes\n",
        _ => "resynced, but rows still differ (or a table was left alone): see above\n",
    });
    Ok(code)
}

/// Offers the postmortem of the incidents this run repaired (`replmend report`), written
/// from the journal to a path the DBA may change. The repair is done by now: a prompt left
/// or a report that cannot be written is said, never turned into a failure of the run.
fn offer_report(theme: &ColorfulTheme, journal: &Path, ids: &[String]) {
    let Some(first) = ids.first() else {
        return;
    };
    let prompt = "Write the incident's postmortem (timeline, cause, rows before and after)?";
    if !confirm(theme, prompt.into(), true).unwrap_or(false) {
        return;
    }
    let dir = journal.parent().unwrap_or(Path::new("."));
    let default = dir.join(format!("report-{first}.html"));
    let path = Input::<String>::with_theme(theme)
        .with_prompt("Report file (.md: Markdown, else HTML)")
        .default(default.display().to_string())
        .interact_text();
    let Ok(path) = path else {
        return;
    };
    let format = match path.ends_with(".md") {
        true => Format::Markdown,
        false => Format::Html,
    };
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let written = super::report::from_journal(journal, &ids, format)
        .and_then(|text| super::report::write_private(Path::new(&path), &text));
    match written {
        Ok(()) => say(&format!("postmortem written to {path}\n")),
        Err(e) => say(&format!(
            "the postmortem was not written: {}\n",
            crate::describe::message(&e)
        )),
    }
}
