//! What of the transfer chain's past this node keeps, and dropping the rest.
//!
//! Owns the history policy (`archive`, `full`, `pruned`; see `docs/configuration.md`), the two
//! floors recorded in `tx_meta` and the deletes of one height's history. It must not touch the
//! state tree (old state versions are `tree::prune`'s) nor anything a light client's finality
//! proof needs: genesis, and every epoch-closing block's header, certificate and validators
//! proof, are kept in every mode.
//!
//! Floors only rise, and the pruning of a height is written in the same atomic batch as the
//! floor that says it is gone: after a crash the store holds either both or neither. The
//! finality proof those kept parts make is read here too ([`ChainStore::finality_proof`]).

pub use crate::kept::{HistoryMode, HistoryPolicy, Kept, MIN_KEEP_BLOCKS};
use crate::store::{
    addr_index_key, addr_index_roles, ChainStore, StoreResult, BLOCK_HASHES, BODIES, COMMITS,
    HEADERS, TX_INDEX,
};
use doin_store::{Durability, StoreError, Table, WriteBatch};
use doin_types::Height;

pub(crate) const KEPT: Table<Vec<u8>, Kept> = Table::new(crate::store::CF_META, "kept history");
pub(crate) const META_KEPT: &[u8] = b"kept";

/// Heights pruned by one block's commit at most: one in steady state; more only while a
/// node catches up, which `catch_up` does at open in larger batches.
const HEIGHTS_PER_COMMIT: u64 = 16;
/// Heights pruned by one batch while catching up at open.
const HEIGHTS_PER_CATCH_UP_BATCH: u64 = 1_000;

/// Why the history could not be brought in line with the configured mode at open.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Gone(#[from] HistoryGone),
}

/// Why a data directory cannot run with the configured history mode.
#[derive(Debug, thiserror::Error)]
#[error("this data directory dropped {what} below height {floor}, so it cannot run with `storage.prune = \"{mode}\"`; keep the mode it was pruned with (`{needed}` or `pruned`), or start from an empty data directory to rebuild the history")]
pub struct HistoryGone {
    pub what: &'static str,
    pub floor: Height,
    pub mode: &'static str,
    pub needed: &'static str,
}

/// Where the floors should be once the chain's tip is `tip`.
fn targets(policy: HistoryPolicy, tip: Height, kept: Kept) -> Kept {
    let lowest_kept = tip
        .checked_add(1)
        .and_then(|next| next.checked_sub(policy.keep_blocks))
        .unwrap_or(0);
    match policy.mode {
        HistoryMode::Archive => kept,
        HistoryMode::Full => Kept {
            bodies_from: kept.bodies_from.max(lowest_kept),
            headers_from: kept.headers_from,
        },
        HistoryMode::Pruned => Kept {
            bodies_from: kept.bodies_from.max(lowest_kept),
            headers_from: kept.headers_from.max(lowest_kept),
        },
    }
}

impl ChainStore {
    /// What this store still holds (as of the last commit).
    pub fn kept(&self) -> Kept {
        *self.kept_cache().read()
    }

    /// Checks the configured mode against what the store already dropped, then drops what the
    /// mode no longer keeps (a node switched to a pruning mode catches up here, in batches,
    /// logging its progress). `closes_epoch` tells the heights whose headers stay.
    pub fn open_history(
        &self,
        tip: Height,
        closes_epoch: &dyn Fn(Height) -> bool,
    ) -> Result<(), HistoryError> {
        let kept = KEPT
            .get(self.kv().as_ref(), &META_KEPT.to_vec())?
            .unwrap_or_default();
        *self.kept_cache().write() = kept;
        let policy = self.history_policy();
        let gone = |what, floor, needed| HistoryGone {
            what,
            floor,
            mode: policy.mode.as_str(),
            needed,
        };
        match policy.mode {
            HistoryMode::Archive if kept.headers_from > 0 => {
                return Err(gone("headers", kept.headers_from, "pruned").into())
            }
            HistoryMode::Archive if kept.bodies_from > 0 => {
                return Err(gone("block bodies", kept.bodies_from, "full").into())
            }
            HistoryMode::Full if kept.headers_from > 0 => {
                return Err(gone("headers", kept.headers_from, "pruned").into())
            }
            _ => {}
        }
        let target = targets(policy, tip, kept);
        let total =
            (target.bodies_from - kept.bodies_from).max(target.headers_from - kept.headers_from);
        if total == 0 {
            return Ok(());
        }
        tracing::info!(
            mode = policy.mode.as_str(),
            heights = total,
            "dropping history this node no longer keeps"
        );
        loop {
            let mut batch = WriteBatch::new();
            let done =
                self.prune_writes(&mut batch, target, HEIGHTS_PER_CATCH_UP_BATCH, closes_epoch)?;
            let Some(now) = done else { break };
            self.kv().write(batch, Durability::Sync)?;
            let left =
                (target.bodies_from - now.bodies_from).max(target.headers_from - now.headers_from);
            tracing::info!(left, of = total, "dropping history");
        }
        Ok(())
    }

    /// Adds to `batch` the deletes that bring the floors towards where `tip` puts them (at most
    /// a few heights: one per block in steady state). Part of each block's commit.
    pub(crate) fn history_writes(
        &self,
        batch: &mut WriteBatch,
        tip: Height,
        closes_epoch: &dyn Fn(Height) -> bool,
    ) -> StoreResult<()> {
        let target = targets(self.history_policy(), tip, self.kept());
        self.prune_writes(batch, target, HEIGHTS_PER_COMMIT, closes_epoch)?;
        Ok(())
    }

