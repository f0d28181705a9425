//! Real libp2p nodes in one process over loopback TCP: gossip is delivered and relayed,
//! requests are answered, a peer that keeps sending invalid or oversize messages is banned, and
//! a newcomer whose only bootstrap peer is full still finds the network, a node flooded
//! with inbound connections keeps (and after a restart, finds again) the honest peers it chose,
//! and a flood of gossip from many peers ends in their bans while honest gossip still arrives.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use doin_net::{Multiaddr, NetConfig, NetHandle, Network, Service, Topic, Verdict};
use libp2p::identity::Keypair;
use std::time::Duration;
use tokio::sync::watch;

struct TestNode {
    handle: NetHandle,
    gossip: tokio::sync::mpsc::Receiver<doin_net::GossipMessage>,
    requests: tokio::sync::mpsc::Receiver<doin_net::InboundRequest>,
}

async fn start(bootstrap: Vec<Multiaddr>, stop: &watch::Receiver<bool>) -> TestNode {
    start_with(bootstrap, stop, |_| {}).await
}

async fn start_with(
    bootstrap: Vec<Multiaddr>,
    stop: &watch::Receiver<bool>,
    tune: impl FnOnce(&mut NetConfig),
) -> TestNode {
    start_keyed(Keypair::generate_ed25519(), bootstrap, stop, tune).await
}

async fn start_keyed(
    key: Keypair,
    bootstrap: Vec<Multiaddr>,
    stop: &watch::Receiver<bool>,
    tune: impl FnOnce(&mut NetConfig),
) -> TestNode {
    let mut cfg = NetConfig::new("testnet", vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()]);
    cfg.bootstrap = bootstrap;
    tune(&mut cfg);
    let registry = prometheus::Registry::new();
    let mut net = Network::new(cfg, key, &registry).unwrap();
    let gossip = net.subscribe(Topic::TxTransactions).unwrap();
    let requests = net.serve(Service::TxSync);
    let handle = net.handle();
    tokio::spawn(net.run(stop.clone()));
    // Wait for the listen address.
    for _ in 0..100 {
        if !handle.listen_addrs().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    TestNode {
        handle,
        gossip,
        requests,
    }
}

/// A node that only publishes: not subscribed to the topic, it sends each message to peers
/// that are, whether or not they keep it in their mesh (as a flooder that ignores the mesh
/// would).
async fn start_publisher(bootstrap: Vec<Multiaddr>, stop: &watch::Receiver<bool>) -> NetHandle {
    let mut cfg = NetConfig::new("testnet", vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()]);
    cfg.bootstrap = bootstrap;
    let registry = prometheus::Registry::new();
    let net = Network::new(cfg, Keypair::generate_ed25519(), &registry).unwrap();
    let handle = net.handle();
    tokio::spawn(net.run(stop.clone()));
    handle
}

async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..300 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Publishes until the receiver gets it (gossip meshes form a heartbeat after connecting).
async fn try_publish(
    from: &NetHandle,
    to: &mut TestNode,
    data: Vec<u8>,
    tries: usize,
) -> Option<doin_net::GossipMessage> {
    for _ in 0..tries {
        from.publish(Topic::TxTransactions, data.clone())
            .await
            .unwrap();
        if let Ok(Some(m)) =
            tokio::time::timeout(Duration::from_millis(200), to.gossip.recv()).await
        {
            return Some(m);
        }
    }
    None
}

