//! The transfer chain's persistent layout on top of `KvStore`, and the one write per block.
//!
//! Column families (all in the node's single RocksDB):
//! - `tx_meta`: genesis specification, tip height, storage layout version, and the floors below
//!   which history was pruned (`history`; absent: nothing pruned)
//! - `tx_headers`: height (big-endian) → header + proposer signature
//! - `tx_bodies`: height ‖ position (big-endian) → one transaction's canonical bytes
//! - `tx_block_hashes`: block hash → height
//! - `tx_index`: transaction id → (height, position)
//! - `tx_addr_index`: key ‖ height ‖ position → transaction id ‖ role (newest-first scans)
//! - `tx_account_ops`, `tx_ops_by_height`: every balance and stake movement, by account and
//!   block, and the accounts of each block (`operations`)
//! - `tx_main_reorgs`: event height ‖ sequence → a `main_reorg` event announced then
//!   (`main_events`)
//! - `tx_jmt_nodes`, `tx_jmt_values`, `tx_jmt_stale`, `tx_jmt_stale_values`: the state tree and
//!   the indices that let old versions be pruned. The tree's values are the only copy of the
//!   state (accounts, chain totals): the current state is each key's newest value, so nothing
//!   can disagree with the root the headers commit to.
//! - `tx_mempool`: pending transactions, so a restart keeps them
//! - `tx_commits`: height → the commit certificate that made that block final (written with
//!   the block when this node produced it as the only validator, else with the next block,
//!   whose header carries it)
//! - `tx_epoch_proofs`: height of a block that closes an epoch → its validators entry with a
//!   state proof against its root, taken when the block is written (old state versions are
//!   pruned, these never are): the hops of light-client finality proofs
//! - `tx_dropped`: transaction id → why and when the mempool dropped it without including it
//!   (`dropped`; the newest 10 000)
//! - `tx_undecided`: height ‖ block hash → a block proposed for a height not final yet, with
//!   its round and proposer (the consensus host's: see `consensus::undecided`), dropped once
//!   the height is final
//!
//! `commit_block` turns an applied block into one atomic, fsynced batch: after a crash the
//! store holds either the whole block or none of it.

use crate::kept::{HistoryPolicy, Kept};
use crate::tree::{
    encode_stale_nodes, encode_value, value_key, value_version_of, PendingTree, StoreTree,
    CF_JMT_NODES, CF_JMT_STALE, CF_JMT_STALE_VALUES, CF_JMT_VALUES,
};
use doin_store::{
    BigEndian, Cf, Direction, Durability, KvStore, Raw, StoreError, Table, TableKey, WriteBatch,
};
use doin_tx_core::bft::{CommitCertificate, EpochValidators};
use doin_tx_core::channel::{Channel, ChannelId};
use doin_tx_core::state::{
    account_key, chain_stats_key, channel_key, decode_account, decode_chain_stats, decode_channel,
    decode_stake, decode_stakers, decode_validators, stake_key, stakers_key, validators_key,
};
use doin_tx_core::{
    Account, AppliedBlock, Block, BlockHash, ChainStats, GenesisSpec, SignedTx, StateView, TxId,
};
use doin_tx_core::{Stake, StakeRole, StateProof};
use doin_types::{Hash256, Height, PortError, PublicKeyBytes};
use jmt::storage::NodeKey;
use jmt::{KeyHash, Version};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub const CF_META: Cf = "tx_meta";
pub const CF_HEADERS: Cf = HEADERS.cf();
pub const CF_BODIES: Cf = BODIES.cf();
pub const CF_BLOCK_HASHES: Cf = BLOCK_HASHES.cf();
pub const CF_TX_INDEX: Cf = TX_INDEX.cf();
pub const CF_ADDR_INDEX: Cf = "tx_addr_index";
pub const CF_MEMPOOL: Cf = MEMPOOL.cf();
/// Height → the certificate that made that block final (as soon as this node knows it).
pub const CF_COMMITS: Cf = COMMITS.cf();
pub const CF_EPOCH_PROOFS: Cf = EPOCH_PROOFS.cf();
/// Transaction id → why and when the mempool dropped it (`dropped`).
pub const CF_DROPPED: Cf = "tx_dropped";
/// Height ‖ block hash → a block proposed for a height not final yet (`consensus::undecided`).
pub const CF_UNDECIDED: Cf = "tx_undecided";
/// Key ‖ height → the account's operations in that block (`operations`).
pub const CF_ACCOUNT_OPS: Cf = "tx_account_ops";
/// Height → the keys with operations in that block (`operations`).
pub const CF_OPS_BY_HEIGHT: Cf = "tx_ops_by_height";
/// Height ‖ sequence → a `main_reorg` event the node announced (`main_events`).
pub const CF_MAIN_REORGS: Cf = "tx_main_reorgs";

