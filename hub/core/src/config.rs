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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
