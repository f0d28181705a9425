//! Compact block relay (the BIP152 idea): a block travels as its header, signature and a
//! 6-byte short id per transaction; the receiver rebuilds it from its own mempool and asks the
//! sender only for what it lacks.
//!
//! Short ids are keyed by the block hash, so an attacker cannot precompute transactions whose
//! ids collide in every block. A collision can still happen by chance (or with a crafted
//! mempool); it is harmless: an ambiguous slot is treated as missing, and a rebuilt block whose
//! transaction root does not match its header is discarded for the full block.
//!
//! Pure functions only: the service supplies the mempool and does the fetching.

use crate::block::{Block, BlockHash, BlockHeader};
use crate::error::BlockError;
use crate::tx::{SignedTx, Tx, TxId};
use doin_codec::{decode_exact_bounded, encode};
use doin_crypto::{merkle, tagged_hash_parts};
use doin_types::SignatureBytes;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

pub const TAG_SHORT_ID: &str = "doin/tx-short-id";

/// Bytes of a short transaction id.
pub const SHORT_ID_LEN: usize = 6;

pub type ShortId = [u8; SHORT_ID_LEN];

/// A transaction's short id within one block.
pub fn short_id(block: &BlockHash, tx: &TxId) -> ShortId {
    let h = tagged_hash_parts(TAG_SHORT_ID, &[&block.0, &tx.0]);
    let mut out = [0u8; SHORT_ID_LEN];
    out.copy_from_slice(&h.0[..SHORT_ID_LEN]);
    out
}

/// A block as relayed: everything but the transactions, which are named by short id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactBlock {
    pub header: BlockHeader,
    pub signature: SignatureBytes,
    pub short_ids: Vec<ShortId>,
}

impl CompactBlock {
    pub fn from_block(block: &Block) -> Result<CompactBlock, BlockError> {
        let hash = block.hash()?;
        let short_ids = block
            .txs
            .iter()
            .map(|t| {
                Tx::from_signed(t.clone())
                    .map(|tx| short_id(&hash, &tx.id()))
                    .map_err(|e| BlockError::Malformed(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CompactBlock {
            header: block.header.clone(),
            signature: block.signature,
            short_ids,
        })
    }

    pub fn encode(&self) -> Result<Vec<u8>, BlockError> {
        encode(self).map_err(|e| BlockError::Malformed(e.to_string()))
    }

    /// Decodes at most `max_len` bytes; the id count must match the header's `tx_count`.
    pub fn decode(bytes: &[u8], max_len: usize) -> Result<CompactBlock, BlockError> {
        let c: CompactBlock = decode_exact_bounded(bytes, max_len)
            .map_err(|e| BlockError::Malformed(e.to_string()))?;
        if c.short_ids.len() != c.header.tx_count as usize {
            return Err(BlockError::Malformed(format!(
                "{} short ids for {} transactions",
                c.short_ids.len(),
                c.header.tx_count
            )));
        }
        Ok(c)
    }
}

/// A compact block being filled in.
#[derive(Clone, Debug)]
pub struct PartialBlock {
    compact: CompactBlock,
    hash: BlockHash,
    slots: Vec<Option<(TxId, SignedTx)>>,
}

impl PartialBlock {
    /// Fills every slot whose short id matches exactly one of `pool`'s transactions.
    pub fn new<'a>(
        compact: CompactBlock,
        pool: impl IntoIterator<Item = (TxId, &'a SignedTx)>,
    ) -> Result<PartialBlock, BlockError> {
        let hash = compact.header.hash()?;
        let wanted: HashMap<ShortId, usize> = {
            let mut m = HashMap::with_capacity(compact.short_ids.len());
            for (i, s) in compact.short_ids.iter().enumerate() {
                // A short id listed twice can only be filled from the sender.
                if m.insert(*s, i).is_some() {
                    m.insert(*s, usize::MAX);
                }
            }
            m
        };
        let mut slots: Vec<Option<(TxId, SignedTx)>> = vec![None; compact.short_ids.len()];
        let mut ambiguous = vec![false; compact.short_ids.len()];
        for (id, tx) in pool {
            if let Some(&i) = wanted.get(&short_id(&hash, &id)) {
                if i == usize::MAX {
                    continue;
                }
                if slots[i].is_some() {
                    ambiguous[i] = true;
                } else {
                    slots[i] = Some((id, tx.clone()));
                }
            }
        }
        for (slot, amb) in slots.iter_mut().zip(ambiguous) {
            if amb {
                *slot = None;
            }
        }
        Ok(PartialBlock {
            compact,
            hash,
            slots,
        })
    }

    pub fn hash(&self) -> BlockHash {
        self.hash
    }

    pub fn header(&self) -> &BlockHeader {
        &self.compact.header
    }

    /// Positions still empty.
    pub fn missing(&self) -> Vec<u32> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_none())
            .map(|(i, _)| i as u32)
            .collect()
    }

    /// Fills the `indexes` positions with `txs` (as sent by a peer). Each must match its short
    /// id; a mismatch means the peer sent something else.
    pub fn fill(&mut self, indexes: &[u32], txs: Vec<SignedTx>) -> Result<(), BlockError> {
        if indexes.len() != txs.len() {
            return Err(BlockError::Malformed(format!(
                "{} transactions for {} positions",
                txs.len(),
                indexes.len()
            )));
        }
        for (&i, signed) in indexes.iter().zip(txs) {
            let i = i as usize;
            let Some(expected) = self.compact.short_ids.get(i) else {
                return Err(BlockError::Malformed(format!("position {i} out of range")));
            };
            let tx = Tx::from_signed(signed).map_err(|e| BlockError::Malformed(e.to_string()))?;
            if short_id(&self.hash, &tx.id()) != *expected {
                return Err(BlockError::Malformed(format!(
                    "transaction at position {i} does not match its short id"
                )));
            }
            self.slots[i] = Some((tx.id(), tx.into_signed()));
        }
        Ok(())
    }

    /// The full block once every slot is filled and the transactions hash to the header's
    /// transaction root; `None` while incomplete; an error when the root does not match (a
    /// short-id collision picked the wrong transaction: fetch the full block instead).
    pub fn into_block(self) -> Result<Option<Block>, BlockError> {
        if self.slots.iter().any(|s| s.is_none()) {
            return Ok(None);
        }
        let (ids, txs): (Vec<[u8; 32]>, Vec<SignedTx>) = self
            .slots
            .into_iter()
            .flatten()
            .map(|(id, tx)| (id.0, tx))
            .unzip();
        if merkle::root(&ids) != self.compact.header.tx_root {
            return Err(BlockError::Malformed(
                "rebuilt transactions do not match the header's transaction root".into(),
            ));
        }
        Ok(Some(Block {
            header: self.compact.header,
            signature: self.compact.signature,
            txs,
        }))
    }
}