    /// Deletes the history of at most `max_heights` heights below `target` into `batch`, with
    /// the new floors. Raises the in-memory floors first, so readers treat those heights as
    /// gone before they are. `None` when nothing was left to drop.
    fn prune_writes(
        &self,
        batch: &mut WriteBatch,
        target: Kept,
        max_heights: u64,
        closes_epoch: &dyn Fn(Height) -> bool,
    ) -> StoreResult<Option<Kept>> {
        let kept = self.kept();
        let bodies_to = target
            .bodies_from
            .min(kept.bodies_from.saturating_add(max_heights));
        let headers_to = target
            .headers_from
            .min(kept.headers_from.saturating_add(max_heights))
            // A header is read to drop its body: bodies go first.
            .min(bodies_to);
        if bodies_to == kept.bodies_from && headers_to == kept.headers_from {
            return Ok(None);
        }
        for height in kept.bodies_from..bodies_to {
            self.drop_body(batch, height)?;
        }
        for height in kept.headers_from..headers_to {
            if height > 0 && !closes_epoch(height) {
                self.drop_header(batch, height)?;
            }
        }
        let now = Kept {
            bodies_from: bodies_to,
            headers_from: headers_to,
        };
        KEPT.put(batch, &META_KEPT.to_vec(), &now)?;
        *self.kept_cache().write() = now;
        Ok(Some(now))
    }

    /// Deletes block `height`'s transactions, their index entries and its operations.
    fn drop_body(&self, batch: &mut WriteBatch, height: Height) -> StoreResult<()> {
        self.drop_operations(batch, height)?;
        self.drop_main_reorgs(batch, height)?;
        for item in BODIES.with_prefix(self.kv().as_ref(), &height)? {
            let ((_, index), bytes) = item?;
            // The id from the stored bytes as they are (no re-encoding).
            let tx = doin_tx_core::Tx::decode(&bytes, bytes.len() as u64)
                .map_err(|e| StoreError::Corrupt(format!("transaction at {height}: {e}")))?;
            let id = tx.id();
            BODIES.delete(batch, &(height, index));
            // Only the entry pointing here: a transaction id is unique on one chain, but a
            // corrupt index must not make pruning delete what another block owns.
            if self.tx_location(&id)?.is_some_and(|l| l.height == height) {
                TX_INDEX.delete(batch, &id);
            }
            for (who, _) in addr_index_roles(tx.signed()) {
                batch.delete(
                    crate::store::CF_ADDR_INDEX,
                    addr_index_key(&who, height, index),
                );
            }
        }
        Ok(())
    }

    /// Deletes block `height`'s header, its hash index entry and its certificate.
    fn drop_header(&self, batch: &mut WriteBatch, height: Height) -> StoreResult<()> {
        let Some(stored) = self.header(height)? else {
            return Ok(());
        };
        let hash = stored
            .header
            .hash()
            .map_err(|e| StoreError::Corrupt(format!("header {height}: {e}")))?;
        HEADERS.delete(batch, &height);
        BLOCK_HASHES.delete(batch, &hash);
        COMMITS.delete(batch, &height);
        Ok(())
    }
}

impl ChainStore {
    /// Evidence that block `height` is final, checkable from the genesis file alone: its
    /// certificate and one hop per earlier epoch of `epoch_blocks`. `Ok(None)` while its
    /// certificate is not known here yet (it comes with the next block).
    pub fn finality_proof(
        &self,
        height: Height,
        epoch_blocks: u64,
    ) -> StoreResult<Option<doin_tx_core::FinalityProof>> {
        let Some(certificate) = self.commit_certificate(height)? else {
            return Ok(None);
        };
        let epoch_blocks = epoch_blocks.max(1);
        let missing = |what: &str, at: Height| StoreError::Corrupt(format!("{what} {at} missing"));
        let mut hops = Vec::new();
        let mut boundary = epoch_blocks;
        // Epoch `k` ends at `k * epoch_blocks`; every boundary below `height` is one hop.
        while boundary < height {
            let header = self
                .header(boundary)?
                .ok_or_else(|| missing("header", boundary))?
                .header;
            let certificate = self
                .commit_certificate(boundary)?
                .ok_or_else(|| missing("certificate of epoch block", boundary))?;
            let proven = self
                .validators_proof(boundary)?
                .ok_or_else(|| missing("validators proof of epoch block", boundary))?;
            hops.push(doin_tx_core::EpochHop {
                header,
                certificate,
                validators: proven.value,
                proof: proven.proof,
            });
            boundary = boundary.saturating_add(epoch_blocks);
        }
        Ok(Some(doin_tx_core::FinalityProof { hops, certificate }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(mode: HistoryMode, keep_blocks: u64) -> HistoryPolicy {
        HistoryPolicy { mode, keep_blocks }
    }

    #[test]
    fn targets_keep_the_window_and_never_lower_a_floor() {
        let none = Kept::default();
        assert_eq!(targets(policy(HistoryMode::Archive, 64), 1_000, none), none);
        // The tip and the 63 blocks below it stay.
        let full = targets(policy(HistoryMode::Full, 64), 1_000, none);
        assert_eq!(
            full,
            Kept {
                bodies_from: 937,
                headers_from: 0
            }
        );
        let pruned = targets(policy(HistoryMode::Pruned, 64), 1_000, none);
        assert_eq!(
            pruned,
            Kept {
                bodies_from: 937,
                headers_from: 937
            }
        );
        // A chain shorter than the window keeps everything.
        assert_eq!(targets(policy(HistoryMode::Pruned, 64), 10, none), none);
        // Floors already higher (a smaller window before) stay where they are.
        let high = Kept {
            bodies_from: 990,
            headers_from: 990,
        };
        assert_eq!(targets(policy(HistoryMode::Pruned, 64), 1_000, high), high);
    }
}
