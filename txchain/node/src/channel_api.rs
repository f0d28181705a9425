//! REST route of a payment channel's on-chain record (`/v1/tx/channels/{id}`): parties,
//! capacity, dispute window and phase, with the posted state while it is being closed.
//!
//! Reads only; channels are opened, closed, challenged and settled with signed transactions
//! submitted like any other. The rules live in `doin_tx_core::channel`.

use crate::chain::TxChain;
use crate::rest::parse_hash;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use doin_api::tx::*;
use doin_http::{path_problem, Problem, ProblemDoc};
use doin_tx_core::channel::{Channel, ChannelPhase, Side};
use doin_tx_core::StateView;
use doin_types::{Address, Network};
use std::sync::Arc;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    paths(get_channel),
    components(schemas(ChannelView, PostedStateView, HtlcView, ProblemDoc)),
    tags((name = "transfer chain"))
)]
pub struct ChannelApiDoc;

fn side(s: Side) -> &'static str {
    match s {
        Side::A => "a",
        Side::B => "b",
    }
}

fn view(id: String, height: u64, network: Network, c: Channel) -> ChannelView {
    let addr = |k| Address::new(network, k).to_string();
    let (phase, posted, closed_at) = match c.phase {
        ChannelPhase::Open => ("open", None, None),
        ChannelPhase::Closing {
            posted,
            posted_by,
            closes_at,
        } => (
            "closing",
            Some(PostedStateView {
                seq: posted.seq,
                balance_a_msat: posted.balance_a_msat.to_string(),
                balance_b_msat: posted.balance_b_msat.to_string(),
                htlcs: posted
                    .htlcs
                    .iter()
                    .map(|h| HtlcView {
                        offered_by: side(h.offered_by).to_string(),
                        amount_msat: h.amount_msat.to_string(),
                        payment_hash: h.payment_hash.to_hex(),
                        expiry: h.expiry,
                    })
                    .collect(),
                posted_by: side(posted_by).to_string(),
                closes_at,
            }),
            None,
        ),
        ChannelPhase::Closed { at } => ("closed", None, Some(at)),
    };
    ChannelView {
        opening_a_msat: c.opening_a_msat.to_string(),
        opening_b_msat: c.opening_b_msat.to_string(),
        id,
        height,
        party_a: addr(c.party_a),
        party_b: addr(c.party_b),
        capacity: c.capacity,
        dispute_blocks: c.dispute_blocks,
        opened_at: c.opened_at,
        phase: phase.to_string(),
        posted,
        closed_at,
    }
}

/// Routes of the channel view.
pub fn router(chain: Arc<TxChain>) -> Router {
    Router::new()
        .route("/v1/tx/channels/{id}", get(get_channel))
        .with_state(chain)
}

/// A payment channel as the transfer chain holds it.
#[utoipa::path(get, path = "/v1/tx/channels/{id}", tag = "transfer chain", operation_id = "get_tx_channel",
    params(("id" = String, Path, description = "Channel id (hex): H(chain id, opener, opener's nonce)", pattern = r"^(0x)?[0-9a-fA-F]{64}$")),
    responses(
        (status = 200, description = "The channel's on-chain record", body = ChannelView),
        (status = 400, description = "Malformed id", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such channel", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn get_channel(
    State(chain): State<Arc<TxChain>>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<ChannelView>, Problem> {
    let Path(id) = id.map_err(path_problem)?;
    let id = parse_hash(&id, "channel id")?;
    let height = chain.tip().header.height;
    let channel = chain
        .store()
        .channel(&id)
        .map_err(Problem::internal)?
        .ok_or_else(|| Problem::not_found("channel-not-found", format!("no channel {id}")))?;
    Ok(Json(view(
        id.to_hex(),
        height,
        chain.params().network,
        channel,
    )))
}
