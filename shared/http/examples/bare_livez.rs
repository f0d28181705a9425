//! The baseline of the gateway benchmark (tests/gateway-bench/run): a bare axum handler for
//! `/livez` served by the same server loop as the node's gateway, with no middleware at all.
//!
//!   cargo run --release -p doin-http --example bare_livez -- 127.0.0.1:9000

use axum::routing::get;
use axum::Router;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9000".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    // The same answer as the node's /livez.
    let app = Router::new().route(
        "/livez",
        get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
    );
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    doin_http::serve(listener, app, doin_http::ServeConfig::default(), shutdown).await
}
