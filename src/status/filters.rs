//! A channel's replication filters (Replicate_Do_DB … Replicate_Wild_Ignore_Table, as the
//! replica status shows them per channel on both flavors) and whether they keep a table out.
//! A filtered table may differ from the source on purpose: verify reports it as filtered and
//! resync never writes it. Pure.

use serde::Serialize;

use crate::vocab::TableRef;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Filters {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub do_db: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignore_db: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub do_table: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignore_table: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub wild_do_table: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub wild_ignore_table: Vec<String>,
}

/// A status column's comma-separated list.
pub fn list(text: Option<&str>) -> Vec<String> {
    text.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// SQL LIKE with `%` and `_` (`\` escapes), as replicate-wild-*-table patterns match.
fn like(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    like_at(&p, &t)
}

fn like_at(p: &[char], t: &[char]) -> bool {
    match p.first() {
        None => t.is_empty(),
        Some('%') => (0..=t.len()).any(|i| like_at(&p[1..], &t[i..])),
        Some('_') => !t.is_empty() && like_at(&p[1..], &t[1..]),
        Some('\\') if p.len() > 1 => t.first() == Some(&p[1]) && like_at(&p[2..], &t[1..]),
        Some(c) => t.first() == Some(c) && like_at(&p[1..], &t[1..]),
    }
}

impl Filters {
    pub fn is_empty(&self) -> bool {
        *self == Filters::default()
    }

    /// Why the channel does not replicate `t`'s row changes, if it does not: the server's
    /// order for row events (database rules, then table rules).
    pub fn excludes(&self, t: &TableRef) -> Option<String> {
        let name = format!("{}.{}", t.schema, t.name);
        if !self.do_db.is_empty() && !self.do_db.contains(&t.schema) {
            return Some(format!(
                "replicate_do_db ({}) leaves out its database",
                self.do_db.join(",")
            ));
        }
        if self.ignore_db.contains(&t.schema) {
            return Some("replicate_ignore_db names its database".into());
        }
        if self.ignore_table.contains(&name) {
            return Some("replicate_ignore_table names it".into());
        }
        if let Some(p) = self.wild_ignore_table.iter().find(|p| like(p, &name)) {
            return Some(format!(
                "replicate_wild_ignore_table pattern {p} matches it"
            ));
        }
        let has_do = !self.do_table.is_empty() || !self.wild_do_table.is_empty();
        let done =
            self.do_table.contains(&name) || self.wild_do_table.iter().any(|p| like(p, &name));
        (has_do && !done)
            .then(|| "replicate_do_table / replicate_wild_do_table leave it out".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str, n: &str) -> TableRef {
        TableRef {
            schema: s.into(),
            name: n.into(),
        }
    }

    #[test]
    fn each_kind_of_rule_and_wildcards() {
        let f = Filters {
            ignore_table: list(Some("app.audit,app.tmp")),
            wild_ignore_table: list(Some("logs%.%,app.cache\\_%")),
            ..Default::default()
        };
        assert!(f.excludes(&t("app", "audit")).is_some());
        assert!(f.excludes(&t("logs2026", "x")).is_some());
        assert!(f.excludes(&t("app", "cache_a")).is_some());
        assert!(
            f.excludes(&t("app", "cacheXa")).is_none(),
            "\\_ is a literal _"
        );
        assert!(f.excludes(&t("app", "users")).is_none());
        let d = Filters {
            do_db: list(Some("app")),
            wild_do_table: list(Some("app.u%")),
            ..Default::default()
        };
        assert!(d.excludes(&t("other", "users")).is_some());
        assert!(d.excludes(&t("app", "orders")).is_some());
        assert!(d.excludes(&t("app", "users")).is_none());
        assert!(Filters::default().excludes(&t("a", "b")).is_none());
        let i = Filters {
            ignore_db: list(Some("scratch")),
            ..Default::default()
        };
        assert!(i.excludes(&t("scratch", "t")).is_some());
    }
}
