//! Row changes logged where the binary log cannot be turned off for a session (a managed
//! service: no account may set sql_log_bin): the step's words and the plan's consequence,
//! one text for repair's overwrite and resync alike. Pure.

use super::plan::Step;
use crate::flavor::Provider;
use crate::vocab::Endpoint;

/// A row step's description on such a node: what it does, then that it is logged there.
pub fn description(description: &str, endpoint: &Endpoint) -> String {
    format!(
        "{} — binary log ON: {endpoint} (managed service) lets no account turn it off, so this change is logged there with its own GTID (an errant transaction)",
        without_binlog_off(description)
    )
}

/// The description without its " (binary log off…)" remark.
fn without_binlog_off(description: &str) -> String {
    let Some(at) = description.find(" (binary log off") else {
        return description.to_string();
    };
    let end = description[at..]
        .find(')')
        .map(|i| at + i + 1)
        .unwrap_or(description.len());
    format!("{}{}", &description[..at], &description[end..])
}

/// What a plan's row steps logged with the node's own GTID leave behind, with the follow-up:
/// one consequence per such step.
pub fn consequences(steps: &[Step], provider: Provider) -> Vec<String> {
    steps
        .iter()
        .filter(|s| s.logs_errant_rows())
        .map(|s| {
            format!(
                "{} writes its {} row(s) with the binary log on ({}: sql_log_bin cannot be turned off): the change is logged on {} with its own GTID, an errant transaction that replicas of {} receive, and that makes {} differ from its source at a failover; follow-up: after the repair, `replmend status --replica {}` names the errant GTID; inject it on the source as an empty transaction (`replmend repair --remedy inject-errant`, where the source allows SET GTID_NEXT), or rebuild the replica from the source",
                s.description.split(" — ").next().unwrap_or_default(),
                s.rows().len(),
                provider.words(),
                s.endpoint,
                s.endpoint,
                s.endpoint,
                s.endpoint,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_binlog_off_remark_goes() {
        assert_eq!(
            super::without_binlog_off(
                "make 1 row(s) of t equal (binary log off: the fix must not replicate)"
            ),
            "make 1 row(s) of t equal"
        );
        assert_eq!(super::without_binlog_off("delete it"), "delete it");
    }
}