pub(crate) const GENESIS: Table<Vec<u8>, GenesisSpec> = Table::new(CF_META, "genesis spec");
pub(crate) const SCHEMA: Table<Vec<u8>, u32> = Table::new(CF_META, "schema version");
pub(crate) const TIP: Table<Vec<u8>, Height, BigEndian> = Table::new(CF_META, "tip");
pub(crate) const HEADERS: Table<Height, StoredHeader> = Table::new("tx_headers", "header");
/// Height ‖ position → one transaction's canonical bytes.
pub(crate) const BODIES: Table<(Height, u32), Vec<u8>, Raw> =
    Table::new("tx_bodies", "transaction");
pub(crate) const BLOCK_HASHES: Table<BlockHash, Height, BigEndian> =
    Table::new("tx_block_hashes", "block hash index");
pub(crate) const TX_INDEX: Table<TxId, TxLocation> = Table::new("tx_index", "tx index");
const MEMPOOL: Table<TxId, Vec<u8>, Raw> = Table::new("tx_mempool", "pending transaction");
pub(crate) const COMMITS: Table<Height, CommitCertificate> =
    Table::new("tx_commits", "commit certificate");
pub(crate) const EPOCH_PROOFS: Table<Height, ValidatorsProof> =
    Table::new("tx_epoch_proofs", "validators proof");

/// Every column family the transfer chain uses; pass to the store when opening it.
pub const COLUMNS: &[Cf] = &[
    CF_META,
    CF_HEADERS,
    CF_BODIES,
    CF_BLOCK_HASHES,
    CF_TX_INDEX,
    CF_ADDR_INDEX,
    CF_MEMPOOL,
    CF_COMMITS,
    CF_EPOCH_PROOFS,
    CF_UNDECIDED,
    CF_DROPPED,
    CF_ACCOUNT_OPS,
    CF_OPS_BY_HEIGHT,
    CF_MAIN_REORGS,
    CF_JMT_NODES,
    CF_JMT_VALUES,
    CF_JMT_STALE,
    CF_JMT_STALE_VALUES,
];

pub(crate) const META_GENESIS: &[u8] = b"genesis";
pub(crate) const META_TIP: &[u8] = b"tip";
pub(crate) const META_SCHEMA: &[u8] = b"schema";
/// Version 2: staleness records are one entry per version (version 1 had one per node), and the
/// state lives only in the tree's values (version 1 also kept a copy of every account).
/// Version 3: headers carry `last_commit`, the parent's commit certificate.
/// Version 4: the state holds the validator sets of each epoch.
/// Version 5: epoch-closing blocks keep a proof of their validators entry.
/// Version 6: account operations (`operations`); a version 5 store is upgraded at open and
/// records them from its next block on.
pub const SCHEMA_VERSION: u32 = 6;

/// The validators entry of an epoch-closing block's state, with its proof against the block's
/// state root.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ValidatorsProof {
    pub value: Vec<u8>,
    pub proof: StateProof,
}

/// Role bits in the address index.
pub const ROLE_SENT: u8 = 1;
pub const ROLE_RECEIVED: u8 = 2;

