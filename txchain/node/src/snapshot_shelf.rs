//! The snapshots this node serves to peers that warp-sync: files in one directory, written
//! from the chain at final heights every `every_blocks` blocks, the newest `keep` kept.
//!
//! Owns that directory and an index of each file's frames (where each starts and how long it
//! is), so a peer's request is one seek and one read. Must not offer a file whose head does not
//! check against this chain's genesis parameters: a damaged file on this disk is skipped (and
//! logged), never served. Peers check every frame themselves anyway; this only keeps an honest
//! node from being penalised for its own disk.

use crate::chain::TxChain;
use crate::snapshot::{export, SnapshotFileError, SnapshotReader};
use crate::wire::{SnapshotOffer, MAX_SNAPSHOT_OFFERS};
use doin_tx_core::snapshot::MAX_FRAME_BYTES;
use doin_tx_core::ChainParams;
use doin_types::Height;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;

/// Bytes before the first frame: the magic and the format number.
const PREAMBLE_BYTES: u64 = 12;

/// One served file and where its frames are.
struct Shelved {
    offer: SnapshotOffer,
    path: PathBuf,
    /// Offset and length of each frame's bytes (after its length prefix).
    frames: Vec<(u64, u32)>,
}

/// The served snapshots, oldest first.
pub struct SnapshotShelf {
    dir: PathBuf,
    params: ChainParams,
    keep: usize,
    chunk_bytes: usize,
    files: Mutex<Vec<Shelved>>,
}

impl SnapshotShelf {
    /// Opens (creating) `dir` and indexes the snapshot files in it; leftovers of an export
    /// that never finished are removed. Snapshots written later keep the newest `keep` and
    /// aim at `chunk_bytes` a chunk.
    pub fn open(
        dir: &Path,
        params: ChainParams,
        keep: usize,
        chunk_bytes: usize,
    ) -> Result<SnapshotShelf, SnapshotFileError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| SnapshotFileError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let path = entry.map_err(io(dir))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.ends_with(".tmp") {
                std::fs::remove_file(&path).map_err(io(&path))?;
            } else if name.starts_with("tx-") && name.ends_with(".snap") {
                match index(&path, &params) {
                    Ok(shelved) => files.push(shelved),
                    Err(e) => tracing::warn!(
                        file = %path.display(), error = %e,
                        "a snapshot file here does not check; it is not served"
                    ),
                }
            }
        }
        files.sort_by_key(|s| s.offer.height);
        Ok(SnapshotShelf {
            dir: dir.to_path_buf(),
            params,
            keep: keep.max(1),
            chunk_bytes: chunk_bytes.max(1),
            files: Mutex::new(files),
        })
    }

    fn files(&self) -> MutexGuard<'_, Vec<Shelved>> {
        self.files.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The newest snapshot served, if any.
    pub fn offer(&self) -> Option<SnapshotOffer> {
        self.files().last().map(|s| s.offer.clone())
    }

    /// The snapshots served, oldest first (the newest [`MAX_SNAPSHOT_OFFERS`]): a peer that
    /// resumes a download finds its snapshot here as long as this node keeps it.
    pub fn offers(&self) -> Vec<SnapshotOffer> {
        let files = self.files();
        let skip = files.len().saturating_sub(MAX_SNAPSHOT_OFFERS);
        files.iter().skip(skip).map(|s| s.offer.clone()).collect()
    }

    /// The bytes of frame `index` of the snapshot at `height`.
    pub fn frame(&self, height: Height, index: u32) -> Result<Vec<u8>, String> {
        let (path, offset, len) = {
            let files = self.files();
            let shelved = files
                .iter()
                .find(|s| s.offer.height == height)
                .ok_or_else(|| format!("no snapshot at height {height} is served here"))?;
            let (offset, len) = *shelved
                .frames
                .get(index as usize)
                .ok_or_else(|| format!("the snapshot has no frame {index}"))?;
            (shelved.path.clone(), offset, len)
        };
        let mut file = File::open(&path).map_err(|e| format!("snapshot no longer served: {e}"))?;
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| format!("node error: {e}"))?;
        let mut bytes = vec![0u8; len as usize];
        file.read_exact(&mut bytes)
            .map_err(|e| format!("node error: {e}"))?;
        Ok(bytes)
    }

    /// Writes a snapshot of `chain` at its newest final height, unless the newest served one
    /// is at most `every` blocks older; drops the oldest beyond `keep`. Blocking (the export
    /// reads the whole state).
    pub fn take(
        &self,
        chain: &TxChain,
        every: u64,
    ) -> Result<Option<SnapshotOffer>, SnapshotFileError> {
        let final_height = chain.tip().final_height;
        let newest = self.offer().map_or(0, |o| o.height);
        if final_height == 0 || final_height < newest.saturating_add(every.max(1)) {
            return Ok(None);
        }
        let out = self.dir.join(format!("tx-{final_height:012}.snap"));
        let head = export(
            chain.store(),
            &self.params,
            &out,
            self.chunk_bytes,
            &mut |_| {},
        )?;
        let height = head.manifest.height;
        let path = self.dir.join(format!("tx-{height:012}.snap"));
        if path != out {
            // The export took the height before the tip when the tip had no certificate yet.
            std::fs::rename(&out, &path).map_err(|source| SnapshotFileError::Io {
                path: path.clone(),
                source,
            })?;
        }
        let shelved = index(&path, &self.params)?;
        let offer = shelved.offer.clone();
        let dropped: Vec<PathBuf> = {
            let mut files = self.files();
            files.retain(|s| s.offer.height != height);
            files.push(shelved);
            files.sort_by_key(|s| s.offer.height);
            let excess = files.len().saturating_sub(self.keep);
            files.drain(..excess).map(|s| s.path).collect()
        };
        for old in dropped {
            if let Err(e) = std::fs::remove_file(&old) {
                tracing::warn!(file = %old.display(), error = %e, "cannot remove an old snapshot");
            }
        }
        Ok(Some(offer))
    }
}

