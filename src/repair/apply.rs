//! Executes a plan step by step. Every step first checks whether its effect is already there
//! (so a run killed at any point converges when run again), row changes are journaled and
//! synced before they happen, and rows that changed since the diagnosis are never touched.

use std::collections::BTreeMap;
use std::time::Duration;

use mysql::prelude::Queryable;
use serde::Serialize;
use thiserror::Error;

use super::rows;
use super::verify::{self, Resumed};
use crate::conn::{ConnSpec, Server};
use crate::diagnosis::Row;
use crate::journal::{Entry, Journal};
use crate::ops::diagnose::fetch_row;
use crate::planner::playbook::StepTemplate;
use crate::planner::{Plan, Step};
use crate::schema::{self, TableSchema};

#[derive(Debug, Error)]
pub enum ApplyError {
    #[error(
        "step {step}: the row of {table} with key {key} changed since the diagnosis; nothing more was done (re-run replmend to see the new state)"
    )]
    RowChanged {
        step: usize,
        table: String,
        key: String,
    },
    #[error("step {step} on {endpoint}: {source}")]
    Sql {
        step: usize,
        endpoint: String,
        source: mysql::Error,
    },
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    pub step: usize,
    pub endpoint: String,
    pub action: StepTemplate,
    pub description: String,
    /// done | already done | verified | ...
    pub outcome: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApplyReport {
    pub steps: Vec<StepResult>,
    pub journal: String,
    pub journaled_rows: usize,
    /// Per node: how replication resumed.
    pub resumed: BTreeMap<String, Resumed>,
    /// The repaired rows are identical on both nodes.
    pub rows_agree: Option<bool>,
}

/// Connections by endpoint, opened on first use with the replica's credentials (or the
/// source's own, when one was given).
pub struct Nodes {
    specs: BTreeMap<String, ConnSpec>,
    open: BTreeMap<String, Server>,
}

impl Nodes {
    pub fn new(specs: impl IntoIterator<Item = ConnSpec>) -> Nodes {
        Nodes {
            specs: specs.into_iter().map(|s| (s.endpoint(), s)).collect(),
            open: BTreeMap::new(),
        }
    }

    pub fn has(&self, endpoint: &str) -> bool {
        self.specs.contains_key(endpoint)
    }

    pub fn port_endpoint(&self, port: u16) -> Option<String> {
        self.specs
            .values()
            .find(|s| s.port == port)
            .map(|s| s.endpoint())
    }

    pub fn get(&mut self, endpoint: &str) -> anyhow::Result<&mut Server> {
        if !self.open.contains_key(endpoint) {
            let spec = self
                .specs
                .get(endpoint)
                .ok_or_else(|| anyhow::anyhow!("no connection settings for {endpoint}"))?;
            self.open
                .insert(endpoint.to_string(), Server::connect(spec)?);
        }
        Ok(self.open.get_mut(endpoint).expect("just inserted"))
    }
}

