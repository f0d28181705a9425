//! The optimizer and evaluator roles a node can run with its own keys.
//!
//! An evaluator watches pending optimae, and when it is selected for a quorum it evaluates the
//! revealed parameters (built-in objective or external plugin) and submits a signed vote. An
//! optimizer searches for better parameters in each domain, commits to a claim, and reveals it
//! once the commit is on chain. Both talk to `MainChain` exactly as a remote client would
//! through REST: by submitting signed messages, which are checked the same way.

use crate::chain::MainChain;
use crate::plugin::{Plugin, PluginSpec};
use crate::store::PoolKind;
use doin_codec::encode;
use doin_crypto::KeyPair;
use doin_main_core::domain::PARAM_BOUND;
use doin_main_core::msg::commitment;
use doin_main_core::{
    evaluate_builtin, Commit, DomainId, DomainState, Fx, Objective, OptimaeId, Reveal, Signed, Vote,
};
use doin_types::Hash256;
use rand::Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Evaluates any domain: built-in objectives directly, external ones through their plugin.
#[derive(Default)]
pub struct DomainEvaluator {
    plugins: BTreeMap<String, Arc<Plugin>>,
}

impl DomainEvaluator {
    pub fn new(plugins: Vec<PluginSpec>) -> DomainEvaluator {
        DomainEvaluator {
            plugins: plugins
                .into_iter()
                .map(|p| (p.name.clone(), Arc::new(Plugin::new(p))))
                .collect(),
        }
    }

    /// Whether this node can evaluate the domain at all.
    pub fn supports(&self, d: &DomainState) -> bool {
        match &d.spec.objective {
            Objective::External { plugin } => self.plugins.contains_key(plugin),
            _ => true,
        }
    }

    /// Blocking: evaluates `params` in domain `d`.
    pub fn evaluate(&self, d: &DomainState, params: &[Fx]) -> Result<Fx, String> {
        d.spec.check_params(params).map_err(|e| e.to_string())?;
        match &d.spec.objective {
            Objective::External { plugin } => self
                .plugins
                .get(plugin)
                .ok_or_else(|| format!("no plugin {plugin:?} configured"))?
                .evaluate(&d.spec.id, &d.data_seed, params)
                .map_err(|e| e.to_string()),
            _ => evaluate_builtin(&d.spec, d.data_seed, params).map_err(|e| e.to_string()),
        }
    }
}

/// Runs an evaluator until shutdown.
pub async fn run_evaluator(
    chain: Arc<MainChain>,
    key: Arc<KeyPair>,
    evaluator: Arc<DomainEvaluator>,
    poll: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), String> {
    let me = key.public();
    let mut voted: BTreeSet<(OptimaeId, u8)> = BTreeSet::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = shutdown.changed() => return Ok(()),
        }
        let head = chain.head();
        voted.retain(|(id, _)| head.state.pending.contains_key(id));
        let mut jobs = Vec::new();
        for (id, p) in &head.state.pending {
            if voted.contains(&(*id, p.round)) {
                continue;
            }
            let Some(q) = chain.quorum(&head, id) else {
                continue;
            };
            if !q.contains(&me) {
                continue;
            }
            let Some(d) = head.state.domains.get(&p.domain) else {
                continue;
            };
            if !evaluator.supports(d) {
                continue;
            }
            jobs.push((*id, p.round, d.clone(), p.params.clone()));
        }
        for (id, round, domain, params) in jobs {
            let ev = evaluator.clone();
            let c = chain.clone();
            let k = key.clone();
            let res = tokio::task::spawn_blocking(move || -> Result<(), String> {
                let metric = ev.evaluate(&domain, &params)?;
                let vote = Signed::sign(
                    Vote {
                        chain_id: c.params().chain_id,
                        optimae_id: id,
                        round,
                        evaluator: k.public(),
                        metric,
                    },
                    &k,
                )
                .map_err(|e| e.to_string())?;
                let bytes = encode(&vote).map_err(|e| e.to_string())?;
                c.submit(PoolKind::Vote, &bytes)
                    .map_err(|e| e.to_string())?;
                Ok(())
            })
            .await
            .map_err(|e| e.to_string())?;
            match res {
                Ok(()) => {
                    voted.insert((id, round));
                    tracing::debug!(optimae = %id, round, "vote submitted");
                }
                Err(e) => {
                    // Not retried this round: an evaluation that fails here would fail again.
                    voted.insert((id, round));
                    tracing::warn!(optimae = %id, error = %e, "could not vote");
                }
            }
        }
    }
}