/// Checks the head of the file at `path` and finds where each of its frames is.
fn index(path: &Path, params: &ChainParams) -> Result<Shelved, SnapshotFileError> {
    let io = |source| SnapshotFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let head = SnapshotReader::open(path, Some(params))?.head;
    let mut file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let mut at = PREAMBLE_BYTES;
    let mut frames = Vec::new();
    while at < len {
        file.seek(SeekFrom::Start(at)).map_err(io)?;
        let mut prefix = [0u8; 4];
        file.read_exact(&mut prefix).map_err(io)?;
        let frame_len = u32::from_be_bytes(prefix);
        if frame_len as usize > MAX_FRAME_BYTES {
            return Err(SnapshotFileError::Refused(format!(
                "{}: a frame of {frame_len} bytes",
                path.display()
            )));
        }
        frames.push((at + 4, frame_len));
        at += 4 + u64::from(frame_len);
    }
    let head_frames = 1 + head.epoch_headers.len();
    let chunks = head.manifest.chunks.len();
    if at != len || frames.len() != head_frames + chunks {
        return Err(SnapshotFileError::Refused(format!(
            "{}: {} frames, the head names {}",
            path.display(),
            frames.len(),
            head_frames + chunks
        )));
    }
    Ok(Shelved {
        offer: SnapshotOffer::of(&head)
            .ok_or_else(|| SnapshotFileError::Refused("too many frames".into()))?,
        path: path.to_path_buf(),
        frames,
    })
}

/// Takes a snapshot whenever the chain has finalised `every` blocks past the newest one, until
/// shutdown. A failed snapshot is logged and tried again at the next check.
pub async fn produce(
    chain: Arc<TxChain>,
    shelf: Arc<SnapshotShelf>,
    every: u64,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), String> {
    loop {
        tokio::select! {
            _ = shutdown.changed() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        if *shutdown.borrow() {
            return Ok(());
        }
        let (c, s) = (chain.clone(), shelf.clone());
        match tokio::task::spawn_blocking(move || s.take(&c, every)).await {
            Ok(Ok(Some(offer))) => tracing::info!(
                height = offer.height,
                chunks = offer.chunks,
                bytes = offer.chunk_bytes,
                "state snapshot written for peers"
            ),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "could not write a state snapshot"),
            Err(e) => return Err(format!("snapshot task failed: {e}")),
        }
    }
}
