//! `POST /v1/tx/transactions/simulate`: a dry run of a submission for wallets and exchanges —
//! the problem it would get, or the fee it would pay and the balances it would change in the
//! next block — from [`TxChain::simulate`]. Never admits anything.

use crate::api::{submit_problem, tx_bytes, MAX_BODY_BYTES};
use crate::chain::{SubmitError, TxChain};
use crate::rest::internal;
use crate::views::{addr, FeePaidView, SubmitRequest};
use axum::extract::{DefaultBodyLimit, State};
use axum::routing::post;
use axum::{Json, Router};
use doin_api::tx::OperationEffectView;
use doin_http::{ApiJson, Problem, ProblemDoc};
use doin_types::Amount;
use serde::Serialize;
use std::sync::Arc;
use utoipa::{OpenApi, ToSchema};

#[derive(OpenApi)]
#[openapi(
    paths(simulate_tx),
    components(schemas(SimulateResponse, BalanceChange, FeePaidView, OperationEffectView, SubmitRequest, ProblemDoc)),
    tags((name = "transfer chain"))
)]
pub struct SimulateApiDoc;

/// What submitting a transaction now would do.
#[derive(Debug, Serialize, ToSchema)]
pub struct SimulateResponse {
    /// Transaction id (hex), recomputed from its bytes.
    pub id: String,
    /// `accepted`: a submission now would be admitted; `refused`: it would get `problem`;
    /// `known`: it is already pending or in a block (`status`).
    pub outcome: String,
    /// The transaction's status when `known`.
    pub status: Option<String>,
    /// The problem `POST /v1/tx/transactions` would answer now, as it would answer it.
    #[schema(value_type = Option<ProblemDoc>)]
    pub problem: Option<serde_json::Value>,
    /// The pending transaction (same sender and nonce) it would replace.
    pub replaces: Option<String>,
    /// The next block's base fee per weight unit, at which fee and balances are computed.
    #[schema(value_type = String)]
    pub base_fee: Amount,
    /// The fee it would pay in the next block (after the sender's pending transactions).
    pub fee: Option<FeePaidView>,
    /// Every balance it would change in the next block: sender, recipient, the proposer's tip,
    /// funds going into or out of stakes and channels.
    pub balance_changes: Vec<BalanceChange>,
    /// The operations it would make, in order (the sender's `fee` first), as
    /// `GET /v1/tx/accounts/{address}/operations` will list them once it is in a block.
    pub operations: Vec<OperationEffectView>,
}

/// One account's balance before and after.
#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceChange {
    pub address: String,
    #[schema(value_type = String)]
    pub before: Amount,
    #[schema(value_type = String)]
    pub after: Amount,
}

/// `POST /v1/tx/transactions/simulate`.
pub fn router(chain: Arc<TxChain>) -> Router {
    Router::new()
        .route("/v1/tx/transactions/simulate", post(simulate_tx))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(chain)
}

/// Dry-run a signed transaction: its problem, or its fee and balance changes.
#[utoipa::path(post, path = "/v1/tx/transactions/simulate", tag = "transfer chain", request_body = SubmitRequest,
    responses(
        (status = 200, description = "What submitting it now would do; nothing is admitted", body = SimulateResponse),
        (status = 400, description = "Not hex, or bytes that do not decode as a transaction", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "Body or transaction too large", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn simulate_tx(
    State(chain): State<Arc<TxChain>>,
    body: ApiJson<SubmitRequest>,
) -> Result<Json<SimulateResponse>, Problem> {
    let bytes = tx_bytes(&body.0)?;
    let network = chain.params().network;
    let sim = tokio::task::spawn_blocking(move || chain.simulate(&bytes))
        .await
        .map_err(Problem::internal)?
        .map_err(|e| match e {
            SubmitError::Rejected(e) => submit_problem(&e),
            SubmitError::Store(e) => internal(e),
        })?;
    let outcome = match (&sim.known, &sim.refused) {
        (Some(_), _) => "known",
        (None, Some(_)) => "refused",
        (None, None) => "accepted",
    };
    let operations = sim
        .applied
        .as_ref()
        .map(|(receipt, _)| {
            receipt
                .operations
                .iter()
                .map(|op| crate::account_api::effect_view(network, op))
                .collect()
        })
        .unwrap_or_default();
    let (fee, balance_changes) = match &sim.applied {
        Some((receipt, balances)) => {
            let total = receipt
                .burned
                .checked_add(receipt.tip)
                .map_err(|_| Problem::internal("a fee that overflows 64 bits was applied"))?;
            let fee = FeePaidView {
                burned: receipt.burned,
                tip: receipt.tip,
                total,
            };
            let changes = balances
                .iter()
                .map(|(key, before, after)| BalanceChange {
                    address: addr(network, key),
                    before: *before,
                    after: *after,
                })
                .collect();
            (Some(fee), changes)
        }
        None => (None, Vec::new()),
    };
    Ok(Json(SimulateResponse {
        id: sim.id.to_hex(),
        outcome: outcome.to_string(),
        status: sim.known.map(|s| s.as_str().to_string()),
        problem: sim.refused.as_ref().map(|e| submit_problem(e).to_json()),
        replaces: sim.replaces.map(|id| id.to_hex()),
        base_fee: sim.base_fee,
        fee,
        balance_changes,
        operations,
    }))
}
