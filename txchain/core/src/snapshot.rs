//! State snapshots of the transfer chain: the format and every check that needs no storage.
//!
//! A snapshot is the state tree's key/values at one final height, in chunks of about 1 MiB in
//! key-hash order, each with a JMT range proof, plus a head: a manifest (chain id, height,
//! block hash, state root and each chunk's hash, size and entry count), the block's signed
//! header, its finality proof from genesis and the signed headers of the epoch hops. The head is
//! checked against the genesis parameters alone ([`SnapshotHead::check`]); a chunk against its
//! manifest entry ([`check_chunk`]) before anything is built from it, so a bad chunk is refused
//! alone. Whether the chunks make the manifest's state root is proven while the tree is
//! restored from them (the range proofs, then the root at the end): that is the node's job, as
//! is reading and writing files.
//!
//! Layout of a snapshot file (`docs/architecture.md#snapshots`): the 8 bytes `DOINSNAP`, the
//! format number (u32 big-endian), then frames of a u32 big-endian length and that many bytes:
//! the head (all but the epoch hops, with their count), one frame per hop, then each chunk in
//! manifest order. Nothing may follow the last chunk. Every frame is one bounded decode.

use crate::bft::CommitCertificate;
use crate::block::{BlockHash, SignedHeader};
use crate::error::BlockError;
use crate::light::{EpochHop, FinalityError, FinalityProof};
use crate::params::ChainParams;
use doin_codec::CodecError;
use doin_types::{ChainId, Hash256, Height};
use serde::{Deserialize, Serialize};

pub const SNAPSHOT_MAGIC: &[u8; 8] = b"DOINSNAP";
/// Format number after the magic; another number is refused, never guessed at.
pub const SNAPSHOT_FORMAT: u32 = 1;
/// A chunk is closed once its entries reach this many bytes.
pub const TARGET_CHUNK_BYTES: usize = 1 << 20;
/// Largest frame accepted (the head, one epoch hop, or a chunk): what one canonical decode
/// takes. A chunk is the target plus at most one oversized state value.
pub const MAX_FRAME_BYTES: usize = doin_codec::MAX_DECODE_LEN;
/// Largest encoded chunk accepted.
pub const MAX_CHUNK_BYTES: usize = MAX_FRAME_BYTES;
/// Most chunks a manifest may name (about 100 GiB of state at the target size; the manifest
/// stays within one frame).
pub const MAX_CHUNKS: usize = 100_000;
/// Most epoch hops a head may announce (one per epoch: millennia of daily epochs).
pub const MAX_HOPS: u64 = 1_000_000;
/// Domain tag of a chunk's hash in the manifest.
pub const TAG_SNAPSHOT_CHUNK: &str = "doin/tx-snapshot-chunk";

/// The state tree's hash function.
pub type StateHasher = sha2::Sha256;
/// A JMT proof that a run of leaves is the tree's leftmost ones up to its last key.
pub type RangeProof = jmt::proof::SparseMerkleRangeProof<StateHasher>;

/// What the manifest says of one chunk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkInfo {
    /// `H_tag("doin/tx-snapshot-chunk", encoded chunk)`.
    pub hash: Hash256,
    pub entries: u64,
    /// Length of the encoded chunk.
    pub bytes: u64,
}

/// What a snapshot is of, and its chunks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub chain_id: ChainId,
    pub height: Height,
    pub block_hash: BlockHash,
    pub state_root: Hash256,
    pub chunks: Vec<ChunkInfo>,
}

impl Manifest {
    pub fn entries(&self) -> u64 {
        self.chunks.iter().map(|c| c.entries).sum()
    }

    pub fn chunk_bytes(&self) -> u64 {
        self.chunks.iter().map(|c| c.bytes).sum()
    }
}

/// Everything a snapshot carries besides its chunks.
// Not `Eq`: the finality proof's state proofs are only `PartialEq`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SnapshotHead {
    pub manifest: Manifest,
    /// The block at `manifest.height`, with its proposer's signature.
    pub header: SignedHeader,
    /// That block's finality from genesis.
    pub finality: FinalityProof,
    /// The headers of the finality proof's hops, with their proposers' signatures (what a
    /// pruned node keeps of each epoch), in the same order.
    pub epoch_headers: Vec<SignedHeader>,
}

/// One run of the state's entries in key-hash order, with the proof that ties it to the root.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StateChunk {
    /// Key hash and value, strictly increasing by key hash.
    pub entries: Vec<(Hash256, Vec<u8>)>,
    /// Proof of the leaves up to the last entry's key.
    pub proof: RangeProof,
}

