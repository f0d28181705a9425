//! Main-chain parameters and the genesis specification.

use crate::domain::{DomainId, DomainSpec};
use crate::error::GenesisError;
use crate::fixed::Fx;
use doin_codec::encode;
use doin_crypto::{is_valid_public_key, tagged_hash};
use doin_types::{Amount, ChainId, Network, PublicKeyBytes, Timestamp};
use serde::{Deserialize, Serialize};

pub const TAG_GENESIS: &str = "doin/main-genesis";

/// Consensus parameters every node checks main blocks against.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MainParams {
    /// Intended time between blocks (600 000 ms on public networks).
    pub target_block_time_ms: u64,
    /// Threshold of block 1 (counted work units, `Fx`).
    pub initial_threshold: Fx,
    /// The threshold never falls below this (> 0).
    pub min_threshold: Fx,
    /// Blocks per epoch retarget (100).
    pub epoch_length: u64,
    /// A reveal is valid 1..=`reveal_window` blocks after its commit.
    pub reveal_window: u64,
    /// A revealed optimae not decided within this many blocks expires.
    pub verdict_window: u64,
    /// A block below the threshold (carrying only commits, reveals, registrations and
    /// zero-work verdicts) is valid only this long after its parent. Keeps the commit–reveal
    /// pipeline alive when no work is pending; see `docs/mainchain.md`.
    pub carrier_interval_ms: u64,
    /// How far ahead of the importing node's clock a block time may be.
    pub max_future_drift_ms: u64,
    /// Subsidy of the first blocks.
    pub initial_subsidy: Amount,
    /// Blocks between subsidy halvings (210 000).
    pub halving_interval: u64,
    /// Reputation half-life in blocks (1 008).
    pub reputation_half_life: u64,
    /// Content caps per block.
    pub max_commits: u32,
    pub max_reveals: u32,
    pub max_verdicts: u32,
    pub max_registrations: u32,
}

impl MainParams {
    /// The public network's values (docs/mainchain.md): a 10-minute target, 50 DOIN halving
    /// every 210 000 blocks.
    pub fn public_defaults() -> MainParams {
        MainParams {
            target_block_time_ms: 600_000,
            initial_threshold: Fx::from_int(10),
            min_threshold: Fx::ratio(1, 1000),
            epoch_length: 100,
            reveal_window: 6,
            verdict_window: 12,
            carrier_interval_ms: 1_200_000,
            max_future_drift_ms: 60_000,
            initial_subsidy: Amount::from_base_units(50 * doin_types::BASE_UNITS_PER_DOIN),
            halving_interval: 210_000,
            reputation_half_life: 1008,
            max_commits: 1024,
            max_reveals: 1024,
            max_verdicts: 1024,
            max_registrations: 16,
        }
    }

    fn validate(&self) -> Result<(), GenesisError> {
        let bad = |m: &'static str| Err(GenesisError::BadParams(m));
        if self.target_block_time_ms == 0 || self.epoch_length == 0 {
            return bad("target time and epoch length must be > 0");
        }
        if self.min_threshold <= Fx::ZERO || self.initial_threshold < self.min_threshold {
            return bad("thresholds must satisfy 0 < min ≤ initial");
        }
        if self.reveal_window == 0 || self.verdict_window == 0 || self.halving_interval == 0 {
            return bad("windows and halving interval must be > 0");
        }
        if self.carrier_interval_ms < self.target_block_time_ms {
            // Carrier blocks then pull the block-time average below target and the threshold
            // up, away from what the network can deliver.
            return bad("carrier interval must be at least the target block time");
        }
        if self.reputation_half_life == 0 {
            return bad("reputation half-life must be > 0");
        }
        Ok(())
    }
}

/// An evaluator allowed to verify the listed domains, with its stake, named at genesis. This
/// list applies until the first main block that checkpoints the transfer chain; from then on
/// the staked evaluators of the checkpointed transfer state do (docs/anchoring.md).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluatorEntry {
    pub key: PublicKeyBytes,
    pub domains: Vec<DomainId>,
    pub stake: Amount,
    /// Also eligible for every domain registered later (devnets use this so a newly registered
    /// domain has evaluators without a new genesis).
    #[serde(default)]
    pub all_domains: bool,
}

/// Reputation granted at genesis (devnets bootstrap their demo optimizers with it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitialReputation {
    pub key: PublicKeyBytes,
    pub value: Fx,
}

/// Everything fixed before block 1; its tagged hash is the main chain's `ChainId`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MainGenesisSpec {
    pub network: Network,
    pub chain_name: String,
    pub genesis_time: Timestamp,
    pub params: MainParams,
    pub domains: Vec<DomainSpec>,
    pub evaluators: Vec<EvaluatorEntry>,
    pub reputation: Vec<InitialReputation>,
}

impl MainGenesisSpec {
    pub fn chain_id(&self) -> Result<ChainId, GenesisError> {
        let bytes = encode(self).map_err(|e| GenesisError::Encode(e.to_string()))?;
        Ok(ChainId(tagged_hash(TAG_GENESIS, &bytes)))
    }

    pub fn validate(&self) -> Result<(), GenesisError> {
        self.params.validate()?;
        let mut ids = std::collections::BTreeSet::new();
        for d in &self.domains {
            d.validate().map_err(GenesisError::Domain)?;
            if !ids.insert(d.id.clone()) {
                return Err(GenesisError::DuplicateDomain(d.id.to_string()));
            }
        }
        let mut keys = std::collections::BTreeSet::new();
        for e in &self.evaluators {
            if !is_valid_public_key(&e.key) || !keys.insert(e.key) {
                return Err(GenesisError::BadEvaluator);
            }
            if e.domains.iter().any(|d| !ids.contains(d)) {
                return Err(GenesisError::BadEvaluator);
            }
        }
        for r in &self.reputation {
            if !is_valid_public_key(&r.key) || r.value < Fx::ZERO {
                return Err(GenesisError::BadReputation);
            }
        }
        Ok(())
    }
}

/// Parameters plus the chain id, as used by every rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MainChainParams {
    pub chain_id: ChainId,
    pub network: Network,
    pub consensus: MainParams,
}

impl MainChainParams {
    pub fn from_genesis(spec: &MainGenesisSpec) -> Result<MainChainParams, GenesisError> {
        spec.validate()?;
        Ok(MainChainParams {
            chain_id: spec.chain_id()?,
            network: spec.network,
            consensus: spec.params.clone(),
        })
    }
}
