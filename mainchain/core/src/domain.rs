//! Optimization domains: what is being optimized, how it is scored, and the built-in
//! deterministic objective functions.
//!
//! A domain's evaluation must give the same metric on every honest evaluator, so built-in
//! objectives are computed in fixed point (`Fx`, i128 intermediates) and synthetic data comes
//! from a seed derived only from on-chain values. External domains (plugins) are evaluated by
//! the node, outside this crate; consensus never evaluates anything itself, it checks votes.

use crate::fixed::Fx;
use doin_crypto::TaggedHasher;
use doin_types::{Amount, ChainId, Hash256};
use serde::{Deserialize, Serialize};
use std::fmt;

pub const TAG_DOMAIN_DATA: &str = "doin/domain-data";

/// Largest parameter vector a domain may declare.
pub const MAX_DIM: u32 = 64;
/// Largest synthetic dataset (rows) of a least-squares domain.
pub const MAX_SAMPLES: u32 = 4096;
/// Parameters of built-in domains must lie in `[-PARAM_BOUND, PARAM_BOUND]` (keeps every
/// intermediate far inside i64 and makes the search space explicit).
pub const PARAM_BOUND: Fx = Fx::from_int(10);

/// A domain identifier: 1–32 characters of `a-z`, `0-9` and `-`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DomainId(String);

impl DomainId {
    pub fn new(s: &str) -> Result<DomainId, DomainError> {
        let ok = (1..=32).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(DomainId(s.to_string()))
        } else {
            Err(DomainError::BadId(s.chars().take(40).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DomainId {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        DomainId::new(&s)
    }
}

impl From<DomainId> for String {
    fn from(d: DomainId) -> String {
        d.0
    }
}

impl fmt::Display for DomainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether a smaller or a larger metric is better.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Minimize,
    Maximize,
}

/// How the metric of a parameter vector is computed. Externally tagged (`"sphere"`,
/// `{"least_squares": {"samples": 128}}`): the canonical binary codec cannot decode
/// internally tagged enums.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    /// `Σ x_i²`.
    Sphere,
    /// `Σ 100·(x_{i+1} − x_i²)² + (1 − x_i)²`.
    Rosenbrock,
    /// `10·n + Σ (x_i² − 10·cos(2π·x_i))`.
    Rastrigin,
    /// Mean squared error of a linear model on `samples` synthetic rows.
    LeastSquares { samples: u32 },
    /// Evaluated by an external plugin the node runs (see `docs/domain-plugins.md`).
    External { plugin: String },
}

/// Everything the chain records about a domain (`DomainRegister`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainSpec {
    pub id: DomainId,
    /// Human-readable metric name, e.g. `mse`.
    pub metric: String,
    pub direction: Direction,
    pub objective: Objective,
    /// Length of the parameter vector.
    pub dim: u32,
    /// Typical size of a meaningful improvement; counted work is improvement ÷ scale.
    pub scale: Fx,
    /// Relative weight of this domain's work (1.0 = normal).
    pub weight: Fx,
    /// Largest distance between two evaluations that still "agree".
    pub tolerance: Fx,
    /// Metric every solution must beat first (the best before any optimae).
    pub baseline: Fx,
    /// Upper bound on evaluation cost, in objective-term evaluations (dim × samples).
    pub eval_budget: u64,
    /// What a sponsor pays per verification (settled on the transfer chain, see docs/hub.md).
    pub verification_fee: Amount,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("domain id {0:?} is not 1-32 characters of a-z, 0-9 and '-'")]
    BadId(String),
    #[error("domain spec invalid: {0}")]
    BadSpec(&'static str),
    #[error("expected {expected} parameters, got {got}")]
    WrongDim { expected: u32, got: usize },
    #[error("parameter {index} is outside [-10, 10]")]
    OutOfBounds { index: usize },
    #[error("evaluation overflowed the fixed-point range")]
    Overflow,
    #[error("objective is evaluated by an external plugin")]
    External,
}

