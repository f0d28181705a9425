//! The chain's side of BFT consensus: build a proposal without committing it, check a peer's
//! proposal without committing it, commit what consensus decided with its certificate.
//!
//! Consensus (`crate::consensus`) decides which block; this module only answers "is it valid
//! on our tip" and writes the decision. It must not vote, sign votes or talk to the network.

use super::{now_ms, Announcement, ChainError, TxChain};
use doin_crypto::KeyPair;
use doin_store::StoreError;
use doin_tx_core::bft::CommitCertificate;
use doin_tx_core::fees::next_base_fee;
use doin_tx_core::AnchorHold;
use doin_tx_core::{
    apply_block, build_block_certified, ApplyContext, Block, BlockError, BlockHash, FinalityProof,
    ParentCommit, TxId,
};
use doin_types::{Height, Timestamp};
use std::sync::Arc;
use std::time::Instant;

use crate::store::Prefetched;

/// What committing a decided block did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecidedOutcome {
    /// The block is the new tip.
    Committed,
    /// The block was already the tip (e.g. it arrived by gossip first); its certificate is now
    /// stored with it.
    AlreadyCommitted,
}

impl TxChain {
    /// Builds the next block as a proposal, without committing it. `parent_commit` proves the
    /// tip final (`None` only on top of genesis).
    pub fn propose_block(
        &self,
        key: &KeyPair,
        time: Timestamp,
        parent_commit: Option<&CommitCertificate>,
    ) -> Result<Block, ChainError> {
        let _commit = self.commit_lock.lock();
        let started = Instant::now();
        let parent = self.tip.read().header.clone();
        if parent.height > 0 && parent_commit.is_none() {
            return Err(BlockError::MissingLastCommit.into());
        }
        let base_fee = next_base_fee(&self.params.consensus, parent.base_fee, parent.weight_used);
        let candidates = self
            .mempool
            .lock()
            .candidates(base_fee, self.params.consensus.block_weight_limit);
        let view = self.store.prefetch_accounts(
            super::transfer_parties(candidates.iter().map(|t| t.body())).chain([key.public()]),
        )?;
        let main = self.main.read().clone();
        let _hold = main.hold().map_err(BlockError::View)?;
        let built = build_block_certified(
            &self.params,
            &view,
            &self.store.tree(),
            main.as_ref(),
            &parent,
            time,
            key,
            candidates,
            false,
            match parent_commit {
                Some(c) => ParentCommit::Certificate(c),
                None => ParentCommit::OwnPrecommit,
            },
        )?;
        self.metrics
            .block_build_seconds
            .observe(started.elapsed().as_secs_f64());
        Ok(built.block)
    }

    /// Checks a proposed block on the current tip with every rule and every signature, and
    /// commits nothing.
    pub fn check_proposal(&self, block: &Block, now: Timestamp) -> Result<(), ChainError> {
        let _commit = self.commit_lock.lock();
        self.apply_on_tip(block, now).map(|_| ())
    }

    fn note_certified(&self, cert: &CommitCertificate) {
        self.metrics
            .certified_height
            .set(i64::try_from(cert.height).unwrap_or(i64::MAX));
        self.metrics
            .commit_signers
            .set(i64::try_from(cert.signatures.len()).unwrap_or(i64::MAX));
    }

