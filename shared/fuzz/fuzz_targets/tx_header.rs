//! A signed transfer header (headers-first sync): decoding never panics; what decodes
//! re-encodes to the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = doin_codec::decode_exact_bounded::<doin_tx_core::SignedHeader>(data, 64 * 1024) {
        assert_eq!(doin_codec::encode(&h).ok().as_deref(), Some(data));
        let _ = h.hash();
    }
});
