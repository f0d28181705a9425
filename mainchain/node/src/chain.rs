//! `MainChain`: the main-chain service around the sans-IO rules. It owns the tip, the message
//! pool and the store, and is the only writer of main-chain data.
//!
//! Every submission is checked against the tip before it is pooled (so a client hears about a
//! mistake at once); the block builder checks it again, with the consensus rules, when it goes
//! into a block. A block and everything it changes is written in one fsynced batch before the
//! in-memory tip moves, so a crash never leaves the two apart.

mod reorg;
mod submit;

pub use reorg::ImportOutcome;
use reorg::SideBlocks;
use submit::{kind_label, message_id};
pub use submit::{Rejection, SubmitError, Submitted};

use crate::metrics::MainMetrics;
use crate::pool::Pool;
use crate::store::{
    pool_key, BlockWrite, CommitInfo, HistoryPoint, MainStore, OptimaeRecord, OptimaeStatus,
    PoolKind, VoteRecord,
};
use doin_crypto::KeyPair;
use doin_main_core::quorum;
use doin_main_core::{
    apply_block, build_block, genesis_header, BuildError, DomainId, GenesisError, MainBlock,
    MainBlockError, MainBody, MainChainParams, MainContext, MainGenesisSpec, MainHeader, MainState,
    NoTxChain, OptimaeEvent, OptimaeId, TxChainView,
};
use doin_store::{KvStore, StoreError};
use doin_telemetry::Metrics;
use doin_types::{Hash256, PublicKeyBytes, SignatureBytes, Timestamp};
use parking_lot::{Mutex, RwLock};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

/// Largest encoded message accepted from a client.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

#[derive(Clone, Debug)]
pub struct MainChainConfig {
    /// States kept for look-ups and future reorgs.
    pub keep_states: u64,
    /// Messages the pool holds at most.
    pub max_pool_messages: usize,
    /// Blocks a round waits for missing votes once a decision is possible.
    pub vote_patience_blocks: u64,
}

impl Default for MainChainConfig {
    fn default() -> Self {
        MainChainConfig {
            keep_states: 64,
            max_pool_messages: 100_000,
            vote_patience_blocks: 1,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MainChainError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("invalid genesis: {0}")]
    Genesis(#[from] GenesisError),
    #[error("block rejected: {0}")]
    Block(#[from] MainBlockError),
    #[error(
        "the database belongs to main chain {stored}, the configuration describes {configured}"
    )]
    GenesisMismatch { stored: String, configured: String },
    #[error("main-chain data is inconsistent: {0}")]
    Inconsistent(String),
    #[error("the transfer chain could not answer: {0}")]
    TxChain(doin_types::PortError),
    #[error("main block {height} builds on a block this node does not have")]
    UnknownParent { height: u64 },
    #[error("a branch forking at main height {fork} would replace blocks the transfer chain anchored (up to {anchored}): they are final")]
    BelowFinality { fork: u64, anchored: u64 },
    #[error("a branch forking at main height {fork} is deeper than the {kept} blocks this node can take back")]
    TooDeep { fork: u64, kept: u64 },
    #[error("metrics: {0}")]
    Metrics(String),
}

/// The tip and the state after it.
#[derive(Clone)]
pub struct Head {
    pub header: MainHeader,
    pub hash: Hash256,
    pub state: Arc<MainState>,
}

pub struct MainChain {
    params: MainChainParams,
    spec: MainGenesisSpec,
    store: MainStore,
    head: RwLock<Head>,
    pool: Mutex<Pool>,
    /// Serialises block production and import.
    commit_lock: Mutex<()>,
    /// Blocks seen on branches other than the best chain (memory only, bounded).
    side: Mutex<SideBlocks>,
    /// Held shared by whoever must see the best chain stand still (the transfer chain while it
    /// anchors main blocks), exclusively by a reorganisation.
    reorg_gate: Arc<RwLock<()>>,
    metrics: MainMetrics,
    cfg: MainChainConfig,
    /// The transfer chain whose final blocks this chain checkpoints. Without one nothing is
    /// checkpointed and blocks that move their checkpoint cannot be checked.
    tx_chain: RwLock<Arc<dyn TxChainView + Send + Sync>>,
    /// What this node originated and peers should hear about.
    announcements: tokio::sync::broadcast::Sender<MainAnnouncement>,
}

/// Something this node originated: a block it produced or a message its own workers or clients
/// submitted. (What arrives from peers is relayed by gossip and never announced again.)
#[derive(Clone, Debug)]
pub enum MainAnnouncement {
    Block(Arc<MainBlock>),
    Message(PoolKind, Arc<Vec<u8>>),
    /// The best chain switched branches (for this node's event stream; not relayed).
    Reorg(Arc<MainReorg>),
}

/// A switch of the best chain to a branch with more work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MainReorg {
    /// The last block both branches share.
    pub fork: u64,
    /// Height and hash of each block taken off, lowest first.
    pub disconnected: Vec<(u64, Hash256)>,
    /// Height and hash of each block of the new branch, lowest first.
    pub connected: Vec<(u64, Hash256)>,
}

