//! The transactions this node's mempool dropped without including them, and why.
//!
//! A wallet that was told `202` for a transaction and then finds it in no block must be able
//! to tell "dropped: it will not be final unless sent again" from "never seen". This module
//! keeps a bounded record of the newest drops (the oldest go first) in memory and in the
//! `tx_dropped` column, so a restart keeps it. It owns no mempool and decides nothing: the
//! chain tells it what was dropped and why, and asks it back. A transaction admitted again is
//! forgotten here; one found in a block is answered from the block, whatever is recorded here.

use crate::store::CF_DROPPED;
use doin_store::{Direction, Durability, KvStore, StoreError, Table, WriteBatch};
use doin_tx_core::TxId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};

/// How many drops are remembered (about 100 bytes each on disk).
pub const MAX_DROPPED: usize = 10_000;

const DROPPED: Table<TxId, Dropped> = Table::new(CF_DROPPED, "dropped transaction");

/// Why a pending transaction left the mempool without being included.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DropReason {
    /// Another transaction of its sender took its nonce, or its sender can no longer pay for
    /// it (or for one before it).
    Invalidated,
    /// It waited longer than the mempool keeps a transaction (`mempool.expiry_secs`).
    Expired,
    /// A better-paying transaction took its room in the full mempool.
    Evicted,
    /// Its sender replaced it with `by` (the same nonce, a higher fee).
    Replaced { by: TxId },
}

impl DropReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            DropReason::Invalidated => "invalidated",
            DropReason::Expired => "expired",
            DropReason::Evicted => "evicted",
            DropReason::Replaced { .. } => "replaced",
        }
    }

    /// A sentence for people.
    pub fn describe(&self) -> String {
        match self {
            DropReason::Invalidated => "another transaction of its sender took its nonce, or \
                 its sender could no longer pay for it"
                .into(),
            DropReason::Expired => "it waited longer than the mempool keeps a transaction".into(),
            DropReason::Evicted => {
                "a better-paying transaction took its room in the full mempool".into()
            }
            DropReason::Replaced { by } => format!("its sender replaced it with {by}"),
        }
    }
}

/// One drop: why and when (milliseconds since the Unix epoch).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dropped {
    pub reason: DropReason,
    pub at_ms: u64,
}

/// The newest drops, at most `cap`, by id.
#[derive(Debug)]
pub struct DroppedLog {
    cap: usize,
    by_id: HashMap<TxId, Dropped>,
    /// The same entries, oldest first.
    by_age: BTreeSet<(u64, TxId)>,
}

/// What a change to the log means for its copy on disk.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DroppedWrites {
    pub put: Vec<(TxId, Dropped)>,
    pub delete: Vec<TxId>,
}

