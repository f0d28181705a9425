//! What the hub needs from the chains, as ports the node implements (the hub never imports a
//! chain's service). Every answer is read before the hub's state is locked; the hub core gets
//! them as a [`doin_hub_core::ChainSnapshot`].

use doin_tx_core::channel::{Channel, ChannelId};
use doin_types::{Amount, ChainId, Hash256, Height, Network, PortError, PublicKeyBytes};

pub use doin_hub_core::{Decision, TxState};

/// Read and submit access to the transfer chain.
pub trait ChainPort: Send + Sync {
    fn chain_id(&self) -> ChainId;
    fn network(&self) -> Network;
    /// Height of the final tip.
    fn height(&self) -> Height;
    /// The channel's on-chain record at the tip.
    fn channel(&self, id: &ChannelId) -> Result<Option<Channel>, PortError>;
    /// The nonce the next transaction of `key` must carry (counting its pending ones).
    fn next_nonce(&self, key: &PublicKeyBytes) -> Result<u64, PortError>;
    /// Base fee per weight unit of the next block.
    fn base_fee(&self) -> Amount;
    /// Preimages revealed by `HtlcClaim` transactions in the final blocks `from..=to`, with
    /// the channel each names (how the hub learns a preimage a payee claimed on chain).
    fn htlc_claims(
        &self,
        from: Height,
        to: Height,
    ) -> Result<Vec<(ChannelId, [u8; 32])>, PortError>;
    /// Where transaction `id` stands: in a final block, pending (in the pool or a block not
    /// final yet), or unknown to this node.
    fn tx_state(&self, id: &Hash256) -> Result<TxState, PortError>;
    /// Submits a signed transaction (canonical bytes); its id once the pool took it. A
    /// transaction the pool refuses is [`PortError::Invalid`].
    fn submit(&self, tx: &[u8]) -> Result<Hash256, PortError>;
}

/// What the hub needs from the main chain: whether an evaluator earned a verification fee.
pub trait MainPort: Send + Sync {
    /// The verification fee (of the optimae's domain) that `evaluator`'s vote on `optimae`
    /// earns: `Some` when the vote is in a committed main block, the optimae is decided, the
    /// vote agreed with the decision and the decision is final (at or below the main height
    /// the transfer chain has anchored, which no reorganisation can undo); `None` when it
    /// earns nothing; [`PortError::NotYet`] while the decision is not final yet.
    fn vote_fee(
        &self,
        optimae: &Hash256,
        evaluator: &PublicKeyBytes,
    ) -> Result<Option<Amount>, PortError>;

    /// Where `optimae`'s decision stands, for a verification fund.
    fn decision(&self, optimae: &Hash256) -> Result<Decision, PortError>;
}
