//! What the hub's route modules share: the handler state, problem documents for the hub's
//! errors, parsing of ids and addresses, the operator's token, idempotent answers, and running
//! blocking hub work off the async threads. It knows no route.

use crate::hub::{Hub, HubError, PendingAnswer};
use axum::extract::State;
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use doin_http::Problem;
use doin_types::{Address, Hash256, PortError, PublicKeyBytes};
use serde::Serialize;
use std::sync::Arc;

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

pub(crate) fn problem(e: HubError) -> Problem {
    match e {
        HubError::UnknownChannel(_) | HubError::UnknownStream(_) => {
            Problem::not_found("not-found", e.to_string())
        }
        HubError::Invalid(_) => Problem::bad_request("invalid-request", e.to_string()),
        HubError::AlreadyClosing(_) => Problem::new(
            StatusCode::CONFLICT,
            "already-closing",
            "Already closing",
            e.to_string(),
        ),
        HubError::Leased(..) => Problem::new(
            StatusCode::CONFLICT,
            "channel-leased",
            "Leased",
            e.to_string(),
        ),
        HubError::Liquidity(_) => Problem::new(
            StatusCode::CONFLICT,
            "insufficient-liquidity",
            "Insufficient liquidity",
            e.to_string(),
        ),
        HubError::Channel(_) => Problem::bad_request("channel-protocol", e.to_string()),
        HubError::Invoice(_) => Problem::bad_request("invalid-invoice", e.to_string()),
        // Refused for what it is: the same request would be refused again, so it is no outage.
        HubError::Chain(PortError::Invalid(_)) => {
            Problem::bad_request("transaction-refused", e.to_string())
        }
        HubError::Chain(_) => Problem::unavailable("transfer-chain", e.to_string()),
        HubError::Store(doin_types::StoreError::NoSpace(_)) => Problem::storage_full(e),
        HubError::Store(_) | HubError::Money(_) | HubError::Internal(_) => Problem::internal(e),
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
    pub(crate) fn answer<R>(self, body: fn(&R) -> Vec<u8>) -> PendingAnswer<R> {
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
/// request, so a key reused for another request is refused). A key another request is
/// still using gets `409 idempotency-key-in-flight`.
/// What the documented pattern allows: 1–255 characters of ASCII `!`–`~`, with spaces inside
/// (a header value may also carry tabs, which the pattern does not allow).
fn acceptable_idempotency_key(k: &str) -> bool {
    let b = k.as_bytes();
    let visible = |c: &u8| (b'!'..=b'~').contains(c);
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            b.len() <= 255
                && visible(first)
                && visible(last)
                && b.iter().all(|c| (b' '..=b'~').contains(c))
        }
        _ => false,
    }
}

pub(crate) async fn idempotent<T: Serialize + Send + 'static>(
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
                .filter(|k| acceptable_idempotency_key(k))
                .ok_or_else(|| {
                    Problem::bad_request(
                        "invalid-idempotency-key",
                        "1-255 visible ASCII characters, spaces only between them (no tabs)",
                    )
                })?;
            Some(k.to_string())
        }
    };
    // Held until the answer is durable (inside the blocking work, which goes on even if the
    // client hangs up): a duplicate that arrives meanwhile is refused, so two requests with
    // one key can never both act.
    let taken = match &key {
        None => None,
        Some(k) => Some(hub.take_idempotency_key(k).ok_or_else(|| {
            Problem::new(
                StatusCode::CONFLICT,
                "idempotency-key-in-flight",
                "Conflict",
                "a request with this Idempotency-Key is being handled: ask again for its answer",
            )
        })?),
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
    let answer = blocking(move || {
        let _taken = taken;
        f(slot)
    })
    .await?;
    Ok((status, Json(answer)).into_response())
}

/// A view as a stored answer's body (serialising these plain structs cannot fail).
pub(crate) fn json_body<T: Serialize>(view: &T) -> Vec<u8> {
    serde_json::to_vec(view).unwrap_or_default()
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

/// A server-sent event stream of what `rx` yields: each item one `event` with its number as
/// the id (what `Last-Event-ID` resumes from) and its JSON as data; a comment every 15 s keeps
/// idle connections open through proxies.
pub(crate) fn sse_response<T: Serialize + Send + 'static>(
    rx: tokio::sync::mpsc::Receiver<(u64, T)>,
    event: &'static str,
) -> Response {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use tokio_stream::StreamExt as _;
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx).map(move |(id, item)| {
        Ok::<_, std::convert::Infallible>(
            Event::default()
                .id(id.to_string())
                .event(event)
                .data(serde_json::to_string(&item).unwrap_or_default()),
        )
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(15)))
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::acceptable_idempotency_key;

    #[test]
    fn idempotency_keys_follow_the_documented_pattern() {
        for ok in ["a", "order-42", "a b", &"x".repeat(255), "!~"] {
            assert!(acceptable_idempotency_key(ok), "{ok:?}");
        }
        for bad in ["", " a", "a ", "a\tb", "é", &"x".repeat(256), "a\u{7f}"] {
            assert!(!acceptable_idempotency_key(bad), "{bad:?}");
        }
    }
}
