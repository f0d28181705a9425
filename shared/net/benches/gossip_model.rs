//! A discrete-event model of the network's gossip at internet scale: how long transactions and
//! blocks take to reach every node, and what each node's uplink carries, at 1 000 and 10 000
//! nodes — sizes no machine here can run as real processes.
//!
//! `cargo bench -p doin-net --bench gossip_model [-- NODES TX_PER_SECOND SECONDS]` (default: 1 000
//! and then 10 000 nodes, 100 transfers per second for 10 s, one block in the middle).
//!
//! What is modelled: each topic's mesh as a random graph of the configured degree
//! ([`doin_net::Topic::mesh`]); one-way link latency drawn per link; each node's uplink as a
//! queue of the given bandwidth (copies leave one after another); validation before relaying
//! (a node relays what it has judged, as the node does); every copy's bytes (payload plus a
//! fixed envelope), duplicates included; lazy gossip (message ids to peers outside the mesh each
//! heartbeat) and IDONTWANT as bytes, not as events. Every constant is one named below with where
//! it comes from. What is not modelled: packet loss and retransmission, peers that leave, lazy
//! repair of a message the mesh did not deliver (the mesh here is connected, so every node gets
//! every message through it), congestion beyond one node's uplink, CPU shared between
//! validation and other work. The figures are a projection to compare designs, not a promise.
//!
//! Calibration: run with `-- 50 20 10 --loopback` to model the in-process benchmark
//! (`benches/gossip.rs`: 50 nodes, 1 KiB messages, no latency, no bandwidth limit) and compare
//! its amplification with the one measured there.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use doin_net::Topic;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Bytes a message copy costs on the wire beyond its payload: gossipsub's envelope (author id,
/// sequence number, signature, topic name), Yamux and Noise framing, TCP/IP headers.
const ENVELOPE_BYTES: u64 = 230;
/// A gossip message id (a 32-byte hash) inside an IHAVE or IDONTWANT, with its framing.
const ID_BYTES: u64 = 34;
/// Peers outside the mesh told each heartbeat which ids a node has seen (gossipsub's default).
const LAZY_PEERS: u64 = 6;
/// Heartbeats whose ids each IHAVE repeats (gossipsub's `history_gossip`).
const HISTORY_GOSSIP: u64 = 3;
/// Messages above this size are announced as unwanted to mesh peers once received.
const IDONTWANT_THRESHOLD: u64 = 1000;
/// A signed transfer (`docs/transactions.md`).
const TX_BYTES: u64 = 196;
/// Judging a gossiped transfer before relaying it: BIP340 verification (40.6 µs per transfer in
/// `docs/benchmarks.md`) and the mempool's checks.
const TX_VALIDATE_US: u64 = 60;
/// A compact block: header with the commit certificate of a few validators, proposer signature,
/// and a 6-byte short id per transaction.
const BLOCK_HEADER_BYTES: u64 = 900;
const SHORT_ID_BYTES: u64 = 6;
/// Importing a block before relaying it, per transaction (67.0 µs per transfer, median import
/// round in `docs/benchmarks.md`), plus a fixed part.
const BLOCK_IMPORT_US_PER_TX: u64 = 67;
const BLOCK_IMPORT_FIXED_US: u64 = 2_000;

#[derive(Clone, Copy)]
struct Scenario {
    nodes: usize,
    tx_per_second: u64,
    seconds: u64,
    /// One-way latency of a link, drawn uniformly per link.
    latency_us: (u64, u64),
    /// Each node's upload bandwidth (bytes per second); 0 = unlimited.
    uplink_bytes_per_second: u64,
    /// Payload of each transaction message (the loopback calibration uses 1 KiB).
    tx_bytes: u64,
    tx_validate_us: u64,
    with_block: bool,
}

struct Mesh {
    /// Each node's mesh peers with the link's one-way latency.
    links: Vec<Vec<(u32, u32)>>,
}

impl Mesh {
    /// A random graph in which every node ends with between `low` and `high` peers, aiming at
    /// `target`, as gossipsub's grafting would leave it.
    fn random(
        nodes: usize,
        target: usize,
        high: usize,
        latency: (u64, u64),
        rng: &mut StdRng,
    ) -> Mesh {
        let mut links: Vec<Vec<(u32, u32)>> = vec![Vec::new(); nodes];
        for a in 0..nodes {
            let mut tries = 0;
            while links[a].len() < target && tries < 64 * target {
                tries += 1;
                let b = rng.gen_range(0..nodes);
                if b == a
                    || links[b].len() >= high
                    || links[a].iter().any(|(p, _)| *p as usize == b)
                {
                    continue;
                }
                let lat = rng.gen_range(latency.0..=latency.1) as u32;
                links[a].push((b as u32, lat));
                links[b].push((a as u32, lat));
            }
        }
        Mesh { links }
    }

