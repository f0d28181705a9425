//! What history pruning saves and what a snapshot restore costs (docs/benchmarks.md: sizes and
//! same-run ratios are reported, never asserted).
//!
//! Run (release): `cargo bench -p doin-tx-node --bench history`
//! Optional: `DOIN_BENCH_BLOCKS=20000 DOIN_BENCH_TXS_PER_BLOCK=10 DOIN_BENCH_KEEP=1000
//! DOIN_BENCH_STATE_ACCOUNTS=1000000` (0 skips a part).
//!
//! - W8: an archive node produces `BLOCKS` blocks of steady traffic; a `full` and a `pruned`
//!   node (window `KEEP`) import them. Reported: each database's bytes (keys and values of every
//!   column family, and the files on disk), pruned ÷ archive, then the bytes 1 000 more empty
//!   blocks add in each mode, extrapolated to a year of 30-second blocks with 4 and 100
//!   validators (each validator adds one certificate signature, 96 bytes, to the header that
//!   carries its parent's certificate and to the stored certificate).
//! - W4 (from a file): a state of `STATE_ACCOUNTS` accounts is exported; restoring it from the
//!   file into an empty RocksDB, every chunk checked and the root proven, is timed against
//!   writing the same key/values into an empty RocksDB unchecked.
//! - W4 (from a peer): the same state served by a node over libp2p on loopback; a warp download
//!   (head checked from the genesis, every chunk checked on arrival, fsynced) and the import of
//!   the downloaded file, timed against the same baseline.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use doin_crypto::KeyPair;
use doin_store::{Direction, Durability, KvStore, RocksConfig, RocksStore, WriteBatch};
use doin_telemetry::Metrics;
use doin_tx_core::snapshot::TARGET_CHUNK_BYTES;
use doin_tx_core::{Allocation, ConsensusParams, GenesisSpec, Tx, TxBody, TxPayload};
use doin_tx_node::history::{HistoryMode, HistoryPolicy};
use doin_tx_node::snapshot::{self, SnapshotReader};
use doin_tx_node::store::{PruneConfig, COLUMNS};
use doin_tx_node::{TxChain, TxChainConfig};
use doin_types::{Amount, Network, Timestamp};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rocks(dir: &Path) -> Arc<dyn KvStore> {
    Arc::new(RocksStore::open(dir, COLUMNS, &RocksConfig::default()).expect("open rocksdb"))
}

fn open(dir: &Path, spec: GenesisSpec, mode: HistoryMode, keep: u64) -> Arc<TxChain> {
    let cfg = TxChainConfig {
        prune: PruneConfig {
            history: HistoryPolicy {
                mode,
                keep_blocks: keep,
            },
            ..PruneConfig::default()
        },
        ..TxChainConfig::default()
    };
    TxChain::open(rocks(dir), spec, cfg, &Metrics::new()).expect("open chain")
}

fn spec(validator: &KeyPair, accounts: &[KeyPair]) -> GenesisSpec {
    GenesisSpec {
        stakes: Vec::new(),
        network: Network::Devnet,
        chain_name: "history-bench".into(),
        genesis_time: Timestamp(1),
        params: ConsensusParams::public_defaults(),
        validators: vec![validator.public()],
        allocations: accounts
            .iter()
            .map(|k| Allocation {
                key: k.public(),
                amount: Amount::from_base_units(1_000_000_000_000),
            })
            .collect(),
    }
}

/// Keys and values of every column family, in bytes.
fn logical_bytes(chain: &TxChain) -> u64 {
    column_bytes(chain, COLUMNS)
}

/// The column families of history (blocks, headers, certificates, indexes); the rest is the
/// state tree (bounded by the state and `storage.state_history`) and metadata.
const HISTORY: &[&str] = &[
    "tx_headers",
    "tx_bodies",
    "tx_block_hashes",
    "tx_index",
    "tx_addr_index",
    "tx_account_ops",
    "tx_ops_by_height",
    "tx_commits",
    "tx_epoch_proofs",
];

fn column_bytes(chain: &TxChain, columns: &[&'static str]) -> u64 {
    let kv = chain.store().kv();
    columns
        .iter()
        .map(|cf| {
            kv.iter_from(cf, &[], Direction::Forward)
                .unwrap()
                .map(|item| {
                    let (k, v) = item.unwrap();
                    (k.len() + v.len()) as u64
                })
                .sum::<u64>()
        })
        .sum()
}

/// Bytes of the files in `dir` (SST files, logs, manifest).
fn disk_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / (1u64 << 20) as f64)
}

