//! JSON bodies of the hub's REST operations as a client sends them: parsing never panics, and
//! a channel-message request goes on through the hub's own reading of it (hex, the messages'
//! exact decoding, the shape rules) to the hash its peer must have signed.
#![no_main]
use doin_api::hub::{
    DecodeRequest, HubInvoiceRequest, MessageRequest, OpenOutgoingRequest, RegisterRequest,
    StreamRequest,
};
use doin_hub_core::request::MessageBody;
use doin_types::{ChainId, Hash256};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<RegisterRequest>(data);
    let _ = serde_json::from_slice::<OpenOutgoingRequest>(data);
    let _ = serde_json::from_slice::<DecodeRequest>(data);
    let _ = serde_json::from_slice::<HubInvoiceRequest>(data);
    let _ = serde_json::from_slice::<StreamRequest>(data);
    if let Ok(req) = serde_json::from_slice::<MessageRequest>(data) {
        if let Ok(body) = MessageBody::parse(req) {
            let _ = body.auth_hash(&ChainId(Hash256([9; 32])), &Hash256([1; 32]));
        }
    }
});
