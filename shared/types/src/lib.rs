//! Primitive value types shared by every DOIN chain.
//!
//! This crate owns the vocabulary: hashes, amounts, heights, timestamps, keys, addresses and
//! networks. It does no hashing, signing or I/O (those live in `doin-crypto` and the services),
//! and it depends on nothing of ours, so every other crate can use it.
//!
//! Serde: every type here has one representation in binary formats (the canonical bincode
//! encoding, fixed-size where possible) and a readable one in JSON/TOML (hex strings, decimal
//! strings for amounts, bech32m for addresses). The choice is made with
//! `Serializer::is_human_readable`, so consensus bytes never depend on how JSON looks.

// Every dependency in Cargo.toml is used (checked outside test builds, which also see the
// dev-dependencies).
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod address;
mod amount;
mod anchor;
mod bytes;
mod hash;
mod msat;
mod port;

pub use address::{Address, AddressError, Network, PublicKeyBytes};
pub use amount::{Amount, AmountError, BASE_UNITS_PER_DOIN};
pub use anchor::{
    Credit, MainAnchor, MainEffects, Slash, SlashReason, StakedEvaluator, StakedSet, TxCheckpoint,
};
pub use bytes::{FixedBytesError, SignatureBytes};
pub use hash::{ChainId, Hash256, HashParseError};
pub use msat::{Msat, MsatError, MSAT_PER_BASE_UNIT};
pub use port::{PortError, StoreError};

use serde::{Deserialize, Serialize};

/// Block height on one chain. Genesis is height 0.
pub type Height = u64;

/// Milliseconds since the Unix epoch (UTC). Chosen over seconds so 30-second blocks and short
/// devnet block times share one unit; u64 milliseconds last far beyond any chain's lifetime.
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// Milliseconds since the epoch.
    pub fn as_millis(self) -> u64 {
        self.0
    }

    /// `self + ms`, or `None` on overflow.
    pub fn checked_add_millis(self, ms: u64) -> Option<Timestamp> {
        self.0.checked_add(ms).map(Timestamp)
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}ms", self.0)
    }
}
