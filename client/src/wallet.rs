//! `doin wallet …`: key files and transfers against a node's REST API.
//!
//! Keys never leave this process: transactions are built and signed here and only the signed
//! bytes are sent. The node is asked for the chain id, the next nonce and the fee level.

use crate::http::{json, Client, ClientError};
use anyhow::{anyhow, bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use doin_api::mainchain::{DomainView, MainInfo, MessageResponse};
use doin_api::tx::{PayloadView, StakesView, SubmitResponse, TxView};
use doin_crypto::keystore::{KeyFile, DEFAULT_SCRYPT_LOG_N};
use doin_crypto::KeyPair;
use doin_tx_core::{StakeRole, Tx, TxBody, TxPayload};
use doin_types::{Address, Amount, ChainId, Network};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct WalletArgs {
    #[command(flatten)]
    pub opts: WalletOpts,
    #[command(subcommand)]
    pub command: WalletCommand,
}

/// The node, key file and output options every wallet (and `doin hub`) command shares.
#[derive(Args, Debug, Clone)]
pub struct WalletOpts {
    /// Node REST URL.
    #[arg(
        long,
        env = "DOIN_NODE",
        default_value = "http://127.0.0.1:8645",
        global = true
    )]
    pub node: String,
    /// Key file (created by `wallet new`, or a devnet key file).
    #[arg(long, env = "DOIN_KEYSTORE", global = true)]
    pub keystore: Option<PathBuf>,
    /// File holding the key file's password (else DOIN_WALLET_PASSWORD, else a prompt).
    #[arg(long, global = true)]
    pub password_file: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum WalletCommand {
    /// Create a new encrypted key file.
    New,
    /// Print this wallet's address.
    Address {
        /// Network of the address; asked from the node when omitted.
        #[arg(long)]
        network: Option<Network>,
    },
    /// Show the balance and nonce of this wallet or of ADDRESS.
    Balance {
        /// Any address of the node's network (default: this wallet).
        address: Option<String>,
    },
    /// Send DOIN to an address.
    Send(SendArgs),
    /// Bond DOIN to a role (validator, evaluator for domains, optimizer).
    Stake(StakeArgs),
    /// Start unbonding part of a stake; withdraw it after the unbonding period.
    Unstake(UnstakeArgs),
    /// Return unbonded coins of a stake to the balance (after the unbonding period).
    Withdraw(WithdrawArgs),
    /// Show the stakes of this wallet or of ADDRESS.
    Stakes {
        /// Any address of the node's network (default: this wallet).
        address: Option<String>,
    },
    /// Show a transaction's status and confirmations.
    Tx {
        /// Transaction id (hex).
        id: String,
    },
    /// Fetch a transaction's inclusion proof (JSON) from the node, to keep or pass on.
    Proof {
        /// Transaction id (hex).
        id: String,
        /// Write the proof to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Fetch the proof that a main block is anchored by the transfer chain.
    MainProof {
        /// Main-chain height.
        height: u64,
        /// Write the proof to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check a proof offline: a transaction's inclusion in a final transfer block (its commit
    /// certificate holds under its epoch's validators, traced from the genesis validators), or
    /// a main block's anchoring by such a block. Needs no node; exits non-zero if the proof
    /// fails.
    VerifyProof {
        /// Proof file written by `wallet proof` / `wallet main-proof` (or the JSON of
        /// GET /v1/anchors/...); `-` reads standard input.
        file: PathBuf,
        /// Genesis file of the transfer chain (chain id, validators and epoch length are taken
        /// from it).
        #[arg(long)]
        genesis: PathBuf,
        /// Main-chain genesis file: also checks the main headers' chain id.
        #[arg(long)]
        main_genesis: Option<PathBuf>,
    },
    /// Register an optimization domain on the main chain, sponsored (signed) by this key.
    RegisterDomain {
        /// Domain specification (JSON, see docs/mainchain.md), e.g.
        /// mainchain/node/plugins/py-quadratic.domain.json.
        #[arg(long)]
        spec: PathBuf,
        /// Wait until the domain is on chain.
        #[arg(long)]
        wait: bool,
        /// Give up waiting after this many seconds.
        #[arg(long, default_value_t = 120)]
        wait_secs: u64,
    },
}

#[derive(Copy, Clone, Debug, ValueEnum)]
pub enum FeeLevel {
    Slow,
    Standard,
    Fast,
}

#[derive(Args, Debug)]
pub struct SendArgs {
    /// Recipient address.
    #[arg(long)]
    pub to: String,
    #[command(flatten)]
    pub amount: AmountArgs,
    #[command(flatten)]
    pub opts: TxOptions,
}

/// An amount, in DOIN or in base units.
#[derive(Args, Debug)]
pub struct AmountArgs {
    /// Amount in DOIN, e.g. 1.5 (at most 8 decimals).
    #[arg(
        long,
        conflicts_with = "amount_base_units",
        required_unless_present = "amount_base_units"
    )]
    pub amount: Option<String>,
    /// Amount in base units (1 DOIN = 100000000).
    #[arg(long)]
    pub amount_base_units: Option<String>,
}

