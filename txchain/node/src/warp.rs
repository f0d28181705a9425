//! Warp sync of the transfer chain: a node whose store is empty fetches a recent snapshot from
//! its peers (the snapshot requests of [`crate::wire`]) instead of replaying every block, then
//! imports it exactly as a snapshot file is imported ([`crate::snapshot::import`]) and syncs
//! the blocks after it as usual.
//!
//! Owns the download: the file `tx-warp.part` in its directory, written frame by frame in the
//! snapshot file layout (`docs/architecture.md#snapshots`) and renamed `tx-warp.snap` when
//! complete. Trusts no peer: the head is checked against the genesis parameters alone (the
//! finality proof, hop by hop across epochs) before any chunk is asked for; each chunk is
//! checked against the manifest on arrival, and only then written and fsynced, so a kill mid-
//! download resumes after the last written chunk without fetching it again. A peer whose head
//! or chunk fails is penalised and asked nothing more; its chunk is fetched from another peer.
//! Whether the chunks make the manifest's root is proven by the import's range proofs.
//! Must not touch the chain's store: that is the import's.

use crate::snapshot::{SnapshotFileError, SnapshotReader};
use crate::wire::{SnapshotOffer, SyncRequest, SyncResponse, MAX_SNAPSHOT_OFFERS};
use doin_api::node::{SyncPhase, WarpView};
use doin_net::{Misbehaviour, NetHandle, PeerId, Service};
use doin_tx_core::snapshot::{check_chunk, SnapshotHead, SNAPSHOT_FORMAT, SNAPSHOT_MAGIC};
use doin_tx_core::ChainParams;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The download in progress, renamed [`COMPLETE_FILE`] once every chunk is in.
pub const PART_FILE: &str = "tx-warp.part";
/// A complete download, checked chunk by chunk, waiting for (or in) its import.
pub const COMPLETE_FILE: &str = "tx-warp.snap";
/// Failed requests after which a peer is asked nothing more in this download.
const MAX_PEER_FAILURES: u32 = 3;
/// How long a resumed download waits for a peer that still serves its snapshot before it
/// starts over with a newer one.
const RESUME_PATIENCE: Duration = Duration::from_secs(60);

/// A shared view of one warp sync: its phase (one of the warp phases of [`SyncPhase`]) and
/// progress, as `/v1/node/sync` and the terminal show them.
#[derive(Clone)]
pub struct WarpProgress(Arc<Mutex<(SyncPhase, WarpView)>>);

impl Default for WarpProgress {
    fn default() -> Self {
        WarpProgress(Arc::new(Mutex::new((
            SyncPhase::Peers,
            WarpView::default(),
        ))))
    }
}

impl WarpProgress {
    pub fn get(&self) -> (SyncPhase, WarpView) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn set_phase(&self, phase: SyncPhase) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).0 = phase;
    }

    pub fn update(&self, f: impl FnOnce(&mut WarpView)) {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()).1);
    }
}

