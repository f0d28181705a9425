//! Blocks proposed for heights not final yet, kept on disk so that a restart loses none.
//!
//! The consensus engine's write-ahead log keeps the proposals, votes and value ids it saw; the
//! blocks behind the value ids are the application's to keep. A validator restarted in the
//! middle of a height needs them back: to propose again the very block it built for a round
//! (building another would put a second value of its own into that round, which splits the
//! others' votes and fills the engine's per-round bucket), to stream again a block it is
//! locked on, to tell the engine at each round what it had seen, and to commit a decided block
//! without waiting for value sync.
//!
//! This module owns that record: one entry per (height, block hash), written and fsynced
//! before the engine hears of the block, dropped once the height is final. It never judges a
//! block (a restarted node checks every block again) and never touches the network.

use crate::store::CF_UNDECIDED;
use doin_store::{Direction, Durability, KvStore, StoreError, Table, WriteBatch};
use doin_tx_core::{Block, BlockHash};
use doin_types::{Height, PublicKeyBytes};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

const UNDECIDED: Table<(Height, BlockHash), UndecidedBlock> =
    Table::new(CF_UNDECIDED, "undecided block");

/// A block proposed for a height that is not final yet, as kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UndecidedBlock {
    /// The round it was first proposed in, as far as this node knows.
    pub round: u32,
    /// The validator that proposed it then (this node's own key: the block it built for
    /// `round`, which it proposes again if asked to propose at that round again).
    pub proposer: PublicKeyBytes,
    pub block: Block,
}

/// A kept block with its key: (height, block hash).
pub type KeptBlock = ((Height, BlockHash), UndecidedBlock);

/// The undecided blocks on disk.
#[derive(Clone)]
pub struct UndecidedStore {
    kv: Arc<dyn KvStore>,
}

impl UndecidedStore {
    pub fn new(kv: Arc<dyn KvStore>) -> UndecidedStore {
        UndecidedStore { kv }
    }

    /// Keeps `block` (fsynced: the engine may write its value id to its log right after).
    pub fn keep(&self, hash: &BlockHash, record: &UndecidedBlock) -> Result<(), StoreError> {
        let mut batch = WriteBatch::new();
        UNDECIDED.put(&mut batch, &(record.block.header.height, *hash), record)?;
        self.kv.write(batch, Durability::Sync)
    }

    /// Every block kept for `height` or above, by height and hash.
    pub fn from_height(&self, height: Height) -> Result<Vec<KeptBlock>, StoreError> {
        UNDECIDED
            .iter(
                self.kv.as_ref(),
                Some(&(height, BlockHash::zero())),
                Direction::Forward,
            )?
            .collect()
    }

    /// Drops every block kept for a height below `height` (those heights are final). Losing
    /// this write to a crash only leaves entries the next call drops.
    pub fn drop_below(&self, height: Height) -> Result<(), StoreError> {
        let mut batch = WriteBatch::new();
        for entry in UNDECIDED.iter(self.kv.as_ref(), None, Direction::Forward)? {
            let ((h, hash), _) = entry?;
            if h >= height {
                break;
            }
            UNDECIDED.delete(&mut batch, &(h, hash));
        }
        if batch.is_empty() {
            return Ok(());
        }
        self.kv.write(batch, Durability::Buffered)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use doin_crypto::KeyPair;
    use doin_store::MemStore;
    use doin_tx_core::BlockHeader;
    use doin_types::{Amount, ChainId, Hash256, MainAnchor, Timestamp};

    fn record(key: &KeyPair, height: Height, time: u64) -> (BlockHash, UndecidedBlock) {
        let header = BlockHeader {
            chain_id: ChainId(Hash256([7; 32])),
            height,
            parent: Hash256([1; 32]),
            time: Timestamp(time),
            proposer: key.public(),
            state_root: Hash256([2; 32]),
            tx_root: Hash256([3; 32]),
            base_fee: Amount::from_base_units(1),
            weight_used: 0,
            tx_count: 0,
            main_anchor: MainAnchor::NONE,
            last_commit: None,
        };
        let hash = header.hash().unwrap();
        let block = Block {
            signature: key.sign(&hash),
            header,
            txs: Vec::new(),
        };
        let record = UndecidedBlock {
            round: 2,
            proposer: key.public(),
            block,
        };
        (hash, record)
    }

    #[test]
    fn blocks_come_back_from_a_height_on_and_final_heights_are_dropped() {
        let kv: Arc<dyn KvStore> = Arc::new(MemStore::new(&[CF_UNDECIDED]));
        let store = UndecidedStore::new(kv.clone());
        let key = KeyPair::generate();
        let kept: Vec<_> = [(4, 10), (5, 11), (5, 12), (6, 13)]
            .into_iter()
            .map(|(h, t)| record(&key, h, t))
            .collect();
        for (hash, r) in &kept {
            store.keep(hash, r).unwrap();
        }
        // What a restarted node reads back: exactly what was kept, from a height on.
        let again = UndecidedStore::new(kv);
        let from_5 = again.from_height(5).unwrap();
        assert_eq!(from_5.len(), 3);
        for ((height, hash), r) in &from_5 {
            let (_, original) = kept.iter().find(|(h, _)| h == hash).unwrap();
            assert_eq!((r, *height), (original, r.block.header.height));
        }
        // Heights 4 and 5 are final: only height 6 is left.
        again.drop_below(6).unwrap();
        let left = again.from_height(0).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].0, (6, kept[3].0));
        again.drop_below(6).unwrap();
        assert_eq!(again.from_height(0).unwrap().len(), 1);
    }
}
