//! Emulated managed services (tests/fixtures/providers/*.sql) on real MySQL servers: the
//! fixture installed, the administrator's URL, and what the provider tests read back.

use mysql::prelude::Queryable;

use super::*;

/// One emulated provider: its fixture, its administrator and the procedures a skip calls.
pub struct Managed {
    pub fixture: &'static str,
    pub user: &'static str,
    pub password: &'static str,
    pub stop: &'static str,
    pub start: &'static str,
    pub skip_gtid: &'static str,
}

pub const RDS: Managed = Managed {
    fixture: "rds.sql",
    user: "admin",
    password: "rds-admin-pw",
    stop: "CALL mysql.rds_stop_replication()",
    start: "CALL mysql.rds_start_replication()",
    skip_gtid: "rds_skip_transaction_with_gtid",
};

pub const AZURE: Managed = Managed {
    fixture: "azure.sql",
    user: "azureadmin",
    password: "az-admin-pw",
    stop: "CALL mysql.az_replication_stop()",
    start: "CALL mysql.az_replication_start()",
    skip_gtid: "az_replication_skip_gtid_transaction",
};

/// The fixture's statements (separated by lines holding only `$$`), run as root on every
/// node with the binary log off: a provider's own objects are not replicated transactions.
pub fn install(sb: &Sandbox, m: &Managed) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/providers")
        .join(m.fixture);
    let text = std::fs::read_to_string(&path).unwrap();
    for n in &sb.nodes {
        let mut conn = n.conn().unwrap();
        conn.query_drop("SET SESSION sql_log_bin = 0").unwrap();
        for st in text
            .split("\n$$\n")
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            conn.query_drop(st)
                .unwrap_or_else(|e| panic!("{}: {e}\n{st}", m.fixture));
        }
    }
}

pub fn url_of(node: &Node, m: &Managed) -> String {
    node.url()
        .replace("root@", &format!("{}:{}@", m.user, m.password))
}

pub fn gtid_executed(node: &Node) -> String {
    node.query_value("SELECT @@GLOBAL.gtid_executed")
        .unwrap()
        .unwrap_or_default()
}

pub fn failing_gtid(node: &Node) -> String {
    node.worker_errors()
        .unwrap()
        .into_iter()
        .find(|w| w.errno == 1062)
        .map(|w| w.applying_transaction)
        .expect("a worker failed with 1062")
}

/// The statements of every step of a plan's JSON, in order.
pub fn statements(plan: &serde_json::Value) -> Vec<String> {
    plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["statements"].as_array().unwrap().clone())
        .map(|st| st["sql"].as_str().unwrap().to_string())
        .collect()
}

/// How often the server ran a CALL of this procedure (statement digests, on by default).
pub fn calls_of(node: &Node, procedure: &str) -> u64 {
    node.query_value(&format!(
        "SELECT COALESCE(SUM(COUNT_STAR), 0) FROM performance_schema.events_statements_summary_by_digest \
         WHERE DIGEST_TEXT LIKE 'CALL `mysql` . `{procedure}`%'"
    ))
    .unwrap()
    .unwrap_or_default()
    .parse()
    .unwrap()
}

/// The refusal: one line (after the progress line naming the incident), holding `needle`.
pub fn refused_in_one_sentence(run: &Run, needle: &str) {
    assert_eq!(run.code, exit::REFUSED, "{}{}", run.stdout, run.stderr);
    let refusals: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("refused"))
        .collect();
    assert_eq!(refusals.len(), 1, "{}", run.stderr);
    assert!(refusals[0].contains(needle), "{}", run.stderr);
    assert!(
        refusals[0].contains("nothing was changed"),
        "{}",
        run.stderr
    );
}

pub fn replica_running(node: &Node) -> bool {
    let st = node.replica_status().unwrap().unwrap_or_default();
    let col = |c: &str| st.get(c).cloned().flatten().unwrap_or_default();
    col("Replica_SQL_Running") == "Yes" && col("Last_SQL_Errno") == "0"
}

/// Threads, errors, rows and GTIDs of both nodes: what a refusal must leave as it was.
pub fn world(sb: &Sandbox) -> Vec<String> {
    let mut out = Vec::new();
    for n in &sb.nodes {
        out.push(format!("{:?}", n.replica_status().unwrap()));
        out.push(format!("{:?}", n.checksum_table("shop", "users").unwrap()));
        out.push(gtid_executed(n));
    }
    out
}
