//! BIP340 Schnorr keys over secp256k1: x-only 32-byte public keys, 64-byte signatures over a
//! 32-byte message (always a tagged hash that starts with a chain id).

use doin_types::{Hash256, PublicKeyBytes, SignatureBytes};
use secp256k1::{schnorr, Keypair, Message, SecretKey, XOnlyPublicKey, SECP256K1};
use zeroize::Zeroizing;

/// secp256k1 group order n, big-endian. A signature whose `s` is not below n is malformed.
const CURVE_ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
];
/// secp256k1 field prime p, big-endian. A signature whose `r` is not below p is malformed.
const FIELD_PRIME: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0xff, 0xff, 0xfc, 0x2f,
];

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("public key is not a valid x-only secp256k1 point")]
    InvalidPublicKey,
    #[error("signature is malformed (r not below the field prime or s not below the group order)")]
    Malformed,
    #[error("signature does not verify for this key and message")]
    Invalid,
}

/// A secp256k1 key pair used for BIP340 signing. The secret is erased when dropped.
pub struct KeyPair(Keypair);

impl KeyPair {
    /// A fresh key from the operating system's randomness.
    pub fn generate() -> KeyPair {
        KeyPair(Keypair::new(SECP256K1, &mut rand::thread_rng()))
    }

    /// Restores a key pair from its 32-byte secret. Fails for zero or values ≥ n.
    pub fn from_secret_bytes(secret: &[u8; 32]) -> Result<KeyPair, SignatureError> {
        let sk = SecretKey::from_slice(secret).map_err(|_| SignatureError::InvalidPublicKey)?;
        Ok(KeyPair(Keypair::from_secret_key(SECP256K1, &sk)))
    }

    /// The 32-byte secret, in a buffer that is wiped on drop.
    pub fn secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.secret_bytes())
    }

    /// The x-only public key.
    pub fn public(&self) -> PublicKeyBytes {
        PublicKeyBytes(self.0.x_only_public_key().0.serialize())
    }

    /// BIP340 signature over a 32-byte message, with fresh auxiliary randomness as BIP340
    /// recommends (side-channel hardening).
    pub fn sign(&self, msg: &Hash256) -> SignatureBytes {
        let mut aux = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut aux);
        self.sign_with_aux(msg, &aux)
    }

    /// BIP340 signature with caller-chosen auxiliary randomness (deterministic: test vectors).
    pub fn sign_with_aux(&self, msg: &Hash256, aux: &[u8; 32]) -> SignatureBytes {
        let m = Message::from_digest(msg.0);
        let sig = SECP256K1.sign_schnorr_with_aux_rand(&m, &self.0, aux);
        SignatureBytes(*sig.as_ref())
    }
}

impl Drop for KeyPair {
    fn drop(&mut self) {
        self.0.non_secure_erase();
    }
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyPair(public: {})", self.public())
    }
}

/// Verifies a BIP340 signature of `msg` by `key`.
pub fn verify(
    key: &PublicKeyBytes,
    msg: &Hash256,
    sig: &SignatureBytes,
) -> Result<(), SignatureError> {
    let (r, s) = sig.0.split_at(32);
    if r >= &FIELD_PRIME[..] || s >= &CURVE_ORDER[..] {
        return Err(SignatureError::Malformed);
    }
    let pk = XOnlyPublicKey::from_slice(&key.0).map_err(|_| SignatureError::InvalidPublicKey)?;
    let sig = schnorr::Signature::from_slice(&sig.0).map_err(|_| SignatureError::Malformed)?;
    SECP256K1
        .verify_schnorr(&sig, &Message::from_digest(msg.0), &pk)
        .map_err(|_| SignatureError::Invalid)
}

/// True if `key` is a valid x-only point (an account that could ever sign).
pub fn is_valid_public_key(key: &PublicKeyBytes) -> bool {
    XOnlyPublicKey::from_slice(&key.0).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(hex_str: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_str, &mut out).unwrap();
        out
    }

    #[test]
    fn bip340_official_vector_0() {
        // Test vector 0 of BIP340 (bip-0340/test-vectors.csv).
        let kp = KeyPair::from_secret_bytes(&h(
            "0000000000000000000000000000000000000000000000000000000000000003",
        ))
        .unwrap();
        assert_eq!(
            kp.public().to_hex().to_uppercase(),
            "F9308A019258C31049344F85F89D5229B531C845836F99B08601F113BCE036F9"
        );
        let sig = kp.sign_with_aux(&Hash256([0; 32]), &[0; 32]);
        assert_eq!(
            sig.to_hex().to_uppercase(),
            "E907831F80848D1069A5371B402410364BDF1C5F8307B0084C55F1CE2DCA8215\
             25F66A4A85EA8B71E482A74F382D2CE5EBEEE8FDB2172F477DF4900D310536C0"
        );
        assert_eq!(verify(&kp.public(), &Hash256([0; 32]), &sig), Ok(()));
    }

    #[test]
    fn rejects_wrong_message_key_and_malformed() {
        let kp = KeyPair::generate();
        let msg = Hash256([9; 32]);
        let sig = kp.sign(&msg);
        assert_eq!(verify(&kp.public(), &msg, &sig), Ok(()));
        assert_eq!(
            verify(&kp.public(), &Hash256([8; 32]), &sig),
            Err(SignatureError::Invalid)
        );
        let other = KeyPair::generate();
        assert_eq!(
            verify(&other.public(), &msg, &sig),
            Err(SignatureError::Invalid)
        );
        let mut high_s = sig;
        high_s.0[32..].copy_from_slice(&CURVE_ORDER);
        assert_eq!(
            verify(&kp.public(), &msg, &high_s),
            Err(SignatureError::Malformed)
        );
        let mut high_r = sig;
        high_r.0[..32].copy_from_slice(&[0xff; 32]);
        assert_eq!(
            verify(&kp.public(), &msg, &high_r),
            Err(SignatureError::Malformed)
        );
        // Some x below p has no point: find one and check it is refused as a key.
        let not_on_curve = (1u8..=255)
            .map(|x| {
                let mut k = [0u8; 32];
                k[31] = x;
                PublicKeyBytes(k)
            })
            .find(|k| !is_valid_public_key(k))
            .unwrap();
        assert_eq!(
            verify(&not_on_curve, &msg, &sig),
            Err(SignatureError::InvalidPublicKey)
        );
    }

    #[test]
    fn secret_roundtrip() {
        let kp = KeyPair::generate();
        let back = KeyPair::from_secret_bytes(&kp.secret_bytes()).unwrap();
        assert_eq!(kp.public(), back.public());
        assert!(KeyPair::from_secret_bytes(&[0; 32]).is_err());
    }
}