/// A claim between commit and reveal.
struct InFlight {
    commit_id: Hash256,
    reveal: Vec<u8>,
    revealed: bool,
    optimae: OptimaeId,
    metric: Fx,
    started_at: u64,
}

/// Options of the optimizer worker.
#[derive(Clone, Debug)]
pub struct OptimizerOptions {
    pub poll: Duration,
    /// Candidate parameter vectors tried per domain per round.
    pub tries_per_round: usize,
}

/// Runs an optimizer until shutdown. Claims are pipelined: once a reveal is on chain the next
/// search starts, and it must beat this optimizer's own undecided claims as well as the
/// chain's best, so successive claims are real successive improvements.
pub async fn run_optimizer(
    chain: Arc<MainChain>,
    key: Arc<KeyPair>,
    evaluator: Arc<DomainEvaluator>,
    opts: OptimizerOptions,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), String> {
    let mut in_flight: BTreeMap<DomainId, InFlight> = BTreeMap::new();
    // Revealed, undecided claims: domain → (optimae, reported metric, params).
    let mut undecided: BTreeMap<DomainId, Vec<(OptimaeId, Fx, Vec<Fx>)>> = BTreeMap::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(opts.poll) => {}
            _ = shutdown.changed() => return Ok(()),
        }
        let head = chain.head();
        let height = head.header.height;
        let give_up = chain.params().consensus.reveal_window + 2;
        for claims in undecided.values_mut() {
            claims.retain(|(id, _, _)| head.state.pending.contains_key(id));
        }
        for (domain_id, d) in &head.state.domains {
            if let Some(f) = in_flight.get_mut(domain_id) {
                if !f.revealed && head.state.commits.contains_key(&f.commit_id) {
                    match chain.submit(PoolKind::Reveal, &f.reveal) {
                        Ok(_) => f.revealed = true,
                        Err(e) => tracing::warn!(domain = %domain_id, error = %e, "reveal refused"),
                    }
                }
                if head.state.pending.contains_key(&f.optimae) {
                    // On chain: the evaluators take it from here.
                    let m = f.metric;
                    let id = f.optimae;
                    let params = reveal_params(&f.reveal);
                    undecided
                        .entry(domain_id.clone())
                        .or_default()
                        .push((id, m, params));
                    in_flight.remove(domain_id);
                } else if height > f.started_at + give_up {
                    in_flight.remove(domain_id);
                }
                continue;
            }
            if !evaluator.supports(d) {
                continue;
            }
            // Start from the best known point: the chain's, or a better claim of our own.
            let mut target = d.clone();
            if let Some((_, m, p)) = undecided.get(domain_id).and_then(|c| {
                c.iter()
                    .rev()
                    .find(|(_, m, _)| d.spec.gain(d.best, *m).is_some_and(|g| g > Fx::ZERO))
            }) {
                target.best = *m;
                target.best_params = p.clone();
            }
            let ev = evaluator.clone();
            let tries = opts.tries_per_round;
            let found = tokio::task::spawn_blocking(move || search(&ev, &target, tries))
                .await
                .map_err(|e| e.to_string())?;
            let Some((params, metric)) = found else {
                continue;
            };
            match claim(&chain, &key, d, params, metric) {
                Ok((commit_id, reveal, optimae)) => {
                    tracing::debug!(domain = %domain_id, %metric, "committed a claim");
                    in_flight.insert(
                        domain_id.clone(),
                        InFlight {
                            commit_id,
                            reveal,
                            revealed: false,
                            optimae,
                            metric,
                            started_at: height,
                        },
                    );
                }
                Err(e) => tracing::warn!(domain = %domain_id, error = %e, "commit refused"),
            }
        }
    }
}

