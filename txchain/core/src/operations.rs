//! Account operations: every change of an account's balance or stakes, with its cause.
//!
//! The state transition emits one [`Operation`] per movement as it makes it (`apply_tx`,
//! `apply_effects`, `genesis`), in the order it makes them, and [`settle`] gives each the
//! balance and nonce the account has right after it. Summed from genesis, the credits minus
//! the debits of an account's operations are its balance at every height: that is what lets
//! an exchange reconcile its books against the chain (`docs/api.md`, "Account operations").
//!
//! This module owns the shapes and the settling arithmetic; it must not decide what a
//! transaction does (that stays in `apply`, `channel_tx` and `anchor`). Movements inside a
//! channel (HTLC claims and timeouts, a stale poster's forfeited reserve) change no balance
//! until the channel pays out, so they show in the payout's amount, not as operations.

use crate::channel::ChannelId;
use crate::error::BlockError;
use crate::stake::StakeRole;
use crate::state::{Account, StateView};
use crate::tx::TxId;
use doin_types::{Amount, Hash256, Height, PublicKeyBytes};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What moved. New kinds are appended (the variant index is part of the stored encoding).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OperationKind {
    /// An allocation (credit) or a stake (`stake_change`) of the genesis file.
    Genesis,
    /// The fee a sent transaction paid: `burned` plus `tip`. Every included transaction has
    /// one, first among its sender's operations, and it is the one that raises the nonce.
    Fee,
    /// A transaction's tip, credited to the block's proposer.
    Tip,
    TransferOut,
    TransferIn,
    /// Coins bonded to a stake of `role` (debited from the balance).
    Stake,
    /// Bonded coins of `role` started unbonding (no balance change).
    Unstake,
    /// Unbonded coins of `role` returned to the balance.
    Withdraw,
    /// Stake of `role` taken and burned: for a rejected optimae or a wrong vote (a main block
    /// decided it) or for signing two votes (a transaction reported it). No balance change.
    Slash,
    /// A deposit locked in a new channel (the opener's and the counterparty's).
    ChannelOpen,
    /// A channel's payout to one party (a cooperative close or a settlement).
    ChannelPayout,
    /// A reward a main block paid (its coinbase), credited when this chain anchored it.
    Coinbase,
    /// One output of a batch payment the account sent.
    BatchOut,
    /// One output of a batch payment paid to the account.
    BatchIn,
}

impl OperationKind {
    /// Stable name of the kind, as shown over REST.
    pub fn as_str(self) -> &'static str {
        match self {
            OperationKind::Genesis => "genesis",
            OperationKind::Fee => "fee",
            OperationKind::Tip => "tip",
            OperationKind::TransferOut => "transfer_out",
            OperationKind::TransferIn => "transfer_in",
            OperationKind::Stake => "stake",
            OperationKind::Unstake => "unstake",
            OperationKind::Withdraw => "withdraw",
            OperationKind::Slash => "slash",
            OperationKind::ChannelOpen => "channel_open",
            OperationKind::ChannelPayout => "channel_payout",
            OperationKind::Coinbase => "coinbase",
            OperationKind::BatchOut => "batch_out",
            OperationKind::BatchIn => "batch_in",
        }
    }

    /// Every kind, in encoding order.
    pub const ALL: [OperationKind; 14] = [
        OperationKind::Genesis,
        OperationKind::Fee,
        OperationKind::Tip,
        OperationKind::TransferOut,
        OperationKind::TransferIn,
        OperationKind::Stake,
        OperationKind::Unstake,
        OperationKind::Withdraw,
        OperationKind::Slash,
        OperationKind::ChannelOpen,
        OperationKind::ChannelPayout,
        OperationKind::Coinbase,
        OperationKind::BatchOut,
        OperationKind::BatchIn,
    ];
}

/// Why it moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OperationCause {
    /// The genesis file.
    Genesis,
    /// A transaction of the block.
    Tx(TxId),
    /// A main block this block anchored.
    MainBlock { height: Height, hash: Hash256 },
}

/// One movement of one account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    pub account: PublicKeyBytes,
    pub kind: OperationKind,
    pub cause: OperationCause,
    /// Added to the balance.
    pub credit: Amount,
    /// Taken from the balance.
    pub debit: Amount,
    /// For a fee: the part burned and the part paid to the proposer (they sum to `debit`).
    pub burned: Amount,
    pub tip: Amount,
    /// For stake movements (`Genesis` stakes, `Stake`, `Unstake`, `Withdraw`, `Slash`): the
    /// role and how much of that stake moved.
    pub role: Option<StakeRole>,
    pub stake_change: Amount,
    /// For channel movements: the channel.
    pub channel: Option<ChannelId>,
}

impl Operation {
    /// An operation with nothing moved yet; the constructors below fill in what moves.
    pub fn new(account: PublicKeyBytes, kind: OperationKind, cause: OperationCause) -> Operation {
        Operation {
            account,
            kind,
            cause,
            credit: Amount::ZERO,
            debit: Amount::ZERO,
            burned: Amount::ZERO,
            tip: Amount::ZERO,
            role: None,
            stake_change: Amount::ZERO,
            channel: None,
        }
    }

    pub fn credit(
        account: PublicKeyBytes,
        kind: OperationKind,
        cause: OperationCause,
        amount: Amount,
    ) -> Operation {
        Operation {
            credit: amount,
            ..Operation::new(account, kind, cause)
        }
    }

