//! The channel protocol over REST: a peer sends its channel messages to the hub
//! (`POST /v1/hub/channels/{id}/messages`, one message or a `Confirm` pipelined with the next)
//! and fetches the hub's own proposals (`GET /v1/hub/channels/{id}/outbox`, or pushed as
//! server-sent events by `GET /v1/hub/channels/{id}/outbox/events`).
//!
//! Every message is authenticated: the peer signs (BIP340) the tagged hash
//! `message_auth_hash` (or `pipelined_auth_hash`, both `doin_hub_core::auth`'s; the body is
//! read by `doin_hub_core::request`) of the chain id, the channel id, the
//! message and the context it names, so nobody but the channel's peer can make the hub sign
//! or block anything. What the hub does with a message is `hub` and `flow`'s job; this module
//! parses, authenticates and formats only.

use crate::hub::{HubError, ProposalContext};
use crate::ledger_api::payment_view;
use crate::rest::{blocking, not_the_peer, parse_hash, problem, St};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::Json;
use doin_api::hub::*;
use doin_crypto::verify;
use doin_http::{path_problem, ApiJson, Problem, ProblemDoc};
use doin_hub_core::request::MessageBody;

/// Send a channel protocol message to the hub.
#[utoipa::path(post, path = "/v1/hub/channels/{id}/messages", tag = "hub", request_body = MessageRequest,
    params(("id" = String, Path, description = "Channel id (hex)", pattern = r"^(0x)?[0-9a-fA-F]{64}$")),
    responses(
        (status = 200, description = "Handled; the reply is durable", body = MessageResponse),
        (status = 400, description = "Malformed message, bad signature, or a protocol error", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "Not signed by the channel's peer", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "Not a channel of this hub", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub(crate) async fn post_message(
    State(hub): St,
    id: Result<Path<String>, PathRejection>,
    body: ApiJson<MessageRequest>,
) -> Result<Json<MessageResponse>, Problem> {
    let Path(id) = id.map_err(path_problem)?;
    let id = parse_hash(&id, "channel id")?;
    let req = MessageBody::parse(body.0).map_err(|e| Problem::bad_request(e.kind, e.detail))?;
    let peer = hub
        .channel(&id)
        .ok_or_else(|| problem(HubError::UnknownChannel(id)))?
        .peer;
    let hash = req.auth_hash(&hub.chain().chain_id(), &id);
    verify(&peer, &hash, &req.signature).map_err(|_| not_the_peer())?;
    let MessageBody {
        message: (_, msg),
        next,
        stream,
        invoice,
        vote_optimae,
        split,
        fund_optimae: fund,
        ..
    } = req;
    // The vote is the stream payee's: a vote without a stream names nobody to pay.
    let vote = match (vote_optimae, &stream) {
        (None, _) => None,
        (Some(optimae), Some(sid)) => {
            let payee = hub
                .stream(sid)
                .ok_or_else(|| problem(HubError::UnknownStream(*sid)))?
                .payee;
            Some(crate::store::VoteRef {
                optimae,
                evaluator: payee,
            })
        }
        (Some(_), None) => {
            return Err(Problem::bad_request(
                "invalid-request",
                "vote_optimae names the vote a stream tick pays: give the stream too",
            ))
        }
    };
    let ctx = ProposalContext {
        stream,
        invoice,
        vote,
        split,
        fund,
    };
    let h = hub.clone();
    let handled = blocking(move || match next {
        None => h.handle(&id, msg, ctx),
        Some((_, next)) => h.handle_pipelined(&id, msg, next, ctx),
    })
    .await?;
    let reply = handled
        .reply
        .map(|m| m.encode().map(hex::encode))
        .transpose()
        .map_err(Problem::internal)?;
    Ok(Json(MessageResponse {
        reply,
        payments: handled
            .payments
            .iter()
            .map(|p| payment_view(&hub, p))
            .collect(),
    }))
}

/// The hub's pending messages for a channel's peer.
#[utoipa::path(get, path = "/v1/hub/channels/{id}/outbox", tag = "hub",
    params(("id" = String, Path, description = "Channel id (hex)", pattern = r"^(0x)?[0-9a-fA-F]{64}$")),
    responses(
        (status = 200, description = "The hub's pending proposal on this channel, for the peer to accept", body = OutboxView),
        (status = 404, description = "Not a channel of this hub", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub(crate) async fn outbox(
    State(hub): St,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<OutboxView>, Problem> {
    let Path(id) = id.map_err(path_problem)?;
    let id = parse_hash(&id, "channel id")?;
    let m = hub.outbox(&id).map_err(problem)?;
    Ok(Json(OutboxView {
        message: m
            .map(|m| m.encode().map(hex::encode))
            .transpose()
            .map_err(Problem::internal)?,
    }))
}

/// The hub's proposals on a channel, pushed as they are made.
#[utoipa::path(get, path = "/v1/hub/channels/{id}/outbox/events", tag = "hub",
    params(("id" = String, Path, description = "Channel id (hex)", pattern = r"^(0x)?[0-9a-fA-F]{64}$")),
    responses(
        (status = 200, description = "Server-sent `proposal` events (OutboxView, never null) whenever the hub has a new proposal waiting on this channel, once it is durable; the id is the proposed state's seq. The proposal waiting when the stream opens (or reopens) is sent first, so a reconnecting peer misses nothing.", content_type = "text/event-stream"),
        (status = 400, description = "Bad channel id", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "Not a channel of this hub", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub(crate) async fn outbox_events(
    State(hub): St,
    id: Result<Path<String>, PathRejection>,
) -> Result<axum::response::Response, Problem> {
    let Path(id) = id.map_err(path_problem)?;
    let id = parse_hash(&id, "channel id")?;
    // Subscribed before the first look: a proposal made in between is not missed.
    let changes = hub.subscribe_channel_changes();
    hub.outbox(&id).map_err(problem)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<(u64, OutboxView)>(16);
    tokio::spawn(pump_proposals(hub, id, changes, tx));
    Ok(crate::rest::sse_response(rx, "proposal"))
}

/// Feeds one client: each new proposal on `id` (the one waiting first), once.
async fn pump_proposals(
    hub: std::sync::Arc<crate::hub::Hub>,
    id: doin_tx_core::channel::ChannelId,
    mut changes: tokio::sync::broadcast::Receiver<doin_tx_core::channel::ChannelId>,
    out: tokio::sync::mpsc::Sender<(u64, OutboxView)>,
) {
    use tokio::sync::broadcast::error::RecvError;
    let mut last_sent: Option<String> = None;
    loop {
        let waiting = match hub.outbox(&id) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "proposal feed stopped");
                return;
            }
        };
        if let Some(m) = waiting {
            use doin_channels::Message;
            let (Message::Propose { seq, .. }
            | Message::Accept { seq, .. }
            | Message::Confirm { seq, .. }
            | Message::Reject { seq, .. }) = &m;
            let Ok(hex) = m.encode().map(hex::encode) else {
                return;
            };
            if last_sent.as_deref() != Some(hex.as_str()) {
                let view = OutboxView {
                    message: Some(hex.clone()),
                };
                if out.send((*seq, view)).await.is_err() {
                    return;
                }
                last_sent = Some(hex);
            }
        }
        // Wait for this channel to change; a lagging receiver looks again; the client leaving
        // ends the feed (checked while waiting, so an idle feed is not kept forever).
        loop {
            tokio::select! {
                changed = changes.recv() => match changed {
                    Ok(c) if c == id => break,
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => break,
                    Err(RecvError::Closed) => return,
                },
                _ = out.closed() => return,
            }
        }
    }
}
