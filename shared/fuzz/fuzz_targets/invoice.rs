//! An invoice string a payer pastes: parsing never panics, on any network.
#![no_main]
use doin_types::Network;
use libfuzzer_sys::fuzz_target;
use std::time::Duration;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for network in [Network::Devnet, Network::Testnet, Network::Mainnet] {
        let _ =
            doin_channels::parse_invoice(text, network, Duration::from_secs(1_800_000_000), None);
    }
});
