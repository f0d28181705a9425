//! Node configuration: a TOML file, overridden by `DOIN_*` environment variables.
//!
//! Nested keys use a double underscore in the environment: `DOIN_REST__LISTEN=0.0.0.0:8645`
//! overrides `[rest] listen`. Every key, its default and its meaning are documented in
//! `docs/configuration.md`; `docs/node.example.toml` is a complete example.

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Where the node keeps its database.
    pub data_dir: PathBuf,
    /// Genesis specification (JSON) of the transfer chain.
    pub genesis_file: PathBuf,
    /// Services this node runs: `tx`, `main`, `hub` (the hub needs `tx` beside it).
    pub chains: Vec<String>,
    pub rest: RestConfig,
    pub main: MainSection,
    pub log: LogConfig,
    pub producer: ProducerConfig,
    pub mempool: MempoolSection,
    pub storage: StorageConfig,
    pub p2p: P2pSection,
    #[serde(default)]
    pub consensus: ConsensusSection,
    #[serde(default)]
    pub hub: HubSection,
    #[serde(default)]
    pub sync: SyncSection,
    #[serde(default)]
    pub snapshots: SnapshotsSection,
}

/// How a new node catches up (`[sync]`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncSection {
    /// `full` replays every block from genesis; `warp` lets a node with an empty data directory
    /// start from a snapshot its peers serve, checked from the genesis file alone (transfer
    /// chain only, not in a node that runs the main chain; needs `storage.prune = "pruned"`).
    pub mode: SyncMode,
    /// Snapshot chunk requests in flight at once during warp sync, over all peers.
    pub warp_in_flight: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    Full,
    Warp,
}

impl Default for SyncSection {
    fn default() -> Self {
        SyncSection {
            mode: SyncMode::Full,
            warp_in_flight: 8,
        }
    }
}

/// Transfer-state snapshots this node writes and serves to peers that warp-sync
/// (`[snapshots]`), in `<data_dir>/snapshots`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SnapshotsSection {
    /// Write and serve snapshots.
    pub enabled: bool,
    /// Final blocks between snapshots; unset: the genesis epoch length.
    pub every_blocks: Option<u64>,
    /// Snapshots kept on disk (the newest); older ones are deleted.
    pub keep: usize,
    /// Bytes a chunk aims at (a chunk is one request of a warp-syncing peer).
    pub chunk_bytes: usize,
}

impl Default for SnapshotsSection {
    fn default() -> Self {
        SnapshotsSection {
            enabled: true,
            every_blocks: None,
            keep: 2,
            chunk_bytes: doin_tx_core::snapshot::TARGET_CHUNK_BYTES,
        }
    }
}

/// The channel hub (`[hub]`), run when `chains` names `hub`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HubSection {
    /// Key file of the hub (its channels and transactions are signed with it).
    pub keystore: Option<PathBuf>,
    /// File holding the key file's password (else `DOIN_HUB_PASSWORD`).
    pub password_file: Option<PathBuf>,
    /// Fee per forwarded payment, milli-units.
    pub fee_base_msat: u64,
    /// Fee in millionths of the forwarded amount.
    pub fee_ppm: u32,
    /// Dispute window of the channels the hub opens, blocks.
    pub dispute_blocks: u64,
    /// Shortest dispute window accepted on a payer's channel, blocks.
    pub min_dispute_blocks: u64,
    /// Blocks between a routed HTLC's expiry towards the payee and the payer's.
    pub cltv_delta: u64,
    /// Most the hub owes one payee before it refuses more ticks towards it, milli-units.
    pub max_owed_msat: u64,
    /// How often the watchtower compares the channels with the chain, milliseconds.
    pub watch_interval_ms: u64,
    /// How long an `Idempotency-Key`'s answer is kept, seconds.
    pub idempotency_ttl_secs: u64,
    /// A verification fund whose optimae stays undecided this long goes back, seconds.
    pub fund_timeout_secs: u64,
    /// Channels payees buy from the hub (`[hub.requests]`).
    pub requests: doin_hub::RequestPolicy,
    /// How webhooks are delivered (`[hub.webhooks]`).
    pub webhooks: doin_hub::WebhookConfig,
    /// A final fund's fee for an agreeing evaluator without a channel from the hub:
    /// `"return"` (to the payer at once) or `"hold"` (until it has one, or the fund times out).
    pub unchanneled_evaluators: doin_hub::Unchanneled,
}