impl DomainSpec {
    /// Static validity of a spec (registration and genesis).
    pub fn validate(&self) -> Result<(), DomainError> {
        if self.dim == 0 || self.dim > MAX_DIM {
            return Err(DomainError::BadSpec("dim must be 1..=64"));
        }
        if self.scale <= Fx::ZERO || self.weight <= Fx::ZERO || self.weight > Fx::from_int(10) {
            return Err(DomainError::BadSpec(
                "scale must be > 0 and weight in (0, 10]",
            ));
        }
        if self.tolerance < Fx::ZERO {
            return Err(DomainError::BadSpec("tolerance must be ≥ 0"));
        }
        if self.metric.is_empty() || self.metric.len() > 32 {
            return Err(DomainError::BadSpec("metric name must be 1..=32 bytes"));
        }
        let plugin_ok = |p: &str| {
            (1..=64).contains(&p.len())
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        match &self.objective {
            Objective::LeastSquares { samples } if *samples == 0 || *samples > MAX_SAMPLES => {
                return Err(DomainError::BadSpec("samples must be 1..=4096"));
            }
            Objective::External { plugin } if !plugin_ok(plugin) => {
                return Err(DomainError::BadSpec(
                    "plugin name must be 1..=64 of [A-Za-z0-9_-]",
                ));
            }
            _ => {}
        }
        if self.eval_cost() > self.eval_budget {
            return Err(DomainError::BadSpec("evaluation cost exceeds the budget"));
        }
        Ok(())
    }

    /// Cost of one evaluation in objective terms.
    pub fn eval_cost(&self) -> u64 {
        match &self.objective {
            Objective::LeastSquares { samples } => u64::from(self.dim) * u64::from(*samples),
            _ => u64::from(self.dim),
        }
    }

    /// `verified − reference` oriented so that positive means better.
    pub fn gain(&self, from: Fx, to: Fx) -> Option<Fx> {
        match self.direction {
            Direction::Minimize => from.checked_sub(to),
            Direction::Maximize => to.checked_sub(from),
        }
    }

    /// Checks the shape and bounds of a parameter vector.
    pub fn check_params(&self, params: &[Fx]) -> Result<(), DomainError> {
        if params.len() != self.dim as usize {
            return Err(DomainError::WrongDim {
                expected: self.dim,
                got: params.len(),
            });
        }
        if let Some(index) = params
            .iter()
            .position(|p| p.0.unsigned_abs() > PARAM_BOUND.0.unsigned_abs())
        {
            return Err(DomainError::OutOfBounds { index });
        }
        Ok(())
    }
}

/// The seed of a domain's synthetic data: derived from the chain id, the domain id and the
/// height it was registered at — values every node has and no optimizer chooses.
pub fn data_seed(chain_id: &ChainId, domain: &DomainId, registered_at: u64) -> Hash256 {
    let mut h = TaggedHasher::new(TAG_DOMAIN_DATA);
    h.update(&chain_id.0 .0)
        .update(domain.as_str().as_bytes())
        .update(&registered_at.to_le_bytes());
    h.finalize()
}

/// A deterministic stream of pseudo-random fixed-point numbers (SHA-256 in counter mode).
pub struct SeededStream {
    seed: Hash256,
    counter: u64,
}

impl SeededStream {
    pub fn new(seed: Hash256) -> SeededStream {
        SeededStream { seed, counter: 0 }
    }

