//! Fixed-size byte strings: hex in human-readable formats, raw bytes (no length prefix) in binary
//! ones. `fixed_bytes!` defines the newtypes so hashes, keys and signatures share one audited
//! serde implementation.

use std::fmt;

/// Error from parsing a fixed-size hex string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FixedBytesError {
    #[error("expected {expected} hex characters, got {got}")]
    Length { expected: usize, got: usize },
    #[error("invalid hex: {0}")]
    Hex(String),
}

pub(crate) fn parse_hex<const N: usize>(s: &str) -> Result<[u8; N], FixedBytesError> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    if s.len() != N * 2 {
        return Err(FixedBytesError::Length {
            expected: N * 2,
            got: s.len(),
        });
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).map_err(|e| FixedBytesError::Hex(e.to_string()))?;
    Ok(out)
}

/// Serde visitor for `[u8; N]` encoded as a tuple of N bytes.
pub(crate) struct ArrayVisitor<const N: usize>;

impl<'de, const N: usize> serde::de::Visitor<'de> for ArrayVisitor<N> {
    type Value = [u8; N];

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{N} bytes")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<[u8; N], A::Error> {
        let mut out = [0u8; N];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = seq
                .next_element()?
                .ok_or_else(|| serde::de::Error::invalid_length(i, &self))?;
        }
        Ok(out)
    }
}

macro_rules! fixed_bytes {
    ($(#[$meta:meta])* $name:ident, $len:expr) => {
        $(#[$meta])*
        #[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// Length in bytes.
            pub const LEN: usize = $len;

            /// All-zero value.
            pub const fn zero() -> Self {
                Self([0u8; $len])
            }

            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            /// Parses exactly `2 * LEN` hex characters (an optional `0x` prefix is allowed).
            pub fn from_hex(s: &str) -> Result<Self, $crate::bytes::FixedBytesError> {
                $crate::bytes::parse_hex::<$len>(s).map(Self)
            }

            /// Copies from a slice of exactly `LEN` bytes.
            pub fn from_slice(b: &[u8]) -> Option<Self> {
                <[u8; $len]>::try_from(b).ok().map(Self)
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({})", stringify!($name), hex::encode(self.0))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::bytes::FixedBytesError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::from_hex(s)
            }
        }

        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.serialize_str(&hex::encode(self.0))
                } else {
                    use serde::ser::SerializeTuple;
                    let mut t = s.serialize_tuple($len)?;
                    for b in &self.0 {
                        t.serialize_element(b)?;
                    }
                    t.end()
                }
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                if d.is_human_readable() {
                    let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                    Self::from_hex(&s).map_err(serde::de::Error::custom)
                } else {
                    d.deserialize_tuple($len, $crate::bytes::ArrayVisitor::<$len>)
                        .map(Self)
                }
            }
        }
    };
}

pub(crate) use fixed_bytes;

fixed_bytes!(
    /// A 64-byte BIP340 Schnorr signature, as bytes. Whether it is a valid signature is decided
    /// by `doin-crypto`, never here.
    SignatureBytes,
    64
);
