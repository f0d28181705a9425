//! The transfer chain on the network: gossip of transactions and compact blocks, the sync
//! service peers ask, and the sync loop that catches this node up with its best peer.
//!
//! This module moves bytes between `doin-net` and `TxChain`; every rule is checked by the chain
//! (and so by the core). It decides only what a peer's message was worth: a message that can
//! never be valid costs the sender score, one that is merely late or early is ignored.
//!
//! Tasks (all stop on shutdown; the first to fail ends the service):
//! - *transactions*: gossip → mempool;
//! - *blocks*: compact block → rebuilt from the mempool (+ missing ones fetched) → imported;
//! - *server*: answers `Status`, `Headers`, `Blocks` and `Txs` requests, and the snapshot
//!   requests of warp sync when this node serves snapshots ([`crate::snapshot_shelf`]);
//! - *announcer*: publishes what this node produced or was sent by its own clients;
//! - *rebroadcast*: offers the transactions still pending after a while to the peers again (a
//!   transaction admitted while gossip had no peer to send it to, say just after a restart,
//!   would otherwise reach no block producer);
//! - *sync*: catches up with the best peer, headers first (`doin-sync`, with this chain's
//!   side in [`crate::sync`]).

use crate::chain::{Announcement, SubmitError, TxChain};
use crate::mempool::MempoolError;
use crate::net_ctx::{ask, blame, fetch_range, import, Ctx, P2pMetrics};
use crate::snapshot_shelf::SnapshotShelf;
use crate::sync::TxSyncIo;
pub use crate::sync::{SyncReport, SyncState};
use crate::wire::{
    ChainStatus, SyncRequest, SyncResponse, ANSWER_BYTES_TARGET, MAX_BLOCKS_PER_ANSWER,
    MAX_HEADERS_PER_ANSWER,
};
use doin_net::tasks::{announce, join_service, next_or_shutdown};
use doin_net::{
    GossipMessage, InboundRequest, Misbehaviour, NetError, NetHandle, Network, Service, Topic,
    Verdict,
};
use doin_sync::{consecutive, serve, sync_loop};
use doin_telemetry::Metrics;
use doin_tx_core::TxId;
use doin_tx_core::{Block, CompactBlock};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, Notify};

/// The transfer chain's network service, attached before the network starts.
pub struct TxP2p {
    chain: Arc<TxChain>,
    net: NetHandle,
    txs: mpsc::Receiver<GossipMessage>,
    blocks: mpsc::Receiver<GossipMessage>,
    requests: mpsc::Receiver<InboundRequest>,
    state: SyncState,
    metrics: P2pMetrics,
    sync_interval: Duration,
    max_response_bytes: usize,
    snapshots: Option<Arc<SnapshotShelf>>,
}

impl TxP2p {
    /// Subscribes the chain's topics and registers its request service on `network`.
    pub fn attach(
        chain: Arc<TxChain>,
        network: &mut Network,
        metrics: &Metrics,
        sync_interval: Duration,
        max_response_bytes: usize,
    ) -> Result<TxP2p, String> {
        let e = |e: NetError| e.to_string();
        Ok(TxP2p {
            txs: network.subscribe(Topic::TxTransactions).map_err(e)?,
            blocks: network.subscribe(Topic::TxCompactBlocks).map_err(e)?,
            requests: network.serve(Service::TxSync),
            net: network.handle(),
            chain,
            state: SyncState::default(),
            metrics: P2pMetrics::register(metrics).map_err(|e| e.to_string())?,
            sync_interval,
            max_response_bytes,
            snapshots: None,
        })
    }

    /// Serves the snapshots on `shelf` to peers that warp-sync.
    pub fn serve_snapshots(mut self, shelf: Arc<SnapshotShelf>) -> TxP2p {
        self.snapshots = Some(shelf);
        self
    }

    pub fn sync_state(&self) -> SyncState {
        self.state.clone()
    }

    /// Runs every task until shutdown (or until one fails).
    pub async fn run(self, shutdown: watch::Receiver<bool>) -> Result<(), String> {
        let wake_sync = Arc::new(Notify::new());
        let ctx = Ctx {
            chain: self.chain,
            net: self.net,
            metrics: self.metrics,
            wake_sync: wake_sync.clone(),
            max_response_bytes: self.max_response_bytes,
        };
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(transactions(ctx.clone(), self.txs, shutdown.clone()));
        tasks.spawn(blocks(ctx.clone(), self.blocks, shutdown.clone()));
        let chain = ctx.chain.clone();
        let snapshots = self.snapshots;
        tasks.spawn(serve(
            ctx.net.clone(),
            self.requests,
            shutdown.clone(),
            |bytes| SyncRequest::decode(bytes).map_err(|e| e.to_string()),
            Arc::new(move |req| answer(&chain, snapshots.as_deref(), req)),
        ));
        tasks.spawn(announce(
            ctx.net.clone(),
            ctx.chain.announcements(),
            shutdown.clone(),
            "transfer-chain",
            announcement_message,
        ));
        tasks.spawn(rebroadcast(ctx.clone(), shutdown.clone()));
        tasks.spawn(sync_loop(
            Arc::new(TxSyncIo(ctx)),
            self.state,
            self.sync_interval,
            wake_sync,
            shutdown,
        ));
        join_service(tasks, "transfer-chain network").await
    }
}

