//! Black-box: a network of four real `doin node` processes, each with its own RocksDB, talking
//! libp2p over loopback (127.0.0.1–127.0.0.4). One produces transfer blocks; the others follow
//! by gossip and sync.
//!
//! - a transfer submitted to a follower is included on every node; that follower talks QUIC only
//!   (it listens on a `quic-v1` address and knows the producer by its QUIC address), so blocks and
//!   gossip flow over QUIC between real processes;
//! - a peer publishing garbage and oversize messages is banned, and the others keep working;
//! - a node started late catches up, headers first, then blocks by range;
//! - a node killed with SIGKILL and restarted catches up and still has every transaction it
//!   had answered as included;
//! - at the end every node has the same blocks, and supply is conserved on each.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{doin, get, wait_until, NodeProc};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const MISBEHAVING_PEER: &str = env!("CARGO_BIN_EXE_misbehaving-peer");

struct Net {
    dir: tempfile::TempDir,
    doin: PathBuf,
    genesis: PathBuf,
    validator_key: PathBuf,
    password: PathBuf,
}

impl Net {
    fn wallet(&self, key: &Path, args: &[&str]) -> Value {
        common::wallet_json(&self.doin, &self.password, key, args)
    }

    fn new_key(&self, name: &str) -> (PathBuf, String) {
        common::new_testnet_key(&self.doin, &self.password, self.dir.path(), name)
    }

    /// Writes the node's config; `produce` makes it the validator.
    fn node(&self, i: usize, produce: bool, bootstrap: &[String]) -> NodeProc {
        let producer = if produce {
            NodeProc::producer_toml(&self.validator_key, &self.password)
        } else {
            String::new()
        };
        NodeProc::tx_node(
            self.dir.path(),
            &format!("n{i}"),
            &self.genesis,
            &format!("127.0.0.{}", i + 1),
            bootstrap,
            500,
            &producer,
        )
    }

    fn start(&self, n: &mut NodeProc) {
        n.start(&self.doin);
    }
}

/// Rewrites `n`'s libp2p listen address to QUIC on the same port number, keeping TCP too if
/// `keep_tcp`.
fn listen_quic(n: &NodeProc, keep_tcp: bool) {
    let config = std::fs::read_to_string(&n.config).unwrap();
    let line = config
        .lines()
        .find(|l| l.starts_with("listen = [\"/ip4/"))
        .expect("the p2p listen line");
    let tcp = line
        .trim_start_matches("listen = [\"")
        .trim_end_matches("\"]")
        .to_string();
    let (host, port) = tcp.split_once("/tcp/").unwrap();
    let quic = format!("{host}/udp/{port}/quic-v1");
    let listen = if keep_tcp {
        format!("listen = [\"{tcp}\", \"{quic}\"]")
    } else {
        format!("listen = [\"{quic}\"]")
    };
    std::fs::write(&n.config, config.replace(line, &listen)).unwrap();
}

/// The node's listen address whose transport part contains `transport` (`/tcp/`, `/quic-v1`).
fn listen_address_over(n: &NodeProc, transport: &str) -> String {
    wait_until(&format!("{} listens over {transport}", n.name), 30, || {
        n.peers()["listen_addresses"]
            .as_array()?
            .iter()
            .filter_map(Value::as_str)
            .find(|a| a.contains(transport))
            .map(String::from)
    })
}

