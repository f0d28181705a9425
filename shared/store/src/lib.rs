//! Key-value storage behind one small trait.
//!
//! `KvStore` is what services need from storage: point reads, ordered scans and atomic batches
//! with an explicit durability level. `RocksStore` is the production implementation (one
//! RocksDB per node, one column family per kind of data); `MemStore` is its in-memory twin for
//! unit tests of code that is not about storage. Both pass the same conformance tests.
//!
//! This crate knows nothing about blocks or accounts: column family names and key layouts belong
//! to the services that use it.

// Every dependency in Cargo.toml is used (checked outside test builds, which also see the
// dev-dependencies).
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod mem;
mod rocks;
mod table;

/// Storage failure (defined with the other port errors in `doin-types`).
pub use doin_types::StoreError;
pub use mem::MemStore;
pub use rocks::{RocksConfig, RocksStore};
pub use table::{BigEndian, Canonical, FixedKey, Raw, Table, TableKey, ValueCodec};

/// A column family name. Services declare theirs as constants and pass the full list when the
/// store is opened.
pub type Cf = &'static str;

/// How hard a write must reach the disk before `write` returns.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Written to the write-ahead log and fsynced: survives power loss. Used for blocks.
    Sync,
    /// Written to the write-ahead log without fsync: survives a process crash (kill -9) but
    /// maybe not power loss. Used for caches that can be rebuilt, such as the mempool.
    Buffered,
    /// Not written to the write-ahead log: lost on a crash unless `KvStore::flush` returned
    /// after it. For bulk loads that are redone from the start when interrupted (a snapshot
    /// restore), where the log would only double what is written.
    Unlogged,
}

/// Iteration direction for `KvStore::iter_from`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Keys ≥ start, ascending.
    Forward,
    /// Keys ≤ start, descending.
    Reverse,
}

/// One operation of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchOp {
    Put {
        cf: Cf,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        cf: Cf,
        key: Vec<u8>,
    },
}

/// A set of writes applied all together or not at all.
#[derive(Clone, Debug, Default)]
pub struct WriteBatch {
    ops: Vec<BatchOp>,
}

impl WriteBatch {
    pub fn new() -> WriteBatch {
        WriteBatch::default()
    }

    pub fn put(&mut self, cf: Cf, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push(BatchOp::Put {
            cf,
            key: key.into(),
            value: value.into(),
        });
    }

    pub fn delete(&mut self, cf: Cf, key: impl Into<Vec<u8>>) {
        self.ops.push(BatchOp::Delete {
            cf,
            key: key.into(),
        });
    }

    pub fn extend(&mut self, other: WriteBatch) {
        self.ops.extend(other.ops);
    }

    pub fn ops(&self) -> &[BatchOp] {
        &self.ops
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// A key-value entry from a scan.
pub type KvPair = (Vec<u8>, Vec<u8>);

/// Boxed scan iterator.
pub type KvIter<'a> = Box<dyn Iterator<Item = Result<KvPair, StoreError>> + 'a>;

/// The storage port every service uses.
pub trait KvStore: Send + Sync + 'static {
    /// Reads one value.
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Applies every operation of `batch` atomically.
    fn write(&self, batch: WriteBatch, durability: Durability) -> Result<(), StoreError>;

    /// Makes every write so far survive power loss, `Durability::Unlogged` ones included:
    /// returns once they are in fsynced table files.
    fn flush(&self) -> Result<(), StoreError>;

    /// Ordered scan starting at `start` (inclusive) in `direction`.
    fn iter_from<'a>(
        &'a self,
        cf: Cf,
        start: &[u8],
        direction: Direction,
    ) -> Result<KvIter<'a>, StoreError>;

    /// Entries whose key starts with `prefix`, ascending.
    /// Values of many keys of one column family, in the order asked. Backends batch the reads
    /// (sorted input is fastest); the default reads one by one.
    fn multi_get(&self, cf: Cf, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        keys.iter().map(|k| self.get(cf, k)).collect()
    }

    /// For each key, the stored entry with the greatest key that is ≤ it (`None` when there is
    /// none). Backends answer many look-ups with one iterator; the default seeks afresh per key.
    fn floor_entries(&self, cf: Cf, keys: &[Vec<u8>]) -> Result<Vec<Option<KvPair>>, StoreError> {
        keys.iter()
            .map(|k| {
                let mut it = self.iter_from(cf, k, Direction::Reverse)?;
                it.next().transpose()
            })
            .collect()
    }

