//! Snapshot files of the transfer state: writing one from a store, and bootstrapping an empty
//! store from one, checked exactly as the format module says (`doin_tx_core::snapshot`).
//!
//! Owns file I/O and the restore of the state tree (`jmt`'s restore, writing through this
//! store's layout). Must not trust anything in a file before its check: the head is checked
//! against the genesis alone, each chunk against the manifest before the restore sees it, the
//! range proofs and the final root by the restore. Nothing of an import counts until its last
//! batch: an interrupted import is marked, refused at open and started over.

use crate::history::{Kept, KEPT, META_KEPT};
use crate::store::{
    ChainStore, ValidatorsProof, BLOCK_HASHES, CF_META, COMMITS, EPOCH_PROOFS, GENESIS, HEADERS,
    META_GENESIS, META_SCHEMA, META_TIP, SCHEMA, SCHEMA_VERSION, TIP,
};
use crate::tree::{decode_value, encode_value, value_key, StoreTree, CF_JMT_NODES, CF_JMT_VALUES};
use doin_store::{Direction, Durability, KvStore, StoreError, Table, WriteBatch};
use doin_tx_core::snapshot::{
    check_chunk, chunk_hash, ChunkInfo, Manifest, SnapshotError, SnapshotHead, StateChunk,
    StateHasher, MAX_CHUNK_BYTES, MAX_FRAME_BYTES, SNAPSHOT_FORMAT, SNAPSHOT_MAGIC,
    TARGET_CHUNK_BYTES,
};
use doin_tx_core::{ChainParams, GenesisSpec};
use doin_types::{Hash256, Height};
use jmt::restore::{JellyfishMerkleRestore, StateSnapshotReceiver};
use jmt::storage::{NodeBatch, TreeWriter};
use jmt::{KeyHash, RootHash, Sha256Jmt};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

/// Set while an import is under way; a store holding it and no genesis is half-written.
const RESTORING: Table<Vec<u8>, Height> = Table::new(CF_META, "snapshot import marker");
const META_RESTORING: &[u8] = b"restoring";

/// Why a snapshot could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotFileError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("{0}")]
    Refused(String),
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> SnapshotFileError + '_ {
    move |source| SnapshotFileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// How far a long export or import has come.
#[derive(Clone, Copy, Debug, Default)]
pub struct Progress {
    pub chunks_done: usize,
    /// 0 while exporting (the count is known at the end).
    pub chunks_total: usize,
    pub entries_done: u64,
    pub bytes_done: u64,
}

/// Whether a store holds the start of an import that never finished.
pub fn interrupted_import(kv: &dyn KvStore) -> Result<Option<Height>, StoreError> {
    RESTORING.get(kv, &META_RESTORING.to_vec())
}

