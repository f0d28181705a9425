//! One scenario from start to verdict: hosts, keys and genesis, the nodes, the workload, the
//! fault schedule, then healing everything and the checks. Whatever happens, what the run made
//! is removed before it returns (and by the signal handler if the runner is interrupted).

use super::bank::{Bank, Target};
use super::channels::{Channels, Peer};
use super::check;
use super::host::{self, Hosts, Made, Shared};
use super::node::{Http, MainPart, Node, Wiring};
use super::peers;
use super::scenario::{Role, Scenario, Step};
use doin_crypto::keystore::KeyFile;
use doin_crypto::KeyPair;
use doin_tx_core::stake::{StakeRole, ALL_DOMAINS};
use doin_tx_core::{Allocation, ConsensusParams, GenesisSpec, GenesisStake};
use doin_types::{Address, Amount, Network, Timestamp};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Base units per DOIN.
const COIN: u64 = 100_000_000;

pub struct Options {
    pub scenario: PathBuf,
    /// The `doin` binary to run.
    pub doin: PathBuf,
    /// Where configurations, logs, metrics and the history go.
    pub out: PathBuf,
}

/// What a run saw.
#[derive(Debug, Default)]
pub struct Report {
    pub height: u64,
    pub transfers_final: usize,
    pub accepted_answers: usize,
    pub refused_answers: usize,
    pub no_answers: usize,
    pub secs: u64,
}

/// Runs the scenario; the error names the first check or step that failed.
pub async fn run(opts: Options) -> Result<Report, String> {
    match host::clean_stale() {
        Ok(removed) if !removed.is_empty() => {
            eprintln!("removed what earlier runs left: {}", removed.join(", "))
        }
        Ok(_) => {}
        Err(e) => eprintln!("could not look for earlier runs' leftovers: {e}"),
    }
    let scenario = Scenario::read(&opts.scenario)?;
    let made: Shared = Arc::new(Mutex::new(Made::default()));
    let on_signal = made.clone();
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => return,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        eprintln!("interrupted: removing the testnet");
        on_signal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .teardown();
        std::process::exit(130);
    });
    let result = Run::new(scenario, &opts, made.clone()).await;
    let result = match result {
        Ok(mut r) => {
            let outcome = r.drive().await;
            r.collect().await;
            outcome
        }
        Err(e) => Err(e),
    };
    made.lock().unwrap_or_else(|p| p.into_inner()).teardown();
    result
}

struct Run {
    scenario: Scenario,
    doin: PathBuf,
    out: PathBuf,
    hosts: Hosts,
    nodes: Vec<Node>,
    http: Http,
    bank: Arc<Bank>,
    /// Every key genesis gave coins to, as addresses (the supply check reads them all).
    funded: Vec<String>,
    /// Base units genesis created (balances and stakes).
    created: u128,
    /// The payer and payee of the hub, when the scenario runs channels.
    channels: Option<Arc<Channels>>,
    started: Instant,
}

