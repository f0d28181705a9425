//! Cryptography for DOIN: tagged hashes, BIP340 Schnorr keys and signatures, RFC 6962 Merkle
//! trees and encrypted keystore files.
//!
//! This crate owns every use of SHA-256 and secp256k1 in the project, so the primitives of
//! docs/architecture.md (tagged hashes, x-only keys, 64-byte signatures) live in one place. It knows nothing about
//! transactions or blocks: callers choose the tag and the bytes. The only I/O is reading and
//! writing keystore files, on explicit request.

// Every dependency in Cargo.toml is used (checked outside test builds, which also see the
// dev-dependencies).
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod hash;
mod keys;
pub mod keystore;
pub mod merkle;

pub use hash::{tagged_hash, tagged_hash_parts, TaggedHasher};
pub use keys::{is_valid_public_key, verify, KeyPair, SignatureError};
