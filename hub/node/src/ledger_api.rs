//! REST routes of the hub's books (`/v1/hub/payees/...`, `/v1/hub/accounting.csv`): what it
//! delivered to a payee, as a page or a live resumable feed, and the whole ledger as CSV.
//! Reads only; entries are written by the hub as payments complete.
//!
//! What a payee earns is the payee's business: its feed is served to the payee (a fresh
//! signature of its key over [`feed_auth_hash`], in the query) or to the operator (its token),
//! to nobody else.

use crate::hub::Hub;
use crate::store::Payment;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use doin_api::hub::*;
use doin_http::{path_problem, ApiQuery, Problem, ProblemDoc};
use doin_types::PublicKeyBytes;
use std::sync::Arc;

use crate::rest::{addr, parse_addr, OperatorToken, St};
use axum::Extension;

fn payee_only(detail: impl Into<String>) -> Problem {
    Problem::new(StatusCode::UNAUTHORIZED, "payee-only", "Payee only", detail)
}

/// Whether the request may read `payee`'s feed: the operator's token, or the payee's fresh
/// signature.
fn authorize_feed(
    hub: &Hub,
    operator: &OperatorToken,
    headers: &HeaderMap,
    payee: &PublicKeyBytes,
    at: Option<u64>,
    sig: Option<&str>,
) -> Result<(), Problem> {
    // The operator, or an API key of its that may read.
    if crate::access::authorize(hub, operator, headers, crate::api_keys::Scope::Read).is_ok() {
        return Ok(());
    }
    let (Some(at), Some(sig)) = (at, sig) else {
        return Err(payee_only(
            "a payee's payments are shown to the payee (`at` and `sig`: its signature over \
             H_tag(\"doin/hub-feed\", chain_id ‖ payee key ‖ at)) or to the operator",
        ));
    };
    crate::party::check_proof(hub, payee, at, sig, payee_only)
}

pub(crate) fn payment_view(hub: &Hub, p: &Payment) -> PaymentView {
    PaymentView {
        seq: p.seq,
        at_ms: p.at_ms,
        kind: p.kind.as_str().to_string(),
        channel: p.channel.to_hex(),
        counterparty: addr(hub, &p.counterparty),
        amount_msat: p.amount_msat.to_string(),
        fee_msat: p.fee_msat.to_string(),
        stream: p.stream.map(|s| s.to_hex()),
        payment_hash: p.payment_hash.map(|h| h.to_hex()),
        state_seq: p.state_seq,
        optimae: p.optimae.map(|o| o.to_hex()),
    }
}

fn limit_of(limit: Option<usize>) -> Result<usize, Problem> {
    match limit {
        None => Ok(100),
        Some(n) if (1..=1000).contains(&n) => Ok(n),
        Some(_) => Err(Problem::bad_request("invalid-limit", "limit is 1-1000")),
    }
}

