//! What history a node keeps, as types: the policy (`storage.prune`, `storage.keep_blocks`)
//! and the floors below which a store dropped history. The pruning itself is
//! [`crate::history`]'s; the store holds the floors ([`crate::store::ChainStore::kept`]).

use doin_types::Height;
use serde::{Deserialize, Serialize};

/// How much history a node keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HistoryMode {
    /// Every header, block and index since genesis.
    Archive,
    /// Every header; block bodies and the transaction and address indexes of the last
    /// `keep_blocks` blocks only.
    Full,
    /// The state, the last `keep_blocks` blocks, and what proves finality from genesis
    /// (genesis and the epoch-closing headers with their certificates and validators proofs).
    Pruned,
}

impl HistoryMode {
    pub fn as_str(self) -> &'static str {
        match self {
            HistoryMode::Archive => "archive",
            HistoryMode::Full => "full",
            HistoryMode::Pruned => "pruned",
        }
    }
}

/// The history policy of one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryPolicy {
    pub mode: HistoryMode,
    /// Blocks (the tip included) whose bodies and indexes `full` and `pruned` keep.
    pub keep_blocks: u64,
}

/// Fewest blocks a pruning node keeps: enough for peers a few minutes behind, compact-block
/// completion, fee estimates and the event stream's replay.
pub const MIN_KEEP_BLOCKS: u64 = 64;

impl Default for HistoryPolicy {
    fn default() -> Self {
        HistoryPolicy {
            mode: HistoryMode::Full,
            // About 35 days of 30-second blocks.
            keep_blocks: 100_000,
        }
    }
}

/// What this store still holds: everything at or above the floors, plus, below
/// `headers_from`, genesis and the epoch-closing blocks' headers, certificates and proofs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kept {
    /// Lowest height whose body, transaction index and address index are kept.
    pub bodies_from: Height,
    /// Lowest height whose header, hash index and certificate are kept (whatever the height).
    pub headers_from: Height,
}

impl Kept {
    /// Whether block `height`'s body was dropped here.
    pub fn body_dropped(&self, height: Height) -> bool {
        height < self.bodies_from
    }
}
