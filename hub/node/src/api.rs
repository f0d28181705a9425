//! REST routes of the hub (`/v1/hub/...`). Handlers parse, authenticate and format; what the
//! hub does is `hub`, `flow` and `watch`'s job. Every call that moves money waits until the
//! state it changed is on disk before answering, and takes an `Idempotency-Key`.
//!
//! Channel protocol messages (`message_api`) are authenticated: the peer signs (BIP340) the
//! tagged hash [`message_auth_hash`] of the chain id, the channel id, the message and the
//! context it names, so nobody but the channel's peer can make the hub sign or block anything.

use crate::hub::{Hub, HubError, PendingAnswer};
use crate::ledger_api::PaymentView;
use crate::store::{ChannelRole, HubChannel};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{from_fn_with_state, Next};

use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use doin_channels::ChannelMachine;
use doin_http::{path_problem, ApiJson, Problem, ProblemDoc};
use doin_tx_core::channel::ChannelId;
use doin_types::{Address, Amount, Hash256, PublicKeyBytes};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use utoipa::{OpenApi, ToSchema};

pub use crate::ledger_api::{feed_auth_hash, FEED_AUTH_WINDOW_MS, TAG_HUB_FEED};
pub use crate::message_api::{
    message_auth_hash, pipelined_auth_hash, split_digest, SignedContext, TAG_HUB_MESSAGE,
    TAG_HUB_MESSAGES,
};
pub use crate::stream_api::{stream_auth_hash, TAG_HUB_STREAM};

#[derive(OpenApi)]
#[openapi(
    paths(info, list_channels, get_channel, register_channel, open_outgoing, close_channel,
        crate::message_api::post_message, crate::message_api::outbox, crate::stream_api::decode_invoice, crate::stream_api::create_hub_invoice, crate::stream_api::get_hub_invoice, crate::stream_api::open_stream, crate::stream_api::list_streams, crate::stream_api::get_stream,
        crate::stream_api::close_stream, crate::stream_api::list_funds, crate::stream_api::get_fund, crate::ledger_api::payee_payments,
        crate::ledger_api::payee_payment_events, crate::ledger_api::accounting_csv),
    components(schemas(HubInfo, FeeView, ChannelView, RegisterRequest, OpenOutgoingRequest,
        OpenedView, ClosedView, crate::message_api::MessageRequest, crate::message_api::ShareRequest, crate::message_api::MessageResponse, crate::message_api::OutboxView, crate::stream_api::DecodeRequest,
        crate::stream_api::InvoiceView, crate::stream_api::HubInvoiceRequest, crate::stream_api::HubInvoiceView, crate::stream_api::StreamRequest, crate::stream_api::StreamView, crate::stream_api::FundView, crate::stream_api::FundPaidView, PaymentView, ProblemDoc)),
    tags((name = "hub", description = "The channel hub: channels, streams, hash-locked payments, payee payment feeds, accounting"))
)]
pub struct HubApiDoc;

pub(crate) type St = State<Arc<Hub>>;

/// The secret that operator calls (opening and closing the hub's channels, closing streams,
/// the accounting export) present as `Authorization: Bearer <token>`. The node writes it to a
/// file only its user can read; whoever can read that file runs the hub.
#[derive(Clone)]
pub struct OperatorToken(Arc<str>);

impl OperatorToken {
    /// A token of at least 32 characters (shorter ones are refused: they could be guessed).
    pub fn new(token: &str) -> Option<OperatorToken> {
        (token.len() >= 32 && token.bytes().all(|b| b.is_ascii_graphic()))
            .then(|| OperatorToken(Arc::from(token)))
    }

    /// Whether `given` is the token (compared in constant time).
    fn matches(&self, given: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), given.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    /// Whether the request's `Authorization: Bearer` is this token.
    pub(crate) fn authorizes(&self, headers: &HeaderMap) -> bool {
        headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|g| self.matches(g.trim()))
    }
}

async fn require_operator(
    State(token): State<OperatorToken>,
    req: Request,
    next: Next,
) -> Response {
    if token.authorizes(req.headers()) {
        return next.run(req).await;
    }
    Problem::new(
        StatusCode::UNAUTHORIZED,
        "operator-only",
        "Operator only",
        "this call needs the hub operator's token: `Authorization: Bearer <contents of \
         hub.cookie in the node's data directory>`",
    )
    .into_response()
}

