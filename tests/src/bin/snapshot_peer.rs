//! A transfer-chain peer for the warp-sync process test: it answers every sync request by asking
//! one honest node and passing the answer on, except that, by its mode, it
//! - `corrupt-chunk`: flips a byte in every snapshot chunk it passes on;
//! - `wrong-root`: offers a snapshot 1,000,000 blocks newer than the honest one, whose head is
//!   the honest head with another height and state root in its manifest;
//! - `slow-<ms>`: passes every answer on honestly after waiting `<ms>` milliseconds.
//!
//! Usage: `snapshot-peer <network> <listen multiaddr> <honest multiaddr ending in /p2p/<id>>
//! <mode>`. Prints its peer id on the first line of stdout, then runs until killed.

use doin_net::{identity::Keypair, Multiaddr, NetConfig, NetHandle, Network, PeerId, Service};
use doin_tx_core::snapshot::SnapshotHead;
use doin_tx_node::wire::{SnapshotOffer, SyncRequest, SyncResponse};
use doin_types::{Hash256, Height};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How far above the honest snapshot the `wrong-root` offer claims to be.
const FAKE_AHEAD: u64 = 1_000_000;

#[derive(Clone, Copy)]
enum Mode {
    CorruptChunk,
    WrongRoot,
    Slow(u64),
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [network, listen, honest, mode] = args.as_slice() else {
        return Err("usage: snapshot-peer <network> <listen> <honest multiaddr> <mode>".into());
    };
    let mode = match mode.as_str() {
        "corrupt-chunk" => Mode::CorruptChunk,
        "wrong-root" => Mode::WrongRoot,
        m => match m.strip_prefix("slow-").and_then(|ms| ms.parse().ok()) {
            Some(ms) => Mode::Slow(ms),
            None => return Err(format!("unknown mode {m}")),
        },
    };
    let honest: Multiaddr = honest.parse().map_err(|e| format!("honest: {e}"))?;
    let Some(doin_net::multiaddr::Protocol::P2p(honest_id)) = honest.iter().last() else {
        return Err("the honest multiaddr must end in /p2p/<peer id>".into());
    };
    let mut cfg = NetConfig::new(network, vec![listen.parse().map_err(|e| format!("{e}"))?]);
    cfg.bootstrap = vec![honest];
    let registry = doin_telemetry::Metrics::new();
    let mut net = Network::new(cfg, Keypair::generate_ed25519(), registry.registry())
        .map_err(|e| e.to_string())?;
    let mut requests = net.serve(Service::TxSync);
    let handle = net.handle();
    println!("{}", handle.local_peer_id());
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(net.run(stop));
    let head_frames = Arc::new(Mutex::new(HashMap::new()));
    while let Some(req) = requests.recv().await {
        let (handle, head_frames) = (handle.clone(), head_frames.clone());
        tokio::spawn(async move {
            let answer = match SyncRequest::decode(&req.data) {
                Ok(r) => relay(&handle, honest_id, mode, &head_frames, r).await,
                Err(e) => Err(format!("malformed request: {e}")),
            };
            let _ = req.reply.send(answer);
        });
    }
    Ok(())
}

async fn ask(net: &NetHandle, honest: PeerId, req: &SyncRequest) -> Result<SyncResponse, String> {
    let bytes = req.encode().map_err(|e| e.to_string())?;
    let answer = net
        .request(honest, Service::TxSync, bytes)
        .await
        .map_err(|e| e.to_string())?;
    SyncResponse::decode(&answer, 32 << 20).map_err(|e| e.to_string())
}

async fn relay(
    net: &NetHandle,
    honest: PeerId,
    mode: Mode,
    head_frames: &Mutex<HashMap<Height, u32>>,
    req: SyncRequest,
) -> Result<Vec<u8>, String> {
    if let Mode::Slow(ms) = mode {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let response = match (mode, req) {
        (Mode::WrongRoot, SyncRequest::SnapshotOffers) => {
            match ask(net, honest, &SyncRequest::SnapshotOffers).await? {
                SyncResponse::SnapshotOffers(mut offers) => {
                    if let Some(newest) = offers.last().cloned() {
                        let fake = fake_head(net, honest, &newest).await?;
                        offers.push(SnapshotOffer {
                            height: fake.manifest.height,
                            ..newest
                        });
                    }
                    SyncResponse::SnapshotOffers(offers)
                }
                other => other,
            }
        }
        (Mode::WrongRoot, SyncRequest::SnapshotFrame { height, index }) if height > FAKE_AHEAD => {
            let offer = match ask(net, honest, &SyncRequest::SnapshotOffers).await? {
                SyncResponse::SnapshotOffers(offers) => offers
                    .into_iter()
                    .find(|o| o.height == height - FAKE_AHEAD)
                    .ok_or("no such snapshot")?,
                _ => return Err("no such snapshot".into()),
            };
            let frames = fake_head(net, honest, &offer)
                .await?
                .encode_frames()
                .map_err(|e| e.to_string())?;
            SyncResponse::SnapshotFrame(frames.get(index as usize).cloned().ok_or("no such frame")?)
        }
        (Mode::CorruptChunk, req) => {
            let answer = ask(net, honest, &req).await?;
            match (req, answer) {
                (_, SyncResponse::SnapshotOffers(offers)) => {
                    let mut known = head_frames.lock().map_err(|e| e.to_string())?;
                    for o in &offers {
                        known.insert(o.height, o.head_frames);
                    }
                    SyncResponse::SnapshotOffers(offers)
                }
                (
                    SyncRequest::SnapshotFrame { height, index },
                    SyncResponse::SnapshotFrame(mut bytes),
                ) if head_frames
                    .lock()
                    .map_err(|e| e.to_string())?
                    .get(&height)
                    .is_some_and(|&h| index >= h) =>
                {
                    let middle = bytes.len() / 2;
                    if let Some(b) = bytes.get_mut(middle) {
                        *b ^= 0x01;
                    }
                    SyncResponse::SnapshotFrame(bytes)
                }
                (_, other) => other,
            }
        }
        (_, req) => ask(net, honest, &req).await?,
    };
    response.encode().map_err(|e| e.to_string())
}

/// The honest head of `offer` with another height and state root in its manifest.
async fn fake_head(
    net: &NetHandle,
    honest: PeerId,
    offer: &SnapshotOffer,
) -> Result<SnapshotHead, String> {
    let mut frames = Vec::new();
    for index in 0..offer.head_frames {
        let req = SyncRequest::SnapshotFrame {
            height: offer.height,
            index,
        };
        match ask(net, honest, &req).await? {
            SyncResponse::SnapshotFrame(bytes) => frames.push(bytes),
            _ => return Err("not a frame".into()),
        }
    }
    let (first, hops) = frames.split_first().ok_or("no head")?;
    let mut head = SnapshotHead::decode_frames(first, &mut |i| {
        hops.get(i as usize)
            .cloned()
            .ok_or_else(|| doin_tx_core::snapshot::SnapshotError::EpochHeaders("missing".into()))
    })
    .map_err(|e| e.to_string())?;
    head.manifest.height += FAKE_AHEAD;
    head.manifest.state_root = Hash256([7; 32]);
    Ok(head)
}
