//! `replmend restore JOURNAL`: puts journaled rows back, newest first, exactly as they were.
//! Only changes that happened are undone (a rolled-back intent never did; an intent without
//! an outcome is judged by the row itself). A row that differs from what the repair left is
//! not overwritten without --force, and with --force the row found is journaled first.
//! Idempotent: a row already back is left alone.

use anyhow::{Context, Result};
use mysql::prelude::Queryable;
use serde::Serialize;

use super::Outcome;
use crate::cli::{Format, RestoreArgs};
use crate::conn::{ConnSpec, Server};
use crate::diagnosis::Row;
use crate::exit;
use crate::journal::{self, Action, Entry, Journal, State};
use crate::schema::{self, TableSchema};
use crate::sql;
use crate::value::Cell;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum RowOutcome {
    Restored,
    WouldRestore,
    AlreadyPresent,
    /// The change was rolled back, or a crash came before it: nothing to undo.
    NeverApplied,
    /// The row changed since the repair; --force overwrites it.
    Differs,
    /// --force: the row found was journaled, then replaced.
    Overwritten,
}

#[derive(Debug, Serialize)]
struct Restored {
    node: String,
    table: String,
    key: Vec<String>,
    outcome: RowOutcome,
}

#[derive(Debug, Serialize)]
struct Report {
    schema: &'static str,
    journal: String,
    dry_run: bool,
    rows: Vec<Restored>,
    /// What the restore leaves (or would leave) that a DBA must know: a dual-master pair
    /// made to differ, with the command that brings it back together.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
}

/// What the repair changed at an entry's key, judged against the row there now.
enum Judged {
    Back,
    NeverApplied,
    AsLeft,
    Differs,
}

fn judge(e: &Entry, image: &Row, current: Option<&Row>) -> Result<Judged> {
    let after = e
        .after
        .as_ref()
        .map(|a| a.row())
        .transpose()
        .map_err(|x| anyhow::anyhow!("journal entry: {x}"))?;
    let as_left = |c: Option<&Row>| match (&after, c) {
        (_, None) => after.is_none(),
        (Some(a), Some(c)) => a
            .columns
            .iter()
            .zip(&a.values)
            .all(|(k, v)| c.get(k) == Some(v)),
        (None, Some(_)) => false,
    };
    Ok(match e.action {
        Action::Insert => match current {
            None if e.state == State::Intent => Judged::NeverApplied,
            None => Judged::Back,
            Some(c) if c == image => Judged::AsLeft,
            Some(_) => Judged::Differs,
        },
        _ => match current {
            Some(c) if c == image && e.state == State::Intent => Judged::NeverApplied,
            Some(c) if c == image => Judged::Back,
            // Gone and nothing in its place (the repair stopped before the replicated row
            // came): putting it back overwrites nothing.
            c if as_left(c) || c.is_none() => Judged::AsLeft,
            _ => Judged::Differs,
        },
    })
}

struct Restorer<'a> {
    args: &'a RestoreArgs,
    creds: ConnSpec,
    force_journal: Option<Journal>,
}

