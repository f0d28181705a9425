//! The signed forms of BFT consensus messages (docs/consensus.md): what a validator's signature on a
//! vote or a proposal covers, fixed here — independent of the consensus engine's own types —
//! so any implementation can check a commit certificate or a piece of evidence byte for byte.
//!
//! A signature covers `H_tag(chain_id ‖ encode(form))` with the one bincode configuration,
//! `tag` being `doin/bft/vote` or `doin/bft/proposal`: a vote can never pass as a proposal, a
//! transaction, or a message of another chain.

use crate::block::BlockHash;
use doin_codec::encode;
use doin_crypto::{tagged_hash_parts, verify};
use doin_types::{ChainId, Hash256, PublicKeyBytes, SignatureBytes};
use serde::{Deserialize, Serialize};

pub const TAG_BFT_VOTE: &str = "doin/bft/vote";
pub const TAG_BFT_PROPOSAL: &str = "doin/bft/proposal";
pub const TAG_BFT_PEER: &str = "doin/bft/peer";

/// Prevote or precommit.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum VoteKind {
    Prevote,
    Precommit,
}

/// What a vote's signature covers. `block: None` is a vote for nil.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteForm {
    pub kind: VoteKind,
    pub height: u64,
    pub round: u32,
    pub block: Option<BlockHash>,
    pub validator: PublicKeyBytes,
}

/// What a proposal's signature covers. `pol_round: None` when the value is not re-proposed
/// from an earlier round's lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalForm {
    pub height: u64,
    pub round: u32,
    pub block: BlockHash,
    pub pol_round: Option<u32>,
    pub proposer: PublicKeyBytes,
}

/// The 32 bytes a consensus signature covers.
pub fn signing_hash<T: Serialize>(
    tag: &str,
    chain_id: &ChainId,
    form: &T,
) -> Result<Hash256, String> {
    let bytes = encode(form).map_err(|e| format!("cannot encode a consensus message: {e}"))?;
    Ok(tagged_hash_parts(tag, &[&chain_id.0 .0, &bytes]))
}

impl VoteForm {
    /// True when `signature` is `self.validator`'s signature of this vote on `chain_id`.
    pub fn verify(&self, chain_id: &ChainId, signature: &SignatureBytes) -> bool {
        signing_hash(TAG_BFT_VOTE, chain_id, self)
            .is_ok_and(|h| verify(&self.validator, &h, signature).is_ok())
    }
}

impl ProposalForm {
    /// True when `signature` is `self.proposer`'s signature of this proposal on `chain_id`.
    pub fn verify(&self, chain_id: &ChainId, signature: &SignatureBytes) -> bool {
        signing_hash(TAG_BFT_PROPOSAL, chain_id, self)
            .is_ok_and(|h| verify(&self.proposer, &h, signature).is_ok())
    }
}

/// Most validators a set (and signatures a certificate) may hold: bounds decoding and checking.
pub const MAX_VALIDATORS: usize = 1_000;

/// The validators of a height with their voting power, ordered by key; never empty. Encoded
/// as its `(key, power)` list; decoding re-checks every rule of [`ValidatorSet::new`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    into = "Vec<(PublicKeyBytes, u64)>",
    try_from = "Vec<(PublicKeyBytes, u64)>"
)]
pub struct ValidatorSet {
    validators: Vec<(PublicKeyBytes, u64)>,
    total_power: u64,
}

/// Why a validator set cannot be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValidatorSetError {
    #[error("a validator set needs at least one validator with voting power")]
    Empty,
    #[error("an encoded validator set lists a validator without voting power")]
    ZeroPower,
    #[error("an encoded validator set is not in ascending key order")]
    NotAscending,
    #[error("validator {0} appears twice")]
    Duplicate(PublicKeyBytes),
    #[error("total voting power overflows")]
    Overflow,
    #[error("more than {MAX_VALIDATORS} validators")]
    TooMany,
}

impl From<ValidatorSet> for Vec<(PublicKeyBytes, u64)> {
    fn from(set: ValidatorSet) -> Self {
        set.validators
    }
}

