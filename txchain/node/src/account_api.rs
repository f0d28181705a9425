//! An account over REST: its balance now or after a past block, and its operations (every
//! balance and stake movement with its cause), which an exchange sums to reconcile its books
//! (`docs/api.md`, "Account operations"). Reads only; the operations are the store's
//! (`operations`), the balances the state transition's.

use crate::chain::TxChain;
use crate::operations::{OpOrder, OpPlace};
use crate::rest::{internal, parse_address};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use doin_api::tx::{
    AccountQuery, AccountView, FeePaidView, MainAnchorView, OperationEffectView, OperationKindView,
    OperationView, OperationsPage, OperationsQuery, StakeMoveView,
};
use doin_http::{invalid_cursor, page_limit, path_problem, ApiQuery, Problem, ProblemDoc};
use doin_tx_core::{Account, Operation, OperationCause, OperationKind, SettledOperation};
use doin_types::{Height, Network};
use std::sync::Arc;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    paths(get_account, account_operations),
    components(schemas(
        AccountView, OperationView, OperationKindView, OperationsPage, StakeMoveView,
        FeePaidView, MainAnchorView, ProblemDoc
    )),
    tags((name = "transfer chain"))
)]
pub struct AccountApiDoc;

/// `GET /v1/tx/accounts/{address}` and `GET /v1/tx/accounts/{address}/operations`.
pub fn router(chain: Arc<TxChain>) -> Router {
    Router::new()
        .route("/v1/tx/accounts/{address}", get(get_account))
        .route(
            "/v1/tx/accounts/{address}/operations",
            get(account_operations),
        )
        .with_state(chain)
}

/// `410 pruned` for a height below what the operations cover.
fn pruned(height: Height, kept_from: Height) -> Problem {
    Problem::gone(
        "pruned",
        format!(
            "the account after block {height} is older than the history this node keeps (operations from block {kept_from}); ask an archive node"
        ),
    )
    .with("kept_from", kept_from)
}

/// The account after block `height` (at most the tip), from the operations; `current` is the
/// account read after the tip was.
fn account_after(
    chain: &TxChain,
    key: &doin_types::PublicKeyBytes,
    height: Height,
    current: Account,
) -> Result<Account, Problem> {
    let from = chain.store().operations_from().map_err(internal)?;
    // The state after block `from - 1` is where the kept operations start.
    if height.saturating_add(1) < from {
        return Err(pruned(height, from));
    }
    chain
        .store()
        .account_at(key, height, current)
        .map_err(internal)
}

