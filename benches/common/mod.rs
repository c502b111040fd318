//! What several benchmarks share: reading their settings from the environment, the binlog
//! tool a DBA would run, and bulk rows made by a recursive CTE on either flavor.
// Each benchmark is its own crate and uses only some of these.
#![allow(dead_code)]

use std::process::Command;
use std::time::{Duration, Instant};

use replmend_sandbox::{Flavor, Node};

/// A number from the environment, or `default`.
pub fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// REPLMEND_BENCH_FLAVORS (default `mariadb,mysql`); names that are no flavor are left out.
pub fn flavors() -> Vec<Flavor> {
    std::env::var("REPLMEND_BENCH_FLAVORS")
        .unwrap_or_else(|_| "mariadb,mysql".into())
        .split(',')
        .filter_map(|f| f.trim().parse().ok())
        .collect()
}

/// mysqlbinlog of the flavor, as a command line (MySQL's runs in its chroot).
pub fn binlog_tool(flavor: Flavor) -> Vec<String> {
    match flavor {
        Flavor::MariaDb => vec!["mariadb-binlog".into()],
        Flavor::MySql => vec![
            "chroot".into(),
            replmend_sandbox::mysql_chroot().display().to_string(),
            "mysqlbinlog".into(),
        ],
    }
}

/// Runs `statement`, a recursive CTE of up to `depth` levels, with the recursion limit raised
/// as the server names it: MySQL's cte_max_recursion_depth, MariaDB's max_recursive_iterations.
pub fn exec_recursive(node: &Node, depth: u64, statement: &str) {
    node.exec(&format!(
        "SET SESSION cte_max_recursion_depth = {depth}; {statement}"
    ))
    .or_else(|_| {
        node.exec(&format!(
            "SET SESSION max_recursive_iterations = {depth}; {statement}"
        ))
    })
    .unwrap();
}

/// Rows 1..=`rows` inserted in slices of `slice` (one huge INSERT … SELECT would be one huge
/// transaction on the replica): `statement(from, to)` inserts one slice with a recursive CTE.
pub fn insert_in_slices(
    node: &Node,
    rows: u64,
    slice: u64,
    statement: impl Fn(u64, u64) -> String,
) {
    let mut from = 1;
    while from <= rows {
        let to = (from + slice - 1).min(rows);
        exec_recursive(node, slice + 1, &statement(from, to));
        from = to + 1;
    }
}

/// Wall time, peak RSS (KiB) and exit code of a child, from wait4's rusage.
pub fn measure(cmd: &mut Command) -> (Duration, u64, Option<i32>) {
    let t = Instant::now();
    let child = cmd.spawn().expect("spawn");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: plain wait4 on our own child; rusage is zero-initialised plain data.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let elapsed = t.elapsed();
    std::mem::forget(child);
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    (elapsed, usage.ru_maxrss as u64, code)
}

/// A process's CPU seconds so far (utime + stime, /proc/<pid>/stat fields 14 and 15).
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name may hold spaces: count fields after its closing parenthesis.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // SAFETY: sysconf reads a constant of the system.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (f.get(11).unwrap_or(&0.0) + f.get(12).unwrap_or(&0.0)) / ticks
}

/// Waits (at most a minute) until the node has written its dirty pages out, so a measurement
/// does not share the server with the flushing of a table just filled or changed: both tools
/// measured after it meet the same quiet server. The dirty-page limit is set to 0 meanwhile and
/// put back after.
#[allow(dead_code)]
pub fn flushed(node: &Node) {
    let was = node
        .query_value("SELECT @@GLOBAL.innodb_max_dirty_pages_pct")
        .ok()
        .flatten();
    node.exec("SET GLOBAL innodb_max_dirty_pages_pct = 0").ok();
    let dirty = "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS \
                 WHERE VARIABLE_NAME = 'INNODB_BUFFER_POOL_PAGES_DIRTY'";
    let dirty_ps = "SELECT VARIABLE_VALUE FROM performance_schema.global_status \
                    WHERE VARIABLE_NAME = 'Innodb_buffer_pool_pages_dirty'";
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        let n = node
            .query_value(dirty)
            .or_else(|_| node.query_value(dirty_ps))
            .ok()
            .flatten()
            .and_then(|v| v.parse::<u64>().ok());
        if n.is_none_or(|n| n == 0) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    if let Some(v) = was {
        node.exec(&format!("SET GLOBAL innodb_max_dirty_pages_pct = {v}"))
            .ok();
    }
}