/// Writes a snapshot of `chain`'s state at its newest height with a known certificate to
/// `out` (through a temporary file renamed into place, so `out` is never half-written), in
/// chunks of about `chunk_bytes` ([`TARGET_CHUNK_BYTES`] unless testing).
///
/// `store` may be a running node's database opened as a secondary: only reads are made, and the
/// versions read (the newest) are not pruned for `storage.state_history` blocks.
pub fn export(
    store: &ChainStore,
    params: &ChainParams,
    out: &Path,
    chunk_bytes: usize,
    progress: &mut dyn FnMut(Progress),
) -> Result<SnapshotHead, SnapshotFileError> {
    let tip = store
        .tip_height()?
        .ok_or_else(|| SnapshotFileError::Refused("the data directory holds no chain".into()))?;
    let mut found = None;
    for height in [tip, tip.saturating_sub(1)] {
        if height == 0 {
            continue;
        }
        if let Some(proof) = store.finality_proof(height, params.consensus.epoch_blocks)? {
            found = Some((height, proof));
            break;
        }
    }
    let (height, finality) = found.ok_or_else(|| {
        SnapshotFileError::Refused(
            "no final block with a known certificate to snapshot yet (wait for block 1)".into(),
        )
    })?;
    let missing = |h: Height| StoreError::Corrupt(format!("header {h} missing"));
    let header = store.header(height)?.ok_or_else(|| missing(height))?;
    let mut epoch_headers = Vec::with_capacity(finality.hops.len());
    for hop in &finality.hops {
        let h = hop.header.height;
        epoch_headers.push(store.header(h)?.ok_or_else(|| missing(h))?);
    }

    let chunks_path = with_suffix(out, ".chunks.tmp");
    let chunks = write_chunks(
        store.kv().as_ref(),
        height,
        &chunks_path,
        chunk_bytes,
        progress,
    )?;
    let head = SnapshotHead {
        manifest: Manifest {
            chain_id: params.chain_id,
            height,
            block_hash: header.hash().map_err(SnapshotError::Header)?,
            state_root: header.header.state_root,
            chunks,
        },
        header,
        finality,
        epoch_headers,
    };
    let tmp = with_suffix(out, ".tmp");
    {
        let file = File::create(&tmp).map_err(io(&tmp))?;
        let mut w = BufWriter::new(file);
        w.write_all(SNAPSHOT_MAGIC).map_err(io(&tmp))?;
        w.write_all(&SNAPSHOT_FORMAT.to_be_bytes())
            .map_err(io(&tmp))?;
        let frames = head.encode_frames().map_err(|e| {
            SnapshotFileError::Refused(format!("the snapshot head does not encode: {e}"))
        })?;
        for frame in &frames {
            write_frame(&mut w, frame).map_err(io(&tmp))?;
        }
        let mut chunks = File::open(&chunks_path).map_err(io(&chunks_path))?;
        std::io::copy(&mut chunks, &mut w).map_err(io(&tmp))?;
        let file = w.into_inner().map_err(|e| io(&tmp)(e.into_error()))?;
        file.sync_all().map_err(io(&tmp))?;
    }
    std::fs::rename(&tmp, out).map_err(io(out))?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))?;
    }
    std::fs::remove_file(&chunks_path).map_err(io(&chunks_path))?;
    Ok(head)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn write_frame(w: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(bytes.len())
        .map_err(|_| std::io::Error::other("a snapshot frame over 4 GiB"))?;
    w.write_all(&len.to_be_bytes())?;
    w.write_all(bytes)
}

