//! `Msat`: milli-units of a base unit, the unit channels and the hub count in, with checked
//! arithmetic only.

use crate::Amount;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Milli-units per base unit.
pub const MSAT_PER_BASE_UNIT: u64 = 1_000;

/// An amount of milli-units. Like [`Amount`] there is no `Add`/`Sub`: every operation is
/// `checked_*`, and an overflow or a shortfall is an error the caller handles, never a
/// saturation. Encoded exactly as its `u64` (binary and JSON).
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Msat(u64);

/// Why milli-unit arithmetic failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MsatError {
    #[error("milli-unit amount overflows 64 bits")]
    Overflow,
    #[error("milli-unit amount short by {short} msat")]
    Shortfall { short: u64 },
}

impl Msat {
    pub const ZERO: Msat = Msat(0);

    pub const fn new(msat: u64) -> Msat {
        Msat(msat)
    }

    pub const fn get(self) -> u64 {
        self.0
    }

    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// `amount` in milli-units.
    pub fn from_amount(amount: Amount) -> Result<Msat, MsatError> {
        amount
            .base_units()
            .checked_mul(MSAT_PER_BASE_UNIT)
            .map(Msat)
            .ok_or(MsatError::Overflow)
    }

    pub fn checked_add(self, other: Msat) -> Result<Msat, MsatError> {
        self.0
            .checked_add(other.0)
            .map(Msat)
            .ok_or(MsatError::Overflow)
    }

    /// `self - other`; a shortfall says by how much.
    pub fn checked_sub(self, other: Msat) -> Result<Msat, MsatError> {
        self.0
            .checked_sub(other.0)
            .map(Msat)
            .ok_or_else(|| MsatError::Shortfall {
                short: other.0.saturating_sub(self.0),
            })
    }

    pub fn checked_mul(self, factor: u64) -> Result<Msat, MsatError> {
        self.0
            .checked_mul(factor)
            .map(Msat)
            .ok_or(MsatError::Overflow)
    }

    /// The sum of `amounts`, checked.
    pub fn sum(amounts: impl IntoIterator<Item = Msat>) -> Result<Msat, MsatError> {
        amounts
            .into_iter()
            .try_fold(Msat::ZERO, |acc, m| acc.checked_add(m))
    }
}

impl fmt::Display for Msat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<Msat> for u64 {
    fn from(m: Msat) -> u64 {
        m.0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn arithmetic_is_checked_and_says_what_is_short() {
        let a = Msat::new(5);
        assert_eq!(a.checked_add(Msat::new(7)).unwrap(), Msat::new(12));
        assert_eq!(
            a.checked_sub(Msat::new(8)),
            Err(MsatError::Shortfall { short: 3 })
        );
        assert_eq!(a.checked_sub(Msat::new(5)), Ok(Msat::ZERO));
        assert_eq!(Msat::new(9).checked_sub(a), Ok(Msat::new(4)));
        assert_eq!(
            Msat::new(u64::MAX).checked_add(Msat::new(1)),
            Err(MsatError::Overflow)
        );
        assert_eq!(
            Msat::from_amount(Amount::from_base_units(3)).unwrap(),
            Msat::new(3_000)
        );
        assert_eq!(Msat::from_amount(Amount::MAX), Err(MsatError::Overflow));
        assert_eq!(
            Msat::sum([Msat::new(1), Msat::new(2)]).unwrap(),
            Msat::new(3)
        );
        assert_eq!(
            Msat::sum([Msat::new(u64::MAX), Msat::new(1)]),
            Err(MsatError::Overflow)
        );
    }

    #[test]
    fn encodes_as_its_number() {
        assert_eq!(serde_json::to_string(&Msat::new(42)).unwrap(), "42");
        assert_eq!(serde_json::from_str::<Msat>("42").unwrap(), Msat::new(42));
    }
}
