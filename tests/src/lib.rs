//! Test support for DOIN: deterministic scenarios, helpers that start chains and nodes, and the
//! binaries black-box tests drive (`crash-writer`).
//!
//! Nothing here is used by the node itself.

// Every dependency in Cargo.toml is used (checked outside test builds, which also see the
// dev-dependencies).
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

// The misbehaving-peer binary speaks the wire protocol through doin-net; the library does not.
use doin_net as _;

pub mod cluster;
pub mod hub_harness;
pub mod ports;
pub mod scenario;
pub mod testnet;

use doin_crypto::KeyPair;
use doin_store::{KvStore, MemStore, RocksConfig, RocksStore};
use doin_telemetry::Metrics;
use doin_tx_core::{Allocation, ConsensusParams, GenesisSpec};
use doin_tx_node::{TxChain, TxChainConfig};
use doin_types::{Amount, Network, Timestamp};
use std::path::Path;
use std::sync::Arc;

/// A devnet genesis, started ten seconds ago, with `validator` alone validating and each of
/// `funded` holding `amount` base units.
pub fn funded_genesis(
    name: &str,
    validator: &KeyPair,
    funded: &[&KeyPair],
    amount: u64,
    params: ConsensusParams,
) -> GenesisSpec {
    GenesisSpec {
        stakes: Vec::new(),
        network: Network::Devnet,
        chain_name: name.into(),
        genesis_time: Timestamp(doin_tx_node::now_ms().saturating_sub(10_000)),
        params,
        validators: vec![validator.public()],
        allocations: funded
            .iter()
            .map(|k| Allocation {
                key: k.public(),
                amount: Amount::from_base_units(amount),
            })
            .collect(),
    }
}

/// A two-dimensional sphere domain (baseline 100, no tolerance) charging `verification_fee`
/// per vote: the main-chain tests' domain.
pub fn sphere_domain(verification_fee: Amount) -> doin_main_core::DomainSpec {
    use doin_main_core::{Direction, DomainId, Fx, Objective};
    doin_main_core::DomainSpec {
        id: DomainId::new("sphere").unwrap_or_else(|e| unreachable!("a constant id: {e}")),
        metric: "loss".into(),
        direction: Direction::Minimize,
        objective: Objective::Sphere,
        dim: 2,
        scale: Fx::ONE,
        weight: Fx::ONE,
        tolerance: Fx::ZERO,
        baseline: Fx::from_int(100),
        eval_budget: 100,
        verification_fee,
    }
}

/// Opens a transfer chain on a RocksDB in `dir`.
pub fn open_rocks_chain(dir: &Path, spec: GenesisSpec) -> anyhow::Result<Arc<TxChain>> {
    let kv: Arc<dyn KvStore> = Arc::new(RocksStore::open(
        dir,
        doin_tx_node::store::COLUMNS,
        &RocksConfig::default(),
    )?);
    Ok(TxChain::open(
        kv,
        spec,
        TxChainConfig {
            event_buffer: 1000,
            ..TxChainConfig::default()
        },
        &Metrics::new(),
    )?)
}

/// Opens a transfer chain on the in-memory store.
pub fn open_memory_chain(spec: GenesisSpec) -> anyhow::Result<Arc<TxChain>> {
    let kv: Arc<dyn KvStore> = Arc::new(MemStore::new(doin_tx_node::store::COLUMNS));
    Ok(TxChain::open(
        kv,
        spec,
        TxChainConfig {
            event_buffer: 1000,
            ..TxChainConfig::default()
        },
        &Metrics::new(),
    )?)
}

/// The node's full REST router around `chain` (no rate limit), for in-process HTTP tests.
pub fn gateway_for(chain: Arc<TxChain>) -> anyhow::Result<axum::Router> {
    gateway_with(Some(chain), None)
}

/// The node's full REST router around the given chains (no rate limit).
pub fn gateway_with(
    tx: Option<Arc<TxChain>>,
    main: Option<Arc<doin_main_node::MainChain>>,
) -> anyhow::Result<axum::Router> {
    gateway_limited(
        tx,
        main,
        doin_node::gateway::GatewayLimits {
            rate: doin_http::RateLimitConfig {
                per_second: 0,
                burst: 0,
            },
            request_timeout: std::time::Duration::from_secs(30),
            access: doin_http::access::AccessConfig::default(),
            cors_allowed_origins: Vec::new(),
        },
    )
}

/// The node's full REST router around the given chains, with `limits`.
pub fn gateway_limited(
    tx: Option<Arc<TxChain>>,
    main: Option<Arc<doin_main_node::MainChain>>,
    limits: doin_node::gateway::GatewayLimits,
) -> anyhow::Result<axum::Router> {
    gateway_routers(tx, main, limits, false).map(|(all, _)| all)
}

/// The node's REST routers around the given chains, with `limits`: with `split_admin`, the
/// public one and the admin listener's.
pub fn gateway_routers(
    tx: Option<Arc<TxChain>>,
    main: Option<Arc<doin_main_node::MainChain>>,
    limits: doin_node::gateway::GatewayLimits,
    split_admin: bool,
) -> anyhow::Result<(axum::Router, Option<axum::Router>)> {
    use doin_node::gateway::{routers, GatewayState, Readiness, ReadyFlag};
    let ready = ReadyFlag::default();
    ready.set(Readiness::Ready);
    routers(
        GatewayState {
            metrics: Metrics::new(),
            ready,
            started: std::time::Instant::now(),
            chains: [tx.as_ref().map(|_| "tx"), main.as_ref().map(|_| "main")]
                .into_iter()
                .flatten()
                .map(String::from)
                .collect(),
            tx,
            main,
            hub: None,
            net: None,
            tx_sync: None,
            main_sync: None,
            warp: None,
        },
        limits,
        split_admin,
    )
    .map_err(|e| anyhow::anyhow!(e))
}

/// Sends one request through an in-process router: status, content type and JSON body
/// (`null` when the body is not JSON).
pub async fn call(
    router: &axum::Router,
    req: axum::http::Request<axum::body::Body>,
) -> (axum::http::StatusCode, String, serde_json::Value) {
    use tower::ServiceExt;
    let resp = match router.clone().oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let status = resp.status();
    let ctype = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let bytes = axum::body::to_bytes(resp.into_body(), 10 << 20)
        .await
        .unwrap_or_default();
    let v = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, ctype, v)
}
