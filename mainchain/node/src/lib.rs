//! The main-chain service (docs/mainchain.md): message pool, vote collection, block production,
//! persistence, the optimizer and evaluator workers, external domain plugins and REST routes,
//! around the sans-IO rules of `doin-main-core`.
//!
//! This crate must not import another node crate (transfer chain, hub); cross-chain needs
//! will be traits defined here and implemented by `doin-node`.

// Every dependency in Cargo.toml is used (checked outside test builds, which also see the
// dev-dependencies).
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

pub mod api;
pub mod chain;
pub mod metrics;
pub mod p2p;
pub mod plugin;
pub mod pool;
pub mod producer;
pub mod store;
pub mod views;
pub mod workers;

pub use chain::{
    Head, ImportOutcome, MainAnnouncement, MainChain, MainChainConfig, MainChainError, MainReorg,
    Rejection, SubmitError, Submitted,
};
pub use store::PoolKind;
