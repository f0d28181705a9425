//! `MemoryState`: the whole transfer-chain state in memory.
//!
//! It is the reference the persistent store is compared against (same diffs in, same roots
//! out), and the state used by property tests and simulations. It keeps every tree version and
//! never prunes; production nodes use the store-backed state of `doin-tx-node`.

use crate::apply::AppliedBlock;
use crate::bft::EpochValidators;
use crate::channel::{Channel, ChannelId};
use crate::stake::{Stake, StakeRole};
use crate::state::{Account, ChainStats, StateView};
use doin_types::{PortError, PublicKeyBytes};
use jmt::storage::{LeafNode, Node, NodeKey, TreeReader};
use jmt::{KeyHash, OwnedValue, Version};
use std::collections::BTreeMap;

#[derive(Default, Clone)]
pub struct MemoryState {
    nodes: BTreeMap<NodeKey, Node>,
    values: BTreeMap<(KeyHash, Version), Option<OwnedValue>>,
    accounts: BTreeMap<PublicKeyBytes, Account>,
    stakes: BTreeMap<(PublicKeyBytes, StakeRole), Stake>,
    stakers: Vec<(PublicKeyBytes, StakeRole)>,
    validators: Option<EpochValidators>,
    channels: BTreeMap<ChannelId, Channel>,
    stats: ChainStats,
}

impl MemoryState {
    pub fn new() -> MemoryState {
        MemoryState::default()
    }

    /// Commits an applied block (or genesis).
    pub fn commit(&mut self, applied: &AppliedBlock) {
        let batch = &applied.tree_update.node_batch;
        for (k, n) in batch.nodes() {
            self.nodes.insert(k.clone(), n.clone());
        }
        for ((version, key), value) in batch.values() {
            self.values.insert((*key, *version), value.clone());
        }
        for (k, a) in &applied.diff.accounts {
            self.accounts.insert(*k, *a);
        }
        for (k, st) in &applied.diff.stakes {
            self.stakes.insert(*k, st.clone());
        }
        if let Some(list) = &applied.diff.stakers {
            self.stakers = list.clone();
        }
        if let Some(sets) = &applied.diff.validators {
            self.validators = Some(sets.clone());
        }
        for (id, c) in &applied.diff.channels {
            self.channels.insert(*id, c.clone());
        }
        self.stats = applied.diff.chain_stats;
    }

    /// Every stake.
    pub fn stakes(&self) -> &BTreeMap<(PublicKeyBytes, StakeRole), Stake> {
        &self.stakes
    }

    /// Every account with its state.
    pub fn accounts(&self) -> &BTreeMap<PublicKeyBytes, Account> {
        &self.accounts
    }
}

impl StateView for MemoryState {
    fn account(&self, key: &PublicKeyBytes) -> Result<Option<Account>, PortError> {
        Ok(self.accounts.get(key).copied())
    }

    fn chain_stats(&self) -> Result<ChainStats, PortError> {
        Ok(self.stats)
    }

    fn stake(&self, owner: &PublicKeyBytes, role: StakeRole) -> Result<Option<Stake>, PortError> {
        Ok(self.stakes.get(&(*owner, role)).cloned())
    }

    fn stakers(&self) -> Result<Vec<(PublicKeyBytes, StakeRole)>, PortError> {
        Ok(self.stakers.clone())
    }

    fn validators(&self) -> Result<EpochValidators, PortError> {
        self.validators.clone().ok_or_else(|| {
            PortError::Corrupt("no validator sets: genesis was not committed".into())
        })
    }

    fn channel(&self, id: &ChannelId) -> Result<Option<Channel>, PortError> {
        Ok(self.channels.get(id).cloned())
    }
}

impl TreeReader for MemoryState {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        Ok(self.nodes.get(node_key).cloned())
    }

    fn get_value_option(
        &self,
        max_version: Version,
        key_hash: KeyHash,
    ) -> anyhow::Result<Option<OwnedValue>> {
        Ok(self
            .values
            .range((key_hash, 0)..=(key_hash, max_version))
            .next_back()
            .and_then(|(_, v)| v.clone()))
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        let mut best: Option<(NodeKey, LeafNode)> = None;
        for (k, n) in &self.nodes {
            if let Node::Leaf(leaf) = n {
                if best
                    .as_ref()
                    .is_none_or(|(_, b)| leaf.key_hash() > b.key_hash())
                {
                    best = Some((k.clone(), leaf.clone()));
                }
            }
        }
        Ok(best)
    }
}
