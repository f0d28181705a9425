//! Chain parameters and the genesis specification.
//!
//! The genesis specification fixes everything a node must agree on before block 1: network,
//! consensus parameters, validators and initial balances. Its tagged hash is the `ChainId` that
//! every signed payload of the chain starts with.

use crate::error::GenesisError;
use crate::stake::{StakeRole, StakingParams};
use doin_codec::encode;
use doin_crypto::{is_valid_public_key, tagged_hash};
use doin_types::{Amount, ChainId, Network, PublicKeyBytes, Timestamp};
use serde::{Deserialize, Serialize};

/// Tag of the genesis-specification hash (the chain id).
pub const TAG_GENESIS: &str = "doin/tx-genesis";

/// Consensus parameters of the transfer chain. Every node checks blocks against these.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsensusParams {
    /// Maximum summed transaction weight (encoded bytes) of one block. The base fee targets half.
    pub block_weight_limit: u64,
    /// Largest single transaction, in encoded bytes.
    pub max_tx_weight: u64,
    /// Floor of the base fee per weight unit: spam always costs something.
    pub min_base_fee: Amount,
    /// Base fee of block 1's parent (the genesis header).
    pub initial_base_fee: Amount,
    /// Intended time between blocks, in milliseconds (30 000 on public networks).
    pub target_block_time_ms: u64,
    /// How far in the future (by the importing node's clock) a block time may be.
    pub max_future_drift_ms: u64,
    /// Minimum stakes and the unbonding period.
    #[serde(default)]
    pub staking: StakingParams,
    /// Blocks per validator epoch: the block at every multiple of this height fixes, from the
    /// validator stakes after it, the set of the epoch that follows.
    #[serde(default = "default_epoch_blocks")]
    pub epoch_blocks: u64,
    /// Most validators of an epoch: the largest validator stakes, ties to the lower key.
    #[serde(default = "default_max_validators")]
    pub max_validators: u32,
}

/// One day of 30-second blocks.
fn default_epoch_blocks() -> u64 {
    2_880
}

fn default_max_validators() -> u32 {
    100
}

impl ConsensusParams {
    /// Defaults for public networks: 1 MiB blocks, 30-second target.
    pub fn public_defaults() -> ConsensusParams {
        ConsensusParams {
            block_weight_limit: 1024 * 1024,
            max_tx_weight: 64 * 1024,
            min_base_fee: Amount::from_base_units(10),
            initial_base_fee: Amount::from_base_units(10),
            target_block_time_ms: 30_000,
            max_future_drift_ms: 15_000,
            staking: StakingParams::default(),
            epoch_blocks: default_epoch_blocks(),
            max_validators: default_max_validators(),
        }
    }

    /// Base fee target: half the block weight limit.
    pub fn target_weight(&self) -> u64 {
        (self.block_weight_limit / 2).max(1)
    }
}

/// One initial balance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allocation {
    pub key: PublicKeyBytes,
    pub amount: Amount,
}

/// Everything that defines a transfer chain before its first block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisSpec {
    pub network: Network,
    /// Free-form name that makes two otherwise equal chains distinct (e.g. "doin-devnet-7f3a").
    pub chain_name: String,
    pub genesis_time: Timestamp,
    pub params: ConsensusParams,
    /// The first epoch's validators, one vote each (later epochs: the largest validator
    /// stakes). Give each a validator stake in `stakes` so it keeps its seat when the first
    /// epoch closes. The solo producer follows this order (height mod count).
    pub validators: Vec<PublicKeyBytes>,
    pub allocations: Vec<Allocation>,
    /// Stakes bonded at genesis (e.g. a network's first evaluators and optimizers).
    #[serde(default)]
    pub stakes: Vec<GenesisStake>,
}

/// One stake bonded at genesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisStake {
    pub key: PublicKeyBytes,
    pub role: StakeRole,
    pub amount: Amount,
    /// Evaluators: the domains they verify (ascending).
    #[serde(default)]
    pub domains: Vec<String>,
}

