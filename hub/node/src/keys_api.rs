//! REST routes of the operator's API keys (`/v1/hub/keys…`, `admin` scope): make one (its
//! secret shown once), list them, revoke one. Parsing and formatting only; what a key may
//! do is `access`'s.

use crate::api_keys::{ApiKey, Scope};
use crate::rest::St;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use doin_api::hub::{ApiKeyRequest, ApiKeyScope, ApiKeyView};
use doin_http::{path_problem, ApiJson, Problem, ProblemDoc};
use rand::RngCore;

fn scope_of(s: ApiKeyScope) -> Scope {
    match s {
        ApiKeyScope::Read => Scope::Read,
        ApiKeyScope::Invoice => Scope::Invoice,
        ApiKeyScope::Pay => Scope::Pay,
        ApiKeyScope::Admin => Scope::Admin,
    }
}

fn scope_view(s: Scope) -> ApiKeyScope {
    match s {
        Scope::Read => ApiKeyScope::Read,
        Scope::Invoice => ApiKeyScope::Invoice,
        Scope::Pay => ApiKeyScope::Pay,
        Scope::Admin => ApiKeyScope::Admin,
    }
}

fn view(id: &str, k: &ApiKey, key: Option<String>) -> ApiKeyView {
    ApiKeyView {
        id: id.to_string(),
        scopes: k.scopes.iter().map(|s| scope_view(*s)).collect(),
        label: k.label.clone(),
        created_at_ms: k.created_at_ms,
        key,
    }
}

/// Make an API key (admin).
#[utoipa::path(post, path = "/v1/hub/keys", tag = "hub", request_body = ApiKeyRequest,
    responses(
        (status = 201, description = "The key, shown this once (`key`): the hub keeps only a hash of its secret", body = ApiKeyView),
        (status = 400, description = "No scope, or a label over 100 characters", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "Operator only", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "An API key without the `admin` scope (`insufficient-scope`)", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub(crate) async fn create_key(
    State(hub): St,
    body: ApiJson<ApiKeyRequest>,
) -> Result<Response, Problem> {
    let req = body.0;
    let mut scopes: Vec<Scope> = req.scopes.iter().map(|s| scope_of(*s)).collect();
    scopes.sort_unstable();
    scopes.dedup();
    if scopes.is_empty() {
        return Err(Problem::bad_request(
            "invalid-scope",
            "name at least one scope",
        ));
    }
    if req.label.chars().count() > 100 {
        return Err(Problem::bad_request(
            "invalid-label",
            "at most 100 characters",
        ));
    }
    let (mut id, mut secret) = ([0u8; 8], [0u8; 32]);
    rand::rngs::OsRng.fill_bytes(&mut id);
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let id = hex::encode(id);
    let key = ApiKey {
        secret_sha256: doin_tx_core::channel::sha256(&secret),
        scopes,
        label: req.label,
        created_at_ms: u64::try_from(crate::hub::now().as_millis()).unwrap_or(u64::MAX),
    };
    let h = hub.clone();
    let (i, k) = (id.clone(), key.clone());
    crate::rest::blocking(move || Ok(h.store().put_api_key(&i, &k)?)).await?;
    let token = format!("dhk_{id}_{}", hex::encode(secret));
    Ok((StatusCode::CREATED, Json(view(&id, &key, Some(token)))).into_response())
}

/// The operator's API keys, without their secrets (admin).
#[utoipa::path(get, path = "/v1/hub/keys", tag = "hub",
    responses(
        (status = 200, description = "Every key: id, scopes, label, when it was made", body = Vec<ApiKeyView>),
        (status = 401, description = "Operator only", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "An API key without the `admin` scope (`insufficient-scope`)", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub(crate) async fn list_keys(State(hub): St) -> Result<Json<Vec<ApiKeyView>>, Problem> {
    let keys = hub.store().api_keys().map_err(Problem::internal)?;
    Ok(Json(keys.iter().map(|(id, k)| view(id, k, None)).collect()))
}

/// Revoke an API key (admin).
#[utoipa::path(delete, path = "/v1/hub/keys/{id}", tag = "hub",
    params(("id" = String, Path, description = "The key's id (16 hex digits)", pattern = r"^[0-9a-f]{16}$")),
    responses(
        (status = 204, description = "Revoked: the key is refused from now on"),
        (status = 401, description = "Operator only", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "An API key without the `admin` scope (`insufficient-scope`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such key", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub(crate) async fn revoke_key(
    State(hub): St,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, Problem> {
    let Path(id) = id.map_err(path_problem)?;
    let h = hub.clone();
    let i = id.clone();
    let gone = crate::rest::blocking(move || Ok(h.store().delete_api_key(&i)?)).await?;
    if gone {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found("not-found", format!("no API key {id}")))
    }
}
