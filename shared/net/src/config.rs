//! Network settings. The node's TOML maps onto this; defaults suit a public node.

use crate::peers::PeerPolicy;
use libp2p::Multiaddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct NetConfig {
    /// Network name (`devnet`, `testnet`, …): part of every topic and protocol name.
    pub network: String,
    /// Addresses to listen on, e.g. `/ip4/0.0.0.0/tcp/8646` and `/ip4/0.0.0.0/udp/8646/quic-v1`.
    pub listen: Vec<Multiaddr>,
    /// Peers to dial at start and whenever the node has too few peers; each ends in `/p2p/<id>`.
    pub bootstrap: Vec<Multiaddr>,
    /// DNS seeds: domain names whose `dnsaddr` TXT records and A/AAAA records list peers,
    /// asked at start and, while the node has fewer than `target_peers`, every minute.
    pub dns_seeds: Vec<String>,
    /// Find peers on the local network by mDNS.
    pub mdns: bool,
    /// Relay connections for peers behind NAT (costs bandwidth).
    pub relay_server: bool,
    /// Probe reachability (AutoNAT) on private addresses too, for a network on a LAN or a
    /// lab's private subnets; on the internet only public addresses say anything.
    pub probe_private_addresses: bool,
    /// Connections kept, inbound and outbound together (newcomers on a short stay aside).
    pub max_connections: u32,
    /// Of `max_connections`, the slots inbound peers may not take.
    pub outbound_reserved: u32,
    /// Inbound peers kept from one IPv4 /16 or IPv6 /32 (0 = no limit; loopback and private
    /// addresses exempt).
    pub max_inbound_per_netgroup: u32,
    /// Newcomers a full node admits at once, above its limits, so that they can learn other
    /// peers' addresses from it before it closes their connection.
    pub newcomer_slots: u32,
    /// How long such a newcomer stays.
    pub newcomer_grace: Duration,
    /// Below this many peers the node keeps discovering and redialling.
    pub target_peers: usize,
    pub max_request_bytes: usize,
    pub max_response_bytes: usize,
    pub request_timeout: Duration,
    /// Idle connections are closed after this long.
    pub idle_timeout: Duration,
    pub policy: PeerPolicy,
    /// File where the peers this node dialled and kept are remembered across restarts, with
    /// the anchors dialled first at start (`None`: nothing remembered).
    pub known_peers: Option<PathBuf>,
    /// File where the addresses heard from other peers are kept across restarts (`None`:
    /// kept in memory only).
    pub address_book: Option<PathBuf>,
}

impl NetConfig {
    /// The connection limits these settings give.
    pub fn admission_limits(&self) -> crate::AdmissionLimits {
        crate::AdmissionLimits {
            max_connections: self.max_connections,
            outbound_reserved: self.outbound_reserved,
            max_inbound_per_netgroup: self.max_inbound_per_netgroup,
            newcomer_slots: self.newcomer_slots,
            newcomer_grace: self.newcomer_grace,
        }
    }

    /// Settings for `network` with the given listen addresses and defaults elsewhere.
    pub fn new(network: &str, listen: Vec<Multiaddr>) -> NetConfig {
        NetConfig {
            network: network.to_string(),
            listen,
            bootstrap: Vec::new(),
            dns_seeds: Vec::new(),
            mdns: false,
            relay_server: false,
            probe_private_addresses: false,
            max_connections: 128,
            outbound_reserved: 8,
            max_inbound_per_netgroup: 8,
            newcomer_slots: 8,
            newcomer_grace: Duration::from_secs(10),
            target_peers: 8,
            max_request_bytes: 64 * 1024,
            max_response_bytes: 16 * 1024 * 1024,
            request_timeout: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(120),
            policy: PeerPolicy::default(),
            known_peers: None,
            address_book: None,
        }
    }
}
