//! `doin hub …`: the channel hub from the command line, over the node's REST API.
//!
//! - Anyone: `info`, `invoice decode`. A party (its key) or the operator: `channels`,
//!   `streams`, `payments` (a payee's; `--follow` for the live feed), `history` (a payer's),
//!   see the `hub_reads` module.
//! - A payer or payee with its own key (`--keystore`): `connect` (a payer opens a channel to
//!   the hub and registers it), `invoice create`, `stream-open`, `tick`, `pay`, `sync` (answer
//!   the hub's proposals: payouts, fulfilments; take HTLCs it holds the preimage of) and
//!   `close` (its own close with the newest state both signed). Channel states live in
//!   `--state-dir`, see [`crate::hub_peer`].
//! - The hub's operator (`--cookie`, the node's `hub.cookie`): `operator …`, see
//!   [`crate::hub_operator_cli`].

use crate::channel_watch;
use crate::http::Client;
use crate::hub_common::{doin, hash, print, print_channel, print_payment, print_stream, unix_now};
use crate::hub_peer::{write_durably, Exchanged, HubPeer, MessageContext};
use crate::hub_reads::{feed_reader, follow_payments, ledger_page, list};
use crate::wallet::{self, TxOptions, WalletOpts};
use anyhow::{anyhow, bail};
use clap::{Args, Subcommand};
use doin_api::hub::{
    ChannelView, DecodeRequest, HubInfo, InvoiceView, RegisterRequest, StreamRequest, StreamView,
};
use doin_channels::{create_invoice, parse_invoice, Change, InvoiceTerms};
use doin_hub_core::records::StreamShare;
use doin_hub_core::FeePolicy;
use doin_tx_core::channel::{channel_id, sha256, ChannelId, MSAT_PER_UNIT};
use doin_tx_core::TxPayload;
use doin_types::{Address, Amount, Hash256, Msat};
use rand::RngCore;
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct HubArgs {
    #[command(flatten)]
    pub opts: WalletOpts,
    /// Where this peer keeps its channel states and invoice preimages.
    #[arg(long, env = "DOIN_HUB_STATE_DIR", global = true)]
    pub state_dir: Option<PathBuf>,
    /// The hub operator's token file (`hub.cookie` in the node's data directory; default
    /// `./devnet/hub.cookie` or `./doin-data/hub.cookie`, whichever exists).
    #[arg(long, env = "DOIN_HUB_COOKIE", global = true)]
    pub cookie: Option<PathBuf>,
    #[command(subcommand)]
    pub command: HubCommand,
}

