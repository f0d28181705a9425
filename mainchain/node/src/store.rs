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

use doin_codec::{decode_exact, encode};
use doin_main_core::{DomainId, Fx, MainBlock, MainGenesisSpec, MainState, OptimaeId};
use doin_store::{Cf, Direction, Durability, KvStore, StoreError, WriteBatch};
use doin_types::{Hash256, PublicKeyBytes};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub const CF_META: Cf = "main_meta";
pub const CF_BLOCKS: Cf = "main_blocks";
pub const CF_HASHES: Cf = "main_hashes";
pub const CF_STATES: Cf = "main_states";
pub const CF_OPTIMAE: Cf = "main_optimae";
pub const CF_COMMITS: Cf = "main_commits";
pub const CF_HISTORY: Cf = "main_history";
pub const CF_POOL: Cf = "main_pool";
pub const CF_UNDO: Cf = "main_undo";

/// Every column family the main chain uses.
pub const COLUMNS: &[Cf] = &[
    CF_META, CF_BLOCKS, CF_HASHES, CF_STATES, CF_OPTIMAE, CF_COMMITS, CF_HISTORY, CF_POOL, CF_UNDO,
];

const META_GENESIS: &[u8] = b"genesis";
const META_TIP: &[u8] = b"tip";

pub type StoreResult<T> = Result<T, StoreError>;

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

fn enc<T: Serialize>(v: &T, what: &str) -> StoreResult<Vec<u8>> {
    encode(v).map_err(|e| corrupt(what, e))
}