impl Restorer<'_> {
    /// `older`: the journal's entries before `e`.
    fn one(&mut self, e: &Entry, older: &[Entry]) -> Result<Option<Restored>> {
        let Some(table) = e.table_ref() else {
            return Ok(None);
        };
        if e.state == State::RolledBack {
            return Ok(Some(self.report(e, RowOutcome::NeverApplied)));
        }
        let (host, port) = crate::conn::spec::split_endpoint(&e.node)
            .with_context(|| format!("journal entry names node {:?}", e.node))?;
        let mut server = Server::connect(&self.creds.with_endpoint(host, port))?;
        let schema = schema::load(&mut server.conn, &e.node, &table)?;
        let image = e
            .image()
            .map_err(|x| anyhow::anyhow!("journal entry: {x}"))?;
        let key = key_of(e, &image);
        let current = crate::inspect::fetch_row(&mut server, &schema, &key)?;
        // resync replaces a row as a delete (the old version) then an insert (the new one) on
        // the same key: once the older delete is undone, the key holds its image again, and
        // the insert's undo is already done.
        let undone_by_older = e.action == Action::Insert
            && current.as_ref().is_some_and(|c| {
                older.iter().any(|o| {
                    o.action == Action::Delete
                        && o.state != State::RolledBack
                        && o.node == e.node
                        && o.fingerprint == e.fingerprint
                        && o.table_ref() == e.table_ref()
                        && o.image().ok().as_ref() == Some(c)
                })
            });
        let judged = match undone_by_older {
            true => Judged::Back,
            false => judge(e, &image, current.as_ref())?,
        };
        let outcome = match judged {
            Judged::Back => RowOutcome::AlreadyPresent,
            Judged::NeverApplied => RowOutcome::NeverApplied,
            _ if self.args.dry_run => RowOutcome::WouldRestore,
            Judged::Differs if !self.args.force => RowOutcome::Differs,
            j => {
                if let (Judged::Differs, Some(found)) = (&j, &current) {
                    self.journal_overwrite(e, found, &table)?;
                }
                put_back(&mut server, e, &schema, &key, &image)
                    .with_context(|| format!("restoring a row of {table} on {}", e.node))?;
                match j {
                    Judged::Differs => RowOutcome::Overwritten,
                    _ => RowOutcome::Restored,
                }
            }
        };
        Ok(Some(self.report(e, outcome)))
    }

    fn journal_overwrite(
        &mut self,
        e: &Entry,
        found: &Row,
        table: &crate::diagnosis::TableRef,
    ) -> Result<()> {
        let path = self
            .args
            .journal_to
            .clone()
            .unwrap_or_else(|| self.args.journal.clone());
        if self.force_journal.is_none() {
            self.force_journal = Some(Journal::new(&path)?);
        }
        let j = self.force_journal.as_mut().expect("just set");
        let id = format!("{}/restore-force", e.id);
        let entry = Entry {
            key: e.key.clone(),
            sql_log_bin: e.sql_log_bin,
            ..Entry::row(&e.fingerprint, id, &e.node, Action::Overwrite, table, found)
        };
        j.append(&[entry.outcome(State::Done)])?;
        Ok(())
    }

    fn report(&self, e: &Entry, outcome: RowOutcome) -> Restored {
        let image = e.image().unwrap_or(Row {
            columns: vec![],
            values: vec![],
        });
        Restored {
            node: e.node.clone(),
            table: e.table_ref().map(|t| t.to_string()).unwrap_or_default(),
            key: key_of(e, &image)
                .iter()
                .map(|(k, v)| format!("{k}={}", v.display()))
                .collect(),
            outcome,
        }
    }
}

fn key_of(e: &Entry, image: &Row) -> Vec<(String, Cell)> {
    e.key
        .iter()
        .filter_map(|k| image.get(k).map(|v| (k.clone(), v.clone())))
        .collect()
}

/// One transaction, binary log as the change was made: the row at the key goes, and (for a
/// deleted or overwritten row) the journaled image comes back.
fn put_back(
    server: &mut Server,
    e: &Entry,
    schema: &TableSchema,
    key: &[(String, Cell)],
    image: &Row,
) -> mysql::Result<()> {
    let conn = &mut server.conn;
    for st in sql::row_write_session(e.sql_log_bin) {
        conn.query_drop(&st.sql)?;
    }
    conn.query_drop("START TRANSACTION")?;
    let mut statements = vec![sql::delete_by_key(
        &schema.table,
        key,
        &schema.converted_charsets(),
    )];
    if e.action != Action::Insert {
        statements.push(sql::insert_row(
            &schema.table,
            image,
            &schema.generated_columns(),
        ));
    }
    for st in &statements {
        if let Err(err) = conn.exec_drop(&st.sql, st.bind()) {
            let _ = conn.query_drop("ROLLBACK");
            return Err(err);
        }
    }
    conn.query_drop("COMMIT")
}