fn main() {
    let blocks = env_usize("DOIN_BENCH_BLOCKS", 20_000) as u64;
    let per_block = env_usize("DOIN_BENCH_TXS_PER_BLOCK", 10);
    let keep = env_usize("DOIN_BENCH_KEEP", 1_000) as u64;
    let state_accounts = env_usize("DOIN_BENCH_STATE_ACCOUNTS", 1_000_000);
    if blocks > 0 {
        history(blocks, per_block, keep);
    }
    if state_accounts > 0 {
        restore(state_accounts);
    }
}

fn history(blocks: u64, per_block: usize, keep: u64) {
    println!("W8: {blocks} blocks of {per_block} transfers, window {keep} blocks");
    let validator = KeyPair::generate();
    let users: Vec<KeyPair> = (0..64).map(|_| KeyPair::generate()).collect();
    let spec = spec(&validator, &users);
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let archive = open(dirs[0].path(), spec.clone(), HistoryMode::Archive, keep);
    let full = open(dirs[1].path(), spec.clone(), HistoryMode::Full, keep);
    let pruned = open(dirs[2].path(), spec.clone(), HistoryMode::Pruned, keep);
    let chain_id = archive.params().chain_id;
    let mut nonces = vec![0u64; users.len()];
    let started = Instant::now();
    let mut produce = |h: u64, txs: usize| {
        for i in 0..txs {
            let s = (h as usize * txs + i) % users.len();
            let body = TxBody {
                chain_id,
                sender: users[s].public(),
                nonce: nonces[s],
                max_fee_per_weight: Amount::from_base_units(1_000),
                max_priority_fee_per_weight: Amount::from_base_units(1),
                payload: TxPayload::Transfer {
                    to: users[(s + 1) % users.len()].public(),
                    amount: Amount::from_base_units(1 + h),
                },
            };
            nonces[s] += 1;
            let tx = Tx::from_signed(body.sign(&users[s]).unwrap()).unwrap();
            archive.submit(tx.bytes()).unwrap();
        }
        let block = archive
            .produce_block(&validator, Timestamp(1_000 + h * 1_000))
            .unwrap();
        assert_eq!(block.txs.len(), txs);
        for follower in [&full, &pruned] {
            follower
                .import_block(&block, Timestamp(u64::MAX / 2))
                .unwrap();
        }
    };
    for h in 1..=blocks {
        produce(h, per_block);
        if h % 5_000 == 0 {
            println!("  {h} blocks ({:.0} s)", started.elapsed().as_secs_f64());
        }
    }
    let chains = [("archive", &archive), ("full", &full), ("pruned", &pruned)];
    let after: Vec<u64> = chains.iter().map(|(_, c)| logical_bytes(c)).collect();
    let on_disk: Vec<u64> = dirs.iter().map(|d| disk_bytes(d.path())).collect();
    // History bytes per empty block in steady state: first a window of empty blocks (so the
    // pruning modes drop full blocks no more), then 1 000 more, measured. (The state tree is
    // bounded by the state and its 256 kept versions, not by the chain's length.)
    for h in blocks + 1..=blocks + keep {
        produce(h, 0);
    }
    let steady: Vec<i64> = chains
        .iter()
        .map(|(_, c)| column_bytes(c, HISTORY) as i64)
        .collect();
    for h in blocks + keep + 1..=blocks + keep + 1_000 {
        produce(h, 0);
    }
    let grown: Vec<i64> = chains
        .iter()
        .zip(&steady)
        .map(|((_, c), before)| column_bytes(c, HISTORY) as i64 - before)
        .collect();
    println!();
    println!("| mode | database after {blocks} blocks (keys + values) | files on disk (uncompacted) | ÷ archive | history bytes per 1 000 empty blocks | a year of 30-s blocks, 1 / 4 / 100 validators |");
    println!("|---|---:|---:|---:|---:|---:|");
    // Blocks in a year of 30-second blocks.
    let per_year: i64 = 365 * 24 * 3600 / 30;
    // What a pruned node keeps per epoch (genesis validators, 1): the epoch block's header,
    // hash-index entry, certificate and validators proof, measured on the archive node.
    let per_entry = |cf: &'static str| -> i64 {
        let kv = archive.store().kv();
        let (mut n, mut bytes) = (0i64, 0i64);
        for item in kv.iter_from(cf, &[], Direction::Forward).unwrap() {
            let (k, v) = item.unwrap();
            n += 1;
            bytes += (k.len() + v.len()) as i64;
        }
        bytes.checked_div(n).unwrap_or(0)
    };
    let epoch_proof = per_entry("tx_epoch_proofs");
    let per_epoch = per_entry("tx_headers")
        + per_entry("tx_block_hashes")
        + per_entry("tx_commits")
        + epoch_proof;
    let epochs_per_year = per_year / archive.params().consensus.epoch_blocks.max(1) as i64;
    for (i, (name, _)) in chains.iter().enumerate() {
        let per_1000 = grown[i];
        // Each more validator adds a signature (96 bytes) to the certificate stored with each
        // kept header and to the next header's copy of it, and 80 bytes to an epoch's
        // validators entry (its key and power in two sets).
        let year = |validators: i64| -> String {
            let more = validators - 1;
            let bytes = match *name {
                "pruned" => after[i] as i64 + epochs_per_year * (per_epoch + more * (2 * 96 + 80)),
                _ => per_1000 * per_year / 1_000 + per_year * 2 * 96 * more,
            };
            mib(bytes.max(0) as u64)
        };
        println!(
            "| {name} | {} | {} | {:.3} | {} | {} / {} / {} |",
            mib(after[i]),
            mib(on_disk[i]),
            after[i] as f64 / after[0] as f64,
            per_1000,
            year(1),
            year(4),
            year(100),
        );
    }
    // Disk after a full compaction (deleted data gone, memtables and logs flushed), at the end.
    drop((archive, full, pruned));
    let compacted: Vec<u64> = dirs
        .iter()
        .map(|d| {
            let store = RocksStore::open(d.path(), COLUMNS, &RocksConfig::default()).unwrap();
            store.compact().unwrap();
            drop(store);
            disk_bytes(d.path())
        })
        .collect();
    println!();
    println!(
        "files on disk after {} more blocks and a full compaction: archive {}, full {}, pruned {} (pruned ÷ archive {:.3})",
        keep + 1_000,
        mib(compacted[0]),
        mib(compacted[1]),
        mib(compacted[2]),
        compacted[2] as f64 / compacted[0] as f64
    );
    println!();
    println!(
        "pruned: the year is its database now plus {epochs_per_year} epochs a year of {per_epoch} bytes each (epoch proof {epoch_proof} bytes; measured with 1 validator, +272 bytes per further validator)"
    );
    println!();
}