impl AmountArgs {
    fn parse(&self) -> anyhow::Result<Amount> {
        match (&self.amount, &self.amount_base_units) {
            (Some(a), _) => Amount::parse_doin(a).map_err(|e| anyhow!("--amount: {e}")),
            (None, Some(b)) => {
                Amount::parse_base_units(b).map_err(|e| anyhow!("--amount-base-units: {e}"))
            }
            (None, None) => bail!("give --amount or --amount-base-units"),
        }
    }
}

/// Fee, nonce and waiting options of every command that signs a transaction.
#[derive(Args, Debug, Clone)]
pub struct TxOptions {
    /// Fee level from the node's estimate.
    #[arg(long, value_enum, default_value = "standard")]
    pub fee: FeeLevel,
    /// Explicit max fee per weight unit (base units); overrides the estimate.
    #[arg(long)]
    pub max_fee_per_weight: Option<u64>,
    /// Explicit max tip per weight unit (base units); overrides the estimate.
    #[arg(long)]
    pub max_priority_fee_per_weight: Option<u64>,
    /// Explicit nonce (e.g. to replace a pending transaction); default: the next free one.
    #[arg(long)]
    pub nonce: Option<u64>,
    /// Wait until the transaction is final (or until --wait-secs pass).
    #[arg(long)]
    pub wait: bool,
    #[arg(long, default_value_t = 120)]
    pub wait_secs: u64,
}

impl Default for TxOptions {
    fn default() -> Self {
        TxOptions {
            fee: FeeLevel::Standard,
            max_fee_per_weight: None,
            max_priority_fee_per_weight: None,
            nonce: None,
            wait: false,
            wait_secs: 120,
        }
    }
}

/// `wallet stake`.
#[derive(Args, Debug)]
pub struct StakeArgs {
    /// validator, evaluator or optimizer.
    #[arg(long)]
    pub role: StakeRole,
    #[command(flatten)]
    pub amount: AmountArgs,
    /// Evaluators: the domains to verify, comma-separated (e.g. sphere,rastrigin); omitted on a
    /// later stake, the earlier list stays.
    #[arg(long, value_delimiter = ',')]
    pub domains: Vec<String>,
    #[command(flatten)]
    pub opts: TxOptions,
}

/// `wallet unstake`.
#[derive(Args, Debug)]
pub struct UnstakeArgs {
    #[arg(long)]
    pub role: StakeRole,
    #[command(flatten)]
    pub amount: AmountArgs,
    #[command(flatten)]
    pub opts: TxOptions,
}

/// `wallet withdraw`.
#[derive(Args, Debug)]
pub struct WithdrawArgs {
    #[arg(long)]
    pub role: StakeRole,
    #[command(flatten)]
    pub opts: TxOptions,
}

fn default_keystore() -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| ".".into());
    home.join(".doin").join("wallet.json")
}

fn read_password(args: &WalletOpts, confirm: bool) -> anyhow::Result<String> {
    if let Some(p) = &args.password_file {
        let s = std::fs::read_to_string(p)
            .with_context(|| format!("cannot read password file {}", p.display()))?;
        return Ok(s.trim_end_matches(['\n', '\r']).to_string());
    }
    if let Ok(p) = std::env::var("DOIN_WALLET_PASSWORD") {
        return Ok(p);
    }
    let p = rpassword::prompt_password("Key file password: ").context(
        "no password: use --password-file or DOIN_WALLET_PASSWORD when not on a terminal",
    )?;
    if confirm {
        let again = rpassword::prompt_password("Repeat password: ")?;
        if again != p {
            bail!("the passwords differ");
        }
    }
    Ok(p)
}