    /// Uniform in `[-bound, bound]` (bound > 0), in billionths.
    pub fn next_in(&mut self, bound: Fx) -> Fx {
        let mut h = TaggedHasher::new(TAG_DOMAIN_DATA);
        h.update(&self.seed.0).update(&self.counter.to_le_bytes());
        self.counter += 1;
        let d = h.finalize();
        let mut w = [0u8; 8];
        w.copy_from_slice(&d.0[..8]);
        let span = (bound.0 as u128) * 2 + 1;
        let v = (u64::from_le_bytes(w) as u128 % span) as i64 - bound.0;
        Fx(v)
    }
}

/// The synthetic regression problem of a least-squares domain.
pub struct Dataset {
    pub rows: Vec<Vec<Fx>>,
    pub targets: Vec<Fx>,
}

/// Rows with features in [-1, 1]; targets = features · w* + noise, w* in [-2, 2],
/// noise in [-0.1, 0.1]; all from `seed`.
pub fn least_squares_dataset(seed: Hash256, dim: u32, samples: u32) -> Option<Dataset> {
    let mut s = SeededStream::new(seed);
    let truth: Vec<Fx> = (0..dim).map(|_| s.next_in(Fx::from_int(2))).collect();
    let mut rows = Vec::with_capacity(samples as usize);
    let mut targets = Vec::with_capacity(samples as usize);
    for _ in 0..samples {
        let row: Vec<Fx> = (0..dim).map(|_| s.next_in(Fx::ONE)).collect();
        let mut y = s.next_in(Fx::ratio(1, 10));
        for (x, w) in row.iter().zip(&truth) {
            y = y.checked_add(x.checked_mul(*w)?)?;
        }
        rows.push(row);
        targets.push(y);
    }
    Some(Dataset { rows, targets })
}

/// Evaluates a built-in objective. `data_seed` matters only for data-driven objectives.
pub fn evaluate_builtin(
    spec: &DomainSpec,
    data_seed: Hash256,
    params: &[Fx],
) -> Result<Fx, DomainError> {
    spec.check_params(params)?;
    let of = |v: Option<Fx>| v.ok_or(DomainError::Overflow);
    let sq = |x: Fx| of(x.checked_mul(x));
    match &spec.objective {
        Objective::Sphere => params
            .iter()
            .try_fold(Fx::ZERO, |acc, x| of(acc.checked_add(sq(*x)?))),
        Objective::Rosenbrock => {
            let mut acc = Fx::ZERO;
            for pair in params.windows(2) {
                let (x, y) = (pair[0], pair[1]);
                let a = sq(of(y.checked_sub(sq(x)?))?)?;
                let b = sq(of(Fx::ONE.checked_sub(x))?)?;
                acc = of(acc.checked_add(of(Fx::from_int(100).checked_mul(a))?))?;
                acc = of(acc.checked_add(b))?;
            }
            Ok(acc)
        }
        Objective::Rastrigin => {
            let mut acc = Fx::from_int(10 * i64::from(spec.dim));
            for x in params {
                let c = of(Fx::from_int(10).checked_mul(x.cos_two_pi()))?;
                acc = of(acc.checked_add(of(sq(*x)?.checked_sub(c))?))?;
            }
            Ok(acc)
        }
        Objective::LeastSquares { samples } => {
            let data = least_squares_dataset(data_seed, spec.dim, *samples)
                .ok_or(DomainError::Overflow)?;
            let mut total = Fx::ZERO;
            for (row, y) in data.rows.iter().zip(&data.targets) {
                let mut pred = Fx::ZERO;
                for (x, p) in row.iter().zip(params) {
                    pred = of(pred.checked_add(of(x.checked_mul(*p))?))?;
                }
                total = of(total.checked_add(sq(of(y.checked_sub(pred))?)?))?;
            }
            Ok(Fx(total.0 / i64::from(*samples)))
        }
        Objective::External { .. } => Err(DomainError::External),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(objective: Objective, dim: u32) -> DomainSpec {
        DomainSpec {
            id: DomainId::new("t").unwrap_or_else(|_| unreachable!()),
            metric: "loss".into(),
            direction: Direction::Minimize,
            objective,
            dim,
            scale: Fx::ONE,
            weight: Fx::ONE,
            tolerance: Fx::ZERO,
            baseline: Fx::from_int(1000),
            eval_budget: 1_000_000,
            verification_fee: Amount::ZERO,
        }
    }

    #[test]
    fn known_optima() {
        let seed = Hash256([7; 32]);
        let zeros = vec![Fx::ZERO; 4];
        let ones = vec![Fx::ONE; 4];
        assert_eq!(
            evaluate_builtin(&spec(Objective::Sphere, 4), seed, &zeros),
            Ok(Fx::ZERO)
        );
        assert_eq!(
            evaluate_builtin(&spec(Objective::Rosenbrock, 4), seed, &ones),
            Ok(Fx::ZERO)
        );
        assert_eq!(
            evaluate_builtin(&spec(Objective::Rastrigin, 4), seed, &zeros),
            Ok(Fx::ZERO)
        );
        // Rosenbrock at the origin: (n-1) · 1.
        assert_eq!(
            evaluate_builtin(&spec(Objective::Rosenbrock, 4), seed, &zeros),
            Ok(Fx::from_int(3))
        );
    }

    #[test]
    fn least_squares_is_deterministic_and_truth_is_near_noise_floor() {
        let s = spec(Objective::LeastSquares { samples: 256 }, 3);
        let seed = Hash256([9; 32]);
        let a = evaluate_builtin(&s, seed, &[Fx::ZERO; 3]).unwrap();
        let b = evaluate_builtin(&s, seed, &[Fx::ZERO; 3]).unwrap();
        assert_eq!(a, b);
        let mut st = SeededStream::new(seed);
        let truth: Vec<Fx> = (0..3).map(|_| st.next_in(Fx::from_int(2))).collect();
        let at_truth = evaluate_builtin(&s, seed, &truth).unwrap();
        // Uniform noise in [-0.1, 0.1] has variance 0.00333.
        assert!(at_truth < Fx::ratio(4, 1000), "{at_truth}");
        assert!(at_truth < a);
        let other = evaluate_builtin(&s, Hash256([8; 32]), &[Fx::ZERO; 3]).unwrap();
        assert_ne!(a, other);
    }

    #[test]
    fn params_are_checked() {
        let s = spec(Objective::Sphere, 2);
        let seed = Hash256([0; 32]);
        assert_eq!(
            evaluate_builtin(&s, seed, &[Fx::ZERO]),
            Err(DomainError::WrongDim {
                expected: 2,
                got: 1
            })
        );
        assert_eq!(
            evaluate_builtin(&s, seed, &[Fx::ZERO, Fx::from_int(11)]),
            Err(DomainError::OutOfBounds { index: 1 })
        );
        assert!(DomainId::new("Bad Id").is_err());
        assert!(DomainId::new("").is_err());
        assert!(DomainId::new("rosenbrock-8").is_ok());
    }
}