fn key_text(key: &[(String, crate::value::Cell)]) -> String {
    key.iter()
        .map(|(k, v)| format!("{k}={}", v.display()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Test hook: abort (like kill -9: no cleanup, no flush) right after step N. Used by the crash
/// tests; never set it in production.
fn crash_point(step: usize) {
    if std::env::var("REPLMEND_TEST_CRASH_AFTER_STEP")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        == Some(step)
    {
        std::process::abort();
    }
}

pub struct Applier<'a> {
    pub nodes: &'a mut Nodes,
    pub journal: &'a mut Journal,
    pub fingerprint: String,
    pub timeout: Duration,
    pub on_step: &'a mut dyn FnMut(&StepResult),
}

impl Applier<'_> {
    fn schema(&mut self, endpoint: &str, step: &Step) -> anyhow::Result<Option<TableSchema>> {
        let Some(change) = step.rows.first() else {
            return Ok(None);
        };
        let server = self.nodes.get(endpoint)?;
        Ok(Some(schema::load(
            &mut server.conn,
            endpoint,
            &change.table,
        )?))
    }

    fn run_statements(&mut self, i: usize, step: &Step) -> Result<(), ApplyError> {
        let server = self.nodes.get(&step.endpoint)?;
        for st in &step.statements {
            let params: Vec<mysql::Value> = st.params.iter().map(|c| c.to_param()).collect();
            let r = if params.is_empty() {
                server.conn.query_drop(&st.sql)
            } else {
                server.conn.exec_drop(&st.sql, params)
            };
            r.map_err(|source| ApplyError::Sql {
                step: i + 1,
                endpoint: step.endpoint.clone(),
                source,
            })?;
        }
        Ok(())
    }

    fn delete_rows(&mut self, i: usize, step: &Step) -> Result<String, ApplyError> {
        let Some(schema) = self.schema(&step.endpoint, step)? else {
            return Ok("nothing left to delete".into());
        };
        let (mut done, mut already) = (0, 0);
        for change in &step.rows {
            let server = self.nodes.get(&step.endpoint)?;
            let current: Option<Row> = fetch_row(server, &schema, &change.key)?;
            match current {
                None => {
                    already += 1;
                    continue;
                }
                Some(r) if r != change.image => {
                    return Err(ApplyError::RowChanged {
                        step: i + 1,
                        table: change.table.to_string(),
                        key: key_text(&change.key),
                    });
                }
                Some(_) => {}
            }
            let keys: Vec<String> = change.key.iter().map(|(k, _)| k.clone()).collect();
            self.journal
                .append(&Entry::new(
                    &self.fingerprint,
                    &step.endpoint,
                    "delete",
                    &change.table,
                    false,
                    &change.image,
                    &keys,
                ))
                .map_err(anyhow::Error::from)?;
            let server = self.nodes.get(&step.endpoint)?;
            rows::in_transaction(server, false, |conn| {
                rows::delete_by_key(conn, &change.table, &change.key)
            })
            .map_err(|source| ApplyError::Sql {
                step: i + 1,
                endpoint: step.endpoint.clone(),
                source,
            })?;
            done += 1;
        }
        Ok(format!(
            "{done} row(s) journaled and deleted, {already} already gone"
        ))
    }

    fn insert_rows(&mut self, i: usize, step: &Step) -> Result<String, ApplyError> {
        let Some(schema) = self.schema(&step.endpoint, step)? else {
            return Ok("nothing left to insert".into());
        };
        let (mut done, mut already) = (0, 0);
        for change in &step.rows {
            let server = self.nodes.get(&step.endpoint)?;
            match fetch_row(server, &schema, &change.key)? {
                Some(r) if r == change.image => {
                    already += 1;
                    continue;
                }
                Some(_) => {
                    return Err(ApplyError::RowChanged {
                        step: i + 1,
                        table: change.table.to_string(),
                        key: key_text(&change.key),
                    });
                }
                None => {}
            }
            rows::in_transaction(server, false, |conn| {
                rows::insert_row(conn, &schema, &change.image)
            })
            .map_err(|source| ApplyError::Sql {
                step: i + 1,
                endpoint: step.endpoint.clone(),
                source,
            })?;
            done += 1;
        }
        Ok(format!("{done} row(s) inserted, {already} already there"))
    }

    fn gtid_executed(&mut self, step: &Step) -> anyhow::Result<bool> {
        let Some(g) = &step.gtid else {
            return Ok(false);
        };
        let server = self.nodes.get(&step.endpoint)?;
        let sql = if server.flavor.is_mariadb() {
            // Advancing gtid_slave_pos is idempotent: setting it again is harmless.
            return Ok(false);
        } else {
            "SELECT GTID_SUBSET(?, @@GLOBAL.gtid_executed)"
        };
        let r: Option<i64> = server.conn.exec_first(sql, (g.to_string(),))?;
        Ok(r == Some(1))
    }

    /// Where the channel's source's binlog ends now: what "caught up" means for this wait.
    fn source_end(&mut self, step: &Step) -> anyhow::Result<(String, u64)> {
        let server = self.nodes.get(&step.endpoint)?;
        let report = crate::status::read_status(server)?;
        let ch = report
            .channels
            .iter()
            .find(|c| c.name == step.channel)
            .ok_or_else(|| {
                anyhow::anyhow!("channel '{}' is gone from {}", step.channel, step.endpoint)
            })?;
        let named = format!("{}:{}", ch.source_host, ch.source_port);
        let endpoint = if self.nodes.has(&named) {
            named
        } else {
            // The replica may name its source differently (a hostname) than we reached it.
            self.nodes.port_endpoint(ch.source_port).ok_or_else(|| {
                anyhow::anyhow!(
                    "the source {named} of {} is not part of this plan",
                    step.endpoint
                )
            })?
        };
        let source = self.nodes.get(&endpoint)?;
        verify::binlog_end(source)
    }

    pub fn apply(&mut self, plan: &Plan) -> Result<ApplyReport, ApplyError> {
        let mut report = ApplyReport {
            steps: Vec::new(),
            journal: self.journal.path().display().to_string(),
            journaled_rows: 0,
            resumed: BTreeMap::new(),
            rows_agree: None,
        };
        for (i, step) in plan.steps.iter().enumerate() {
            let outcome = match step.action {
                StepTemplate::StopApplier | StepTemplate::StartApplier => {
                    self.run_statements(i, step)?;
                    "done".to_string()
                }
                StepTemplate::DeleteConflictingRows => {
                    let o = self.delete_rows(i, step)?;
                    report.journaled_rows += step.rows.len();
                    o
                }
                StepTemplate::InsertMissingRows => self.insert_rows(i, step)?,
                StepTemplate::SkipTransaction => {
                    if self.gtid_executed(step)? {
                        "already done (GTID executed)".to_string()
                    } else {
                        self.run_statements(i, step)?;
                        "done".to_string()
                    }
                }
                StepTemplate::Verify => {
                    let target = self.source_end(step)?;
                    let server = self.nodes.get(&step.endpoint)?;
                    let r = verify::wait_resumed(server, &step.channel, target, self.timeout)?;
                    let text = match &r {
                        Resumed::CaughtUp => "replication running and caught up".to_string(),
                        Resumed::StoppedAgain { errno, message } => {
                            format!("stopped again with {errno}: {message}")
                        }
                        Resumed::StillBehind { bytes_behind } => {
                            format!("still {bytes_behind} bytes behind")
                        }
                    };
                    report.resumed.insert(step.endpoint.clone(), r);
                    text
                }
            };
            let result = StepResult {
                step: i + 1,
                endpoint: step.endpoint.clone(),
                action: step.action,
                description: step.description.clone(),
                outcome,
            };
            (self.on_step)(&result);
            report.steps.push(result);
            crash_point(i + 1);
        }
        Ok(report)
    }
}
