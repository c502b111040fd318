//! Managed services: where the account has no SUPER and no dynamic admin privileges, the
//! provider's stored procedures in the `mysql` schema stop, start and skip instead of the
//! plain statements. The procedure names and arguments are those of the providers' manuals
//! (docs/providers.md, with the sources); this is the one place that names them.

use serde::Serialize;

use crate::sql::quote_string;
use crate::vocab::Gtid;

/// Who runs the server, as the procedures present in its `mysql` schema say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Self-managed: the plain statements, granted as docs/privileges.md says.
    #[default]
    None,
    /// Amazon RDS for MySQL / Aurora MySQL (`mysql.rds_*`).
    Rds,
    /// Azure Database for MySQL (`mysql.az_replication_*`).
    Azure,
}

/// One provider procedure replmend may call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Procedure {
    RdsStopReplication,
    RdsStartReplication,
    RdsStopReplicationForChannel,
    RdsStartReplicationForChannel,
    /// Skips the current error (one transaction) and starts replication again.
    RdsSkipReplError,
    /// Records one GTID as executed (GTID mode only).
    RdsSkipTransactionWithGtid,
    AzReplicationStop,
    AzReplicationStart,
    /// Skips one replication error.
    AzReplicationSkipCounter,
    AzReplicationSkipGtidTransaction,
}

impl Procedure {
    pub const ALL: [Procedure; 10] = [
        Procedure::RdsStopReplication,
        Procedure::RdsStartReplication,
        Procedure::RdsStopReplicationForChannel,
        Procedure::RdsStartReplicationForChannel,
        Procedure::RdsSkipReplError,
        Procedure::RdsSkipTransactionWithGtid,
        Procedure::AzReplicationStop,
        Procedure::AzReplicationStart,
        Procedure::AzReplicationSkipCounter,
        Procedure::AzReplicationSkipGtidTransaction,
    ];

    /// Its name in the `mysql` schema.
    pub fn name(self) -> &'static str {
        match self {
            Procedure::RdsStopReplication => "rds_stop_replication",
            Procedure::RdsStartReplication => "rds_start_replication",
            Procedure::RdsStopReplicationForChannel => "rds_stop_replication_for_channel",
            Procedure::RdsStartReplicationForChannel => "rds_start_replication_for_channel",
            Procedure::RdsSkipReplError => "rds_skip_repl_error",
            Procedure::RdsSkipTransactionWithGtid => "rds_skip_transaction_with_gtid",
            Procedure::AzReplicationStop => "az_replication_stop",
            Procedure::AzReplicationStart => "az_replication_start",
            Procedure::AzReplicationSkipCounter => "az_replication_skip_counter",
            Procedure::AzReplicationSkipGtidTransaction => "az_replication_skip_gtid_transaction",
        }
    }

    pub fn from_name(name: &str) -> Option<Procedure> {
        Procedure::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name))
    }

    pub fn provider(self) -> Provider {
        match self.name().starts_with("rds_") {
            true => Provider::Rds,
            false => Provider::Azure,
        }
    }

    /// `CALL mysql.name(args)`, every argument a quoted string.
    pub fn call(self, args: &[&str]) -> String {
        let args: Vec<String> = args.iter().map(|a| quote_string(a)).collect();
        match args.is_empty() {
            true => format!("CALL mysql.{}()", self.name()),
            false => format!("CALL mysql.{}({})", self.name(), args.join(", ")),
        }
    }
}

impl std::fmt::Display for Procedure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "mysql.{}", self.name())
    }
}

impl Provider {
    /// The provider whose procedures these are (RDS's when both are somehow present).
    pub fn detect(present: &[Procedure]) -> Provider {
        [Provider::Rds, Provider::Azure]
            .into_iter()
            .find(|p| present.iter().any(|x| x.provider() == *p))
            .unwrap_or(Provider::None)
    }

    pub fn words(self) -> &'static str {
        match self {
            Provider::None => "self-managed",
            Provider::Rds => "Amazon RDS / Aurora MySQL",
            Provider::Azure => "Azure Database for MySQL",
        }
    }

    /// The procedure that stops replication on `channel` (Azure has one channel: all).
    pub fn stop(self, channel: &str) -> Option<(Procedure, String)> {
        self.control(channel, true)
    }

    pub fn start(self, channel: &str) -> Option<(Procedure, String)> {
        self.control(channel, false)
    }

    fn control(self, channel: &str, stop: bool) -> Option<(Procedure, String)> {
        use Procedure::*;
        let p = match (self, channel.is_empty(), stop) {
            (Provider::None, _, _) => return None,
            (Provider::Rds, true, true) => RdsStopReplication,
            (Provider::Rds, true, false) => RdsStartReplication,
            (Provider::Rds, false, true) => RdsStopReplicationForChannel,
            (Provider::Rds, false, false) => RdsStartReplicationForChannel,
            (Provider::Azure, _, true) => AzReplicationStop,
            (Provider::Azure, _, false) => AzReplicationStart,
        };
        let args: Vec<&str> = match p {
            RdsStopReplicationForChannel | RdsStartReplicationForChannel => vec![channel],
            _ => Vec::new(),
        };
        Some((p, p.call(&args)))
    }

    /// The procedure that records `gtid` as executed without applying it.
    pub fn skip_gtid(self, gtid: &Gtid) -> Option<(Procedure, String)> {
        let p = match self {
            Provider::None => return None,
            Provider::Rds => Procedure::RdsSkipTransactionWithGtid,
            Provider::Azure => Procedure::AzReplicationSkipGtidTransaction,
        };
        Some((p, p.call(&[&gtid.to_string()])))
    }

    /// The procedure that skips the transaction of the current error (the skip counter's
    /// stand-in); it starts replication again itself.
    pub fn skip_current(self) -> Option<(Procedure, String)> {
        let p = match self {
            Provider::None => return None,
            Provider::Rds => Procedure::RdsSkipReplError,
            Provider::Azure => Procedure::AzReplicationSkipCounter,
        };
        Some((p, p.call(&[])))
    }

    /// How binary log retention is set here, for a warning that names it.
    pub fn retention_setting(self) -> &'static str {
        match self {
            Provider::Rds => {
                "CALL mysql.rds_set_configuration('binlog retention hours', 24) (RDS default NULL: binary logs are purged as soon as possible)"
            }
            Provider::Azure => "the server parameter binlog_expire_logs_seconds",
            Provider::None => "SET PERSIST binlog_expire_logs_seconds = 86400",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_name_the_documented_procedures() {
        let g = Gtid::parse("3e11fa47-71ca-11e1-9e33-c80aa9429562:23").unwrap();
        assert_eq!(
            Provider::Rds.skip_gtid(&g).unwrap().1,
            "CALL mysql.rds_skip_transaction_with_gtid('3e11fa47-71ca-11e1-9e33-c80aa9429562:23')"
        );
        assert_eq!(
            Provider::Rds.stop("east").unwrap().1,
            "CALL mysql.rds_stop_replication_for_channel('east')"
        );
        assert_eq!(
            Provider::Azure.start("").unwrap().1,
            "CALL mysql.az_replication_start()"
        );
        assert_eq!(
            Provider::Azure.skip_current().unwrap().1,
            "CALL mysql.az_replication_skip_counter()"
        );
        assert!(Provider::None.stop("").is_none());
        assert_eq!(
            Provider::detect(&[Procedure::AzReplicationStop]),
            Provider::Azure
        );
        assert_eq!(
            Procedure::from_name("RDS_SKIP_REPL_ERROR"),
            Some(Procedure::RdsSkipReplError)
        );
    }
}