impl Run {
    async fn new(scenario: Scenario, opts: &Options, made: Shared) -> Result<Run, String> {
        if !opts.doin.exists() {
            return Err(format!(
                "{} does not exist: build it with `cargo build -p doin-node --bin doin`",
                opts.doin.display()
            ));
        }
        std::fs::create_dir_all(&opts.out).map_err(|e| format!("{}: {e}", opts.out.display()))?;
        let out = opts
            .out
            .canonicalize()
            .map_err(|e| format!("{}: {e}", opts.out.display()))?;
        let hosts = Hosts::new(made.clone())?;
        let network = Network::Devnet;
        let params = ConsensusParams {
            target_block_time_ms: scenario.block_time_ms,
            epoch_blocks: scenario.epoch_blocks,
            ..ConsensusParams::public_defaults()
        };
        let stake = params.staking.min_validator_stake;

        // Keys: one per node (a validator's seat, a hub's key), one per bank account.
        let node_keys: Vec<KeyPair> = scenario.nodes.iter().map(|_| KeyPair::generate()).collect();
        let accounts: Vec<KeyPair> = (0..scenario.accounts)
            .map(|_| KeyPair::generate())
            .collect();
        let mut allocations = Vec::new();
        let mut stakes = Vec::new();
        let mut validators = Vec::new();
        let mut created: u128 = 0;
        for (spec, key) in scenario.nodes.iter().zip(&node_keys) {
            if spec.role == Role::Follower {
                continue;
            }
            allocations.push(Allocation {
                key: key.public(),
                amount: Amount::from_base_units(1_000 * COIN),
            });
            created += u128::from(1_000 * COIN);
            if spec.role == Role::Validator {
                validators.push(key.public());
                stakes.push(GenesisStake {
                    key: key.public(),
                    role: StakeRole::Validator,
                    amount: stake,
                    domains: Vec::new(),
                });
                created += u128::from(stake.base_units());
            }
        }
        // The hub's payer (funded: it opens its channel on chain) and payee.
        let peers = if scenario.channels {
            let dir = out.join("channels");
            let payer = Peer::new("payer", &dir)?;
            let payee = Peer::new("payee", &dir)?;
            allocations.push(Allocation {
                key: payer.key.public(),
                amount: Amount::from_base_units(1_000 * COIN),
            });
            created += u128::from(1_000 * COIN);
            Some((payer, payee))
        } else {
            None
        };
        for a in &accounts {
            allocations.push(Allocation {
                key: a.public(),
                amount: Amount::from_base_units(1_000_000 * COIN),
            });
            created += u128::from(1_000_000 * COIN);
        }
        // The main chain's evaluators and optimizers, staked at genesis.
        let evaluators: Vec<KeyPair> = (0..scenario.evaluators)
            .map(|_| KeyPair::generate())
            .collect();
        let optimizers: Vec<KeyPair> = (0..scenario.optimizers)
            .map(|_| KeyPair::generate())
            .collect();
        for (keys, role, amount) in [
            (
                &evaluators,
                StakeRole::Evaluator,
                params.staking.min_evaluator_stake,
            ),
            (
                &optimizers,
                StakeRole::Optimizer,
                params.staking.min_optimizer_stake,
            ),
        ] {
            for k in keys.iter() {
                stakes.push(GenesisStake {
                    key: k.public(),
                    role,
                    amount,
                    domains: match role {
                        StakeRole::Evaluator => vec![ALL_DOMAINS.to_string()],
                        _ => Vec::new(),
                    },
                });
                created += u128::from(amount.base_units());
            }
        }
        // Every key that can hold coins: what genesis funded, and whoever the main chain pays.
        let mut funded: Vec<String> = node_keys
            .iter()
            .chain(&accounts)
            .chain(&evaluators)
            .chain(&optimizers)
            .map(|k| Address::new(network, k.public()).to_string())
            .collect();
        if let Some((payer, payee)) = &peers {
            funded.extend([payer.address(), payee.address()]);
        }
        let spec = GenesisSpec {
            network,
            chain_name: format!("testnet-{}-{}", scenario.name, std::process::id()),
            genesis_time: Timestamp(doin_tx_node::now_ms()),
            params,
            validators,
            allocations,
            stakes,
        };
        let chain_id = spec.chain_id().map_err(|e| format!("genesis: {e}"))?;
        let genesis = out.join("genesis.json");
        let text = serde_json::to_string_pretty(&spec).map_err(|e| e.to_string())?;
        std::fs::write(&genesis, text).map_err(|e| format!("genesis.json: {e}"))?;
        let main_genesis = if scenario.main_block_time_ms > 0 {
            let main = doin_node::devnet::main_genesis(
                &spec,
                scenario.main_block_time_ms,
                &evaluators.iter().map(KeyPair::public).collect::<Vec<_>>(),
                &optimizers.iter().map(KeyPair::public).collect::<Vec<_>>(),
            )
            .map_err(|e| format!("main genesis: {e}"))?;
            let path = out.join("main-genesis.json");
            let text = serde_json::to_string_pretty(&main).map_err(|e| e.to_string())?;
            std::fs::write(&path, text).map_err(|e| format!("main-genesis.json: {e}"))?;
            Some(path)
        } else {
            None
        };
        let keys_dir = out.join("keys");
        std::fs::create_dir_all(&keys_dir).map_err(|e| format!("{}: {e}", keys_dir.display()))?;
        let write_keys = |prefix: &str, keys: &[KeyPair]| -> Result<Vec<PathBuf>, String> {
            keys.iter()
                .enumerate()
                .map(|(i, k)| {
                    let p = keys_dir.join(format!("{prefix}-{i}.json"));
                    if p.exists() {
                        std::fs::remove_file(&p).map_err(|e| format!("{}: {e}", p.display()))?;
                    }
                    KeyFile::plaintext_devnet(k)
                        .write_new(&p)
                        .map_err(|e| format!("{}: {e}", p.display()))?;
                    Ok(p)
                })
                .collect()
        };
        let evaluator_files = write_keys("evaluator", &evaluators)?;
        let optimizer_files = write_keys("optimizer", &optimizers)?;

        let mut nodes = Vec::new();
        for (i, spec) in scenario.nodes.iter().enumerate() {
            let host = match (spec.nat, spec.address) {
                (true, _) => hosts.add_behind_nat(i)?,
                (false, Some(ip)) => hosts.add_at(i, ip)?,
                (false, None) => hosts.add(i)?,
            };
            let dir = out.join(&spec.name);
            if dir.exists() {
                std::fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            }
            if spec.disk_mb > 0 {
                hosts.small_disk(&dir.join("data"), spec.disk_mb)?;
            }
            nodes.push(Node::new(spec.clone(), host, dir, made.clone())?);
        }
        super::entry::publish(&hosts, &nodes, &genesis, &out)?;
        for (i, node) in nodes.iter().enumerate() {
            let key = node.dir.join("key.json");
            KeyFile::plaintext_devnet(&node_keys[i])
                .write_new(&key)
                .map_err(|e| format!("{}: {e}", key.display()))?;
            // A hidden node (no bootstrap list) gets the genesis file without the network's
            // file beside it, so it must find the others by DNS seeds or mDNS.
            let genesis = if node.spec.bootstrap {
                genesis.clone()
            } else {
                let own = node.dir.join("genesis.json");
                std::fs::copy(&genesis, &own).map_err(|e| format!("{}: {e}", own.display()))?;
                own
            };
            let consensus: Vec<String> = nodes
                .iter()
                .filter(|o| o.name() != node.name() && o.spec.role == Role::Validator)
                .map(Node::consensus_addr)
                .collect();
            let hub_key = (node.spec.role == Role::Hub).then_some(key.as_path());
            let main = main_genesis.as_ref().map(|g| MainPart {
                genesis: g.clone(),
                poll_ms: (scenario.main_block_time_ms / 20).clamp(100, 1000),
                producer: node.spec.main_producer.then(|| key.clone()),
                evaluators: node
                    .spec
                    .evaluators
                    .iter()
                    .map(|e| evaluator_files[*e].clone())
                    .collect(),
                optimizers: node
                    .spec
                    .optimizers
                    .iter()
                    .map(|o| optimizer_files[*o].clone())
                    .collect(),
            });
            // A node told of some peers only gets them as its bootstrap list.
            let told: Vec<String> = node
                .spec
                .peers
                .iter()
                .flatten()
                .filter_map(|name| nodes.iter().find(|n| n.name() == name))
                .map(Node::p2p_addr)
                .collect();
            node.write_config(&Wiring {
                genesis: &genesis,
                key: &key,
                hub_key,
                bootstrap: told,
                consensus_peers: consensus,
                block_time_ms: scenario.block_time_ms,
                main,
            })?;
        }
        let bank = Arc::new(Bank::new(accounts, network, chain_id));
        let channels = match peers {
            None => None,
            Some((payer, payee)) => {
                let hub = nodes
                    .iter()
                    .find(|n| n.spec.role == Role::Hub)
                    .ok_or("channels need a node with the role hub")?;
                Some(Arc::new(Channels::new(
                    &opts.doin,
                    hub.rest(),
                    hub.data_dir().join("hub.cookie"),
                    payer,
                    payee,
                )))
            }
        };
        Ok(Run {
            scenario,
            doin: opts.doin.clone(),
            out,
            hosts,
            nodes,
            http: Http::new()?,
            bank,
            funded,
            created,
            channels,
            started: Instant::now(),
        })
    }

