//! The clients of a DOIN node: the wallet (`doin wallet`), the hub's payer, payee and
//! operator commands (`doin hub`), offline proof checking, and the typed HTTP client they
//! share. They reach a node only through its REST API (`doin-api`'s types) and build and
//! sign what they send with the chains' sans-IO cores; nothing here runs a chain.

// Every dependency in Cargo.toml is used (checked outside test builds, which also see the
// dev-dependencies).
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod channel_request;
mod channel_watch;
mod fund_reveals;
pub mod genesis;
pub mod http;
pub mod hub_cli;
mod hub_common;
pub mod hub_operator_cli;
pub mod hub_peer;
mod hub_reads;
pub mod hub_webhooks_cli;
pub mod proofcheck;
pub mod wallet;