impl MainChain {
    /// Opens (or initialises) the main chain in `kv`.
    pub fn open(
        kv: Arc<dyn KvStore>,
        spec: MainGenesisSpec,
        cfg: MainChainConfig,
        metrics: &Metrics,
    ) -> Result<Arc<MainChain>, MainChainError> {
        let params = MainChainParams::from_genesis(&spec)?;
        let store = MainStore::new(kv, cfg.keep_states);
        match store.genesis_spec()? {
            None => {
                let state = MainState::genesis(&spec)?;
                let header = genesis_header(&params, &state, spec.genesis_time)?;
                let block = MainBlock {
                    header,
                    signature: SignatureBytes([0; 64]),
                    body: MainBody::default(),
                };
                store.commit_genesis(&spec, &block, &state)?;
                tracing::info!(chain_id = %params.chain_id, "initialised a new main chain");
            }
            Some(stored) if stored != spec => {
                return Err(MainChainError::GenesisMismatch {
                    stored: stored
                        .chain_id()
                        .map(|c| c.to_string())
                        .unwrap_or_else(|_| "unreadable".into()),
                    configured: params.chain_id.to_string(),
                })
            }
            Some(_) => {}
        }
        let height = store
            .tip_height()?
            .ok_or_else(|| MainChainError::Inconsistent("no tip recorded".into()))?;
        let block = store
            .block(height)?
            .ok_or_else(|| MainChainError::Inconsistent(format!("tip block {height} missing")))?;
        let state = store
            .state(height)?
            .ok_or_else(|| MainChainError::Inconsistent(format!("state {height} missing")))?;
        let root = state.root().map_err(MainChainError::Inconsistent)?;
        if root != block.header.state_root {
            return Err(MainChainError::Inconsistent(format!(
                "stored state at height {height} does not match the block's state root"
            )));
        }
        let hash = block.hash()?;
        let metrics =
            MainMetrics::register(metrics).map_err(|e| MainChainError::Metrics(e.to_string()))?;
        let chain = Arc::new(MainChain {
            params,
            spec,
            store,
            head: RwLock::new(Head {
                header: block.header,
                hash,
                state: Arc::new(state),
            }),
            pool: Mutex::new(Pool::default()),
            commit_lock: Mutex::new(()),
            side: Mutex::new(SideBlocks::default()),
            reorg_gate: Arc::new(RwLock::new(())),
            metrics,
            cfg,
            tx_chain: RwLock::new(Arc::new(NoTxChain)),
            announcements: tokio::sync::broadcast::channel(1024).0,
        });
        chain.reload_pool()?;
        chain.refresh_gauges();
        tracing::info!(height, tip = %hash, "main chain open");
        Ok(chain)
    }

    pub fn params(&self) -> &MainChainParams {
        &self.params
    }

    pub fn genesis_spec(&self) -> &MainGenesisSpec {
        &self.spec
    }

