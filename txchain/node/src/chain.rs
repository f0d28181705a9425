//! `TxChain`: the transfer-chain service of one node.
//!
//! It owns the store, the mempool, the tip and the event log, and it is the only writer of the
//! chain's column families. Consensus decisions are delegated to `doin-tx-core`; this module
//! only moves data between the core, the store and the outside world, in this order: validate,
//! persist, then publish (a block or transaction is announced only after it is on disk).

mod bft;
mod simulate;
mod submit;

pub use simulate::{BalanceChanges, Simulation};

pub use bft::{now, DecidedOutcome};

use crate::dropped::{DropReason, Dropped, DroppedLog, MAX_DROPPED};
use crate::events::EventLog;
pub use crate::lookup::{TxLookup, TxStatus};
use crate::mempool::{Admission, Mempool, MempoolConfig, MempoolError};
use crate::metrics::TxMetrics;
use crate::store::{ChainStore, PriorVersions, PruneConfig};
use crate::views;
use doin_crypto::KeyPair;
use doin_store::{KvStore, StoreError};
use doin_telemetry::{Metrics, MetricsError};
use doin_tx_core::bft::{CommitCertificate, EpochValidators, ValidatorSet};
use doin_tx_core::fees::next_base_fee;
use doin_tx_core::state::Overlay;
use doin_tx_core::{
    apply_tx, build_block, genesis, prove_tx, Account, Block, BlockError, BlockHash, BlockHeader,
    ChainParams, GenesisError, GenesisSpec, MainView, NoMainChain, SignedTx, StateView, Tx, TxBody,
    TxError, TxId, TxInclusionProof,
};
use doin_types::{Amount, Height, MainAnchor, PublicKeyBytes, Timestamp};
use jmt::Sha256Jmt;
use parking_lot::{Mutex, RwLock};
use std::sync::Arc;
use std::time::Instant;

/// Service configuration.
#[derive(Clone, Debug, Default)]
pub struct TxChainConfig {
    pub mempool: MempoolConfig,
    pub prune: PruneConfig,
    /// Events kept in memory for resuming SSE clients (block events can always be rebuilt).
    pub event_buffer: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Genesis(#[from] GenesisError),
    #[error(transparent)]
    Block(#[from] BlockError),
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    #[error("the data directory holds chain {stored}, but the configuration describes chain {configured}; use the matching genesis file or another data directory")]
    GenesisMismatch { stored: String, configured: String },
    #[error("stored state is inconsistent: {0}")]
    Inconsistent(String),
    #[error(transparent)]
    History(#[from] crate::history::HistoryError),
    #[error("an import of the snapshot at height {0} was interrupted and left this data directory half-written; run `doin snapshot import` again (it starts over) or use an empty data directory")]
    InterruptedImport(Height),
    #[error("the data directory uses storage layout {stored}, this node reads layout {supported}; start from an empty data directory (the chain re-syncs from genesis)")]
    SchemaMismatch { stored: u32, supported: u32 },
}

/// Why a submitted transaction was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error(transparent)]
    Rejected(#[from] MempoolError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<TxError> for SubmitError {
    fn from(e: TxError) -> Self {
        SubmitError::Rejected(MempoolError::Tx(e))
    }
}

/// Every account a set of transactions reads: senders and recipients.
fn transfer_parties<'a>(
    bodies: impl Iterator<Item = &'a TxBody> + 'a,
) -> impl Iterator<Item = PublicKeyBytes> + 'a {
    bodies
        .flat_map(|b| std::iter::once(b.sender).chain(b.payload.recipients().into_iter().copied()))
}

/// Fewest transactions for which checking signatures on several cores beats one.
const PARALLEL_SIGNATURES_FROM: usize = 64;

/// Whether every transaction's signature holds, checked on all cores (one thread per core,
/// each over a contiguous share). The chain core stays single-threaded: this is the node's
/// choice of how to spend its cores before calling it.
fn signatures_hold(txs: &[doin_tx_core::SignedTx]) -> bool {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 2 || txs.len() < PARALLEL_SIGNATURES_FROM {
        return txs.iter().all(|t| t.signature_holds());
    }
    let share = txs.len().div_ceil(cores);
    std::thread::scope(|scope| {
        let workers: Vec<_> = txs
            .chunks(share)
            .map(|part| scope.spawn(move || part.iter().all(|t| t.signature_holds())))
            .collect();
        workers.into_iter().all(|w| w.join().unwrap_or(false))
    })
}

/// What [`TxChain::tx_proof`] found.
#[derive(Debug)]
pub enum TxProofLookup {
    /// The transaction is in no block (unknown, or still pending).
    NotInBlock,
    /// The transaction's block is committed here but its certificate is not known yet.
    NotFinal { height: Height },
    Proof {
        proof: Box<TxInclusionProof>,
        status: TxStatus,
        confirmations: u64,
    },
}

/// Result of a submission that was not an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubmitOutcome {
    pub id: TxId,
    pub status: TxStatus,
    /// False when the transaction was known already (a resubmission).
    pub new: bool,
    /// The transaction this one replaced in the mempool, if any.
    pub replaced: Option<TxId>,
}

