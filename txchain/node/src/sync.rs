//! Catching up with peers, headers first.
//!
//! Each round asks up to [`STATUS_FANOUT`] peers where they are. When the best is ahead, the node
//! works through windows of at most [`HEADER_WINDOW`] heights:
//!
//! 1. **headers**: signed headers from the best peer, checked as a chain on top of our tip
//!    (heights, parent links, times, proposers, base fees, signatures — `verify_header_chain`)
//!    before any body is downloaded, so a peer advertising a chain it cannot back is caught and
//!    penalised after a few kilobytes, not after megabytes of blocks;
//! 2. **bodies**: the window's blocks, in ranges fetched concurrently from every peer that
//!    reported the heights, each block required to carry exactly the header checked in step 1;
//!    then imported in order, every rule re-checked by the chain.
//!
//! The module owns the sync loop and its progress report (`/v1/node/sync`, log lines with a
//! percentage); it never decides validity itself — the core does.

use crate::p2p::{ask, blame, import, Ctx};
use crate::wire::{
    ChainStatus, SyncRequest, SyncResponse, MAX_BLOCKS_PER_ANSWER, MAX_HEADERS_PER_ANSWER,
};
use doin_net::tasks::tick_or_shutdown;
use doin_net::{Misbehaviour, PeerId, Verdict};
use doin_tx_core::{
    verify_header_chain, Block, BlockError, BlockHeader, EpochValidators, SignedHeader,
};
use doin_types::{Height, Timestamp};
use parking_lot::RwLock;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Peers asked for their status in one sync round.
const STATUS_FANOUT: usize = 8;

/// Heights whose headers are fetched and checked before their bodies (≈ 700 KB of headers).
const HEADER_WINDOW: u64 = 2048;

/// Block ranges fetched at the same time (each from a different peer when there are several).
const BODY_FETCHES_IN_FLIGHT: usize = 4;

/// How often progress is logged while syncing.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// Where this node's transfer chain stands against its peers (`/v1/node/sync`).
#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct SyncReport {
    /// True while a peer is more than one block ahead.
    pub syncing: bool,
    pub local_height: Height,
    /// Highest tip a peer on this chain reported.
    pub best_peer_height: Option<Height>,
    /// Highest header fetched and checked ahead of its block (headers-first sync).
    pub verified_header_height: Height,
    /// Peers on this chain that answered the last status round.
    pub peers_on_chain: usize,
    /// Signed headers fetched and checked since start.
    pub headers_synced: u64,
    /// Blocks fetched by range and imported since start.
    pub blocks_synced: u64,
    /// `local_height / best_peer_height` in percent (100 when level or ahead).
    pub progress_percent: u8,
}

/// Shared, read by the gateway.
#[derive(Clone, Default)]
pub struct SyncState(Arc<RwLock<SyncReport>>);

impl SyncState {
    pub fn report(&self) -> SyncReport {
        self.0.read().clone()
    }

    pub fn is_syncing(&self) -> bool {
        self.0.read().syncing
    }
}

pub(crate) async fn sync_loop(
    ctx: Ctx,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), String> {
    while tick_or_shutdown(interval, &ctx.wake_sync, &mut shutdown).await {
        sync_round(&ctx, &shutdown).await;
    }
    Ok(())
}

fn percent(local: Height, best: Height) -> u8 {
    if best == 0 || local >= best {
        100
    } else {
        u8::try_from(local.saturating_mul(100) / best).unwrap_or(100)
    }
}

/// Asks peers where they are; while the best is ahead, syncs window by window from it.
async fn sync_round(ctx: &Ctx, shutdown: &watch::Receiver<bool>) {
    let statuses = peer_statuses(ctx).await;
    let local = ctx.chain.tip().header.height;
    let best = statuses.iter().max_by_key(|(_, s)| s.height).cloned();
    {
        let mut r = ctx.state.0.write();
        r.local_height = local;
        r.peers_on_chain = statuses.len();
        r.best_peer_height = best.as_ref().map(|(_, s)| s.height);
        r.syncing = best.as_ref().is_some_and(|(_, s)| s.height > local + 1);
        r.progress_percent = percent(local, best.as_ref().map_or(local, |(_, s)| s.height));
    }
    let Some((peer, status)) = best else { return };
    if status.height <= local {
        return;
    }
    let started = Instant::now();
    let mut last_log = Instant::now();
    let target = status.height;
    tracing::info!(%peer, from = local, target, "transfer chain behind a peer; syncing headers first");
    while !*shutdown.borrow() {
        let tip = ctx.chain.tip();
        if tip.header.height >= target {
            break;
        }
        let window_end = target.min(tip.header.height.saturating_add(HEADER_WINDOW));
        let Some(headers) =
            fetch_headers(ctx, peer, &tip.header, &tip.validators, window_end).await
        else {
            break;
        };
        let imported = fetch_and_import_bodies(ctx, peer, &statuses, &headers).await;
        if last_log.elapsed() >= LOG_EVERY || !imported {
            last_log = Instant::now();
            let r = ctx.state.report();
            tracing::info!(
                height = r.local_height,
                headers = r.verified_header_height,
                target,
                progress = %format!("{}%", percent(r.local_height, target)),
                "syncing the transfer chain"
            );
        }
        if !imported || ctx.chain.tip().header.height == tip.header.height {
            break; // no progress this window: end the round, the next may pick another peer
        }
    }
    let h = ctx.chain.tip().header.height;
    tracing::info!(
        height = h,
        target,
        seconds = started.elapsed().as_secs(),
        "transfer chain sync round ended"
    );
    finish(ctx, target);
}

