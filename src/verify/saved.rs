//! The last verify of each pair of nodes, kept on disk: a `resync` run soon after a `verify`
//! (or a repair's `--verify-table`) of the same tables fixes what that verify found instead of
//! hashing every table again. resync reads both nodes' current rows for every key the report
//! names before it plans anything, so a report can only make it miss drift newer than the
//! report, never write on stale data; it says which report it used and how old it is.
//!
//! One file per pair (`<state>/replmend/verify/<source>--<replica>.json`, private like the
//! journal: it names drifted keys), replaced atomically by each verify, and forgotten by the
//! resync that acts on it (it is used once).

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::Options;
use super::model::Report;
use crate::vocab::{Endpoint, TableRef};

pub const SAVED_SCHEMA: &str = "replmend.verify-saved/1";

/// Which tables a verify was asked to compare (its report lists those it found).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    pub databases: Vec<String>,
    pub tables: Vec<TableRef>,
    pub ignore_tables: Vec<TableRef>,
}

impl Selection {
    pub fn of(opts: &Options) -> Selection {
        Selection {
            databases: opts.databases.clone(),
            tables: opts.tables.clone(),
            ignore_tables: opts.ignore_tables.clone(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Saved {
    schema: String,
    /// Seconds since the epoch when the verify finished.
    saved_at: u64,
    selection: Selection,
    report: Report,
}

/// A saved report recent enough to use.
#[derive(Debug)]
pub struct Found {
    pub report: Report,
    pub path: PathBuf,
    pub age: Duration,
}

/// The directory saved reports live in: beside the journals.
pub fn dir() -> PathBuf {
    crate::journal::default_path().with_file_name("verify")
}

/// The file of a pair's last verify.
pub fn path_for(dir: &Path, source: &Endpoint, replica: &Endpoint) -> PathBuf {
    let name = |e: &Endpoint| {
        e.to_string()
            .chars()
            .map(
                |c| match c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    true => c,
                    false => '_',
                },
            )
            .collect::<String>()
    };
    dir.join(format!("{}--{}.json", name(source), name(replica)))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Keeps `report` as its pair's last verify of `selection`. Written to a private temporary
/// file and renamed over the old one: a reader never sees half a report.
pub fn save(dir: &Path, report: &Report, selection: &Selection) -> std::io::Result<PathBuf> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let path = path_for(dir, &report.source, &report.replica);
    let saved = Saved {
        schema: SAVED_SCHEMA.into(),
        saved_at: now(),
        selection: selection.clone(),
        report: report.clone(),
    };
    let tmp = path.with_extension(format!("json.{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    std::io::Write::write_all(&mut file, &serde_json::to_vec(&saved)?)?;
    file.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// Forgets the pair's last verify: a resync that ran on it fixed what it named (or left it
/// reported), so the next resync verifies again instead of fixing the same keys twice and
/// missing newer drift.
pub fn forget(dir: &Path, source: &Endpoint, replica: &Endpoint) {
    let _ = std::fs::remove_file(path_for(dir, source, replica));
}

/// The pair's last verify when it answers `selection`, is at most `max_age` old and found
/// drift there: it was asked for the same tables (or names every table `selection` names)
/// and compared every table it found. Anything else (no file, another format, too old, a
/// table that failed, no drift) is None: resync then verifies again.
pub fn recent(
    dir: &Path,
    source: &Endpoint,
    replica: &Endpoint,
    selection: &Selection,
    max_age: Duration,
) -> Option<Found> {
    let path = path_for(dir, source, replica);
    let saved: Saved = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    let age = Duration::from_secs(now().saturating_sub(saved.saved_at));
    let usable = saved.schema == SAVED_SCHEMA
        && age <= max_age
        && saved.report.summary.failed == 0
        && (&saved.report.source, &saved.report.replica) == (source, replica)
        && answers(&saved, selection);
    let report = match saved.selection == *selection {
        true => saved.report,
        false => only(saved.report, &selection.tables),
    };
    // A verify that found the tables identical is not reused: whoever runs resync after it
    // suspects something newer, and only a verify now can say.
    (usable && report.drifted()).then_some(Found { report, path, age })
}

/// The report narrowed to `tables` (a resync of some of the tables a verify compared acts on
/// those only), its summary counted again.
fn only(report: Report, tables: &[TableRef]) -> Report {
    let mut out = Report {
        tables: Vec::new(),
        ..Report::new(
            report.source.clone(),
            report.replica.clone(),
            report.dual_master,
        )
    };
    out.warnings = report.warnings;
    out.elapsed_ms = report.elapsed_ms;
    for t in report
        .tables
        .into_iter()
        .filter(|t| tables.contains(&t.table))
    {
        out.add(t);
    }
    out
}

/// The saved verify was asked for the same tables, or it compared each table `selection`
/// names explicitly.
fn answers(saved: &Saved, selection: &Selection) -> bool {
    if saved.selection == *selection {
        return true;
    }
    let compared = |t: &TableRef| saved.report.tables.iter().any(|d| d.table == *t);
    !selection.tables.is_empty()
        && selection.ignore_tables.is_empty()
        && selection.tables.iter().all(compared)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str) -> TableRef {
        TableRef {
            schema: "shop".into(),
            name: name.into(),
        }
    }

    fn report() -> Report {
        use super::super::model::TableDrift;
        let mut r = Report::new(
            Endpoint::new("db1", 3306),
            Endpoint::new("db2", 3306),
            false,
        );
        r.add(TableDrift::new(t("a"), None));
        let mut b = TableDrift::new(t("b"), None);
        b.missing = 1;
        r.add(b);
        r
    }

    fn selection(tables: Vec<TableRef>) -> Selection {
        Selection {
            databases: vec![],
            tables,
            ignore_tables: vec![],
        }
    }

    #[test]
    fn a_recent_report_answers_its_own_selection_and_any_tables_it_compared() {
        let dir = std::env::temp_dir().join(format!("replmend-saved-{}", std::process::id()));
        let r = report();
        let path = save(&dir, &r, &selection(vec![])).unwrap();
        assert!(path.ends_with("db1_3306--db2_3306.json"), "{path:?}");
        let hour = Duration::from_secs(3600);
        let (s, rep) = (&r.source, &r.replica);
        assert!(recent(&dir, s, rep, &selection(vec![]), hour).is_some());
        let narrowed = recent(&dir, s, rep, &selection(vec![t("b")]), hour).unwrap();
        assert_eq!(narrowed.report.tables.len(), 1, "only the table asked for");
        assert_eq!(narrowed.report.summary.tables, 1);
        assert!(recent(&dir, s, rep, &selection(vec![t("c")]), hour).is_none());
        // Narrowed to a table found identical: nothing to reuse, verify again.
        assert!(recent(&dir, s, rep, &selection(vec![t("a")]), hour).is_none());
        // Another pair, or the nodes the other way round, is not this report.
        assert!(recent(&dir, rep, s, &selection(vec![]), hour).is_none());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the report names keys: private");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