    fn mean_degree(&self) -> f64 {
        self.links.iter().map(Vec::len).sum::<usize>() as f64 / self.links.len() as f64
    }
}

/// A copy arriving: (time in µs, sequence for a stable order, node, message, sender —
/// `u32::MAX` for the publisher's own publication).
type Arrival = (u64, u64, u32, u32, u32);

struct Message {
    published_at: u64,
    bytes: u64,
    validate_us: u64,
    block: bool,
}

#[derive(Default)]
struct Outcome {
    /// Delay from publication to each node's first copy, transactions and blocks apart.
    tx_delays: Vec<u64>,
    block_delays: Vec<u64>,
    /// Bytes every node sent, summed over all nodes (each byte sent is also received).
    bytes_sent: u64,
    max_node_bytes: u64,
    payload_delivered: u64,
    copies: u64,
}

fn run(s: Scenario, seed: u64) -> (Outcome, f64, f64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let tx_mesh = Topic::TxTransactions.mesh();
    let block_mesh = Topic::TxCompactBlocks.mesh();
    let txs = Mesh::random(
        s.nodes,
        tx_mesh.target,
        tx_mesh.high,
        s.latency_us,
        &mut rng,
    );
    let blocks = Mesh::random(
        s.nodes,
        block_mesh.target,
        block_mesh.high,
        s.latency_us,
        &mut rng,
    );
    let mut messages: Vec<(Message, usize)> = Vec::new();
    let tx_count = s.tx_per_second * s.seconds;
    let spacing = 1_000_000 / s.tx_per_second.max(1);
    for i in 0..tx_count {
        let m = Message {
            published_at: i * spacing,
            bytes: s.tx_bytes,
            validate_us: s.tx_validate_us,
            block: false,
        };
        messages.push((m, rng.gen_range(0..s.nodes)));
    }
    if s.with_block {
        // A block of the last 30 s of transactions, published halfway through.
        let in_block = s.tx_per_second * 30;
        messages.push((
            Message {
                published_at: s.seconds * 500_000,
                bytes: BLOCK_HEADER_BYTES + SHORT_ID_BYTES * in_block,
                validate_us: BLOCK_IMPORT_FIXED_US + BLOCK_IMPORT_US_PER_TX * in_block,
                block: true,
            },
            rng.gen_range(0..s.nodes),
        ));
    }
    let n = s.nodes;
    let mut seen = vec![false; n * messages.len()];
    let mut uplink_free = vec![0u64; n];
    let mut sent = vec![0u64; n];
    let mut out = Outcome::default();
    let mut queue: BinaryHeap<Reverse<Arrival>> = BinaryHeap::new();
    let mut seq = 0u64;
    for (id, (m, publisher)) in messages.iter().enumerate() {
        queue.push(Reverse((
            m.published_at,
            seq,
            *publisher as u32,
            id as u32,
            u32::MAX,
        )));
        seq += 1;
    }
    let send_time = |bytes: u64| -> u64 {
        if s.uplink_bytes_per_second == 0 {
            0
        } else {
            (bytes * 1_000_000).div_ceil(s.uplink_bytes_per_second)
        }
    };
    while let Some(Reverse((now, _, node, id, from))) = queue.pop() {
        let (m, _) = &messages[id as usize];
        let slot = node as usize * messages.len() + id as usize;
        if seen[slot] {
            continue;
        }
        seen[slot] = true;
        let published = from == u32::MAX;
        if !published {
            let delay = now - m.published_at;
            if m.block {
                out.block_delays.push(delay);
            } else {
                out.tx_delays.push(delay);
            }
            out.payload_delivered += m.bytes;
        }
        // The publisher sends at once; a relay judges first.
        let ready = if published { now } else { now + m.validate_us };
        let mesh = if m.block { &blocks } else { &txs };
        let wire = m.bytes + ENVELOPE_BYTES;
        for &(peer, latency) in &mesh.links[node as usize] {
            if peer == from {
                continue;
            }
            let start = ready.max(uplink_free[node as usize]);
            let done = start + send_time(wire);
            uplink_free[node as usize] = done;
            sent[node as usize] += wire;
            out.copies += 1;
            queue.push(Reverse((done + u64::from(latency), seq, peer, id, node)));
            seq += 1;
        }
        // IDONTWANT to mesh peers for large messages.
        if !published && m.bytes > IDONTWANT_THRESHOLD {
            let extra = (mesh.links[node as usize].len() as u64) * (ID_BYTES + ENVELOPE_BYTES / 4);
            sent[node as usize] += extra;
        }
    }
    // Lazy gossip: each heartbeat (1 s) every node tells LAZY_PEERS peers the ids of the last
    // HISTORY_GOSSIP heartbeats.
    let ids_per_heartbeat = s.tx_per_second * HISTORY_GOSSIP;
    let ihave = LAZY_PEERS * (ENVELOPE_BYTES + ids_per_heartbeat * ID_BYTES) * s.seconds;
    for b in sent.iter_mut() {
        *b += ihave;
    }
    out.bytes_sent = sent.iter().sum();
    out.max_node_bytes = sent.iter().copied().max().unwrap_or(0);
    (out, txs.mean_degree(), blocks.mean_degree())
}

