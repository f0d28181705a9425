//! The main chain on the network: blocks and work messages (registrations, commits, reveals,
//! votes) by gossip, and sync from the peer with the most work: the last common block is
//! found first, then signed headers after it, checked as a chain, then the blocks that carry
//! exactly those headers. Blocks of another branch go to the chain like any other; the chain
//! decides whether its best chain switches.
//!
//! This module moves bytes between `doin-net` and `MainChain`; every rule is checked by the
//! chain. It decides only what a peer's message was worth: something that can never be valid
//! (undecodable, a bad signature, another chain) costs the sender score; something merely early
//! or late (a reveal outside its window on this node's tip, a vote for a decided optimae) is
//! ignored. Main-chain timing differs between nodes by a block now and then, and an honest peer
//! must never be banned for it.

use crate::chain::{ImportOutcome, MainAnnouncement, MainChain, MainChainError, SubmitError};
use crate::store::PoolKind;
use doin_codec::{decode_exact_bounded, encode};
use doin_main_core::{
    fork_choice, verify_main_header_chain, MainBlock, MainBlockError, MainHeader, SignedMainHeader,
};
use doin_net::tasks::{join_service, next_or_shutdown, tick_or_shutdown};
use doin_net::{
    GossipMessage, InboundRequest, Misbehaviour, NetError, NetHandle, Network, PeerId, Service,
    Topic, Verdict,
};
use doin_types::{ChainId, Hash256, Timestamp};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch, Notify};

/// Blocks one sync answer carries at most.
const MAX_BLOCKS_PER_ANSWER: u32 = 32;

/// Signed headers one sync answer carries at most.
const MAX_HEADERS_PER_ANSWER: u32 = 256;

/// Heights whose headers are fetched and checked before their blocks.
const HEADER_WINDOW: u64 = 1024;