async fn publish_until_received(
    from: &NetHandle,
    to: &mut TestNode,
    data: Vec<u8>,
) -> doin_net::GossipMessage {
    try_publish(from, to, data, 100)
        .await
        .expect("gossip never arrived")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_requests_and_bans_between_real_peers() {
    let (stop_tx, stop) = watch::channel(false);
    let mut a = start(vec![], &stop).await;
    let a_addr = a.handle.listen_addrs()[0].clone();
    let b = start(vec![a_addr.clone()], &stop).await;
    let mut c = start(vec![a_addr], &stop).await;
    wait_for("both peers connected to a", || {
        a.handle.connected_peers().len() == 2
    })
    .await;

    // b publishes; a receives, accepts, and relays it to c. a relays to the peers in its mesh
    // for the topic when it accepts, and c joins that mesh at a heartbeat after connecting
    // (later on a loaded machine): until then an accepted message does not reach c, so each
    // try is a fresh message.
    let mut sent = Vec::new();
    let mut relayed = None;
    for try_no in 0..20 {
        let data = format!("tx-1.{try_no}").into_bytes();
        let m = publish_until_received(&b.handle, &mut a, data.clone()).await;
        assert_eq!(m.data, data);
        assert_eq!(m.source, b.handle.local_peer_id());
        a.handle.judge(&m, Verdict::Accept).await;
        sent.push(data);
        if let Ok(got) = tokio::time::timeout(Duration::from_secs(2), c.gossip.recv()).await {
            relayed = got;
            break;
        }
    }
    let relayed = relayed.expect("relayed to c");
    assert!(sent.contains(&relayed.data), "{:?}", relayed.data);

    // Request-response: c asks a; a answers.
    let a_id = a.handle.local_peer_id();
    let server = tokio::spawn(async move {
        let req = a.requests.recv().await.unwrap();
        let mut answer = req.data.clone();
        answer.reverse();
        req.reply.send(Ok(answer)).unwrap();
        let req = a.requests.recv().await.unwrap();
        req.reply.send(Err("no such block".into())).unwrap();
        a
    });
    let answer = c
        .handle
        .request(a_id, Service::TxSync, b"abc".to_vec())
        .await
        .unwrap();
    assert_eq!(answer, b"cba");
    let err = c
        .handle
        .request(a_id, Service::TxSync, b"x".to_vec())
        .await
        .unwrap_err();
    assert_eq!(err, doin_net::RequestError::Remote("no such block".into()));
    // A service a does not offer is an error answer, not a hang.
    let err = c
        .handle
        .request(a_id, Service::MainSync, b"x".to_vec())
        .await
        .unwrap_err();
    assert!(matches!(err, doin_net::RequestError::Remote(_)), "{err:?}");
    let mut a = server.await.unwrap();

    // c sends oversize messages: each costs 50 points; two and it is banned by a.
    let c_id = c.handle.local_peer_id();
    let big = vec![7u8; Topic::TxTransactions.max_bytes() + 1];
    for i in 0..50u8 {
        let mut data = big.clone();
        data[0] = i;
        c.handle.publish(Topic::TxTransactions, data).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        if !a.handle.connected_peers().contains(&c_id) {
            break;
        }
    }
    wait_for("c disconnected by a", || {
        !a.handle.connected_peers().contains(&c_id)
    })
    .await;
    let view = a.handle.peers().await.unwrap();
    let c_view = view
        .peers
        .iter()
        .find(|p| p.peer_id == c_id.to_string())
        .expect("a remembers the banned peer");
    assert!(c_view.banned_for_secs.is_some(), "{c_view:?}");
    assert!(!c_view.connected);
    // The honest peer is unaffected and gossip still flows.
    assert!(a
        .handle
        .connected_peers()
        .contains(&b.handle.local_peer_id()));
    let m = publish_until_received(&b.handle, &mut a, b"tx-2".to_vec()).await;
    a.handle.judge(&m, Verdict::Accept).await;
    // The banned peer cannot come back: its redial is refused.
    let _ = c.handle.dial(a.handle.listen_addrs()[0].clone()).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!a.handle.connected_peers().contains(&c_id));

    // Invalid (rejected) messages also end in a ban: b sends garbage a rejects.
    let b_id = b.handle.local_peer_id();
    for i in 0..20u8 {
        let Some(m) = try_publish(&b.handle, &mut a, vec![0xff, i], 20).await else {
            break;
        };
        a.handle.judge(&m, Verdict::Reject).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        if !a.handle.connected_peers().contains(&b_id) {
            break;
        }
    }
    wait_for("b disconnected after garbage", || {
        !a.handle.connected_peers().contains(&b_id)
    })
    .await;
    drop(b.requests);
    let _ = stop_tx.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_whose_only_bootstrap_peer_is_full_finds_its_peers_through_it() {
    let (stop_tx, stop) = watch::channel(false);
    // The full node keeps two connections, none reserved for outbound, and lets a newcomer stay
    // three seconds.
    let full = start_with(vec![], &stop, |c| {
        c.max_connections = 2;
        c.outbound_reserved = 0;
        c.newcomer_slots = 2;
        c.newcomer_grace = Duration::from_secs(3);
    })
    .await;
    let full_id = full.handle.local_peer_id();
    let addr = full.handle.listen_addrs()[0].clone();
    let a = start(vec![addr.clone()], &stop).await;
    let b = start(vec![addr.clone()], &stop).await;
    wait_for("the full node to keep its two peers", || {
        full.handle.connected_peers().len() == 2
    })
    .await;
    let newcomer = start(vec![addr], &stop).await;
    let newcomer_id = newcomer.handle.local_peer_id();
    let (a_id, b_id) = (a.handle.local_peer_id(), b.handle.local_peer_id());
    // Refused outright it would know nobody; admitted for a short stay, it learns the full
    // node's peers from the DHT and dials them.
    wait_for("the newcomer to reach the full node's peers", || {
        let peers = newcomer.handle.connected_peers();
        peers.contains(&a_id) && peers.contains(&b_id)
    })
    .await;
    // The full node never counted the newcomer among its peers, and lets it go when its stay
    // ends; the newcomer keeps the peers it found.
    wait_for("the full node to close the newcomer's connection", || {
        !newcomer.handle.connected_peers().contains(&full_id)
    })
    .await;
    let kept = full.handle.connected_peers();
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(!kept.contains(&newcomer_id));
    let peers = newcomer.handle.connected_peers();
    assert!(peers.contains(&a_id) && peers.contains(&b_id), "{peers:?}");
    let _ = stop_tx.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_told_of_one_peer_finds_others_through_kademlia() {
    let (stop_tx, stop) = watch::channel(false);
    // A chain: each node is told only of the node started before it.
    let mut nodes: Vec<TestNode> = Vec::new();
    for i in 0..10 {
        let bootstrap = match nodes.last() {
            Some(prev) => vec![prev.handle.listen_addrs()[0].clone()],
            None => Vec::new(),
        };
        let node = start(bootstrap, &stop).await;
        if i > 0 {
            wait_for("the new node to reach the one before it", || {
                !node.handle.connected_peers().is_empty()
            })
            .await;
        }
        nodes.push(node);
    }
    let last = &nodes[9];
    let told = nodes[8].handle.local_peer_id();
    // Kademlia's k here: at least five peers, four of which it was never told of.
    wait_for("the last node to find at least five peers", || {
        last.handle.connected_peers().len() >= 5
    })
    .await;
    let found = last.handle.connected_peers();
    assert!(
        found.iter().filter(|p| **p != told).count() >= 4,
        "{found:?}"
    );
    let _ = stop_tx.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_finds_the_peers_it_remembered_without_any_bootstrap_peer() {
    let (stop_tx, stop) = watch::channel(false);
    let a = start(vec![], &stop).await;
    let a_id = a.handle.local_peer_id();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("net").join("known_peers");
    let (stop_b_tx, stop_b) = watch::channel(false);
    let f = file.clone();
    let b = start_with(
        vec![a.handle.listen_addrs()[0].clone()],
        &stop_b,
        move |c| c.known_peers = Some(f),
    )
    .await;
    wait_for("the node to reach its bootstrap peer", || {
        b.handle.connected_peers().contains(&a_id)
    })
    .await;
    // Stopping saves the peers it dialled, and the one it was connected to as an anchor.
    let _ = stop_b_tx.send(true);
    wait_for("the list of known peers to be saved", || file.exists()).await;
    let saved = doin_net::known_peers::load(&file);
    assert_eq!(saved.anchors().len(), 1, "{saved:?}");
    // Started again with no bootstrap peer at all, it dials its anchor.
    let (_stop_c_tx, stop_c) = watch::channel(false);
    let f = file.clone();
    let again = start_with(vec![], &stop_c, move |c| c.known_peers = Some(f)).await;
    wait_for("the restarted node to reach its anchor", || {
        again.handle.connected_peers().contains(&a_id)
    })
    .await;
    let _ = stop_tx.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_inbound_peers_cannot_push_out_the_outbound_peers_even_across_a_restart() {
    let (stop_tx, stop) = watch::channel(false);
    let honest = [start(vec![], &stop).await, start(vec![], &stop).await];
    let honest_ids: Vec<_> = honest.iter().map(|h| h.handle.local_peer_id()).collect();
    let honest_addrs: Vec<Multiaddr> = honest
        .iter()
        .map(|h| h.handle.listen_addrs()[0].clone())
        .collect();
    // The victim keeps six peers, two slots reserved for peers it dials, on a fixed port and
    // key so that the attackers can find it again after its restart.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let key = Keypair::generate_ed25519();
    let victim_id = key.public().to_peer_id();
    let dir = tempfile::tempdir().unwrap();
    let known = dir.path().join("known_peers");
    let victim_cfg = |known: std::path::PathBuf| {
        move |c: &mut NetConfig| {
            c.listen = vec![format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap()];
            c.max_connections = 6;
            c.outbound_reserved = 2;
            c.newcomer_slots = 2;
            c.newcomer_grace = Duration::from_secs(2);
            c.known_peers = Some(known);
        }
    };
    let (stop_v_tx, stop_v) = watch::channel(false);
    let victim = start_keyed(key.clone(), vec![], &stop_v, victim_cfg(known.clone())).await;
    let victim_addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}/p2p/{victim_id}")
        .parse()
        .unwrap();
    // Twelve attackers dial the victim first, and keep redialling it.
    let mut attackers = Vec::new();
    for _ in 0..12 {
        attackers.push(start(vec![victim_addr.clone()], &stop).await);
    }
    let attacker_ids: Vec<_> = attackers.iter().map(|a| a.handle.local_peer_id()).collect();
    let count_attackers =
        |peers: &[libp2p::PeerId]| peers.iter().filter(|p| attacker_ids.contains(p)).count();
    wait_for("the attackers to fill the victim's inbound slots", || {
        count_attackers(&victim.handle.connected_peers()) >= 4
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Inbound stops at 6 − 2: the two reserved slots are left for peers the victim dials.
    assert_eq!(count_attackers(&victim.handle.connected_peers()), 4);
    for addr in &honest_addrs {
        victim.handle.dial(addr.clone()).await.unwrap();
    }
    wait_for("the victim to hold the two honest peers it dialled", || {
        let p = victim.handle.connected_peers();
        honest_ids.iter().all(|h| p.contains(h))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let peers = victim.handle.connected_peers();
    assert!(honest_ids.iter().all(|h| peers.contains(h)), "{peers:?}");
    assert!(
        peers.len() <= 6 && count_attackers(&peers) <= 4,
        "{peers:?}"
    );

    // Restarted with no bootstrap peer while the attackers keep dialling, it dials the
    // anchors it saved and holds both honest peers again.
    let _ = stop_v_tx.send(true);
    drop(victim);
    wait_for("the victim's anchors to be saved", || {
        doin_net::known_peers::load(&known).anchors().len() == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_stop_v2_tx, stop_v2) = watch::channel(false);
    let mut victim = start_keyed(key, vec![], &stop_v2, victim_cfg(known.clone())).await;
    wait_for("the restarted victim to hold both honest peers", || {
        let p = victim.handle.connected_peers();
        honest_ids.iter().all(|h| p.contains(h))
    })
    .await;
    let peers = victim.handle.connected_peers();
    assert!(
        peers.len() <= 6 && count_attackers(&peers) <= 4,
        "{peers:?}"
    );
    // And it still hears the honest network.
    let mut got = None;
    for n in 0u32..100 {
        got = try_publish(&honest[0].handle, &mut victim, n.to_le_bytes().repeat(8), 1).await;
        if got.is_some() {
            break;
        }
    }
    assert!(
        got.is_some(),
        "gossip from an honest peer never reached the victim"
    );
    let _ = stop_tx.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_gossip_from_many_peers_is_contained_and_honest_gossip_still_arrives() {
    let (stop_tx, stop) = watch::channel(false);
    // The victim allows each peer 20 messages a second and a burst of 100 (a low limit, so
    // that the flooders of one process on a small machine clearly exceed it).
    const RATE: usize = 20;
    const BURST: usize = 100;
    let mut victim = start_with(vec![], &stop, |c| {
        c.policy.messages_per_second = RATE as u32;
        c.policy.message_burst = BURST as u32;
    })
    .await;
    let addr = victim.handle.listen_addrs()[0].clone();
    let honest = start(vec![addr.clone()], &stop).await;
    // Four peers send messages the victim's service finds invalid; four send messages it
    // merely ignores (valid-looking noise), far above the rate limit.
    let mut invalid = Vec::new();
    let mut noise = Vec::new();
    for i in 0..8 {
        let f = start_publisher(vec![addr.clone()], &stop).await;
        if i < 4 {
            invalid.push(f);
        } else {
            noise.push(f);
        }
    }
    wait_for("all nine peers connected to the victim", || {
        victim.handle.connected_peers().len() == 9
    })
    .await;
    // The honest peer's mesh must include the victim before the flood starts.
    let first = publish_until_received(&honest.handle, &mut victim, b"honest-0".to_vec()).await;
    victim.handle.judge(&first, Verdict::Accept).await;

    let invalid_ids: Vec<_> = invalid.iter().map(|f| f.local_peer_id()).collect();
    let noise_ids: Vec<_> = noise.iter().map(|f| f.local_peer_id()).collect();
    let honest_id = honest.handle.local_peer_id();
    // Each flooder publishes without pause until the test ends.
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for (k, f) in invalid.iter().chain(noise.iter()).enumerate() {
        let h = f.clone();
        let (stop, sent) = (stop.clone(), sent.clone());
        tokio::spawn(async move {
            for n in 0.. {
                if *stop.borrow() {
                    break;
                }
                let data = format!("flood-{k}-{n}").into_bytes();
                if h.publish(Topic::TxTransactions, data).await.is_err() {
                    break;
                }
                sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n % 50 == 0 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        });
    }
    let h = honest.handle.clone();
    tokio::spawn(async move {
        for n in 1..=30 {
            let _ = h
                .publish(Topic::TxTransactions, format!("honest-{n}").into_bytes())
                .await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });

    // The victim's service: rejects what the invalid peers send, ignores the noise, accepts
    // the honest peer's messages.
    let mut handed = std::collections::HashMap::new();
    let mut honest_seen = std::collections::BTreeSet::new();
    let flood_start = tokio::time::Instant::now();
    let deadline = flood_start + Duration::from_secs(40);
    while tokio::time::Instant::now() < deadline && honest_seen.len() < 30 {
        let Ok(Some(m)) =
            tokio::time::timeout(Duration::from_millis(500), victim.gossip.recv()).await
        else {
            continue;
        };
        *handed.entry(m.source).or_insert(0usize) += 1;
        let verdict = if invalid_ids.contains(&m.source) {
            Verdict::Reject
        } else if noise_ids.contains(&m.source) {
            Verdict::Ignore
        } else {
            if m.source == honest_id {
                honest_seen.insert(m.data.clone());
            }
            Verdict::Accept
        };
        victim.handle.judge(&m, verdict).await;
    }
    assert_eq!(
        honest_seen.len(),
        30,
        "every honest message arrived during the flood"
    );
    // Every flooder ends banned: the invalid ones by their rejections, the noisy ones by the
    // rate limit.
    for _ in 0..100 {
        let connected = victim.handle.connected_peers();
        if invalid_ids
            .iter()
            .chain(&noise_ids)
            .all(|f| !connected.contains(f))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let counts: Vec<usize> = invalid_ids
        .iter()
        .chain(&noise_ids)
        .map(|f| handed.get(f).copied().unwrap_or(0))
        .collect();
    let sent = sent.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("flooders published {sent} messages; handed to the service per flooder: {counts:?}");
    let view = victim.handle.peers().await.unwrap();
    for f in invalid_ids.iter().chain(&noise_ids) {
        let entry = view.peers.iter().find(|p| p.peer_id == f.to_string());
        assert!(
            entry.is_some_and(|p| p.banned_for_secs.is_some()),
            "{f} is banned: {entry:?}; handed per flooder: {counts:?}"
        );
    }
    assert!(victim.handle.connected_peers().contains(&honest_id));
    // What reached the service is bounded by the mechanisms, not by what was sent: an invalid
    // peer is banned after four rejections (a few more are in flight while the verdicts
    // travel); a noisy one gets no more than its burst and its rate until its excess (2 points
    // a message) bans it.
    for f in &invalid_ids {
        let n = handed.get(f).copied().unwrap_or(0);
        assert!(
            n <= 20,
            "{n} messages of an invalid peer reached the service"
        );
    }
    let secs = usize::try_from(flood_start.elapsed().as_secs()).unwrap() + 1;
    for f in &noise_ids {
        let n = handed.get(f).copied().unwrap_or(0);
        assert!(
            n <= BURST + RATE * secs,
            "{n} messages of a noisy peer reached the service in {secs} s"
        );
    }
    let _ = stop_tx.send(true);
}
