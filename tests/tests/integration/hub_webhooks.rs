//! Webhooks of the hub on a real transfer chain and store, delivered over HTTP to a receiver
//! in the test: every delivery signed (HMAC over timestamp and body), a refused attempt tried
//! again with the same id, nothing delivered twice or lost across a restart, channel events
//! written with the change they report, a redelivery, and a removed webhook told nothing more.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use doin_hub::store::{ChannelRole, HubEventKind, PaymentKind};
use doin_hub::webhook_records::{signature, DeliveryState, Webhook, WebhookEventType};
use doin_hub::{Hub, HubConfig, WebhookConfig};
use doin_tests::hub_harness::{
    exchange, open_hub, payee_invoice, pull, tick_context, unix_now, HubWorld, UNIT,
};
use doin_types::{Amount, Msat};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the receiver got: each request's headers and body.
type Received = Arc<std::sync::Mutex<Vec<(HeaderMap, String)>>>;

/// A receiver on a free loopback port that refuses its first request (500) and takes the rest.
fn receiver(rt: &tokio::runtime::Runtime) -> (String, Received) {
    let got: Received = Arc::default();
    let seen = got.clone();
    let app = axum::Router::new().route(
        "/hooks",
        post(move |headers: HeaderMap, body: String| {
            let seen = seen.clone();
            async move {
                let mut all = seen.lock().unwrap();
                all.push((headers, body));
                if all.len() == 1 {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::NO_CONTENT
                }
            }
        }),
    );
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    rt.spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).unwrap().to_str().unwrap()
}

