//! `replmend report`: glue from the command line to the postmortem — read the journal, pick
//! the incident, render, write to stdout or a private file.

use std::path::Path;

use anyhow::Result;

use super::Outcome;
use crate::cli::{Format, ReportArgs};
use crate::exit::{self, Coded};
use crate::journal::{self, JournalError};
use crate::report::{self, Style};

/// A journal that cannot be read as one, in one sentence (exit 8).
fn not_a_journal(path: &Path, e: JournalError) -> anyhow::Error {
    let shown = path.display();
    match e {
        JournalError::Malformed { line, reason, .. } => Coded(
            exit::BAD_INPUT,
            format!(
                "{shown} is not a replmend journal: line {line} is no journal entry ({reason})"
            ),
        )
        .into(),
        JournalError::Io { source, .. } if source.kind() == std::io::ErrorKind::InvalidData => {
            Coded(
                exit::BAD_INPUT,
                format!("{shown} is not a replmend journal: it is not text"),
            )
            .into()
        }
        e => e.into(),
    }
}

/// The report as `format` asks: markdown unless html or json.
pub fn rendered(pm: &report::Postmortem, format: Format) -> String {
    match format {
        Format::Json => super::to_json(pm),
        Format::Html => report::render(pm, Style::Html),
        Format::Text | Format::Markdown => report::render(pm, Style::Markdown),
    }
}

/// The postmortem of a journal's incidents (those `ids` name; all when none), rendered.
pub fn from_journal(path: &Path, ids: &[&str], format: Format) -> Result<String> {
    if !path.is_file() {
        return Err(Coded(
            exit::BAD_INPUT,
            format!(
                "journal {}: no such file (repair and resync name theirs when they finish)",
                path.display()
            ),
        )
        .into());
    }
    let lines = journal::read_lines(path).map_err(|e| not_a_journal(path, e))?;
    let pm = report::postmortem_of(&path.display().to_string(), &lines, ids)
        .map_err(|e| Coded(exit::BAD_INPUT, e.to_string()))?;
    Ok(rendered(&pm, format))
}

/// Writes a report to `path`, created 0600 (it holds whole rows, as the journal does).
pub fn write_private(path: &Path, text: &str) -> Result<()> {
    report::file::write_private(path, text).map_err(|e| {
        Coded(
            exit::BAD_INPUT,
            format!("report {}: cannot write it ({e})", path.display()),
        )
        .into()
    })
}

pub fn run(args: &ReportArgs, format: Format) -> Result<Outcome> {
    let ids: Vec<&str> = args.incident.as_deref().into_iter().collect();
    let text = from_journal(&args.journal, &ids, format)?;
    let output = match &args.output {
        Some(path) => {
            write_private(path, &text)?;
            eprintln!("replmend: report written to {}", path.display());
            String::new()
        }
        None => text,
    };
    Ok(Outcome {
        output,
        code: exit::OK,
    })
}
