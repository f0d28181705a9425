//! Staking on the transfer chain (docs/consensus.md, docs/anchoring.md): bonding coins to a role, unbonding them over
//! a fixed number of blocks, and withdrawing them once free.
//!
//! A stake is held per (owner, role) in the authenticated state, so the main chain can read
//! who is staked for what from a checkpointed state root. Unbonding coins stay locked (and
//! slashable) until `unbonding_until`; `Withdraw` is the only way back to the balance, and it
//! is refused before that height — unbonding cannot be skipped. This module owns those rules;
//! applying fees and nonces is `apply`'s job.

use crate::error::TxError;
use doin_types::{Amount, Height};
use serde::{Deserialize, Serialize};

/// Most domains one evaluator stake may name.
pub const MAX_STAKE_DOMAINS: usize = 16;

/// What a stake entitles its owner to.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StakeRole {
    /// Proposes and votes on transfer-chain blocks.
    Validator,
    /// Verifies optimae of the domains it names on the main chain.
    Evaluator,
    /// Submits optimae on the main chain.
    Optimizer,
}

impl StakeRole {
    pub const ALL: [StakeRole; 3] = [
        StakeRole::Validator,
        StakeRole::Evaluator,
        StakeRole::Optimizer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StakeRole::Validator => "validator",
            StakeRole::Evaluator => "evaluator",
            StakeRole::Optimizer => "optimizer",
        }
    }

    /// The role's byte in its state key.
    pub fn key_byte(self) -> u8 {
        match self {
            StakeRole::Validator => 1,
            StakeRole::Evaluator => 2,
            StakeRole::Optimizer => 3,
        }
    }
}

impl std::str::FromStr for StakeRole {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StakeRole::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}: use validator, evaluator or optimizer"))
    }
}

/// Consensus parameters of staking.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StakingParams {
    pub min_validator_stake: Amount,
    pub min_evaluator_stake: Amount,
    pub min_optimizer_stake: Amount,
    /// Blocks between `Unstake` and the earliest `Withdraw` of those coins.
    pub unbonding_blocks: u64,
    /// Share of an optimizer's stake slashed (burned) per rejected optimae, in millionths.
    #[serde(default = "default_slash_rejected_ppm")]
    pub slash_rejected_optimae_ppm: u32,
    /// Share of an evaluator's stake slashed (burned) per vote against the deciding majority,
    /// in millionths.
    #[serde(default = "default_slash_wrong_vote_ppm")]
    pub slash_wrong_vote_ppm: u32,
}

fn default_slash_rejected_ppm() -> u32 {
    50_000
}

fn default_slash_wrong_vote_ppm() -> u32 {
    20_000
}

impl Default for StakingParams {
    /// Public-network defaults: 30-second blocks make 20 160 blocks one week of unbonding.
    fn default() -> Self {
        StakingParams {
            min_validator_stake: Amount::from_base_units(10_000 * 100_000_000),
            min_evaluator_stake: Amount::from_base_units(100 * 100_000_000),
            min_optimizer_stake: Amount::from_base_units(10 * 100_000_000),
            unbonding_blocks: 20_160,
            slash_rejected_optimae_ppm: default_slash_rejected_ppm(),
            slash_wrong_vote_ppm: default_slash_wrong_vote_ppm(),
        }
    }
}

impl StakingParams {
    pub fn min_stake(&self, role: StakeRole) -> Amount {
        match role {
            StakeRole::Validator => self.min_validator_stake,
            StakeRole::Evaluator => self.min_evaluator_stake,
            StakeRole::Optimizer => self.min_optimizer_stake,
        }
    }
}

/// One owner's stake in one role.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stake {
    /// Active: counts for the role, and can be slashed.
    pub bonded: Amount,
    /// Leaving: still slashable, withdrawable from `unbonding_until` on.
    pub unbonding: Amount,
    pub unbonding_until: Height,
    /// Evaluators only: the domains it verifies (strictly ascending).
    pub domains: Vec<String>,
    /// Validators only: slashed for signing two blocks at one height. The whole stake was
    /// burned and the key may never bond as a validator again (so old evidence cannot be
    /// used twice, and an equivocator cannot come back).
    pub tombstoned: bool,
}

impl Stake {
    /// Bonded plus unbonding: everything locked in this stake.
    pub fn locked(&self) -> Result<Amount, TxError> {
        self.bonded
            .checked_add(self.unbonding)
            .map_err(|_| TxError::AmountOverflow)
    }
}

/// Evaluator domain entry meaning "every domain, including ones registered later".
pub const ALL_DOMAINS: &str = "*";

