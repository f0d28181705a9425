//! Blocks proposed for heights not final yet: in memory for the consensus host, and on disk so
//! that a restart loses none.
//!
//! The consensus engine's write-ahead log keeps the proposals, votes and value ids it saw; the
//! blocks behind the value ids are the application's to keep. A validator restarted in the
//! middle of a height needs them back: to propose again the very block it built for a round
//! (building another would put a second value of its own into that round, which splits the
//! others' votes and fills the engine's per-round bucket), to stream again a block it is
//! locked on, to tell the engine at each round what it had seen, and to commit a decided block
//! without waiting for value sync.
//!
//! This module owns that record: one entry per (height, block hash) with its first round,
//! proposer and (in memory) verdict, written and fsynced before the engine hears of the block,
//! dropped once the height is final. It never judges a block (the host does; a restarted node
//! checks every block again) and never touches the network.

use super::context::ValidatorAddress;
use crate::chain::ChainError;
use crate::store::CF_UNDECIDED;
use arc_malachitebft_app_channel::app::types::core::{Round, Validity};
use doin_store::{Direction, Durability, KvStore, StoreError, Table, WriteBatch};
use doin_tx_core::{Block, BlockHash};
use doin_types::{Height, PublicKeyBytes};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Blocks kept for heights above the tip (a node a little behind its peers sees a few).
const MAX_KEPT: usize = 64;

/// A block seen for an undecided height, with what the engine needs to know about it.
pub struct Seen {
    pub round: Round,
    pub proposer: ValidatorAddress,
    pub block: Arc<Block>,
    /// `None` until the block was checked on the tip it extends.
    pub validity: Option<Validity>,
}

/// The blocks of undecided heights, by height and hash, in memory and on disk.
pub struct UndecidedBlocks {
    seen: BTreeMap<(Height, BlockHash), Seen>,
    store: UndecidedStore,
}

fn task_failed(e: tokio::task::JoinError) -> ChainError {
    ChainError::Inconsistent(format!("store task failed: {e}"))
}

impl UndecidedBlocks {
    pub fn new(kv: Arc<dyn KvStore>) -> UndecidedBlocks {
        UndecidedBlocks {
            seen: BTreeMap::new(),
            store: UndecidedStore::new(kv),
        }
    }

    pub fn get(&self, height: Height, hash: &BlockHash) -> Option<&Seen> {
        self.seen.get(&(height, *hash))
    }

    pub fn get_mut(&mut self, height: Height, hash: &BlockHash) -> Option<&mut Seen> {
        self.seen.get_mut(&(height, *hash))
    }

    /// The blocks of `height`, by hash.
    pub fn at_height(&self, height: Height) -> impl Iterator<Item = (&BlockHash, &Seen)> {
        self.seen
            .range((height, BlockHash::zero())..)
            .take_while(move |((h, _), _)| *h == height)
            .map(|((_, hash), s)| (hash, s))
    }

    /// The block `proposer` built for `round` of `height`, if one is kept.
    pub fn built_by(
        &self,
        height: Height,
        round: Round,
        proposer: ValidatorAddress,
    ) -> Option<(BlockHash, Arc<Block>)> {
        self.at_height(height)
            .find(|(_, s)| s.proposer == proposer && s.round == round)
            .map(|(hash, s)| (*hash, s.block.clone()))
    }

    /// Keeps a block proposed for an undecided height, on disk (fsynced) before it returns:
    /// the caller tells the engine next, and the engine's log will name it. A block already
    /// kept stays as it was (its first round and proposer); one refused for room is not
    /// written either.
    pub async fn keep(
        &mut self,
        hash: BlockHash,
        round: Round,
        proposer: ValidatorAddress,
        block: Arc<Block>,
    ) -> Result<(), ChainError> {
        let height = block.header.height;
        if !self.remember(height, hash, round, proposer, block.clone()) {
            return Ok(());
        }
        let record = UndecidedBlock {
            round: round.as_u32().unwrap_or(0),
            proposer: proposer.0,
            block: Block::clone(&block),
        };
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.keep(&hash, &record))
            .await
            .map_err(task_failed)??;
        Ok(())
    }

    /// Adds a block in memory; whether it was new there.
    fn remember(
        &mut self,
        height: Height,
        hash: BlockHash,
        round: Round,
        proposer: ValidatorAddress,
        block: Arc<Block>,
    ) -> bool {
        if self.seen.contains_key(&(height, hash)) {
            return false;
        }
        if self.seen.len() >= MAX_KEPT {
            // Drop the highest height: the least likely to be needed soon.
            match self.seen.keys().next_back().copied() {
                Some(last) if last.0 > height => {
                    self.seen.remove(&last);
                }
                _ => return false,
            }
        }
        let seen = Seen {
            round,
            proposer,
            block,
            validity: None,
        };
        self.seen.insert((height, hash), seen);
        true
    }

    /// Reads back what was kept for `next` (the engine's first height) and above, after a
    /// restart, and drops what is kept for heights final meanwhile. Every block comes back
    /// unchecked. Returns how many came back.
    pub async fn restore(&mut self, next: Height) -> Result<usize, ChainError> {
        let store = self.store.clone();
        let kept = tokio::task::spawn_blocking(move || {
            store.drop_below(next)?;
            store.kept_from(next)
        })
        .await
        .map_err(task_failed)??;
        let mut restored = 0;
        for ((height, hash), r) in kept {
            let (round, proposer) = (Round::new(r.round), ValidatorAddress(r.proposer));
            if self.remember(height, hash, round, proposer, Arc::new(r.block)) {
                restored += 1;
            }
        }
        Ok(restored)
    }

    /// Heights below `next` are final: drops their blocks.
    pub async fn final_below(&mut self, next: Height) -> Result<(), ChainError> {
        self.seen = self.seen.split_off(&(next, BlockHash::zero()));
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.drop_below(next))
            .await
            .map_err(task_failed)??;
        Ok(())
    }
}

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
struct UndecidedStore {
    kv: Arc<dyn KvStore>,
}

impl UndecidedStore {
    fn new(kv: Arc<dyn KvStore>) -> UndecidedStore {
        UndecidedStore { kv }
    }

    /// Keeps `block` (fsynced: the engine may write its value id to its log right after).
    fn keep(&self, hash: &BlockHash, record: &UndecidedBlock) -> Result<(), StoreError> {
        let mut batch = WriteBatch::new();
        UNDECIDED.put(&mut batch, &(record.block.header.height, *hash), record)?;
        self.kv.write(batch, Durability::Sync)
    }

    /// Every block kept for `height` or above, by height and hash.
    fn kept_from(&self, height: Height) -> Result<Vec<KeptBlock>, StoreError> {
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
    fn drop_below(&self, height: Height) -> Result<(), StoreError> {
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
        let from_5 = again.kept_from(5).unwrap();
        assert_eq!(from_5.len(), 3);
        for ((height, hash), r) in &from_5 {
            let (_, original) = kept.iter().find(|(h, _)| h == hash).unwrap();
            assert_eq!((r, *height), (original, r.block.header.height));
        }
        // Heights 4 and 5 are final: only height 6 is left.
        again.drop_below(6).unwrap();
        let left = again.kept_from(0).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].0, (6, kept[3].0));
        again.drop_below(6).unwrap();
        assert_eq!(again.kept_from(0).unwrap().len(), 1);
    }
}
