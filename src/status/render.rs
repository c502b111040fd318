//! Text and JSON views of a status report.

use std::fmt::Write;

use console::style;

use super::model::*;

pub fn text(report: &StatusReport) -> String {
    let mut out = String::new();
    let s = &report.server;
    let _ = writeln!(
        out,
        "replica {}  {}  server_id {}{}",
        s.endpoint,
        s.flavor,
        s.server_id,
        s.server_uuid
            .as_deref()
            .map(|u| format!("  uuid {u}"))
            .unwrap_or_default()
    );
    for ch in &report.channels {
        let name = if ch.name.is_empty() {
            "default channel".to_string()
        } else {
            format!("channel '{}'", ch.name)
        };
        let verdict = match ch.health {
            Health::Healthy => style("healthy").green().to_string(),
            Health::SqlError => style("STOPPED: applier error").red().bold().to_string(),
            Health::IoError => style("STOPPED: receiver error").red().bold().to_string(),
            Health::NotRunning => style("not running").yellow().to_string(),
        };
        let _ = writeln!(
            out,
            "\n{name} <- {}:{}  {verdict}",
            ch.source_host, ch.source_port
        );
        let _ = writeln!(
            out,
            "  threads      IO {}  SQL {}",
            thread(ch.io_thread),
            thread(ch.sql_thread)
        );
        if let Some(e) = ch.applier_error() {
            let _ = writeln!(
                out,
                "  SQL error    {}{}\n               {}",
                style(e.number).red().bold(),
                e.timestamp
                    .as_deref()
                    .map(|t| format!(" at {t}"))
                    .unwrap_or_default(),
                e.message
            );
        }
        if let (Some(c), Some(e)) = (&ch.last_sql_error, ch.applier_error())
            && c.number != e.number
        {
            // The channel names a worker that only stopped because this one failed.
            let _ = writeln!(
                out,
                "               (the channel reports {}: later workers stopped to keep commit order)",
                c.number
            );
        }
        if let Some(w) = ch.failed_worker()
            && let Some(trx) = &w.applying_transaction
        {
            let _ = writeln!(out, "  failed trx   {trx} (worker {})", w.worker_id);
        }
        if let Some(e) = &ch.last_io_error {
            let _ = writeln!(out, "  IO error     {}: {}", e.number, e.message);
        }
        let _ = writeln!(
            out,
            "  source log   read {}:{}  executed {}:{}",
            ch.source_log_file.as_deref().unwrap_or("-"),
            opt(ch.read_source_log_pos),
            ch.relay_source_log_file.as_deref().unwrap_or("-"),
            opt(ch.exec_source_log_pos),
        );
        let _ = writeln!(
            out,
            "  lag          {}",
            ch.seconds_behind_source
                .map(|s| format!("{s} s"))
                .unwrap_or_else(|| "unknown (applier not running)".into())
        );
        let mode = if ch.gtid_positioning {
            "GTID auto-positioning"
        } else {
            "file/position"
        };
        let _ = writeln!(out, "  positioning  {mode}");
        if let Some(g) = &ch.retrieved_gtid_set {
            let _ = writeln!(out, "  retrieved    {g}");
        }
        if let Some(g) = &ch.executed_gtid_set {
            let _ = writeln!(out, "  executed     {g}");
        }
        if let Some(g) = &ch.gtid_io_pos {
            let _ = writeln!(out, "  gtid_io_pos  {g}");
        }
    }
    if let Some(pos) = &s.gtid_slave_pos {
        let _ = writeln!(out, "\ngtid_slave_pos {pos}");
    }
    for e in &report.errant {
        let _ = writeln!(
            out,
            "errant GTIDs  {} (executed here, on no source: {}): written on this replica directly",
            e.gtids, e.source
        );
    }
    if let Some(c) = &report.capabilities {
        out.push_str(&capabilities_text(c));
        for ch in &report.channels {
            if let Some(w) = crate::capability::tls_warning(s.flavor, c.provider, &ch.receiver()) {
                let _ = writeln!(
                    out,
                    "{} channel '{}': {w}",
                    style("warning:").yellow().bold(),
                    ch.name
                );
            }
        }
    }
    out
}

/// The provider and what replmend can do there with this account, and the warnings that
/// matter on a managed service.
fn capabilities_text(c: &crate::capability::Capabilities) -> String {
    let mut out = format!(
        "
provider     {}
",
        c.provider.words()
    );
    for w in c.words() {
        let _ = writeln!(out, "  {w}");
    }
    if let Some(w) = c.binlog_retention.warning(c.provider) {
        let _ = writeln!(out, "{} {w}", style("warning:").yellow().bold());
    }
    out
}

fn thread(t: ThreadState) -> String {
    match t {
        ThreadState::Running => style("running").green().to_string(),
        ThreadState::Connecting => style("connecting").yellow().to_string(),
        ThreadState::Stopped => style("stopped").red().to_string(),
    }
}

fn opt(v: Option<u64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}
