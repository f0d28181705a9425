//! REST routes of the hub's channels (`/v1/hub/info`, `/v1/hub/channels…`): parsing and
//! formatting only; what a channel does is the hub's.

use crate::hub::{Hub, HubError};
use crate::rest::{
    addr, blocking, idempotent, json_body, parse_addr, parse_hash, problem, OperatorToken, St,
};
use crate::store::{ChannelRole, HubChannel};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use doin_api::hub::*;
use doin_channels::ChannelMachine;
use doin_http::{path_problem, ApiJson, ApiQuery, Problem, ProblemDoc};
use doin_tx_core::channel::ChannelId;
use doin_types::Amount;

/// The hub's address, fee policy, windows and liquidity.
#[utoipa::path(get, path = "/v1/hub/info", tag = "hub",
    responses((status = 200, description = "The hub's identity, fee policy, limits and liquidity", body = HubInfo)))]
pub(crate) async fn info(State(hub): St) -> Result<Json<HubInfo>, Problem> {
    let cfg = hub.config();
    let (mut out, mut inc) = (0u128, 0u128);
    let channels = hub.channels();
    for (_, c) in &channels {
        if c.closing || c.closed_at.is_some() || !c.confirmed {
            continue;
        }
        match c.role {
            ChannelRole::Outgoing => {
                out += u128::from(
                    doin_hub_core::state::spendable(c)
                        .map_err(|e| problem(e.into()))?
                        .get(),
                )
            }
            ChannelRole::Incoming => {
                inc += u128::from(ChannelMachine::restore(c.machine.clone()).their_balance_msat())
            }
        }
    }
    Ok(Json(HubInfo {
        address: addr(&hub, &hub.public_key()),
        network: hub.chain().network().to_string(),
        fee: FeeView {
            base_msat: cfg.fee.base_msat,
            ppm: cfg.fee.ppm,
        },
        dispute_blocks: cfg.dispute_blocks,
        min_dispute_blocks: cfg.min_dispute_blocks,
        cltv_delta: cfg.cltv_delta,
        max_owed_msat: cfg.max_owed_msat.to_string(),
        channels: channels.len(),
        outgoing_liquidity_msat: out.to_string(),
        incoming_capacity_msat: inc.to_string(),
    }))
}

fn channel_view(hub: &Hub, id: &ChannelId, c: &HubChannel) -> ChannelView {
    let m = ChannelMachine::restore(c.machine.clone());
    ChannelView {
        id: id.to_hex(),
        role: c.role.as_str().into(),
        peer: addr(hub, &c.peer),
        status: c.status().into(),
        seq: m.latest().state.seq,
        hub_balance_msat: m.my_balance_msat().to_string(),
        peer_balance_msat: m.their_balance_msat().to_string(),
        pending_htlcs: m.latest().state.htlcs.len(),
        owed_msat: c.owed_msat.to_string(),
        update_in_flight: m.in_flight().is_some(),
        closed_at: c.closed_at,
    }
}

