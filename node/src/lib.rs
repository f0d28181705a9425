//! The `doin` node: configuration, wiring of the chain services, the REST gateway, the devnet
//! and the wallet and hub clients. Everything consensus-related lives in the chain crates; this crate
//! only assembles them.

pub mod anchor_api;
pub mod anchoring;
pub mod client;
pub mod config;
pub mod devnet;
pub mod gateway;
pub mod hub_cli;
pub mod hub_demo;
pub mod hub_operator_cli;
pub mod hub_peer;
pub mod hub_port;
pub mod node_api;
pub mod proofcheck;
pub mod run;
pub mod tasks;
pub mod wallet;
