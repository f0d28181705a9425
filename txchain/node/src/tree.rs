//! The state tree (JMT) stored in `KvStore` column families, and pruning of old versions.
//!
//! - `tx_jmt_nodes`: borsh(NodeKey) → borsh(Node)
//! - `tx_jmt_values`: key hash ‖ version (BE) → 0x00 (deleted) | 0x01 ‖ value
//! - `tx_jmt_stale`: stale-since version (BE) → the nodes that went stale at that version, each
//!   as a 2-byte big-endian length ‖ borsh(NodeKey)
//! - `tx_jmt_stale_values`: stale-since version (BE) → the values that went stale at that version,
//!   each as key hash ‖ old version (BE)
//!
//! Staleness is recorded as one entry per version, not one per node: a block of thousands of
//! transfers makes tens of thousands of stale nodes, and every entry costs a write-batch insert;
//! pruning always deletes a version's records together anyway.
//!
//! A node or value that became stale at version `s` is only needed by versions below `s`, so
//! once every version below `s` is outside the retention window it is deleted. Without this
//! the tree grows by every node on every updated path, every block.

use doin_store::{Cf, Direction, KvStore, StoreError, WriteBatch};
use jmt::storage::{LeafNode, Node, NodeBatch, NodeKey, TreeReader};
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

/// One version's stale-node record: the keys of every node that went stale at that version.
pub fn encode_stale_nodes<'a>(
    node_keys: impl IntoIterator<Item = &'a NodeKey>,
) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::new();
    for node_key in node_keys {
        let k = borsh::to_vec(node_key).map_err(|e| corrupt("jmt node key", e))?;
        let len = u16::try_from(k.len()).map_err(|_| corrupt("jmt node key", "too long"))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&k);
    }
    Ok(out)
}

/// The stored node keys (borsh bytes) in a stale-node record.
pub fn decode_stale_nodes(record: &[u8]) -> Result<Vec<&[u8]>, StoreError> {
    let mut keys = Vec::new();
    let mut rest = record;
    while !rest.is_empty() {
        let (len, tail) = rest
            .split_first_chunk::<2>()
            .ok_or_else(|| corrupt("stale-node record", "truncated length"))?;
        let len = usize::from(u16::from_be_bytes(*len));
        if tail.len() < len {
            return Err(corrupt("stale-node record", "truncated key"));
        }
        let (key, tail) = tail.split_at(len);
        keys.push(key);
        rest = tail;
    }
    Ok(keys)
}

/// Width of one entry in a stale-value record: key hash ‖ old version.
const STALE_VALUE_ENTRY: usize = 40;

/// The `tx_jmt_values` keys in a stale-value record (each entry already is one).
pub fn decode_stale_values(record: &[u8]) -> Result<impl Iterator<Item = &[u8]>, StoreError> {
    if record.len() % STALE_VALUE_ENTRY != 0 {
        return Err(corrupt("stale-value record", "length"));
    }
    Ok(record.chunks_exact(STALE_VALUE_ENTRY))
}

/// Read access to the stored tree, for `jmt`.
pub struct StoreTree<'a> {
    kv: &'a dyn KvStore,
}

