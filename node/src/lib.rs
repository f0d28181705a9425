//! The `doin` node: the composition root — configuration, wiring of the chain services and
//! their ports onto each other, the REST gateway, the node's tasks and the devnet. Everything
//! consensus-related lives in the chain crates and every client command in `doin-client`;
//! this crate only assembles them.

// Every dependency in Cargo.toml is used (checked outside test builds, which also see the
// dev-dependencies).
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

pub mod anchor_api;
pub mod anchoring;
pub mod config;
pub mod config_show;
pub mod devnet;
pub mod gateway;
pub mod hub_demo;
pub mod hub_port;
pub mod network_file;
pub mod node_api;
pub mod node_metrics;
pub mod run;
pub mod snapshot_cli;
pub mod tasks;
pub mod warp_boot;