/// The status of up to [`STATUS_FANOUT`] connected peers on our chain.
async fn peer_statuses(ctx: &Ctx) -> Vec<(PeerId, ChainStatus)> {
    let our_chain = ctx.chain.params().chain_id;
    let peers: Vec<PeerId> = ctx
        .net
        .connected_peers()
        .into_iter()
        .take(STATUS_FANOUT)
        .collect();
    let mut statuses = Vec::new();
    for peer in peers {
        match ask(ctx, peer, &SyncRequest::Status).await {
            Ok(SyncResponse::Status(s)) if s.chain_id == our_chain => statuses.push((peer, s)),
            Ok(SyncResponse::Status(_)) => {} // another chain: not a sync partner
            Ok(_) => ctx.net.penalize(peer, Misbehaviour::InvalidResponse).await,
            Err(e) => tracing::debug!(%peer, error = %e, "status request failed"),
        }
    }
    statuses
}

/// Signed headers from `tip.height + 1` up to `end` from `peer`, each batch checked as a chain
/// on top of the previous one. Stops early at the first epoch boundary: the headers after it
/// can be checked only with the validator set that boundary's state fixes, so they wait for the
/// next round, after these blocks are applied. `None` (and a penalty when it is the peer's
/// fault) when the peer answers nothing usable.
async fn fetch_headers(
    ctx: &Ctx,
    peer: PeerId,
    tip: &BlockHeader,
    tip_sets: &EpochValidators,
    end: Height,
) -> Option<Vec<SignedHeader>> {
    let mut headers: Vec<SignedHeader> = Vec::new();
    let mut parent = tip.clone();
    let mut parent_sets = tip_sets.clone();
    let mut at_boundary = false;
    while parent.height < end && !at_boundary {
        let from = parent.height + 1;
        let max = u32::try_from(end - parent.height)
            .unwrap_or(u32::MAX)
            .min(MAX_HEADERS_PER_ANSWER);
        let batch = match ask(ctx, peer, &SyncRequest::Headers { from, max }).await {
            Ok(SyncResponse::Headers(h)) if h.len() <= max as usize => h,
            Ok(_) => {
                ctx.net.penalize(peer, Misbehaviour::InvalidResponse).await;
                return None;
            }
            Err(e) => {
                tracing::debug!(%peer, error = %e, "header request failed");
                break;
            }
        };
        if batch.is_empty() {
            break; // the peer has nothing past `parent` (it may have reported a tip it lost)
        }
        let params = ctx.chain.params().clone();
        let checked_parent = parent.clone();
        let checked_sets = parent_sets.clone();
        let checked = tokio::task::spawn_blocking(move || {
            let now = Timestamp(crate::chain::now_ms());
            verify_header_chain(&params, &checked_parent, &checked_sets, &batch, now).map(
                |verified| {
                    let mut batch = batch;
                    batch.truncate(verified);
                    batch
                },
            )
        })
        .await;
        let batch = match checked {
            Ok(Ok(batch)) => batch,
            Ok(Err((i, e))) => {
                // A header ahead of our clock may be honest (clock skew): not the peer's fault.
                if !matches!(e, BlockError::TimeInFuture { .. }) {
                    tracing::warn!(%peer, height = from + i as u64, error = %e, "peer sent an invalid header");
                    ctx.net.penalize(peer, Misbehaviour::InvalidResponse).await;
                }
                return None;
            }
            Err(e) => {
                tracing::error!(error = %e, "header check task failed");
                return None;
            }
        };
        let Some(last) = batch.last() else {
            break; // the first header already needs sets we do not have yet
        };
        parent = last.header.clone();
        // Past the batch's first header every one was checked with `next`; no boundary lies
        // inside the batch (the check would have stopped there), so `next` stays.
        parent_sets = EpochValidators::steady(parent_sets.next.clone());
        at_boundary = ctx.chain.params().closes_epoch(parent.height);
        ctx.metrics.synced_headers.inc_by(batch.len() as u64);
        {
            let mut r = ctx.state.0.write();
            r.headers_synced += batch.len() as u64;
            r.verified_header_height = parent.height;
        }
        headers.extend(batch);
    }
    (!headers.is_empty()).then_some(headers)
}