pub fn run(args: &RestoreArgs, format: Format) -> Result<Outcome> {
    if !args.journal.is_file() {
        return Err(crate::exit::Coded(
            exit::BAD_INPUT,
            format!(
                "journal {}: no such file (repair and resync name theirs when they finish)",
                args.journal.display()
            ),
        )
        .into());
    }
    let entries = journal::latest(&journal::read(&args.journal)?);
    let mut restorer = Restorer {
        args,
        creds: super::connect::replica_spec(&args.creds)?,
        force_journal: None,
    };
    let mut report = Report {
        schema: "replmend.restore/1",
        journal: args.journal.display().to_string(),
        dry_run: args.dry_run,
        rows: Vec::new(),
        warnings: Vec::new(),
    };
    for (i, e) in entries.iter().enumerate().rev() {
        if args
            .fingerprint
            .as_deref()
            .is_some_and(|f| f != e.fingerprint)
        {
            continue;
        }
        if let Some(r) = restorer.one(e, &entries[..i])? {
            report.rows.push(r);
        }
    }
    report.warnings = dual_master_warnings(&restorer.creds, &entries, &report);
    let refused = report.rows.iter().any(|r| r.outcome == RowOutcome::Differs);
    let output = super::render(format, &report, text);
    Ok(Outcome {
        output,
        code: if refused { exit::REFUSED } else { exit::OK },
    })
}

/// The node `node` replicates from, when that node replicates from it too (a dual-master
/// pair): its endpoint. Unknown (unreachable, not a replica) is None.
fn dual_master_peer(creds: &ConnSpec, node: &str) -> Option<String> {
    let (host, port) = crate::conn::spec::split_endpoint(node)?;
    let mut server = Server::connect(&creds.with_endpoint(host, port)).ok()?;
    let report = crate::status::read_status(&mut server).ok()?;
    report.channels.iter().find_map(|ch| {
        let peer = creds.with_endpoint(&ch.source_host, ch.source_port);
        let mut other = Server::connect(&peer).ok()?;
        let back = crate::status::read_status(&mut other).ok()?;
        back.channels
            .iter()
            .any(|c| c.source_server_id == Some(server.server_id) || c.source_port == port)
            .then(|| peer.endpoint())
    })
}

/// Rows restored with the binary log off (as the repair changed them) on a node of a
/// dual-master pair: the other node keeps the version the repair left, so the pair differs.
fn dual_master_warnings(creds: &ConnSpec, entries: &[Entry], report: &Report) -> Vec<String> {
    let changed = |o: RowOutcome| {
        matches!(
            o,
            RowOutcome::Restored | RowOutcome::WouldRestore | RowOutcome::Overwritten
        )
    };
    let mut nodes: Vec<(&str, Vec<&str>)> = Vec::new();
    for r in report.rows.iter().filter(|r| changed(r.outcome)) {
        let unlogged = entries
            .iter()
            .any(|e| e.node == r.node && !e.sql_log_bin && e.table_ref().is_some());
        if !unlogged {
            continue;
        }
        match nodes.iter_mut().find(|(n, _)| *n == r.node) {
            Some((_, tables)) if !tables.contains(&r.table.as_str()) => tables.push(&r.table),
            Some(_) => {}
            None => nodes.push((&r.node, vec![&r.table])),
        }
    }
    nodes
        .into_iter()
        .filter_map(|(node, tables)| {
            let peer = dual_master_peer(creds, node)?;
            let will = if report.dry_run { "would leave" } else { "leaves" };
            Some(format!(
                "{node} and {peer} are a dual-master pair: this restore {will} {node}'s old rows there only (binary log off, as the repair changed them), so the two nodes hold different versions of them; to bring them back together with these versions: replmend resync --replica mysql://{}@{node} --tables {} --winner replica",
                creds.user,
                tables.join(",")
            ))
        })
        .collect()
}

fn text(r: &Report) -> String {
    let mut s = String::new();
    for row in &r.rows {
        let outcome = serde_json::to_value(row.outcome)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        s.push_str(&format!(
            "{:16} {} {} {}\n",
            outcome,
            row.node,
            row.table,
            row.key.join(", ")
        ));
    }
    if r.rows.is_empty() {
        s.push_str("no journaled rows matched\n");
    }
    for w in &r.warnings {
        s.push_str(&format!("warning: {w}\n"));
    }
    if r.rows.iter().any(|x| x.outcome == RowOutcome::Differs) {
        s.push_str("some rows changed since the repair and were left alone: pass --force to overwrite them (the rows found are journaled first)\n");
    }
    s
}
