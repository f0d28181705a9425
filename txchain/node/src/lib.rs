//! The transfer-chain service (docs/consensus.md): store layout, mempool, block production, events and
//! REST routes around the sans-IO rules of `doin-tx-core`.
//!
//! This crate must not import another node crate (main chain, hub); what it needs from them
//! will be a trait defined here and implemented by `doin-node`.

// Every dependency in Cargo.toml is used (checked outside test builds, which also see the
// dev-dependencies).
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

pub mod account_api;
pub mod api;
pub mod chain;
pub mod channel_api;
pub mod consensus;
pub mod dropped;
pub mod events;
pub mod events_api;
pub mod history;
mod kept;
pub mod lookup;
mod main_events;
pub mod mempool;
pub mod metrics;
mod net_ctx;
pub mod operations;
pub mod p2p;
pub mod producer;
pub mod proof_api;
mod rest;
pub mod simulate_api;
pub mod snapshot;
pub mod snapshot_shelf;
pub mod stake_api;
pub mod store;
pub mod sync;
pub mod tree;
pub mod views;
pub mod warp;
/// The peer-to-peer sync messages (defined in the core, which has no I/O, so they can be fuzzed
/// and checked without a store).
pub use doin_tx_core::wire;

pub use chain::{
    now_ms, ChainError, SubmitError, SubmitOutcome, Tip, TxChain, TxChainConfig, TxStatus,
};
pub use producer::{BlockProducer, SoloProducer};
