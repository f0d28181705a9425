//! A testnet of real `doin node` processes, each in its own network namespace with its own
//! address on one bridge, driven through a scenario of faults while a bank workload runs, and
//! checked afterwards (`docs/testing.md#testnet`).
//!
//! - [`scenario`]: the scenario file (nodes, roles, the fault schedule);
//! - [`host`]: namespaces, the bridge, partitions, packet loss, small disks, and removing them;
//! - [`node`]: a node's files and process, and the runner's HTTP client;
//! - [`bank`]: the workload and its history;
//! - [`channels`]: a payer streaming to a payee through the hub, and the hub's books;
//! - [`check`]: what must hold afterwards;
//! - [`shape`]: latency and reordering on a host's links (run inside its namespace);
//! - [`run`]: one scenario from start to verdict.
//!
//! Needs root: the `doin-testnet` binary is run by hand and by CI, never by `cargo test`.

pub mod bank;
pub mod channels;
pub mod check;
pub mod entry;
pub mod host;
pub mod node;
pub mod peers;
pub mod run;
pub mod scenario;
pub mod shape;
