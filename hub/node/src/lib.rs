//! The channel hub as a node service: the shell around `doin-hub-core` (which holds every
//! rule of the hub: streams, routed payments, verification funds, the watchtower's decisions,
//! the books), its store, its metrics and its REST routes.
//!
//! - [`hub`] owns the lock on the hub's state and carries out the core's outputs in order:
//!   persist, submit, reply; [`store`] persists everything with group commit; [`ports`] says
//!   what the hub needs from the chains (the node implements them); [`api`] and its route
//!   modules serve `/v1/hub/...`.
//! - Persist before acting: no signature, answer or transaction leaves before the state it
//!   depends on is on disk.
//! - This crate never imports another node crate: the chains are reached through
//!   [`ports::ChainPort`] and [`ports::MainPort`].

// Every dependency in Cargo.toml is used (checked outside test builds, which also see the
// dev-dependencies).
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod access;
pub mod api;
pub mod api_keys;
mod channel_api;
pub mod hub;
mod keys_api;
mod ledger_api;
mod message_api;
pub mod metrics;
mod party;
pub mod ports;
mod request_api;
mod rest;
pub mod store;
pub mod stream_api;
mod webhook_api;
pub mod webhook_outbox;
pub mod webhook_records;
pub mod webhooks;

pub use doin_hub_core::{auth, FeePolicy, HubConfig, RequestPolicy, Unchanneled, WatchReport};
pub use hub::{Handled, Hub, HubError, PendingAnswer, ProposalContext};
pub use metrics::HubMetrics;
pub use ports::ChainPort;
pub use store::{HubStore, COLUMNS};
pub use webhook_records::WebhookConfig;
