//! Fork choice of the main chain (docs/mainchain.md#fork-choice): the best chain is the one
//! with the most cumulative counted work, ties going to the lower tip hash. A branch is never adopted if it
//! would replace a block the transfer chain has anchored (the cross-anchor finality point), or
//! reach deeper than the states this node keeps.
//!
//! This module owns the side branches a node has seen and the switch between branches. It
//! decides no block's validity itself: every block of a branch goes through `apply_block`
//! from the fork point's state before anything on disk changes, and the switch is one
//! atomic batch that takes the old blocks off (`MainStore::disconnect_to`) followed by the
//! ordinary one-batch-per-block commits. A crash in between leaves the chain at the fork
//! point, a valid chain with less work that sync extends again.

use super::{Head, MainChain, MainChainError};
use crate::store::PoolKind;
use doin_codec::encode;
use doin_main_core::{
    apply_block, fork_choice, verify_main_header_chain, AppliedMain, MainBlock, MainContext,
    SignedMainHeader,
};
use doin_types::{Hash256, Timestamp};
use std::collections::HashMap;

/// Side-branch blocks kept at most; beyond it the lowest are forgotten (a branch that needs
/// them again is fetched again).
pub(super) const MAX_SIDE_BLOCKS: usize = 256;

/// What importing a block did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportOutcome {
    /// It extended the best chain.
    Extended,
    /// It was already on the best chain or a known branch.
    Known,
    /// It is on another branch that does not carry more work (kept in case it does later).
    SideBranch,
    /// The node switched to its branch: `disconnected` blocks above `fork` were replaced by
    /// `connected` ones.
    Reorganized {
        fork: u64,
        disconnected: usize,
        connected: usize,
    },
}

/// Blocks of branches other than the best chain, by hash.
#[derive(Default)]
pub(crate) struct SideBlocks {
    by_hash: HashMap<Hash256, MainBlock>,
}

impl SideBlocks {
    pub(crate) fn contains(&self, hash: &Hash256) -> bool {
        self.by_hash.contains_key(hash)
    }

    fn insert(&mut self, hash: Hash256, block: MainBlock) {
        if self.by_hash.len() >= MAX_SIDE_BLOCKS && !self.by_hash.contains_key(&hash) {
            let lowest = self
                .by_hash
                .iter()
                .min_by_key(|(h, b)| (b.header.height, **h))
                .map(|(h, _)| *h);
            if let Some(h) = lowest {
                self.by_hash.remove(&h);
            }
        }
        self.by_hash.insert(hash, block);
    }

    fn len(&self) -> usize {
        self.by_hash.len()
    }
}

impl MainChain {
    /// A block whose parent is not the tip: kept as a side block if its branch attaches to
    /// the best chain and its headers check out, adopted if the branch now carries more work.
    /// Called with the commit lock held.
    pub(super) fn import_other_branch(
        &self,
        head: &Head,
        block: &MainBlock,
        now: Timestamp,
    ) -> Result<ImportOutcome, MainChainError> {
        let hash = block.hash()?;
        if self.knows(&hash)? {
            return Ok(ImportOutcome::Known);
        }
        let kept = self.store.keep_states();
        // Walk back through known side blocks to the best chain.
        let mut branch = vec![block.clone()];
        let mut parent = block.header.parent;
        let fork = loop {
            if let Some(h) = self.store.height_of(&parent)? {
                break h;
            }
            let Some(b) = self.side.lock().by_hash.get(&parent).cloned() else {
                return Err(MainChainError::UnknownParent {
                    height: block.header.height,
                });
            };
            parent = b.header.parent;
            branch.push(b);
            if branch.len() as u64 > kept {
                return Err(MainChainError::TooDeep {
                    fork: block.header.height.saturating_sub(branch.len() as u64),
                    kept,
                });
            }
        };
        branch.reverse();
        if head.header.height.saturating_sub(fork) >= kept {
            return Err(MainChainError::TooDeep { fork, kept });
        }
        // A branch below what the transfer chain anchored can never be adopted: not worth
        // keeping (checked again under the gate before any switch).
        let anchored = self
            .tx_chain
            .read()
            .anchored_main_height()
            .map_err(MainChainError::TxChain)?;
        if fork < anchored {
            return Err(MainChainError::BelowFinality { fork, anchored });
        }
        // Headers first: linkage, time, signatures, threshold or carrier rule, work. Cheap,
        // and enough to keep a block that may matter later.
        let fork_block = self.store.block(fork)?.ok_or_else(|| {
            MainChainError::Inconsistent(format!("main block {fork} missing below a branch"))
        })?;
        let headers: Vec<SignedMainHeader> = branch
            .iter()
            .map(|b| SignedMainHeader {
                header: b.header.clone(),
                signature: b.signature,
            })
            .collect();
        verify_main_header_chain(&self.params, &fork_block.header, &headers, now)
            .map_err(|(_, e)| MainChainError::Block(e))?;

        let tip = &block.header;
        let better = fork_choice(
            (tip.cumulative_work, &hash),
            (head.header.cumulative_work, &head.hash),
        ) == std::cmp::Ordering::Greater;
        if !better {
            self.remember_side(hash, block.clone());
            tracing::info!(
                height = tip.height,
                %hash,
                fork,
                work = tip.cumulative_work,
                best_work = head.header.cumulative_work,
                "main block on a branch with less work kept aside"
            );
            return Ok(ImportOutcome::SideBranch);
        }
        self.reorganize(head, fork, branch, now)
    }