/// An account's balance and nonces, now or after a past block, with its final balance.
#[utoipa::path(get, path = "/v1/tx/accounts/{address}", tag = "transfer chain",
    params(("address" = String, Path, description = "bech32m address of this network", format = "doin-address"), AccountQuery),
    responses(
        (status = 200, description = "Balance and nonces", body = AccountView),
        (status = 400, description = "Invalid address, address of another network, or invalid query", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "`block-not-found`: the height is above the tip (retriable)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 410, description = "`pruned`: the height is below the history this node keeps (`kept_from`)", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn get_account(
    State(chain): State<Arc<TxChain>>,
    address: Result<Path<String>, PathRejection>,
    ApiQuery(q): ApiQuery<AccountQuery>,
) -> Result<Json<AccountView>, Problem> {
    let Path(address) = address.map_err(path_problem)?;
    let a = parse_address(&chain, &address)?;
    let view = tokio::task::spawn_blocking(move || -> Result<AccountView, Problem> {
        // The tip first, then the account: the account is then at or after the tip, and the
        // operations give it as it was after any earlier block.
        let tip = chain.tip();
        let tip_height = tip.header.height;
        let current = chain.account(&a.key).map_err(internal)?;
        let (height, at) = match q.height {
            None => (tip_height, current),
            Some(h) if h > tip_height => {
                return Err(Problem::not_found(
                    "block-not-found",
                    format!("no block at height {h} yet (the tip is {tip_height})"),
                ))
            }
            Some(h) => (h, account_after(&chain, &a.key, h, current)?),
        };
        let final_height = tip.final_height.min(height);
        let final_account = if final_height == height {
            at
        } else {
            account_after(&chain, &a.key, final_height, current)?
        };
        let (next_nonce, pending) = chain.next_nonce(&a.key).map_err(internal)?;
        Ok(AccountView {
            address: a.to_string(),
            balance: at.balance,
            nonce: at.nonce,
            next_nonce,
            pending,
            height,
            final_balance: final_account.balance,
            final_height,
        })
    })
    .await
    .map_err(Problem::internal)??;
    Ok(Json(view))
}

/// Every change of an account's balance and stakes, with its cause and the balance after it.
#[utoipa::path(get, path = "/v1/tx/accounts/{address}/operations", tag = "transfer chain",
    params(("address" = String, Path, description = "bech32m address of this network", format = "doin-address"), OperationsQuery),
    responses(
        (status = 200, description = "The account's operations in the order asked for", body = OperationsPage),
        (status = 400, description = "Invalid address, cursor, limit or order", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn account_operations(
    State(chain): State<Arc<TxChain>>,
    address: Result<Path<String>, PathRejection>,
    ApiQuery(q): ApiQuery<OperationsQuery>,
) -> Result<Json<OperationsPage>, Problem> {
    let Path(address) = address.map_err(path_problem)?;
    let a = parse_address(&chain, &address)?;
    let limit = page_limit(q.limit)?;
    let cursor = q
        .cursor
        .as_deref()
        .map(|c| OpPlace::parse(c).ok_or_else(|| invalid_cursor(c)))
        .transpose()?;
    let order = match q.order.as_deref() {
        None | Some("newest") => OpOrder::NewestFirst,
        Some("oldest") => OpOrder::OldestFirst,
        Some(other) => {
            return Err(Problem::bad_request(
                "invalid-query",
                format!("order {other:?} is neither `newest` nor `oldest`"),
            ))
        }
    };
    let page = tokio::task::spawn_blocking(move || -> Result<OperationsPage, Problem> {
        let store = chain.store();
        let kept_from = store.operations_from().map_err(internal)?;
        let mut found = store
            .account_operations(&a.key, cursor, order, limit + 1)
            .map_err(internal)?;
        let more = found.len() > limit;
        found.truncate(limit);
        let network = chain.params().network;
        let items: Vec<OperationView> = found
            .iter()
            .map(|(place, op)| operation_view(network, *place, op))
            .collect();
        let next_cursor = match (more, found.last()) {
            (true, Some((place, _))) => Some(place.cursor()),
            _ => None,
        };
        Ok(OperationsPage {
            items,
            next_cursor,
            kept_from,
        })
    })
    .await
    .map_err(Problem::internal)??;
    Ok(Json(page))
}

pub(crate) fn kind_view(kind: OperationKind) -> OperationKindView {
    match kind {
        OperationKind::Genesis => OperationKindView::Genesis,
        OperationKind::Fee => OperationKindView::Fee,
        OperationKind::Tip => OperationKindView::Tip,
        OperationKind::TransferOut => OperationKindView::TransferOut,
        OperationKind::TransferIn => OperationKindView::TransferIn,
        OperationKind::Stake => OperationKindView::Stake,
        OperationKind::Unstake => OperationKindView::Unstake,
        OperationKind::Withdraw => OperationKindView::Withdraw,
        OperationKind::Slash => OperationKindView::Slash,
        OperationKind::ChannelOpen => OperationKindView::ChannelOpen,
        OperationKind::ChannelPayout => OperationKindView::ChannelPayout,
        OperationKind::Coinbase => OperationKindView::Coinbase,
        OperationKind::BatchOut => OperationKindView::BatchOut,
        OperationKind::BatchIn => OperationKindView::BatchIn,
    }
}

/// What an operation moves, as a dry run shows it.
pub(crate) fn effect_view(network: Network, op: &Operation) -> OperationEffectView {
    let parts = parts(op);
    OperationEffectView {
        address: crate::views::addr(network, &op.account),
        kind: kind_view(op.kind),
        credit: op.credit,
        debit: op.debit,
        fee: parts.fee,
        stake: parts.stake,
        channel: parts.channel,
    }
}

/// The kind-specific parts of an operation's view.
struct Parts {
    fee: Option<FeePaidView>,
    stake: Option<StakeMoveView>,
    channel: Option<String>,
}

fn parts(op: &Operation) -> Parts {
    Parts {
        fee: (op.kind == OperationKind::Fee).then_some(FeePaidView {
            burned: op.burned,
            tip: op.tip,
            total: op.debit,
        }),
        stake: op.role.map(|role| StakeMoveView {
            role: role.as_str().to_string(),
            amount: op.stake_change,
        }),
        channel: op.channel.map(|c| c.to_hex()),
    }
}

/// An operation as REST shows it.
pub(crate) fn operation_view(
    network: Network,
    place: OpPlace,
    s: &SettledOperation,
) -> OperationView {
    let op = &s.op;
    let parts = parts(op);
    let (transaction, main_block) = match op.cause {
        OperationCause::Genesis => (None, None),
        OperationCause::Tx(id) => (Some(id.to_hex()), None),
        OperationCause::MainBlock { height, hash } => (
            None,
            Some(MainAnchorView {
                height,
                hash: hash.to_hex(),
            }),
        ),
    };
    OperationView {
        cursor: place.cursor(),
        height: place.height,
        address: crate::views::addr(network, &op.account),
        kind: kind_view(op.kind),
        credit: op.credit,
        debit: op.debit,
        balance_after: s.balance_after,
        nonce_after: s.nonce_after,
        transaction,
        main_block,
        fee: parts.fee,
        stake: parts.stake,
        channel: parts.channel,
    }
}