/// Why a warp download stopped.
#[derive(Debug, thiserror::Error)]
pub enum WarpError {
    #[error(transparent)]
    File(#[from] SnapshotFileError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What a download needs besides the network.
pub struct WarpConfig {
    /// Directory of the download files (the node's data directory).
    pub dir: PathBuf,
    /// Largest answer decoded from a peer.
    pub max_response_bytes: usize,
    /// Chunk requests in flight at once, over all peers.
    pub in_flight: usize,
}

/// The snapshot being fetched: its head (checked) and the raw frames that encode it.
struct Target {
    offer: SnapshotOffer,
    head: SnapshotHead,
}

/// Downloads a snapshot of the chain `params` describes from the peers of `net` into
/// `cfg.dir`, resuming a download a previous run left. Returns the complete file, or `None`
/// when `shutdown` came first.
pub async fn download(
    net: &NetHandle,
    params: &ChainParams,
    cfg: &WarpConfig,
    progress: &WarpProgress,
    mut shutdown: watch::Receiver<bool>,
) -> Result<Option<PathBuf>, WarpError> {
    let complete = cfg.dir.join(COMPLETE_FILE);
    if complete.exists() {
        return Ok(Some(complete));
    }
    let part = cfg.dir.join(PART_FILE);
    let mut resumed = match resume(&part, params) {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(error = %e, "the unfinished warp download does not check; starting over");
            remove(&part)?;
            None
        }
    };
    let mut banned: HashSet<PeerId> = HashSet::new();
    // Since when no peer has served the unfinished download's snapshot (counted in this run,
    // so a node that was down for long still gives its peers time to connect).
    let mut unserved_since: Option<Instant> = None;
    loop {
        if *shutdown.borrow() {
            return Ok(None);
        }
        progress.set_phase(SyncPhase::Peers);
        let offers = ask_offers(net, cfg, &banned).await;
        let choice = match &resumed {
            Some((target, _)) => {
                let peers = serving(&offers, &target.offer);
                if !peers.is_empty() {
                    unserved_since = None;
                } else if unserved_since.get_or_insert_with(Instant::now).elapsed()
                    > RESUME_PATIENCE
                {
                    tracing::warn!(
                        height = target.offer.height,
                        "no peer serves the snapshot of the unfinished download any more; starting over"
                    );
                    remove(&part)?;
                    resumed = None;
                    unserved_since = None;
                    continue;
                }
                (!peers.is_empty()).then(|| (target.offer.clone(), peers))
            }
            None => newest(&offers),
        };
        let Some((offer, peers)) = choice else {
            tracing::info!(
                peers = net.connected_peers().len(),
                "warp sync: waiting for a peer that offers a snapshot"
            );
            if wait(&mut shutdown, Duration::from_secs(1)).await {
                return Ok(None);
            }
            continue;
        };
        progress.update(|s| {
            s.height = Some(offer.height);
            s.peers = peers.len() as u64;
            s.chunks_total = u64::from(offer.chunks);
            s.bytes_total = offer.chunk_bytes;
        });
        let (target, written) = match resumed.take() {
            Some(found) => found,
            None => {
                progress.set_phase(SyncPhase::Proof);
                let Some(target) = fetch_head(net, params, cfg, &offer, &peers, &mut banned).await
                else {
                    continue;
                };
                start_file(&part, &target)?;
                tracing::info!(
                    height = offer.height,
                    chunks = offer.chunks,
                    bytes = offer.chunk_bytes,
                    epoch_hops = target.head.finality.hops.len(),
                    "warp sync: the snapshot's block is proven final from the genesis; fetching its state"
                );
                (target, 0)
            }
        };
        let total = target.head.manifest.chunks.len();
        match fetch_chunks(
            net,
            cfg,
            &part,
            &target,
            written,
            peers,
            &mut banned,
            progress,
            &mut shutdown,
        )
        .await?
        {
            Fetched::All => {
                std::fs::rename(&part, &complete).map_err(|source| WarpError::Io {
                    path: complete.clone(),
                    source,
                })?;
                sync_dir(&cfg.dir)?;
                progress.set_phase(SyncPhase::Restore);
                return Ok(Some(complete));
            }
            Fetched::Stopped => return Ok(None),
            Fetched::Partly(done) => {
                tracing::info!(done, total, "warp sync: out of peers for now; asking again");
                resumed = Some((target, done));
                if wait(&mut shutdown, Duration::from_secs(1)).await {
                    return Ok(None);
                }
            }
        }
    }
}

/// Reads what an earlier run downloaded: the checked head and how many chunks are in, the file
/// cut back to the end of the last whole chunk.
fn resume(part: &Path, params: &ChainParams) -> Result<Option<(Target, usize)>, WarpError> {
    if !part.exists() {
        return Ok(None);
    }
    let mut reader = SnapshotReader::open(part, Some(params))?;
    let head = reader.head.clone();
    let mut end = 12u64;
    // The head frames: as written by `start_file`, so their lengths are known from the file.
    let frames = head_frames_len(part, 1 + head.epoch_headers.len())?;
    end += frames;
    let mut done = 0;
    while done < head.manifest.chunks.len() && reader.chunk(done).is_ok() {
        end += 4 + head.manifest.chunks[done].bytes;
        done += 1;
    }
    let file = OpenOptions::new()
        .write(true)
        .open(part)
        .map_err(io(part))?;
    file.set_len(end).map_err(io(part))?;
    file.sync_all().map_err(io(part))?;
    let offer = offer_of(&head)?;
    tracing::info!(
        height = offer.height,
        chunks_done = done,
        chunks = offer.chunks,
        "warp sync: resuming the unfinished download"
    );
    Ok(Some((Target { offer, head }, done)))
}

/// Bytes of the first `count` frames of the file at `path` (prefixes included).
fn head_frames_len(path: &Path, count: usize) -> Result<u64, WarpError> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = File::open(path).map_err(io(path))?;
    let mut at = 12u64;
    for _ in 0..count {
        file.seek(SeekFrom::Start(at)).map_err(io(path))?;
        let mut prefix = [0u8; 4];
        file.read_exact(&mut prefix).map_err(io(path))?;
        at += 4 + u64::from(u32::from_be_bytes(prefix));
    }
    Ok(at - 12)
}