fn keystore_path(args: &WalletOpts) -> PathBuf {
    args.keystore.clone().unwrap_or_else(default_keystore)
}

pub(crate) fn load_key(args: &WalletOpts) -> anyhow::Result<KeyPair> {
    let path = keystore_path(args);
    let file = KeyFile::read(&path).with_context(|| {
        format!(
            "no usable key file at {} (create one with `doin wallet new`)",
            path.display()
        )
    })?;
    if file.is_encrypted() {
        let pw = read_password(args, false)?;
        Ok(file.unlock(Some(pw.as_bytes()))?)
    } else {
        Ok(file.unlock(None)?)
    }
}

fn public_of(args: &WalletOpts) -> anyhow::Result<doin_types::PublicKeyBytes> {
    Ok(KeyFile::read(&keystore_path(args))?.public_key)
}

pub(crate) fn show_amount(a: Amount) -> String {
    format!("{} DOIN ({} base units)", a.to_doin_string(), a)
}

async fn network_of(client: &Client) -> anyhow::Result<Network> {
    let info = client.info().await?;
    info.network
        .parse()
        .map_err(|e: String| anyhow!("node reports an unknown network: {e}"))
}

async fn register_domain(
    args: &WalletOpts,
    client: &Client,
    spec_path: &Path,
    wait: bool,
    wait_secs: u64,
) -> anyhow::Result<()> {
    use doin_main_core::{DomainRegister, DomainSpec, Signed};
    let text = std::fs::read_to_string(spec_path)
        .with_context(|| format!("cannot read {}", spec_path.display()))?;
    let spec: DomainSpec = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a domain specification", spec_path.display()))?;
    spec.validate()
        .map_err(|e| anyhow!("{}: {e}", spec_path.display()))?;
    let info: MainInfo = client.get("/v1/main/info").await?;
    let chain_id: ChainId = info
        .chain_id
        .parse()
        .map_err(|e| anyhow!("the node reports an invalid main chain id: {e}"))?;
    let key = load_key(args)?;
    let id = spec.id.clone();
    let msg = Signed::sign(
        DomainRegister {
            chain_id,
            sponsor: key.public(),
            spec,
        },
        &key,
    )?;
    let bytes = doin_codec::encode(&msg)?;
    let request = doin_api::mainchain::MessageRequest {
        message: hex::encode(bytes),
    };
    let (_, answer): (u16, MessageResponse) = client.post("/v1/main/domains", &request).await?;
    if wait {
        let deadline = Instant::now() + Duration::from_secs(wait_secs);
        loop {
            match client
                .get::<DomainView>(&format!("/v1/main/domains/{id}"))
                .await
            {
                Ok(d) => {
                    if args.json {
                        println!("{}", json(&d));
                    } else {
                        println!(
                            "domain {id} is on chain since main block {}",
                            d.registered_at
                        );
                    }
                    return Ok(());
                }
                Err(ClientError::Problem { status: 404, .. }) => {}
                Err(e) => return Err(e.into()),
            }
            if Instant::now() > deadline {
                bail!("domain {id} is not on chain after {wait_secs} s (it is pooled; a main block will carry it)");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    if args.json {
        println!("{}", json(&answer));
    } else {
        println!(
            "domain {id} submitted ({}); registration id {}",
            answer.status, answer.id
        );
    }
    Ok(())
}

pub async fn run(wallet: WalletArgs) -> anyhow::Result<()> {
    let args = &wallet.opts;
    let client = Client::new(&args.node)?;
    match &wallet.command {
        WalletCommand::RegisterDomain {
            spec,
            wait,
            wait_secs,
        } => {
            register_domain(args, &client, spec, *wait, *wait_secs).await?;
        }
        WalletCommand::New => {
            let path = keystore_path(args);
            if path.exists() {
                bail!(
                    "{} already exists; refusing to overwrite a key",
                    path.display()
                );
            }
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let pw = read_password(args, true)?;
            if pw.len() < 8 {
                bail!("use a password of at least 8 characters");
            }
            let key = KeyPair::generate();
            KeyFile::encrypt(&key, pw.as_bytes(), DEFAULT_SCRYPT_LOG_N)?.write_new(&path)?;
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({"keystore": path, "public_key": key.public().to_hex()})
                );
            } else {
                println!("created {}", path.display());
                println!("public key {}", key.public());
                println!(
                    "show the address with `doin wallet --keystore {} address`",
                    path.display()
                );
            }
        }
        WalletCommand::Address { network } => {
            let key = public_of(args)?;
            let network = match network {
                Some(n) => *n,
                None => network_of(&client).await.context(
                    "cannot ask the node for its network; pass --network devnet|testnet|mainnet",
                )?,
            };
            let a = Address::new(network, key);
            if args.json {
                println!("{}", serde_json::json!({ "address": a.to_string() }));
            } else {
                println!("{a}");
            }
        }
        WalletCommand::Balance { address } => {
            let addr = match address {
                Some(a) => a.clone(),
                None => Address::new(network_of(&client).await?, public_of(args)?).to_string(),
            };
            let acct = client.account(&addr).await?;
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "address": acct.address, "balance": acct.balance.to_string(),
                        "nonce": acct.nonce, "next_nonce": acct.next_nonce,
                        "pending": acct.pending, "height": acct.height
                    })
                );
            } else {
                println!("address  {}", acct.address);
                println!("balance  {}", show_amount(acct.balance));
                println!(
                    "nonce    {} (next {}; {} pending)",
                    acct.nonce, acct.next_nonce, acct.pending
                );
                println!("at height {}", acct.height);
            }
        }
        WalletCommand::Send(s) => send(args, &client, s).await?,
        WalletCommand::Stake(s) => {
            let payload = TxPayload::Stake {
                role: s.role,
                amount: s.amount.parse()?,
                domains: s.domains.clone(),
            };
            submit_payload(args, &client, payload, &s.opts).await?
        }
        WalletCommand::Unstake(s) => {
            let payload = TxPayload::Unstake {
                role: s.role,
                amount: s.amount.parse()?,
            };
            submit_payload(args, &client, payload, &s.opts).await?
        }
        WalletCommand::Withdraw(s) => {
            let payload = TxPayload::Withdraw { role: s.role };
            submit_payload(args, &client, payload, &s.opts).await?
        }
        WalletCommand::Stakes { address } => {
            let address = match address {
                Some(a) => a.clone(),
                None => {
                    let network = network_of(&client).await?;
                    Address::new(network, public_of(args)?).to_string()
                }
            };
            let v: StakesView = client
                .get(&format!("/v1/tx/accounts/{address}/stakes"))
                .await?;
            if args.json {
                println!("{}", json(&v));
            } else {
                if v.stakes.is_empty() {
                    println!("{address} has no stakes");
                }
                let doin = |a: Amount| format!("{} DOIN", a.to_doin_string());
                for st in &v.stakes {
                    let mut line = format!("{:<10} bonded {}", st.role, doin(st.bonded));
                    if !st.unbonding.is_zero() {
                        line.push_str(&format!(
                            ", unbonding {} (withdrawable from height {})",
                            doin(st.unbonding),
                            st.unbonding_until
                        ));
                    }
                    if !st.domains.is_empty() {
                        line.push_str(&format!(", domains {}", st.domains.join(",")));
                    }
                    println!("{line}");
                }
            }
        }
        WalletCommand::Proof { id, out } => {
            let mut proof: serde_json::Value = client.get(&format!("/v1/anchors/tx/{id}")).await?;
            // Once a main block checkpoints the transaction's block, the proof also carries
            // that leg (from a node that runs both chains).
            if proof["status"] == "anchored" {
                if let Some(h) = proof["height"].as_u64() {
                    if let Ok(leg) = client
                        .get::<serde_json::Value>(&format!("/v1/anchors/checkpoint/{h}"))
                        .await
                    {
                        proof["checkpoint"] = leg;
                    }
                }
            }
            write_proof(args, &proof, out.as_deref())?;
        }
        WalletCommand::MainProof { height, out } => {
            let proof: serde_json::Value =
                client.get(&format!("/v1/anchors/main/{height}")).await?;
            write_proof(args, &proof, out.as_deref())?;
        }
        WalletCommand::VerifyProof {
            file,
            genesis,
            main_genesis,
        } => {
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(file)
                    .with_context(|| format!("cannot read {}", file.display()))?
            };
            let spec = crate::genesis::read_genesis(genesis)?;
            let main_chain = match main_genesis {
                Some(p) => Some(crate::genesis::read_main_genesis(p)?.chain_id()?),
                None => None,
            };
            match crate::proofcheck::verify_any_proof_json(&text, &spec, main_chain.as_ref())? {
                crate::proofcheck::Proven::Inclusion(proven, leg) => {
                    if args.json {
                        println!(
                            "{}",
                            serde_json::json!({
                                "valid": true,
                                "tx_id": proven.tx_id.to_hex(),
                                "height": proven.height,
                                "block_hash": proven.block_hash.to_hex(),
                                "proposer": proven.proposer.to_hex(),
                                "checkpointed_by": leg.as_ref().map(|l| serde_json::json!({
                                    "main_height": l.main_height,
                                    "main_hash": l.main_hash.to_hex(),
                                })),
                            })
                        );
                    } else {
                        println!(
                            "valid: transaction {} is in final block {} ({}) proposed by validator {}",
                            proven.tx_id, proven.height, proven.block_hash, proven.proposer
                        );
                        if let Some(l) = leg {
                            println!(
                                "       and main block {} ({}) checkpoints that block",
                                l.main_height, l.main_hash
                            );
                        }
                    }
                }
                crate::proofcheck::Proven::Anchor(proven) => {
                    if args.json {
                        println!(
                            "{}",
                            serde_json::json!({
                                "valid": true,
                                "main_height": proven.main_height,
                                "main_hash": proven.main_hash.to_hex(),
                                "tx_height": proven.tx_height,
                                "tx_block_hash": proven.tx_block_hash.to_hex(),
                            })
                        );
                    } else {
                        println!(
                            "valid: main block {} ({}) is anchored by transfer block {} ({})",
                            proven.main_height,
                            proven.main_hash,
                            proven.tx_height,
                            proven.tx_block_hash
                        );
                    }
                }
            }
        }
        WalletCommand::Tx { id } => {
            let tx = client.tx(id).await?;
            if args.json {
                println!("{}", json(&tx));
            } else {
                print_tx(&tx);
            }
        }
    }
    Ok(())
}

