//! The main chain's persistent layout on top of `KvStore`, and the one write per block.
//!
//! Column families (in the node's single RocksDB):
//! - `main_meta`: genesis specification, tip height
//! - `main_blocks`: height (big-endian) → block
//! - `main_hashes`: block hash → height
//! - `main_states`: height (big-endian) → state after that block (the last `keep_states`)
//! - `main_optimae`: optimae id → lifecycle record
//! - `main_commits`: commit id → commit record (and the optimae it was revealed as)
//! - `main_history`: domain ‖ 0 ‖ height (big-endian) ‖ index → a new best metric of the domain
//! - `main_pool`: kind ‖ id → a submitted message not yet in a block (survives restarts)
//! - `main_undo`: height (big-endian) → what the block at that height overwrote in the indexes
//!   above (the last `keep_states`), so a reorganisation can take it back off
//!
//! `commit_block` writes a block, its state, its index updates, its undo record and its pool
//! clean-up in one atomic, fsynced batch; `disconnect_to` takes blocks back off the tip in one
//! such batch. Either way a crash leaves the chain at a block boundary.

use doin_main_core::{DomainId, Fx, MainBlock, MainGenesisSpec, MainState, OptimaeId};
use doin_store::{
    BigEndian, Cf, Direction, Durability, KvStore, Raw, StoreError, Table, WriteBatch,
};
use doin_types::{Hash256, PublicKeyBytes};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

const GENESIS: Table<Vec<u8>, MainGenesisSpec> = Table::new("main_meta", "main genesis");
const TIP: Table<Vec<u8>, u64, BigEndian> = Table::new("main_meta", "tip");
const BLOCKS: Table<u64, MainBlock> = Table::new("main_blocks", "main block");
const HASHES: Table<Hash256, u64, BigEndian> = Table::new("main_hashes", "hash index");
const STATES: Table<u64, MainState> = Table::new("main_states", "main state");
const OPTIMAE: Table<OptimaeId, OptimaeRecord> = Table::new("main_optimae", "optimae record");
const COMMITS: Table<Hash256, CommitInfo> = Table::new("main_commits", "commit record");
/// Keys built by [`history_key`] (a domain's name is not of fixed length).
const HISTORY: Table<Vec<u8>, HistoryPoint> = Table::new("main_history", "history point");
const POOL: Table<Vec<u8>, Vec<u8>, Raw> = Table::new("main_pool", "pool entry");
const UNDO: Table<u64, UndoRecord> = Table::new("main_undo", "undo record");

/// Every column family the main chain uses.
pub const COLUMNS: &[Cf] = &[
    GENESIS.cf(),
    BLOCKS.cf(),
    HASHES.cf(),
    STATES.cf(),
    OPTIMAE.cf(),
    COMMITS.cf(),
    HISTORY.cf(),
    POOL.cf(),
    UNDO.cf(),
];

const META_GENESIS: &[u8] = b"genesis";
const META_TIP: &[u8] = b"tip";

pub type StoreResult<T> = Result<T, StoreError>;

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

/// Where an optimae is in its life.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OptimaeStatus {
    /// Revealed on chain; the quorum is chosen from the next block's view of it.
    Revealed,
    /// Votes are being collected (round 1, or round 2 after a disagreement).
    Verifying,
    Accepted,
    Rejected,
    /// Round 2 disagreed too: no decision, no penalty.
    Inconclusive,
    /// Not decided within the verdict window.
    Expired,
}

impl OptimaeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OptimaeStatus::Revealed => "revealed",
            OptimaeStatus::Verifying => "verifying",
            OptimaeStatus::Accepted => "accepted",
            OptimaeStatus::Rejected => "rejected",
            OptimaeStatus::Inconclusive => "inconclusive",
            OptimaeStatus::Expired => "expired",
        }
    }
}

/// One vote as recorded with a decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteRecord {
    pub round: u8,
    pub evaluator: PublicKeyBytes,
    pub metric: Fx,
    pub agreed: bool,
}

/// Everything known about an optimae, updated block by block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptimaeRecord {
    pub id: OptimaeId,
    pub commit_id: Hash256,
    pub domain: DomainId,
    pub optimizer: PublicKeyBytes,
    pub params: Vec<Fx>,
    pub reported: Fx,
    pub committed_at: Option<u64>,
    pub revealed_at: u64,
    pub status: OptimaeStatus,
    pub round: u8,
    pub decided_at: Option<u64>,
    pub verified: Option<Fx>,
    /// Counted work before the per-domain cap.
    pub work: Option<Fx>,
    pub new_best: bool,
    pub votes: Vec<VoteRecord>,
}

/// A commit as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitInfo {
    pub id: Hash256,
    pub domain: DomainId,
    pub optimizer: PublicKeyBytes,
    pub height: u64,
    pub revealed_as: Option<OptimaeId>,
}

/// A point of a domain's best-metric history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryPoint {
    pub height: u64,
    pub optimae: OptimaeId,
    pub metric: Fx,
}