/// Fetches the blocks of `headers` (ranges spread over the peers that have them, a few at a
/// time) and imports them in order. True when every block was imported.
async fn fetch_and_import_bodies(
    ctx: &Ctx,
    best: PeerId,
    statuses: &[(PeerId, ChainStatus)],
    headers: &[SignedHeader],
) -> bool {
    let ranges: Vec<&[SignedHeader]> = headers.chunks(MAX_BLOCKS_PER_ANSWER as usize).collect();
    for group in ranges.chunks(BODY_FETCHES_IN_FLIGHT) {
        let fetches = group.iter().enumerate().map(|(i, range)| {
            let last = range.last().map_or(0, |h| h.header.height);
            let holders: Vec<PeerId> = statuses
                .iter()
                .filter(|(_, s)| s.height >= last)
                .map(|(p, _)| *p)
                .collect();
            let peer = holders
                .get(i % holders.len().max(1))
                .copied()
                .unwrap_or(best);
            fetch_bodies(ctx, peer, range)
        });
        let results = futures::future::join_all(fetches).await;
        for (range, blocks) in group.iter().zip(results) {
            // A range a peer failed to serve is retried once from the best peer.
            let blocks = match blocks {
                Some(b) => b,
                None => match fetch_bodies(ctx, best, range).await {
                    Some(b) => b,
                    None => return false,
                },
            };
            if !import_all(ctx, best, blocks).await {
                return false;
            }
        }
    }
    true
}

/// The blocks of `range` from `peer`, each carrying exactly the header checked for its
/// height; `None` when the peer cannot or will not serve them (penalised when it served
/// something else).
async fn fetch_bodies(ctx: &Ctx, peer: PeerId, range: &[SignedHeader]) -> Option<Vec<Block>> {
    let mut blocks: Vec<Block> = Vec::with_capacity(range.len());
    while blocks.len() < range.len() {
        let rest = &range[blocks.len()..];
        let from = rest.first()?.header.height;
        let max = u32::try_from(rest.len()).unwrap_or(MAX_BLOCKS_PER_ANSWER);
        let got = fetch_range(ctx, peer, from, max).await?;
        if got.is_empty() {
            return None;
        }
        for (block, expected) in got.into_iter().zip(rest) {
            if block.header != expected.header || block.signature != expected.signature {
                tracing::warn!(%peer, height = expected.header.height, "peer served a block that does not match its header");
                ctx.net.penalize(peer, Misbehaviour::InvalidResponse).await;
                return None;
            }
            blocks.push(block);
        }
    }
    Some(blocks)
}

/// Imports `blocks` in order; false at the first that does not import (the sender is
/// penalised when the block itself is invalid).
async fn import_all(ctx: &Ctx, peer: PeerId, blocks: Vec<Block>) -> bool {
    for block in blocks {
        let height = block.header.height;
        if let Err(e) = import(&ctx.chain, block).await {
            if blame(&ctx.chain, height, &e) == Verdict::Reject {
                tracing::warn!(%peer, height, error = %e, "peer served an invalid block");
                ctx.net.penalize(peer, Misbehaviour::InvalidResponse).await;
                return false;
            }
            if ctx.chain.tip().header.height >= height {
                continue; // the same block arrived by gossip meanwhile
            }
            tracing::debug!(height, error = %e, "sync paused");
            return false;
        }
        ctx.metrics.synced_blocks.inc();
        let mut r = ctx.state.0.write();
        r.blocks_synced += 1;
        r.local_height = height;
        r.progress_percent = percent(height, r.best_peer_height.unwrap_or(height));
    }
    true
}

/// Fetches up to `max` blocks from `from`; `None` when the peer failed or answered wrongly
/// (penalised). The blocks are consecutive from `from`, but not yet validated.
pub(crate) async fn fetch_range(
    ctx: &Ctx,
    peer: PeerId,
    from: Height,
    max: u32,
) -> Option<Vec<Block>> {
    match ask(ctx, peer, &SyncRequest::Blocks { from, max }).await {
        Ok(SyncResponse::Blocks(blocks)) => {
            let consecutive = blocks.len() <= max as usize
                && blocks
                    .iter()
                    .enumerate()
                    .all(|(i, b)| b.header.height == from + i as u64);
            if consecutive {
                Some(blocks)
            } else {
                ctx.net.penalize(peer, Misbehaviour::InvalidResponse).await;
                None
            }
        }
        Ok(_) => {
            ctx.net.penalize(peer, Misbehaviour::InvalidResponse).await;
            None
        }
        Err(e) => {
            tracing::debug!(%peer, error = %e, "block request failed");
            None
        }
    }
}

fn finish(ctx: &Ctx, target: Height) {
    let local = ctx.chain.tip().header.height;
    let mut r = ctx.state.0.write();
    r.local_height = local;
    r.syncing = target > local + 1;
    r.progress_percent = percent(local, target);
}
