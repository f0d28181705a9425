//! Transfer → main anchoring (docs/anchoring.md): every header names a main block (`main_anchor`),
//! monotonically; when the anchor moves forward, the effects of every newly anchored main block
//! (coinbase credits, slashes of stakes) are applied to this chain in main-chain order,
//! exactly once.
//!
//! Exactly once follows from the state: the anchor applied so far is part of the authenticated
//! chain totals, and effects are applied only for main heights above it. This module owns the
//! rules; which main block a proposer anchors, and where main blocks come from, is the
//! caller's (through the `MainView` port).

use crate::error::BlockError;
use crate::operations::{Operation, OperationCause, OperationKind};
use crate::stake::{slash, Stake, StakeRole, StakingParams};
use crate::state::{Account, Overlay, StateView};
use doin_types::{
    Amount, Credit, Hash256, Height, MainAnchor, MainEffects, PortError, Slash, SlashReason,
};

/// Most main blocks one transfer block may newly anchor (bounds a block's extra work; a
/// transfer chain that fell behind catches up over several blocks).
pub const MAX_ANCHOR_STEP: u64 = 64;

/// What the transfer chain needs from the main chain: the port the node implements.
pub trait MainView {
    /// The effects of the main block at `height` on this node's best main chain; `None` when
    /// the node does not have that block (yet).
    fn effects(&self, height: Height) -> Result<Option<MainEffects>, PortError>;

    /// The main block a proposer should anchor now (at least one block deep on its best main
    /// chain), or `None` when there is none.
    fn anchor_candidate(&self) -> Result<Option<MainAnchor>, PortError>;

    /// The first main block (on this node's best main chain) whose transfer checkpoint covers
    /// transfer height `tx_height`, or `None` when no main block checkpoints it yet.
    fn checkpointing_block(&self, tx_height: Height) -> Result<Option<MainAnchor>, PortError>;

    /// The transfer block hash a main block's checkpoint names at exactly `tx_height`, if any:
    /// a block at that height with another hash contradicts the main chain.
    fn checkpointed_hash(&self, _tx_height: Height) -> Result<Option<Hash256>, PortError> {
        Ok(None)
    }

    /// Holds the main chain's best chain still until the returned value is dropped: a
    /// transfer block reads the main blocks it anchors and is committed under it, so the main
    /// chain cannot replace a block between the two. (A view without reorganisations has
    /// nothing to hold.)
    fn hold(&self) -> Result<AnchorHold, PortError> {
        Ok(Box::new(()))
    }
}

/// Keeps the main chain's best chain from changing while alive (see [`MainView::hold`]).
pub type AnchorHold = Box<dyn std::any::Any>;

/// No main chain: nothing to anchor, and a block that moves its anchor cannot be checked.
pub struct NoMainChain;

impl MainView for NoMainChain {
    fn effects(&self, _height: Height) -> Result<Option<MainEffects>, PortError> {
        Ok(None)
    }

    fn anchor_candidate(&self) -> Result<Option<MainAnchor>, PortError> {
        Ok(None)
    }

    fn checkpointing_block(&self, _tx_height: Height) -> Result<Option<MainAnchor>, PortError> {
        Ok(None)
    }
}

/// Refuses a block that contradicts a main-chain checkpoint: another block at a height a main
/// block has checkpointed (the transfer chain can never be rewritten below a checkpoint).
pub fn check_not_contradicting<M: MainView + ?Sized>(
    main: &M,
    height: Height,
    hash: &Hash256,
) -> Result<(), BlockError> {
    match main.checkpointed_hash(height).map_err(BlockError::View)? {
        Some(named) if named != *hash => Err(BlockError::ContradictsCheckpoint { height }),
        _ => Ok(()),
    }
}

