//! REST routes of channels bought on request (`/v1/hub/channel-requests…`): a payee asks what a
//! channel costs, hands in its signed payment, and follows its request until the channel is
//! open. Parsing and formatting only: what the hub sells and when it opens is
//! `doin_hub_core::requests`'.

use crate::rest::{addr, blocking, parse_hash, St};
use crate::store::{ChannelRequest, RequestState};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use doin_api::hub::*;
use doin_http::{path_problem, ApiJson, ApiQuery, Problem, ProblemDoc};
use doin_types::Amount;

fn request_view(hub: &crate::hub::Hub, r: &ChannelRequest) -> ChannelRequestView {
    let (status, channel, lease_until, reason) = match &r.state {
        RequestState::Paying => ("paying", None, None, None),
        RequestState::Opened {
            channel,
            lease_until,
        } => ("opened", Some(channel.to_hex()), Some(*lease_until), None),
        RequestState::Failed { reason } => ("failed", None, None, Some(reason.clone())),
    };
    ChannelRequestView {
        id: r.id.to_hex(),
        payee: addr(hub, &r.payee),
        capacity: r.capacity.base_units().to_string(),
        duration_blocks: r.duration_blocks,
        fee: r.fee.base_units().to_string(),
        status: status.into(),
        channel,
        lease_until,
        reason,
        requested_at_ms: r.requested_at_ms,
    }
}

/// What a channel bought from the hub costs.
#[utoipa::path(get, path = "/v1/hub/channel-requests/quote", tag = "hub",
    params(ChannelQuoteQuery),
    responses(
        (status = 200, description = "The fee and where to pay it", body = ChannelQuoteView),
        (status = 400, description = "A capacity or duration this hub does not sell, or channels on request are switched off (`invalid-request`, saying which)", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub(crate) async fn quote(
    State(hub): St,
    ApiQuery(q): ApiQuery<ChannelQuoteQuery>,
) -> Result<Json<ChannelQuoteView>, Problem> {
    let fee = hub
        .config()
        .requests
        .quote(q.capacity, q.duration_blocks)
        .map_err(|e| Problem::bad_request("invalid-request", e))?;
    Ok(Json(ChannelQuoteView {
        capacity: q.capacity.to_string(),
        duration_blocks: q.duration_blocks,
        fee: fee.to_string(),
        pay_to: addr(&hub, &hub.public_key()),
    }))
}

/// Buy an inbound channel: the hub opens it once the payment is final.
#[utoipa::path(post, path = "/v1/hub/channel-requests", tag = "hub", request_body = ChannelRequestBody,
    responses(
        (status = 202, description = "Recorded and the payment submitted; follow it with GET until `opened`. The same payment again answers the same request.", body = ChannelRequestView),
        (status = 400, description = "Not sold (capacity, duration, switched off), or the payment is not a transfer of the fee to the hub signed by its sender on this chain, or the chain refused it (`transaction-refused`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "The hub's liquidity for requested channels is taken (`insufficient-liquidity`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 503, description = "The transfer chain cannot take the payment now", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub(crate) async fn request_channel(
    State(hub): St,
    body: ApiJson<ChannelRequestBody>,
) -> Result<Response, Problem> {
    let req = body.0;
    let capacity: Amount = req
        .capacity
        .parse()
        .map_err(|e| Problem::bad_request("invalid-amount", format!("capacity: {e}")))?;
    let payment = hex::decode(&req.payment)
        .map_err(|e| Problem::bad_request("invalid-hex", format!("payment: {e}")))?;
    let h = hub.clone();
    let r = blocking(move || h.request_channel(payment, capacity, req.duration_blocks)).await?;
    Ok((StatusCode::ACCEPTED, Json(request_view(&hub, &r))).into_response())
}

/// A channel request: paying, opened (with its channel and lease), or failed.
#[utoipa::path(get, path = "/v1/hub/channel-requests/{id}", tag = "hub",
    params(("id" = String, Path, description = "The payment transaction's id (hex)", pattern = r"^(0x)?[0-9a-fA-F]{64}$")),
    responses(
        (status = 200, description = "The request", body = ChannelRequestView),
        (status = 400, description = "Bad id", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such request", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_request(
    State(hub): St,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<ChannelRequestView>, Problem> {
    let Path(id) = id.map_err(path_problem)?;
    let id = parse_hash(&id, "request id")?;
    let r = hub
        .channel_request(&id)
        .ok_or_else(|| Problem::not_found("not-found", format!("no channel request {id}")))?;
    Ok(Json(request_view(&hub, &r)))
}
