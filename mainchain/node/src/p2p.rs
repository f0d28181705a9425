//! The main chain on the network: blocks and work messages (registrations, commits, reveals,
//! votes) by gossip, and sync from the peer with the most work (`doin-sync` runs the rounds:
//! the last common block is found first, then signed headers after it, checked as a chain,
//! then the blocks that carry exactly those headers; this module is the main chain's side of
//! it). Blocks of another branch go to the chain like any other; the chain decides whether its
//! best chain switches.
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
use doin_main_core::wire::{MainStatus, MainSyncRequest, MainSyncResponse};
use doin_main_core::{
    fork_choice, verify_main_header_chain, MainBlock, MainBlockError, MainHeader, SignedMainHeader,
};
use doin_net::tasks::{announce, join_service, next_or_shutdown};
use doin_net::{
    GossipMessage, InboundRequest, Misbehaviour, NetError, NetHandle, Network, PeerId, Service,
    Topic, Verdict,
};
use doin_sync::{
    check_blocking, consecutive, serve, sync_loop, Answer, Checked, Imported, SyncIo, SyncLimits,
    SyncSpec,
};
pub use doin_sync::{SyncReport, SyncState};
use doin_types::{Hash256, Timestamp};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch, Notify};

/// Blocks one sync answer carries at most.
const MAX_BLOCKS_PER_ANSWER: u32 = 32;

/// Signed headers one sync answer carries at most.
const MAX_HEADERS_PER_ANSWER: u32 = 256;

/// The main chain's sync: blocks are small and one per 10 minutes, so modest windows.
const LIMITS: SyncLimits = SyncLimits {
    status_fanout: 8,
    header_window: 1024,
    max_headers_per_answer: MAX_HEADERS_PER_ANSWER,
    max_blocks_per_answer: MAX_BLOCKS_PER_ANSWER,
    // All from peers on the followed peer's chain.
    bodies_in_flight: 4,
    // Deeper forks cannot be adopted anyway (the kept states and the anchored blocks bound
    // them).
    fork_search_depth: Some(64),
};

/// The main chain's network service, attached before the network starts.
pub struct MainP2p {
    chain: Arc<MainChain>,
    net: NetHandle,
    blocks: mpsc::Receiver<GossipMessage>,
    work: mpsc::Receiver<GossipMessage>,
    requests: mpsc::Receiver<InboundRequest>,
    state: SyncState,
    sync_interval: Duration,
    max_response_bytes: usize,
}

#[derive(Clone)]
struct Ctx {
    chain: Arc<MainChain>,
    net: NetHandle,
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
            state: SyncState::default(),
            sync_interval,
            max_response_bytes,
        })
    }

    pub fn sync_state(&self) -> SyncState {
        self.state.clone()
    }

    pub async fn run(self, shutdown: watch::Receiver<bool>) -> Result<(), String> {
        let wake_sync = Arc::new(Notify::new());
        let ctx = Ctx {
            chain: self.chain,
            net: self.net,
            wake_sync: wake_sync.clone(),
            max_response_bytes: self.max_response_bytes,
        };
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(blocks(ctx.clone(), self.blocks, shutdown.clone()));
        tasks.spawn(work(ctx.clone(), self.work, shutdown.clone()));
        let chain = ctx.chain.clone();
        tasks.spawn(serve(
            ctx.net.clone(),
            self.requests,
            shutdown.clone(),
            |bytes| decode_exact_bounded(bytes, 1024).map_err(|e| e.to_string()),
            Arc::new(move |req| answer(&chain, req)),
        ));
        tasks.spawn(announce(
            ctx.net.clone(),
            ctx.chain.announcements(),
            shutdown.clone(),
            "main-chain",
            announcement_message,
        ));
        tasks.spawn(sync_loop(
            Arc::new(MainSyncIo(ctx)),
            self.state,
            self.sync_interval,
            wake_sync,
            shutdown,
        ));
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
        MainSyncRequest::Blocks { from, max } => MainSyncResponse::Blocks(
            consecutive(
                from,
                chain.head().header.height,
                max.clamp(1, MAX_BLOCKS_PER_ANSWER) as usize,
                usize::MAX,
                |_| 0,
                |h| chain.block(h),
            )
            .map_err(|e| format!("node error: {e}"))?,
        ),
        MainSyncRequest::Headers { from, max } => MainSyncResponse::Headers(
            consecutive(
                from,
                chain.head().header.height,
                max.clamp(1, MAX_HEADERS_PER_ANSWER) as usize,
                usize::MAX,
                |_| 0,
                |h| chain.block(h).map(|b| b.map(|b| b.signed_header())),
            )
            .map_err(|e| format!("node error: {e}"))?,
        ),
    };
    encode(&response).map_err(|e| format!("node error: {e}"))
}

