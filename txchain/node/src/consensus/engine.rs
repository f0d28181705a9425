//! Starting the engine: its actors (consensus, write-ahead log, network, value sync) wired to
//! the [`Host`] loop, as a [`BlockProducer`] the node runs like any other.
//!
//! The engine's consensus traffic runs on its own libp2p swarm (same libp2p version as the
//! node's gossip network, a separate listen address), with the validators as persistent
//! peers. Its write-ahead log lives in the node's data directory, so a validator that crashes
//! mid-round replays what it signed instead of signing something else.

use super::codec::WireCodec;
use super::context::{DoinContext, ValidatorAddress};
use super::host::{HeightTiming, Host};
use super::metrics::BftMetrics;
use super::signing::{ConsensusKey, ConsensusSigner};
use crate::chain::{ChainError, TxChain};
use crate::producer::BlockProducer;
use arc_malachitebft_app_channel::app::config::{
    ConsensusConfig, NodeConfig, P2pConfig, ValueSyncConfig,
};
use arc_malachitebft_app_channel::app::types::core::LinearTimeouts;
use arc_malachitebft_app_channel::{
    ConsensusContext, EngineBuilder, NetworkContext, NetworkIdentity, RequestContext, SyncContext,
    WalContext,
};
use arc_malachitebft_codec::Codec;
use arc_malachitebft_signing::Signer;
use doin_crypto::KeyPair;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

pub use libp2p::Multiaddr;

/// What a validator needs to take part in consensus.
#[derive(Clone, Debug)]
pub struct BftSettings {
    /// Where the consensus swarm listens (e.g. `/ip4/0.0.0.0/tcp/26656`).
    pub listen: Multiaddr,
    /// The other validators' consensus addresses (dialled and redialled).
    pub peers: Vec<Multiaddr>,
    /// Least time from the start of one height to the next: the block time.
    pub target_time: Duration,
    /// Base timeout of the propose, prevote and precommit steps (each grows by half of itself
    /// per round).
    pub step_timeout: Duration,
    /// The engine's write-ahead log directory.
    pub wal_dir: PathBuf,
    /// A name for logs.
    pub moniker: String,
}

impl BftSettings {
    fn timeouts(&self) -> LinearTimeouts {
        let step = self.step_timeout;
        let delta = step / 2;
        LinearTimeouts {
            propose: step,
            propose_delta: delta,
            prevote: step,
            prevote_delta: delta,
            precommit: step,
            precommit_delta: delta,
            rebroadcast: step.saturating_mul(2),
            max_timeout: step.saturating_mul(20),
        }
    }
}

/// The engine's configuration (its `NodeConfig`).
#[derive(Clone, Debug)]
struct EngineConfig {
    moniker: String,
    consensus: ConsensusConfig,
    value_sync: ValueSyncConfig,
}

impl NodeConfig for EngineConfig {
    fn moniker(&self) -> &str {
        &self.moniker
    }

    fn consensus(&self) -> &ConsensusConfig {
        &self.consensus
    }

    fn consensus_mut(&mut self) -> &mut ConsensusConfig {
        &mut self.consensus
    }

    fn value_sync(&self) -> &ValueSyncConfig {
        &self.value_sync
    }

    fn value_sync_mut(&mut self) -> &mut ValueSyncConfig {
        &mut self.value_sync
    }
}

/// Produces transfer blocks by BFT consensus among the chain's validators.
pub struct BftProducer {
    key: Arc<KeyPair>,
    settings: BftSettings,
    metrics: BftMetrics,
    /// Test builds: sign a second, conflicting (nil) vote for every vote (see `double_voting`).
    #[cfg(feature = "byzantine-testing")]
    double_vote: bool,
}

impl BftProducer {
    pub fn new(key: KeyPair, settings: BftSettings, metrics: BftMetrics) -> BftProducer {
        BftProducer {
            key: Arc::new(key),
            settings,
            metrics,
            #[cfg(feature = "byzantine-testing")]
            double_vote: false,
        }
    }

    /// Makes this validator Byzantine on purpose: every vote it sends for a block is followed
    /// by a second one, signed with its key, for nil — double signing that honest validators
    /// record as evidence. Exists only in test builds (feature `byzantine-testing`).
    #[cfg(feature = "byzantine-testing")]
    pub fn double_voting(mut self) -> BftProducer {
        self.double_vote = true;
        self
    }
}

/// The consensus swarm's identity, derived from the validator key so it is stable across
/// restarts (peers keep recognising it) and never equal to the key itself.
fn network_keypair(key: &KeyPair) -> Result<libp2p::identity::Keypair, String> {
    let seed = doin_crypto::tagged_hash("doin/bft/p2p-identity", key.secret_bytes().as_slice());
    libp2p::identity::Keypair::ed25519_from_bytes(seed.0).map_err(|e| e.to_string())
}

fn engine_error(what: &str, e: impl std::fmt::Display) -> ChainError {
    ChainError::Inconsistent(format!("consensus engine: {what}: {e}"))
}

