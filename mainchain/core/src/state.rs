//! The main chain's state: domains and their best results, commits awaiting a reveal, optimae
//! awaiting a verdict, reputation, the eligible evaluators, the threshold controller and the
//! rewards paid so far.
//!
//! The state is small (it grows with domains and participants, not with history), so it is one
//! value with ordered maps; its root is the tagged hash of its canonical encoding. History
//! (blocks, outcomes, metric histories) lives in the node's indexes, not here.

use crate::controller::Controller;
use crate::domain::{data_seed, DomainId, DomainSpec};
use crate::error::GenesisError;
use crate::fixed::Fx;
use crate::msg::OptimaeId;
use crate::params::{EvaluatorEntry, MainGenesisSpec};
use crate::reward::Reputation;
use doin_codec::encode;
use doin_crypto::tagged_hash;
use doin_types::{Amount, ChainId, Hash256, PublicKeyBytes, StakedSet};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const TAG_STATE: &str = "doin/mainstate";

/// A registered domain and its best verified result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainState {
    pub spec: DomainSpec,
    pub registered_at: u64,
    /// Seed of the domain's synthetic data.
    pub data_seed: Hash256,
    /// Best verified metric (the spec's baseline until an optimae beats it).
    pub best: Fx,
    pub best_optimae: Option<OptimaeId>,
    pub best_params: Vec<Fx>,
    pub accepted: u64,
    pub rejected: u64,
}

/// A commit awaiting its reveal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitRecord {
    pub height: u64,
    pub domain: DomainId,
    pub optimizer: PublicKeyBytes,
    pub commitment: Hash256,
}

/// A revealed optimae awaiting its verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingOptimae {
    pub domain: DomainId,
    pub optimizer: PublicKeyBytes,
    pub params: Vec<Fx>,
    pub reported: Fx,
    pub revealed_at: u64,
    /// Hash of the block that carried the reveal; set when the next block is applied.
    pub quorum_seed: Option<Hash256>,
    /// 1, or 2 after a disagreement.
    pub round: u8,
    /// Height the current round started at (reveal or escalation).
    pub round_started: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MainState {
    pub chain_id: ChainId,
    pub height: u64,
    pub domains: BTreeMap<DomainId, DomainState>,
    pub commits: BTreeMap<Hash256, CommitRecord>,
    pub pending: BTreeMap<OptimaeId, PendingOptimae>,
    pub reputation: BTreeMap<PublicKeyBytes, Reputation>,
    /// Evaluators eligible for quorums: the genesis list until the first transfer checkpoint,
    /// then the evaluator stakes of the transfer chain at the latest checkpoint.
    pub evaluators: BTreeMap<PublicKeyBytes, EvaluatorEntry>,
    /// Optimizers allowed to commit: anyone until the first transfer checkpoint (`None`),
    /// then those with an optimizer stake on the transfer chain at the latest checkpoint.
    pub optimizers: Option<std::collections::BTreeSet<PublicKeyBytes>>,
    pub controller: Controller,
    /// Cumulative coinbase paid per key.
    pub rewards: BTreeMap<PublicKeyBytes, Amount>,
    pub minted: Amount,
}

impl MainState {
    /// The state at genesis (height 0).
    pub fn genesis(spec: &MainGenesisSpec) -> Result<MainState, GenesisError> {
        spec.validate()?;
        let chain_id = spec.chain_id()?;
        let domains = spec
            .domains
            .iter()
            .map(|d| (d.id.clone(), DomainState::new(&chain_id, d.clone(), 0)))
            .collect();
        Ok(MainState {
            chain_id,
            height: 0,
            domains,
            commits: BTreeMap::new(),
            pending: BTreeMap::new(),
            reputation: spec
                .reputation
                .iter()
                .map(|r| {
                    (
                        r.key,
                        Reputation {
                            value: r.value,
                            at: 0,
                        },
                    )
                })
                .collect(),
            evaluators: spec.evaluators.iter().map(|e| (e.key, e.clone())).collect(),
            optimizers: None,
            controller: Controller::new(
                spec.params.initial_threshold,
                spec.params.target_block_time_ms,
                spec.genesis_time,
            ),
            rewards: BTreeMap::new(),
            minted: Amount::ZERO,
        })
    }

    /// `H("doin/mainstate", encode(state))`.
    pub fn root(&self) -> Result<Hash256, String> {
        let bytes = encode(self).map_err(|e| e.to_string())?;
        Ok(tagged_hash(TAG_STATE, &bytes))
    }

    /// Takes the evaluator and optimizer sets from the transfer chain's stakes (at a new
    /// checkpoint). Domain names that are not valid domain ids name nothing; `*` means every
    /// domain.
    pub fn adopt_stakes(&mut self, set: &StakedSet) {
        self.evaluators = set
            .evaluators
            .iter()
            .map(|e| {
                let entry = EvaluatorEntry {
                    key: e.key,
                    domains: e
                        .domains
                        .iter()
                        .filter_map(|d| DomainId::new(d).ok())
                        .collect(),
                    stake: e.bonded,
                    all_domains: e.domains.iter().any(|d| d == "*"),
                };
                (e.key, entry)
            })
            .collect();
        self.optimizers = Some(set.optimizers.iter().map(|(k, _)| *k).collect());
    }

    /// Evaluators eligible for `domain`, in key order.
    pub fn eligible(&self, domain: &DomainId) -> Vec<PublicKeyBytes> {
        self.evaluators
            .values()
            .filter(|e| (e.all_domains || e.domains.contains(domain)) && !e.stake.is_zero())
            .map(|e| e.key)
            .collect()
    }

    /// Reputation of `key` decayed to `height`.
    pub fn reputation_at(&self, key: &PublicKeyBytes, height: u64, half_life: u64) -> Fx {
        self.reputation
            .get(key)
            .map(|r| r.at_height(height, half_life))
            .unwrap_or(Fx::ZERO)
    }
}

impl DomainState {
    pub fn new(chain_id: &ChainId, spec: DomainSpec, height: u64) -> DomainState {
        DomainState {
            data_seed: data_seed(chain_id, &spec.id, height),
            best: spec.baseline,
            best_optimae: None,
            best_params: Vec::new(),
            registered_at: height,
            accepted: 0,
            rejected: 0,
            spec,
        }
    }
}
