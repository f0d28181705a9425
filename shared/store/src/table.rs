//! Typed tables: a column family with the type of its keys and values, so a store module
//! declares its layout once (`const BLOCKS: Table<u64, MainBlock> = Table::new(..)`) and reads
//! and writes values instead of bytes.
//!
//! Keys are encoded so that byte order is the key order (integers big-endian, fixed-size byte
//! strings as they are, tuples as their parts one after the other), which the ordered scans
//! rely on. Values use the canonical encoding by default ([`Canonical`], `doin-codec`), or a
//! codec named as the third parameter ([`BigEndian`] heights, [`Raw`] bytes) where the layout
//! predates this module. Anything that does not decode is [`StoreError::Corrupt`], named after
//! the table.

use crate::{Cf, Direction, KvStore, StoreError, WriteBatch};
use doin_types::{Hash256, PublicKeyBytes};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::marker::PhantomData;

/// How a key is written as bytes. Byte order must be key order.
pub trait TableKey: Sized {
    fn to_key_bytes(&self) -> Vec<u8>;
    /// The key written as `bytes`; `None` when they are not one.
    fn from_key_bytes(bytes: &[u8]) -> Option<Self>;
}

/// A key of fixed length, which can lead a composite key.
pub trait FixedKey: TableKey {
    const LEN: usize;
}

impl TableKey for u64 {
    fn to_key_bytes(&self) -> Vec<u8> {
        self.to_be_bytes().to_vec()
    }
    fn from_key_bytes(bytes: &[u8]) -> Option<Self> {
        Some(u64::from_be_bytes(bytes.try_into().ok()?))
    }
}

impl FixedKey for u64 {
    const LEN: usize = 8;
}

impl TableKey for u32 {
    fn to_key_bytes(&self) -> Vec<u8> {
        self.to_be_bytes().to_vec()
    }
    fn from_key_bytes(bytes: &[u8]) -> Option<Self> {
        Some(u32::from_be_bytes(bytes.try_into().ok()?))
    }
}

impl FixedKey for u32 {
    const LEN: usize = 4;
}

impl TableKey for Hash256 {
    fn to_key_bytes(&self) -> Vec<u8> {
        self.0.to_vec()
    }
    fn from_key_bytes(bytes: &[u8]) -> Option<Self> {
        Some(Hash256(bytes.try_into().ok()?))
    }
}

impl FixedKey for Hash256 {
    const LEN: usize = 32;
}

impl TableKey for PublicKeyBytes {
    fn to_key_bytes(&self) -> Vec<u8> {
        self.0.to_vec()
    }
    fn from_key_bytes(bytes: &[u8]) -> Option<Self> {
        Some(PublicKeyBytes(bytes.try_into().ok()?))
    }
}

impl FixedKey for PublicKeyBytes {
    const LEN: usize = 32;
}

/// Free-form keys (names, or layouts a store builds itself).
impl TableKey for Vec<u8> {
    fn to_key_bytes(&self) -> Vec<u8> {
        self.clone()
    }
    fn from_key_bytes(bytes: &[u8]) -> Option<Self> {
        Some(bytes.to_vec())
    }
}

