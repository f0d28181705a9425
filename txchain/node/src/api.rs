//! REST routes of the transfer chain (`/v1/tx/...`); the event stream (`/v1/events`) is in
//! `events_api.rs`.
//!
//! Handlers translate between HTTP and `TxChain`; they hold no chain logic. Every client
//! mistake is a problem+json 4xx with a stable type (listed in `docs/api.md`); storage failures
//! are 500s whose details go to the log, not to the client.

use crate::chain::{SubmitError, TxChain, TxLookup, TxStatus};
use crate::dropped::{DropReason, Dropped};
use crate::mempool::MempoolError;
use crate::rest::{internal, parse_address, parse_hash};
use crate::store::TxLocation;
use crate::views::{self, BlockView, TxView};
use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use doin_api::tx::*;
use doin_http::{
    invalid_cursor, numeric_cursor, page_limit, path_problem, ApiJson, ApiQuery, Problem,
    ProblemDoc,
};
use doin_store::StoreError;
use doin_tx_core::fees::effective_tip_per_weight;
use doin_tx_core::{Tx, TxError};
use doin_types::{Amount, Hash256, Height};
use parking_lot::Mutex;
use std::sync::Arc;
use utoipa::OpenApi;

/// Largest request body the transaction routes accept (hex doubles the transaction size).
pub(crate) const MAX_BODY_BYTES: usize = 256 * 1024;
/// Blocks looked at for tip suggestions.
const FEE_HISTORY_BLOCKS: u64 = 20;

#[derive(OpenApi)]
#[openapi(
    paths(
        chain_info, submit_tx, get_tx, list_mempool, account_txs, list_blocks, get_block,
        block_txs, fee_estimate, crate::events_api::events
    ),
    components(schemas(
        ChainInfo, HistoryView, SubmitRequest, SubmitResponse, TxView, views::MainAnchorView, views::CommitView, views::CommitSignatureView, views::PayloadView, views::FeePaidView,
        AccountTxsPage, AccountTxItem, BlockView, BlocksPage, MempoolPage, FeeEstimate,
        TipSuggestion, ProblemDoc, views::BlockEvent, views::PendingTxEvent, views::MainBlockEvent,
        views::MainReorgEvent, views::MainCreditView, views::MainSlashView
    )),
    tags((name = "transfer chain", description = "Accounts, transactions and blocks of the 30-second transfer chain"))
)]
pub struct TxApiDoc;

struct ApiState {
    chain: Arc<TxChain>,
    fee_cache: Mutex<Option<(Height, FeeEstimate)>>,
}

type St = State<Arc<ApiState>>;

/// Routes under `/v1/tx` plus `/v1/events`.
pub fn router(chain: Arc<TxChain>) -> Router {
    let state = Arc::new(ApiState {
        chain,
        fee_cache: Mutex::new(None),
    });
    Router::new()
        .route("/v1/tx/info", get(chain_info))
        .route("/v1/tx/transactions", post(submit_tx))
        .route("/v1/tx/mempool", get(list_mempool))
        .route("/v1/tx/transactions/{id}", get(get_tx))
        .route("/v1/tx/accounts/{address}/transactions", get(account_txs))
        .route("/v1/tx/blocks", get(list_blocks))
        .route("/v1/tx/blocks/{id}", get(get_block))
        .route("/v1/tx/blocks/{id}/transactions", get(block_txs))
        .route("/v1/tx/fees", get(fee_estimate))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state.clone())
        .merge(crate::events_api::router(state.chain.clone()))
}

/// The answer for a block at or below the tip that `block(height)` did not return: `410
/// pruned` when this node dropped it, else `404`.
pub(crate) fn missing_block(chain: &TxChain, height: Height) -> Problem {
    let kept = chain.store().kept();
    if kept.body_dropped(height) {
        Problem::gone(
            "pruned",
            format!(
                "block {height} is older than the history this node keeps (blocks from {}; storage.prune = \"{}\"); ask an archive node",
                kept.bodies_from,
                chain.store().history_policy().mode.as_str()
            ),
        )
        .with("kept_from", kept.bodies_from)
    } else {
        Problem::not_found("block-not-found", format!("no block at height {height}"))
    }
}

