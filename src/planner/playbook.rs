//! Playbooks: declarative data (playbooks/*.json) saying, per incident class, which remedies
//! exist, when each applies, its risk, what it loses, and its steps. Embedded in the binary;
//! `--playbooks DIR` adds or overrides by id.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::flavor::{Kind, Version};
use crate::vocab::{ConflictKind, KeyKind};

#[derive(Debug, Error)]
pub enum PlaybookError {
    #[error("playbook {file}: {reason}")]
    Malformed { file: String, reason: String },
    #[error("playbook directory {dir}: {source}")]
    Dir { dir: String, source: std::io::Error },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    Low,
    Medium,
    High,
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum RemedyId {
    Skip,
    InjectGtid,
    Overwrite,
    Keep,
    /// Two different records on one AUTO_INCREMENT / generated key: both are kept, the loser's
    /// under a fresh key.
    Rekey,
    /// Not a playbook remedy: `replmend resync`'s plan (rows made equal to the winner's).
    #[value(skip)]
    Resync,
    /// Not a playbook remedy: empty transactions on the source with the replica's errant
    /// GTIDs (MySQL), so the source knows them.
    InjectErrant,
}

impl std::fmt::Display for RemedyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RemedyId::Skip => "skip",
            RemedyId::InjectGtid => "inject-gtid",
            RemedyId::Overwrite => "overwrite",
            RemedyId::Keep => "keep",
            RemedyId::Rekey => "rekey",
            RemedyId::Resync => "resync",
            RemedyId::InjectErrant => "inject-errant",
        })
    }
}

impl std::str::FromStr for RemedyId {
    type Err = String;
    fn from_str(s: &str) -> Result<RemedyId, String> {
        match s {
            "skip" => Ok(RemedyId::Skip),
            "inject-gtid" => Ok(RemedyId::InjectGtid),
            "overwrite" => Ok(RemedyId::Overwrite),
            "keep" => Ok(RemedyId::Keep),
            "rekey" => Ok(RemedyId::Rekey),
            _ => Err(format!(
                "unknown remedy {s:?} (skip, inject-gtid, overwrite, keep, rekey)"
            )),
        }
    }
}

/// How the failing event is dealt with on a node, and what happens to the node's rows first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepTemplate {
    /// Stop the applier of the failing channel (idempotent).
    StopApplier,
    /// Journal, then delete the node's conflicting rows, with sql_log_bin=0.
    DeleteConflictingRows,
    /// Insert the rows a 1032 event expects (its before image, else the source's row), with
    /// sql_log_bin=0.
    InsertMissingRows,
    /// Skip the failing transaction: an empty transaction with its GTID (MySQL), an advanced
    /// gtid_slave_pos (MariaDB with GTID), or the skip counter (no GTID).
    SkipTransaction,
    StartApplier,
    /// Wait until the channel applied everything, then compare the rows on both nodes.
    Verify,
    /// rekey: on the loser, its own records moved to fresh AUTO_INCREMENT values (deleted at
    /// the old key, then inserted at the fresh one, in one transaction, binary log off); the
    /// planner puts a `CopyUnderFreshKey` step on the winner before it.
    ReinsertUnderFreshKey,
    /// Planned by replmend as part of rekey, not by playbooks: the loser's records inserted
    /// on the winner under the same fresh keys (binary log off), so both end on both nodes.
    CopyUnderFreshKey,
    /// Planned by replmend (--lift-read-only), not by playbooks: read_only off on a node
    /// right before the first write it would refuse...
    LiftReadOnly,
    /// ...and back on right after the last.
    RestoreReadOnly,
    /// resync: rows deleted and inserted so the node holds the winner's versions, binary log
    /// off; a row that changed since it was read is left alone (and reported), not refused.
    ResyncRows,
}

impl StepTemplate {
    /// Steps that change table rows on a node (and need a usable key).
    pub fn writes_rows(self) -> bool {
        matches!(
            self,
            StepTemplate::DeleteConflictingRows
                | StepTemplate::InsertMissingRows
                | StepTemplate::ReinsertUnderFreshKey
                | StepTemplate::CopyUnderFreshKey
                | StepTemplate::ResyncRows
        )
    }
}

