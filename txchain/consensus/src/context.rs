//! The DOIN `Context` for the BFT engine: what a height, a value, a proposal, a vote and a
//! validator are on the transfer chain.
//!
//! A value is a transfer block, named by its hash: the engine agrees on hashes, the block itself
//! travels as proposal parts and is checked by the chain (every rule, as on import) before this
//! node votes for it. Addresses are validators' x-only public keys.

use arc_malachitebft_core_types as mal;
pub use doin_tx_core::bft::VoteKind;
use doin_tx_core::bft::{ProposalForm, ValidatorSet, ValidatorSetError, VoteForm};
use doin_tx_core::BlockHash;
use doin_types::PublicKeyBytes;
use mal::{NilOrVal, Round, VoteType};
use serde::{Deserialize, Serialize};

use crate::signing::Bip340;

/// A transfer-chain height as the engine counts it (the first BFT height is 1; 0 is genesis).
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct BftHeight(pub u64);

impl std::fmt::Display for BftHeight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl mal::Height for BftHeight {
    const ZERO: Self = BftHeight(0);
    const INITIAL: Self = BftHeight(1);

    fn increment_by(&self, n: u64) -> Self {
        // A chain cannot reach u64::MAX heights; saturating keeps this total.
        BftHeight(self.0.saturating_add(n))
    }

    fn decrement_by(&self, n: u64) -> Option<Self> {
        self.0.checked_sub(n).map(BftHeight)
    }

    fn as_u64(&self) -> u64 {
        self.0
    }
}

/// A validator's address: its x-only public key.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ValidatorAddress(pub PublicKeyBytes);

impl std::fmt::Display for ValidatorAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl mal::Address for ValidatorAddress {}

/// The value agreed on: a transfer block, by hash.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BlockValue(pub BlockHash);

impl mal::Value for BlockValue {
    type Id = BlockHash;

    fn id(&self) -> BlockHash {
        self.0
    }
}

/// The round's proposer names the block it proposes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BftProposal {
    pub height: BftHeight,
    pub round: Round,
    pub value: BlockValue,
    /// The round in which this value was locked (proof of lock), or `Round::Nil`.
    pub pol_round: Round,
    pub proposer: ValidatorAddress,
}

impl BftProposal {
    /// The signed form (`None` when the round is not defined: such a proposal is never signed).
    pub fn form(&self) -> Option<ProposalForm> {
        Some(ProposalForm {
            height: self.height.0,
            round: self.round.as_u32()?,
            block: self.value.0,
            pol_round: self.pol_round.as_u32(),
            proposer: self.proposer.0,
        })
    }
}

impl mal::Proposal<DoinContext> for BftProposal {
    fn height(&self) -> BftHeight {
        self.height
    }

    fn round(&self) -> Round {
        self.round
    }

    fn value(&self) -> &BlockValue {
        &self.value
    }

    fn take_value(self) -> BlockValue {
        self.value
    }

    fn pol_round(&self) -> Round {
        self.pol_round
    }

    fn validator_address(&self) -> &ValidatorAddress {
        &self.proposer
    }
}

/// A piece of a proposed block as it is streamed to the other validators: the encoded block
/// cut into chunks, the first announcing the proposal, the last closing it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockPart {
    pub height: BftHeight,
    pub round: Round,
    pub proposer: ValidatorAddress,
    /// Position of this chunk, from 0.
    pub index: u32,
    /// Number of chunks of the block.
    pub total: u32,
    pub bytes: Vec<u8>,
}

impl mal::ProposalPart<DoinContext> for BlockPart {
    fn is_first(&self) -> bool {
        self.index == 0
    }

    fn is_last(&self) -> bool {
        self.index.saturating_add(1) == self.total
    }
}

/// A prevote or precommit, for a block hash or for nil.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BftVote {
    pub kind: VoteKind,
    pub height: BftHeight,
    pub round: Round,
    pub value: NilOrVal<BlockHash>,
    pub validator: ValidatorAddress,
}

impl BftVote {
    /// The signed form (`None` when the round is not defined: such a vote is never signed).
    pub fn form(&self) -> Option<VoteForm> {
        Some(VoteForm {
            kind: self.kind,
            height: self.height.0,
            round: self.round.as_u32()?,
            block: match self.value {
                NilOrVal::Nil => None,
                NilOrVal::Val(h) => Some(h),
            },
            validator: self.validator.0,
        })
    }
}

impl mal::Vote<DoinContext> for BftVote {
    fn height(&self) -> BftHeight {
        self.height
    }

    fn round(&self) -> Round {
        self.round
    }

    fn value(&self) -> &NilOrVal<BlockHash> {
        &self.value
    }

    fn take_value(self) -> NilOrVal<BlockHash> {
        self.value
    }

    fn vote_type(&self) -> VoteType {
        match self.kind {
            VoteKind::Prevote => VoteType::Prevote,
            VoteKind::Precommit => VoteType::Precommit,
        }
    }

    fn validator_address(&self) -> &ValidatorAddress {
        &self.validator
    }

