//! Black-box: four real `doin node` processes run **both** chains over libp2p on loopback
//! (127.0.0.1–127.0.0.4), each with its own RocksDB. The genesis files and keys come from a
//! devnet directory; the roles are spread so that every kind of main-chain message has to
//! cross a process boundary:
//!
//! | node | transfer chain | main chain                          |
//! |------|----------------|-------------------------------------|
//! | n0   | producer       | producer, evaluator 0, optimizer 0  |
//! | n1   | follower       | evaluators 1 and 2                  |
//! | n2   | follower       | evaluator 3, optimizer 1            |
//! | n3   | starts late    | evaluator 4                         |
//!
//! - votes of evaluators in other processes end up in n0's main blocks, and an optimae that
//!   optimizer 1 commits and reveals on n2 is decided there;
//! - n3, started late, syncs both chains, headers first; n2, killed with SIGKILL and restarted, catches up;
//! - at the end all four have the same main and transfer blocks, and on each node the transfer
//!   chain imported exactly what the anchored main blocks paid out, with supply conserved.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{doin, free_port, get_ok, wait_until, NodeProc};
use doin_node::devnet::{self, Devnet};
use doin_types::{Address, PublicKeyBytes};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

struct Roles {
    tx_producer: bool,
    main_producer: bool,
    evaluators: Vec<usize>,
    optimizers: Vec<usize>,
}

fn key_file(devnet_dir: &Path, name: &str) -> PathBuf {
    devnet_dir.join("keys").join(format!("{name}.json"))
}

