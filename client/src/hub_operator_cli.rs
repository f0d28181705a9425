//! `doin hub operator …`: the hub operator's calls, authenticated with an API key the operator
//! made (`DOIN_HUB_API_KEY`) or else the token the node writes to `hub.cookie` in its data
//! directory (every right).

use crate::http::Client;
use crate::hub_common::{cookie, doin, hash, print, print_stream};
use crate::hub_peer::write_durably;
use crate::wallet::WalletOpts;
use clap::Subcommand;
use doin_api::hub::{
    ApiKeyRequest, ApiKeyScope, ApiKeyView, ClosedView, HubInvoiceRequest, HubInvoiceView,
    OpenOutgoingRequest, OpenedView, StreamView,
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
    /// The operator's API keys (the `admin` scope or the node's token needed).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// The operator's webhooks (the `admin` scope or the node's token needed).
    Webhooks {
        #[command(subcommand)]
        command: crate::hub_webhooks_cli::WebhooksCommand,
    },
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

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Make an API key; it is printed this once (the hub keeps only a hash of its secret).
    Create {
        /// `read`, `invoice`, `pay` or `admin`; repeat for several.
        #[arg(long, required = true, value_parser = parse_scope)]
        scope: Vec<ApiKeyScope>,
        #[arg(long, default_value = "")]
        label: String,
    },
    /// Every API key (without secrets).
    List,
    /// Revoke an API key by its id.
    Revoke { id: String },
}

fn parse_scope(text: &str) -> Result<ApiKeyScope, String> {
    serde_json::from_value(serde_json::Value::String(text.to_string()))
        .map_err(|_| format!("{text:?}: scopes are read, invoice, pay and admin"))
}

fn scope_names(scopes: &[ApiKeyScope]) -> String {
    scopes
        .iter()
        .filter_map(|s| serde_json::to_value(s).ok())
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect::<Vec<_>>()
        .join(",")
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
    let token = match std::env::var("DOIN_HUB_API_KEY") {
        Ok(key) if !key.trim().is_empty() => key.trim().to_string(),
        _ => cookie(cookie_path)?,
    };
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
        OperatorCommand::Keys { command } => keys(opts, client, token, command).await?,
        OperatorCommand::Webhooks { command } => {
            crate::hub_webhooks_cli::run(opts, client, token, command).await?
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

async fn keys(
    opts: &WalletOpts,
    client: &Client,
    token: Option<&str>,
    command: &KeysCommand,
) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create { scope, label } => {
            let body = ApiKeyRequest {
                scopes: scope.clone(),
                label: label.clone(),
            };
            let (_, v): (u16, ApiKeyView) = client
                .request(Method::POST, "/v1/hub/keys", Some(&body), token, None)
                .await?;
            print(opts, &v, |v| {
                println!(
                    "API key {} ({}): {}\nuse it as DOIN_HUB_API_KEY or `Authorization: Bearer`; it is not shown again",
                    v.id,
                    scope_names(&v.scopes),
                    v.key.as_deref().unwrap_or_default()
                )
            });
        }
        KeysCommand::List => {
            let (_, v): (u16, Vec<ApiKeyView>) = client
                .request(Method::GET, "/v1/hub/keys", NO_BODY, token, None)
                .await?;
            print(opts, &v, |keys| {
                for k in keys {
                    println!("{}  {:<24} {}", k.id, scope_names(&k.scopes), k.label);
                }
            });
        }
        KeysCommand::Revoke { id } => {
            client
                .request::<(), serde_json::Value>(
                    Method::DELETE,
                    &format!("/v1/hub/keys/{id}"),
                    NO_BODY,
                    token,
                    None,
                )
                .await?;
            print(opts, &serde_json::json!({"revoked": id}), |_| {
                println!("API key {id} revoked")
            });
        }
    }
    Ok(())
}