    fn remember_side(&self, hash: Hash256, block: MainBlock) {
        let mut side = self.side.lock();
        side.insert(hash, block);
        self.metrics.side_blocks.set(side.len() as i64);
    }

    fn forget_side(&self, hashes: &[Hash256]) {
        let mut side = self.side.lock();
        for h in hashes {
            side.by_hash.remove(h);
        }
        self.metrics.side_blocks.set(side.len() as i64);
    }

    /// Switches the best chain to `branch` (the blocks after height `fork`, lowest first).
    fn reorganize(
        &self,
        head: &Head,
        fork: u64,
        branch: Vec<MainBlock>,
        now: Timestamp,
    ) -> Result<ImportOutcome, MainChainError> {
        // No transfer block may read main blocks between the floor check and the switch.
        let _gate = self.reorg_gate.write();
        let tx_chain = self.tx_chain.read().clone();
        let anchored = tx_chain
            .anchored_main_height()
            .map_err(MainChainError::TxChain)?;
        if fork < anchored {
            return Err(MainChainError::BelowFinality { fork, anchored });
        }
        let kept = self.store.keep_states();
        // Blocks written before undo records existed cannot be taken off.
        for h in fork + 1..=head.header.height {
            if self.store.undo(h)?.is_none() {
                return Err(MainChainError::TooDeep { fork, kept });
            }
        }
        let mut state = self
            .store
            .state(fork)?
            .ok_or(MainChainError::TooDeep { fork, kept })?;
        let mut parent = self
            .store
            .block(fork)?
            .ok_or_else(|| MainChainError::Inconsistent(format!("main block {fork} missing")))?
            .header;
        // Every rule for every block of the branch before anything changes.
        let mut applied: Vec<(MainBlock, AppliedMain)> = Vec::with_capacity(branch.len());
        for (i, b) in branch.iter().enumerate() {
            let result = apply_block(
                &self.params,
                &state,
                &parent,
                b,
                MainContext {
                    now,
                    tx_chain: tx_chain.as_ref(),
                },
            );
            let a = match result {
                Ok(a) => a,
                Err(e) => {
                    // This block and everything built on it can never be valid.
                    let bad: Vec<Hash256> =
                        branch[i..].iter().filter_map(|b| b.hash().ok()).collect();
                    self.forget_side(&bad);
                    return Err(e.into());
                }
            };
            state = a.state.clone();
            parent = b.header.clone();
            applied.push((b.clone(), a));
        }

        let old = self.store.disconnect_to(fork)?;
        let (Some(fork_block), Some(fork_state)) =
            (self.store.block(fork)?, self.store.state(fork)?)
        else {
            return Err(MainChainError::Inconsistent(format!(
                "main block {fork} or its state missing after taking the branch above it off"
            )));
        };
        *self.head.write() = Head {
            hash: fork_block.hash()?,
            header: fork_block.header,
            state: std::sync::Arc::new(fork_state),
        };
        let connected = applied.len();
        let mut new_hashes = Vec::with_capacity(connected);
        for (b, a) in applied {
            let at = self.head();
            self.commit(&at, &b, a.state, &a.events)?;
            new_hashes.push(b.hash()?);
        }
        self.forget_side(&new_hashes);
        for b in &old {
            if let Ok(h) = b.hash() {
                self.remember_side(h, b.clone());
            }
        }
        self.repool(&old);
        let disconnected = old
            .iter()
            .filter_map(|b| Some((b.header.height, b.hash().ok()?)))
            .collect();
        let connected_blocks = (fork + 1..).zip(new_hashes.iter().copied()).collect();
        // Nobody listening (a node without the transfer chain's events) is fine.
        let _ = self
            .announcements
            .send(super::MainAnnouncement::Reorg(std::sync::Arc::new(
                super::MainReorg {
                    fork,
                    disconnected,
                    connected: connected_blocks,
                },
            )));
        self.metrics.reorgs.inc();
        self.metrics.reorg_disconnected.inc_by(old.len() as u64);
        tracing::warn!(
            fork,
            old_tip = %head.hash,
            new_tip = %self.head().hash,
            disconnected = old.len(),
            connected,
            "main chain switched to a branch with more work"
        );
        Ok(ImportOutcome::Reorganized {
            fork,
            disconnected: old.len(),
            connected,
        })
    }

    /// Offers the messages of blocks taken off the best chain to the pool again; whatever the
    /// new branch already carries, or no longer allows, is refused there as usual.
    fn repool(&self, blocks: &[MainBlock]) {
        let mut messages: Vec<(PoolKind, Vec<u8>)> = Vec::new();
        for b in blocks {
            let body = &b.body;
            let each = body
                .registrations
                .iter()
                .map(|m| (PoolKind::Register, encode(m)))
                .chain(body.commits.iter().map(|m| (PoolKind::Commit, encode(m))))
                .chain(body.reveals.iter().map(|m| (PoolKind::Reveal, encode(m))))
                .chain(
                    body.verdicts
                        .iter()
                        .flat_map(|v| v.votes.iter())
                        .map(|m| (PoolKind::Vote, encode(m))),
                );
            for (kind, bytes) in each {
                if let Ok(bytes) = bytes {
                    messages.push((kind, bytes));
                }
            }
        }
        let mut back = 0usize;
        for (kind, bytes) in messages {
            if self.check_and_pool(kind, &bytes, true).is_ok() {
                back += 1;
            }
        }
        if back > 0 {
            tracing::info!(
                messages = back,
                "messages of replaced main blocks are pooled again"
            );
        }
    }
}