/// Why a snapshot, or a part of it, is refused.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("not a snapshot file (it does not start with DOINSNAP)")]
    NotASnapshot,
    #[error("snapshot format {0} is not one this node reads (it reads {SNAPSHOT_FORMAT})")]
    Format(u32),
    #[error("the snapshot's {what} does not decode: {source}")]
    Decode { what: String, source: CodecError },
    #[error("the snapshot is of chain {got}, this node runs chain {expected}")]
    WrongChain { expected: ChainId, got: ChainId },
    #[error("the snapshot's manifest does not match its header: {0}")]
    ManifestMismatch(String),
    #[error("the snapshot's header does not verify: {0}")]
    Header(#[from] BlockError),
    #[error("the snapshot's block is not proven final from the genesis: {0}")]
    Finality(#[from] FinalityError),
    #[error("the snapshot's epoch headers do not match its finality proof: {0}")]
    EpochHeaders(String),
    #[error("chunk {index} is refused: {reason}")]
    Chunk { index: usize, reason: String },
    #[error("the snapshot's state does not make its block's state root: {0}")]
    Root(String),
}

/// The head's first frame: everything but the hops, and how many follow.
#[derive(Serialize, Deserialize)]
struct HeadFrame {
    manifest: Manifest,
    header: SignedHeader,
    certificate: CommitCertificate,
    hops: u64,
}

/// One epoch hop with its header's proposer signature: one frame each.
#[derive(Serialize, Deserialize)]
struct HopFrame {
    header: SignedHeader,
    hop: EpochHop,
}

fn decode_frame<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: impl Fn() -> String,
) -> Result<T, SnapshotError> {
    doin_codec::decode_exact_bounded(bytes, MAX_FRAME_BYTES).map_err(|source| {
        SnapshotError::Decode {
            what: what(),
            source,
        }
    })
}

impl SnapshotHead {
    /// The head's frames: the head frame, then one per epoch hop.
    pub fn encode_frames(&self) -> Result<Vec<Vec<u8>>, CodecError> {
        let mut frames = vec![doin_codec::encode(&HeadFrame {
            manifest: self.manifest.clone(),
            header: self.header.clone(),
            certificate: self.finality.certificate.clone(),
            hops: self.finality.hops.len() as u64,
        })?];
        for (header, hop) in self.epoch_headers.iter().zip(&self.finality.hops) {
            frames.push(doin_codec::encode(&HopFrame {
                header: header.clone(),
                hop: hop.clone(),
            })?);
        }
        Ok(frames)
    }

    /// The head from its first frame and `next_hop`, which reads each following hop frame.
    pub fn decode_frames(
        head: &[u8],
        next_hop: &mut dyn FnMut(u64) -> Result<Vec<u8>, SnapshotError>,
    ) -> Result<SnapshotHead, SnapshotError> {
        let frame: HeadFrame = decode_frame(head, || "head".into())?;
        if frame.hops > MAX_HOPS {
            return Err(SnapshotError::EpochHeaders(format!(
                "{} hops announced, at most {MAX_HOPS}",
                frame.hops
            )));
        }
        let mut hops = Vec::new();
        let mut epoch_headers = Vec::new();
        for index in 0..frame.hops {
            let bytes = next_hop(index)?;
            let hop: HopFrame = decode_frame(&bytes, || format!("epoch hop {index}"))?;
            epoch_headers.push(hop.header);
            hops.push(hop.hop);
        }
        Ok(SnapshotHead {
            manifest: frame.manifest,
            header: frame.header,
            finality: FinalityProof {
                hops,
                certificate: frame.certificate,
            },
            epoch_headers,
        })
    }

    /// Checks everything but the chunks against the genesis parameters alone: the chain, what
    /// [`SnapshotHead::check_consistent`] checks, and finality from genesis hop by hop.
    pub fn check(&self, params: &ChainParams) -> Result<(), SnapshotError> {
        if self.manifest.chain_id != params.chain_id {
            return Err(SnapshotError::WrongChain {
                expected: params.chain_id,
                got: self.manifest.chain_id,
            });
        }
        self.check_consistent()?;
        let header = &self.header.header;
        self.finality.verify(params, header, &header.hash()?)?;
        Ok(())
    }

