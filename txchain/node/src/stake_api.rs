//! REST routes of an account's stakes (`/v1/tx/accounts/{address}/stakes`) and of the
//! validator sets stakes make (`/v1/tx/validators`).
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
use doin_tx_core::{StakeRole, StateView, ValidatorSet};
use doin_types::{Address, Amount, Network};
use serde::Serialize;
use std::sync::Arc;
use utoipa::{OpenApi, ToSchema};

#[derive(OpenApi)]
#[openapi(
    paths(account_stakes, validators),
    components(schemas(StakesView, StakeView, ValidatorsView, ValidatorView, ProblemDoc)),
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
    /// Punished for double signing: the stake was burned and can never bond again.
    pub tombstoned: bool,
}

/// The validator sets of the tip's state (DESIGN §4: the largest validator stakes, fixed by
/// the block that closes each epoch).
#[derive(Serialize, ToSchema)]
pub struct ValidatorsView {
    /// Height of the tip these sets belong to.
    pub height: u64,
    /// Blocks per epoch.
    pub epoch_blocks: u64,
    /// Height of the next block that closes an epoch (and fixes the set after it).
    pub next_epoch_close: u64,
    /// The set that signed the tip.
    pub current: Vec<ValidatorView>,
    /// The set that proposes and signs the next block.
    pub next: Vec<ValidatorView>,
    /// Voting power of `next` that finalises the next block (more than two thirds).
    pub next_quorum_power: u64,
}

#[derive(Serialize, ToSchema)]
pub struct ValidatorView {
    pub address: String,
    /// The validator's bonded stake in base units when the set was fixed (1 for each
    /// validator of the first epoch).
    pub voting_power: u64,
}

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
            tombstoned: s.tombstoned,
        });
    }
    Ok(Json(StakesView {
        address: a.to_string(),
        height,
        stakes,
    }))
}

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
