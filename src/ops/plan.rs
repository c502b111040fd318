//! `replmend plan` and `replmend playbooks`.

use anyhow::Result;
use serde::Serialize;

use super::Outcome;
use crate::cli::{Format, PlanArgs, PlaybooksArgs, PolicyArgs};
use crate::diagnosis::Diagnosis;
use crate::exit::{self, Coded};
use crate::planner::playbook::{self, Playbook};
use crate::planner::{self, PlanSet, Policy};

pub fn policy(args: &PolicyArgs) -> Policy {
    Policy {
        remedy: args.remedy,
        winner: args.winner.clone(),
        lift_read_only: args.lift_read_only,
        rekeyed: Vec::new(),
    }
}

pub fn playbooks(dir: Option<&std::path::Path>) -> Result<Vec<Playbook>> {
    playbook::load(dir).map_err(|e| Coded(exit::BAD_INPUT, e.to_string()).into())
}

pub fn make(d: &Diagnosis, pbs: &[Playbook], policy: &Policy) -> Result<PlanSet> {
    Ok(planner::plan(d, pbs, policy)?)
}

#[derive(Serialize)]
pub struct PlanReport<'a> {
    pub schema: &'static str,
    pub diagnosis: &'a Diagnosis,
    pub plan: &'a PlanSet,
}

pub fn report_text(d: &Diagnosis, ps: &PlanSet) -> String {
    format!(
        "{}\n{}",
        crate::diagnosis::render::text(d),
        crate::planner::render::plan_text(ps)
    )
}

pub fn run(args: &PlanArgs, format: Format) -> Result<Outcome> {
    let spec = super::connect::replica_spec(&args.target.replica)?;
    // Nothing to plan (no incident) exits 0, saying why on stderr (`error`).
    let source = super::connect::source_spec(args.target.source.as_deref(), &spec)?;
    let d = crate::inspect::diagnose_with_origin(
        &spec,
        source.as_ref(),
        args.target.channel.as_deref(),
        args.target.origin_budget,
    )?
    .stopped()?;
    let pbs = playbooks(args.policy.playbooks.as_deref())?;
    let mut ps = make(&d, &pbs, &policy(&args.policy))?;
    let target = crate::repair::session::Target {
        replica: spec.clone(),
        source,
        under_lock: false,
    };
    crate::repair::session::plan_with_facts(&mut ps, &d, &target);
    let report = PlanReport {
        schema: "replmend.plan-report/1",
        diagnosis: &d,
        plan: &ps,
    };
    Ok(Outcome {
        output: super::render(format, &report, |r| report_text(r.diagnosis, r.plan)),
        code: exit::REPLICATION_ERROR,
    })
}

pub fn run_playbooks(args: &PlaybooksArgs, format: Format) -> Result<Outcome> {
    let mut pbs = playbooks(args.playbooks.as_deref())?;
    if let Some(id) = &args.id {
        pbs.retain(|p| &p.id == id);
        if pbs.is_empty() {
            return Err(Coded(exit::BAD_INPUT, format!("no playbook with id {id:?}")).into());
        }
    }
    let output = match format {
        Format::Json => {
            super::to_json(&serde_json::json!({"schema": "replmend.playbooks/1", "playbooks": pbs}))
        }
        Format::Text | Format::Markdown | Format::Html => {
            crate::planner::render::playbooks_text(&pbs)
        }
    };
    Ok(Outcome {
        output,
        code: exit::OK,
    })
}
