//! `replmend report`: an incident's postmortem written from a repair's (or a resync's)
//! journal — timeline, cause and origin, each changed row before and after, what was lost,
//! the verification — as Markdown (for a ticket), one self-contained HTML file, or JSON.
//!
//! `record` is the model of what a run journals beside its rows; `incident` groups a
//! journal's lines; `view` turns an incident into the report's data (`timeline`, `diff`);
//! `markdown` and `html` render it. All of it is pure but `file`, which writes reports.

pub mod diff;
pub mod file;
pub mod html;
pub mod incident;
pub mod markdown;
pub mod record;
pub mod timeline;
pub mod view;

use thiserror::Error;

use crate::journal::Line;
pub use view::{Postmortem, REPORT_SCHEMA};

#[derive(Debug, Error, PartialEq)]
pub enum ReportError {
    #[error("{path} holds no journal entries: it is not a replmend journal, or is empty")]
    Empty { path: String },
    #[error("{path} has no incident {id}; it has {}", known.join(", "))]
    UnknownIncident {
        path: String,
        id: String,
        known: Vec<String>,
    },
}

/// The report's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Markdown,
    Html,
}

/// The postmortem of the journal's incidents (or of the one `id` names).
pub fn postmortem(path: &str, lines: &[Line], id: Option<&str>) -> Result<Postmortem, ReportError> {
    let ids: Vec<&str> = id.into_iter().collect();
    postmortem_of(path, lines, &ids)
}

/// The postmortem of the incidents `ids` name (each its fingerprint or a prefix only it
/// has), in that order; of every incident of the journal when `ids` is empty.
pub fn postmortem_of(path: &str, lines: &[Line], ids: &[&str]) -> Result<Postmortem, ReportError> {
    let all = incident::group(lines);
    if all.is_empty() {
        return Err(ReportError::Empty {
            path: path.to_string(),
        });
    }
    let chosen: Vec<&incident::Incident> = match ids {
        [] => all.iter().collect(),
        ids => ids
            .iter()
            .map(|id| {
                incident::find(&all, id).ok_or_else(|| ReportError::UnknownIncident {
                    path: path.to_string(),
                    id: id.to_string(),
                    known: all.iter().map(|i| i.fingerprint.clone()).collect(),
                })
            })
            .collect::<Result<_, _>>()?,
    };
    Ok(Postmortem {
        schema: REPORT_SCHEMA,
        journal: path.to_string(),
        incidents: chosen.into_iter().map(view::incident).collect(),
    })
}

/// The incidents' ids in the journal, in order (for one report per incident).
pub fn incident_ids(lines: &[Line]) -> Vec<String> {
    incident::group(lines)
        .into_iter()
        .map(|i| i.fingerprint)
        .collect()
}

pub fn render(pm: &Postmortem, style: Style) -> String {
    match style {
        Style::Markdown => markdown::render(pm),
        Style::Html => html::render(pm),
    }
}

#[cfg(test)]
mod tests;