/// Feeds the outbox and sends until nothing is pending (or 20 s pass).
fn deliver_all(rt: &tokio::runtime::Runtime, hub: &Arc<Hub>, client: &reqwest::Client) {
    while doin_hub::webhooks::feed(hub).unwrap() {}
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        rt.block_on(doin_hub::webhooks::send_due(hub, client))
            .unwrap();
        if hub.webhooks().next_due_ms().unwrap().is_none() {
            return;
        }
        assert!(
            Instant::now() < until,
            "deliveries still pending after 20 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn hub_with_webhooks(hub: Hub) -> Arc<Hub> {
    Arc::new(hub.with_webhook_config(WebhookConfig {
        first_retry_ms: 50,
        max_retry_ms: 50,
        max_attempts: 5,
        timeout_ms: 5_000,
        keep_secs: 3_600,
    }))
}

#[test]
fn webhooks_are_signed_retried_kept_across_a_restart_and_redelivered() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = HubConfig {
        dispute_blocks: 4,
        min_dispute_blocks: 3,
        cltv_delta: 5,
        ..HubConfig::default()
    };
    let HubWorld {
        net,
        hub,
        hub_key,
        mut payer,
        mut payee,
        in_id,
        out_id,
    } = HubWorld::new(dir.path(), cfg.clone(), 50_000, 100_000);
    // The hub's channel to the payee reached the chain, then the payer's was taken on: their
    // events were written with them.
    let events = hub.store().events(0, 10).unwrap();
    let opened =
        |channel, peer, role, hub_units: u64, peer_units: u64| HubEventKind::ChannelOpened {
            channel,
            peer,
            role,
            hub_msat: Msat::new(hub_units * UNIT),
            peer_msat: Msat::new(peer_units * UNIT),
        };
    assert_eq!(
        events.iter().map(|e| e.kind.clone()).collect::<Vec<_>>(),
        [
            opened(
                out_id,
                payee.key.public(),
                ChannelRole::Outgoing,
                100_000,
                0
            ),
            opened(in_id, payer.key.public(), ChannelRole::Incoming, 0, 50_000),
        ]
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    let (url, got) = receiver(&rt);
    let client = reqwest::Client::new();
    let hub = hub_with_webhooks(hub);
    let secret = [7u8; 32];
    let id = doin_hub::webhooks::create(
        &hub,
        &Webhook {
            url,
            events: vec![
                WebhookEventType::PayoutSent,
                WebhookEventType::ChannelOpened,
                WebhookEventType::ChannelClosed,
            ],
            secret,
            created_at_ms: u64::try_from(unix_now().as_millis()).unwrap(),
        },
    )
    .unwrap()
    .unwrap();

    // A channel the hub opens now (after the webhook was made) reaches the chain, and stream
    // money is delivered to the payee.
    let third = hub
        .open_outgoing(payer.key.public(), Amount::from_base_units(1_000))
        .unwrap();
    net.block();
    assert_eq!(hub.watch().unwrap().confirmed, vec![third]);
    let stream_invoice = payee_invoice(&payee.key, 1_000 * UNIT, [1; 32], "evaluation stream");
    let stream = hub.open_stream(in_id, &stream_invoice).unwrap();
    let h = net.height();
    for _ in 0..3 {
        let tick = payer.pay(50_000, h);
        exchange(&hub, &mut payer, &in_id, tick, tick_context(stream.id), h);
        while pull(&hub, &mut payee, &out_id, h) {}
    }
    let paid_out: Vec<u64> = hub
        .store()
        .payments(0, 1_000)
        .unwrap()
        .iter()
        .filter(|p| p.kind == PaymentKind::StreamOut)
        .map(|p| p.amount_msat.get())
        .collect();
    assert!(!paid_out.is_empty());
    deliver_all(&rt, &hub, &client);

    let requests = got.lock().unwrap().clone();
    // One request per event, and the refused first one once more.
    assert_eq!(requests.len(), 1 + paid_out.len() + 1, "{requests:?}");
    for (headers, body) in &requests {
        let ts: u64 = header(headers, "doin-webhook-timestamp").parse().unwrap();
        assert_eq!(
            header(headers, "doin-webhook-signature"),
            signature(&secret, ts, body),
            "every delivery is signed over its timestamp and body"
        );
        assert!(header(headers, "doin-webhook-id").starts_with(&format!("{id:016x}-")));
    }
    // Sent side by side, so in any order; the refused one came again, the same.
    let refused = header(&requests[0].0, "doin-webhook-id");
    let repeats: Vec<&(HeaderMap, String)> = requests
        .iter()
        .filter(|(h, _)| header(h, "doin-webhook-id") == refused)
        .collect();
    assert_eq!(repeats.len(), 2, "a retry carries the same delivery id");
    assert_eq!(repeats[0].1, repeats[1].1);
    let bodies: Vec<Value> = requests[1..]
        .iter()
        .map(|(_, b)| serde_json::from_str(b).unwrap())
        .collect();
    let opened: Vec<&Value> = bodies
        .iter()
        .filter(|b| b["type"] == "channel.opened")
        .collect();
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0]["data"]["channel"], third.to_hex());
    assert_eq!(opened[0]["data"]["role"], "outgoing");
    assert_eq!(opened[0]["data"]["hub_msat"], (1_000 * UNIT).to_string());
    assert_eq!(opened[0]["data"]["peer_msat"], "0");
    let mut sent: Vec<u64> = bodies
        .iter()
        .filter(|b| b["type"] == "payout.sent")
        .map(|b| b["data"]["amount_msat"].as_str().unwrap().parse().unwrap())
        .collect();
    sent.sort_unstable();
    let mut expected = paid_out.clone();
    expected.sort_unstable();
    assert_eq!(sent, expected, "each payout told once, with its amount");
    let deliveries = hub.webhooks().deliveries(id, 0, 100).unwrap();
    assert!(deliveries
        .iter()
        .all(|(_, d)| d.state == DeliveryState::Delivered && d.last_status == Some(204)));
    for (seq, d) in &deliveries {
        let tried = if refused == format!("{id:016x}-{seq}") {
            2
        } else {
            1
        };
        assert_eq!(d.attempts, tried);
    }

    // A restart: the outbox and its cursors are where they were; nothing is made twice.
    drop(hub);
    let hub = hub_with_webhooks(open_hub(dir.path(), &hub_key, &net, cfg));
    deliver_all(&rt, &hub, &client);
    assert_eq!(hub.webhooks().deliveries(id, 0, 100).unwrap(), deliveries);
    assert_eq!(got.lock().unwrap().len(), requests.len());

    // The service as the node runs it: the operator closes the payee's channel; once paid
    // out on chain, `channel.closed` arrives by itself.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let service = rt.spawn(doin_hub::webhooks::run(hub.clone(), async move {
        let _ = stopped.await;
    }));
    hub.close(&out_id).unwrap();
    net.block();
    hub.watch().unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    while got.lock().unwrap().len() == requests.len() {
        assert!(
            Instant::now() < until,
            "no delivery from the running service"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.send(()).unwrap();
    rt.block_on(service).unwrap().unwrap();
    let last: Value = serde_json::from_str(&got.lock().unwrap().last().unwrap().1).unwrap();
    assert_eq!(last["type"], "channel.closed");
    assert_eq!(last["data"]["channel"], out_id.to_hex());
    assert_eq!(last["data"]["closed_at_height"], net.height());

    // A redelivery sends the same body under the same id again.
    let (first_seq, first) = &deliveries[0];
    let again = hub
        .webhooks()
        .redeliver(
            (id, *first_seq),
            u64::try_from(unix_now().as_millis()).unwrap(),
        )
        .unwrap()
        .unwrap();
    assert_eq!(again.state, DeliveryState::Pending);
    deliver_all(&rt, &hub, &client);
    let (headers, body) = got.lock().unwrap().last().unwrap().clone();
    assert_eq!(body, first.body);
    assert_eq!(
        header(&headers, "doin-webhook-id"),
        format!("{id:016x}-{first_seq}")
    );

    // Removed: its deliveries go, and nothing more is told.
    let told = got.lock().unwrap().len();
    assert!(hub.webhooks().delete(id).unwrap());
    assert!(hub.webhooks().deliveries(id, 0, 100).unwrap().is_empty());
    hub.close(&in_id).unwrap();
    net.block();
    hub.watch().unwrap();
    deliver_all(&rt, &hub, &client);
    assert_eq!(got.lock().unwrap().len(), told);
}
