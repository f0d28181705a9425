//! `doin devnet`: a complete local network in one process.
//!
//! On first start it creates, in the data directory: a genesis specification with a random chain
//! name (so every devnet is its own chain), a validator key, funded user accounts
//! (`keys/account-N.json`) and demo accounts (`keys/demo-N.json`), all as clearly labelled
//! plaintext devnet key files; and a main-chain genesis (`main-genesis.json`) with four built-in
//! domains, demo evaluators (`keys/evaluator-N.json`) and optimizers (`keys/optimizer-N.json`)
//! whose workers run in the node so main blocks are made from verified work. Later starts reuse
//! all of it, so a restarted devnet continues its chains. The demo task sends transfers between
//! the demo accounts so blocks have content; the user accounts are left alone for the wallet.

use crate::config::NodeConfig;
use crate::run::{read_genesis, read_main_genesis, Handles, SideTask};
use anyhow::{anyhow, Context};
use doin_crypto::keystore::KeyFile;
use doin_crypto::KeyPair;
use doin_main_core::{
    Direction, DomainId, DomainSpec, EvaluatorEntry, Fx, InitialReputation, MainGenesisSpec,
    MainParams, Objective,
};
use doin_tx_core::stake::ALL_DOMAINS;
use doin_tx_core::{
    Allocation, ConsensusParams, GenesisSpec, GenesisStake, StakeRole, StakingParams, TxBody,
    TxPayload,
};
use doin_tx_node::{now_ms, TxChain};
use doin_types::{Address, Amount, Network, Timestamp};
use rand::Rng;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Options of `doin devnet`.
#[derive(Clone, Debug)]
pub struct DevnetOptions {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// Peer-to-peer listen multiaddress.
    pub p2p_listen: String,
    pub block_time_ms: u64,
    pub accounts: usize,
    pub demo_accounts: usize,
    pub demo: bool,
    /// Milliseconds between demo transfers.
    pub demo_interval_ms: u64,
    /// Target time between main blocks (the threshold controller aims at it).
    pub main_block_time_ms: u64,
    /// Demo evaluators and optimizers (keys/evaluator-N.json, keys/optimizer-N.json).
    pub evaluators: usize,
    pub optimizers: usize,
}

/// Everything the devnet node needs.
pub struct Devnet {
    pub config: NodeConfig,
    pub spec: GenesisSpec,
    pub main_spec: MainGenesisSpec,
    pub validator: KeyPair,
    pub evaluators: Vec<KeyPair>,
    pub optimizers: Vec<KeyPair>,
    /// The channel hub's key (funded at genesis).
    pub hub: KeyPair,
    /// The demo payer that streams to the evaluators through the hub (funded at genesis).
    pub payer: KeyPair,
    pub demo_keys: Vec<KeyPair>,
    pub account_files: Vec<PathBuf>,
    pub created: bool,
}

const ACCOUNT_BALANCE_DOIN: u64 = 1_000_000;
/// Genesis stakes of the devnet's validator, demo evaluators and demo optimizers.
const VALIDATOR_STAKE_DOIN: u64 = 10_000;
const EVALUATOR_STAKE_DOIN: u64 = 100;
const OPTIMIZER_STAKE_DOIN: u64 = 10;

fn key_path(dir: &Path, name: &str) -> PathBuf {
    dir.join("keys").join(format!("{name}.json"))
}

fn load_or_create_key(path: &Path, create: bool) -> anyhow::Result<KeyPair> {
    if path.exists() {
        return Ok(KeyFile::read(path)?.unlock(None)?);
    }
    if !create {
        return Err(anyhow!(
            "devnet key {} is missing; the data directory is incomplete (delete it to start a new devnet)",
            path.display()
        ));
    }
    let k = KeyPair::generate();
    KeyFile::plaintext_devnet(&k).write_new(path)?;
    Ok(k)
}

