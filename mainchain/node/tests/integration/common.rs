//! Fixtures for main-chain service tests: a genesis with evaluators and optimizers, and a
//! chain on a real RocksDB in a temporary directory.

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(dead_code)]

use doin_crypto::KeyPair;
use doin_main_core::*;
use doin_main_node::{MainChain, MainChainConfig};
use doin_store::{KvStore, RocksConfig, RocksStore};
use doin_telemetry::Metrics;
use doin_types::{Amount, Network, Timestamp};
use std::path::Path;
use std::sync::Arc;

pub(crate) struct Keys {
    pub evaluators: Vec<KeyPair>,
    pub optimizers: Vec<KeyPair>,
    pub producer: KeyPair,
}

pub(crate) fn copy(k: &KeyPair) -> KeyPair {
    KeyPair::from_secret_bytes(&k.secret_bytes()).unwrap()
}

pub(crate) fn keys(evaluators: usize, optimizers: usize) -> Keys {
    Keys {
        evaluators: (0..evaluators).map(|_| KeyPair::generate()).collect(),
        optimizers: (0..optimizers).map(|_| KeyPair::generate()).collect(),
        producer: KeyPair::generate(),
    }
}

pub(crate) fn domain(id: &str, objective: Objective, dim: u32) -> DomainSpec {
    DomainSpec {
        id: DomainId::new(id).unwrap(),
        metric: "loss".into(),
        direction: Direction::Minimize,
        objective,
        dim,
        scale: Fx::ONE,
        weight: Fx::ONE,
        tolerance: Fx::parse("0.000001").unwrap(),
        baseline: Fx::from_int(100),
        eval_budget: 10_000,
        verification_fee: Amount::ZERO,
    }
}

/// A fast main chain: 200 ms target, carriers after 400 ms.
pub(crate) fn spec(k: &Keys, domains: Vec<DomainSpec>) -> MainGenesisSpec {
    MainGenesisSpec {
        network: Network::Devnet,
        chain_name: format!("main-node-test-{}", rand_suffix()),
        genesis_time: Timestamp(doin_main_node::producer::now_ms() - 1000),
        params: MainParams {
            target_block_time_ms: 200,
            carrier_interval_ms: 400,
            initial_threshold: Fx::ratio(1, 10),
            ..MainParams::public_defaults()
        },
        evaluators: k
            .evaluators
            .iter()
            .map(|e| EvaluatorEntry {
                key: e.public(),
                domains: domains.iter().map(|d| d.id.clone()).collect(),
                stake: Amount::from_base_units(1),
                all_domains: false,
            })
            .collect(),
        domains,
        reputation: k
            .optimizers
            .iter()
            .map(|o| InitialReputation {
                key: o.public(),
                value: Fx::from_int(10),
            })
            .collect(),
    }
}

fn rand_suffix() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

pub(crate) fn open(
    dir: &Path,
    spec: MainGenesisSpec,
) -> Result<Arc<MainChain>, doin_main_node::MainChainError> {
    let kv: Arc<dyn KvStore> = Arc::new(
        RocksStore::open(dir, doin_main_node::store::COLUMNS, &RocksConfig::default()).unwrap(),
    );
    MainChain::open(kv, spec, MainChainConfig::default(), &Metrics::new())
}