/// Where a transaction sits in the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxLocation {
    pub height: Height,
    pub index: u32,
}

/// A header with its proposer signature, as stored (and as headers-first sync sends it).
pub type StoredHeader = doin_tx_core::SignedHeader;

/// One entry of an account's history, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountTxRef {
    pub location: TxLocation,
    pub id: TxId,
    pub role: u8,
}

/// A stored transaction's canonical bytes, decoded.
pub(crate) fn decode_stored_tx(bytes: &[u8]) -> StoreResult<SignedTx> {
    doin_codec::decode_exact(bytes).map_err(|e| corrupt("transaction", e))
}

/// The address index entries of a transaction: its sender and recipients, each once with its
/// roles (a key both sending and receiving has one entry with both).
pub(crate) fn addr_index_roles(tx: &SignedTx) -> Vec<(PublicKeyBytes, u8)> {
    let mut roles: Vec<(PublicKeyBytes, u8)> = vec![(tx.body.sender, ROLE_SENT)];
    for to in tx.body.payload.recipients() {
        match roles.iter_mut().find(|(k, _)| k == to) {
            Some(entry) => entry.1 |= ROLE_RECEIVED,
            None => roles.push((*to, ROLE_RECEIVED)),
        }
    }
    roles
}

/// An address index key: key ‖ height ‖ position (big-endian, so scans run in chain order).
pub(crate) fn addr_index_key(who: &PublicKeyBytes, height: Height, index: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(44);
    k.extend_from_slice(&who.0);
    k.extend_from_slice(&height.to_be_bytes());
    k.extend_from_slice(&index.to_be_bytes());
    k
}

/// Store errors plus "the data is there but makes no sense".
pub type StoreResult<T> = Result<T, StoreError>;

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

fn be_u64(bytes: &[u8], what: &str) -> StoreResult<u64> {
    u64::from_key_bytes(bytes).ok_or_else(|| corrupt(what, "expected 8 bytes"))
}

/// What the store prunes: old state versions (stale tree nodes) and old history.
#[derive(Clone, Copy, Debug)]
pub struct PruneConfig {
    /// State versions kept before stale tree nodes are deleted.
    pub keep_versions: u64,
    /// Cap on deletions per block so one commit never balloons.
    pub max_deletes_per_block: usize,
    /// Which blocks, headers and indexes are kept ([`crate::history`] prunes the rest).
    pub history: HistoryPolicy,
}

impl Default for PruneConfig {
    fn default() -> Self {
        PruneConfig {
            keep_versions: 256,
            max_deletes_per_block: 200_000,
            history: HistoryPolicy::default(),
        }
    }
}

/// Typed access to the transfer chain's data in a `KvStore`.
#[derive(Clone)]
pub struct ChainStore {
    kv: Arc<dyn KvStore>,
    prune: PruneConfig,
    /// The floors below which history was dropped, as of the last commit (read by every
    /// lookup, so not read from the store each time).
    kept: Arc<RwLock<Kept>>,
    /// No staleness record below this version is left: where the next state prune starts
    /// (0 after a start: the first prune scans from the beginning once).
    stale_from: Arc<std::sync::atomic::AtomicU64>,
}

impl ChainStore {
    pub fn new(kv: Arc<dyn KvStore>, prune: PruneConfig) -> ChainStore {
        ChainStore {
            kv,
            prune,
            kept: Arc::new(RwLock::new(Kept::default())),
            stale_from: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        }
    }

    pub(crate) fn kept_cache(&self) -> &RwLock<Kept> {
        &self.kept
    }

    pub fn history_policy(&self) -> HistoryPolicy {
        self.prune.history
    }

    pub fn kv(&self) -> &Arc<dyn KvStore> {
        &self.kv
    }

