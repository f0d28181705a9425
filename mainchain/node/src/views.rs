//! JSON views of main-chain objects for the REST API: fixed-point values as decimal strings,
//! keys as addresses of the node's network, amounts as base-unit strings.

use crate::chain::MainChain;
use crate::store::OptimaeRecord;
pub use doin_api::mainchain::*;
use doin_http::Problem;
use doin_main_core::{DomainState, MainBlock, Objective, Payout};
use doin_types::{Address, Network, PublicKeyBytes};

/// A key as an address of `network`.
pub fn addr(network: Network, k: &PublicKeyBytes) -> String {
    Address::new(network, *k).to_string()
}

/// u128 work units (10^-9) as a decimal string.
pub fn work_string(w: u128) -> String {
    format!("{}.{:09}", w / 1_000_000_000, w % 1_000_000_000)
}

pub fn payout_view(n: Network, p: &Payout) -> PayoutView {
    PayoutView {
        role: match p.role {
            doin_main_core::Role::Optimizer => "optimizer",
            doin_main_core::Role::Evaluator => "evaluator",
            doin_main_core::Role::Producer => "producer",
        }
        .into(),
        address: addr(n, &p.key),
        amount: p.amount,
    }
}

pub fn block_view(c: &MainChain, b: &MainBlock, tip: u64) -> Result<MainBlockView, Problem> {
    let n = c.params().network;
    let h = &b.header;
    let hash = b.hash().map_err(Problem::internal)?;
    let anchored_by = if h.height > 0 {
        c.anchored_by(h.height)
    } else {
        None
    };
    Ok(MainBlockView {
        height: h.height,
        hash: hash.to_hex(),
        parent: h.parent.to_hex(),
        time: h.time.0,
        producer: addr(n, &h.producer),
        kind: if h.counted_work.0 > 0 || h.height == 0 {
            "work".into()
        } else {
            "carrier".into()
        },
        threshold: h.threshold.to_string(),
        counted_work: h.counted_work.to_string(),
        cumulative_work: work_string(h.cumulative_work),
        state_root: h.state_root.to_hex(),
        registrations: b
            .body
            .registrations
            .iter()
            .map(|r| r.body.spec.id.to_string())
            .collect(),
        commits: b
            .body
            .commits
            .iter()
            .filter_map(|x| doin_main_core::Message::id(&x.body).ok())
            .map(|i| i.to_hex())
            .collect(),
        reveals: b
            .body
            .reveals
            .iter()
            .filter_map(|r| r.body.optimae_id().ok())
            .map(|i| i.to_hex())
            .collect(),
        verdicts: b
            .body
            .verdicts
            .iter()
            .map(|v| VerdictView {
                optimae_id: v.optimae_id.to_hex(),
                round: v.round,
                votes: v
                    .votes
                    .iter()
                    .map(|x| VoteView {
                        round: x.body.round,
                        evaluator: addr(n, &x.body.evaluator),
                        metric: x.body.metric.to_string(),
                        agreed: None,
                    })
                    .collect(),
            })
            .collect(),
        coinbase: b.body.coinbase.iter().map(|p| payout_view(n, p)).collect(),
        confirmations: tip.saturating_sub(h.height),
        tx_checkpoint: CheckpointView {
            height: h.tx_checkpoint.height,
            hash: h.tx_checkpoint.hash.to_hex(),
        },
        status: if h.height == 0 || (anchored_by.is_some() && tip > h.height) {
            "final".into()
        } else {
            "included".into()
        },
        anchored_by: anchored_by.map(|(height, hash)| CheckpointView {
            height,
            hash: hash.to_hex(),
        }),
    })
}

pub fn domain_view(d: &DomainState, eligible: usize) -> DomainView {
    let s = &d.spec;
    DomainView {
        id: s.id.to_string(),
        metric: s.metric.clone(),
        direction: match s.direction {
            doin_main_core::Direction::Minimize => "minimize",
            doin_main_core::Direction::Maximize => "maximize",
        }
        .into(),
        objective: match &s.objective {
            Objective::Sphere => "sphere".into(),
            Objective::Rosenbrock => "rosenbrock".into(),
            Objective::Rastrigin => "rastrigin".into(),
            Objective::LeastSquares { .. } => "least_squares".into(),
            Objective::External { plugin } => format!("external:{plugin}"),
        },
        dim: s.dim,
        scale: s.scale.to_string(),
        weight: s.weight.to_string(),
        tolerance: s.tolerance.to_string(),
        baseline: s.baseline.to_string(),
        best_metric: d.best.to_string(),
        best_params: d.best_params.iter().map(|p| p.to_string()).collect(),
        best_optimae: d.best_optimae.map(|o| o.to_hex()),
        registered_at: d.registered_at,
        accepted: d.accepted,
        rejected: d.rejected,
        eligible_evaluators: eligible,
        verification_fee: s.verification_fee,
        history: None,
    }
}

pub fn optimae_view(c: &MainChain, r: &OptimaeRecord) -> OptimaeView {
    let n = c.params().network;
    let head = c.head();
    let pending = head.state.pending.contains_key(&r.id);
    OptimaeView {
        id: r.id.to_hex(),
        commit_id: r.commit_id.to_hex(),
        domain: r.domain.to_string(),
        optimizer: addr(n, &r.optimizer),
        status: r.status.as_str().into(),
        round: r.round,
        params: r.params.iter().map(|p| p.to_string()).collect(),
        reported_metric: r.reported.to_string(),
        verified_metric: r.verified.map(|v| v.to_string()),
        work: r.work.map(|w| w.to_string()),
        new_best: r.new_best,
        committed_at: r.committed_at,
        revealed_at: r.revealed_at,
        decided_at: r.decided_at,
        votes: r
            .votes
            .iter()
            .map(|v| VoteView {
                round: v.round,
                evaluator: addr(n, &v.evaluator),
                metric: v.metric.to_string(),
                agreed: Some(v.agreed),
            })
            .collect(),
        pooled_votes: if pending {
            c.pooled_votes(&r.id, r.round)
        } else {
            0
        },
        quorum: if pending {
            c.quorum(&head, &r.id)
                .map(|q| q.iter().map(|k| addr(n, k)).collect())
        } else {
            None
        },
    }
}