impl TryFrom<Vec<(PublicKeyBytes, u64)>> for ValidatorSet {
    type Error = ValidatorSetError;
    fn try_from(entries: Vec<(PublicKeyBytes, u64)>) -> Result<Self, Self::Error> {
        // The encoded form is canonical: ascending keys, no zero power (as `new` leaves it).
        if entries.iter().any(|(_, p)| *p == 0) {
            return Err(ValidatorSetError::ZeroPower);
        }
        if let Some(w) = entries.windows(2).find(|w| w[0].0 >= w[1].0) {
            return Err(if w[0].0 == w[1].0 {
                ValidatorSetError::Duplicate(w[0].0)
            } else {
                ValidatorSetError::NotAscending
            });
        }
        ValidatorSet::new(entries)
    }
}

impl ValidatorSet {
    /// The set of `(key, power)` pairs: zero-power entries are dropped, duplicates refused.
    pub fn new(
        entries: impl IntoIterator<Item = (PublicKeyBytes, u64)>,
    ) -> Result<ValidatorSet, ValidatorSetError> {
        let mut validators: Vec<(PublicKeyBytes, u64)> =
            entries.into_iter().filter(|(_, p)| *p > 0).collect();
        validators.sort_by_key(|(k, _)| *k);
        if let Some(w) = validators.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(ValidatorSetError::Duplicate(w[0].0));
        }
        if validators.len() > MAX_VALIDATORS {
            return Err(ValidatorSetError::TooMany);
        }
        let total_power = validators
            .iter()
            .try_fold(0u64, |acc, (_, p)| acc.checked_add(*p))
            .ok_or(ValidatorSetError::Overflow)?;
        if validators.is_empty() {
            return Err(ValidatorSetError::Empty);
        }
        Ok(ValidatorSet {
            validators,
            total_power,
        })
    }

    /// The set for an epoch from validator stakes: the `max` largest (ties to the lower key),
    /// each with its stake in base units as voting power.
    pub fn from_stakes(
        stakes: impl IntoIterator<Item = (PublicKeyBytes, u64)>,
        max: usize,
    ) -> Result<ValidatorSet, ValidatorSetError> {
        let mut all: Vec<(PublicKeyBytes, u64)> =
            stakes.into_iter().filter(|(_, s)| *s > 0).collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        all.truncate(max);
        ValidatorSet::new(all)
    }

    /// `(key, power)`, ordered by key.
    pub fn validators(&self) -> &[(PublicKeyBytes, u64)] {
        &self.validators
    }

    pub fn total_power(&self) -> u64 {
        self.total_power
    }

    pub fn power_of(&self, key: &PublicKeyBytes) -> Option<u64> {
        self.validators
            .binary_search_by(|(k, _)| k.cmp(key))
            .ok()
            .and_then(|i| self.validators.get(i))
            .map(|(_, p)| *p)
    }

    pub fn contains(&self, key: &PublicKeyBytes) -> bool {
        self.power_of(key).is_some()
    }

    /// Smallest power that is more than two thirds of the total (a commit quorum).
    pub fn quorum_power(&self) -> u64 {
        let t = u128::from(self.total_power);
        u64::try_from(t * 2 / 3 + 1).unwrap_or(u64::MAX)
    }
}

/// The validator sets a state knows (docs/consensus.md: the top validator stakes at the start of each
/// epoch). Kept in the authenticated state, so a block's state root commits to the set that
/// signs its successor: a certificate can be checked by whoever trusts one header and holds a
/// proof of this entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochValidators {
    /// The set whose precommits finalise the block this state belongs to.
    pub current: ValidatorSet,
    /// The set that proposes and finalises the next block.
    pub next: ValidatorSet,
}

impl EpochValidators {
    /// Both sets equal (genesis, and every state not next to an epoch boundary).
    pub fn steady(set: ValidatorSet) -> EpochValidators {
        EpochValidators {
            current: set.clone(),
            next: set,
        }
    }
}

/// Proof that a block is final: precommit signatures, for that block at its height and one
/// round, of distinct validators holding more than two thirds of the height's voting power.
/// Carried as `last_commit` by the next block's header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitCertificate {
    pub height: u64,
    pub round: u32,
    pub block: BlockHash,
    pub signatures: Vec<(PublicKeyBytes, SignatureBytes)>,
}