/// How often the rebroadcast task looks; how long a transaction waits before it is offered
/// again, and between two offers: longer than gossip's duplicate window
/// ([`doin_net::GOSSIP_DUPLICATE_WINDOW`]), within which gossip refuses to send a message again;
/// and how many go out each time.
const REBROADCAST_EVERY: Duration = Duration::from_secs(15);
const REBROADCAST_AFTER: Duration = Duration::from_secs(65);
const REBROADCAST_MAX: usize = 256;

async fn rebroadcast(ctx: Ctx, mut shutdown: watch::Receiver<bool>) -> Result<(), String> {
    const _: () =
        assert!(REBROADCAST_AFTER.as_secs() > doin_net::GOSSIP_DUPLICATE_WINDOW.as_secs());
    let mut tick = tokio::time::interval(REBROADCAST_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // When each transaction was last offered by this task.
    let mut offered: HashMap<TxId, Instant> = HashMap::new();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return Ok(()),
        }
        let chain = ctx.chain.clone();
        let min_age = REBROADCAST_AFTER.as_millis() as u64;
        let waiting =
            tokio::task::spawn_blocking(move || chain.waiting_txs(min_age, REBROADCAST_MAX))
                .await
                .map_err(|e| format!("rebroadcast task failed: {e}"))?;
        offered.retain(|id, _| waiting.iter().any(|(w, _)| w == id));
        let now = Instant::now();
        let mut sent = 0usize;
        for (id, bytes) in waiting {
            if offered
                .get(&id)
                .is_some_and(|at| now.duration_since(*at) < REBROADCAST_AFTER)
            {
                continue;
            }
            if ctx.net.publish(Topic::TxTransactions, bytes).await.is_err() {
                return Ok(()); // the network stopped: shutdown is under way
            }
            offered.insert(id, now);
            sent += 1;
        }
        if sent > 0 {
            tracing::debug!(count = sent, "offered pending transactions to peers again");
        }
    }
}

async fn transactions(
    ctx: Ctx,
    mut rx: mpsc::Receiver<GossipMessage>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), String> {
    while let Some(msg) = next_or_shutdown(&mut rx, &mut shutdown).await {
        let chain = ctx.chain.clone();
        let data = msg.data.clone();
        let result = tokio::task::spawn_blocking(move || chain.submit_relayed(&data))
            .await
            .map_err(|e| format!("submit task failed: {e}"))?;
        let verdict = match result {
            Ok(o) if o.new => Verdict::Accept,
            Ok(_) => Verdict::Ignore,
            Err(SubmitError::Rejected(MempoolError::Tx(e))) if e.is_intrinsic() => {
                tracing::debug!(peer = %msg.source, error = %e, "invalid transaction from peer");
                Verdict::Reject
            }
            Err(_) => Verdict::Ignore,
        };
        ctx.net.judge(&msg, verdict).await;
    }
    Ok(())
}

async fn blocks(
    ctx: Ctx,
    mut rx: mpsc::Receiver<GossipMessage>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), String> {
    while let Some(msg) = next_or_shutdown(&mut rx, &mut shutdown).await {
        let (verdict, outcome) = on_compact_block(&ctx, &msg).await;
        ctx.metrics
            .compact_blocks
            .with_label_values(&[outcome])
            .inc();
        ctx.net.judge(&msg, verdict).await;
    }
    Ok(())
}

