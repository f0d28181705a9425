//! Snapshot files on a real RocksDB: a node bootstrapped from one holds the same tip, root and
//! balances as the node that wrote it, keeps importing its blocks and proves finality from
//! genesis; a file with any byte flipped, cut short, extended or for another chain is refused,
//! and an interrupted import is refused at open and then starts over.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::service::{keys, open_pruning, spec, time, transfer, Keys};
use doin_crypto::KeyPair;
use doin_store::{KvStore, RocksConfig, RocksStore};
use doin_telemetry::Metrics;
use doin_tx_core::snapshot::SnapshotHead;
use doin_tx_core::{Allocation, ChainParams, GenesisSpec};
use doin_tx_node::history::{HistoryMode, HistoryPolicy};
use doin_tx_node::snapshot::{self, SnapshotFileError};
use doin_tx_node::store::{PruneConfig, COLUMNS};
use doin_tx_node::{ChainError, TxChain};
use doin_types::{Amount, Timestamp};
use std::path::Path;
use std::sync::Arc;

const EPOCH: u64 = 20;
/// Chunks far smaller than a real snapshot's, so a small state makes several.
const CHUNK: usize = 64 * 1024;

/// Enough accounts for a state of several chunks of [`CHUNK`] bytes.
fn big_spec(k: &Keys) -> GenesisSpec {
    let mut s = spec(k);
    s.params.epoch_blocks = EPOCH;
    s.allocations.extend((0..3_000u64).map(|i| Allocation {
        key: KeyPair::generate().public(),
        amount: Amount::from_base_units(1_000 + i),
    }));
    s
}

fn pruned() -> PruneConfig {
    PruneConfig {
        history: HistoryPolicy {
            mode: HistoryMode::Pruned,
            keep_blocks: 64,
        },
        ..PruneConfig::default()
    }
}

fn rocks(dir: &Path) -> Arc<dyn KvStore> {
    Arc::new(RocksStore::open(dir, COLUMNS, &RocksConfig::default()).unwrap())
}

fn grow(chain: &TxChain, k: &Keys, to: u64) {
    for h in chain.tip().header.height + 1..=to {
        let tx = transfer(chain, &k.users[0], &k.users[1], h);
        chain.submit(tx.bytes()).unwrap();
        chain.produce_block(&k.validator, time(h)).unwrap();
    }
}

fn import(dir: &Path, spec: &GenesisSpec, file: &Path) -> Result<(), SnapshotFileError> {
    snapshot::import(rocks(dir), spec, file, &mut |_| {}).map(|_| ())
}

/// Where each frame (u32 length ‖ bytes) starts, after the magic and the format number.
fn frame_starts(bytes: &[u8]) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut at = 12;
    while at < bytes.len() {
        starts.push(at);
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        at += 4 + len;
    }
    starts
}

/// A source chain of `blocks` blocks on the many-account genesis, and a folder for files.
struct Source {
    k: Keys,
    spec: GenesisSpec,
    chain: Arc<TxChain>,
    files: tempfile::TempDir,
    _dir: tempfile::TempDir,
}

impl Source {
    fn new(blocks: u64) -> Source {
        let k = keys();
        let spec = big_spec(&k);
        let dir = tempfile::tempdir().unwrap();
        let chain = open_pruning(
            dir.path(),
            spec.clone(),
            PruneConfig::default(),
            &Metrics::new(),
        )
        .unwrap();
        grow(&chain, &k, blocks);
        Source {
            k,
            spec,
            chain,
            files: tempfile::tempdir().unwrap(),
            _dir: dir,
        }
    }

    /// Exports the chain's state now to `name` in the files folder.
    fn export(&self, name: &str) -> (std::path::PathBuf, SnapshotHead) {
        let file = self.files.path().join(name);
        let head = snapshot::export(
            self.chain.store(),
            self.chain.params(),
            &file,
            CHUNK,
            &mut |_| {},
        )
        .unwrap();
        (file, head)
    }
}

