//! Main-chain sync requests and answers: decoding never panics; what decodes re-encodes to the
//! same bytes.
#![no_main]
use doin_codec::{decode_exact_bounded, encode};
use doin_main_core::wire::{MainSyncRequest, MainSyncResponse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = decode_exact_bounded::<MainSyncRequest>(data, 1024) {
        assert_eq!(encode(&req).ok().as_deref(), Some(data));
    }
    if let Ok(resp) = decode_exact_bounded::<MainSyncResponse>(data, 1 << 20) {
        assert_eq!(encode(&resp).ok().as_deref(), Some(data));
    }
});