/// Checks that `next` may follow `parent` and returns the effects it newly anchors, in order.
pub fn newly_anchored<M: MainView + ?Sized>(
    main: &M,
    parent: &MainAnchor,
    next: &MainAnchor,
) -> Result<Vec<MainEffects>, BlockError> {
    if next.height < parent.height {
        return Err(BlockError::AnchorBackwards {
            parent: parent.height,
            got: next.height,
        });
    }
    if next.height == parent.height {
        if next.hash != parent.hash {
            return Err(BlockError::AnchorChanged {
                height: next.height,
            });
        }
        return Ok(Vec::new());
    }
    let step = next.height - parent.height;
    if step > MAX_ANCHOR_STEP {
        return Err(BlockError::AnchorStepTooLarge {
            step,
            max: MAX_ANCHOR_STEP,
        });
    }
    let mut out = Vec::with_capacity(usize::try_from(step).unwrap_or(0));
    // The parent's anchor hash links the first new block, except before anything was
    // anchored (the transfer genesis names no main block).
    let mut previous = (parent.height > 0).then_some(parent.hash);
    for height in parent.height + 1..=next.height {
        let effects = main
            .effects(height)
            .map_err(BlockError::View)?
            .ok_or(BlockError::UnknownMainBlock { height })?;
        if effects.height != height {
            return Err(BlockError::State(format!(
                "main view answered height {} for {height}",
                effects.height
            )));
        }
        if previous.is_some_and(|p| p != effects.parent) {
            return Err(BlockError::MainChainBroken { height });
        }
        previous = Some(effects.hash);
        out.push(effects);
    }
    if previous != Some(next.hash) {
        return Err(BlockError::AnchorMismatch {
            height: next.height,
        });
    }
    Ok(out)
}

/// What applying anchored effects did to the totals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EffectTotals {
    /// Credited to balances (minted by the main chain).
    pub credited: Amount,
    /// Taken from stakes and burned.
    pub slashed: Amount,
}

/// Applies `effects` to `overlay` in order: credits to balances, then slashes of stakes
/// (a slash of a key without that stake does nothing). Each movement is appended to
/// `operations`.
pub fn apply_effects<V: StateView + ?Sized>(
    staking: &StakingParams,
    overlay: &mut Overlay<'_, V>,
    effects: &[MainEffects],
    operations: &mut Vec<Operation>,
) -> Result<EffectTotals, BlockError> {
    let mut total = Amount::ZERO;
    let mut slashed = Amount::ZERO;
    for e in effects {
        let cause = OperationCause::MainBlock {
            height: e.height,
            hash: e.hash,
        };
        for Credit { key, amount } in &e.credits {
            let account = overlay.account(key).map_err(BlockError::View)?;
            let balance = account.balance.checked_add(*amount).map_err(|_| {
                BlockError::State(format!("credit from main block {} overflows", e.height))
            })?;
            overlay.set_account(
                *key,
                Account {
                    balance,
                    nonce: account.nonce,
                },
            );
            operations.push(Operation::credit(
                *key,
                OperationKind::Coinbase,
                cause,
                *amount,
            ));
            total = total
                .checked_add(*amount)
                .map_err(|_| BlockError::State("credited total overflows".into()))?;
        }
        for Slash { key, reason } in &e.slashes {
            let (role, ppm) = match reason {
                SlashReason::RejectedOptimae => {
                    (StakeRole::Optimizer, staking.slash_rejected_optimae_ppm)
                }
                SlashReason::WrongVote => (StakeRole::Evaluator, staking.slash_wrong_vote_ppm),
            };
            let before = overlay.stake(key, role).map_err(BlockError::View)?;
            if before == Stake::default() {
                continue;
            }
            let (after, taken) =
                slash(before, ppm).map_err(|e| BlockError::State(e.to_string()))?;
            overlay.set_stake(*key, role, after);
            operations.push(Operation::stake(
                *key,
                OperationKind::Slash,
                cause,
                role,
                taken,
            ));
            slashed = slashed
                .checked_add(taken)
                .map_err(|_| BlockError::State("slashed total overflows".into()))?;
        }
    }
    Ok(EffectTotals {
        credited: total,
        slashed,
    })
}