    pub fn head(&self) -> Head {
        self.head.read().clone()
    }

    pub fn store(&self) -> &MainStore {
        &self.store
    }

    pub fn pool_len(&self) -> usize {
        self.pool.lock().len()
    }

    /// Votes pooled for an optimae's round.
    pub fn pooled_votes(&self, id: &OptimaeId, round: u8) -> usize {
        self.pool.lock().votes_for(id, round)
    }

    /// The seed the quorum of a pending optimae is (or will be) drawn with: the hash of the
    /// block that carried its reveal.
    pub fn quorum_seed(&self, head: &Head, id: &OptimaeId) -> Option<Hash256> {
        let p = head.state.pending.get(id)?;
        match p.quorum_seed {
            Some(s) => Some(s),
            None if p.revealed_at == head.header.height => Some(head.hash),
            None => None,
        }
    }

    /// The quorum of a pending optimae's current round.
    pub fn quorum(&self, head: &Head, id: &OptimaeId) -> Option<Vec<PublicKeyBytes>> {
        let p = head.state.pending.get(id)?;
        let seed = self.quorum_seed(head, id)?;
        Some(quorum::select(
            &head.state.eligible(&p.domain),
            &seed,
            id,
            p.round,
        ))
    }

    fn reload_pool(&self) -> Result<(), MainChainError> {
        let entries = self.store.pool_entries()?;
        let n = entries.len();
        let mut bad = Vec::new();
        for (kind, bytes) in entries {
            if let Err(e) = self.check_and_pool(kind, &bytes, false) {
                tracing::debug!(error = %e, "dropping a pooled main-chain message that is no longer valid");
                if let Some(id) = message_id(kind, &bytes) {
                    bad.push(pool_key(kind, &id));
                }
            }
        }
        let dropped = bad.len();
        self.store.pool_delete(bad)?;
        tracing::info!(kept = n - dropped, dropped, "main-chain pool reloaded");
        Ok(())
    }

    /// Checks a submitted message against the tip and pools it (persisted); a new one is then
    /// announced to peers.
    pub fn submit(&self, kind: PoolKind, bytes: &[u8]) -> Result<Submitted, SubmitError> {
        let res = self.submit_relayed(kind, bytes);
        if let Ok(s) = &res {
            if s.new {
                let _ = self
                    .announcements
                    .send(MainAnnouncement::Message(kind, Arc::new(bytes.to_vec())));
            }
        }
        res
    }

    /// Blocks produced and messages submitted here, for announcing to peers.
    pub fn announcements(&self) -> tokio::sync::broadcast::Receiver<MainAnnouncement> {
        self.announcements.subscribe()
    }

    /// `submit` for a message from a peer: checked and pooled the same way, not announced.
    pub fn submit_relayed(&self, kind: PoolKind, bytes: &[u8]) -> Result<Submitted, SubmitError> {
        let started = Instant::now();
        let res = self.check_and_pool(kind, bytes, true);
        let outcome = match &res {
            Ok(s) if s.new => "accepted",
            Ok(_) => "known",
            Err(SubmitError::Rejected(_)) => "rejected",
            Err(SubmitError::Store(_)) => "error",
        };
        self.metrics
            .submissions
            .with_label_values(&[kind_label(kind), outcome])
            .inc();
        self.metrics
            .submit_seconds
            .observe(started.elapsed().as_secs_f64());
        self.refresh_gauges();
        res
    }

