//! `/v1/node/peers` and `/v1/node/sync`: what the node's network looks like from here.
//!
//! Reads only: the network and sync state are owned by `doin-net` and the chain services.

use crate::gateway::GatewayState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use doin_http::Problem;
use doin_sync::SyncReport;
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

#[derive(OpenApi)]
#[openapi(
    paths(peers, sync),
    components(schemas(PeersView, PeerEntry, SyncView, SyncReport)),
    tags((name = "node", description = "Liveness, readiness, metrics and status"))
)]
pub struct NodeNetApiDoc;

pub fn router(state: GatewayState) -> Router {
    Router::new()
        .route("/v1/node/peers", get(peers))
        .route("/v1/node/sync", get(sync))
        .with_state(state)
}

#[derive(Serialize, ToSchema)]
struct PeersView {
    /// This node's peer id (give `<listen address>` to other nodes as a bootstrap peer).
    local_peer_id: String,
    /// Listen multiaddresses, each ending in `/p2p/<local_peer_id>`.
    listen_addresses: Vec<String>,
    peers: Vec<PeerEntry>,
}

#[derive(Serialize, ToSchema)]
struct PeerEntry {
    peer_id: String,
    /// 0 is a clean record; penalties lower it, time restores it; at -100 a peer is banned.
    score: i64,
    connected: bool,
    /// This node dialled the peer (outbound) rather than the other way round.
    outbound: bool,
    /// Addresses the peer says it listens on.
    addresses: Vec<String>,
    /// Protocols the peer supports (from identify).
    protocols: Vec<String>,
    agent: Option<String>,
    /// Seconds left on the peer's ban, when banned.
    banned_for_secs: Option<u64>,
}

#[utoipa::path(get, path = "/v1/node/peers", tag = "node",
    responses(
        (status = 200, description = "Peers with scores and protocols", body = PeersView),
        (status = 404, description = "Networking is disabled on this node", content_type = "application/problem+json"),
    ))]
async fn peers(State(s): State<GatewayState>) -> Result<Json<PeersView>, Problem> {
    let net = s.net.as_ref().ok_or_else(|| {
        Problem::not_found(
            "p2p-disabled",
            "this node does not take part in the peer-to-peer network (`[p2p] enabled = false`)",
        )
    })?;
    let view = net.peers().await.map_err(Problem::internal)?;
    Ok(Json(PeersView {
        local_peer_id: view.local_peer_id,
        listen_addresses: view.listen_addresses,
        peers: view
            .peers
            .into_iter()
            .map(|p| PeerEntry {
                peer_id: p.peer_id,
                score: p.score,
                connected: p.connected,
                outbound: p.outbound,
                addresses: p.addresses,
                protocols: p.protocols,
                agent: p.agent,
                banned_for_secs: p.banned_for_secs,
            })
            .collect(),
    }))
}

#[derive(Serialize, ToSchema)]
struct SyncView {
    /// True while any networked chain is more than one block behind its best peer.
    syncing: bool,
    /// The transfer chain against its peers (absent when it is not run or not networked).
    tx: Option<SyncReport>,
    /// The main chain against its peers (absent when it is not run or not networked).
    main: Option<SyncReport>,
}

#[utoipa::path(get, path = "/v1/node/sync", tag = "node",
    responses((status = 200, description = "Sync progress per chain", body = SyncView)))]
async fn sync(State(s): State<GatewayState>) -> Json<SyncView> {
    let tx = s.tx_sync.as_ref().map(|t| t.report());
    let main = s.main_sync.as_ref().map(|m| m.report());
    Json(SyncView {
        syncing: tx.as_ref().is_some_and(|r| r.syncing) || main.as_ref().is_some_and(|r| r.syncing),
        tx,
        main,
    })
}