fn offer_of(head: &SnapshotHead) -> Result<SnapshotOffer, WarpError> {
    SnapshotOffer::of(head)
        .ok_or_else(|| SnapshotFileError::Refused("too many frames".into()).into())
}

/// Sends one request and decodes the answer; a malformed answer costs the peer score.
async fn ask(
    net: &NetHandle,
    max_response_bytes: usize,
    peer: PeerId,
    req: &SyncRequest,
) -> Result<SyncResponse, String> {
    let bytes = req.encode().map_err(|e| e.to_string())?;
    let answer = net
        .request(peer, Service::TxSync, bytes)
        .await
        .map_err(|e| e.to_string())?;
    match SyncResponse::decode(&answer, max_response_bytes) {
        Ok(r) => Ok(r),
        Err(e) => {
            net.penalize(peer, Misbehaviour::InvalidResponse).await;
            Err(format!("malformed answer: {e}"))
        }
    }
}

/// Every connected peer's offers (peers that serve none, fail or are banned left out; a list
/// longer than the bound costs its sender score).
async fn ask_offers(
    net: &NetHandle,
    cfg: &WarpConfig,
    banned: &HashSet<PeerId>,
) -> Vec<(PeerId, SnapshotOffer)> {
    let mut asks = tokio::task::JoinSet::new();
    for peer in net.connected_peers() {
        if banned.contains(&peer) {
            continue;
        }
        let net = net.clone();
        let req = SyncRequest::SnapshotOffers;
        let max = cfg.max_response_bytes;
        asks.spawn(async move { (peer, ask(&net, max, peer, &req).await) });
    }
    let mut offers = Vec::new();
    while let Some(joined) = asks.join_next().await {
        match joined {
            Ok((peer, Ok(SyncResponse::SnapshotOffers(list))))
                if list.len() <= MAX_SNAPSHOT_OFFERS =>
            {
                offers.extend(list.into_iter().map(|offer| (peer, offer)))
            }
            Ok((peer, Ok(_))) => net.penalize(peer, Misbehaviour::InvalidResponse).await,
            Ok((peer, Err(e))) => {
                tracing::debug!(%peer, error = %e, "snapshot offer request failed")
            }
            Err(e) => tracing::debug!(error = %e, "snapshot offer task failed"),
        }
    }
    offers
}

/// Peers offering exactly `offer`.
fn serving(offers: &[(PeerId, SnapshotOffer)], offer: &SnapshotOffer) -> Vec<PeerId> {
    offers
        .iter()
        .filter(|(_, o)| o == offer)
        .map(|(p, _)| *p)
        .collect()
}

/// The newest snapshot offered, with the peers offering it (the most peers among offers of
/// that height, should they differ: the head check tells who lied).
fn newest(offers: &[(PeerId, SnapshotOffer)]) -> Option<(SnapshotOffer, Vec<PeerId>)> {
    let top = offers.iter().map(|(_, o)| o.height).max()?;
    let mut by_offer: Vec<(SnapshotOffer, Vec<PeerId>)> = Vec::new();
    for (peer, offer) in offers.iter().filter(|(_, o)| o.height == top) {
        match by_offer.iter_mut().find(|(o, _)| o == offer) {
            Some((_, peers)) => peers.push(*peer),
            None => by_offer.push((offer.clone(), vec![*peer])),
        }
    }
    by_offer.sort_by_key(|(_, peers)| std::cmp::Reverse(peers.len()));
    by_offer.into_iter().next()
}

