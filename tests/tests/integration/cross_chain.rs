//! Both chains in one process, on RocksDB, with the real producers, evaluators and optimizers:
//! main-chain rewards reach transfer-chain balances exactly once, supply is conserved across
//! the two chains, and both survive a restart with the same totals.
//!
//! Supply across chains: everything the transfer chain holds (balances + stakes) equals its
//! genesis supply, plus what the main chain minted in the blocks the transfer chain anchored,
//! minus what was burned (base fees and slashes).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use doin_crypto::KeyPair;
use doin_node::devnet::{self, DevnetOptions};
use doin_node::run::{Node, NodeKeys};
use doin_tx_core::StateView;
use doin_types::{Amount, PublicKeyBytes};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

fn options(dir: &std::path::Path) -> DevnetOptions {
    common::devnet_options(dir, 200, 300, 5, 2)
}

fn copy(k: &KeyPair) -> KeyPair {
    KeyPair::from_secret_bytes(&k.secret_bytes()).unwrap()
}

async fn start(dir: &std::path::Path) -> (Node, devnet::Devnet) {
    start_with(dir, usize::MAX).await
}

/// Starts the devnet node with only the first `optimizers` demo optimizers as workers.
async fn start_with(dir: &std::path::Path, optimizers: usize) -> (Node, devnet::Devnet) {
    let opts = options(dir);
    let d = devnet::prepare(&opts).unwrap();
    let keys = NodeKeys {
        tx_producer: Some(copy(&d.validator)),
        main_producer: Some(copy(&d.validator)),
        evaluators: d.evaluators.iter().map(copy).collect(),
        optimizers: d.optimizers.iter().take(optimizers).map(copy).collect(),
        hub: Some(copy(&d.hub)),
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
                    optimizers: d.optimizers.iter().take(optimizers).map(copy).collect(),
                    hub: Some(copy(&d.hub)),
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
            keys.extend(t.body.payload.recipients().into_iter().copied());
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
    let held = balances
        + u128::from(stats.staked.base_units())
        + u128::from(stats.in_channels.base_units());
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

/// Waits up to `secs` for `done` to give a value.
async fn wait_for<T>(secs: u64, what: &str, mut done: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = done() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what} within {secs} s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_false_claim_is_rejected_and_slashes_the_optimizer_stake_on_the_transfer_chain() {
    use doin_main_core::{msg, Commit, DomainId, Fx, Reveal, Signed};
    use doin_main_node::store::OptimaeStatus;
    use doin_main_node::PoolKind;
    use doin_tx_core::StakeRole;

    let dir = tempfile::tempdir().unwrap();
    // Optimizer 1 is not a worker: the test makes its (false) claim by hand.
    let (node, d) = start_with(dir.path(), 1).await;
    let main = node.main.clone().unwrap();
    let tx = node.tx.clone().unwrap();
    let cheat = &d.optimizers[1];
    let staked_before = tx
        .store()
        .stake(&cheat.public(), StakeRole::Optimizer)
        .unwrap()
        .unwrap()
        .bonded;

    // Claim a perfect sphere (loss 0) for parameters whose true loss is large. The main chain
    // must have adopted the transfer stakes first (the optimizer is staked there).
    wait_for(60, "a main block with a transfer checkpoint", || {
        (main.head().header.tx_checkpoint.height > 0).then_some(())
    })
    .await;
    let chain_id = main.params().chain_id;
    let domain = DomainId::new("sphere").unwrap();
    let dim = main.head().state.domains[&domain].spec.dim as usize;
    let params = vec![Fx::from_int(3); dim];
    let reported = Fx::ZERO;
    let salt = [7u8; 32];
    let commitment = msg::commitment(&domain, &cheat.public(), &params, reported, &salt).unwrap();
    let commit = Signed::sign(
        Commit {
            chain_id,
            domain: domain.clone(),
            optimizer: cheat.public(),
            commitment,
        },
        cheat,
    )
    .unwrap();
    let commit_id = main
        .submit(PoolKind::Commit, &doin_codec::encode(&commit).unwrap())
        .unwrap()
        .id;
    wait_for(60, "the commit on chain", || {
        main.store().commit_info(&commit_id).unwrap().map(|_| ())
    })
    .await;
    let reveal = Signed::sign(
        Reveal {
            chain_id,
            commit_id,
            domain,
            optimizer: cheat.public(),
            params,
            reported_metric: reported,
            salt,
        },
        cheat,
    )
    .unwrap();
    let main2 = main.clone();
    let optimae_id = wait_for(60, "the reveal accepted into the pool", || {
        main2
            .submit(PoolKind::Reveal, &doin_codec::encode(&reveal).unwrap())
            .ok()
            .map(|s| s.id)
    })
    .await;
    let decided_at = wait_for(90, "the false claim rejected", || {
        let r = main.store().optimae(&optimae_id).unwrap()?;
        (r.status == OptimaeStatus::Rejected).then_some(r.decided_at)?
    })
    .await;

    // Once a transfer block anchors the rejecting main block, the optimizer's stake is slashed
    // by the configured share, exactly once, and the slashed coins are burned.
    let ppm = u64::from(d.spec.params.staking.slash_rejected_optimae_ppm);
    let expected = staked_before.base_units() - staked_before.base_units() * ppm / 1_000_000;
    wait_for(90, "the rejecting main block anchored", || {
        (tx.chain_stats().unwrap().main_anchor.height >= decided_at).then_some(())
    })
    .await;
    let after = tx
        .store()
        .stake(&cheat.public(), StakeRole::Optimizer)
        .unwrap()
        .unwrap();
    assert_eq!(after.bonded.base_units(), expected, "slashed by {ppm} ppm");
    // Later anchors do not slash it again.
    wait_for(90, "two more main blocks anchored", || {
        (tx.chain_stats().unwrap().main_anchor.height >= decided_at + 2).then_some(())
    })
    .await;
    let later = tx
        .store()
        .stake(&cheat.public(), StakeRole::Optimizer)
        .unwrap()
        .unwrap();
    assert_eq!(later.bonded.base_units(), expected, "slashed exactly once");
    let (held, expected_supply, _) = supply(&node, &d);
    assert_eq!(held, expected_supply, "supply differs after a slash");
    node.run_until(async {}).await;
}