/// Handles one compact block; returns the verdict and an outcome label.
async fn on_compact_block(ctx: &Ctx, msg: &GossipMessage) -> (Verdict, &'static str) {
    let Ok(compact) = CompactBlock::decode(&msg.data, Topic::TxCompactBlocks.max_bytes()) else {
        return (Verdict::Reject, "invalid");
    };
    let params = ctx.chain.params();
    let header = &compact.header;
    if header.chain_id != params.chain_id {
        return (Verdict::Reject, "invalid");
    }
    let tip = ctx.chain.tip();
    if header.height <= tip.header.height {
        return (Verdict::Ignore, "stale");
    }
    if header.height > tip.header.height + 1 {
        // We are behind: catch up by range, then later blocks import from gossip again.
        ctx.wake_sync.notify_one();
        return (Verdict::Ignore, "ahead");
    }
    // Check who signed before spending requests on it.
    let signed_ok =
        ctx.chain
            .validator_set_at(header.height)
            .is_some_and(|set| set.contains(&header.proposer))
            && header.hash().ok().is_some_and(|h| {
                doin_crypto::verify(&header.proposer, &h, &compact.signature).is_ok()
            });
    if !signed_ok {
        return (Verdict::Reject, "invalid");
    }
    let mut partial = match ctx.chain.rebuild(compact) {
        Ok(p) => p,
        Err(_) => return (Verdict::Reject, "invalid"),
    };
    let missing = partial.missing();
    let mut outcome = "rebuilt";
    if !missing.is_empty() {
        outcome = "fetched-missing";
        let req = SyncRequest::Txs {
            block: partial.hash(),
            indexes: missing.clone(),
        };
        match ask(ctx, msg.source, &req).await {
            Ok(SyncResponse::Txs(txs)) => {
                ctx.metrics.missing_txs_fetched.inc_by(txs.len() as u64);
                if partial.fill(&missing, txs).is_err() {
                    ctx.net
                        .penalize(msg.source, Misbehaviour::InvalidResponse)
                        .await;
                    return (Verdict::Ignore, "invalid");
                }
            }
            Ok(_) => {
                ctx.net
                    .penalize(msg.source, Misbehaviour::InvalidResponse)
                    .await;
                return (Verdict::Ignore, "invalid");
            }
            Err(e) => {
                tracing::debug!(peer = %msg.source, error = %e, "could not fetch missing transactions");
                ctx.wake_sync.notify_one();
                return (Verdict::Ignore, "unavailable");
            }
        }
    }
    let height = partial.header().height;
    let block = match partial.into_block() {
        Ok(Some(b)) => b,
        // A short-id collision picked the wrong transaction: take the whole block instead.
        Ok(None) | Err(_) => {
            outcome = "fetched-full";
            match fetch_range(ctx, msg.source, height, 1).await {
                Some(mut blocks) if blocks.len() == 1 => blocks.remove(0),
                _ => return (Verdict::Ignore, "unavailable"),
            }
        }
    };
    match import(&ctx.chain, block).await {
        Ok(()) => (Verdict::Accept, outcome),
        Err(e) => {
            let verdict = blame(&ctx.chain, height, &e);
            if verdict == Verdict::Reject {
                tracing::warn!(peer = %msg.source, height, error = %e, "invalid block from peer");
                (verdict, "invalid")
            } else {
                tracing::debug!(height, error = %e, "block not imported yet");
                (verdict, "deferred")
            }
        }
    }
}

fn answer(
    chain: &TxChain,
    snapshots: Option<&SnapshotShelf>,
    req: SyncRequest,
) -> Result<Vec<u8>, String> {
    let store = chain.store();
    let internal = |e: &dyn std::fmt::Display| format!("node error: {e}");
    let response = match req {
        SyncRequest::Status => {
            let tip = chain.tip();
            SyncResponse::Status(ChainStatus {
                chain_id: chain.params().chain_id,
                height: tip.header.height,
                tip: tip.hash,
                final_height: tip.final_height,
                kept_from: store.kept().bodies_from,
            })
        }
        // History this node pruned is refused outright (its status said what it keeps), not
        // answered with a shorter run a peer might take for all there is.
        SyncRequest::Blocks { from, .. } | SyncRequest::Headers { from, .. }
            if from < store.kept().bodies_from =>
        {
            return Err(format!(
                "pruned: this node keeps blocks from height {}",
                store.kept().bodies_from
            ));
        }
        SyncRequest::Blocks { from, max } => SyncResponse::Blocks(
            consecutive(
                from,
                chain.tip().header.height,
                max.clamp(1, MAX_BLOCKS_PER_ANSWER) as usize,
                ANSWER_BYTES_TARGET,
                |b: &Block| b.header.weight_used as usize + 512,
                |h| store.block(h),
            )
            .map_err(|e| internal(&e))?,
        ),
        SyncRequest::Headers { from, max } => SyncResponse::Headers(
            consecutive(
                from,
                chain.tip().header.height,
                max.clamp(1, MAX_HEADERS_PER_ANSWER) as usize,
                usize::MAX,
                |_| 0,
                |h| store.header(h),
            )
            .map_err(|e| internal(&e))?,
        ),
        SyncRequest::Txs { block, indexes } => {
            let height = store
                .height_of(&block)
                .map_err(|e| internal(&e))?
                .ok_or("unknown block")?;
            let body = store
                .body(height)
                .map_err(|e| internal(&e))?
                .ok_or("block body not kept")?;
            let txs = indexes
                .iter()
                .map(|&i| body.get(i as usize).cloned().ok_or("position out of range"))
                .collect::<Result<Vec<_>, _>>()?;
            SyncResponse::Txs(txs)
        }
        SyncRequest::SnapshotOffers => {
            SyncResponse::SnapshotOffers(snapshots.map(|s| s.offers()).unwrap_or_default())
        }
        SyncRequest::SnapshotFrame { height, index } => SyncResponse::SnapshotFrame(
            snapshots
                .ok_or("this node serves no snapshots")?
                .frame(height, index)?,
        ),
    };
    response.encode().map_err(|e| internal(&e))
}

/// A produced block travels as a compact block; transactions as they are.
fn announcement_message(a: Announcement) -> Option<(Topic, Vec<u8>)> {
    match a {
        Announcement::Tx(bytes) => Some((Topic::TxTransactions, bytes.as_ref().clone())),
        Announcement::Block(block) => {
            match CompactBlock::from_block(&block).and_then(|c| c.encode()) {
                Ok(bytes) => Some((Topic::TxCompactBlocks, bytes)),
                Err(e) => {
                    tracing::error!(error = %e, "cannot encode a produced block for relay");
                    None
                }
            }
        }
    }
}
