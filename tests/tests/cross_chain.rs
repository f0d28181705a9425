//! Both chains in one process, on RocksDB, with the real producers, evaluators and optimizers:
//! main-chain rewards reach transfer-chain balances exactly once, supply is conserved across
//! the two chains, and both survive a restart with the same totals.
//!
//! Supply across chains: everything the transfer chain holds (balances + stakes) equals its
//! genesis supply, plus what the main chain minted in the blocks the transfer chain anchored,
//! minus what was burned (base fees and slashes).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use doin_crypto::KeyPair;
use doin_node::devnet::{self, DevnetOptions};
use doin_node::run::{Node, NodeKeys};
use doin_tx_core::StateView;
use doin_types::{Amount, PublicKeyBytes};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

fn options(dir: &std::path::Path) -> DevnetOptions {
    DevnetOptions {
        data_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        block_time_ms: 200,
        accounts: 2,
        demo_accounts: 0,
        demo: false,
        demo_interval_ms: 100,
        main_block_time_ms: 300,
        evaluators: 5,
        optimizers: 2,
    }
}

fn copy(k: &KeyPair) -> KeyPair {
    KeyPair::from_secret_bytes(&k.secret_bytes()).unwrap()
}

async fn start(dir: &std::path::Path) -> (Node, devnet::Devnet) {
    let opts = options(dir);
    let d = devnet::prepare(&opts).unwrap();
    let keys = NodeKeys {
        tx_producer: Some(copy(&d.validator)),
        main_producer: Some(copy(&d.validator)),
        evaluators: d.evaluators.iter().map(copy).collect(),
        optimizers: d.optimizers.iter().map(copy).collect(),
    };
    // After a stop in this process, the previous node's last tasks may still hold the
    // database for a moment: retry opening briefly.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut keys = Some(keys);
    loop {
        let attempt = Node::start(
            &d.config,
            Some(d.spec.clone()),
            Some(d.main_spec.clone()),
            keys.take().unwrap(),
            Vec::new(),
        )
        .await;
        match attempt {
            Ok(node) => return (node, d),
            Err(e) if Instant::now() < deadline && format!("{e:#}").contains("lock") => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                keys = Some(NodeKeys {
                    tx_producer: Some(copy(&d.validator)),
                    main_producer: Some(copy(&d.validator)),
                    evaluators: d.evaluators.iter().map(copy).collect(),
                    optimizers: d.optimizers.iter().map(copy).collect(),
                });
            }
            Err(e) => panic!("node did not start: {e:#}"),
        }
    }
}

/// Every key that can hold coins on the transfer chain so far: genesis allocations and stakes,
/// transfer senders and recipients, block proposers and main-chain payees.
fn known_keys(node: &Node, d: &devnet::Devnet) -> BTreeSet<PublicKeyBytes> {
    let tx = node.tx.as_ref().unwrap();
    let main = node.main.as_ref().unwrap();
    let mut keys: BTreeSet<PublicKeyBytes> = d.spec.allocations.iter().map(|a| a.key).collect();
    keys.extend(d.spec.stakes.iter().map(|s| s.key));
    keys.insert(d.validator.public());
    for h in 1..=tx.tip().header.height {
        let b = tx.store().block(h).unwrap().unwrap();
        keys.insert(b.header.proposer);
        for t in &b.txs {
            keys.insert(t.body.sender);
            keys.extend(t.body.payload.recipient().copied());
        }
    }
    for h in 1..=main.head().header.height {
        let b = main.block(h).unwrap().unwrap();
        keys.extend(b.body.coinbase.iter().map(|p| p.key));
    }
    keys
}

/// (balances + stakes on the transfer chain, genesis + anchored main mint − burned).
fn supply(node: &Node, d: &devnet::Devnet) -> (u128, u128, u128) {
    let tx = node.tx.as_ref().unwrap();
    let main = node.main.as_ref().unwrap();
    let store = tx.store();
    let stats = store.chain_stats().unwrap();
    let balances: u128 = known_keys(node, d)
        .iter()
        .map(|k| {
            u128::from(
                store
                    .account(k)
                    .unwrap()
                    .unwrap_or_default()
                    .balance
                    .base_units(),
            )
        })
        .sum();
    let held = balances + u128::from(stats.staked.base_units());
    let anchored_mint: u128 = (1..=stats.main_anchor.height)
        .map(|h| {
            main.block(h)
                .unwrap()
                .unwrap()
                .body
                .coinbase
                .iter()
                .map(|p| u128::from(p.amount.base_units()))
                .sum::<u128>()
        })
        .sum();
    let genesis = u128::from(d.spec.total_supply().unwrap().base_units());
    let expected = genesis + anchored_mint - u128::from(stats.burned.base_units());
    (held, expected, anchored_mint)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewards_cross_once_and_supply_is_conserved_across_both_chains_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (node, d) = start(dir.path()).await;

    // Wait until the transfer chain has imported minted coins from the main chain.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let stats = node.tx.as_ref().unwrap().chain_stats().unwrap();
        if stats.imported > Amount::ZERO {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no main-chain reward anchored within 90 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (held, expected, minted) = supply(&node, &d);
    assert!(minted > 0);
    assert_eq!(held, expected, "supply differs across the chains");
    let stats = node.tx.as_ref().unwrap().chain_stats().unwrap();
    assert_eq!(
        u128::from(stats.imported.base_units()),
        minted,
        "imported exactly once"
    );
    // The main chain minted at least what the transfer chain imported (its newest blocks are
    // not anchored yet).
    let main_minted = node.main.as_ref().unwrap().head().state.minted;
    assert!(main_minted >= stats.imported);

    // Restart on the same directory: the same totals, and still conserved.
    let before = stats;
    node.run_until(async {}).await;
    let (node, d) = start(dir.path()).await;
    let after = node.tx.as_ref().unwrap().chain_stats().unwrap();
    assert!(after.height >= before.height);
    assert!(after.imported >= before.imported);
    let (held, expected, minted) = supply(&node, &d);
    assert_eq!(
        held, expected,
        "supply differs across the chains after a restart"
    );
    assert_eq!(u128::from(after.imported.base_units()), minted);
    node.run_until(async {}).await;
}