/// A produced block travels whole; a work message behind one byte naming its kind.
fn announcement_message(a: MainAnnouncement) -> Option<(Topic, Vec<u8>)> {
    match a {
        MainAnnouncement::Block(block) => match block.encode() {
            Ok(bytes) => Some((Topic::MainBlocks, bytes)),
            Err(e) => {
                tracing::error!(error = %e, "cannot encode a produced main block for relay");
                None
            }
        },
        MainAnnouncement::Message(kind, bytes) => {
            let mut data = Vec::with_capacity(bytes.len() + 1);
            data.push(kind as u8);
            data.extend_from_slice(&bytes);
            Some((Topic::MainWork, data))
        }
        // Peers learn of a reorganisation from the blocks themselves.
        MainAnnouncement::Reorg(_) => None,
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

/// The main chain as the sync engine sees it: peers ordered by most work, forks searched
/// up to 64 blocks below the tip (`LIMITS`).
pub struct MainSyncSpec;

impl SyncSpec for MainSyncSpec {
    type Peer = PeerId;
    type Status = MainStatus;
    type Header = SignedMainHeader;
    type Block = MainBlock;
    type Anchor = MainHeader;
    /// Height, cumulative work and hash of the head.
    type Tip = (u64, u128, Hash256);

    fn limits(&self) -> SyncLimits {
        LIMITS
    }

    fn status_height(&self, s: &MainStatus) -> u64 {
        s.height
    }

    fn compare(&self, a: &MainStatus, b: &MainStatus) -> std::cmp::Ordering {
        fork_choice((a.cumulative_work, &a.tip), (b.cumulative_work, &b.tip))
    }

    /// Behind a peer whose chain wins the fork choice, or one as much work but higher: carrier
    /// blocks add no work, so a chain extended by carriers alone would otherwise look level
    /// (or, by the hash tie-break, behind) to a node that lacks them, and it never caught up.
    /// An equal-work fork followed this way is kept aside on import; the fork choice decides.
    fn behind(&self, tip: &(u64, u128, Hash256), peer: &MainStatus) -> bool {
        fork_choice((peer.cumulative_work, &peer.tip), (tip.1, &tip.2))
            == std::cmp::Ordering::Greater
            || (peer.cumulative_work == tip.1 && peer.height > tip.0)
    }

    /// Only a peer on the same chain as the followed one has its blocks: heights alone say
    /// nothing across forks.
    fn can_serve(&self, holder: &MainStatus, best: &MainStatus, height: u64) -> bool {
        holder.tip == best.tip && holder.height >= height
    }

    fn tip_height(&self, t: &(u64, u128, Hash256)) -> u64 {
        t.0
    }

    fn header_height(&self, h: &SignedMainHeader) -> u64 {
        h.header.height
    }

    fn anchor_height(&self, a: &MainHeader) -> u64 {
        a.height
    }

    fn advance(&self, anchor: &MainHeader, verified: &[SignedMainHeader]) -> MainHeader {
        verified
            .last()
            .map_or_else(|| anchor.clone(), |h| h.header.clone())
    }

    fn ends_window(&self, _anchor: &MainHeader) -> bool {
        false
    }

    fn same(&self, mine: &MainHeader, header: &SignedMainHeader) -> bool {
        *mine == header.header
    }

    fn builds_on(&self, header: &SignedMainHeader, parent: &MainHeader) -> bool {
        parent.hash().is_ok_and(|h| header.header.parent == h)
    }

    fn block_height(&self, b: &MainBlock) -> u64 {
        b.header.height
    }

    fn carries(&self, block: &MainBlock, header: &SignedMainHeader) -> bool {
        block.header == header.header && block.signature == header.signature
    }
}

/// What the sync engine does through the main chain's service and wire messages.
struct MainSyncIo(Ctx);

#[async_trait::async_trait]
impl SyncIo for MainSyncIo {
    type Spec = MainSyncSpec;

    fn name(&self) -> &'static str {
        "main chain"
    }

    fn spec(&self) -> MainSyncSpec {
        MainSyncSpec
    }

    fn tip(&self) -> (u64, u128, Hash256) {
        let head = self.0.chain.head();
        (head.header.height, head.header.cumulative_work, head.hash)
    }

    fn net(&self) -> &NetHandle {
        &self.0.net
    }

    async fn status(&self, peer: PeerId) -> Answer<MainStatus> {
        let reply = ask(&self.0, peer, &MainSyncRequest::Status).await;
        Answer::from_reply(reply, |r| match r {
            MainSyncResponse::Status(s) => Some(s),
            _ => None,
        })
        .on_chain(|s| s.chain_id == self.0.chain.params().chain_id)
    }

    async fn headers(&self, peer: PeerId, from: u64, max: u32) -> Answer<Vec<SignedMainHeader>> {
        let reply = ask(&self.0, peer, &MainSyncRequest::Headers { from, max }).await;
        Answer::from_reply(reply, |r| match r {
            MainSyncResponse::Headers(h) => Some(h),
            _ => None,
        })
    }

    async fn blocks(&self, peer: PeerId, from: u64, max: u32) -> Answer<Vec<MainBlock>> {
        let reply = ask(&self.0, peer, &MainSyncRequest::Blocks { from, max }).await;
        Answer::from_reply(reply, |r| match r {
            MainSyncResponse::Blocks(b) => Some(b),
            _ => None,
        })
    }

    async fn local(&self, from: u64, to: u64) -> Vec<MainHeader> {
        let mut out = Vec::new();
        for h in from..=to {
            match self.0.chain.block(h) {
                Ok(Some(b)) => out.push(b.header),
                _ => break,
            }
        }
        out
    }

    async fn check(&self, anchor: MainHeader, batch: Vec<SignedMainHeader>) -> Checked {
        let params = self.0.chain.params().clone();
        check_blocking(
            move || verify_main_header_chain(&params, &anchor, &batch, now()).map(|()| batch.len()),
            // A header ahead of our clock may be honest (clock skew): not the peer's fault.
            |e| !matches!(e, MainBlockError::TimeInFuture { .. }),
        )
        .await
    }

    async fn import(&self, block: MainBlock) -> Imported {
        let height = block.header.height;
        if block
            .hash()
            .is_ok_and(|h| self.0.chain.knows(&h).unwrap_or(false))
        {
            return Imported::Known; // arrived by gossip meanwhile
        }
        match import(&self.0.chain, block).await {
            Ok(ImportOutcome::Known) => Imported::Known,
            Ok(_) => Imported::Imported,
            Err(e) if blame(&self.0.chain, height, &e) == Verdict::Reject => {
                Imported::Invalid(e.to_string())
            }
            // Our own storage failed (a full disk): the operator must hear of it.
            Err(e @ crate::MainChainError::Store(_)) => {
                tracing::error!(height, error = %e, "cannot store a synced main block; sync paused until storage works again");
                Imported::Paused(e.to_string())
            }
            Err(e) => {
                tracing::debug!(height, error = %e, "main sync paused");
                Imported::Paused(e.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(height: u64, work: u128, tip: u8) -> MainStatus {
        MainStatus {
            chain_id: doin_types::ChainId(Hash256([1; 32])),
            height,
            tip: Hash256([tip; 32]),
            cumulative_work: work,
        }
    }

    #[test]
    fn a_peer_ahead_by_carrier_blocks_alone_is_followed_whatever_its_tip_hash() {
        let spec = MainSyncSpec;
        // Our tip at 175 has the lowest hash there is; the peer's 186 added only carriers.
        let tip = (175, 1_000, Hash256([0; 32]));
        assert!(spec.behind(&tip, &status(186, 1_000, 9)));
        assert!(
            !spec.behind(&tip, &status(175, 1_000, 9)),
            "level, losing the hash"
        );
        assert!(!spec.behind(&tip, &status(174, 1_000, 0)), "lower");
        // More work wins at any height; less work never does.
        assert!(spec.behind(&tip, &status(170, 1_001, 9)));
        assert!(!spec.behind(&tip, &status(190, 999, 0)));
        // An equal-work fork winning the hash tie-break is followed even when shorter.
        let high_hash_tip = (175, 1_000, Hash256([9; 32]));
        assert!(spec.behind(&high_hash_tip, &status(174, 1_000, 1)));
    }
}
