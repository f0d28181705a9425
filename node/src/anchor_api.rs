//! Proofs that need both chains, served only by a node that runs both and checked offline by
//! `doin wallet verify-proof`:
//! - `GET /v1/anchors/main/{height}`: a main block is anchored by the transfer chain — the
//!   transfer block that anchors it (signed by a validator) and the main headers that link the
//!   anchored block to the one the transfer header names;
//! - `GET /v1/anchors/checkpoint/{tx_height}`: a transfer block is checkpointed by the main
//!   chain — the transfer headers from it up to the checkpointed block and the main header that
//!   names that block.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use doin_api::node::*;
use doin_client::proofcheck::{
    CheckpointProof, MainAnchorProof, CHECKPOINT_PROOF_FORMAT, MAIN_ANCHOR_PROOF_FORMAT,
    MAX_CHECKPOINT_LEG,
};
use doin_http::{path_problem, Problem, ProblemDoc};
use doin_main_node::MainChain;
use doin_tx_node::TxChain;
use std::sync::Arc;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    paths(main_anchor_proof, checkpoint_proof),
    components(schemas(MainAnchorProofView, CheckpointProofView, ProblemDoc)),
    tags((name = "anchors"))
)]
pub struct AnchorApiDoc;

#[derive(Clone)]
pub(crate) struct Chains {
    tx: Arc<TxChain>,
    main: Arc<MainChain>,
}

/// Routes under `/v1/anchors/main` and `/v1/anchors/checkpoint`.
pub fn router(tx: Arc<TxChain>, main: Arc<MainChain>) -> Router {
    Router::new()
        .route("/v1/anchors/main/{height}", get(main_anchor_proof))
        .route("/v1/anchors/checkpoint/{tx_height}", get(checkpoint_proof))
        .with_state(Chains { tx, main })
}

/// The main block that checkpoints a transfer block, with its proof.
#[utoipa::path(get, path = "/v1/anchors/checkpoint/{tx_height}", tag = "anchors",
    params(("tx_height" = u64, Path, description = "Transfer-chain height")),
    responses(
        (status = 200, description = "The checkpoint leg", body = CheckpointProofView),
        (status = 400, description = "Malformed height", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such transfer block, or no main block checkpoints it yet", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 410, description = "This node pruned that transfer block's header (`pruned`)", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn checkpoint_proof(
    State(c): State<Chains>,
    tx_height: Result<Path<u64>, PathRejection>,
) -> Result<Json<CheckpointProofView>, Problem> {
    let Path(tx_height) = tx_height.map_err(path_problem)?;
    let leg = checkpoint_leg(&c, tx_height)?;
    let main_hash = leg.main_header.hash().map_err(Problem::internal)?;
    Ok(Json(CheckpointProofView {
        format: CHECKPOINT_PROOF_FORMAT.to_string(),
        tx_height,
        main_height: leg.main_header.height,
        main_hash: main_hash.to_hex(),
        proof: hex::encode(leg.encode().map_err(Problem::internal)?),
    }))
}

/// The checkpoint leg of the transfer block at `tx_height`.
pub(crate) fn checkpoint_leg(c: &Chains, tx_height: u64) -> Result<CheckpointProof, Problem> {
    let tip = c.tx.tip().header.height;
    if tx_height == 0 || tx_height > tip {
        return Err(Problem::not_found(
            "block-not-found",
            format!("no transfer block {tx_height} (tip {tip})"),
        ));
    }
    let by = c.tx.anchoring_block(tx_height).ok_or_else(|| {
        Problem::not_found(
            "not-checkpointed",
            format!("no main block checkpoints transfer block {tx_height} yet"),
        )
    })?;
    let main_block = c
        .main
        .block(by.height)
        .map_err(Problem::internal)?
        .ok_or_else(|| Problem::internal(format!("main block {} missing", by.height)))?;
    let top = main_block.header.tx_checkpoint.height;
    let count =
        usize::try_from(top.saturating_sub(tx_height).saturating_add(1)).unwrap_or(usize::MAX);
    if count > MAX_CHECKPOINT_LEG {
        return Err(Problem::not_found(
            "not-checkpointed",
            format!("the checkpoint covering transfer block {tx_height} is {count} blocks away, more than a proof carries ({MAX_CHECKPOINT_LEG})"),
        ));
    }
    let kept_from = c.tx.store().kept().headers_from;
    if tx_height < kept_from {
        return Err(Problem::gone(
            "pruned",
            format!("transfer block {tx_height} is older than the headers this node keeps (from {kept_from}); ask an archive node"),
        )
        .with("kept_from", kept_from));
    }
    let mut tx_headers = Vec::with_capacity(count);
    for h in tx_height..=top {
        let stored =
            c.tx.store()
                .header(h)
                .map_err(Problem::internal)?
                .ok_or_else(|| Problem::internal(format!("transfer header {h} missing")))?;
        tx_headers.push(stored.header);
    }
    Ok(CheckpointProof {
        tx_headers,
        main_header: main_block.header,
    })
}

/// The final transfer block that anchors a main block.
#[utoipa::path(get, path = "/v1/anchors/main/{height}", tag = "anchors",
    params(("height" = u64, Path, description = "Main-chain height")),
    responses(
        (status = 200, description = "The anchoring proof", body = MainAnchorProofView),
        (status = 400, description = "Malformed height", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such main block, or no final transfer block anchors it yet", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn main_anchor_proof(
    State(c): State<Chains>,
    height: Result<Path<u64>, PathRejection>,
) -> Result<Json<MainAnchorProofView>, Problem> {
    let Path(height) = height.map_err(path_problem)?;
    let tip = c.main.head().header.height;
    if height == 0 || height > tip {
        return Err(Problem::not_found(
            "block-not-found",
            format!("no main block {height} to prove (tip {tip}; genesis needs no anchor)"),
        ));
    }
    let (tx_height, tx_hash) = c.main.anchored_by(height).ok_or_else(|| {
        Problem::not_found(
            "not-anchored",
            format!("no final transfer block anchors main block {height} yet"),
        )
    })?;
    let stored =
        c.tx.store()
            .header(tx_height)
            .map_err(Problem::internal)?
            .ok_or_else(|| Problem::internal(format!("transfer header {tx_height} missing")))?;
    let mut main_headers = Vec::new();
    for h in height..=stored.header.main_anchor.height {
        let block = c
            .main
            .block(h)
            .map_err(Problem::internal)?
            .ok_or_else(|| Problem::internal(format!("main block {h} missing")))?;
        main_headers.push(block.header);
    }
    let main_hash = main_headers
        .first()
        .ok_or_else(|| Problem::internal("no main header"))?
        .hash()
        .map_err(Problem::internal)?;
    let tx_finality = c
        .tx
        .finality_proof(tx_height)
        .map_err(Problem::internal)?
        .ok_or_else(|| {
            Problem::not_found(
                "not-anchored",
                format!("the commit certificate of transfer block {tx_height}, which anchors main block {height}, is not known here yet; retry after the next block"),
            )
        })?;
    let proof = MainAnchorProof {
        main_headers,
        tx_header: stored.header,
        tx_finality,
    };
    Ok(Json(MainAnchorProofView {
        format: MAIN_ANCHOR_PROOF_FORMAT.to_string(),
        main_height: height,
        main_hash: main_hash.to_hex(),
        status: if tip > height { "final" } else { "included" }.to_string(),
        tx_height,
        tx_block_hash: tx_hash.to_hex(),
        proof: hex::encode(proof.encode().map_err(Problem::internal)?),
    }))
}
