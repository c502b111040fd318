//! replmend-sandbox: real MariaDB/MySQL topologies on 127.0.0.1 for the demo and benchmarks.
//!
//!   replmend-sandbox up --flavor mariadb|mysql --topology dual-master|source-replica|source-replica-gtid [--recipe NAME]
//!   replmend-sandbox recipe NAME --state-dir DIR
//!   replmend-sandbox sql --state-dir DIR --node n1 'SQL'
//!   replmend-sandbox down --state-dir DIR

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use replmend_sandbox::{Flavor, Sandbox, Topology, down, flavor_of, nodes_of, run_recipe};

fn opt(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn positional(args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut skip = false;
    for a in args {
        if skip {
            skip = false;
            continue;
        }
        if a.starts_with("--") {
            skip = true;
            continue;
        }
        out.push(a.clone());
    }
    out
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cmd = args.first().cloned().unwrap_or_default();
    let rest = &args[1.min(args.len())..];
    let state_dir = || -> Result<PathBuf> {
        opt(rest, "--state-dir")
            .map(PathBuf::from)
            .ok_or_else(|| anyhow!("--state-dir DIR is required"))
    };
    match cmd.as_str() {
        "up" => {
            let flavor: Flavor = opt(rest, "--flavor")
                .unwrap_or_else(|| "mariadb".into())
                .parse()?;
            let topology: Topology = opt(rest, "--topology")
                .unwrap_or_else(|| "dual-master".into())
                .parse()?;
            let sb = Sandbox::start(flavor, topology)?;
            if let Some(r) = opt(rest, "--recipe") {
                sb.recipe(&r).with_context(|| format!("recipe {r}"))?;
            }
            let nodes: Vec<serde_json::Value> = sb
                .nodes
                .iter()
                .map(|n| serde_json::json!({"name": n.name, "port": n.port, "url": n.url(), "pid": n.pid}))
                .collect();
            let dir = sb.keep();
            println!(
                "{}",
                serde_json::json!({"flavor": flavor.to_string(), "topology": topology, "state_dir": dir, "nodes": nodes})
            );
        }
        "recipe" => {
            let dir = state_dir()?;
            let name = positional(rest)
                .first()
                .cloned()
                .ok_or_else(|| anyhow!("recipe NAME"))?;
            run_recipe(
                &nodes_of(&dir)?,
                flavor_of(&dir)?,
                &replmend_sandbox::incidents_dir().join(name),
            )?;
        }
        "sql" => {
            let dir = state_dir()?;
            let node = opt(rest, "--node").unwrap_or_else(|| "n1".into());
            let sql = positional(rest)
                .first()
                .cloned()
                .ok_or_else(|| anyhow!("sql 'STATEMENT'"))?;
            let nodes = nodes_of(&dir)?;
            let n = nodes
                .iter()
                .find(|n| n.name == node)
                .ok_or_else(|| anyhow!("no node {node}"))?;
            for row in n.query_rows(&sql)? {
                let cells: Vec<String> = row
                    .into_iter()
                    .map(|c| c.unwrap_or_else(|| "NULL".into()))
                    .collect();
                println!("{}", cells.join("\t"));
            }
        }
        "down" => down(&state_dir()?)?,
        _ => bail!("usage: replmend-sandbox up|recipe|sql|down (see the source header)"),
    }
    Ok(())
}
