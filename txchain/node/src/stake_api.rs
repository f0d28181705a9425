//! REST routes of an account's stakes (`/v1/tx/accounts/{address}/stakes`) and of the
//! validator sets stakes make (`/v1/tx/validators`).
//!
//! Reads only; staking itself is done with signed `Stake` / `Unstake` / `Withdraw`
//! transactions submitted like any other. The rules live in `doin_tx_core::stake`.

use crate::chain::TxChain;
use crate::rest::parse_address;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use doin_api::tx::*;
use doin_http::{path_problem, Problem, ProblemDoc};
use doin_tx_core::{StakeRole, StateView, ValidatorSet};
use doin_types::{Address, Network};
use std::sync::Arc;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    paths(account_stakes, validators),
    components(schemas(StakesView, StakeView, ValidatorsView, ValidatorView, ProblemDoc)),
    tags((name = "transfer chain"))
)]
pub struct StakeApiDoc;

fn members(network: Network, set: &ValidatorSet) -> Vec<ValidatorView> {
    set.validators()
        .iter()
        .map(|(key, power)| ValidatorView {
            address: Address::new(network, *key).to_string(),
            voting_power: *power,
        })
        .collect()
}

/// Routes of the stakes view.
pub fn router(chain: Arc<TxChain>) -> Router {
    Router::new()
        .route("/v1/tx/accounts/{address}/stakes", get(account_stakes))
        .route("/v1/tx/validators", get(validators))
        .with_state(chain)
}

/// An account's stakes and unbonding amounts.
#[utoipa::path(get, path = "/v1/tx/accounts/{address}/stakes", tag = "transfer chain",
    params(("address" = String, Path, description = "bech32m address of this network", format = "doin-address")),
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
            role: role.as_str().to_string(),
            withdrawable: !s.unbonding.is_zero() && height.saturating_add(1) >= s.unbonding_until,
            bonded: s.bonded,
            unbonding: s.unbonding,
            unbonding_until: s.unbonding_until,
            domains: s.domains,
            tombstoned: s.tombstoned,
        });
    }
    Ok(Json(StakesView {
        address: a.to_string(),
        height,
        stakes,
    }))
}

/// The validator sets of the tip's state: current and next.
#[utoipa::path(get, path = "/v1/tx/validators", tag = "transfer chain",
    responses(
        (status = 200, description = "The validator sets of the tip's state", body = ValidatorsView),
    ))]
async fn validators(State(chain): State<Arc<TxChain>>) -> Json<ValidatorsView> {
    let tip = chain.tip();
    let params = chain.params();
    let network = params.network;
    let epoch = params.consensus.epoch_blocks.max(1);
    let height = tip.header.height;
    Json(ValidatorsView {
        height,
        epoch_blocks: epoch,
        next_epoch_close: (height / epoch).saturating_add(1).saturating_mul(epoch),
        current: members(network, &tip.validators.current),
        next: members(network, &tip.validators.next),
        next_quorum_power: tip.validators.next.quorum_power(),
    })
}
