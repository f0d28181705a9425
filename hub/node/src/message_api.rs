//! The channel protocol over REST: a peer sends its channel messages to the hub
//! (`POST /v1/hub/channels/{id}/messages`, one message or a `Confirm` pipelined with the next)
//! and fetches the hub's own proposals (`GET /v1/hub/channels/{id}/outbox`).
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