pub(crate) fn history_view(chain: &TxChain) -> HistoryView {
    let policy = chain.store().history_policy();
    let kept = chain.store().kept();
    HistoryView {
        mode: policy.mode.as_str().into(),
        keep_blocks: (policy.mode != crate::history::HistoryMode::Archive)
            .then_some(policy.keep_blocks),
        bodies_from: kept.bodies_from,
        headers_from: kept.headers_from,
    }
}

/// `no transaction {id}`, saying so when this node's history is cut (the transaction may be in
/// a block it dropped).
pub(crate) fn unknown_tx_detail(chain: &TxChain, id: &Hash256) -> String {
    let kept = chain.store().kept();
    if kept.bodies_from > 0 {
        format!(
            "no transaction {id} in the blocks this node keeps (from height {}) or its mempool",
            kept.bodies_from
        )
    } else {
        format!("no transaction {id}")
    }
}

/// `410 transaction-dropped`: what a wallet needs to know of a transaction the mempool let go.
fn dropped_problem(id: &Hash256, d: &Dropped) -> Problem {
    let mut p = Problem::gone(
        "transaction-dropped",
        format!(
            "transaction {id} was dropped from this node's mempool: {}; it is in no block this \
             node holds and will not be final unless sent again",
            d.reason.describe()
        ),
    )
    .with("reason", d.reason.as_str())
    .with("dropped_at_ms", d.at_ms);
    if let DropReason::Replaced { by } = d.reason {
        p = p.with("replaced_by", by.to_hex());
    }
    p
}

/// Problem for a refused transaction. Every kind here is the client's to fix.
pub fn submit_problem(e: &MempoolError) -> Problem {
    let kind = e.kind();
    let detail = e.to_string();
    match e {
        MempoolError::Tx(TxError::Oversize { max, .. }) => Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            kind,
            "Transaction too large",
            detail,
        )
        .with("max_weight", *max),
        MempoolError::Tx(TxError::NonceTooLow { expected, .. })
        | MempoolError::Tx(TxError::NonceTooHigh { expected, .. }) => {
            Problem::bad_request(kind, detail).with("expected_nonce", *expected)
        }
        MempoolError::Tx(TxError::FeeBelowBaseFee { base_fee, .. }) => {
            Problem::bad_request(kind, detail).with("base_fee", base_fee.to_string())
        }
        MempoolError::Tx(TxError::InsufficientBalance { needed, available }) => {
            Problem::bad_request(kind, detail)
                .with("needed", needed.to_string())
                .with("available", available.to_string())
        }
        MempoolError::Full => Problem::unavailable(kind, detail),
        _ => Problem::bad_request(kind, detail),
    }
}

/// Transfer-chain identity, tip, parameters and supply.
#[utoipa::path(get, path = "/v1/tx/info", tag = "transfer chain",
    responses((status = 200, description = "Chain identity, tip and parameters", body = ChainInfo)))]
async fn chain_info(State(s): St) -> Result<Json<ChainInfo>, Problem> {
    let c = &s.chain;
    let tip = c.tip();
    let spec = c.genesis_spec();
    let (n, bytes) = c.mempool_stats();
    let stats = c.chain_stats().map_err(Problem::internal)?;
    Ok(Json(ChainInfo {
        network: c.params().network.to_string(),
        address_prefix: c.params().network.hrp().to_string(),
        chain_id: c.params().chain_id.to_string(),
        chain_name: spec.chain_name.clone(),
        height: tip.header.height,
        tip_hash: tip.hash.to_hex(),
        final_height: tip.final_height,
        genesis_time: spec.genesis_time.0,
        block_weight_limit: c.params().consensus.block_weight_limit,
        max_tx_weight: c.params().consensus.max_tx_weight,
        min_base_fee: c.params().consensus.min_base_fee,
        next_base_fee: c.next_base_fee(),
        target_block_time_ms: c.params().consensus.target_block_time_ms,
        mempool_transactions: n,
        mempool_bytes: bytes,
        main_anchor: (&tip.header.main_anchor).into(),
        imported_from_main: stats.imported,
        burned: stats.burned,
        staked: stats.staked,
        in_channels: stats.in_channels,
        history: history_view(c),
    }))
}

