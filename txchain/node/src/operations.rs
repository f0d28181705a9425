//! The account operations this node keeps: every balance and stake movement of every block
//! (`doin_tx_core::operations`), indexed by account, and an account's balance at a past
//! height read from them.
//!
//! Owns two column families, written in each block's atomic batch and dropped with the
//! block's body by `history` (so they cover the same heights as the bodies):
//! - `tx_account_ops`: key ‖ height ‖ place in the block → the settled operation;
//! - `tx_ops_by_height`: height ‖ place → key (what pruning a height must delete).
//!
//! A store written before operations existed records from the height in `ops_from` on. This
//! module must not change the state: balances here are read back from what the state
//! transition settled, never recomputed.

use crate::store::{ChainStore, StoreResult, CF_META};
use doin_store::{Direction, StoreError, Table, WriteBatch};
use doin_tx_core::{Account, SettledOperation};
use doin_types::{Height, PublicKeyBytes};

pub(crate) const ACCOUNT_OPS: Table<(PublicKeyBytes, Height, u32), SettledOperation> =
    Table::new("tx_account_ops", "account operation");
pub(crate) const OPS_BY_HEIGHT: Table<(Height, u32), PublicKeyBytes> =
    Table::new("tx_ops_by_height", "operation by height");
/// Lowest height whose operations this store recorded when it was written before operations
/// existed (absent: from genesis, or from a snapshot's height on).
const OPS_FROM: Table<Vec<u8>, Height> = Table::new(CF_META, "operations floor");
pub(crate) const META_OPS_FROM: &[u8] = b"ops_from";

/// An operation's place: its block and its position among the block's operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct OpPlace {
    pub height: Height,
    pub seq: u32,
}

impl OpPlace {
    /// As a list cursor: `height.seq`.
    pub fn cursor(&self) -> String {
        format!("{}.{}", self.height, self.seq)
    }

    /// The place a cursor names; `None` when it is not one.
    pub fn parse(cursor: &str) -> Option<OpPlace> {
        let (h, s) = cursor.split_once('.')?;
        let all_digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(h) || !all_digits(s) {
            return None;
        }
        Some(OpPlace {
            height: h.parse().ok()?,
            seq: s.parse().ok()?,
        })
    }
}

/// Which way a page of operations runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpOrder {
    /// Newest first; a cursor continues with older operations.
    NewestFirst,
    /// Oldest first; a cursor continues with newer ones (how a ledger follows an account).
    OldestFirst,
}

impl ChainStore {
    /// Adds a block's operations to `batch`.
    pub(crate) fn operation_writes(
        &self,
        batch: &mut WriteBatch,
        height: Height,
        ops: &[SettledOperation],
    ) -> StoreResult<()> {
        for (i, op) in ops.iter().enumerate() {
            let seq = u32::try_from(i)
                .map_err(|_| StoreError::Corrupt(format!("block {height}: too many operations")))?;
            ACCOUNT_OPS.put(batch, &(op.op.account, height, seq), op)?;
            OPS_BY_HEIGHT.put(batch, &(height, seq), &op.op.account)?;
        }
        Ok(())
    }

    /// Adds the deletion of block `height`'s operations to `batch`.
    pub(crate) fn drop_operations(
        &self,
        batch: &mut WriteBatch,
        height: Height,
    ) -> StoreResult<()> {
        for item in OPS_BY_HEIGHT.with_prefix(self.kv().as_ref(), &height)? {
            let ((h, seq), account) = item?;
            ACCOUNT_OPS.delete(batch, &(account, h, seq));
            OPS_BY_HEIGHT.delete(batch, &(h, seq));
        }
        Ok(())
    }

    /// Records that operations exist only from `height` on (a store upgraded at that tip).
    fn set_operations_floor(&self, batch: &mut WriteBatch, height: Height) -> StoreResult<()> {
        OPS_FROM.put(batch, &META_OPS_FROM.to_vec(), &height)
    }

    /// Upgrades a version 5 store (written before operations existed): operations are
    /// recorded from the block after its tip on.
    pub(crate) fn upgrade_from_5(&self) -> StoreResult<()> {
        let tip = self
            .tip_height()?
            .ok_or_else(|| StoreError::Corrupt("no tip recorded".into()))?;
        let mut batch = WriteBatch::new();
        self.set_operations_floor(&mut batch, tip.saturating_add(1))?;
        crate::store::SCHEMA.put(
            &mut batch,
            &crate::store::META_SCHEMA.to_vec(),
            &crate::store::SCHEMA_VERSION,
        )?;
        self.kv().write(batch, doin_store::Durability::Sync)?;
        tracing::info!(
            from = tip.saturating_add(1),
            "upgraded the transfer chain's store to layout 6: account operations are kept from the next block on"
        );
        Ok(())
    }