#[test]
fn four_processes_agree_survive_a_crash_and_shut_out_a_misbehaving_peer() {
    let _nodes = common::node_processes();
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("password");
    std::fs::write(&password, "network test\n").unwrap();
    let mut net = Net {
        doin: doin(),
        genesis: dir.path().join("genesis.json"),
        validator_key: PathBuf::new(),
        password,
        dir,
    };
    let (validator_key, validator) = net.new_key("validator");
    let (user_key, user) = net.new_key("user");
    let (_, recipient) = net.new_key("recipient");
    net.validator_key = validator_key;
    common::testnet_genesis(
        &net.doin,
        "p2p-e2e",
        &validator,
        &[(&validator, 1000), (&user, 500)],
        500,
        &net.genesis,
    );
    // Balances plus the validator's genesis stake (the public minimum, 10 000 DOIN).
    let genesis_total: u128 = (1500 + 10_000) * 100_000_000;

    // The producer first; its listen address is everyone's bootstrap peer.
    let mut n0 = net.node(0, true, &[]);
    listen_quic(&n0, true);
    net.start(&mut n0);
    let boot = listen_address_over(&n0, "/tcp/");
    assert!(
        boot.contains("/ip4/127.0.0.1/tcp/") && boot.contains("/p2p/"),
        "{boot}"
    );
    let boot_quic = listen_address_over(&n0, "/quic-v1");
    let mut n1 = net.node(1, false, std::slice::from_ref(&boot));
    // n2 speaks QUIC only: every connection it has is a QUIC connection.
    let mut n2 = net.node(2, false, std::slice::from_ref(&boot_quic));
    listen_quic(&n2, false);
    net.start(&mut n1);
    net.start(&mut n2);
    for n in [&n1, &n2] {
        wait_until(&format!("{} follows n0", n.name), 60, || {
            (n.height() >= 3).then_some(())
        });
    }

    // A transfer submitted to a follower reaches the producer by gossip and is included
    // everywhere.
    let sent = net.wallet(
        &user_key,
        &[
            "--node", &n2.rest, "send", "--to", &recipient, "--amount", "2.5",
        ],
    );
    let tx_id = sent["id"].as_str().expect("tx id").to_string();
    for n in [&n0, &n1, &n2] {
        wait_until(&format!("{} includes the transfer", n.name), 60, || {
            n.tx_status(&tx_id)
                .filter(|s| s == "included" || s == "final")
        });
    }

    // A misbehaving peer joins through n1 and is banned by it; the chain keeps moving there.
    let n1_addr = n1.listen_address();
    let mut bad = Command::new(MISBEHAVING_PEER)
        .args(["testnet", &n1_addr])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let bad_id = {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(bad.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        line.trim().to_string()
    };
    let banned = wait_until("n1 bans the misbehaving peer", 60, || {
        let peers = n1.peers();
        peers["peers"]
            .as_array()?
            .iter()
            .find(|p| p["peer_id"] == bad_id.as_str() && p["banned_for_secs"].is_u64())
            .cloned()
    });
    assert_eq!(banned["connected"], false, "{banned}");
    assert!(n1.metric("doin_net_bans_total") >= 1);
    let _ = bad.kill();
    let _ = bad.wait();
    let h1 = n1.height();
    wait_until("n1 keeps following after the ban", 60, || {
        (n1.height() >= h1 + 3).then_some(())
    });

    // A node started late catches up by range sync.
    let mut n3 = net.node(3, false, &[boot.clone(), n1_addr.clone()]);
    net.start(&mut n3);
    let target = n0.height();
    wait_until("n3 catches up", 90, || {
        (n3.height() >= target).then_some(())
    });
    let (_, sync) = get(&format!("{}/v1/node/sync", n3.rest)).unwrap();
    assert!(
        sync["tx"]["blocks_synced"].as_u64().unwrap_or(0) > 0
            && sync["tx"]["headers_synced"].as_u64().unwrap_or(0) > 0,
        "n3 synced headers first, then blocks by range: {sync}"
    );
    assert_eq!(
        n3.tx_status(&tx_id).as_deref().map(|s| s != "pending"),
        Some(true)
    );

    // n1 dies hard, the chain moves on, n1 comes back and catches up.
    n1.kill9();
    let before = n0.height();
    wait_until("n0 produces while n1 is down", 60, || {
        (n0.height() >= before + 5).then_some(())
    });
    net.start(&mut n1);
    let target = n0.height();
    wait_until("n1 catches up after restart", 90, || {
        (n1.height() >= target).then_some(())
    });
    assert!(
        matches!(n1.tx_status(&tx_id).as_deref(), Some("included" | "final")),
        "a transaction n1 answered as included before the crash is still there"
    );
    let (code, _) = get(&format!("{}/readyz", n1.rest)).unwrap();
    assert!(code == 200 || code == 206, "readyz {code}");

    // The end: the same chain everywhere and supply conserved on each node.
    let nodes = [&n0, &n1, &n2, &n3];
    let common = nodes.iter().map(|n| n.height()).min().unwrap();
    assert!(common >= 10, "only {common} blocks");
    let hashes: Vec<Option<String>> = nodes.iter().map(|n| n.block_hash(common)).collect();
    assert!(hashes[0].is_some());
    assert!(
        hashes.iter().all(|h| *h == hashes[0]),
        "tips differ at height {common}: {hashes:?}\n{}",
        n1.log_tail()
    );
    for n in nodes {
        // Read the account balances and the totals at one height (the chain is moving).
        let (info, balances) = wait_until(&format!("{} stable read", n.name), 30, || {
            let before = n.info()?;
            let b: u128 = [&validator, &user, &recipient]
                .iter()
                .map(|a| n.balance(a))
                .sum();
            let after = n.info()?;
            (before["height"] == after["height"]).then_some((after, b))
        });
        let amount = |k: &str| info[k].as_str().unwrap().parse::<u128>().unwrap();
        assert_eq!(
            balances + amount("staked") + amount("in_channels"),
            genesis_total + amount("imported_from_main") - amount("burned"),
            "supply on {}",
            n.name
        );
    }
    assert_eq!(n2.balance(&recipient), 250_000_000);
    // Followers got blocks as compact blocks, not only by range.
    assert!(
        n2.metric("doin_tx_compact_blocks_total{outcome=\"rebuilt\"}")
            + n2.metric("doin_tx_compact_blocks_total{outcome=\"fetched-missing\"}")
            > 0
    );
    let peers = n0.peers();
    assert!(
        peers["peers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["connected"] == true)
            .count()
            >= 2,
        "{peers}"
    );
}
