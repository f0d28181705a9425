//! Webhooks at work: reads the ledger and the hub's events after the outbox's cursors,
//! renders each event's body once (the same JSON the API shows), hands them to the
//! [`crate::webhook_outbox::Outbox`] (which makes them durable deliveries), and POSTs the
//! deliveries as they fall due, recording each attempt's outcome there.
//!
//! A delivery is `POST <url>` with the JSON body `{"id", "type", "created_at_ms", "data"}` and
//! the headers `Doin-Webhook-Id` (`<webhook>-<delivery number>`, the same on every attempt),
//! `Doin-Webhook-Event`, `Doin-Webhook-Timestamp` (unix seconds of this attempt) and
//! `Doin-Webhook-Signature` ([`crate::webhook_records::signature`]). A 2xx answer delivers it;
//! anything else is tried again with backoff. Deliveries are independent: a receiver down
//! for a while gets them late, not out of existence, and not necessarily in order (the
//! body's `created_at_ms` and the ids order them).

use crate::hub::Hub;
use crate::ledger_api::payment_view;
use crate::rest::addr;
use crate::store::{HubEvent, HubEventKind, Payment};
use crate::webhook_outbox::{Attempt, Cursors, OutboxEvent};
use crate::webhook_records::{event_of_payment, signature, Delivery, Webhook};
use doin_api::hub::{ChannelEventView, FundSettledView, WebhookEventType};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Ledger entries and events read per feeding step.
const FEED_PAGE: usize = 1_000;
/// How often the feeder looks for new ledger entries and events.
const FEED_EVERY: Duration = Duration::from_millis(500);
/// Deliveries attempted at once.
const SEND_AT_ONCE: usize = 16;
/// How often deliveries past `keep_secs` are removed, and how many at most each time.
const PRUNE_EVERY: Duration = Duration::from_secs(3_600);
const PRUNE_AT_ONCE: usize = 100_000;

fn now_ms() -> u64 {
    u64::try_from(crate::hub::now().as_millis()).unwrap_or(u64::MAX)
}

fn body(
    event_id: &str,
    event_type: WebhookEventType,
    at_ms: u64,
    data: serde_json::Value,
) -> String {
    serde_json::json!({
        "id": event_id,
        "type": event_type,
        "created_at_ms": at_ms,
        "data": data,
    })
    .to_string()
}

fn of_payment(hub: &Hub, p: &Payment) -> Option<OutboxEvent> {
    let event_type = event_of_payment(&p.kind)?;
    let event_id = format!("p{}", p.seq);
    let data = serde_json::to_value(payment_view(hub, p)).ok()?;
    Some(OutboxEvent {
        body: body(&event_id, event_type, p.at_ms, data),
        event_id,
        event_type,
        at_ms: p.at_ms,
    })
}

fn of_event(hub: &Hub, e: &HubEvent) -> Option<OutboxEvent> {
    let (event_type, data) = match &e.kind {
        HubEventKind::ChannelOpened {
            channel,
            peer,
            role,
            hub_msat,
            peer_msat,
        } => (
            WebhookEventType::ChannelOpened,
            serde_json::to_value(ChannelEventView {
                channel: channel.to_hex(),
                peer: addr(hub, peer),
                role: role.as_str().into(),
                hub_msat: Some(hub_msat.to_string()),
                peer_msat: Some(peer_msat.to_string()),
                closed_at_height: None,
            }),
        ),
        HubEventKind::ChannelClosed {
            channel,
            peer,
            role,
            height,
        } => (
            WebhookEventType::ChannelClosed,
            serde_json::to_value(ChannelEventView {
                channel: channel.to_hex(),
                peer: addr(hub, peer),
                role: role.as_str().into(),
                hub_msat: None,
                peer_msat: None,
                closed_at_height: Some(*height),
            }),
        ),
        HubEventKind::FundSettled {
            optimae,
            payer_channel,
            funded_msat,
            released_msat,
            returned_msat,
            evaluators_paid,
        } => (
            WebhookEventType::FundSettled,
            serde_json::to_value(FundSettledView {
                optimae: optimae.to_hex(),
                payer_channel: payer_channel.to_hex(),
                funded_msat: funded_msat.to_string(),
                released_msat: released_msat.to_string(),
                returned_msat: returned_msat.to_string(),
                evaluators_paid: *evaluators_paid,
            }),
        ),
    };
    let event_id = format!("e{}", e.seq);
    Some(OutboxEvent {
        body: body(&event_id, event_type, e.at_ms, data.ok()?),
        event_id,
        event_type,
        at_ms: e.at_ms,
    })
}

/// The last ledger entry and event now.
pub fn tips(hub: &Hub) -> Result<Cursors, crate::hub::HubError> {
    let store = hub.store();
    Ok(Cursors {
        ledger: store.next_payment_seq()?.saturating_sub(1),
        events: store.next_event_seq()?.saturating_sub(1),
    })
}

/// Makes webhook `hook`: told of what happens from now on. Its id, or `None` when the hub
/// has its most webhooks already.
pub fn create(hub: &Hub, hook: &Webhook) -> Result<Option<u64>, crate::hub::HubError> {
    Ok(hub.webhooks().create(hook, tips(hub)?)?)
}

