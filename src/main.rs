//! replmend: diagnose and repair MySQL/MariaDB replication stopped by row conflicts.
//! `main` only parses, dispatches and maps errors to exit codes.

mod binlog;
mod cli;
mod conn;
mod diagnosis;
mod exit;
mod flavor;
mod journal;
mod ops;
mod planner;
mod repair;
mod schema;
mod status;
mod value;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, ColorChoice, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.color {
        ColorChoice::Always => console::set_colors_enabled(true),
        ColorChoice::Never => console::set_colors_enabled(false),
        ColorChoice::Auto => {
            if std::env::var_os("NO_COLOR").is_some() {
                console::set_colors_enabled(false);
            }
        }
    }
    let result = match &cli.command {
        Command::Status(args) => ops::status::run(args, cli.format),
        Command::Diagnose(args) => ops::diagnose::run(args, cli.format),
        Command::Restore(args) => ops::restore::run(args, cli.format),
        Command::Plan(args) => ops::plan::run(args, cli.format),
        Command::Repair(args) => ops::repair::run(args, cli.format),
        Command::Playbooks(args) => ops::plan::run_playbooks(args, cli.format),
    };
    match result {
        Ok(outcome) => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(outcome.output.as_bytes());
            let _ = out.flush();
            ExitCode::from(outcome.code)
        }
        Err(err) => {
            let code = exit::for_error(&err);
            let message = one_line(&err);
            // "Nothing to do" conditions exit 0 but still say why, on stderr.
            eprintln!("replmend: {message}");
            if cli.format == cli::Format::Json {
                let doc = serde_json::json!({
                    "schema": "replmend.error/1",
                    "error": message,
                    "exit_code": code,
                });
                println!("{doc}");
            }
            ExitCode::from(code)
        }
    }
}

/// The error and its causes on one line, the way a DBA reads it in a terminal or a log.
fn one_line(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let s = cause.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}
