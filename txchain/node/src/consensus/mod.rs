//! BFT finality for the transfer chain (docs/consensus.md): the Malachite engine
//! (`arc-malachitebft-*`, pinned exactly) run for block production — its actors, write-ahead
//! log and network (`engine`), the host that answers it from the chain (`host`), and the
//! blocks of undecided heights the host keeps on disk across restarts (`undecided`).
//!
//! The consensus types, their signing, their wire bytes and the proposal parts live in the
//! `doin-tx-consensus` crate (re-exported here under the same paths), so they build and fuzz
//! without a store. Only that crate and this module name the engine: an upgrade touches them
//! and nothing else. This module must not decide a block's validity (the chain's
//! `apply_block` does) nor what a certificate proves (`doin_tx_core::bft::CommitCertificate`
//! does).

pub use doin_tx_consensus::{codec, context, parts, signing};
pub mod engine;
mod events;
pub mod host;
pub mod metrics;
pub mod undecided;

pub use doin_tx_consensus::{
    signing_hash, split_block, BftHeight, BftProposal, BftValidator, BftValidatorSet, BftVote,
    Bip340, BlockPart, BlockValue, ConsensusKey, ConsensusSigner, DoinContext, PartsCollector,
    PartsError, PartsOutcome, ValidatorAddress, VoteKind, PART_BYTES, TAG_BFT_PEER,
    TAG_BFT_PROPOSAL, TAG_BFT_VOTE,
};
pub use doin_tx_core::bft::{
    CertificateError, CommitCertificate, ValidatorSet, ValidatorSetError, MAX_VALIDATORS,
};
pub use engine::{BftProducer, BftSettings, Multiaddr};
pub use metrics::BftMetrics;