/// The chain tip as the service sees it.
#[derive(Clone, Debug)]
pub struct Tip {
    pub header: BlockHeader,
    pub hash: BlockHash,
    /// Highest final height. With one validator every committed block is final; BFT will set
    /// this from commit certificates.
    pub final_height: Height,
    /// The validator sets of the tip's state: `current` signed the tip, `next` proposes and
    /// signs the block after it. Kept with the tip so both always describe the same state.
    pub validators: Arc<EpochValidators>,
}

pub struct TxChain {
    params: ChainParams,
    spec: GenesisSpec,
    store: ChainStore,
    mempool: Mutex<Mempool>,
    /// What the mempool dropped without including, and why (answered to wallets).
    dropped: Mutex<DroppedLog>,
    tip: RwLock<Tip>,
    /// Serialises block commits (production and import).
    commit_lock: Mutex<()>,
    events: EventLog,
    metrics: TxMetrics,
    /// Where main-chain blocks come from (anchoring). Without a main chain nothing is anchored
    /// and blocks that move their anchor cannot be checked.
    main: RwLock<Arc<dyn MainView + Send + Sync>>,
    /// What this node originated and peers should hear about.
    announcements: tokio::sync::broadcast::Sender<Announcement>,
}

/// Something this node originated: a block it produced or a transaction submitted to it.
/// (What arrives from peers is relayed by gossip itself and never announced again.)
#[derive(Clone, Debug)]
pub enum Announcement {
    Block(Arc<Block>),
    Tx(Arc<Vec<u8>>),
}

