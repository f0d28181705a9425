//! Black-box: warp sync between real `doin node` processes.
//!
//! - a producer (BFT consensus, carrying the chain alone with ten elevenths of the power) writes
//!   a state snapshot every few blocks, in small chunks (so even this small state is many
//!   chunks), across epoch boundaries (so the finality proof has hops) and across a change of
//!   the validator set (a second validator bonds a stake in the first epoch and is seated from
//!   the second; its node never runs), while clients send it transfers and a stake all along;
//! - a fresh node with `[sync] mode = "warp"` bootstraps from it while one peer corrupts every
//!   chunk it relays and another offers a newer snapshot whose manifest names another height and
//!   root: both are refused and named in the log, and the node ends on the producer's chain and
//!   state root and keeps following;
//! - a warp node whose only peer is slow is killed with SIGKILL mid-download and started again
//!   against the producer: it keeps the chunks it had checked and fetches only the rest;
//! - a warp node killed with SIGKILL while it restores a larger state (the download complete)
//!   restores it again at the next start with no peer at all, from the download it kept.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{doin, free_port, get, get_ok, post, wait_until, NodeProc};
use doin_crypto::KeyPair;
use doin_tx_core::{
    Allocation, ConsensusParams, GenesisSpec, GenesisStake, StakeRole, Tx, TxBody, TxPayload,
};
use doin_types::{Amount, ChainId};
use serde_json::json;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

const SNAPSHOT_PEER: &str = env!("CARGO_BIN_EXE_snapshot-peer");

/// A `snapshot-peer` process relaying to `honest` in `mode`; killed when dropped.
struct SnapshotPeer {
    child: Child,
    addr: String,
    peer_id: String,
}

impl SnapshotPeer {
    fn start(honest: &str, mode: &str) -> SnapshotPeer {
        use std::io::BufRead;
        let port = free_port("127.0.0.1");
        let listen = format!("/ip4/127.0.0.1/tcp/{port}");
        let mut child = Command::new(SNAPSHOT_PEER)
            .args(["devnet", &listen, honest, mode])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let peer_id = line.trim().to_string();
        SnapshotPeer {
            child,
            addr: format!("{listen}/p2p/{peer_id}"),
            peer_id,
        }
    }
}

impl Drop for SnapshotPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A genesis of one validator staking ten times the minimum, 5-block epochs and 100 ms
/// blocks, and `funded` accounts (`joiner` with enough to bond a validator stake); written to
/// `dir/genesis.json`.
fn write_genesis(
    dir: &Path,
    validator: &KeyPair,
    joiner: &KeyPair,
    funded: &[KeyPair],
) -> (std::path::PathBuf, GenesisSpec) {
    let funded: Vec<&KeyPair> = funded.iter().collect();
    let mut spec = doin_tests::funded_genesis(
        "warp",
        validator,
        &funded,
        100_000_000_000,
        ConsensusParams {
            target_block_time_ms: 100,
            epoch_blocks: 5,
            ..ConsensusParams::public_defaults()
        },
    );
    let min_stake = spec.params.staking.min_validator_stake;
    spec.stakes.push(GenesisStake {
        key: validator.public(),
        role: StakeRole::Validator,
        amount: min_stake.checked_mul(10).unwrap(),
        domains: Vec::new(),
    });
    spec.allocations.push(Allocation {
        key: joiner.public(),
        amount: min_stake.checked_mul(2).unwrap(),
    });
    let path = dir.join("genesis.json");
    std::fs::write(&path, serde_json::to_string(&spec).unwrap()).unwrap();
    (path, spec)
}

