//! A main block from gossip or sync: decoding never panics; what decodes re-encodes to the same
//! bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(block) = doin_main_core::MainBlock::decode(data) {
        assert_eq!(block.encode().ok().as_deref(), Some(data));
        let _ = block.header.hash();
    }
});