    /// Bytes the column families `cfs` take on disk (their live table files), for metrics;
    /// `None` for a backend without files.
    fn disk_bytes(&self, cfs: &[Cf]) -> Option<u64> {
        let _ = cfs;
        None
    }

    fn scan_prefix<'a>(&'a self, cf: Cf, prefix: &[u8]) -> Result<KvIter<'a>, StoreError> {
        let prefix = prefix.to_vec();
        let it = self.iter_from(cf, &prefix, Direction::Forward)?;
        Ok(Box::new(it.take_while(move |r| match r {
            Ok((k, _)) => k.starts_with(&prefix),
            Err(_) => true,
        })))
    }
}

#[cfg(test)]
pub(crate) mod conformance {
    //! Behaviour both implementations must share.
    use super::*;

    pub(crate) const CF_A: Cf = "a";
    pub(crate) const CF_B: Cf = "b";

    fn collect(it: KvIter<'_>) -> Vec<KvPair> {
        it.map(|r| r.unwrap()).collect()
    }

    pub(crate) fn run(store: &dyn KvStore) {
        assert_eq!(store.get(CF_A, b"k").unwrap(), None);
        let mut b = WriteBatch::new();
        b.put(CF_A, b"k1".to_vec(), b"v1".to_vec());
        b.put(CF_A, b"k2".to_vec(), b"v2".to_vec());
        b.put(CF_A, b"k3".to_vec(), b"v3".to_vec());
        b.put(CF_B, b"k1".to_vec(), b"other".to_vec());
        b.put(CF_A, b"z".to_vec(), b"last".to_vec());
        store.write(b, Durability::Sync).unwrap();
        assert_eq!(store.get(CF_A, b"k1").unwrap(), Some(b"v1".to_vec()));
        assert_eq!(store.get(CF_B, b"k1").unwrap(), Some(b"other".to_vec()));

        // Later ops in one batch win; deletes apply.
        let mut b = WriteBatch::new();
        b.put(CF_A, b"k2".to_vec(), b"x".to_vec());
        b.put(CF_A, b"k2".to_vec(), b"v2b".to_vec());
        b.delete(CF_A, b"k3".to_vec());
        store.write(b, Durability::Buffered).unwrap();
        assert_eq!(store.get(CF_A, b"k2").unwrap(), Some(b"v2b".to_vec()));

        // Unlogged writes read back at once, like any other, and stay after a flush.
        let mut b = WriteBatch::new();
        b.put(CF_B, b"bulk".to_vec(), b"loaded".to_vec());
        store.write(b, Durability::Unlogged).unwrap();
        assert_eq!(store.get(CF_B, b"bulk").unwrap(), Some(b"loaded".to_vec()));
        store.flush().unwrap();
        assert_eq!(store.get(CF_B, b"bulk").unwrap(), Some(b"loaded".to_vec()));
        assert_eq!(store.get(CF_A, b"k3").unwrap(), None);

        assert_eq!(
            store
                .multi_get(CF_A, &[b"k2".to_vec(), b"nope".to_vec(), b"k1".to_vec()])
                .unwrap(),
            vec![Some(b"v2b".to_vec()), None, Some(b"v1".to_vec())]
        );
        assert_eq!(
            store
                .floor_entries(
                    CF_A,
                    &[
                        b"a".to_vec(),
                        b"k1".to_vec(),
                        b"k15".to_vec(),
                        b"zz".to_vec()
                    ]
                )
                .unwrap(),
            vec![
                None,
                Some((b"k1".to_vec(), b"v1".to_vec())),
                Some((b"k1".to_vec(), b"v1".to_vec())),
                Some((b"z".to_vec(), b"last".to_vec()))
            ]
        );

        let fwd = collect(store.iter_from(CF_A, b"k15", Direction::Forward).unwrap());
        assert_eq!(
            fwd,
            vec![
                (b"k2".to_vec(), b"v2b".to_vec()),
                (b"z".to_vec(), b"last".to_vec())
            ]
        );
        let rev = collect(store.iter_from(CF_A, b"k2", Direction::Reverse).unwrap());
        assert_eq!(
            rev,
            vec![
                (b"k2".to_vec(), b"v2b".to_vec()),
                (b"k1".to_vec(), b"v1".to_vec())
            ]
        );
        let rev_between = collect(store.iter_from(CF_A, b"k15", Direction::Reverse).unwrap());
        assert_eq!(rev_between, vec![(b"k1".to_vec(), b"v1".to_vec())]);
        let pre = collect(store.scan_prefix(CF_A, b"k").unwrap());
        assert_eq!(pre.len(), 2);
        assert!(store.get("nope", b"k").is_err());
    }
}
