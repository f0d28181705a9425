//! The rule for each message a main block carries: domain registrations, commits, reveals and
//! verdicts. Each function checks one item against the state being built and applies it, or
//! says which rule it breaks; `apply` decides what an invalid item means (a rejected block when
//! importing, a skipped item when building).

use crate::apply::OptimaeEvent;
use crate::block::Verdict;
use crate::error::ItemError;
use crate::fixed::Fx;
use crate::msg::{OptimaeId, SignedCommit, SignedRegister, SignedReveal};
use crate::params::MainChainParams;
use crate::quorum::{self, Decision, MIN_QUORUM};
use crate::reward;
use crate::state::{CommitRecord, DomainState, MainState, PendingOptimae};
use crate::DomainId;
use doin_types::PublicKeyBytes;
use std::collections::BTreeSet;

pub(crate) fn register(
    s: &mut MainState,
    params: &MainChainParams,
    r: &SignedRegister,
    h: u64,
) -> Result<OptimaeEvent, ItemError> {
    r.verify(&params.chain_id)?;
    let spec = &r.body.spec;
    spec.validate()?;
    if s.domains.contains_key(&spec.id) {
        return Err(ItemError::DomainExists(spec.id.to_string()));
    }
    s.domains.insert(
        spec.id.clone(),
        DomainState::new(&params.chain_id, spec.clone(), h),
    );
    Ok(OptimaeEvent::Registered {
        domain: spec.id.clone(),
        sponsor: r.body.sponsor,
    })
}

pub(crate) fn commit(
    s: &mut MainState,
    params: &MainChainParams,
    c: &SignedCommit,
    h: u64,
) -> Result<OptimaeEvent, ItemError> {
    let id = c.verify(&params.chain_id)?;
    if !s.domains.contains_key(&c.body.domain) {
        return Err(ItemError::UnknownDomain(c.body.domain.to_string()));
    }
    if let Some(staked) = &s.optimizers {
        if !staked.contains(&c.body.optimizer) {
            return Err(ItemError::OptimizerNotStaked(c.body.optimizer.to_string()));
        }
    }
    if s.commits.contains_key(&id) {
        return Err(ItemError::DuplicateCommit);
    }
    s.commits.insert(
        id,
        CommitRecord {
            height: h,
            domain: c.body.domain.clone(),
            optimizer: c.body.optimizer,
            commitment: c.body.commitment,
        },
    );
    Ok(OptimaeEvent::Committed {
        commit_id: id,
        domain: c.body.domain.clone(),
        optimizer: c.body.optimizer,
    })
}

pub(crate) fn reveal(
    s: &mut MainState,
    params: &MainChainParams,
    r: &SignedReveal,
    h: u64,
) -> Result<OptimaeEvent, ItemError> {
    r.verify(&params.chain_id)?;
    let body = &r.body;
    let cm = s
        .commits
        .get(&body.commit_id)
        .ok_or(ItemError::RevealWithoutCommit)?;
    let window = params.consensus.reveal_window;
    if cm.height >= h {
        return Err(ItemError::RevealTooEarly { window });
    }
    let late = h - cm.height;
    if late > window {
        return Err(ItemError::RevealTooLate { late, window });
    }
    if cm.domain != body.domain
        || cm.optimizer != body.optimizer
        || body.commitment()? != cm.commitment
    {
        return Err(ItemError::RevealMismatch);
    }
    let domain = s
        .domains
        .get(&body.domain)
        .ok_or_else(|| ItemError::UnknownDomain(body.domain.to_string()))?;
    domain.spec.check_params(&body.params)?;
    let eligible = s.eligible(&body.domain).len();
    if eligible < MIN_QUORUM {
        return Err(ItemError::TooFewEvaluators { eligible });
    }
    let optimae_id = body.optimae_id()?;
    if s.pending.contains_key(&optimae_id) {
        return Err(ItemError::AlreadyPending);
    }
    s.commits.remove(&body.commit_id);
    s.pending.insert(
        optimae_id,
        PendingOptimae {
            domain: body.domain.clone(),
            optimizer: body.optimizer,
            params: body.params.clone(),
            reported: body.reported_metric,
            revealed_at: h,
            quorum_seed: None,
            round: 1,
            round_started: h,
        },
    );
    Ok(OptimaeEvent::Revealed {
        optimae_id,
        commit_id: body.commit_id,
        domain: body.domain.clone(),
        optimizer: body.optimizer,
        reported: body.reported_metric,
    })
}

pub(crate) struct VerdictResult {
    pub event: OptimaeEvent,
    /// (domain, optimizer, counted work before the cap) for an accepted optimae.
    pub work: Option<(DomainId, PublicKeyBytes, Fx)>,
    /// Evaluators whose vote agreed with a decisive median (they share the evaluator reward).
    pub agreeing: Vec<PublicKeyBytes>,
}

