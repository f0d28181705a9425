//! A transaction from a peer or a client: decoding never panics, and what decodes is the one
//! canonical encoding of what it decoded to (so its id, the hash of these bytes, is unique).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(tx) = doin_tx_core::Tx::decode(data, 64 * 1024) {
        assert_eq!(doin_codec::encode(tx.signed()).ok().as_deref(), Some(data));
        let _ = tx.body().payload.kind();
        let _ = tx.signed().signature_holds();
    }
});