    pub fn tree(&self) -> StoreTree<'_> {
        StoreTree::new(self.kv.as_ref())
    }

    /// The genesis specification this store was initialised with, if any.
    pub fn genesis_spec(&self) -> StoreResult<Option<GenesisSpec>> {
        GENESIS.get(self.kv.as_ref(), &META_GENESIS.to_vec())
    }

    pub fn schema_version(&self) -> StoreResult<Option<u32>> {
        SCHEMA.get(self.kv.as_ref(), &META_SCHEMA.to_vec())
    }

    pub fn tip_height(&self) -> StoreResult<Option<Height>> {
        TIP.get(self.kv.as_ref(), &META_TIP.to_vec())
    }

    pub fn header(&self, height: Height) -> StoreResult<Option<StoredHeader>> {
        HEADERS.get(self.kv.as_ref(), &height)
    }

    /// The transactions of block `height` (empty for an empty block), or `None` when the
    /// block is unknown or its body was pruned ([`ChainStore::kept`] tells which).
    pub fn body(&self, height: Height) -> StoreResult<Option<Vec<SignedTx>>> {
        if self.kept().body_dropped(height) {
            return Ok(None);
        }
        let Some(h) = self.header(height)? else {
            return Ok(None);
        };
        let mut txs = Vec::with_capacity(h.header.tx_count as usize);
        for item in BODIES.with_prefix(self.kv.as_ref(), &height)? {
            let (_, v) = item?;
            txs.push(decode_stored_tx(&v)?);
        }
        if txs.len() != h.header.tx_count as usize {
            return Err(corrupt(
                "body",
                format!(
                    "block {height} has {} of {} transactions",
                    txs.len(),
                    h.header.tx_count
                ),
            ));
        }
        Ok(Some(txs))
    }

    /// The block at `height`; `None` when unknown or pruned.
    pub fn block(&self, height: Height) -> StoreResult<Option<Block>> {
        let Some(h) = self.header(height)? else {
            return Ok(None);
        };
        let Some(txs) = self.body(height)? else {
            return Ok(None);
        };
        Ok(Some(Block {
            header: h.header,
            signature: h.signature,
            txs,
        }))
    }

    pub fn height_of(&self, hash: &BlockHash) -> StoreResult<Option<Height>> {
        BLOCK_HASHES.get(self.kv.as_ref(), hash)
    }

    pub fn tx_location(&self, id: &TxId) -> StoreResult<Option<TxLocation>> {
        TX_INDEX.get(self.kv.as_ref(), id)
    }

    /// The transaction at `loc` (one point read, not the whole block).
    pub fn tx_at(&self, loc: TxLocation) -> StoreResult<Option<SignedTx>> {
        BODIES
            .get(self.kv.as_ref(), &(loc.height, loc.index))?
            .map(|b| decode_stored_tx(&b))
            .transpose()
    }

    /// Up to `limit` entries of `key`'s history strictly older than `before` (newest first).
    pub fn account_history(
        &self,
        key: &PublicKeyBytes,
        before: Option<TxLocation>,
        limit: usize,
    ) -> StoreResult<Vec<AccountTxRef>> {
        let mut start = key.0.to_vec();
        match before {
            Some(loc) => {
                // Largest key strictly below (height, index): step back by one position.
                let (h, i) = if loc.index > 0 {
                    (loc.height, loc.index - 1)
                } else if loc.height > 0 {
                    (loc.height - 1, u32::MAX)
                } else {
                    return Ok(Vec::new());
                };
                start.extend_from_slice(&h.to_be_bytes());
                start.extend_from_slice(&i.to_be_bytes());
            }
            None => {
                start.extend_from_slice(&u64::MAX.to_be_bytes());
                start.extend_from_slice(&u32::MAX.to_be_bytes());
            }
        }
        let mut out = Vec::new();
        for item in self
            .kv
            .iter_from(CF_ADDR_INDEX, &start, Direction::Reverse)?
        {
            let (k, v) = item?;
            if !k.starts_with(&key.0) || out.len() >= limit {
                break;
            }
            if k.len() != 44 || v.len() != 33 {
                return Err(corrupt("address index", "bad entry length"));
            }
            let height = be_u64(&k[32..40], "address index height")?;
            let index = u32::from_be_bytes([k[40], k[41], k[42], k[43]]);
            out.push(AccountTxRef {
                location: TxLocation { height, index },
                id: Hash256::from_slice(&v[..32]).ok_or_else(|| corrupt("address index", "id"))?,
                role: v[32],
            });
        }
        Ok(out)
    }

    /// Every pending transaction persisted by the mempool.
    pub fn mempool_entries(&self) -> StoreResult<Vec<Vec<u8>>> {
        MEMPOOL.values(self.kv.as_ref())
    }

    /// Persists a newly admitted pending transaction (survives a process crash).
    pub fn mempool_put(&self, id: &TxId, bytes: &[u8]) -> StoreResult<()> {
        let mut b = WriteBatch::new();
        MEMPOOL.put(&mut b, id, &bytes.to_vec())?;
        self.kv.write(b, Durability::Buffered)
    }

    /// Forgets pending transactions that left the mempool (included, replaced or dropped).
    pub fn mempool_delete(&self, ids: &[TxId]) -> StoreResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut b = WriteBatch::new();
        for id in ids {
            MEMPOOL.delete(&mut b, id);
        }
        self.kv.write(b, Durability::Buffered)
    }

    /// Writes genesis (height 0) and the specification, atomically.
    pub fn commit_genesis(
        &self,
        spec: &GenesisSpec,
        block: &Block,
        applied: &AppliedBlock,
    ) -> StoreResult<()> {
        let mut batch = WriteBatch::new();
        GENESIS.put(&mut batch, &META_GENESIS.to_vec(), spec)?;
        SCHEMA.put(&mut batch, &META_SCHEMA.to_vec(), &SCHEMA_VERSION)?;
        self.block_writes(&mut batch, block, applied, &PriorVersions::new())?;
        self.kv.write(batch, Durability::Sync)
    }

    /// Writes one block and everything derived from it in a single fsynced batch. `prior`
    /// holds what a prefetch already learned about the tree before the block (keys it lacks
    /// are looked up).
    /// `own_commit` is the block's own certificate when it is already known (a block this node
    /// produced); the parent's comes with the header. `closes_epoch` tells an epoch's last
    /// blocks, whose validators entry is kept with its proof (and whose headers pruning keeps).
    /// History the policy no longer keeps is dropped in the same batch.
    pub fn commit_block(
        &self,
        block: &Block,
        applied: &AppliedBlock,
        prior: &PriorVersions,
        own_commit: Option<&CommitCertificate>,
        closes_epoch: &dyn Fn(Height) -> bool,
    ) -> StoreResult<()> {
        let mut batch = WriteBatch::new();
        self.block_writes(&mut batch, block, applied, prior)?;
        let height = block.header.height;
        if closes_epoch(height) {
            let proven = self.validators_proof_pending(applied, height)?;
            EPOCH_PROOFS.put(&mut batch, &height, &proven)?;
        }
        if let Some(c) = &block.header.last_commit {
            COMMITS.put(&mut batch, &c.height, c)?;
        }
        if let Some(c) = own_commit {
            COMMITS.put(&mut batch, &c.height, c)?;
        }
        self.history_writes(&mut batch, height, closes_epoch)?;
        self.kv.write(batch, Durability::Sync)
    }

    /// The validators entry at `version` with its proof, read through the block's pending
    /// tree update (the version is written by the same batch).
    fn validators_proof_pending(
        &self,
        applied: &AppliedBlock,
        version: Version,
    ) -> StoreResult<ValidatorsProof> {
        let tree = PendingTree::new(self.tree(), &applied.tree_update.node_batch);
        let (value, proof) = jmt::Sha256Jmt::new(&tree)
            .get_with_proof(validators_key(), version)
            .map_err(|e| corrupt("validators proof", e))?;
        let value = value.ok_or_else(|| corrupt("validators proof", "no validators entry"))?;
        proof
            .verify_existence(
                jmt::RootHash(applied.state_root.0),
                validators_key(),
                &value,
            )
            .map_err(|e| corrupt("validators proof", e))?;
        Ok(ValidatorsProof { value, proof })
    }

    /// The validators entry of the epoch-closing block at `height`, with its state proof.
    pub fn validators_proof(&self, height: Height) -> StoreResult<Option<ValidatorsProof>> {
        EPOCH_PROOFS.get(self.kv.as_ref(), &height)
    }

    /// Records the certificate of an already committed block (a block this node committed before
    /// its own consensus decided it, e.g. from gossip).
    pub fn put_commit_certificate(&self, c: &CommitCertificate) -> StoreResult<()> {
        let mut batch = WriteBatch::new();
        COMMITS.put(&mut batch, &c.height, c)?;
        self.kv.write(batch, Durability::Sync)
    }

    /// The certificate that made block `height` final, if this node has it yet (a block's
    /// certificate also travels in the next block's header).
    pub fn commit_certificate(&self, height: Height) -> StoreResult<Option<CommitCertificate>> {
        COMMITS.get(self.kv.as_ref(), &height)
    }

    fn block_writes(
        &self,
        batch: &mut WriteBatch,
        block: &Block,
        applied: &AppliedBlock,
        prior: &PriorVersions,
    ) -> StoreResult<()> {
        let height = block.header.height;
        let hash = block.hash().map_err(|e| corrupt("block hash", e))?;
        let stored = StoredHeader {
            header: block.header.clone(),
            signature: block.signature,
        };
        HEADERS.put(batch, &height, &stored)?;
        BLOCK_HASHES.put(batch, &hash, &height)?;

        for (i, tx) in applied.txs.iter().enumerate() {
            let index = u32::try_from(i).map_err(|_| corrupt("block", "too many transactions"))?;
            let loc = TxLocation { height, index };
            let id = tx.id();
            BODIES.put(batch, &(height, index), &tx.bytes().to_vec())?;
            TX_INDEX.put(batch, &id, &loc)?;
            for (who, role) in addr_index_roles(tx.signed()) {
                let k = addr_index_key(&who, height, index);
                let mut v = Vec::with_capacity(33);
                v.extend_from_slice(&id.0);
                v.push(role);
                batch.put(CF_ADDR_INDEX, k, v);
            }
        }

        self.operation_writes(batch, height, &applied.txs, &applied.operations)?;
        TIP.put(batch, &META_TIP.to_vec(), &height)?;

        self.tree_writes(batch, height, applied, prior)?;
        Ok(())
    }

    /// New tree nodes and values, their staleness records, and pruning of versions older than
    /// the retention window.
    fn tree_writes(
        &self,
        batch: &mut WriteBatch,
        version: Height,
        applied: &AppliedBlock,
        prior: &PriorVersions,
    ) -> StoreResult<()> {
        let update = &applied.tree_update;
        for (node_key, node) in update.node_batch.nodes() {
            let k = borsh::to_vec(node_key).map_err(|e| corrupt("jmt node key", e))?;
            let v = borsh::to_vec(node).map_err(|e| corrupt("jmt node", e))?;
            batch.put(CF_JMT_NODES, k, v);
        }
        // Every node and value of this batch goes stale at this block's version (batch
        // insertion writes one version per block), so one record per column covers them all.
        let mut stale_nodes: std::collections::BTreeMap<Version, Vec<&NodeKey>> =
            std::collections::BTreeMap::new();
        for stale in &update.stale_node_index_batch {
            stale_nodes
                .entry(stale.stale_since_version)
                .or_default()
                .push(&stale.node_key);
        }
        for (since, keys) in stale_nodes {
            batch.put(
                CF_JMT_STALE,
                since.to_be_bytes().to_vec(),
                encode_stale_nodes(keys)?,
            );
        }
        // The version each updated value had before (it goes stale now): known from the
        // prefetch, or looked up with one iterator for the whole block.
        let written: Vec<(Version, &KeyHash)> = update
            .node_batch
            .values()
            .keys()
            .filter(|(v, _)| *v > 0)
            .map(|(v, k)| (*v, k))
            .collect();
        let unknown: Vec<&KeyHash> = written
            .iter()
            .map(|(_, k)| *k)
            .filter(|k| !prior.contains_key(k))
            .collect();
        let probes: Vec<Vec<u8>> = unknown
            .iter()
            .map(|k| value_key(k, version.saturating_sub(1)))
            .collect();
        let mut looked_up = std::collections::BTreeMap::new();
        for (key_hash, floor) in unknown
            .into_iter()
            .zip(self.kv.floor_entries(CF_JMT_VALUES, &probes)?)
        {
            let found = floor.and_then(|(k, _)| value_version_of(&k, key_hash));
            looked_up.insert(key_hash, found);
        }
        let mut stale_values: std::collections::BTreeMap<Version, Vec<u8>> =
            std::collections::BTreeMap::new();
        for (v, key_hash) in written {
            let before = match prior.get(key_hash) {
                Some(known) => *known,
                None => looked_up.get(key_hash).copied().flatten(),
            };
            if let Some(old) = before {
                stale_values
                    .entry(v)
                    .or_default()
                    .extend_from_slice(&value_key(key_hash, old));
            }
        }
        for (since, record) in stale_values {
            batch.put(CF_JMT_STALE_VALUES, since.to_be_bytes().to_vec(), record);
        }
        for ((v, key_hash), value) in update.node_batch.values() {
            batch.put(
                CF_JMT_VALUES,
                value_key(key_hash, *v),
                encode_value(value.as_deref()),
            );
        }
        if let Some(prune_to) = version.checked_sub(self.prune.keep_versions) {
            let from = self.stale_from.load(std::sync::atomic::Ordering::Relaxed);
            let (_, next) = crate::tree::prune(
                self.kv.as_ref(),
                batch,
                prune_to,
                self.prune.max_deletes_per_block,
                from,
            )?;
            self.stale_from
                .store(next, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(())
    }
}

/// For tree keys a block touches: the version each was last written at before the block
/// (`None`: never written). The commit records those versions as stale.
pub type PriorVersions = std::collections::BTreeMap<KeyHash, Option<Version>>;

/// The chain store with a block's accounts read ahead in one pass: block application asks
/// for two accounts per transfer, and one iterator beats thousands of separate look-ups. The
/// versions found on the way tell the commit which values the block makes stale.
pub struct Prefetched<'a> {
    store: &'a ChainStore,
    accounts: std::collections::BTreeMap<PublicKeyBytes, Option<Account>>,
    chain_stats: ChainStats,
    prior: PriorVersions,
}

