//! REST routes of the main chain (`/v1/main/...`).
//!
//! Handlers translate between HTTP and `MainChain`; they hold no chain logic. Fixed-point
//! values (metrics, parameters, work, reputation) are decimal strings with nine fractional
//! digits; amounts are decimal strings of base units; keys are bech32m addresses. Client
//! mistakes are problem+json 4xx with a stable type (see `docs/api.md`).

use crate::chain::{MainChain, SubmitError};
use crate::store::PoolKind;
use crate::views::{
    addr, block_view, domain_view, optimae_view, work_string, DomainView, HistoryView,
    MainBlockView, OptimaeView, PayoutView, VerdictView, VoteView,
};
use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use doin_api::mainchain::*;
use doin_http::{numeric_cursor, page_limit, path_problem, ApiJson, ApiQuery, Problem, ProblemDoc};
use doin_main_core::{DomainId, MainBlock};
use doin_store::StoreError;
use doin_types::{Address, Amount, Hash256, PublicKeyBytes};
use std::sync::Arc;
use utoipa::OpenApi;

/// Largest request body (hex doubles the message size).
const MAX_BODY_BYTES: usize = 160 * 1024;
const MAX_HISTORY: usize = 500;

#[derive(OpenApi)]
#[openapi(
    paths(
        main_info, list_main_blocks, get_block, list_domains, get_domain, get_optimae, get_commit, participants,
        rewards, stats, submit_register, submit_commit, submit_reveal, submit_vote
    ),
    components(schemas(
        MainInfo, MainBlocksPage, MainBlockView, PayoutView, VerdictView, DomainView, HistoryView, OptimaeView,
        crate::views::CheckpointView,
        VoteView, CommitView, ParticipantView, RewardsView, StatsView, MessageRequest,
        MessageResponse, ProblemDoc
    )),
    tags((name = "main chain", description = "Proof-of-optimization chain: domains, optimae, votes, blocks, rewards"))
)]
pub struct MainApiDoc;

type St = State<Arc<MainChain>>;

/// Routes under `/v1/main`.
pub fn router(chain: Arc<MainChain>) -> Router {
    Router::new()
        .route("/v1/main/info", get(main_info))
        .route("/v1/main/blocks", get(list_main_blocks))
        .route("/v1/main/blocks/{id}", get(get_block))
        .route("/v1/main/domains", get(list_domains).post(submit_register))
        .route("/v1/main/domains/{id}", get(get_domain))
        .route("/v1/main/optimae/{id}", get(get_optimae))
        .route("/v1/main/commits", post(submit_commit))
        .route("/v1/main/commits/{id}", get(get_commit))
        .route("/v1/main/reveals", post(submit_reveal))
        .route("/v1/main/votes", post(submit_vote))
        .route("/v1/main/participants", get(participants))
        .route("/v1/main/rewards/{address}", get(rewards))
        .route("/v1/main/stats", get(stats))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(chain)
}

fn internal(e: StoreError) -> Problem {
    match e {
        StoreError::NoSpace(_) => Problem::storage_full(e),
        e => Problem::internal(e),
    }
}

fn parse_hash(s: &str, what: &str) -> Result<Hash256, Problem> {
    Hash256::from_hex(s).map_err(|e| Problem::bad_request("invalid-hash", format!("{what}: {e}")))
}

/// Main-chain identity, tip and parameters.
#[utoipa::path(get, path = "/v1/main/info", tag = "main chain",
    responses((status = 200, description = "Identity, tip and parameters", body = MainInfo)))]
async fn main_info(State(c): St) -> Json<MainInfo> {
    let head = c.head();
    let p = &c.params().consensus;
    Json(MainInfo {
        network: c.params().network.to_string(),
        chain_id: c.params().chain_id.to_string(),
        chain_name: c.genesis_spec().chain_name.clone(),
        height: head.header.height,
        tip_hash: head.hash.to_hex(),
        threshold: head.state.controller.threshold.to_string(),
        cumulative_work: work_string(head.header.cumulative_work),
        target_block_time_ms: p.target_block_time_ms,
        carrier_interval_ms: p.carrier_interval_ms,
        reveal_window: p.reveal_window,
        verdict_window: p.verdict_window,
        pending_optimae: head.state.pending.len(),
        pool_messages: c.pool_len(),
        minted: head.state.minted,
    })
}

