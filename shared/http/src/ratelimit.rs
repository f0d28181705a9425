//! Per-client-IP token buckets.
//!
//! Each client IP gets `burst` tokens that refill at `per_second`; a request takes one. An
//! empty bucket answers 429 with `Retry-After`. Buckets of idle clients are dropped so memory
//! stays bounded. The client is the [`ClientIp`] the access layer judged (the connection's
//! peer, or behind a trusted proxy the address the proxy was reached from), else the
//! connection's peer; an IPv6 client is limited per /64 ([`rate_key`]).

use crate::access::{rate_key, ClientIp};
use crate::problem::Problem;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug)]
pub struct RateLimitConfig {
    /// Sustained requests per second per client IP (0 disables limiting).
    pub per_second: u32,
    /// Requests a client may make at once before being throttled.
    pub burst: u32,
}

struct Bucket {
    /// Tokens scaled by 1000 so refill needs no floats.
    milli_tokens: u64,
    last: Instant,
}

#[derive(Clone)]
pub struct RateLimiter {
    cfg: RateLimitConfig,
    buckets: Arc<Mutex<HashMap<IpAddr, Bucket>>>,
}

const MAX_TRACKED_CLIENTS: usize = 100_000;

impl RateLimiter {
    pub fn new(cfg: RateLimitConfig) -> RateLimiter {
        RateLimiter {
            cfg,
            buckets: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Takes a token for `ip`; `Err(wait)` when none is left.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        if self.cfg.per_second == 0 {
            return Ok(());
        }
        let cap = u64::from(self.cfg.burst.max(1)) * 1000;
        let rate = u64::from(self.cfg.per_second);
        let mut buckets = self.buckets.lock();
        if buckets.len() >= MAX_TRACKED_CLIENTS {
            // Drop buckets that are full again: forgetting them changes nothing.
            buckets.retain(|_, b| {
                let refill = now.duration_since(b.last).as_millis() as u64 * rate;
                b.milli_tokens.saturating_add(refill) < cap
            });
        }
        let b = buckets.entry(ip).or_insert(Bucket {
            milli_tokens: cap,
            last: now,
        });
        let elapsed_ms = now.duration_since(b.last).as_millis() as u64;
        b.milli_tokens = b
            .milli_tokens
            .saturating_add(elapsed_ms.saturating_mul(rate))
            .min(cap);
        b.last = now;
        if b.milli_tokens >= 1000 {
            b.milli_tokens -= 1000;
            Ok(())
        } else {
            let missing = 1000 - b.milli_tokens;
            Err(Duration::from_millis(missing.div_ceil(rate.max(1))))
        }
    }

    /// The axum middleware (`from_fn_with_state(limiter, RateLimiter::layer)`).
    pub async fn layer(State(limiter): State<RateLimiter>, req: Request, next: Next) -> Response {
        let ip = match req.extensions().get::<ClientIp>() {
            Some(c) => Some(c.0),
            None => req
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        };
        if let Some(ip) = ip {
            if let Err(wait) = limiter.check(rate_key(ip), Instant::now()) {
                let secs = wait.as_secs().max(1);
                let mut resp = Problem::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate-limited",
                    "Too many requests",
                    format!("slow down; retry in {secs} s"),
                )
                .into_response();
                if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                    resp.headers_mut().insert(header::RETRY_AFTER, v);
                }
                return resp;
            }
        }
        next.run(req).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let l = RateLimiter::new(RateLimitConfig {
            per_second: 10,
            burst: 3,
        });
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let t0 = Instant::now();
        assert!(l.check(ip, t0).is_ok());
        assert!(l.check(ip, t0).is_ok());
        assert!(l.check(ip, t0).is_ok());
        assert!(l.check(ip, t0).is_err());
        // Another client is unaffected.
        assert!(l.check("10.0.0.2".parse().unwrap(), t0).is_ok());
        // 100 ms at 10/s refills one token.
        assert!(l.check(ip, t0 + Duration::from_millis(100)).is_ok());
        assert!(l.check(ip, t0 + Duration::from_millis(100)).is_err());
    }
}
