//! RFC 9457 problem details.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};

/// Every problem `type` is this prefix plus a kebab-case kind (`urn:doin:problem:nonce-too-low`).
/// Kinds are stable: clients may branch on them. `docs/api.md` lists them all.
pub const PROBLEM_TYPE_PREFIX: &str = "urn:doin:problem:";

/// Kinds whose request, sent again unchanged, may succeed later: the node or the chains were
/// not ready, not the request wrong (a block or anchor not there yet, a full queue). Every
/// problem with status 408, 429, 500, 502, 503 or 504 is retriable as well; all others are not.
/// `docs/api.md` lists these.
pub const RETRIABLE_KINDS: &[&str] = &[
    "block-not-found",
    "not-anchored",
    "not-checkpointed",
    "transaction-not-in-block",
    "sender-queue-full",
    "reveal-without-commit",
    "vote-too-early",
    "insufficient-liquidity",
    // The first request with this key is still being handled: asked again, its answer.
    "idempotency-key-in-flight",
    // The hub keeps a leased channel open until the lease ends; then the close goes through.
    "channel-leased",
];

/// Whether a problem of this status and kind may go away if the same request is sent again
/// later (the `retriable` member of every problem).
pub fn is_retriable(status: StatusCode, kind: &str) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504) || RETRIABLE_KINDS.contains(&kind)
}

/// An error response body.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub status: StatusCode,
    pub kind: String,
    pub title: String,
    pub detail: String,
    /// Extra members (e.g. `expected_nonce`), merged into the JSON object.
    pub extra: Map<String, Value>,
}

/// OpenAPI schema of a problem body.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ProblemDoc {
    /// `urn:doin:problem:<kind>`; stable per error kind.
    #[serde(rename = "type")]
    #[schema(example = "urn:doin:problem:nonce-too-low")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Whether the same request, sent again unchanged, may succeed later (a full queue, a
    /// block not there yet, a rate limit). `false`: change the request first.
    pub retriable: bool,
}

impl Problem {
    pub fn new(status: StatusCode, kind: &str, title: &str, detail: impl Into<String>) -> Problem {
        Problem {
            status,
            kind: kind.to_string(),
            title: title.to_string(),
            detail: detail.into(),
            extra: Map::new(),
        }
    }

    pub fn bad_request(kind: &str, detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, kind, "Bad request", detail)
    }

    pub fn not_found(kind: &str, detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, kind, "Not found", detail)
    }

    /// Something that existed and this node no longer keeps (pruned history).
    pub fn gone(kind: &str, detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::GONE, kind, "Gone", detail)
    }

    pub fn unprocessable(kind: &str, detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            kind,
            "Request cannot be processed",
            detail,
        )
    }

    /// A server-side failure. The detail is logged, not sent: clients get a generic message.
    pub fn internal(detail: impl std::fmt::Display) -> Problem {
        tracing::error!(error = %detail, "internal error answering a request");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "the node could not complete the request; see its logs",
        )
    }

    /// `503 storage-full`: the node's disk is full, so it takes nothing it would have to write
    /// (logged as an error: the operator must free space).
    pub fn storage_full(detail: impl std::fmt::Display) -> Problem {
        tracing::error!(error = %detail, "refused a request: the storage device is full");
        Problem::unavailable(
            "storage-full",
            "this node's disk is full: it takes nothing it must write until space is freed; another node may",
        )
    }

    pub fn unavailable(kind: &str, detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, kind, "Unavailable", detail)
    }

    /// Adds an extra member.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Problem {
        self.extra.insert(key.to_string(), value.into());
        self
    }

    pub fn type_uri(&self) -> String {
        format!("{PROBLEM_TYPE_PREFIX}{}", self.kind)
    }

    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("type".into(), Value::String(self.type_uri()));
        m.insert("title".into(), Value::String(self.title.clone()));
        m.insert("status".into(), Value::from(self.status.as_u16()));
        m.insert("detail".into(), Value::String(self.detail.clone()));
        m.insert(
            "retriable".into(),
            Value::Bool(is_retriable(self.status, &self.kind)),
        );
        for (k, v) in &self.extra {
            m.entry(k.clone()).or_insert_with(|| v.clone());
        }
        Value::Object(m)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = self.to_json().to_string();
        let mut resp = (self.status, body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        resp
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.status, self.kind, self.detail)
    }
}

/// A path segment axum could not decode (e.g. invalid percent-encoding): the client's mistake.
pub fn path_problem(rej: axum::extract::rejection::PathRejection) -> Problem {
    Problem::bad_request("invalid-path", rej.body_text())
}

/// Fallback for unknown paths.
pub async fn not_found(uri: axum::http::Uri) -> Problem {
    Problem::not_found("not-found", format!("no route for {}", uri.path()))
}

/// Fallback for known paths with the wrong method.
pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_says_whether_sending_it_again_may_help() {
        let mistake = Problem::bad_request("nonce-too-low", "used").with("expected_nonce", 3);
        let json = mistake.to_json();
        assert_eq!(json["retriable"], false);
        assert_eq!(json["expected_nonce"], 3);
        assert_eq!(
            Problem::unavailable("mempool-full", "full").to_json()["retriable"],
            true
        );
        assert_eq!(
            Problem::not_found("not-anchored", "not yet").to_json()["retriable"],
            true
        );
        assert_eq!(
            Problem::not_found("transaction-not-found", "unknown").to_json()["retriable"],
            false
        );
        // An extra member never overrides the standard ones.
        let forged = Problem::bad_request("invalid-hex", "x").with("retriable", true);
        assert_eq!(forged.to_json()["retriable"], false);
    }
}
