//! The main chain's reorganisations as this node's event stream announced them, kept so that a
//! client resuming after a disconnect or a restart gets them again with the same ids.
//!
//! Owns the column family `tx_main_reorgs`: event height ‖ sequence → the event's JSON. An
//! entry is written before the event is published, and dropped with the body of its height by
//! `history`. What a reorganisation is and when it happens is the main chain's business; this
//! module only stores what the node announced.

use crate::store::{ChainStore, StoreResult, CF_MAIN_REORGS};
use doin_store::{Direction, Durability, Table, WriteBatch};
use doin_types::Height;

const MAIN_REORGS: Table<(Height, u64), String> = Table::new(CF_MAIN_REORGS, "main_reorg event");

impl ChainStore {
    /// Keeps the `main_reorg` event `data` under its id, durably, before it is published.
    pub fn put_main_reorg(&self, height: Height, seq: u64, data: &str) -> StoreResult<()> {
        let mut batch = WriteBatch::new();
        MAIN_REORGS.put(&mut batch, &(height, seq), &data.to_string())?;
        self.kv().write(batch, Durability::Sync)
    }

    /// The `main_reorg` events announced at `height` (after its block), by sequence.
    pub fn main_reorgs_at(&self, height: Height) -> StoreResult<Vec<(u64, String)>> {
        MAIN_REORGS
            .with_prefix(self.kv().as_ref(), &height)?
            .map(|item| item.map(|((_, seq), data)| (seq, data)))
            .collect()
    }

    /// The highest sequence of a `main_reorg` event at `height`, so that events announced after
    /// a restart never reuse its id.
    pub fn last_main_reorg_seq(&self, height: Height) -> StoreResult<Option<u64>> {
        let after = (height, u64::MAX);
        match MAIN_REORGS
            .iter(self.kv().as_ref(), Some(&after), Direction::Reverse)?
            .next()
        {
            Some(item) => {
                let ((h, seq), _) = item?;
                Ok((h == height).then_some(seq))
            }
            None => Ok(None),
        }
    }

    /// Adds the deletion of the events announced at `height` to `batch`.
    pub(crate) fn drop_main_reorgs(
        &self,
        batch: &mut WriteBatch,
        height: Height,
    ) -> StoreResult<()> {
        for item in MAIN_REORGS.with_prefix(self.kv().as_ref(), &height)? {
            let (key, _) = item?;
            MAIN_REORGS.delete(batch, &key);
        }
        Ok(())
    }
}
