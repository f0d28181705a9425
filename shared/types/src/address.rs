//! Networks, x-only public keys and their bech32m addresses.

use crate::bytes::fixed_bytes;
use bech32::primitives::decode::CheckedHrpstring;
use bech32::{Bech32m, Hrp};
use serde::{Deserialize, Serialize};
use std::fmt;

fixed_bytes!(
    /// A 32-byte BIP340 x-only public key, as bytes. Whether the bytes are a point on the curve
    /// is checked by `doin-crypto` wherever a signature is verified.
    PublicKeyBytes,
    32
);

/// Which network a chain, key or address belongs to. Determines the address prefix.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    Mainnet,
    Testnet,
    Devnet,
}

impl Network {
    /// The bech32m human-readable part of this network's addresses.
    pub fn hrp(self) -> &'static str {
        match self {
            Network::Mainnet => "doin",
            Network::Testnet => "tdoin",
            Network::Devnet => "ddoin",
        }
    }

    pub fn from_hrp(hrp: &str) -> Option<Network> {
        match hrp {
            "doin" => Some(Network::Mainnet),
            "tdoin" => Some(Network::Testnet),
            "ddoin" => Some(Network::Devnet),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Network::Mainnet => "mainnet",
            Network::Testnet => "testnet",
            Network::Devnet => "devnet",
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Network {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "mainnet" => Ok(Network::Mainnet),
            "testnet" => Ok(Network::Testnet),
            "devnet" => Ok(Network::Devnet),
            other => Err(format!(
                "unknown network {other:?} (expected mainnet, testnet or devnet)"
            )),
        }
    }
}

/// Why an address string was refused. Each variant maps to its own REST error type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("not a valid bech32m address (bad characters or checksum): {0}")]
    Invalid(String),
    #[error("unknown address prefix {0:?}")]
    UnknownPrefix(String),
    #[error("address is for {found}, this node runs {expected}")]
    WrongNetwork { expected: Network, found: Network },
    #[error("address must hold 32 bytes, it holds {0}")]
    Length(usize),
}

impl AddressError {
    /// Stable machine-readable kind (the REST problem type): `wrong-network-address` for an
    /// address of another network, `invalid-address` for anything else.
    pub fn kind(&self) -> &'static str {
        match self {
            AddressError::WrongNetwork { .. } => "wrong-network-address",
            _ => "invalid-address",
        }
    }
}

/// A DOIN account address: a network plus the account's x-only public key, shown as bech32m
/// (`ddoin1…` on devnet). Binary encodings carry only the key; the network is implied by the
/// chain.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Address {
    pub network: Network,
    pub key: PublicKeyBytes,
}

impl Address {
    pub fn new(network: Network, key: PublicKeyBytes) -> Address {
        Address { network, key }
    }

    /// Parses an address of any known network.
    pub fn parse_any(s: &str) -> Result<Address, AddressError> {
        let checked = CheckedHrpstring::new::<Bech32m>(s)
            .map_err(|e| AddressError::Invalid(e.to_string()))?;
        let hrp = checked.hrp().to_lowercase();
        let network =
            Network::from_hrp(&hrp).ok_or_else(|| AddressError::UnknownPrefix(hrp.clone()))?;
        let data: Vec<u8> = checked.byte_iter().collect();
        let key = PublicKeyBytes::from_slice(&data).ok_or(AddressError::Length(data.len()))?;
        Ok(Address { network, key })
    }

    /// Parses an address and requires it to belong to `expected`.
    pub fn parse(s: &str, expected: Network) -> Result<Address, AddressError> {
        let addr = Address::parse_any(s)?;
        if addr.network != expected {
            return Err(AddressError::WrongNetwork {
                expected,
                found: addr.network,
            });
        }
        Ok(addr)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hrp = Hrp::parse_unchecked(self.network.hrp());
        // Encoding 32 bytes under a valid HRP cannot exceed bech32's length limit.
        match bech32::encode_lower::<Bech32m>(hrp, &self.key.0) {
            Ok(s) => f.write_str(&s),
            Err(_) => Err(fmt::Error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_network_check() {
        let a = Address::new(Network::Devnet, PublicKeyBytes([7; 32]));
        let s = a.to_string();
        assert!(s.starts_with("ddoin1"));
        assert_eq!(Address::parse(&s, Network::Devnet), Ok(a));
        assert_eq!(
            Address::parse(&s, Network::Mainnet),
            Err(AddressError::WrongNetwork {
                expected: Network::Mainnet,
                found: Network::Devnet
            })
        );
        // Upper case is valid bech32 too.
        assert_eq!(Address::parse(&s.to_uppercase(), Network::Devnet), Ok(a));
    }

    #[test]
    fn rejects_bad_checksum_and_bech32_classic() {
        let a = Address::new(Network::Testnet, PublicKeyBytes([1; 32])).to_string();
        let mut chars: Vec<char> = a.chars().collect();
        let last = chars.len() - 1;
        chars[last] = if chars[last] == 'q' { 'p' } else { 'q' };
        let broken: String = chars.into_iter().collect();
        assert!(matches!(
            Address::parse_any(&broken),
            Err(AddressError::Invalid(_))
        ));
        // Same payload with the older bech32 checksum is refused: only bech32m is valid.
        let classic =
            bech32::encode::<bech32::Bech32>(Hrp::parse_unchecked("tdoin"), &[1; 32]).unwrap();
        assert!(matches!(
            Address::parse_any(&classic),
            Err(AddressError::Invalid(_))
        ));
        let short = bech32::encode::<Bech32m>(Hrp::parse_unchecked("tdoin"), &[1; 20]).unwrap();
        assert_eq!(Address::parse_any(&short), Err(AddressError::Length(20)));
        let other = bech32::encode::<Bech32m>(Hrp::parse_unchecked("bc"), &[1; 32]).unwrap();
        assert!(matches!(
            Address::parse_any(&other),
            Err(AddressError::UnknownPrefix(_))
        ));
    }
}