impl BlockProducer for BftProducer {
    fn run(
        self: Box<Self>,
        chain: Arc<TxChain>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Pin<Box<dyn Future<Output = Result<(), ChainError>> + Send>> {
        Box::pin(async move {
            let params = chain.params().clone();
            // A key without a seat now may win one at an epoch boundary: the engine runs
            // either way and votes only at heights whose set holds the key.
            let address = ValidatorAddress(self.key.public());
            std::fs::create_dir_all(&self.settings.wal_dir)
                .map_err(|e| engine_error("write-ahead log directory", e))?;
            let signer = ConsensusSigner::new(params.chain_id, ConsensusKey(self.key.clone()));
            let keypair = network_keypair(&self.key).map_err(|e| engine_error("identity", e))?;
            let peer_id = keypair.public().to_peer_id();
            let proof = signer
                .sign_validator_proof(address.0 .0.to_vec(), peer_id.to_bytes())
                .await
                .map_err(|e| engine_error("validator proof", e))?;
            let proof_bytes = WireCodec
                .encode(&proof)
                .map_err(|e| engine_error("validator proof", e))?;
            let identity = NetworkIdentity::new_validator(
                self.settings.moniker.clone(),
                keypair,
                address.to_string(),
                proof_bytes,
            );
            let config = EngineConfig {
                moniker: self.settings.moniker.clone(),
                consensus: ConsensusConfig {
                    p2p: P2pConfig {
                        listen_addr: self.settings.listen.clone(),
                        persistent_peers: self.settings.peers.clone(),
                        ..P2pConfig::default()
                    },
                    ..ConsensusConfig::default()
                },
                value_sync: ValueSyncConfig {
                    status_update_interval: Duration::from_secs(2),
                    request_timeout: Duration::from_secs(5),
                    ..ValueSyncConfig::default()
                },
            };
            let wal_file = self.settings.wal_dir.join("consensus.wal");
            let builder = EngineBuilder::new(DoinContext, config)
                .with_default_wal(WalContext::new(wal_file, WireCodec));
            #[cfg(feature = "byzantine-testing")]
            let built = if self.double_vote {
                tracing::warn!("this validator double-votes on purpose (test build)");
                let byzantine = arc_malachitebft_app_channel::ByzantineContext {
                    identity,
                    codec: WireCodec,
                    config: arc_malachitebft_engine_byzantine::ByzantineConfig::default()
                        .with_equivocate_votes(arc_malachitebft_engine_byzantine::Trigger::Always),
                    signer: Box::new(signer.clone()),
                    address,
                    conflicting_value_fn: None,
                    // None: each vote for a block is doubled by a vote for nil.
                    conflicting_vote_value_fn: None,
                };
                builder
                    .with_byzantine_network(byzantine)
                    .await
                    .map_err(|e| engine_error("start", e))?
                    .with_default_sync(SyncContext::new(WireCodec))
                    .with_default_consensus(ConsensusContext::new_validator(
                        address,
                        Box::new(ConsensusSigner::verifier(params.chain_id)),
                        Box::new(signer),
                    ))
                    .with_default_request(RequestContext::new(100))
                    .build()
                    .await
            } else {
                builder
                    .with_default_network(NetworkContext::new(identity, WireCodec))
                    .with_default_sync(SyncContext::new(WireCodec))
                    .with_default_consensus(ConsensusContext::new_validator(
                        address,
                        Box::new(ConsensusSigner::verifier(params.chain_id)),
                        Box::new(signer),
                    ))
                    .with_default_request(RequestContext::new(100))
                    .build()
                    .await
            };
            #[cfg(not(feature = "byzantine-testing"))]
            let built = builder
                .with_default_network(NetworkContext::new(identity, WireCodec))
                .with_default_sync(SyncContext::new(WireCodec))
                .with_default_consensus(ConsensusContext::new_validator(
                    address,
                    Box::new(ConsensusSigner::verifier(params.chain_id)),
                    Box::new(signer),
                ))
                .with_default_request(RequestContext::new(100))
                .build()
                .await;
            let (mut channels, engine) = built.map_err(|e| engine_error("start", e))?;
            tracing::info!(
                listen = %self.settings.listen,
                peers = self.settings.peers.len(),
                %peer_id,
                "consensus engine started"
            );
            let events = channels.events.subscribe();
            let watcher = tokio::spawn(super::events::watch(events, self.metrics.clone()));
            let host = Host::new(
                chain,
                self.key.clone(),
                HeightTiming {
                    timeouts: self.settings.timeouts(),
                    target_time: self.settings.target_time,
                },
                self.metrics.clone(),
            );
            let result = tokio::select! {
                r = host.run(&mut channels) => r,
                _ = shutdown.changed() => Ok(()),
            };
            watcher.abort();
            engine.actor.stop(Some("node shutting down".into()));
            let _ = engine.handle.await;
            match result {
                Ok(()) if !*shutdown.borrow() => {
                    Err(engine_error("stopped", "the engine closed its channel"))
                }
                other => other,
            }
        })
    }
}
