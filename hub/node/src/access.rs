//! Who may make the hub's operator calls: the operator's start-time token (`hub.cookie`, every
//! right: local administration) or a persistent API key with scopes, made by the operator.
//!
//! An API key is `dhk_<id>_<secret>` (16 and 64 hex digits). The hub keeps only the SHA-256
//! of the secret (`hub_api_keys`), so its store cannot give a key away; the key is shown once,
//! when it is made. Scopes: `read` (the accounting export, the hub's invoices, payees'
//! feeds), `invoice` (invoices payable to the hub), `pay` (opening and closing the hub's
//! channels, closing streams: what moves the hub's money), `admin` (all of these, the webhooks and the keys
//! themselves). This module decides access only; it knows no route.

use crate::api_keys::{split_key, Scope};
use crate::hub::Hub;
use crate::rest::OperatorToken;
use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use doin_http::Problem;
use std::sync::Arc;

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// Whether the request may do what `scope` covers: the operator's token, or an API key with
/// that scope (or `admin`). `401 operator-only` without either, `403 insufficient-scope` for
/// a key without the scope.
pub(crate) fn authorize(
    hub: &Hub,
    operator: &OperatorToken,
    headers: &HeaderMap,
    scope: Scope,
) -> Result<(), Problem> {
    if operator.authorizes(headers) {
        return Ok(());
    }
    let unauthorized = || {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "operator-only",
            "Operator only",
            "this call needs the hub operator's token (`Authorization: Bearer <contents of \
             hub.cookie in the node's data directory>`) or an API key of the operator's",
        )
    };
    let (id, secret) = bearer(headers)
        .and_then(split_key)
        .ok_or_else(unauthorized)?;
    let key = hub
        .store()
        .api_key(id)
        .map_err(Problem::internal)?
        .ok_or_else(unauthorized)?;
    let hashed = doin_tx_core::channel::sha256(&secret);
    if !same(&hashed, &key.secret_sha256) {
        return Err(unauthorized());
    }
    if !key.allows(scope) {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "insufficient-scope",
            "Insufficient scope",
            format!("this API key lacks the `{}` scope", scope.as_str()),
        ));
    }
    Ok(())
}

/// The state of a route group's gate: who the operator is, where the keys are, what the
/// group needs.
#[derive(Clone)]
pub(crate) struct Gate {
    pub(crate) operator: OperatorToken,
    pub(crate) hub: Arc<Hub>,
    pub(crate) scope: Scope,
}

pub(crate) async fn require_scope(State(gate): State<Gate>, req: Request, next: Next) -> Response {
    match authorize(&gate.hub, &gate.operator, req.headers(), gate.scope) {
        Ok(()) => next.run(req).await,
        Err(p) => p.into_response(),
    }
}
