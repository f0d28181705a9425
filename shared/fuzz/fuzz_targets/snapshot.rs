//! Snapshot frames from a file or a peer: a head (its first frame, with the hop frames split
//! from the rest of the input) and a chunk (checked against a manifest naming its hash, so the
//! decode and order checks behind the hash run). Nothing panics.
#![no_main]
use doin_tx_core::snapshot::{check_chunk, chunk_hash, ChunkInfo, Manifest, SnapshotHead};
use doin_types::{ChainId, Hash256};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    if selector % 2 == 0 {
        // Frames: u16 length-prefixed pieces of the rest.
        let mut frames = Vec::new();
        let mut at = rest;
        while at.len() >= 2 {
            let len = usize::from(u16::from_be_bytes([at[0], at[1]])).min(at.len() - 2);
            frames.push(at[2..2 + len].to_vec());
            at = &at[2 + len..];
        }
        let Some((first, hops)) = frames.split_first() else {
            return;
        };
        let _ = SnapshotHead::decode_frames(first, &mut |i| {
            hops.get(i as usize).cloned().ok_or_else(|| {
                doin_tx_core::snapshot::SnapshotError::EpochHeaders("no more frames".into())
            })
        });
    } else {
        let manifest = Manifest {
            chain_id: ChainId(Hash256([0; 32])),
            height: 1,
            block_hash: Hash256([0; 32]),
            state_root: Hash256([0; 32]),
            chunks: vec![ChunkInfo {
                hash: chunk_hash(rest),
                entries: u64::from(selector),
                bytes: rest.len() as u64,
            }],
        };
        let _ = check_chunk(&manifest, 0, rest);
    }
});
