//! Transfer-chain blocks: header fields, the block hash, the proposer's signature and the
//! transaction root.

use crate::bft::CommitCertificate;
use crate::error::BlockError;
use crate::tx::{SignedTx, Tx};
use doin_codec::{decode_exact, encode};
use doin_crypto::{merkle, tagged_hash, verify, KeyPair};
use doin_types::{
    Amount, ChainId, Hash256, Height, MainAnchor, PublicKeyBytes, SignatureBytes, Timestamp,
};
use serde::{Deserialize, Serialize};

pub const TAG_BLOCK: &str = "doin/txblock";

/// A block hash.
pub type BlockHash = Hash256;

/// The header: everything a light client needs to follow the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockHeader {
    pub chain_id: ChainId,
    pub height: Height,
    pub parent: BlockHash,
    pub time: Timestamp,
    pub proposer: PublicKeyBytes,
    /// JMT root of the state after this block.
    pub state_root: Hash256,
    /// RFC 6962 root over the transaction ids, in block order.
    pub tx_root: Hash256,
    /// Base fee per weight unit every transaction of this block pays (and burns).
    pub base_fee: Amount,
    /// Summed weight of the transactions.
    pub weight_used: u64,
    pub tx_count: u32,
    /// The newest main-chain block whose effects this block's state includes (docs/anchoring.md).
    pub main_anchor: MainAnchor,
    /// The certificate that made the parent final (none for the first block after genesis):
    /// precommits of more than two thirds of the parent height's validator power.
    pub last_commit: Option<CommitCertificate>,
}

impl BlockHeader {
    /// `H_"doin/txblock"(encode(header))`. The header starts with the chain id, so a hash (and
    /// the proposer's signature over it) is specific to one chain.
    pub fn hash(&self) -> Result<BlockHash, BlockError> {
        let bytes = encode(self).map_err(|e| BlockError::Malformed(e.to_string()))?;
        Ok(tagged_hash(TAG_BLOCK, &bytes))
    }
}

/// A header and its proposer's signature, without the transactions: enough to check that a
/// run of blocks links up and was signed by the right proposers before fetching the bodies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedHeader {
    pub header: BlockHeader,
    pub signature: SignatureBytes,
}

impl SignedHeader {
    pub fn hash(&self) -> Result<BlockHash, BlockError> {
        self.header.hash()
    }

    pub fn verify_signature(&self) -> Result<(), BlockError> {
        verify(&self.header.proposer, &self.header.hash()?, &self.signature)
            .map_err(|_| BlockError::BadSignature)
    }
}

/// A full block as stored and sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    pub header: BlockHeader,
    /// The proposer's BIP340 signature over the block hash. All zero for genesis, which is
    /// rebuilt from the specification, never imported.
    pub signature: SignatureBytes,
    pub txs: Vec<SignedTx>,
}

impl Block {
    pub fn hash(&self) -> Result<BlockHash, BlockError> {
        self.header.hash()
    }

    pub fn decode(bytes: &[u8]) -> Result<Block, BlockError> {
        decode_exact(bytes).map_err(|e| BlockError::Malformed(e.to_string()))
    }

    pub fn encode(&self) -> Result<Vec<u8>, BlockError> {
        encode(self).map_err(|e| BlockError::Malformed(e.to_string()))
    }

    /// Verifies the proposer's signature.
    pub fn verify_signature(&self) -> Result<(), BlockError> {
        verify(&self.header.proposer, &self.header.hash()?, &self.signature)
            .map_err(|_| BlockError::BadSignature)
    }

    /// The header with its signature: what headers-first sync carries.
    pub fn signed_header(&self) -> SignedHeader {
        SignedHeader {
            header: self.header.clone(),
            signature: self.signature,
        }
    }

    /// Signs the header (the signer must be `header.proposer`).
    pub fn sign(
        header: BlockHeader,
        txs: Vec<SignedTx>,
        key: &KeyPair,
    ) -> Result<Block, BlockError> {
        let sig = key.sign(&header.hash()?);
        Ok(Block {
            header,
            signature: sig,
            txs,
        })
    }
}

/// Transaction root over ids in block order.
pub fn tx_root(txs: &[Tx]) -> Hash256 {
    let ids: Vec<[u8; 32]> = txs.iter().map(|t| t.id().0).collect();
    merkle::root(&ids)
}