fn restore(accounts: usize) {
    println!("W4 (from a file): a state of {accounts} accounts");
    let validator = KeyPair::generate();
    let started = Instant::now();
    let users: Vec<KeyPair> = (0..accounts).map(|_| KeyPair::generate()).collect();
    let spec = spec(&validator, &users);
    let dir = tempfile::tempdir().unwrap();
    let source = open(dir.path(), spec.clone(), HistoryMode::Archive, 1_000);
    source.produce_block(&validator, Timestamp(1_000)).unwrap();
    println!(
        "  genesis with {accounts} accounts: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let files = tempfile::tempdir().unwrap();
    let file = files.path().join("state.snap");
    let started = Instant::now();
    let head = snapshot::export(
        source.store(),
        source.params(),
        &file,
        TARGET_CHUNK_BYTES,
        &mut |_| {},
    )
    .unwrap();
    let export_secs = started.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(&file).unwrap().len();

    // Baseline: the same key/values, read from the file, written unchecked.
    let base_dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    {
        let kv = rocks(base_dir.path());
        let mut reader = SnapshotReader::open(&file, None).unwrap();
        for index in 0..head.manifest.chunks.len() {
            let chunk = reader.chunk(index).unwrap();
            let mut batch = WriteBatch::new();
            for (key, value) in chunk.entries {
                let mut k = key.0.to_vec();
                k.extend_from_slice(&head.manifest.height.to_be_bytes());
                let mut v = Vec::with_capacity(value.len() + 1);
                v.push(1);
                v.extend_from_slice(&value);
                batch.put("tx_jmt_values", k, v);
            }
            kv.write(batch, Durability::Buffered).unwrap();
        }
        kv.write(WriteBatch::new(), Durability::Sync).unwrap();
    }
    let base_secs = started.elapsed().as_secs_f64();

    // Reading and checking the genesis file is part of every import (and every start), and
    // with a million allocations it is not small: timed alone, and taken out of the ratio.
    let started = Instant::now();
    doin_tx_core::ChainParams::from_genesis(&spec).unwrap();
    let genesis_secs = started.elapsed().as_secs_f64();
    let dst = tempfile::tempdir().unwrap();
    let started = Instant::now();
    snapshot::import(rocks(dst.path()), &spec, &file, &mut |_| {}).unwrap();
    let import_secs = started.elapsed().as_secs_f64();
    // The import proved the root; read it back from the restored tree all the same. (The
    // chain is not opened: a genesis of a million allocations is over the store's 8 MiB value
    // bound, see docs/benchmarks.md.)
    let kv = rocks(dst.path());
    let tree = doin_tx_node::tree::StoreTree::new(kv.as_ref());
    let root = doin_tx_core::jmt::Sha256Jmt::new(&tree)
        .get_root_hash(head.manifest.height)
        .unwrap();
    assert_eq!(root.0, source.tip().header.state_root.0);
    println!();
    println!("| measurement | seconds | ratio |");
    println!("|---|---:|---:|");
    println!(
        "| export: {} entries, {} chunks, {} | {export_secs:.2} | |",
        head.manifest.entries(),
        head.manifest.chunks.len(),
        mib(bytes)
    );
    println!("| baseline: the key/values written to RocksDB unchecked | {base_secs:.2} | 1.00 |");
    let restore_secs = import_secs - genesis_secs;
    println!(
        "| restore: every chunk checked, tree rebuilt, root proven, fsynced | {restore_secs:.2} | {:.2} |",
        base_secs / restore_secs
    );
    println!(
        "| (the import also checked the genesis file of {accounts} allocations: {genesis_secs:.2} s) | | |"
    );
    let (download_secs, peer_import_secs) = from_a_peer(&source, &spec);
    let from_peer_secs = download_secs + peer_import_secs - genesis_secs;
    println!(
        "| from a peer over loopback: warp download {download_secs:.2} s + restore {:.2} s | {from_peer_secs:.2} | {:.2} |",
        peer_import_secs - genesis_secs,
        base_secs / from_peer_secs
    );
    println!();
}

/// Serves `source`'s state from one network node to another on loopback: the second warp-
/// downloads it (every chunk checked on arrival) and imports the file. Returns the seconds of
/// the download and of the import (the import's genesis check included).
fn from_a_peer(source: &Arc<TxChain>, spec: &GenesisSpec) -> (f64, f64) {
    use doin_net::{identity::Keypair, NetConfig, Network};
    use doin_tx_node::p2p::TxP2p;
    use doin_tx_node::snapshot_shelf::SnapshotShelf;
    use doin_tx_node::warp::{download, WarpConfig, WarpProgress};
    use std::time::Duration;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let params = source.params().clone();
    let shelf_dir = tempfile::tempdir().unwrap();
    let shelf = Arc::new(
        SnapshotShelf::open(shelf_dir.path(), params.clone(), 1, TARGET_CHUNK_BYTES).unwrap(),
    );
    shelf.take(source, 1).unwrap().unwrap();
    let client_dir = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let (_stop, stop) = tokio::sync::watch::channel(false);
        let metrics = Metrics::new();
        let listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
        let mut server = Network::new(
            NetConfig::new("bench", listen),
            Keypair::generate_ed25519(),
            metrics.registry(),
        )
        .unwrap();
        let p2p = TxP2p::attach(
            source.clone(),
            &mut server,
            &metrics,
            Duration::from_secs(3600),
            16 << 20,
        )
        .unwrap()
        .serve_snapshots(shelf);
        let handle = server.handle();
        tokio::spawn(p2p.run(stop.clone()));
        tokio::spawn(server.run(stop.clone()));
        let addr = loop {
            if let Some(a) = handle.listen_addrs().first() {
                break a.clone();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let mut cfg = NetConfig::new("bench", Vec::new());
        cfg.bootstrap = vec![addr];
        let client =
            Network::new(cfg, Keypair::generate_ed25519(), Metrics::new().registry()).unwrap();
        let net = client.handle();
        tokio::spawn(client.run(stop.clone()));
        while net.connected_peers().is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let warp = WarpConfig {
            dir: client_dir.path().to_path_buf(),
            max_response_bytes: 16 << 20,
            in_flight: 8,
        };
        let started = Instant::now();
        let file = download(&net, &params, &warp, &WarpProgress::default(), stop)
            .await
            .unwrap()
            .unwrap();
        let download_secs = started.elapsed().as_secs_f64();
        let started = Instant::now();
        snapshot::import(rocks(dst.path()), spec, &file, &mut |_| {}).unwrap();
        (download_secs, started.elapsed().as_secs_f64())
    })
}
