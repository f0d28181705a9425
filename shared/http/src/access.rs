//! Who is asking, and a trace of every answer: the client's address (learned from a forwarding
//! header only when the connection comes from a configured proxy), a request id on every
//! answer, and one access-log line per request.
//!
//! It must not trust `X-Forwarded-For` from anyone but a trusted proxy: any client can write
//! that header, and the address it names decides the client's rate limit.

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The header that carries the request id, both ways.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// Longest request id taken from a client.
const MAX_REQUEST_ID: usize = 64;
/// Addresses read from forwarding headers at most (a longer chain is cut from the left).
const MAX_HOPS: usize = 32;

/// An address or a CIDR range (`10.0.0.0/8`, `2001:db8::/32`, or one address).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpRange {
    base: IpAddr,
    prefix: u8,
}

impl FromStr for IpRange {
    type Err = String;

    fn from_str(s: &str) -> Result<IpRange, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let base: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or a CIDR range"))?;
        let max = if base.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0–{max}"))?,
        };
        Ok(IpRange { base, prefix })
    }
}

impl IpRange {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.base, canonical(ip)) {
            (IpAddr::V4(base), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(base) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(base), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(base) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// An IPv4 client reached over IPv6 (`::ffff:a.b.c.d`) is the IPv4 client.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The key a client's rate limit is kept under: its IPv4 address, or its IPv6 /64 (one
/// subscriber's network usually; a client holding a /64 could otherwise take a fresh
/// address, and a fresh limit, for every request).
pub fn rate_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let masked = u128::from(v6) & (u128::MAX << 64);
            IpAddr::V6(Ipv6Addr::from(masked))
        }
        v4 => v4,
    }
}

