//! The account operations this node keeps: every balance and stake movement of every block
//! (`doin_tx_core::operations`), indexed by account, and an account's balance at a past
//! height read from them.
//!
//! Owns two column families, written in each block's atomic batch and dropped with the
//! block's body by `history` (so they cover the same heights as the bodies):
//! - `tx_account_ops`: key ‖ height → the account's operations in that block, each with its
//!   place among the block's operations (one entry per account and block: a proposer's
//!   thousands of tips in one block are one write, not thousands), stored compactly
//!   (`StoredOp`: no key, a transaction named by its position in the block, the fee, stake
//!   and channel parts only where they apply) because every transfer writes four of them;
//! - `tx_ops_by_height`: height → the keys with operations in that block (what pruning a
//!   height must delete).
//!
//! A store written before operations existed records from the height in `ops_from` on. This
//! module must not change the state: balances here are read back from what the state
//! transition settled, never recomputed.

use crate::store::{ChainStore, StoreResult, BODIES, CF_ACCOUNT_OPS, CF_META, CF_OPS_BY_HEIGHT};
use doin_crypto::tagged_hash;
use doin_store::{Direction, StoreError, Table, WriteBatch};
use doin_tx_core::channel::ChannelId;
use doin_tx_core::tx::TAG_TX_ID;
use doin_tx_core::{
    Account, Operation, OperationCause, OperationKind, SettledOperation, StakeRole, Tx, TxId,
};
use doin_types::{Amount, Hash256, Height, PublicKeyBytes};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

pub(crate) const ACCOUNT_OPS: Table<(PublicKeyBytes, Height), Vec<StoredOp>> =
    Table::new(CF_ACCOUNT_OPS, "account operations");
pub(crate) const OPS_BY_HEIGHT: Table<Height, Vec<PublicKeyBytes>> =
    Table::new(CF_OPS_BY_HEIGHT, "accounts with operations");
/// Lowest height whose operations this store recorded when it was written before operations
/// existed (absent: from genesis, or from a snapshot's height on).
const OPS_FROM: Table<Vec<u8>, Height> = Table::new(CF_META, "operations floor");
pub(crate) const META_OPS_FROM: &[u8] = b"ops_from";