/// What one block overwrote in the lifecycle indexes: the records as they were before it
/// (`None`: there was none) and the history points it added.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UndoRecord {
    pub optimae: Vec<(OptimaeId, Option<OptimaeRecord>)>,
    pub commits: Vec<(Hash256, Option<CommitInfo>)>,
    pub history: Vec<Vec<u8>>,
}

/// Pool entry kinds (first key byte of `main_pool`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PoolKind {
    Register = 1,
    Commit = 2,
    Reveal = 3,
    Vote = 4,
}

impl PoolKind {
    pub fn from_byte(b: u8) -> Option<PoolKind> {
        match b {
            1 => Some(PoolKind::Register),
            2 => Some(PoolKind::Commit),
            3 => Some(PoolKind::Reveal),
            4 => Some(PoolKind::Vote),
            _ => None,
        }
    }
}

pub fn pool_key(kind: PoolKind, id: &Hash256) -> Vec<u8> {
    let mut k = Vec::with_capacity(33);
    k.push(kind as u8);
    k.extend_from_slice(&id.0);
    k
}

fn history_key(domain: &DomainId, height: u64, index: u32) -> Vec<u8> {
    let mut k = history_prefix(domain);
    k.extend_from_slice(&height.to_be_bytes());
    k.extend_from_slice(&index.to_be_bytes());
    k
}

fn history_prefix(domain: &DomainId) -> Vec<u8> {
    let mut k = domain.as_str().as_bytes().to_vec();
    k.push(0);
    k
}

/// Typed access to the main chain's data.
#[derive(Clone)]
pub struct MainStore {
    kv: Arc<dyn KvStore>,
    keep_states: u64,
}

/// Everything one block changes, gathered by the chain service before the single write.
pub struct BlockWrite<'a> {
    pub block: &'a MainBlock,
    pub hash: Hash256,
    pub state: &'a MainState,
    pub optimae: Vec<OptimaeRecord>,
    pub commits: Vec<CommitInfo>,
    pub history: Vec<(DomainId, HistoryPoint)>,
    pub pool_deletes: Vec<Vec<u8>>,
}

impl MainStore {
    pub fn new(kv: Arc<dyn KvStore>, keep_states: u64) -> MainStore {
        MainStore {
            kv,
            keep_states: keep_states.max(2),
        }
    }

    pub fn genesis_spec(&self) -> StoreResult<Option<MainGenesisSpec>> {
        GENESIS.get(self.kv.as_ref(), &META_GENESIS.to_vec())
    }

    pub fn tip_height(&self) -> StoreResult<Option<u64>> {
        TIP.get(self.kv.as_ref(), &META_TIP.to_vec())
    }

    pub fn block(&self, height: u64) -> StoreResult<Option<MainBlock>> {
        BLOCKS.get(self.kv.as_ref(), &height)
    }

    pub fn height_of(&self, hash: &Hash256) -> StoreResult<Option<u64>> {
        HASHES.get(self.kv.as_ref(), hash)
    }

    pub fn state(&self, height: u64) -> StoreResult<Option<MainState>> {
        STATES.get(self.kv.as_ref(), &height)
    }

    pub fn optimae(&self, id: &OptimaeId) -> StoreResult<Option<OptimaeRecord>> {
        OPTIMAE.get(self.kv.as_ref(), id)
    }

    pub fn commit_info(&self, id: &Hash256) -> StoreResult<Option<CommitInfo>> {
        COMMITS.get(self.kv.as_ref(), id)
    }

    /// The newest `limit` best-metric points of `domain`, newest first.
    pub fn history(&self, domain: &DomainId, limit: usize) -> StoreResult<Vec<HistoryPoint>> {
        let prefix = history_prefix(domain);
        let mut start = prefix.clone();
        start.extend_from_slice(&[0xff; 12]);
        let mut out = Vec::new();
        for item in HISTORY.iter(self.kv.as_ref(), Some(&start), Direction::Reverse)? {
            let (k, point) = item?;
            if !k.starts_with(&prefix) || out.len() >= limit {
                break;
            }
            out.push(point);
        }
        Ok(out)
    }

    /// Every pooled message, by kind, as stored bytes.
    pub fn pool_entries(&self) -> StoreResult<Vec<(PoolKind, Vec<u8>)>> {
        let mut out = Vec::new();
        for item in POOL.iter(self.kv.as_ref(), None, Direction::Forward)? {
            let (k, v) = item?;
            match k.first().copied().and_then(PoolKind::from_byte) {
                Some(kind) => out.push((kind, v)),
                None => return Err(corrupt("pool", "unknown entry kind")),
            }
        }
        Ok(out)
    }

    /// Persists a pooled message (WAL-backed, not fsynced: losing the last few pool entries in a
    /// power cut costs a resubmission, never consensus data).
    pub fn pool_put(&self, kind: PoolKind, id: &Hash256, bytes: &[u8]) -> StoreResult<()> {
        let mut b = WriteBatch::new();
        POOL.put(&mut b, &pool_key(kind, id), &bytes.to_vec())?;
        self.kv.write(b, Durability::Buffered)
    }

