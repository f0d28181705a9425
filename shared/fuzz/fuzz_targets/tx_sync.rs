//! Transfer-chain sync requests a peer sends and answers it returns (warp sync's included):
//! decoding never panics; what decodes re-encodes to the same bytes.
#![no_main]
use doin_tx_core::wire::{SyncRequest, SyncResponse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = SyncRequest::decode(data) {
        assert_eq!(req.encode().ok().as_deref(), Some(data));
    }
    if let Ok(resp) = SyncResponse::decode(data, 1 << 20) {
        assert_eq!(resp.encode().ok().as_deref(), Some(data));
    }
});
