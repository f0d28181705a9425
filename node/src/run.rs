//! Starting and stopping a node: open the database, open each enabled chain, start block
//! production and the REST gateway as tasks, and stop all of it on a signal or when a critical
//! task fails.

use crate::config::{NodeConfig, SyncMode};
use crate::gateway::{self, GatewayLimits, GatewayState, Readiness, ReadyFlag};
use crate::tasks::{Exit, TaskManager};
use anyhow::{anyhow, Context};
use doin_crypto::keystore::KeyFile;
use doin_crypto::KeyPair;
use doin_http::{RateLimitConfig, ServeConfig};
use doin_main_core::MainGenesisSpec;
use doin_main_node::p2p::MainP2p;
use doin_main_node::producer::run_producer;
use doin_main_node::workers::{run_evaluator, run_optimizer, DomainEvaluator, OptimizerOptions};
use doin_main_node::{MainChain, MainChainConfig};
use doin_net::{load_or_create_identity, Multiaddr, NetConfig, NetHandle, Network, PeerPolicy};
use doin_store::{KvStore, RocksConfig, RocksStore};
use doin_sync::SyncState;
use doin_telemetry::Metrics;
use doin_tx_core::GenesisSpec;
use doin_tx_node::consensus::{BftMetrics, BftProducer, BftSettings};
use doin_tx_node::history::HistoryPolicy;
use doin_tx_node::mempool::MempoolConfig;
use doin_tx_node::p2p::TxP2p;
use doin_tx_node::snapshot_shelf::{self, SnapshotShelf};
use doin_tx_node::store::PruneConfig;
use doin_tx_node::{BlockProducer, SoloProducer, TxChain, TxChainConfig};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The chains (and hub) a started node runs.
#[derive(Clone, Default)]
pub struct Handles {
    pub tx: Option<Arc<TxChain>>,
    pub main: Option<Arc<MainChain>>,
    pub hub: Option<Arc<doin_hub::Hub>>,
}

/// Extra work a node runs besides its chains (the devnet's demo traffic).
pub type SideTask = Box<
    dyn FnOnce(
            Handles,
            tokio::sync::watch::Receiver<bool>,
        )
            -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>>
        + Send,
>;

/// Keys the node signs with, by role.
#[derive(Default)]
pub struct NodeKeys {
    /// Transfer-chain validator (block producer).
    pub tx_producer: Option<KeyPair>,
    /// Main-chain block producer.
    pub main_producer: Option<KeyPair>,
    pub evaluators: Vec<KeyPair>,
    pub optimizers: Vec<KeyPair>,
    /// The channel hub's key.
    pub hub: Option<KeyPair>,
}

/// A started node.
pub struct Node {
    pub tx: Option<Arc<TxChain>>,
    pub main: Option<Arc<MainChain>>,
    pub hub: Option<Arc<doin_hub::Hub>>,
    /// The peer-to-peer network, when enabled.
    pub net: Option<NetHandle>,
    /// Where the transfer chain stands against its peers, when networked.
    pub tx_sync: Option<SyncState>,
    /// Where the main chain stands against its peers, when networked.
    pub main_sync: Option<SyncState>,
    pub rest_addr: SocketAddr,
    pub ready: ReadyFlag,
    tasks: TaskManager,
}

pub use doin_client::genesis::{read_genesis, read_main_genesis};

/// Unlocks a key file of a node on `network`; the password comes from `password_file` or the
/// `env_var` variable. A plaintext key file is refused outside the devnet: its secret lies
/// on disk for anyone who can read the file.
pub fn unlock_key(
    keystore: &Path,
    password_file: Option<&Path>,
    env_var: &str,
    network: doin_types::Network,
) -> anyhow::Result<KeyPair> {
    let file = KeyFile::read(keystore)?;
    if !file.is_encrypted() {
        if network != doin_types::Network::Devnet {
            return Err(anyhow!(
                "{} is a plaintext devnet key file; a {network} node takes encrypted key files \
                 only (make one with `doin wallet new`)",
                keystore.display()
            ));
        }
        return Ok(file.unlock(None)?);
    }
    let password = match password_file {
        Some(p) => std::fs::read_to_string(p)
            .with_context(|| format!("cannot read password file {}", p.display()))?
            .trim_end_matches(['\n', '\r'])
            .to_string(),
        None => std::env::var(env_var).map_err(|_| {
            anyhow!(
                "{} is encrypted: give a password file or set {env_var}",
                keystore.display()
            )
        })?,
    };
    Ok(file.unlock(Some(password.as_bytes()))?)
}

