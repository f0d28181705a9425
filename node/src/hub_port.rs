//! The hub's ports onto this node's chains: `doin_hub::ChainPort` over the transfer chain and
//! `doin_hub::ports::MainPort` over the main chain (what evaluator pay checks a vote against).
//!
//! Held weakly, like the cross-chain adapters: the hub never keeps the chain alive.

use doin_hub::ChainPort;
use doin_tx_core::channel::{Channel, ChannelId};
use doin_tx_core::{StateView, TxPayload};
use doin_tx_node::TxChain;
use doin_types::{Amount, ChainId, Hash256, Height, Network, PortError, PublicKeyBytes};
use std::sync::{Arc, Weak};

pub struct TxChainPort {
    chain: Weak<TxChain>,
    chain_id: ChainId,
    network: Network,
}

impl TxChainPort {
    pub fn new(chain: &Arc<TxChain>) -> TxChainPort {
        TxChainPort {
            chain: Arc::downgrade(chain),
            chain_id: chain.params().chain_id,
            network: chain.params().network,
        }
    }

    fn chain(&self) -> Result<Arc<TxChain>, PortError> {
        self.chain
            .upgrade()
            .ok_or_else(|| PortError::Unavailable("the transfer chain is shut down".into()))
    }
}

impl ChainPort for TxChainPort {
    fn chain_id(&self) -> ChainId {
        self.chain_id
    }

    fn network(&self) -> Network {
        self.network
    }

    fn height(&self) -> Height {
        self.chain().map(|c| c.tip().final_height).unwrap_or(0)
    }

    fn channel(&self, id: &ChannelId) -> Result<Option<Channel>, PortError> {
        self.chain()?.store().channel(id)
    }

    fn next_nonce(&self, key: &PublicKeyBytes) -> Result<u64, PortError> {
        Ok(self.chain()?.next_nonce(key).map(|(n, _)| n)?)
    }

    fn base_fee(&self) -> Amount {
        self.chain()
            .map(|c| c.next_base_fee())
            .unwrap_or(Amount::ZERO)
    }

    fn htlc_claims(
        &self,
        from: Height,
        to: Height,
    ) -> Result<Vec<(ChannelId, [u8; 32])>, PortError> {
        let chain = self.chain()?;
        let to = to.min(chain.tip().final_height);
        let mut claims = Vec::new();
        for height in from..=to {
            // A block the node no longer keeps is skipped (the watch reads every few seconds,
            // far inside what pruning keeps).
            let Some(block) = chain.store().block(height)? else {
                continue;
            };
            for tx in &block.txs {
                if let TxPayload::HtlcClaim { channel, preimage } = &tx.body.payload {
                    claims.push((*channel, *preimage));
                }
            }
        }
        Ok(claims)
    }

    fn tx_state(&self, id: &Hash256) -> Result<doin_hub::ports::TxState, PortError> {
        use doin_hub::ports::TxState;
        use doin_tx_node::TxStatus;
        Ok(match self.chain()?.lookup_tx(id)?.map(|l| l.status) {
            None => TxState::Unknown,
            Some(TxStatus::Pending | TxStatus::Included) => TxState::Pending,
            Some(TxStatus::Final | TxStatus::Anchored) => TxState::Final,
        })
    }

    fn submit(&self, tx: &[u8]) -> Result<Hash256, PortError> {
        self.chain()?.submit(tx).map(|o| o.id).map_err(|e| match e {
            doin_tx_node::SubmitError::Store(s) => PortError::Store(s),
            refused => PortError::Invalid(refused.to_string()),
        })
    }
}

/// The main chain as the hub sees it: which votes earned their verification fee.
pub struct MainChainVotes {
    chain: Weak<doin_main_node::MainChain>,
}

impl MainChainVotes {
    pub fn new(chain: &Arc<doin_main_node::MainChain>) -> MainChainVotes {
        MainChainVotes {
            chain: Arc::downgrade(chain),
        }
    }
}

impl MainChainVotes {
    fn chain(&self) -> Result<Arc<doin_main_node::MainChain>, PortError> {
        self.chain
            .upgrade()
            .ok_or_else(|| PortError::Unavailable("the main chain is shut down".into()))
    }
}

impl doin_hub::ports::MainPort for MainChainVotes {
    fn vote_fee(
        &self,
        optimae: &Hash256,
        evaluator: &PublicKeyBytes,
    ) -> Result<Option<Amount>, PortError> {
        BorrowedVotes(self.chain()?.as_ref()).fee(optimae, evaluator)
    }

    fn decision(&self, optimae: &Hash256) -> Result<doin_hub::ports::Decision, PortError> {
        BorrowedVotes(self.chain()?.as_ref()).decision(optimae)
    }
}

/// The same check on a main chain at hand (the devnet demo's payer decides what to pay with it).
pub struct BorrowedVotes<'a>(pub &'a doin_main_node::MainChain);

impl MainChainVotes {
    pub fn new_borrowed(chain: &doin_main_node::MainChain) -> BorrowedVotes<'_> {
        BorrowedVotes(chain)
    }
}

impl BorrowedVotes<'_> {
    /// See [`doin_hub::ports::MainPort::decision`].
    pub fn decision(&self, optimae: &Hash256) -> Result<doin_hub::ports::Decision, PortError> {
        use doin_hub::ports::Decision;
        let chain = self.0;
        let Some(record) = chain.store().optimae(optimae)? else {
            return Ok(Decision::Unknown);
        };
        // Final only once no reorganisation can take the decision back.
        let Some(decided) = record.decided_at.filter(|d| *d <= chain.anchored_height()) else {
            return Ok(Decision::Pending);
        };
        let fee = chain
            .head()
            .state
            .domains
            .get(&record.domain)
            .map(|d| d.spec.verification_fee)
            .unwrap_or(Amount::ZERO);
        let mut agreeing: Vec<PublicKeyBytes> = record
            .votes
            .iter()
            .filter(|v| v.agreed)
            .map(|v| v.evaluator)
            .collect();
        // Once per agreeing vote: an evaluator that agreed in both rounds earns two fees.
        agreeing.sort();
        tracing::debug!(%optimae, decided, agreeing = agreeing.len(), "final decision");
        Ok(Decision::Final { fee, agreeing })
    }

    /// See [`doin_hub::ports::MainPort::vote_fee`].
    pub fn fee(
        &self,
        optimae: &Hash256,
        evaluator: &PublicKeyBytes,
    ) -> Result<Option<Amount>, PortError> {
        let chain = self.0;
        let Some(record) = chain.store().optimae(optimae)? else {
            return Ok(None);
        };
        let earned = record.decided_at.is_some()
            && record
                .votes
                .iter()
                .any(|v| v.evaluator == *evaluator && v.agreed);
        if !earned {
            return Ok(None);
        }
        // Paid only once no reorganisation can take the decision back: an off-chain payment
        // cannot be undone.
        let anchored = chain.anchored_height();
        if let Some(decided) = record.decided_at.filter(|d| *d > anchored) {
            return Err(PortError::NotYet(format!(
                "the decision (main block {decided}) is not final yet: the transfer chain has \
                 anchored main blocks up to {anchored}; ask again once it is anchored"
            )));
        }
        let head = chain.head();
        Ok(head
            .state
            .domains
            .get(&record.domain)
            .map(|d| d.spec.verification_fee)
            .filter(|fee| !fee.is_zero()))
    }
}
