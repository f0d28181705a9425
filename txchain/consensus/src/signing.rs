//! BIP340 Schnorr signatures for consensus messages (the engine ships no secp256k1 scheme).
//!
//! What a signature covers is fixed by `doin_tx_core::bft` (the signed forms, tags and chain
//! id), not by the engine's types: this module converts and signs.

use crate::context::{BftProposal, BftVote, DoinContext};
use arc_malachitebft_core_types::{
    SignedMessage, SigningScheme, ValidatorProof, VoteExtensionScope,
};
use arc_malachitebft_signing::{Error as SigningError, Signer, VerificationResult, Verifier};
use async_trait::async_trait;
use doin_crypto::{verify, KeyPair};
pub use doin_tx_core::bft::{signing_hash, TAG_BFT_PEER, TAG_BFT_PROPOSAL, TAG_BFT_VOTE};
use doin_types::{ChainId, Hash256, PublicKeyBytes, SignatureBytes};
use serde::Serialize;

/// The signing scheme: x-only public keys and 64-byte BIP340 signatures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bip340;

/// A key or signature of the wrong length.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected} bytes, got {got}")]
pub struct WrongLength {
    pub expected: usize,
    pub got: usize,
}

/// The validator's secret key, shared with the engine's signer.
#[derive(Clone)]
pub struct ConsensusKey(pub std::sync::Arc<KeyPair>);

impl SigningScheme for Bip340 {
    type DecodingError = WrongLength;
    type Signature = SignatureBytes;
    type PublicKey = PublicKeyBytes;
    type PrivateKey = ConsensusKey;

    fn decode_signature(bytes: &[u8]) -> Result<SignatureBytes, WrongLength> {
        SignatureBytes::from_slice(bytes).ok_or(WrongLength {
            expected: SignatureBytes::LEN,
            got: bytes.len(),
        })
    }

    fn encode_signature(signature: &SignatureBytes) -> Vec<u8> {
        signature.0.to_vec()
    }

    fn decode_public_key(bytes: &[u8]) -> Result<PublicKeyBytes, WrongLength> {
        PublicKeyBytes::from_slice(bytes).ok_or(WrongLength {
            expected: PublicKeyBytes::LEN,
            got: bytes.len(),
        })
    }

    fn encode_public_key(public_key: &PublicKeyBytes) -> Vec<u8> {
        public_key.0.to_vec()
    }
}

/// Signs and verifies consensus messages of one chain.
#[derive(Clone)]
pub struct ConsensusSigner {
    chain_id: ChainId,
    key: Option<ConsensusKey>,
}

impl ConsensusSigner {
    /// A validator's signer.
    pub fn new(chain_id: ChainId, key: ConsensusKey) -> ConsensusSigner {
        ConsensusSigner {
            chain_id,
            key: Some(key),
        }
    }

    /// Verifies only (a node that follows without a validator key).
    pub fn verifier(chain_id: ChainId) -> ConsensusSigner {
        ConsensusSigner {
            chain_id,
            key: None,
        }
    }

    fn sign_hash(&self, hash: &Hash256) -> Result<SignatureBytes, SigningError> {
        match &self.key {
            Some(k) => Ok(k.0.sign(hash)),
            None => Err(SigningError::from_source("this node has no validator key")),
        }
    }

    fn hash<T: Serialize>(&self, tag: &str, message: &T) -> Result<Hash256, SigningError> {
        signing_hash(tag, &self.chain_id, message).map_err(SigningError::from_source)
    }

    /// Checks `signature` by `key` over `message` under `tag`.
    pub fn check<T: Serialize>(
        &self,
        tag: &str,
        message: &T,
        signature: &SignatureBytes,
        key: &PublicKeyBytes,
    ) -> bool {
        match signing_hash(tag, &self.chain_id, message) {
            Ok(h) => verify(key, &h, signature).is_ok(),
            Err(_) => false,
        }
    }
}

#[async_trait]
impl Signer<DoinContext> for ConsensusSigner {
    async fn sign_vote(
        &self,
        vote: BftVote,
    ) -> Result<SignedMessage<DoinContext, BftVote>, SigningError> {
        let form = vote
            .form()
            .ok_or_else(|| SigningError::from_source("a vote without a round"))?;
        let signature = self.sign_hash(&self.hash(TAG_BFT_VOTE, &form)?)?;
        Ok(SignedMessage::new(vote, signature))
    }

    async fn sign_proposal(
        &self,
        proposal: BftProposal,
    ) -> Result<SignedMessage<DoinContext, BftProposal>, SigningError> {
        let form = proposal
            .form()
            .ok_or_else(|| SigningError::from_source("a proposal without a round"))?;
        let signature = self.sign_hash(&self.hash(TAG_BFT_PROPOSAL, &form)?)?;
        Ok(SignedMessage::new(proposal, signature))
    }

    async fn sign_vote_extension(
        &self,
        _scope: VoteExtensionScope<DoinContext>,
        _extension: (),
    ) -> Result<SignedMessage<DoinContext, ()>, SigningError> {
        Err(SigningError::from_source(
            "vote extensions are disabled on the transfer chain",
        ))
    }

    async fn sign_validator_proof(
        &self,
        public_key: Vec<u8>,
        peer_id: Vec<u8>,
    ) -> Result<ValidatorProof<DoinContext>, SigningError> {
        let signature = self.sign_hash(&self.hash(TAG_BFT_PEER, &(&public_key, &peer_id))?)?;
        Ok(ValidatorProof::new(public_key, peer_id, signature))
    }
}

#[async_trait]
impl Verifier<DoinContext> for ConsensusSigner {
    async fn verify_signed_vote(
        &self,
        vote: &BftVote,
        signature: &SignatureBytes,
        public_key: &PublicKeyBytes,
    ) -> Result<VerificationResult, SigningError> {
        Ok(VerificationResult::from_bool(vote.form().is_some_and(
            |f| f.validator == *public_key && f.verify(&self.chain_id, signature),
        )))
    }

    async fn verify_signed_proposal(
        &self,
        proposal: &BftProposal,
        signature: &SignatureBytes,
        public_key: &PublicKeyBytes,
    ) -> Result<VerificationResult, SigningError> {
        Ok(VerificationResult::from_bool(proposal.form().is_some_and(
            |f| f.proposer == *public_key && f.verify(&self.chain_id, signature),
        )))
    }

    async fn verify_signed_vote_extension(
        &self,
        _scope: &VoteExtensionScope<DoinContext>,
        _extension: &(),
        _signature: &SignatureBytes,
        _public_key: &PublicKeyBytes,
    ) -> Result<VerificationResult, SigningError> {
        Ok(VerificationResult::Invalid)
    }

    async fn verify_validator_proof(
        &self,
        proof: &ValidatorProof<DoinContext>,
    ) -> Result<VerificationResult, SigningError> {
        let Some(key) = PublicKeyBytes::from_slice(&proof.public_key) else {
            return Ok(VerificationResult::Invalid);
        };
        Ok(VerificationResult::from_bool(self.check(
            TAG_BFT_PEER,
            &(&proof.public_key, &proof.peer_id),
            &proof.signature,
            &key,
        )))
    }
}