/// One feeding step: what the ledger and the events hold past the cursors becomes
/// deliveries. Whether there may be more to read at once.
pub fn feed(hub: &Hub) -> Result<bool, crate::hub::HubError> {
    let store = hub.store();
    let outbox = hub.webhooks();
    let tips = tips(hub)?;
    // No webhook was ever made: nothing to read.
    let Some(from) = outbox.cursors()? else {
        return Ok(false);
    };
    if from == tips {
        return Ok(false);
    }
    if outbox.webhooks()?.is_empty() {
        // Nobody to tell: the cursors follow the tips.
        outbox.feed(&[], tips, now_ms())?;
        return Ok(false);
    }
    let payments = store.payments(from.ledger, FEED_PAGE)?;
    let events = store.events(from.events, FEED_PAGE)?;
    let to = Cursors {
        ledger: payments.last().map_or(from.ledger, |p| p.seq),
        events: events.last().map_or(from.events, |e| e.seq),
    };
    let mut out: Vec<OutboxEvent> = payments.iter().filter_map(|p| of_payment(hub, p)).collect();
    out.extend(events.iter().filter_map(|e| of_event(hub, e)));
    outbox.feed(&out, to, now_ms())?;
    Ok(payments.len() == FEED_PAGE || events.len() == FEED_PAGE)
}

/// POSTs one delivery and says what came of it.
async fn attempt(
    client: &reqwest::Client,
    key: (u64, u64),
    hook: &Webhook,
    d: &Delivery,
) -> Attempt {
    let timestamp = now_ms() / 1_000;
    let sent = client
        .post(&hook.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("Doin-Webhook-Id", format!("{:016x}-{}", key.0, key.1))
        .header("Doin-Webhook-Event", event_name(d.event_type))
        .header("Doin-Webhook-Timestamp", timestamp.to_string())
        .header(
            "Doin-Webhook-Signature",
            signature(&hook.secret, timestamp, &d.body),
        )
        .body(d.body.clone())
        .send()
        .await;
    match sent {
        Ok(answer) => Attempt::Answered(answer.status().as_u16()),
        Err(e) => Attempt::NoAnswer(e.without_url().to_string()),
    }
}

/// The event's type as the API spells it.
pub fn event_name(t: WebhookEventType) -> String {
    serde_json::to_value(t)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Attempts every delivery due now, 16 at a time; how many it attempted.
pub async fn send_due(hub: &Arc<Hub>, client: &reqwest::Client) -> Result<usize, String> {
    let h = hub.clone();
    let due = tokio::task::spawn_blocking(move || h.webhooks().due(now_ms(), SEND_AT_ONCE))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let mut sending = tokio::task::JoinSet::new();
    for (key, hook, d) in due {
        let client = client.clone();
        sending.spawn(async move { (key, attempt(&client, key, &hook, &d).await) });
    }
    let mut n = 0;
    while let Some(done) = sending.join_next().await {
        let (key, outcome) = done.map_err(|e| e.to_string())?;
        let h = hub.clone();
        tokio::task::spawn_blocking(move || h.webhooks().record(key, outcome, now_ms()))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        n += 1;
    }
    Ok(n)
}

/// Runs the feeder and the sender until `stop` completes. A store failure ends it with the
/// error (the node logs it); a receiver's failure is only the delivery's.
pub async fn run(hub: Arc<Hub>, stop: impl Future<Output = ()> + Send) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(hub.webhooks().config().timeout_ms))
        // A redirect would send the signed body somewhere the operator did not name.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("doin-hub-webhooks")
        .build()
        .map_err(|e| e.to_string())?;
    tokio::select! {
        r = feed_loop(hub.clone()) => r,
        r = send_loop(hub, client) => r,
        _ = stop => Ok(()),
    }
}

async fn feed_loop(hub: Arc<Hub>) -> Result<(), String> {
    loop {
        let h = hub.clone();
        let more = tokio::task::spawn_blocking(move || feed(&h))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        if !more {
            tokio::time::sleep(FEED_EVERY).await;
        }
    }
}

async fn send_loop(hub: Arc<Hub>, client: reqwest::Client) -> Result<(), String> {
    let mut pruned_at: Option<std::time::Instant> = None;
    loop {
        if pruned_at.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
            pruned_at = Some(std::time::Instant::now());
            let h = hub.clone();
            let keep_ms = hub.webhooks().config().keep_secs.saturating_mul(1_000);
            let n = tokio::task::spawn_blocking(move || {
                h.webhooks()
                    .prune(now_ms().saturating_sub(keep_ms), PRUNE_AT_ONCE)
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
            if n > 0 {
                tracing::info!(deliveries = n, "hub: old webhook deliveries removed");
            }
        }
        if send_due(&hub, &client).await? > 0 {
            continue;
        }
        let h = hub.clone();
        let next = tokio::task::spawn_blocking(move || h.webhooks().next_due_ms())
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        // Until the next one falls due, a new one is made due now, or a second passes.
        let wait = next.map_or(1_000, |at| at.saturating_sub(now_ms()).min(1_000));
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
            _ = hub.webhooks().due_now.notified() => {}
        }
    }
}
