//! What the transfer chain's network tasks share (`p2p`'s gossip and server tasks and the
//! sync adapter): the service and network handle, the network metrics, and the requests made
//! of peers — asking, importing off the async threads, and judging what a failed import says
//! about its sender.

use crate::chain::{now_ms, ChainError, TxChain};
use crate::wire::{SyncRequest, SyncResponse};
use doin_net::{Misbehaviour, NetHandle, PeerId, Service, Verdict};
use doin_telemetry::prometheus::{IntCounter, IntCounterVec, Opts};
use doin_telemetry::{Metrics, MetricsError};
use doin_tx_core::Block;
use doin_types::{Height, Timestamp};
use std::sync::Arc;
use tokio::sync::Notify;

#[derive(Clone)]
pub(crate) struct P2pMetrics {
    pub(crate) compact_blocks: IntCounterVec,
    pub(crate) missing_txs_fetched: IntCounter,
    pub(crate) synced_blocks: IntCounter,
    pub(crate) synced_headers: IntCounter,
}

impl P2pMetrics {
    pub(crate) fn register(m: &Metrics) -> Result<P2pMetrics, MetricsError> {
        Ok(P2pMetrics {
            compact_blocks: m.register(IntCounterVec::new(
                Opts::new(
                    "doin_tx_compact_blocks_total",
                    "Compact blocks received, by outcome (rebuilt, fetched-missing, fetched-full, stale, ahead, invalid)",
                ),
                &["outcome"],
            )?)?,
            missing_txs_fetched: m.register(IntCounter::new(
                "doin_tx_compact_missing_txs_total",
                "Transactions fetched from peers to complete compact blocks",
            )?)?,
            synced_blocks: m.register(IntCounter::new(
                "doin_tx_sync_blocks_total",
                "Blocks fetched by range from peers and imported",
            )?)?,
            synced_headers: m.register(IntCounter::new(
                "doin_tx_sync_headers_total",
                "Signed headers fetched from peers and checked ahead of their blocks",
            )?)?,
        })
    }
}

/// What every task of the service shares.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub(crate) chain: Arc<TxChain>,
    pub(crate) net: NetHandle,
    pub(crate) metrics: P2pMetrics,
    pub(crate) wake_sync: Arc<Notify>,
    pub(crate) max_response_bytes: usize,
}

/// Imports a block off the async runtime (signature checks and the disk write are blocking).
pub(crate) async fn import(chain: &Arc<TxChain>, block: Block) -> Result<(), ChainError> {
    let chain = chain.clone();
    tokio::task::spawn_blocking(move || chain.import_block(&block, Timestamp(now_ms())))
        .await
        .map_err(|e| ChainError::Inconsistent(format!("import task failed: {e}")))?
}

/// What an import failure says about the block's sender. A block that lost a race with the
/// same height arriving another way (gossip and sync run side by side) is stale, not invalid.
pub(crate) fn blame(chain: &TxChain, height: Height, e: &ChainError) -> Verdict {
    if chain.tip().header.height >= height {
        return Verdict::Ignore;
    }
    match e {
        // A main block this node has not seen yet: maybe later.
        ChainError::Block(b) if b.is_retryable() => Verdict::Ignore,
        ChainError::Block(_) => Verdict::Reject,
        // Our own storage or state: not the peer's fault.
        _ => Verdict::Ignore,
    }
}

/// Sends a sync request and decodes the answer (a malformed answer costs the peer score).
pub(crate) async fn ask(
    ctx: &Ctx,
    peer: PeerId,
    req: &SyncRequest,
) -> Result<SyncResponse, String> {
    let bytes = req.encode().map_err(|e| e.to_string())?;
    let answer = ctx
        .net
        .request(peer, Service::TxSync, bytes)
        .await
        .map_err(|e| e.to_string())?;
    match SyncResponse::decode(&answer, ctx.max_response_bytes) {
        Ok(r) => Ok(r),
        Err(e) => {
            ctx.net.penalize(peer, Misbehaviour::InvalidResponse).await;
            Err(format!("malformed answer: {e}"))
        }
    }
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