    pub fn pool_delete(&self, keys: Vec<Vec<u8>>) -> StoreResult<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut b = WriteBatch::new();
        for k in keys {
            POOL.delete(&mut b, &k);
        }
        self.kv.write(b, Durability::Buffered)
    }

    /// Writes genesis: specification, block 0 and its state.
    pub fn commit_genesis(
        &self,
        spec: &MainGenesisSpec,
        block: &MainBlock,
        state: &MainState,
    ) -> StoreResult<()> {
        let mut b = WriteBatch::new();
        GENESIS.put(&mut b, &META_GENESIS.to_vec(), spec)?;
        BLOCKS.put(&mut b, &0, block)?;
        let hash = block.hash().map_err(|e| corrupt("genesis hash", e))?;
        HASHES.put(&mut b, &hash, &0)?;
        STATES.put(&mut b, &0, state)?;
        TIP.put(&mut b, &META_TIP.to_vec(), &0)?;
        self.kv.write(b, Durability::Sync)
    }

    pub fn undo(&self, height: u64) -> StoreResult<Option<UndoRecord>> {
        UNDO.get(self.kv.as_ref(), &height)
    }

    /// How many blocks below the tip can be taken off (states and undo records are kept for
    /// the last `keep_states` blocks).
    pub fn keep_states(&self) -> u64 {
        self.keep_states
    }

    /// One atomic, fsynced batch per block.
    pub fn commit_block(&self, w: BlockWrite<'_>) -> StoreResult<()> {
        let h = w.block.header.height;
        let mut b = WriteBatch::new();
        BLOCKS.put(&mut b, &h, w.block)?;
        HASHES.put(&mut b, &w.hash, &h)?;
        STATES.put(&mut b, &h, w.state)?;
        if let Some(old) = h.checked_sub(self.keep_states) {
            STATES.delete(&mut b, &old);
            UNDO.delete(&mut b, &old);
        }
        let mut undo = UndoRecord::default();
        for r in &w.optimae {
            undo.optimae.push((r.id, self.optimae(&r.id)?));
            OPTIMAE.put(&mut b, &r.id, r)?;
        }
        for c in &w.commits {
            undo.commits.push((c.id, self.commit_info(&c.id)?));
            COMMITS.put(&mut b, &c.id, c)?;
        }
        for (i, (domain, point)) in w.history.iter().enumerate() {
            let key = history_key(domain, h, i as u32);
            undo.history.push(key.clone());
            HISTORY.put(&mut b, &key, point)?;
        }
        UNDO.put(&mut b, &h, &undo)?;
        for k in w.pool_deletes {
            POOL.delete(&mut b, &k);
        }
        TIP.put(&mut b, &META_TIP.to_vec(), &h)?;
        self.kv.write(b, Durability::Sync)
    }

    /// Takes the blocks above `fork` off the tip in one atomic, fsynced batch: every index
    /// they changed goes back to what it was, their blocks, states and hashes are deleted and
    /// the tip becomes `fork`. Returns the blocks taken off, lowest first. Refuses (changing
    /// nothing) when a block has no undo record: it is older than the kept window.
    pub fn disconnect_to(&self, fork: u64) -> StoreResult<Vec<MainBlock>> {
        let tip = self
            .tip_height()?
            .ok_or_else(|| corrupt("tip", "not recorded"))?;
        let mut b = WriteBatch::new();
        let mut taken = Vec::new();
        // Highest first: a batch applies in order, so the record as it was before the lowest
        // disconnected block is the one left standing.
        for h in (fork.saturating_add(1)..=tip).rev() {
            let block = self
                .block(h)?
                .ok_or_else(|| corrupt("main block", format!("{h} missing")))?;
            let undo = self
                .undo(h)?
                .ok_or_else(|| corrupt("undo record", format!("{h} missing: too deep")))?;
            for (id, prior) in &undo.optimae {
                match prior {
                    Some(r) => OPTIMAE.put(&mut b, id, r)?,
                    None => OPTIMAE.delete(&mut b, id),
                }
            }
            for (id, prior) in &undo.commits {
                match prior {
                    Some(c) => COMMITS.put(&mut b, id, c)?,
                    None => COMMITS.delete(&mut b, id),
                }
            }
            for key in &undo.history {
                HISTORY.delete(&mut b, key);
            }
            let hash = block.hash().map_err(|e| corrupt("main block hash", e))?;
            HASHES.delete(&mut b, &hash);
            BLOCKS.delete(&mut b, &h);
            STATES.delete(&mut b, &h);
            UNDO.delete(&mut b, &h);
            taken.push(block);
        }
        if taken.is_empty() {
            return Ok(taken);
        }
        TIP.put(&mut b, &META_TIP.to_vec(), &fork)?;
        self.kv.write(b, Durability::Sync)?;
        taken.reverse();
        Ok(taken)
    }
}