fn print_tx(tx: &TxView) {
    println!("id             {}", tx.id);
    println!("status         {}", tx.status);
    println!("confirmations  {}", tx.confirmations);
    if let Some(h) = tx.block_height {
        println!(
            "block          {h} ({})",
            tx.block_hash.as_deref().unwrap_or_default()
        );
    }
    println!("from           {} (nonce {})", tx.sender, tx.nonce);
    let (to, amount) = match &tx.payload {
        PayloadView::Transfer { to, amount } => (to.as_str(), Some(*amount)),
        PayloadView::Stake { amount, .. } | PayloadView::Unstake { amount, .. } => {
            ("", Some(*amount))
        }
        _ => ("", None),
    };
    println!("to             {to}");
    if let Some(a) = amount {
        println!("amount         {}", show_amount(a));
    }
    if let Some(fee) = &tx.fee_paid {
        println!("fee paid       {}", show_amount(fee.total));
    }
}

pub(crate) async fn chain_of(client: &Client) -> anyhow::Result<(Network, ChainId)> {
    let info = client.info().await?;
    let network: Network = info
        .network
        .parse()
        .map_err(|e: String| anyhow!("node reports an unknown network: {e}"))?;
    let chain_id: ChainId = info
        .chain_id
        .parse()
        .map_err(|e| anyhow!("node reports a malformed chain id: {e}"))?;
    Ok((network, chain_id))
}

