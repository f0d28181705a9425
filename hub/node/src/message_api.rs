//! The channel protocol over REST: a peer sends its channel messages to the hub
//! (`POST /v1/hub/channels/{id}/messages`, one message or a `Confirm` pipelined with the next)
//! and fetches the hub's own proposals (`GET /v1/hub/channels/{id}/outbox`).
//!
//! Every message is authenticated: the peer signs (BIP340) the tagged hash
//! [`message_auth_hash`] (or [`pipelined_auth_hash`], both `doin-hub-core`'s) of the chain id, the channel id, the
//! message and the context it names, so nobody but the channel's peer can make the hub sign
//! or block anything. What the hub does with a message is `hub` and `flow`'s job; this module
//! parses, authenticates and formats only.

use crate::hub::{HubError, ProposalContext};
use crate::ledger_api::{payment_view, PaymentView};
use crate::rest::{blocking, hex32, not_the_peer, parse_hash, problem, St};
use crate::store::StreamShare;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::Json;
use doin_channels::Message;
use doin_crypto::verify;
use doin_http::{path_problem, ApiJson, Problem, ProblemDoc};
use doin_hub_core::auth::{message_auth_hash, pipelined_auth_hash, SignedContext};
use doin_types::{Msat, SignatureBytes};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageRequest {
    /// The channel message (bincode, hex), see docs/channels.md.
    pub message: String,
    /// A stream tick: the stream it pays (hex).
    pub stream: Option<String>,
    /// An HTLC through the hub: the invoice it pays.
    pub invoice: Option<String>,
    /// Evaluator pay: a stream tick that pays the verification fee of the stream payee's vote
    /// on this optimae (hex). The hub signs it only for a vote the main chain holds, that
    /// agreed with the decision and was not paid before, and only for exactly the fee.
    pub vote_optimae: Option<String>,
    /// Pipelining: a second message (hex), handled right after `message` in the same durable
    /// step; `message` must then be a `Confirm`, and `stream`, `invoice` and `vote_optimae`
    /// belong to this one. A streaming payer confirms one tick and proposes the next in one
    /// request.
    pub next: Option<String>,
    /// A split tick: the payer pays several of its streams with one `Pay` (one signature for
    /// them all), each stream its share (which may pay a vote's verification fee); the shares
    /// add up to the `Pay`. Given alone (no `stream`, `invoice` or `vote_optimae`), at most 64
    /// shares, each stream once.
    pub split: Option<Vec<ShareRequest>>,
    /// A funding tick: the `Pay` goes into this optimae's verification fund (hex), which the
    /// hub pays out to the agreeing evaluators once the decision is final and returns the
    /// rest of. Given alone; only while the optimae is revealed and not finally decided.
    pub fund_optimae: Option<String>,
    /// The peer's BIP340 signature (hex) over `H_tag("doin/hub-message", chain_id ‖
    /// channel_id ‖ message ‖ stream ‖ SHA-256(invoice) ‖ vote_optimae ‖ split digest ‖
    /// fund_optimae)`, each of the last five 32 zero bytes when absent; with `next`, over
    /// `H_tag("doin/hub-messages", chain_id ‖ channel_id ‖ SHA-256(message) ‖ SHA-256(next) ‖
    /// the same five)`. The split digest is `SHA-256(stream ‖ amount_msat as u64 big-endian ‖
    /// vote_optimae or 32 zero bytes, for each share in order)`, or 32 zero bytes without
    /// `split`.
    pub signature: String,
}

/// One stream's share of a split tick.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShareRequest {
    /// The stream (hex).
    pub stream: String,
    /// Its share of the tick in milli-units (decimal string).
    pub amount_msat: String,
    /// Evaluator pay: the share is the verification fee of the stream payee's vote on this
    /// optimae (hex), checked like `vote_optimae` of a single tick.
    pub vote_optimae: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct MessageResponse {
    /// The hub's answer (hex), already durable; null when none is due.
    pub reply: Option<String>,
    /// Ledger entries this message completed.
    pub payments: Vec<PaymentView>,
}

#[utoipa::path(post, path = "/v1/hub/channels/{id}/messages", tag = "hub", request_body = MessageRequest,
    params(("id" = String, Path, description = "Channel id (hex)")),
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
    let req = body.0;
    let bytes = hex::decode(&req.message)
        .map_err(|e| Problem::bad_request("invalid-hex", format!("message: {e}")))?;
    let msg = Message::decode(&bytes)
        .map_err(|e| Problem::bad_request("malformed-message", e.to_string()))?;
    let next = match &req.next {
        None => None,
        Some(text) => {
            let b = hex::decode(text)
                .map_err(|e| Problem::bad_request("invalid-hex", format!("next: {e}")))?;
            let m = Message::decode(&b)
                .map_err(|e| Problem::bad_request("malformed-message", format!("next: {e}")))?;
            if !matches!(msg, Message::Confirm { .. }) {
                return Err(Problem::bad_request(
                    "invalid-request",
                    "only a Confirm can be followed by a next message",
                ));
            }
            Some((b, m))
        }
    };
    let stream = req
        .stream
        .as_deref()
        .map(|s| parse_hash(s, "stream"))
        .transpose()?;
    let split = req
        .split
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|share| {
            Ok(StreamShare {
                stream: parse_hash(&share.stream, "split stream")?,
                amount_msat: share.amount_msat.parse().map(Msat::new).map_err(|_| {
                    Problem::bad_request(
                        "invalid-amount",
                        "split amount_msat: a whole number of milli-units",
                    )
                })?,
                vote_optimae: share
                    .vote_optimae
                    .as_deref()
                    .map(|o| parse_hash(o, "split vote_optimae"))
                    .transpose()?,
            })
        })
        .collect::<Result<Vec<_>, Problem>>()?;
    if req
        .split
        .as_ref()
        .is_some_and(|s| s.is_empty() || s.len() > doin_hub_core::MAX_SPLIT_SHARES)
    {
        return Err(Problem::bad_request(
            "invalid-request",
            format!(
                "split names 1 to {} shares",
                doin_hub_core::MAX_SPLIT_SHARES
            ),
        ));
    }
    let sig = SignatureBytes(hex32(&req.signature, "signature")?);
    let peer = hub
        .channel(&id)
        .ok_or_else(|| problem(HubError::UnknownChannel(id)))?
        .peer;
    let vote_optimae = req
        .vote_optimae
        .as_deref()
        .map(|s| parse_hash(s, "vote_optimae"))
        .transpose()?;
    let chain_id = hub.chain().chain_id();
    let fund = req
        .fund_optimae
        .as_deref()
        .map(|s| parse_hash(s, "fund_optimae"))
        .transpose()?;
    let signed = SignedContext {
        stream: stream.as_ref(),
        invoice: req.invoice.as_deref(),
        vote_optimae: vote_optimae.as_ref(),
        split: &split,
        fund_optimae: fund.as_ref(),
    };
    let hash = match &next {
        None => message_auth_hash(&chain_id, &id, &bytes, &signed),
        Some((next_bytes, _)) => pipelined_auth_hash(&chain_id, &id, &bytes, next_bytes, &signed),
    };
    verify(&peer, &hash, &sig).map_err(|_| not_the_peer())?;
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
        invoice: req.invoice,
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

#[derive(Serialize, ToSchema)]
pub struct OutboxView {
    /// The hub's proposal waiting for the peer (hex), or null.
    pub message: Option<String>,
}

#[utoipa::path(get, path = "/v1/hub/channels/{id}/outbox", tag = "hub",
    params(("id" = String, Path, description = "Channel id (hex)")),
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