/// The state at `height` in key-hash order, chunked, each chunk with its range proof, written
/// as frames to `path`; returns the manifest's chunk list.
fn write_chunks(
    kv: &dyn KvStore,
    height: Height,
    path: &Path,
    chunk_bytes: usize,
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<ChunkInfo>, SnapshotFileError> {
    let chunk_bytes = chunk_bytes.clamp(1, TARGET_CHUNK_BYTES);
    let tree = StoreTree::new(kv);
    let jmt = Sha256Jmt::new(&tree);
    let file = File::create(path).map_err(io(path))?;
    let mut w = BufWriter::new(file);
    let mut infos = Vec::new();
    let mut pending: Vec<(Hash256, Vec<u8>)> = Vec::new();
    let mut pending_bytes = 0usize;
    let mut done = Progress::default();
    let mut flush = |pending: &mut Vec<(Hash256, Vec<u8>)>,
                     infos: &mut Vec<ChunkInfo>,
                     w: &mut BufWriter<File>|
     -> Result<(), SnapshotFileError> {
        let Some(last) = pending.last() else {
            return Ok(());
        };
        let proof = jmt
            .get_range_proof(KeyHash(last.0 .0), height)
            .map_err(|e| StoreError::Corrupt(format!("range proof at {height}: {e}")))?;
        let chunk = StateChunk {
            entries: std::mem::take(pending),
            proof,
        };
        let encoded = chunk
            .encode()
            .map_err(|e| SnapshotFileError::Refused(format!("a chunk does not encode: {e}")))?;
        write_frame(w, &encoded).map_err(io(path))?;
        infos.push(ChunkInfo {
            hash: chunk_hash(&encoded),
            entries: chunk.entries.len() as u64,
            bytes: encoded.len() as u64,
        });
        done.chunks_done += 1;
        done.entries_done += chunk.entries.len() as u64;
        done.bytes_done += encoded.len() as u64;
        progress(done);
        Ok(())
    };
    // Each key's versions are consecutive and ascending: the last one at or below `height`
    // is the key's value in that state (a deletion leaves it out).
    let mut current: Option<(Hash256, Option<Vec<u8>>)> = None;
    let take = |entry: (Hash256, Option<Vec<u8>>),
                pending: &mut Vec<(Hash256, Vec<u8>)>,
                pending_bytes: &mut usize| {
        if let (key, Some(value)) = entry {
            *pending_bytes += 40 + value.len();
            pending.push((key, value));
        }
    };
    for item in kv.iter_from(CF_JMT_VALUES, &[], Direction::Forward)? {
        let (k, v) = item?;
        if k.len() != 40 {
            return Err(StoreError::Corrupt("jmt value key length".into()).into());
        }
        let key = Hash256::from_slice(&k[..32])
            .ok_or_else(|| StoreError::Corrupt("jmt value key".into()))?;
        let mut version = [0u8; 8];
        version.copy_from_slice(&k[32..]);
        if u64::from_be_bytes(version) > height {
            continue;
        }
        let value = decode_value(&v)?;
        match &mut current {
            Some((held, slot)) if *held == key => *slot = value,
            _ => {
                if let Some(prev) = current.replace((key, value)) {
                    take(prev, &mut pending, &mut pending_bytes);
                    if pending_bytes >= chunk_bytes {
                        flush(&mut pending, &mut infos, &mut w)?;
                        pending_bytes = 0;
                    }
                }
            }
        }
    }
    if let Some(prev) = current.take() {
        take(prev, &mut pending, &mut pending_bytes);
    }
    flush(&mut pending, &mut infos, &mut w)?;
    let file = w.into_inner().map_err(|e| io(path)(e.into_error()))?;
    file.sync_all().map_err(io(path))?;
    if infos.is_empty() {
        return Err(SnapshotFileError::Refused("the state is empty".into()));
    }
    Ok(infos)
}

/// A snapshot file, opened and its head checked: the chunks follow.
pub struct SnapshotReader {
    path: PathBuf,
    reader: BufReader<File>,
    pub head: SnapshotHead,
}

impl SnapshotReader {
    /// Opens `path` and reads its head; checks it against `params` when given, else only
    /// for consistency (`inspect` without a genesis file).
    pub fn open(path: &Path, params: Option<&ChainParams>) -> Result<Self, SnapshotFileError> {
        let file = File::open(path).map_err(io(path))?;
        let mut reader = BufReader::new(file);
        let mut magic = [0u8; 8];
        read_exact_or(&mut reader, &mut magic, path, SnapshotError::NotASnapshot)?;
        if &magic != SNAPSHOT_MAGIC {
            return Err(SnapshotError::NotASnapshot.into());
        }
        let mut format = [0u8; 4];
        read_exact_or(&mut reader, &mut format, path, SnapshotError::NotASnapshot)?;
        let format = u32::from_be_bytes(format);
        if format != SNAPSHOT_FORMAT {
            return Err(SnapshotError::Format(format).into());
        }
        let bytes = read_frame(&mut reader, path, MAX_FRAME_BYTES, "head")?;
        let mut failed = None;
        let decoded = SnapshotHead::decode_frames(&bytes, &mut |index| {
            read_frame(
                &mut reader,
                path,
                MAX_FRAME_BYTES,
                &format!("epoch hop {index}"),
            )
            .map_err(|e| {
                let reason = e.to_string();
                failed = Some(e);
                SnapshotError::EpochHeaders(reason)
            })
        });
        let head = match (decoded, failed) {
            (Ok(head), _) => head,
            (Err(_), Some(io_error)) => return Err(io_error),
            (Err(e), None) => return Err(e.into()),
        };
        match params {
            Some(params) => head.check(params)?,
            None => head.check_consistent()?,
        }
        Ok(SnapshotReader {
            path: path.to_path_buf(),
            reader,
            head,
        })
    }

    /// The next chunk, checked against the manifest (`index` is its position).
    pub fn chunk(&mut self, index: usize) -> Result<StateChunk, SnapshotFileError> {
        let what = format!("chunk {index}");
        let bytes = read_frame(&mut self.reader, &self.path, MAX_CHUNK_BYTES, &what)?;
        Ok(check_chunk(&self.head.manifest, index, &bytes)?)
    }

    /// Refuses bytes after the last chunk.
    pub fn finish(mut self) -> Result<(), SnapshotFileError> {
        let mut extra = [0u8; 1];
        match self.reader.read(&mut extra).map_err(io(&self.path))? {
            0 => Ok(()),
            _ => Err(SnapshotFileError::Refused(format!(
                "{}: bytes after the last chunk",
                self.path.display()
            ))),
        }
    }
}

fn read_exact_or(
    r: &mut impl Read,
    buf: &mut [u8],
    path: &Path,
    short: SnapshotError,
) -> Result<(), SnapshotFileError> {
    match r.read_exact(buf) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(short.into()),
        Err(e) => Err(io(path)(e)),
    }
}

