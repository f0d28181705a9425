//! `doin hub operator webhooks …`: the operator's webhooks (the `admin` scope or the node's
//! token): make one (its signing secret printed once), list, remove, page through a webhook's
//! deliveries, deliver one again. Formatting only; what a delivery is and how it is signed is
//! the hub's (docs/hub.md, "Webhooks").

use crate::http::Client;
use crate::hub_common::print;
use crate::wallet::WalletOpts;
use clap::Subcommand;
use doin_api::hub::{
    WebhookDeliveryPage, WebhookDeliveryView, WebhookEventType, WebhookRequest, WebhookView,
};
use reqwest::Method;

const NO_BODY: Option<&()> = None;

#[derive(Subcommand, Debug)]
pub enum WebhooksCommand {
    /// Make a webhook; its signing secret is printed this once.
    Create {
        /// Where deliveries are POSTed (`http://`).
        #[arg(long)]
        url: String,
        /// `payment.received`, `payout.sent`, `channel.opened`, `channel.closed` or
        /// `fund.settled`; repeat for several.
        #[arg(long, required = true, value_parser = parse_event)]
        event: Vec<WebhookEventType>,
    },
    /// Every webhook (without secrets).
    List,
    /// Remove a webhook and its deliveries.
    Delete { id: String },
    /// A webhook's deliveries, oldest first.
    Deliveries {
        id: String,
        /// Deliveries numbered above this one.
        #[arg(long, default_value_t = 0)]
        after: u64,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Deliver one again now (same id and body).
    Redeliver { id: String, seq: u64 },
}

fn parse_event(text: &str) -> Result<WebhookEventType, String> {
    serde_json::from_value(serde_json::Value::String(text.to_string())).map_err(|_| {
        format!(
            "{text:?}: events are payment.received, payout.sent, channel.opened, \
             channel.closed and fund.settled"
        )
    })
}

fn names(events: &[WebhookEventType]) -> String {
    events
        .iter()
        .filter_map(|e| serde_json::to_value(e).ok())
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect::<Vec<_>>()
        .join(",")
}

fn print_delivery(d: &WebhookDeliveryView) {
    let last = match (d.last_status, &d.last_error) {
        (Some(status), _) => format!("last answer {status}"),
        (None, Some(e)) => format!("last error: {e}"),
        (None, None) => "not tried yet".into(),
    };
    println!(
        "{:>6}  {:<16} {:<10} {:<9} attempts {}  {last}",
        d.seq,
        names(&[d.event_type]),
        d.event_id,
        d.state,
        d.attempts
    );
}

pub(crate) async fn run(
    opts: &WalletOpts,
    client: &Client,
    token: Option<&str>,
    command: &WebhooksCommand,
) -> anyhow::Result<()> {
    match command {
        WebhooksCommand::Create { url, event } => {
            let body = WebhookRequest {
                url: url.clone(),
                events: event.clone(),
            };
            let (_, v): (u16, WebhookView) = client
                .request(Method::POST, "/v1/hub/webhooks", Some(&body), token, None)
                .await?;
            print(opts, &v, |v| {
                println!(
                    "webhook {} ({}) → {}\nsigning secret: {}\nverify `Doin-Webhook-Signature` with it; it is not shown again",
                    v.id,
                    names(&v.events),
                    v.url,
                    v.secret.as_deref().unwrap_or_default()
                )
            });
        }
        WebhooksCommand::List => {
            let (_, v): (u16, Vec<WebhookView>) = client
                .request(Method::GET, "/v1/hub/webhooks", NO_BODY, token, None)
                .await?;
            print(opts, &v, |hooks| {
                for h in hooks {
                    println!("{}  {:<40} {}", h.id, names(&h.events), h.url);
                }
            });
        }
        WebhooksCommand::Delete { id } => {
            client
                .request::<(), serde_json::Value>(
                    Method::DELETE,
                    &format!("/v1/hub/webhooks/{id}"),
                    NO_BODY,
                    token,
                    None,
                )
                .await?;
            print(opts, &serde_json::json!({"deleted": id}), |_| {
                println!("webhook {id} removed")
            });
        }
        WebhooksCommand::Deliveries { id, after, limit } => {
            let (_, v): (u16, WebhookDeliveryPage) = client
                .request(
                    Method::GET,
                    &format!("/v1/hub/webhooks/{id}/deliveries?after={after}&limit={limit}"),
                    NO_BODY,
                    token,
                    None,
                )
                .await?;
            print(opts, &v, |page| {
                page.deliveries.iter().for_each(print_delivery);
                if let Some(next) = page.next_after {
                    println!("more: --after {next}");
                }
            });
        }
        WebhooksCommand::Redeliver { id, seq } => {
            let (_, v): (u16, WebhookDeliveryView) = client
                .request(
                    Method::POST,
                    &format!("/v1/hub/webhooks/{id}/deliveries/{seq}/redeliver"),
                    NO_BODY,
                    token,
                    None,
                )
                .await?;
            print(opts, &v, print_delivery);
        }
    }
    Ok(())
}