/// A domain name as the main chain spells domain ids (1–32 of `a-z`, `0-9`, `-`), or `*`.
pub fn valid_domain_name(s: &str) -> bool {
    s == ALL_DOMAINS
        || (1..=32).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Stateless checks of a stake's domain list for `role`.
pub fn check_domains(role: StakeRole, domains: &[String]) -> Result<(), TxError> {
    if role != StakeRole::Evaluator {
        return if domains.is_empty() {
            Ok(())
        } else {
            Err(TxError::InvalidStake(format!(
                "only evaluator stakes name domains, not {} stakes",
                role.as_str()
            )))
        };
    }
    if domains.len() > MAX_STAKE_DOMAINS {
        return Err(TxError::InvalidStake(format!(
            "{} domains, at most {MAX_STAKE_DOMAINS}",
            domains.len()
        )));
    }
    if let Some(bad) = domains.iter().find(|d| !valid_domain_name(d)) {
        return Err(TxError::InvalidStake(format!(
            "{bad:?} is not a domain id (1-32 of a-z, 0-9, -) or *"
        )));
    }
    if domains.windows(2).any(|w| w[0] >= w[1]) {
        return Err(TxError::InvalidStake(
            "domains must be listed in ascending order without repeats".into(),
        ));
    }
    Ok(())
}

/// `Stake`: bonds `amount` more (already taken from the balance by the caller).
pub fn bond(
    params: &StakingParams,
    role: StakeRole,
    current: Stake,
    amount: Amount,
    domains: &[String],
) -> Result<Stake, TxError> {
    if role == StakeRole::Validator && current.tombstoned {
        return Err(TxError::Tombstoned);
    }
    let mut s = current;
    s.bonded = s
        .bonded
        .checked_add(amount)
        .map_err(|_| TxError::AmountOverflow)?;
    if !domains.is_empty() {
        s.domains = domains.to_vec();
    }
    if role == StakeRole::Evaluator && s.domains.is_empty() {
        return Err(TxError::InvalidStake(
            "an evaluator stake must name the domains it verifies".into(),
        ));
    }
    let min = params.min_stake(role);
    if s.bonded < min {
        return Err(TxError::StakeBelowMinimum {
            role: role.as_str(),
            minimum: min,
            got: s.bonded,
        });
    }
    Ok(s)
}

/// `Unstake`: moves `amount` from bonded to unbonding, free at `height + unbonding_blocks`.
pub fn unbond(
    params: &StakingParams,
    role: StakeRole,
    current: Stake,
    amount: Amount,
    height: Height,
) -> Result<Stake, TxError> {
    let mut s = current;
    s.bonded = s
        .bonded
        .checked_sub(amount)
        .map_err(|_| TxError::UnstakeExceedsStake {
            bonded: s.bonded,
            requested: amount,
        })?;
    let min = params.min_stake(role);
    if !s.bonded.is_zero() && s.bonded < min {
        return Err(TxError::StakeBelowMinimum {
            role: role.as_str(),
            minimum: min,
            got: s.bonded,
        });
    }
    s.unbonding = s
        .unbonding
        .checked_add(amount)
        .map_err(|_| TxError::AmountOverflow)?;
    // Adding to what is already unbonding restarts the wait for all of it: one release
    // height per stake keeps the state small, and the wait can only get longer.
    s.unbonding_until = height
        .checked_add(params.unbonding_blocks)
        .ok_or(TxError::AmountOverflow)?;
    if s.bonded.is_zero() {
        s.domains.clear();
    }
    Ok(s)
}

/// `Withdraw`: returns the unbonded coins; the caller credits them to the balance.
pub fn withdraw(current: Stake, height: Height) -> Result<(Stake, Amount), TxError> {
    if current.unbonding.is_zero() {
        return Err(TxError::NothingToWithdraw);
    }
    if height < current.unbonding_until {
        return Err(TxError::StillUnbonding {
            until: current.unbonding_until,
            now: height,
        });
    }
    let amount = current.unbonding;
    let mut s = current;
    s.unbonding = Amount::ZERO;
    s.unbonding_until = 0;
    Ok((s, amount))
}

/// Slashes `ppm` millionths of everything locked in `current` (bonded first, then unbonding);
/// returns the new stake and the amount taken (which the caller burns).
pub fn slash(current: Stake, ppm: u32) -> Result<(Stake, Amount), TxError> {
    let locked = u128::from(current.locked()?.base_units());
    let take = locked
        .checked_mul(u128::from(ppm.min(1_000_000)))
        .map(|x| x / 1_000_000)
        .ok_or(TxError::AmountOverflow)?;
    let take = Amount::from_base_units(u64::try_from(take).map_err(|_| TxError::AmountOverflow)?);
    let mut s = current;
    let from_bonded = take.min(s.bonded);
    s.bonded = s
        .bonded
        .checked_sub(from_bonded)
        .map_err(|_| TxError::AmountOverflow)?;
    let rest = take
        .checked_sub(from_bonded)
        .map_err(|_| TxError::AmountOverflow)?;
    s.unbonding = s
        .unbonding
        .checked_sub(rest)
        .map_err(|_| TxError::AmountOverflow)?;
    if s.bonded.is_zero() {
        s.domains.clear();
    }
    Ok((s, take))
}