impl Prefetched<'_> {
    pub fn prior_versions(&self) -> &PriorVersions {
        &self.prior
    }
}

impl ChainStore {
    /// Reads `keys`' accounts and the chain totals ahead (duplicates are fine).
    pub fn prefetch_accounts(
        &self,
        keys: impl IntoIterator<Item = PublicKeyBytes>,
    ) -> StoreResult<Prefetched<'_>> {
        let keys: std::collections::BTreeSet<PublicKeyBytes> = keys.into_iter().collect();
        // Ordered by tree key so the iterator moves forward through the column.
        let mut wanted: Vec<(KeyHash, Option<PublicKeyBytes>)> = keys
            .into_iter()
            .map(|k| (account_key(&k), Some(k)))
            .collect();
        wanted.push((chain_stats_key(), None));
        wanted.sort_by_key(|w| w.0);
        let hashes: Vec<KeyHash> = wanted.iter().map(|(h, _)| *h).collect();
        let found = self.tree().latest_values(&hashes)?;
        let mut accounts = std::collections::BTreeMap::new();
        let mut chain_stats = ChainStats::default();
        let mut prior = PriorVersions::new();
        for ((hash, key), latest) in wanted.into_iter().zip(found) {
            prior.insert(hash, latest.as_ref().map(|(v, _)| *v));
            let value = latest.and_then(|(_, v)| v);
            match key {
                Some(key) => {
                    let account = value
                        .map(|b| decode_account(&b).map_err(|e| corrupt("account", e)))
                        .transpose()?;
                    accounts.insert(key, account);
                }
                None => {
                    if let Some(b) = value {
                        chain_stats =
                            decode_chain_stats(&b).map_err(|e| corrupt("chain totals", e))?;
                    }
                }
            }
        }
        Ok(Prefetched {
            store: self,
            accounts,
            chain_stats,
            prior,
        })
    }

    /// The newest value of one state key.
    fn state_value(&self, key_hash: KeyHash) -> Result<Option<Vec<u8>>, PortError> {
        let mut found = self.tree().latest_values(&[key_hash])?;
        Ok(found.pop().flatten().and_then(|(_, v)| v))
    }
}