#[test]
fn a_node_bootstrapped_from_a_snapshot_matches_its_source_and_keeps_following() {
    let src = Source::new(70);
    let (k, spec, source, files) = (&src.k, &src.spec, &src.chain, &src.files);
    let dst_dir = tempfile::tempdir().unwrap();
    let file = files.path().join("state.snap");
    let mut reports = 0;
    let head = snapshot::export(source.store(), source.params(), &file, CHUNK, &mut |_| {
        reports += 1
    })
    .unwrap();
    let m = &head.manifest;
    assert_eq!(m.height, 70);
    assert!(m.chunks.len() >= 2, "{} chunks", m.chunks.len());
    assert_eq!(reports, m.chunks.len());
    assert_eq!(head.finality.hops.len(), 3, "epochs end at 20, 40 and 60");
    assert!(!files.path().join("state.snap.tmp").exists());

    // Inspecting checks everything, the root included, without a data directory.
    let checked = snapshot::verify_file(&file, Some(spec), &mut |_| {}).unwrap();
    assert_eq!(checked.manifest, head.manifest);

    import(dst_dir.path(), spec, &file).unwrap();
    let restored = open_pruning(dst_dir.path(), spec.clone(), pruned(), &Metrics::new()).unwrap();
    assert_eq!(restored.tip().hash, source.tip().hash);
    assert_eq!(
        restored.tip().header.state_root,
        source.tip().header.state_root
    );
    for user in &k.users {
        assert_eq!(
            restored.account(&user.public()).unwrap(),
            source.account(&user.public()).unwrap()
        );
    }
    let params = ChainParams::from_genesis(spec).unwrap();
    // It proves the tip final from genesis, as its source does.
    let proof = restored
        .finality_proof(70)
        .unwrap()
        .expect("the tip is final");
    proof
        .verify(&params, &restored.tip().header, &restored.tip().hash)
        .unwrap();
    // It follows: the source's next blocks import with the same roots, across an epoch end.
    grow(source, k, 85);
    for h in 71..=85 {
        let block = source.block_at(h).unwrap().unwrap();
        restored
            .import_block(&block, Timestamp(u64::MAX / 2))
            .unwrap();
    }
    assert_eq!(restored.tip().hash, source.tip().hash);
    assert_eq!(
        restored.tip().header.state_root,
        source.tip().header.state_root
    );
    // Its history starts at the snapshot: the snapshot's block has no body here.
    assert!(restored.store().block(70).unwrap().is_none());
    assert!(restored.store().block(71).unwrap().is_some());
    drop(restored);
    // Without `pruned` it does not open: it has no history before the snapshot.
    let full = open_pruning(
        dst_dir.path(),
        spec.clone(),
        PruneConfig::default(),
        &Metrics::new(),
    );
    assert!(matches!(full, Err(ChainError::History(_))));
    // A second import into a directory holding a chain is refused.
    let again = import(dst_dir.path(), spec, &file).unwrap_err();
    assert!(
        again.to_string().contains("already holds a chain"),
        "{again}"
    );
}

#[test]
fn a_tampered_cut_extended_or_foreign_snapshot_is_refused() {
    let src = Source::new(25);
    let (k, spec, source, files) = (&src.k, &src.spec, &src.chain, &src.files);
    let (file, head) = src.export("state.snap");
    let bytes = std::fs::read(&file).unwrap();

    let refused = |bytes: &[u8], spec: &GenesisSpec| -> String {
        let path = files.path().join("bad.snap");
        std::fs::write(&path, bytes).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let err = import(dir.path(), spec, &path).expect_err("refused");
        // Nothing usable was left behind.
        let reopened = open_pruning(dir.path(), spec.clone(), pruned(), &Metrics::new());
        assert!(
            matches!(reopened, Err(ChainError::InterruptedImport(_)))
                || reopened.is_ok_and(|c| c.tip().header.height == 0),
            "a refused import left a chain"
        );
        err.to_string()
    };
    // One flipped byte anywhere: the magic, the head, each chunk, the last byte.
    // Frames: the head, one per epoch hop, then the chunks.
    let frames = frame_starts(&bytes);
    let hops = head.finality.hops.len();
    assert_eq!(hops, 1);
    assert_eq!(frames.len(), 1 + hops + head.manifest.chunks.len());
    let head_len = frames[1] - frames[0] - 4;
    let first_chunk = frames[1 + hops] + 4;
    let positions = [
        0,
        20,
        16 + head_len / 2,
        frames[1] + 40,
        first_chunk + 100,
        bytes.len() - 1,
    ];
    for at in positions {
        let mut bad = bytes.clone();
        bad[at] ^= 0x01;
        let message = refused(&bad, spec);
        assert!(!message.is_empty());
    }
    let mut bad = bytes.clone();
    bad[first_chunk + 100] ^= 0x01;
    assert!(refused(&bad, spec).contains("chunk 0"));
    // Cut short, or followed by more bytes.
    assert!(refused(&bytes[..bytes.len() - 10], spec).contains("cut short"));
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(refused(&longer, spec).contains("after the last chunk"));
    // Another chain's genesis.
    let other = big_spec(&keys());
    assert!(refused(&bytes, &other).contains("is of chain"));
    // A chunk from another snapshot in place of the right one: its hash is not the manifest's.
    grow(source, k, 30);
    let (later, _) = src.export("later.snap");
    let later_bytes = std::fs::read(&later).unwrap();
    // Same hops (one epoch, ended at 20), chunks of the later state.
    let later_frames = frame_starts(&later_bytes);
    let mut spliced = bytes[..frames[1 + hops]].to_vec();
    spliced.extend_from_slice(&later_bytes[later_frames[1 + hops]..]);
    assert!(refused(&spliced, spec).contains("chunk 0"));
    assert_eq!(head.manifest.height, 25);
}

