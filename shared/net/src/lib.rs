//! The peer-to-peer network of a DOIN node, on libp2p.
//!
//! This crate owns the libp2p swarm: transports (TCP + Noise + Yamux, QUIC, relayed
//! connections), discovery (Kademlia with a bootstrap list, mDNS on a LAN, identify), NAT
//! traversal (AutoNAT, relay client and server, DCUtR), gossip topics, one request-response
//! protocol, and the defences every public node needs: message size caps, per-peer rate limits,
//! peer scores that end in a ban, connection limits with outbound slots reserved, a short stay for
//! newcomers at a full node, and outbound address diversity.
//!
//! It knows nothing about blocks or transactions. Chain services subscribe to the topics they
//! understand, judge every message they receive (accept, ignore or reject — a rejection costs the
//! sender score) and serve the request kinds they own. A topic nobody subscribed to is simply
//! not joined, so a node that runs only some chains carries only their traffic.

// Every dependency in Cargo.toml is used (checked outside test builds, which also see the
// dev-dependencies).
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

pub mod address_book;
mod admission;
mod admission_behaviour;
mod codec;
mod config;
mod discovery;
mod eviction;
pub mod known_peers;
mod metrics;
mod nat;
mod node_key;
mod peers;
mod reachability;
mod requests;
pub mod seeds;
mod service;
mod swarm;
pub mod tasks;
mod topics;

pub use admission::{Admission, AdmissionLimits, Admitted, GraceEnded};
pub use admission_behaviour::AdmissionEvent;
pub use config::NetConfig;
pub use libp2p::{identity, multiaddr, Multiaddr, PeerId};
pub use metrics::NetMetrics;
pub use node_key::load_or_create_identity;
pub use peers::{Link, Misbehaviour, Netgroup, PeerBook, PeerPolicy};
pub use service::{
    GossipMessage, InboundRequest, NetError, NetHandle, Network, RequestError, Verdict,
};
pub use topics::{MeshDegree, Service, Topic};

/// How long gossip remembers a message it saw or sent, and refuses to send it again: a service
/// that offers a message again waits longer than this.
pub const GOSSIP_DUPLICATE_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);
