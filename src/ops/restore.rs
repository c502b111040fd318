//! `replmend restore JOURNAL`: puts journaled rows back, newest first, exactly as they were.
//! Idempotent: a row already equal to its journaled image is left alone.

use anyhow::{Context, Result};
use serde::Serialize;

use super::Outcome;
use crate::cli::{Format, RestoreArgs};
use crate::conn::Server;
use crate::exit;
use crate::journal;
use crate::ops::diagnose::fetch_row;
use crate::repair::rows;
use crate::schema;

#[derive(Debug, Serialize)]
struct Restored {
    node: String,
    table: String,
    key: Vec<String>,
    outcome: &'static str,
}

#[derive(Debug, Serialize)]
struct Report {
    schema: &'static str,
    journal: String,
    dry_run: bool,
    rows: Vec<Restored>,
}

pub fn run(args: &RestoreArgs, format: Format) -> Result<Outcome> {
    let entries = journal::read(&args.journal)?;
    let creds = super::connect::replica_spec(&args.creds)?;
    let mut report = Report {
        schema: "replmend.restore/1",
        journal: args.journal.display().to_string(),
        dry_run: args.dry_run,
        rows: Vec::new(),
    };
    for entry in entries.iter().rev() {
        if args
            .fingerprint
            .as_deref()
            .is_some_and(|f| f != entry.fingerprint)
        {
            continue;
        }
        let (host, port) = crate::conn::spec::split_endpoint(&entry.node)
            .with_context(|| format!("journal entry names node {:?}", entry.node))?;
        let mut server = Server::connect(&creds.with_endpoint(host, port))?;
        let table = entry.table_ref();
        let schema = schema::load(&mut server.conn, &entry.node, &table)?;
        let row = entry
            .row()
            .map_err(|e| anyhow::anyhow!("journal entry: {e}"))?;
        let key: Vec<(String, crate::value::Cell)> = entry
            .key
            .iter()
            .filter_map(|k| row.get(k).map(|v| (k.clone(), v.clone())))
            .collect();
        let current = fetch_row(&mut server, &schema, &key)?;
        let outcome = if current.as_ref() == Some(&row) {
            "already present"
        } else if args.dry_run {
            "would restore"
        } else {
            rows::in_transaction(&mut server, entry.sql_log_bin, |conn| {
                rows::delete_by_key(conn, &table, &key)?;
                rows::insert_row(conn, &schema, &row)
            })
            .with_context(|| format!("restoring a row of {table} on {}", entry.node))?;
            "restored"
        };
        report.rows.push(Restored {
            node: entry.node.clone(),
            table: table.to_string(),
            key: key
                .iter()
                .map(|(k, v)| format!("{k}={}", v.display()))
                .collect(),
            outcome,
        });
    }
    let output = super::render(format, &report, |r| {
        let mut s = String::new();
        for row in &r.rows {
            s.push_str(&format!(
                "{:16} {} {} {}\n",
                row.outcome,
                row.node,
                row.table,
                row.key.join(", ")
            ));
        }
        if r.rows.is_empty() {
            s.push_str("no journaled rows matched\n");
        }
        s
    });
    Ok(Outcome {
        output,
        code: exit::OK,
    })
}