/// The parameters inside an encoded reveal we made ourselves.
fn reveal_params(bytes: &[u8]) -> Vec<Fx> {
    doin_codec::decode_exact::<doin_main_core::SignedReveal>(bytes)
        .map(|r| r.body.params)
        .unwrap_or_default()
}

/// Random local search around the domain's best parameters; returns a candidate that beats
/// the best by more than the tolerance.
fn search(ev: &DomainEvaluator, d: &DomainState, tries: usize) -> Option<(Vec<Fx>, Fx)> {
    let mut rng = rand::thread_rng();
    let start: Vec<Fx> = if d.best_params.len() == d.spec.dim as usize {
        d.best_params.clone()
    } else {
        (0..d.spec.dim)
            .map(|_| Fx(rng.gen_range(-3 * Fx::ONE.0..=3 * Fx::ONE.0)))
            .collect()
    };
    let mut best: Option<(Vec<Fx>, Fx)> = None;
    for _ in 0..tries {
        // Step sizes from 1 down to 0.0001, so the search keeps improving near an optimum.
        let step = Fx::ONE.0 / 10i64.pow(rng.gen_range(0..5));
        let cand: Vec<Fx> = start
            .iter()
            .map(|x| {
                let v = x.0.saturating_add(rng.gen_range(-step..=step));
                Fx(v.clamp(-PARAM_BOUND.0, PARAM_BOUND.0))
            })
            .collect();
        let Ok(m) = ev.evaluate(d, &cand) else {
            continue;
        };
        let better_than_best = best
            .as_ref()
            .map(|(_, b)| d.spec.gain(*b, m).is_some_and(|g| g > Fx::ZERO))
            .unwrap_or(true);
        if better_than_best {
            best = Some((cand, m));
        }
    }
    let (p, m) = best?;
    let gain = d.spec.gain(d.best, m)?;
    (gain > d.spec.tolerance).then_some((p, m))
}

/// Signs and submits the commit; returns its id, the reveal to send later and the optimae id.
fn claim(
    chain: &MainChain,
    key: &KeyPair,
    d: &DomainState,
    params: Vec<Fx>,
    metric: Fx,
) -> Result<(Hash256, Vec<u8>, OptimaeId), String> {
    let salt: [u8; 32] = rand::thread_rng().gen();
    let chain_id = chain.params().chain_id;
    let c =
        commitment(&d.spec.id, &key.public(), &params, metric, &salt).map_err(|e| e.to_string())?;
    let commit = Signed::sign(
        Commit {
            chain_id,
            domain: d.spec.id.clone(),
            optimizer: key.public(),
            commitment: c,
        },
        key,
    )
    .map_err(|e| e.to_string())?;
    let commit_bytes = encode(&commit).map_err(|e| e.to_string())?;
    let submitted = chain
        .submit(PoolKind::Commit, &commit_bytes)
        .map_err(|e| e.to_string())?;
    let reveal = Signed::sign(
        Reveal {
            chain_id,
            commit_id: submitted.id,
            domain: d.spec.id.clone(),
            optimizer: key.public(),
            params,
            reported_metric: metric,
            salt,
        },
        key,
    )
    .map_err(|e| e.to_string())?;
    let optimae = reveal.body.optimae_id().map_err(|e| e.to_string())?;
    let reveal_bytes = encode(&reveal).map_err(|e| e.to_string())?;
    Ok((submitted.id, reveal_bytes, optimae))
}