    // Vote extensions are disabled on the transfer chain.
    fn extension(&self) -> Option<&mal::SignedExtension<DoinContext>> {
        None
    }

    fn take_extension(&mut self) -> Option<mal::SignedExtension<DoinContext>> {
        None
    }

    fn extend(self, _extension: mal::SignedExtension<DoinContext>) -> Self {
        self
    }
}

/// A validator with its voting power (its bonded validator stake, in base units).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BftValidator {
    pub address: ValidatorAddress,
    pub public_key: PublicKeyBytes,
    pub voting_power: u64,
}

impl mal::Validator<DoinContext> for BftValidator {
    fn address(&self) -> &ValidatorAddress {
        &self.address
    }

    fn public_key(&self) -> &PublicKeyBytes {
        &self.public_key
    }

    fn voting_power(&self) -> u64 {
        self.voting_power
    }
}

/// The validators of a height as the engine sees them: the chain's [`ValidatorSet`] (ordered by
/// key, never empty), each as a [`BftValidator`]. No `Deserialize`: a set is derived from
/// chain state, never taken from a peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BftValidatorSet {
    set: ValidatorSet,
    validators: Vec<BftValidator>,
}

impl BftValidatorSet {
    /// The set of `(key, power)` pairs: zero-power entries are dropped, duplicates refused.
    pub fn new(
        entries: impl IntoIterator<Item = (PublicKeyBytes, u64)>,
    ) -> Result<BftValidatorSet, ValidatorSetError> {
        Ok(BftValidatorSet::from(ValidatorSet::new(entries)?))
    }

    /// The chain's form of this set (what commit certificates are checked against).
    pub fn set(&self) -> &ValidatorSet {
        &self.set
    }

    pub fn validators(&self) -> &[BftValidator] {
        &self.validators
    }
}

impl From<ValidatorSet> for BftValidatorSet {
    fn from(set: ValidatorSet) -> BftValidatorSet {
        let validators = set
            .validators()
            .iter()
            .map(|(key, voting_power)| BftValidator {
                address: ValidatorAddress(*key),
                public_key: *key,
                voting_power: *voting_power,
            })
            .collect();
        BftValidatorSet { set, validators }
    }
}

impl mal::ValidatorSet<DoinContext> for BftValidatorSet {
    fn count(&self) -> usize {
        self.validators.len()
    }

    fn total_voting_power(&self) -> u64 {
        self.set.total_power()
    }

    fn get_by_address(&self, address: &ValidatorAddress) -> Option<&BftValidator> {
        self.validators
            .binary_search_by(|v| v.address.cmp(address))
            .ok()
            .and_then(|i| self.validators.get(i))
    }

    fn get_by_index(&self, index: usize) -> Option<&BftValidator> {
        self.validators.get(index)
    }
}

/// The DOIN context; it carries nothing but the timeouts policy's defaults are the engine's.
#[derive(Clone, Debug, Default)]
pub struct DoinContext;

impl mal::Context for DoinContext {
    type Address = ValidatorAddress;
    type Height = BftHeight;
    type ProposalPart = BlockPart;
    type Proposal = BftProposal;
    type Validator = BftValidator;
    type ValidatorSet = BftValidatorSet;
    type Timeouts = mal::LinearTimeouts;
    type Value = BlockValue;
    type Vote = BftVote;
    type Extension = ();
    type SigningScheme = Bip340;

    /// Round robin over the set in address order, starting at a different validator each
    /// height: every node computes the same proposer from the same set.
    fn select_proposer<'a>(
        &self,
        validator_set: &'a BftValidatorSet,
        height: BftHeight,
        round: Round,
    ) -> &'a BftValidator {
        let n = validator_set.validators.len().max(1) as u64;
        let r = u64::from(round.as_u32().unwrap_or(0));
        let i = (height.0 % n + r % n) % n;
        // The set is never empty (see `BftValidatorSet::new`), so index 0 exists.
        let index = usize::try_from(i).unwrap_or(0);
        &validator_set.validators[index.min(validator_set.validators.len() - 1)]
    }

    fn new_proposal(
        &self,
        height: BftHeight,
        round: Round,
        value: BlockValue,
        pol_round: Round,
        address: ValidatorAddress,
    ) -> BftProposal {
        BftProposal {
            height,
            round,
            value,
            pol_round,
            proposer: address,
        }
    }

    fn new_prevote(
        &self,
        height: BftHeight,
        round: Round,
        value_id: NilOrVal<BlockHash>,
        address: ValidatorAddress,
    ) -> BftVote {
        BftVote {
            kind: VoteKind::Prevote,
            height,
            round,
            value: value_id,
            validator: address,
        }
    }

    fn new_precommit(
        &self,
        height: BftHeight,
        round: Round,
        value_id: NilOrVal<BlockHash>,
        address: ValidatorAddress,
    ) -> BftVote {
        BftVote {
            kind: VoteKind::Precommit,
            height,
            round,
            value: value_id,
            validator: address,
        }
    }
}
