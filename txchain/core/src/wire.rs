//! The transfer chain's peer-to-peer messages: sync requests and their answers. (Gossip
//! payloads are a transaction's canonical bytes and a `CompactBlock`, defined in the core.)
//!
//! Every decoder is bounded and rejects trailing bytes; answers are checked against what was
//! asked by the caller, never trusted.

use crate::{Block, BlockHash, SignedHeader, SignedTx};
use doin_codec::{decode_exact_bounded, encode, CodecError};
use doin_types::{ChainId, Height};
use serde::{Deserialize, Serialize};

/// Blocks a sync answer carries at most (fewer when they are large).
pub const MAX_BLOCKS_PER_ANSWER: u32 = 64;

/// Signed headers a sync answer carries at most (about 330 bytes each).
pub const MAX_HEADERS_PER_ANSWER: u32 = 512;

/// Encoded bytes a sync answer aims to stay under (the network's response cap is larger).
pub const ANSWER_BYTES_TARGET: usize = 8 * 1024 * 1024;

/// Snapshots a peer lists at most in one answer (the newest of what it serves).
pub const MAX_SNAPSHOT_OFFERS: usize = 64;

/// Largest request accepted (a `Txs` request names at most one block's positions).
pub const MAX_REQUEST_BYTES: usize = 60 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncRequest {
    /// Where the peer's chain is.
    Status,
    /// Consecutive blocks starting at `from`.
    Blocks { from: Height, max: u32 },
    /// Transactions at `indexes` of the block `block` (to complete a compact block).
    Txs { block: BlockHash, indexes: Vec<u32> },
    /// Consecutive signed headers starting at `from` (headers-first sync).
    Headers { from: Height, max: u32 },
    /// The state snapshots the peer serves (warp sync).
    SnapshotOffers,
    /// Frame `index` of the peer's snapshot at `height`, as its file holds it: the head, then
    /// one frame per epoch hop, then the chunks (`docs/architecture.md#snapshots`).
    SnapshotFrame { height: Height, index: u32 },
}

/// A snapshot a peer serves: which block it is of and how many frames it has.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotOffer {
    pub height: Height,
    pub block_hash: BlockHash,
    /// Frames before the first chunk: the head and its epoch hops.
    pub head_frames: u32,
    pub chunks: u32,
    /// Bytes of all the chunks together.
    pub chunk_bytes: u64,
}

impl SnapshotOffer {
    /// How a snapshot whose head is `head` is offered; `None` when it names more frames than a
    /// `u32` counts (no head that passes its checks does).
    pub fn of(head: &crate::snapshot::SnapshotHead) -> Option<SnapshotOffer> {
        Some(SnapshotOffer {
            height: head.manifest.height,
            block_hash: head.manifest.block_hash,
            head_frames: u32::try_from(head.epoch_headers.len().checked_add(1)?).ok()?,
            chunks: u32::try_from(head.manifest.chunks.len()).ok()?,
            chunk_bytes: head.manifest.chunk_bytes(),
        })
    }
}

/// A peer's chain position.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainStatus {
    /// Peers on another chain (another genesis) are not sync partners.
    pub chain_id: ChainId,
    pub height: Height,
    pub tip: BlockHash,
    pub final_height: Height,
    /// Lowest height whose block and header the peer serves (0 unless it prunes history).
    pub kept_from: Height,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncResponse {
    Status(ChainStatus),
    Blocks(Vec<Block>),
    Txs(Vec<SignedTx>),
    Headers(Vec<SignedHeader>),
    /// Oldest first, at most [`MAX_SNAPSHOT_OFFERS`] (the newest); empty: the peer serves none.
    SnapshotOffers(Vec<SnapshotOffer>),
    /// One frame's bytes, still to be checked by the asker.
    SnapshotFrame(Vec<u8>),
}

impl SyncRequest {
    pub fn encode(&self) -> Result<Vec<u8>, CodecError> {
        encode(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<SyncRequest, CodecError> {
        decode_exact_bounded(bytes, MAX_REQUEST_BYTES)
    }
}

impl SyncResponse {
    pub fn encode(&self) -> Result<Vec<u8>, CodecError> {
        encode(self)
    }

    pub fn decode(bytes: &[u8], max_len: usize) -> Result<SyncResponse, CodecError> {
        decode_exact_bounded(bytes, max_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use doin_types::Hash256;

    #[test]
    fn messages_round_trip_and_trailing_bytes_are_refused() {
        let reqs = [
            SyncRequest::Status,
            SyncRequest::Blocks { from: 5, max: 64 },
            SyncRequest::Txs {
                block: Hash256([3; 32]),
                indexes: vec![0, 7, 9],
            },
            SyncRequest::Headers { from: 9, max: 512 },
            SyncRequest::SnapshotOffers,
            SyncRequest::SnapshotFrame {
                height: 40,
                index: 3,
            },
        ];
        for r in reqs {
            let mut bytes = r.encode().unwrap();
            assert_eq!(SyncRequest::decode(&bytes).unwrap(), r);
            bytes.push(0);
            assert!(SyncRequest::decode(&bytes).is_err());
        }
        let status = SyncResponse::Status(ChainStatus {
            chain_id: ChainId(Hash256([1; 32])),
            height: 9,
            tip: Hash256([2; 32]),
            final_height: 9,
            kept_from: 3,
        });
        let bytes = status.encode().unwrap();
        assert_eq!(SyncResponse::decode(&bytes, 1 << 20).unwrap(), status);
        assert!(SyncResponse::decode(&bytes, bytes.len() - 1).is_err());
        let offer = SyncResponse::SnapshotOffers(vec![SnapshotOffer {
            height: 40,
            block_hash: Hash256([4; 32]),
            head_frames: 2,
            chunks: 7,
            chunk_bytes: 7 << 20,
        }]);
        let mut bytes = offer.encode().unwrap();
        assert_eq!(SyncResponse::decode(&bytes, 1 << 20).unwrap(), offer);
        bytes.push(0);
        assert!(SyncResponse::decode(&bytes, 1 << 20).is_err());
        assert!(SyncRequest::decode(&[0xff; 8]).is_err());
        assert!(SyncRequest::decode(&vec![0; MAX_REQUEST_BYTES + 1]).is_err());
    }
}
