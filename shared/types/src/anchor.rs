//! Anchor records: how the transfer chain names main-chain blocks, what an anchored main block
//! does to transfer-chain balances, and how main blocks checkpoint the transfer chain. Both
//! chains speak these types, so they live here.

use crate::{Amount, Hash256, Height, PublicKeyBytes};
use serde::{Deserialize, Serialize};

/// A main-chain block named by a transfer-chain header (`main_anchor`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MainAnchor {
    pub height: Height,
    pub hash: Hash256,
}

impl MainAnchor {
    /// "Nothing anchored yet": the anchor of a transfer genesis. Main genesis (height 0) mints
    /// nothing, so effects start at main height 1.
    pub const NONE: MainAnchor = MainAnchor {
        height: 0,
        hash: Hash256::zero(),
    };
}

impl Default for MainAnchor {
    fn default() -> Self {
        MainAnchor::NONE
    }
}

/// A credit a main block makes to a transfer-chain account once it is anchored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credit {
    pub key: PublicKeyBytes,
    pub amount: Amount,
}

/// Everything one main block does to the transfer chain, in the order it applies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MainEffects {
    pub height: Height,
    pub hash: Hash256,
    /// The main block's parent, so a run of effects can be checked to form one chain.
    pub parent: Hash256,
    /// Coinbase payouts, in coinbase order.
    pub credits: Vec<Credit>,
    /// Stakes to slash for what this block decided, in block order.
    pub slashes: Vec<Slash>,
}

/// Why a main block slashes a stake.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlashReason {
    /// The optimizer's optimae was rejected by its quorum (slashes the optimizer stake).
    RejectedOptimae,
    /// The evaluator voted against the deciding majority (slashes the evaluator stake).
    WrongVote,
}

/// A stake to slash on the transfer chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slash {
    pub key: PublicKeyBytes,
    pub reason: SlashReason,
}

/// A final transfer-chain block named by a main-chain header (`tx_checkpoint`): the main chain
/// thereby commits to transfer-chain history that no validator can rewrite.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TxCheckpoint {
    pub height: Height,
    pub hash: Hash256,
}

impl TxCheckpoint {
    /// "Nothing checkpointed yet": the checkpoint of a main genesis.
    pub const NONE: TxCheckpoint = TxCheckpoint {
        height: 0,
        hash: Hash256::zero(),
    };
}

impl Default for TxCheckpoint {
    fn default() -> Self {
        TxCheckpoint::NONE
    }
}

/// Who is staked for the main chain's roles in the transfer-chain state at a checkpointed
/// height: what the main chain selects evaluators from and accepts optimizers from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StakedSet {
    pub evaluators: Vec<StakedEvaluator>,
    /// Optimizers with their bonded stake.
    pub optimizers: Vec<(PublicKeyBytes, Amount)>,
}

/// An evaluator's stake: its bonded amount and the domains it verifies (`*`: every domain).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StakedEvaluator {
    pub key: PublicKeyBytes,
    pub bonded: Amount,
    pub domains: Vec<String>,
}