fn list(paths: &[PathBuf]) -> String {
    let quoted: Vec<String> = paths.iter().map(|p| format!("{p:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

/// Writes node `i`'s config file (devnet key files are plaintext: no password needed).
fn node(root: &Path, d: &Devnet, i: usize, roles: &Roles, bootstrap: &[String]) -> NodeProc {
    let devnet_dir = &d.config.data_dir;
    let ip = format!("127.0.0.{}", i + 1);
    let rest_port = free_port("127.0.0.1");
    let p2p_port = free_port(&ip);
    let name = format!("n{i}");
    let bootstrap: Vec<String> = bootstrap.iter().map(|b| format!("{b:?}")).collect();
    let evaluators: Vec<PathBuf> = roles
        .evaluators
        .iter()
        .map(|e| key_file(devnet_dir, &format!("evaluator-{e}")))
        .collect();
    let optimizers: Vec<PathBuf> = roles
        .optimizers
        .iter()
        .map(|o| key_file(devnet_dir, &format!("optimizer-{o}")))
        .collect();
    let validator = key_file(devnet_dir, "validator");
    let mut toml = format!(
        "data_dir = {:?}\ngenesis_file = {:?}\nchains = [\"tx\", \"main\"]\n\
         [rest]\nlisten = \"127.0.0.1:{rest_port}\"\nrate_limit_per_second = 0\n\
         [p2p]\nlisten = [\"/ip4/{ip}/tcp/{p2p_port}\"]\nbootstrap = [{}]\nsync_interval_ms = 500\n\
         [main]\ngenesis_file = {:?}\npoll_ms = {}\nevaluator_keystores = {}\noptimizer_keystores = {}\n",
        root.join(&name),
        d.config.genesis_file,
        bootstrap.join(", "),
        d.config.main.genesis_file,
        d.config.main.poll_ms,
        list(&evaluators),
        list(&optimizers),
    );
    if roles.main_producer {
        toml.push_str(&format!("producer_keystore = {validator:?}\n"));
    }
    if roles.tx_producer {
        toml.push_str(&format!(
            "[producer]\nenabled = true\nkeystore = {validator:?}\nblock_time_ms = {}\n",
            d.config.producer.block_time_ms.unwrap_or(500)
        ));
    }
    let config = root.join(format!("{name}.toml"));
    std::fs::write(&config, toml).unwrap();
    NodeProc {
        log: root.join(format!("{name}.log")),
        name,
        config,
        rest: format!("http://127.0.0.1:{rest_port}"),
        child: None,
    }
}

/// Main blocks 1..=`to` as served by `n`.
fn main_blocks(n: &NodeProc, to: u64) -> Vec<Value> {
    (1..=to).filter_map(|h| n.main_block(h)).collect()
}

/// Evaluators (addresses) whose votes are in n's main blocks so far.
fn voters(n: &NodeProc) -> BTreeSet<String> {
    main_blocks(n, n.main_height())
        .iter()
        .flat_map(|b| b["verdicts"].as_array().cloned().unwrap_or_default())
        .flat_map(|v| v["votes"].as_array().cloned().unwrap_or_default())
        .filter_map(|v| v["evaluator"].as_str().map(String::from))
        .collect()
}

/// Optimizers (addresses) of the optimae decided in n's main blocks so far.
fn decided_optimizers(n: &NodeProc) -> BTreeSet<String> {
    main_blocks(n, n.main_height())
        .iter()
        .flat_map(|b| b["verdicts"].as_array().cloned().unwrap_or_default())
        .filter_map(|v| {
            let id = v["optimae_id"].as_str()?;
            let o = get_ok(&format!("{}/v1/main/optimae/{id}", n.rest))?;
            o["optimizer"].as_str().map(String::from)
        })
        .collect()
}

fn amount(v: &Value) -> u128 {
    v.as_str().unwrap().parse().unwrap()
}

#[test]
fn four_processes_agree_on_both_chains_through_a_late_start_and_a_crash() {
    let _nodes = common::node_processes();
    let root = tempfile::tempdir().unwrap();
    let doin = doin();
    let opts = common::devnet_options(&root.path().join("devnet"), 500, 1000, 5, 2);
    let d = devnet::prepare(&opts).unwrap();
    let network = d.spec.network;
    let address = |k: &PublicKeyBytes| Address::new(network, *k).to_string();
    let role = |evaluators: &[usize], optimizers: &[usize]| Roles {
        tx_producer: false,
        main_producer: false,
        evaluators: evaluators.to_vec(),
        optimizers: optimizers.to_vec(),
    };

    let mut n0 = node(
        root.path(),
        &d,
        0,
        &Roles {
            tx_producer: true,
            main_producer: true,
            ..role(&[0], &[0])
        },
        &[],
    );
    n0.start(&doin);
    let boot = n0.listen_address();
    let mut n1 = node(
        root.path(),
        &d,
        1,
        &role(&[1, 2], &[]),
        std::slice::from_ref(&boot),
    );
    let mut n2 = node(
        root.path(),
        &d,
        2,
        &role(&[3], &[1]),
        std::slice::from_ref(&boot),
    );
    n1.start(&doin);
    n2.start(&doin);

    // Main-chain messages cross processes: remote votes and a remote optimizer's optimae end
    // up in the producer's blocks.
    let remote_evaluators: BTreeSet<String> = d.evaluators[1..4]
        .iter()
        .map(|k| address(&k.public()))
        .collect();
    wait_until("a vote from n1 or n2 in n0's main blocks", 300, || {
        voters(&n0)
            .intersection(&remote_evaluators)
            .next()
            .map(|_| ())
    });
    let remote_optimizer = address(&d.optimizers[1].public());
    wait_until("an optimae of n2's optimizer decided on n0", 300, || {
        decided_optimizers(&n0)
            .contains(&remote_optimizer)
            .then_some(())
    });

    // A node started late syncs both chains.
    let n1_addr = n1.listen_address();
    let mut n3 = node(
        root.path(),
        &d,
        3,
        &role(&[4], &[]),
        &[boot.clone(), n1_addr],
    );
    n3.start(&doin);
    let (tx_target, main_target) = (n0.height(), n0.main_height());
    wait_until("n3 catches up on both chains", 120, || {
        (n3.height() >= tx_target && n3.main_height() >= main_target).then_some(())
    });
    let sync = get_ok(&format!("{}/v1/node/sync", n3.rest)).unwrap();
    for chain in ["tx", "main"] {
        assert!(
            sync[chain]["headers_synced"].as_u64().unwrap_or(0) > 0
                && sync[chain]["blocks_synced"].as_u64().unwrap_or(0) > 0,
            "n3 synced the {chain} chain headers first: {sync}"
        );
    }

    // n2 dies hard; both chains move on; n2 comes back and catches up.
    n2.kill9();
    let main_before = n0.main_height();
    wait_until("n0's main chain moves while n2 is down", 120, || {
        (n0.main_height() >= main_before + 2).then_some(())
    });
    n2.start(&doin);
    let (tx_target, main_target) = (n0.height(), n0.main_height());
    wait_until("n2 catches up on both chains after restart", 120, || {
        (n2.height() >= tx_target && n2.main_height() >= main_target).then_some(())
    });

    // The end: the same blocks on every node, on both chains.
    let nodes = [&n0, &n1, &n2, &n3];
    let main_common = nodes.iter().map(|n| n.main_height()).min().unwrap();
    assert!(main_common >= 3, "main chain reached only {main_common}");
    for h in [1, main_common] {
        let hashes: Vec<Option<Value>> = nodes
            .iter()
            .map(|n| n.main_block(h).map(|b| b["hash"].clone()))
            .collect();
        assert!(hashes[0].is_some());
        assert!(
            hashes.iter().all(|x| *x == hashes[0]),
            "main block {h} differs: {hashes:?}\n{}",
            n2.log_tail()
        );
    }
    let tx_common = nodes.iter().map(|n| n.height()).min().unwrap();
    let hashes: Vec<Option<String>> = nodes.iter().map(|n| n.block_hash(tx_common)).collect();
    assert!(
        hashes.iter().all(|x| x.is_some() && *x == hashes[0]),
        "transfer block {tx_common} differs: {hashes:?}"
    );

    // Each node's transfer chain imported exactly the payouts of the main blocks it anchors,
    // and genesis + imported − burned = balances + stakes (every account that can hold coins
    // here: the genesis allocations and the main chain's payees).
    let genesis_total = u128::from(d.spec.total_supply().unwrap().base_units());
    let mut accounts: BTreeSet<String> =
        d.spec.allocations.iter().map(|a| address(&a.key)).collect();
    accounts.insert(address(&d.validator.public()));
    accounts.extend(d.evaluators.iter().map(|k| address(&k.public())));
    accounts.extend(d.optimizers.iter().map(|k| address(&k.public())));
    for n in nodes {
        let (info, balances) = wait_until(&format!("{} stable read", n.name), 30, || {
            let before = n.info()?;
            let b: u128 = accounts.iter().map(|a| n.balance(a)).sum();
            let after = n.info()?;
            (before["height"] == after["height"]).then_some((after, b))
        });
        let anchored = info["main_anchor"]["height"].as_u64().unwrap();
        let paid: u128 = main_blocks(n, anchored)
            .iter()
            .flat_map(|b| b["coinbase"].as_array().cloned().unwrap_or_default())
            .map(|p| amount(&p["amount"]))
            .sum();
        assert_eq!(
            amount(&info["imported_from_main"]),
            paid,
            "imports on {}",
            n.name
        );
        assert_eq!(
            balances + amount(&info["staked"]) + amount(&info["in_channels"]),
            genesis_total + paid - amount(&info["burned"]),
            "supply on {}",
            n.name
        );
    }
    assert!(
        main_blocks(&n0, main_common)
            .iter()
            .any(|b| b["coinbase"].as_array().is_some_and(|c| !c.is_empty())),
        "the main chain paid rewards"
    );
}
