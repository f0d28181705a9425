//! Proof-of-optimization rules of the DOIN main chain, with no I/O (docs/mainchain.md).
//!
//! This crate owns what a valid main block is: domains and their registration, the
//! commit → reveal → verdict lifecycle of an optimae, evaluator selection and the quorum
//! decision, counted work with the per-domain cap, the threshold controller, the coinbase and
//! reputation. Everything is fixed-point integer arithmetic, so every node computes the same
//! result. It must not touch disk, network, clock or randomness: time comes in as arguments,
//! and evaluation of external domains happens in the node.

// Every dependency in Cargo.toml is used (checked outside test builds, which also see the
// dev-dependencies).
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

pub mod apply;
pub mod block;
pub mod controller;
pub mod domain;
pub mod error;
pub mod fixed;
mod items;
pub mod msg;
pub mod params;
pub mod quorum;
pub mod reward;
pub mod state;
pub mod wire;

pub use apply::{
    apply_block, build_block, check_checkpoint, genesis_header, verify_main_header_chain,
    AppliedMain, BuildError, BuiltMain, MainContext, NoTxChain, OptimaeEvent, Skipped, TxChainView,
};
pub use block::{fork_choice, MainBlock, MainBody, MainHeader, SignedMainHeader, Verdict};
pub use controller::Controller;
pub use domain::{evaluate_builtin, Direction, DomainError, DomainId, DomainSpec, Objective};
pub use error::{GenesisError, ItemError, MainBlockError};
pub use fixed::Fx;
pub use msg::{
    Commit, DomainRegister, Message, MsgError, OptimaeId, Reveal, Signed, SignedCommit,
    SignedRegister, SignedReveal, SignedVote, Vote,
};
pub use params::{EvaluatorEntry, InitialReputation, MainChainParams, MainGenesisSpec, MainParams};
pub use reward::{Payout, Reputation, Role};
pub use state::{DomainState, MainState, PendingOptimae};