/// Creates the devnet files on first use, or loads them.
pub fn prepare(opts: &DevnetOptions) -> anyhow::Result<Devnet> {
    let dir = &opts.data_dir;
    std::fs::create_dir_all(dir.join("keys"))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let genesis_path = dir.join("genesis.json");
    let created = !genesis_path.exists();
    let validator = load_or_create_key(&key_path(dir, "validator"), created)?;
    let hub = load_or_create_key(&key_path(dir, "hub"), created)?;
    let payer = load_or_create_key(&key_path(dir, "payer"), created)?;
    let mut accounts = Vec::new();
    let mut account_files = Vec::new();
    for i in 0..opts.accounts {
        let p = key_path(dir, &format!("account-{i}"));
        accounts.push(load_or_create_key(&p, created)?);
        account_files.push(p);
    }
    let mut demo_keys = Vec::new();
    for i in 0..opts.demo_accounts {
        demo_keys.push(load_or_create_key(
            &key_path(dir, &format!("demo-{i}")),
            created,
        )?);
    }
    let spec = if created {
        let mut suffix = [0u8; 4];
        rand::thread_rng().fill(&mut suffix);
        let per_account = Amount::from_doin(ACCOUNT_BALANCE_DOIN)?;
        let spec = GenesisSpec {
            stakes: genesis_stakes(opts, &validator)?,
            network: Network::Devnet,
            chain_name: format!("doin-devnet-{}", hex::encode(suffix)),
            genesis_time: Timestamp(now_ms()),
            params: ConsensusParams {
                target_block_time_ms: opts.block_time_ms,
                staking: devnet_staking()?,
                ..ConsensusParams::public_defaults()
            },
            validators: vec![validator.public()],
            allocations: accounts
                .iter()
                .chain(demo_keys.iter())
                .chain([&hub, &payer])
                .map(|k| Allocation {
                    key: k.public(),
                    amount: per_account,
                })
                .collect(),
        };
        spec.validate()?;
        let json = serde_json::to_string_pretty(&spec)?;
        let tmp = genesis_path.with_extension("json.tmp");
        std::fs::write(&tmp, json)?;
        std::fs::rename(&tmp, &genesis_path)?;
        std::fs::write(
            dir.join("README.txt"),
            "This directory holds a DOIN devnet: genesis.json, its database (db/) and\n\
             UNENCRYPTED devnet keys (keys/). Never reuse these keys on testnet or mainnet.\n\
             Delete the directory to start a fresh devnet.\n",
        )?;
        spec
    } else {
        let spec = read_genesis(&genesis_path)?;
        if spec.network != Network::Devnet {
            return Err(anyhow!(
                "{} is not a devnet genesis; point --data-dir at a devnet directory",
                genesis_path.display()
            ));
        }
        spec
    };
    let (main_spec, evaluators, optimizers) = prepare_main(opts, &spec)?;
    let mut config = NodeConfig {
        data_dir: dir.clone(),
        genesis_file: genesis_path,
        chains: vec!["tx".into(), "main".into(), "hub".into()],
        ..NodeConfig::default()
    };
    config.hub.keystore = Some(key_path(dir, "hub"));
    // Short windows so a close can be watched to the end in minutes.
    config.hub.dispute_blocks = 20;
    config.hub.min_dispute_blocks = 10;
    config.hub.cltv_delta = 10;
    config.hub.watch_interval_ms = 1_000;
    // Evaluators may buy their channel from the hub.
    config.hub.requests.enabled = true;
    config.main.genesis_file = dir.join("main-genesis.json");
    config.main.producer_keystore = Some(key_path(dir, "validator"));
    config.main.poll_ms = (opts.main_block_time_ms / 20).clamp(100, 1000);
    config.rest.listen = opts.listen;
    // The devnet's terminal tells the chains' story; a line per request (the demo's own
    // clients poll) would drown it. A gateway's operator keeps the access log on.
    config.rest.access_log = false;
    config.p2p.listen = vec![opts.p2p_listen.clone()];
    config.producer.enabled = true;
    config.producer.keystore = Some(key_path(dir, "validator"));
    config.producer.block_time_ms = Some(opts.block_time_ms);
    // The single validator decides its blocks through the same BFT engine as a validator set.
    // Alone, it has no consensus peers: the engine's network would log every publish as an
    // error, so `doin devnet` turns that log off and keeps only the engine's warnings.
    config.consensus.enabled = true;
    config.consensus.listen = "/ip4/127.0.0.1/tcp/0".into();
    Ok(Devnet {
        config,
        spec,
        main_spec,
        validator,
        evaluators,
        optimizers,
        hub,
        payer,
        demo_keys,
        account_files,
        created,
    })
}

/// Devnet staking: small minimums and a short unbonding period, so the whole stake
/// lifecycle can be tried in minutes.
fn devnet_staking() -> anyhow::Result<StakingParams> {
    Ok(StakingParams {
        min_validator_stake: Amount::from_doin(1)?,
        min_evaluator_stake: Amount::from_doin(1)?,
        min_optimizer_stake: Amount::from_doin(1)?,
        unbonding_blocks: 20,
        ..StakingParams::default()
    })
}