    /// Commits a block consensus decided, storing `cert` (which must prove it) with it.
    pub fn commit_decided(
        &self,
        block: &Block,
        cert: &CommitCertificate,
        now: Timestamp,
    ) -> Result<DecidedOutcome, ChainError> {
        let _commit = self.commit_lock.lock();
        let hash = block.hash()?;
        // The peer-to-peer block sync may have committed this final block and more while
        // consensus was still deciding it here (its certificate came with the next block).
        if block.header.height < self.tip.read().header.height
            && self.committed_as(block.header.height, &hash)? == Some(true)
        {
            return Ok(DecidedOutcome::AlreadyCommitted);
        }
        let set = self
            .validator_set_at(block.header.height)
            .ok_or(BlockError::WrongHeight {
                parent: self.tip.read().header.height,
                got: block.header.height,
            })?;
        cert.verify(&self.params.chain_id, block.header.height, &hash, &set)
            .map_err(BlockError::LastCommit)?;
        let tip = self.tip.read().clone();
        if tip.hash == hash {
            self.store.put_commit_certificate(cert)?;
            self.note_certified(cert);
            return Ok(DecidedOutcome::AlreadyCommitted);
        }
        // The hold keeps the main blocks this block anchors on the main chain until it is
        // committed.
        let (applied, view, _hold) = self.apply_on_tip(block, now)?;
        self.commit(
            block,
            &applied,
            &[] as &[TxId],
            view.prior_versions(),
            Some(cert),
        )?;
        let _ = self
            .announcements
            .send(Announcement::Block(Arc::new(block.clone())));
        Ok(DecidedOutcome::Committed)
    }

    /// Whether `hash` is the block committed at `height`: `None` above the tip. Consensus asks
    /// because the node's peer-to-peer block sync may commit final blocks before consensus
    /// decides them here (a validator catching up after a restart).
    pub fn committed_as(
        &self,
        height: Height,
        hash: &BlockHash,
    ) -> Result<Option<bool>, ChainError> {
        let tip = self.tip.read().clone();
        if height > tip.header.height {
            return Ok(None);
        }
        if height == tip.header.height {
            return Ok(Some(tip.hash == *hash));
        }
        match self.store.header(height)? {
            Some(stored) => Ok(Some(stored.hash()? == *hash)),
            None => Err(ChainError::Inconsistent(format!(
                "no header at height {height} below the tip {}",
                tip.header.height
            ))),
        }
    }

    /// The certificate that made block `height` final, when this node has it.
    pub fn certificate(&self, height: Height) -> Result<Option<CommitCertificate>, StoreError> {
        self.store.commit_certificate(height)
    }

    /// Evidence that block `height` is final, checkable from the genesis file alone: its
    /// certificate and one hop per earlier epoch. `Ok(None)` while its certificate is not known
    /// here yet (it comes with the next block).
    pub fn finality_proof(&self, height: Height) -> Result<Option<FinalityProof>, StoreError> {
        self.store
            .finality_proof(height, self.params.consensus.epoch_blocks)
    }

    /// The committed block at `height`.
    pub fn block_at(&self, height: Height) -> Result<Option<Block>, StoreError> {
        self.store.block(height)
    }

    /// Applies `block` on the tip with every rule (caller holds the commit lock). Returns the
    /// state view it read (its prior versions go into the commit) and the hold that keeps the
    /// anchored main blocks in place until the commit.
    pub(super) fn apply_on_tip(
        &self,
        block: &Block,
        now: Timestamp,
    ) -> Result<(doin_tx_core::AppliedBlock, Prefetched<'_>, AnchorHold), ChainError> {
        let parent = self.tip.read().header.clone();
        let keys = super::transfer_parties(block.txs.iter().map(|t| &t.body))
            .chain(std::iter::once(block.header.proposer));
        let view = self.store.prefetch_accounts(keys)?;
        let main = self.main.read().clone();
        let hold = main.hold().map_err(BlockError::View)?;
        // Signatures on all cores first; if any fails, application checks them one by one
        // and names the first bad transaction as it always does.
        let signatures_hold = super::signatures_hold(&block.txs);
        let applied = apply_block(
            &self.params,
            &view,
            &self.store.tree(),
            main.as_ref(),
            &parent,
            block,
            ApplyContext {
                now,
                verify_tx_signatures: !signatures_hold,
            },
        )?;
        Ok((applied, view, hold))
    }
}

/// Milliseconds now, as a timestamp (for callers outside the chain module).
pub fn now() -> Timestamp {
    Timestamp(now_ms())
}
