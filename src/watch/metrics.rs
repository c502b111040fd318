//! The watcher's metrics in Prometheus' text format, and the small HTTP endpoint that serves
//! them (`--metrics-addr`). The counters are plain data updated by the watch loop; rendering
//! is pure.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One channel's applier state, as last read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChannelGauges {
    pub io_running: bool,
    pub sql_running: bool,
    pub lag_seconds: Option<u64>,
    pub last_errno: u32,
    /// An incident the policy does not allow is waiting for a human.
    pub waiting: bool,
}

/// Everything `/metrics` reports. Keys are (replica endpoint, channel) or the replica alone.
#[derive(Debug, Default)]
pub struct Metrics {
    /// 1 when the replica answered the last poll, else 0.
    pub up: BTreeMap<String, u64>,
    pub reconnects: BTreeMap<String, u64>,
    pub incidents: BTreeMap<(String, String, u32), u64>,
    /// (replica, channel, remedy, result "ok" | "failed")
    pub actions: BTreeMap<(String, String, String, &'static str), u64>,
    pub rows_journaled: BTreeMap<String, u64>,
    pub errant: BTreeMap<String, u64>,
    /// 1 while the replica's automatic actions are held for a human (the policy's
    /// `max_actions_per_minute` was reached).
    pub held: BTreeMap<String, u64>,
    pub channels: BTreeMap<(String, String), ChannelGauges>,
    /// Policy files read again on SIGHUP.
    pub policy_reloads: u64,
}

pub type Shared = Arc<Mutex<Metrics>>;

/// A label value as the text format wants it: backslash, quote and newline escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    fn header(&mut self, name: &str, kind: &str, help: &str) {
        self.out
            .push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        let l: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", label(v)))
            .collect();
        self.out
            .push_str(&format!("{name}{{{}}} {value}\n", l.join(",")));
    }
}

impl Metrics {
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut f = Family { out: &mut out };
        self.render_per_replica(&mut f);
        f.header(
            "replmend_watch_incidents_total",
            "counter",
            "Applier errors seen (each stop once).",
        );
        for ((r, c, errno), n) in &self.incidents {
            let e = errno.to_string();
            f.sample(
                "replmend_watch_incidents_total",
                &[("replica", r), ("channel", c), ("errno", &e)],
                n,
            );
        }
        f.header(
            "replmend_watch_actions_total",
            "counter",
            "Repairs the policy allowed, by remedy and result.",
        );
        for ((r, c, remedy, result), n) in &self.actions {
            f.sample(
                "replmend_watch_actions_total",
                &[
                    ("replica", r),
                    ("channel", c),
                    ("remedy", remedy),
                    ("result", result),
                ],
                n,
            );
        }
        self.render_channels(&mut f);
        f.header(
            "replmend_watch_policy_reloads_total",
            "counter",
            "Policy files read again on SIGHUP.",
        );
        out.push_str(&format!(
            "replmend_watch_policy_reloads_total {}\n",
            self.policy_reloads
        ));
        out
    }

    fn render_per_replica(&self, f: &mut Family<'_>) {
        let families: [(&str, &str, &str, &BTreeMap<String, u64>); 5] = [
            (
                "replmend_watch_up",
                "gauge",
                "1 when the replica answered the last poll.",
                &self.up,
            ),
            (
                "replmend_watch_reconnects_total",
                "counter",
                "Connections to the replica opened again after it was lost.",
                &self.reconnects,
            ),
            (
                "replmend_watch_rows_journaled_total",
                "counter",
                "Rows journaled before replmend changed them.",
                &self.rows_journaled,
            ),
            (
                "replmend_watch_errant_gtid_entries",
                "gauge",
                "Errant GTID sets (executed on the replica, absent from its sources).",
                &self.errant,
            ),
            (
                "replmend_watch_held_for_human",
                "gauge",
                "1 while the policy's max_actions_per_minute holds the replica's automatic actions for a human.",
                &self.held,
            ),
        ];
        for (name, kind, help, values) in families {
            f.header(name, kind, help);
            for (r, n) in values {
                f.sample(name, &[("replica", r)], n);
            }
        }
    }

    fn render_channels(&self, f: &mut Family<'_>) {
        type Gauge = fn(&ChannelGauges) -> Option<u64>;
        let gauges: [(&str, &str, Gauge); 5] = [
            (
                "replmend_watch_receiver_running",
                "1 when the receiver (IO) thread runs.",
                |g| Some(u64::from(g.io_running)),
            ),
            (
                "replmend_watch_applier_running",
                "1 when the applier (SQL) thread runs.",
                |g| Some(u64::from(g.sql_running)),
            ),
            (
                "replmend_watch_lag_seconds",
                "Seconds behind the source, as the replica reports it.",
                |g| g.lag_seconds,
            ),
            (
                "replmend_watch_last_errno",
                "The applier's last error number (0: none).",
                |g| Some(u64::from(g.last_errno)),
            ),
            (
                "replmend_watch_waiting_for_human",
                "1 when an incident the policy does not allow is waiting.",
                |g| Some(u64::from(g.waiting)),
            ),
        ];
        for (name, help, get) in gauges {
            f.header(name, "gauge", help);
            for ((r, c), g) in &self.channels {
                if let Some(v) = get(g) {
                    f.sample(name, &[("replica", r), ("channel", c)], v);
                }
            }
        }
    }
}

