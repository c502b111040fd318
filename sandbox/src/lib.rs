//! Real MariaDB and Oracle MySQL servers on 127.0.0.1 for replmend's tests, demo and benchmarks.
//!
//! Topologies: source-replica (file/position or GTID), dual-master, and multi-source (n3
//! replicating from n1 and n2 on channels named `n1` and `n2`).
//!
//! Every instance gets its own port, datadir, socket and pid file under a per-sandbox
//! directory; instances start from a template datadir made once per flavor and version, so a
//! pair is up in seconds. Dropping a `Sandbox` stops its servers by PID (SIGTERM, then SIGKILL
//! after a grace period) and removes their directories, also when the owning test panics; a
//! sandbox whose owning process died (SIGKILL, Ctrl-C) is swept by the next `Sandbox::start`.
//! MySQL runs inside the debootstrap chroot that `scripts/install-deps` builds; its instance
//! directories live inside the chroot. A [`Build`] names a server build: the host's MariaDB
//! 10.11 and MySQL are the flavors' defaults ([`Sandbox::start`]); MariaDB 11.8 and 10.5 each
//! run in their own chroot the same way ([`Sandbox::start_build`]) and speak the `mariadb`
//! flavor.
//!
//! Incident recipes (`tests/incidents/<name>/`, plain SQL) turn a healthy topology into a real
//! replication incident; see `tests/incidents/README.md`.
//!
//! Modules: `flavor` (flavors, builds, topologies), `server_opts` (each build's server options, as
//! data) and `server` (the command lines made from them), `paths`, `process` (PIDs, stopping),
//! `ports`, `template`, `instance` (one server process), `node`, `sandbox`, `state`
//! (`sandbox.json`, `down`), `sweep` (sandboxes whose owner died), `recipe`.

mod flavor;
mod instance;
mod node;
mod paths;
mod ports;
mod process;
mod recipe;
mod registry;
mod sandbox;
mod server;
mod server_opts;
mod state;
mod sweep;
mod template;

pub use flavor::{BUILDS, Build, FLAVORS, Flavor, Topology};
pub use node::{Channel, Node, WorkerError};
pub use paths::{available, cache_dir, incidents_dir, mysql_chroot};
pub use recipe::{Recipe, Stop, run_recipe};
pub use sandbox::{Sandbox, ServerTls};
pub use state::{SandboxInfo, build_of, down, flavor_of, load_state, nodes_of, running};
