//! Transaction inclusion proofs: the evidence that a transaction is in a final transfer block,
//! checkable offline by anyone who holds the chain's genesis file.
//!
//! A proof carries the transaction's canonical bytes, the block header, the block's
//! [`FinalityProof`] (its commit certificate and the epoch hops that say which validators
//! signed it) and the RFC 6962 audit path from the transaction id to the header's `tx_root`.
//! Checking it recomputes everything (the id from the bytes, the root from the path, the block
//! hash from the header, the signing set from genesis) and trusts nothing the proof merely
//! states. This module owns the format and the check; serving proofs is the node's job. The leg
//! from the transfer block to a main-chain checkpoint is a separate proof the node serves.

use crate::block::{BlockHash, BlockHeader};
use crate::light::{FinalityError, FinalityProof};
use crate::params::ChainParams;
use crate::tx::{Tx, TxId};
use doin_codec::{decode_exact_bounded, encode};
use doin_crypto::merkle::{verify_inclusion, InclusionProof};
use doin_types::{ChainId, Height, PublicKeyBytes};
use serde::{Deserialize, Serialize};

/// Name and version of the proof format, part of every served proof.
pub const TX_PROOF_FORMAT: &str = "doin-tx-inclusion/2";

/// Largest encoded proof accepted: a maximal transaction, a header, a 64-step path and the
/// epoch hops (each a header, a certificate and a state proof; a few kB with a handful of
/// validators, tens of kB at the validator cap).
pub const MAX_TX_PROOF_BYTES: usize = 16 * 1024 * 1024;

/// Evidence that a transaction is in a final transfer block.
// Not `Eq`: the state proof type is only `PartialEq`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TxInclusionProof {
    /// The transaction's canonical bytes (its id is recomputed from them).
    pub tx: Vec<u8>,
    pub header: BlockHeader,
    /// That the block is final, and under which validators.
    pub finality: FinalityProof,
    /// Audit path from the transaction id to `header.tx_root`.
    pub merkle: InclusionProof,
}

/// What a valid proof establishes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvenInclusion {
    pub tx_id: TxId,
    pub height: Height,
    pub block_hash: BlockHash,
    pub proposer: PublicKeyBytes,
}

/// Why a proof does not hold.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProofError {
    #[error("the proof is not a well-formed {TX_PROOF_FORMAT} encoding: {0}")]
    Malformed(String),
    #[error("the transaction bytes do not decode: {0}")]
    BadTransaction(String),
    #[error("the proof is for chain {got}, not {expected}")]
    WrongChain { expected: ChainId, got: ChainId },
    #[error(
        "the audit path does not lead from the transaction id to the block's transaction root"
    )]
    NotInBlock,
    #[error("the proof claims a tree of {claimed} transactions but the block has {in_block}")]
    WrongTreeSize { claimed: u64, in_block: u32 },
    #[error("the block is not proven final: {0}")]
    NotFinal(FinalityError),
}

impl TxInclusionProof {
    pub fn encode(&self) -> Result<Vec<u8>, ProofError> {
        encode(self).map_err(|e| ProofError::Malformed(e.to_string()))
    }

    /// Decodes an encoded proof, refusing trailing bytes and anything over the size cap.
    pub fn decode(bytes: &[u8]) -> Result<TxInclusionProof, ProofError> {
        if bytes.len() > MAX_TX_PROOF_BYTES {
            return Err(ProofError::Malformed(format!(
                "{} bytes, more than the {MAX_TX_PROOF_BYTES} allowed",
                bytes.len()
            )));
        }
        decode_exact_bounded(bytes, MAX_TX_PROOF_BYTES)
            .map_err(|e| ProofError::Malformed(e.to_string()))
    }

    /// Checks the proof for the chain of `params` (from its genesis file).
    pub fn verify(&self, params: &ChainParams) -> Result<ProvenInclusion, ProofError> {
        let chain_id = &params.chain_id;
        let bytes_len = u64::try_from(self.tx.len()).unwrap_or(u64::MAX);
        let tx = Tx::decode(&self.tx, bytes_len)
            .map_err(|e| ProofError::BadTransaction(e.to_string()))?;
        for got in [self.header.chain_id, tx.body().chain_id] {
            if got != *chain_id {
                return Err(ProofError::WrongChain {
                    expected: *chain_id,
                    got,
                });
            }
        }
        if self.merkle.size != u64::from(self.header.tx_count) {
            return Err(ProofError::WrongTreeSize {
                claimed: self.merkle.size,
                in_block: self.header.tx_count,
            });
        }
        let tx_id = tx.id();
        if !verify_inclusion(&self.header.tx_root, &tx_id.0, &self.merkle) {
            return Err(ProofError::NotInBlock);
        }
        let block_hash = self
            .header
            .hash()
            .map_err(|e| ProofError::Malformed(e.to_string()))?;
        self.finality
            .verify(params, &self.header, &block_hash)
            .map_err(ProofError::NotFinal)?;
        Ok(ProvenInclusion {
            tx_id,
            height: self.header.height,
            block_hash,
            proposer: self.header.proposer,
        })
    }
}

/// Builds the proof for the transaction at `index` of a block whose transaction ids, in block
/// order, are `ids`; `None` if `index` is out of range.
pub fn prove_tx(
    header: BlockHeader,
    finality: FinalityProof,
    ids: &[TxId],
    index: usize,
    tx_bytes: Vec<u8>,
) -> Option<TxInclusionProof> {
    let leaves: Vec<[u8; 32]> = ids.iter().map(|id| id.0).collect();
    let merkle = doin_crypto::merkle::prove(&leaves, index)?;
    Some(TxInclusionProof {
        tx: tx_bytes,
        header,
        finality,
        merkle,
    })
}