impl StateView for Prefetched<'_> {
    fn account(&self, key: &PublicKeyBytes) -> Result<Option<Account>, PortError> {
        match self.accounts.get(key) {
            Some(a) => Ok(*a),
            None => self.store.account(key),
        }
    }

    fn chain_stats(&self) -> Result<ChainStats, PortError> {
        Ok(self.chain_stats)
    }

    fn stake(&self, owner: &PublicKeyBytes, role: StakeRole) -> Result<Option<Stake>, PortError> {
        self.store.stake(owner, role)
    }

    fn stakers(&self) -> Result<Vec<(PublicKeyBytes, StakeRole)>, PortError> {
        self.store.stakers()
    }

    fn validators(&self) -> Result<EpochValidators, PortError> {
        self.store.validators()
    }

    fn channel(&self, id: &ChannelId) -> Result<Option<Channel>, PortError> {
        self.store.channel(id)
    }
}

impl StateView for ChainStore {
    fn account(&self, key: &PublicKeyBytes) -> Result<Option<Account>, PortError> {
        self.state_value(account_key(key))?
            .map(|b| decode_account(&b).map_err(corrupt_state))
            .transpose()
    }

    fn chain_stats(&self) -> Result<ChainStats, PortError> {
        match self.state_value(chain_stats_key())? {
            None => Ok(ChainStats::default()),
            Some(b) => decode_chain_stats(&b).map_err(corrupt_state),
        }
    }

