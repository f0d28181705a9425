//! The hub's fee policy and limits.

use doin_types::Msat;
use serde::{Deserialize, Serialize};

/// What the hub charges for forwarding: `base_msat` per forwarded payment (a stream tick or a
/// routed HTLC) plus `ppm` millionths of the amount.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeePolicy {
    pub base_msat: u64,
    pub ppm: u32,
}

impl FeePolicy {
    /// The fee of forwarding `amount` (`None` on overflow).
    pub fn fee(&self, amount: Msat) -> Option<Msat> {
        let proportional = u128::from(amount.get())
            .checked_mul(u128::from(self.ppm))?
            .checked_div(1_000_000)?;
        self.base_msat
            .checked_add(u64::try_from(proportional).ok()?)
            .map(Msat::new)
    }
}

/// How a hub runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubConfig {
    pub fee: FeePolicy,
    /// Dispute window of the channels the hub opens, in blocks.
    pub dispute_blocks: u64,
    /// Shortest dispute window the hub accepts on a payer's channel.
    pub min_dispute_blocks: u64,
    /// Blocks between a routed HTLC's expiry towards the payee and the payer's (the time the
    /// hub has to claim the payer's HTLC once it learns the preimage).
    pub cltv_delta: u64,
    /// Most the hub owes one payee and has not paid out yet (liquidity limit per channel).
    pub max_owed_msat: u64,
    /// How long the answer to a request with an `Idempotency-Key` is kept: a repeat within
    /// this time gets the first answer; afterwards the key is free again.
    pub idempotency_ttl_secs: u64,
    /// A verification fund whose optimae is not finally decided this long after it was funded
    /// goes back to the payer whole.
    pub fund_timeout_secs: u64,
    /// Channels a payee buys from the hub ([`RequestPolicy`]).
    pub requests: RequestPolicy,
    /// What a final fund does with the fee of an agreeing evaluator the hub has no channel
    /// to ([`Unchanneled`]).
    pub unchanneled_evaluators: Unchanneled,
}

/// The fee of an agreeing evaluator without a channel from the hub, when its optimae's
/// decision is final.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unchanneled {
    /// Back to the payer with the rest of the fund at once.
    #[default]
    Return,
    /// Kept in the fund until the evaluator has a channel from the hub (it can buy one:
    /// channels on request), then paid; what is still kept when the fund times out
    /// (`fund_timeout_secs` after it was funded) goes back to the payer.
    Hold,
}

/// What the hub offers payees that ask it for an inbound channel (`POST
/// /v1/hub/channel-requests`): the payee pays `fee_base + capacity × fee_ppm / 10^6` base units
/// on chain, the hub then opens a channel of `capacity` to it and keeps it open for the
/// `duration_blocks` asked (at most `max_blocks`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RequestPolicy {
    pub enabled: bool,
    /// Base units per request.
    pub fee_base: u64,
    /// Millionths of the capacity.
    pub fee_ppm: u32,
    /// Smallest and largest capacity sold, base units.
    pub min_capacity: u64,
    pub max_capacity: u64,
    /// Most the hub locks in requested channels at once (not yet closed), base units.
    pub max_total: u64,
    /// Longest promise to keep a requested channel open, transfer-chain blocks.
    pub max_blocks: u64,
}

impl RequestPolicy {
    /// The fee of a channel of `capacity` held open `duration_blocks`, or why it is not sold.
    pub fn quote(&self, capacity: u64, duration_blocks: u64) -> Result<u64, String> {
        if !self.enabled {
            return Err("this hub sells no channels on request".into());
        }
        if capacity < self.min_capacity || capacity > self.max_capacity {
            return Err(format!(
                "capacity {capacity}: this hub sells {} to {} base units",
                self.min_capacity, self.max_capacity
            ));
        }
        if duration_blocks == 0 || duration_blocks > self.max_blocks {
            return Err(format!(
                "duration_blocks {duration_blocks}: 1 to {}",
                self.max_blocks
            ));
        }
        let proportional = u128::from(capacity) * u128::from(self.fee_ppm) / 1_000_000;
        u64::try_from(proportional)
            .ok()
            .and_then(|p| p.checked_add(self.fee_base))
            .ok_or_else(|| "the fee overflows".to_string())
    }
}

impl Default for RequestPolicy {
    fn default() -> Self {
        RequestPolicy {
            enabled: false,
            fee_base: 10_000,
            fee_ppm: 10_000,
            min_capacity: 100_000,
            max_capacity: 10_000_000_000,
            max_total: 100_000_000_000,
            max_blocks: 86_400,
        }
    }
}

impl HubConfig {
    /// Blocks before an HTLC's expiry by which the hub acts on chain: half of `cltv_delta`
    /// (at least two blocks: one for the close, one spare), so the blocks between a route's
    /// two expiries are split between the payee's deadline and the hub's.
    pub fn htlc_margin(&self) -> u64 {
        (self.cltv_delta / 2).max(2)
    }

    pub fn max_owed(&self) -> Msat {
        Msat::new(self.max_owed_msat)
    }
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            fee: FeePolicy {
                base_msat: 0,
                ppm: 1_000,
            },
            dispute_blocks: doin_tx_core::channel::DEFAULT_DISPUTE_BLOCKS,
            min_dispute_blocks: 20,
            cltv_delta: 40,
            max_owed_msat: 1_000_000_000,
            idempotency_ttl_secs: 86_400,
            fund_timeout_secs: 3 * 86_400,
            requests: RequestPolicy::default(),
            unchanneled_evaluators: Unchanneled::Return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_requested_channel_costs_base_plus_proportional_within_the_policy() {
        let p = RequestPolicy {
            enabled: true,
            ..RequestPolicy::default()
        };
        assert_eq!(p.quote(1_000_000, 100), Ok(10_000 + 10_000));
        assert!(p.quote(99_999, 100).is_err());
        assert!(p.quote(1_000_000, 0).is_err());
        assert!(p.quote(1_000_000, 86_401).is_err());
        assert!(RequestPolicy::default().quote(1_000_000, 100).is_err());
        let huge = RequestPolicy {
            enabled: true,
            fee_base: u64::MAX,
            ..RequestPolicy::default()
        };
        assert!(huge.quote(1_000_000, 1).is_err());
    }

    #[test]
    fn fees_are_base_plus_proportional_and_never_overflow() {
        let p = FeePolicy {
            base_msat: 10,
            ppm: 2_500,
        };
        assert_eq!(p.fee(Msat::new(0)), Some(Msat::new(10)));
        assert_eq!(p.fee(Msat::new(1_000_000)), Some(Msat::new(2_510)));
        assert_eq!(p.fee(Msat::new(399)), Some(Msat::new(10)));
        let huge = FeePolicy {
            base_msat: u64::MAX,
            ppm: 1,
        };
        assert_eq!(huge.fee(Msat::new(1_000_000)), None);
    }
}
