//! replmend-sandbox: real MariaDB/MySQL topologies on 127.0.0.1 for the demo and benchmarks.
//!
//!   replmend-sandbox up [--flavor mariadb|mysql | --build mariadb-11.8|mariadb-10.5] --topology dual-master|source-replica|source-replica-gtid|multi-source [--state-dir DIR] [--recipe NAME]
//!   replmend-sandbox recipe NAME --state-dir DIR
//!   replmend-sandbox sql --state-dir DIR --node n1 'SQL'
//!   replmend-sandbox down --state-dir DIR
//!   replmend-sandbox recipes

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Parser, Subcommand};
use replmend_sandbox::{
    Build, Flavor, Recipe, Sandbox, SandboxInfo, Topology, down, load_state, running,
};

#[derive(Parser)]
#[command(
    name = "replmend-sandbox",
    about = "Real MariaDB / Oracle MySQL replication topologies on 127.0.0.1 (demo, benchmarks)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start a topology, leave it running, print it as JSON. Idempotent: if DIR already holds
    /// a running sandbox of the same kind, it is printed again.
    Up {
        /// The flavor's default build: mariadb (the host's 10.11, the default) or mysql.
        #[arg(long)]
        flavor: Option<Flavor>,
        /// A server build instead: mariadb (the host's 10.11), mariadb-11.8 or mariadb-10.5
        /// (each in its chroot) or mysql.
        #[arg(long)]
        build: Option<Build>,
        #[arg(long, default_value = "dual-master")]
        topology: Topology,
        /// Where to write sandbox.json; default: the sandbox's own directory (printed).
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Run this incident recipe (tests/incidents/NAME) once the topology is up.
        #[arg(long)]
        recipe: Option<String>,
    },
    /// Run an incident recipe on a kept sandbox and wait for its errors.
    Recipe {
        name: String,
        #[arg(long)]
        state_dir: PathBuf,
    },
    /// Run SQL on one node; rows are printed tab-separated, NULL as NULL.
    Sql {
        #[arg(long)]
        state_dir: PathBuf,
        #[arg(long, default_value = "n1")]
        node: String,
        sql: String,
    },
    /// Stop a kept sandbox by PID and remove it.
    Down {
        #[arg(long)]
        state_dir: PathBuf,
    },
    /// List the incident recipes.
    Recipes,
    /// For tests: start a sandbox that is NOT kept, print it, and wait to be killed.
    #[command(hide = true)]
    Hold {
        #[arg(long)]
        flavor: Option<Flavor>,
        #[arg(long)]
        build: Option<Build>,
        #[arg(long, default_value = "source-replica")]
        topology: Topology,
    },
}

fn describe(info: &SandboxInfo, state_dir: &Path) -> serde_json::Value {
    let nodes: Vec<serde_json::Value> = info
        .nodes
        .iter()
        .map(|n| {
            serde_json::json!({
                "name": n.name,
                "port": n.port,
                "url": n.url(),
                "pid": n.pid,
                "server_id": n.server_id,
                "binlog_basename": n.binlog_basename,
                "source_port": n.source_port,
                "channels": n.channels,
            })
        })
        .collect();
    serde_json::json!({
        "flavor": info.flavor.to_string(),
        "build": info.build.to_string(),
        "topology": info.topology.to_string(),
        "state_dir": state_dir,
        "sandbox_dir": info.dir,
        "nodes": nodes,
    })
}

fn node_of(info: &SandboxInfo, name: &str) -> Result<replmend_sandbox::Node> {
    info.nodes
        .iter()
        .find(|n| n.name == name)
        .cloned()
        .ok_or_else(|| {
            let names: Vec<&str> = info.nodes.iter().map(|n| n.name.as_str()).collect();
            anyhow!("no node {name} ({})", names.join(", "))
        })
}

/// `--build`, else `--flavor`'s default build, else the host's MariaDB.
fn pick_build(flavor: Option<Flavor>, build: Option<Build>) -> Result<Build> {
    match (flavor, build) {
        (Some(f), Some(b)) if b.flavor() != f => {
            bail!("--build {b} is a {} build, not {f}", b.flavor())
        }
        (_, Some(b)) => Ok(b),
        (Some(f), None) => Ok(f.into()),
        (None, None) => Ok(Build::Host),
    }
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Up {
            flavor,
            build,
            topology,
            state_dir,
            recipe,
        } => {
            let build = pick_build(flavor, build)?;
            if let Some(state_dir) = &state_dir
                && state_dir.join("sandbox.json").exists()
            {
                let info = load_state(state_dir)?;
                if running(&info) && info.build == build && info.topology == topology {
                    println!("{}", describe(&info, state_dir));
                    return Ok(());
                }
                // Stopped, half dead or of another kind: replace it.
                down(state_dir)?;
            }
            let sb = Sandbox::start_build(build, topology)?;
            if let Some(r) = &recipe {
                sb.recipe(r).with_context(|| format!("recipe {r}"))?;
            }
            let dir = match &state_dir {
                Some(d) => sb.keep_at(d)?,
                None => sb.keep(),
            };
            println!("{}", describe(&load_state(&dir)?, &dir));
        }
        Cmd::Recipe { name, state_dir } => {
            let info = load_state(&state_dir)?;
            Recipe::load(&name)?.run(&info.nodes, info.flavor)?;
            // One line per stopped node (NODE:CHANNEL for a named channel): its error, with
            // a MySQL worker's full text (the coordinator's Last_SQL_Error only points at
            // performance_schema).
            for n in &info.nodes {
                for ch in n.sources() {
                    let Some((errno, text)) = n.channel_sql_error(&ch.name)? else {
                        continue;
                    };
                    let full = n
                        .worker_errors()?
                        .into_iter()
                        .find(|w| w.errno == errno)
                        .map(|w| w.message)
                        .unwrap_or(text);
                    let who = match ch.name.as_str() {
                        "" => n.name.clone(),
                        c => format!("{}:{c}", n.name),
                    };
                    println!("{who}\t{errno}\t{full}");
                }
            }
        }
        Cmd::Sql {
            state_dir,
            node,
            sql,
        } => {
            let info = load_state(&state_dir)?;
            for row in node_of(&info, &node)?.query_rows(&sql)? {
                let cells: Vec<String> = row
                    .into_iter()
                    .map(|c| c.unwrap_or_else(|| "NULL".into()))
                    .collect();
                println!("{}", cells.join("\t"));
            }
        }
        Cmd::Down { state_dir } => {
            if !state_dir.join("sandbox.json").exists() {
                bail!("{}: no sandbox.json (nothing to stop)", state_dir.display());
            }
            down(&state_dir)?;
        }
        Cmd::Recipes => {
            for r in Recipe::all()? {
                let expect: Vec<String> = r
                    .stops
                    .iter()
                    .map(|s| match &s.channel {
                        Some(c) => format!("{}:{c} {}", s.node, s.errno),
                        None => format!("{} {}", s.node, s.errno),
                    })
                    .collect();
                println!("{}\t{}\t{}", r.name, r.topology, expect.join(", "));
            }
        }
        Cmd::Hold {
            flavor,
            build,
            topology,
        } => {
            let sb = Sandbox::start_build(pick_build(flavor, build)?, topology)?;
            let info = load_state(&sb.dir)?;
            println!("{}", describe(&info, &sb.dir));
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
    }
    Ok(())
}