impl<'a> StoreTree<'a> {
    pub fn new(kv: &'a dyn KvStore) -> StoreTree<'a> {
        StoreTree { kv }
    }

    /// The newest stored entry of each key hash: the version it was written at and its value
    /// (`None` for a deletion); `None` when the key was never written. One iterator for all.
    pub fn latest_values(&self, key_hashes: &[KeyHash]) -> Result<Vec<LatestValue>, StoreError> {
        let probes: Vec<Vec<u8>> = key_hashes
            .iter()
            .map(|k| value_key(k, Version::MAX))
            .collect();
        let floors = self.kv.floor_entries(CF_JMT_VALUES, &probes)?;
        key_hashes
            .iter()
            .zip(floors)
            .map(|(key_hash, floor)| match floor {
                Some((k, v)) => match value_version_of(&k, key_hash) {
                    Some(version) => Ok(Some((version, decode_value(&v)?))),
                    None => Ok(None),
                },
                None => Ok(None),
            })
            .collect()
    }
}

/// A key's newest stored version and value (`None` value: deleted at that version).
pub type LatestValue = Option<(Version, Option<OwnedValue>)>;

/// A `tx_jmt_values` entry: 0x00 (deleted) or 0x01 ‖ value.
pub(crate) fn decode_value(stored: &[u8]) -> Result<Option<OwnedValue>, StoreError> {
    match stored.split_first() {
        Some((1, rest)) => Ok(Some(rest.to_vec())),
        Some((0, [])) => Ok(None),
        _ => Err(corrupt("jmt value entry", "unknown tag")),
    }
}

pub fn encode_value(value: Option<&[u8]>) -> Vec<u8> {
    match value {
        Some(bytes) => {
            let mut enc = Vec::with_capacity(1 + bytes.len());
            enc.push(1);
            enc.extend_from_slice(bytes);
            enc
        }
        None => vec![0],
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
            Some(Ok((k, v))) if value_version_of(&k, &key_hash).is_some() => Ok(decode_value(&v)?),
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

/// The stored tree with one block's pending update laid over it, so that proofs against the
/// version the block writes can be taken before the block's batch is committed (and go into
/// that same batch).
pub struct PendingTree<'a> {
    base: StoreTree<'a>,
    pending: &'a NodeBatch,
}

impl<'a> PendingTree<'a> {
    pub fn new(base: StoreTree<'a>, pending: &'a NodeBatch) -> PendingTree<'a> {
        PendingTree { base, pending }
    }
}

impl TreeReader for PendingTree<'_> {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        match self.pending.nodes().get(node_key) {
            Some(node) => Ok(Some(node.clone())),
            None => self.base.get_node_option(node_key),
        }
    }

    fn get_value_option(
        &self,
        max_version: Version,
        key_hash: KeyHash,
    ) -> anyhow::Result<Option<OwnedValue>> {
        // The pending batch holds one block's version; a write there at or below `max_version`
        // is newer than anything stored.
        let pending = self
            .pending
            .values()
            .iter()
            .rev()
            .find(|((version, key), _)| *key == key_hash && *version <= max_version);
        match pending {
            Some((_, value)) => Ok(value.clone()),
            None => self.base.get_value_option(max_version, key_hash),
        }
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        self.base.get_rightmost_leaf()
    }
}

/// Adds deletions of everything that went stale at or before `prune_to` to `batch`.
///
/// Deletes whole versions' records, oldest first, and stops before a version whose records
/// would take the count past `max_deletes` (but always takes at least one version, so pruning
/// never stalls behind a single large block). Returns the number of nodes and values deleted.
///
/// `from`: no record below this version is left (the caller remembers where the last prune
/// stopped). Records are deleted, not compacted away at once: a scan from the start would step
/// over every deleted record of the node's life, block after block. Returns, with the count, the
/// version the next prune can start from.
pub fn prune(
    kv: &dyn KvStore,
    batch: &mut WriteBatch,
    prune_to: Version,
    max_deletes: usize,
    from: Version,
) -> Result<(usize, Version), StoreError> {
    let start = from.to_be_bytes();
    // Where each column's next prune starts: past `prune_to` unless the cap stopped it at a
    // version it did not take.
    let mut next_nodes = prune_to.saturating_add(1);
    let mut deleted = 0usize;
    for item in kv.iter_from(CF_JMT_STALE, &start, Direction::Forward)? {
        let (k, record) = item?;
        let version = version_of_record(&k)?;
        if version > prune_to {
            break;
        }
        let keys = decode_stale_nodes(&record)?;
        if deleted > 0 && deleted.saturating_add(keys.len()) > max_deletes {
            next_nodes = version;
            break;
        }
        for node_key in &keys {
            batch.delete(CF_JMT_NODES, node_key.to_vec());
        }
        deleted = deleted.saturating_add(keys.len());
        batch.delete(CF_JMT_STALE, k);
    }
    let mut next_values = prune_to.saturating_add(1);
    let mut values_deleted = 0usize;
    for item in kv.iter_from(CF_JMT_STALE_VALUES, &start, Direction::Forward)? {
        let (k, record) = item?;
        let version = version_of_record(&k)?;
        if version > prune_to {
            break;
        }
        let count = record.len() / STALE_VALUE_ENTRY;
        if values_deleted > 0 && values_deleted.saturating_add(count) > max_deletes {
            next_values = version;
            break;
        }
        for value_key in decode_stale_values(&record)? {
            batch.delete(CF_JMT_VALUES, value_key.to_vec());
        }
        values_deleted = values_deleted.saturating_add(count);
        batch.delete(CF_JMT_STALE_VALUES, k);
    }
    Ok((
        deleted.saturating_add(values_deleted),
        next_nodes.min(next_values),
    ))
}