    fn say(&self, what: &str) {
        eprintln!("[{:>5} s] {what}", self.started.elapsed().as_secs());
    }

    fn index(&self, name: &str) -> Result<usize, String> {
        self.nodes
            .iter()
            .position(|n| n.name() == name)
            .ok_or_else(|| format!("no node {name}"))
    }

    async fn start(&mut self, i: usize) -> Result<(), String> {
        self.nodes[i].start(&self.doin)?;
        self.nodes[i].wait_live(&self.http, 90).await
    }

    async fn drive(&mut self) -> Result<Report, String> {
        self.say(&format!(
            "scenario {}: {} nodes on {}, output in {}",
            self.scenario.name,
            self.nodes.len(),
            self.hosts.runner_ip(),
            self.out.display()
        ));
        for i in 0..self.nodes.len() {
            self.nodes[i].start(&self.doin)?;
        }
        for i in 0..self.nodes.len() {
            let http = self.http.clone();
            self.nodes[i].wait_live(&http, 90).await?;
        }
        let first = check::converge(&self.http, &self.nodes, 2, 180).await?;
        self.say(&format!("all nodes answer and agree at height {first}"));
        let targets: Vec<Target> = self
            .nodes
            .iter()
            .filter(|n| !n.spec.no_clients)
            .map(|n| Target {
                name: n.name().to_string(),
                rest: n.rest(),
            })
            .collect();
        let clients = self.bank.start(targets, self.http.clone());
        self.say(&format!("{} bank clients started", clients.len()));
        let streaming = match &self.channels {
            None => None,
            Some(c) => {
                c.setup().await?;
                self.say("the payer streams to the payee through the hub");
                Some(c.start())
            }
        };

        let steps = self.scenario.steps.clone();
        for (k, step) in steps.iter().enumerate() {
            self.say(&format!("step {}/{}: {step:?}", k + 1, steps.len()));
            self.step(step)
                .await
                .map_err(|e| format!("step {} ({step:?}): {e}", k + 1))?;
        }

        self.say("healing: partitions and loss removed, every node running");
        self.heal_all().await?;
        let tip = self.max_height().await;
        let agreed = check::converge(&self.http, &self.nodes, tip, 180).await?;
        self.say(&format!(
            "converged at height {agreed}; stopping the workload"
        ));
        self.bank.stop();
        for c in clients {
            let _ = c.await;
        }
        if let (Some(c), Some(task)) = (&self.channels, streaming) {
            c.stop();
            let _ = task.await;
        }
        let transfers_final = check::nothing_lost(
            &self.http,
            &self.nodes,
            &self.bank,
            self.scenario.settle_secs,
        )
        .await?;
        self.say(&format!(
            "{transfers_final} accepted transfers are final on every node"
        ));
        let end = check::converge(&self.http, &self.nodes, agreed, 60).await?;
        check::no_fork(&self.http, &self.nodes, end).await?;
        self.say(&format!(
            "no fork: every node holds the same blocks 1..={end}"
        ));
        check::supply(&self.http, &self.nodes, &self.funded, self.created).await?;
        self.say("supply holds on every node");
        if self.scenario.main_block_time_ms > 0 {
            let (anchored, paid) = check::rewards_once(&self.http, &self.nodes).await?;
            self.say(&format!(
                "main-chain rewards credited exactly once on every node: {paid} base units paid by main blocks 1..={anchored}"
            ));
        }
        if let Some(c) = &self.channels {
            let books = c.reconcile(&self.http, 180).await?;
            self.say(&format!(
                "the hub's books reconcile: the stream received {} msat ({} ticks reported completed), the payee was paid {} msat; {} commands, {} of them unanswered or refused and run again",
                books.received_msat, books.ticks_reported, books.paid_out_msat, books.commands, books.failed_commands
            ));
        }
        let (accepted_answers, _, refused_answers, no_answers) = self.bank.tally();
        Ok(Report {
            height: end,
            transfers_final,
            accepted_answers,
            refused_answers,
            no_answers,
            secs: self.started.elapsed().as_secs(),
        })
    }

