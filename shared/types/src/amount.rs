//! `Amount`: a count of base units (1 DOIN = 10^8 base units) with checked arithmetic only.

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// Base units in one DOIN.
pub const BASE_UNITS_PER_DOIN: u64 = 100_000_000;

/// A non-negative amount of base units. There is deliberately no `Add`/`Sub` impl: every
/// operation is `checked_*` and overflow is an error the caller must handle, never a wrap.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(u64);

/// Errors from parsing or combining amounts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("amount overflows 64-bit base units")]
    Overflow,
    #[error("amount would become negative")]
    Underflow,
    #[error("invalid amount {0:?}: expected a decimal string of base units")]
    InvalidBaseUnits(String),
    #[error(
        "invalid DOIN amount {0:?}: expected a decimal number with at most 8 fractional digits"
    )]
    InvalidDoin(String),
}

impl Amount {
    pub const ZERO: Amount = Amount(0);
    pub const MAX: Amount = Amount(u64::MAX);

    pub const fn from_base_units(units: u64) -> Amount {
        Amount(units)
    }

    pub const fn base_units(self) -> u64 {
        self.0
    }

    /// Whole DOIN, checked.
    pub fn from_doin(doin: u64) -> Result<Amount, AmountError> {
        doin.checked_mul(BASE_UNITS_PER_DOIN)
            .map(Amount)
            .ok_or(AmountError::Overflow)
    }

    pub fn checked_add(self, other: Amount) -> Result<Amount, AmountError> {
        self.0
            .checked_add(other.0)
            .map(Amount)
            .ok_or(AmountError::Overflow)
    }

    pub fn checked_sub(self, other: Amount) -> Result<Amount, AmountError> {
        self.0
            .checked_sub(other.0)
            .map(Amount)
            .ok_or(AmountError::Underflow)
    }

    /// `self * factor`, checked. Used for `fee_per_weight * weight`.
    pub fn checked_mul(self, factor: u64) -> Result<Amount, AmountError> {
        self.0
            .checked_mul(factor)
            .map(Amount)
            .ok_or(AmountError::Overflow)
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// Parses a decimal string of base units (`"150000000"`), the JSON representation.
    pub fn parse_base_units(s: &str) -> Result<Amount, AmountError> {
        if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AmountError::InvalidBaseUnits(s.to_string()));
        }
        s.parse::<u64>()
            .map(Amount)
            .map_err(|_| AmountError::Overflow)
    }

    /// Parses a human DOIN amount such as `"1.5"` or `"0.00000001"` exactly (no floats).
    pub fn parse_doin(s: &str) -> Result<Amount, AmountError> {
        let bad = || AmountError::InvalidDoin(s.to_string());
        let (whole, frac) = match s.split_once('.') {
            Some((w, f)) => (w, f),
            None => (s, ""),
        };
        if whole.is_empty() && frac.is_empty() {
            return Err(bad());
        }
        if !whole.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
            || frac.len() > 8
            || whole.len() > 20
        {
            return Err(bad());
        }
        let whole_units: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| AmountError::Overflow)?
        };
        let mut frac_units: u64 = 0;
        for (i, digit) in frac.bytes().enumerate() {
            let place = 10u64.pow(7 - i as u32);
            frac_units += u64::from(digit - b'0') * place;
        }
        Amount::from_doin(whole_units)?.checked_add(Amount(frac_units))
    }

    /// Formats as DOIN with up to 8 fractional digits, trailing zeros trimmed (`"1.5"`).
    pub fn to_doin_string(self) -> String {
        let whole = self.0 / BASE_UNITS_PER_DOIN;
        let frac = self.0 % BASE_UNITS_PER_DOIN;
        if frac == 0 {
            return whole.to_string();
        }
        let frac = format!("{frac:08}");
        format!("{whole}.{}", frac.trim_end_matches('0'))
    }
}

impl fmt::Display for Amount {
    /// Base units, as in JSON.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for Amount {
    type Err = AmountError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Amount::parse_base_units(s)
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.0.to_string())
        } else {
            s.serialize_u64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            Amount::parse_base_units(&s).map_err(de::Error::custom)
        } else {
            u64::deserialize(d).map(Amount)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_arithmetic_never_wraps() {
        assert_eq!(
            Amount::MAX.checked_add(Amount(1)),
            Err(AmountError::Overflow)
        );
        assert_eq!(
            Amount(1).checked_sub(Amount(2)),
            Err(AmountError::Underflow)
        );
        assert_eq!(
            Amount(u64::MAX / 2 + 1).checked_mul(2),
            Err(AmountError::Overflow)
        );
        assert_eq!(Amount(3).checked_mul(4), Ok(Amount(12)));
    }

    #[test]
    fn parses_doin_exactly() {
        assert_eq!(Amount::parse_doin("1.5"), Ok(Amount(150_000_000)));
        assert_eq!(Amount::parse_doin("0.00000001"), Ok(Amount(1)));
        assert_eq!(Amount::parse_doin(".5"), Ok(Amount(50_000_000)));
        assert_eq!(Amount::parse_doin("7"), Ok(Amount(700_000_000)));
        assert!(Amount::parse_doin("0.000000001").is_err());
        assert!(Amount::parse_doin("-1").is_err());
        assert!(Amount::parse_doin("1e3").is_err());
        assert!(Amount::parse_doin(".").is_err());
        assert!(Amount::parse_doin("").is_err());
        assert_eq!(
            Amount::parse_doin("184467440737.09551616"),
            Err(AmountError::Overflow)
        );
        assert_eq!(Amount(150_000_000).to_doin_string(), "1.5");
        assert_eq!(Amount(1).to_doin_string(), "0.00000001");
        assert_eq!(Amount(0).to_doin_string(), "0");
    }

    #[test]
    fn parses_base_units_strictly() {
        assert_eq!(
            Amount::parse_base_units("150000000"),
            Ok(Amount(150_000_000))
        );
        assert!(Amount::parse_base_units("1.5").is_err());
        assert!(Amount::parse_base_units("+1").is_err());
        assert!(Amount::parse_base_units(" 1").is_err());
        assert_eq!(
            Amount::parse_base_units("18446744073709551616"),
            Err(AmountError::Overflow)
        );
    }

    #[test]
    fn json_is_a_decimal_string() {
        let json = serde_json::to_string(&Amount(42)).unwrap();
        assert_eq!(json, "\"42\"");
        let back: Amount = serde_json::from_str(&json).unwrap();
        assert_eq!(back, Amount(42));
        assert!(serde_json::from_str::<Amount>("42").is_err());
    }
}
