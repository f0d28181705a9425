//! Who may read the gateway and how each answer is traced: CORS only for allow-listed origins,
//! a request id on every answer, and a rate limit keyed by the client a trusted proxy names
//! (never by a header anyone can write) and by /64 for IPv6.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use doin_http::access::{AccessConfig, IpRange};
use doin_node::gateway::GatewayLimits;
use std::net::SocketAddr;
use std::sync::Arc;
use tower::ServiceExt;

fn limits(per_second: u32, trusted: &[&str], origins: &[&str]) -> GatewayLimits {
    GatewayLimits {
        rate: doin_http::RateLimitConfig {
            per_second,
            burst: 1,
        },
        request_timeout: std::time::Duration::from_secs(30),
        access: AccessConfig {
            trusted_proxies: Arc::new(
                trusted
                    .iter()
                    .map(|s| s.parse::<IpRange>().unwrap())
                    .collect(),
            ),
            log: true,
        },
        cors_allowed_origins: origins.iter().map(|s| s.to_string()).collect(),
    }
}

fn router(limits: GatewayLimits) -> axum::Router {
    doin_tests::gateway_limited(None, None, limits).unwrap()
}

/// Sends `method path` from `peer` with `headers`: the status and the answer's headers.
async fn send(
    router: &axum::Router,
    method: Method,
    peer: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap) {
    let mut req = Request::builder().method(method).uri("/livez");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut req = req.body(Body::empty()).unwrap();
    req.extensions_mut()
        .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
    let resp = router.clone().oneshot(req).await.unwrap();
    (resp.status(), resp.headers().clone())
}

const ALLOW_ORIGIN: header::HeaderName = header::ACCESS_CONTROL_ALLOW_ORIGIN;

#[tokio::test]
async fn no_web_origin_may_read_the_api_unless_allow_listed() {
    let evil = [("origin", "https://evil.example")];
    let preflight = [
        ("origin", "https://evil.example"),
        ("access-control-request-method", "POST"),
    ];
    // By default: no CORS headers at all, so a browser hides the answer from the page, and a
    // preflight is not granted.
    let closed = router(limits(0, &[], &[]));
    let (status, h) = send(&closed, Method::GET, "127.0.0.1:5000", &evil).await;
    assert_eq!(status, StatusCode::OK);
    assert!(h.get(ALLOW_ORIGIN).is_none(), "{h:?}");
    let (_, h) = send(&closed, Method::OPTIONS, "127.0.0.1:5000", &preflight).await;
    assert!(h.get(ALLOW_ORIGIN).is_none(), "{h:?}");

    // Allow-listed: that origin only.
    let open = router(limits(0, &[], &["https://wallet.example"]));
    let wallet = [("origin", "https://wallet.example")];
    let (_, h) = send(&open, Method::GET, "127.0.0.1:5000", &wallet).await;
    assert_eq!(h.get(ALLOW_ORIGIN).unwrap(), "https://wallet.example");
    let (_, h) = send(&open, Method::GET, "127.0.0.1:5000", &evil).await;
    assert!(h.get(ALLOW_ORIGIN).is_none(), "{h:?}");
    let (status, h) = send(
        &open,
        Method::OPTIONS,
        "127.0.0.1:5000",
        &[
            ("origin", "https://wallet.example"),
            ("access-control-request-method", "POST"),
        ],
    )
    .await;
    assert!(status.is_success(), "{status}");
    assert_eq!(h.get(ALLOW_ORIGIN).unwrap(), "https://wallet.example");

    // Any origin, when the operator says so.
    let any = router(limits(0, &[], &["*"]));
    let (_, h) = send(&any, Method::GET, "127.0.0.1:5000", &evil).await;
    assert_eq!(h.get(ALLOW_ORIGIN).unwrap(), "*");

    // What is not an origin stops the node at start.
    for bad in [
        &["https://a.example/path"][..],
        &["*", "https://a.example"],
        &["a.example"],
    ] {
        assert!(
            doin_tests::gateway_limited(None, None, limits(0, &[], bad)).is_err(),
            "{bad:?}"
        );
    }
}

