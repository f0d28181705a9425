//! An inclusion proof a wallet checks offline: decoding never panics; what decodes re-encodes
//! to the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(proof) = doin_tx_core::TxInclusionProof::decode(data) {
        assert_eq!(proof.encode().ok().as_deref(), Some(data));
    }
});
