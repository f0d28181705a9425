//! `doin hub operator …`: the hub operator's calls, authenticated with the token the node
//! writes to `hub.cookie` in its data directory.

use crate::client::Client;
use crate::hub_cli::{doin, hash, print, print_stream, s, HubArgs};
use crate::hub_peer::write_durably;
use anyhow::{anyhow, Context};
use clap::Subcommand;
use rand::RngCore;
use reqwest::Method;
use serde_json::{json, Value};
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum OperatorCommand {
    /// Open a channel from the hub to PAYEE with DEPOSIT DOIN.
    Open {
        #[arg(long)]
        payee: String,
        #[arg(long)]
        deposit: String,
        /// Repeats with the same key get the first answer (default: a new random key).
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Close one of the hub's channels from its side.
    Close {
        channel: String,
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Close a stream: no more ticks are taken.
    CloseStream { stream: String },
    /// An invoice payable to the hub itself (a payer's HTLC for it is taken at once).
    Invoice {
        /// Milli-units.
        #[arg(long)]
        amount_msat: u64,
        #[arg(long, default_value = "")]
        description: String,
        #[arg(long, default_value_t = 3600)]
        expiry_secs: u64,
    },
    /// An invoice of the hub, and whether it is paid.
    InvoiceStatus { payment_hash: String },
    /// The hub's ledger as CSV.
    Accounting {
        #[arg(long, default_value_t = 0)]
        after: u64,
        #[arg(long, default_value_t = 10_000)]
        limit: usize,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

pub(crate) fn cookie(args: &HubArgs) -> anyhow::Result<String> {
    let path = match &args.cookie {
        Some(p) => p.clone(),
        None => ["./devnet/hub.cookie", "./doin-data/hub.cookie"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .ok_or_else(|| {
                anyhow!("operator calls need the node's hub.cookie: give --cookie PATH")
            })?,
    };
    let token = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the operator token {}", path.display()))?;
    Ok(token.trim().to_string())
}

fn random_key() -> String {
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

pub(crate) async fn run(
    args: &HubArgs,
    client: &Client,
    command: &OperatorCommand,
) -> anyhow::Result<()> {
    let opts = &args.opts;
    let token = cookie(args)?;
    let token = Some(token.as_str());
    match command {
        OperatorCommand::Open {
            payee,
            deposit,
            idempotency_key,
        } => {
            let deposit = doin(deposit, "--deposit")?;
            let key = idempotency_key.clone().unwrap_or_else(random_key);
            let (_, v): (u16, Value) = client
                .request(
                    Method::POST,
                    "/v1/hub/channels/outgoing",
                    Some(&json!({"payee": payee, "deposit": deposit.to_string()})),
                    token,
                    Some(&key),
                )
                .await?;
            print(opts, &v, |v| {
                println!(
                    "channel {} submitted (idempotency key {key}); usable once on chain",
                    s(v, "channel_id")
                )
            });
        }
        OperatorCommand::Close {
            channel,
            idempotency_key,
        } => {
            let id = hash(channel, "channel id")?;
            let key = idempotency_key.clone().unwrap_or_else(random_key);
            let (_, v): (u16, Value) = client
                .request(
                    Method::POST,
                    &format!("/v1/hub/channels/{}/close", id.to_hex()),
                    None,
                    token,
                    Some(&key),
                )
                .await?;
            print(opts, &v, |v| println!("closing: {}", s(v, "how")));
        }
        OperatorCommand::CloseStream { stream } => {
            let id = hash(stream, "stream id")?;
            let (_, v): (u16, Value) = client
                .request(
                    Method::POST,
                    &format!("/v1/hub/streams/{}/close", id.to_hex()),
                    None,
                    token,
                    None,
                )
                .await?;
            print(opts, &v, print_stream);
        }
        OperatorCommand::Invoice {
            amount_msat,
            description,
            expiry_secs,
        } => {
            let body = json!({
                "amount_msat": amount_msat.to_string(),
                "description": description,
                "expiry_secs": expiry_secs,
            });
            let (_, v): (u16, Value) = client
                .request(Method::POST, "/v1/hub/invoices", Some(&body), token, None)
                .await?;
            print(opts, &v, |v| println!("{}", s(v, "invoice")));
        }
        OperatorCommand::InvoiceStatus { payment_hash } => {
            let h = hash(payment_hash, "payment hash")?;
            let (_, v): (u16, Value) = client
                .request(
                    Method::GET,
                    &format!("/v1/hub/invoices/{}", h.to_hex()),
                    None,
                    token,
                    None,
                )
                .await?;
            print(opts, &v, |v| {
                println!(
                    "{} msat  {}",
                    s(v, "amount_msat"),
                    v["paid_by"]
                        .as_str()
                        .map_or("unpaid".to_string(), |c| format!("paid by channel {c}"))
                )
            });
        }
        OperatorCommand::Accounting { after, limit, out } => {
            let csv = client
                .get_text(
                    &format!("/v1/hub/accounting.csv?after={after}&limit={limit}"),
                    token,
                )
                .await?;
            match out {
                Some(path) => {
                    write_durably(path, csv.as_bytes())?;
                    eprintln!(
                        "{} entries written to {}",
                        csv.lines().count().saturating_sub(1),
                        path.display()
                    );
                }
                None => print!("{csv}"),
            }
        }
    }
    Ok(())
}