/// A main-chain block.
#[utoipa::path(get, path = "/v1/main/blocks/{id}", tag = "main chain", operation_id = "get_main_block",
    params(("id" = String, Path, description = "`latest`, a height, or a block hash (hex)", pattern = r"^(latest|[0-9]{1,19}|[0-9a-fA-F]{64})$")),
    responses(
        (status = 200, description = "The block", body = MainBlockView),
        (status = 400, description = "Malformed id", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such block", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn get_block(
    State(c): St,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<MainBlockView>, Problem> {
    let Path(id) = id.map_err(path_problem)?;
    let tip = c.head().header.height;
    let block = if id == "latest" {
        c.block(tip).map_err(internal)?
    } else if let Ok(h) = id.parse::<u64>() {
        c.block(h).map_err(internal)?
    } else if id.len() == 64 {
        c.block_by_hash(&parse_hash(&id, "block hash")?)
            .map_err(internal)?
    } else {
        return Err(Problem::bad_request(
            "invalid-block-id",
            "a block id is `latest`, a height, or a 64-hex-digit hash",
        ));
    };
    let b = block
        .ok_or_else(|| Problem::not_found("block-not-found", format!("no main block {id}")))?;
    Ok(Json(block_view(&c, &b, tip)?))
}

/// Main-chain blocks, newest first.
#[utoipa::path(get, path = "/v1/main/blocks", tag = "main chain", params(doin_api::tx::BlocksPageQuery),
    responses(
        (status = 200, description = "Blocks, newest first, down to the genesis block", body = MainBlocksPage),
        (status = 400, description = "Invalid cursor or limit", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn list_main_blocks(
    State(c): St,
    ApiQuery(q): ApiQuery<doin_api::tx::BlocksPageQuery>,
) -> Result<Json<MainBlocksPage>, Problem> {
    let limit = page_limit(q.limit)?;
    let tip = c.head().header.height;
    // The page starts below the cursor's height (the last height of the previous page).
    let start = match numeric_cursor(q.cursor.as_deref())? {
        None => Some(tip),
        Some(below) => below.checked_sub(1).map(|h| h.min(tip)),
    };
    let mut items = Vec::new();
    let mut next = start;
    while let Some(h) = next {
        if items.len() == limit {
            break;
        }
        // Blocks are kept from the genesis block on: a height at or below the tip has one.
        let block = c.block(h).map_err(internal)?.ok_or_else(|| {
            Problem::internal(format!("main block {h} below the tip {tip} is missing"))
        })?;
        items.push(block_view(&c, &block, tip)?);
        next = h.checked_sub(1);
    }
    let next_cursor = match (items.last(), next) {
        (Some(last), Some(_)) => Some(last.height.to_string()),
        _ => None,
    };
    Ok(Json(MainBlocksPage { items, next_cursor }))
}

/// The registered optimization domains.
#[utoipa::path(get, path = "/v1/main/domains", tag = "main chain",
    responses((status = 200, description = "Every registered domain with its best result", body = [DomainView])))]
async fn list_domains(State(c): St) -> Json<Vec<DomainView>> {
    let head = c.head();
    Json(
        head.state
            .domains
            .values()
            .map(|d| domain_view(d, head.state.eligible(&d.spec.id).len()))
            .collect(),
    )
}

/// One domain with its best-metric history.
#[utoipa::path(get, path = "/v1/main/domains/{id}", tag = "main chain",
    params(("id" = String, Path, description = "Domain id", pattern = "^[a-z0-9-]{1,32}$"), HistoryQuery),
    responses(
        (status = 200, description = "The domain, its best parameters and metric history", body = DomainView),
        (status = 400, description = "Malformed id or query", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such domain", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn get_domain(
    State(c): St,
    id: Result<Path<String>, PathRejection>,
    q: ApiQuery<HistoryQuery>,
) -> Result<Json<DomainView>, Problem> {
    let Path(id) = id.map_err(path_problem)?;
    let id =
        DomainId::new(&id).map_err(|e| Problem::bad_request("invalid-domain-id", e.to_string()))?;
    let limit = q.0.history.unwrap_or(50);
    if limit == 0 || limit > MAX_HISTORY {
        return Err(Problem::bad_request(
            "invalid-limit",
            format!("history must be 1..={MAX_HISTORY}"),
        ));
    }
    let head = c.head();
    let d = head
        .state
        .domains
        .get(&id)
        .ok_or_else(|| Problem::not_found("domain-not-found", format!("no domain {id}")))?;
    let mut v = domain_view(d, head.state.eligible(&id).len());
    let hist = c.store().history(&id, limit).map_err(internal)?;
    v.history = Some(
        hist.into_iter()
            .map(|p| HistoryView {
                height: p.height,
                optimae_id: p.optimae.to_hex(),
                metric: p.metric.to_string(),
            })
            .collect(),
    );
    Ok(Json(v))
}

/// An optimae's lifecycle: reveal, quorum, votes, verdict.
#[utoipa::path(get, path = "/v1/main/optimae/{id}", tag = "main chain",
    params(("id" = String, Path, description = "Optimae id (hex)", pattern = r"^(0x)?[0-9a-fA-F]{64}$")),
    responses(
        (status = 200, description = "The optimae's lifecycle, with votes", body = OptimaeView),
        (status = 400, description = "Malformed id", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No optimae with this id has been revealed on chain", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn get_optimae(
    State(c): St,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<OptimaeView>, Problem> {
    let Path(id) = id.map_err(path_problem)?;
    let id = parse_hash(&id, "optimae id")?;
    let r = c.store().optimae(&id).map_err(internal)?.ok_or_else(|| {
        Problem::not_found(
            "optimae-not-found",
            format!("no optimae {id} revealed on chain"),
        )
    })?;
    Ok(Json(optimae_view(&c, &r)))
}

/// Where a commit is: on chain, or revealed.
#[utoipa::path(get, path = "/v1/main/commits/{id}", tag = "main chain",
    params(("id" = String, Path, description = "Commit id (hex)", pattern = r"^(0x)?[0-9a-fA-F]{64}$")),
    responses(
        (status = 200, description = "Where the commit is", body = CommitView),
        (status = 404, description = "Unknown commit", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn get_commit(
    State(c): St,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<CommitView>, Problem> {
    let Path(id) = id.map_err(path_problem)?;
    let id = parse_hash(&id, "commit id")?;
    let n = c.params().network;
    match c.store().commit_info(&id).map_err(internal)? {
        Some(i) => Ok(Json(CommitView {
            id: id.to_hex(),
            domain: i.domain.to_string(),
            optimizer: addr(n, &i.optimizer),
            status: if i.revealed_as.is_some() {
                "revealed"
            } else {
                "committed"
            }
            .into(),
            height: Some(i.height),
            optimae_id: i.revealed_as.map(|o| o.to_hex()),
        })),
        None => Err(Problem::not_found(
            "commit-not-found",
            format!("no commit {id} on chain"),
        )),
    }
}

/// Optimizers and evaluators with reputation and rewards.
#[utoipa::path(get, path = "/v1/main/participants", tag = "main chain",
    params(RoleQuery),
    responses(
        (status = 200, description = "Evaluators and optimizers with reputation and rewards", body = [ParticipantView]),
        (status = 400, description = "Unknown role", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn participants(
    State(c): St,
    q: ApiQuery<RoleQuery>,
) -> Result<Json<Vec<ParticipantView>>, Problem> {
    let want = q.0.role.as_deref();
    if !matches!(want, None | Some("evaluator") | Some("optimizer")) {
        return Err(Problem::bad_request(
            "invalid-role",
            "role is `evaluator` or `optimizer`",
        ));
    }
    let head = c.head();
    let s = &head.state;
    let n = c.params().network;
    let hl = c.params().consensus.reputation_half_life;
    let h = head.header.height;
    let mut out = Vec::new();
    let mut keys: std::collections::BTreeSet<PublicKeyBytes> =
        s.reputation.keys().copied().collect();
    keys.extend(s.evaluators.keys().copied());
    for k in keys {
        let ev = s.evaluators.get(&k);
        let role = if ev.is_some() {
            "evaluator"
        } else {
            "optimizer"
        };
        if want.is_some_and(|w| w != role) {
            continue;
        }
        let rep = s.reputation_at(&k, h, hl);
        out.push(ParticipantView {
            address: addr(n, &k),
            role: role.into(),
            reputation: rep.to_string(),
            reputation_factor: doin_main_core::reward::reputation_factor(rep).to_string(),
            rewards: s.rewards.get(&k).copied().unwrap_or(Amount::ZERO),
            domains: ev
                .map(|e| e.domains.iter().map(|d| d.to_string()).collect())
                .unwrap_or_default(),
            stake: ev.map(|e| e.stake),
        });
    }
    Ok(Json(out))
}

/// The main-chain rewards of an address.
#[utoipa::path(get, path = "/v1/main/rewards/{address}", tag = "main chain",
    params(("address" = String, Path, description = "bech32m address of this network", format = "doin-address")),
    responses(
        (status = 200, description = "Rewards and reputation of an address", body = RewardsView),
        (status = 400, description = "Invalid address or address of another network", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn rewards(
    State(c): St,
    address: Result<Path<String>, PathRejection>,
) -> Result<Json<RewardsView>, Problem> {
    let Path(address) = address.map_err(path_problem)?;
    let a = Address::parse(&address, c.params().network)
        .map_err(|e| Problem::bad_request(e.kind(), e.to_string()))?;
    let head = c.head();
    let h = head.header.height;
    Ok(Json(RewardsView {
        address: a.to_string(),
        total: head
            .state
            .rewards
            .get(&a.key)
            .copied()
            .unwrap_or(Amount::ZERO),
        reputation: head
            .state
            .reputation_at(&a.key, h, c.params().consensus.reputation_half_life)
            .to_string(),
        height: h,
    }))
}

/// Main-chain statistics: threshold, block times, work and carrier blocks.
#[utoipa::path(get, path = "/v1/main/stats", tag = "main chain",
    responses((status = 200, description = "Threshold and block-time statistics over the last 100 blocks", body = StatsView)))]
async fn stats(State(c): St) -> Result<Json<StatsView>, Problem> {
    let head = c.head();
    let h = head.header.height;
    let from = h.saturating_sub(100);
    let c2 = c.clone();
    let blocks = tokio::task::spawn_blocking(move || -> Result<Vec<MainBlock>, StoreError> {
        let mut v = Vec::new();
        for i in from..=h {
            if let Some(b) = c2.block(i)? {
                v.push(b);
            }
        }
        Ok(v)
    })
    .await
    .map_err(Problem::internal)?
    .map_err(internal)?;
    let times: Vec<u64> = blocks
        .windows(2)
        .map(|w| w[1].header.time.0.saturating_sub(w[0].header.time.0))
        .collect();
    let recent = blocks.iter().skip(1);
    let work = recent
        .clone()
        .filter(|b| b.header.counted_work.0 > 0)
        .count() as u64;
    Ok(Json(StatsView {
        height: h,
        threshold: head.state.controller.threshold.to_string(),
        ema_block_time_ms: head.state.controller.ema_block_time_ms,
        target_block_time_ms: c.params().consensus.target_block_time_ms,
        window: times.len() as u64,
        mean_block_time_ms: (!times.is_empty())
            .then(|| times.iter().sum::<u64>() / times.len() as u64),
        min_block_time_ms: times.iter().min().copied(),
        max_block_time_ms: times.iter().max().copied(),
        work_blocks: work,
        carrier_blocks: times.len() as u64 - work,
        thresholds: blocks
            .iter()
            .skip(1)
            .map(|b| b.header.threshold.to_string())
            .collect(),
    }))
}

async fn submit(
    c: Arc<MainChain>,
    kind: PoolKind,
    body: MessageRequest,
) -> Result<Response, Problem> {
    let hex_str = body.message.trim();
    let bytes = hex::decode(hex_str.strip_prefix("0x").unwrap_or(hex_str))
        .map_err(|e| Problem::bad_request("invalid-hex", format!("message is not hex: {e}")))?;
    let outcome = tokio::task::spawn_blocking(move || c.submit(kind, &bytes))
        .await
        .map_err(Problem::internal)?;
    match outcome {
        Ok(s) => {
            let (code, status) = if s.new {
                (StatusCode::ACCEPTED, "pooled")
            } else {
                (StatusCode::OK, "known")
            };
            Ok((
                code,
                Json(MessageResponse {
                    id: s.id.to_hex(),
                    status: status.into(),
                }),
            )
                .into_response())
        }
        Err(SubmitError::Rejected(r)) if r.kind == "pool-full" => {
            Err(Problem::unavailable(r.kind, r.detail))
        }
        Err(SubmitError::Rejected(r)) => Err(Problem::bad_request(r.kind, r.detail)),
        Err(SubmitError::Store(e)) => Err(internal(e)),
    }
}

/// Register an optimization domain.
#[utoipa::path(post, path = "/v1/main/domains", tag = "main chain", request_body = MessageRequest,
    responses(
        (status = 202, description = "Registration pooled for the next block", body = MessageResponse),
        (status = 200, description = "Already pooled", body = MessageResponse),
        (status = 400, description = "Malformed, wrong chain, bad signature, invalid spec, or the domain exists", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn submit_register(State(c): St, body: ApiJson<MessageRequest>) -> Result<Response, Problem> {
    submit(c, PoolKind::Register, body.0).await
}

/// Submit an optimae commit.
#[utoipa::path(post, path = "/v1/main/commits", tag = "main chain", request_body = MessageRequest,
    responses(
        (status = 202, description = "Commit pooled for the next block", body = MessageResponse),
        (status = 200, description = "Already known", body = MessageResponse),
        (status = 400, description = "Malformed, wrong chain, bad signature or unknown domain", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn submit_commit(State(c): St, body: ApiJson<MessageRequest>) -> Result<Response, Problem> {
    submit(c, PoolKind::Commit, body.0).await
}

/// Submit an optimae reveal.
#[utoipa::path(post, path = "/v1/main/reveals", tag = "main chain", request_body = MessageRequest,
    responses(
        (status = 202, description = "Reveal pooled; `id` is the optimae id", body = MessageResponse),
        (status = 200, description = "Already known", body = MessageResponse),
        (status = 400, description = "Malformed, bad signature, commit not on chain, too late, not matching the commitment, parameters out of bounds, too few evaluators", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn submit_reveal(State(c): St, body: ApiJson<MessageRequest>) -> Result<Response, Problem> {
    submit(c, PoolKind::Reveal, body.0).await
}

/// Submit an evaluator's vote.
#[utoipa::path(post, path = "/v1/main/votes", tag = "main chain", request_body = MessageRequest,
    responses(
        (status = 202, description = "Vote pooled", body = MessageResponse),
        (status = 200, description = "Already known", body = MessageResponse),
        (status = 400, description = "Malformed, bad signature, unknown optimae, wrong round, evaluator not selected, or a second different vote", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn submit_vote(State(c): St, body: ApiJson<MessageRequest>) -> Result<Response, Problem> {
    submit(c, PoolKind::Vote, body.0).await
}
