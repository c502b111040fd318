//! Reading `replmend verify` reports: a table's entry, keys as reported, drift asserted
//! exactly (tests/verify.rs, tests/resync.rs, tests/facts.rs).

use replmend_sandbox::Node;
use serde_json::{Value, json};

use super::{Run, replmend_env};

/// `replmend verify --replica <replica> --format json <args…>`: the run and its report.
pub fn verify(replica: &Node, args: &[&str]) -> (Run, Value) {
    verify_env(replica, args, &[])
}

/// `verify` with these environment variables set (`REPLMEND_TIMING=1`: its marks on stderr).
pub fn verify_env(replica: &Node, args: &[&str], env: &[(&str, &str)]) -> (Run, Value) {
    let url = replica.url();
    let mut all = vec!["verify", "--replica", url.as_str(), "--format", "json"];
    all.extend_from_slice(args);
    let run = replmend_env(&all, env);
    let report = run.json();
    assert_eq!(
        report["schema"], "replmend.verify/1",
        "{}: {report}",
        replica.flavor
    );
    (run, report)
}

/// The report's entry for `schema.name` (panics when it is not there).
pub fn table<'a>(report: &'a Value, schema: &str, name: &str) -> &'a Value {
    report["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .find(|t| t["table"]["schema"] == schema && t["table"]["name"] == name)
        .unwrap_or_else(|| panic!("{schema}.{name} is not in the report: {report}"))
}

/// A key as reported: `[{column, value}, …]` with every value as text.
pub fn key(parts: &[(&str, &str)]) -> Value {
    Value::Array(
        parts
            .iter()
            .map(|(c, v)| json!({ "column": c, "value": v }))
            .collect(),
    )
}

pub fn id(i: i64) -> Value {
    key(&[("id", &i.to_string())])
}

/// A list of keys (or of {key, columns}) in a stable order, to compare as sets.
pub fn sorted(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(Value::to_string)
        .collect();
    out.sort();
    out
}

pub fn sorted_list(items: Vec<Value>) -> Vec<String> {
    sorted(&Value::Array(items))
}

pub fn different(k: Value, columns: &[&str]) -> Value {
    json!({ "key": k, "columns": columns })
}

/// Exactly this drift in the table's entry: the counts, and which keys and columns.
pub fn assert_drift(
    t: &Value,
    missing: Vec<Value>,
    extra: Vec<Value>,
    differ: Vec<Value>,
    what: &str,
) {
    assert!(t["error"].is_null(), "{what}: not compared: {t}");
    assert_eq!(
        sorted(&t["missing_keys"]),
        sorted_list(missing.clone()),
        "{what}: missing keys: {t}"
    );
    assert_eq!(
        sorted(&t["extra_keys"]),
        sorted_list(extra.clone()),
        "{what}: extra keys: {t}"
    );
    assert_eq!(
        sorted(&t["different_rows"]),
        sorted_list(differ.clone()),
        "{what}: different rows: {t}"
    );
    assert_eq!(t["missing"], missing.len(), "{what}: {t}");
    assert_eq!(t["extra"], extra.len(), "{what}: {t}");
    assert_eq!(t["different"], differ.len(), "{what}: {t}");
}