/// Submit a signed transaction.
#[utoipa::path(post, path = "/v1/tx/transactions", tag = "transfer chain", request_body = SubmitRequest,
    responses(
        (status = 202, description = "Accepted into the mempool (persisted)", body = SubmitResponse),
        (status = 200, description = "Already known; its current status", body = SubmitResponse),
        (status = 400, description = "Invalid transaction (malformed, wrong chain, bad signature, nonce, balance, fee …)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "Body or transaction too large", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 503, description = "Mempool full", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn submit_tx(State(s): St, body: ApiJson<SubmitRequest>) -> Result<Response, Problem> {
    let bytes = tx_bytes(&body.0)?;
    let chain = s.chain.clone();
    let outcome = tokio::task::spawn_blocking(move || chain.submit(&bytes))
        .await
        .map_err(Problem::internal)?;
    match outcome {
        Ok(o) => {
            let code = if o.new {
                StatusCode::ACCEPTED
            } else {
                StatusCode::OK
            };
            Ok((
                code,
                Json(SubmitResponse {
                    id: o.id.to_hex(),
                    status: o.status.as_str().to_string(),
                    replaced: o.replaced.map(|r| r.to_hex()),
                }),
            )
                .into_response())
        }
        Err(SubmitError::Rejected(e)) => Err(submit_problem(&e)),
        Err(SubmitError::Store(e)) => Err(internal(e)),
    }
}

/// The bytes of a submitted transaction (`tx`: hex, `0x` allowed).
pub(crate) fn tx_bytes(request: &SubmitRequest) -> Result<Vec<u8>, Problem> {
    let hex_str = request.tx.trim();
    hex::decode(hex_str.strip_prefix("0x").unwrap_or(hex_str))
        .map_err(|e| Problem::bad_request("invalid-hex", format!("tx is not hex: {e}")))
}

/// A transaction with its status and confirmations.
#[utoipa::path(get, path = "/v1/tx/transactions/{id}", tag = "transfer chain",
    params(("id" = String, Path, description = "Transaction id (hex)", pattern = r"^(0x)?[0-9a-fA-F]{64}$")),
    responses(
        (status = 200, description = "The transaction with status and confirmations", body = TxView),
        (status = 400, description = "Malformed id", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "Unknown transaction", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 410, description = "Dropped from this node's mempool without being included (`reason`: invalidated, expired, evicted or replaced; `replaced_by`; `dropped_at_ms`); it is in no block this node holds and will not be final unless sent again", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn get_tx(
    State(s): St,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<TxView>, Problem> {
    let Path(id) = id.map_err(path_problem)?;
    let id = parse_hash(&id, "transaction id")?;
    let found = s.chain.lookup_tx(&id).map_err(internal)?;
    let l = found.ok_or_else(|| match s.chain.dropped(&id) {
        Some(d) => dropped_problem(&id, &d),
        None => Problem::not_found("transaction-not-found", unknown_tx_detail(&s.chain, &id)),
    })?;
    Ok(Json(views::tx_view(&l, s.chain.params().network)))
}

/// Pending transactions, oldest admitted first.
#[utoipa::path(get, path = "/v1/tx/mempool", tag = "transfer chain", params(MempoolPageQuery),
    responses(
        (status = 200, description = "A page of the mempool in admission order", body = MempoolPage),
        (status = 400, description = "Invalid cursor or limit", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn list_mempool(
    State(s): St,
    ApiQuery(q): ApiQuery<MempoolPageQuery>,
) -> Result<Json<MempoolPage>, Problem> {
    let limit = page_limit(q.limit)?;
    let after = numeric_cursor(q.cursor.as_deref())?;
    let (count, bytes) = s.chain.mempool_stats();
    // One more than the page: whether a next page exists.
    let mut page = s.chain.pending_page(after, limit + 1);
    let more = page.len() > limit;
    page.truncate(limit);
    let next_cursor = more
        .then(|| page.last().map(|(place, _)| place.to_string()))
        .flatten();
    let network = s.chain.params().network;
    let items = page
        .into_iter()
        .map(|(_, tx)| {
            let pending = TxLookup {
                tx,
                status: TxStatus::Pending,
                location: None,
                block: None,
                confirmations: 0,
                anchored_by: None,
            };
            views::tx_view(&pending, network)
        })
        .collect();
    Ok(Json(MempoolPage {
        count,
        bytes,
        items,
        next_cursor,
    }))
}

fn parse_tx_cursor(c: &str) -> Result<TxLocation, Problem> {
    let bad = || invalid_cursor(c);
    let (h, i) = c.split_once('.').ok_or_else(bad)?;
    Ok(TxLocation {
        height: h.parse().map_err(|_| bad())?,
        index: i.parse().map_err(|_| bad())?,
    })
}

/// An account's transactions, newest first.
#[utoipa::path(get, path = "/v1/tx/accounts/{address}/transactions", tag = "transfer chain",
    params(("address" = String, Path, description = "bech32m address", format = "doin-address"), TxPageQuery),
    responses(
        (status = 200, description = "The account's transactions, newest first", body = AccountTxsPage),
        (status = 400, description = "Invalid address, cursor or limit", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn account_txs(
    State(s): St,
    address: Result<Path<String>, PathRejection>,
    ApiQuery(q): ApiQuery<TxPageQuery>,
) -> Result<Json<AccountTxsPage>, Problem> {
    let Path(address) = address.map_err(path_problem)?;
    let a = parse_address(&s.chain, &address)?;
    let limit = page_limit(q.limit)?;
    let before = q.cursor.as_deref().map(parse_tx_cursor).transpose()?;
    let network = s.chain.params().network;
    let refs = s
        .chain
        .store()
        .account_history(&a.key, before, limit + 1)
        .map_err(internal)?;
    let more = refs.len() > limit;
    let mut items = Vec::new();
    for r in refs.iter().take(limit) {
        let Some(l) = s.chain.lookup_tx(&r.id).map_err(internal)? else {
            return Err(internal(StoreError::Corrupt(format!(
                "indexed tx {} missing",
                r.id
            ))));
        };
        let direction = match r.role {
            crate::store::ROLE_SENT => "sent",
            crate::store::ROLE_RECEIVED => "received",
            _ => "self",
        };
        items.push(AccountTxItem {
            direction: direction.to_string(),
            transaction: views::tx_view(&l, network),
        });
    }
    let next_cursor = if more {
        refs.get(limit - 1)
            .map(|r| format!("{}.{}", r.location.height, r.location.index))
    } else {
        None
    };
    let pending = if before.is_none() {
        s.chain
            .pending_of(&a.key)
            .into_iter()
            .filter_map(|t| Tx::from_signed(t).ok())
            .map(|tx| {
                views::tx_view(
                    &TxLookup {
                        tx,
                        status: TxStatus::Pending,
                        location: None,
                        block: None,
                        confirmations: 0,
                        anchored_by: None,
                    },
                    network,
                )
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(Json(AccountTxsPage {
        pending,
        items,
        next_cursor,
        history_from: s.chain.store().kept().bodies_from,
    }))
}

/// Resolves `latest`, a decimal height or a 64-hex block hash.
fn resolve_block(chain: &TxChain, id: &str) -> Result<Height, Problem> {
    if id == "latest" {
        return Ok(chain.tip().header.height);
    }
    if id.len() == 64 {
        let h = parse_hash(id, "block hash")?;
        return chain
            .store()
            .height_of(&h)
            .map_err(internal)?
            .ok_or_else(|| {
                let detail = match chain.store().kept().headers_from {
                    0 => format!("no block with hash {id}"),
                    from => format!("no block with hash {id} among the headers this node keeps (from height {from}, and each epoch's last)"),
                };
                Problem::not_found("block-not-found", detail)
            });
    }
    let height: Height = id.parse().map_err(|_| {
        Problem::bad_request(
            "invalid-block-id",
            "block id must be `latest`, a height or a 64-character hex hash",
        )
    })?;
    if height > chain.tip().header.height {
        return Err(Problem::not_found(
            "block-not-found",
            format!("no block at height {height} yet"),
        ));
    }
    Ok(height)
}

fn load_block_view(chain: &TxChain, height: Height) -> Result<BlockView, Problem> {
    let block = chain
        .store()
        .block(height)
        .map_err(internal)?
        .ok_or_else(|| missing_block(chain, height))?;
    let hash = block.hash().map_err(Problem::internal)?;
    let ids = block
        .txs
        .iter()
        .filter_map(|t| Tx::from_signed(t.clone()).ok())
        .map(|t| t.id().to_hex())
        .collect();
    let (status, conf) = chain.block_status(height);
    let mut view = views::block_view(
        &crate::store::StoredHeader {
            header: block.header,
            signature: block.signature,
        },
        &hash,
        ids,
        status.as_str(),
        conf,
        chain.params().network,
    );
    if status == TxStatus::Anchored {
        view.anchored_by = chain.anchoring_block(height).as_ref().map(Into::into);
    }
    view.commit = chain
        .store()
        .commit_certificate(height)
        .map_err(internal)?
        .map(|c| views::commit_view(&c, chain.params().network));
    Ok(view)
}

/// A transfer block.
#[utoipa::path(get, path = "/v1/tx/blocks/{id}", tag = "transfer chain", operation_id = "get_tx_block",
    params(("id" = String, Path, description = "`latest`, a height, or a block hash (hex)", pattern = r"^(latest|[0-9]{1,19}|[0-9a-fA-F]{64})$")),
    responses(
        (status = 200, description = "The block", body = BlockView),
        (status = 400, description = "Malformed id", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such block", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 410, description = "This node pruned that block (`pruned`)", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn get_block(
    State(s): St,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<BlockView>, Problem> {
    let Path(id) = id.map_err(path_problem)?;
    let height = resolve_block(&s.chain, &id)?;
    Ok(Json(load_block_view(&s.chain, height)?))
}

/// A transfer block's transactions.
#[utoipa::path(get, path = "/v1/tx/blocks/{id}/transactions", tag = "transfer chain",
    params(("id" = String, Path, description = "`latest`, a height, or a block hash (hex)", pattern = r"^(latest|[0-9]{1,19}|[0-9a-fA-F]{64})$")),
    responses(
        (status = 200, description = "The block's transactions in order", body = [TxView]),
        (status = 404, description = "No such block", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 410, description = "This node pruned that block (`pruned`)", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn block_txs(
    State(s): St,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Vec<TxView>>, Problem> {
    let Path(id) = id.map_err(path_problem)?;
    let height = resolve_block(&s.chain, &id)?;
    let block = s
        .chain
        .store()
        .block(height)
        .map_err(internal)?
        .ok_or_else(|| missing_block(&s.chain, height))?;
    let (status, confirmations) = s.chain.block_status(height);
    let anchored_by = if status == TxStatus::Anchored {
        s.chain.anchoring_block(height)
    } else {
        None
    };
    let stored = crate::store::StoredHeader {
        header: block.header.clone(),
        signature: block.signature,
    };
    let mut out = Vec::with_capacity(block.txs.len());
    for (i, t) in block.txs.into_iter().enumerate() {
        let tx = Tx::from_signed(t).map_err(Problem::internal)?;
        out.push(views::tx_view(
            &TxLookup {
                tx,
                status,
                location: Some(TxLocation {
                    height,
                    index: i as u32,
                }),
                block: Some(stored.clone()),
                confirmations,
                anchored_by,
            },
            s.chain.params().network,
        ));
    }
    Ok(Json(out))
}

/// Transfer blocks, newest first.
#[utoipa::path(get, path = "/v1/tx/blocks", tag = "transfer chain", params(BlocksPageQuery),
    responses(
        (status = 200, description = "Blocks, newest first, down to the oldest this node keeps", body = BlocksPage),
        (status = 400, description = "Invalid cursor or limit", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 410, description = "The cursor points below the history this node keeps (`pruned`)", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn list_blocks(
    State(s): St,
    ApiQuery(q): ApiQuery<BlocksPageQuery>,
) -> Result<Json<BlocksPage>, Problem> {
    let limit = page_limit(q.limit)?;
    let tip = s.chain.tip().header.height;
    let start = match numeric_cursor(q.cursor.as_deref())? {
        None => tip,
        Some(below) => match below.checked_sub(1) {
            Some(h) => h.min(tip),
            None => {
                return Ok(Json(BlocksPage {
                    items: Vec::new(),
                    next_cursor: None,
                }))
            }
        },
    };
    // The list ends at the oldest block this node keeps; a cursor below it is `410 pruned`.
    let oldest = s.chain.store().kept().bodies_from;
    if start < oldest {
        return Err(missing_block(&s.chain, start));
    }
    let mut items = Vec::new();
    let mut h = start;
    loop {
        if items.len() >= limit {
            break;
        }
        items.push(load_block_view(&s.chain, h)?);
        if h == oldest {
            break;
        }
        h -= 1;
    }
    let next_cursor = items
        .last()
        .filter(|b| b.height > oldest && items.len() == limit)
        .map(|b| b.height.to_string());
    Ok(Json(BlocksPage { items, next_cursor }))
}

/// Weight of a transfer: every field is fixed size.
const TRANSFER_WEIGHT: u64 = 196;

fn percentile(sorted: &[Amount], pct: usize) -> Amount {
    if sorted.is_empty() {
        return Amount::ZERO;
    }
    let idx = (sorted.len() - 1) * pct / 100;
    sorted[idx]
}

fn compute_fees(chain: &TxChain) -> Result<FeeEstimate, Problem> {
    let tip = chain.tip();
    let base_fee = chain.next_base_fee();
    let mut tips = Vec::new();
    let lowest = tip
        .header
        .height
        .saturating_sub(FEE_HISTORY_BLOCKS - 1)
        .max(1);
    for h in lowest..=tip.header.height {
        let Some(block) = chain.store().block(h).map_err(internal)? else {
            continue;
        };
        for t in &block.txs {
            tips.push(effective_tip_per_weight(
                t.body.max_fee_per_weight,
                t.body.max_priority_fee_per_weight,
                block.header.base_fee,
            ));
        }
    }
    tips.sort();
    let suggest = |pct: usize, floor: u64| -> TipSuggestion {
        let tip = percentile(&tips, pct).max(Amount::from_base_units(floor));
        let max_fee = base_fee
            .checked_mul(2)
            .and_then(|b| b.checked_add(tip))
            .unwrap_or(Amount::MAX);
        TipSuggestion {
            max_priority_fee_per_weight: tip,
            max_fee_per_weight: max_fee,
            max_transfer_fee: max_fee.checked_mul(TRANSFER_WEIGHT).unwrap_or(Amount::MAX),
        }
    };
    let p = &chain.params().consensus;
    Ok(FeeEstimate {
        base_fee,
        min_base_fee: p.min_base_fee,
        block_weight_limit: p.block_weight_limit,
        target_weight: p.target_weight(),
        last_block_weight: tip.header.weight_used,
        transfer_weight: TRANSFER_WEIGHT,
        slow: suggest(25, 0),
        standard: suggest(50, 1),
        fast: suggest(90, 2),
        height: tip.header.height,
    })
}

/// The next base fee and fee suggestions from recent tips.
#[utoipa::path(get, path = "/v1/tx/fees", tag = "transfer chain",
    responses((status = 200, description = "Base fee and tip suggestions", body = FeeEstimate)))]
async fn fee_estimate(State(s): St) -> Result<Json<FeeEstimate>, Problem> {
    let height = s.chain.tip().header.height;
    if let Some((h, est)) = s.fee_cache.lock().as_ref() {
        if *h == height {
            return Ok(Json(est.clone()));
        }
    }
    let chain = s.chain.clone();
    let est = tokio::task::spawn_blocking(move || compute_fees(&chain))
        .await
        .map_err(Problem::internal)??;
    *s.fee_cache.lock() = Some((est.height, est.clone()));
    Ok(Json(est))
}
