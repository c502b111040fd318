//! MariaDB 11.8 (Debian trixie, in its own debootstrap chroot) with the server's default
//! settings: the seed incident, every recipe unchanged, the CLI and the sweep. Real servers:
//! run scripts/install-deps first; a missing chroot is a failure, never a skip.

mod support;

use replmend_sandbox::Build;
use support::{Chroot, cli};

const V118: Chroot = Chroot {
    build: Build::MariaDb118,
    name: "mariadb-11.8",
    version: "11.8",
};

#[test]
fn seed_dual_master_1062_on_mariadb_118() {
    V118.seed(
        |n| {
            // The server's default, not set by the sandbox.
            assert_eq!(
                n.query_value("SELECT @@binlog_legacy_event_pos")
                    .unwrap()
                    .as_deref(),
                Some("0"),
                "{}",
                n.name
            );
        },
        |_, _| {},
    );
}

#[test]
fn every_recipe_on_mariadb_118() {
    V118.every_recipe();
}

#[test]
fn cli_up_build_mariadb_118_recipe_down() {
    V118.cli_cycle(|s| {
        let (ok, out, err) = cli(&[
            "sql",
            "--state-dir",
            s,
            "--node",
            "n1",
            "SELECT Last_Errno FROM information_schema.SLAVE_STATUS",
        ]);
        assert!(ok, "{err}");
        eprintln!("[mariadb-11.8] cli: n1 SLAVE_STATUS: {out}");
    });
}

/// A SIGKILLed owner's 11.8 servers (inside the 11.8 chroot) are swept by the next start.
#[test]
fn sigkilled_owner_is_swept_mariadb_118() {
    V118.sweep();
}
