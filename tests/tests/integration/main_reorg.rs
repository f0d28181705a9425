//! A reorganisation of the unfinalized main tip, with both chains of a node on one RocksDB and
//! the real anchoring between them (fork choice of docs/mainchain.md, anchoring of docs/anchoring.md):
//!
//! - another main chain, driven by real producer, optimizer and evaluator workers, decides a
//!   claim; the node decides the same claim from the same votes in a block of its own (equal
//!   work, its producer paid), then the other chain goes on to more work and the node switches
//!   to it when it hears of it;
//! - the replaced block's reward never reaches the transfer chain, the winning branch's
//!   rewards reach it exactly once, also across a restart;
//! - the lifecycle indexes follow the best chain, and a restart reopens the new branch;
//! - a branch as good by fork choice that forks below what the transfer chain has anchored is
//!   refused: anchored main blocks are final.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use doin_codec::encode;
use doin_crypto::KeyPair;
use doin_main_core::reward::Role;
use doin_main_core::{Commit, MainBlock, Signed};
use doin_main_node::producer::{now_ms, run_producer};
use doin_main_node::workers::{run_evaluator, run_optimizer, DomainEvaluator, OptimizerOptions};
use doin_main_node::{ImportOutcome, MainChain, MainChainConfig, MainChainError, PoolKind};
use doin_node::anchoring::{MainChainAnchors, TxChainCheckpoints};
use doin_node::devnet::{self, DevnetOptions};
use doin_store::{KvStore, RocksConfig, RocksStore};
use doin_telemetry::Metrics;
use doin_tx_core::StateView;
use doin_tx_node::{TxChain, TxChainConfig};
use doin_types::{Hash256, PublicKeyBytes, Timestamp};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

fn options(dir: &Path) -> DevnetOptions {
    common::devnet_options(dir, 200, 200, 5, 1)
}

fn copy(k: &KeyPair) -> KeyPair {
    KeyPair::from_secret_bytes(&k.secret_bytes()).unwrap()
}

fn kv(dir: &Path) -> Arc<dyn KvStore> {
    let columns: Vec<&'static str> = doin_tx_node::store::COLUMNS
        .iter()
        .chain(doin_main_node::store::COLUMNS)
        .copied()
        .collect();
    Arc::new(RocksStore::open(dir, &columns, &RocksConfig::default()).unwrap())
}

/// Both chains on one database, wired to each other as a node wires them.
fn open_node(dir: &Path, d: &devnet::Devnet) -> (Arc<TxChain>, Arc<MainChain>) {
    let kv = kv(dir);
    let metrics = Metrics::new();
    let tx = TxChain::open(
        kv.clone(),
        d.spec.clone(),
        TxChainConfig {
            // As a node keeps them: the test reads the events back.
            event_buffer: 10_000,
            ..TxChainConfig::default()
        },
        &metrics,
    )
    .unwrap();
    let main = MainChain::open(
        kv,
        d.main_spec.clone(),
        MainChainConfig::default(),
        &metrics,
    )
    .unwrap();
    tx.set_main_view(Arc::new(MainChainAnchors::new(&main)));
    main.set_tx_view(Arc::new(TxChainCheckpoints::new(&tx)));
    (tx, main)
}

/// A main chain alone (another node's, for all this node knows).
fn open_rival(dir: &Path, d: &devnet::Devnet) -> Arc<MainChain> {
    MainChain::open(
        kv(dir),
        d.main_spec.clone(),
        MainChainConfig::default(),
        &Metrics::new(),
    )
    .unwrap()
}

fn now() -> Timestamp {
    Timestamp(now_ms())
}