fn pct(sorted: &[u64], p: usize) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)] as f64 / 1000.0
}

fn report(label: &str, s: Scenario) {
    let started = std::time::Instant::now();
    let (mut o, tx_degree, block_degree) = run(s, 7);
    o.tx_delays.sort_unstable();
    o.block_delays.sort_unstable();
    let expected_tx = (s.nodes as u64 - 1) * s.tx_per_second * s.seconds;
    let per_node_per_s = o.bytes_sent as f64 / s.nodes as f64 / s.seconds as f64;
    println!(
        "{label}: {} nodes (mesh degree: transactions {tx_degree:.1}, blocks {block_degree:.1}), \
         {} tx/s of {} B for {} s{}",
        s.nodes,
        s.tx_per_second,
        s.tx_bytes,
        s.seconds,
        if s.with_block { ", one block" } else { "" }
    );
    println!(
        "  transactions  delivered {} of {expected_tx}; p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        o.tx_delays.len(),
        pct(&o.tx_delays, 50),
        pct(&o.tx_delays, 99),
        o.tx_delays.last().copied().unwrap_or(0) as f64 / 1000.0
    );
    if s.with_block {
        println!(
            "  block         delivered {} of {}; p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            o.block_delays.len(),
            s.nodes - 1,
            pct(&o.block_delays, 50),
            pct(&o.block_delays, 99),
            o.block_delays.last().copied().unwrap_or(0) as f64 / 1000.0
        );
    }
    println!(
        "  uplink        {:.1} KiB/s per node on average, busiest node {:.1} KiB/s; \
         amplification {:.2} (bytes sent ÷ payload delivered)",
        per_node_per_s / 1024.0,
        o.max_node_bytes as f64 / s.seconds as f64 / 1024.0,
        o.bytes_sent as f64 / o.payload_delivered.max(1) as f64
    );
    println!(
        "  ({} copies simulated in {:.1} s)",
        o.copies,
        started.elapsed().as_secs_f64()
    );
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let loopback = args.iter().any(|a| a == "--loopback");
    let numbers: Vec<u64> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let internet = |nodes: usize| Scenario {
        nodes,
        tx_per_second: numbers.get(1).copied().unwrap_or(100),
        seconds: numbers.get(2).copied().unwrap_or(10),
        // Continental to intercontinental one-way delays.
        latency_us: (10_000, 150_000),
        // A home or small-server uplink: 10 Mbit/s.
        uplink_bytes_per_second: 1_250_000,
        tx_bytes: TX_BYTES,
        tx_validate_us: TX_VALIDATE_US,
        with_block: true,
    };
    if loopback {
        let nodes = numbers.first().copied().unwrap_or(50) as usize;
        report(
            "loopback calibration",
            Scenario {
                nodes,
                tx_per_second: numbers.get(1).copied().unwrap_or(20),
                seconds: numbers.get(2).copied().unwrap_or(10),
                latency_us: (20, 60),
                uplink_bytes_per_second: 0,
                tx_bytes: 1024,
                tx_validate_us: 20,
                with_block: false,
            },
        );
        return;
    }
    match numbers.first() {
        Some(&nodes) => report("internet", internet(nodes as usize)),
        None => {
            report("internet", internet(1_000));
            report("internet", internet(10_000));
        }
    }
}
