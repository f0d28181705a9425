//! `/v1/node/peers` and `/v1/node/sync`: what the node's network looks like from here.
//!
//! Reads only: the network and sync state are owned by `doin-net` and the chain services.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use doin_api::node::*;
use doin_http::Problem;
use doin_sync::SyncReport;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    paths(peers, sync),
    components(schemas(PeersView, PeerEntry, ReachabilityView, NatStatus, ConnectionView, SyncView, SyncReport, SyncPhase, WarpView)),
    tags((name = "node", description = "Liveness, readiness, metrics and status"))
)]
pub struct NodeNetApiDoc;

/// What the node's network routes read: the network, and each chain's sync progress.
#[derive(Clone)]
pub struct NetState {
    pub net: Option<doin_net::NetHandle>,
    pub tx_sync: Option<doin_sync::SyncState>,
    pub main_sync: Option<doin_sync::SyncState>,
    pub warp: Option<doin_tx_node::warp::WarpProgress>,
}

pub fn router(state: NetState) -> Router {
    sync_router(state.clone()).merge(peers_router(state))
}

/// Each chain's sync progress (public).
pub fn sync_router(state: NetState) -> Router {
    Router::new()
        .route("/v1/node/sync", get(sync))
        .with_state(state)
}

/// Who this node is connected to (on the admin listener when the node has one: peers'
/// addresses help an attacker map the network).
pub fn peers_router(state: NetState) -> Router {
    Router::new()
        .route("/v1/node/peers", get(peers))
        .with_state(state)
}

/// This node's peers, reachability and connections.
#[utoipa::path(get, path = "/v1/node/peers", tag = "node",
    responses(
        (status = 200, description = "Peers with scores and protocols", body = PeersView),
        (status = 404, description = "Networking is disabled on this node", content_type = "application/problem+json"),
    ))]
async fn peers(State(s): State<NetState>) -> Result<Json<PeersView>, Problem> {
    let net = s.net.as_ref().ok_or_else(|| {
        Problem::not_found(
            "p2p-disabled",
            "this node does not take part in the peer-to-peer network (`[p2p] enabled = false`)",
        )
    })?;
    Ok(Json(net.peers().await.map_err(Problem::internal)?))
}

/// Sync progress: phase, warp download and blocks.
#[utoipa::path(get, path = "/v1/node/sync", tag = "node",
    responses((status = 200, description = "Sync progress per chain", body = SyncView)))]
async fn sync(State(s): State<NetState>) -> Json<SyncView> {
    let tx = s.tx_sync.as_ref().map(|t| t.report());
    let main = s.main_sync.as_ref().map(|m| m.report());
    let syncing =
        tx.as_ref().is_some_and(|r| r.syncing) || main.as_ref().is_some_and(|r| r.syncing);
    Json(SyncView {
        syncing,
        phase: if syncing {
            SyncPhase::Blocks
        } else {
            SyncPhase::Following
        },
        // Once the node is open, a warp sync of this run is finished.
        warp: s.warp.as_ref().map(|w| w.get().1),
        tx,
        main,
    })
}
