//! Messages waiting for a block: domain registrations, commits, reveals and votes.
//!
//! The pool only holds messages that were valid against the tip when they arrived; the block
//! builder re-checks everything, and after each block `retain_valid` drops what the new state
//! has made useless (included, expired, superseded round).

use doin_main_core::quorum;
use doin_main_core::{
    MainState, OptimaeId, SignedCommit, SignedRegister, SignedReveal, SignedVote, Verdict,
};
use doin_types::{Hash256, PublicKeyBytes};
use std::collections::BTreeMap;

use crate::store::{pool_key, PoolKind};

#[derive(Default)]
pub struct Pool {
    pub registrations: BTreeMap<Hash256, SignedRegister>,
    pub commits: BTreeMap<Hash256, SignedCommit>,
    pub reveals: BTreeMap<Hash256, SignedReveal>,
    /// (optimae, round) → evaluator → (vote id, vote)
    pub votes: BTreeMap<(OptimaeId, u8), BTreeMap<PublicKeyBytes, (Hash256, SignedVote)>>,
}

impl Pool {
    pub fn len(&self) -> usize {
        self.registrations.len()
            + self.commits.len()
            + self.reveals.len()
            + self.votes.values().map(|v| v.len()).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, kind: PoolKind, id: &Hash256) -> bool {
        match kind {
            PoolKind::Register => self.registrations.contains_key(id),
            PoolKind::Commit => self.commits.contains_key(id),
            PoolKind::Reveal => self.reveals.contains_key(id),
            PoolKind::Vote => self
                .votes
                .values()
                .any(|m| m.values().any(|(vid, _)| vid == id)),
        }
    }

    pub fn votes_for(&self, id: &OptimaeId, round: u8) -> usize {
        self.votes.get(&(*id, round)).map(|m| m.len()).unwrap_or(0)
    }

    /// The verdicts that can go into the block at `next_height`: for each optimae whose quorum
    /// is known, the votes of its current round — once every selected evaluator voted, or once
    /// enough for a decision arrived and `patience` blocks passed since the round started.
    pub fn verdicts(
        &self,
        state: &MainState,
        tip_hash: &Hash256,
        next_height: u64,
        patience: u64,
    ) -> Vec<Verdict> {
        let mut out = Vec::new();
        for (id, p) in &state.pending {
            if p.round_started >= next_height {
                continue;
            }
            let seed = p.quorum_seed.unwrap_or(*tip_hash);
            let eligible = state.eligible(&p.domain);
            let q = quorum::select(&eligible, &seed, id, p.round);
            let Some(votes) = self.votes.get(&(*id, p.round)) else {
                continue;
            };
            let in_quorum: Vec<SignedVote> = q
                .iter()
                .filter_map(|k| votes.get(k).map(|(_, v)| v.clone()))
                .collect();
            let waited = next_height.saturating_sub(p.round_started) > patience;
            if in_quorum.len() == q.len()
                || (in_quorum.len() >= quorum::min_votes(q.len()) && waited)
            {
                out.push(Verdict {
                    optimae_id: *id,
                    round: p.round,
                    votes: in_quorum,
                });
            }
        }
        out
    }

    /// Drops what `state` (after a new block) made useless; returns the store keys to delete.
    pub fn retain_valid(&mut self, state: &MainState) -> Vec<Vec<u8>> {
        let mut gone = Vec::new();
        self.registrations.retain(|id, r| {
            let keep = !state.domains.contains_key(&r.body.spec.id);
            if !keep {
                gone.push(pool_key(PoolKind::Register, id));
            }
            keep
        });
        self.commits.retain(|id, _| {
            // On chain now (or expired from it, which also means it was included once).
            let keep = !state.commits.contains_key(id);
            if !keep {
                gone.push(pool_key(PoolKind::Commit, id));
            }
            keep
        });
        self.reveals.retain(|id, r| {
            let keep = state.commits.contains_key(&r.body.commit_id);
            if !keep {
                gone.push(pool_key(PoolKind::Reveal, id));
            }
            keep
        });
        self.votes.retain(|(optimae, round), m| {
            let keep = state
                .pending
                .get(optimae)
                .is_some_and(|p| p.round == *round);
            if !keep {
                for (vid, _) in m.values() {
                    gone.push(pool_key(PoolKind::Vote, vid));
                }
            }
            keep
        });
        gone
    }
}
