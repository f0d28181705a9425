//! The `doin` binary end to end: the devnet, a node from its configuration file, and an
//! external domain plugin, as separate processes, in one test binary.

mod devnet_e2e;
mod node_config_e2e;
mod plugin_domain_e2e;

/// Free ports for the processes these tests start (one helper shared with the other process
/// tests of the workspace).
#[path = "../../../tests/src/ports.rs"]
#[allow(unreachable_pub)]
mod ports;
