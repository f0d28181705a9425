//! Transfer-chain consensus rules, with no I/O (docs/consensus.md, docs/transactions.md).
//!
//! This crate owns what a valid transaction and a valid block are, how fees are charged and
//! burned, and how the state root is derived. It must not touch the disk, the network, the
//! clock or randomness other than the signing key's nonce: time and storage come in as
//! arguments and traits (`StateView`, `jmt::storage::TreeReader`), and results come out as
//! diffs for the caller to commit.

// Every dependency in Cargo.toml is used (checked outside test builds, which also see the
// dev-dependencies).
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

pub mod anchor;
pub mod apply;
pub mod bft;
pub mod block;
pub mod build;
pub mod channel;
mod channel_tx;
pub mod compact;
pub mod error;
pub mod fees;
pub mod light;
pub mod memtree;
pub mod operations;
pub mod params;
pub mod proof;
pub mod snapshot;
pub mod stake;
pub mod state;
pub mod tx;
pub mod wire;

pub use anchor::{AnchorHold, MainView, NoMainChain, MAX_ANCHOR_STEP};
pub use apply::{
    apply_block, apply_tx, genesis, next_validators, verify_header_chain, AppliedBlock,
    ApplyContext, TxReceipt,
};
pub use bft::{EpochValidators, ValidatorSet};
pub use block::{tx_root, Block, BlockHash, BlockHeader, SignedHeader};
pub use build::{build_block, build_block_certified, BuiltBlock, ParentCommit};
pub use compact::{short_id, CompactBlock, PartialBlock, ShortId, SHORT_ID_LEN};
pub use error::{BlockError, GenesisError, TxError};
pub use light::{EpochHop, FinalityError, FinalityProof, StateProof};
pub use operations::{Operation, OperationCause, OperationKind, SettledOperation};
pub use params::{Allocation, ChainParams, ConsensusParams, GenesisSpec, GenesisStake};
pub use proof::{prove_tx, ProofError, ProvenInclusion, TxInclusionProof, TX_PROOF_FORMAT};
pub use stake::{Stake, StakeRole, StakingParams};
pub use state::{Account, ChainStats, StateDiff, StateView};
pub use tx::{BatchOutput, SignedTx, Tx, TxBody, TxId, TxPayload, MAX_BATCH_OUTPUTS};

/// The JMT crate, re-exported so services use the same version.
pub use jmt;
