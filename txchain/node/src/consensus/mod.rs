//! BFT finality for the transfer chain (docs/consensus.md), on the Malachite engine
//! (`arc-malachitebft-*`, pinned exactly). This module is the only place that names the
//! engine: an upgrade touches it and nothing else.
//!
//! It owns what the engine needs from DOIN — the `Context` (heights, block values, proposals,
//! votes, validator sets), BIP340 signing of the signed forms that `doin_tx_core::bft` fixes.
//! It must not decide a block's validity (the chain's `apply_block` does) nor what a
//! certificate proves (`doin_tx_core::bft::CommitCertificate` does).
//!
//! Status: the types, signing and the streaming of proposed blocks as parts are here and tested; running the engine (its actors,
//! write-ahead log and network) for block production is not wired yet, and the node still
//! produces with the solo producer.

pub mod codec;
pub mod context;
pub mod engine;
mod events;
pub mod host;
pub mod metrics;
pub mod parts;
pub mod signing;

pub use context::{
    BftHeight, BftProposal, BftValidator, BftValidatorSet, BftVote, BlockPart, BlockValue,
    DoinContext, ValidatorAddress, VoteKind,
};
pub use doin_tx_core::bft::{
    CertificateError, CommitCertificate, ValidatorSet, ValidatorSetError, MAX_VALIDATORS,
};
pub use engine::{BftProducer, BftSettings, Multiaddr};
pub use metrics::BftMetrics;
pub use parts::{split_block, PartsCollector, PartsError, PartsOutcome, PART_BYTES};
pub use signing::{
    signing_hash, Bip340, ConsensusKey, ConsensusSigner, TAG_BFT_PEER, TAG_BFT_PROPOSAL,
    TAG_BFT_VOTE,
};
