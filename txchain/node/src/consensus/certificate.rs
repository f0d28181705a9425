//! Commit certificates: the precommit signatures of more than two thirds of a height's voting
//! power for one block. A block with its certificate is final on its own: a light client (or
//! an anchor check, or sync) that knows the validator set verifies it with this module alone,
//! without replaying consensus.

use super::context::{BftHeight, BftValidatorSet, BftVote, ValidatorAddress, VoteKind};
use arc_malachitebft_core_types::{NilOrVal, Round, ValidatorSet as _};
use doin_tx_core::BlockHash;
use doin_types::{ChainId, SignatureBytes};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Most signatures a certificate may carry (bounds decoding and checking).
pub const MAX_COMMIT_SIGNATURES: usize = 1_000;

/// What is stored with a block and carried as `last_commit` by the next header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitCertificate {
    pub height: BftHeight,
    pub round: Round,
    pub block: BlockHash,
    pub signatures: Vec<(ValidatorAddress, SignatureBytes)>,
}

/// Why a certificate does not prove a block final.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    #[error("the certificate is for height {got}, expected {expected}")]
    WrongHeight { expected: u64, got: u64 },
    #[error("the certificate is for another block")]
    WrongBlock,
    #[error("the certificate's round is not defined")]
    NilRound,
    #[error("more than {MAX_COMMIT_SIGNATURES} signatures")]
    TooManySignatures,
    #[error("validator {0} signed twice")]
    DuplicateSigner(ValidatorAddress),
    #[error("{0} is not a validator of this height")]
    UnknownSigner(ValidatorAddress),
    #[error("the precommit signature of {0} does not verify")]
    BadSignature(ValidatorAddress),
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
    /// The precommit each signature covers.
    pub fn precommit(&self, validator: ValidatorAddress) -> BftVote {
        BftVote {
            kind: VoteKind::Precommit,
            height: self.height,
            round: self.round,
            value: NilOrVal::Val(self.block),
            validator,
        }
    }

    /// Checks that this certificate finalises `block` at `height` under `validators` of chain
    /// `chain_id`: distinct signers, all in the set, each precommit signature valid, together
    /// more than two thirds of the set's power.
    pub fn verify(
        &self,
        chain_id: &ChainId,
        height: u64,
        block: &BlockHash,
        validators: &BftValidatorSet,
    ) -> Result<(), CertificateError> {
        if self.height.0 != height {
            return Err(CertificateError::WrongHeight {
                expected: height,
                got: self.height.0,
            });
        }
        if self.block != *block {
            return Err(CertificateError::WrongBlock);
        }
        if self.round.is_nil() {
            return Err(CertificateError::NilRound);
        }
        if self.signatures.len() > MAX_COMMIT_SIGNATURES {
            return Err(CertificateError::TooManySignatures);
        }
        let mut seen = BTreeSet::new();
        let mut signed: u64 = 0;
        for (address, signature) in &self.signatures {
            if !seen.insert(*address) {
                return Err(CertificateError::DuplicateSigner(*address));
            }
            let validator = validators
                .get_by_address(address)
                .ok_or(CertificateError::UnknownSigner(*address))?;
            let form = self
                .precommit(*address)
                .form()
                .ok_or(CertificateError::NilRound)?;
            if validator.public_key != form.validator || !form.verify(chain_id, signature) {
                return Err(CertificateError::BadSignature(*address));
            }
            // The set's total fits in u64, so a sum of distinct members does too.
            signed = signed.saturating_add(validator.voting_power);
        }
        let needed = validators.quorum_power();
        if signed < needed {
            return Err(CertificateError::NotEnoughPower {
                signed,
                needed,
                total: validators.total_voting_power(),
            });
        }
        Ok(())
    }
}
