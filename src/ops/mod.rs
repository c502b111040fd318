//! Commands that do work: each takes parsed arguments and returns what to print and the exit code.

pub mod connect;
pub mod diagnose;
pub mod plan;
pub mod repair;
pub mod restore;
pub mod status;
pub mod wizard;

use crate::cli::Format;

/// What a command produced: the report to print and the exit code it stands for.
pub struct Outcome {
    pub output: String,
    pub code: u8,
}

pub fn to_json<T: serde::Serialize>(value: &T) -> String {
    let mut s = serde_json::to_string_pretty(value).expect("report types always serialize");
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
        Format::Text => text(value),
    }
}