impl TableKey for String {
    fn to_key_bytes(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
    fn from_key_bytes(bytes: &[u8]) -> Option<Self> {
        String::from_utf8(bytes.to_vec()).ok()
    }
}

impl<A: FixedKey, B: TableKey> TableKey for (A, B) {
    fn to_key_bytes(&self) -> Vec<u8> {
        let mut k = self.0.to_key_bytes();
        k.extend_from_slice(&self.1.to_key_bytes());
        k
    }
    fn from_key_bytes(bytes: &[u8]) -> Option<Self> {
        let (a, b) = bytes.split_at_checked(A::LEN)?;
        Some((A::from_key_bytes(a)?, B::from_key_bytes(b)?))
    }
}

impl<A: FixedKey, B: FixedKey> FixedKey for (A, B) {
    const LEN: usize = A::LEN + B::LEN;
}

impl<A: FixedKey, B: FixedKey, C: TableKey> TableKey for (A, B, C) {
    fn to_key_bytes(&self) -> Vec<u8> {
        let mut k = self.0.to_key_bytes();
        k.extend_from_slice(&self.1.to_key_bytes());
        k.extend_from_slice(&self.2.to_key_bytes());
        k
    }
    fn from_key_bytes(bytes: &[u8]) -> Option<Self> {
        let (a, rest) = bytes.split_at_checked(A::LEN)?;
        let (b, c) = rest.split_at_checked(B::LEN)?;
        Some((
            A::from_key_bytes(a)?,
            B::from_key_bytes(b)?,
            C::from_key_bytes(c)?,
        ))
    }
}

/// How a table's values are written as bytes.
pub trait ValueCodec<V> {
    fn encode_value(value: &V) -> Result<Vec<u8>, String>;
    fn decode_value(bytes: &[u8]) -> Result<V, String>;
}

/// The canonical encoding (`doin-codec`): exact, bounded, no trailing bytes.
pub struct Canonical;

impl<V: Serialize + DeserializeOwned> ValueCodec<V> for Canonical {
    fn encode_value(value: &V) -> Result<Vec<u8>, String> {
        doin_codec::encode(value).map_err(|e| e.to_string())
    }
    fn decode_value(bytes: &[u8]) -> Result<V, String> {
        doin_codec::decode_exact(bytes).map_err(|e| e.to_string())
    }
}

/// A `u64` as 8 big-endian bytes (heights that point at other keys).
pub struct BigEndian;

impl ValueCodec<u64> for BigEndian {
    fn encode_value(value: &u64) -> Result<Vec<u8>, String> {
        Ok(value.to_be_bytes().to_vec())
    }
    fn decode_value(bytes: &[u8]) -> Result<u64, String> {
        let arr: [u8; 8] = bytes.try_into().map_err(|_| "not 8 bytes".to_string())?;
        Ok(u64::from_be_bytes(arr))
    }
}

/// Bytes kept as they are (canonical transaction bytes, markers, layouts decoded by the
/// caller).
pub struct Raw;

impl ValueCodec<Vec<u8>> for Raw {
    fn encode_value(value: &Vec<u8>) -> Result<Vec<u8>, String> {
        Ok(value.clone())
    }
    fn decode_value(bytes: &[u8]) -> Result<Vec<u8>, String> {
        Ok(bytes.to_vec())
    }
}

/// Marks the types a table holds without owning any (`fn() -> T` keeps the table `Send`,
/// `Sync` and `Copy` whatever `T` is).
type Holds<K, V, C> = PhantomData<fn() -> (K, V, C)>;

/// One column family with typed keys `K` and values `V` (encoded by `C`).
pub struct Table<K, V, C = Canonical> {
    cf: Cf,
    /// What a value is, for error messages ("main block", "hub channel").
    what: &'static str,
    types: Holds<K, V, C>,
}

impl<K, V, C> Clone for Table<K, V, C> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K, V, C> Copy for Table<K, V, C> {}

impl<K, V, C> std::fmt::Debug for Table<K, V, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Table({})", self.cf)
    }
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

impl<K: TableKey, V, C: ValueCodec<V>> Table<K, V, C> {
    pub const fn new(cf: Cf, what: &'static str) -> Self {
        Table {
            cf,
            what,
            types: PhantomData,
        }
    }

    pub const fn cf(&self) -> Cf {
        self.cf
    }

    fn decode(&self, bytes: &[u8]) -> Result<V, StoreError> {
        C::decode_value(bytes).map_err(|e| corrupt(self.what, e))
    }

    fn decode_key(&self, bytes: &[u8]) -> Result<K, StoreError> {
        K::from_key_bytes(bytes).ok_or_else(|| corrupt(self.what, "malformed key"))
    }

    /// The value under `key`.
    pub fn get(&self, kv: &dyn KvStore, key: &K) -> Result<Option<V>, StoreError> {
        kv.get(self.cf, &key.to_key_bytes())?
            .map(|b| self.decode(&b))
            .transpose()
    }

    /// Adds "`key` → `value`" to `batch`.
    pub fn put(&self, batch: &mut WriteBatch, key: &K, value: &V) -> Result<(), StoreError> {
        let bytes = C::encode_value(value).map_err(|e| corrupt(self.what, e))?;
        batch.put(self.cf, key.to_key_bytes(), bytes);
        Ok(())
    }

    /// Adds the deletion of `key` to `batch`.
    pub fn delete(&self, batch: &mut WriteBatch, key: &K) {
        batch.delete(self.cf, key.to_key_bytes());
    }

