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
use crate::ledger_api::payment_view;
use crate::rest::{blocking, hex32, not_the_peer, parse_hash, problem, St};
use crate::store::StreamShare;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::Json;
use doin_api::hub::*;
use doin_channels::Message;
use doin_crypto::verify;
use doin_http::{path_problem, ApiJson, Problem, ProblemDoc};
use doin_hub_core::auth::{message_auth_hash, pipelined_auth_hash, SignedContext};
use doin_types::{Msat, SignatureBytes};

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