/// `PORT`, `:PORT` or `HOST:PORT`; a bare port listens on 127.0.0.1 only.
pub fn listen_addr(s: &str) -> Result<String, String> {
    let bad = || format!("--metrics-addr {s:?} is not [HOST:]PORT");
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (if h.is_empty() { "127.0.0.1" } else { h }, p),
        None => ("127.0.0.1", s),
    };
    port.parse::<u16>().map_err(|_| bad())?;
    Ok(format!("{host}:{port}"))
}

/// Serves `GET /metrics` on its own thread until the process ends.
pub fn serve(addr: &str, metrics: Shared) -> std::io::Result<std::net::SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                // A slow or silent client must not hold the endpoint.
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
                let _ = answer(stream, &metrics);
            }
        })?;
    Ok(local)
}

fn answer(stream: TcpStream, metrics: &Shared) -> std::io::Result<()> {
    // At most 8 KiB and 5 s of request: a client dribbling bytes, or sending one endless
    // line, gets cut off instead of holding the endpoint or the memory.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut reader = BufReader::new(stream.try_clone()?.take(8192));
    let mut request = String::new();
    reader.read_line(&mut request)?;
    // The headers are read and ignored, so the client sees a complete exchange.
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 && std::time::Instant::now() < deadline {
        line.clear();
    }
    let path = request.split_whitespace().nth(1).unwrap_or("");
    let (status, body) = match path {
        "/metrics" | "/" => (
            "200 OK",
            metrics.lock().map(|m| m.render()).unwrap_or_default(),
        ),
        _ => ("404 Not Found", "not found: try /metrics\n".to_string()),
    };
    let mut w = stream;
    write!(
        w,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_text_format_with_escaped_labels() {
        let mut m = Metrics::default();
        m.up.insert("127.0.0.1:3307".into(), 1);
        m.incidents
            .insert(("127.0.0.1:3307".into(), "a\"b\\c".into(), 1062), 2);
        m.channels.insert(
            ("127.0.0.1:3307".into(), String::new()),
            ChannelGauges {
                io_running: true,
                sql_running: false,
                lag_seconds: None,
                last_errno: 1062,
                waiting: true,
            },
        );
        let text = m.render();
        assert!(text.contains("replmend_watch_up{replica=\"127.0.0.1:3307\"} 1\n"));
        assert!(text.contains(
            "replmend_watch_incidents_total{replica=\"127.0.0.1:3307\",channel=\"a\\\"b\\\\c\",errno=\"1062\"} 2\n"
        ));
        assert!(text.contains(
            "replmend_watch_waiting_for_human{replica=\"127.0.0.1:3307\",channel=\"\"} 1\n"
        ));
        assert!(!text.contains("replmend_watch_lag_seconds{"), "{text}");
        assert!(text.contains("# TYPE replmend_watch_actions_total counter\n"));
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(listen_addr("9104").unwrap(), "127.0.0.1:9104");
        assert_eq!(listen_addr(":9104").unwrap(), "127.0.0.1:9104");
        assert_eq!(listen_addr("0.0.0.0:9104").unwrap(), "0.0.0.0:9104");
        assert!(listen_addr("host:").is_err());
        assert!(listen_addr("x").is_err());
    }
}
