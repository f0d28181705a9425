//! Light verification of transfer blocks: which validator set finalises a height, learned from
//! the genesis file alone, and a block's finality checked from its commit certificate.
//!
//! The genesis validators finalise the first epoch. The state of every epoch's last block holds
//! [`EpochValidators`] (its `next` set finalises the following epoch), so one [`EpochHop`] per
//! epoch — that block's header, its certificate under the set already trusted and a state proof
//! of the validators entry against its `state_root` — carries trust from one set to the next.
//! A [`FinalityProof`] is those hops plus the target block's certificate.
//!
//! This module owns the format and the check, with no I/O. Building the hops from a store is
//! the node's job; proofs of transactions and anchors embed a `FinalityProof`.

use crate::bft::{CertificateError, CommitCertificate, EpochValidators, ValidatorSet};
use crate::block::{BlockHash, BlockHeader};
use crate::params::ChainParams;
use crate::state::{decode_validators, validators_key};
use serde::{Deserialize, Serialize};

/// A JMT proof of one state entry against a block's `state_root`.
pub type StateProof = jmt::proof::SparseMerkleProof<sha2::Sha256>;

/// Largest encoded validators entry a hop may carry (two sets at the validator cap).
const MAX_VALIDATORS_ENTRY_BYTES: usize = 256 * 1024;

/// Trust carried across one epoch boundary.
// Not `Eq`: the state proof type is only `PartialEq`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochHop {
    /// The header of the epoch's last block (its height a multiple of `epoch_blocks`).
    pub header: BlockHeader,
    /// That block's commit certificate, signed by the set trusted for its epoch.
    pub certificate: CommitCertificate,
    /// The encoded validators entry of that block's state.
    pub validators: Vec<u8>,
    /// Proof of `validators` under `validators_key()` against `header.state_root`.
    pub proof: StateProof,
}

/// Evidence that a block is final: the epoch hops from genesis to the block's epoch and the
/// block's own certificate.
// Not `Eq`: the state proof type is only `PartialEq`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FinalityProof {
    pub hops: Vec<EpochHop>,
    pub certificate: CommitCertificate,
}

/// Why a finality proof does not hold.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FinalityError {
    #[error("the genesis block needs no finality proof")]
    Genesis,
    #[error("the genesis validators do not form a set: {0}")]
    GenesisSet(String),
    #[error("a block at height {height} needs {expected} epoch hops, the proof has {got}")]
    HopCount {
        height: u64,
        expected: u64,
        got: usize,
    },
    #[error("epoch hop {index} is at height {got}, expected {expected}")]
    HopHeight {
        index: usize,
        expected: u64,
        got: u64,
    },
    #[error("the header at height {0} is for another chain")]
    WrongChain(u64),
    #[error("the header at height {0} does not hash")]
    BadHeader(u64),
    #[error("the certificate of block {height} does not hold: {source}")]
    Certificate {
        height: u64,
        source: CertificateError,
    },
    #[error("the validators entry of block {height} fails its state root: {reason}")]
    StateProof { height: u64, reason: String },
    #[error("the validators entry of block {height} is not a valid set pair: {reason}")]
    BadValidators { height: u64, reason: String },
    #[error("the state of block {0} names another signing set than the one that finalised it")]
    SetMismatch(u64),
}

impl FinalityProof {
    /// Checks that `header` (hashing to `block_hash`) is final on the chain of `params`,
    /// trusting only `params` (chain id, genesis validators, epoch length).
    pub fn verify(
        &self,
        params: &ChainParams,
        header: &BlockHeader,
        block_hash: &BlockHash,
    ) -> Result<(), FinalityError> {
        let height = header.height;
        if height == 0 {
            return Err(FinalityError::Genesis);
        }
        if header.chain_id != params.chain_id {
            return Err(FinalityError::WrongChain(height));
        }
        let set = self.signing_set(params, height)?;
        self.certificate
            .verify(&params.chain_id, height, block_hash, &set)
            .map_err(|source| FinalityError::Certificate { height, source })
    }

    /// Walks the hops from the genesis set to the set that finalises `height`.
    fn signing_set(
        &self,
        params: &ChainParams,
        height: u64,
    ) -> Result<ValidatorSet, FinalityError> {
        let epoch_blocks = params.consensus.epoch_blocks.max(1);
        // Blocks 1..=epoch_blocks are the genesis set's; every later epoch needs one hop.
        let expected = height.saturating_sub(1) / epoch_blocks;
        if u64::try_from(self.hops.len()).ok() != Some(expected) {
            return Err(FinalityError::HopCount {
                height,
                expected,
                got: self.hops.len(),
            });
        }
        let mut trusted = params
            .genesis_validator_set()
            .map_err(|e| FinalityError::GenesisSet(e.to_string()))?;
        let mut boundary: u64 = 0;
        for (index, hop) in self.hops.iter().enumerate() {
            // At most `expected` hops, so the boundary stays below `height`.
            boundary = boundary.saturating_add(epoch_blocks);
            trusted = hop.carry(params, index, boundary, &trusted)?;
        }
        Ok(trusted)
    }
}

impl EpochHop {
    /// Checks this hop at `boundary` under the `trusted` set and returns the next epoch's set.
    fn carry(
        &self,
        params: &ChainParams,
        index: usize,
        boundary: u64,
        trusted: &ValidatorSet,
    ) -> Result<ValidatorSet, FinalityError> {
        let h = &self.header;
        if h.height != boundary {
            return Err(FinalityError::HopHeight {
                index,
                expected: boundary,
                got: h.height,
            });
        }
        if h.chain_id != params.chain_id {
            return Err(FinalityError::WrongChain(boundary));
        }
        let hash = h.hash().map_err(|_| FinalityError::BadHeader(boundary))?;
        self.certificate
            .verify(&params.chain_id, boundary, &hash, trusted)
            .map_err(|source| FinalityError::Certificate {
                height: boundary,
                source,
            })?;
        if self.validators.len() > MAX_VALIDATORS_ENTRY_BYTES {
            return Err(FinalityError::BadValidators {
                height: boundary,
                reason: "oversize entry".into(),
            });
        }
        self.proof
            .verify_existence(
                jmt::RootHash(h.state_root.0),
                validators_key(),
                &self.validators,
            )
            .map_err(|e| FinalityError::StateProof {
                height: boundary,
                reason: e.to_string(),
            })?;
        let sets: EpochValidators =
            decode_validators(&self.validators).map_err(|reason| FinalityError::BadValidators {
                height: boundary,
                reason,
            })?;
        if sets.current != *trusted {
            return Err(FinalityError::SetMismatch(boundary));
        }
        Ok(sets.next)
    }
}
