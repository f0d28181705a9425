//! The hub's port onto this node's transfer chain (`doin_hub::ChainPort` over `TxChain`).
//!
//! Held weakly, like the cross-chain adapters: the hub never keeps the chain alive.

use doin_hub::ChainPort;
use doin_tx_core::channel::{Channel, ChannelId};
use doin_tx_core::{StateView, TxPayload};
use doin_tx_node::TxChain;
use doin_types::{Amount, ChainId, Hash256, Height, Network, PublicKeyBytes};
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

    fn chain(&self) -> Result<Arc<TxChain>, String> {
        self.chain
            .upgrade()
            .ok_or_else(|| "the transfer chain is shut down".to_string())
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

    fn channel(&self, id: &ChannelId) -> Result<Option<Channel>, String> {
        self.chain()?.store().channel(id)
    }

    fn next_nonce(&self, key: &PublicKeyBytes) -> Result<u64, String> {
        self.chain()?
            .next_nonce(key)
            .map(|(n, _)| n)
            .map_err(|e| e.to_string())
    }

    fn base_fee(&self) -> Amount {
        self.chain()
            .map(|c| c.next_base_fee())
            .unwrap_or(Amount::ZERO)
    }

    fn htlc_claims(&self, from: Height, to: Height) -> Result<Vec<(ChannelId, [u8; 32])>, String> {
        let chain = self.chain()?;
        let to = to.min(chain.tip().final_height);
        let mut claims = Vec::new();
        for height in from..=to {
            // A block the node no longer keeps is skipped (the watch reads every few seconds,
            // far inside what pruning keeps).
            let Some(block) = chain.store().block(height).map_err(|e| e.to_string())? else {
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

    fn submit(&self, tx: &[u8]) -> Result<Hash256, String> {
        self.chain()?
            .submit(tx)
            .map(|o| o.id)
            .map_err(|e| e.to_string())
    }
}