    /// Entries from `start` (inclusive; `None`: the first, or the last going back) in
    /// `direction`, decoded as they are read.
    pub fn iter<'a>(
        &self,
        kv: &'a dyn KvStore,
        start: Option<&K>,
        direction: Direction,
    ) -> Result<impl Iterator<Item = Result<(K, V), StoreError>> + 'a, StoreError>
    where
        K: 'a,
        V: 'a,
        C: 'a,
    {
        let from = match (start, direction) {
            (Some(k), _) => k.to_key_bytes(),
            (None, Direction::Forward) => Vec::new(),
            // Longer than any key of ours, and all 0xff: at or after every key.
            (None, Direction::Reverse) => vec![0xff; 256],
        };
        let table = *self;
        Ok(kv.iter_from(self.cf, &from, direction)?.map(move |item| {
            let (k, v) = item?;
            Ok((table.decode_key(&k)?, table.decode(&v)?))
        }))
    }

    /// Every entry, in key order.
    pub fn entries(&self, kv: &dyn KvStore) -> Result<Vec<(K, V)>, StoreError> {
        self.iter(kv, None, Direction::Forward)?.collect()
    }

    /// Every value, in key order.
    pub fn values(&self, kv: &dyn KvStore) -> Result<Vec<V>, StoreError> {
        self.iter(kv, None, Direction::Forward)?
            .map(|r| r.map(|(_, v)| v))
            .collect()
    }

    /// Entries whose key starts with the bytes of `prefix`, ascending.
    pub fn with_prefix<'a, P: TableKey>(
        &self,
        kv: &'a dyn KvStore,
        prefix: &P,
    ) -> Result<impl Iterator<Item = Result<(K, V), StoreError>> + 'a, StoreError>
    where
        K: 'a,
        V: 'a,
        C: 'a,
    {
        let table = *self;
        Ok(kv
            .scan_prefix(self.cf, &prefix.to_key_bytes())?
            .map(move |item| {
                let (k, v) = item?;
                Ok((table.decode_key(&k)?, table.decode(&v)?))
            }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{Durability, MemStore};

    const NUMBERS: Table<u64, String> = Table::new("numbers", "number name");
    const PAIRS: Table<(Hash256, u64), Vec<u8>, Raw> = Table::new("pairs", "pair");
    const HEIGHTS: Table<Hash256, u64, BigEndian> = Table::new("heights", "height");

    #[test]
    fn keys_sort_in_key_order_and_values_round_trip() {
        let kv = MemStore::new(&["numbers", "pairs", "heights"]);
        let mut b = WriteBatch::new();
        for n in [300u64, 2, 70_000, 1] {
            NUMBERS.put(&mut b, &n, &format!("n{n}")).unwrap();
        }
        PAIRS
            .put(&mut b, &(Hash256([1; 32]), 9), &b"x".to_vec())
            .unwrap();
        PAIRS
            .put(&mut b, &(Hash256([2; 32]), 1), &b"y".to_vec())
            .unwrap();
        HEIGHTS.put(&mut b, &Hash256([7; 32]), &42).unwrap();
        kv.write(b, Durability::Sync).unwrap();

        let keys: Vec<u64> = NUMBERS
            .entries(&kv)
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, vec![1, 2, 300, 70_000]);
        let back: Vec<u64> = NUMBERS
            .iter(&kv, None, Direction::Reverse)
            .unwrap()
            .map(|r| r.unwrap().0)
            .collect();
        assert_eq!(back, vec![70_000, 300, 2, 1]);
        assert_eq!(NUMBERS.get(&kv, &300).unwrap().as_deref(), Some("n300"));
        assert_eq!(NUMBERS.get(&kv, &3).unwrap(), None);
        let under_two: Vec<_> = PAIRS
            .with_prefix(&kv, &Hash256([2; 32]))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(under_two, vec![((Hash256([2; 32]), 1), b"y".to_vec())]);
        assert_eq!(HEIGHTS.get(&kv, &Hash256([7; 32])).unwrap(), Some(42));
        assert_eq!(
            kv.get("heights", &[7; 32]).unwrap(),
            Some(42u64.to_be_bytes().to_vec())
        );

        let mut b = WriteBatch::new();
        NUMBERS.delete(&mut b, &2);
        kv.write(b, Durability::Sync).unwrap();
        assert_eq!(NUMBERS.get(&kv, &2).unwrap(), None);
    }

    #[test]
    fn what_does_not_decode_is_corrupt_and_named() {
        let kv = MemStore::new(&["numbers", "heights"]);
        let mut b = WriteBatch::new();
        b.put("numbers", 5u64.to_be_bytes().to_vec(), vec![1, 2, 3]);
        b.put("numbers", vec![1, 2], vec![]);
        b.put("heights", vec![0; 32], vec![1, 2, 3]);
        kv.write(b, Durability::Sync).unwrap();
        let e = NUMBERS.get(&kv, &5).unwrap_err().to_string();
        assert!(e.contains("number name"), "{e}");
        assert!(matches!(NUMBERS.entries(&kv), Err(StoreError::Corrupt(_))));
        assert!(matches!(
            HEIGHTS.get(&kv, &Hash256([0; 32])),
            Err(StoreError::Corrupt(_))
        ));
    }
}
