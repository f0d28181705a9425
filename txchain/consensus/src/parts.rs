//! Proposed blocks as a stream of parts: the proposer cuts its encoded block into chunks
//! ([`split_block`]); every other validator collects them ([`PartsCollector`]) and gets the
//! block back once all are in.
//!
//! The parts carry no signatures of their own: a reassembled block is only a candidate. It must
//! decode exactly, sit at the announced height, name the announced proposer and carry that
//! proposer's signature; whether it is *valid* (and worth a prevote) is the chain's
//! `apply_block`'s to say, and whether it is *the* proposal is the engine's (by its hash). The
//! collector owns the bounds: parts per block, bytes per block, streams at once.

use crate::context::{BftHeight, BlockPart, ValidatorAddress};
use arc_malachitebft_core_types::Round;
use doin_tx_core::{Block, BlockError};
use std::collections::BTreeMap;

/// Bytes of block per part.
pub const PART_BYTES: usize = 64 * 1024;

/// Why a part or a reassembled block is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PartsError {
    #[error("the block encodes to more than {max} bytes")]
    TooLarge { max: usize },
    #[error("part {index} of {total} is out of range")]
    OutOfRange { index: u32, total: u32 },
    #[error("the parts disagree on how many there are")]
    TotalMismatch,
    #[error("part {index} arrived twice with different bytes")]
    Conflicting { index: u32 },
    #[error("an empty part")]
    Empty,
    #[error("the reassembled block is malformed: {0}")]
    Malformed(String),
    #[error("the reassembled block does not match its announcement: {0}")]
    Mismatch(&'static str),
    #[error("the proposer's block signature does not verify")]
    BadSignature,
}

/// Cuts `block` into parts for `(height, round)` by `proposer`.
pub fn split_block(
    block: &Block,
    height: BftHeight,
    round: Round,
    proposer: ValidatorAddress,
    max_block_bytes: usize,
) -> Result<Vec<BlockPart>, PartsError> {
    let bytes = block
        .encode()
        .map_err(|e: BlockError| PartsError::Malformed(e.to_string()))?;
    if bytes.len() > max_block_bytes {
        return Err(PartsError::TooLarge {
            max: max_block_bytes,
        });
    }
    let chunks: Vec<&[u8]> = bytes.chunks(PART_BYTES).collect();
    let total = u32::try_from(chunks.len()).map_err(|_| PartsError::TooLarge {
        max: max_block_bytes,
    })?;
    Ok(chunks
        .into_iter()
        .enumerate()
        .map(|(i, c)| BlockPart {
            height,
            round,
            proposer,
            index: i as u32,
            total,
            bytes: c.to_vec(),
        })
        .collect())
}

/// One proposal's parts so far.
#[derive(Default)]
struct Stream {
    total: u32,
    bytes: usize,
    parts: BTreeMap<u32, Vec<u8>>,
}

/// What inserting a part achieved.
#[derive(Debug, PartialEq, Eq)]
pub enum PartsOutcome {
    /// More parts are needed.
    Incomplete,
    /// Every part is in: the block, checked against its announcement (not yet validated).
    Complete(Box<Block>),
}

type StreamKey = (BftHeight, i64, ValidatorAddress);

/// Reassembles proposals from parts, within fixed bounds.
pub struct PartsCollector {
    max_block_bytes: usize,
    max_streams: usize,
    streams: BTreeMap<StreamKey, Stream>,
}

impl PartsCollector {
    pub fn new(max_block_bytes: usize, max_streams: usize) -> PartsCollector {
        PartsCollector {
            max_block_bytes,
            max_streams: max_streams.max(1),
            streams: BTreeMap::new(),
        }
    }

    /// Most parts a block of the maximum size can have.
    fn max_parts(&self) -> u32 {
        u32::try_from(self.max_block_bytes.div_ceil(PART_BYTES).max(1)).unwrap_or(u32::MAX)
    }

    /// Streams in progress.
    pub fn len(&self) -> usize {
        self.streams.len()
    }

    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// Forgets every stream below `height` (decided heights).
    pub fn prune_below(&mut self, height: BftHeight) {
        self.streams.retain(|(h, _, _), _| *h >= height);
    }

    /// Adds a part. A stream that fails is dropped whole.
    pub fn insert(&mut self, part: BlockPart) -> Result<PartsOutcome, PartsError> {
        let key = (part.height, part.round.as_i64(), part.proposer);
        let result = self.insert_inner(key, part);
        if !matches!(result, Ok(PartsOutcome::Incomplete)) {
            self.streams.remove(&key);
        }
        result
    }

    fn insert_inner(
        &mut self,
        key: StreamKey,
        part: BlockPart,
    ) -> Result<PartsOutcome, PartsError> {
        if part.bytes.is_empty() {
            return Err(PartsError::Empty);
        }
        if part.total == 0 || part.total > self.max_parts() || part.index >= part.total {
            return Err(PartsError::OutOfRange {
                index: part.index,
                total: part.total,
            });
        }
        if !self.streams.contains_key(&key) && self.streams.len() >= self.max_streams {
            // Make room by dropping the stream of the lowest height (the most likely stale).
            if let Some(lowest) = self.streams.keys().next().copied() {
                self.streams.remove(&lowest);
            }
        }
        let max_bytes = self.max_block_bytes;
        let stream = self.streams.entry(key).or_insert_with(|| Stream {
            total: part.total,
            ..Stream::default()
        });
        if stream.total != part.total {
            return Err(PartsError::TotalMismatch);
        }
        if let Some(existing) = stream.parts.get(&part.index) {
            if *existing != part.bytes {
                return Err(PartsError::Conflicting { index: part.index });
            }
            return Ok(PartsOutcome::Incomplete);
        }
        stream.bytes = stream.bytes.saturating_add(part.bytes.len());
        if stream.bytes > max_bytes {
            return Err(PartsError::TooLarge { max: max_bytes });
        }
        stream.parts.insert(part.index, part.bytes);
        if stream.parts.len() < stream.total as usize {
            return Ok(PartsOutcome::Incomplete);
        }
        let mut bytes = Vec::with_capacity(stream.bytes);
        for chunk in stream.parts.values() {
            bytes.extend_from_slice(chunk);
        }
        let block = Block::decode(&bytes).map_err(|e| PartsError::Malformed(e.to_string()))?;
        if block.header.height != key.0 .0 {
            return Err(PartsError::Mismatch("height"));
        }
        if block.header.proposer != key.2 .0 {
            return Err(PartsError::Mismatch("proposer"));
        }
        block
            .verify_signature()
            .map_err(|_| PartsError::BadSignature)?;
        Ok(PartsOutcome::Complete(Box::new(block)))
    }
}