/// The demo evaluators (for every domain), optimizers and the validator are staked
/// at genesis on the transfer chain; their keys are created here if new.
fn genesis_stakes(opts: &DevnetOptions, validator: &KeyPair) -> anyhow::Result<Vec<GenesisStake>> {
    let dir = &opts.data_dir;
    // `*`: every domain, including ones registered later with `wallet register-domain`.
    let domains = vec![ALL_DOMAINS.to_string()];
    let mut stakes = vec![GenesisStake {
        key: validator.public(),
        role: StakeRole::Validator,
        amount: Amount::from_doin(VALIDATOR_STAKE_DOIN)?,
        domains: Vec::new(),
    }];
    for i in 0..opts.evaluators {
        let k = load_or_create_key(&key_path(dir, &format!("evaluator-{i}")), true)?;
        stakes.push(GenesisStake {
            key: k.public(),
            role: StakeRole::Evaluator,
            amount: Amount::from_doin(EVALUATOR_STAKE_DOIN)?,
            domains: domains.clone(),
        });
    }
    for i in 0..opts.optimizers {
        let k = load_or_create_key(&key_path(dir, &format!("optimizer-{i}")), true)?;
        stakes.push(GenesisStake {
            key: k.public(),
            role: StakeRole::Optimizer,
            amount: Amount::from_doin(OPTIMIZER_STAKE_DOIN)?,
            domains: Vec::new(),
        });
    }
    Ok(stakes)
}

/// The main chain's genesis, evaluator and optimizer keys: created when the directory has no
/// `main-genesis.json` yet, loaded otherwise.
fn prepare_main(
    opts: &DevnetOptions,
    tx_spec: &GenesisSpec,
) -> anyhow::Result<(MainGenesisSpec, Vec<KeyPair>, Vec<KeyPair>)> {
    let dir = &opts.data_dir;
    let path = dir.join("main-genesis.json");
    if path.exists() {
        let spec = read_main_genesis(&path)?;
        let mut evaluators = Vec::new();
        for e in &spec.evaluators {
            let i = evaluators.len();
            let k = load_or_create_key(&key_path(dir, &format!("evaluator-{i}")), false)?;
            if k.public() != e.key {
                return Err(anyhow!(
                    "keys/evaluator-{i}.json does not match main-genesis.json"
                ));
            }
            evaluators.push(k);
        }
        let mut optimizers = Vec::new();
        for i in 0..spec.reputation.len() {
            optimizers.push(load_or_create_key(
                &key_path(dir, &format!("optimizer-{i}")),
                false,
            )?);
        }
        return Ok((spec, evaluators, optimizers));
    }
    let evaluators: Vec<KeyPair> = (0..opts.evaluators)
        .map(|i| load_or_create_key(&key_path(dir, &format!("evaluator-{i}")), true))
        .collect::<anyhow::Result<_>>()?;
    let optimizers: Vec<KeyPair> = (0..opts.optimizers)
        .map(|i| load_or_create_key(&key_path(dir, &format!("optimizer-{i}")), true))
        .collect::<anyhow::Result<_>>()?;
    let spec = main_genesis(
        tx_spec,
        opts.main_block_time_ms,
        &evaluators.iter().map(KeyPair::public).collect::<Vec<_>>(),
        &optimizers.iter().map(KeyPair::public).collect::<Vec<_>>(),
    )?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(&spec)?)?;
    std::fs::rename(&tmp, &path)?;
    Ok((spec, evaluators, optimizers))
}

/// A devnet main-chain genesis beside transfer genesis `tx_spec`: the built-in demo domains,
/// blocks aimed at every `block_time_ms`, `evaluators` verifying every domain (registered
/// later ones too) and `optimizers` starting with enough reputation for full credit.
pub fn main_genesis(
    tx_spec: &GenesisSpec,
    block_time_ms: u64,
    evaluators: &[doin_types::PublicKeyBytes],
    optimizers: &[doin_types::PublicKeyBytes],
) -> anyhow::Result<MainGenesisSpec> {
    let domains = demo_domains()?;
    let spec = MainGenesisSpec {
        network: Network::Devnet,
        chain_name: format!("{}-main", tx_spec.chain_name),
        genesis_time: tx_spec.genesis_time,
        params: MainParams {
            target_block_time_ms: block_time_ms,
            carrier_interval_ms: block_time_ms.saturating_mul(2),
            max_future_drift_ms: 15_000,
            initial_threshold: Fx::ONE,
            ..MainParams::public_defaults()
        },
        evaluators: evaluators
            .iter()
            .map(|k| EvaluatorEntry {
                key: *k,
                domains: domains.iter().map(|d| d.id.clone()).collect(),
                stake: Amount::from_base_units(doin_types::BASE_UNITS_PER_DOIN),
                all_domains: true,
            })
            .collect(),
        domains,
        reputation: optimizers
            .iter()
            .map(|k| InitialReputation {
                key: *k,
                value: Fx::from_int(10),
            })
            .collect(),
    };
    spec.validate()?;
    Ok(spec)
}

