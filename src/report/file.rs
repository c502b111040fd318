//! The one place `report` touches the disk: a report written to a file created 0600, as the
//! journal is (it holds whole rows), never through a symbolic link; and the reports of one
//! journal's incident written into a directory (`watch --reports DIR`).

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::{Style, postmortem, render};

/// Writes `text` to `path`, created (or truncated) 0600.
pub fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    f.write_all(text.as_bytes())
}

/// Creates `dir` (0700, with its parents) when it is missing.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// The incident's report from the journal at `journal`, as `<dir>/incident-<time>-<id>.md`
/// and `.html`; returns the HTML's path.
pub fn write_incident(dir: &Path, journal: &Path, id: &str) -> anyhow::Result<PathBuf> {
    let lines = crate::journal::read_lines(journal)?;
    let pm = postmortem(&journal.display().to_string(), &lines, Some(id))?;
    private_dir(dir)?;
    let now = super::record::now_ms();
    let stamp: String = super::timeline::utc_ms(now)[..19]
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let base = dir.join(format!("incident-{stamp}-{id}"));
    let (md, html) = (base.with_extension("md"), base.with_extension("html"));
    write_private(&md, &render(&pm, Style::Markdown))?;
    write_private(&html, &render(&pm, Style::Html))?;
    Ok(html)
}