#[tokio::test]
async fn every_answer_carries_a_request_id_and_a_sane_one_of_the_client_is_kept() {
    let r = router(limits(1, &[], &[]));
    let (_, first) = send(&r, Method::GET, "192.0.2.1:1", &[]).await;
    let (_, second) = send(&r, Method::GET, "192.0.2.2:1", &[]).await;
    let (a, b) = (
        first.get("x-request-id").unwrap(),
        second.get("x-request-id").unwrap(),
    );
    assert_ne!(a, b);
    let (_, h) = send(
        &r,
        Method::GET,
        "192.0.2.3:1",
        &[("x-request-id", "trace-42")],
    )
    .await;
    assert_eq!(h.get("x-request-id").unwrap(), "trace-42");
    let (_, h) = send(
        &r,
        Method::GET,
        "192.0.2.4:1",
        &[("x-request-id", "no spaces")],
    )
    .await;
    assert_ne!(h.get("x-request-id").unwrap(), "no spaces");
    // A refusal too.
    let (status, h) = send(&r, Method::GET, "192.0.2.4:1", &[]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(h.get("x-request-id").is_some());
}

#[tokio::test]
async fn the_rate_limit_follows_the_client_a_trusted_proxy_names_and_ipv6_per_64() {
    let r = router(limits(1, &["127.0.0.1"], &[]));
    let via_proxy = |client: &'static str| [("x-forwarded-for", client)];
    // Behind the proxy, two clients have a limit each.
    let (s1, _) = send(&r, Method::GET, "127.0.0.1:9", &via_proxy("198.51.100.1")).await;
    let (s2, _) = send(&r, Method::GET, "127.0.0.1:9", &via_proxy("198.51.100.2")).await;
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK));
    let (s3, _) = send(&r, Method::GET, "127.0.0.1:9", &via_proxy("198.51.100.1")).await;
    assert_eq!(s3, StatusCode::TOO_MANY_REQUESTS);

    // A client that is not a proxy cannot pick a fresh address with the header.
    let (s1, _) = send(&r, Method::GET, "203.0.113.5:9", &via_proxy("1.1.1.1")).await;
    let (s2, _) = send(&r, Method::GET, "203.0.113.5:9", &via_proxy("2.2.2.2")).await;
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::TOO_MANY_REQUESTS));

    // Nor by moving inside its IPv6 /64.
    let (s1, _) = send(&r, Method::GET, "[2001:db8:1:2::1]:9", &[]).await;
    let (s2, _) = send(&r, Method::GET, "[2001:db8:1:2::ffff]:9", &[]).await;
    let (s3, _) = send(&r, Method::GET, "[2001:db8:1:3::1]:9", &[]).await;
    assert_eq!(
        (s1, s2, s3),
        (
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::OK
        )
    );
}

/// GET `path` through `router`: the status and the problem's `detail`, if any.
async fn status_of(router: &axum::Router, path: &str) -> (StatusCode, String) {
    let mut req = Request::builder().uri(path).body(Body::empty()).unwrap();
    req.extensions_mut()
        .insert(ConnectInfo("127.0.0.1:1".parse::<SocketAddr>().unwrap()));
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let detail = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["detail"].as_str().map(String::from))
        .unwrap_or_default();
    (status, detail)
}

#[tokio::test]
async fn with_an_admin_listener_metrics_and_peers_leave_the_public_one() {
    let (public, admin) =
        doin_tests::gateway_routers(None, None, limits(0, &[], &[]), true).unwrap();
    let admin = admin.unwrap();
    for path in ["/metrics", "/v1/node/peers"] {
        let (status, detail) = status_of(&public, path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(detail.contains("rest.admin_listen"), "{path}: {detail}");
    }
    assert_eq!(status_of(&admin, "/metrics").await.0, StatusCode::OK);
    // No network in this node: the admin route answers, and says so.
    let (status, detail) = status_of(&admin, "/v1/node/peers").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!detail.contains("rest.admin_listen"), "{detail}");
    // Probes answer on both; the rest of the API on the public one only.
    for r in [&public, &admin] {
        assert_eq!(status_of(r, "/livez").await.0, StatusCode::OK);
    }
    assert_eq!(
        status_of(&public, "/v1/node/status").await.0,
        StatusCode::OK
    );
    assert_eq!(
        status_of(&admin, "/v1/node/status").await.0,
        StatusCode::NOT_FOUND
    );
    // Without an admin listener, one router serves it all.
    let (all, none) = doin_tests::gateway_routers(None, None, limits(0, &[], &[]), false).unwrap();
    assert!(none.is_none());
    assert_eq!(status_of(&all, "/metrics").await.0, StatusCode::OK);
}