/// Why a certificate does not prove a block final.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    #[error("the certificate is for height {got}, expected {expected}")]
    WrongHeight { expected: u64, got: u64 },
    #[error("the certificate is for another block")]
    WrongBlock,
    #[error("more than {MAX_VALIDATORS} signatures")]
    TooManySignatures,
    #[error("validator {0} signed twice")]
    DuplicateSigner(PublicKeyBytes),
    #[error("{0} is not a validator of this height")]
    UnknownSigner(PublicKeyBytes),
    #[error("the precommit signature of {0} does not verify")]
    BadSignature(PublicKeyBytes),
    #[error(
        "signers hold {signed} of {total} voting power; more than two thirds ({needed}) is needed"
    )]
    NotEnoughPower {
        signed: u64,
        needed: u64,
        total: u64,
    },
}

impl CommitCertificate {
    /// The precommit `validator` signed for this certificate.
    pub fn precommit(&self, validator: PublicKeyBytes) -> VoteForm {
        VoteForm {
            kind: VoteKind::Precommit,
            height: self.height,
            round: self.round,
            block: Some(self.block),
            validator,
        }
    }

    /// A certificate signed by `keys` (each signs its precommit for `block`). Signing is
    /// deterministic (zero auxiliary data, which BIP340 allows): the same block built twice from
    /// the same inputs carries the same certificate.
    pub fn sign(
        chain_id: &ChainId,
        height: u64,
        round: u32,
        block: BlockHash,
        keys: &[&doin_crypto::KeyPair],
    ) -> Result<CommitCertificate, String> {
        let mut c = CommitCertificate {
            height,
            round,
            block,
            signatures: Vec::with_capacity(keys.len()),
        };
        for k in keys {
            let hash = signing_hash(TAG_BFT_VOTE, chain_id, &c.precommit(k.public()))?;
            c.signatures
                .push((k.public(), k.sign_with_aux(&hash, &[0u8; 32])));
        }
        Ok(c)
    }

    /// Checks that this certificate finalises `block` at `height` under `validators` of chain
    /// `chain_id`: distinct signers, all in the set, each precommit signature valid, together
    /// more than two thirds of the set's power. Needs nothing else (light verification).
    pub fn verify(
        &self,
        chain_id: &ChainId,
        height: u64,
        block: &BlockHash,
        validators: &ValidatorSet,
    ) -> Result<(), CertificateError> {
        if self.height != height {
            return Err(CertificateError::WrongHeight {
                expected: height,
                got: self.height,
            });
        }
        if self.block != *block {
            return Err(CertificateError::WrongBlock);
        }
        if self.signatures.len() > MAX_VALIDATORS {
            return Err(CertificateError::TooManySignatures);
        }
        let mut seen = std::collections::BTreeSet::new();
        let mut signed: u64 = 0;
        for (key, signature) in &self.signatures {
            if !seen.insert(*key) {
                return Err(CertificateError::DuplicateSigner(*key));
            }
            let power = validators
                .power_of(key)
                .ok_or(CertificateError::UnknownSigner(*key))?;
            if !self.precommit(*key).verify(chain_id, signature) {
                return Err(CertificateError::BadSignature(*key));
            }
            // Distinct members of a set whose total fits in u64.
            signed = signed.saturating_add(power);
        }
        let needed = validators.quorum_power();
        if signed < needed {
            return Err(CertificateError::NotEnoughPower {
                signed,
                needed,
                total: validators.total_power(),
            });
        }
        Ok(())
    }
}

/// Proof that a validator signed two different votes of one kind at one height and round
/// (double signing). Anyone may report it in a `ReportEquivocation` transaction; the validator's
/// whole stake is slashed and it is tombstoned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Equivocation {
    pub first: VoteForm,
    pub first_signature: SignatureBytes,
    pub second: VoteForm,
    pub second_signature: SignatureBytes,
}

impl Equivocation {
    /// Checks the evidence on `chain_id` and names the equivocating validator.
    pub fn offender(&self, chain_id: &ChainId) -> Result<PublicKeyBytes, String> {
        let (a, b) = (&self.first, &self.second);
        if a.validator != b.validator {
            return Err("the two votes are by different validators".into());
        }
        if (a.kind, a.height, a.round) != (b.kind, b.height, b.round) {
            return Err("the two votes are not of the same kind, height and round".into());
        }
        if a.block == b.block {
            return Err("the two votes are for the same value".into());
        }
        if !a.verify(chain_id, &self.first_signature) {
            return Err("the first vote's signature does not verify".into());
        }
        if !b.verify(chain_id, &self.second_signature) {
            return Err("the second vote's signature does not verify".into());
        }
        Ok(a.validator)
    }
}
