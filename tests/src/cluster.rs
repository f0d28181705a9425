//! Several nodes in one process: each a real [`Node`] (its own RocksDB directory, libp2p over
//! loopback, the node's own tasks) started from one devnet genesis. For the tests that need a
//! network but not separate processes: add producers and followers, cut the network between
//! groups and heal it, stop a node and start it again on its data, and wait for every node to
//! hold the same chains.
//!
//! What it cannot do, and the process tests do: a validator set of several (the BFT engine
//! runs its own network, which a partition here does not reach), and a real crash (a node
//! stopped here shuts down cleanly; `kill -9` needs a process).
//!
//! Test code: a failed step panics, which fails the test that called it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use doin_crypto::KeyPair;
use doin_node::config::NodeConfig;
use doin_node::devnet::{self, Devnet, DevnetOptions};
use doin_node::run::{Node, NodeKeys};
use std::path::Path;
use std::time::{Duration, Instant};

/// Devnet options for a test: loopback REST and p2p on free ports, no demo traffic, the given
/// block times and demo worker counts, keys and genesis under `data_dir`.
pub fn devnet_options(
    data_dir: &Path,
    block_time_ms: u64,
    main_block_time_ms: u64,
    evaluators: usize,
    optimizers: usize,
) -> DevnetOptions {
    DevnetOptions {
        data_dir: data_dir.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        p2p_listen: "/ip4/127.0.0.1/tcp/0".into(),
        block_time_ms,
        accounts: 2,
        demo_accounts: 0,
        demo: false,
        demo_interval_ms: 100,
        main_block_time_ms,
        evaluators,
        optimizers,
    }
}

