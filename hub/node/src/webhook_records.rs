//! Webhooks as kept, and their pure rules: the subscriptions (`hub_webhooks`), the outbox of
//! deliveries (`hub_webhook_deliveries`, with `hub_webhook_due` ordering the pending ones by
//! when their next attempt is due), how far the outbox has read the ledger and the events
//! (`hub_webhook_meta`), which ledger entries are which event, when a failed attempt is tried
//! again, and the signature a delivery carries. A leaf: no other module of this crate is used
//! here; filling and sending the outbox is [`crate::webhooks`]'s.

pub use doin_api::hub::WebhookEventType;
use doin_hub_core::records::PaymentKind;
use doin_store::{Raw, Table};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Webhook id → [`Webhook`].
pub(crate) const WEBHOOKS: Table<u64, Webhook> = Table::new("hub_webhooks", "webhook");
/// (webhook id, delivery number) → [`Delivery`].
pub(crate) const DELIVERIES: Table<(u64, u64), Delivery> =
    Table::new("hub_webhook_deliveries", "webhook delivery");
/// (next attempt, unix ms; webhook id; delivery number) → nothing: the pending deliveries in
/// the order they are due.
pub(crate) const DUE: Table<(u64, u64, u64), Vec<u8>, Raw> =
    Table::new("hub_webhook_due", "due webhook delivery");
/// [`CURSOR_LEDGER`], [`CURSOR_EVENTS`], [`NEXT_DELIVERY`] → a number.
pub(crate) const CURSORS: Table<Vec<u8>, u64> = Table::new("hub_webhook_meta", "webhook cursor");
/// The last ledger entry the outbox has read.
pub(crate) const CURSOR_LEDGER: &[u8] = b"ledger";
/// The last event the outbox has read.
pub(crate) const CURSOR_EVENTS: &[u8] = b"events";
/// The number the next delivery gets.
pub(crate) const NEXT_DELIVERY: &[u8] = b"next-delivery";

/// Most characters of a webhook's URL.
pub const MAX_URL_CHARS: usize = 2048;

/// A webhook as the hub keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    pub url: String,
    pub events: Vec<WebhookEventType>,
    /// The HMAC-SHA256 key of its deliveries' signatures (the hub signs, so it keeps it).
    pub secret: [u8; 32],
    /// Only what happened from then on is delivered.
    pub created_at_ms: u64,
}

/// Where a delivery stands.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliveryState {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }
}

/// One event's delivery to one webhook: the body is fixed when the event is read, so every
/// attempt (and a redelivery) sends the same bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub event_id: String,
    pub event_type: WebhookEventType,
    pub body: String,
    pub created_at_ms: u64,
    pub state: DeliveryState,
    pub attempts: u32,
    /// When the next attempt is due (pending deliveries only).
    pub next_attempt_at_ms: u64,
    pub last_attempt_at_ms: Option<u64>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
}

/// How deliveries are tried (`[hub.webhooks]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// The wait after the first failed attempt, milliseconds; each later wait is three times
    /// the one before, at most `max_retry_ms`.
    pub first_retry_ms: u64,
    /// The longest wait between two attempts, milliseconds.
    pub max_retry_ms: u64,
    /// Attempts before a delivery is given up as `failed` (a redelivery tries again).
    pub max_attempts: u32,
    /// How long the receiver has to answer one attempt, milliseconds.
    pub timeout_ms: u64,
    /// How long a delivered or failed delivery is kept (to list and redeliver), seconds.
    pub keep_secs: u64,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        // 10 s, 30 s, 1.5 min, 4.5 min, … 8 h: twelve attempts over about two days.
        WebhookConfig {
            first_retry_ms: 10_000,
            max_retry_ms: 8 * 3_600_000,
            max_attempts: 12,
            timeout_ms: 10_000,
            keep_secs: 30 * 86_400,
        }
    }
}

impl WebhookConfig {
    /// The wait before the next attempt after `attempts` failed ones, or `None` once every
    /// attempt is spent.
    pub fn retry_after_ms(&self, attempts: u32) -> Option<u64> {
        if attempts >= self.max_attempts {
            return None;
        }
        let factor = 3u64.saturating_pow(attempts.saturating_sub(1));
        Some(
            self.first_retry_ms
                .saturating_mul(factor)
                .min(self.max_retry_ms),
        )
    }
}

/// The event a ledger entry of `kind` is, if any (stream ticks received are none: see
/// [`WebhookEventType`]).
pub fn event_of_payment(kind: &PaymentKind) -> Option<WebhookEventType> {
    match kind {
        PaymentKind::Received | PaymentKind::FundIn => Some(WebhookEventType::PaymentReceived),
        PaymentKind::StreamOut | PaymentKind::RoutedOut => Some(WebhookEventType::PayoutSent),
        PaymentKind::StreamIn | PaymentKind::FundRelease | PaymentKind::FundReturn => None,
    }
}

/// The `Doin-Webhook-Signature` of `body` sent at `timestamp` (unix seconds): `v1=` and the
/// hex HMAC-SHA256, keyed with the webhook's secret, of `<timestamp>.<body>`. The receiver
/// computes the same and refuses a timestamp far from its clock (a replayed delivery).
pub fn signature(secret: &[u8; 32], timestamp: u64, body: &str) -> String {
    // A 32-byte key is a valid HMAC key: `new_from_slice` cannot fail on it.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Whether `url` is one the hub delivers to: `http://` with a host, at most
/// [`MAX_URL_CHARS`]. Why not, otherwise.
pub fn check_url(url: &str) -> Result<(), String> {
    if url.chars().count() > MAX_URL_CHARS {
        return Err(format!("a URL of at most {MAX_URL_CHARS} characters"));
    }
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        return Err("an https:// or http:// URL".into());
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.contains('@') || !url.chars().all(|c| c.is_ascii_graphic()) {
        return Err("an https:// or http:// URL with a host and no user or spaces".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_wait_three_times_longer_up_to_the_cap_then_stop() {
        let cfg = WebhookConfig {
            first_retry_ms: 10,
            max_retry_ms: 200,
            max_attempts: 6,
            timeout_ms: 1,
            keep_secs: 1,
        };
        let waits: Vec<_> = (1..=6).map(|a| cfg.retry_after_ms(a)).collect();
        assert_eq!(
            waits,
            [Some(10), Some(30), Some(90), Some(200), Some(200), None]
        );
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Computed apart (Python's hmac module): a receiver in any language gets the same.
        assert_eq!(
            signature(&[0x0b; 32], 1_700_000_000, "{}"),
            "v1=943eb17e669b75864224700e3b506ef93d10a0596eef3b7626af941cf1734edc"
        );
        assert_ne!(
            signature(&[0x0b; 32], 1_700_000_001, "{}"),
            signature(&[0x0b; 32], 1_700_000_000, "{}")
        );
    }

    #[test]
    fn only_https_and_http_urls_with_a_host() {
        assert!(check_url("http://127.0.0.1:8080/hooks").is_ok());
        assert!(check_url("http://example.com").is_ok());
        assert!(check_url("https://example.com/hooks").is_ok());
        for bad in [
            "ftp://x",
            "https://",
            "http://",
            "http:///path",
            "http://user@host/",
            "http://host/a b",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
        assert!(check_url(&format!("http://h/{}", "a".repeat(MAX_URL_CHARS))).is_err());
    }

    #[test]
    fn stream_ticks_in_are_not_events() {
        assert_eq!(event_of_payment(&PaymentKind::StreamIn), None);
        assert_eq!(
            event_of_payment(&PaymentKind::RoutedOut),
            Some(WebhookEventType::PayoutSent)
        );
    }
}
