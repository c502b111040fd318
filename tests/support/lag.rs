//! A replica held behind its source on purpose (SOURCE_DELAY), for the `--max-lag` tests
//! (tests/verify.rs, tests/fleet.rs).

use std::time::{Duration, Instant};

use replmend_sandbox::{Flavor, Node};

/// Makes the replica apply each transaction `seconds` after its source committed it.
pub fn replica_delay(replica: &Node, seconds: u32) {
    replica.stop_replication().unwrap();
    replica
        .exec(&match replica.flavor {
            Flavor::MariaDb => format!("CHANGE MASTER TO MASTER_DELAY = {seconds}"),
            Flavor::MySql => format!("CHANGE REPLICATION SOURCE TO SOURCE_DELAY = {seconds}"),
        })
        .unwrap();
    replica.start_replication().unwrap();
}

pub fn lag_seconds(replica: &Node) -> Option<u64> {
    let st = replica.replica_status().unwrap()?;
    ["Seconds_Behind_Master", "Seconds_Behind_Source"]
        .iter()
        .find_map(|f| st.get(*f).cloned().flatten())
        .and_then(|v| v.parse().ok())
}

/// A row written to the source (in `lagdb.other`, a table verify does not read), then
/// waited for until the delayed replica lags at least 3 s behind it.
pub fn lag_behind(source: &Node, replica: &Node, id: u32) {
    source
        .exec(&format!("INSERT INTO lagdb.other VALUES ({id})"))
        .unwrap();
    let t = Instant::now();
    while lag_seconds(replica).unwrap_or(0) < 3 {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the replica never lagged"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The row `lag_behind` wrote has reached the replica.
pub fn applied(replica: &Node, id: u32) -> bool {
    let q = format!("SELECT COUNT(*) FROM lagdb.other WHERE id = {id}");
    replica.query_value(&q).unwrap().as_deref() == Some("1")
}

/// Waits until the replica's receiver has read everything its source has logged (its read
/// position at the source's binlog end), whatever its applier has done with it.
pub fn received(source: &Node, replica: &Node) {
    let show = match source.flavor {
        Flavor::MariaDb => "SHOW MASTER STATUS",
        Flavor::MySql => "SHOW BINARY LOG STATUS",
    };
    let row = source.query_rows(show).unwrap();
    let end = row[0][1].clone();
    let t = Instant::now();
    loop {
        let st = replica.replica_status().unwrap().unwrap();
        let read = ["Read_Master_Log_Pos", "Read_Source_Log_Pos"]
            .iter()
            .find_map(|f| st.get(*f).cloned().flatten());
        if read == end {
            return;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "never received");
        std::thread::sleep(Duration::from_millis(50));
    }
}