#[derive(Subcommand, Debug)]
pub enum HubCommand {
    /// The hub's address, fee policy, windows and liquidity.
    Info,
    /// Channels with balances (or one of them): with `--keystore`, this key's (signed with
    /// it); else every channel, for the operator (`--cookie`). By pages of `--limit`.
    Channels {
        id: Option<String>,
        /// The last channel id of the page before.
        #[arg(long)]
        after: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Streams (or one of them): with `--keystore`, those this key pays or is paid by; else
    /// every stream, for the operator (`--cookie`). By pages of `--limit`.
    Streams {
        id: Option<String>,
        /// The last stream id of the page before.
        #[arg(long)]
        after: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Payer: what this key paid the hub (ticks, invoices, verification funds) and what came
    /// back, oldest first (signed with `--keystore`; the operator may name any payer).
    History {
        address: Option<String>,
        /// Ledger sequence number to start after.
        #[arg(long, default_value_t = 0)]
        after: u64,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// What the hub delivered to a payee (default: this key's address). Shown to the payee
    /// (signed with its key, `--keystore`) or to the operator (`--cookie`).
    Payments {
        address: Option<String>,
        /// Ledger sequence number to start after.
        #[arg(long, default_value_t = 0)]
        after: u64,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Keep printing payments as they arrive (resumes after a dropped connection).
        #[arg(long)]
        follow: bool,
    },
    /// Make or check BOLT11 invoices.
    Invoice {
        #[command(subcommand)]
        command: InvoiceCommand,
    },
    /// Payer: open a channel to the hub with DEPOSIT DOIN and register it with the hub.
    Connect {
        /// DOIN to lock, e.g. 100.
        #[arg(long)]
        deposit: String,
        /// The channel's dispute window in blocks (default: what the hub uses).
        #[arg(long)]
        dispute_blocks: Option<u64>,
        #[arg(long, default_value_t = 120)]
        wait_secs: u64,
    },
    /// Payee: buy an inbound channel from the hub: pay its fee on chain, and wait until the
    /// hub's channel of CAPACITY to this key is open.
    RequestChannel {
        /// DOIN the hub locks, e.g. 0.01.
        #[arg(long)]
        capacity: String,
        /// Blocks the hub promises to keep the channel open.
        #[arg(long, default_value_t = 2880)]
        duration_blocks: u64,
        /// The fee payment's options; `--wait-secs` also bounds the wait for the channel.
        #[command(flatten)]
        tx: TxOptions,
    },
    /// Payer: hand a channel opened on chain with the hub as counterparty over to the hub.
    Register {
        #[arg(long)]
        channel: String,
    },
    /// Payer: set up a stream from CHANNEL to the payee of INVOICE (its amount is the budget).
    StreamOpen {
        #[arg(long)]
        channel: String,
        #[arg(long)]
        invoice: String,
    },
    /// Payer: pay ticks into a stream (each one update signed by both). Given several
    /// streams, each tick is a split tick: one update pays every stream AMOUNT_MSAT.
    Tick {
        #[arg(long)]
        channel: String,
        /// The stream (hex); repeat it to pay several streams with one update per tick.
        #[arg(long, required = true)]
        stream: Vec<String>,
        /// Milli-units per tick and stream (1 base unit = 1000).
        #[arg(long)]
        amount_msat: u64,
        #[arg(long, default_value_t = 1)]
        count: u64,
        /// Pause between ticks.
        #[arg(long, default_value_t = 0)]
        every_ms: u64,
        /// Evaluator pay: the tick pays the verification fee of the stream payee's vote on
        /// this optimae (hex); the hub checks the vote on the main chain. One tick only.
        #[arg(long)]
        vote: Option<String>,
    },
    /// Payer: put AMOUNT_MSAT into the verification fund of a revealed optimae. Once its
    /// decision is final the hub pays each agreeing evaluator one verification fee out of it
    /// and proposes the rest back on this channel (take it with `sync`).
    Fund {
        #[arg(long)]
        channel: String,
        /// The optimae id (hex).
        #[arg(long)]
        optimae: String,
        #[arg(long)]
        amount_msat: u64,
    },
    /// Payer: fund the evaluators of every optimae the main chain reveals (in the chosen
    /// domains) by itself, within budgets: the domain's verification fee for each evaluator
    /// of the optimae's quorum goes into its verification fund from CHANNEL. Keeps running.
    FundReveals {
        #[arg(long)]
        channel: String,
        /// A domain whose optimae to fund (repeat; default: every domain).
        #[arg(long)]
        domain: Vec<String>,
        /// Most put into one optimae's fund, milli-units.
        #[arg(long)]
        max_per_optimae_msat: u64,
        /// Most spent on one domain per UTC day, milli-units (default: no cap but the day's).
        #[arg(long)]
        max_per_domain_day_msat: Option<u64>,
        /// Most spent per UTC day, milli-units.
        #[arg(long)]
        max_per_day_msat: u64,
        /// The first main height to read on a first run (default: the next block).
        #[arg(long)]
        from_height: Option<u64>,
        #[arg(long, default_value_t = 2000)]
        interval_ms: u64,
        /// One pass, then stop.
        #[arg(long)]
        once: bool,
    },
    /// Payer: pay INVOICE through the hub with a hash-locked payment (then `sync` to see it
    /// fulfilled).
    Pay {
        #[arg(long)]
        channel: String,
        #[arg(long)]
        invoice: String,
    },
    /// Payer or payee: finish an update a lost message or an interrupted command left
    /// half-way, answer what the hub proposed on CHANNEL (payouts, fulfilments, failures) and
    /// take HTLCs this key holds the preimage of.
    Sync {
        #[arg(long)]
        channel: String,
        /// Keep going: answer each proposal as the hub pushes it (server-sent events,
        /// reconnecting when the stream breaks).
        #[arg(long)]
        follow: bool,
    },
    /// Payer or payee: close CHANNEL with the newest state both signed (cooperatively when it
    /// holds no HTLC: paid out at once; else posted, paid out after the window).
    Close {
        #[arg(long)]
        channel: String,
        /// Do not ask the hub first (it may be gone): close with the newest state this
        /// machine holds, even with an update in flight.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        tx: TxOptions,
    },
    /// Payer or payee: replace a state posted on chain that is older than the newest one
    /// this machine holds (the poster forfeits its reserve). Needs no hub.
    Challenge {
        #[arg(long)]
        channel: String,
        #[command(flatten)]
        tx: TxOptions,
    },
    /// Payer or payee: take on chain an HTLC offered to this key in the state posted on a
    /// closing channel, with the preimage this key keeps (before the HTLC expires). Needs no hub.
    Claim {
        #[arg(long)]
        channel: String,
        #[command(flatten)]
        tx: TxOptions,
    },
    /// Payer or payee (anyone): pay out a closing channel once its window and its pending
    /// HTLCs' expiries are past. Needs no hub.
    Settle {
        #[arg(long)]
        channel: String,
        #[command(flatten)]
        tx: TxOptions,
    },
    /// Payer or payee: watch this key's channels on the transfer chain (`--node`, any node)
    /// and act without the hub: challenge a stale close, claim HTLCs this key holds the
    /// preimage of (closing first when one nears its expiry), settle after the window.
    /// Stops once every watched channel is paid out.
    Watch {
        /// The channels to watch (hex; repeat); default: every channel in the state directory.
        #[arg(long)]
        channel: Vec<String>,
        /// Also sync with the hub at this URL each pass (take payouts, answer its proposals).
        #[arg(long)]
        hub: Option<String>,
        /// Blocks before an HTLC offered to this key expires by which it is taken on chain.
        #[arg(long, default_value_t = 6)]
        htlc_margin: u64,
        #[arg(long, default_value_t = 2000)]
        interval_ms: u64,
        /// One pass, then stop.
        #[arg(long)]
        once: bool,
    },
    /// The hub operator's calls (need the operator token).
    Operator {
        #[command(subcommand)]
        command: crate::hub_operator_cli::OperatorCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum InvoiceCommand {
    /// Payee: a new invoice signed by this key; its preimage is kept in the state directory
    /// (so `sync` can take hash-locked payments for it).
    Create {
        /// Milli-units (1 base unit = 1000; 1 DOIN = 100 000 000 000).
        #[arg(long)]
        amount_msat: u64,
        #[arg(long, default_value = "")]
        description: String,
        #[arg(long, default_value_t = 3600)]
        expiry_secs: u64,
        #[arg(long, default_value_t = 6)]
        min_final_cltv_blocks: u64,
    },
    /// Check an invoice against the node's network (signature, expiry, amount).
    Decode { invoice: String },
}

async fn peer(args: &HubArgs, client: &Client) -> anyhow::Result<HubPeer> {
    let (network, chain_id) = wallet::chain_of(client).await?;
    let key = wallet::load_key(&args.opts)?;
    let state_dir = match &args.state_dir {
        Some(d) => d.clone(),
        None => std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| ".".into())
            .join(".doin")
            .join("channels"),
    };
    Ok(HubPeer {
        client: client.clone(),
        key,
        chain_id,
        network,
        state_dir,
    })
}

async fn height(client: &Client) -> anyhow::Result<u64> {
    Ok(client.info().await?.height)
}

fn report(opts: &WalletOpts, id: &ChannelId, done: &Exchanged, balance_msat: u64) {
    let v = json!({
        "channel": id.to_hex(),
        "completed": done.completed.len(),
        "rejected": done.rejected,
        "payments": done.payments,
        "my_balance_msat": balance_msat.to_string(),
    });
    print(opts, &v, |_| {
        for p in &done.payments {
            print_payment(p);
        }
        println!(
            "{} update(s) completed; my balance {balance_msat} msat",
            done.completed.len()
        );
        if let Some(r) = &done.rejected {
            println!("the hub refused: {r}");
        }
    });
}

pub async fn run(args: HubArgs) -> anyhow::Result<()> {
    let opts = &args.opts;
    let client = Client::new(&opts.node)?;
    match &args.command {
        HubCommand::Info => {
            let v: HubInfo = client.get("/v1/hub/info").await?;
            print(opts, &v, |v| {
                println!("hub             {}", v.address);
                println!("network         {}", v.network);
                println!(
                    "fee             {} msat + {} ppm",
                    v.fee.base_msat, v.fee.ppm
                );
                println!(
                    "dispute window  {} blocks (payers' at least {})",
                    v.dispute_blocks, v.min_dispute_blocks
                );
                println!("cltv delta      {} blocks", v.cltv_delta);
                println!("channels        {}", v.channels);
                println!("liquidity out   {} msat", v.outgoing_liquidity_msat);
                println!("capacity in     {} msat", v.incoming_capacity_msat);
            });
        }
        HubCommand::Channels { id, after, limit } => match id {
            Some(id) => {
                let path = format!("/v1/hub/channels/{}", hash(id, "channel id")?.to_hex());
                let v: ChannelView = client.get(&path).await?;
                print(opts, &v, print_channel);
            }
            None => {
                let v: Vec<ChannelView> = list(
                    &args.opts,
                    args.cookie.as_deref(),
                    &client,
                    "/v1/hub/channels",
                    after.as_deref(),
                    *limit,
                )
                .await?;
                print(opts, &v, |v| v.iter().for_each(print_channel));
            }
        },
        HubCommand::Streams { id, after, limit } => match id {
            Some(id) => {
                let path = format!("/v1/hub/streams/{}", hash(id, "stream id")?.to_hex());
                let v: StreamView = client.get(&path).await?;
                print(opts, &v, print_stream);
            }
            None => {
                let v: Vec<StreamView> = list(
                    &args.opts,
                    args.cookie.as_deref(),
                    &client,
                    "/v1/hub/streams",
                    after.as_deref(),
                    *limit,
                )
                .await?;
                print(opts, &v, |v| v.iter().for_each(print_stream));
            }
        },
        HubCommand::History {
            address,
            after,
            limit,
        } => {
            let (address, reader) = feed_reader(
                &args.opts,
                args.cookie.as_deref(),
                &client,
                address.as_deref(),
            )
            .await?;
            let path = format!("/v1/hub/payers/{address}/payments?after={after}&limit={limit}");
            let v = ledger_page(&client, &path, &reader).await?;
            print(opts, &v, |v| v.iter().for_each(print_payment));
        }
        HubCommand::Payments {
            address,
            after,
            limit,
            follow,
        } => {
            let (address, reader) = feed_reader(
                &args.opts,
                args.cookie.as_deref(),
                &client,
                address.as_deref(),
            )
            .await?;
            if *follow {
                follow_payments(opts, &client, &address, &reader, *after).await?;
            } else {
                let path = format!("/v1/hub/payees/{address}/payments?after={after}&limit={limit}");
                let v = ledger_page(&client, &path, &reader).await?;
                print(opts, &v, |v| v.iter().for_each(print_payment));
            }
        }
        HubCommand::Invoice { command } => invoice(&args, &client, command).await?,
        HubCommand::Connect {
            deposit,
            dispute_blocks,
            wait_secs,
        } => connect(&args, &client, deposit, *dispute_blocks, *wait_secs).await?,
        HubCommand::RequestChannel {
            capacity,
            duration_blocks,
            tx,
        } => {
            let p = peer(&args, &client).await?;
            crate::channel_request::request_channel(
                opts,
                &p,
                doin(capacity, "--capacity")?,
                *duration_blocks,
                Duration::from_secs(tx.wait_secs),
                tx,
            )
            .await?;
        }
        HubCommand::Register { channel } => {
            let id = hash(channel, "--channel")?;
            let body = RegisterRequest {
                channel_id: id.to_hex(),
            };
            let (_, v): (u16, ChannelView) = client.post("/v1/hub/channels", &body).await?;
            print(opts, &v, print_channel);
        }
        HubCommand::StreamOpen { channel, invoice } => {
            let p = peer(&args, &client).await?;
            let id = hash(channel, "--channel")?;
            let sig = p.key.sign(&doin_hub_core::auth::stream_auth_hash(
                &p.chain_id,
                &id,
                invoice,
            ));
            let body = StreamRequest {
                payer_channel: id.to_hex(),
                invoice: invoice.clone(),
                signature: hex::encode(sig.0),
            };
            let (_, v): (u16, StreamView) = client.post("/v1/hub/streams", &body).await?;
            print(opts, &v, print_stream);
        }
        HubCommand::Tick {
            channel,
            stream,
            amount_msat,
            count,
            every_ms,
            vote,
        } => {
            let p = peer(&args, &client).await?;
            let id = hash(channel, "--channel")?;
            let streams = stream
                .iter()
                .map(|s| hash(s, "--stream"))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let vote = vote.as_deref().map(|v| hash(v, "--vote")).transpose()?;
            if vote.is_some() && *count != 1 {
                bail!("a vote's fee is paid once: --vote goes with --count 1");
            }
            if vote.is_some() && streams.len() > 1 {
                bail!("a vote's fee is paid into one stream: --vote goes with one --stream");
            }
            // Several streams: a split tick, each stream its AMOUNT_MSAT.
            let split: Vec<StreamShare> = match streams.as_slice() {
                [_] => Vec::new(),
                many => many
                    .iter()
                    .map(|s| StreamShare {
                        stream: *s,
                        amount_msat: Msat::new(*amount_msat),
                        vote_optimae: None,
                    })
                    .collect(),
            };
            let tick_msat = amount_msat
                .checked_mul(streams.len() as u64)
                .ok_or_else(|| anyhow!("the tick's amount overflows"))?;
            let mut m = p.machine(&id).await?;
            let mut all = Exchanged::default();
            for i in 0..*count {
                if i > 0 && *every_ms > 0 {
                    tokio::time::sleep(Duration::from_millis(*every_ms)).await;
                }
                let h = height(&client).await?;
                let change = Change::Pay {
                    amount_msat: tick_msat,
                };
                let ctx = MessageContext {
                    stream: streams.first().filter(|_| split.is_empty()),
                    invoice: None,
                    vote_optimae: vote.as_ref(),
                    split: &split,
                    fund_optimae: None,
                };
                let done = p.propose(&mut m, change, ctx, h).await?;
                all.completed.extend(done.completed);
                all.payments.extend(done.payments);
                if done.rejected.is_some() {
                    all.rejected = done.rejected;
                    break;
                }
            }
            report(opts, &id, &all, m.my_balance_msat());
            if let Some(r) = all.rejected {
                bail!("the hub refused a tick: {r}");
            }
        }
        HubCommand::Fund {
            channel,
            optimae,
            amount_msat,
        } => {
            let p = peer(&args, &client).await?;
            let id = hash(channel, "--channel")?;
            let optimae = hash(optimae, "--optimae")?;
            let mut m = p.machine(&id).await?;
            let h = height(&client).await?;
            let ctx = MessageContext {
                fund_optimae: Some(&optimae),
                ..MessageContext::default()
            };
            let change = Change::Pay {
                amount_msat: *amount_msat,
            };
            let done = p.propose(&mut m, change, ctx, h).await?;
            report(opts, &id, &done, m.my_balance_msat());
            if let Some(r) = done.rejected {
                bail!("the hub refused the funding: {r}");
            }
        }
        HubCommand::Pay { channel, invoice } => {
            let p = peer(&args, &client).await?;
            let id = hash(channel, "--channel")?;
            let parsed = parse_invoice(invoice, p.network, unix_now(), None)?;
            let info: HubInfo = client.get("/v1/hub/info").await?;
            let fee = FeePolicy {
                base_msat: info.fee.base_msat,
                ppm: info.fee.ppm,
            }
            .fee(Msat::new(parsed.amount_msat))
            .ok_or_else(|| anyhow!("the amount is too large"))?
            .get();
            // An invoice of the hub itself is paid to it directly: no forwarding fee.
            let to_hub = Address::parse(&info.address, p.network)?.key == parsed.payee;
            let fee = if to_hub { 0 } else { fee };
            let cltv_delta = info.cltv_delta;
            let h = height(&client).await?;
            // The hub's lock towards the payee expires `cltv_delta` earlier and must leave
            // the payee its final blocks, with a few to spare for the hub's forward.
            let expiry = h + cltv_delta + parsed.min_final_cltv_blocks + 6;
            let mut m = p.machine(&id).await?;
            let change = Change::AddHtlc {
                amount_msat: parsed
                    .amount_msat
                    .checked_add(fee)
                    .ok_or_else(|| anyhow!("the amount is too large"))?,
                payment_hash: parsed.payment_hash,
                expiry,
            };
            let ctx = MessageContext {
                invoice: Some(invoice),
                ..MessageContext::default()
            };
            let done = p.propose(&mut m, change, ctx, h).await?;
            report(opts, &id, &done, m.my_balance_msat());
            if let Some(r) = done.rejected {
                bail!("the hub refused the payment: {r}");
            }
            if !opts.json {
                println!(
                    "locked until height {expiry}; `doin hub sync --channel {}` collects the outcome",
                    id.to_hex()
                );
            }
        }
        HubCommand::Sync { channel, follow } => {
            let p = peer(&args, &client).await?;
            let id = hash(channel, "--channel")?;
            let mut m = p.machine(&id).await?;
            let (wake_tx, mut wake) = tokio::sync::mpsc::channel(16);
            let _follower =
                follow.then(|| crate::hub_peer::follow_proposals(client.clone(), id, wake_tx));
            loop {
                let h = height(&client).await?;
                let done = p.sync(&mut m, h).await?;
                if !*follow || !done.payments.is_empty() || !done.completed.is_empty() {
                    report(opts, &id, &done, m.my_balance_msat());
                }
                if !*follow || wake.recv().await.is_none() {
                    break;
                }
                // Several pushes while syncing are answered by one more sync.
                while wake.try_recv().is_ok() {}
            }
        }
        HubCommand::FundReveals {
            channel,
            domain,
            max_per_optimae_msat,
            max_per_domain_day_msat,
            max_per_day_msat,
            from_height,
            interval_ms,
            once,
        } => {
            let p = peer(&args, &client).await?;
            let plan = crate::fund_reveals::FundPlan {
                channel: hash(channel, "--channel")?,
                domains: domain.iter().cloned().collect(),
                budget: crate::fund_reveals::Budget {
                    per_optimae: *max_per_optimae_msat,
                    per_domain_day: *max_per_domain_day_msat,
                    per_day: *max_per_day_msat,
                },
                from_height: *from_height,
                interval: Duration::from_millis(*interval_ms),
                once: *once,
            };
            crate::fund_reveals::fund_reveals(opts, &p, plan).await?;
        }
        HubCommand::Close {
            channel,
            force: true,
            tx,
        } => {
            let p = peer(&args, &client).await?;
            channel_watch::force_close(opts, &p, &hash(channel, "--channel")?, tx).await?;
        }
        HubCommand::Challenge { channel, tx } => {
            let p = peer(&args, &client).await?;
            let id = hash(channel, "--channel")?;
            channel_watch::act(opts, &p, &id, "challenge", 0, tx).await?;
        }
        HubCommand::Claim { channel, tx } => {
            let p = peer(&args, &client).await?;
            let id = hash(channel, "--channel")?;
            channel_watch::act(opts, &p, &id, "claim", 0, tx).await?;
        }
        HubCommand::Settle { channel, tx } => {
            let p = peer(&args, &client).await?;
            let id = hash(channel, "--channel")?;
            channel_watch::act(opts, &p, &id, "settle", 0, tx).await?;
        }
        HubCommand::Watch {
            channel,
            hub,
            htlc_margin,
            interval_ms,
            once,
        } => {
            let p = peer(&args, &client).await?;
            let hub = match hub {
                Some(url) => Some(peer(&args, &Client::new(url)?).await?),
                None => None,
            };
            let plan = channel_watch::WatchPlan {
                channels: channel
                    .iter()
                    .map(|c| hash(c, "--channel"))
                    .collect::<anyhow::Result<_>>()?,
                margin: *htlc_margin,
                interval: Duration::from_millis(*interval_ms),
                hub,
                once: *once,
            };
            channel_watch::watch(opts, &p, plan).await?;
        }
        HubCommand::Close { channel, tx, .. } => {
            let p = peer(&args, &client).await?;
            let id = hash(channel, "--channel")?;
            let m = p.machine(&id).await?;
            if m.in_flight().is_some() {
                bail!("an update is in flight: run `doin hub sync --channel {channel}` first");
            }
            let latest = m.latest().clone();
            // Posting a state older than one both signed forfeits the reserve to the hub's
            // watchtower: refuse when the hub holds a newer one than this machine does.
            let at_hub: ChannelView = client
                .get(&format!("/v1/hub/channels/{}", id.to_hex()))
                .await?;
            let hub_seq = at_hub.seq;
            if hub_seq > latest.state.seq {
                bail!(
                    "this machine's state of the channel (seq {}) is older than the hub's (seq \
                     {hub_seq}): closing with it would cost the channel reserve. Use the state \
                     directory that took part in the updates, or ask the hub's operator to close",
                    latest.state.seq
                );
            }
            let payload = if latest.state.seq > 0 && latest.state.htlcs.is_empty() {
                TxPayload::ChannelCoopClose {
                    state: Box::new(latest),
                }
            } else {
                TxPayload::ChannelForceClose {
                    channel: id,
                    state: (latest.state.seq > 0).then(|| Box::new(latest)),
                }
            };
            let signed = wallet::sign_payload(&client, &p.key, payload, tx).await?;
            let (_, sub) = client
                .submit(signed.bytes())
                .await
                .map_err(|e| anyhow!("the node refused the close: {e}"))?;
            if !opts.json {
                println!(
                    "closing with my balance of {} msat ({} base units)",
                    m.my_balance_msat(),
                    m.my_balance_msat() / MSAT_PER_UNIT
                );
            }
            wallet::report_submitted(opts, &client, &sub, tx).await?;
        }
        HubCommand::Operator { command } => {
            crate::hub_operator_cli::run(opts, args.cookie.as_deref(), &client, command).await?
        }
    }
    Ok(())
}

async fn invoice(args: &HubArgs, client: &Client, command: &InvoiceCommand) -> anyhow::Result<()> {
    let opts = &args.opts;
    match command {
        InvoiceCommand::Create {
            amount_msat,
            description,
            expiry_secs,
            min_final_cltv_blocks,
        } => {
            let p = peer(args, client).await?;
            let mut preimage = [0u8; 32];
            let mut secret = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut preimage);
            rand::rngs::OsRng.fill_bytes(&mut secret);
            let payment_hash = Hash256(sha256(&preimage));
            let text = create_invoice(
                p.network,
                &p.key,
                &InvoiceTerms {
                    amount_msat: *amount_msat,
                    payment_hash,
                    payment_secret: secret,
                    description: description.clone(),
                    expiry_secs: *expiry_secs,
                    min_final_cltv_blocks: *min_final_cltv_blocks,
                },
                unix_now(),
            )?;
            // Kept before the invoice is shown: a payment for it can only be taken with it.
            let path = p.preimage_path(&payment_hash);
            write_durably(&path, hex::encode(preimage).as_bytes())?;
            let v = json!({
                "invoice": text,
                "payment_hash": payment_hash.to_hex(),
                "preimage_file": path,
            });
            print(opts, &v, |_| {
                println!("{text}");
                eprintln!(
                    "payment hash {} (preimage kept in {})",
                    payment_hash.to_hex(),
                    path.display()
                );
            });
        }
        InvoiceCommand::Decode { invoice } => {
            let body = DecodeRequest {
                invoice: invoice.clone(),
            };
            let (_, v): (u16, InvoiceView) = client.post("/v1/hub/invoices/decode", &body).await?;
            print(opts, &v, |v| {
                let fields: [(&str, String); 7] = [
                    ("amount_msat", v.amount_msat.clone()),
                    ("created_at", v.created_at.to_string()),
                    ("description", v.description.clone()),
                    ("expires_at", v.expires_at.to_string()),
                    ("min_final_cltv_blocks", v.min_final_cltv_blocks.to_string()),
                    ("payee", v.payee.clone()),
                    ("payment_hash", v.payment_hash.clone()),
                ];
                for (k, x) in fields {
                    println!("{k:<22} {x}");
                }
            });
        }
    }
    Ok(())
}

async fn connect(
    args: &HubArgs,
    client: &Client,
    deposit: &str,
    dispute_blocks: Option<u64>,
    wait_secs: u64,
) -> anyhow::Result<()> {
    let opts = &args.opts;
    let p = peer(args, client).await?;
    let info: HubInfo = client.get("/v1/hub/info").await?;
    let hub = Address::parse(&info.address, p.network)?.key;
    let min = info.min_dispute_blocks;
    let blocks = dispute_blocks.unwrap_or(info.dispute_blocks);
    if blocks < min {
        bail!("the hub takes channels with a dispute window of at least {min} blocks");
    }
    let payload = TxPayload::ChannelOpen {
        counterparty: hub,
        deposit: doin(deposit, "--deposit")?,
        counterparty_deposit: Amount::ZERO,
        dispute_blocks: blocks,
        consent: None,
    };
    let tx = wallet::sign_payload(client, &p.key, payload, &TxOptions::default()).await?;
    let id = channel_id(&p.chain_id, &p.key.public(), tx.body().nonce);
    client
        .submit(tx.bytes())
        .await
        .map_err(|e| anyhow!("the node refused the opening transaction: {e}"))?;
    if !opts.json {
        eprintln!("channel {} submitted; waiting for it on chain", id.to_hex());
    }
    let started = std::time::Instant::now();
    loop {
        match client
            .get::<doin_api::tx::ChannelView>(&format!("/v1/tx/channels/{}", id.to_hex()))
            .await
        {
            Ok(_) => break,
            Err(crate::http::ClientError::Problem { status: 404, .. }) => {}
            Err(e) => return Err(e.into()),
        }
        if started.elapsed() > Duration::from_secs(wait_secs) {
            bail!(
                "channel {0} is not on chain after {wait_secs} s; once it is, \
                 `doin hub register --channel {0}`",
                id.to_hex()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The opening state is kept before the hub knows of the channel.
    let m = p.machine(&id).await?;
    let body = RegisterRequest {
        channel_id: id.to_hex(),
    };
    let (_, v): (u16, ChannelView) = client.post("/v1/hub/channels", &body).await?;
    print(opts, &v, |v| {
        print_channel(v);
        println!(
            "channel {} open with {} msat",
            id.to_hex(),
            m.my_balance_msat()
        );
    });
    Ok(())
}
