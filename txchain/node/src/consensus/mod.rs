//! BFT finality for the transfer chain (DESIGN §4), on the Malachite engine
//! (`arc-malachitebft-*`, pinned exactly). This module is the only place that names the
//! engine: an upgrade touches it and nothing else.
//!
//! It owns what the engine needs from DOIN — the `Context` (heights, block values, proposals,
//! votes, validator sets from validator stakes), BIP340 signing domain-separated by tag and
//! chain id — and the commit certificates that make a block final on its own. It must not
//! decide a block's validity: that stays with the chain's `apply_block`.
//!
//! Status: the types, signing and certificate verification are here and tested; running the
//! engine (its actors, write-ahead log and network) for block production is not wired yet, and
//! the node still produces with the solo producer.

pub mod certificate;
pub mod context;
pub mod signing;

pub use certificate::{CertificateError, CommitCertificate, MAX_COMMIT_SIGNATURES};
pub use context::{
    BftHeight, BftProposal, BftValidator, BftValidatorSet, BftVote, BlockPart, BlockValue,
    DoinContext, ValidatorAddress, ValidatorSetError, VoteKind,
};
pub use signing::{
    signing_hash, Bip340, ConsensusKey, ConsensusSigner, TAG_BFT_PEER, TAG_BFT_PROPOSAL,
    TAG_BFT_VOTE,
};
