//! Fixed-point numbers for consensus: `Fx` is an `i64` counting billionths (scale 10^9).
//!
//! Metrics, parameters, reputation and work are all `Fx`, so every node computes bit-identical
//! results. Transcendental functions (`ln`, `exp`, `cos`) are evaluated with integer series at
//! 10^18 internally; they are deterministic by construction, which is all consensus needs, and
//! accurate to far better than one unit of the 10^-9 output scale.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Units per 1.0.
pub const SCALE: i64 = 1_000_000_000;
/// Internal precision of the series (10^18).
const WIDE: i128 = 1_000_000_000_000_000_000;
const LN2_WIDE: i128 = 693_147_180_559_945_309;
const PI_WIDE: i128 = 3_141_592_653_589_793_238;

/// A fixed-point number with nine decimals. Arithmetic is checked: `None` means overflow or
/// division by zero, never a wrapped value. Binary encodings carry the raw `i64`; JSON and TOML
/// carry an exact decimal string (`"0.250000000"`), so no float ever touches a value.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fx(pub i64);

impl Serialize for Fx {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_string())
        } else {
            s.serialize_i64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Fx {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            Fx::parse(&s).map_err(serde::de::Error::custom)
        } else {
            i64::deserialize(d).map(Fx)
        }
    }
}

impl Fx {
    pub const ZERO: Fx = Fx(0);
    pub const ONE: Fx = Fx(SCALE);

    /// `n` as a fixed-point number.
    pub const fn from_int(n: i64) -> Fx {
        Fx(n * SCALE)
    }

    /// `num / den` exactly representable ratios, e.g. `Fx::ratio(3, 10)` = 0.3.
    pub const fn ratio(num: i64, den: i64) -> Fx {
        Fx(num * SCALE / den)
    }

    pub fn checked_add(self, o: Fx) -> Option<Fx> {
        self.0.checked_add(o.0).map(Fx)
    }

    pub fn checked_sub(self, o: Fx) -> Option<Fx> {
        self.0.checked_sub(o.0).map(Fx)
    }

    /// `self × o`, truncated toward zero.
    pub fn checked_mul(self, o: Fx) -> Option<Fx> {
        let p = (self.0 as i128).checked_mul(o.0 as i128)? / SCALE as i128;
        i64::try_from(p).ok().map(Fx)
    }

    /// `self ÷ o`, truncated toward zero.
    pub fn checked_div(self, o: Fx) -> Option<Fx> {
        if o.0 == 0 {
            return None;
        }
        let q = (self.0 as i128).checked_mul(SCALE as i128)? / o.0 as i128;
        i64::try_from(q).ok().map(Fx)
    }

    pub fn abs_diff(self, o: Fx) -> u64 {
        self.0.abs_diff(o.0)
    }

    /// Natural logarithm for `self > 0`.
    pub fn ln(self) -> Option<Fx> {
        if self.0 <= 0 {
            return None;
        }
        let w = ln_wide(self.0 as i128 * (WIDE / SCALE as i128));
        Some(Fx((w / (WIDE / SCALE as i128)) as i64))
    }

    /// `self × 2^(-num/den)` for `num ≥ 0`, `den > 0`: exponential decay by `num/den`
    /// half-lives.
    pub fn halve_by(self, num: u64, den: u64) -> Fx {
        if den == 0 {
            return self;
        }
        let whole = num / den;
        if whole >= 63 {
            return Fx::ZERO;
        }
        let frac = (num % den) as i128;
        // 2^(-frac/den) = exp(-ln2 · frac/den), with the exponent in [0, ln 2).
        let y = LN2_WIDE * frac / den as i128;
        let factor = exp_neg_wide(y);
        let v = (self.0 as i128 >> whole) * factor / WIDE;
        Fx(v as i64)
    }

    /// `cos(2π · self)`: the periodic term of the Rastrigin function.
    pub fn cos_two_pi(self) -> Fx {
        // Reduce to one period: t in [0, 1) billionths.
        let t = (self.0 as i128).rem_euclid(SCALE as i128);
        // θ = 2πt - π in [-π, π); cos(θ + π) = -cos(θ).
        let theta = 2 * PI_WIDE * t / SCALE as i128 - PI_WIDE;
        let c = cos_wide(theta);
        Fx((-c / (WIDE / SCALE as i128)) as i64)
    }
}

/// ln(x) for x > 0 at scale 10^18: x = m·2^k with m in [1, 2), ln m = 2·atanh((m-1)/(m+1)).
fn ln_wide(mut x: i128) -> i128 {
    let mut k: i128 = 0;
    while x >= 2 * WIDE {
        x /= 2;
        k += 1;
    }
    while x < WIDE {
        x *= 2;
        k -= 1;
    }
    let z = (x - WIDE) * WIDE / (x + WIDE); // z in [0, 1/3)
    let z2 = z * z / WIDE;
    let mut term = z;
    let mut sum = 0i128;
    let mut n = 1i128;
    while term != 0 {
        sum += term / n;
        term = term * z2 / WIDE;
        n += 2;
    }
    k * LN2_WIDE + 2 * sum
}

/// exp(-y) for y in [0, 1) at scale 10^18 (Taylor series; terms shrink at least geometrically).
fn exp_neg_wide(y: i128) -> i128 {
    let mut term = WIDE;
    let mut sum = WIDE;
    let mut n = 1i128;
    while term != 0 {
        term = -term * y / WIDE / n;
        sum += term;
        n += 1;
    }
    sum
}

