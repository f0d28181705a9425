//! REST routes of the hub's streams and invoices (`/v1/hub/streams…`, `/v1/hub/invoices…`):
//! parsing, authentication and formatting only; what a stream or an invoice does is the hub's.

use crate::hub::{Hub, HubError};
use crate::rest::{addr, blocking, hex32, not_the_peer, parse_hash, problem, OperatorToken, St};
use crate::store::{Fund, Stream};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use doin_api::hub::*;
use doin_channels::parse_invoice;
use doin_crypto::verify;
use doin_http::{path_problem, ApiJson, ApiQuery, Problem, ProblemDoc};
use doin_hub_core::auth::stream_auth_hash;
use doin_types::{Msat, PublicKeyBytes, SignatureBytes};

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

/// Create an invoice payable to the hub itself (operator).
#[utoipa::path(post, path = "/v1/hub/invoices", tag = "hub", request_body = HubInvoiceRequest,
    responses(
        (status = 201, description = "An invoice payable to the hub; a payer's HTLC for it is taken at once", body = HubInvoiceView),
        (status = 400, description = "Bad amount or expiry", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "Operator only: `Authorization: Bearer <hub.cookie>`", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub(crate) async fn create_hub_invoice(
    State(hub): St,
    body: ApiJson<HubInvoiceRequest>,
) -> Result<Response, Problem> {
    let req = body.0;
    let amount = req
        .amount_msat
        .parse()
        .map(Msat::new)
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

/// One of the hub's own invoices and who paid it (operator).
#[utoipa::path(get, path = "/v1/hub/invoices/{hash}", tag = "hub",
    params(("hash" = String, Path, description = "Payment hash (hex)", pattern = r"^(0x)?[0-9a-fA-F]{64}$")),
    responses(
        (status = 200, description = "The invoice and whether it is paid", body = HubInvoiceView),
        (status = 401, description = "Operator only: `Authorization: Bearer <hub.cookie>`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such invoice of the hub", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_hub_invoice(
    State(hub): St,
    hash: Result<Path<String>, PathRejection>,
) -> Result<Json<HubInvoiceView>, Problem> {
    let Path(hash) = hash.map_err(path_problem)?;
    let hash = parse_hash(&hash, "payment hash")?;
    hub.invoice(&hash)
        .map(|i| Json(hub_invoice_view(&i)))
        .ok_or_else(|| Problem::not_found("not-found", format!("no invoice {hash} of this hub")))
}

/// Decode and check an invoice.
#[utoipa::path(post, path = "/v1/hub/invoices/decode", tag = "hub", request_body = DecodeRequest,
    responses(
        (status = 200, description = "A valid invoice of this network", body = InvoiceView),
        (status = 400, description = "Malformed, badly signed, for another network, expired or without amount", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub(crate) async fn decode_invoice(
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

/// Set up a payment stream from a payer channel to an invoice.
#[utoipa::path(post, path = "/v1/hub/streams", tag = "hub", request_body = StreamRequest,
    responses(
        (status = 201, description = "The stream (the same one again for the same invoice)", body = StreamView),
        (status = 400, description = "Bad channel or invoice", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "Not signed by the payer channel's peer", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "Not a channel of this hub", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "The hub has no open channel to the payee", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub(crate) async fn open_stream(
    State(hub): St,
    body: ApiJson<StreamRequest>,
) -> Result<Response, Problem> {
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

/// The hub's payment streams: to the operator all, to a payer or payee those it pays or is
/// paid by; in id order, by pages.
#[utoipa::path(get, path = "/v1/hub/streams", tag = "hub", params(PartyPageQuery),
    responses(
        (status = 200, description = "The streams the reader may see, in id order", body = [StreamView]),
        (status = 400, description = "Bad address, paging or signature encoding", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "Neither the party's fresh signature (`party`, `at`, `sig`) nor the operator's token (`party-only`)", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub(crate) async fn list_streams(
    State(hub): St,
    Extension(operator): Extension<OperatorToken>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<PartyPageQuery>,
) -> Result<Json<Vec<StreamView>>, Problem> {
    let only = crate::party::list_reader(&hub, &operator, &headers, &q)?;
    let payer = |s: &Stream| hub.channel(&s.payer_channel).map(|c| c.peer);
    let mine = hub
        .streams()
        .into_iter()
        .filter(|s| only.is_none_or(|p| s.payee == p || payer(s) == Some(p)))
        .map(|s| (s.id, s));
    let list = crate::party::page(mine, q.after.as_deref(), q.limit)?;
    Ok(Json(
        list.iter().map(|(_, s)| stream_view(&hub, s)).collect(),
    ))
}

/// One payment stream with what it paid.
#[utoipa::path(get, path = "/v1/hub/streams/{id}", tag = "hub",
    params(("id" = String, Path, description = "Stream id (the invoice's payment hash, hex)", pattern = r"^(0x)?[0-9a-fA-F]{64}$")),
    responses(
        (status = 200, description = "The stream", body = StreamView),
        (status = 404, description = "No such stream", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_stream(
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

/// Close a payment stream: no more ticks are taken (operator).
#[utoipa::path(post, path = "/v1/hub/streams/{id}/close", tag = "hub",
    params(("id" = String, Path, description = "Stream id (hex)", pattern = r"^(0x)?[0-9a-fA-F]{64}$")),
    responses(
        (status = 401, description = "Operator only: `Authorization: Bearer <hub.cookie>`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 200, description = "Closed: no more ticks are taken", body = StreamView),
        (status = 404, description = "No such stream", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub(crate) async fn close_stream(
    State(hub): St,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<StreamView>, Problem> {
    let Path(id) = id.map_err(path_problem)?;
    let id = parse_hash(&id, "stream id")?;
    let h = hub.clone();
    let s = blocking(move || h.close_stream(&id)).await?;
    Ok(Json(stream_view(&hub, &s)))
}

fn fund_view(hub: &Hub, f: &crate::store::Fund) -> FundView {
    FundView {
        optimae: f.optimae.to_hex(),
        payer_channel: f.payer_channel.to_hex(),
        funded_msat: f.funded_msat.to_string(),
        released_msat: f.released_msat.to_string(),
        returned_msat: f.returned_msat.to_string(),
        paid: f
            .paid
            .iter()
            .map(|(k, fee)| FundPaidView {
                evaluator: addr(hub, k),
                fee_msat: fee.to_string(),
            })
            .collect(),
        funded_at_ms: f.funded_at_ms,
        settled: f.settled,
    }
}

/// Verification funds held by the hub: to the operator all, to a payer those it funded, to
/// an evaluator those that paid it; in optimae order, by pages.
#[utoipa::path(get, path = "/v1/hub/funds", tag = "hub", params(PartyPageQuery),
    responses(
        (status = 200, description = "The verification funds the reader may see, in optimae order", body = [FundView]),
        (status = 400, description = "Bad address, paging or signature encoding", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "Neither the party's fresh signature (`party`, `at`, `sig`) nor the operator's token (`party-only`)", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub(crate) async fn list_funds(
    State(hub): St,
    Extension(operator): Extension<OperatorToken>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<PartyPageQuery>,
) -> Result<Json<Vec<FundView>>, Problem> {
    let only = crate::party::list_reader(&hub, &operator, &headers, &q)?;
    let concerns = |f: &Fund, p: PublicKeyBytes| {
        hub.channel(&f.payer_channel).is_some_and(|c| c.peer == p)
            || f.paid.iter().any(|(evaluator, _)| *evaluator == p)
    };
    let mine = hub
        .funds()
        .into_iter()
        .filter(|f| only.is_none_or(|p| concerns(f, p)))
        .map(|f| (f.optimae, f));
    let list = crate::party::page(mine, q.after.as_deref(), q.limit)?;
    Ok(Json(list.iter().map(|(_, f)| fund_view(&hub, f)).collect()))
}

/// The fund of one optimae and its releases.
#[utoipa::path(get, path = "/v1/hub/funds/{optimae}", tag = "hub",
    params(("optimae" = String, Path, description = "The optimae id (hex)", pattern = r"^(0x)?[0-9a-fA-F]{64}$")),
    responses(
        (status = 200, description = "The optimae's verification fund", body = FundView),
        (status = 404, description = "No fund for this optimae", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_fund(
    State(hub): St,
    optimae: Result<Path<String>, PathRejection>,
) -> Result<Json<FundView>, Problem> {
    let Path(optimae) = optimae.map_err(path_problem)?;
    let optimae = parse_hash(&optimae, "optimae id")?;
    let f = hub
        .fund(&optimae)
        .ok_or_else(|| Problem::not_found("not-found", "no fund for this optimae"))?;
    Ok(Json(fund_view(&hub, &f)))
}