impl Default for HubSection {
    fn default() -> Self {
        let d = doin_hub::HubConfig::default();
        HubSection {
            keystore: None,
            password_file: None,
            fee_base_msat: d.fee.base_msat,
            fee_ppm: d.fee.ppm,
            dispute_blocks: d.dispute_blocks,
            min_dispute_blocks: d.min_dispute_blocks,
            cltv_delta: d.cltv_delta,
            max_owed_msat: d.max_owed_msat,
            watch_interval_ms: 2_000,
            idempotency_ttl_secs: d.idempotency_ttl_secs,
            fund_timeout_secs: d.fund_timeout_secs,
            requests: d.requests,
            webhooks: doin_hub::WebhookConfig::default(),
            unchanneled_evaluators: d.unchanneled_evaluators,
        }
    }
}

impl HubSection {
    pub fn hub_config(&self) -> doin_hub::HubConfig {
        doin_hub::HubConfig {
            fee: doin_hub::FeePolicy {
                base_msat: self.fee_base_msat,
                ppm: self.fee_ppm,
            },
            dispute_blocks: self.dispute_blocks,
            min_dispute_blocks: self.min_dispute_blocks,
            cltv_delta: self.cltv_delta,
            max_owed_msat: self.max_owed_msat,
            idempotency_ttl_secs: self.idempotency_ttl_secs,
            fund_timeout_secs: self.fund_timeout_secs,
            requests: self.requests.clone(),
            unchanneled_evaluators: self.unchanneled_evaluators,
        }
    }
}

/// BFT consensus of the transfer chain's validators (`[consensus]`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsensusSection {
    /// Produce blocks by BFT consensus with the other validators. Off: a single validator
    /// produces alone (a chain with several validators requires it on).
    pub enabled: bool,
    /// Multiaddress the consensus network listens on.
    pub listen: String,
    /// The other validators' consensus multiaddresses.
    pub peers: Vec<String>,
    /// Least milliseconds from one height to the next; defaults to the genesis target (30 s).
    pub target_time_ms: Option<u64>,
    /// Base timeout of each consensus step in milliseconds (grows by half per round).
    pub step_timeout_ms: u64,
    /// Test builds only (feature `byzantine-testing`): this validator signs a conflicting nil
    /// vote after each of its votes, so tests can watch double signing get punished.
    #[cfg(feature = "byzantine-testing")]
    pub test_double_vote: bool,
}

impl Default for ConsensusSection {
    fn default() -> Self {
        ConsensusSection {
            enabled: false,
            listen: "/ip4/0.0.0.0/tcp/8656".into(),
            peers: Vec::new(),
            target_time_ms: None,
            step_timeout_ms: 3000,
            #[cfg(feature = "byzantine-testing")]
            test_double_vote: false,
        }
    }
}

