//! REST routes of the hub (`/v1/hub/...`). Handlers parse, authenticate and format; what the
//! hub does is `hub`, `flow` and `watch`'s job. Every call that moves money waits until the
//! state it changed is on disk before answering, and takes an `Idempotency-Key`.
//!
//! Channel protocol messages are authenticated: the peer signs (BIP340) the tagged hash
//! [`message_auth_hash`] of the chain id, the channel id, the message and the context it
//! names, so nobody but the channel's peer can make the hub sign or block anything.

use crate::hub::{Hub, HubError, PendingAnswer, ProposalContext};
use crate::ledger_api::{payment_view, PaymentView};
use crate::store::{ChannelRole, HubChannel, Stream};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{from_fn_with_state, Next};

use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use doin_channels::{parse_invoice, ChannelMachine, Message};
use doin_crypto::{tagged_hash_parts, verify};
use doin_http::{path_problem, ApiJson, Problem, ProblemDoc};
use doin_tx_core::channel::ChannelId;
use doin_types::{Address, Amount, ChainId, Hash256, PublicKeyBytes, SignatureBytes};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use utoipa::{OpenApi, ToSchema};

/// Tag of what a peer signs to send the hub a channel message.
pub const TAG_HUB_MESSAGE: &str = "doin/hub-message";

/// `H_tag(chain_id ‖ channel_id ‖ message ‖ stream id or 32 zero bytes ‖ SHA-256 of the
/// invoice text or 32 zero bytes ‖ the paid vote's optimae id or 32 zero bytes)`.
pub fn message_auth_hash(
    chain_id: &ChainId,
    channel: &ChannelId,
    message: &[u8],
    stream: Option<&Hash256>,
    invoice: Option<&str>,
    vote_optimae: Option<&Hash256>,
) -> Hash256 {
    let invoice_hash = invoice
        .map(|t| doin_tx_core::channel::sha256(t.as_bytes()))
        .unwrap_or([0; 32]);
    tagged_hash_parts(
        TAG_HUB_MESSAGE,
        &[
            &chain_id.0 .0,
            &channel.0,
            message,
            &stream.map(|s| s.0).unwrap_or([0; 32]),
            &invoice_hash,
            &vote_optimae.map(|o| o.0).unwrap_or([0; 32]),
        ],
    )
}

#[derive(OpenApi)]
#[openapi(
    paths(info, list_channels, get_channel, register_channel, open_outgoing, close_channel,
        post_message, outbox, decode_invoice, create_hub_invoice, get_hub_invoice, open_stream, list_streams, get_stream,
        close_stream, crate::ledger_api::payee_payments,
        crate::ledger_api::payee_payment_events, crate::ledger_api::accounting_csv),
    components(schemas(HubInfo, FeeView, ChannelView, RegisterRequest, OpenOutgoingRequest,
        OpenedView, ClosedView, MessageRequest, MessageResponse, OutboxView, DecodeRequest,
        InvoiceView, HubInvoiceRequest, HubInvoiceView, StreamRequest, StreamView, PaymentView, ProblemDoc)),
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
}