    /// What can be checked without the genesis: the manifest against the header, the chunk
    /// sizes, the proposers' signatures of the header and the epoch headers, and the epoch
    /// headers against the finality proof's hops.
    pub fn check_consistent(&self) -> Result<(), SnapshotError> {
        let m = &self.manifest;
        let header = &self.header.header;
        let mismatch = |what: &str| Err(SnapshotError::ManifestMismatch(what.into()));
        if header.chain_id != m.chain_id {
            return mismatch("chain id");
        }
        if header.height != m.height {
            return mismatch("height");
        }
        if header.hash()? != m.block_hash {
            return mismatch("block hash");
        }
        if header.state_root != m.state_root {
            return mismatch("state root");
        }
        if m.chunks.is_empty() || m.chunks.len() > MAX_CHUNKS {
            return mismatch("number of chunks");
        }
        if m.chunks
            .iter()
            .any(|c| c.entries == 0 || c.bytes == 0 || c.bytes > MAX_CHUNK_BYTES as u64)
        {
            return mismatch("a chunk's size");
        }
        self.header.verify_signature()?;
        if self.epoch_headers.len() != self.finality.hops.len() {
            return Err(SnapshotError::EpochHeaders(format!(
                "{} headers for {} hops",
                self.epoch_headers.len(),
                self.finality.hops.len()
            )));
        }
        for (signed, hop) in self.epoch_headers.iter().zip(&self.finality.hops) {
            if signed.header != hop.header {
                return Err(SnapshotError::EpochHeaders(format!(
                    "the header at height {} differs from its hop",
                    hop.header.height
                )));
            }
            signed.verify_signature()?;
        }
        if self.finality.certificate.height != m.height
            || self.finality.certificate.block != m.block_hash
        {
            return mismatch("the certificate's block");
        }
        Ok(())
    }
}

/// The manifest hash of an encoded chunk.
pub fn chunk_hash(encoded: &[u8]) -> Hash256 {
    doin_crypto::tagged_hash(TAG_SNAPSHOT_CHUNK, encoded)
}

impl StateChunk {
    pub fn encode(&self) -> Result<Vec<u8>, CodecError> {
        doin_codec::encode(self)
    }
}

/// Checks chunk `index`'s bytes against the manifest, then decodes it and checks its order:
/// a chunk that fails is refused alone, before any of it is used.
pub fn check_chunk(
    manifest: &Manifest,
    index: usize,
    encoded: &[u8],
) -> Result<StateChunk, SnapshotError> {
    let refuse = |reason: String| SnapshotError::Chunk { index, reason };
    let info = manifest
        .chunks
        .get(index)
        .ok_or_else(|| refuse("the manifest names no such chunk".into()))?;
    if encoded.len() as u64 != info.bytes {
        return Err(refuse(format!(
            "{} bytes, the manifest says {}",
            encoded.len(),
            info.bytes
        )));
    }
    if chunk_hash(encoded) != info.hash {
        return Err(refuse("its hash differs from the manifest's".into()));
    }
    let chunk: StateChunk = doin_codec::decode_exact_bounded(encoded, MAX_CHUNK_BYTES)
        .map_err(|e| refuse(format!("does not decode: {e}")))?;
    if chunk.entries.len() as u64 != info.entries {
        return Err(refuse(format!(
            "{} entries, the manifest says {}",
            chunk.entries.len(),
            info.entries
        )));
    }
    if chunk.entries.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err(refuse("entries out of key order".into()));
    }
    Ok(chunk)
}

/// Splits the state's entries (in key-hash order) into chunks of about
/// [`TARGET_CHUNK_BYTES`]: the index ranges of `entries` each chunk takes.
pub fn chunk_ranges(value_lens: impl IntoIterator<Item = usize>) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::new();
    let (mut start, mut bytes, mut end) = (0, 0usize, 0);
    for len in value_lens {
        // Key hash, value and the value's length prefix.
        bytes = bytes.saturating_add(32 + 8 + len);
        end += 1;
        if bytes >= TARGET_CHUNK_BYTES {
            ranges.push(start..end);
            start = end;
            bytes = 0;
        }
    }
    if end > start {
        ranges.push(start..end);
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_close_at_the_target_and_cover_everything_once() {
        let lens = [100_000; 25];
        let ranges = chunk_ranges(lens.iter().copied());
        assert_eq!(ranges.len(), 3);
        assert_eq!(ranges[0], 0..11);
        assert_eq!(ranges[2].end, 25);
        assert!(chunk_ranges(std::iter::empty()).is_empty());
        assert_eq!(chunk_ranges([5]), vec![0..1]);
    }
}
