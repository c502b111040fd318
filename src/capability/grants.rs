//! The account's privileges as its grants say (roles included): which needs they cover,
//! with the privileges that would cover the others. Read by the probe, the preflight and
//! status. See docs/privileges.md.

use crate::flavor::{Flavor, Procedure};

pub use crate::flavor::Need;

/// Privilege names compare equal however the server spells them (`READ_ONLY ADMIN` in SHOW
/// GRANTS for `READ ONLY ADMIN`).
fn norm(p: &str) -> String {
    p.trim().to_ascii_uppercase().replace('_', " ")
}

/// The account holds one of these global privileges (or ALL).
pub fn has_any(_flavor: Flavor, grants: &[String], options: &[&str]) -> bool {
    let have = global_privileges(grants);
    have.iter()
        .any(|h| h == "ALL PRIVILEGES" || h == "ALL" || options.iter().any(|o| norm(o) == norm(h)))
}

/// Global privileges granted on `*.*`, from SHOW GRANTS lines.
pub fn global_privileges(grants: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for g in grants {
        let upper = g.to_ascii_uppercase();
        let Some(rest) = upper.strip_prefix("GRANT ") else {
            continue;
        };
        let Some(on) = rest.find(" ON *.* ") else {
            continue;
        };
        for p in rest[..on].split(',') {
            out.push(p.trim().to_string());
        }
    }
    out
}

/// The needs not covered by these grants, each with the privileges that would cover it.
pub fn missing(
    needs: &[Need],
    flavor: Flavor,
    grants: &[String],
) -> Vec<(Need, &'static [&'static str])> {
    let have = global_privileges(grants);
    if have.iter().any(|p| p == "ALL PRIVILEGES" || p == "ALL") {
        return Vec::new();
    }
    let mut out = Vec::new();
    for &need in needs {
        let options = flavor.privileges(need);
        let satisfied = if let Need::Execute(p) = need {
            may_execute(grants, p)
        } else if need == Need::RowWrite {
            // Table-level grants are common; the row writes themselves report a denial
            // before anything is journaled, so only global grants are demanded here.
            options
                .iter()
                .all(|p| have.iter().any(|h| norm(h) == norm(p)))
                || grants
                    .iter()
                    .any(|g| !g.to_ascii_uppercase().contains(" ON *.* "))
        } else {
            options
                .iter()
                .any(|p| have.iter().any(|h| norm(h) == norm(p)))
        };
        if !satisfied && !out.iter().any(|(n, _)| *n == need) {
            out.push((need, options));
        }
    }
    out
}

/// EXECUTE on the procedure: granted on every schema, on `mysql`, or on the routine itself.
pub fn may_execute(grants: &[String], p: Procedure) -> bool {
    let routine = format!(" ON PROCEDURE `MYSQL`.`{}` ", p.name().to_ascii_uppercase());
    grants.iter().any(|g| {
        let upper = format!("{} ", g.to_ascii_uppercase());
        let Some(rest) = upper.strip_prefix("GRANT ") else {
            return false;
        };
        let on = [" ON *.* ", " ON `MYSQL`.* ", routine.as_str()]
            .iter()
            .find_map(|o| rest.find(o));
        on.is_some_and(|at| {
            rest[..at]
                .split(',')
                .any(|x| matches!(x.trim(), "EXECUTE" | "ALL" | "ALL PRIVILEGES"))
        })
    })
}

/// MySQL's CURRENT_ROLE(): `` `r1`@`%`,`we``ird`@`h` `` into (name, host) pairs, backquotes
/// undone; anything else is no role.
pub fn parse_roles(text: &str) -> Vec<(String, String)> {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut chars = text.trim().chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('`', true) if chars.peek() == Some(&'`') => {
                chars.next();
                cur.push('`');
            }
            ('`', _) => quoted = !quoted,
            ('@' | ',', false) => parts.push(std::mem::take(&mut cur)),
            (c, true) => cur.push(c),
            _ => {}
        }
    }
    parts.push(cur);
    match parts.len() % 2 {
        0 => parts
            .chunks(2)
            .map(|p| (p[0].clone(), p[1].clone()))
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execute_on_a_procedure_from_any_level() {
        let p = Procedure::RdsSkipReplError;
        let on = |g: &str| may_execute(&[g.to_string()], p);
        assert!(on("GRANT SELECT, EXECUTE ON *.* TO `admin`@`%`"));
        assert!(on("GRANT EXECUTE ON `mysql`.* TO `admin`@`%`"));
        assert!(on(
            "GRANT EXECUTE ON PROCEDURE `mysql`.`rds_skip_repl_error` TO `admin`@`%`"
        ));
        assert!(!on(
            "GRANT EXECUTE ON PROCEDURE `mysql`.`rds_stop_replication` TO `admin`@`%`"
        ));
        assert!(!on("GRANT SELECT ON *.* TO `admin`@`%`"));
    }

    #[test]
    fn current_roles_are_read_back_as_name_and_host() {
        assert_eq!(
            parse_roles("`fix`@`%`,`we``ird`@`10.0.0.%`"),
            vec![
                ("fix".to_string(), "%".to_string()),
                ("we`ird".to_string(), "10.0.0.%".to_string())
            ]
        );
        assert!(parse_roles("NONE").is_empty());
    }

    fn f(v: &str) -> Flavor {
        Flavor::parse(v).unwrap()
    }

    #[test]
    fn all_privileges_covers_everything() {
        let g =
            vec!["GRANT ALL PRIVILEGES ON *.* TO `root`@`127.0.0.1` WITH GRANT OPTION".to_string()];
        assert!(
            missing(
                &[Need::SkipCounter, Need::SqlLogBin],
                f("10.11.6-MariaDB"),
                &g
            )
            .is_empty()
        );
    }

    #[test]
    fn mariadb_skip_needs_super() {
        let g = vec![
            "GRANT SELECT, INSERT, DELETE, REPLICATION SLAVE ADMIN, BINLOG ADMIN ON *.* TO `dba`@`%`".to_string(),
        ];
        let m = missing(
            &[Need::ControlReplication, Need::SkipCounter, Need::SqlLogBin],
            f("10.11.6-MariaDB"),
            &g,
        );
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].0, Need::SkipCounter);
        assert_eq!(m[0].1, &["SUPER"]);
    }

    #[test]
    fn mysql8_dynamic_privileges() {
        let g = vec![
            "GRANT SELECT, INSERT, DELETE ON *.* TO `dba`@`%`".to_string(),
            "GRANT REPLICATION_SLAVE_ADMIN,SESSION_VARIABLES_ADMIN ON *.* TO `dba`@`%`".to_string(),
        ];
        let m = missing(
            &[
                Need::ControlReplication,
                Need::SqlLogBin,
                Need::GtidPosition,
                Need::SkipCounter,
            ],
            f("8.0.36"),
            &g,
        );
        // SET GTID_NEXT is a session variable; the skip counter is global.
        assert_eq!(
            m.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            vec![Need::SkipCounter]
        );
        assert_eq!(f("5.7.44").privileges(Need::SqlLogBin), &["SUPER"]);
    }
}