/// Milliseconds since the Unix epoch by the system clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl TxChain {
    /// Opens the chain in `kv`, writing genesis on first use, and reloads the persisted mempool.
    pub fn open(
        kv: Arc<dyn KvStore>,
        spec: GenesisSpec,
        cfg: TxChainConfig,
        metrics: &Metrics,
    ) -> Result<Arc<TxChain>, ChainError> {
        let params = ChainParams::from_genesis(&spec)?;
        let store = ChainStore::new(kv, cfg.prune);
        match store.genesis_spec()? {
            None => {
                if let Some(height) = crate::snapshot::interrupted_import(store.kv().as_ref())? {
                    return Err(ChainError::InterruptedImport(height));
                }
                let (block, applied) = genesis(&spec, &store.tree())?;
                store.commit_genesis(&spec, &block, &applied)?;
                tracing::info!(chain_id = %params.chain_id, "initialised a new transfer chain");
            }
            Some(stored) if stored != spec => {
                let stored_id = stored
                    .chain_id()
                    .map(|c| c.to_string())
                    .unwrap_or_else(|_| "unreadable".into());
                return Err(ChainError::GenesisMismatch {
                    stored: stored_id,
                    configured: params.chain_id.to_string(),
                });
            }
            Some(_) => {}
        }
        match store.schema_version()? {
            Some(v) if v == crate::store::SCHEMA_VERSION => {}
            Some(5) => store.upgrade_from_5()?,
            stored => {
                return Err(ChainError::SchemaMismatch {
                    stored: stored.unwrap_or(0),
                    supported: crate::store::SCHEMA_VERSION,
                })
            }
        }
        let height = store
            .tip_height()?
            .ok_or_else(|| ChainError::Inconsistent("no tip recorded".into()))?;
        let stored = store
            .header(height)?
            .ok_or_else(|| ChainError::Inconsistent(format!("tip header {height} missing")))?;
        // The tree must hold the root the tip header commits to; anything else is corruption.
        let root = Sha256Jmt::new(&store.tree())
            .get_root_hash_option(height)
            .map_err(|e| ChainError::Inconsistent(e.to_string()))?;
        if root.map(|r| r.0) != Some(stored.header.state_root.0) {
            return Err(ChainError::Inconsistent(format!(
                "state tree root at height {height} does not match the header"
            )));
        }
        let hash = stored.header.hash()?;
        store.open_history(height, &|h| params.closes_epoch(h))?;
        let validators = Arc::new(store.validators().map_err(crate::store::state_error)?);
        let metrics = TxMetrics::register(metrics)?;
        let dropped = crate::dropped::load(store.kv().as_ref(), MAX_DROPPED)?;
        let events = EventLog::new(height, cfg.event_buffer.max(1));
        // `main_reorg` events kept from before a restart keep their ids.
        events.continue_after(store.last_main_reorg_seq(height)?.unwrap_or(0));
        let chain = Arc::new(TxChain {
            main: RwLock::new(Arc::new(NoMainChain)),
            params,
            spec,
            mempool: Mutex::new(Mempool::new(cfg.mempool)),
            dropped: Mutex::new(dropped),
            tip: RwLock::new(Tip {
                header: stored.header.clone(),
                hash,
                final_height: height,
                validators,
            }),
            commit_lock: Mutex::new(()),
            events,
            announcements: tokio::sync::broadcast::channel(1024).0,
            metrics,
            store,
        });
        chain.reload_mempool()?;
        chain.refresh_gauges();
        tracing::info!(height, tip = %hash, "transfer chain open");
        Ok(chain)
    }

    fn reload_mempool(&self) -> Result<(), ChainError> {
        let mut loaded = Vec::new();
        let mut bad = Vec::new();
        for bytes in self.store.mempool_entries()? {
            match Tx::decode(&bytes, self.params.consensus.max_tx_weight) {
                Ok(tx) => loaded.push(tx),
                Err(_) => bad.push(doin_crypto::tagged_hash(
                    doin_tx_core::tx::TAG_TX_ID,
                    &bytes,
                )),
            }
        }
        // Nonce order per sender, so queues rebuild contiguously.
        loaded.sort_by_key(|t| (t.body().sender, t.body().nonce));
        let base_fee = self.next_base_fee();
        let now = now_ms();
        let mut kept = 0usize;
        {
            let mut pool = self.mempool.lock();
            for tx in loaded {
                let id = tx.id();
                let ok = tx
                    .check_stateless(
                        &self.params.chain_id,
                        self.params.consensus.max_tx_weight,
                        true,
                    )
                    .is_ok()
                    && self
                        .account(&tx.body().sender)
                        .ok()
                        .is_some_and(|acct| pool.insert(tx, acct, base_fee, now).is_ok());
                if ok {
                    kept += 1;
                } else {
                    bad.push(id);
                }
            }
        }
        self.drop_pending(&[], bad.iter().map(|id| (*id, DropReason::Invalidated)))?;
        if kept > 0 || !bad.is_empty() {
            tracing::info!(kept, dropped = bad.len(), "reloaded pending transactions");
        }
        Ok(())
    }

    pub fn params(&self) -> &ChainParams {
        &self.params
    }

    /// Takes transactions that left the mempool off its persisted copy: `included` ones
    /// simply, `dropped` ones recorded with their reason first (so that after a crash in
    /// between, the reloaded pool or the record still knows of each).
    pub(crate) fn drop_pending(
        &self,
        included: &[TxId],
        dropped: impl IntoIterator<Item = (TxId, DropReason)>,
    ) -> Result<(), StoreError> {
        let at_ms = now_ms();
        let mut gone: Vec<TxId> = included.to_vec();
        let mut drops = Vec::new();
        for (id, reason) in dropped {
            gone.push(id);
            drops.push((id, Dropped { reason, at_ms }));
        }
        if !drops.is_empty() {
            let writes = self.dropped.lock().record(drops);
            crate::dropped::write(self.store.kv().as_ref(), &writes)?;
        }
        gone.sort();
        gone.dedup();
        self.store.mempool_delete(&gone)
    }

    /// Why the mempool dropped `id` without including it, if it did (and it was not admitted
    /// again since).
    pub fn dropped(&self, id: &TxId) -> Option<Dropped> {
        self.dropped.lock().get(id).copied()
    }

    pub fn genesis_spec(&self) -> &GenesisSpec {
        &self.spec
    }

    pub fn store(&self) -> &ChainStore {
        &self.store
    }

    pub fn events(&self) -> &EventLog {
        &self.events
    }

    /// Announces a reorganisation of the main chain in the event stream, kept in the store
    /// first so that a replay gives it again with the same id.
    pub fn record_main_reorg(&self, data: String) -> Result<(), StoreError> {
        self.events.push_main_reorg(data, |id, data| {
            self.store.put_main_reorg(id.height, id.seq, data)
        })
    }

    pub fn tip(&self) -> Tip {
        self.tip.read().clone()
    }

    /// The validator set of `height` when this node knows it: the tip's (`current`) or the
    /// next block's (`next`). Older and later heights need other states.
    pub fn validator_set_at(&self, height: Height) -> Option<ValidatorSet> {
        let tip = self.tip.read();
        if height == tip.header.height.checked_add(1)? {
            Some(tip.validators.next.clone())
        } else if height == tip.header.height && height > 0 {
            Some(tip.validators.current.clone())
        } else {
            None
        }
    }

    /// Base fee the next block will charge.
    pub fn next_base_fee(&self) -> Amount {
        let tip = self.tip.read();
        next_base_fee(
            &self.params.consensus,
            tip.header.base_fee,
            tip.header.weight_used,
        )
    }

    /// The account at the tip (absent accounts read as zero).
    pub fn account(&self, key: &PublicKeyBytes) -> Result<Account, StoreError> {
        self.store
            .account(key)
            .map(|a| a.unwrap_or_default())
            .map_err(crate::store::state_error)
    }

    /// Next nonce for a new transaction of `key`, counting its pending ones.
    pub fn next_nonce(&self, key: &PublicKeyBytes) -> Result<(u64, usize), StoreError> {
        let acct = self.account(key)?;
        let pool = self.mempool.lock();
        let next = pool.next_nonce(key, acct.nonce);
        Ok((next, (next - acct.nonce) as usize))
    }

    /// Pending transactions admitted at least `min_age_ms` ago, oldest first, at most `max`
    /// (their bytes): what the node offers its peers again.
    pub fn waiting_txs(&self, min_age_ms: u64, max: usize) -> Vec<(TxId, Vec<u8>)> {
        let by = now_ms().saturating_sub(min_age_ms);
        let pool = self.mempool.lock();
        pool.waiting(by, max)
            .iter()
            .map(|t| (t.id(), t.bytes().to_vec()))
            .collect()
    }

    /// A page of pending transactions in admission order (`Mempool::admitted_after`).
    pub fn pending_page(&self, after: Option<u64>, max: usize) -> Vec<(u64, Tx)> {
        self.mempool.lock().admitted_after(after, max)
    }

    pub fn mempool_stats(&self) -> (usize, usize) {
        let pool = self.mempool.lock();
        (pool.len(), pool.bytes())
    }

    /// Candidate transactions as the next block would take them (for fee estimation).
    pub fn pending_tips(&self, base_fee: Amount) -> Vec<Amount> {
        let pool = self.mempool.lock();
        pool.candidates(base_fee, self.params.consensus.block_weight_limit)
            .iter()
            .map(|t| {
                doin_tx_core::fees::effective_tip_per_weight(
                    t.body().max_fee_per_weight,
                    t.body().max_priority_fee_per_weight,
                    base_fee,
                )
            })
            .collect()
    }

    fn status_of(&self, height: Height) -> (TxStatus, u64) {
        let (final_height, tip_height) = {
            let tip = self.tip.read();
            (tip.final_height, tip.header.height)
        };
        let confirmations = tip_height.saturating_sub(height) + 1;
        let status = if height > final_height {
            TxStatus::Included
        } else if self.anchoring_block(height).is_some() {
            TxStatus::Anchored
        } else {
            TxStatus::Final
        };
        (status, confirmations)
    }

    /// The main blocks `block` anchored (their effects), read back from the main chain for an
    /// event replay; empty when this node cannot tell (no main chain here, or the parent's
    /// header was pruned).
    pub fn anchored_effects(&self, block: &Block) -> Vec<doin_types::MainEffects> {
        let height = block.header.height;
        let Some(parent) = height
            .checked_sub(1)
            .and_then(|h| self.store.header(h).ok().flatten())
        else {
            return Vec::new();
        };
        let main = self.main.read().clone();
        doin_tx_core::anchor::newly_anchored(
            main.as_ref(),
            &parent.header.main_anchor,
            &block.header.main_anchor,
        )
        .unwrap_or_else(|e| {
            tracing::debug!(error = %e, height, "main blocks of a replayed transfer block are not known here");
            Vec::new()
        })
    }

    /// The first main-chain block that checkpoints the transfer block at `height`, if any.
    pub fn anchoring_block(&self, height: Height) -> Option<MainAnchor> {
        let main = self.main.read().clone();
        match main.checkpointing_block(height) {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, height, "could not look up the main block checkpointing a transfer block");
                None
            }
        }
    }

    /// Status of a block at `height` relative to the tip.
    pub fn block_status(&self, height: Height) -> (TxStatus, u64) {
        self.status_of(height)
    }

    /// Finds a transaction in the mempool or the chain.
    pub fn lookup_tx(&self, id: &TxId) -> Result<Option<TxLookup>, StoreError> {
        if let Some(tx) = self.mempool.lock().get(id) {
            return Ok(Some(TxLookup {
                tx: tx.clone(),
                status: TxStatus::Pending,
                location: None,
                block: None,
                confirmations: 0,
                anchored_by: None,
            }));
        }
        let Some(loc) = self.store.tx_location(id)? else {
            return Ok(None);
        };
        let signed = self.store.tx_at(loc)?.ok_or_else(|| {
            StoreError::Corrupt(format!("indexed tx {id} missing from its block"))
        })?;
        let tx = Tx::from_signed(signed).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let block = self.store.header(loc.height)?;
        let (status, confirmations) = self.status_of(loc.height);
        let anchored_by = if status == TxStatus::Anchored {
            self.anchoring_block(loc.height)
        } else {
            None
        };
        Ok(Some(TxLookup {
            tx,
            status,
            location: Some(loc),
            block,
            confirmations,
            anchored_by,
        }))
    }

    /// Chain totals at the tip (issued, burned, imported from the main chain, anchor).
    pub fn chain_stats(&self) -> Result<doin_tx_core::ChainStats, doin_types::PortError> {
        self.store.chain_stats()
    }

    /// Connects the main chain this node follows: blocks anchor its blocks from now on.
    pub fn set_main_view(&self, main: Arc<dyn MainView + Send + Sync>) {
        *self.main.write() = main;
    }

    /// The inclusion proof of a transaction in a final block, with its status.
    pub fn tx_proof(&self, id: &TxId) -> Result<TxProofLookup, StoreError> {
        let Some(loc) = self.store.tx_location(id)? else {
            return Ok(TxProofLookup::NotInBlock);
        };
        let corrupt = |what: String| StoreError::Corrupt(what);
        let Some(finality) = self.finality_proof(loc.height)? else {
            return Ok(TxProofLookup::NotFinal { height: loc.height });
        };
        let stored = self
            .store
            .header(loc.height)?
            .ok_or_else(|| corrupt(format!("header {} missing", loc.height)))?;
        let body = self
            .store
            .body(loc.height)?
            .ok_or_else(|| corrupt(format!("body {} missing", loc.height)))?;
        let mut ids = Vec::with_capacity(body.len());
        let mut bytes = None;
        for (i, signed) in body.into_iter().enumerate() {
            let tx = Tx::from_signed(signed).map_err(|e| corrupt(e.to_string()))?;
            if i == loc.index as usize {
                bytes = Some(tx.bytes().to_vec());
            }
            ids.push(tx.id());
        }
        let bytes =
            bytes.ok_or_else(|| corrupt(format!("indexed tx {id} missing from its block")))?;
        let proof = prove_tx(stored.header, finality, &ids, loc.index as usize, bytes)
            .ok_or_else(|| corrupt(format!("tx {id} outside its block")))?;
        let (status, confirmations) = self.status_of(loc.height);
        Ok(TxProofLookup::Proof {
            proof: Box::new(proof),
            status,
            confirmations,
        })
    }

    /// Builds, commits and announces the next block (this node must be the proposer).
    pub fn produce_block(&self, key: &KeyPair, time: Timestamp) -> Result<Block, ChainError> {
        let _commit = self.commit_lock.lock();
        let started = Instant::now();
        let parent = self.tip.read().header.clone();
        let base_fee = next_base_fee(&self.params.consensus, parent.base_fee, parent.weight_used);
        let candidates = self
            .mempool
            .lock()
            .candidates(base_fee, self.params.consensus.block_weight_limit);
        let view = self.store.prefetch_accounts(
            transfer_parties(candidates.iter().map(|t| t.body())).chain([key.public()]),
        )?;
        let main = self.main.read().clone();
        // The main blocks this block anchors stay the main chain's until it is committed.
        let _hold = main.hold().map_err(BlockError::View)?;
        // Signatures were verified when the transactions entered the mempool.
        let built = build_block(
            &self.params,
            &view,
            &self.store.tree(),
            main.as_ref(),
            &parent,
            time,
            key,
            candidates,
            false,
        )?;
        self.metrics
            .block_build_seconds
            .observe(started.elapsed().as_secs_f64());
        let skipped: Vec<TxId> = built
            .skipped
            .iter()
            .filter(|(_, e)| !e.is_internal())
            .map(|(id, _)| *id)
            .collect();
        for (id, e) in &built.skipped {
            tracing::debug!(tx = %id, error = %e, "left a pending transaction out of the block");
        }
        // A single validator's own precommit finalises the block at once (with several, the
        // certificate comes from BFT consensus).
        let own_commit = self.own_certificate(&built.block, key);
        self.commit(
            &built.block,
            &built.applied,
            &skipped,
            view.prior_versions(),
            own_commit.as_ref(),
        )?;
        let _ = self
            .announcements
            .send(Announcement::Block(Arc::new(built.block.clone())));
        Ok(built.block)
    }

    /// Validates a block from elsewhere (every rule, every signature) and commits it.
    pub fn import_block(&self, block: &Block, now: Timestamp) -> Result<(), ChainError> {
        let _commit = self.commit_lock.lock();
        let (applied, view, _hold) = self.apply_on_tip(block, now)?;
        self.commit(block, &applied, &[], view.prior_versions(), None)
    }

    /// This producer's precommit for `block`, as a certificate, when it alone is a quorum.
    fn own_certificate(&self, block: &Block, key: &KeyPair) -> Option<CommitCertificate> {
        let hash = block.hash().ok()?;
        let height = block.header.height;
        let cert = CommitCertificate::sign(&self.params.chain_id, height, 0, hash, &[key]).ok()?;
        let set = self.validator_set_at(height)?;
        cert.verify(&self.params.chain_id, height, &hash, &set)
            .ok()
            .map(|()| cert)
    }

    fn commit(
        &self,
        block: &Block,
        applied: &doin_tx_core::AppliedBlock,
        also_drop: &[TxId],
        prior: &PriorVersions,
        own_commit: Option<&CommitCertificate>,
    ) -> Result<(), ChainError> {
        let started = Instant::now();
        self.store
            .commit_block(block, applied, prior, own_commit, &|h| {
                self.params.closes_epoch(h)
            })?;
        self.metrics
            .block_commit_seconds
            .observe(started.elapsed().as_secs_f64());
        if let Some(c) = own_commit.or(block.header.last_commit.as_ref()) {
            self.metrics
                .certified_height
                .set(i64::try_from(c.height).unwrap_or(i64::MAX));
            self.metrics
                .commit_signers
                .set(i64::try_from(c.signatures.len()).unwrap_or(i64::MAX));
        }
        let hash = block.hash()?;
        let height = block.header.height;
        {
            let mut tip = self.tip.write();
            tip.header = block.header.clone();
            tip.hash = hash;
            tip.final_height = height;
            if let Some(sets) = &applied.diff.validators {
                tip.validators = Arc::new(sets.clone());
            }
        }
        // Mempool: drop what was included, then re-check every sender of the block.
        let included: Vec<TxId> = applied.txs.iter().map(|t| t.id()).collect();
        let mut senders: Vec<PublicKeyBytes> =
            applied.txs.iter().map(|t| t.body().sender).collect();
        senders.sort();
        senders.dedup();
        let dropped = {
            let mut pool = self.mempool.lock();
            // Persisted entries of included transactions go in the follow-up delete below, not
            // in the block's batch: a block from elsewhere mostly holds transactions this node
            // never had, and a tombstone per transaction would cost every import. After a crash
            // in between, reloading the pool drops them (their nonces are used).
            let was_pending: Vec<TxId> = included
                .iter()
                .filter(|id| pool.contains(id))
                .copied()
                .collect();
            let accounts = &applied.diff.accounts;
            let mut dropped: Vec<(TxId, DropReason)> = pool
                .on_block(&included, &senders, |k| {
                    accounts.get(k).copied().unwrap_or_default()
                })
                .into_iter()
                .map(|id| (id, DropReason::Invalidated))
                .collect();
            for id in also_drop {
                if let Some(sender) = pool.get(id).map(|t| t.body().sender) {
                    let acct = self.account(&sender).unwrap_or_default();
                    // A transaction the block builder refused is re-checked with its queue.
                    let gone = pool.revalidate_sender(&sender, acct);
                    dropped.extend(gone.into_iter().map(|id| (id, DropReason::Invalidated)));
                }
            }
            let expired = pool.expire(now_ms());
            dropped.extend(expired.into_iter().map(|id| (id, DropReason::Expired)));
            (was_pending, dropped)
        };
        let (was_pending, dropped) = dropped;
        if !dropped.is_empty() {
            tracing::debug!(count = dropped.len(), "dropped pending transactions");
        }
        self.drop_pending(&was_pending, dropped)?;
        self.metrics.blocks_committed.inc();
        self.metrics.txs_included.inc_by(applied.txs.len() as u64);
        self.metrics.block_txs.observe(applied.txs.len() as f64);
        let stats = &applied.diff.chain_stats;
        let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.metrics.burned.set(gauge(stats.burned.base_units()));
        self.metrics
            .imported
            .set(gauge(stats.imported.base_units()));
        self.metrics.staked.set(gauge(stats.staked.base_units()));
        self.metrics
            .main_anchor_height
            .set(gauge(stats.main_anchor.height));
        let network = self.params.network;
        let main_blocks = applied
            .anchored
            .iter()
            .map(|e| views::main_block_event(e, height, network))
            .collect();
        self.events.push_block(
            height,
            views::applied_block_event(block, &hash, &applied.txs),
            main_blocks,
        );
        self.refresh_gauges();
        tracing::info!(
            height,
            hash = %hash,
            txs = applied.txs.len(),
            base_fee = %block.header.base_fee,
            "committed transfer block"
        );
        Ok(())
    }

    fn refresh_gauges(&self) {
        let (n, bytes) = self.mempool_stats();
        self.metrics.mempool_txs.set(n as i64);
        self.metrics.mempool_bytes.set(bytes as i64);
        self.metrics
            .height
            .set(i64::try_from(self.tip.read().header.height).unwrap_or(i64::MAX));
        self.metrics
            .base_fee
            .set(i64::try_from(self.next_base_fee().base_units()).unwrap_or(i64::MAX));
    }

    /// Blocks produced and transactions submitted here, for announcing to peers.
    pub fn announcements(&self) -> tokio::sync::broadcast::Receiver<Announcement> {
        self.announcements.subscribe()
    }

    /// Starts rebuilding a relayed compact block from the mempool.
    pub fn rebuild(
        &self,
        compact: doin_tx_core::CompactBlock,
    ) -> Result<doin_tx_core::PartialBlock, BlockError> {
        let pool = self.mempool.lock();
        doin_tx_core::PartialBlock::new(compact, pool.iter().map(|t| (t.id(), t.signed())))
    }

    /// All pending transactions of `key`, in nonce order.
    pub fn pending_of(&self, key: &PublicKeyBytes) -> Vec<SignedTx> {
        self.mempool
            .lock()
            .pending_of(key)
            .into_iter()
            .map(|t| t.signed().clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use doin_crypto::KeyPair;
    use doin_tx_core::{SignedTx, TxPayload};
    use doin_types::{ChainId, Hash256};

    fn signed(n: u64) -> SignedTx {
        let key = KeyPair::generate();
        TxBody {
            chain_id: ChainId(Hash256([7; 32])),
            sender: key.public(),
            nonce: n,
            max_fee_per_weight: Amount::from_base_units(10),
            max_priority_fee_per_weight: Amount::from_base_units(1),
            payload: TxPayload::Transfer {
                to: KeyPair::generate().public(),
                amount: Amount::from_base_units(1 + n),
            },
        }
        .sign(&key)
        .unwrap()
    }

    #[test]
    fn signatures_are_checked_on_every_core_and_one_bad_one_is_found() {
        for len in [0, 1, 63, 64, 65, 200] {
            let mut txs: Vec<SignedTx> = (0..len).map(signed).collect();
            assert!(signatures_hold(&txs), "{len} good signatures");
            for bad in [0, len / 2, len.saturating_sub(1)] {
                let bad = bad as usize;
                if bad < txs.len() {
                    txs[bad].signature.0[5] ^= 1;
                    assert!(!signatures_hold(&txs), "bad signature at {bad} of {len}");
                    txs[bad].signature.0[5] ^= 1;
                }
            }
        }
    }
}
