//! A peer that misbehaves on purpose, for the multi-process network test: it joins a network
//! through one bootstrap peer and keeps publishing undecodable transactions, undecodable
//! compact blocks and oversize messages. Honest nodes must ban it and carry on.
//!
//! Usage: `misbehaving-peer <network> <bootstrap multiaddr>`. Prints its peer id on the first
//! line of stdout, then runs until killed.

use doin_net::{identity::Keypair, NetConfig, Network, Topic};
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let (Some(network), Some(bootstrap)) = (args.next(), args.next()) else {
        return Err("usage: misbehaving-peer <network> <bootstrap multiaddr>".into());
    };
    let listen = "/ip4/127.0.0.1/tcp/0".parse().map_err(|e| format!("{e}"))?;
    let mut cfg = NetConfig::new(&network, vec![listen]);
    cfg.bootstrap = vec![bootstrap.parse().map_err(|e| format!("bootstrap: {e}"))?];
    let registry = doin_telemetry::Metrics::new();
    let mut net = Network::new(cfg, Keypair::generate_ed25519(), registry.registry())
        .map_err(|e| e.to_string())?;
    // Subscribing puts us in the topics' meshes, so what we publish is delivered.
    let _txs = net
        .subscribe(Topic::TxTransactions)
        .map_err(|e| e.to_string())?;
    let _blocks = net
        .subscribe(Topic::TxCompactBlocks)
        .map_err(|e| e.to_string())?;
    let handle = net.handle();
    println!("{}", handle.local_peer_id());
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(net.run(stop));
    let mut i: u64 = 0;
    loop {
        i += 1;
        let mut junk = b"not a transaction ".to_vec();
        junk.extend_from_slice(&i.to_le_bytes());
        let _ = handle.publish(Topic::TxTransactions, junk.clone()).await;
        let _ = handle.publish(Topic::TxCompactBlocks, junk).await;
        let mut big = vec![0xA5u8; Topic::TxTransactions.max_bytes() + 1];
        big[..8].copy_from_slice(&i.to_le_bytes());
        let _ = handle.publish(Topic::TxTransactions, big).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
