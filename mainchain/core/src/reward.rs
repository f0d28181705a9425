//! Rewards, reputation and counted work: the economic rules of docs/mainchain.md, in
//! integers.

use crate::fixed::Fx;
use doin_types::{Amount, PublicKeyBytes};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Block subsidy at `height`: `initial >> (height / halving_interval)`.
pub fn subsidy(initial: Amount, halving_interval: u64, height: u64) -> Amount {
    let halvings = height / halving_interval.max(1);
    if halvings >= 64 {
        return Amount::ZERO;
    }
    Amount::from_base_units(initial.base_units() >> halvings)
}

/// Who a payout is for.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Optimizer,
    Evaluator,
    Producer,
}

/// One coinbase output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payout {
    pub role: Role,
    pub key: PublicKeyBytes,
    pub amount: Amount,
}

/// Splits `subsidy`: 65 % to optimizers pro rata `work`, 30 % to evaluators pro rata agreeing
/// votes, the rest (5 % plus every integer remainder, and any share nobody earned) to the
/// producer. Outputs are ordered optimizers, evaluators (each by key), producer; zero outputs
/// are omitted.
pub fn coinbase(
    subsidy: Amount,
    producer: PublicKeyBytes,
    work: &BTreeMap<PublicKeyBytes, u128>,
    agreeing_votes: &BTreeMap<PublicKeyBytes, u128>,
) -> Vec<Payout> {
    let total = subsidy.base_units() as u128;
    let optimizer_pool = total * 65 / 100;
    let evaluator_pool = total * 30 / 100;
    let mut out = Vec::new();
    let mut paid: u128 = 0;
    for (role, pool, weights) in [
        (Role::Optimizer, optimizer_pool, work),
        (Role::Evaluator, evaluator_pool, agreeing_votes),
    ] {
        let sum: u128 = weights.values().sum();
        if sum == 0 {
            continue;
        }
        for (key, w) in weights {
            // pool × w / sum ≤ pool < 2^64, so the cast is exact.
            let amount = (pool * w / sum) as u64;
            if amount > 0 {
                paid += amount as u128;
                out.push(Payout {
                    role,
                    key: *key,
                    amount: Amount::from_base_units(amount),
                });
            }
        }
    }
    let rest = (total - paid) as u64;
    if rest > 0 {
        out.push(Payout {
            role: Role::Producer,
            key: producer,
            amount: Amount::from_base_units(rest),
        });
    }
    out
}

/// A reputation value and the height it was last written at; it decays with a half-life in
/// blocks, so the stored value is only meaningful together with its height.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reputation {
    pub value: Fx,
    pub at: u64,
}

impl Reputation {
    /// The value decayed to `height`.
    pub fn at_height(&self, height: u64, half_life: u64) -> Fx {
        self.value
            .halve_by(height.saturating_sub(self.at), half_life)
    }

    /// Decays to `height` and adds `delta`.
    pub fn updated(&self, height: u64, half_life: u64, delta: Fx) -> Reputation {
        Reputation {
            value: self
                .at_height(height, half_life)
                .checked_add(delta)
                .unwrap_or(self.value),
            at: height,
        }
    }
}

pub const OPTIMIZER_ACCEPTED: Fx = Fx::from_int(1);
pub const OPTIMIZER_REJECTED: Fx = Fx::from_int(-3);
pub const EVALUATOR_AGREED: Fx = Fx::ratio(4, 10);
pub const EVALUATOR_DISAGREED: Fx = Fx::from_int(-2);

/// `min(1, ln(1 + r) / ln 11)`, and 0 for r ≤ 0: an optimizer with no track record earns no
/// counted work (but gains reputation when accepted), which makes fresh identities worthless.
pub fn reputation_factor(r: Fx) -> Fx {
    if r <= Fx::ZERO {
        return Fx::ZERO;
    }
    let num = Fx::ONE.checked_add(r).and_then(Fx::ln);
    let den = Fx::from_int(11).ln();
    match (num, den) {
        (Some(n), Some(d)) => n.checked_div(d).unwrap_or(Fx::ONE).min(Fx::ONE),
        _ => Fx::ONE,
    }
}

/// Reward fraction from the claimed and verified improvements (both relative to the domain's
/// best, positive = better): 1.0 when verified equals claimed, linear down to 0.3 at 10 %
/// short, 0 beyond; when verified is better, the ratio itself, up to 1.2.
pub fn reward_fraction(claimed: Fx, verified: Fx) -> Fx {
    if verified <= Fx::ZERO {
        return Fx::ZERO;
    }
    if claimed <= Fx::ZERO {
        // Claimed no gain but delivered one: the best case.
        return Fx::ratio(12, 10);
    }
    let Some(q) = verified.checked_div(claimed) else {
        return Fx::ZERO;
    };
    if q >= Fx::ONE {
        return q.min(Fx::ratio(12, 10));
    }
    let floor = Fx::ratio(9, 10);
    if q < floor {
        return Fx::ZERO;
    }
    // 0.3 + 0.7 × (q − 0.9) / 0.1 = 0.3 + 7 × (q − 0.9)
    let over = Fx(q.0 - floor.0);
    Fx(Fx::ratio(3, 10).0 + 7 * over.0)
}

