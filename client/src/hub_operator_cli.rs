//! `doin hub operator …`: the hub operator's calls, authenticated with the token the node
//! writes to `hub.cookie` in its data directory.

use crate::http::Client;
use crate::hub_common::{cookie, doin, hash, print, print_stream};
use crate::hub_peer::write_durably;
use crate::wallet::WalletOpts;
use clap::Subcommand;
use doin_api::hub::{
    ClosedView, HubInvoiceRequest, HubInvoiceView, OpenOutgoingRequest, OpenedView, StreamView,
};
use rand::RngCore;
use reqwest::Method;
use std::path::{Path, PathBuf};

/// A request without a body.
const NO_BODY: Option<&()> = None;

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
        /// Only entries made at or after this time (unix milliseconds).
        #[arg(long)]
        from: Option<u64>,
        /// Only entries made before this time (unix milliseconds).
        #[arg(long)]
        to: Option<u64>,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn random_key() -> String {
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// Runs an operator command with the token read from `cookie_path` (or the default places).
pub(crate) async fn run(
    opts: &WalletOpts,
    cookie_path: Option<&Path>,
    client: &Client,
    command: &OperatorCommand,
) -> anyhow::Result<()> {
    let token = cookie(cookie_path)?;
    let token = Some(token.as_str());
    match command {
        OperatorCommand::Open {
            payee,
            deposit,
            idempotency_key,
        } => {
            let deposit = doin(deposit, "--deposit")?;
            let key = idempotency_key.clone().unwrap_or_else(random_key);
            let body = OpenOutgoingRequest {
                payee: payee.clone(),
                deposit: deposit.to_string(),
            };
            let (_, v): (u16, OpenedView) = client
                .request(
                    Method::POST,
                    "/v1/hub/channels/outgoing",
                    Some(&body),
                    token,
                    Some(&key),
                )
                .await?;
            print(opts, &v, |v| {
                println!(
                    "channel {} submitted (idempotency key {key}); usable once on chain",
                    v.channel_id
                )
            });
        }
        OperatorCommand::Close {
            channel,
            idempotency_key,
        } => {
            let id = hash(channel, "channel id")?;
            let key = idempotency_key.clone().unwrap_or_else(random_key);
            let (_, v): (u16, ClosedView) = client
                .request(
                    Method::POST,
                    &format!("/v1/hub/channels/{}/close", id.to_hex()),
                    NO_BODY,
                    token,
                    Some(&key),
                )
                .await?;
            print(opts, &v, |v| println!("closing: {}", v.how));
        }
        OperatorCommand::CloseStream { stream } => {
            let id = hash(stream, "stream id")?;
            let (_, v): (u16, StreamView) = client
                .request(
                    Method::POST,
                    &format!("/v1/hub/streams/{}/close", id.to_hex()),
                    NO_BODY,
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
            let body = HubInvoiceRequest {
                amount_msat: amount_msat.to_string(),
                description: description.clone(),
                expiry_secs: Some(*expiry_secs),
            };
            let (_, v): (u16, HubInvoiceView) = client
                .request(Method::POST, "/v1/hub/invoices", Some(&body), token, None)
                .await?;
            print(opts, &v, |v| println!("{}", v.invoice));
        }
        OperatorCommand::InvoiceStatus { payment_hash } => {
            let h = hash(payment_hash, "payment hash")?;
            let (_, v): (u16, HubInvoiceView) = client
                .request(
                    Method::GET,
                    &format!("/v1/hub/invoices/{}", h.to_hex()),
                    NO_BODY,
                    token,
                    None,
                )
                .await?;
            print(opts, &v, |v| {
                println!(
                    "{} msat  {}",
                    v.amount_msat,
                    v.paid_by
                        .as_ref()
                        .map_or("unpaid".to_string(), |c| format!("paid by channel {c}"))
                )
            });
        }
        OperatorCommand::Accounting {
            after,
            limit,
            from,
            to,
            out,
        } => {
            let mut path = format!("/v1/hub/accounting.csv?after={after}&limit={limit}");
            if let Some(from) = from {
                path.push_str(&format!("&from={from}"));
            }
            if let Some(to) = to {
                path.push_str(&format!("&to={to}"));
            }
            let csv = client.get_text(&path, token).await?;
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