    fn stake(&self, owner: &PublicKeyBytes, role: StakeRole) -> Result<Option<Stake>, PortError> {
        self.state_value(stake_key(owner, role))?
            .map(|b| decode_stake(&b).map_err(corrupt_state))
            .transpose()
    }

    fn stakers(&self) -> Result<Vec<(PublicKeyBytes, StakeRole)>, PortError> {
        match self.state_value(stakers_key())? {
            None => Ok(Vec::new()),
            Some(b) => decode_stakers(&b).map_err(corrupt_state),
        }
    }

    fn validators(&self) -> Result<EpochValidators, PortError> {
        match self.state_value(validators_key())? {
            // Written by genesis: a state without it is corrupt.
            None => Err(PortError::Corrupt(
                "the state holds no validator sets".into(),
            )),
            Some(b) => decode_validators(&b).map_err(corrupt_state),
        }
    }

    fn channel(&self, id: &ChannelId) -> Result<Option<Channel>, PortError> {
        self.state_value(channel_key(id))?
            .map(|b| decode_channel(&b).map_err(corrupt_state))
            .transpose()
    }
}

/// A state read's failure as a storage failure: the transfer chain's own state is read from its
/// store, so it is never "not yet", only a failing or corrupt store.
pub fn state_error(e: PortError) -> StoreError {
    match e {
        PortError::Store(e) => e,
        PortError::Corrupt(what)
        | PortError::NotYet(what)
        | PortError::Invalid(what)
        | PortError::Unavailable(what) => StoreError::Corrupt(what),
    }
}

/// A state value that does not decode.
fn corrupt_state(e: String) -> PortError {
    PortError::Corrupt(format!("state value: {e}"))
}