/// The hub's channels: to the operator all, to a payer or payee its own; in id order, by pages.
#[utoipa::path(get, path = "/v1/hub/channels", tag = "hub", params(PartyPageQuery),
    responses(
        (status = 200, description = "The channels the reader may see, with their balances, in id order", body = [ChannelView]),
        (status = 400, description = "Bad address, paging or signature encoding", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "Neither the party's fresh signature (`party`, `at`, `sig`) nor the operator's token (`party-only`)", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub(crate) async fn list_channels(
    State(hub): St,
    Extension(operator): Extension<OperatorToken>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<PartyPageQuery>,
) -> Result<Json<Vec<ChannelView>>, Problem> {
    let only = crate::party::list_reader(&hub, &operator, &headers, &q)?;
    let mine = hub
        .channels()
        .into_iter()
        .filter(|(_, c)| only.is_none_or(|p| c.peer == p));
    let list = crate::party::page(mine, q.after.as_deref(), q.limit)?;
    Ok(Json(
        list.iter()
            .map(|(id, c)| channel_view(&hub, id, c))
            .collect(),
    ))
}

/// One hub channel with its balances.
#[utoipa::path(get, path = "/v1/hub/channels/{id}", tag = "hub", operation_id = "get_hub_channel",
    params(("id" = String, Path, description = "Channel id (hex)", pattern = r"^(0x)?[0-9a-fA-F]{64}$")),
    responses(
        (status = 200, description = "The channel", body = ChannelView),
        (status = 400, description = "Malformed id", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "Not a channel of this hub", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_channel(
    State(hub): St,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<ChannelView>, Problem> {
    let Path(id) = id.map_err(path_problem)?;
    let id = parse_hash(&id, "channel id")?;
    let c = hub
        .channel(&id)
        .ok_or_else(|| problem(HubError::UnknownChannel(id)))?;
    Ok(Json(channel_view(&hub, &id, &c)))
}

/// Take over a payer's channel to the hub, once it is open on chain.
#[utoipa::path(post, path = "/v1/hub/channels", tag = "hub", request_body = RegisterRequest,
    responses(
        (status = 201, description = "The hub took the channel over (again: the same answer)", body = ChannelView),
        (status = 400, description = "Not a channel this hub can take (not on chain, not its counterparty, not open, window too short)", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub(crate) async fn register_channel(
    State(hub): St,
    body: ApiJson<RegisterRequest>,
) -> Result<Response, Problem> {
    let id = parse_hash(&body.0.channel_id, "channel_id")?;
    let h = hub.clone();
    let c = blocking(move || h.register_incoming(id)).await?;
    Ok((StatusCode::CREATED, Json(channel_view(&hub, &id, &c))).into_response())
}

/// Open a channel from the hub to a payee (operator).
#[utoipa::path(post, path = "/v1/hub/channels/outgoing", tag = "hub", request_body = OpenOutgoingRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Repeats within `hub.idempotency_ttl_secs` (a day by default) get the first answer: 1-255 visible ASCII characters", pattern = r"^[!-~]([ -~]{0,253}[!-~])?$")),
    responses(
        (status = 401, description = "Operator only: `Authorization: Bearer <hub.cookie>`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 202, description = "The opening transaction is submitted; the channel is usable once on chain", body = OpenedView),
        (status = 400, description = "Bad payee or amount, or the transfer chain refused the opening transaction (`transaction-refused`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "A request with this Idempotency-Key is being handled (`idempotency-key-in-flight`): ask again for its answer", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "The Idempotency-Key was used for another request (`idempotency-key-reused`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 503, description = "The transfer chain cannot take the transaction now", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub(crate) async fn open_outgoing(
    State(hub): St,
    headers: HeaderMap,
    body: ApiJson<OpenOutgoingRequest>,
) -> Result<Response, Problem> {
    let payee = parse_addr(&hub, &body.0.payee)?;
    let deposit: Amount = body
        .0
        .deposit
        .parse()
        .map_err(|e| Problem::bad_request("invalid-amount", format!("deposit: {e}")))?;
    let h = hub.clone();
    let fp = format!("open:{}:{}", body.0.payee, body.0.deposit);
    idempotent(&hub, &headers, fp, StatusCode::ACCEPTED, move |slot| {
        let answer = slot.map(|s| s.answer(|id| json_body(&opened_view(id))));
        h.open_outgoing_answering(payee, deposit, answer)
            .map(|id| opened_view(&id))
    })
    .await
}

fn opened_view(id: &ChannelId) -> OpenedView {
    OpenedView {
        channel_id: id.to_hex(),
    }
}

fn closed_view(how: &str) -> ClosedView {
    ClosedView {
        how: how.to_string(),
    }
}

/// Close a channel from the hub's side (operator).
#[utoipa::path(post, path = "/v1/hub/channels/{id}/close", tag = "hub",
    params(("id" = String, Path, description = "Channel id (hex)", pattern = r"^(0x)?[0-9a-fA-F]{64}$"),
        ("Idempotency-Key" = Option<String>, Header, description = "Repeats within `hub.idempotency_ttl_secs` (a day by default) get the first answer: 1-255 visible ASCII characters", pattern = r"^[!-~]([ -~]{0,253}[!-~])?$")),
    responses(
        (status = 401, description = "Operator only: `Authorization: Bearer <hub.cookie>`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 202, description = "The closing transaction is submitted", body = ClosedView),
        (status = 404, description = "Not a channel of this hub", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "The channel is closing or closed already (`already-closing`), or a request with this Idempotency-Key is being handled (`idempotency-key-in-flight`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "The Idempotency-Key was used for another request (`idempotency-key-reused`)", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub(crate) async fn close_channel(
    State(hub): St,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, Problem> {
    let Path(id) = id.map_err(path_problem)?;
    let id = parse_hash(&id, "channel id")?;
    let h = hub.clone();
    idempotent(
        &hub,
        &headers,
        format!("close:{id}"),
        StatusCode::ACCEPTED,
        move |slot| {
            let answer = slot.map(|s| {
                s.answer(|how: &doin_hub_core::CloseHow| json_body(&closed_view(how.as_str())))
            });
            h.close_answering(&id, answer).map(closed_view)
        },
    )
    .await
}