impl DroppedLog {
    pub fn new(cap: usize) -> DroppedLog {
        DroppedLog {
            cap,
            by_id: HashMap::new(),
            by_age: BTreeSet::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn get(&self, id: &TxId) -> Option<&Dropped> {
        self.by_id.get(id)
    }

    /// Records drops; the oldest entries beyond the cap go.
    pub fn record(&mut self, drops: impl IntoIterator<Item = (TxId, Dropped)>) -> DroppedWrites {
        let mut w = DroppedWrites::default();
        for (id, d) in drops {
            self.remove(&id);
            self.by_id.insert(id, d);
            self.by_age.insert((d.at_ms, id));
            w.put.push((id, d));
        }
        while self.by_id.len() > self.cap {
            let Some((_, oldest)) = self.by_age.pop_first() else {
                break;
            };
            self.by_id.remove(&oldest);
            w.put.retain(|(id, _)| *id != oldest);
            w.delete.push(oldest);
        }
        w
    }

    /// Forgets `ids` (admitted again).
    pub fn forget(&mut self, ids: &[TxId]) -> DroppedWrites {
        let mut w = DroppedWrites::default();
        for id in ids {
            if self.remove(id) {
                w.delete.push(*id);
            }
        }
        w
    }

    fn remove(&mut self, id: &TxId) -> bool {
        match self.by_id.remove(id) {
            Some(old) => {
                self.by_age.remove(&(old.at_ms, *id));
                true
            }
            None => false,
        }
    }
}

/// Reads the record back from the store (at start), trimmed to `cap`.
pub fn load(kv: &dyn KvStore, cap: usize) -> Result<DroppedLog, StoreError> {
    let mut log = DroppedLog::new(cap);
    let entries: Vec<(TxId, Dropped)> = DROPPED
        .iter(kv, None, Direction::Forward)?
        .collect::<Result<_, _>>()?;
    let w = log.record(entries);
    write(
        kv,
        &DroppedWrites {
            put: Vec::new(),
            delete: w.delete,
        },
    )?;
    Ok(log)
}

/// Applies `w` to the store. Buffered like the mempool: it survives a crash of the process.
pub fn write(kv: &dyn KvStore, w: &DroppedWrites) -> Result<(), StoreError> {
    if w.put.is_empty() && w.delete.is_empty() {
        return Ok(());
    }
    let mut batch = WriteBatch::new();
    for (id, d) in &w.put {
        DROPPED.put(&mut batch, id, d)?;
    }
    for id in &w.delete {
        DROPPED.delete(&mut batch, id);
    }
    kv.write(batch, Durability::Buffered)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use doin_store::MemStore;
    use doin_types::Hash256;

    fn id(n: u8) -> TxId {
        Hash256([n; 32])
    }

    fn at(ms: u64, reason: DropReason) -> Dropped {
        Dropped { reason, at_ms: ms }
    }

    #[test]
    fn the_newest_drops_are_kept_and_the_oldest_go_first() {
        let mut log = DroppedLog::new(3);
        let w = log.record([
            (id(1), at(10, DropReason::Expired)),
            (id(2), at(20, DropReason::Evicted)),
        ]);
        assert_eq!(w.put.len(), 2);
        assert!(w.delete.is_empty());
        // Two more: the oldest (1) goes; one dropped again counts from its new time.
        let w = log.record([
            (id(3), at(30, DropReason::Invalidated)),
            (id(2), at(40, DropReason::Replaced { by: id(9) })),
            (id(4), at(50, DropReason::Expired)),
        ]);
        assert_eq!(w.delete, vec![id(1)]);
        assert_eq!(log.len(), 3);
        assert!(log.get(&id(1)).is_none());
        assert_eq!(
            log.get(&id(2)).unwrap().reason,
            DropReason::Replaced { by: id(9) }
        );
        // Admitted again: forgotten (and nothing to delete for an id never recorded).
        assert_eq!(log.forget(&[id(3), id(7)]).delete, vec![id(3)]);
        assert!(log.get(&id(3)).is_none());
        // Trimming by age still finds the right oldest after a forget and a re-record.
        let w = log.record([
            (id(5), at(60, DropReason::Expired)),
            (id(6), at(70, DropReason::Expired)),
        ]);
        assert_eq!(w.delete, vec![id(2)]);
        assert_eq!(log.len(), 3);
    }

    #[test]
    fn the_record_survives_a_restart_trimmed_to_its_cap() {
        let kv = MemStore::new(&[CF_DROPPED]);
        let mut log = DroppedLog::new(10);
        let w = log.record((1..=5).map(|n| (id(n), at(u64::from(n), DropReason::Expired))));
        write(&kv, &w).unwrap();
        write(&kv, &log.forget(&[id(2)])).unwrap();
        let again = load(&kv, 10).unwrap();
        assert_eq!(again.len(), 4);
        assert_eq!(again.get(&id(5)), log.get(&id(5)));
        assert!(again.get(&id(2)).is_none());
        // A smaller cap keeps the newest and deletes the rest from the store too.
        let small = load(&kv, 2).unwrap();
        assert!(small.get(&id(4)).is_some() && small.get(&id(5)).is_some());
        assert_eq!(load(&kv, 10).unwrap().len(), 2);
    }
}
