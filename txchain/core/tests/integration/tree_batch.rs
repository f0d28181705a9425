//! The state root is computed with the tree's batch insertion (each touched node built once per
//! block). This checks it against key-by-key insertion over random blocks: same root, same new
//! nodes, same stale-node records — so the faster path writes exactly the tree the slower one
//! would, version after version.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use doin_tx_core::apply::compute_state_root;
use doin_tx_core::jmt::storage::{LeafNode, Node, NodeKey, TreeReader, TreeUpdateBatch};
use doin_tx_core::jmt::{KeyHash, OwnedValue, Sha256Jmt, Version};
use doin_tx_core::{Account, ChainStats, StateDiff};
use doin_types::{Amount, PublicKeyBytes};
use proptest::prelude::*;
use std::collections::BTreeMap;

#[derive(Default)]
struct Store {
    nodes: BTreeMap<NodeKey, Node>,
    values: BTreeMap<(KeyHash, Version), Option<OwnedValue>>,
}

impl Store {
    fn apply(&mut self, b: &TreeUpdateBatch) {
        for (k, n) in b.node_batch.nodes() {
            self.nodes.insert(k.clone(), n.clone());
        }
        for ((v, k), val) in b.node_batch.values() {
            self.values.insert((*k, *v), val.clone());
        }
    }
}

impl TreeReader for Store {
    fn get_node_option(&self, k: &NodeKey) -> anyhow::Result<Option<Node>> {
        Ok(self.nodes.get(k).cloned())
    }
    fn get_value_option(&self, max: Version, key: KeyHash) -> anyhow::Result<Option<OwnedValue>> {
        Ok(self
            .values
            .range((key, 0)..=(key, max))
            .next_back()
            .and_then(|(_, v)| v.clone()))
    }
    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        Ok(None)
    }
}

fn stale(b: &TreeUpdateBatch) -> Vec<(Version, NodeKey)> {
    let mut v: Vec<_> = b
        .stale_node_index_batch
        .iter()
        .map(|s| (s.stale_since_version, s.node_key.clone()))
        .collect();
    v.sort();
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 60, ..ProptestConfig::default() })]

    #[test]
    fn batch_and_key_by_key_insertion_build_the_same_tree(
        blocks in proptest::collection::vec(
            proptest::collection::btree_map(0u8..200, 1u64..1_000_000, 1..60),
            1..6,
        )
    ) {
        let mut store = Store::default();
        for (version, updates) in blocks.iter().enumerate() {
            let diff = StateDiff {
                stakes: Default::default(),
                stakers: None,
                validators: None,
                channels: Default::default(),
                accounts: updates
                    .iter()
                    .map(|(k, b)| {
                        (
                            PublicKeyBytes([*k; 32]),
                            Account { balance: Amount::from_base_units(*b), nonce: *b % 7 },
                        )
                    })
                    .collect(),
                chain_stats: ChainStats::default(),
            };
            let version = version as Version;
            let (root, batch) = compute_state_root(&store, version, &diff).unwrap();
            let (seq_root, seq_batch) = Sha256Jmt::new(&store)
                .put_value_set(diff.to_value_set().unwrap(), version)
                .unwrap();
            prop_assert_eq!(root.0, seq_root.0);
            prop_assert_eq!(batch.node_batch.nodes(), seq_batch.node_batch.nodes());
            prop_assert_eq!(batch.node_batch.values(), seq_batch.node_batch.values());
            prop_assert_eq!(stale(&batch), stale(&seq_batch));
            store.apply(&batch);
        }
    }
}
