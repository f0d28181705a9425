//! Main-chain blocks: header, body, hashes, the producer's signature, and fork choice.

use crate::error::MainBlockError;
use crate::fixed::Fx;
use crate::msg::{OptimaeId, SignedCommit, SignedRegister, SignedReveal, SignedVote};
use crate::reward::Payout;
use doin_codec::{decode_exact_bounded, encode};
use doin_crypto::{tagged_hash, verify, KeyPair};
use doin_types::{ChainId, Hash256, PublicKeyBytes, SignatureBytes, Timestamp, TxCheckpoint};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

pub const TAG_MAIN_BLOCK: &str = "doin/mainblock";
pub const TAG_MAIN_BODY: &str = "doin/mainbody";
/// Largest encoded main block.
pub const MAX_MAIN_BLOCK_BYTES: usize = 8 * 1024 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MainHeader {
    pub chain_id: ChainId,
    pub height: u64,
    pub parent: Hash256,
    pub time: Timestamp,
    pub producer: PublicKeyBytes,
    /// Threshold this block had to meet (from the controller state after the parent).
    pub threshold: Fx,
    /// Counted work of this block's verdicts, after the per-domain cap.
    pub counted_work: Fx,
    /// Sum of counted work from genesis through this block (units of 10^-9 work).
    pub cumulative_work: u128,
    pub state_root: Hash256,
    pub body_root: Hash256,
    /// A final transfer-chain block this block commits to (docs/anchoring.md), monotonic.
    pub tx_checkpoint: TxCheckpoint,
}

impl MainHeader {
    pub fn hash(&self) -> Result<Hash256, MainBlockError> {
        let bytes = encode(self).map_err(|e| MainBlockError::Malformed(e.to_string()))?;
        Ok(tagged_hash(TAG_MAIN_BLOCK, &bytes))
    }
}

/// The votes that decide one optimae's current round, carried as evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub optimae_id: OptimaeId,
    pub round: u8,
    pub votes: Vec<SignedVote>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MainBody {
    pub registrations: Vec<SignedRegister>,
    pub commits: Vec<SignedCommit>,
    pub reveals: Vec<SignedReveal>,
    pub verdicts: Vec<Verdict>,
    pub coinbase: Vec<Payout>,
}

impl MainBody {
    pub fn root(&self) -> Result<Hash256, MainBlockError> {
        let bytes = encode(self).map_err(|e| MainBlockError::Malformed(e.to_string()))?;
        Ok(tagged_hash(TAG_MAIN_BODY, &bytes))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MainBlock {
    pub header: MainHeader,
    /// The producer's signature over the header hash (all zero for genesis).
    pub signature: SignatureBytes,
    pub body: MainBody,
}

impl MainBlock {
    pub fn hash(&self) -> Result<Hash256, MainBlockError> {
        self.header.hash()
    }

    pub fn encode(&self) -> Result<Vec<u8>, MainBlockError> {
        encode(self).map_err(|e| MainBlockError::Malformed(e.to_string()))
    }

    pub fn decode(bytes: &[u8]) -> Result<MainBlock, MainBlockError> {
        decode_exact_bounded(bytes, MAX_MAIN_BLOCK_BYTES)
            .map_err(|e| MainBlockError::Malformed(e.to_string()))
    }

    pub fn sign(
        header: MainHeader,
        body: MainBody,
        key: &KeyPair,
    ) -> Result<MainBlock, MainBlockError> {
        let signature = key.sign(&header.hash()?);
        Ok(MainBlock {
            header,
            signature,
            body,
        })
    }

    pub fn verify_signature(&self) -> Result<(), MainBlockError> {
        verify(&self.header.producer, &self.header.hash()?, &self.signature)
            .map_err(|_| MainBlockError::BadSignature)
    }

    /// The header with its signature: what headers-first sync carries.
    pub fn signed_header(&self) -> SignedMainHeader {
        SignedMainHeader {
            header: self.header.clone(),
            signature: self.signature,
        }
    }
}

/// A main header and its producer's signature, without the body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedMainHeader {
    pub header: MainHeader,
    pub signature: SignatureBytes,
}

impl SignedMainHeader {
    pub fn verify_signature(&self) -> Result<(), MainBlockError> {
        verify(&self.header.producer, &self.header.hash()?, &self.signature)
            .map_err(|_| MainBlockError::BadSignature)
    }
}

/// Fork choice: more cumulative counted work wins; equal work, the lower block hash wins.
/// Returns `Greater` when `a` is preferred over `b`.
pub fn fork_choice(a: (u128, &Hash256), b: (u128, &Hash256)) -> Ordering {
    a.0.cmp(&b.0).then_with(|| b.1.cmp(a.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_work_wins_then_lower_hash() {
        let lo = Hash256([1; 32]);
        let hi = Hash256([2; 32]);
        assert_eq!(fork_choice((10, &hi), (9, &lo)), Ordering::Greater);
        assert_eq!(fork_choice((9, &lo), (10, &hi)), Ordering::Less);
        assert_eq!(fork_choice((10, &lo), (10, &hi)), Ordering::Greater);
        assert_eq!(fork_choice((10, &hi), (10, &lo)), Ordering::Less);
    }
}