/// Runs a producer and every evaluator on `chain` (and the optimizer when `optimize`) until the
/// block `depth` below its tip carries more cumulative work than `beat`.
async fn mine_work(
    chain: &Arc<MainChain>,
    d: &devnet::Devnet,
    producer: &KeyPair,
    optimize: bool,
    beat: u128,
    depth: u64,
) {
    let (stop, shutdown) = watch::channel(false);
    let poll = Duration::from_millis(50);
    let evaluator = Arc::new(DomainEvaluator::new(Vec::new()));
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn({
        let fut = run_producer(
            chain.clone(),
            Arc::new(copy(producer)),
            poll,
            shutdown.clone(),
        );
        async move { fut.await.map_err(|e| e.to_string()) }
    });
    for e in &d.evaluators {
        tasks.spawn(run_evaluator(
            chain.clone(),
            Arc::new(copy(e)),
            evaluator.clone(),
            poll,
            shutdown.clone(),
        ));
    }
    if optimize {
        tasks.spawn(run_optimizer(
            chain.clone(),
            Arc::new(copy(&d.optimizers[0])),
            evaluator.clone(),
            OptimizerOptions {
                poll,
                tries_per_round: 32,
            },
            shutdown.clone(),
        ));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let tip = chain.head().header.height;
        let work_at_depth = tip
            .checked_sub(depth)
            .and_then(|h| chain.block(h).unwrap())
            .map(|b| b.header.cumulative_work)
            .unwrap_or(0);
        if work_at_depth > beat {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no work beyond {beat} {depth} blocks deep within 120 s (height {tip}, work {work_at_depth})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.send(true).unwrap();
    while let Some(r) = tasks.join_next().await {
        r.unwrap().unwrap();
    }
}

/// Main blocks 1..=to of `chain`'s best chain.
fn best_blocks(chain: &MainChain, to: u64) -> Vec<MainBlock> {
    (1..=to).map(|h| chain.block(h).unwrap().unwrap()).collect()
}

/// What the main blocks 1..=to of `chain`'s best chain paid, in total and to `key` as producer.
fn minted(chain: &MainChain, to: u64, key: &PublicKeyBytes) -> (u128, u128) {
    let mut total = 0u128;
    let mut to_key = 0u128;
    for b in best_blocks(chain, to) {
        for p in &b.body.coinbase {
            total += p.amount.base_units() as u128;
            if p.key == *key && p.role == Role::Producer {
                to_key += p.amount.base_units() as u128;
            }
        }
    }
    (total, to_key)
}

fn balance(tx: &TxChain, key: &PublicKeyBytes) -> u128 {
    tx.store()
        .account(key)
        .unwrap()
        .unwrap_or_default()
        .balance
        .base_units() as u128
}

/// The transfer chain's account of what it imported from the main chain must equal what the
/// main blocks it anchors minted, and the loser's reward must be nowhere.
fn check_exactly_once(tx: &TxChain, main: &MainChain, winner: &KeyPair, loser: &KeyPair) {
    let stats = tx.chain_stats().unwrap();
    let anchored = stats.main_anchor.height;
    let (total, to_winner) = minted(main, anchored, &winner.public());
    assert_eq!(
        stats.imported.base_units() as u128,
        total,
        "imported from main = minted by the anchored main blocks of the best chain"
    );
    assert_eq!(balance(tx, &winner.public()), to_winner);
    assert_eq!(
        balance(tx, &loser.public()),
        0,
        "the replaced block's reward never reached the transfer chain"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorg_of_the_unfinalized_main_tip_credits_the_winning_rewards_exactly_once() {
    let keys_dir = tempfile::tempdir().unwrap();
    let d = devnet::prepare(&options(keys_dir.path())).unwrap();
    let node_dir = tempfile::tempdir().unwrap();
    let rival_dir = tempfile::tempdir().unwrap();
    let (tx, main) = open_node(node_dir.path(), &d);
    // As a node forwards them: the main chain's reorganisations to the event stream.
    let (stop_events, stop) = watch::channel(false);
    let forwarding = tokio::spawn(doin_node::anchoring::forward_main_reorgs(
        tx.clone(),
        main.announcements(),
        stop,
    ));
    let rival = open_rival(rival_dir.path(), &d);
    let loser = KeyPair::generate();
    let winner = KeyPair::generate();
    let now_far = Timestamp(u64::MAX / 2);

    // A transfer block anchoring nothing yet.
    tx.produce_block(&d.validator, now()).unwrap();

    // Elsewhere: a main chain whose optimizer's first claim is accepted (two blocks deep).
    mine_work(&rival, &d, &winner, true, 0, 2).await;
    let first_work = (1..=rival.head().header.height)
        .find(|h| rival.block(*h).unwrap().unwrap().header.counted_work.0 > 0)
        .unwrap();

    // The node learns the rival's blocks up to the claim's verdict, and decides the claim
    // itself from the same votes at the same time: equal work, in a block of its own that
    // pays its producer (`loser`).
    for b in best_blocks(&rival, first_work - 1) {
        assert_eq!(main.import(&b, now()).unwrap(), ImportOutcome::Extended);
    }
    let rivals_verdict = rival.block(first_work).unwrap().unwrap();
    for vote in rivals_verdict.body.verdicts.iter().flat_map(|v| &v.votes) {
        main.submit(PoolKind::Vote, &encode(vote).unwrap()).unwrap();
    }
    let own = main
        .produce(&loser, rivals_verdict.header.time)
        .unwrap()
        .expect("the votes decide the claim");
    assert_eq!(
        own.header.cumulative_work,
        rivals_verdict.header.cumulative_work
    );
    assert!(own.body.coinbase.iter().any(|p| p.key == loser.public()));
    let replaced = [own];
    assert_eq!(tx.chain_stats().unwrap().main_anchor.height, 0);

    // The rival goes on to a further accepted claim: strictly more work than the node has.
    mine_work(
        &rival,
        &d,
        &winner,
        true,
        rivals_verdict.header.cumulative_work,
        2,
    )
    .await;
    let rival_tip = rival.head();
    assert!(rival_tip.header.cumulative_work > main.head().header.cumulative_work);

    // The node hears of the rest of the rival's chain block by block: side blocks first, then
    // the switch.
    let branch = best_blocks(&rival, rival_tip.header.height);
    let mut reorganized = None;
    for b in &branch[first_work as usize - 1..] {
        match main.import(b, now()).unwrap() {
            ImportOutcome::Reorganized {
                fork,
                disconnected,
                connected,
            } => reorganized = Some((fork, disconnected, connected)),
            ImportOutcome::Extended | ImportOutcome::SideBranch => {}
            ImportOutcome::Known => panic!("block {} was not known", b.header.height),
        }
    }
    let (fork, disconnected, switched_with) = reorganized.expect("the node switched branches");
    assert_eq!(
        (fork, disconnected),
        (first_work - 1, replaced.len()),
        "the node's blocks above the common block were replaced"
    );
    assert_eq!(main.head().hash, rival_tip.hash);
    assert_eq!(*main.head().state, *rival_tip.state);
    // The lifecycle indexes follow the best chain: every optimae the branch decided reads
    // as the rival recorded it.
    for b in &branch {
        for v in &b.body.verdicts {
            assert_eq!(
                main.store().optimae(&v.optimae_id).unwrap(),
                rival.store().optimae(&v.optimae_id).unwrap()
            );
        }
    }
    // Replaying a replaced block changes nothing.
    assert_eq!(
        main.import(&replaced[0], now()).unwrap(),
        ImportOutcome::Known
    );

    // The event stream told of the switch: the fork, the replaced block, the new branch.
    let (reorg_id, reorg) = wait_for_event(&tx, "main_reorg").await;
    // Kept before it was announced, under the id it was announced with.
    let kept = tx.store().main_reorgs_at(reorg_id.height).unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].0, reorg_id.seq);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&kept[0].1).unwrap(),
        reorg
    );
    assert_eq!(reorg["fork_height"], fork);
    assert_eq!(
        reorg["disconnected"].as_array().unwrap().len(),
        replaced.len()
    );
    assert_eq!(
        reorg["disconnected"][0]["hash"],
        replaced[0].hash().unwrap().to_hex()
    );
    let connected: Vec<u64> = reorg["connected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["height"].as_u64().unwrap())
        .collect();
    // The branch's blocks up to the one that gave it more work (later ones just extend it).
    let switched_at = fork + switched_with as u64;
    assert_eq!(connected, (fork + 1..=switched_at).collect::<Vec<_>>());

    // Anchoring after the switch: the winner's rewards arrive, the loser's never.
    let anchoring = tx.produce_block(&d.validator, now()).unwrap();
    let anchored = tx.chain_stats().unwrap().main_anchor.height;
    assert_eq!(anchored, rival_tip.header.height - 1, "anchored at depth 1");
    check_exactly_once(&tx, &main, &winner, &loser);
    assert!(balance(&tx, &winner.public()) > 0);
    // One `main_block` event per anchored main block right after the transfer block's own,
    // and a replay rebuilds the same ones from the store.
    let h = anchoring.header.height;
    let live: Vec<(u64, String)> = tx
        .events()
        .replay_after(doin_tx_node::events::EventId { height: h, seq: 0 })
        .buffered
        .iter()
        .filter(|e| e.kind == "main_block" && e.id.height == h)
        .map(|e| (e.id.seq, e.data.clone()))
        .collect();
    let network = tx.params().network;
    let rebuilt: Vec<(u64, String)> = (1..)
        .zip(tx.anchored_effects(&anchoring))
        .map(|(seq, e)| (seq, doin_tx_node::views::main_block_event(&e, h, network)))
        .collect();
    assert_eq!(live.len() as u64, anchored);
    assert_eq!(live, rebuilt);
    let last: serde_json::Value = serde_json::from_str(&live.last().unwrap().1).unwrap();
    assert_eq!(last["height"], anchored);
    assert_eq!(last["anchored_by"], h);
    stop_events.send(true).unwrap();
    forwarding.await.unwrap().unwrap();

    // Restart: the new branch is what reopens; anchoring again credits nothing twice.
    drop((tx, main));
    let (tx, main) = open_node(node_dir.path(), &d);
    // The `main_reorg` event is still there for resuming clients.
    assert_eq!(tx.store().main_reorgs_at(reorg_id.height).unwrap(), kept);
    assert_eq!(main.head().hash, rival_tip.hash);
    check_exactly_once(&tx, &main, &winner, &loser);
    tx.produce_block(&d.validator, now()).unwrap();
    assert_eq!(tx.chain_stats().unwrap().main_anchor.height, anchored);
    check_exactly_once(&tx, &main, &winner, &loser);

    // The node's producer adds two carriers and the next transfer block anchors the first.
    // A branch forking just below it is refused — even one as good by fork choice as the
    // node's chain (all the work, equal cumulative work, a lower tip hash): anchored blocks
    // are final.
    let gap = d.main_spec.params.carrier_interval_ms;
    for _ in 0..2 {
        let time = main.head().header.time.0 + gap;
        carrier(&main, &d, &d.validator, time);
    }
    tx.produce_block(&d.validator, now()).unwrap();
    let anchored = tx.chain_stats().unwrap().main_anchor.height;
    assert_eq!(anchored, main.head().header.height - 1);
    check_exactly_once(&tx, &main, &winner, &loser);
    let below = anchored - 1;
    assert_eq!(below, rival_tip.header.height);
    let tip_before = main.head();
    // Competing blocks at the height above `below`, each from its own copy of the chain up to
    // `below`, until one that fork choice alone would prefer (equal work, a lower hash than the
    // node's tip): every one is refused.
    let mut refused = None;
    let mut preferred_tried = false;
    // With the tip's hash uniform, the first of N siblings below it is missed with probability
    // 1 / (N + 1) (a low tip hash takes many tries), and takes about ln N + 0.6 tries on average.
    const ATTEMPTS: u64 = 1_000;
    for attempt in 1..=ATTEMPTS {
        let dir = tempfile::tempdir().unwrap();
        let deep = open_rival(dir.path(), &d);
        for b in best_blocks(&main, below) {
            deep.import(&b, now_far).unwrap();
        }
        let time = main.head().header.time.0 + gap * attempt;
        let block = carrier(&deep, &d, &winner, time);
        match main.import(&block, now_far) {
            Err(MainChainError::BelowFinality { fork, anchored: a }) => refused = Some((fork, a)),
            other => panic!("unexpected outcome {other:?}"),
        }
        if block.hash().unwrap() < tip_before.hash {
            preferred_tried = true;
            break;
        }
    }
    assert!(
        preferred_tried,
        "{ATTEMPTS} blocks, none with a lower hash than the tip (odds 1 in {})",
        ATTEMPTS + 1
    );
    assert_eq!(refused, Some((below, anchored)));
    assert_eq!(main.head().hash, tip_before.hash);
    check_exactly_once(&tx, &main, &winner, &loser);
}

/// A carrier block on `chain` at `time`, carrying a fresh commit of the optimizer.
/// The newest buffered event of `kind` with its id (waiting a little: events are forwarded by a
/// task).
async fn wait_for_event(
    tx: &TxChain,
    kind: &str,
) -> (doin_tx_node::events::EventId, serde_json::Value) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = tx
            .events()
            .replay_after(doin_tx_node::events::EventId { height: 0, seq: 0 })
            .buffered
            .iter()
            .rev()
            .find(|e| e.kind == kind)
            .map(|e| (e.id, serde_json::from_str(&e.data).unwrap()));
        if let Some(v) = found {
            return v;
        }
        assert!(Instant::now() < deadline, "no {kind} event within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn carrier(chain: &MainChain, d: &devnet::Devnet, producer: &KeyPair, time: u64) -> MainBlock {
    let opt = &d.optimizers[0];
    let commit = Signed::sign(
        Commit {
            chain_id: chain.params().chain_id,
            domain: chain.head().state.domains.keys().next().unwrap().clone(),
            optimizer: opt.public(),
            commitment: Hash256(KeyPair::generate().public().0),
        },
        opt,
    )
    .unwrap();
    chain
        .submit(PoolKind::Commit, &encode(&commit).unwrap())
        .unwrap();
    let block = chain
        .produce(producer, Timestamp(time))
        .unwrap()
        .expect("a carrier is due");
    assert_eq!(block.header.counted_work.0, 0);
    block
}
