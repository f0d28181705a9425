//! 32-byte hashes and the chain identifier.

use crate::bytes::fixed_bytes;
pub use crate::bytes::FixedBytesError as HashParseError;

fixed_bytes!(
    /// A SHA-256 digest (always produced by a tagged hash, see `doin-crypto`).
    Hash256,
    32
);

/// Identifies one chain of one network: the tagged hash of that chain's genesis specification.
/// Every signed payload starts with it, so a signature is useless on any other chain.
#[derive(
    Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct ChainId(pub Hash256);

impl ChainId {
    pub fn as_hash(&self) -> &Hash256 {
        &self.0
    }
}

impl std::fmt::Display for ChainId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl std::str::FromStr for ChainId {
    type Err = HashParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Hash256::from_hex(s).map(ChainId)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_roundtrip_and_errors() {
        let h = Hash256([0xab; 32]);
        assert_eq!(Hash256::from_hex(&h.to_hex()), Ok(h));
        assert!(matches!(
            Hash256::from_hex("abcd"),
            Err(HashParseError::Length { .. })
        ));
        assert!(matches!(
            Hash256::from_hex(&"zz".repeat(32)),
            Err(HashParseError::Hex(_))
        ));
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(json, format!("\"{}\"", "ab".repeat(32)));
        assert_eq!(serde_json::from_str::<Hash256>(&json).unwrap(), h);
    }
}