/// Payments a payee received, signed by the hub.
#[utoipa::path(get, path = "/v1/hub/payees/{address}/payments", tag = "hub", params(PayeePageQuery,
        ("address" = String, Path, description = "The payee's address", format = "doin-address")),
    responses(
        (status = 200, description = "What the hub delivered to this payee, oldest first", body = [PaymentView]),
        (status = 400, description = "Bad address, paging or signature encoding", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "Neither the payee's fresh signature (`at`, `sig`) nor the operator's token", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub(crate) async fn payee_payments(
    State(hub): St,
    Extension(operator): Extension<OperatorToken>,
    headers: HeaderMap,
    address: Result<Path<String>, PathRejection>,
    ApiQuery(q): ApiQuery<PayeePageQuery>,
) -> Result<Json<Vec<PaymentView>>, Problem> {
    let Path(address) = address.map_err(path_problem)?;
    let payee = parse_addr(&hub, &address)?;
    let limit = limit_of(q.limit)?;
    authorize_feed(&hub, &operator, &headers, &payee, q.at, q.sig.as_deref())?;
    let list = hub
        .store()
        .payee_payments(&payee, q.after.unwrap_or(0), limit)
        .map_err(Problem::internal)?;
    Ok(Json(list.iter().map(|p| payment_view(&hub, p)).collect()))
}

/// A payer's own history: what it paid the hub and what came back.
#[utoipa::path(get, path = "/v1/hub/payers/{address}/payments", tag = "hub", params(PayeePageQuery,
        ("address" = String, Path, description = "The payer's address", format = "doin-address")),
    responses(
        (status = 200, description = "The payer's ledger entries, oldest first: `stream_in` (its ticks), `received` (its payments to the hub's invoices), `fund_in` (into verification funds), `fund_return` (what funds gave back on chain)", body = [PaymentView]),
        (status = 400, description = "Bad address, paging or signature encoding", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "Neither the payer's fresh signature (`at`, `sig`) nor the operator's token (`party-only`)", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub(crate) async fn payer_payments(
    State(hub): St,
    Extension(operator): Extension<OperatorToken>,
    headers: HeaderMap,
    address: Result<Path<String>, PathRejection>,
    ApiQuery(q): ApiQuery<PayeePageQuery>,
) -> Result<Json<Vec<PaymentView>>, Problem> {
    let Path(address) = address.map_err(path_problem)?;
    let limit = limit_of(q.limit)?;
    let who = crate::party::reader(
        &hub,
        &operator,
        &headers,
        Some(&address),
        q.at,
        q.sig.as_deref(),
    )?;
    let payer = who
        .only()
        .ok_or_else(|| Problem::internal("a payer named"))?;
    let list = hub
        .store()
        .payer_payments(&payer, q.after.unwrap_or(0), limit)
        .map_err(Problem::internal)?;
    Ok(Json(list.iter().map(|p| payment_view(&hub, p)).collect()))
}

/// Server-sent payments to a payee, signed by the hub.
#[utoipa::path(get, path = "/v1/hub/payees/{address}/events", tag = "hub",
    params(FeedAuth, ("address" = String, Path, description = "The payee's address", format = "doin-address")),
    responses(
        (status = 200, description = "Server-sent `payment` events (PaymentView) as they become durable. The id is the ledger sequence number; send the last one as `Last-Event-ID` to resume without a gap (with a fresh signature).", content_type = "text/event-stream"),
        (status = 400, description = "Bad address, event id or signature encoding", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "Neither the payee's fresh signature (`at`, `sig`) nor the operator's token", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub(crate) async fn payee_payment_events(
    State(hub): St,
    Extension(operator): Extension<OperatorToken>,
    headers: HeaderMap,
    address: Result<Path<String>, PathRejection>,
    ApiQuery(auth): ApiQuery<FeedAuth>,
) -> Result<Response, Problem> {
    let Path(address) = address.map_err(path_problem)?;
    let payee = parse_addr(&hub, &address)?;
    authorize_feed(
        &hub,
        &operator,
        &headers,
        &payee,
        auth.at,
        auth.sig.as_deref(),
    )?;
    let after: u64 = match headers.get("last-event-id") {
        None => 0,
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                Problem::bad_request("invalid-event-id", "Last-Event-ID is a sequence number")
            })?,
    };
    // An id from the future (another hub, a reset devnet) would hold the feed back until the
    // ledger caught up with it: treat it as "from now on".
    let last = hub
        .store()
        .next_payment_seq()
        .map_err(Problem::internal)?
        .saturating_sub(1);
    let after = after.min(last);
    let (tx, rx) = tokio::sync::mpsc::channel::<(u64, PaymentView)>(256);
    tokio::spawn(pump_payments(hub, payee, after, tx));
    Ok(crate::rest::sse_response(rx, "payment"))
}

/// Feeds one SSE client: stored entries after `after`, then live ones, each once and in order.
async fn pump_payments(
    hub: Arc<Hub>,
    payee: PublicKeyBytes,
    mut after: u64,
    out: tokio::sync::mpsc::Sender<(u64, PaymentView)>,
) {
    let mut live = hub.subscribe_payments();
    loop {
        // Catch up from the store (also after falling behind the live feed).
        loop {
            let page = match hub.store().payee_payments(&payee, after, 500) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "payment feed stopped on a store error");
                    return;
                }
            };
            let done = page.len() < 500;
            for p in page {
                after = p.seq;
                if out.send((p.seq, payment_view(&hub, &p))).await.is_err() {
                    return;
                }
            }
            if done {
                break;
            }
        }
        loop {
            match live.recv().await {
                Ok(p) => {
                    let to_payee = p.counterparty == payee
                        && matches!(
                            p.kind,
                            crate::store::PaymentKind::StreamOut
                                | crate::store::PaymentKind::RoutedOut
                        );
                    if to_payee && p.seq > after {
                        after = p.seq;
                        if out.send((p.seq, payment_view(&hub, &p))).await.is_err() {
                            return;
                        }
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => break,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}

/// The hub's ledger as CSV (operator).
#[utoipa::path(get, path = "/v1/hub/accounting.csv", tag = "hub", params(PageQuery),
    responses(
        (status = 401, description = "Operator only: `Authorization: Bearer <hub.cookie>`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 200, description = "The ledger as CSV (RFC 4180): seq,at_ms,kind,channel,counterparty,amount_msat,fee_msat,stream,payment_hash,state_seq,optimae; oldest first, entries after `after` made in [`from`, `to`)", content_type = "text/csv"),
        (status = 400, description = "Bad paging", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub(crate) async fn accounting_csv(
    State(hub): St,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Response, Problem> {
    let limit = match q.limit {
        None => 100_000,
        Some(n) if (1..=100_000).contains(&n) => n,
        Some(_) => return Err(Problem::bad_request("invalid-limit", "limit is 1-100000")),
    };
    // An empty range (`from` at or after `to`) has no entries: the header alone.
    let (from, to) = (q.from.unwrap_or(0), q.to.unwrap_or(u64::MAX));
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record([
        "seq",
        "at_ms",
        "kind",
        "channel",
        "counterparty",
        "amount_msat",
        "fee_msat",
        "stream",
        "payment_hash",
        "state_seq",
        "optimae",
    ])
    .map_err(Problem::internal)?;
    // Pages of the ledger in order, keeping the entries of the time range.
    let (mut after, mut written) = (q.after.unwrap_or(0), 0usize);
    while written < limit {
        let page = hub
            .store()
            .payments(after, 10_000)
            .map_err(Problem::internal)?;
        let last_page = page.len() < 10_000;
        for p in &page {
            after = p.seq;
            if p.at_ms < from || p.at_ms >= to || written >= limit {
                continue;
            }
            let v = payment_view(&hub, p);
            out.write_record([
                v.seq.to_string(),
                v.at_ms.to_string(),
                v.kind,
                v.channel,
                v.counterparty,
                v.amount_msat,
                v.fee_msat,
                v.stream.unwrap_or_default(),
                v.payment_hash.unwrap_or_default(),
                v.state_seq.to_string(),
                v.optimae.unwrap_or_default(),
            ])
            .map_err(Problem::internal)?;
            written += 1;
        }
        if last_page {
            break;
        }
    }
    let body = out.into_inner().map_err(Problem::internal)?;
    Ok((
        StatusCode::OK,
        [(axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8")],
        body,
    )
        .into_response())
}
