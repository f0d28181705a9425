//! `doin devnet`: a complete local network in one process.
//!
//! On first start it creates, in the data directory: a genesis specification with a random chain
//! name (so every devnet is its own chain), a validator key, funded user accounts
//! (`keys/account-N.json`) and demo accounts (`keys/demo-N.json`), all as clearly labelled
//! plaintext devnet key files. Later starts reuse them, so a restarted devnet continues its
//! chain. The demo task sends transfers between the demo accounts so blocks have content; the
//! user accounts are left alone for the wallet.

use crate::config::NodeConfig;
use crate::run::{read_genesis, SideTask};
use anyhow::{anyhow, Context};
use doin_crypto::keystore::KeyFile;
use doin_crypto::KeyPair;
use doin_tx_core::{Allocation, ConsensusParams, GenesisSpec, TxBody, TxPayload};
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
    pub block_time_ms: u64,
    pub accounts: usize,
    pub demo_accounts: usize,
    pub demo: bool,
    /// Milliseconds between demo transfers.
    pub demo_interval_ms: u64,
}

/// Everything the devnet node needs.
pub struct Devnet {
    pub config: NodeConfig,
    pub spec: GenesisSpec,
    pub validator: KeyPair,
    pub demo_keys: Vec<KeyPair>,
    pub account_files: Vec<PathBuf>,
    pub created: bool,
}

const ACCOUNT_BALANCE_DOIN: u64 = 1_000_000;

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
            network: Network::Devnet,
            chain_name: format!("doin-devnet-{}", hex::encode(suffix)),
            genesis_time: Timestamp(now_ms()),
            params: ConsensusParams {
                target_block_time_ms: opts.block_time_ms,
                ..ConsensusParams::public_defaults()
            },
            validators: vec![validator.public()],
            allocations: accounts
                .iter()
                .chain(demo_keys.iter())
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
    let mut config = NodeConfig {
        data_dir: dir.clone(),
        genesis_file: genesis_path,
        ..NodeConfig::default()
    };
    config.rest.listen = opts.listen;
    config.producer.enabled = true;
    config.producer.keystore = Some(key_path(dir, "validator"));
    config.producer.block_time_ms = Some(opts.block_time_ms);
    Ok(Devnet {
        config,
        spec,
        validator,
        demo_keys,
        account_files,
        created,
    })
}

/// Prints where things are and how to use them.
pub fn print_banner(d: &Devnet, rest: SocketAddr) {
    let network = d.spec.network;
    let base = format!("http://{rest}");
    println!("DOIN devnet is running");
    println!("  REST API      {base}/v1/tx/info");
    println!("  API docs      {base}/docs   (OpenAPI: {base}/openapi.json)");
    println!("  events (SSE)  {base}/v1/events");
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
    Box::new(move |chain: Arc<TxChain>, mut shutdown| {
        Box::pin(async move {
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