/// An operation as stored under its account and block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredOp {
    /// Position among the block's operations.
    seq: u32,
    kind: OperationKind,
    cause: StoredCause,
    credit: Amount,
    debit: Amount,
    balance_after: Amount,
    nonce_after: u64,
    /// Present for fees, stake and channel movements only.
    parts: Option<Box<StoredParts>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum StoredCause {
    Genesis,
    /// The transaction at this position of the block.
    Tx(u32),
    MainBlock {
        height: Height,
        hash: Hash256,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct StoredParts {
    burned: Amount,
    tip: Amount,
    role: Option<StakeRole>,
    stake_change: Amount,
    channel: Option<ChannelId>,
}

impl StoredOp {
    /// `op` at `seq` of block `height`, whose transactions' ids are `positions`.
    fn new(
        seq: u32,
        op: &SettledOperation,
        positions: &HashMap<TxId, u32>,
        height: Height,
    ) -> StoreResult<StoredOp> {
        let o = &op.op;
        let cause = match o.cause {
            OperationCause::Genesis => StoredCause::Genesis,
            OperationCause::MainBlock { height, hash } => StoredCause::MainBlock { height, hash },
            OperationCause::Tx(id) => StoredCause::Tx(*positions.get(&id).ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "block {height}: an operation of a transaction it lacks"
                ))
            })?),
        };
        let plain = o.burned.is_zero()
            && o.tip.is_zero()
            && o.role.is_none()
            && o.stake_change.is_zero()
            && o.channel.is_none();
        Ok(StoredOp {
            seq,
            kind: o.kind,
            cause,
            credit: o.credit,
            debit: o.debit,
            balance_after: op.balance_after,
            nonce_after: op.nonce_after,
            parts: (!plain).then(|| {
                Box::new(StoredParts {
                    burned: o.burned,
                    tip: o.tip,
                    role: o.role,
                    stake_change: o.stake_change,
                    channel: o.channel,
                })
            }),
        })
    }
}

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
    /// Adds the operations of block `height`, whose transactions are `txs`, to `batch`.
    pub(crate) fn operation_writes(
        &self,
        batch: &mut WriteBatch,
        height: Height,
        txs: &[Tx],
        ops: &[SettledOperation],
    ) -> StoreResult<()> {
        let too_many = || StoreError::Corrupt(format!("block {height}: too many operations"));
        let mut positions = HashMap::with_capacity(txs.len());
        for (i, tx) in txs.iter().enumerate() {
            positions.insert(tx.id(), u32::try_from(i).map_err(|_| too_many())?);
        }
        let mut by_account: BTreeMap<PublicKeyBytes, Vec<StoredOp>> = BTreeMap::new();
        for (i, op) in ops.iter().enumerate() {
            let seq = u32::try_from(i).map_err(|_| too_many())?;
            by_account
                .entry(op.op.account)
                .or_default()
                .push(StoredOp::new(seq, op, &positions, height)?);
        }
        if by_account.is_empty() {
            return Ok(());
        }
        let accounts: Vec<PublicKeyBytes> = by_account.keys().copied().collect();
        for (account, list) in by_account {
            ACCOUNT_OPS.put(batch, &(account, height), &list)?;
        }
        OPS_BY_HEIGHT.put(batch, &height, &accounts)
    }

    /// Adds the deletion of block `height`'s operations to `batch`.
    pub(crate) fn drop_operations(
        &self,
        batch: &mut WriteBatch,
        height: Height,
    ) -> StoreResult<()> {
        if let Some(accounts) = OPS_BY_HEIGHT.get(self.kv().as_ref(), &height)? {
            for account in accounts {
                ACCOUNT_OPS.delete(batch, &(account, height));
            }
            OPS_BY_HEIGHT.delete(batch, &height);
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
            (OpOrder::NewestFirst, None) => ((*key, Height::MAX), Direction::Reverse),
            (OpOrder::NewestFirst, Some(c)) => ((*key, c.height), Direction::Reverse),
            (OpOrder::OldestFirst, None) => ((*key, 0), Direction::Forward),
            (OpOrder::OldestFirst, Some(c)) => ((*key, c.height), Direction::Forward),
        };
        let after_cursor = |place: &OpPlace| match (order, cursor) {
            (_, None) => true,
            (OpOrder::NewestFirst, Some(c)) => *place < c,
            (OpOrder::OldestFirst, Some(c)) => *place > c,
        };
        let mut out = Vec::new();
        for item in ACCOUNT_OPS.iter(self.kv().as_ref(), Some(&start), direction)? {
            let ((who, height), mut list) = item?;
            if who != *key {
                break;
            }
            list.retain(|op| {
                after_cursor(&OpPlace {
                    height,
                    seq: op.seq,
                })
            });
            if order == OpOrder::NewestFirst {
                list.reverse();
            }
            for stored in list {
                if out.len() >= limit {
                    return Ok(out);
                }
                out.push(self.settled(key, height, stored)?);
            }
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
            .get(self.kv().as_ref(), &(*key, height))?
            .unwrap_or_default()
            .into_iter()
            .map(|stored| self.settled(key, height, stored))
            .collect()
    }

    /// A stored operation of `key` in block `height` as the state transition settled it (the
    /// transaction's id read back from the block's body).
    fn settled(
        &self,
        key: &PublicKeyBytes,
        height: Height,
        stored: StoredOp,
    ) -> StoreResult<(OpPlace, SettledOperation)> {
        let cause = match stored.cause {
            StoredCause::Genesis => OperationCause::Genesis,
            StoredCause::MainBlock { height, hash } => OperationCause::MainBlock { height, hash },
            StoredCause::Tx(index) => {
                let bytes = BODIES
                    .get(self.kv().as_ref(), &(height, index))?
                    .ok_or_else(|| {
                        StoreError::Corrupt(format!(
                        "operation of transaction {index} of block {height}, which is not stored"
                    ))
                    })?;
                OperationCause::Tx(tagged_hash(TAG_TX_ID, &bytes))
            }
        };
        let parts = stored.parts.map(|p| *p);
        let mut op = Operation::new(*key, stored.kind, cause);
        op.credit = stored.credit;
        op.debit = stored.debit;
        if let Some(p) = parts {
            op.burned = p.burned;
            op.tip = p.tip;
            op.role = p.role;
            op.stake_change = p.stake_change;
            op.channel = p.channel;
        }
        Ok((
            OpPlace {
                height,
                seq: stored.seq,
            },
            SettledOperation {
                op,
                balance_after: stored.balance_after,
                nonce_after: stored.nonce_after,
            },
        ))
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
        if let Some(item) = ACCOUNT_OPS
            .iter(kv, Some(&(*key, height)), Direction::Reverse)?
            .next()
        {
            let ((who, _), list) = item?;
            if let (true, Some(op)) = (who == *key, list.last()) {
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
            .iter(kv, Some(&(*key, above)), Direction::Forward)?
            .next()
        {
            let ((who, height), mut list) = item?;
            if who == *key && !list.is_empty() {
                let (_, op) = self.settled(key, height, list.swap_remove(0))?;
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
}