/// Routes under `/v1/hub`; the operator calls need `operator`.
pub fn router(hub: Arc<Hub>, operator: OperatorToken) -> Router {
    let operator_only = Router::new()
        .route("/v1/hub/channels/outgoing", post(open_outgoing))
        .route("/v1/hub/channels/{id}/close", post(close_channel))
        .route(
            "/v1/hub/streams/{id}/close",
            post(crate::stream_api::close_stream),
        )
        .route(
            "/v1/hub/accounting.csv",
            get(crate::ledger_api::accounting_csv),
        )
        .route(
            "/v1/hub/invoices",
            post(crate::stream_api::create_hub_invoice),
        )
        .route(
            "/v1/hub/invoices/{hash}",
            get(crate::stream_api::get_hub_invoice),
        )
        .route_layer(from_fn_with_state(operator.clone(), require_operator));
    Router::new()
        .merge(operator_only)
        .route("/v1/hub/info", get(info))
        .route(
            "/v1/hub/channels",
            get(list_channels).post(register_channel),
        )
        .route("/v1/hub/channels/{id}", get(get_channel))
        .route(
            "/v1/hub/channels/{id}/messages",
            post(crate::message_api::post_message),
        )
        .route(
            "/v1/hub/channels/{id}/outbox",
            get(crate::message_api::outbox),
        )
        .route(
            "/v1/hub/invoices/decode",
            post(crate::stream_api::decode_invoice),
        )
        .route(
            "/v1/hub/streams",
            get(crate::stream_api::list_streams).post(crate::stream_api::open_stream),
        )
        .route("/v1/hub/streams/{id}", get(crate::stream_api::get_stream))
        .route("/v1/hub/funds", get(crate::stream_api::list_funds))
        .route("/v1/hub/funds/{optimae}", get(crate::stream_api::get_fund))
        .route(
            "/v1/hub/payees/{address}/payments",
            get(crate::ledger_api::payee_payments),
        )
        .route(
            "/v1/hub/payees/{address}/events",
            get(crate::ledger_api::payee_payment_events),
        )
        // The payee feeds serve the operator too.
        .layer(Extension(operator))
        .with_state(hub)
}

pub(crate) fn problem(e: HubError) -> Problem {
    match e {
        HubError::UnknownChannel(_) | HubError::UnknownStream(_) => {
            Problem::not_found("not-found", e.to_string())
        }
        HubError::Invalid(_) => Problem::bad_request("invalid-request", e.to_string()),
        HubError::Liquidity(_) => Problem::new(
            StatusCode::CONFLICT,
            "insufficient-liquidity",
            "Insufficient liquidity",
            e.to_string(),
        ),
        HubError::Channel(_) => Problem::bad_request("channel-protocol", e.to_string()),
        HubError::Invoice(_) => Problem::bad_request("invalid-invoice", e.to_string()),
        HubError::Chain(_) => Problem::unavailable("transfer-chain", e.to_string()),
        HubError::Store(_) => Problem::internal(e),
    }
}

pub(crate) fn parse_hash(s: &str, what: &str) -> Result<Hash256, Problem> {
    Hash256::from_hex(s).map_err(|e| Problem::bad_request("invalid-hash", format!("{what}: {e}")))
}

pub(crate) fn parse_addr(hub: &Hub, s: &str) -> Result<PublicKeyBytes, Problem> {
    Address::parse(s, hub.chain().network())
        .map(|a| a.key)
        .map_err(|e| Problem::bad_request(e.kind(), e.to_string()))
}

pub(crate) fn addr(hub: &Hub, k: &PublicKeyBytes) -> String {
    Address::new(hub.chain().network(), *k).to_string()
}

/// Runs blocking hub work (it waits on fsync) off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, HubError> + Send + 'static,
) -> Result<T, Problem> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(Problem::internal)?
        .map_err(problem)
}

/// An `Idempotency-Key` request's identity: the key and what it asked.
pub(crate) struct IdempotencySlot {
    key: String,
    fingerprint: String,
    status: StatusCode,
}