async fn send(args: &WalletOpts, client: &Client, s: &SendArgs) -> anyhow::Result<()> {
    let network = network_of(client).await?;
    let to = Address::parse(&s.to, network).map_err(|e| anyhow!("--to: {e}"))?;
    let amount = s.amount.parse()?;
    submit_payload(
        args,
        client,
        TxPayload::Transfer { to: to.key, amount },
        &s.opts,
    )
    .await
}

/// Signs `payload` with this wallet's key (fees from the node's estimate unless given), checks
/// the balance, submits it and optionally waits until it is final.
async fn submit_payload(
    args: &WalletOpts,
    client: &Client,
    payload: TxPayload,
    s: &TxOptions,
) -> anyhow::Result<()> {
    let key = load_key(args)?;
    let tx = sign_payload(client, &key, payload, s).await?;
    let (_, sub) = match client.submit(tx.bytes()).await {
        Ok(x) => x,
        Err(e @ ClientError::Problem { .. }) => {
            return Err(anyhow!("the node refused the transaction: {e}"))
        }
        Err(e) => return Err(e.into()),
    };
    report_submitted(args, client, &sub, s).await
}

/// Builds and signs `payload` from `key` (fees from the node's estimate unless given, the
/// next free nonce unless given) and checks the balance covers its maximum cost.
pub(crate) async fn sign_payload(
    client: &Client,
    key: &KeyPair,
    payload: TxPayload,
    s: &TxOptions,
) -> anyhow::Result<Tx> {
    let (network, chain_id) = chain_of(client).await?;
    let me = Address::new(network, key.public());
    let acct = client.account(&me.to_string()).await?;
    let fees = client.fees().await?;
    let level = match s.fee {
        FeeLevel::Slow => &fees.slow,
        FeeLevel::Standard => &fees.standard,
        FeeLevel::Fast => &fees.fast,
    };
    let tip = s
        .max_priority_fee_per_weight
        .map(Amount::from_base_units)
        .unwrap_or(level.max_priority_fee_per_weight);
    let max_fee = s
        .max_fee_per_weight
        .map(Amount::from_base_units)
        .unwrap_or(level.max_fee_per_weight.max(tip));
    let body = TxBody {
        chain_id,
        sender: key.public(),
        nonce: s.nonce.unwrap_or(acct.next_nonce),
        max_fee_per_weight: max_fee,
        max_priority_fee_per_weight: tip,
        payload,
    };
    let tx = Tx::from_signed(body.sign(key)?)?;
    let max_cost = tx.max_cost()?;
    if max_cost > acct.balance {
        bail!(
            "balance {} is short of amount plus maximum fee {}",
            show_amount(acct.balance),
            show_amount(max_cost)
        );
    }
    Ok(tx)
}

