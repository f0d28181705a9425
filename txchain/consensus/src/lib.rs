//! The transfer chain's BFT consensus as data (docs/consensus.md): what the Malachite engine
//! (`arc-malachitebft-*`, pinned exactly) needs from DOIN — the `Context` (heights, block
//! values, proposals, votes, validator sets), BIP340 signing of the signed forms that
//! `doin_tx_core::bft` fixes, the bytes of every consensus message on the wire and in the
//! engine's write-ahead log, and proposed blocks cut into parts and put back together.
//!
//! It owns every decoder of consensus bytes that come from other nodes, and nothing that does
//! I/O: no store, no network, no engine actors (the node's `consensus` module runs those). That
//! is why it is its own crate: the fuzz targets build it without RocksDB or a network stack of
//! our own. It must not decide a block's validity (the chain's `apply_block` does) nor what a
//! certificate proves (`doin_tx_core::bft::CommitCertificate` does).

pub mod codec;
pub mod context;
pub mod parts;
pub mod signing;

pub use context::{
    BftHeight, BftProposal, BftValidator, BftValidatorSet, BftVote, BlockPart, BlockValue,
    DoinContext, ValidatorAddress, VoteKind,
};
pub use parts::{split_block, PartsCollector, PartsError, PartsOutcome, PART_BYTES};
pub use signing::{
    signing_hash, Bip340, ConsensusKey, ConsensusSigner, TAG_BFT_PEER, TAG_BFT_PROPOSAL,
    TAG_BFT_VOTE,
};
