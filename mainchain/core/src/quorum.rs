//! Evaluator selection and the verdict on a set of votes (layered verification).
//!
//! Selection ranks every eligible evaluator by `H("doin/quorum", seed ‖ optimae_id ‖ key)`
//! where the seed is the hash of the block that carried the reveal: unknown when the optimizer
//! committed, identical on every node afterwards. Round 1 takes the first
//! `K = clamp(max(3, ⌈√N⌉), 3, 15)`; if round 1 ends in disagreement, round 2 takes the first
//! `min(N, 2K + 1)` (a larger, overlapping quorum).

use crate::fixed::Fx;
use crate::msg::OptimaeId;
use doin_crypto::TaggedHasher;
use doin_types::{Hash256, PublicKeyBytes};

pub const TAG_QUORUM: &str = "doin/quorum";
/// The smallest quorum there can be; domains with fewer eligible evaluators accept no reveals.
pub const MIN_QUORUM: usize = 3;

/// Round-1 quorum size for `n` eligible evaluators (before capping at `n`).
pub fn first_quorum_size(n: usize) -> usize {
    let mut root = 0usize;
    while root * root < n {
        root += 1;
    }
    root.max(3).clamp(3, 15)
}

/// Quorum size of `round` (1 or 2) for `n` eligible evaluators.
pub fn quorum_size(n: usize, round: u8) -> usize {
    let k = first_quorum_size(n);
    let k = if round >= 2 { 2 * k + 1 } else { k };
    k.min(n)
}

/// The evaluators of `round`, best-ranked first. `eligible` may be in any order.
pub fn select(
    eligible: &[PublicKeyBytes],
    seed: &Hash256,
    optimae: &OptimaeId,
    round: u8,
) -> Vec<PublicKeyBytes> {
    let mut ranked: Vec<(Hash256, PublicKeyBytes)> = eligible
        .iter()
        .map(|k| {
            let mut h = TaggedHasher::new(TAG_QUORUM);
            h.update(&seed.0).update(&optimae.0).update(&k.0);
            (h.finalize(), *k)
        })
        .collect();
    ranked.sort();
    ranked.dedup_by(|a, b| a.1 == b.1);
    ranked
        .into_iter()
        .take(quorum_size(eligible.len(), round))
        .map(|(_, k)| k)
        .collect()
}

/// What a round of votes decides.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum Decision {
    /// ≥ 2/3 of the quorum agree and the claim is within tolerance of their median.
    Accepted { verified: Fx },
    /// ≥ 2/3 of the quorum agree, and the claim is not within tolerance of their median.
    Rejected { verified: Fx },
    /// Fewer than 2/3 of the quorum agree: round 1 escalates to round 2; round 2 ends here.
    Disagreement,
}

/// The outcome of a round together with each voter's agreement with the median.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tally {
    pub decision: Decision,
    pub median: Fx,
    /// `(evaluator, agreed)` in vote order.
    pub agreement: Vec<(PublicKeyBytes, bool)>,
}

/// Decides a round from `votes` (evaluator, metric) by a quorum of `quorum_size`.
/// The median of an even number of votes is the lower middle one (no averaging: exact).
pub fn tally(
    votes: &[(PublicKeyBytes, Fx)],
    quorum_size: usize,
    reported: Fx,
    tolerance: Fx,
) -> Tally {
    let mut metrics: Vec<Fx> = votes.iter().map(|(_, m)| *m).collect();
    metrics.sort();
    let median = metrics
        .get(metrics.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or(Fx::ZERO);
    let tol = tolerance.0.unsigned_abs();
    let agreement: Vec<(PublicKeyBytes, bool)> = votes
        .iter()
        .map(|(k, m)| (*k, m.abs_diff(median) <= tol))
        .collect();
    let agreeing = agreement.iter().filter(|(_, a)| *a).count();
    let decision = if agreeing * 3 >= quorum_size * 2 && !votes.is_empty() {
        if reported.abs_diff(median) <= tol {
            Decision::Accepted { verified: median }
        } else {
            Decision::Rejected { verified: median }
        }
    } else {
        Decision::Disagreement
    };
    Tally {
        decision,
        median,
        agreement,
    }
}

/// Votes a verdict must carry at least: enough that 2/3 of the quorum could agree.
pub fn min_votes(quorum_size: usize) -> usize {
    (quorum_size * 2).div_ceil(3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_sizes() {
        assert_eq!(first_quorum_size(1), 3);
        assert_eq!(first_quorum_size(9), 3);
        assert_eq!(first_quorum_size(10), 4);
        assert_eq!(first_quorum_size(100), 10);
        assert_eq!(first_quorum_size(1000), 15);
        assert_eq!(quorum_size(4, 1), 3);
        assert_eq!(quorum_size(4, 2), 4);
        assert_eq!(quorum_size(100, 2), 21);
        assert_eq!(min_votes(3), 2);
        assert_eq!(min_votes(15), 10);
    }

    #[test]
    fn selection_is_deterministic_and_seed_dependent() {
        let keys: Vec<PublicKeyBytes> = (0..20u8).map(|i| PublicKeyBytes([i; 32])).collect();
        let o = Hash256([1; 32]);
        let a = select(&keys, &Hash256([2; 32]), &o, 1);
        let mut shuffled = keys.clone();
        shuffled.reverse();
        assert_eq!(a, select(&shuffled, &Hash256([2; 32]), &o, 1));
        assert_eq!(a.len(), 5);
        assert_ne!(a, select(&keys, &Hash256([3; 32]), &o, 1));
        let r2 = select(&keys, &Hash256([2; 32]), &o, 2);
        assert_eq!(r2.len(), 11);
        assert_eq!(&r2[..5], &a[..]);
    }

    #[test]
    fn tally_rules() {
        let k = |b: u8| PublicKeyBytes([b; 32]);
        let tol = Fx(10);
        let agree = [(k(1), Fx(100)), (k(2), Fx(105)), (k(3), Fx(500))];
        let t = tally(&agree, 3, Fx(100), tol);
        assert_eq!(t.decision, Decision::Accepted { verified: Fx(105) });
        assert_eq!(t.agreement[2], (k(3), false));
        let t = tally(&agree, 3, Fx(200), tol);
        assert_eq!(t.decision, Decision::Rejected { verified: Fx(105) });
        let split = [(k(1), Fx(100)), (k(2), Fx(300)), (k(3), Fx(500))];
        assert_eq!(
            tally(&split, 3, Fx(300), tol).decision,
            Decision::Disagreement
        );
        // Two agreeing votes are not 2/3 of a quorum of five.
        assert_eq!(
            tally(&agree[..2], 5, Fx(100), tol).decision,
            Decision::Disagreement
        );
    }
}