    /// The first final transfer block that anchors main height `height` (its height and
    /// hash), if this node runs the transfer chain and one does.
    pub fn anchored_by(&self, height: u64) -> Option<(u64, Hash256)> {
        let view = self.tx_chain.read().clone();
        match view.anchoring_block(height) {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, height, "could not look up the transfer block anchoring a main block");
                None
            }
        }
    }

    /// The highest main height the transfer chain this node runs has anchored: blocks at or
    /// below it are never reorganised (0 when nothing is anchored, or without a transfer
    /// chain, or when it cannot be read).
    pub fn anchored_height(&self) -> u64 {
        let view = self.tx_chain.read().clone();
        view.anchored_main_height().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "could not read the anchored main height");
            0
        })
    }

    /// Connects the transfer chain this node runs: main blocks checkpoint it from now on.
    pub fn set_tx_view(&self, tx_chain: Arc<dyn TxChainView + Send + Sync>) {
        *self.tx_chain.write() = tx_chain;
    }

    /// Builds, signs and commits a block if the pool holds enough verified work (or, after the
    /// carrier interval, anything to carry). `Ok(None)`: nothing to do yet.
    pub fn produce(
        &self,
        key: &KeyPair,
        now: Timestamp,
    ) -> Result<Option<MainBlock>, MainChainError> {
        let _guard = self.commit_lock.lock();
        let head = self.head();
        let time = Timestamp(now.0.max(head.header.time.0 + 1));
        let next = head.header.height + 1;
        let candidates = {
            let pool = self.pool.lock();
            MainBody {
                registrations: pool.registrations.values().cloned().collect(),
                commits: pool.commits.values().cloned().collect(),
                reveals: pool.reveals.values().cloned().collect(),
                verdicts: pool.verdicts(
                    &head.state,
                    &head.hash,
                    next,
                    self.cfg.vote_patience_blocks,
                ),
                coinbase: Vec::new(),
            }
        };
        let started = Instant::now();
        let tx_chain = self.tx_chain.read().clone();
        let built = match build_block(
            &self.params,
            &head.state,
            &head.header,
            MainContext {
                now: time,
                tx_chain: tx_chain.as_ref(),
            },
            key,
            &candidates,
        ) {
            Ok(b) => b,
            Err(BuildError::NotEnoughWork { .. }) => return Ok(None),
            Err(BuildError::Block(e)) => return Err(e.into()),
        };
        self.metrics
            .block_build_seconds
            .observe(started.elapsed().as_secs_f64());
        for s in &built.skipped {
            tracing::debug!(kind = s.kind, index = s.index, error = %s.error, "left a pooled message out of the block");
        }
        self.commit(
            &head,
            &built.block,
            built.applied.state,
            &built.applied.events,
        )?;
        let _ = self
            .announcements
            .send(MainAnnouncement::Block(Arc::new(built.block.clone())));
        Ok(Some(built.block))
    }

    /// Checks a block from elsewhere with every consensus rule and commits it when it extends
    /// the tip; a block on another branch is kept, and the node switches to that branch once
    /// it carries more work (see the `reorg` module).
    pub fn import(
        &self,
        block: &MainBlock,
        now: Timestamp,
    ) -> Result<ImportOutcome, MainChainError> {
        let _guard = self.commit_lock.lock();
        let head = self.head();
        if block.header.parent != head.hash {
            return self.import_other_branch(&head, block, now);
        }
        let tx_chain = self.tx_chain.read().clone();
        let applied = apply_block(
            &self.params,
            &head.state,
            &head.header,
            block,
            MainContext {
                now,
                tx_chain: tx_chain.as_ref(),
            },
        )?;
        self.commit(&head, block, applied.state, &applied.events)?;
        Ok(ImportOutcome::Extended)
    }

    /// Holds the best chain still (no reorganisation) until the returned guard is dropped.
    pub fn hold_best_chain(&self) -> parking_lot::ArcRwLockReadGuard<parking_lot::RawRwLock, ()> {
        self.reorg_gate.read_arc()
    }

    /// Is the block with `hash` on the best chain or a known side branch?
    pub fn knows(&self, hash: &Hash256) -> Result<bool, StoreError> {
        Ok(self.side.lock().contains(hash) || self.store.height_of(hash)?.is_some())
    }

    fn commit(
        &self,
        head: &Head,
        block: &MainBlock,
        state: MainState,
        events: &[OptimaeEvent],
    ) -> Result<(), MainChainError> {
        let h = block.header.height;
        let hash = block.hash()?;
        let mut optimae: BTreeMap<OptimaeId, OptimaeRecord> = BTreeMap::new();
        let mut commits: BTreeMap<Hash256, CommitInfo> = BTreeMap::new();
        let mut history = Vec::new();
        let load = |id: &OptimaeId,
                    map: &mut BTreeMap<OptimaeId, OptimaeRecord>|
         -> Result<Option<OptimaeRecord>, StoreError> {
            if let Some(r) = map.remove(id) {
                return Ok(Some(r));
            }
            self.store.optimae(id)
        };
        let record_votes =
            |r: &mut OptimaeRecord,
             round: u8,
             votes: &[(PublicKeyBytes, doin_main_core::Fx, bool)]| {
                r.votes.extend(votes.iter().map(|(k, m, a)| VoteRecord {
                    round,
                    evaluator: *k,
                    metric: *m,
                    agreed: *a,
                }));
            };
        for ev in events {
            match ev {
                OptimaeEvent::Registered { domain, .. } => {
                    tracing::info!(%domain, height = h, "domain registered");
                }
                OptimaeEvent::Committed {
                    commit_id,
                    domain,
                    optimizer,
                } => {
                    commits.insert(
                        *commit_id,
                        CommitInfo {
                            id: *commit_id,
                            domain: domain.clone(),
                            optimizer: *optimizer,
                            height: h,
                            revealed_as: None,
                        },
                    );
                }
                OptimaeEvent::Revealed {
                    optimae_id,
                    commit_id,
                    domain,
                    optimizer,
                    reported,
                } => {
                    let mut info = match commits.remove(commit_id) {
                        Some(c) => Some(c),
                        None => self.store.commit_info(commit_id)?,
                    };
                    let committed_at = info.as_ref().map(|c| c.height);
                    if let Some(c) = info.as_mut() {
                        c.revealed_as = Some(*optimae_id);
                        commits.insert(*commit_id, c.clone());
                    }
                    let params = state
                        .pending
                        .get(optimae_id)
                        .map(|p| p.params.clone())
                        .unwrap_or_default();
                    optimae.insert(
                        *optimae_id,
                        OptimaeRecord {
                            id: *optimae_id,
                            commit_id: *commit_id,
                            domain: domain.clone(),
                            optimizer: *optimizer,
                            params,
                            reported: *reported,
                            committed_at,
                            revealed_at: h,
                            status: OptimaeStatus::Revealed,
                            round: 1,
                            decided_at: None,
                            verified: None,
                            work: None,
                            new_best: false,
                            votes: Vec::new(),
                        },
                    );
                }
                OptimaeEvent::Accepted {
                    optimae_id,
                    domain,
                    round,
                    verified,
                    work,
                    new_best,
                    votes,
                    ..
                } => {
                    if let Some(mut r) = load(optimae_id, &mut optimae)? {
                        r.status = OptimaeStatus::Accepted;
                        r.round = *round;
                        r.decided_at = Some(h);
                        r.verified = Some(*verified);
                        r.work = Some(*work);
                        r.new_best = *new_best;
                        record_votes(&mut r, *round, votes);
                        optimae.insert(*optimae_id, r);
                    }
                    if *new_best {
                        history.push((
                            domain.clone(),
                            HistoryPoint {
                                height: h,
                                optimae: *optimae_id,
                                metric: *verified,
                            },
                        ));
                    }
                    self.metrics.decided.with_label_values(&["accepted"]).inc();
                }
                OptimaeEvent::Rejected {
                    optimae_id,
                    round,
                    verified,
                    votes,
                    ..
                } => {
                    if let Some(mut r) = load(optimae_id, &mut optimae)? {
                        r.status = OptimaeStatus::Rejected;
                        r.round = *round;
                        r.decided_at = Some(h);
                        r.verified = Some(*verified);
                        record_votes(&mut r, *round, votes);
                        optimae.insert(*optimae_id, r);
                    }
                    self.metrics.decided.with_label_values(&["rejected"]).inc();
                }
                OptimaeEvent::Escalated { optimae_id, votes } => {
                    if let Some(mut r) = load(optimae_id, &mut optimae)? {
                        r.status = OptimaeStatus::Verifying;
                        record_votes(&mut r, 1, votes);
                        r.round = 2;
                        optimae.insert(*optimae_id, r);
                    }
                    self.metrics.decided.with_label_values(&["escalated"]).inc();
                }
                OptimaeEvent::Inconclusive { optimae_id, votes } => {
                    if let Some(mut r) = load(optimae_id, &mut optimae)? {
                        r.status = OptimaeStatus::Inconclusive;
                        r.decided_at = Some(h);
                        record_votes(&mut r, 2, votes);
                        optimae.insert(*optimae_id, r);
                    }
                    self.metrics
                        .decided
                        .with_label_values(&["inconclusive"])
                        .inc();
                }
                OptimaeEvent::Expired { optimae_id } => {
                    if let Some(mut r) = load(optimae_id, &mut optimae)? {
                        r.status = OptimaeStatus::Expired;
                        r.decided_at = Some(h);
                        optimae.insert(*optimae_id, r);
                    }
                    self.metrics.decided.with_label_values(&["expired"]).inc();
                }
            }
        }
        // Optimae revealed in the parent now have their quorum: they are being verified.
        for (id, p) in &state.pending {
            if p.round == 1 && p.revealed_at + 1 == h {
                if let Some(mut r) = load(id, &mut optimae)? {
                    r.status = OptimaeStatus::Verifying;
                    optimae.insert(*id, r);
                }
            }
        }
        let mut pool = self.pool.lock();
        let pool_deletes = pool.retain_valid(&state);
        let started = Instant::now();
        self.store.commit_block(BlockWrite {
            block,
            hash,
            state: &state,
            optimae: optimae.into_values().collect(),
            commits: commits.into_values().collect(),
            history,
            pool_deletes,
        })?;
        self.metrics
            .block_commit_seconds
            .observe(started.elapsed().as_secs_f64());
        drop(pool);
        {
            let mut w = self.head.write();
            *w = Head {
                header: block.header.clone(),
                hash,
                state: Arc::new(state),
            };
        }
        self.metrics.blocks_committed.inc();
        self.refresh_gauges();
        let kind = if block.header.counted_work.0 > 0 {
            "work"
        } else {
            "carrier"
        };
        tracing::info!(
            height = h,
            hash = %hash,
            kind,
            work = %block.header.counted_work,
            threshold = %block.header.threshold,
            commits = block.body.commits.len(),
            reveals = block.body.reveals.len(),
            verdicts = block.body.verdicts.len(),
            parent = %head.hash,
            "main block committed"
        );
        Ok(())
    }

    fn refresh_gauges(&self) {
        let head = self.head.read();
        self.metrics.height.set(head.header.height as i64);
        self.metrics
            .tx_checkpoint_height
            .set(i64::try_from(head.header.tx_checkpoint.height).unwrap_or(i64::MAX));
        self.metrics
            .threshold
            .set(head.state.controller.threshold.0 as f64 / 1e9);
        self.metrics
            .cumulative_work
            .set(head.header.cumulative_work as f64 / 1e9);
        self.metrics
            .pending_optimae
            .set(head.state.pending.len() as i64);
        drop(head);
        self.metrics
            .pool_messages
            .set(self.pool.lock().len() as i64);
    }

    /// The block at `height` on the chain.
    pub fn block(&self, height: u64) -> Result<Option<MainBlock>, StoreError> {
        self.store.block(height)
    }

    pub fn block_by_hash(&self, hash: &Hash256) -> Result<Option<MainBlock>, StoreError> {
        match self.store.height_of(hash)? {
            Some(h) => self.store.block(h),
            None => Ok(None),
        }
    }

    /// Is the domain known on chain?
    pub fn has_domain(&self, id: &DomainId) -> bool {
        self.head.read().state.domains.contains_key(id)
    }
}
