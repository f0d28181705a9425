//! The EIP-1559 fee market, as pure functions.
//!
//! The base fee per weight unit is a header field. It moves toward the target weight (half the
//! block limit) by at most 1/8 per block and never drops below `min_base_fee`. A transaction pays
//! `base_fee × weight` (burned) plus `tip × weight` (to the proposer), where the tip is
//! `min(max_priority_fee_per_weight, max_fee_per_weight − base_fee)`.

use crate::params::ConsensusParams;
use doin_types::{Amount, AmountError};

/// Base fee of the child of a block with `parent_base_fee` and `parent_weight_used`.
pub fn next_base_fee(
    params: &ConsensusParams,
    parent_base_fee: Amount,
    parent_weight_used: u64,
) -> Amount {
    let target = u128::from(params.target_weight());
    let base = u128::from(parent_base_fee.base_units());
    let used = u128::from(parent_weight_used);
    let next = if used > target {
        // At least +1 so a fee stuck at a tiny value can still rise.
        let delta = (base * (used - target) / target / 8).max(1);
        base.saturating_add(delta)
    } else {
        let delta = base * (target - used) / target / 8;
        base - delta
    };
    let next = u64::try_from(next).unwrap_or(u64::MAX);
    Amount::from_base_units(next).max(params.min_base_fee)
}

/// How a transaction's fee splits at a given base fee.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeeSplit {
    /// `base_fee × weight`, destroyed.
    pub burned: Amount,
    /// `effective_tip × weight`, paid to the proposer.
    pub tip: Amount,
}

impl FeeSplit {
    pub fn total(&self) -> Result<Amount, AmountError> {
        self.burned.checked_add(self.tip)
    }
}

/// The tip per weight a transaction pays at `base_fee` (caller has checked `max_fee ≥ base_fee`).
pub fn effective_tip_per_weight(max_fee: Amount, max_priority: Amount, base_fee: Amount) -> Amount {
    let headroom = max_fee.checked_sub(base_fee).unwrap_or(Amount::ZERO);
    max_priority.min(headroom)
}

/// Fee split for a transaction of `weight` at `base_fee`.
pub fn fee_split(
    max_fee: Amount,
    max_priority: Amount,
    base_fee: Amount,
    weight: u64,
) -> Result<FeeSplit, AmountError> {
    let tip = effective_tip_per_weight(max_fee, max_priority, base_fee);
    Ok(FeeSplit {
        burned: base_fee.checked_mul(weight)?,
        tip: tip.checked_mul(weight)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> ConsensusParams {
        ConsensusParams {
            block_weight_limit: 1000,
            ..ConsensusParams::public_defaults()
        }
    }

    fn a(n: u64) -> Amount {
        Amount::from_base_units(n)
    }

    #[test]
    fn moves_at_most_one_eighth_toward_target() {
        let p = params();
        assert_eq!(next_base_fee(&p, a(800), 500), a(800));
        assert_eq!(next_base_fee(&p, a(800), 1000), a(900));
        assert_eq!(next_base_fee(&p, a(800), 0), a(700));
        assert_eq!(next_base_fee(&p, a(800), 750), a(850));
    }

    #[test]
    fn never_below_floor_and_rises_from_floor() {
        let p = params();
        assert_eq!(next_base_fee(&p, a(10), 0), a(10));
        assert_eq!(next_base_fee(&p, a(10), 501), a(11));
        assert_eq!(next_base_fee(&p, a(u64::MAX), 1000), a(u64::MAX));
    }

    #[test]
    fn split_and_tip() {
        assert_eq!(effective_tip_per_weight(a(20), a(5), a(10)), a(5));
        assert_eq!(effective_tip_per_weight(a(12), a(5), a(10)), a(2));
        let s = fee_split(a(20), a(5), a(10), 100).unwrap();
        assert_eq!(s.burned, a(1000));
        assert_eq!(s.tip, a(500));
        assert!(fee_split(a(u64::MAX), a(0), a(u64::MAX), 2).is_err());
    }
}
