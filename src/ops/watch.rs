//! `replmend watch`: arguments to a `watch::Config`, signals to a stop flag, events to
//! stdout; the daemon itself is `crate::watch`.

use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;

use super::Outcome;
use crate::cli::{Format, WatchArgs};
use crate::exit::{self, Coded};
use crate::watch::event::Event;
use crate::watch::policy::WatchPolicy;
use crate::watch::{self, Config, Sinks, Watcher, hook::Hooks, metrics};

fn seconds(name: &str, v: f64) -> Result<Duration> {
    if !(v.is_finite() && v > 0.0 && v < 86_400.0) {
        return Err(Coded(
            exit::BAD_INPUT,
            format!("--{name} {v} is not a number of seconds between 0 and 86400"),
        )
        .into());
    }
    Ok(Duration::from_secs_f64(v))
}

fn config(args: &WatchArgs) -> Result<Config> {
    let dsns: Vec<Option<String>> = match args.replicas.is_empty() {
        true => vec![None],
        false => args.replicas.iter().cloned().map(Some).collect(),
    };
    let policy = match &args.policy {
        Some(p) => WatchPolicy::load(p).map_err(|e| Coded(exit::BAD_INPUT, e.to_string()))?,
        None => WatchPolicy::default(),
    };
    Ok(Config {
        replicas: super::connect::specs(&dsns, &args.conn)?,
        policy,
        policy_file: args.policy.clone(),
        playbooks: super::plan::playbooks(args.playbooks.as_deref())?,
        journal: args.journal.clone(),
        interval: seconds("interval", args.interval)?,
        errant_interval: seconds("errant-interval", args.errant_interval)?,
        timeout: Duration::from_secs(args.timeout),
        diagnose_timeout: seconds("diagnose-timeout", args.diagnose_timeout)?,
        lookahead: 10_000,
        dry_run: args.dry_run,
        reports: args.reports.clone(),
        origin_budget: Some(args.origin_budget).filter(|b| b.bytes > 0 && b.seconds > 0),
    })
}

/// The journal's directory, or the nearest ancestor that exists (the journal makes the rest,
/// privately, at its first write), may be written by this user.
fn writable_dir(journal: &std::path::Path) -> Result<()> {
    let refuse = |why: String| {
        Coded(
            exit::BAD_INPUT,
            format!(
                "journal {}: {why}; give --journal PATH in a directory replmend may write",
                journal.display()
            ),
        )
    };
    let dir = journal
        .ancestors()
        .skip(1)
        .find(|d| d.as_os_str().is_empty() || d.is_dir())
        .map(|d| {
            if d.as_os_str().is_empty() {
                std::path::Path::new(".")
            } else {
                d
            }
        })
        .unwrap_or(std::path::Path::new("/"));
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(|_| refuse("the path holds a NUL byte".into()))?;
    // SAFETY: a NUL-terminated path; access() only reads it.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK) } != 0 {
        return Err(refuse(format!("{} is not writable", dir.display())).into());
    }
    Ok(())
}

/// `--reports DIR` is made now (0700) and must be writable: a report is written at each
/// incident, maybe days from now.
fn reports_dir(dir: &std::path::Path) -> Result<()> {
    let refuse = |why: String| {
        Coded(
            exit::BAD_INPUT,
            format!("--reports {}: {why}", dir.display()),
        )
    };
    crate::report::file::private_dir(dir).map_err(|e| refuse(e.to_string()))?;
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(|_| refuse("the path holds a NUL byte".into()))?;
    // SAFETY: a NUL-terminated path; access() only reads it.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK) } != 0 {
        return Err(refuse("not writable".into()).into());
    }
    Ok(())
}

pub fn run(args: &WatchArgs, format: Format) -> Result<Outcome> {
    // Everything that can be wrong in the arguments is found before any server is touched.
    let config = config(args)?;
    // The journal is written at the first repair, maybe days from now: a path that cannot
    // be written is found now.
    let journal = config
        .journal
        .clone()
        .unwrap_or_else(crate::journal::default_path);
    crate::journal::Journal::new(&journal)?;
    writable_dir(&journal)?;
    if let Some(dir) = &config.reports {
        reports_dir(dir)?;
    }
    let listen = args
        .metrics_addr
        .as_deref()
        .map(metrics::listen_addr)
        .transpose()
        .map_err(|e| Coded(exit::BAD_INPUT, e))?;
    let stop = Arc::new(AtomicBool::new(false));
    // The first signal asks for a clean stop after the current repair; a second one ends the
    // process at once (a re-run converges).
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register_conditional_shutdown(sig, 1, Arc::clone(&stop))?;
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    let shared: metrics::Shared = Arc::new(Mutex::new(metrics::Metrics::default()));
    if let Some(addr) = listen {
        let bound = metrics::serve(&addr, Arc::clone(&shared)).map_err(|e| {
            Coded(
                exit::BAD_INPUT,
                format!("--metrics-addr {addr}: cannot listen there ({e})"),
            )
        })?;
        eprintln!("replmend: metrics at http://{bound}/metrics");
    }
    for note in watch::recover(&config) {
        eprintln!("replmend: {note}");
    }
    // A closed stdout (the log reader went away) must not stop a repair halfway: the error
    // is ignored where println! would panic.
    let print: Box<dyn Fn(&Event) + Send + Sync> = match format {
        Format::Json => Box::new(|e: &Event| {
            let _ = writeln!(std::io::stdout(), "{}", e.json());
        }),
        Format::Text | Format::Markdown | Format::Html => Box::new(|e: &Event| {
            let _ = writeln!(std::io::stdout(), "{}", e.text());
        }),
    };
    let sinks = Sinks {
        print,
        hooks: Hooks::start(args.hook.clone()),
        metrics: shared,
    };
    // SIGHUP reads the policy file again (the main thread does, between polls).
    let reload = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&reload))?;
    Watcher::start(config, sinks, stop)?.run(reload)?;
    Ok(Outcome {
        output: String::new(),
        code: exit::OK,
    })
}