fn read_frame(
    r: &mut impl Read,
    path: &Path,
    max: usize,
    what: &str,
) -> Result<Vec<u8>, SnapshotFileError> {
    let truncated =
        || SnapshotFileError::Refused(format!("{}: the {what} is cut short", path.display()));
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(truncated()),
        Err(e) => return Err(io(path)(e)),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(SnapshotFileError::Refused(format!(
            "{}: the {what} claims {len} bytes, more than the {max} allowed",
            path.display()
        )));
    }
    let mut bytes = vec![0u8; len];
    match r.read_exact(&mut bytes) {
        Ok(()) => Ok(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(truncated()),
        Err(e) => Err(io(path)(e)),
    }
}

/// Encodes what the tree restore freezes (nodes and values of one version) in this store's
/// layout and hands it to the thread that writes it.
struct RestoreWriter {
    batches: SyncSender<WriteBatch>,
}

impl TreeWriter for RestoreWriter {
    fn write_node_batch(&self, node_batch: &NodeBatch) -> anyhow::Result<()> {
        let mut batch = WriteBatch::new();
        for (node_key, node) in node_batch.nodes() {
            batch.put(CF_JMT_NODES, borsh::to_vec(node_key)?, borsh::to_vec(node)?);
        }
        for ((version, key_hash), value) in node_batch.values() {
            batch.put(
                CF_JMT_VALUES,
                value_key(key_hash, *version),
                encode_value(value.as_deref()),
            );
        }
        self.batches
            .send(batch)
            .map_err(|_| anyhow::anyhow!("the store's writer stopped"))
    }
}