/// How far below its tip a node looks for the last block it shares with a peer. Deeper forks
/// cannot be adopted anyway (the kept states and the anchored blocks bound them).
const FORK_SEARCH_DEPTH: u64 = 64;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MainSyncRequest {
    Status,
    Blocks {
        from: u64,
        max: u32,
    },
    /// Consecutive signed headers from `from` (headers-first sync).
    Headers {
        from: u64,
        max: u32,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MainStatus {
    pub chain_id: ChainId,
    pub height: u64,
    pub tip: Hash256,
    /// Cumulative counted work of the tip: what fork choice compares.
    pub cumulative_work: u128,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MainSyncResponse {
    Status(MainStatus),
    Blocks(Vec<MainBlock>),
    Headers(Vec<SignedMainHeader>),
}

/// Where this node's main chain stands against its peers (`/v1/node/sync`).
#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct MainSyncReport {
    /// True while a peer is more than one block ahead.
    pub syncing: bool,
    pub local_height: u64,
    pub best_peer_height: Option<u64>,
    pub peers_on_chain: usize,
    /// Highest header fetched and checked ahead of its block (headers-first sync).
    pub verified_header_height: u64,
    pub headers_synced: u64,
    pub blocks_synced: u64,
}

#[derive(Clone, Default)]
pub struct MainSyncState(Arc<RwLock<MainSyncReport>>);

impl MainSyncState {
    pub fn report(&self) -> MainSyncReport {
        self.0.read().clone()
    }

    pub fn is_syncing(&self) -> bool {
        self.0.read().syncing
    }
}

/// The main chain's network service, attached before the network starts.
pub struct MainP2p {
    chain: Arc<MainChain>,
    net: NetHandle,
    blocks: mpsc::Receiver<GossipMessage>,
    work: mpsc::Receiver<GossipMessage>,
    requests: mpsc::Receiver<InboundRequest>,
    state: MainSyncState,
    sync_interval: Duration,
    max_response_bytes: usize,
}

#[derive(Clone)]
struct Ctx {
    chain: Arc<MainChain>,
    net: NetHandle,
    state: MainSyncState,
    wake_sync: Arc<Notify>,
    max_response_bytes: usize,
}

impl MainP2p {
    pub fn attach(
        chain: Arc<MainChain>,
        network: &mut Network,
        sync_interval: Duration,
        max_response_bytes: usize,
    ) -> Result<MainP2p, String> {
        let e = |e: NetError| e.to_string();
        Ok(MainP2p {
            blocks: network.subscribe(Topic::MainBlocks).map_err(e)?,
            work: network.subscribe(Topic::MainWork).map_err(e)?,
            requests: network.serve(Service::MainSync),
            net: network.handle(),
            chain,
            state: MainSyncState::default(),
            sync_interval,
            max_response_bytes,
        })
    }

    pub fn sync_state(&self) -> MainSyncState {
        self.state.clone()
    }

    pub async fn run(self, shutdown: watch::Receiver<bool>) -> Result<(), String> {
        let ctx = Ctx {
            chain: self.chain,
            net: self.net,
            state: self.state,
            wake_sync: Arc::new(Notify::new()),
            max_response_bytes: self.max_response_bytes,
        };
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(blocks(ctx.clone(), self.blocks, shutdown.clone()));
        tasks.spawn(work(ctx.clone(), self.work, shutdown.clone()));
        tasks.spawn(server(ctx.clone(), self.requests, shutdown.clone()));
        tasks.spawn(announcer(
            ctx.clone(),
            ctx.chain.announcements(),
            shutdown.clone(),
        ));
        tasks.spawn(sync_loop(ctx, self.sync_interval, shutdown));
        join_service(tasks, "main-chain network").await
    }
}

fn now() -> Timestamp {
    Timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
    )
}

async fn import(chain: &Arc<MainChain>, block: MainBlock) -> Result<ImportOutcome, MainChainError> {
    let chain = chain.clone();
    tokio::task::spawn_blocking(move || chain.import(&block, now()))
        .await
        .map_err(|e| MainChainError::Inconsistent(format!("import task failed: {e}")))?
}

/// What an import failure says about the sender; a block that lost a race with the same
/// height arriving another way is stale.
fn blame(chain: &MainChain, height: u64, e: &MainChainError) -> Verdict {
    if chain.head().header.height >= height {
        return Verdict::Ignore;
    }
    match e {
        MainChainError::Block(b) if b.is_retryable() => Verdict::Ignore,
        MainChainError::Block(_) => Verdict::Reject,
        _ => Verdict::Ignore,
    }
}

async fn blocks(
    ctx: Ctx,
    mut rx: mpsc::Receiver<GossipMessage>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), String> {
    while let Some(msg) = next_or_shutdown(&mut rx, &mut shutdown).await {
        let verdict = match MainBlock::decode(&msg.data) {
            Err(_) => Verdict::Reject,
            Ok(block) if block.header.chain_id != ctx.chain.params().chain_id => Verdict::Reject,
            Ok(block) => {
                let head = ctx.chain.head().header.height;
                let height = block.header.height;
                let known = match block.hash() {
                    Ok(h) => ctx.chain.knows(&h).unwrap_or(true),
                    Err(_) => true,
                };
                if known {
                    Verdict::Ignore
                } else if height > head + 1 {
                    ctx.wake_sync.notify_one();
                    Verdict::Ignore
                } else {
                    // The tip's child, or a block of another branch (which may carry more work).
                    match import(&ctx.chain, block).await {
                        // Only blocks that moved this node's best chain are relayed: a side
                        // block with less work (cheap to make as a carrier) is kept, not spread.
                        Ok(ImportOutcome::Known | ImportOutcome::SideBranch) => Verdict::Ignore,
                        Ok(ImportOutcome::Extended | ImportOutcome::Reorganized { .. }) => {
                            Verdict::Accept
                        }
                        Err(MainChainError::UnknownParent { .. }) => {
                            ctx.wake_sync.notify_one();
                            Verdict::Ignore
                        }
                        Err(e) => {
                            let v = blame(&ctx.chain, height, &e);
                            if v == Verdict::Ignore {
                                // Most often: the transfer block it checkpoints is not here yet.
                                ctx.wake_sync.notify_one();
                            }
                            tracing::debug!(height, error = %e, "main block from peer not imported");
                            v
                        }
                    }
                }
            }
        };
        ctx.net.judge(&msg, verdict).await;
    }
    Ok(())
}

/// Rejections that no tip could make valid.
fn intrinsic(kind: &str) -> bool {
    matches!(
        kind,
        "malformed-message"
            | "wrong-chain"
            | "bad-signature"
            | "invalid-signer"
            | "invalid-domain-spec"
    )
}

async fn work(
    ctx: Ctx,
    mut rx: mpsc::Receiver<GossipMessage>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), String> {
    while let Some(msg) = next_or_shutdown(&mut rx, &mut shutdown).await {
        let Some((kind, body)) = msg
            .data
            .split_first()
            .and_then(|(k, b)| PoolKind::from_byte(*k).map(|k| (k, b.to_vec())))
        else {
            ctx.net.judge(&msg, Verdict::Reject).await;
            continue;
        };
        let chain = ctx.chain.clone();
        let result = tokio::task::spawn_blocking(move || chain.submit_relayed(kind, &body))
            .await
            .map_err(|e| format!("main submit task failed: {e}"))?;
        let verdict = match result {
            Ok(s) if s.new => Verdict::Accept,
            Ok(_) => Verdict::Ignore,
            Err(SubmitError::Rejected(r)) if intrinsic(r.kind) => Verdict::Reject,
            Err(_) => Verdict::Ignore,
        };
        ctx.net.judge(&msg, verdict).await;
    }
    Ok(())
}

async fn server(
    ctx: Ctx,
    mut rx: mpsc::Receiver<InboundRequest>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), String> {
    while let Some(req) = next_or_shutdown(&mut rx, &mut shutdown).await {
        let parsed: MainSyncRequest = match decode_exact_bounded(&req.data, 1024) {
            Ok(r) => r,
            Err(e) => {
                ctx.net.penalize(req.peer, Misbehaviour::BadRequest).await;
                let _ = req.reply.send(Err(format!("malformed request: {e}")));
                continue;
            }
        };
        let chain = ctx.chain.clone();
        let answer = tokio::task::spawn_blocking(move || answer(&chain, parsed))
            .await
            .map_err(|e| format!("main sync server task failed: {e}"))?;
        let _ = req.reply.send(answer);
    }
    Ok(())
}

fn answer(chain: &MainChain, req: MainSyncRequest) -> Result<Vec<u8>, String> {
    let response = match req {
        MainSyncRequest::Status => {
            let head = chain.head();
            MainSyncResponse::Status(MainStatus {
                chain_id: chain.params().chain_id,
                height: head.header.height,
                tip: head.hash,
                cumulative_work: head.header.cumulative_work,
            })
        }
        MainSyncRequest::Blocks { from, max } => {
            let tip = chain.head().header.height;
            let mut blocks = Vec::new();
            let mut h = from.max(1);
            while h <= tip && blocks.len() < max.clamp(1, MAX_BLOCKS_PER_ANSWER) as usize {
                match chain.block(h).map_err(|e| format!("node error: {e}"))? {
                    Some(b) => blocks.push(b),
                    None => break,
                }
                h += 1;
            }
            MainSyncResponse::Blocks(blocks)
        }
        MainSyncRequest::Headers { from, max } => {
            let tip = chain.head().header.height;
            let mut headers = Vec::new();
            let mut h = from.max(1);
            while h <= tip && headers.len() < max.clamp(1, MAX_HEADERS_PER_ANSWER) as usize {
                match chain.block(h).map_err(|e| format!("node error: {e}"))? {
                    Some(b) => headers.push(b.signed_header()),
                    None => break,
                }
                h += 1;
            }
            MainSyncResponse::Headers(headers)
        }
    };
    encode(&response).map_err(|e| format!("node error: {e}"))
}

async fn announcer(
    ctx: Ctx,
    mut rx: broadcast::Receiver<MainAnnouncement>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), String> {
    loop {
        let next = tokio::select! {
            a = rx.recv() => a,
            _ = shutdown.changed() => return Ok(()),
        };
        let (topic, data) = match next {
            Ok(MainAnnouncement::Block(block)) => match block.encode() {
                Ok(bytes) => (Topic::MainBlocks, bytes),
                Err(e) => {
                    tracing::error!(error = %e, "cannot encode a produced main block for relay");
                    continue;
                }
            },
            Ok(MainAnnouncement::Message(kind, bytes)) => {
                let mut data = Vec::with_capacity(bytes.len() + 1);
                data.push(kind as u8);
                data.extend_from_slice(&bytes);
                (Topic::MainWork, data)
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(skipped = n, "main-chain announcements fell behind");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return Ok(()),
        };
        if ctx.net.publish(topic, data).await.is_err() {
            return Ok(());
        }
    }
}

async fn ask(ctx: &Ctx, peer: PeerId, req: &MainSyncRequest) -> Option<MainSyncResponse> {
    let bytes = encode(req).ok()?;
    let answer = match ctx.net.request(peer, Service::MainSync, bytes).await {
        Ok(a) => a,
        Err(e) => {
            tracing::debug!(%peer, error = %e, "main sync request failed");
            return None;
        }
    };
    match decode_exact_bounded(&answer, ctx.max_response_bytes) {
        Ok(r) => Some(r),
        Err(_) => {
            ctx.net.penalize(peer, Misbehaviour::InvalidResponse).await;
            None
        }
    }
}

async fn sync_loop(
    ctx: Ctx,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), String> {
    while tick_or_shutdown(interval, &ctx.wake_sync, &mut shutdown).await {
        sync_round(&ctx).await;
    }
    Ok(())
}

async fn sync_round(ctx: &Ctx) {
    let ours = ctx.chain.params().chain_id;
    let mut best: Option<(PeerId, MainStatus)> = None;
    let mut on_chain = 0;
    for peer in ctx.net.connected_peers().into_iter().take(8) {
        match ask(ctx, peer, &MainSyncRequest::Status).await {
            Some(MainSyncResponse::Status(s)) if s.chain_id == ours => {
                on_chain += 1;
                let more = |b: &MainStatus| {
                    fork_choice((s.cumulative_work, &s.tip), (b.cumulative_work, &b.tip))
                        == std::cmp::Ordering::Greater
                };
                if best.as_ref().is_none_or(|(_, b)| more(b)) {
                    best = Some((peer, s));
                }
            }
            Some(MainSyncResponse::Status(_)) | None => {}
            Some(_) => ctx.net.penalize(peer, Misbehaviour::InvalidResponse).await,
        }
    }
    let local = ctx.chain.head().header.height;
    {
        let mut r = ctx.state.0.write();
        r.local_height = local;
        r.peers_on_chain = on_chain;
        r.best_peer_height = best.as_ref().map(|(_, s)| s.height);
        r.syncing = best.as_ref().is_some_and(|(_, s)| s.height > local + 1);
    }
    let Some((peer, status)) = best else { return };
    let behind = |ctx: &Ctx| {
        let head = ctx.chain.head();
        fork_choice(
            (status.cumulative_work, &status.tip),
            (head.header.cumulative_work, &head.hash),
        ) == std::cmp::Ordering::Greater
    };
    // Headers first, a window at a time: a peer advertising a chain it cannot back is caught
    // on its headers, before any body is fetched.
    while behind(ctx) {
        let before = ctx.chain.head().hash;
        let Some(base) = last_common_block(ctx, peer, status.height).await else {
            break;
        };
        let end = status.height.min(base.height.saturating_add(HEADER_WINDOW));
        let Some(headers) = fetch_headers(ctx, peer, base, end).await else {
            break;
        };
        if !fetch_and_import(ctx, peer, &headers).await {
            break;
        }
        if ctx.chain.head().hash == before {
            // Everything it served is here and the best chain did not move: its status
            // claimed more work than its blocks carry. Nothing more to get from it now.
            tracing::debug!(%peer, "main sync: peer's blocks did not move the best chain");
            break;
        }
        tracing::info!(
            height = ctx.chain.head().header.height,
            target = status.height,
            "syncing the main chain"
        );
    }
    let local = ctx.chain.head().header.height;
    let mut r = ctx.state.0.write();
    r.local_height = local;
    r.syncing = status.height > local + 1;
}

/// The last block this node's best chain shares with `peer`'s (up to `FORK_SEARCH_DEPTH` below
/// the tip): the tip itself when the peer simply has more blocks on top. `None` when the
/// fork is deeper (nothing this node could adopt) or the peer did not answer.
async fn last_common_block(ctx: &Ctx, peer: PeerId, peer_height: u64) -> Option<MainHeader> {
    let head = ctx.chain.head();
    let top = head.header.height.min(peer_height);
    let lo = head.header.height.saturating_sub(FORK_SEARCH_DEPTH).max(1);
    if top < lo {
        return ctx.chain.block(top).ok().flatten().map(|b| b.header);
    }
    let max = u32::try_from(top - lo + 1).unwrap_or(MAX_HEADERS_PER_ANSWER);
    let theirs = match ask(ctx, peer, &MainSyncRequest::Headers { from: lo, max }).await {
        Some(MainSyncResponse::Headers(h)) if h.len() <= max as usize => h,
        Some(_) => {
            ctx.net.penalize(peer, Misbehaviour::InvalidResponse).await;
            return None;
        }
        None => return None,
    };
    let ours = |h: u64| ctx.chain.block(h).ok().flatten();
    let mut common = ours(lo - 1)?;
    match theirs.first() {
        Some(first) if first.header.parent == common.hash().ok()? => {}
        Some(_) => {
            tracing::warn!(%peer, below = lo, "main chain forked deeper than this node can follow");
            return None;
        }
        None => return Some(common.header),
    }
    for s in &theirs {
        let Some(mine) = ours(s.header.height) else {
            break;
        };
        if mine.header != s.header {
            break;
        }
        common = mine;
    }
    Some(common.header)
}

/// Signed headers after `parent` up to `end` from `peer`, checked as a chain batch by batch.
/// `None` when nothing usable came back (the peer is penalised when it is its fault).
async fn fetch_headers(
    ctx: &Ctx,
    peer: PeerId,
    mut parent: MainHeader,
    end: u64,
) -> Option<Vec<SignedMainHeader>> {
    let mut headers = Vec::new();
    while parent.height < end {
        let max = u32::try_from(end - parent.height)
            .unwrap_or(u32::MAX)
            .min(MAX_HEADERS_PER_ANSWER);
        let from = parent.height + 1;
        let batch = match ask(ctx, peer, &MainSyncRequest::Headers { from, max }).await {
            Some(MainSyncResponse::Headers(h)) if h.len() <= max as usize => h,
            Some(_) => {
                ctx.net.penalize(peer, Misbehaviour::InvalidResponse).await;
                return None;
            }
            None => break,
        };
        if batch.is_empty() {
            break;
        }
        let params = ctx.chain.params().clone();
        let base = parent.clone();
        let checked = tokio::task::spawn_blocking(move || {
            verify_main_header_chain(&params, &base, &batch, now()).map(|()| batch)
        })
        .await;
        let batch = match checked {
            Ok(Ok(batch)) => batch,
            Ok(Err((i, e))) => {
                if !matches!(e, MainBlockError::TimeInFuture { .. }) {
                    tracing::warn!(%peer, height = from + i as u64, error = %e, "peer sent an invalid main header");
                    ctx.net.penalize(peer, Misbehaviour::InvalidResponse).await;
                }
                return None;
            }
            Err(e) => {
                tracing::error!(error = %e, "main header check task failed");
                return None;
            }
        };
        if let Some(last) = batch.last() {
            parent = last.header.clone();
        }
        let mut r = ctx.state.0.write();
        r.headers_synced += batch.len() as u64;
        r.verified_header_height = parent.height;
        drop(r);
        headers.extend(batch);
    }
    (!headers.is_empty()).then_some(headers)
}

/// Fetches the blocks of `headers` from `peer`, each required to carry exactly its checked
/// header, and imports them in order. True when all were imported.
async fn fetch_and_import(ctx: &Ctx, peer: PeerId, headers: &[SignedMainHeader]) -> bool {
    let mut next = 0;
    while next < headers.len() {
        let rest = &headers[next..];
        let from = rest[0].header.height;
        let max = u32::try_from(rest.len())
            .unwrap_or(MAX_BLOCKS_PER_ANSWER)
            .min(MAX_BLOCKS_PER_ANSWER);
        let Some(MainSyncResponse::Blocks(blocks)) =
            ask(ctx, peer, &MainSyncRequest::Blocks { from, max }).await
        else {
            return false;
        };
        if blocks.is_empty() || blocks.len() > max as usize {
            return false;
        }
        for (block, expected) in blocks.into_iter().zip(rest) {
            if block.header != expected.header || block.signature != expected.signature {
                tracing::warn!(%peer, height = expected.header.height, "peer served a main block that does not match its header");
                ctx.net.penalize(peer, Misbehaviour::InvalidResponse).await;
                return false;
            }
            let height = block.header.height;
            next += 1;
            if block
                .hash()
                .is_ok_and(|h| ctx.chain.knows(&h).unwrap_or(false))
            {
                continue; // arrived by gossip meanwhile
            }
            if let Err(e) = import(&ctx.chain, block).await {
                if blame(&ctx.chain, height, &e) == Verdict::Reject {
                    tracing::warn!(%peer, height, error = %e, "peer served an invalid main block");
                    ctx.net.penalize(peer, Misbehaviour::InvalidResponse).await;
                } else {
                    tracing::debug!(height, error = %e, "main sync paused");
                }
                return false;
            }
            let mut r = ctx.state.0.write();
            r.blocks_synced += 1;
            r.local_height = height;
        }
    }
    true
}
