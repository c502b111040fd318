//! Incident recipes: plain SQL that turns a healthy topology into a real replication incident.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

use crate::flavor::{Flavor, Topology};
use crate::node::Node;
use crate::paths::incidents_dir;

const RECIPE_TIMEOUT: Duration = Duration::from_secs(60);

/// An incident recipe: `tests/incidents/<name>/` (see its README.md).
#[derive(Debug, Clone)]
pub struct Recipe {
    pub name: String,
    pub dir: PathBuf,
    /// The topology the recipe is written for (`topology` file).
    pub topology: Topology,
    /// `(node, errno)` from `expect`.
    pub expect: Vec<(String, u32)>,
    /// The same lines with the channel each names, if any (`n3:n1 1062`).
    pub stops: Vec<Stop>,
}

/// One `expect` line: `NODE ERRNO` (the node's applier stops with ERRNO) or
/// `NODE:CHANNEL ERRNO` (that channel of a multi-source node stops; its other channels must
/// catch up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stop {
    pub node: String,
    pub channel: Option<String>,
    pub errno: u32,
}

impl Stop {
    fn parse(line: &str) -> Option<Stop> {
        let (who, errno) = line.split_once(char::is_whitespace)?;
        let errno = errno.trim().parse().ok()?;
        let (node, channel) = match who.split_once(':') {
            Some((n, c)) if !n.is_empty() && !c.is_empty() => (n, Some(c.to_string())),
            Some(_) => return None,
            None => (who, None),
        };
        Some(Stop {
            node: node.to_string(),
            channel,
            errno,
        })
    }
}

impl Recipe {
    pub fn load(name: &str) -> Result<Recipe> {
        Recipe::from_dir(&incidents_dir().join(name))
    }

    pub fn from_dir(dir: &Path) -> Result<Recipe> {
        if !dir.is_dir() {
            bail!("no incident recipe at {}", dir.display());
        }
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let topology = fs::read_to_string(dir.join("topology"))
            .with_context(|| format!("{}: no topology file", dir.display()))?
            .parse()
            .with_context(|| format!("{}/topology", dir.display()))?;
        let stops = fs::read_to_string(dir.join("expect"))
            .with_context(|| format!("{}: no expect file", dir.display()))?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                Stop::parse(l).ok_or_else(|| {
                    anyhow!(
                        "{}/expect: bad line {l:?} (NODE ERRNO or NODE:CHANNEL ERRNO)",
                        dir.display()
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Recipe {
            name,
            dir: dir.to_path_buf(),
            topology,
            expect: stops.iter().map(|s| (s.node.clone(), s.errno)).collect(),
            stops,
        })
    }

    /// Every recipe in [`incidents_dir`], by name.
    pub fn all() -> Result<Vec<Recipe>> {
        let mut out = Vec::new();
        for e in fs::read_dir(incidents_dir())?.flatten() {
            if e.path().is_dir() {
                out.push(Recipe::from_dir(&e.path())?);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// `<base>.<flavor>.sql` if present, else `<base>.sql`.
    pub fn sql(&self, base: &str, flavor: Flavor) -> Option<String> {
        fs::read_to_string(self.dir.join(format!("{base}.{flavor}.sql")))
            .or_else(|_| fs::read_to_string(self.dir.join(format!("{base}.sql"))))
            .ok()
    }

    /// schema on n1 (and `schema-n2` on n2), caught up everywhere; every receiver stopped;
    /// n3's, n2's then n1's writes; receivers started; then each expected error is awaited
    /// (lines naming a node that is not in this topology, or does not replicate in it, are
    /// ignored), and every other replica, and every other channel of a node whose line names
    /// a channel, must catch up without error.
    pub fn run(&self, nodes: &[Node], flavor: Flavor) -> Result<()> {
        let ctx = || format!("recipe {} on {flavor}", self.name);
        let node = |n: &str| {
            nodes
                .iter()
                .find(|x| x.name == n)
                .ok_or_else(|| anyhow!("no node {n}"))
        };
        let replicas: Vec<&Node> = nodes.iter().filter(|n| n.is_replica()).collect();
        let mut schema = false;
        for (base, n) in [("schema", "n1"), ("schema-n2", "n2")] {
            if let Some(sql) = self.sql(base, flavor) {
                node(n)?.exec(&sql).with_context(ctx)?;
                schema = true;
            }
        }
        if schema {
            for r in &replicas {
                r.wait_caught_up(RECIPE_TIMEOUT).with_context(ctx)?;
            }
        }
        for r in &replicas {
            r.stop_io().with_context(ctx)?;
        }
        for n in ["n3", "n2", "n1"] {
            // n3.sql only runs where there is an n3 (multi-source).
            if let Some(sql) = self.sql(n, flavor)
                && let Ok(n) = node(n)
            {
                n.exec(&sql).with_context(ctx)?;
            }
        }
        for r in &replicas {
            r.start_io().with_context(ctx)?;
        }
        let stops: Vec<(&Node, &Stop)> = self
            .stops
            .iter()
            .filter_map(|s| node(&s.node).ok().map(|n| (n, s)))
            .filter(|(n, _)| n.is_replica())
            .collect();
        for (n, s) in &stops {
            match &s.channel {
                Some(c) => n.wait_channel_error(c, s.errno, RECIPE_TIMEOUT),
                None => n.wait_sql_error(s.errno, RECIPE_TIMEOUT),
            }
            .with_context(ctx)?;
        }
        for r in &replicas {
            let mine: Vec<&Stop> = stops
                .iter()
                .filter(|(n, _)| n.name == r.name)
                .map(|(_, s)| *s)
                .collect();
            if mine.is_empty() {
                r.wait_caught_up(RECIPE_TIMEOUT).with_context(ctx)?;
            } else if mine.iter().all(|s| s.channel.is_some()) {
                let others: Vec<String> = r
                    .sources()
                    .into_iter()
                    .map(|c| c.name)
                    .filter(|c| !mine.iter().any(|s| s.channel.as_ref() == Some(c)))
                    .collect();
                let others: Vec<&str> = others.iter().map(String::as_str).collect();
                r.wait_channels_caught_up(&others, RECIPE_TIMEOUT)
                    .with_context(ctx)?;
            }
        }
        Ok(())
    }
}

/// Runs the recipe in `dir` on these nodes (see [`Recipe::run`]).
pub fn run_recipe(nodes: &[Node], flavor: Flavor, dir: &Path) -> Result<()> {
    Recipe::from_dir(dir)?.run(nodes, flavor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expect_lines() {
        assert_eq!(
            Stop::parse("n2 1062"),
            Some(Stop {
                node: "n2".into(),
                channel: None,
                errno: 1062
            })
        );
        assert_eq!(
            Stop::parse("n3:n1   1032"),
            Some(Stop {
                node: "n3".into(),
                channel: Some("n1".into()),
                errno: 1032
            })
        );
        for bad in ["n2", "n2 x", "n3: 1062", ":n1 1062"] {
            assert_eq!(Stop::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_recipe_parses() {
        let all = Recipe::all().unwrap();
        assert!(all.len() >= 7, "{all:?}");
        let readme = fs::read_to_string(incidents_dir().join("README.md")).unwrap();
        for r in all {
            assert!(
                readme.contains(&format!("| {} |", r.name)),
                "tests/incidents/README.md does not list {}",
                r.name
            );
            assert!(!r.expect.is_empty(), "{}", r.name);
            assert!(r.sql("n1", Flavor::MariaDb).is_some(), "{}", r.name);
        }
    }
}
