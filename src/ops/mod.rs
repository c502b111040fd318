//! Commands that do work: each takes parsed arguments and returns what to print and the exit code.

pub mod connect;
pub mod diagnose;
pub mod errant;
pub mod generate;
pub mod plan;
pub mod repair;
pub mod report;
pub mod restore;
pub mod resync;
pub mod resync_fleet;
mod resync_pending;
pub mod status;
pub mod verify;
pub mod verify_fleet;
pub mod watch;
pub mod wizard;

use std::io::Write;

use crate::cli::{Cli, ColorChoice, Command, Format};

/// Runs the parsed command line: dispatches, prints the report (or the error, in words and as
/// a JSON error document under --format json) and returns the exit code.
pub fn main(cli: &Cli) -> u8 {
    match cli.color {
        ColorChoice::Always => console::set_colors_enabled(true),
        ColorChoice::Never => console::set_colors_enabled(false),
        ColorChoice::Auto => {
            if std::env::var_os("NO_COLOR").is_some() {
                console::set_colors_enabled(false);
            }
        }
    }
    if let Some(kind) = cli.generate {
        return match generate::run(kind) {
            Ok(()) => crate::exit::OK,
            Err(e) => {
                eprintln!("replmend: --generate: {e}");
                crate::exit::FAILURE
            }
        };
    }
    let Some(command) = &cli.command else {
        use clap::CommandFactory;
        let _ = crate::cli::Cli::command()
            .error(
                clap::error::ErrorKind::MissingSubcommand,
                "a command is required (status, diagnose, plan, repair, verify, resync, watch, …)",
            )
            .print();
        return crate::exit::USAGE;
    };
    if matches!(cli.format, Format::Markdown | Format::Html)
        && !matches!(command, Command::Report(_))
    {
        eprintln!(
            "replmend: --format markdown and html are for `replmend report`; use text or json"
        );
        return crate::exit::USAGE;
    }
    let result = match command {
        Command::Status(args) => status::run(args, cli.format),
        Command::Diagnose(args) => diagnose::run(args, cli.format),
        Command::Restore(args) => restore::run(args, cli.format),
        Command::Plan(args) => plan::run(args, cli.format),
        Command::Repair(args) => repair::run(args, cli.format),
        Command::Playbooks(args) => plan::run_playbooks(args, cli.format),
        Command::Verify(args) => verify::run(args, cli.format),
        Command::Resync(args) => resync::run(args, cli.format),
        Command::Watch(args) => watch::run(args, cli.format),
        Command::Report(args) => report::run(args, cli.format),
    };
    match result {
        Ok(outcome) => {
            crate::timing::mark(format_args!(
                "report rendered ({} bytes)",
                outcome.output.len()
            ));
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(outcome.output.as_bytes());
            let _ = out.flush();
            outcome.code
        }
        Err(err) => {
            let code = crate::error::exit_code(&err);
            let message = crate::error::message(&err);
            // "Nothing to do" conditions exit 0 but still say why, on stderr.
            eprintln!("replmend: {message}");
            if cli.format == Format::Json {
                let doc = serde_json::json!({
                    "schema": "replmend.error/1",
                    "error": message,
                    "exit_code": code,
                });
                println!("{doc}");
            }
            code
        }
    }
}

/// A plan of row steps applied, once the lock is held and the preflight passed (resync,
/// restore): its fingerprint names what ran and when (each run is its own), the steps are
/// printed as they run. `records` (the plan, for a resync's report) are journaled first,
/// under that fingerprint.
pub fn apply_plan(
    what: &[String],
    nodes: &mut crate::repair::apply::Nodes,
    journal: &mut crate::journal::Journal,
    plan: &crate::planner::Plan,
    records: Vec<crate::report::record::Body>,
) -> anyhow::Result<crate::repair::apply::ApplyReport> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos().to_string())
        .unwrap_or_default();
    let mut parts: Vec<&str> = what.iter().map(String::as_str).collect();
    parts.push(&now);
    let fingerprint = crate::diagnosis::compare::fingerprint(&parts);
    let records: Vec<_> = records
        .into_iter()
        .map(|b| crate::report::record::Record::new(&fingerprint, b))
        .collect();
    journal.append_records(&records)?;
    let mut printer = print_step;
    let mut applier = crate::repair::apply::Applier {
        nodes,
        journal,
        fingerprint,
        timeout: std::time::Duration::from_secs(60),
        on_step: &mut printer,
        prepared: Default::default(),
    };
    Ok(applier.apply(plan)?)
}

/// A step's outcome as it happens (stderr); it lives in `repair::report`, where `watch` uses it too.
pub use crate::repair::report::print_step;

/// Whether to ask on the terminal; an error when changes were asked for with no way to
/// confirm them (no --yes, no --dry-run, no terminal), decided before touching anything.
pub fn interactive(yes: bool, dry_run: bool) -> anyhow::Result<bool> {
    use std::io::IsTerminal;
    let interactive = !yes && !dry_run && std::io::stdin().is_terminal();
    if !yes && !dry_run && !interactive {
        return Err(crate::exit::Coded(
            crate::exit::REFUSED,
            "no terminal to confirm on: pass --yes to apply, or --dry-run to see the plan; nothing was changed".into(),
        )
        .into());
    }
    Ok(interactive)
}

/// What a command produced: the report to print and the exit code it stands for.
pub struct Outcome {
    pub output: String,
    pub code: u8,
}

/// The report as JSON: indented in a terminal, one line when piped (like `gh --json`): a
/// batch repair's report is megabytes, a third of them indentation a program never reads.
pub fn to_json<T: serde::Serialize>(value: &T) -> String {
    use std::io::IsTerminal;
    let mut s = match std::io::stdout().is_terminal() {
        true => serde_json::to_string_pretty(value),
        false => serde_json::to_string(value),
    }
    .expect("report types always serialize");
    s.push('\n');
    s
}

pub fn render<T: serde::Serialize>(
    format: Format,
    value: &T,
    text: impl FnOnce(&T) -> String,
) -> String {
    match format {
        Format::Json => to_json(value),
        // Markdown and html are refused before any other command than `report` runs.
        Format::Text | Format::Markdown | Format::Html => text(value),
    }
}