/// Counted work of an accepted optimae:
/// `gain / scale × weight × reputation factor × reward fraction` (0 if anything overflows,
/// which only an absurd domain spec could cause).
pub fn counted_work(gain: Fx, scale: Fx, weight: Fx, rep_factor: Fx, fraction: Fx) -> Fx {
    if gain <= Fx::ZERO {
        return Fx::ZERO;
    }
    gain.checked_div(scale)
        .and_then(|w| w.checked_mul(weight))
        .and_then(|w| w.checked_mul(rep_factor))
        .and_then(|w| w.checked_mul(fraction))
        .unwrap_or(Fx::ZERO)
        .max(Fx::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> PublicKeyBytes {
        PublicKeyBytes([b; 32])
    }

    #[test]
    fn subsidy_halves() {
        let s = Amount::from_base_units(5_000_000_000);
        assert_eq!(subsidy(s, 210_000, 0), s);
        assert_eq!(subsidy(s, 210_000, 209_999), s);
        assert_eq!(subsidy(s, 210_000, 210_000).base_units(), 2_500_000_000);
        assert_eq!(subsidy(s, 210_000, 64 * 210_000), Amount::ZERO);
    }

    #[test]
    fn split_is_exact_with_remainders_to_the_producer() {
        // 1001 units: optimizers 650 (of 650.65), evaluators 300 (of 300.3).
        let work = BTreeMap::from([(key(1), 1u128), (key(2), 2)]);
        let votes = BTreeMap::from([(key(3), 1u128), (key(4), 1), (key(5), 1)]);
        let cb = coinbase(Amount::from_base_units(1001), key(9), &work, &votes);
        let amounts: Vec<(Role, u8, u64)> = cb
            .iter()
            .map(|p| (p.role, p.key.0[0], p.amount.base_units()))
            .collect();
        // 650 × 1/3 = 216, 650 × 2/3 = 433; 300 / 3 = 100 each; producer 1001 - 949 = 52.
        assert_eq!(
            amounts,
            vec![
                (Role::Optimizer, 1, 216),
                (Role::Optimizer, 2, 433),
                (Role::Evaluator, 3, 100),
                (Role::Evaluator, 4, 100),
                (Role::Evaluator, 5, 100),
                (Role::Producer, 9, 52),
            ]
        );
        let total: u64 = cb.iter().map(|p| p.amount.base_units()).sum();
        assert_eq!(total, 1001);
        // Nobody to pay: everything to the producer.
        let cb = coinbase(
            Amount::from_base_units(10),
            key(9),
            &BTreeMap::new(),
            &BTreeMap::new(),
        );
        assert_eq!(cb.len(), 1);
        assert_eq!(cb[0].amount.base_units(), 10);
    }

    #[test]
    fn reputation_factor_saturates_at_ten() {
        assert_eq!(reputation_factor(Fx::ZERO), Fx::ZERO);
        assert_eq!(reputation_factor(Fx::from_int(-3)), Fx::ZERO);
        assert_eq!(reputation_factor(Fx::from_int(10)), Fx::ONE);
        assert_eq!(reputation_factor(Fx::from_int(50)), Fx::ONE);
        // ln 2 / ln 11 = 0.28906...
        let f = reputation_factor(Fx::ONE);
        assert!(f > Fx::ratio(289, 1000) && f < Fx::ratio(290, 1000), "{f}");
    }

    #[test]
    fn reward_fraction_curve() {
        let c = Fx::from_int(10);
        assert_eq!(reward_fraction(c, c), Fx::ONE);
        assert_eq!(reward_fraction(c, Fx::from_int(9)), Fx::ratio(3, 10));
        assert_eq!(reward_fraction(c, Fx::ratio(95, 10)), Fx::ratio(65, 100));
        assert_eq!(reward_fraction(c, Fx::ratio(89, 10)), Fx::ZERO);
        assert_eq!(reward_fraction(c, Fx::from_int(11)), Fx::ratio(11, 10));
        assert_eq!(reward_fraction(c, Fx::from_int(50)), Fx::ratio(12, 10));
        assert_eq!(reward_fraction(c, Fx::ZERO), Fx::ZERO);
    }

    #[test]
    fn reputation_decays_by_half_life() {
        let r = Reputation {
            value: Fx::from_int(4),
            at: 10,
        };
        assert_eq!(r.at_height(10 + 1008, 1008), Fx::from_int(2));
        let u = r.updated(10 + 2016, 1008, Fx::ONE);
        assert_eq!(u.value, Fx::from_int(2));
        assert_eq!(u.at, 2026);
    }
}