/// Waits up to `secs` seconds for `done`, checking every 100 ms; panics naming `what` after.
pub async fn wait_until(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One node of a cluster: how to start it, and the node while it runs.
struct Member {
    cfg: NodeConfig,
    keys: fn(&Devnet) -> NodeKeys,
    node: Option<Node>,
}

/// Nodes of one devnet in this process.
pub struct Cluster {
    pub devnet: Devnet,
    dir: std::path::PathBuf,
    members: Vec<Member>,
}

fn copy(k: &KeyPair) -> KeyPair {
    KeyPair::from_secret_bytes(&k.secret_bytes()).unwrap()
}

/// The keys of the devnet's producer: the transfer chain's validator, the main chain's
/// producer, the demo evaluators and optimizers and the hub.
pub fn producer_keys(d: &Devnet) -> NodeKeys {
    NodeKeys {
        tx_producer: Some(copy(&d.validator)),
        main_producer: Some(copy(&d.validator)),
        evaluators: d.evaluators.iter().map(copy).collect(),
        optimizers: d.optimizers.iter().map(copy).collect(),
        hub: Some(copy(&d.hub)),
    }
}

/// A follower's keys: none (it produces nothing and runs no worker).
pub fn follower_keys(_: &Devnet) -> NodeKeys {
    NodeKeys::default()
}

impl Cluster {
    /// A devnet in `dir` with `block_time_ms` transfer blocks and `main_block_time_ms` main
    /// blocks, `evaluators` demo evaluators and `optimizers` demo optimizers; no node yet.
    pub fn new(
        dir: &Path,
        block_time_ms: u64,
        main_block_time_ms: u64,
        evaluators: usize,
        optimizers: usize,
    ) -> Cluster {
        let opts = devnet_options(
            &dir.join("devnet"),
            block_time_ms,
            main_block_time_ms,
            evaluators,
            optimizers,
        );
        Cluster {
            devnet: devnet::prepare(&opts).unwrap(),
            dir: dir.to_path_buf(),
            members: Vec::new(),
        }
    }

    /// Adds and starts a node with `keys` (producing or following), bootstrapping from the
    /// first node. Returns its index.
    pub async fn add(&mut self, keys: fn(&Devnet) -> NodeKeys) -> usize {
        let i = self.members.len();
        let mut cfg = self.devnet.config.clone();
        cfg.data_dir = self.dir.join(format!("node-{i}"));
        cfg.p2p.sync_interval_ms = 300;
        let k = keys(&self.devnet);
        cfg.producer.enabled = k.tx_producer.is_some();
        if k.tx_producer.is_none() {
            cfg.producer.keystore = None;
        }
        if k.main_producer.is_none() {
            cfg.main.producer_keystore = None;
        }
        if k.hub.is_none() {
            cfg.chains.retain(|c| c != "hub");
        }
        if let Some(first) = self.members.first().and_then(|m| m.node.as_ref()) {
            // The first node reports its listen address once its listener is up, which may
            // come a moment after it started.
            let net = first.net.as_ref().unwrap();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            let boot = loop {
                if let Some(a) = net.listen_addrs().first() {
                    break a.to_string();
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "the first node reported no listen address in 10 s"
                );
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            };
            cfg.p2p.bootstrap = vec![boot];
        }
        self.members.push(Member {
            cfg,
            keys,
            node: None,
        });
        self.start(i).await;
        i
    }

    /// The running node `i`.
    pub fn node(&self, i: usize) -> &Node {
        self.members[i].node.as_ref().expect("the node is stopped")
    }

    /// Starts node `i` again on its data (after [`Cluster::stop`]).
    pub async fn start(&mut self, i: usize) {
        let m = &self.members[i];
        let node = Node::start(
            &m.cfg,
            Some(self.devnet.spec.clone()),
            Some(self.devnet.main_spec.clone()),
            (m.keys)(&self.devnet),
            Vec::new(),
        )
        .await
        .unwrap();
        self.members[i].node = Some(node);
    }

    /// Stops node `i` (its tasks end, its database closes); its data stays for
    /// [`Cluster::start`].
    pub async fn stop(&mut self, i: usize) {
        if let Some(node) = self.members[i].node.take() {
            node.run_until(async {}).await;
        }
    }

    /// Cuts the network between the nodes of `a` and those of `b`: each refuses the others.
    pub async fn partition(&self, a: &[usize], b: &[usize]) {
        self.refuse(a, b, true).await;
    }

    /// Joins the nodes of `a` and `b` again (after [`Cluster::partition`]).
    pub async fn heal(&self, a: &[usize], b: &[usize]) {
        self.refuse(a, b, false).await;
        // Each side dials the other at once rather than on its next maintenance tick.
        for (x, y) in a.iter().flat_map(|x| b.iter().map(move |y| (*x, *y))) {
            let addr = self.node(y).net.as_ref().unwrap().listen_addrs()[0].clone();
            self.node(x).net.as_ref().unwrap().dial(addr).await.unwrap();
        }
    }

    async fn refuse(&self, a: &[usize], b: &[usize], refused: bool) {
        for (x, y) in a.iter().flat_map(|x| b.iter().map(move |y| (*x, *y))) {
            for (from, to) in [(x, y), (y, x)] {
                let net = self.node(from).net.clone().unwrap();
                let peer = self.node(to).net.as_ref().unwrap().local_peer_id();
                if refused {
                    net.refuse(peer).await.unwrap();
                } else {
                    net.accept(peer).await.unwrap();
                }
            }
        }
    }

    /// The running nodes' indexes.
    fn running(&self) -> Vec<usize> {
        (0..self.members.len())
            .filter(|i| self.members[*i].node.is_some())
            .collect()
    }

    /// Waits until every running node holds the same final transfer chain and main chain up to
    /// the lowest tip among them, with both tips at least `tx_height` and `main_height`.
    pub async fn wait_equal_tips(&self, tx_height: u64, main_height: u64, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if self.equal_tips(tx_height, main_height) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the nodes do not hold equal chains after {secs} s: {}",
                self.describe()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn equal_tips(&self, tx_height: u64, main_height: u64) -> bool {
        let nodes: Vec<&Node> = self.running().into_iter().map(|i| self.node(i)).collect();
        let tx_low = nodes
            .iter()
            .filter_map(|n| n.tx.as_ref().map(|t| t.tip().final_height))
            .min();
        let main_low = nodes
            .iter()
            .filter_map(|n| n.main.as_ref().map(|m| m.head().header.height))
            .min();
        let tx_same = tx_low.is_none_or(|h| {
            h >= tx_height
                && nodes
                    .iter()
                    .filter_map(|n| n.tx.as_ref())
                    .map(|t| t.store().header(h).ok().flatten())
                    .collect::<Vec<_>>()
                    .windows(2)
                    .all(|w| w[0].is_some() && w[0] == w[1])
        });
        let main_same = main_low.is_none_or(|h| {
            h >= main_height
                && nodes
                    .iter()
                    .filter_map(|n| n.main.as_ref())
                    .map(|m| m.block(h).ok().flatten())
                    .collect::<Vec<_>>()
                    .windows(2)
                    .all(|w| w[0].is_some() && w[0] == w[1])
        });
        tx_same && main_same
    }

    /// Each running node's tips, for a failure message.
    pub fn describe(&self) -> String {
        self.running()
            .into_iter()
            .map(|i| {
                let n = self.node(i);
                format!(
                    "node {i}: transfer final {:?}, main {:?}",
                    n.tx.as_ref().map(|t| t.tip().final_height),
                    n.main.as_ref().map(|m| m.head().header.height)
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Stops every node.
    pub async fn shutdown(mut self) {
        for i in 0..self.members.len() {
            self.stop(i).await;
        }
    }
}