/// The client's address: the connection's peer, unless the peer is a trusted proxy; then the
/// `X-Forwarded-For` chain is read from the right (each proxy appends the address it was
/// reached from), past the trusted proxies, to the first address that is not one. An entry
/// that does not parse ends the walk at the hop to its right.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpRange]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|r| r.contains(ip));
    if !is_trusted(peer) {
        return canonical(peer);
    }
    let hops: Vec<&str> = headers
        .get_all(FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev().take(MAX_HOPS) {
        let Ok(ip) = hop.parse::<IpAddr>() else {
            break;
        };
        client = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    canonical(client)
}

/// The client's address as [`layer`] judged it, for the middleware and handlers after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// What [`layer`] is told.
#[derive(Clone, Debug, Default)]
pub struct AccessConfig {
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Arc<Vec<IpRange>>,
    /// One log line (target `doin_access`) per request.
    pub log: bool,
}

/// A client's own request id is kept when it is 1–64 characters of `A–Z a–z 0–9 . _ -`.
fn acceptable_request_id(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_REQUEST_ID
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

/// A new request id: this process's start (hex nanoseconds) and a counter, unique across
/// restarts without a random source.
fn new_request_id() -> String {
    static EPOCH: OnceLock<u64> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let epoch = *EPOCH.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    format!("{epoch:x}-{:x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The middleware (`from_fn_with_state(config, access::layer)`), outermost: it sets
/// [`ClientIp`], answers with `x-request-id` (the client's, if acceptable, else a new one) and
/// logs the request. The query string is never logged (it may carry a signature).
pub async fn layer(State(cfg): State<AccessConfig>, mut req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let client = peer.map(|p| client_ip(p, req.headers(), &cfg.trusted_proxies));
    if let Some(ip) = client {
        req.extensions_mut().insert(ClientIp(ip));
    }
    let id = match req.headers().get(REQUEST_ID) {
        Some(v) if acceptable_request_id(v) => v.clone(),
        _ => {
            let fresh = HeaderValue::from_str(&new_request_id());
            match fresh {
                Ok(v) => {
                    req.headers_mut().insert(REQUEST_ID, v.clone());
                    v
                }
                Err(_) => HeaderValue::from_static("-"),
            }
        }
    };
    let logged = cfg
        .log
        .then(|| (req.method().clone(), req.uri().path().to_owned()));
    let started = Instant::now();
    let mut resp = next.run(req).await;
    if cfg.log {
        if let Some((method, path)) = logged {
            tracing::info!(
                target: "doin_access",
                request_id = id.to_str().unwrap_or("-"),
                client = client.map(|c| c.to_string()).unwrap_or_default(),
                %method,
                path,
                status = resp.status().as_u16(),
                micros = started.elapsed().as_micros() as u64,
                "request"
            );
        }
    }
    resp.headers_mut().insert(REQUEST_ID, id);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(v: &[&str]) -> Vec<IpRange> {
        v.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(FORWARDED_FOR, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn ranges_parse_and_contain() {
        let r: IpRange = "10.1.0.0/16".parse().unwrap();
        assert!(r.contains(ip("10.1.200.3")));
        assert!(!r.contains(ip("10.2.0.1")));
        assert!(r.contains(ip("::ffff:10.1.0.9")), "IPv4 over IPv6");
        let one: IpRange = "192.0.2.7".parse().unwrap();
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        let v6: IpRange = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")) && !v6.contains(ip("2001:db9::1")));
        assert!("0.0.0.0/0"
            .parse::<IpRange>()
            .unwrap()
            .contains(ip("8.8.8.8")));
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "nope",
            "10.0.0.0/x",
            "",
            "10.0.0/8",
        ] {
            assert!(bad.parse::<IpRange>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_forwarding_header_counts_only_from_a_trusted_proxy() {
        let trusted = ranges(&["10.0.0.0/8", "127.0.0.1"]);
        let h = forwarded(&["198.51.100.7"]);
        // From a client directly: its header is ignored.
        assert_eq!(
            client_ip(ip("203.0.113.9"), &h, &trusted),
            ip("203.0.113.9")
        );
        // From the proxy: the address it was reached from.
        assert_eq!(client_ip(ip("127.0.0.1"), &h, &trusted), ip("198.51.100.7"));
        // Through two proxies, a forged entry on the left is not believed: the walk stops at
        // the first address no trusted proxy vouches for.
        let h = forwarded(&["6.6.6.6, 198.51.100.7", "10.2.3.4"]);
        assert_eq!(client_ip(ip("127.0.0.1"), &h, &trusted), ip("198.51.100.7"));
        // Garbage ends the walk at the last good hop.
        let h = forwarded(&["junk, 10.2.3.4"]);
        assert_eq!(client_ip(ip("127.0.0.1"), &h, &trusted), ip("10.2.3.4"));
        // No header: the proxy itself.
        assert_eq!(
            client_ip(ip("127.0.0.1"), &HeaderMap::new(), &trusted),
            ip("127.0.0.1")
        );
        // Nobody trusted (the default): always the peer.
        assert_eq!(client_ip(ip("127.0.0.1"), &h, &[]), ip("127.0.0.1"));
    }

    #[test]
    fn ipv6_clients_share_a_limit_per_64_and_mapped_ipv4_is_ipv4() {
        assert_eq!(
            rate_key(ip("2001:db8:1:2:aaaa::1")),
            rate_key(ip("2001:db8:1:2:bbbb::9"))
        );
        assert_ne!(
            rate_key(ip("2001:db8:1:2::1")),
            rate_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(rate_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(rate_key(ip("192.0.2.1")), ip("192.0.2.1"));
    }

    #[test]
    fn request_ids_are_kept_when_sane_and_made_unique_otherwise() {
        assert!(acceptable_request_id(&HeaderValue::from_static(
            "abc-123_x.y"
        )));
        assert!(!acceptable_request_id(&HeaderValue::from_static("")));
        assert!(!acceptable_request_id(&HeaderValue::from_static("a b")));
        assert!(!acceptable_request_id(
            &HeaderValue::from_str(&"a".repeat(65)).unwrap()
        ));
        assert_ne!(new_request_id(), new_request_id());
    }
}
