//! The signed forms of BFT consensus messages (DESIGN §4): what a validator's signature on a
//! vote or a proposal covers, fixed here — independent of the consensus engine's own types —
//! so any implementation can check a commit certificate or a piece of evidence byte for byte.
//!
//! A signature covers `H_tag(chain_id ‖ encode(form))` with the one bincode configuration,
//! `tag` being `doin/bft/vote` or `doin/bft/proposal`: a vote can never pass as a proposal, a
//! transaction, or a message of another chain.

use crate::block::BlockHash;
use doin_codec::encode;
use doin_crypto::{tagged_hash_parts, verify};
use doin_types::{ChainId, Hash256, PublicKeyBytes, SignatureBytes};
use serde::{Deserialize, Serialize};

pub const TAG_BFT_VOTE: &str = "doin/bft/vote";
pub const TAG_BFT_PROPOSAL: &str = "doin/bft/proposal";
pub const TAG_BFT_PEER: &str = "doin/bft/peer";

/// Prevote or precommit.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum VoteKind {
    Prevote,
    Precommit,
}

/// What a vote's signature covers. `block: None` is a vote for nil.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteForm {
    pub kind: VoteKind,
    pub height: u64,
    pub round: u32,
    pub block: Option<BlockHash>,
    pub validator: PublicKeyBytes,
}

/// What a proposal's signature covers. `pol_round: None` when the value is not re-proposed
/// from an earlier round's lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalForm {
    pub height: u64,
    pub round: u32,
    pub block: BlockHash,
    pub pol_round: Option<u32>,
    pub proposer: PublicKeyBytes,
}

/// The 32 bytes a consensus signature covers.
pub fn signing_hash<T: Serialize>(
    tag: &str,
    chain_id: &ChainId,
    form: &T,
) -> Result<Hash256, String> {
    let bytes = encode(form).map_err(|e| format!("cannot encode a consensus message: {e}"))?;
    Ok(tagged_hash_parts(tag, &[&chain_id.0 .0, &bytes]))
}

impl VoteForm {
    /// True when `signature` is `self.validator`'s signature of this vote on `chain_id`.
    pub fn verify(&self, chain_id: &ChainId, signature: &SignatureBytes) -> bool {
        signing_hash(TAG_BFT_VOTE, chain_id, self)
            .is_ok_and(|h| verify(&self.validator, &h, signature).is_ok())
    }
}

impl ProposalForm {
    /// True when `signature` is `self.proposer`'s signature of this proposal on `chain_id`.
    pub fn verify(&self, chain_id: &ChainId, signature: &SignatureBytes) -> bool {
        signing_hash(TAG_BFT_PROPOSAL, chain_id, self)
            .is_ok_and(|h| verify(&self.proposer, &h, signature).is_ok())
    }
}