    /// Lowest height whose operations this node holds: where its bodies start, or later for a
    /// store written before operations existed.
    pub fn operations_from(&self) -> StoreResult<Height> {
        let recorded = OPS_FROM
            .get(self.kv().as_ref(), &META_OPS_FROM.to_vec())?
            .unwrap_or(0);
        Ok(recorded.max(self.kept().bodies_from))
    }

    /// Up to `limit` operations of `key` in `order`, after `cursor` (exclusive) in that order.
    pub fn account_operations(
        &self,
        key: &PublicKeyBytes,
        cursor: Option<OpPlace>,
        order: OpOrder,
        limit: usize,
    ) -> StoreResult<Vec<(OpPlace, SettledOperation)>> {
        let (start, direction) = match (order, cursor) {
            (OpOrder::NewestFirst, None) => ((*key, Height::MAX, u32::MAX), Direction::Reverse),
            (OpOrder::NewestFirst, Some(c)) => match step_back(c) {
                Some(p) => ((*key, p.height, p.seq), Direction::Reverse),
                None => return Ok(Vec::new()),
            },
            (OpOrder::OldestFirst, None) => ((*key, 0, 0), Direction::Forward),
            (OpOrder::OldestFirst, Some(c)) => match step_forward(c) {
                Some(p) => ((*key, p.height, p.seq), Direction::Forward),
                None => return Ok(Vec::new()),
            },
        };
        let mut out = Vec::new();
        for item in ACCOUNT_OPS.iter(self.kv().as_ref(), Some(&start), direction)? {
            let ((who, height, seq), op) = item?;
            if who != *key || out.len() >= limit {
                break;
            }
            out.push((OpPlace { height, seq }, op));
        }
        Ok(out)
    }

    /// `key`'s operations in block `height`, in order.
    pub fn account_operations_at(
        &self,
        key: &PublicKeyBytes,
        height: Height,
    ) -> StoreResult<Vec<(OpPlace, SettledOperation)>> {
        ACCOUNT_OPS
            .with_prefix(self.kv().as_ref(), &(*key, height))?
            .map(|item| item.map(|((_, height, seq), op)| (OpPlace { height, seq }, op)))
            .collect()
    }

    /// `key`'s account as it was after block `height`, from the operations; `current` is the
    /// account now, read before this call (a block committed meanwhile only adds operations
    /// above `height`, which give the same answer). The caller checks that `height` is at or
    /// above `operations_from() - 1` and at or below the tip.
    pub fn account_at(
        &self,
        key: &PublicKeyBytes,
        height: Height,
        current: Account,
    ) -> StoreResult<Account> {
        let kv = self.kv().as_ref();
        let at_or_below = (*key, height, u32::MAX);
        if let Some(item) = ACCOUNT_OPS
            .iter(kv, Some(&at_or_below), Direction::Reverse)?
            .next()
        {
            let ((who, _, _), op) = item?;
            if who == *key {
                return Ok(Account {
                    balance: op.balance_after,
                    nonce: op.nonce_after,
                });
            }
        }
        let Some(above) = height.checked_add(1) else {
            return Ok(current);
        };
        if let Some(item) = ACCOUNT_OPS
            .iter(kv, Some(&(*key, above, 0)), Direction::Forward)?
            .next()
        {
            let ((who, _, _), op) = item?;
            if who == *key {
                let balance = op
                    .balance_before()
                    .map_err(|e| StoreError::Corrupt(format!("account operation: {e}")))?;
                return Ok(Account {
                    balance,
                    nonce: op.nonce_before(),
                });
            }
        }
        Ok(current)
    }
}

/// The place right before `p` in key order.
fn step_back(p: OpPlace) -> Option<OpPlace> {
    if p.seq > 0 {
        Some(OpPlace {
            height: p.height,
            seq: p.seq - 1,
        })
    } else {
        p.height.checked_sub(1).map(|height| OpPlace {
            height,
            seq: u32::MAX,
        })
    }
}

/// The place right after `p` in key order.
fn step_forward(p: OpPlace) -> Option<OpPlace> {
    match p.seq.checked_add(1) {
        Some(seq) => Some(OpPlace {
            height: p.height,
            seq,
        }),
        None => p
            .height
            .checked_add(1)
            .map(|height| OpPlace { height, seq: 0 }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_anything_else() {
        let p = OpPlace { height: 12, seq: 3 };
        assert_eq!(OpPlace::parse(&p.cursor()), Some(p));
        for bad in [
            "",
            "12",
            "12.",
            ".3",
            "12.3.4",
            "-1.2",
            "+1.2",
            "a.b",
            "99999999999999999999.1",
        ] {
            assert_eq!(OpPlace::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn steps_cross_block_boundaries_and_stop_at_the_ends() {
        let p = |height, seq| OpPlace { height, seq };
        assert_eq!(step_back(p(5, 0)), Some(p(4, u32::MAX)));
        assert_eq!(step_back(p(0, 0)), None);
        assert_eq!(step_forward(p(5, u32::MAX)), Some(p(6, 0)));
        assert_eq!(step_forward(p(u64::MAX, u32::MAX)), None);
    }
}