/// Restores the state of `reader`'s snapshot into `kv`'s tree, checks the root and flushes
/// the tree to disk.
///
/// Three threads, so a node's cores share the work: one reads and checks the chunks ahead,
/// this one rebuilds the tree (hashing every node and checking each chunk's range proof), one
/// writes. The writes skip the write-ahead log — an interrupted import is cleared and started
/// over, never resumed from the store — and are flushed to table files before returning.
fn restore_state(
    kv: &Arc<dyn KvStore>,
    reader: &mut SnapshotReader,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), SnapshotFileError> {
    let manifest = reader.head.manifest.clone();
    let (chunk_tx, chunks) = sync_channel::<Result<StateChunk, SnapshotFileError>>(2);
    let (batches, batch_rx) = sync_channel::<WriteBatch>(4);
    let (built, written) = std::thread::scope(|scope| {
        let chunks_total = manifest.chunks.len();
        scope.spawn(move || {
            for index in 0..chunks_total {
                let chunk = reader.chunk(index);
                let failed = chunk.is_err();
                // A closed channel means the restore stopped: nothing more to read.
                if chunk_tx.send(chunk).is_err() || failed {
                    return;
                }
            }
        });
        let store = kv.clone();
        let writer = scope.spawn(move || -> Result<(), StoreError> {
            for batch in batch_rx {
                store.write(batch, Durability::Unlogged)?;
            }
            Ok(())
        });
        // The writer is dropped with the restore, on every path, so the write thread ends.
        let built = build_tree(&manifest, chunks, RestoreWriter { batches }, progress);
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(StoreError::Backend("the restore's writer panicked".into())));
        (built, written)
    });
    // A store failure explains a tree that could not be written; report it first.
    written?;
    built?;
    kv.flush()?;
    let tree = StoreTree::new(kv.as_ref());
    let got = Sha256Jmt::new(&tree)
        .get_root_hash_option(manifest.height)
        .map_err(|e| SnapshotError::Root(e.to_string()))?;
    if got != Some(RootHash(manifest.state_root.0)) {
        return Err(SnapshotError::Root("the restored tree has another root".into()).into());
    }
    Ok(())
}

/// Feeds the checked chunks, in order, to `jmt`'s restore, which checks each one's range proof
/// against the manifest's root and hands what it freezes to `writer`.
fn build_tree(
    manifest: &Manifest,
    chunks: Receiver<Result<StateChunk, SnapshotFileError>>,
    writer: RestoreWriter,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), SnapshotFileError> {
    let root = RootHash(manifest.state_root.0);
    let mut restore = JellyfishMerkleRestore::<StateHasher>::new_overwrite(
        Arc::new(writer),
        manifest.height,
        root,
    )
    .map_err(|e| SnapshotError::Root(e.to_string()))?;
    let mut done = Progress {
        chunks_total: manifest.chunks.len(),
        ..Progress::default()
    };
    for (index, info) in manifest.chunks.iter().enumerate() {
        let chunk = chunks.recv().map_err(|_| {
            SnapshotFileError::Refused(format!("chunk {index}: the reader stopped"))
        })??;
        let entries = chunk
            .entries
            .into_iter()
            .map(|(k, v)| (KeyHash(k.0), v))
            .collect();
        restore
            .add_chunk(entries, chunk.proof)
            .map_err(|e| SnapshotError::Chunk {
                index,
                reason: format!("its range proof fails the state root: {e}"),
            })?;
        done.chunks_done += 1;
        done.entries_done += info.entries;
        done.bytes_done += info.bytes;
        progress(done);
    }
    restore
        .finish()
        .map_err(|e| SnapshotError::Root(e.to_string()))?;
    Ok(())
}