    async fn max_height(&self) -> u64 {
        let mut max = 0;
        for n in &self.nodes {
            if let Some(h) = check::height(&self.http, n).await {
                max = max.max(h);
            }
        }
        max
    }

    async fn heal_all(&mut self) -> Result<(), String> {
        for n in &self.nodes {
            self.hosts.heal(&n.host)?;
            self.hosts.loss(&n.host, 0)?;
            self.hosts.latency(&n.host, 0, 0)?;
            self.hosts.duplicate(&n.host, 0)?;
        }
        for i in 0..self.nodes.len() {
            if self.nodes[i].paused {
                self.nodes[i].resume()?;
            }
            if let Some(f) = self.nodes[i].filler.take() {
                std::fs::remove_file(&f).map_err(|e| format!("{}: {e}", f.display()))?;
            }
            if self.nodes[i].exited().is_some() || !self.nodes[i].running() {
                self.start(i).await?;
            }
        }
        Ok(())
    }

    /// The hosts of the nodes named (every node's when `names` is empty).
    fn hosts_of<'a>(&'a self, names: &'a [String]) -> impl Iterator<Item = &'a host::HostAddr> {
        self.nodes
            .iter()
            .filter(move |n| names.is_empty() || names.iter().any(|x| x == n.name()))
            .map(|n| &n.host)
    }

