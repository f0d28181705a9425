//! Gossip propagation across an in-process network of real libp2p nodes over loopback TCP.
//!
//! `cargo bench -p doin-net --bench gossip [-- NODES MESSAGES MAX_CONNECTIONS]` (defaults 50
//! nodes, 200 messages of 1 KiB, at most 12 connections per node: with more, 50 full nodes
//! saturate this machine's 2 cores and the run measures CPU starvation, not gossip). Each node
//! dials 3 random earlier nodes and discovers more through Kademlia; after the meshes form,
//! messages are published from random nodes at 20 per second and every node accepts what it
//! receives.
//!
//! Reported: delivery (received ÷ (messages × (nodes − 1))), arrival latency p50/p99 from
//! publish to each delivery, and amplification = bytes that crossed the loopback interface
//! during the run ÷ the ideal (each payload delivered once to each other node). The loopback
//! count includes every header and every protocol's traffic (TCP/IP, Noise, Yamux, gossip
//! control messages, heartbeats, identify, Kademlia, ping), so it is an upper bound on what
//! gossip itself costs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use doin_net::{identity::Keypair, NetConfig, NetHandle, Network, Topic, Verdict};
use rand::seq::SliceRandom;
use rand::Rng;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Mutex};

const PAYLOAD: usize = 1024;

fn loopback_bytes() -> u64 {
    let text = std::fs::read_to_string("/proc/net/dev").unwrap_or_default();
    text.lines()
        .find(|l| l.trim_start().starts_with("lo:"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|rx| rx.parse().ok())
        .unwrap_or(0)
}

/// Connections established on all nodes together, by what admission made of them.
fn admissions(registries: &[prometheus::Registry]) -> std::collections::BTreeMap<String, u64> {
    let mut out = std::collections::BTreeMap::new();
    for r in registries {
        for family in r.gather() {
            if family.name() != "doin_net_admissions_total" {
                continue;
            }
            for m in family.get_metric() {
                let outcome = m
                    .get_label()
                    .iter()
                    .find(|l| l.name() == "outcome")
                    .map(|l| l.value().to_string())
                    .unwrap_or_default();
                *out.entry(outcome).or_insert(0) += m.get_counter().get_value() as u64;
            }
        }
    }
    out
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `RUST_LOG=doin_net=debug` shows what each node admits, closes and refuses.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let nodes: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(50);
    let messages: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    let max_connections: u32 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(12);
    let base = Instant::now();
    let (_stop_tx, stop) = watch::channel(false);
    let latencies = Arc::new(Mutex::new(Vec::<Duration>::new()));
    let per_node: Arc<Vec<std::sync::atomic::AtomicUsize>> = Arc::new(
        (0..nodes)
            .map(|_| std::sync::atomic::AtomicUsize::new(0))
            .collect(),
    );
    let mut handles: Vec<NetHandle> = Vec::new();
    let mut registries: Vec<prometheus::Registry> = Vec::new();
    let mut rng = rand::thread_rng();
    for i in 0..nodes {
        let mut cfg = NetConfig::new("bench", vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()]);
        let mut earlier: Vec<usize> = (0..i).collect();
        earlier.shuffle(&mut rng);
        cfg.bootstrap = earlier
            .iter()
            .take(3)
            .map(|&j| handles[j].listen_addrs()[0].clone())
            .collect();
        cfg.max_connections = max_connections;
        // A third of the slots kept for outbound, as the defaults do at a larger scale.
        cfg.outbound_reserved = max_connections / 3;
        cfg.policy.messages_per_second = 100_000;
        cfg.policy.message_burst = 100_000;
        let registry = prometheus::Registry::new();
        let mut net = Network::new(cfg, Keypair::generate_ed25519(), &registry).unwrap();
        registries.push(registry);
        let mut rx = net.subscribe(Topic::TxTransactions).unwrap();
        let handle = net.handle();
        tokio::spawn(net.run(stop.clone()));
        let h = handle.clone();
        let lat = latencies.clone();
        let counts = per_node.clone();
        tokio::spawn(async move {
            while let Some(m) = rx.recv().await {
                counts[i].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let sent = u64::from_le_bytes(m.data[..8].try_into().unwrap());
                let now = base.elapsed().as_nanos() as u64;
                lat.lock()
                    .await
                    .push(Duration::from_nanos(now.saturating_sub(sent)));
                h.judge(&m, Verdict::Accept).await;
            }
        });
        while handle.listen_addrs().is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        handles.push(handle);
    }
    // Let connections, identify, Kademlia and the gossip meshes settle.
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_secs(20) {
        if handles.iter().all(|h| h.connected_peers().len() >= 3) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let degree: usize = handles.iter().map(|h| h.connected_peers().len()).sum();
    // The background (heartbeats, pings, Kademlia, identify) over a quiet window of the same
    // length as the run, to tell what gossip of payloads costs from what an idle network costs.
    let run_length = Duration::from_millis(50 * messages as u64) + Duration::from_secs(5);
    let admissions_before = admissions(&registries);
    let idle_before = loopback_bytes();
    tokio::time::sleep(run_length).await;
    let idle_bytes = loopback_bytes().saturating_sub(idle_before);
    let lo_before = loopback_bytes();
    for n in 0..messages {
        let from = rng.gen_range(0..nodes);
        let mut data = vec![0u8; PAYLOAD];
        let sent = base.elapsed().as_nanos() as u64;
        data[..8].copy_from_slice(&sent.to_le_bytes());
        data[8..16].copy_from_slice(&(n as u64).to_le_bytes());
        handles[from]
            .publish(Topic::TxTransactions, data)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let lo_bytes = loopback_bytes().saturating_sub(lo_before);
    let admissions_after = admissions(&registries);
    let mut lat = latencies.lock().await.clone();
    lat.sort();
    let expected = messages * (nodes - 1);
    let ideal = (expected * PAYLOAD) as u64;
    println!(
        "gossip: {nodes} nodes (mean degree {:.1}), {messages} messages of {PAYLOAD} B",
        degree as f64 / nodes as f64
    );
    println!(
        "  delivery      {:.2} % ({} of {expected})",
        lat.len() as f64 * 100.0 / expected as f64,
        lat.len()
    );
    println!(
        "  latency       p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&lat, 50).as_secs_f64() * 1e3,
        percentile(&lat, 99).as_secs_f64() * 1e3,
        lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    );
    let mut short: Vec<(usize, usize, usize)> = per_node
        .iter()
        .enumerate()
        .map(|(i, c)| {
            (
                i,
                c.load(std::sync::atomic::Ordering::Relaxed),
                handles[i].connected_peers().len(),
            )
        })
        .filter(|(_, c, _)| *c * 10 < messages * 9)
        .collect();
    short.sort();
    println!("  nodes under 90 % delivery (node, received, peers): {short:?}");
    println!(
        "  amplification {:.2} (loopback bytes {lo_bytes} ÷ ideal {ideal})",
        lo_bytes as f64 / ideal as f64
    );
    println!(
        "  connections   until settled {admissions_before:?}; at the end {admissions_after:?}"
    );
    println!(
        "  background    {:.2} of it (loopback bytes {idle_bytes} in as long a quiet window)",
        idle_bytes as f64 / ideal as f64
    );
}
