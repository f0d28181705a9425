//! What a transaction lookup answers: the transaction, where it is in its life and in the
//! chain. Shared by the chain service (which finds it) and the views (which show it).

use crate::store::{StoredHeader, TxLocation};
use doin_tx_core::Tx;
use doin_types::MainAnchor;

/// Where a transaction is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxStatus {
    /// In the mempool.
    Pending,
    /// In a block that is not final yet.
    Included,
    /// In a final block: it can never be reverted.
    Final,
    /// In a final block that a main-chain block checkpoints.
    Anchored,
}

impl TxStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TxStatus::Pending => "pending",
            TxStatus::Included => "included",
            TxStatus::Final => "final",
            TxStatus::Anchored => "anchored",
        }
    }
}

/// A transaction with where it is.
#[derive(Clone, Debug)]
pub struct TxLookup {
    pub tx: Tx,
    pub status: TxStatus,
    pub location: Option<TxLocation>,
    pub block: Option<StoredHeader>,
    pub confirmations: u64,
    /// The first main-chain block that checkpoints the transaction's block.
    pub anchored_by: Option<MainAnchor>,
}