pub(crate) fn verdict(
    s: &mut MainState,
    before: &MainState,
    params: &MainChainParams,
    v: &Verdict,
    h: u64,
    seen: &mut BTreeSet<OptimaeId>,
) -> Result<VerdictResult, ItemError> {
    let c = &params.consensus;
    if !seen.insert(v.optimae_id) {
        return Err(ItemError::DuplicateVerdict);
    }
    let p = s
        .pending
        .get(&v.optimae_id)
        .cloned()
        .ok_or(ItemError::UnknownOptimae)?;
    let seed = p.quorum_seed.ok_or(ItemError::VerdictTooEarly)?;
    if p.round_started >= h {
        return Err(ItemError::VerdictTooEarly);
    }
    if v.round != p.round {
        return Err(ItemError::WrongRound {
            expected: p.round,
            got: v.round,
        });
    }
    let eligible = s.eligible(&p.domain);
    let quorum = quorum::select(&eligible, &seed, &v.optimae_id, v.round);
    let k = quorum.len();
    let mut voters = BTreeSet::new();
    let mut votes = Vec::with_capacity(v.votes.len());
    for (index, sv) in v.votes.iter().enumerate() {
        sv.verify(&params.chain_id)
            .map_err(|error| ItemError::BadVote { index, error })?;
        if sv.body.optimae_id != v.optimae_id || sv.body.round != v.round {
            return Err(ItemError::VoteMismatch { index });
        }
        if !quorum.contains(&sv.body.evaluator) {
            return Err(ItemError::VoterNotSelected { index });
        }
        if !voters.insert(sv.body.evaluator) {
            return Err(ItemError::DuplicateVote { index });
        }
        votes.push((sv.body.evaluator, sv.body.metric));
    }
    let min = quorum::min_votes(k);
    if votes.len() < min || votes.len() > k {
        return Err(ItemError::VoteCount {
            got: votes.len(),
            min,
            quorum: k,
        });
    }
    let domain = s
        .domains
        .get(&p.domain)
        .cloned()
        .ok_or_else(|| ItemError::UnknownDomain(p.domain.to_string()))?;
    let t = quorum::tally(&votes, k, p.reported, domain.spec.tolerance);
    let detail: Vec<(PublicKeyBytes, Fx, bool)> = votes
        .iter()
        .zip(&t.agreement)
        .map(|((k, m), (_, a))| (*k, *m, *a))
        .collect();
    let half_life = c.reputation_half_life;
    let mut adjust = |s: &mut MainState, key: PublicKeyBytes, delta: Fx| {
        let r = s.reputation.get(&key).copied().unwrap_or_default();
        s.reputation.insert(key, r.updated(h, half_life, delta));
    };
    let rate_evaluators =
        |s: &mut MainState, adjust: &mut dyn FnMut(&mut MainState, PublicKeyBytes, Fx)| {
            for (key, agreed) in &t.agreement {
                let delta = if *agreed {
                    reward::EVALUATOR_AGREED
                } else {
                    reward::EVALUATOR_DISAGREED
                };
                adjust(s, *key, delta);
            }
        };
    let agreeing: Vec<PublicKeyBytes> = t
        .agreement
        .iter()
        .filter(|(_, a)| *a)
        .map(|(k, _)| *k)
        .collect();
    match t.decision {
        Decision::Accepted { verified } => {
            s.pending.remove(&v.optimae_id);
            rate_evaluators(s, &mut adjust);
            let gain = domain.spec.gain(domain.best, verified).unwrap_or(Fx::ZERO);
            let claimed = domain
                .spec
                .gain(domain.best, p.reported)
                .unwrap_or(Fx::ZERO);
            let mut work = Fx::ZERO;
            let new_best = gain > Fx::ZERO;
            if new_best {
                let rep = before.reputation_at(&p.optimizer, h, half_life);
                work = reward::counted_work(
                    gain,
                    domain.spec.scale,
                    domain.spec.weight,
                    reward::reputation_factor(rep),
                    reward::reward_fraction(claimed, gain),
                );
                adjust(s, p.optimizer, reward::OPTIMIZER_ACCEPTED);
            }
            if let Some(d) = s.domains.get_mut(&p.domain) {
                d.accepted += 1;
                if new_best {
                    d.best = verified;
                    d.best_optimae = Some(v.optimae_id);
                    d.best_params = p.params.clone();
                }
            }
            Ok(VerdictResult {
                event: OptimaeEvent::Accepted {
                    optimae_id: v.optimae_id,
                    domain: p.domain.clone(),
                    optimizer: p.optimizer,
                    round: v.round,
                    verified,
                    work,
                    new_best,
                    votes: detail,
                },
                work: Some((p.domain, p.optimizer, work)),
                agreeing,
            })
        }
        Decision::Rejected { verified } => {
            s.pending.remove(&v.optimae_id);
            rate_evaluators(s, &mut adjust);
            adjust(s, p.optimizer, reward::OPTIMIZER_REJECTED);
            if let Some(d) = s.domains.get_mut(&p.domain) {
                d.rejected += 1;
            }
            Ok(VerdictResult {
                event: OptimaeEvent::Rejected {
                    optimae_id: v.optimae_id,
                    domain: p.domain,
                    optimizer: p.optimizer,
                    round: v.round,
                    verified,
                    votes: detail,
                },
                work: None,
                agreeing,
            })
        }
        Decision::Disagreement if v.round == 1 => {
            if let Some(pp) = s.pending.get_mut(&v.optimae_id) {
                pp.round = 2;
                pp.round_started = h;
            }
            Ok(VerdictResult {
                event: OptimaeEvent::Escalated {
                    optimae_id: v.optimae_id,
                    votes: detail,
                },
                work: None,
                agreeing: Vec::new(),
            })
        }
        Decision::Disagreement => {
            s.pending.remove(&v.optimae_id);
            Ok(VerdictResult {
                event: OptimaeEvent::Inconclusive {
                    optimae_id: v.optimae_id,
                    votes: detail,
                },
                work: None,
                agreeing: Vec::new(),
            })
        }
    }
}