#[test]
fn an_interrupted_import_is_refused_at_open_and_starts_over() {
    let src = Source::new(5);
    let (spec, source, files) = (&src.spec, &src.chain, &src.files);
    let dst_dir = tempfile::tempdir().unwrap();
    let (file, head) = src.export("state.snap");
    assert!(head.manifest.chunks.len() >= 2);
    // The file ends inside the last chunk: the first chunks were restored when it stopped.
    let bytes = std::fs::read(&file).unwrap();
    let cut = files.path().join("cut.snap");
    std::fs::write(&cut, &bytes[..bytes.len() - 1000]).unwrap();
    assert!(import(dst_dir.path(), spec, &cut).is_err());
    let refused = open_pruning(dst_dir.path(), spec.clone(), pruned(), &Metrics::new());
    assert!(matches!(refused, Err(ChainError::InterruptedImport(5))));
    import(dst_dir.path(), spec, &file).unwrap();
    let restored = open_pruning(dst_dir.path(), spec.clone(), pruned(), &Metrics::new()).unwrap();
    assert_eq!(
        restored.tip().header.state_root,
        source.tip().header.state_root
    );
}

/// The shelf of served snapshots: one every `every` final blocks, the newest `keep` kept, each
/// frame served as its file holds it; a damaged file is not offered after a restart.
#[test]
fn served_snapshots_rotate_answer_their_frames_and_skip_a_damaged_file() {
    use doin_tx_node::snapshot_shelf::SnapshotShelf;
    let source = Source::new(30);
    let shelf_dir = source.files.path().join("shelf");
    let params = source.chain.params().clone();
    let shelf = SnapshotShelf::open(&shelf_dir, params.clone(), 2, CHUNK).unwrap();
    assert!(shelf.offers().is_empty());
    let first = shelf
        .take(&source.chain, 10)
        .unwrap()
        .expect("a first snapshot");
    assert!(first.chunks > 1, "{first:?}");
    assert_eq!(shelf.take(&source.chain, 10).unwrap(), None, "not due yet");
    let mut heights = vec![first.height];
    for _ in 0..2 {
        grow(
            &source.chain,
            &source.k,
            source.chain.tip().header.height + 10,
        );
        heights.push(shelf.take(&source.chain, 10).unwrap().unwrap().height);
    }
    let offered: Vec<u64> = shelf.offers().iter().map(|o| o.height).collect();
    assert_eq!(offered, heights[1..].to_vec(), "the newest two are kept");
    assert!(
        shelf.frame(heights[0], 0).is_err(),
        "a dropped snapshot is not served"
    );

    // Every frame as the file holds it; none past the last.
    let newest = shelf.offer().unwrap();
    let path = shelf_dir.join(format!("tx-{:012}.snap", newest.height));
    let bytes = std::fs::read(&path).unwrap();
    let starts = frame_starts(&bytes);
    assert_eq!(starts.len() as u32, newest.head_frames + newest.chunks);
    for (i, &at) in starts.iter().enumerate() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        assert_eq!(
            shelf.frame(newest.height, i as u32).unwrap(),
            bytes[at + 4..at + 4 + len]
        );
    }
    assert!(shelf.frame(newest.height, starts.len() as u32).is_err());

    // A byte of the head flipped on disk: after a restart that file is not offered.
    let mut damaged = bytes.clone();
    damaged[starts[0] + 10] ^= 1;
    std::fs::write(&path, damaged).unwrap();
    let reopened = SnapshotShelf::open(&shelf_dir, params, 2, CHUNK).unwrap();
    let offered: Vec<u64> = reopened.offers().iter().map(|o| o.height).collect();
    assert_eq!(offered, vec![heights[1]]);
}
