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
        let expect = fs::read_to_string(dir.join("expect"))
            .with_context(|| format!("{}: no expect file", dir.display()))?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                let (n, e) = l
                    .split_once(char::is_whitespace)
                    .ok_or_else(|| anyhow!("{}/expect: bad line {l:?}", dir.display()))?;
                Ok((n.to_string(), e.trim().parse()?))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Recipe {
            name,
            dir: dir.to_path_buf(),
            topology,
            expect,
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

    /// schema on n1, caught up everywhere; every receiver stopped; n2's then n1's writes;
    /// receivers started; then each expected error is awaited (lines naming a node that does
    /// not replicate in this topology are ignored), and every other replica must catch up
    /// without error.
    pub fn run(&self, nodes: &[Node], flavor: Flavor) -> Result<()> {
        let ctx = || format!("recipe {} on {flavor}", self.name);
        let node = |n: &str| {
            nodes
                .iter()
                .find(|x| x.name == n)
                .ok_or_else(|| anyhow!("no node {n}"))
        };
        let replicas: Vec<&Node> = nodes.iter().filter(|n| n.source_port.is_some()).collect();
        if let Some(schema) = self.sql("schema", flavor) {
            node("n1")?.exec(&schema).with_context(ctx)?;
            for r in &replicas {
                r.wait_caught_up(RECIPE_TIMEOUT).with_context(ctx)?;
            }
        }
        for r in &replicas {
            r.stop_io().with_context(ctx)?;
        }
        for n in ["n2", "n1"] {
            if let Some(sql) = self.sql(n, flavor) {
                node(n)?.exec(&sql).with_context(ctx)?;
            }
        }
        for r in &replicas {
            r.start_io().with_context(ctx)?;
        }
        for (n, errno) in &self.expect {
            let n = node(n)?;
            if n.source_port.is_some() {
                n.wait_sql_error(*errno, RECIPE_TIMEOUT).with_context(ctx)?;
            }
        }
        for r in replicas
            .iter()
            .filter(|r| !self.expect.iter().any(|(n, _)| *n == r.name))
        {
            r.wait_caught_up(RECIPE_TIMEOUT).with_context(ctx)?;
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