/// cos(θ) for θ in [-π, π] at scale 10^18.
fn cos_wide(theta: i128) -> i128 {
    let t2 = theta * theta / WIDE;
    let mut term = WIDE;
    let mut sum = WIDE;
    let mut n = 0i128;
    while term != 0 {
        term = -term * t2 / WIDE / ((n + 1) * (n + 2));
        sum += term;
        n += 2;
    }
    sum
}

impl fmt::Display for Fx {
    /// Exact decimal form, e.g. `-1.250000000`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let a = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:09}", a / SCALE as u64, a % SCALE as u64)
    }
}

/// Parse error for [`Fx::parse`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a decimal number with at most 9 fractional digits: {0:?}")]
pub struct FxParseError(pub String);

impl Fx {
    /// Parses `-12.5`, `3`, `0.000000001`; at most nine fractional digits, no exponent.
    pub fn parse(s: &str) -> Result<Fx, FxParseError> {
        let err = || FxParseError(s.to_string());
        let (neg, body) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (int, frac) = body.split_once('.').unwrap_or((body, ""));
        let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
        if !digits(int) || (body.contains('.') && !digits(frac)) || frac.len() > 9 {
            return Err(err());
        }
        let i: i64 = int.parse().map_err(|_| err())?;
        let mut f: i64 = if frac.is_empty() {
            0
        } else {
            frac.parse().map_err(|_| err())?
        };
        for _ in frac.len()..9 {
            f *= 10;
        }
        let v = i
            .checked_mul(SCALE)
            .and_then(|v| v.checked_add(f))
            .ok_or_else(err)?;
        Ok(Fx(if neg { -v } else { v }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_is_checked() {
        assert_eq!(
            Fx::from_int(3).checked_mul(Fx::ratio(1, 2)),
            Some(Fx(1_500_000_000))
        );
        assert_eq!(Fx::ONE.checked_div(Fx::ZERO), None);
        assert_eq!(Fx(i64::MAX).checked_add(Fx(1)), None);
        assert_eq!(Fx(i64::MAX).checked_mul(Fx::from_int(2)), None);
    }

    #[test]
    fn ln_matches_known_values() {
        assert_eq!(Fx::ONE.ln(), Some(Fx::ZERO));
        // ln 11 = 2.397895272798...
        assert_eq!(Fx::from_int(11).ln(), Some(Fx(2_397_895_272)));
        // ln 2 = 0.693147180559...
        assert_eq!(Fx::from_int(2).ln(), Some(Fx(693_147_180)));
        // ln 0.5 = -0.693147180559...
        assert_eq!(Fx::ratio(1, 2).ln(), Some(Fx(-693_147_180)));
        assert_eq!(Fx::ZERO.ln(), None);
    }

    #[test]
    fn halving_is_exact_at_whole_half_lives() {
        assert_eq!(Fx::from_int(8).halve_by(1008, 1008), Fx::from_int(4));
        assert_eq!(Fx::from_int(8).halve_by(3 * 1008, 1008), Fx::ONE);
        assert_eq!(Fx::from_int(8).halve_by(0, 1008), Fx::from_int(8));
        // Half a half-life: 8 / sqrt 2 = 5.656854249...
        assert_eq!(Fx::from_int(8).halve_by(504, 1008), Fx(5_656_854_249));
        assert_eq!(Fx::from_int(-8).halve_by(1008, 1008), Fx::from_int(-4));
    }

    #[test]
    fn cosine_of_whole_and_half_turns() {
        assert_eq!(Fx::ZERO.cos_two_pi(), Fx::ONE);
        assert_eq!(Fx::from_int(7).cos_two_pi(), Fx::ONE);
        assert_eq!(Fx::ratio(1, 2).cos_two_pi(), Fx(-SCALE));
        assert!(Fx::ratio(1, 4).cos_two_pi().0.abs() <= 1);
        // cos(2π·0.1) = 0.809016994...
        assert_eq!(Fx::ratio(1, 10).cos_two_pi(), Fx(809_016_994));
        assert_eq!(Fx::ratio(-1, 10).cos_two_pi(), Fx(809_016_994));
    }

    #[test]
    fn json_is_a_decimal_string_and_binary_is_the_raw_integer() {
        let v = Fx::parse("-1.5").unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"-1.500000000\"");
        assert_eq!(serde_json::from_str::<Fx>("\"-1.5\"").unwrap(), v);
        assert!(
            serde_json::from_str::<Fx>("1.5").is_err(),
            "numbers are refused: no floats"
        );
        assert_eq!(
            doin_codec::encode(&v).unwrap(),
            (-1_500_000_000i64).to_le_bytes()
        );
    }

    #[test]
    fn parse_and_display_round_trip() {
        for s in ["0.000000000", "-1.250000000", "42.000000001"] {
            assert_eq!(Fx::parse(s).unwrap().to_string(), s);
        }
        assert_eq!(Fx::parse("3"), Ok(Fx::from_int(3)));
        assert_eq!(Fx::parse("-0.5"), Ok(Fx(-500_000_000)));
        for bad in [
            "",
            "1e3",
            "1.0000000001",
            "--1",
            ".5",
            "1.",
            "nan",
            "99999999999",
        ] {
            assert!(Fx::parse(bad).is_err(), "{bad}");
        }
    }
}
