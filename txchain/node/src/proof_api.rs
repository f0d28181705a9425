//! REST routes that serve proofs (`/v1/anchors/...`): evidence a client can check offline
//! (`doin wallet verify-proof`) instead of trusting this node's word.
//!
//! Handlers only fetch and format; the proof format and its check live in
//! `doin_tx_core::proof`. Only the transaction → transfer-block leg exists so far; the
//! `checkpoint` field stays empty until main blocks carry transfer-chain checkpoints.

use crate::chain::{TxChain, TxProofLookup};
use crate::rest::parse_hash;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use doin_api::tx::*;
use doin_http::{path_problem, Problem, ProblemDoc};
use doin_tx_core::TX_PROOF_FORMAT;
use std::sync::Arc;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    paths(tx_proof),
    components(schemas(TxProofView, ProblemDoc)),
    tags((name = "anchors", description = "Proofs a client checks offline: a transaction's inclusion in a signed transfer block"))
)]
pub struct ProofApiDoc;

/// Routes under `/v1/anchors`.
pub fn router(chain: Arc<TxChain>) -> Router {
    Router::new()
        .route("/v1/anchors/tx/{id}", get(tx_proof))
        .with_state(chain)
}

/// A transaction's inclusion proof, checkable offline.
#[utoipa::path(get, path = "/v1/anchors/tx/{id}", tag = "anchors",
    params(("id" = String, Path, description = "Transaction id (hex)", pattern = r"^(0x)?[0-9a-fA-F]{64}$")),
    responses(
        (status = 200, description = "The inclusion proof", body = TxProofView),
        (status = 400, description = "Malformed id", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "The transaction is in no block (unknown, or still pending), or its block's certificate is not known here yet", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn tx_proof(
    State(chain): State<Arc<TxChain>>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<TxProofView>, Problem> {
    let Path(id) = id.map_err(path_problem)?;
    let id = parse_hash(&id, "transaction id")?;
    let (proof, status, confirmations) = match chain.tx_proof(&id).map_err(Problem::internal)? {
        TxProofLookup::Proof {
            proof,
            status,
            confirmations,
        } => (proof, status, confirmations),
        TxProofLookup::NotFinal { height } => {
            return Err(Problem::not_found(
                "block-not-final",
                format!("transaction {id} is in block {height}, whose commit certificate this node does not hold yet; retry after the next block"),
            ))
        }
        TxProofLookup::NotInBlock => {
            let pending = chain.lookup_tx(&id).map_err(Problem::internal)?.is_some();
            let detail = if pending {
                format!("transaction {id} is pending; its proof exists once it is in a block")
            } else {
                crate::api::unknown_tx_detail(&chain, &id)
            };
            return Err(Problem::not_found("transaction-not-in-block", detail));
        }
    };
    let block_hash = proof.header.hash().map_err(Problem::internal)?;
    let encoded = proof.encode().map_err(Problem::internal)?;
    Ok(Json(TxProofView {
        format: TX_PROOF_FORMAT.to_string(),
        tx_id: id.to_hex(),
        height: proof.header.height,
        block_hash: block_hash.to_hex(),
        proposer: hex::encode(proof.header.proposer.0),
        status: status.as_str().to_string(),
        confirmations,
        proof: hex::encode(encoded),
        checkpoint: None,
    }))
}