async fn require_operator(
    State(token): State<OperatorToken>,
    req: Request,
    next: Next,
) -> Response {
    let given = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given.is_some_and(|g| token.matches(g.trim())) {
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
        .route("/v1/hub/streams/{id}/close", post(close_stream))
        .route(
            "/v1/hub/accounting.csv",
            get(crate::ledger_api::accounting_csv),
        )
        .route("/v1/hub/invoices", post(create_hub_invoice))
        .route("/v1/hub/invoices/{hash}", get(get_hub_invoice))
        .route_layer(from_fn_with_state(operator, require_operator));
    Router::new()
        .merge(operator_only)
        .route("/v1/hub/info", get(info))
        .route(
            "/v1/hub/channels",
            get(list_channels).post(register_channel),
        )
        .route("/v1/hub/channels/{id}", get(get_channel))
        .route("/v1/hub/channels/{id}/messages", post(post_message))
        .route("/v1/hub/channels/{id}/outbox", get(outbox))
        .route("/v1/hub/invoices/decode", post(decode_invoice))
        .route("/v1/hub/streams", get(list_streams).post(open_stream))
        .route("/v1/hub/streams/{id}", get(get_stream))
        .route(
            "/v1/hub/payees/{address}/payments",
            get(crate::ledger_api::payee_payments),
        )
        .route(
            "/v1/hub/payees/{address}/events",
            get(crate::ledger_api::payee_payment_events),
        )
        .with_state(hub)
}

fn problem(e: HubError) -> Problem {
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

fn parse_hash(s: &str, what: &str) -> Result<Hash256, Problem> {
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
async fn blocking<T: Send + 'static>(
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
    /// The peer's BIP340 signature (hex) over `H_tag("doin/hub-message", chain_id ‖
    /// channel_id ‖ message ‖ stream or 32 zero bytes ‖ SHA-256(invoice) or 32 zero bytes ‖
    /// vote_optimae or 32 zero bytes)`.
    pub signature: String,
}

#[derive(Serialize, ToSchema)]
pub struct MessageResponse {
    /// The hub's answer (hex), already durable; null when none is due.
    pub reply: Option<String>,
    /// Ledger entries this message completed.
    pub payments: Vec<PaymentView>,
}

fn not_the_peer() -> Problem {
    Problem::new(
        StatusCode::UNAUTHORIZED,
        "not-the-peer",
        "Unauthorized",
        "the request is not signed by the channel's peer",
    )
}

fn hex32(s: &str, what: &str) -> Result<[u8; 64], Problem> {
    let b =
        hex::decode(s).map_err(|e| Problem::bad_request("invalid-hex", format!("{what}: {e}")))?;
    b.try_into()
        .map_err(|_| Problem::bad_request("invalid-signature", format!("{what}: 64 bytes")))
}

#[utoipa::path(post, path = "/v1/hub/channels/{id}/messages", tag = "hub", request_body = MessageRequest,
    params(("id" = String, Path, description = "Channel id (hex)")),
    responses(
        (status = 200, description = "Handled; the reply is durable", body = MessageResponse),
        (status = 400, description = "Malformed message, bad signature, or a protocol error", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "Not signed by the channel's peer", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "Not a channel of this hub", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn post_message(
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
    let stream = req
        .stream
        .as_deref()
        .map(|s| parse_hash(s, "stream"))
        .transpose()?;
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
    let hash = message_auth_hash(
        &hub.chain().chain_id(),
        &id,
        &bytes,
        stream.as_ref(),
        req.invoice.as_deref(),
        vote_optimae.as_ref(),
    );
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
    };
    let h = hub.clone();
    let handled = blocking(move || h.handle(&id, msg, ctx)).await?;
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
async fn outbox(
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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecodeRequest {
    pub invoice: String,
}

#[derive(Serialize, ToSchema)]
pub struct InvoiceView {
    pub amount_msat: String,
    pub payment_hash: String,
    pub payee: String,
    pub description: String,
    pub created_at: u64,
    pub expires_at: u64,
    pub min_final_cltv_blocks: u64,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HubInvoiceRequest {
    /// Milli-units (decimal string).
    pub amount_msat: String,
    #[serde(default)]
    pub description: String,
    /// Seconds the invoice stays payable (default 3600, at most a week).
    pub expiry_secs: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct HubInvoiceView {
    /// BOLT11, signed by the hub's key.
    pub invoice: String,
    pub payment_hash: String,
    pub amount_msat: String,
    pub description: String,
    pub expires_at: u64,
    /// The payer channel whose HTLC paid it; null while unpaid.
    pub paid_by: Option<String>,
}

fn hub_invoice_view(i: &crate::store::HubInvoice) -> HubInvoiceView {
    HubInvoiceView {
        invoice: i.text.clone(),
        payment_hash: i.payment_hash.to_hex(),
        amount_msat: i.amount_msat.to_string(),
        description: i.description.clone(),
        expires_at: i.expires_at,
        paid_by: i.paid_by.map(|c| c.to_hex()),
    }
}

/// Longest an invoice of the hub stays payable.
const MAX_INVOICE_EXPIRY_SECS: u64 = 7 * 24 * 3600;

#[utoipa::path(post, path = "/v1/hub/invoices", tag = "hub", request_body = HubInvoiceRequest,
    responses(
        (status = 201, description = "An invoice payable to the hub; a payer's HTLC for it is taken at once", body = HubInvoiceView),
        (status = 400, description = "Bad amount or expiry", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "Operator only: `Authorization: Bearer <hub.cookie>`", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn create_hub_invoice(
    State(hub): St,
    body: ApiJson<HubInvoiceRequest>,
) -> Result<Response, Problem> {
    let req = body.0;
    let amount: u64 = req
        .amount_msat
        .parse()
        .map_err(|e| Problem::bad_request("invalid-amount", format!("amount_msat: {e}")))?;
    let expiry = req.expiry_secs.unwrap_or(3600);
    if expiry == 0 || expiry > MAX_INVOICE_EXPIRY_SECS {
        return Err(Problem::bad_request(
            "invalid-expiry",
            format!("expiry_secs: 1 to {MAX_INVOICE_EXPIRY_SECS}"),
        ));
    }
    if req.description.len() > 639 {
        return Err(Problem::bad_request(
            "invalid-description",
            "description: at most 639 bytes (BOLT11)",
        ));
    }
    let h = hub.clone();
    let inv = blocking(move || h.create_invoice(amount, &req.description, expiry)).await?;
    Ok((StatusCode::CREATED, Json(hub_invoice_view(&inv))).into_response())
}

#[utoipa::path(get, path = "/v1/hub/invoices/{hash}", tag = "hub",
    params(("hash" = String, Path, description = "Payment hash (hex)")),
    responses(
        (status = 200, description = "The invoice and whether it is paid", body = HubInvoiceView),
        (status = 401, description = "Operator only: `Authorization: Bearer <hub.cookie>`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such invoice of the hub", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn get_hub_invoice(
    State(hub): St,
    hash: Result<Path<String>, PathRejection>,
) -> Result<Json<HubInvoiceView>, Problem> {
    let Path(hash) = hash.map_err(path_problem)?;
    let hash = parse_hash(&hash, "payment hash")?;
    hub.invoice(&hash)
        .map(|i| Json(hub_invoice_view(&i)))
        .ok_or_else(|| Problem::not_found("not-found", format!("no invoice {hash} of this hub")))
}

#[utoipa::path(post, path = "/v1/hub/invoices/decode", tag = "hub", request_body = DecodeRequest,
    responses(
        (status = 200, description = "A valid invoice of this network", body = InvoiceView),
        (status = 400, description = "Malformed, badly signed, for another network, expired or without amount", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn decode_invoice(
    State(hub): St,
    body: ApiJson<DecodeRequest>,
) -> Result<Json<InvoiceView>, Problem> {
    let inv = parse_invoice(
        &body.0.invoice,
        hub.chain().network(),
        crate::hub::now(),
        None,
    )
    .map_err(|e| problem(e.into()))?;
    Ok(Json(InvoiceView {
        amount_msat: inv.amount_msat.to_string(),
        payment_hash: inv.payment_hash.to_hex(),
        payee: addr(&hub, &inv.payee),
        description: inv.description,
        created_at: inv.created_at,
        expires_at: inv.expires_at,
        min_final_cltv_blocks: inv.min_final_cltv_blocks,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StreamRequest {
    /// The payer's channel to the hub (hex).
    pub payer_channel: String,
    /// The payee's invoice: its amount is the stream's budget, its hash the stream's id.
    pub invoice: String,
    /// The payer's BIP340 signature (hex) over [`stream_auth_hash`]: `H_tag("doin/hub-stream",
    /// chain_id ‖ payer_channel ‖ SHA-256(invoice))`. Only the payer binds an invoice to its
    /// channel.
    pub signature: String,
}

/// Tag of what a payer signs to set up a stream from its channel.
pub const TAG_HUB_STREAM: &str = "doin/hub-stream";

/// `H_tag("doin/hub-stream", chain_id ‖ payer_channel ‖ SHA-256 of the invoice text)`.
pub fn stream_auth_hash(chain_id: &ChainId, payer_channel: &ChannelId, invoice: &str) -> Hash256 {
    tagged_hash_parts(
        TAG_HUB_STREAM,
        &[
            &chain_id.0 .0,
            &payer_channel.0,
            &doin_tx_core::channel::sha256(invoice.as_bytes()),
        ],
    )
}

#[derive(Serialize, ToSchema)]
pub struct StreamView {
    pub id: String,
    pub payer_channel: String,
    pub payee_channel: String,
    pub payee: String,
    pub budget_msat: String,
    pub received_msat: String,
    pub forwarded_msat: String,
    pub fees_msat: String,
    pub ticks: u64,
    pub opened_at_ms: u64,
    pub closed: bool,
}

fn stream_view(hub: &Hub, s: &Stream) -> StreamView {
    StreamView {
        id: s.id.to_hex(),
        payer_channel: s.payer_channel.to_hex(),
        payee_channel: s.payee_channel.to_hex(),
        payee: addr(hub, &s.payee),
        budget_msat: s.budget_msat.to_string(),
        received_msat: s.received_msat.to_string(),
        forwarded_msat: s.forwarded_msat.to_string(),
        fees_msat: s.fees_msat.to_string(),
        ticks: s.ticks,
        opened_at_ms: s.opened_at_ms,
        closed: s.closed,
    }
}

#[utoipa::path(post, path = "/v1/hub/streams", tag = "hub", request_body = StreamRequest,
    responses(
        (status = 201, description = "The stream (the same one again for the same invoice)", body = StreamView),
        (status = 400, description = "Bad channel or invoice", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "Not signed by the payer channel's peer", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "Not a channel of this hub", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "The hub has no open channel to the payee", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn open_stream(State(hub): St, body: ApiJson<StreamRequest>) -> Result<Response, Problem> {
    let payer = parse_hash(&body.0.payer_channel, "payer_channel")?;
    let invoice = body.0.invoice;
    let sig = SignatureBytes(hex32(&body.0.signature, "signature")?);
    let peer = hub
        .channel(&payer)
        .ok_or_else(|| problem(HubError::UnknownChannel(payer)))?
        .peer;
    let hash = stream_auth_hash(&hub.chain().chain_id(), &payer, &invoice);
    verify(&peer, &hash, &sig).map_err(|_| not_the_peer())?;
    let h = hub.clone();
    let s = blocking(move || h.open_stream(payer, &invoice)).await?;
    Ok((StatusCode::CREATED, Json(stream_view(&hub, &s))).into_response())
}

#[utoipa::path(get, path = "/v1/hub/streams", tag = "hub",
    responses((status = 200, description = "Every stream", body = [StreamView])))]
async fn list_streams(State(hub): St) -> Json<Vec<StreamView>> {
    Json(hub.streams().iter().map(|s| stream_view(&hub, s)).collect())
}

#[utoipa::path(get, path = "/v1/hub/streams/{id}", tag = "hub",
    params(("id" = String, Path, description = "Stream id (the invoice's payment hash, hex)")),
    responses(
        (status = 200, description = "The stream", body = StreamView),
        (status = 404, description = "No such stream", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn get_stream(
    State(hub): St,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<StreamView>, Problem> {
    let Path(id) = id.map_err(path_problem)?;
    let id = parse_hash(&id, "stream id")?;
    let s = hub
        .stream(&id)
        .ok_or_else(|| problem(HubError::UnknownStream(id)))?;
    Ok(Json(stream_view(&hub, &s)))
}

#[utoipa::path(post, path = "/v1/hub/streams/{id}/close", tag = "hub",
    params(("id" = String, Path, description = "Stream id (hex)")),
    responses(
        (status = 401, description = "Operator only: `Authorization: Bearer <hub.cookie>`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 200, description = "Closed: no more ticks are taken", body = StreamView),
        (status = 404, description = "No such stream", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn close_stream(
    State(hub): St,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<StreamView>, Problem> {
    let Path(id) = id.map_err(path_problem)?;
    let id = parse_hash(&id, "stream id")?;
    let h = hub.clone();
    let s = blocking(move || h.close_stream(&id)).await?;
    Ok(Json(stream_view(&hub, &s)))
}
