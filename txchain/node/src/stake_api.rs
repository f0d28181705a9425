//! REST route of an account's stakes (`/v1/tx/accounts/{address}/stakes`).
//!
//! Reads only; staking itself is done with signed `Stake` / `Unstake` / `Withdraw`
//! transactions submitted like any other. The rules live in `doin_tx_core::stake`.

use crate::api::parse_address;
use crate::chain::TxChain;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use doin_http::{path_problem, Problem, ProblemDoc};
use doin_tx_core::{StakeRole, StateView};
use doin_types::Amount;
use serde::Serialize;
use std::sync::Arc;
use utoipa::{OpenApi, ToSchema};

#[derive(OpenApi)]
#[openapi(
    paths(account_stakes),
    components(schemas(StakesView, StakeView, ProblemDoc)),
    tags((name = "transfer chain"))
)]
pub struct StakeApiDoc;

/// An account's stakes at the tip, one per role it ever staked in.
#[derive(Serialize, ToSchema)]
pub struct StakesView {
    pub address: String,
    /// Height of the state this answer reflects.
    pub height: u64,
    pub stakes: Vec<StakeView>,
}

#[derive(Serialize, ToSchema)]
pub struct StakeView {
    /// `validator`, `evaluator` or `optimizer`.
    pub role: &'static str,
    #[schema(value_type = String)]
    pub bonded: Amount,
    #[schema(value_type = String)]
    pub unbonding: Amount,
    /// First height at which a `Withdraw` of `unbonding` is valid (0 when nothing unbonds).
    pub unbonding_until: u64,
    /// True when a `Withdraw` in the next block would succeed.
    pub withdrawable: bool,
    /// Evaluators: the domains staked for.
    pub domains: Vec<String>,
}

/// Routes of the stakes view.
pub fn router(chain: Arc<TxChain>) -> Router {
    Router::new()
        .route("/v1/tx/accounts/{address}/stakes", get(account_stakes))
        .with_state(chain)
}

#[utoipa::path(get, path = "/v1/tx/accounts/{address}/stakes", tag = "transfer chain",
    params(("address" = String, Path, description = "bech32m address of this network")),
    responses(
        (status = 200, description = "The account's stakes (empty when it never staked)", body = StakesView),
        (status = 400, description = "Invalid address or address of another network", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn account_stakes(
    State(chain): State<Arc<TxChain>>,
    address: Result<Path<String>, PathRejection>,
) -> Result<Json<StakesView>, Problem> {
    let Path(address) = address.map_err(path_problem)?;
    let a = parse_address(&chain, &address)?;
    let height = chain.tip().header.height;
    let mut stakes = Vec::new();
    for role in StakeRole::ALL {
        let Some(s) = chain
            .store()
            .stake(&a.key, role)
            .map_err(Problem::internal)?
        else {
            continue;
        };
        stakes.push(StakeView {
            role: role.as_str(),
            withdrawable: !s.unbonding.is_zero() && height.saturating_add(1) >= s.unbonding_until,
            bonded: s.bonded,
            unbonding: s.unbonding,
            unbonding_until: s.unbonding_until,
            domains: s.domains,
        });
    }
    Ok(Json(StakesView {
        address: a.to_string(),
        height,
        stakes,
    }))
}