    pub fn debit(
        account: PublicKeyBytes,
        kind: OperationKind,
        cause: OperationCause,
        amount: Amount,
    ) -> Operation {
        Operation {
            debit: amount,
            ..Operation::new(account, kind, cause)
        }
    }

    /// The fee of a transaction sent by `sender`: `burned` plus `tip`.
    pub fn fee(
        sender: PublicKeyBytes,
        id: TxId,
        burned: Amount,
        tip: Amount,
    ) -> Result<Operation, doin_types::AmountError> {
        Ok(Operation {
            debit: burned.checked_add(tip)?,
            burned,
            tip,
            ..Operation::new(sender, OperationKind::Fee, OperationCause::Tx(id))
        })
    }

    /// A movement of `stake_change` in `account`'s `role` stake (no balance change: set
    /// `credit` or `debit` for the coins that enter or leave the balance with it).
    pub fn stake(
        account: PublicKeyBytes,
        kind: OperationKind,
        cause: OperationCause,
        role: StakeRole,
        stake_change: Amount,
    ) -> Operation {
        Operation {
            role: Some(role),
            stake_change,
            ..Operation::new(account, kind, cause)
        }
    }

    pub fn with_channel(self, channel: ChannelId) -> Operation {
        Operation {
            channel: Some(channel),
            ..self
        }
    }
}

/// An operation with the account's balance and nonce right after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettledOperation {
    pub op: Operation,
    pub balance_after: Amount,
    pub nonce_after: u64,
}

impl SettledOperation {
    /// The account's balance right before this operation.
    pub fn balance_before(&self) -> Result<Amount, BlockError> {
        self.balance_after
            .checked_sub(self.op.credit)
            .and_then(|b| b.checked_add(self.op.debit))
            .map_err(|_| BlockError::State("an operation's balance is out of range".into()))
    }

    /// The account's nonce right before this operation (a fee is what raises it).
    pub fn nonce_before(&self) -> u64 {
        match self.op.kind {
            OperationKind::Fee => self.nonce_after.saturating_sub(1),
            _ => self.nonce_after,
        }
    }
}

/// Gives each of a block's `ops` (in the order they happened) the balance and nonce its
/// account has right after it. `accounts` are the accounts the block wrote, as they are after
/// it (the block's diff); an account the operations name but the block did not write is read
/// from `view`, the state before the block. Fails when an account's operations do not lead
/// from a valid balance to the one written: the operations and the diff come from the same
/// transition, so that is a bug, never an input a peer could cause.
pub fn settle<V: StateView + ?Sized>(
    view: &V,
    accounts: &BTreeMap<PublicKeyBytes, Account>,
    ops: Vec<Operation>,
) -> Result<Vec<SettledOperation>, BlockError> {
    let bad =
        |key: &PublicKeyBytes, what: &str| BlockError::State(format!("operations of {key} {what}"));
    // Net movement per account, to find where each account started.
    let mut moved: BTreeMap<PublicKeyBytes, (u128, u128, u64)> = BTreeMap::new();
    for op in &ops {
        let m = moved.entry(op.account).or_default();
        m.0 += u128::from(op.credit.base_units());
        m.1 += u128::from(op.debit.base_units());
        if op.kind == OperationKind::Fee {
            m.2 =
                m.2.checked_add(1)
                    .ok_or_else(|| bad(&op.account, "overflow"))?;
        }
    }
    let mut running: BTreeMap<PublicKeyBytes, (u128, u64)> = BTreeMap::new();
    for (key, (credits, debits, fees)) in &moved {
        let start = match accounts.get(key) {
            Some(after) => {
                let before = (u128::from(after.balance.base_units()) + debits)
                    .checked_sub(*credits)
                    .ok_or_else(|| bad(key, "credit more than the balance holds"))?;
                let nonce = after
                    .nonce
                    .checked_sub(*fees)
                    .ok_or_else(|| bad(key, "pay more fees than the nonce counts"))?;
                (before, nonce)
            }
            None => {
                if credits != debits || *fees != 0 {
                    return Err(bad(key, "move a balance the block did not write"));
                }
                let a = view
                    .account(key)
                    .map_err(BlockError::View)?
                    .unwrap_or_default();
                (u128::from(a.balance.base_units()), a.nonce)
            }
        };
        running.insert(*key, start);
    }
    let mut settled = Vec::with_capacity(ops.len());
    for op in ops {
        let (balance, nonce) = running
            .get_mut(&op.account)
            .ok_or_else(|| bad(&op.account, "lost their account"))?;
        *balance = (*balance + u128::from(op.credit.base_units()))
            .checked_sub(u128::from(op.debit.base_units()))
            .ok_or_else(|| bad(&op.account, "overdraw the balance"))?;
        if op.kind == OperationKind::Fee {
            *nonce = nonce
                .checked_add(1)
                .ok_or_else(|| bad(&op.account, "overflow the nonce"))?;
        }
        let balance_after = u64::try_from(*balance)
            .map(Amount::from_base_units)
            .map_err(|_| bad(&op.account, "overflow the balance"))?;
        settled.push(SettledOperation {
            op,
            balance_after,
            nonce_after: *nonce,
        });
    }
    Ok(settled)
}
