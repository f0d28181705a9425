//! REST routes of the hub's channels (`/v1/hub/info`, `/v1/hub/channels…`): parsing and
//! formatting only; what a channel does is the hub's.

use crate::hub::{Hub, HubError};
use crate::rest::{addr, blocking, idempotent, json_body, parse_addr, parse_hash, problem, St};
use crate::store::{ChannelRole, HubChannel};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use doin_channels::ChannelMachine;
use doin_http::{path_problem, ApiJson, Problem, ProblemDoc};
use doin_tx_core::channel::ChannelId;
use doin_types::Amount;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct FeeView {
    /// Charged per forwarded payment (a stream tick or a routed HTLC), milli-units.
    pub base_msat: u64,
    /// Millionths of the forwarded amount.
    pub ppm: u32,
}

#[derive(Serialize, ToSchema)]
pub struct HubInfo {
    pub address: String,
    pub network: String,
    pub fee: FeeView,
    /// Dispute window of the channels the hub opens; the shortest it accepts on a payer's.
    pub dispute_blocks: u64,
    pub min_dispute_blocks: u64,
    /// Blocks between a routed HTLC's expiry towards the payee and the payer's.
    pub cltv_delta: u64,
    /// Most the hub owes one payee before it refuses more stream ticks towards it.
    pub max_owed_msat: String,
    pub channels: usize,
    /// What the hub can still pay out over its open payee channels, milli-units.
    pub outgoing_liquidity_msat: String,
    /// What payers hold in their open channels to the hub, milli-units.
    pub incoming_capacity_msat: String,
}

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

/// One channel as the hub holds it. Milli-unit amounts are decimal strings.
#[derive(Serialize, ToSchema)]
pub struct ChannelView {
    pub id: String,
    /// `incoming` (a payer's channel to the hub) or `outgoing` (the hub's to a payee).
    pub role: &'static str,
    pub peer: String,
    /// `opening` (not on chain yet), `open`, `closing` or `closed`.
    pub status: &'static str,
    /// Seq of the newest state both signed.
    pub seq: u64,
    pub hub_balance_msat: String,
    pub peer_balance_msat: String,
    pub pending_htlcs: usize,
    /// Outgoing: forwarded to the payee and not yet paid out.
    pub owed_msat: String,
    /// An update is in flight (the peer may need to fetch the outbox).
    pub update_in_flight: bool,
    pub closed_at: Option<u64>,
}

fn channel_view(hub: &Hub, id: &ChannelId, c: &HubChannel) -> ChannelView {
    let m = ChannelMachine::restore(c.machine.clone());
    ChannelView {
        id: id.to_hex(),
        role: match c.role {
            ChannelRole::Incoming => "incoming",
            ChannelRole::Outgoing => "outgoing",
        },
        peer: addr(hub, &c.peer),
        status: if c.closed_at.is_some() {
            "closed"
        } else if c.closing {
            "closing"
        } else if !c.confirmed {
            "opening"
        } else {
            "open"
        },
        seq: m.latest().state.seq,
        hub_balance_msat: m.my_balance_msat().to_string(),
        peer_balance_msat: m.their_balance_msat().to_string(),
        pending_htlcs: m.latest().state.htlcs.len(),
        owed_msat: c.owed_msat.to_string(),
        update_in_flight: m.in_flight().is_some(),
        closed_at: c.closed_at,
    }
}

#[utoipa::path(get, path = "/v1/hub/channels", tag = "hub",
    responses((status = 200, description = "Every channel of the hub with its balances", body = [ChannelView])))]
pub(crate) async fn list_channels(State(hub): St) -> Json<Vec<ChannelView>> {
    Json(
        hub.channels()
            .iter()
            .map(|(id, c)| channel_view(&hub, id, c))
            .collect(),
    )
}

#[utoipa::path(get, path = "/v1/hub/channels/{id}", tag = "hub",
    params(("id" = String, Path, description = "Channel id (hex)")),
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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// A channel the payer opened on the transfer chain with this hub as counterparty.
    pub channel_id: String,
}

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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenOutgoingRequest {
    /// The payee's address.
    pub payee: String,
    /// Base units the hub locks (decimal string).
    pub deposit: String,
}

#[derive(Serialize, ToSchema)]
pub struct OpenedView {
    pub channel_id: String,
}

#[utoipa::path(post, path = "/v1/hub/channels/outgoing", tag = "hub", request_body = OpenOutgoingRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Repeats get the first answer")),
    responses(
        (status = 401, description = "Operator only: `Authorization: Bearer <hub.cookie>`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 202, description = "The opening transaction is submitted; the channel is usable once on chain", body = OpenedView),
        (status = 400, description = "Bad payee or amount", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 503, description = "The transfer chain refused the transaction", body = ProblemDoc, content_type = "application/problem+json"),
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

#[derive(Serialize, ToSchema)]
pub struct ClosedView {
    /// `cooperative` (paid out at once), `force` (posted; settled after the window) or
    /// `after-payout` (a payee channel with a payout due or under way: nothing new goes
    /// towards the payee, and the hub closes once the payee has taken it, or after
    /// `cltv_delta` blocks regardless).
    pub how: String,
}

fn closed_view(how: &str) -> ClosedView {
    ClosedView {
        how: how.to_string(),
    }
}

#[utoipa::path(post, path = "/v1/hub/channels/{id}/close", tag = "hub",
    params(("id" = String, Path, description = "Channel id (hex)"),
        ("Idempotency-Key" = Option<String>, Header, description = "Repeats get the first answer")),
    responses(
        (status = 401, description = "Operator only: `Authorization: Bearer <hub.cookie>`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 202, description = "The closing transaction is submitted", body = ClosedView),
        (status = 400, description = "Already closing", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "Not a channel of this hub", body = ProblemDoc, content_type = "application/problem+json"),
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