    /// Final heights of `names`, `None` for a node that does not answer.
    async fn heights(&self, names: &[String]) -> Result<Vec<Option<u64>>, String> {
        let mut out = Vec::new();
        for name in names {
            let i = self.index(name)?;
            out.push(check::height(&self.http, &self.nodes[i]).await);
        }
        Ok(out)
    }

    async fn step(&mut self, step: &Step) -> Result<(), String> {
        match step {
            Step::Wait { secs } => tokio::time::sleep(Duration::from_secs(*secs)).await,
            Step::Kill { nodes } => {
                for n in nodes {
                    let i = self.index(n)?;
                    self.nodes[i].kill9();
                }
            }
            Step::Restart { nodes } => {
                for n in nodes {
                    let i = self.index(n)?;
                    self.start(i).await?;
                }
            }
            Step::KillCycles {
                nodes,
                times,
                down_secs,
                up_secs,
            } => {
                for round in 0..*times {
                    let name = &nodes[round as usize % nodes.len()];
                    let i = self.index(name)?;
                    self.nodes[i].kill9();
                    tokio::time::sleep(Duration::from_secs(*down_secs)).await;
                    self.start(i).await?;
                    self.say(&format!("kill -9 {}/{times}: {name} is back", round + 1));
                    tokio::time::sleep(Duration::from_secs(*up_secs)).await;
                }
            }
            Step::Pause { nodes } => {
                for n in nodes {
                    let i = self.index(n)?;
                    self.nodes[i].pause()?;
                }
            }
            Step::Resume { nodes } => {
                for n in nodes {
                    let i = self.index(n)?;
                    self.nodes[i].resume()?;
                }
            }
            Step::Partition { groups } => {
                for group in groups {
                    let outside: Vec<std::net::Ipv4Addr> = self
                        .nodes
                        .iter()
                        .filter(|n| !group.iter().any(|g| g == n.name()))
                        .map(|n| n.host.seen_as)
                        .collect();
                    for name in group {
                        let i = self.index(name)?;
                        self.hosts.heal(&self.nodes[i].host)?;
                        self.hosts.isolate(&self.nodes[i].host, &outside)?;
                    }
                }
            }
            Step::Cut { from, to } => {
                let ips = |names: &[String]| -> Result<Vec<std::net::Ipv4Addr>, String> {
                    names
                        .iter()
                        .map(|n| Ok(self.nodes[self.index(n)?].host.seen_as))
                        .collect()
                };
                let (from_ips, to_ips) = (ips(from)?, ips(to)?);
                for name in from {
                    let i = self.index(name)?;
                    self.hosts.isolate(&self.nodes[i].host, &to_ips)?;
                }
                for name in to {
                    let i = self.index(name)?;
                    self.hosts.isolate(&self.nodes[i].host, &from_ips)?;
                }
            }
            Step::Heal => {
                for n in &self.nodes {
                    self.hosts.heal(&n.host)?;
                }
            }
            Step::Loss { nodes, percent } => {
                for host in self.hosts_of(nodes) {
                    self.hosts.loss(host, *percent)?;
                }
            }
            Step::LossClear => {
                for n in &self.nodes {
                    self.hosts.loss(&n.host, 0)?;
                }
            }
            Step::Latency {
                nodes,
                ms,
                jitter_ms,
            } => {
                for host in self.hosts_of(nodes) {
                    self.hosts.latency(host, *ms, *jitter_ms)?;
                }
            }
            Step::LatencyClear => {
                for n in &self.nodes {
                    self.hosts.latency(&n.host, 0, 0)?;
                }
            }
            Step::Duplicate { nodes, percent } => {
                for host in self.hosts_of(nodes) {
                    self.hosts.duplicate(host, *percent)?;
                }
            }
            Step::DuplicateClear => {
                for n in &self.nodes {
                    self.hosts.duplicate(&n.host, 0)?;
                }
            }
            Step::FillDisk { node } => {
                let i = self.index(node)?;
                let path = self.nodes[i].data_dir().join("filler");
                fill(&path)?;
                self.nodes[i].filler = Some(path);
            }
            Step::FreeDisk { node } => {
                let i = self.index(node)?;
                if let Some(f) = self.nodes[i].filler.take() {
                    std::fs::remove_file(&f).map_err(|e| format!("{}: {e}", f.display()))?;
                }
                if let Some(status) = self.nodes[i].exited() {
                    self.say(&format!("{node} had stopped ({status}); starting it again"));
                }
                if !self.nodes[i].running() {
                    self.start(i).await?;
                }
            }
            Step::Wipe { node } => {
                let i = self.index(node)?;
                self.nodes[i].wipe()?;
                self.start(i).await?;
            }
            Step::RollingRestart { nodes, up_secs } => {
                let names: Vec<String> = if nodes.is_empty() {
                    self.nodes.iter().map(|n| n.name().to_string()).collect()
                } else {
                    nodes.clone()
                };
                for n in names {
                    let i = self.index(&n)?;
                    self.nodes[i].kill9();
                    self.start(i).await?;
                    tokio::time::sleep(Duration::from_secs(*up_secs)).await;
                }
            }
            Step::ExpectProgress {
                nodes,
                blocks,
                within_secs,
            } => {
                let before = self.heights(nodes).await?;
                let deadline = Instant::now() + Duration::from_secs(*within_secs);
                loop {
                    let now = self.heights(nodes).await?;
                    let done = before.iter().zip(&now).all(|(b, n)| match (b, n) {
                        (Some(b), Some(n)) => *n >= b + blocks,
                        (None, Some(_)) => true,
                        _ => false,
                    });
                    if done {
                        break;
                    }
                    if Instant::now() >= deadline {
                        return Err(format!(
                            "no progress of {blocks} blocks within {within_secs} s: {nodes:?} from {before:?} to {now:?}"
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
            Step::ExpectStall { nodes, secs } => {
                // A block being decided when the fault began may still land.
                tokio::time::sleep(Duration::from_secs(3)).await;
                let before = self.heights(nodes).await?;
                tokio::time::sleep(Duration::from_secs(*secs)).await;
                let after = self.heights(nodes).await?;
                if before != after {
                    return Err(format!(
                        "the chain moved without a quorum: {nodes:?} from {before:?} to {after:?}"
                    ));
                }
            }
            Step::ExpectLog {
                node,
                text,
                within_secs,
            } => {
                let i = self.index(node)?;
                let deadline = Instant::now() + Duration::from_secs(*within_secs);
                while !self.nodes[i].log_contains(text) {
                    if Instant::now() >= deadline {
                        return Err(format!(
                            "{node}'s log has no line with {text:?}; it ends:\n{}",
                            self.nodes[i].log_tail(15)
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
            Step::Converge { within_secs } => {
                let tip = self.max_height().await;
                let at = check::converge(&self.http, &self.nodes, tip, *within_secs).await?;
                self.say(&format!("converged at height {at}"));
            }
            Step::ExpectReachability { .. }
            | Step::ExpectPeers { .. }
            | Step::ExpectOutbound { .. }
            | Step::ExpectDirect { .. } => {
                for line in peers::expect(&self.http, &self.nodes, step).await? {
                    self.say(&line);
                }
            }
            Step::ExpectBurned { nodes, within_secs } => {
                for name in nodes {
                    let i = self.index(name)?;
                    let key = self.nodes[i].dir.join("key.json");
                    let address = validator_address(&key)?;
                    let deadline = Instant::now() + Duration::from_secs(*within_secs);
                    loop {
                        let url =
                            format!("{}/v1/tx/accounts/{address}/stakes", self.nodes[0].rest());
                        let burned = self.http.get(&url).await.is_some_and(|s| {
                            s["stakes"].as_array().is_some_and(|a| {
                                a.iter().any(|x| {
                                    x["role"] == "validator"
                                        && x["tombstoned"] == true
                                        && x["bonded"] == "0"
                                })
                            })
                        });
                        if burned {
                            break;
                        }
                        if Instant::now() >= deadline {
                            return Err(format!(
                                "{name}'s stake is not burned after {within_secs} s"
                            ));
                        }
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        }
        Ok(())
    }

    /// Logs, metrics and the history into the output directory.
    async fn collect(&mut self) {
        for n in &self.nodes {
            if let Some(text) = self.http.text(&format!("{}/metrics", n.rest())).await {
                let _ = std::fs::write(n.dir.join("metrics.txt"), text);
            }
        }
        if let Err(e) = self.bank.write_history(&self.out.join("history.jsonl")) {
            eprintln!("history: {e}");
        }
        if let Some(c) = &self.channels {
            if let Err(e) = c.write_history(&self.out.join("channels.jsonl")) {
                eprintln!("channel history: {e}");
            }
        }
    }
}

fn validator_address(key: &Path) -> Result<String, String> {
    let file = KeyFile::read(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let pair = file
        .unlock(None)
        .map_err(|e| format!("{}: {e}", key.display()))?;
    Ok(Address::new(Network::Devnet, pair.public()).to_string())
}

/// Writes zeros to `path` until the filesystem is full.
fn fill(path: &Path) -> Result<(), String> {
    use std::io::Write;
    let mut f = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let block = vec![0u8; 1 << 16];
    loop {
        match f.write(&block) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(28) => break,
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
    }
    // What is still buffered cannot fit either.
    let _ = f.sync_all();
    Ok(())
}