fn version_of_record(key: &[u8]) -> Result<Version, StoreError> {
    let bytes: [u8; 8] = key
        .try_into()
        .map_err(|_| corrupt("stale record", "key is not a version"))?;
    Ok(u64::from_be_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jmt::storage::NodeKey;

    /// A node key at `version` whose path is the two nibbles of `byte` (built from its borsh
    /// form: version, nibble count, path bytes — `jmt` keeps the constructors private).
    fn node_key(version: u64, byte: u8) -> NodeKey {
        let mut raw = version.to_le_bytes().to_vec();
        raw.extend_from_slice(&2u64.to_le_bytes());
        raw.extend_from_slice(&1u32.to_le_bytes());
        raw.push(byte);
        borsh::from_slice(&raw).unwrap()
    }

    #[test]
    fn stale_node_records_round_trip_and_reject_truncation() {
        let keys = [node_key(7, 0xab), node_key(u64::MAX, 0x12)];
        let record = encode_stale_nodes(keys.iter()).unwrap();
        let decoded = decode_stale_nodes(&record).unwrap();
        assert_eq!(decoded.len(), 2);
        for (raw, key) in decoded.iter().zip(&keys) {
            assert_eq!(*raw, borsh::to_vec(key).unwrap().as_slice());
        }
        for cut in 1..record.len() {
            if cut == record.len() / 2 {
                continue; // a boundary between two whole entries
            }
            assert!(decode_stale_nodes(&record[..cut]).is_err(), "cut at {cut}");
        }
        assert!(decode_stale_nodes(&[]).unwrap().is_empty());
    }

    #[test]
    fn stale_value_records_must_hold_whole_entries() {
        assert_eq!(decode_stale_values(&[0u8; 80]).unwrap().count(), 2);
        assert!(decode_stale_values(&[0u8; 79]).is_err());
    }

    #[test]
    fn pruning_resumes_where_the_cap_stopped_it_and_never_rescans_pruned_versions() {
        let kv = doin_store::MemStore::new(&[
            CF_JMT_NODES,
            CF_JMT_VALUES,
            CF_JMT_STALE,
            CF_JMT_STALE_VALUES,
        ]);
        let mut b = WriteBatch::new();
        for version in 1..=5u64 {
            let keys = [node_key(version, 1), node_key(version, 2)];
            for key in &keys {
                b.put(CF_JMT_NODES, borsh::to_vec(key).unwrap(), vec![0]);
            }
            b.put(
                CF_JMT_STALE,
                version.to_be_bytes().to_vec(),
                encode_stale_nodes(keys.iter()).unwrap(),
            );
        }
        kv.write(b, doin_store::Durability::Sync).unwrap();
        let stale = |kv: &doin_store::MemStore| {
            kv.iter_from(CF_JMT_STALE, &[], Direction::Forward)
                .unwrap()
                .count()
        };
        // A cap of 3 deletions takes version 1 (2 nodes), not version 2: the next prune
        // starts at 2.
        let mut b = WriteBatch::new();
        let (deleted, next) = prune(&kv, &mut b, 4, 3, 0).unwrap();
        kv.write(b, doin_store::Durability::Sync).unwrap();
        assert_eq!((deleted, next), (2, 2));
        assert_eq!(stale(&kv), 4);
        // Uncapped, it takes 2 to 4 and says the next starts after 4.
        let mut b = WriteBatch::new();
        let (deleted, next) = prune(&kv, &mut b, 4, 1_000, next).unwrap();
        kv.write(b, doin_store::Durability::Sync).unwrap();
        assert_eq!((deleted, next), (6, 5));
        assert_eq!(stale(&kv), 1);
        // Nothing at or below the bound: the start moves past it all the same.
        let mut b = WriteBatch::new();
        assert_eq!(prune(&kv, &mut b, 4, 1_000, next).unwrap(), (0, 5));
    }

    #[test]
    fn record_keys_must_be_versions() {
        assert_eq!(version_of_record(&5u64.to_be_bytes()).unwrap(), 5);
        assert!(version_of_record(&[0u8; 9]).is_err());
    }
}
