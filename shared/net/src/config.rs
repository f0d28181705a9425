//! Network settings. The node's TOML maps onto this; defaults suit a public node.

use crate::peers::PeerPolicy;
use libp2p::Multiaddr;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct NetConfig {
    /// Network name (`devnet`, `testnet`, …): part of every topic and protocol name.
    pub network: String,
    /// Addresses to listen on, e.g. `/ip4/0.0.0.0/tcp/8646` and `/ip4/0.0.0.0/udp/8646/quic-v1`.
    pub listen: Vec<Multiaddr>,
    /// Peers to dial at start and whenever the node has too few peers; each ends in `/p2p/<id>`.
    pub bootstrap: Vec<Multiaddr>,
    /// Find peers on the local network by mDNS.
    pub mdns: bool,
    /// Relay connections for peers behind NAT (costs bandwidth).
    pub relay_server: bool,
    /// Established connections, all peers together.
    pub max_connections: u32,
    /// Below this many peers the node keeps discovering and redialling.
    pub target_peers: usize,
    pub max_request_bytes: usize,
    pub max_response_bytes: usize,
    pub request_timeout: Duration,
    /// Idle connections are closed after this long.
    pub idle_timeout: Duration,
    pub policy: PeerPolicy,
}

impl NetConfig {
    /// Settings for `network` with the given listen addresses and defaults elsewhere.
    pub fn new(network: &str, listen: Vec<Multiaddr>) -> NetConfig {
        NetConfig {
            network: network.to_string(),
            listen,
            bootstrap: Vec::new(),
            mdns: false,
            relay_server: false,
            max_connections: 128,
            target_peers: 8,
            max_request_bytes: 64 * 1024,
            max_response_bytes: 16 * 1024 * 1024,
            request_timeout: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(120),
            policy: PeerPolicy::default(),
        }
    }
}
