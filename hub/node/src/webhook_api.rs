//! REST routes of the operator's webhooks (`/v1/hub/webhooks…`, `admin` scope): make one (its
//! signing secret shown once), list them, remove one, page through a webhook's deliveries and
//! deliver one again. Parsing and formatting only; the outbox is `webhook_outbox`'s.

use crate::rest::St;
use crate::webhook_records::{check_url, Delivery, Webhook};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use doin_api::hub::{
    DeliveryPageQuery, WebhookDeliveryPage, WebhookDeliveryView, WebhookRequest, WebhookView,
};
use doin_http::{path_problem, ApiJson, ApiQuery, Problem, ProblemDoc};
use rand::RngCore;

fn view(id: u64, w: &Webhook, with_secret: bool) -> WebhookView {
    WebhookView {
        id: format!("{id:016x}"),
        url: w.url.clone(),
        events: w.events.clone(),
        created_at_ms: w.created_at_ms,
        secret: with_secret.then(|| hex::encode(w.secret)),
    }
}

fn delivery_view(seq: u64, d: &Delivery) -> WebhookDeliveryView {
    let pending = d.state == crate::webhook_records::DeliveryState::Pending;
    WebhookDeliveryView {
        seq,
        event_id: d.event_id.clone(),
        event_type: d.event_type,
        state: d.state.as_str().into(),
        attempts: d.attempts,
        created_at_ms: d.created_at_ms,
        next_attempt_at_ms: pending.then_some(d.next_attempt_at_ms),
        last_attempt_at_ms: d.last_attempt_at_ms,
        last_status: d.last_status,
        last_error: d.last_error.clone(),
        body: d.body.clone(),
    }
}

fn webhook_id(text: &str) -> Result<u64, Problem> {
    (text.len() == 16)
        .then(|| u64::from_str_radix(text, 16).ok())
        .flatten()
        .ok_or_else(|| Problem::not_found("not-found", format!("no webhook {text}")))
}

fn no_webhook(id: u64) -> Problem {
    Problem::not_found("not-found", format!("no webhook {id:016x}"))
}

fn now_ms() -> u64 {
    u64::try_from(crate::hub::now().as_millis()).unwrap_or(u64::MAX)
}