fn dec<T: serde::de::DeserializeOwned>(b: &[u8], what: &str) -> StoreResult<T> {
    decode_exact(b).map_err(|e| corrupt(what, e))
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
        self.kv
            .get(CF_META, META_GENESIS)?
            .map(|b| dec(&b, "main genesis"))
            .transpose()
    }

    pub fn tip_height(&self) -> StoreResult<Option<u64>> {
        match self.kv.get(CF_META, META_TIP)? {
            None => Ok(None),
            Some(b) => {
                let arr: [u8; 8] = b
                    .as_slice()
                    .try_into()
                    .map_err(|_| corrupt("tip", "not 8 bytes"))?;
                Ok(Some(u64::from_be_bytes(arr)))
            }
        }
    }

    pub fn block(&self, height: u64) -> StoreResult<Option<MainBlock>> {
        self.kv
            .get(CF_BLOCKS, &height.to_be_bytes())?
            .map(|b| dec(&b, "main block"))
            .transpose()
    }

    pub fn height_of(&self, hash: &Hash256) -> StoreResult<Option<u64>> {
        match self.kv.get(CF_HASHES, &hash.0)? {
            None => Ok(None),
            Some(b) => {
                let arr: [u8; 8] = b
                    .as_slice()
                    .try_into()
                    .map_err(|_| corrupt("hash index", "not 8 bytes"))?;
                Ok(Some(u64::from_be_bytes(arr)))
            }
        }
    }

    pub fn state(&self, height: u64) -> StoreResult<Option<MainState>> {
        self.kv
            .get(CF_STATES, &height.to_be_bytes())?
            .map(|b| dec(&b, "main state"))
            .transpose()
    }

    pub fn optimae(&self, id: &OptimaeId) -> StoreResult<Option<OptimaeRecord>> {
        self.kv
            .get(CF_OPTIMAE, &id.0)?
            .map(|b| dec(&b, "optimae record"))
            .transpose()
    }

    pub fn commit_info(&self, id: &Hash256) -> StoreResult<Option<CommitInfo>> {
        self.kv
            .get(CF_COMMITS, &id.0)?
            .map(|b| dec(&b, "commit record"))
            .transpose()
    }

    /// The newest `limit` best-metric points of `domain`, newest first.
    pub fn history(&self, domain: &DomainId, limit: usize) -> StoreResult<Vec<HistoryPoint>> {
        let prefix = history_prefix(domain);
        let mut start = prefix.clone();
        start.extend_from_slice(&[0xff; 12]);
        let mut out = Vec::new();
        for item in self.kv.iter_from(CF_HISTORY, &start, Direction::Reverse)? {
            let (k, v) = item?;
            if !k.starts_with(&prefix) || out.len() >= limit {
                break;
            }
            out.push(dec(&v, "history point")?);
        }
        Ok(out)
    }

    /// Every pooled message, by kind, as stored bytes.
    pub fn pool_entries(&self) -> StoreResult<Vec<(PoolKind, Vec<u8>)>> {
        let mut out = Vec::new();
        for item in self.kv.iter_from(CF_POOL, &[], Direction::Forward)? {
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
        b.put(CF_POOL, pool_key(kind, id), bytes.to_vec());
        self.kv.write(b, Durability::Buffered)
    }

    pub fn pool_delete(&self, keys: Vec<Vec<u8>>) -> StoreResult<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut b = WriteBatch::new();
        for k in keys {
            b.delete(CF_POOL, k);
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
        b.put(CF_META, META_GENESIS, enc(spec, "main genesis")?);
        b.put(CF_BLOCKS, 0u64.to_be_bytes(), enc(block, "main block")?);
        let hash = block.hash().map_err(|e| corrupt("genesis hash", e))?;
        b.put(CF_HASHES, hash.0, 0u64.to_be_bytes());
        b.put(CF_STATES, 0u64.to_be_bytes(), enc(state, "main state")?);
        b.put(CF_META, META_TIP, 0u64.to_be_bytes());
        self.kv.write(b, Durability::Sync)
    }

    pub fn undo(&self, height: u64) -> StoreResult<Option<UndoRecord>> {
        self.kv
            .get(CF_UNDO, &height.to_be_bytes())?
            .map(|b| dec(&b, "undo record"))
            .transpose()
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
        b.put(CF_BLOCKS, h.to_be_bytes(), enc(w.block, "main block")?);
        b.put(CF_HASHES, w.hash.0, h.to_be_bytes());
        b.put(CF_STATES, h.to_be_bytes(), enc(w.state, "main state")?);
        if let Some(old) = h.checked_sub(self.keep_states) {
            b.delete(CF_STATES, old.to_be_bytes());
            b.delete(CF_UNDO, old.to_be_bytes());
        }
        let mut undo = UndoRecord::default();
        for r in &w.optimae {
            undo.optimae.push((r.id, self.optimae(&r.id)?));
            b.put(CF_OPTIMAE, r.id.0, enc(r, "optimae record")?);
        }
        for c in &w.commits {
            undo.commits.push((c.id, self.commit_info(&c.id)?));
            b.put(CF_COMMITS, c.id.0, enc(c, "commit record")?);
        }
        for (i, (domain, point)) in w.history.iter().enumerate() {
            let key = history_key(domain, h, i as u32);
            undo.history.push(key.clone());
            b.put(CF_HISTORY, key, enc(point, "history point")?);
        }
        b.put(CF_UNDO, h.to_be_bytes(), enc(&undo, "undo record")?);
        for k in w.pool_deletes {
            b.delete(CF_POOL, k);
        }
        b.put(CF_META, META_TIP, h.to_be_bytes());
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
                    Some(r) => b.put(CF_OPTIMAE, id.0, enc(r, "optimae record")?),
                    None => b.delete(CF_OPTIMAE, id.0),
                }
            }
            for (id, prior) in &undo.commits {
                match prior {
                    Some(c) => b.put(CF_COMMITS, id.0, enc(c, "commit record")?),
                    None => b.delete(CF_COMMITS, id.0),
                }
            }
            for key in undo.history {
                b.delete(CF_HISTORY, key);
            }
            let hash = block.hash().map_err(|e| corrupt("main block hash", e))?;
            b.delete(CF_HASHES, hash.0);
            b.delete(CF_BLOCKS, h.to_be_bytes());
            b.delete(CF_STATES, h.to_be_bytes());
            b.delete(CF_UNDO, h.to_be_bytes());
            taken.push(block);
        }
        if taken.is_empty() {
            return Ok(taken);
        }
        b.put(CF_META, META_TIP, fork.to_be_bytes());
        self.kv.write(b, Durability::Sync)?;
        taken.reverse();
        Ok(taken)
    }
}
