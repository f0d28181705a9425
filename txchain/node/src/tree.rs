//! The state tree (JMT) stored in `KvStore` column families, and pruning of old versions.
//!
//! - `tx_jmt_nodes`: borsh(NodeKey) → borsh(Node)
//! - `tx_jmt_values`: key hash ‖ version (BE) → 0x00 (deleted) | 0x01 ‖ value
//! - `tx_jmt_stale`: stale-since version (BE) ‖ borsh(NodeKey) → ∅
//! - `tx_jmt_stale_values`: stale-since version (BE) ‖ key hash ‖ old version (BE) → ∅
//!
//! A node or value that became stale at version `s` is only needed by versions below `s`, so
//! once every version below `s` is outside the retention window it is deleted. Without this
//! the tree grows by every node on every updated path, every block.

use doin_store::{Cf, Direction, KvStore, StoreError, WriteBatch};
use jmt::storage::{LeafNode, Node, NodeKey, TreeReader};
use jmt::{KeyHash, OwnedValue, Version};

pub const CF_JMT_NODES: Cf = "tx_jmt_nodes";
pub const CF_JMT_VALUES: Cf = "tx_jmt_values";
pub const CF_JMT_STALE: Cf = "tx_jmt_stale";
pub const CF_JMT_STALE_VALUES: Cf = "tx_jmt_stale_values";

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

/// The version in a `tx_jmt_values` key, if the key belongs to `key_hash`.
pub fn value_version_of(stored_key: &[u8], key_hash: &KeyHash) -> Option<Version> {
    if stored_key.len() != 40 || stored_key[..32] != key_hash.0 {
        return None;
    }
    let mut v = [0u8; 8];
    v.copy_from_slice(&stored_key[32..]);
    Some(u64::from_be_bytes(v))
}

pub fn value_key(key_hash: &KeyHash, version: Version) -> Vec<u8> {
    let mut k = Vec::with_capacity(40);
    k.extend_from_slice(&key_hash.0);
    k.extend_from_slice(&version.to_be_bytes());
    k
}

pub fn stale_node_key(since: Version, node_key: &NodeKey) -> Result<Vec<u8>, StoreError> {
    let mut k = since.to_be_bytes().to_vec();
    k.extend(borsh::to_vec(node_key).map_err(|e| corrupt("jmt node key", e))?);
    Ok(k)
}

pub fn stale_value_key(since: Version, key_hash: &KeyHash, old_version: Version) -> Vec<u8> {
    let mut k = since.to_be_bytes().to_vec();
    k.extend_from_slice(&key_hash.0);
    k.extend_from_slice(&old_version.to_be_bytes());
    k
}

/// Read access to the stored tree, for `jmt`.
pub struct StoreTree<'a> {
    kv: &'a dyn KvStore,
}

impl<'a> StoreTree<'a> {
    pub fn new(kv: &'a dyn KvStore) -> StoreTree<'a> {
        StoreTree { kv }
    }

    /// Newest version ≤ `max_version` at which `key_hash` was written, if any.
    pub fn latest_value_version(
        &self,
        key_hash: &KeyHash,
        max_version: Version,
    ) -> Result<Option<Version>, StoreError> {
        let start = value_key(key_hash, max_version);
        let mut it = self
            .kv
            .iter_from(CF_JMT_VALUES, &start, Direction::Reverse)?;
        match it.next() {
            Some(Ok((k, _))) => Ok(value_version_of(&k, key_hash)),
            Some(Err(e)) => Err(e),
            None => Ok(None),
        }
    }
}

impl TreeReader for StoreTree<'_> {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        let k = borsh::to_vec(node_key)?;
        match self.kv.get(CF_JMT_NODES, &k)? {
            None => Ok(None),
            Some(b) => Ok(Some(borsh::from_slice(&b)?)),
        }
    }

    fn get_value_option(
        &self,
        max_version: Version,
        key_hash: KeyHash,
    ) -> anyhow::Result<Option<OwnedValue>> {
        let start = value_key(&key_hash, max_version);
        let mut it = self
            .kv
            .iter_from(CF_JMT_VALUES, &start, Direction::Reverse)?;
        match it.next() {
            Some(Ok((k, v))) if k.len() == 40 && k[..32] == key_hash.0 => match v.split_first() {
                Some((1, rest)) => Ok(Some(rest.to_vec())),
                Some((0, [])) => Ok(None),
                _ => Err(anyhow::anyhow!("corrupt jmt value entry")),
            },
            Some(Err(e)) => Err(e.into()),
            _ => Ok(None),
        }
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        // Only `jmt::restore` (state sync from a snapshot) asks for this. Snapshot restore is
        // not implemented by this node yet, so reaching this is a bug, reported as an error.
        Err(anyhow::anyhow!(
            "rightmost-leaf lookup is only used by snapshot restore, which this store does not support"
        ))
    }
}

/// Adds deletions of everything that went stale at or before `prune_to` to `batch`.
pub fn prune(
    kv: &dyn KvStore,
    batch: &mut WriteBatch,
    prune_to: Version,
    max_deletes: usize,
) -> Result<usize, StoreError> {
    let mut deleted = 0;
    for item in kv.iter_from(CF_JMT_STALE, &[], Direction::Forward)? {
        let (k, _) = item?;
        if k.len() < 8 || deleted >= max_deletes {
            break;
        }
        let since = u64::from_be_bytes(
            k[..8]
                .try_into()
                .map_err(|_| corrupt("stale index", "key"))?,
        );
        if since > prune_to {
            break;
        }
        batch.delete(CF_JMT_NODES, k[8..].to_vec());
        batch.delete(CF_JMT_STALE, k);
        deleted += 1;
    }
    for item in kv.iter_from(CF_JMT_STALE_VALUES, &[], Direction::Forward)? {
        let (k, _) = item?;
        if k.len() != 48 || deleted >= max_deletes {
            break;
        }
        let since = u64::from_be_bytes(
            k[..8]
                .try_into()
                .map_err(|_| corrupt("stale values", "key"))?,
        );
        if since > prune_to {
            break;
        }
        let mut vk = k[8..40].to_vec();
        vk.extend_from_slice(&k[40..48]);
        batch.delete(CF_JMT_VALUES, vk);
        batch.delete(CF_JMT_STALE_VALUES, k);
        deleted += 1;
    }
    Ok(deleted)
}
