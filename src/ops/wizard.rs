//! The interactive repair wizard (dialoguer): the incident and its row diff, the ranked
//! remedies (recommended first, each with what it loses), the exact SQL, a confirmation per
//! node, then apply, verify, and offer the next conflict if replication stops again.

use anyhow::Result;
use dialoguer::theme::ColorfulTheme;
use dialoguer::{Confirm, Input, Select};

use super::Outcome;
use super::repair::{RepairReport, repair_text};
use crate::cli::Format;
use crate::conn::ConnSpec;
use crate::diagnosis::Diagnosis;
use crate::exit::{self, Coded};
use crate::planner::{Policy, RemedyId, Winner};
use crate::repair::session::{self, RepairOutcome, Session};

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

pub fn run(
    h: &mut Session,
    spec: &ConnSpec,
    d: Diagnosis,
    target: ConnSpec,
    policy: Policy,
    format: Format,
) -> Result<Outcome> {
    let theme = ColorfulTheme::default();
    let (mut d, mut target, mut policy) = (d, target, policy);
    let mut transcript = String::new();
    loop {
        say(&crate::diagnosis::render::text(&d));
        let ps = crate::planner::plan(
            &d,
            &h.playbooks,
            &Policy {
                remedy: None,
                ..policy.clone()
            },
        )?;
        say(&format!("\n{}", crate::planner::render::remedies(&ps)));
        let applicable: Vec<_> = ps.options.iter().filter(|o| o.applicable).collect();
        if applicable.is_empty() {
            return Err(Coded(
                exit::REFUSED,
                "no remedy applies to this incident; nothing was changed".into(),
            )
            .into());
        }
        let mut items: Vec<String> = applicable
            .iter()
            .map(|o| {
                format!(
                    "{} — {}{}",
                    o.remedy,
                    if o.loss_unknown {
                        "loses an unknown number of rows".to_string()
                    } else if o.loses_data() {
                        format!(
                            "loses {} row(s)",
                            o.rows_lost + o.versions_lost + o.records_lost
                        )
                    } else {
                        "loses nothing".into()
                    },
                    if o.recommended { " (recommended)" } else { "" }
                )
            })
            .collect();
        items.push("quit, change nothing".into());
        let pick = Select::with_theme(&theme)
            .with_prompt("Which remedy?")
            .items(&items)
            .default(0)
            .interact()
            .map_err(|_| cancelled())?;
        if pick == applicable.len() {
            return Err(cancelled());
        }
        let remedy: RemedyId = applicable[pick].remedy;
        let mut winner = policy.winner.clone();
        if ps.reverse_fingerprint.is_some()
            && matches!(remedy, RemedyId::Overwrite | RemedyId::Rekey)
        {
            let src = d
                .source
                .as_ref()
                .map(|s| s.endpoint.clone())
                .unwrap_or_default();
            let choices = [
                format!("source {src} (its row wins on both nodes)"),
                format!(
                    "replica {} (its row wins on both nodes)",
                    d.replica.endpoint
                ),
                "the newest version, by a column".to_string(),
            ];
            let w = Select::with_theme(&theme)
                .with_prompt("Whose row should both nodes keep?")
                .items(&choices)
                .default(0)
                .interact()
                .map_err(|_| cancelled())?;
            winner = match w {
                0 => Winner::Source,
                1 => Winner::Replica,
                _ => Winner::Newest(
                    Input::<String>::with_theme(&theme)
                        .with_prompt("Column to compare (e.g. updated_at)")
                        .interact_text()
                        .map_err(|_| cancelled())?,
                ),
            };
        }
        let chosen = Policy {
            remedy: Some(remedy),
            winner,
            ..policy.clone()
        };
        let ps = crate::planner::plan(&d, &h.playbooks, &chosen)?;
        let Some(plan) = ps.plan.clone() else {
            return Err(Coded(
                exit::REFUSED,
                "no plan for that remedy; nothing was changed".into(),
            )
            .into());
        };
        say(&format!("\n{}", crate::planner::render::plan_text(&ps)));
        if let Some(o) = ps
            .options
            .iter()
            .find(|o| o.remedy == remedy)
            .filter(|o| o.loses_data())
        {
            let ok = Confirm::with_theme(&theme)
                .with_prompt(format!("This remedy loses data ({}). Continue?", o.loses))
                .default(false)
                .interact()
                .map_err(|_| cancelled())?;
            if !ok {
                return Err(cancelled());
            }
        }
        let mut endpoints: Vec<(&str, &str)> = Vec::new();
        for s in &plan.steps {
            if !endpoints.iter().any(|(e, _)| *e == s.endpoint) {
                endpoints.push((&s.endpoint, s.node_label()));
            }
        }
        for (ep, role) in &endpoints {
            let n = plan.steps.iter().filter(|s| s.endpoint == *ep).count();
            let ok = Confirm::with_theme(&theme)
                .with_prompt(format!("Apply the {n} step(s) on the {role} {ep}?"))
                .default(false)
                .interact()
                .map_err(|_| cancelled())?;
            if !ok {
                return Err(cancelled());
            }
        }
        let inc = h.apply_one(&d, &ps, &target, &chosen)?;
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
        });
        say(&text);
        // The steps were shown as they ran; stdout gets one line per incident.
        if let Some(last) = text.lines().last() {
            transcript.push_str(last);
            transcript.push('\n');
        }
        if !stopped {
            break;
        }
        let next = Confirm::with_theme(&theme)
            .with_prompt("Replication stopped again on another conflict. Diagnose and repair it?")
            .default(true)
            .interact()
            .map_err(|_| cancelled())?;
        if !next {
            return Ok(Outcome {
                output: transcript,
                code: exit::REPLICATION_ERROR,
            });
        }
        match session::find_incident(spec, &h.options, &chosen)? {
            Some((nd, nt, np)) => (d, target, policy) = (nd, nt, Policy { remedy: None, ..np }),
            None => break,
        }
    }
    let _ = format;
    Ok(Outcome {
        output: transcript,
        code: exit::OK,
    })
}