/// The built-in demo domains.
fn demo_domains() -> anyhow::Result<Vec<DomainSpec>> {
    let d = |id: &str,
             objective: Objective,
             dim: u32,
             scale: &str,
             baseline: &str|
     -> anyhow::Result<DomainSpec> {
        Ok(DomainSpec {
            id: DomainId::new(id)?,
            metric: "loss".into(),
            direction: Direction::Minimize,
            objective,
            dim,
            scale: Fx::parse(scale)?,
            weight: Fx::ONE,
            tolerance: Fx::parse("0.000001")?,
            baseline: Fx::parse(baseline)?,
            eval_budget: 100_000,
            // What the demo payer releases to an evaluator per agreeing vote (0.00025 DOIN).
            verification_fee: Amount::from_base_units(25_000),
        })
    };
    Ok(vec![
        d("sphere", Objective::Sphere, 6, "1", "200")?,
        d("rosenbrock", Objective::Rosenbrock, 4, "10", "50000")?,
        d("rastrigin", Objective::Rastrigin, 4, "1", "200")?,
        d(
            "least-squares",
            Objective::LeastSquares { samples: 128 },
            5,
            "0.1",
            "100",
        )?,
    ])
}

/// Prints where things are and how to use them.
pub fn print_banner(d: &Devnet, rest: SocketAddr) {
    let network = d.spec.network;
    let base = format!("http://{rest}");
    println!("DOIN devnet is running");
    println!("  REST API      {base}/v1/tx/info");
    println!("  API docs      {base}/docs   (OpenAPI: {base}/openapi.json)");
    println!("  main chain    {base}/v1/main/info   (domains: {base}/v1/main/domains)");
    println!("  events (SSE)  {base}/v1/events");
    println!("  channel hub   {base}/v1/hub/info   (channels: `doin hub channels`, the operator's token in hub.cookie)");
    if let Some(e) = d.evaluators.first() {
        println!(
            "  payments      {base}/v1/hub/payees/{}/events   (an evaluator's live micropayments, SSE, signed by the evaluator)",
            Address::new(network, e.public())
        );
        println!(
            "                watch them: doin hub --node {base} payments --follow --keystore {}",
            key_path(&d.config.data_dir, "evaluator-0").display()
        );
    }
    println!("  metrics       {base}/metrics");
    println!("  data dir      {}", d.config.data_dir.display());
    for f in &d.account_files {
        if let Ok(k) = KeyFile::read(f) {
            println!(
                "  account       {}  key file {}",
                Address::new(network, k.public_key),
                f.display()
            );
        }
    }
    if let Some(first) = d.account_files.first() {
        println!();
        println!(
            "Try:  doin wallet --node {base} --keystore {} balance",
            first.display()
        );
    }
    println!("Stop with Ctrl-C; run the same command again to continue this chain.");
}

/// The demo traffic task: transfers between demo accounts at a steady pace.
pub fn demo_traffic(keys: Vec<KeyPair>, interval: Duration) -> SideTask {
    Box::new(move |handles: Handles, mut shutdown| {
        Box::pin(async move {
            let Some(chain) = handles.tx else {
                return Ok(());
            };
            if keys.len() < 2 {
                return Ok(());
            }
            let keys = Arc::new(keys);
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = shutdown.changed() => return Ok(()),
                }
                let chain = chain.clone();
                let keys = keys.clone();
                let res = tokio::task::spawn_blocking(move || send_one(&chain, &keys))
                    .await
                    .map_err(|e| e.to_string())?;
                if let Err(e) = res {
                    tracing::debug!(error = %e, "demo transfer not accepted");
                }
            }
        })
    })
}

fn send_one(chain: &TxChain, keys: &[KeyPair]) -> anyhow::Result<()> {
    let mut rng = rand::thread_rng();
    let from = rng.gen_range(0..keys.len());
    let mut to = rng.gen_range(0..keys.len() - 1);
    if to >= from {
        to += 1;
    }
    let sender = &keys[from];
    let (nonce, _) = chain.next_nonce(&sender.public())?;
    let base = chain.next_base_fee();
    let tip = Amount::from_base_units(rng.gen_range(0..4));
    let body = TxBody {
        chain_id: chain.params().chain_id,
        sender: sender.public(),
        nonce,
        max_fee_per_weight: base.checked_mul(2)?.checked_add(tip)?,
        max_priority_fee_per_weight: tip,
        payload: TxPayload::Transfer {
            to: keys[to].public(),
            amount: Amount::from_base_units(rng.gen_range(1..100) * 1_000_000),
        },
    };
    let tx = doin_tx_core::Tx::from_signed(body.sign(sender)?)?;
    chain.submit(tx.bytes())?;
    Ok(())
}
