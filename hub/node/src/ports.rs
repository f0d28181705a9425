//! What the hub needs from the chains, as ports the node implements (the hub never imports a
//! chain's service).

use doin_tx_core::channel::{Channel, ChannelId};
use doin_types::{Amount, ChainId, Hash256, Height, Network, PublicKeyBytes};

/// Read and submit access to the transfer chain.
pub trait ChainPort: Send + Sync {
    fn chain_id(&self) -> ChainId;
    fn network(&self) -> Network;
    /// Height of the final tip.
    fn height(&self) -> Height;
    /// The channel's on-chain record at the tip.
    fn channel(&self, id: &ChannelId) -> Result<Option<Channel>, String>;
    /// The nonce the next transaction of `key` must carry (counting its pending ones).
    fn next_nonce(&self, key: &PublicKeyBytes) -> Result<u64, String>;
    /// Base fee per weight unit of the next block.
    fn base_fee(&self) -> Amount;
    /// Preimages revealed by `HtlcClaim` transactions in the final blocks `from..=to`, with
    /// the channel each names (how the hub learns a preimage a payee claimed on chain).
    fn htlc_claims(&self, from: Height, to: Height) -> Result<Vec<(ChannelId, [u8; 32])>, String>;
    /// Submits a signed transaction (canonical bytes); its id once the pool took it.
    fn submit(&self, tx: &[u8]) -> Result<Hash256, String>;
}

/// What the hub needs from the main chain: whether an evaluator earned a verification fee.
pub trait MainPort: Send + Sync {
    /// The verification fee (of the optimae's domain) that `evaluator`'s vote on `optimae`
    /// earns: `Some` when the vote is in a committed main block, the optimae is decided, the
    /// vote agreed with the decision and the decision is final (at or below the main height
    /// the transfer chain has anchored, which no reorganisation can undo); `None` when it
    /// earns nothing; an error while the decision is not final yet (ask again later).
    fn vote_fee(
        &self,
        optimae: &Hash256,
        evaluator: &PublicKeyBytes,
    ) -> Result<Option<Amount>, String>;

    /// Where `optimae`'s decision stands, for a verification fund.
    fn decision(&self, optimae: &Hash256) -> Result<Decision, String>;
}

/// An optimae's decision as a verification fund sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The main chain does not know the optimae (not revealed, or its reveal was undone).
    Unknown,
    /// Revealed, not decided yet, or decided in a block the transfer chain has not anchored
    /// (a reorganisation could still change it).
    Pending,
    /// Decided for good: the evaluators whose votes agreed with the decision, and the fee each
    /// such vote earns (the domain's verification fee; zero when the domain charges none).
    Final {
        fee: Amount,
        agreeing: Vec<PublicKeyBytes>,
    },
}