/// Make a webhook (admin).
#[utoipa::path(post, path = "/v1/hub/webhooks", tag = "hub", request_body = WebhookRequest,
    responses(
        (status = 201, description = "The webhook, with its signing secret shown this once (`secret`). It is told of what happens from now on.", body = WebhookView),
        (status = 400, description = "No event type, or a URL that is not `https://` or `http://` with a host (`invalid-url`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "Operator only", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "An API key without the `admin` scope (`insufficient-scope`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "The hub has its most webhooks already (`too-many-webhooks`, 32)", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub(crate) async fn create_webhook(
    State(hub): St,
    body: ApiJson<WebhookRequest>,
) -> Result<Response, Problem> {
    let req = body.0;
    let mut events = req.events;
    events.sort_unstable();
    events.dedup();
    if events.is_empty() {
        return Err(Problem::bad_request(
            "invalid-events",
            "name at least one event type",
        ));
    }
    check_url(&req.url).map_err(|why| Problem::bad_request("invalid-url", why))?;
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let hook = Webhook {
        url: req.url,
        events,
        secret,
        created_at_ms: now_ms(),
    };
    let (h, w) = (hub.clone(), hook.clone());
    let id = crate::rest::blocking(move || crate::webhooks::create(&h, &w))
        .await?
        .ok_or_else(|| {
            Problem::new(
                StatusCode::CONFLICT,
                "too-many-webhooks",
                "Too many webhooks",
                format!(
                    "the hub keeps at most {} webhooks: remove one first",
                    crate::webhook_outbox::MAX_WEBHOOKS
                ),
            )
        })?;
    Ok((StatusCode::CREATED, Json(view(id, &hook, true))).into_response())
}

/// The operator's webhooks, without their secrets (admin).
#[utoipa::path(get, path = "/v1/hub/webhooks", tag = "hub",
    responses(
        (status = 200, description = "Every webhook: id, URL, event types, when it was made", body = Vec<WebhookView>),
        (status = 401, description = "Operator only", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "An API key without the `admin` scope (`insufficient-scope`)", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub(crate) async fn list_webhooks(State(hub): St) -> Result<Json<Vec<WebhookView>>, Problem> {
    let hooks = hub.webhooks().webhooks().map_err(Problem::internal)?;
    Ok(Json(
        hooks.iter().map(|(id, w)| view(*id, w, false)).collect(),
    ))
}

/// Remove a webhook and its deliveries (admin).
#[utoipa::path(delete, path = "/v1/hub/webhooks/{id}", tag = "hub",
    params(("id" = String, Path, description = "The webhook's id (16 hex digits)", pattern = r"^[0-9a-f]{16}$")),
    responses(
        (status = 204, description = "Removed: nothing more is delivered to it"),
        (status = 401, description = "Operator only", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "An API key without the `admin` scope (`insufficient-scope`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such webhook", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub(crate) async fn delete_webhook(
    State(hub): St,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, Problem> {
    let Path(id) = id.map_err(path_problem)?;
    let id = webhook_id(&id)?;
    let h = hub.clone();
    if crate::rest::blocking(move || Ok(h.webhooks().delete(id)?)).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_webhook(id))
    }
}

/// A webhook's deliveries, oldest first (admin).
#[utoipa::path(get, path = "/v1/hub/webhooks/{id}/deliveries", tag = "hub",
    params(DeliveryPageQuery, ("id" = String, Path, description = "The webhook's id (16 hex digits)", pattern = r"^[0-9a-f]{16}$")),
    responses(
        (status = 200, description = "Each delivery: the event, its state (`pending`, `delivered`, `failed`), attempts, the receiver's last answer", body = WebhookDeliveryPage),
        (status = 400, description = "Bad paging", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "Operator only", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "An API key without the `admin` scope (`insufficient-scope`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such webhook", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub(crate) async fn list_deliveries(
    State(hub): St,
    id: Result<Path<String>, PathRejection>,
    ApiQuery(q): ApiQuery<DeliveryPageQuery>,
) -> Result<Json<WebhookDeliveryPage>, Problem> {
    let Path(id) = id.map_err(path_problem)?;
    let id = webhook_id(&id)?;
    let limit = match q.limit {
        None => 100,
        Some(n) if (1..=1000).contains(&n) => n,
        Some(_) => return Err(Problem::bad_request("invalid-limit", "limit is 1-1000")),
    };
    let h = hub.clone();
    let after = q.after.unwrap_or(0);
    let page = crate::rest::blocking(move || {
        let outbox = h.webhooks();
        Ok(match outbox.webhook(id)? {
            None => None,
            // One more than asked tells whether there is a next page.
            Some(_) => Some(outbox.deliveries(id, after, limit.saturating_add(1))?),
        })
    })
    .await?
    .ok_or_else(|| no_webhook(id))?;
    let more = page.len() > limit;
    let deliveries: Vec<WebhookDeliveryView> = page
        .iter()
        .take(limit)
        .map(|(seq, d)| delivery_view(*seq, d))
        .collect();
    let next_after = if more {
        deliveries.last().map(|d| d.seq)
    } else {
        None
    };
    Ok(Json(WebhookDeliveryPage {
        deliveries,
        next_after,
    }))
}

/// Deliver an event to a webhook again, now (admin).
#[utoipa::path(post, path = "/v1/hub/webhooks/{id}/deliveries/{seq}/redeliver", tag = "hub",
    params(("id" = String, Path, description = "The webhook's id (16 hex digits)", pattern = r"^[0-9a-f]{16}$"),
        ("seq" = u64, Path, description = "The delivery's number", minimum = 1)),
    responses(
        (status = 202, description = "Due now, with the same `Doin-Webhook-Id` and body; a failed delivery gets one more attempt and its backoff", body = WebhookDeliveryView),
        (status = 401, description = "Operator only", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "An API key without the `admin` scope (`insufficient-scope`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such webhook or delivery", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub(crate) async fn redeliver(
    State(hub): St,
    path: Result<Path<(String, u64)>, PathRejection>,
) -> Result<Response, Problem> {
    let Path((id, seq)) = path.map_err(path_problem)?;
    let id = webhook_id(&id)?;
    let h = hub.clone();
    let d = crate::rest::blocking(move || Ok(h.webhooks().redeliver((id, seq), now_ms())?))
        .await?
        .ok_or_else(|| {
            Problem::not_found(
                "not-found",
                format!("no delivery {seq} of webhook {id:016x}"),
            )
        })?;
    Ok((StatusCode::ACCEPTED, Json(delivery_view(seq, &d))).into_response())
}
