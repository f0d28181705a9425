//! `doin`: the DOIN node, devnet and wallet in one binary. `doin --help` lists the commands;
//! `docs/cli.md` documents them.

use anyhow::{anyhow, Context};
use clap::{Parser, Subcommand};
use doin_client::hub_cli::{self, HubArgs};
use doin_client::wallet::{self, WalletArgs};
use doin_node::config::NodeConfig;
use doin_node::devnet::{self, DevnetOptions};
use doin_node::run::{
    read_genesis, read_main_genesis, shutdown_signal, unlock_key, Node, NodeKeys,
};
use doin_node::snapshot_cli::{self, SnapshotCommand};
use doin_node::tasks::Exit;
use doin_telemetry::LogFormat;
use doin_tx_core::{Allocation, ConsensusParams, GenesisSpec, GenesisStake, StakeRole};
use doin_types::{Address, Amount, Network, Timestamp};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "doin",
    version,
    about = "DOIN: proof-of-optimization blockchain node, devnet and wallet"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a complete local network in one process (creates it on first start).
    Devnet(DevnetArgs),
    /// Run a node from a configuration file.
    Node(NodeArgs),
    /// Manage keys and send transfers through a node.
    Wallet(WalletArgs),
    /// The channel hub: channels, invoices, streams, payments, and its operator's calls.
    Hub(HubArgs),
    /// Create or inspect genesis specifications.
    Genesis {
        #[command(subcommand)]
        command: GenesisCommand,
    },
    /// Transfer-state snapshots: export from a stopped node, inspect, import into an empty one.
    Snapshot {
        #[command(subcommand)]
        command: SnapshotCommand,
    },
    /// The configuration a node would run with.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Every key of the effective configuration (defaults, then the file, then DOIN_*
    /// variables), each with where its value came from. Starts nothing.
    Show {
        /// The node's TOML configuration file.
        #[arg(long)]
        config: PathBuf,
        /// One JSON array of {key, value, source}.
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args, Debug)]
struct DevnetArgs {
    /// Directory for the devnet's genesis, keys and database.
    #[arg(long, default_value = "./devnet")]
    data_dir: PathBuf,
    /// REST listen address.
    #[arg(long, default_value = "127.0.0.1:8645")]
    listen: SocketAddr,
    /// Peer-to-peer listen multiaddress (port 0: any free port; the address is logged, so
    /// another `doin node` can bootstrap from this devnet).
    #[arg(long, default_value = "/ip4/127.0.0.1/tcp/0")]
    p2p_listen: String,
    /// Milliseconds between blocks (public networks use 30000).
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(100..))]
    block_time_ms: u64,
    /// Funded accounts for you to use (keys/account-N.json). Only used when creating.
    #[arg(long, default_value_t = 2)]
    accounts: usize,
    /// Accounts that send demo traffic (keys/demo-N.json). Only used when creating.
    #[arg(long, default_value_t = 4)]
    demo_accounts: usize,
    /// Do not send demo transfers.
    #[arg(long)]
    no_demo: bool,
    /// Milliseconds between demo transfers.
    #[arg(long, default_value_t = 700)]
    demo_interval_ms: u64,
    /// How the demo payer pays the demo evaluators: `fund` (each revealed optimae's fees in a
    /// verification fund the hub pays out once the decision is final), `ticks` (the payer
    /// pays each final agreeing vote itself, one split tick per decision) or `none` (left to
    /// a payer running `doin hub fund-reveals`).
    #[arg(long, value_enum, default_value_t = doin_node::hub_demo::EvaluatorPay::Fund)]
    evaluator_pay: doin_node::hub_demo::EvaluatorPay,
    /// Target milliseconds between main-chain blocks (public networks use 600000). Only used
    /// when creating; the threshold controller steers block times toward it.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(200..))]
    main_block_time_ms: u64,
    /// Demo evaluators run by the devnet (at least 3: a quorum). Only used when creating.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(3..=64))]
    evaluators: u64,
    /// Demo optimizers run by the devnet. Only used when creating.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(0..=16))]
    optimizers: u64,
    /// Do not run the demo evaluators and optimizers (no main-chain work then).
    #[arg(long)]
    no_main_workers: bool,
    /// External domain plugin for the demo workers, as NAME=COMMAND (the command is split at
    /// spaces), e.g. --plugin "py-quadratic=python3 mainchain/node/plugins/quadratic_plugin.py".
    /// Repeatable; give it again on every start.
    #[arg(long = "plugin", value_parser = parse_plugin)]
    plugins: Vec<doin_main_node::plugin::PluginSpec>,
    /// Log format: text or json.
    #[arg(long, default_value = "text")]
    log_format: String,
    /// Requests per second each client may make to the REST API (0: no limit), as
    /// `rest.rate_limit_per_second` of a node.
    #[arg(long, default_value_t = 50)]
    rate_limit_per_second: u32,
}

