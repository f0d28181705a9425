//! Golden byte vectors: if any of these change, every hash, signature and stored block of every
//! network changes with them. Changing one is a hard fork and must be deliberate.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use doin_codec::{decode_exact, decode_exact_bounded, encode, CodecError};
use doin_types::{Amount, ChainId, Hash256, Network, PublicKeyBytes, SignatureBytes, Timestamp};
use serde::{Deserialize, Serialize};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Kind {
    First,
    Second { value: u32 },
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Sample {
    flag: bool,
    small: u8,
    word: u32,
    amount: Amount,
    time: Timestamp,
    chain: ChainId,
    key: PublicKeyBytes,
    items: Vec<u16>,
    maybe: Option<u64>,
    kind: Kind,
    network: Network,
}

fn sample() -> Sample {
    Sample {
        flag: true,
        small: 0xfe,
        word: 0x0102_0304,
        amount: Amount::from_base_units(150_000_000),
        time: Timestamp(1),
        chain: ChainId(Hash256([0x11; 32])),
        key: PublicKeyBytes([0x22; 32]),
        items: vec![1, 0x0203],
        maybe: Some(7),
        kind: Kind::Second { value: 9 },
        network: Network::Devnet,
    }
}

const SAMPLE_HEX: &str = concat!(
    "01",                                                               // flag
    "fe",                                                               // small
    "04030201",                                                         // word (LE)
    "80d1f00800000000",                                                 // amount 150000000
    "0100000000000000",                                                 // time
    "1111111111111111111111111111111111111111111111111111111111111111", // chain id, no prefix
    "2222222222222222222222222222222222222222222222222222222222222222", // key, no prefix
    "0200000000000000",                                                 // vec length (u64)
    "0100",                                                             // 1u16
    "0302",                                                             // 0x0203u16
    "01",                                                               // Some
    "0700000000000000",                                                 // 7u64
    "01000000",                                                         // variant index 1 (u32)
    "09000000",                                                         // value
    "02000000",                                                         // Network::Devnet
);

#[test]
fn sample_struct_matches_golden_bytes() {
    let bytes = encode(&sample()).unwrap();
    assert_eq!(hex::encode(&bytes), SAMPLE_HEX);
    let back: Sample = decode_exact(&bytes).unwrap();
    assert_eq!(back, sample());
}

#[test]
fn signature_is_64_raw_bytes() {
    let bytes = encode(&SignatureBytes([0x33; 64])).unwrap();
    assert_eq!(bytes, vec![0x33; 64]);
}

#[test]
fn trailing_bytes_are_rejected() {
    let mut bytes = encode(&sample()).unwrap();
    bytes.push(0);
    assert_eq!(
        decode_exact::<Sample>(&bytes),
        Err(CodecError::TrailingBytes { trailing: 1 })
    );
}

#[test]
fn oversize_input_is_rejected_before_decoding() {
    let bytes = encode(&sample()).unwrap();
    assert!(matches!(
        decode_exact_bounded::<Sample>(&bytes, bytes.len() - 1),
        Err(CodecError::Oversize { .. })
    ));
    assert!(matches!(
        decode_exact::<Vec<u8>>(&vec![0u8; doin_codec::MAX_DECODE_LEN + 1]),
        Err(CodecError::Oversize { .. })
    ));
}

#[test]
fn malformed_input_is_rejected() {
    let mut bytes = encode(&sample()).unwrap();
    bytes[0] = 2; // not a valid bool
    assert!(matches!(
        decode_exact::<Sample>(&bytes),
        Err(CodecError::Malformed(_))
    ));
    // A length prefix claiming far more than the limit must not allocate or panic.
    let huge = u64::MAX.to_le_bytes();
    assert!(matches!(
        decode_exact::<Vec<u8>>(&huge),
        Err(CodecError::Malformed(_))
    ));
    // Truncated input.
    let bytes = encode(&sample()).unwrap();
    assert!(matches!(
        decode_exact::<Sample>(&bytes[..bytes.len() - 1]),
        Err(CodecError::Malformed(_))
    ));
    // Unknown enum variant.
    assert!(matches!(
        decode_exact::<Network>(&7u32.to_le_bytes()),
        Err(CodecError::Malformed(_))
    ));
}
