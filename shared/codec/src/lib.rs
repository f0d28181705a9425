//! The one canonical binary encoding of DOIN: bincode 2.0.1 through serde, with fixed-width
//! little-endian integers and a decode limit.
//!
//! Everything that is hashed, signed, stored or sent uses `encode` and `decode_exact` from here;
//! no other crate builds its own bincode configuration. `decode_exact` refuses oversize input
//! before decoding and trailing bytes after it, so every accepted byte string has exactly one
//! meaning and re-encoding it gives the same bytes back (ids are recomputed from those bytes).
//!
//! Encoding rules a foreign implementation needs (also in `docs/transactions.md`):
//! integers are fixed width little-endian (`u8` 1 byte, `u32` 4, `u64` 8); fixed arrays are their
//! bytes with no prefix; `Vec`/`String` are a `u64` length then the items; `Option` is a `u8`
//! tag 0/1 then the value; an enum is a `u32` variant index then the variant's fields; structs
//! are their fields in declaration order.

// Every dependency in Cargo.toml is used (checked outside test builds, which also see the
// dev-dependencies).
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

use serde::{de::DeserializeOwned, Serialize};

/// Largest byte string `decode_exact` accepts unless a caller asks for a tighter bound. Large
/// enough for a full transfer block (1 MiB of transactions plus header) with room to spare.
pub const MAX_DECODE_LEN: usize = 8 * 1024 * 1024;

/// bincode's own allocation guard: no length prefix may claim more than this many bytes.
const BINCODE_LIMIT: usize = MAX_DECODE_LEN;

type Config = bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Fixint,
    bincode::config::Limit<BINCODE_LIMIT>,
>;

fn config() -> Config {
    bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
        .with_limit::<BINCODE_LIMIT>()
}

/// Why bytes could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("input is {len} bytes, more than the {max}-byte limit")]
    Oversize { len: usize, max: usize },
    #[error("{trailing} trailing bytes after the encoded value")]
    TrailingBytes { trailing: usize },
    #[error("malformed encoding: {0}")]
    Malformed(String),
    #[error("value cannot be encoded: {0}")]
    Encode(String),
}

/// Encodes `value` canonically.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    bincode::serde::encode_to_vec(value, config()).map_err(|e| CodecError::Encode(e.to_string()))
}

/// Number of bytes `encode(value)` would produce.
pub fn encoded_len<T: Serialize + ?Sized>(value: &T) -> Result<usize, CodecError> {
    encode(value).map(|v| v.len())
}

/// Decodes exactly one `T` from `bytes`, refusing more than `MAX_DECODE_LEN` bytes, malformed
/// input and trailing bytes.
pub fn decode_exact<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    decode_exact_bounded(bytes, MAX_DECODE_LEN)
}

/// `decode_exact` with a caller-chosen size bound (e.g. the maximum transaction size), checked
/// before any decoding work is done.
pub fn decode_exact_bounded<T: DeserializeOwned>(
    bytes: &[u8],
    max_len: usize,
) -> Result<T, CodecError> {
    let max = max_len.min(MAX_DECODE_LEN);
    if bytes.len() > max {
        return Err(CodecError::Oversize {
            len: bytes.len(),
            max,
        });
    }
    let (value, used) = bincode::serde::decode_from_slice::<T, _>(bytes, config())
        .map_err(|e| CodecError::Malformed(e.to_string()))?;
    if used != bytes.len() {
        return Err(CodecError::TrailingBytes {
            trailing: bytes.len() - used,
        });
    }
    Ok(value)
}