#[derive(clap::Args, Debug)]
struct NodeArgs {
    /// TOML configuration file (see docs/configuration.md). DOIN_* variables override it.
    #[arg(long)]
    config: PathBuf,
    /// Comma-separated services to run, overriding the file: `tx`, `main`, `hub` (the hub
    /// needs `tx` in the same node).
    #[arg(long, value_delimiter = ',')]
    chains: Option<Vec<String>>,
    /// Peer-to-peer listen multiaddresses, comma-separated, overriding `[p2p] listen`
    /// (e.g. `/ip4/0.0.0.0/tcp/8646,/ip4/0.0.0.0/udp/8646/quic-v1`).
    #[arg(long, value_delimiter = ',')]
    p2p_listen: Option<Vec<String>>,
    /// Bootstrap peers, comma-separated multiaddresses ending in `/p2p/<peer id>`, overriding
    /// `[p2p] bootstrap`.
    #[arg(long, value_delimiter = ',')]
    bootstrap: Option<Vec<String>>,
    /// Bootstrap an empty data directory from this snapshot file first (checked from the
    /// genesis file alone; needs `storage.prune = "pruned"`). Ignored once the directory holds
    /// a chain.
    #[arg(long)]
    snapshot: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum GenesisCommand {
    /// Write a new genesis specification.
    New {
        #[arg(long)]
        network: Network,
        /// Unique name of the chain.
        #[arg(long)]
        chain_name: String,
        /// Validator address (repeat for several).
        #[arg(long = "validator", required = true)]
        validators: Vec<String>,
        /// Initial balance as ADDRESS=DOIN (repeat).
        #[arg(long = "alloc")]
        allocations: Vec<String>,
        /// Target block time in milliseconds.
        #[arg(long, default_value_t = 30_000)]
        block_time_ms: u64,
        /// Validator stake bonded at genesis for each validator, in DOIN (default: the minimum
        /// validator stake). From the first epoch boundary on the set is the largest stakes,
        /// so an unstaked genesis validator would lose its seat.
        #[arg(long)]
        validator_stake: Option<String>,
        /// Blocks per validator epoch.
        #[arg(long, default_value_t = 2_880)]
        epoch_blocks: u64,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
    },
    /// Validate a genesis file and print its chain id.
    Show { file: PathBuf },
}

fn parse_plugin(s: &str) -> Result<doin_main_node::plugin::PluginSpec, String> {
    let (name, command) = s
        .split_once('=')
        .ok_or_else(|| "expected NAME=COMMAND".to_string())?;
    let command: Vec<String> = command.split_whitespace().map(String::from).collect();
    if name.is_empty() || command.is_empty() {
        return Err("expected NAME=COMMAND with a non-empty name and command".into());
    }
    Ok(doin_main_node::plugin::PluginSpec {
        name: name.to_string(),
        command,
        timeout_ms: 10_000,
    })
}

fn log_format(s: &str) -> anyhow::Result<LogFormat> {
    match s {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        other => Err(anyhow!("unknown log format {other:?} (text or json)")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Devnet(a) => run_devnet(a).await,
        Command::Node(a) => run_node(a).await,
        Command::Wallet(a) => {
            doin_telemetry::init_tracing(LogFormat::Text, "warn");
            wallet::run(a).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Hub(a) => {
            doin_telemetry::init_tracing(LogFormat::Text, "warn");
            hub_cli::run(a).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Genesis { command } => genesis(command).map(|_| ExitCode::SUCCESS),
        Command::Snapshot { command } => {
            doin_telemetry::init_tracing(LogFormat::Text, "warn");
            snapshot_cli::run(command)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Config {
            command: ConfigCommand::Show { config, json },
        } => {
            let settings =
                doin_node::config_show::settings(Some(&config)).map_err(|e| anyhow!(e))?;
            if json {
                println!("{}", doin_node::config_show::render_json(&settings));
            } else {
                print!("{}", doin_node::config_show::render_text(&settings));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn exit_code(exit: Exit) -> ExitCode {
    match exit {
        Exit::Requested => ExitCode::SUCCESS,
        Exit::CriticalFailure(reason) => {
            eprintln!("error: {reason}");
            ExitCode::FAILURE
        }
    }
}

async fn run_devnet(a: DevnetArgs) -> anyhow::Result<ExitCode> {
    doin_telemetry::init_tracing(
        log_format(&a.log_format)?,
        "info,arc_malachitebft=warn,arc_malachitebft_network=off",
    );
    let opts = DevnetOptions {
        data_dir: a.data_dir,
        listen: a.listen,
        p2p_listen: a.p2p_listen,
        block_time_ms: a.block_time_ms,
        accounts: a.accounts,
        demo_accounts: a.demo_accounts,
        demo: !a.no_demo,
        demo_interval_ms: a.demo_interval_ms.max(10),
        main_block_time_ms: a.main_block_time_ms,
        evaluators: a.evaluators as usize,
        optimizers: a.optimizers as usize,
    };
    let d =
        tokio::task::spawn_blocking(move || devnet::prepare(&opts).map(|d| (d, opts))).await??;
    let (mut d, opts) = d;
    d.config.main.plugins = a.plugins.clone();
    d.config.rest.rate_limit_per_second = a.rate_limit_per_second;
    d.config.validate().map_err(|e| anyhow!(e))?;
    let mut side = Vec::new();
    if opts.demo {
        let demo_keys = d
            .demo_keys
            .iter()
            .filter_map(|k| doin_crypto::KeyPair::from_secret_bytes(&k.secret_bytes()).ok())
            .collect();
        side.push((
            "demo traffic",
            devnet::demo_traffic(
                demo_keys,
                std::time::Duration::from_millis(opts.demo_interval_ms),
            ),
        ));
        let payees = d
            .evaluators
            .iter()
            .filter_map(|k| doin_crypto::KeyPair::from_secret_bytes(&k.secret_bytes()).ok())
            .collect();
        side.push((
            "hub demo",
            doin_node::hub_demo::hub_demo(
                doin_crypto::KeyPair::from_secret_bytes(&d.payer.secret_bytes())
                    .map_err(|e| anyhow!("key: {e}"))?,
                payees,
                d.config.data_dir.clone(),
                std::time::Duration::from_millis(opts.demo_interval_ms.max(200)),
                a.evaluator_pay,
            ),
        ));
    }
    let copy = |k: &doin_crypto::KeyPair| {
        doin_crypto::KeyPair::from_secret_bytes(&k.secret_bytes()).map_err(|e| anyhow!("key: {e}"))
    };
    let workers = !a.no_main_workers;
    let keys = NodeKeys {
        tx_producer: Some(copy(&d.validator)?),
        main_producer: Some(copy(&d.validator)?),
        evaluators: if workers {
            d.evaluators
                .iter()
                .map(copy)
                .collect::<anyhow::Result<_>>()?
        } else {
            Vec::new()
        },
        optimizers: if workers {
            d.optimizers
                .iter()
                .map(copy)
                .collect::<anyhow::Result<_>>()?
        } else {
            Vec::new()
        },
        hub: Some(copy(&d.hub)?),
    };
    let node = Node::start(
        &d.config,
        Some(d.spec.clone()),
        Some(d.main_spec.clone()),
        keys,
        side,
    )
    .await?;
    devnet::print_banner(&d, node.rest_addr);
    Ok(exit_code(node.run_until(shutdown_signal()).await))
}

async fn run_node(a: NodeArgs) -> anyhow::Result<ExitCode> {
    let mut cfg = NodeConfig::load(Some(&a.config)).map_err(|e| anyhow!(e))?;
    if let Some(chains) = a.chains {
        cfg.chains = chains;
    }
    if let Some(listen) = a.p2p_listen {
        cfg.p2p.listen = listen;
    }
    if let Some(bootstrap) = a.bootstrap {
        cfg.p2p.bootstrap = bootstrap;
    }
    cfg.validate().map_err(|e| anyhow!(e))?;
    doin_telemetry::init_tracing(log_format(&cfg.log.format)?, &cfg.log.filter);
    if let Some(file) = &a.snapshot {
        let (cfg, file) = (cfg.clone(), file.clone());
        tokio::task::spawn_blocking(move || snapshot_cli::bootstrap(&cfg, &file)).await??;
    }
    let spec = if cfg.runs("tx") {
        Some(read_genesis(&cfg.genesis_file)?)
    } else {
        None
    };
    let main_spec = if cfg.runs("main") {
        Some(read_main_genesis(&cfg.main.genesis_file)?)
    } else {
        None
    };
    // The network the genesis files name (`validate` keeps the chains' networks alike).
    let network = spec
        .as_ref()
        .map(|s| s.network)
        .or(main_spec.as_ref().map(|m| m.network))
        .ok_or_else(|| anyhow!("no genesis file read: the node runs no chain"))?;
    let mut keys = NodeKeys::default();
    if cfg.producer.enabled && cfg.runs("tx") {
        let ks = cfg
            .producer
            .keystore
            .clone()
            .ok_or_else(|| anyhow!("producer.enabled needs producer.keystore"))?;
        keys.tx_producer = Some(unlock_key(
            &ks,
            cfg.producer.password_file.as_deref(),
            "DOIN_VALIDATOR_PASSWORD",
            network,
        )?);
    }
    if cfg.runs("main") {
        let m = &cfg.main;
        let unlock =
            |p: &PathBuf| unlock_key(p, m.password_file.as_deref(), "DOIN_MAIN_PASSWORD", network);
        keys.main_producer = m.producer_keystore.as_ref().map(unlock).transpose()?;
        keys.evaluators = m
            .evaluator_keystores
            .iter()
            .map(unlock)
            .collect::<anyhow::Result<_>>()?;
        keys.optimizers = m
            .optimizer_keystores
            .iter()
            .map(unlock)
            .collect::<anyhow::Result<_>>()?;
    }
    if cfg.runs("hub") {
        let ks = cfg
            .hub
            .keystore
            .clone()
            .ok_or_else(|| anyhow!("the hub needs [hub] keystore"))?;
        keys.hub = Some(unlock_key(
            &ks,
            cfg.hub.password_file.as_deref(),
            "DOIN_HUB_PASSWORD",
            network,
        )?);
    }
    let node = Node::start(&cfg, spec, main_spec, keys, Vec::new()).await?;
    Ok(exit_code(node.run_until(shutdown_signal()).await))
}

fn genesis(cmd: GenesisCommand) -> anyhow::Result<()> {
    match cmd {
        GenesisCommand::New {
            network,
            chain_name,
            validators,
            allocations,
            block_time_ms,
            validator_stake,
            epoch_blocks,
            out,
        } => {
            let validators = validators
                .iter()
                .map(|v| Address::parse(v, network).map(|a| a.key))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| anyhow!("--validator: {e}"))?;
            let mut allocs = Vec::new();
            for a in &allocations {
                let (addr, amount) = a
                    .split_once('=')
                    .ok_or_else(|| anyhow!("--alloc {a:?}: expected ADDRESS=DOIN"))?;
                allocs.push(Allocation {
                    key: Address::parse(addr, network)
                        .map_err(|e| anyhow!("--alloc {a:?}: {e}"))?
                        .key,
                    amount: Amount::parse_doin(amount)
                        .map_err(|e| anyhow!("--alloc {a:?}: {e}"))?,
                });
            }
            let params = ConsensusParams {
                target_block_time_ms: block_time_ms,
                epoch_blocks,
                ..ConsensusParams::public_defaults()
            };
            let stake = match &validator_stake {
                Some(s) => {
                    Amount::parse_doin(s).map_err(|e| anyhow!("--validator-stake {s:?}: {e}"))?
                }
                None => params.staking.min_validator_stake,
            };
            if stake < params.staking.min_validator_stake {
                return Err(anyhow!(
                    "--validator-stake must be at least the minimum validator stake, {} DOIN",
                    params.staking.min_validator_stake.to_doin_string()
                ));
            }
            let stakes = validators
                .iter()
                .map(|key| GenesisStake {
                    key: *key,
                    role: StakeRole::Validator,
                    amount: stake,
                    domains: Vec::new(),
                })
                .collect();
            let spec = GenesisSpec {
                stakes,
                network,
                chain_name,
                genesis_time: Timestamp(doin_tx_node::now_ms()),
                params,
                validators,
                allocations: allocs,
            };
            spec.validate()?;
            if out.exists() {
                return Err(anyhow!(
                    "{} exists; refusing to overwrite it",
                    out.display()
                ));
            }
            std::fs::write(&out, serde_json::to_string_pretty(&spec)?)
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!("wrote {} (chain id {})", out.display(), spec.chain_id()?);
        }
        GenesisCommand::Show { file } => {
            let spec = read_genesis(&file)?;
            println!("network     {}", spec.network);
            println!("chain name  {}", spec.chain_name);
            println!("chain id    {}", spec.chain_id()?);
            println!("validators  {}", spec.validators.len());
            println!("epoch       {} blocks", spec.params.epoch_blocks);
            println!("supply      {} DOIN", spec.total_supply()?.to_doin_string());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every command's arguments are well formed (clap checks duplicates and conflicts only
    /// when a command is run; this runs them all).
    #[test]
    fn every_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