impl GenesisSpec {
    /// Checks internal consistency; a node refuses to start on a spec that fails this.
    pub fn validate(&self) -> Result<(), GenesisError> {
        let p = &self.params;
        if p.min_base_fee.is_zero() {
            return Err(GenesisError::Invalid(
                "min_base_fee must be above zero".into(),
            ));
        }
        if p.initial_base_fee < p.min_base_fee {
            return Err(GenesisError::Invalid(
                "initial_base_fee must be at least min_base_fee".into(),
            ));
        }
        if p.max_tx_weight == 0 || p.max_tx_weight > p.block_weight_limit {
            return Err(GenesisError::Invalid(
                "max_tx_weight must be in 1..=block_weight_limit".into(),
            ));
        }
        if p.block_weight_limit > (doin_codec::MAX_DECODE_LEN as u64) / 2 {
            return Err(GenesisError::Invalid(
                "block_weight_limit exceeds what the codec can carry".into(),
            ));
        }
        if p.target_block_time_ms == 0 {
            return Err(GenesisError::Invalid(
                "target_block_time_ms must be above zero".into(),
            ));
        }
        if p.epoch_blocks == 0 {
            return Err(GenesisError::Invalid(
                "epoch_blocks must be above zero".into(),
            ));
        }
        if p.max_validators == 0 || p.max_validators as usize > crate::bft::MAX_VALIDATORS {
            return Err(GenesisError::Invalid(format!(
                "max_validators must be in 1..={}",
                crate::bft::MAX_VALIDATORS
            )));
        }
        if self.validators.len() > p.max_validators as usize {
            return Err(GenesisError::Invalid(
                "more genesis validators than max_validators".into(),
            ));
        }
        if self.chain_name.is_empty() || self.chain_name.len() > 64 {
            return Err(GenesisError::Invalid(
                "chain_name must be 1..=64 bytes".into(),
            ));
        }
        if self.validators.is_empty() {
            return Err(GenesisError::Invalid(
                "at least one validator is required".into(),
            ));
        }
        for v in &self.validators {
            if !is_valid_public_key(v) {
                return Err(GenesisError::Invalid(format!(
                    "validator {v} is not a valid key"
                )));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        let mut total = Amount::ZERO;
        for a in &self.allocations {
            if !is_valid_public_key(&a.key) {
                return Err(GenesisError::Invalid(format!(
                    "allocation key {} is not a valid key",
                    a.key
                )));
            }
            if !seen.insert(a.key) {
                return Err(GenesisError::Invalid(format!(
                    "allocation key {} appears twice",
                    a.key
                )));
            }
            total = total
                .checked_add(a.amount)
                .map_err(|_| GenesisError::Invalid("allocations overflow".into()))?;
        }
        let mut staked = std::collections::BTreeSet::new();
        for st in &self.stakes {
            let what = format!("genesis {} stake of {}", st.role.as_str(), st.key);
            if !is_valid_public_key(&st.key) {
                return Err(GenesisError::Invalid(format!("{what}: not a valid key")));
            }
            if !staked.insert((st.key, st.role)) {
                return Err(GenesisError::Invalid(format!("{what} appears twice")));
            }
            crate::stake::check_domains(st.role, &st.domains)
                .and_then(|_| {
                    crate::stake::bond(
                        &p.staking,
                        st.role,
                        crate::stake::Stake::default(),
                        st.amount,
                        &st.domains,
                    )
                })
                .map_err(|e| GenesisError::Invalid(format!("{what}: {e}")))?;
        }
        self.total_staked()?
            .checked_add(total)
            .map_err(|_| GenesisError::Invalid("allocations and stakes overflow".into()))?;
        Ok(())
    }

    /// Sum of all genesis stakes.
    pub fn total_staked(&self) -> Result<Amount, GenesisError> {
        self.stakes.iter().try_fold(Amount::ZERO, |acc, s| {
            acc.checked_add(s.amount)
                .map_err(|_| GenesisError::Invalid("stakes overflow".into()))
        })
    }

    /// The chain id: tagged hash of the canonical encoding of this spec.
    pub fn chain_id(&self) -> Result<ChainId, GenesisError> {
        let bytes = encode(self).map_err(|e| GenesisError::Invalid(e.to_string()))?;
        Ok(ChainId(tagged_hash(TAG_GENESIS, &bytes)))
    }

    /// Everything created at genesis: allocations plus stakes.
    pub fn total_supply(&self) -> Result<Amount, GenesisError> {
        self.allocations
            .iter()
            .try_fold(self.total_staked()?, |acc, a| {
                acc.checked_add(a.amount)
                    .map_err(|_| GenesisError::Invalid("allocations overflow".into()))
            })
    }
}

/// Parameters a running node validates against: the spec's consensus parameters plus the
/// derived chain id.
#[derive(Clone, Debug)]
pub struct ChainParams {
    pub chain_id: ChainId,
    pub network: Network,
    pub consensus: ConsensusParams,
    pub validators: Vec<PublicKeyBytes>,
}

impl ChainParams {
    /// The set of the first epoch: the genesis validators, one vote each. Later epochs take
    /// their sets from validator stakes (see `apply::next_validators`); read them from the
    /// state ([`StateView::validators`](crate::state::StateView::validators)).
    pub fn genesis_validator_set(
        &self,
    ) -> Result<crate::bft::ValidatorSet, crate::bft::ValidatorSetError> {
        crate::bft::ValidatorSet::new(self.validators.iter().map(|k| (*k, 1)))
    }

    /// True when the block at `height` closes an epoch: the state after it fixes the next
    /// epoch's validator set.
    pub fn closes_epoch(&self, height: u64) -> bool {
        height > 0 && height % self.consensus.epoch_blocks.max(1) == 0
    }

    pub fn from_genesis(spec: &GenesisSpec) -> Result<ChainParams, GenesisError> {
        spec.validate()?;
        Ok(ChainParams {
            chain_id: spec.chain_id()?,
            network: spec.network,
            consensus: spec.params.clone(),
            validators: spec.validators.clone(),
        })
    }

    /// The genesis validator whose turn it is at `height` (round robin): the solo producer's
    /// schedule, and a guess of the next proposer for fee estimates. `None` only for a parameter
    /// set without validators, which `from_genesis` never builds.
    pub fn expected_proposer(&self, height: u64) -> Option<PublicKeyBytes> {
        let n = self.validators.len() as u64;
        if n == 0 {
            return None;
        }
        self.validators.get((height % n) as usize).copied()
    }
}