/// Fetches the head frames of `offer` from one of `peers` and checks them from the genesis;
/// a peer whose head fails is penalised and banned, and the next one asked.
async fn fetch_head(
    net: &NetHandle,
    params: &ChainParams,
    cfg: &WarpConfig,
    offer: &SnapshotOffer,
    peers: &[PeerId],
    banned: &mut HashSet<PeerId>,
) -> Option<Target> {
    for &peer in peers {
        let mut frames = Vec::with_capacity(offer.head_frames as usize);
        for index in 0..offer.head_frames {
            let req = SyncRequest::SnapshotFrame {
                height: offer.height,
                index,
            };
            match ask(net, cfg.max_response_bytes, peer, &req).await {
                Ok(SyncResponse::SnapshotFrame(bytes)) => frames.push(bytes),
                Ok(_) => {
                    net.penalize(peer, Misbehaviour::InvalidResponse).await;
                    break;
                }
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "snapshot head request failed");
                    break;
                }
            }
        }
        if frames.len() != offer.head_frames as usize {
            continue;
        }
        match check_head(params, offer, &frames) {
            Ok(head) => {
                return Some(Target {
                    offer: offer.clone(),
                    head,
                })
            }
            Err(e) => {
                tracing::warn!(%peer, error = %e, "a peer's snapshot head is refused");
                net.penalize(peer, Misbehaviour::InvalidResponse).await;
                banned.insert(peer);
            }
        }
    }
    None
}

/// Decodes head frames and checks them from the genesis and against the offer they answer.
fn check_head(
    params: &ChainParams,
    offer: &SnapshotOffer,
    frames: &[Vec<u8>],
) -> Result<SnapshotHead, SnapshotFileError> {
    let (first, hops) = frames
        .split_first()
        .ok_or_else(|| SnapshotFileError::Refused("no head frame".into()))?;
    let head = SnapshotHead::decode_frames(first, &mut |i| {
        hops.get(i as usize).cloned().ok_or_else(|| {
            doin_tx_core::snapshot::SnapshotError::EpochHeaders(format!("hop {i} missing"))
        })
    })?;
    head.check(params)?;
    if offer_of(&head).ok().as_ref() != Some(offer) {
        return Err(SnapshotFileError::Refused(
            "the head does not match the peer's offer".into(),
        ));
    }
    Ok(head)
}

/// Creates the download file with the head's frames, fsynced.
fn start_file(part: &Path, target: &Target) -> Result<(), WarpError> {
    let frames = target
        .head
        .encode_frames()
        .map_err(|e| SnapshotFileError::Refused(format!("the head does not encode: {e}")))?;
    let mut file = File::create(part).map_err(io(part))?;
    file.write_all(SNAPSHOT_MAGIC).map_err(io(part))?;
    file.write_all(&SNAPSHOT_FORMAT.to_be_bytes())
        .map_err(io(part))?;
    for frame in &frames {
        write_frame(&mut file, frame).map_err(io(part))?;
    }
    file.sync_all().map_err(io(part))?;
    Ok(())
}

fn write_frame(w: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(bytes.len())
        .map_err(|_| std::io::Error::other("a frame longer than 4 GiB"))?;
    w.write_all(&len.to_be_bytes())?;
    w.write_all(bytes)
}

enum Fetched {
    All,
    /// Out of peers with this many chunks written.
    Partly(usize),
    Stopped,
}