impl IdempotencySlot {
    /// The answer to write with the operation, its body made from the result by `body`.
    fn answer<R>(self, body: fn(&R) -> Vec<u8>) -> PendingAnswer<R> {
        PendingAnswer {
            key: self.key,
            fingerprint: self.fingerprint,
            status: self.status.as_u16(),
            body,
        }
    }
}

/// Answers a repeated `Idempotency-Key` with the first answer; otherwise runs `f`, which
/// writes its answer under the key in the operation's own batch (with a fingerprint of the
/// request, so a key reused for another request is refused).
async fn idempotent<T: Serialize + Send + 'static>(
    hub: &Arc<Hub>,
    headers: &HeaderMap,
    fingerprint: String,
    status: StatusCode,
    f: impl FnOnce(Option<IdempotencySlot>) -> Result<T, HubError> + Send + 'static,
) -> Result<Response, Problem> {
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => {
            let k = v
                .to_str()
                .ok()
                .filter(|k| !k.is_empty() && k.len() <= 255)
                .ok_or_else(|| {
                    Problem::bad_request("invalid-idempotency-key", "1-255 visible characters")
                })?;
            Some(k.to_string())
        }
    };
    if let Some(k) = &key {
        let h = hub.clone();
        let k2 = k.clone();
        if let Some(stored) = blocking(move || h.idempotent_answer(&k2)).await? {
            if stored.fingerprint != fingerprint {
                return Err(Problem::unprocessable(
                    "idempotency-key-reused",
                    "this Idempotency-Key was used for another request",
                ));
            }
            let code = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
            let body: serde_json::Value =
                serde_json::from_slice(&stored.body).map_err(Problem::internal)?;
            return Ok((code, Json(body)).into_response());
        }
    }
    let slot = key.map(|key| IdempotencySlot {
        key,
        fingerprint,
        status,
    });
    let answer = blocking(move || f(slot)).await?;
    Ok((status, Json(answer)).into_response())
}

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
async fn info(State(hub): St) -> Json<HubInfo> {
    let cfg = hub.config();
    let (mut out, mut inc) = (0u128, 0u128);
    let channels = hub.channels();
    for (_, c) in &channels {
        if c.closing || c.closed_at.is_some() || !c.confirmed {
            continue;
        }
        match c.role {
            ChannelRole::Outgoing => out += u128::from(Hub::spendable(c)),
            ChannelRole::Incoming => {
                inc += u128::from(ChannelMachine::restore(c.machine.clone()).their_balance_msat())
            }
        }
    }
    Json(HubInfo {
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
    })
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
async fn list_channels(State(hub): St) -> Json<Vec<ChannelView>> {
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
async fn get_channel(
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
async fn register_channel(
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
async fn open_outgoing(
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

/// A view as a stored answer's body (serialising these plain structs cannot fail).
fn json_body<T: Serialize>(view: &T) -> Vec<u8> {
    serde_json::to_vec(view).unwrap_or_default()
}

#[derive(Serialize, ToSchema)]
pub struct ClosedView {
    /// `cooperative` (paid out at once), `force` (posted; settled after the window) or
    /// `after-payout` (a payee channel with a payout due or under way: nothing new goes
    /// towards the payee, and the hub closes once the payee has taken it, or after
    /// `cltv_delta` blocks regardless).
    pub how: String,
}

fn closed_view(how: &&'static str) -> ClosedView {
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
async fn close_channel(
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
            let answer = slot.map(|s| s.answer(|how| json_body(&closed_view(how))));
            h.close_answering(&id, answer).map(|how| closed_view(&how))
        },
    )
    .await
}

pub(crate) fn not_the_peer() -> Problem {
    Problem::new(
        StatusCode::UNAUTHORIZED,
        "not-the-peer",
        "Unauthorized",
        "the request is not signed by the channel's peer",
    )
}

pub(crate) fn hex32(s: &str, what: &str) -> Result<[u8; 64], Problem> {
    let b =
        hex::decode(s).map_err(|e| Problem::bad_request("invalid-hex", format!("{what}: {e}")))?;
    b.try_into()
        .map_err(|_| Problem::bad_request("invalid-signature", format!("{what}: 64 bytes")))
}
