//! Signed main-chain messages: domain registrations, optimae commits and reveals, and
//! evaluator votes.
//!
//! Each message body starts with the chain id and is hashed with its own tag, and the signature
//! is over that hash, so a message can be neither replayed on another chain nor passed off as
//! another kind. Ids are always recomputed from the body, never taken from the sender.

use crate::domain::{DomainId, DomainSpec};
use crate::fixed::Fx;
use doin_codec::encode;
use doin_crypto::{tagged_hash, verify, KeyPair};
use doin_types::{ChainId, Hash256, PublicKeyBytes, SignatureBytes};
use serde::{Deserialize, Serialize};

pub const TAG_REGISTER: &str = "doin/domain-register";
pub const TAG_COMMIT: &str = "doin/optimae-commit";
pub const TAG_COMMITMENT: &str = "doin/optimae-commitment";
pub const TAG_REVEAL: &str = "doin/optimae-reveal";
pub const TAG_OPTIMAE: &str = "doin/optimae";
pub const TAG_VOTE: &str = "doin/vote";

/// An optimae's content-derived id.
pub type OptimaeId = Hash256;

/// A message body that can be signed.
pub trait Message: Serialize {
    const TAG: &'static str;
    fn chain_id(&self) -> &ChainId;
    fn signer(&self) -> &PublicKeyBytes;

    /// `H_TAG(encode(self))`: the id and the signed message.
    fn id(&self) -> Result<Hash256, MsgError> {
        let bytes = encode(self).map_err(|e| MsgError::Encode(e.to_string()))?;
        Ok(tagged_hash(Self::TAG, &bytes))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MsgError {
    #[error("cannot encode message: {0}")]
    Encode(String),
    #[error("message is for another chain")]
    WrongChain,
    #[error("signature does not verify")]
    BadSignature,
    #[error("signer key is not a valid x-only public key")]
    BadSigner,
}

/// A message with its signer's BIP340 signature over `body.id()`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signed<T> {
    pub body: T,
    pub signature: SignatureBytes,
}

impl<T: Message> Signed<T> {
    pub fn sign(body: T, key: &KeyPair) -> Result<Signed<T>, MsgError> {
        let id = body.id()?;
        Ok(Signed {
            signature: key.sign(&id),
            body,
        })
    }

    /// Checks the chain id and the signature; returns the recomputed id.
    pub fn verify(&self, chain_id: &ChainId) -> Result<Hash256, MsgError> {
        if self.body.chain_id() != chain_id {
            return Err(MsgError::WrongChain);
        }
        let id = self.body.id()?;
        verify(self.body.signer(), &id, &self.signature).map_err(|e| match e {
            doin_crypto::SignatureError::InvalidPublicKey => MsgError::BadSigner,
            _ => MsgError::BadSignature,
        })?;
        Ok(id)
    }
}

/// `DomainRegister`: a sponsor puts a new domain on chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainRegister {
    pub chain_id: ChainId,
    pub sponsor: PublicKeyBytes,
    pub spec: DomainSpec,
}

impl Message for DomainRegister {
    const TAG: &'static str = TAG_REGISTER;
    fn chain_id(&self) -> &ChainId {
        &self.chain_id
    }
    fn signer(&self) -> &PublicKeyBytes {
        &self.sponsor
    }
}

/// `Commit`: binds an optimizer to parameters and a reported metric without revealing them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    pub chain_id: ChainId,
    pub domain: DomainId,
    pub optimizer: PublicKeyBytes,
    /// [`commitment`] of the parameters, reported metric and salt.
    pub commitment: Hash256,
}

impl Message for Commit {
    const TAG: &'static str = TAG_COMMIT;
    fn chain_id(&self) -> &ChainId {
        &self.chain_id
    }
    fn signer(&self) -> &PublicKeyBytes {
        &self.optimizer
    }
}

/// `Reveal`: opens a commitment made 1..=R blocks earlier.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reveal {
    pub chain_id: ChainId,
    /// Id of the `Commit` this opens.
    pub commit_id: Hash256,
    pub domain: DomainId,
    pub optimizer: PublicKeyBytes,
    pub params: Vec<Fx>,
    /// The metric the optimizer claims; it was inside the commitment.
    pub reported_metric: Fx,
    pub salt: [u8; 32],
}

impl Message for Reveal {
    const TAG: &'static str = TAG_REVEAL;
    fn chain_id(&self) -> &ChainId {
        &self.chain_id
    }
    fn signer(&self) -> &PublicKeyBytes {
        &self.optimizer
    }
}

impl Reveal {
    /// The commitment this reveal opens.
    pub fn commitment(&self) -> Result<Hash256, MsgError> {
        commitment(
            &self.domain,
            &self.optimizer,
            &self.params,
            self.reported_metric,
            &self.salt,
        )
    }

    /// Content-derived optimae id: the same parameters and claim by the same optimizer in the
    /// same domain are the same optimae, whatever the salt.
    pub fn optimae_id(&self) -> Result<OptimaeId, MsgError> {
        let bytes = encode(&(
            &self.chain_id,
            &self.domain,
            &self.optimizer,
            &self.params,
            self.reported_metric,
        ))
        .map_err(|e| MsgError::Encode(e.to_string()))?;
        Ok(tagged_hash(TAG_OPTIMAE, &bytes))
    }
}

/// `H("doin/optimae-commitment", encode(domain, optimizer, params, reported, salt))`.
pub fn commitment(
    domain: &DomainId,
    optimizer: &PublicKeyBytes,
    params: &[Fx],
    reported_metric: Fx,
    salt: &[u8; 32],
) -> Result<Hash256, MsgError> {
    let bytes = encode(&(domain, optimizer, params, reported_metric, salt))
        .map_err(|e| MsgError::Encode(e.to_string()))?;
    Ok(tagged_hash(TAG_COMMITMENT, &bytes))
}

/// `Vote`: an evaluator's measured metric for an optimae, in one verification round.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    pub chain_id: ChainId,
    pub optimae_id: OptimaeId,
    /// 1 for the first quorum, 2 for the larger second quorum after disagreement.
    pub round: u8,
    pub evaluator: PublicKeyBytes,
    pub metric: Fx,
}

impl Message for Vote {
    const TAG: &'static str = TAG_VOTE;
    fn chain_id(&self) -> &ChainId {
        &self.chain_id
    }
    fn signer(&self) -> &PublicKeyBytes {
        &self.evaluator
    }
}

pub type SignedRegister = Signed<DomainRegister>;
pub type SignedCommit = Signed<Commit>;
pub type SignedReveal = Signed<Reveal>;
pub type SignedVote = Signed<Vote>;