/// Fetches chunks `from..` of `target` from `peers`, several at once, checking each against
/// the manifest and appending it (fsynced) in order.
#[allow(clippy::too_many_arguments)]
async fn fetch_chunks(
    net: &NetHandle,
    cfg: &WarpConfig,
    part: &Path,
    target: &Target,
    from: usize,
    mut peers: Vec<PeerId>,
    banned: &mut HashSet<PeerId>,
    progress: &WarpProgress,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Fetched, WarpError> {
    let manifest = &target.head.manifest;
    let total = manifest.chunks.len();
    let mut file = OpenOptions::new()
        .append(true)
        .open(part)
        .map_err(io(part))?;
    let bytes_before: u64 = manifest.chunks[..from].iter().map(|c| c.bytes).sum();
    progress.set_phase(SyncPhase::Snapshot);
    progress.update(|s| {
        s.chunks_resumed = from as u64;
        s.chunks_done = from as u64;
        s.bytes_done = bytes_before;
    });
    let started = Instant::now();
    let mut fetched_bytes = 0u64;
    let mut queue: VecDeque<usize> = (from..total).collect();
    let mut ready: BTreeMap<usize, Vec<u8>> = BTreeMap::new();
    let mut next = from;
    let mut failures: HashMap<PeerId, u32> = HashMap::new();
    let mut turn = 0usize;
    let in_flight = cfg.in_flight.max(1);
    let mut asks = tokio::task::JoinSet::new();
    while next < total {
        // Keep requests in flight, but never buffer far past the next chunk to write.
        while asks.len() < in_flight && !peers.is_empty() {
            let Some(&index) = queue.front() else { break };
            if index >= next + 2 * in_flight {
                break;
            }
            queue.pop_front();
            let peer = peers[turn % peers.len()];
            turn += 1;
            let net = net.clone();
            let req = SyncRequest::SnapshotFrame {
                height: target.offer.height,
                index: target.offer.head_frames + index as u32,
            };
            let max = cfg.max_response_bytes;
            asks.spawn(async move { (index, peer, ask(&net, max, peer, &req).await) });
        }
        if asks.is_empty() {
            return Ok(Fetched::Partly(next));
        }
        let joined = tokio::select! {
            _ = shutdown.changed() => return Ok(Fetched::Stopped),
            joined = asks.join_next() => joined,
        };
        let Some(Ok((index, peer, answer))) = joined else {
            continue;
        };
        let refused = match answer {
            Ok(SyncResponse::SnapshotFrame(bytes)) => match check_chunk(manifest, index, &bytes) {
                Ok(_) => {
                    ready.insert(index, bytes);
                    None
                }
                Err(e) => Some(e.to_string()),
            },
            Ok(_) => Some("an answer that is not a snapshot frame".into()),
            Err(e) => {
                tracing::debug!(%peer, index, error = %e, "chunk request failed");
                let n = failures.entry(peer).or_default();
                *n += 1;
                if *n >= MAX_PEER_FAILURES {
                    peers.retain(|p| *p != peer);
                }
                queue.push_front(index);
                None
            }
        };
        if let Some(reason) = refused {
            tracing::warn!(%peer, index, reason, "a peer's snapshot chunk is refused; fetching it elsewhere");
            net.penalize(peer, Misbehaviour::InvalidResponse).await;
            banned.insert(peer);
            peers.retain(|p| *p != peer);
            queue.push_front(index);
        }
        while let Some(bytes) = ready.remove(&next) {
            write_frame(&mut file, &bytes).map_err(io(part))?;
            file.sync_data().map_err(io(part))?;
            fetched_bytes += bytes.len() as u64;
            next += 1;
            let elapsed = started.elapsed().as_millis().max(1) as u64;
            progress.update(|s| {
                s.chunks_done = next as u64;
                s.bytes_done = s.bytes_done.saturating_add(bytes.len() as u64);
                s.peers = peers.len() as u64;
                let left = s.bytes_total.saturating_sub(s.bytes_done);
                s.eta_secs = fetched_bytes
                    .checked_mul(1000)
                    .and_then(|b| b.checked_div(elapsed))
                    .filter(|rate| *rate > 0)
                    .map(|rate| left / rate);
            });
        }
    }
    file.sync_all().map_err(io(part))?;
    Ok(Fetched::All)
}

/// Sleeps `d`; true when shutdown came first.
async fn wait(shutdown: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        _ = shutdown.changed() => true,
        _ = tokio::time::sleep(d) => *shutdown.borrow(),
    }
}

fn remove(path: &Path) -> Result<(), WarpError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(WarpError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn sync_dir(dir: &Path) -> Result<(), WarpError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> WarpError + '_ {
    move |source| WarpError::Io {
        path: path.to_path_buf(),
        source,
    }
}
