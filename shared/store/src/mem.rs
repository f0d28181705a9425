//! In-memory twin of `RocksStore` for unit tests. Same semantics, no durability.

use crate::{Cf, Direction, Durability, KvIter, KvStore, StoreError, WriteBatch};
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::ops::Bound;

type Table = BTreeMap<Vec<u8>, Vec<u8>>;

/// A `KvStore` held in memory.
pub struct MemStore {
    tables: RwLock<BTreeMap<&'static str, Table>>,
}

impl MemStore {
    /// A store with the given column families, all empty.
    pub fn new(columns: &[Cf]) -> MemStore {
        MemStore {
            tables: RwLock::new(columns.iter().map(|c| (*c, Table::new())).collect()),
        }
    }
}

impl KvStore for MemStore {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let tables = self.tables.read();
        let t = tables
            .get(cf)
            .ok_or_else(|| StoreError::UnknownColumn(cf.to_string()))?;
        Ok(t.get(key).cloned())
    }

    fn write(&self, batch: WriteBatch, _durability: Durability) -> Result<(), StoreError> {
        let mut tables = self.tables.write();
        // Validate first so a bad column leaves nothing half-applied.
        for op in batch.ops() {
            let cf = match op {
                crate::BatchOp::Put { cf, .. } | crate::BatchOp::Delete { cf, .. } => cf,
            };
            if !tables.contains_key(cf) {
                return Err(StoreError::UnknownColumn(cf.to_string()));
            }
        }
        for op in batch.ops {
            match op {
                crate::BatchOp::Put { cf, key, value } => {
                    if let Some(t) = tables.get_mut(cf) {
                        t.insert(key, value);
                    }
                }
                crate::BatchOp::Delete { cf, key } => {
                    if let Some(t) = tables.get_mut(cf) {
                        t.remove(&key);
                    }
                }
            }
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn iter_from<'a>(
        &'a self,
        cf: Cf,
        start: &[u8],
        direction: Direction,
    ) -> Result<KvIter<'a>, StoreError> {
        let tables = self.tables.read();
        let t = tables
            .get(cf)
            .ok_or_else(|| StoreError::UnknownColumn(cf.to_string()))?;
        // A snapshot copy: simple, and a test store never holds much.
        let items: Vec<_> = match direction {
            Direction::Forward => t
                .range::<[u8], _>((Bound::Included(start), Bound::Unbounded))
                .map(|(k, v)| Ok((k.clone(), v.clone())))
                .collect(),
            Direction::Reverse => t
                .range::<[u8], _>((Bound::Unbounded, Bound::Included(start)))
                .rev()
                .map(|(k, v)| Ok((k.clone(), v.clone())))
                .collect(),
        };
        Ok(Box::new(items.into_iter()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance;

    #[test]
    fn conforms() {
        let s = MemStore::new(&[conformance::CF_A, conformance::CF_B]);
        conformance::run(&s);
    }
}