/// Conditions over the diagnosis; all given ones must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct When {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_identical: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtid_known: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtid_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_row_known: Option<bool>,
    /// Every row of the transaction conflicts (skipping loses nothing but versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all_rows_conflict: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dual_master: Option<bool>,
    /// The conflicting key is AUTO_INCREMENT (or a generated invisible primary key) and the
    /// rows differ: two different records, not two versions of one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub two_records: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_kind: Option<KeyKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flavor: Option<Kind>,
    /// e.g. "8.0.22"
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemedySpec {
    pub remedy: RemedyId,
    pub title: String,
    pub risk: Risk,
    #[serde(default)]
    pub when: When,
    /// The author's note on what it gives up. What a remedy loses is computed from its plan
    /// (rows skipped, deleted, journaled); this text is documentation only.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub loses: String,
    pub steps: Vec<StepTemplate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppliesTo {
    pub errno: u32,
    pub kinds: Vec<ConflictKind>,
    pub dual_master: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Playbook {
    pub id: String,
    pub title: String,
    pub description: String,
    pub applies_to: AppliesTo,
    pub remedies: Vec<RemedySpec>,
    /// Where it was loaded from (`embedded:…` or a path).
    #[serde(skip_deserializing, default)]
    pub origin: String,
}

const EMBEDDED: &[(&str, &str)] = &[
    (
        "dup-write-1062.json",
        include_str!("../../playbooks/dup-write-1062.json"),
    ),
    (
        "dup-update-1062.json",
        include_str!("../../playbooks/dup-update-1062.json"),
    ),
    (
        "missing-update-1032.json",
        include_str!("../../playbooks/missing-update-1032.json"),
    ),
    (
        "missing-delete-1032.json",
        include_str!("../../playbooks/missing-delete-1032.json"),
    ),
    (
        "dual-master-1062.json",
        include_str!("../../playbooks/dual-master-1062.json"),
    ),
];

pub fn parse(file: &str, text: &str) -> Result<Playbook, PlaybookError> {
    // The path ("remedies[0].risk") tells the author which field is wrong.
    let mut de = serde_json::Deserializer::from_str(text);
    let mut pb: Playbook =
        serde_path_to_error::deserialize(&mut de).map_err(|e| PlaybookError::Malformed {
            file: file.to_string(),
            reason: format!("field {}: {}", e.path(), e.inner()),
        })?;
    for r in &pb.remedies {
        if let Some(v) = &r.when.min_version
            && parse_version(v).is_none()
        {
            return Err(PlaybookError::Malformed {
                file: file.to_string(),
                reason: format!(
                    "remedy {}: when.min_version {v:?} is not a version",
                    r.remedy
                ),
            });
        }
        if r.steps.is_empty() {
            return Err(PlaybookError::Malformed {
                file: file.to_string(),
                reason: format!("remedy {}: steps is empty", r.remedy),
            });
        }
    }
    pb.origin = file.to_string();
    Ok(pb)
}

pub fn parse_version(v: &str) -> Option<Version> {
    let mut it = v.split('.').map(|p| p.parse::<u16>().ok());
    Some(Version::new(
        it.next()??,
        it.next().flatten().unwrap_or(0),
        it.next().flatten().unwrap_or(0),
    ))
}

/// The embedded playbooks, then every `*.json` of `extra`, overriding by id.
pub fn load(extra: Option<&Path>) -> Result<Vec<Playbook>, PlaybookError> {
    let mut by_id: BTreeMap<String, Playbook> = BTreeMap::new();
    for (name, text) in EMBEDDED {
        let pb = parse(&format!("embedded:{name}"), text)?;
        by_id.insert(pb.id.clone(), pb);
    }
    if let Some(dir) = extra {
        let io = |source| PlaybookError::Dir {
            dir: dir.display().to_string(),
            source,
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f).map_err(io)?;
            let pb = parse(&f.display().to_string(), &text)?;
            by_id.insert(pb.id.clone(), pb);
        }
    }
    Ok(by_id.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_playbooks_parse_and_cover_every_class() {
        let all = load(None).unwrap();
        assert_eq!(all.len(), 5);
        for kind in [
            ConflictKind::DuplicateOnWrite,
            ConflictKind::DuplicateOnUpdate,
            ConflictKind::MissingOnUpdate,
            ConflictKind::MissingOnDelete,
        ] {
            assert!(
                all.iter()
                    .any(|p| !p.applies_to.dual_master && p.applies_to.kinds.contains(&kind))
            );
        }
        assert!(all.iter().any(|p| p.applies_to.dual_master));
    }

    #[test]
    fn malformed_playbook_names_file_and_field() {
        let e = parse("mine.json", r#"{"id": "x", "title": "t", "description": "d", "applies_to": {"errno": 1062, "kinds": ["duplicate_on_write"], "dual_master": false}, "remedies": [{"remedy": "skip", "title": "t", "risk": "extreme", "loses": "", "steps": ["stop_applier"]}]}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("mine.json") && e.contains("remedies[0].risk") && e.contains("extreme"),
            "{e}"
        );
        let e = parse("typo.json", r#"{"id": "x", "title": "t", "description": "d", "applies_to": {"errno": 1062, "kinds": [], "dual_master": false}, "remedies": [{"remedy": "skip", "title": "t", "risk": "low", "loses": "", "steps": ["stop_applier"], "when": {"gtid_knwon": true}}]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("typo.json") && e.contains("gtid_knwon"), "{e}");
    }

    #[test]
    fn override_dir_replaces_by_id() {
        let dir = std::env::temp_dir().join(format!("replmend-pb-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut pb: serde_json::Value = serde_json::from_str(EMBEDDED[0].1).unwrap();
        pb["title"] = "Site policy: never skip".into();
        std::fs::write(dir.join("site.json"), pb.to_string()).unwrap();
        let all = load(Some(&dir)).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(all.len(), 5);
        assert!(
            all.iter()
                .any(|p| p.title == "Site policy: never skip" && p.origin.ends_with("site.json"))
        );
    }
}