/// The peer-to-peer network (`[p2p]`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct P2pSection {
    /// Take part in the network. Off: the node runs alone (a single validator, a test).
    pub enabled: bool,
    /// Multiaddresses to listen on: TCP (`/ip4/0.0.0.0/tcp/8646`) and QUIC
    /// (`/ip4/0.0.0.0/udp/8646/quic-v1`).
    pub listen: Vec<String>,
    /// Peers dialled at start and whenever the node has too few: multiaddresses ending in
    /// `/p2p/<peer id>`.
    pub bootstrap: Vec<String>,
    /// DNS seeds: domain names whose `dnsaddr` TXT records and A/AAAA records list peers.
    pub dns_seeds: Vec<String>,
    /// Find peers on the local network by mDNS.
    pub mdns: bool,
    /// Relay connections for peers behind NAT.
    pub relay_server: bool,
    /// Probe reachability on private addresses too (a network on a LAN or private subnets).
    pub probe_private_addresses: bool,
    /// Connections kept, inbound and outbound together.
    pub max_connections: u32,
    /// Of `max_connections`, the slots only outbound connections may use.
    pub outbound_reserved: u32,
    /// Inbound peers kept from one IPv4 /16 or IPv6 /32 (0 = no limit).
    pub max_inbound_per_netgroup: u32,
    /// Newcomers admitted at once above the limits, so that they learn other peers.
    pub newcomer_slots: u32,
    /// Seconds such a newcomer stays before its connection is closed.
    pub newcomer_grace_secs: u64,
    /// Below this many peers the node keeps discovering and redialling.
    pub target_peers: usize,
    /// Milliseconds between sync rounds (asking peers where their chains are).
    pub sync_interval_ms: u64,
    /// Gossip messages and requests one peer may send per second, sustained, and in a burst.
    pub peer_messages_per_second: u32,
    pub peer_message_burst: u32,
    /// Seconds a misbehaving peer stays banned.
    pub ban_secs: u64,
    /// Outbound connections allowed into one public IPv4 /24 and /16 (0 = no limit).
    pub max_outbound_per_24: usize,
    pub max_outbound_per_16: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestConfig {
    /// Address the REST gateway listens on. Loopback by default.
    pub listen: SocketAddr,
    /// Requests per second per client IP (0 = unlimited).
    pub rate_limit_per_second: u32,
    /// Burst allowance per client IP.
    pub rate_limit_burst: u32,
    /// Seconds a request may take before the gateway answers 408 (streams excepted).
    pub request_timeout_secs: u64,
    /// Seconds a client has to send its request headers.
    pub header_timeout_secs: u64,
    /// Maximum concurrent connections.
    pub max_connections: usize,
    /// Web origins whose pages may read the API (CORS): none by default, `["*"]` for any, or
    /// exact origins (`https://wallet.example`).
    pub cors_allowed_origins: Vec<String>,
    /// Proxies (addresses or CIDR ranges) whose `X-Forwarded-For` names the client, for the
    /// rate limit and the access log. None by default: the connection's peer is the client.
    pub trusted_proxies: Vec<String>,
    /// One log line per request (target `doin_access`): request id, client, method, path,
    /// status, microseconds.
    pub access_log: bool,
    /// A second listener for `/metrics`, `/v1/node/peers` and the hub's operator routes, which
    /// the `listen` address then no longer serves (none: everything on `listen`).
    pub admin_listen: Option<SocketAddr>,
    /// HTTPS: the certificate chain and its private key (PEM), both or neither; read again
    /// on SIGHUP.
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: String,
    /// Filter in `RUST_LOG` syntax; the `RUST_LOG` variable wins when set.
    pub filter: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProducerConfig {
    /// Produce blocks (this node holds the validator key).
    pub enabled: bool,
    /// Validator key file.
    pub keystore: Option<PathBuf>,
    /// File holding the keystore password (or set `DOIN_VALIDATOR_PASSWORD`).
    pub password_file: Option<PathBuf>,
    /// Milliseconds between blocks; defaults to the genesis target.
    pub block_time_ms: Option<u64>,
}

/// The main chain (`[main]`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MainSection {
    /// Genesis specification (JSON) of the main chain.
    pub genesis_file: PathBuf,
    /// Key that signs main blocks this node produces (none: the node does not produce).
    pub producer_keystore: Option<PathBuf>,
    /// Keys of evaluators this node runs (each votes when selected).
    pub evaluator_keystores: Vec<PathBuf>,
    /// Keys of optimizers this node runs (each searches every domain it can evaluate).
    pub optimizer_keystores: Vec<PathBuf>,
    /// Password file for encrypted keys above (or set `DOIN_MAIN_PASSWORD`).
    pub password_file: Option<PathBuf>,
    /// Milliseconds between the producer's and workers' polls.
    pub poll_ms: u64,
    /// Blocks a verification round waits for missing votes once a decision is possible.
    pub vote_patience_blocks: u64,
    /// External domain plugins.
    pub plugins: Vec<doin_main_node::plugin::PluginSpec>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MempoolSection {
    pub max_bytes: usize,
    pub max_per_sender: usize,
    /// Pending transactions per sender whose newcomer tips at least `paying_tip_per_weight`.
    #[serde(default = "default_max_per_paying_sender")]
    pub max_per_paying_sender: usize,
    /// Tip per weight unit, in base units, that earns the higher limit.
    #[serde(default = "default_paying_tip_per_weight")]
    pub paying_tip_per_weight: u64,
    pub expiry_secs: u64,
}

fn default_max_per_paying_sender() -> usize {
    doin_tx_node::mempool::MempoolConfig::default().max_per_paying_sender
}

fn default_paying_tip_per_weight() -> u64 {
    doin_tx_node::mempool::MempoolConfig::default()
        .paying_tip_per_weight
        .base_units()
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// RocksDB block cache, MiB.
    pub cache_mb: usize,
    /// State versions kept before old tree nodes are pruned.
    pub state_history: u64,
    /// History kept: `archive`, `full` or `pruned` (`docs/configuration.md`).
    pub prune: doin_tx_node::history::HistoryMode,
    /// Blocks (the tip included) whose bodies and indexes `full` and `pruned` keep.
    pub keep_blocks: u64,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            data_dir: PathBuf::from("./doin-data"),
            genesis_file: PathBuf::from("./genesis.json"),
            chains: vec!["tx".into()],
            rest: RestConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], 8645)),
                rate_limit_per_second: 50,
                rate_limit_burst: 200,
                request_timeout_secs: 30,
                header_timeout_secs: 10,
                max_connections: 1024,
                cors_allowed_origins: Vec::new(),
                trusted_proxies: Vec::new(),
                access_log: true,
                admin_listen: None,
                tls_cert_file: None,
                tls_key_file: None,
            },
            log: LogConfig {
                format: "text".into(),
                filter: "info".into(),
            },
            main: MainSection {
                genesis_file: PathBuf::from("./main-genesis.json"),
                producer_keystore: None,
                evaluator_keystores: Vec::new(),
                optimizer_keystores: Vec::new(),
                password_file: None,
                poll_ms: 1000,
                vote_patience_blocks: 1,
                plugins: Vec::new(),
            },
            producer: ProducerConfig {
                enabled: false,
                keystore: None,
                password_file: None,
                block_time_ms: None,
            },
            mempool: MempoolSection {
                max_bytes: 64 * 1024 * 1024,
                max_per_sender: 64,
                max_per_paying_sender: default_max_per_paying_sender(),
                paying_tip_per_weight: default_paying_tip_per_weight(),
                expiry_secs: 3 * 3600,
            },
            storage: StorageConfig {
                cache_mb: 128,
                state_history: 256,
                prune: doin_tx_node::history::HistoryPolicy::default().mode,
                keep_blocks: doin_tx_node::history::HistoryPolicy::default().keep_blocks,
            },
            p2p: P2pSection {
                enabled: true,
                listen: vec![
                    "/ip4/0.0.0.0/tcp/8646".into(),
                    "/ip4/0.0.0.0/udp/8646/quic-v1".into(),
                ],
                bootstrap: Vec::new(),
                dns_seeds: Vec::new(),
                mdns: false,
                relay_server: false,
                probe_private_addresses: false,
                max_connections: 128,
                outbound_reserved: 8,
                max_inbound_per_netgroup: 8,
                newcomer_slots: 8,
                newcomer_grace_secs: 10,
                target_peers: 8,
                sync_interval_ms: 2000,
                peer_messages_per_second: 200,
                peer_message_burst: 1000,
                ban_secs: 3600,
                max_outbound_per_24: 2,
                max_outbound_per_16: 4,
            },
            consensus: ConsensusSection::default(),
            hub: HubSection::default(),
            sync: SyncSection::default(),
            snapshots: SnapshotsSection::default(),
        }
    }
}

