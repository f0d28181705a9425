//! A payment-channel message from a counterparty (through the hub's REST): decoding never
//! panics; what decodes re-encodes to the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = doin_channels::Message::decode(data) {
        assert_eq!(msg.encode().ok().as_deref(), Some(data));
    }
});
