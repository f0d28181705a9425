//! HTTP plumbing shared by every service's REST routes and the gateway.
//!
//! - `Problem`: RFC 9457 `application/problem+json` errors with a stable `type` per error kind.
//! - `ApiJson` / `ApiQuery`: extractors whose rejections are problems, not axum's plain text.
//! - `serve`: an HTTP server loop with a header-read timeout (slowloris), graceful shutdown
//!   and optional TLS (`Tls`, reloadable).
//! - `RateLimiter`: a per-client-IP token bucket middleware.
//! - `access`: the client's address (through trusted proxies only), request ids, the access log.
//!
//! It holds no routes and no chain logic.

// Every dependency in Cargo.toml is used (checked outside test builds, which also see the
// dev-dependencies).
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

pub mod access;
mod extract;
mod problem;
mod ratelimit;
mod serve;
mod tls;

pub use extract::{ApiJson, ApiQuery};
pub use problem::{
    is_retriable, method_not_allowed, not_found, path_problem, Problem, ProblemDoc,
    PROBLEM_TYPE_PREFIX, RETRIABLE_KINDS,
};
pub use ratelimit::{RateLimitConfig, RateLimiter};

/// Items of a list page when the client names no `limit`.
pub const DEFAULT_PAGE_LIMIT: usize = 25;
/// The most items of one list page.
pub const MAX_PAGE_LIMIT: usize = 200;

/// `400 invalid-cursor`: a list cursor this API did not issue.
pub fn invalid_cursor(cursor: &str) -> Problem {
    Problem::bad_request(
        "invalid-cursor",
        format!("cursor {cursor:?} was not issued by this API"),
    )
}

/// A list route's numeric `cursor` (a height or a place), `None` when absent.
pub fn numeric_cursor(cursor: Option<&str>) -> Result<Option<u64>, Problem> {
    cursor
        .map(|c| c.parse::<u64>().map_err(|_| invalid_cursor(c)))
        .transpose()
}

/// A list route's `limit`: 1–[`MAX_PAGE_LIMIT`], [`DEFAULT_PAGE_LIMIT`] when absent, else
/// `400 invalid-limit`.
pub fn page_limit(limit: Option<usize>) -> Result<usize, Problem> {
    match limit {
        None => Ok(DEFAULT_PAGE_LIMIT),
        Some(0) => Err(Problem::bad_request(
            "invalid-limit",
            "limit must be at least 1",
        )),
        Some(n) if n > MAX_PAGE_LIMIT => Err(Problem::bad_request(
            "invalid-limit",
            format!("limit must be at most {MAX_PAGE_LIMIT}"),
        )),
        Some(n) => Ok(n),
    }
}
pub use serve::{serve, ServeConfig};
pub use tls::{reload_on_hangup, Tls};