/// Transfers among `accounts` (and one optimizer stake) sent to `rest` until stopped.
struct Traffic {
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Traffic {
    fn start(rest: String, chain_id: ChainId, accounts: Vec<KeyPair>) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicU64::new(0));
        let (s, a) = (stop.clone(), accepted.clone());
        let thread = std::thread::spawn(move || {
            let mut nonces = vec![0u64; accounts.len()];
            let mut i = 0usize;
            while !s.load(Ordering::SeqCst) {
                let from = i % accounts.len();
                let payload = if i == 0 {
                    TxPayload::Stake {
                        role: StakeRole::Optimizer,
                        amount: Amount::from_base_units(10 * 100_000_000),
                        domains: Vec::new(),
                    }
                } else {
                    TxPayload::Transfer {
                        to: accounts[(from + 1) % accounts.len()].public(),
                        amount: Amount::from_base_units(1_000 + i as u64),
                    }
                };
                submit(&rest, chain_id, &accounts[from], nonces[from], payload);
                nonces[from] += 1;
                a.fetch_add(1, Ordering::SeqCst);
                i += 1;
                std::thread::sleep(std::time::Duration::from_millis(30));
            }
        });
        Traffic {
            stop,
            accepted,
            thread: Some(thread),
        }
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Signs a transaction of `key` and sends it to `rest`; it must be accepted.
fn submit(rest: &str, chain_id: ChainId, key: &KeyPair, nonce: u64, payload: TxPayload) {
    let body = TxBody {
        chain_id,
        sender: key.public(),
        nonce,
        max_fee_per_weight: Amount::from_base_units(50),
        max_priority_fee_per_weight: Amount::from_base_units(1),
        payload,
    };
    let tx = Tx::from_signed(body.sign(key).unwrap()).unwrap();
    let (status, answer) = post(
        &format!("{rest}/v1/tx/transactions"),
        json!({"tx": hex::encode(tx.bytes())}),
        None,
    );
    assert!(status == 202 || status == 200, "{status} {answer}");
}

/// The addresses of the validator set that signed `node`'s tip.
fn current_validators(node: &NodeProc) -> Vec<String> {
    get_ok(&format!("{}/v1/tx/validators", node.rest))
        .and_then(|v| {
            v["current"].as_array().map(|set| {
                set.iter()
                    .filter_map(|e| e["address"].as_str().map(String::from))
                    .collect()
            })
        })
        .unwrap_or_default()
}

/// Starts the producer `dir/producer`: a validator alone on its consensus network (short step
/// timeouts, so the other validator's turns to propose pass quickly) writing a snapshot every
/// 10 final blocks in chunks of `chunk_bytes`, all kept (a resumed download must still find its
/// snapshot).
fn start_producer(
    doin: &Path,
    dir: &Path,
    genesis: &Path,
    keystore: &Path,
    chunk_bytes: u32,
) -> NodeProc {
    let port = free_port("127.0.0.1");
    let extra = format!(
        "[producer]\nenabled = true\nkeystore = {keystore:?}\n\
         [consensus]\nenabled = true\nlisten = \"/ip4/127.0.0.1/tcp/{port}\"\nstep_timeout_ms = 300\n\
         [snapshots]\nevery_blocks = 10\nkeep = 1000\nchunk_bytes = {chunk_bytes}\n"
    );
    let mut producer = NodeProc::tx_node(dir, "producer", genesis, "127.0.0.1", &[], 300, &extra);
    producer.start(doin);
    producer
}

const WARP: &str = "[sync]\nmode = \"warp\"\n[storage]\nprune = \"pruned\"\n";

fn log_of(node: &NodeProc) -> String {
    std::fs::read_to_string(&node.log).unwrap_or_default()
}

/// The state root of block `height` on `node`.
fn state_root(node: &NodeProc, height: u64) -> Option<String> {
    get_ok(&format!("{}/v1/tx/blocks/{height}", node.rest))
        .and_then(|b| b["header"]["state_root"].as_str().map(String::from))
}

#[test]
fn a_new_node_warp_syncs_past_lying_peers_and_resumes_after_a_kill() {
    let _nodes = common::node_processes();
    let dir = tempfile::tempdir().unwrap();
    let doin = doin();
    let validator = KeyPair::generate();
    let joiner = KeyPair::generate();
    let funded: Vec<KeyPair> = (0..40).map(|_| KeyPair::generate()).collect();
    let senders: Vec<KeyPair> = funded[..8]
        .iter()
        .map(|k| KeyPair::from_secret_bytes(&k.secret_bytes()).unwrap())
        .collect();
    let (genesis, spec) = write_genesis(dir.path(), &validator, &joiner, &funded);
    let chain_id = doin_tx_core::ChainParams::from_genesis(&spec)
        .unwrap()
        .chain_id;
    let key = common::write_key(dir.path(), "validator", &validator);

    // One state entry or so per chunk.
    let producer = start_producer(&doin, dir.path(), &genesis, &key, 64);
    let honest = producer.listen_address();
    // A second validator bonds a stake: seated at the next epoch boundary, so the finality
    // proof of any later snapshot hands over from the genesis set to a set of two.
    submit(
        &producer.rest,
        chain_id,
        &joiner,
        0,
        TxPayload::Stake {
            role: StakeRole::Validator,
            amount: spec.params.staking.min_validator_stake,
            domains: Vec::new(),
        },
    );
    let seated_at = wait_until("the second validator is seated", 60, || {
        (current_validators(&producer).len() == 2).then(|| producer.height())
    });
    let traffic = Traffic::start(producer.rest.clone(), chain_id, senders);
    let after_the_change = seated_at.max(11);
    wait_until(
        "the producer writes a snapshot past the set change",
        90,
        || {
            log_of(&producer)
                .lines()
                .rfind(|l| l.contains("state snapshot written"))
                .and_then(|l| {
                    let h: u64 = l
                        .split("height=")
                        .nth(1)?
                        .split_whitespace()
                        .next()?
                        .parse()
                        .ok()?;
                    (h >= after_the_change).then_some(())
                })
        },
    );

    // The liars relay the producer's answers, altered.
    let corrupt = SnapshotPeer::start(&honest, "corrupt-chunk");
    let wrong_root = SnapshotPeer::start(&honest, "wrong-root");
    let mut warp = NodeProc::tx_node(
        dir.path(),
        "warp",
        &genesis,
        "127.0.0.1",
        &[
            honest.clone(),
            corrupt.addr.clone(),
            wrong_root.addr.clone(),
        ],
        300,
        WARP,
    );
    warp.start(&doin);
    let sync = wait_until("the warp node restores a snapshot", 120, || {
        let (status, sync) = get(&format!("{}/v1/node/sync", warp.rest))?;
        (status == 200 && sync["warp"]["finished"] == true && warp.height() > 0).then_some(sync)
    });
    let warp_view = &sync["warp"];
    let snapshot_height = warp_view["height"].as_u64().unwrap();
    assert!(snapshot_height >= after_the_change, "{sync}");
    assert!(warp_view["chunks_total"].as_u64().unwrap() >= 10, "{sync}");
    assert_eq!(
        warp_view["chunks_done"], warp_view["chunks_total"],
        "{sync}"
    );
    let log = log_of(&warp);
    assert!(
        log.lines()
            .any(|l| l.contains("snapshot chunk is refused") && l.contains(&corrupt.peer_id)),
        "the corrupting peer's chunk is refused:\n{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("snapshot head is refused") && l.contains(&wrong_root.peer_id)),
        "the wrong-root peer's head is refused:\n{log}"
    );
    // It follows the producer: the same blocks and state roots after the snapshot.
    let target = producer.height() + 5;
    wait_until("the warp node follows the tip", 60, || {
        (warp.height() >= target).then_some(())
    });
    // (The snapshot's own block has no body here: the state stands for it.)
    for h in [snapshot_height + 1, target] {
        assert_eq!(warp.block_hash(h), producer.block_hash(h), "block {h}");
        assert_eq!(
            state_root(&warp, h),
            state_root(&producer, h),
            "state root {h}"
        );
    }
    let (status, body) = get(&format!("{}/v1/tx/blocks/1", warp.rest)).unwrap();
    assert_eq!(
        status, 410,
        "history before the snapshot is not here: {body}"
    );
    // The producer keeps making blocks (in bursts: the absent validator's turns to propose
    // time out), so "following" is waited for, not read once.
    wait_until("the warp node reports following", 30, || {
        let (_, sync) = get(&format!("{}/v1/node/sync", warp.rest))?;
        (sync["phase"] == "following").then_some(())
    });
    assert_eq!(current_validators(&warp), current_validators(&producer));
    assert_eq!(current_validators(&warp).len(), 2);
    drop(warp);
    drop(corrupt);
    drop(wrong_root);

    // Killed mid-download: the only peer relays slowly, one chunk in flight at a time.
    let slow = SnapshotPeer::start(&honest, "slow-150");
    let resumed_extra =
        "[sync]\nmode = \"warp\"\nwarp_in_flight = 1\n[storage]\nprune = \"pruned\"\n";
    let start_resumed = |bootstrap: &str| {
        let mut node = NodeProc::tx_node(
            dir.path(),
            "resumed",
            &genesis,
            "127.0.0.1",
            &[bootstrap.to_string()],
            300,
            resumed_extra,
        );
        node.start(&doin);
        node
    };
    let mut resumed = start_resumed(&slow.addr);
    let fetched_before = wait_until("the slow download is under way", 90, || {
        let (_, sync) = get(&format!("{}/v1/node/sync", resumed.rest))?;
        let done = sync["warp"]["chunks_done"].as_u64()?;
        (sync["phase"] == "snapshot" && done >= 5).then_some(done)
    });
    resumed.kill9();
    drop(slow);
    let part = dir.path().join("resumed").join("tx-warp.part");
    assert!(part.exists(), "the download is left on disk");

    // Started again against the producer itself: the checked chunks are kept.
    let resumed = start_resumed(&honest);
    let sync = wait_until("the resumed node restores the snapshot", 120, || {
        let (_, sync) = get(&format!("{}/v1/node/sync", resumed.rest))?;
        (sync["warp"]["finished"] == true && resumed.height() > 0).then_some(sync)
    });
    let kept = sync["warp"]["chunks_resumed"].as_u64().unwrap();
    assert!(kept >= fetched_before, "{sync}");
    assert!(
        kept < sync["warp"]["chunks_total"].as_u64().unwrap(),
        "{sync}"
    );
    assert!(!part.exists());
    let log = log_of(&resumed);
    assert!(log.contains("resuming the unfinished download"), "{log}");
    let target = producer.height() + 3;
    wait_until("the resumed node follows the tip", 60, || {
        (resumed.height() >= target).then_some(())
    });
    assert_eq!(resumed.block_hash(target), producer.block_hash(target));
    assert_eq!(state_root(&resumed, target), state_root(&producer, target));
    let sent = traffic.accepted.load(Ordering::SeqCst);
    drop(traffic);
    assert!(sent > 50, "traffic ran all along: {sent} transactions");
}

#[test]
fn a_warp_node_killed_while_restoring_restores_again_from_its_download() {
    let _nodes = common::node_processes();
    let dir = tempfile::tempdir().unwrap();
    let doin = doin();
    let validator = KeyPair::generate();
    let joiner = KeyPair::generate();
    // A state large enough that restoring it takes a while in a debug build.
    let funded: Vec<KeyPair> = (0..RESTORE_ACCOUNTS).map(|_| KeyPair::generate()).collect();
    let (genesis, _) = write_genesis(dir.path(), &validator, &joiner, &funded);
    let key = common::write_key(dir.path(), "validator", &validator);
    let producer = start_producer(&doin, dir.path(), &genesis, &key, 1024);
    let honest = producer.listen_address();
    wait_until("the producer writes a snapshot", 120, || {
        log_of(&producer)
            .contains("state snapshot written")
            .then_some(())
    });

    let start_warp = |bootstrap: &[String]| {
        let mut node = NodeProc::tx_node(
            dir.path(),
            "restoring",
            &genesis,
            "127.0.0.1",
            bootstrap,
            300,
            WARP,
        );
        node.start(&doin);
        node
    };
    let mut warp = start_warp(&[honest]);
    // Polled tightly: the restore is the short last phase of the warp sync.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    let restoring = loop {
        let sync = get_ok(&format!("{}/v1/node/sync", warp.rest));
        if let Some(sync) = sync.filter(|s| {
            s["phase"] == "restore"
                && s["warp"]["chunks_done"].as_u64() < s["warp"]["chunks_total"].as_u64()
        }) {
            break sync;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the warp node never restores: {}",
            warp.log_tail()
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    warp.kill9();
    let snapshot_height = restoring["warp"]["height"].as_u64().unwrap();
    let download = dir.path().join("restoring").join("tx-warp.snap");
    assert!(
        download.exists(),
        "the checked download is kept: {restoring}"
    );

    // Started again with no peer: no bootstrap peer, and the peers it remembers or heard of in
    // its first run forgotten (it would dial them), so the import can only come from the
    // download.
    for file in ["known_peers", "address_book"] {
        let _ = std::fs::remove_file(dir.path().join("restoring").join("net").join(file));
    }
    let before = log_of(&warp).len();
    let warp = start_warp(&[]);
    let restored = wait_until("the node restores from its download", 120, || {
        let info = warp.info()?;
        (info["height"].as_u64()? == snapshot_height).then_some(info)
    });
    let log = log_of(&warp).split_off(before);
    assert!(log.contains("state restored and its root checked"), "{log}");
    assert!(
        !log.contains("fetching its state"),
        "nothing is fetched again:\n{log}"
    );
    assert!(!download.exists(), "the download is removed once imported");
    assert_eq!(
        Some(restored["tip_hash"].clone()),
        producer
            .block_hash(snapshot_height)
            .map(serde_json::Value::from),
        "the restored tip is the producer's block"
    );
}

/// Accounts of the larger state the restore of the second test is interrupted in.
const RESTORE_ACCOUNTS: usize = 20_000;
