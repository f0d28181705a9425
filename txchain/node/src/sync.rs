//! The transfer chain's side of headers-first sync (`doin-sync` runs the rounds): its order
//! of peers (height), its limits, how a batch of signed headers is checked
//! (`verify_header_chain`: heights, parent links, times, proposers, base fees, signatures,
//! with the validator sets of each epoch — a window ends at an epoch boundary, whose block
//! must be applied before the next headers can be checked), and how a block is imported.
//!
//! Transfer blocks are final once decided, so a round builds on this node's tip: there is
//! no fork to search for. This module never decides validity itself — the core does.

use crate::net_ctx::{ask, blame, import, Ctx};
use crate::wire::{
    ChainStatus, SyncRequest, SyncResponse, MAX_BLOCKS_PER_ANSWER, MAX_HEADERS_PER_ANSWER,
};
use doin_net::{NetHandle, PeerId, Verdict};
use doin_sync::{check_blocking, Answer, Checked, Imported, SyncIo, SyncLimits, SyncSpec};
use doin_tx_core::{
    verify_header_chain, Block, BlockError, BlockHash, BlockHeader, ChainParams, EpochValidators,
    SignedHeader,
};
use doin_types::{Height, Timestamp};
use std::cmp::Ordering;

pub use doin_sync::{SyncReport, SyncState};

/// The transfer chain's sync.
const LIMITS: SyncLimits = SyncLimits {
    status_fanout: 8,
    // ≈ 700 KB of headers.
    header_window: 2048,
    max_headers_per_answer: MAX_HEADERS_PER_ANSWER,
    max_blocks_per_answer: MAX_BLOCKS_PER_ANSWER,
    // Each from a different peer when there are several.
    bodies_in_flight: 4,
    // Final blocks: a round builds on the tip.
    fork_search_depth: None,
};

/// A checked header and the validator sets its successors are checked with.
#[derive(Clone, Debug)]
pub struct TxAnchor {
    pub header: BlockHeader,
    pub sets: EpochValidators,
}

/// The transfer chain as the sync engine sees it.
pub struct TxSyncSpec {
    params: ChainParams,
}

impl SyncSpec for TxSyncSpec {
    type Peer = PeerId;
    type Status = ChainStatus;
    type Header = SignedHeader;
    type Block = Block;
    type Anchor = TxAnchor;
    type Tip = (Height, BlockHash);

    fn limits(&self) -> SyncLimits {
        LIMITS
    }

    fn status_height(&self, s: &ChainStatus) -> u64 {
        s.height
    }

    fn compare(&self, a: &ChainStatus, b: &ChainStatus) -> Ordering {
        a.height.cmp(&b.height)
    }

    fn behind(&self, tip: &(Height, BlockHash), peer: &ChainStatus) -> bool {
        peer.height > tip.0
    }

    fn can_serve(&self, holder: &ChainStatus, _best: &ChainStatus, height: u64) -> bool {
        holder.height >= height
    }

    fn tip_height(&self, t: &(Height, BlockHash)) -> u64 {
        t.0
    }

    fn serves_from(&self, s: &ChainStatus) -> u64 {
        s.kept_from
    }

    fn header_height(&self, h: &SignedHeader) -> u64 {
        h.header.height
    }

    fn anchor_height(&self, a: &TxAnchor) -> u64 {
        a.header.height
    }

    fn advance(&self, anchor: &TxAnchor, verified: &[SignedHeader]) -> TxAnchor {
        match verified.last() {
            // Past a batch's first header every one was checked with `next`; no boundary lies
            // inside a checked batch (the check stops there), so `next` stays.
            Some(last) => TxAnchor {
                header: last.header.clone(),
                sets: EpochValidators::steady(anchor.sets.next.clone()),
            },
            None => anchor.clone(),
        }
    }

    fn ends_window(&self, anchor: &TxAnchor) -> bool {
        self.params.closes_epoch(anchor.header.height)
    }

    fn same(&self, mine: &TxAnchor, header: &SignedHeader) -> bool {
        mine.header == header.header
    }

    fn builds_on(&self, header: &SignedHeader, parent: &TxAnchor) -> bool {
        parent
            .header
            .hash()
            .is_ok_and(|h| header.header.parent == h)
    }

    fn block_height(&self, b: &Block) -> u64 {
        b.header.height
    }

