//! Text a client sends in URLs and JSON: addresses, amounts, hashes, fixed-point numbers.
//! Parsing never panics, and what parses prints back to text that parses to the same value.
#![no_main]
use doin_types::{Address, Amount, Hash256};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(a) = Address::parse_any(text) {
        assert_eq!(Address::parse_any(&a.to_string()).ok(), Some(a));
    }
    if let Ok(a) = Amount::parse_doin(text) {
        assert_eq!(Amount::parse_doin(&a.to_doin_string()).ok(), Some(a));
    }
    if let Ok(a) = Amount::parse_base_units(text) {
        assert_eq!(Amount::parse_base_units(&a.to_string()).ok(), Some(a));
    }
    let _ = text.parse::<Hash256>();
    if let Ok(x) = doin_main_core::Fx::parse(text) {
        assert_eq!(doin_main_core::Fx::parse(&x.to_string()).ok(), Some(x));
    }
});
