//! Proposal parts from many proposers put back together: the input is a run of parts, each a
//! two-byte little-endian length then that many bytes of an encoded part. The collector never
//! panics, never holds more streams than its bound, and whatever it completes is a block at the
//! announced height by the announced proposer.
#![no_main]
use arc_malachitebft_codec::Codec;
use bytes::Bytes;
use doin_tx_consensus::codec::WireCodec;
use doin_tx_consensus::{BlockPart, PartsCollector, PartsOutcome};
use libfuzzer_sys::fuzz_target;

const MAX_BLOCK_BYTES: usize = 256 * 1024;
const MAX_STREAMS: usize = 4;

fuzz_target!(|data: &[u8]| {
    let mut collector = PartsCollector::new(MAX_BLOCK_BYTES, MAX_STREAMS);
    let mut rest = data;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
        rest = &rest[2..];
        let (one, after) = rest.split_at(len.min(rest.len()));
        rest = after;
        let Ok(part) = Codec::<BlockPart>::decode(&WireCodec, Bytes::copy_from_slice(one)) else {
            continue;
        };
        let (height, proposer) = (part.height, part.proposer);
        if let Ok(PartsOutcome::Complete(block)) = collector.insert(part) {
            assert_eq!(block.header.height, height.0);
            assert_eq!(block.header.proposer, proposer.0);
        }
        assert!(collector.len() <= MAX_STREAMS);
    }
});