/// Prints what the node said of a submitted transaction; with `--wait`, waits until final.
pub(crate) async fn report_submitted(
    args: &WalletOpts,
    client: &Client,
    sub: &SubmitResponse,
    s: &TxOptions,
) -> anyhow::Result<()> {
    if !args.json {
        println!("submitted {} ({})", sub.id, sub.status);
        if let Some(r) = &sub.replaced {
            println!("replaced pending transaction {r}");
        }
    }
    if s.wait {
        let final_tx = wait_final(client, &sub.id, Duration::from_secs(s.wait_secs)).await?;
        if args.json {
            println!("{}", json(&final_tx));
        } else {
            print_tx(&final_tx);
        }
    } else if args.json {
        println!("{}", json(sub));
    }
    Ok(())
}

async fn wait_final(client: &Client, id: &str, limit: Duration) -> anyhow::Result<TxView> {
    let start = Instant::now();
    loop {
        let tx = client.tx(id).await?;
        if matches!(tx.status.as_str(), "final" | "anchored") {
            return Ok(tx);
        }
        if start.elapsed() > limit {
            bail!("transaction {id} is not final after {} s", limit.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Prints a fetched proof, or writes it to `out`.
fn write_proof(
    args: &WalletOpts,
    proof: &serde_json::Value,
    out: Option<&Path>,
) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(proof)?;
    match out {
        Some(path) => {
            std::fs::write(path, format!("{text}\n"))
                .with_context(|| format!("cannot write {}", path.display()))?;
            if args.json {
                println!("{}", serde_json::json!({ "written": path }));
            } else {
                println!("proof written to {}", path.display());
            }
        }
        None => println!("{text}"),
    }
    Ok(())
}

/// Used by `doin devnet` banners and tests: the address of a key file.
pub fn address_of_keyfile(path: &Path, network: Network) -> anyhow::Result<Address> {
    Ok(Address::new(network, KeyFile::read(path)?.public_key))
}
