//! The event stream (`GET /v1/events`): server-sent block and transaction events, resumable by
//! `Last-Event-ID`. Owns only the HTTP side; which events exist and how they are buffered is
//! `events.rs`'s job.

use crate::chain::TxChain;
use crate::events::{Event, EventId};
use crate::views;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use doin_api::tx::*;
use doin_http::{ApiQuery, Problem, ProblemDoc};
use std::sync::Arc;
use std::time::Duration;
use tokio_stream::StreamExt as _;

/// The route of the event stream.
pub fn router(chain: Arc<TxChain>) -> Router {
    Router::new()
        .route("/v1/events", get(events))
        .with_state(chain)
}

/// Most block events rebuilt from the store for one resuming client.
const MAX_REPLAY_BLOCKS: u64 = 10_000;

/// Server-sent events: transfer blocks and mempool entries, or one account's operations;
/// resumable.
#[utoipa::path(get, path = "/v1/events", tag = "transfer chain", params(EventsQuery),
    responses(
        (status = 200, description = "Server-sent events: `block` (payload BlockEvent), `main_block` (payload MainBlockEvent: a main block the transfer block before it anchored), `main_reorg` (payload MainReorgEvent) and `tx` (payload PendingTxEvent); with `account`, only `operation` (payload OperationView). Ids are `<height>-<seq>`; send the last one as `Last-Event-ID` to resume without missing a block, a main block or an operation.", content_type = "text/event-stream"),
        (status = 400, description = "Malformed event id, or an invalid address", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub(crate) async fn events(
    State(chain): State<Arc<TxChain>>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> Result<Response, Problem> {
    let from_header = headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .map(str::to_owned)
                .map_err(|_| Problem::bad_request("invalid-event-id", "Last-Event-ID is not text"))
        })
        .transpose()?;
    let last: Option<EventId> = from_header
        .or(q.last_event_id)
        .map(|s| {
            s.parse()
                .map_err(|e: String| Problem::bad_request("invalid-event-id", e))
        })
        .transpose()?;
    let account = q
        .account
        .as_deref()
        .map(|a| crate::rest::parse_address(&chain, a).map(|a| a.key))
        .transpose()?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Arc<Event>>(256);
    let out = Out {
        chain: chain.clone(),
        account,
        after: last,
        tx,
    };
    tokio::spawn(pump_events(chain, last, out));
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx).map(|ev| {
        Ok::<_, std::convert::Infallible>(
            axum::response::sse::Event::default()
                .id(ev.id.to_string())
                .event(ev.kind)
                .data(ev.data.clone()),
        )
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

/// Where one client's events go: all of them, or, with an account, that account's operations
/// in each block event's place.
struct Out {
    chain: Arc<TxChain>,
    account: Option<doin_types::PublicKeyBytes>,
    /// The client's last id: operations at or before it were sent already.
    after: Option<EventId>,
    tx: tokio::sync::mpsc::Sender<Arc<Event>>,
}

impl Out {
    /// Sends `ev` (or what it stands for); `Err` when the client went away or the store
    /// failed.
    async fn send(&self, ev: Arc<Event>) -> Result<(), ()> {
        let Some(key) = &self.account else {
            return self.tx.send(ev).await.map_err(|_| ());
        };
        if ev.kind != "block" {
            return Ok(());
        }
        self.send_operations(key, ev.id.height).await
    }

    /// The account's operations of block `height` after the client's last id.
    async fn send_operations(
        &self,
        key: &doin_types::PublicKeyBytes,
        height: u64,
    ) -> Result<(), ()> {
        let ops = match self.chain.store().account_operations_at(key, height) {
            Ok(ops) => ops,
            Err(e) => {
                tracing::warn!(error = %e, "account event stream stopped on a store error");
                return Err(());
            }
        };
        let network = self.chain.params().network;
        for (place, op) in ops {
            let id = EventId {
                height,
                seq: u64::from(place.seq) + 1,
            };
            if self.after.is_some_and(|after| id <= after) {
                continue;
            }
            let view = crate::account_api::operation_view(network, place, &op);
            let data = serde_json::to_string(&view).map_err(|_| ())?;
            let ev = Arc::new(Event {
                id,
                kind: "operation",
                data,
            });
            self.tx.send(ev).await.map_err(|_| ())?;
        }
        Ok(())
    }
}

/// Feeds one SSE client: rebuilt block events, buffered events, then live ones, never an id
/// twice or out of order. Ends when the client goes away.
async fn pump_events(chain: Arc<TxChain>, last: Option<EventId>, out: Out) {
    let mut live = chain.events().subscribe();
    // An id from the future (another chain, a reset devnet) would block the stream until the
    // chain caught up with it: treat it as "from now on".
    let now = chain.events().last_id();
    let mut sent = last.filter(|id| *id <= now).unwrap_or(now);
    if let (None, Some(resumed)) = (&out.account, last.filter(|id| *id <= now)) {
        // `main_reorg` events of the resumed height that the memory no longer holds (a
        // restart) come from the store; whatever the memory still holds at that height is
        // newer, so they go first.
        let buffered: Vec<EventId> = chain
            .events()
            .replay_after(resumed)
            .buffered
            .iter()
            .map(|e| e.id)
            .collect();
        let kept = match chain.store().main_reorgs_at(resumed.height) {
            Ok(kept) => kept,
            Err(e) => {
                tracing::warn!(error = %e, "event replay stopped on a store error");
                return;
            }
        };
        for (seq, data) in kept {
            let id = EventId {
                height: resumed.height,
                seq,
            };
            if id > sent && !buffered.contains(&id) {
                sent = id;
                let ev = Arc::new(Event {
                    id,
                    kind: "main_reorg",
                    data,
                });
                if out.send(ev).await.is_err() {
                    return;
                }
            }
        }
    }
    if let Some(key) = &out.account {
        // An account stream resumes inside a block: the rest of that block's operations
        // first; block events are then the blocks after it.
        if last.is_some_and(|id| id <= now)
            && sent.seq > 0
            && out.send_operations(key, sent.height).await.is_err()
        {
            return;
        }
        sent = EventId {
            height: sent.height,
            seq: u64::MAX,
        };
    }
    loop {
        let replay = chain.events().replay_after(sent);
        if let Some((lo, hi)) = replay.missing_blocks {
            // Blocks this node pruned are not replayed: the stream resumes at its oldest.
            let lo = lo
                .max(hi.saturating_sub(MAX_REPLAY_BLOCKS - 1))
                .max(chain.store().kept().bodies_from);
            for h in lo..=hi {
                let block = match chain.store().block(h) {
                    Ok(Some(b)) => b,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "event replay stopped on a store error");
                        return;
                    }
                };
                let Ok(hash) = block.hash() else { return };
                let mut rebuilt = vec![Arc::new(Event {
                    id: EventId { height: h, seq: 0 },
                    kind: "block",
                    data: views::block_event(&block, &hash),
                })];
                let network = chain.params().network;
                for (seq, e) in (1..).zip(chain.anchored_effects(&block)) {
                    rebuilt.push(Arc::new(Event {
                        id: EventId { height: h, seq },
                        kind: "main_block",
                        data: views::main_block_event(&e, h, network),
                    }));
                }
                let reorgs = match chain.store().main_reorgs_at(h) {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!(error = %e, "event replay stopped on a store error");
                        return;
                    }
                };
                for (seq, data) in reorgs {
                    rebuilt.push(Arc::new(Event {
                        id: EventId { height: h, seq },
                        kind: "main_reorg",
                        data,
                    }));
                }
                for ev in rebuilt {
                    sent = ev.id;
                    if out.send(ev).await.is_err() {
                        return;
                    }
                }
            }
        }
        for ev in replay.buffered {
            if ev.id > sent {
                sent = ev.id;
                if out.send(ev).await.is_err() {
                    return;
                }
            }
        }
        // Live until we fall behind; then replay again from what was sent.
        loop {
            match live.recv().await {
                Ok(ev) => {
                    if ev.id > sent {
                        sent = ev.id;
                        if out.send(ev).await.is_err() {
                            return;
                        }
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => break,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}