/// The chains a node can be asked to run, and which of them exist in this build.
pub const KNOWN_CHAINS: &[&str] = &["main", "tx", "hub"];
pub const AVAILABLE_CHAINS: &[&str] = &["tx", "main", "hub"];

impl NodeConfig {
    /// Defaults, then the file (if any), then `DOIN_*` variables.
    pub fn load(file: Option<&Path>) -> Result<NodeConfig, String> {
        Self::load_with_sources(file).map(|(cfg, _)| cfg)
    }

    /// [`NodeConfig::load`], and the layers it was read from (to say where each value came
    /// from: `doin config show`).
    pub fn load_with_sources(file: Option<&Path>) -> Result<(NodeConfig, Figment), String> {
        let mut fig = Figment::from(Serialized::defaults(NodeConfig::default()));
        if let Some(f) = file {
            if !f.exists() {
                return Err(format!("config file {} does not exist", f.display()));
            }
            fig = fig.merge(Toml::file(f));
        }
        fig = fig.merge(Env::prefixed("DOIN_").split("__").ignore(&[
            "node",
            "keystore",
            "wallet_password",
            "validator_password",
            "main_password",
            "hub_password",
        ]));
        let cfg: NodeConfig = fig.extract().map_err(|e| format!("configuration: {e}"))?;
        cfg.validate()?;
        Ok((cfg, fig))
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.chains.is_empty() {
            return Err("configuration: `chains` must name at least one chain".into());
        }
        for c in &self.chains {
            if !KNOWN_CHAINS.contains(&c.as_str()) {
                return Err(format!(
                    "configuration: unknown chain {c:?} (known: main, tx, hub)"
                ));
            }
            if !AVAILABLE_CHAINS.contains(&c.as_str()) {
                return Err(format!(
                    "configuration: chain {c:?} is not available in this version of doin (available: tx, main, hub)"
                ));
            }
        }
        if self.runs("hub") && !self.runs("tx") {
            return Err(
                "configuration: the hub needs the transfer chain in the same node (chains = [\"tx\", \"hub\"])"
                    .into(),
            );
        }
        if self.hub.dispute_blocks == 0
            || self.hub.dispute_blocks > doin_tx_core::channel::MAX_DISPUTE_BLOCKS
        {
            return Err(format!(
                "configuration: hub.dispute_blocks must be 1..={}",
                doin_tx_core::channel::MAX_DISPUTE_BLOCKS
            ));
        }
        if self.sync.mode == SyncMode::Warp {
            if self.storage.prune != doin_tx_node::history::HistoryMode::Pruned {
                return Err(
                    "configuration: sync.mode = \"warp\" needs storage.prune = \"pruned\" (a node that starts from a snapshot has no history before it)"
                        .into(),
                );
            }
            if !self.p2p.enabled {
                return Err("configuration: sync.mode = \"warp\" needs p2p.enabled".into());
            }
            // Main blocks checkpoint final transfer blocks and adopt the stakes read from
            // their state; a warp-synced transfer chain has neither for the blocks below its
            // snapshot, so replaying the main chain would stop at its first checkpoint (and the
            // transfer chain at the first main block it anchors).
            if self.runs("main") {
                return Err(
                    "configuration: sync.mode = \"warp\" restores the transfer chain only; a node that runs the main chain replays both chains from genesis (sync.mode = \"full\"; see docs/network.md#warp-sync)"
                        .into(),
                );
            }
        }
        if self.sync.warp_in_flight == 0 {
            return Err("configuration: sync.warp_in_flight must be above zero".into());
        }
        if self.snapshots.every_blocks == Some(0) || self.snapshots.keep == 0 {
            return Err(
                "configuration: snapshots.every_blocks and snapshots.keep must be above zero"
                    .into(),
            );
        }
        if self.snapshots.chunk_bytes == 0
            || self.snapshots.chunk_bytes > doin_tx_core::snapshot::TARGET_CHUNK_BYTES * 4
        {
            return Err(format!(
                "configuration: snapshots.chunk_bytes must be 1..={}",
                doin_tx_core::snapshot::TARGET_CHUNK_BYTES * 4
            ));
        }
        if self.hub.watch_interval_ms == 0 {
            return Err("configuration: hub.watch_interval_ms must be above zero".into());
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return Err("configuration: log.format must be `text` or `json`".into());
        }
        if self.producer.enabled && self.producer.keystore.is_none() {
            return Err("configuration: producer.enabled needs producer.keystore".into());
        }
        if self.producer.block_time_ms == Some(0) {
            return Err("configuration: producer.block_time_ms must be above zero".into());
        }
        if self.main.poll_ms == 0 {
            return Err("configuration: main.poll_ms must be above zero".into());
        }
        let mut names = std::collections::BTreeSet::new();
        for p in &self.main.plugins {
            if p.command.is_empty() || !names.insert(p.name.clone()) {
                return Err(format!(
                    "configuration: main.plugins: plugin {:?} needs a command and a unique name",
                    p.name
                ));
            }
        }
        if self.p2p.enabled {
            let parse = |what: &str, a: &String| {
                a.parse::<doin_net::Multiaddr>().map_err(|e| {
                    format!("configuration: p2p.{what}: {a:?} is not a multiaddress: {e}")
                })
            };
            if self.p2p.listen.is_empty() {
                return Err(
                    "configuration: p2p.listen needs an address (or set p2p.enabled = false)"
                        .into(),
                );
            }
            for a in &self.p2p.listen {
                parse("listen", a)?;
            }
            for a in &self.p2p.bootstrap {
                let addr = parse("bootstrap", a)?;
                if !addr
                    .iter()
                    .any(|p| matches!(p, doin_net::multiaddr::Protocol::P2p(_)))
                {
                    return Err(format!(
                        "configuration: p2p.bootstrap: {a:?} must end in /p2p/<peer id>"
                    ));
                }
            }
            if self.p2p.dns_seeds.len() > doin_net::seeds::MAX_SEEDS {
                return Err(format!(
                    "configuration: p2p.dns_seeds: at most {} seeds",
                    doin_net::seeds::MAX_SEEDS
                ));
            }
            for seed in &self.p2p.dns_seeds {
                doin_net::seeds::check_seed_name(seed)
                    .map_err(|e| format!("configuration: p2p.dns_seeds: {e}"))?;
            }
            if self.p2p.outbound_reserved > self.p2p.max_connections {
                return Err(format!(
                    "configuration: p2p.outbound_reserved ({}) cannot exceed p2p.max_connections ({})",
                    self.p2p.outbound_reserved, self.p2p.max_connections
                ));
            }
            if !(1..=600).contains(&self.p2p.newcomer_grace_secs) {
                return Err(
                    "configuration: p2p.newcomer_grace_secs must be 1 to 600 seconds".into(),
                );
            }
            if self.p2p.sync_interval_ms == 0 || self.p2p.peer_messages_per_second == 0 {
                return Err("configuration: p2p.sync_interval_ms and p2p.peer_messages_per_second must be above zero".into());
            }
        }
        if self.storage.state_history == 0 {
            return Err("configuration: storage.state_history must be at least 1".into());
        }
        let min_keep = doin_tx_node::history::MIN_KEEP_BLOCKS;
        if self.storage.keep_blocks < min_keep {
            return Err(format!(
                "configuration: storage.keep_blocks must be at least {min_keep} (peers catching up, the event stream and fee estimates read recent blocks)"
            ));
        }
        Ok(())
    }