/// Bootstraps the empty store `kv` from the snapshot at `path`, trusting only `spec`: the head
/// is checked from the genesis, each chunk against the manifest and the root. The node then
/// holds the snapshot's block as its tip (and what proves it final), with history from there:
/// it runs with `storage.prune = "pruned"`.
pub fn import(
    kv: Arc<dyn KvStore>,
    spec: &GenesisSpec,
    path: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<SnapshotHead, SnapshotFileError> {
    let params = ChainParams::from_genesis(spec)
        .map_err(|e| SnapshotFileError::Refused(format!("the genesis file: {e}")))?;
    if GENESIS.get(kv.as_ref(), &META_GENESIS.to_vec())?.is_some() {
        return Err(SnapshotFileError::Refused(
            "the data directory already holds a chain; import a snapshot into an empty one".into(),
        ));
    }
    let mut reader = SnapshotReader::open(path, Some(&params))?;
    let head = reader.head.clone();
    let height = head.manifest.height;
    if interrupted_import(kv.as_ref())?.is_some() {
        clear_tree(kv.as_ref())?;
    }
    let mut mark = WriteBatch::new();
    RESTORING.put(&mut mark, &META_RESTORING.to_vec(), &height)?;
    kv.write(mark, Durability::Sync)?;

    restore_state(&kv, &mut reader, progress)?;
    reader.finish()?;

    let mut batch = WriteBatch::new();
    // Not the genesis header: it would take rebuilding the genesis state (all its allocations)
    // and nothing a node bootstrapped here does reads it; finality proofs start at the first hop.
    let mut headers = Vec::with_capacity(head.finality.hops.len() + 1);
    for (signed, hop) in head.epoch_headers.iter().zip(&head.finality.hops) {
        let proven = ValidatorsProof {
            value: hop.validators.clone(),
            proof: hop.proof.clone(),
        };
        headers.push((signed.clone(), Some(hop.certificate.clone()), Some(proven)));
    }
    headers.push((
        head.header.clone(),
        Some(head.finality.certificate.clone()),
        None,
    ));
    for (signed, certificate, proven) in &headers {
        let h = signed.header.height;
        let hash = signed.hash().map_err(SnapshotError::Header)?;
        HEADERS.put(&mut batch, &h, signed)?;
        BLOCK_HASHES.put(&mut batch, &hash, &h)?;
        if let Some(c) = certificate {
            COMMITS.put(&mut batch, &h, c)?;
        }
        if let Some(p) = proven {
            EPOCH_PROOFS.put(&mut batch, &h, p)?;
        }
    }
    KEPT.put(
        &mut batch,
        &META_KEPT.to_vec(),
        &Kept {
            // The tip's body is not in a snapshot.
            bodies_from: height + 1,
            headers_from: height,
        },
    )?;
    GENESIS.put(&mut batch, &META_GENESIS.to_vec(), spec)?;
    SCHEMA.put(&mut batch, &META_SCHEMA.to_vec(), &SCHEMA_VERSION)?;
    TIP.put(&mut batch, &META_TIP.to_vec(), &height)?;
    RESTORING.delete(&mut batch, &META_RESTORING.to_vec());
    kv.write(batch, Durability::Sync)?;
    Ok(head)
}

/// Reads and checks every part of the snapshot at `path`: against `spec` when given, and with
/// the chunks restored into a throw-away in-memory store so their root is checked too.
pub fn verify_file(
    path: &Path,
    spec: Option<&GenesisSpec>,
    progress: &mut dyn FnMut(Progress),
) -> Result<SnapshotHead, SnapshotFileError> {
    let params = spec
        .map(ChainParams::from_genesis)
        .transpose()
        .map_err(|e| SnapshotFileError::Refused(format!("the genesis file: {e}")))?;
    let mut reader = SnapshotReader::open(path, params.as_ref())?;
    let head = reader.head.clone();
    let kv: Arc<dyn KvStore> = Arc::new(doin_store::MemStore::new(crate::store::COLUMNS));
    restore_state(&kv, &mut reader, progress)?;
    reader.finish()?;
    Ok(head)
}

/// Deletes every tree node and value (what an interrupted import wrote).
fn clear_tree(kv: &dyn KvStore) -> Result<(), StoreError> {
    for cf in [CF_JMT_NODES, CF_JMT_VALUES] {
        loop {
            let mut batch = WriteBatch::new();
            let mut n = 0;
            for item in kv.iter_from(cf, &[], Direction::Forward)?.take(10_000) {
                let (k, _) = item?;
                batch.delete(cf, k);
                n += 1;
            }
            if n == 0 {
                break;
            }
            kv.write(batch, Durability::Buffered)?;
        }
    }
    Ok(())
}
