//! `replmend repair --remedy inject-errant`: the replica's errant GTIDs injected on its source
//! as empty transactions (MySQL), with the repair's dry run, confirmation, preflight, lock and
//! applier; on MariaDB, what to do instead.

use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

use super::Outcome;
use crate::cli::{Format, RepairArgs};
use crate::conn::Server;
use crate::exit::{self, Coded};
use crate::journal::{self, Journal};
use crate::planner::Plan;
use crate::repair::apply::{Applier, ApplyReport, Nodes};
use crate::repair::lock::RepairLock;
use crate::status::errant::Errant;
use crate::status::topology::{Named, Topology};
use crate::vocab::GtidSet;

#[derive(Serialize)]
struct InjectReport<'a> {
    schema: &'static str,
    errant: &'a [Errant],
    plan: &'a Plan,
    dry_run: bool,
    applied: Option<&'a ApplyReport>,
    /// Errant GTIDs left afterwards.
    remaining: Vec<Errant>,
}

const MARIADB: &str = "MariaDB cannot inject an empty transaction (it does not binlog one), so the source cannot be given these GTIDs: either apply the same changes on the source so every node has them, or, if they are not wanted, leave them on this replica and never make it a source; make the replica read-only so it does not happen again";

pub fn run(args: &RepairArgs, format: Format) -> Result<Outcome> {
    let spec = super::connect::replica_spec(&args.target.replica)?;
    let mut replica = Server::connect(&spec)?;
    let report = crate::status::read_status(&mut replica)?;
    let errant = crate::status::errant::find(&mut replica, &report, None);
    let Some(e) = errant.first() else {
        return Ok(Outcome {
            output: super::render(
                format,
                &serde_json::json!({"schema": "replmend.inject-errant/1", "errant": [], "outcome": "nothing_to_do"}),
                |_| {
                    "no errant GTIDs on this replica (or a source cannot be reached to tell); nothing to inject\n".into()
                },
            ),
            code: exit::OK,
        });
    };
    if replica.flavor.is_mariadb() {
        return Err(Coded(
            exit::UNSUPPORTED_INCIDENT,
            format!("errant GTIDs {}: {MARIADB}", e.gtids),
        )
        .into());
    }
    let named = super::connect::source_spec(args.target.source.as_deref(), &spec)?;
    let topology = Topology::of(&spec, &report, named.as_ref().map(|s| Named::new(s, None)));
    let link = match topology.links.as_slice() {
        [one] => one,
        _ => {
            return Err(Coded(
                exit::REFUSED,
                "a multi-source replica's errant GTIDs could belong on any of its sources: replmend does not guess; inject them by hand on the right one (SET GTID_NEXT …; BEGIN; COMMIT)".into(),
            )
            .into());
        }
    };
    let source_spec = link.source.clone();
    let source = Server::connect(&source_spec)?;
    let gtids = match &e.gtids {
        GtidSet::Mysql(set) => set.gtids(crate::planner::errant::MAX_INJECTED),
        GtidSet::Mariadb(_) => None,
    }
    .ok_or_else(|| {
            Coded(
                exit::REFUSED,
                format!(
                    "errant GTID set {} is too large (over {}) or not a GTID set: replmend does not inject it one by one",
                    e.gtids,
                    crate::planner::errant::MAX_INJECTED
                ),
            )
        })?;
    let plan = crate::planner::errant::plan(&gtids, &source_spec.address(), source.flavor);
    let interactive = super::interactive(args.yes, args.dry_run)?;
    let mut applied = None;
    if !args.dry_run {
        if interactive {
            for (i, s) in plan.steps.iter().enumerate() {
                eprint!("{}", crate::planner::render::step_text(i, s));
            }
            let ok = dialoguer::Confirm::with_theme(&dialoguer::theme::ColorfulTheme::default())
                .with_prompt(format!(
                    "Inject these {} empty transaction(s) on the source?",
                    plan.steps.len()
                ))
                .default(false)
                .interact()?;
            if !ok {
                return Err(
                    Coded(exit::REFUSED, "not confirmed; nothing was changed".into()).into(),
                );
            }
        }
        let specs = vec![spec.clone(), source_spec.clone()];
        let _lock = RepairLock::acquire(&[&spec, &source_spec])?;
        let mut nodes = Nodes::new(specs);
        crate::repair::preflight::check(&plan, &mut nodes, &[])?;
        let mut journal =
            Journal::new(&args.journal.clone().unwrap_or_else(journal::default_path))?;
        let mut printer = super::print_step;
        let mut applier = Applier {
            nodes: &mut nodes,
            journal: &mut journal,
            fingerprint: crate::diagnosis::compare::fingerprint(&[
                "inject-errant",
                &e.gtids.to_string(),
            ]),
            timeout: Duration::from_secs(args.timeout),
            on_step: &mut printer,
            prepared: Default::default(),
        };
        applied = Some(applier.apply(&plan)?);
    }
    let remaining = match applied.is_some() {
        true => crate::status::errant::find(&mut replica, &report, None),
        false => errant.clone(),
    };
    let out = InjectReport {
        schema: "replmend.inject-errant/1",
        errant: &errant,
        plan: &plan,
        dry_run: args.dry_run,
        applied: applied.as_ref(),
        remaining,
    };
    let code = match (args.dry_run, out.remaining.is_empty()) {
        (true, _) | (false, true) => exit::OK,
        (false, false) => exit::FAILURE,
    };
    Ok(Outcome {
        output: super::render(format, &out, text),
        code,
    })
}

fn text(r: &InjectReport<'_>) -> String {
    let mut out = String::new();
    for e in r.errant {
        out.push_str(&format!(
            "errant GTIDs {} (on no source: {})\n",
            e.gtids, e.source
        ));
    }
    for (i, s) in r.plan.steps.iter().enumerate() {
        out.push_str(&crate::planner::render::step_text(i, s));
    }
    match (r.dry_run, r.remaining.is_empty()) {
        (true, _) => out.push_str("Dry run: nothing was changed.\n"),
        (false, true) => out.push_str("the source now has every errant GTID: none left\n"),
        (false, false) => out.push_str("errant GTIDs remain (see above); run `replmend status`\n"),
    }
    out
}