    pub fn runs(&self, chain: &str) -> bool {
        self.chains.iter().any(|c| c == chain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API fixes the error type
    fn file_then_env_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("n.toml");
        std::fs::write(
            &f,
            "data_dir = \"/x\"\ngenesis_file = \"/g.json\"\n[rest]\nlisten = \"127.0.0.1:9000\"\n",
        )
        .unwrap();
        figment::Jail::expect_with(|jail| {
            jail.set_env("DOIN_REST__RATE_LIMIT_PER_SECOND", "7");
            let c = NodeConfig::load(Some(&f)).map_err(|e| e.to_string())?;
            assert_eq!(c.data_dir, PathBuf::from("/x"));
            assert_eq!(c.rest.listen.port(), 9000);
            assert_eq!(c.rest.rate_limit_per_second, 7);
            assert_eq!(c.rest.rate_limit_burst, 200);
            Ok(())
        });
    }

    #[test]
    fn rejects_unknown_keys_and_chains() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("n.toml");
        std::fs::write(&f, "datadir = \"/x\"\n").unwrap();
        assert!(NodeConfig::load(Some(&f)).is_err());
        std::fs::write(&f, "chains = [\"hub\"]\n").unwrap();
        let e = NodeConfig::load(Some(&f)).unwrap_err();
        assert!(e.contains("needs the transfer chain"), "{e}");
        std::fs::write(
            &f,
            "chains = [\"tx\", \"main\"]\n[sync]\nmode = \"warp\"\n[storage]\nprune = \"pruned\"\n",
        )
        .unwrap();
        let e = NodeConfig::load(Some(&f)).unwrap_err();
        assert!(e.contains("restores the transfer chain only"), "{e}");
        std::fs::write(&f, "chains = [\"moon\"]\n").unwrap();
        assert!(NodeConfig::load(Some(&f))
            .unwrap_err()
            .contains("unknown chain"));
        std::fs::write(&f, "[p2p]\nmax_connections = 4\noutbound_reserved = 5\n").unwrap();
        let e = NodeConfig::load(Some(&f)).unwrap_err();
        assert!(e.contains("cannot exceed p2p.max_connections"), "{e}");
        std::fs::write(&f, "[p2p]\nnewcomer_grace_secs = 0\n").unwrap();
        let e = NodeConfig::load(Some(&f)).unwrap_err();
        assert!(e.contains("newcomer_grace_secs"), "{e}");
        std::fs::write(&f, "[p2p]\ndns_seeds = [\"203.0.113.7\"]\n").unwrap();
        let e = NodeConfig::load(Some(&f)).unwrap_err();
        assert!(
            e.contains("p2p.dns_seeds") && e.contains("IP address"),
            "{e}"
        );
    }
}