    fn carries(&self, block: &Block, header: &SignedHeader) -> bool {
        block.header == header.header && block.signature == header.signature
    }
}

/// A peer's reply, or `None` (logged) when the request failed.
fn reply<E: std::fmt::Display>(
    what: &str,
    peer: PeerId,
    result: Result<SyncResponse, E>,
) -> Option<SyncResponse> {
    result
        .map_err(|e| tracing::debug!(%peer, error = %e, "{what} request failed"))
        .ok()
}

/// What the sync engine does through the transfer chain's service and wire messages.
pub(crate) struct TxSyncIo(pub(crate) Ctx);

#[async_trait::async_trait]
impl SyncIo for TxSyncIo {
    type Spec = TxSyncSpec;

    fn name(&self) -> &'static str {
        "transfer chain"
    }

    fn spec(&self) -> TxSyncSpec {
        TxSyncSpec {
            params: self.0.chain.params().clone(),
        }
    }

    fn tip(&self) -> (Height, BlockHash) {
        let tip = self.0.chain.tip();
        (tip.header.height, tip.hash)
    }

    fn net(&self) -> &NetHandle {
        &self.0.net
    }

    async fn status(&self, peer: PeerId) -> Answer<ChainStatus> {
        let reply = reply(
            "status",
            peer,
            ask(&self.0, peer, &SyncRequest::Status).await,
        );
        Answer::from_reply(reply, |r| match r {
            SyncResponse::Status(s) => Some(s),
            _ => None,
        })
        .on_chain(|s| s.chain_id == self.0.chain.params().chain_id)
    }

    async fn headers(&self, peer: PeerId, from: u64, max: u32) -> Answer<Vec<SignedHeader>> {
        let request = SyncRequest::Headers { from, max };
        let reply = reply("header", peer, ask(&self.0, peer, &request).await);
        Answer::from_reply(reply, |r| match r {
            SyncResponse::Headers(h) => Some(h),
            _ => None,
        })
    }

    async fn blocks(&self, peer: PeerId, from: u64, max: u32) -> Answer<Vec<Block>> {
        let request = SyncRequest::Blocks { from, max };
        let reply = reply("block", peer, ask(&self.0, peer, &request).await);
        Answer::from_reply(reply, |r| match r {
            SyncResponse::Blocks(b) => Some(b),
            _ => None,
        })
    }

    async fn local(&self, from: u64, to: u64) -> Vec<TxAnchor> {
        // Transfer blocks are final: a round only ever builds on the tip.
        let tip = self.0.chain.tip();
        if from == tip.header.height && to == tip.header.height {
            vec![TxAnchor {
                header: tip.header.clone(),
                sets: tip.validators.as_ref().clone(),
            }]
        } else {
            Vec::new()
        }
    }

    async fn check(&self, anchor: TxAnchor, batch: Vec<SignedHeader>) -> Checked {
        let params = self.0.chain.params().clone();
        let checked = check_blocking(
            move || {
                let now = Timestamp(crate::chain::now_ms());
                verify_header_chain(&params, &anchor.header, &anchor.sets, &batch, now)
            },
            // A header ahead of our clock may be honest (clock skew): not the peer's fault.
            |e| !matches!(e, BlockError::TimeInFuture { .. }),
        )
        .await;
        if let Checked::Valid(n) = checked {
            self.0.metrics.synced_headers.inc_by(n as u64);
        }
        checked
    }

    async fn import(&self, block: Block) -> Imported {
        let height = block.header.height;
        match import(&self.0.chain, block).await {
            Ok(()) => {
                self.0.metrics.synced_blocks.inc();
                Imported::Imported
            }
            Err(e) if blame(&self.0.chain, height, &e) == Verdict::Reject => {
                Imported::Invalid(e.to_string())
            }
            // The same block arrived by gossip meanwhile.
            Err(_) if self.0.chain.tip().header.height >= height => Imported::Known,
            // Our own storage failed (a full disk): the operator must hear of it.
            Err(e @ crate::chain::ChainError::Store(_)) => {
                tracing::error!(height, error = %e, "cannot store a synced block; sync paused until storage works again");
                Imported::Paused(e.to_string())
            }
            Err(e) => {
                tracing::debug!(height, error = %e, "sync paused");
                Imported::Paused(e.to_string())
            }
        }
    }
}