impl Node {
    /// Opens everything and starts the tasks. The REST listener is bound before this returns.
    pub async fn start(
        cfg: &NodeConfig,
        tx_spec: Option<GenesisSpec>,
        main_spec: Option<MainGenesisSpec>,
        keys: NodeKeys,
        side_tasks: Vec<(&'static str, SideTask)>,
    ) -> anyhow::Result<Node> {
        let started = Instant::now();
        let ready = ReadyFlag::default();
        let metrics = Metrics::new();
        if let (Some(t), Some(m)) = (&tx_spec, &main_spec) {
            if t.network != m.network {
                return Err(anyhow!(
                    "the transfer chain is on {} but the main chain on {}",
                    t.network,
                    m.network
                ));
            }
        }
        let kv = {
            let cfg = cfg.clone();
            tokio::task::spawn_blocking(move || open_database(&cfg)).await??
        };
        let mut tasks = TaskManager::new();

        let warp = match (&tx_spec, cfg.sync.mode) {
            (Some(spec), SyncMode::Warp) if cfg.runs("tx") => {
                let net_cfg = net_config(cfg, &spec.network.to_string())?;
                crate::warp_boot::warp_if_empty(cfg, kv.clone(), spec, net_cfg, shutdown_signal())
                    .await?
            }
            _ => None,
        };
        let tx = match (cfg.runs("tx"), tx_spec) {
            (true, Some(spec)) => Some(
                open_tx(
                    cfg,
                    kv.clone(),
                    spec,
                    &metrics,
                    keys.tx_producer,
                    &mut tasks,
                )
                .await?,
            ),
            (true, None) => {
                return Err(anyhow!(
                    "the transfer chain needs its genesis specification"
                ))
            }
            (false, _) => None,
        };
        let main = match (cfg.runs("main"), main_spec) {
            (true, Some(spec)) => Some(
                open_main(
                    cfg,
                    kv.clone(),
                    spec,
                    &metrics,
                    keys.main_producer,
                    keys.evaluators,
                    keys.optimizers,
                    &mut tasks,
                )
                .await?,
            ),
            (true, None) => return Err(anyhow!("the main chain needs its genesis specification")),
            (false, _) => None,
        };
        // Both chains here: transfer blocks anchor main blocks and import their rewards; main
        // blocks checkpoint final transfer blocks.
        if let (Some(tx), Some(main)) = (&tx, &main) {
            tx.set_main_view(Arc::new(crate::anchoring::MainChainAnchors::new(main)));
            main.set_tx_view(Arc::new(crate::anchoring::TxChainCheckpoints::new(tx)));
            tasks.spawn(
                "main-chain reorganisation events",
                crate::anchoring::forward_main_reorgs(
                    tx.clone(),
                    main.announcements(),
                    tasks.shutdown_signal(),
                ),
            );
        }

        let hub = match (&tx, cfg.runs("hub")) {
            (Some(tx), true) => {
                let key = keys
                    .hub
                    .ok_or_else(|| anyhow!("the hub needs its key ([hub] keystore)"))?;
                Some(start_hub(
                    cfg,
                    tx,
                    kv.clone(),
                    main.as_ref(),
                    key,
                    &metrics,
                    &mut tasks,
                )?)
            }
            (None, true) => return Err(anyhow!("the hub needs the transfer chain in this node")),
            _ => None,
        };
        let hub_operator = match &hub {
            Some(_) => Some(write_operator_cookie(&cfg.data_dir)?),
            None => None,
        };

        let NetParts {
            handle: net,
            tx_sync,
            main_sync,
        } = start_network(cfg, &tx, &main, &metrics, &mut tasks)?;
        let gauges = crate::node_metrics::NodeGauges::register(&metrics)?;
        tasks.spawn(
            "node gauges",
            gauges.run(
                crate::node_metrics::GaugeSources {
                    tx_sync: tx_sync.clone(),
                    main_sync: main_sync.clone(),
                    store: kv.clone(),
                    stores: vec![
                        ("tx", doin_tx_node::store::COLUMNS.to_vec()),
                        ("main", doin_main_node::store::COLUMNS.to_vec()),
                        ("hub", doin_hub::COLUMNS.to_vec()),
                    ],
                    data_dir: cfg.data_dir.clone(),
                },
                tasks.shutdown_signal(),
            ),
        );

        let trusted_proxies = cfg
            .rest
            .trusted_proxies
            .iter()
            .map(|s| s.parse())
            .collect::<Result<Vec<doin_http::access::IpRange>, String>>()
            .map_err(|e| anyhow!("rest.trusted_proxies: {e}"))?;
        let listener = tokio::net::TcpListener::bind(cfg.rest.listen)
            .await
            .with_context(|| format!("cannot listen on {}", cfg.rest.listen))?;
        let rest_addr = listener.local_addr()?;
        let (app, admin_app) = gateway::routers(
            GatewayState {
                metrics: metrics.clone(),
                ready: ready.clone(),
                started,
                tx: tx.clone(),
                main: main.clone(),
                hub: hub.clone().zip(hub_operator),
                chains: cfg.chains.clone(),
                net: net.clone(),
                tx_sync: tx_sync.clone(),
                main_sync: main_sync.clone(),
                warp,
            },
            GatewayLimits {
                rate: RateLimitConfig {
                    per_second: cfg.rest.rate_limit_per_second,
                    burst: cfg.rest.rate_limit_burst,
                },
                request_timeout: Duration::from_secs(cfg.rest.request_timeout_secs.max(1)),
                access: doin_http::access::AccessConfig {
                    trusted_proxies: Arc::new(trusted_proxies),
                    log: cfg.rest.access_log,
                },
                cors_allowed_origins: cfg.rest.cors_allowed_origins.clone(),
            },
            cfg.rest.admin_listen.is_some(),
        )
        .map_err(|e| anyhow!(e))?;
        let tls = rest_tls(&cfg.rest)?;
        tasks.spawn(
            "SIGHUP",
            doin_http::reload_on_hangup(tls.clone(), tasks.shutdown_signal()),
        );
        let scheme = if tls.is_some() { "https" } else { "http" };
        let serve_cfg = ServeConfig {
            header_read_timeout: Duration::from_secs(cfg.rest.header_timeout_secs.max(1)),
            max_connections: cfg.rest.max_connections,
            tls,
            ..ServeConfig::default()
        };
        let sig = tasks.shutdown_signal();
        if let (Some(addr), Some(admin_app)) = (cfg.rest.admin_listen, admin_app) {
            let admin_listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (rest.admin_listen)"))?;
            tracing::info!(admin = %admin_listener.local_addr()?, "admin routes (/metrics, /v1/node/peers, the hub's operator routes) on their own listener");
            let (admin_cfg, admin_sig) = (serve_cfg.clone(), tasks.shutdown_signal());
            tasks.spawn_critical("admin gateway", async move {
                doin_http::serve(admin_listener, admin_app, admin_cfg, admin_sig)
                    .await
                    .map_err(|e| e.to_string())
            });
        }
        tasks.spawn_critical("rest gateway", async move {
            doin_http::serve(listener, app, serve_cfg, sig)
                .await
                .map_err(|e| e.to_string())
        });
        let handles = Handles {
            tx: tx.clone(),
            main: main.clone(),
            hub: hub.clone(),
        };
        for (name, task) in side_tasks {
            let fut = task(handles.clone(), tasks.shutdown_signal());
            tasks.spawn(name, fut);
        }
        ready.set(Readiness::Ready);
        tracing::info!(rest = %rest_addr, scheme, chains = ?cfg.chains, "node started");
        Ok(Node {
            tx,
            main,
            hub,
            net,
            tx_sync,
            main_sync,
            rest_addr,
            ready,
            tasks,
        })
    }

    /// Runs until `stop` completes or a critical task fails, then shuts down cleanly.
    pub async fn run_until<S: std::future::Future<Output = ()>>(self, stop: S) -> Exit {
        let exit = self.tasks.run_until(stop, Duration::from_secs(10)).await;
        if let Exit::CriticalFailure(reason) = &exit {
            self.ready.set(Readiness::Broken);
            tracing::error!(%reason, "a critical task stopped; shutting the node down");
        } else {
            tracing::info!("shutdown complete");
        }
        exit
    }
}

/// How often the hub deletes idempotent answers past `hub.idempotency_ttl_secs`.
const ANSWER_EXPIRY_EVERY: Duration = Duration::from_secs(60);

/// Opens the hub over the node's database and starts its watch: every `watch_interval_ms`
/// it compares the channels with the chain (challenging stale closes, settling, confirming)
/// and proposes whatever waits. A watch that cannot run is a critical failure: a hub that
/// does not watch its channels can lose funds.
fn start_hub(
    cfg: &NodeConfig,
    tx: &Arc<TxChain>,
    kv: Arc<dyn KvStore>,
    main: Option<&Arc<MainChain>>,
    key: KeyPair,
    metrics: &Metrics,
    tasks: &mut TaskManager,
) -> anyhow::Result<Arc<doin_hub::Hub>> {
    let metrics = doin_hub::HubMetrics::register(metrics)?;
    let port = Arc::new(crate::hub_port::TxChainPort::new(tx));
    let hub = Arc::new({
        let hub = doin_hub::Hub::open(
            key,
            port,
            doin_hub::HubStore::new(kv, metrics),
            cfg.hub.hub_config(),
        )
        .map_err(|e| anyhow!("cannot open the hub: {e}"))?
        .with_webhook_config(cfg.hub.webhooks.clone());
        // With the main chain in this node, the hub can release evaluator pay.
        match main {
            Some(main) => hub.with_main(Arc::new(crate::hub_port::MainChainVotes::new(main))),
            None => hub,
        }
    });
    let every = Duration::from_millis(cfg.hub.watch_interval_ms);
    let watched = hub.clone();
    let mut stop = tasks.shutdown_signal();
    tasks.spawn_critical("hub watchtower", async move {
        let mut tick = tokio::time::interval(every);
        // The first pass also dates the answers an older build kept without a time.
        let mut last_expiry: Option<std::time::Instant> = None;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return Ok(()),
            }
            let h = watched.clone();
            // Expired idempotent answers go about once a minute (a scan of every answer).
            let expire = last_expiry.is_none_or(|t| t.elapsed() >= ANSWER_EXPIRY_EVERY);
            if expire {
                last_expiry = Some(std::time::Instant::now());
            }
            let pass = tokio::task::spawn_blocking(move || {
                let mut report = h.watch()?;
                report.merge(h.open_requested()?);
                h.flush_all()?;
                if expire {
                    let n = h.expire_answers()?;
                    if n > 0 {
                        tracing::info!(expired = n, "hub: idempotent answers expired");
                    }
                }
                Ok::<_, doin_hub::HubError>(report)
            })
            .await
            .map_err(|e| e.to_string())?;
            match pass {
                Ok(r) if r != doin_hub::WatchReport::default() => {
                    tracing::info!(report = %r, "hub watch");
                }
                Ok(_) => {}
                // The chain refusing one transaction is retried next pass; a store failure is not.
                Err(doin_hub::HubError::Chain(e)) => {
                    watched.watch_failed();
                    tracing::warn!(error = %e, "hub watch");
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    });
    let mut stop = tasks.shutdown_signal();
    tasks.spawn(
        "hub webhooks",
        doin_hub::webhooks::run(hub.clone(), async move {
            let _ = stop.changed().await;
        }),
    );
    tracing::info!(hub = %hub.public_key(), "hub started");
    Ok(hub)
}

/// A new operator token for the hub's operator calls, written to `hub.cookie` in the data
/// directory (readable by this user only, fsynced): each start makes a new one, so a token
/// that leaked stops working at the next restart.
fn write_operator_cookie(data_dir: &Path) -> anyhow::Result<doin_hub::api::OperatorToken> {
    use rand::RngCore;
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let token = hex::encode(secret);
    let path = data_dir.join("hub.cookie");
    let tmp = data_dir.join("hub.cookie.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(token.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    std::fs::File::open(data_dir)?.sync_all()?;
    doin_hub::api::OperatorToken::new(&token)
        .ok_or_else(|| anyhow!("the operator token is malformed"))
}

/// The `[p2p]` section as the network library wants it.
pub fn net_config(cfg: &NodeConfig, network: &str) -> anyhow::Result<NetConfig> {
    let parse = |a: &String| {
        a.parse::<Multiaddr>()
            .map_err(|e| anyhow!("p2p address {a:?}: {e}"))
    };
    let p = &cfg.p2p;
    let mut n = NetConfig::new(
        network,
        p.listen.iter().map(parse).collect::<Result<_, _>>()?,
    );
    // What the network's own files list comes after what the operator configured.
    let shipped_path = crate::network_file::path_beside(&cfg.genesis_file);
    let shipped = crate::network_file::NetworkFile::load(&shipped_path)
        .map_err(|e| anyhow!("the network file {e}"))?
        .unwrap_or_default();
    if !shipped.bootstrap.is_empty() || !shipped.dns_seeds.is_empty() {
        tracing::info!(
            file = %shipped_path.display(),
            bootstrap = shipped.bootstrap.len(),
            dns_seeds = shipped.dns_seeds.len(),
            "the network file lists entry points"
        );
    }
    let bootstrap = crate::network_file::merged(&p.bootstrap, &shipped.bootstrap);
    n.bootstrap = bootstrap.iter().map(parse).collect::<Result<_, _>>()?;
    n.dns_seeds = crate::network_file::merged(&p.dns_seeds, &shipped.dns_seeds);
    n.mdns = p.mdns;
    n.relay_server = p.relay_server;
    n.probe_private_addresses = p.probe_private_addresses;
    n.max_connections = p.max_connections;
    n.outbound_reserved = p.outbound_reserved;
    n.max_inbound_per_netgroup = p.max_inbound_per_netgroup;
    n.newcomer_slots = p.newcomer_slots;
    n.newcomer_grace = Duration::from_secs(p.newcomer_grace_secs);
    n.target_peers = p.target_peers;
    n.known_peers = Some(cfg.data_dir.join("net").join("known_peers"));
    n.address_book = Some(cfg.data_dir.join("net").join("address_book"));
    n.policy = PeerPolicy {
        ban_duration: Duration::from_secs(p.ban_secs),
        messages_per_second: p.peer_messages_per_second,
        message_burst: p.peer_message_burst,
        max_outbound_per_24: p.max_outbound_per_24,
        max_outbound_per_16: p.max_outbound_per_16,
        ..PeerPolicy::default()
    };
    Ok(n)
}

/// The network and the chains' sync state, when networking is enabled.
#[derive(Default)]
struct NetParts {
    handle: Option<NetHandle>,
    tx_sync: Option<SyncState>,
    main_sync: Option<SyncState>,
}

/// Joins the peer-to-peer network (when enabled) and puts each networked chain on it.
fn start_network(
    cfg: &NodeConfig,
    tx: &Option<Arc<TxChain>>,
    main: &Option<Arc<MainChain>>,
    metrics: &Metrics,
    tasks: &mut TaskManager,
) -> anyhow::Result<NetParts> {
    if !cfg.p2p.enabled {
        return Ok(NetParts::default());
    }
    let name = match (tx, main) {
        (Some(t), _) => t.params().network.to_string(),
        (None, Some(m)) => m.params().network.to_string(),
        (None, None) => return Ok(NetParts::default()),
    };
    let key_path = cfg.data_dir.join("net").join("node_key");
    let key = load_or_create_identity(&key_path)
        .with_context(|| format!("network key {}", key_path.display()))?;
    let net_cfg = net_config(cfg, &name)?;
    let max_response = net_cfg.max_response_bytes;
    let mut network = Network::new(net_cfg, key, metrics.registry()).map_err(|e| anyhow!(e))?;
    let mut tx_sync = None;
    if let Some(chain) = tx {
        let mut p2p = TxP2p::attach(
            chain.clone(),
            &mut network,
            metrics,
            Duration::from_millis(cfg.p2p.sync_interval_ms),
            max_response,
        )
        .map_err(|e| anyhow!(e))?;
        if cfg.snapshots.enabled {
            let dir = cfg.data_dir.join("snapshots");
            let shelf = SnapshotShelf::open(
                &dir,
                chain.params().clone(),
                cfg.snapshots.keep,
                cfg.snapshots.chunk_bytes,
            )
            .with_context(|| format!("snapshots in {}", dir.display()))?;
            let shelf = Arc::new(shelf);
            let every = cfg
                .snapshots
                .every_blocks
                .unwrap_or(chain.params().consensus.epoch_blocks);
            let produce = snapshot_shelf::produce(
                chain.clone(),
                shelf.clone(),
                every,
                tasks.shutdown_signal(),
            );
            tasks.spawn_critical("state snapshots", produce);
            p2p = p2p.serve_snapshots(shelf);
        }
        tx_sync = Some(p2p.sync_state());
        let fut = p2p.run(tasks.shutdown_signal());
        tasks.spawn_critical("transfer-chain network", fut);
    }
    let mut main_sync = None;
    if let Some(chain) = main {
        let p2p = MainP2p::attach(
            chain.clone(),
            &mut network,
            Duration::from_millis(cfg.p2p.sync_interval_ms),
            max_response,
        )
        .map_err(|e| anyhow!(e))?;
        main_sync = Some(p2p.sync_state());
        let fut = p2p.run(tasks.shutdown_signal());
        tasks.spawn_critical("main-chain network", fut);
    }
    let handle = network.handle();
    let sig = tasks.shutdown_signal();
    tasks.spawn_critical("p2p network", async move {
        network.run(sig).await.map_err(|e| e.to_string())
    });
    Ok(NetParts {
        handle: Some(handle),
        tx_sync,
        main_sync,
    })
}

/// The consensus settings of `[consensus]`; the block time is the target time unless set.
fn bft_settings(cfg: &NodeConfig, block_time: Duration) -> anyhow::Result<BftSettings> {
    let c = &cfg.consensus;
    let parse = |a: &str| {
        a.parse::<Multiaddr>()
            .map_err(|e| anyhow!("[consensus] address {a:?} is not a multiaddress: {e}"))
    };
    Ok(BftSettings {
        listen: parse(&c.listen)?,
        peers: c.peers.iter().map(|p| parse(p)).collect::<Result<_, _>>()?,
        target_time: c
            .target_time_ms
            .map(Duration::from_millis)
            .unwrap_or(block_time),
        step_timeout: Duration::from_millis(c.step_timeout_ms.max(1)),
        wal_dir: cfg.data_dir.join("consensus"),
        moniker: cfg.data_dir.display().to_string(),
    })
}

/// The node's RocksDB (`<data_dir>/db`) with every chain's column families: each exists in
/// every node's database, so an operator can change `chains` later without touching it.
pub fn open_database(cfg: &NodeConfig) -> anyhow::Result<Arc<dyn KvStore>> {
    let db_path = cfg.data_dir.join("db");
    let columns: Vec<&'static str> = doin_tx_node::store::COLUMNS
        .iter()
        .chain(doin_main_node::store::COLUMNS)
        .chain(doin_hub::COLUMNS)
        .copied()
        .collect();
    let store = RocksStore::open(
        &db_path,
        &columns,
        &RocksConfig {
            block_cache_bytes: cfg.storage.cache_mb * 1024 * 1024,
            ..RocksConfig::default()
        },
    )
    .map_err(|e| {
        let hint = if e.to_string().to_ascii_lowercase().contains("lock") {
            " (is a node running on this data directory? stop it first)"
        } else {
            ""
        };
        anyhow!(
            "cannot open the database at {}: {e}{hint}",
            db_path.display()
        )
    })?;
    Ok(Arc::new(store))
}

/// The transfer chain's service configuration from the node's.
pub fn tx_chain_config(cfg: &NodeConfig) -> TxChainConfig {
    TxChainConfig {
        mempool: MempoolConfig {
            max_bytes: cfg.mempool.max_bytes,
            max_per_sender: cfg.mempool.max_per_sender,
            max_per_paying_sender: cfg.mempool.max_per_paying_sender,
            paying_tip_per_weight: doin_types::Amount::from_base_units(
                cfg.mempool.paying_tip_per_weight,
            ),
            expiry_ms: cfg.mempool.expiry_secs.saturating_mul(1000),
            ..MempoolConfig::default()
        },
        prune: PruneConfig {
            keep_versions: cfg.storage.state_history,
            history: HistoryPolicy {
                mode: cfg.storage.prune,
                keep_blocks: cfg.storage.keep_blocks,
            },
            ..PruneConfig::default()
        },
        event_buffer: 10_000,
    }
}

async fn open_tx(
    cfg: &NodeConfig,
    kv: Arc<dyn KvStore>,
    spec: GenesisSpec,
    metrics: &Metrics,
    producer_key: Option<KeyPair>,
    tasks: &mut TaskManager,
) -> anyhow::Result<Arc<TxChain>> {
    let chain_cfg = tx_chain_config(cfg);
    let chain = {
        let metrics = metrics.clone();
        tokio::task::spawn_blocking(move || TxChain::open(kv, spec, chain_cfg, &metrics)).await??
    };
    if let Some(key) = producer_key {
        let block_time = Duration::from_millis(
            cfg.producer
                .block_time_ms
                .unwrap_or(chain.params().consensus.target_block_time_ms),
        );
        // Under consensus a key may win a seat from its stake at an epoch boundary; the solo
        // producer only ever runs a single genesis validator.
        let seated = chain.params().validators.contains(&key.public())
            || chain
                .validator_set_at(chain.tip().header.height + 1)
                .is_some_and(|s| s.contains(&key.public()));
        if !cfg.consensus.enabled && !seated {
            return Err(anyhow!("the producer key is not a validator of this chain"));
        }
        let producer: Box<dyn BlockProducer> = if cfg.consensus.enabled {
            let bft = BftProducer::new(
                key,
                bft_settings(cfg, block_time)?,
                BftMetrics::register(metrics)?,
            );
            #[cfg(feature = "byzantine-testing")]
            let bft = if cfg.consensus.test_double_vote {
                bft.double_voting()
            } else {
                bft
            };
            Box::new(bft)
        } else if chain.params().validators.len() > 1 {
            return Err(anyhow!(
                "this chain has {} validators: block production needs [consensus] enabled = true",
                chain.params().validators.len()
            ));
        } else {
            Box::new(SoloProducer::new(key, block_time))
        };
        let fut = producer.run(chain.clone(), tasks.shutdown_signal());
        tasks.spawn_critical("block producer", async move {
            fut.await.map_err(|e| e.to_string())
        });
    }
    Ok(chain)
}

#[allow(clippy::too_many_arguments)]
async fn open_main(
    cfg: &NodeConfig,
    kv: Arc<dyn KvStore>,
    spec: MainGenesisSpec,
    metrics: &Metrics,
    producer_key: Option<KeyPair>,
    evaluators: Vec<KeyPair>,
    optimizers: Vec<KeyPair>,
    tasks: &mut TaskManager,
) -> anyhow::Result<Arc<MainChain>> {
    let main_cfg = MainChainConfig {
        vote_patience_blocks: cfg.main.vote_patience_blocks,
        ..MainChainConfig::default()
    };
    let chain = {
        let metrics = metrics.clone();
        tokio::task::spawn_blocking(move || MainChain::open(kv, spec, main_cfg, &metrics)).await??
    };
    let poll = Duration::from_millis(cfg.main.poll_ms);
    if let Some(key) = producer_key {
        let fut = run_producer(chain.clone(), Arc::new(key), poll, tasks.shutdown_signal());
        tasks.spawn_critical("main block producer", async move {
            fut.await.map_err(|e| e.to_string())
        });
    }
    let evaluator = Arc::new(DomainEvaluator::new(cfg.main.plugins.clone()));
    for key in evaluators {
        let fut = run_evaluator(
            chain.clone(),
            Arc::new(key),
            evaluator.clone(),
            poll,
            tasks.shutdown_signal(),
        );
        tasks.spawn("main evaluator", fut);
    }
    for key in optimizers {
        let fut = run_optimizer(
            chain.clone(),
            Arc::new(key),
            evaluator.clone(),
            OptimizerOptions {
                poll,
                tries_per_round: 24,
            },
            tasks.shutdown_signal(),
        );
        tasks.spawn("main optimizer", fut);
    }
    Ok(chain)
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("interrupt received, shutting down"),
        _ = term => tracing::info!("SIGTERM received, shutting down"),
    }
}

/// The REST server's certificate, when `rest.tls_cert_file` and `rest.tls_key_file` are set
/// (both or neither).
fn rest_tls(rest: &crate::config::RestConfig) -> anyhow::Result<Option<doin_http::Tls>> {
    match (&rest.tls_cert_file, &rest.tls_key_file) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => doin_http::Tls::load(cert, key)
            .map(Some)
            .map_err(|e| anyhow!("rest TLS: {e}")),
        _ => Err(anyhow!(
            "rest.tls_cert_file and rest.tls_key_file go together: set both for HTTPS, or neither"
        )),
    }
}
