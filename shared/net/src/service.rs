//! The swarm task and the handle chain services use to talk to it.
//!
//! One task (`crate::swarm`) owns the libp2p `Swarm`; everything else sends it commands through
//! a `NetHandle` and receives gossip and requests on the channels it subscribed to before the
//! task started.

use crate::config::NetConfig;
use crate::known_peers::KnownPeers;
use crate::metrics::NetMetrics;
use crate::peers::{Misbehaviour, PeerBook};
use crate::swarm::{build_behaviour, peer_of, Behaviour, SwarmTask};
use crate::topics::{Service, Topic};
use doin_api::node::PeersView;
use futures::stream::FuturesUnordered;
use libp2p::gossipsub::{IdentTopic, MessageId, TopicHash};
use libp2p::identity::Keypair;
use libp2p::{noise, tcp, yamux, Multiaddr, PeerId, Swarm, SwarmBuilder};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, watch};

/// Messages a subscriber may fall behind by before new ones are ignored (not rejected: a slow
/// node is not the sender's fault).
const SUBSCRIBER_BUFFER: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("network setup failed: {0}")]
    Setup(String),
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: Multiaddr, reason: String },
    #[error("the network task has stopped")]
    Stopped,
}

/// Why an outbound request got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("the peer answered with an error: {0}")]
    Remote(String),
    #[error("request failed: {0}")]
    Failed(String),
    #[error("the network task has stopped")]
    Stopped,
}

/// What a chain service decided about a gossip message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "gossip relays or drops a message, and scores its sender, by this verdict"]
pub enum Verdict {
    /// Valid: relay it to other peers.
    Accept,
    /// Not wrong, but not worth relaying (duplicate, stale, not ours to judge yet).
    Ignore,
    /// Invalid: do not relay, and charge the peer that sent it.
    Reject,
}

impl Verdict {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Verdict::Accept => "accept",
            Verdict::Ignore => "ignore",
            Verdict::Reject => "reject",
        }
    }
}

/// A gossip message waiting for its verdict.
#[derive(Debug)]
pub struct GossipMessage {
    pub topic: Topic,
    /// The peer that forwarded it to us (who pays for a rejection).
    pub source: PeerId,
    pub data: Vec<u8>,
    pub(crate) id: MessageId,
}

/// A request from a peer. Answer through `reply`; dropping it sends an error to the peer.
#[derive(Debug)]
pub struct InboundRequest {
    pub peer: PeerId,
    pub data: Vec<u8>,
    pub reply: oneshot::Sender<Result<Vec<u8>, String>>,
}

pub(crate) enum Command {
    Publish {
        topic: Topic,
        data: Vec<u8>,
    },
    Judge {
        id: MessageId,
        source: PeerId,
        topic: Topic,
        verdict: Verdict,
    },
    Request {
        peer: PeerId,
        service: Service,
        data: Vec<u8>,
        reply: oneshot::Sender<Result<Vec<u8>, RequestError>>,
    },
    Penalize {
        peer: PeerId,
        what: Misbehaviour,
    },
    Peers {
        reply: oneshot::Sender<PeersView>,
    },
    Dial(Multiaddr),
    /// Refuse (or accept again) every connection with a peer.
    Refuse {
        peer: PeerId,
        refused: bool,
    },
}

/// How chain services reach the network. Cheap to clone.
#[derive(Clone)]
pub struct NetHandle {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) local_peer_id: PeerId,
    pub(crate) connected: Arc<RwLock<Vec<PeerId>>>,
    pub(crate) listen_addrs: Arc<RwLock<Vec<Multiaddr>>>,
}

impl NetHandle {
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    /// Addresses the node listens on, each ending in `/p2p/<peer id>` (give one to another
    /// node as its bootstrap peer).
    pub fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.listen_addrs.read().clone()
    }

    /// Peers with an open connection.
    pub fn connected_peers(&self) -> Vec<PeerId> {
        self.connected.read().clone()
    }

    /// Publishes to a topic. Returns once the command is queued, not when peers have it.
    pub async fn publish(&self, topic: Topic, data: Vec<u8>) -> Result<(), NetError> {
        self.commands
            .send(Command::Publish { topic, data })
            .await
            .map_err(|_| NetError::Stopped)
    }

    /// Tells gossip what the message was worth: accepted messages are relayed on, rejected
    /// ones cost the forwarding peer score.
    pub async fn judge(&self, msg: &GossipMessage, verdict: Verdict) {
        let _ = self
            .commands
            .send(Command::Judge {
                id: msg.id.clone(),
                source: msg.source,
                topic: msg.topic,
                verdict,
            })
            .await;
    }

    /// Sends a request to `peer` and waits for its answer (bounded by the request timeout).
    pub async fn request(
        &self,
        peer: PeerId,
        service: Service,
        data: Vec<u8>,
    ) -> Result<Vec<u8>, RequestError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Request {
                peer,
                service,
                data,
                reply,
            })
            .await
            .map_err(|_| RequestError::Stopped)?;
        answer.await.map_err(|_| RequestError::Stopped)?
    }

    /// Charges a peer for something found wrong outside gossip (e.g. a bad sync response).
    pub async fn penalize(&self, peer: PeerId, what: Misbehaviour) {
        let _ = self.commands.send(Command::Penalize { peer, what }).await;
    }

    pub async fn peers(&self) -> Result<PeersView, NetError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Peers { reply })
            .await
            .map_err(|_| NetError::Stopped)?;
        answer.await.map_err(|_| NetError::Stopped)
    }

    pub async fn dial(&self, addr: Multiaddr) -> Result<(), NetError> {
        self.commands
            .send(Command::Dial(addr))
            .await
            .map_err(|_| NetError::Stopped)
    }

    /// Refuses every connection with `peer` (closing those open) until [`NetHandle::accept`]:
    /// an operator's block list, apart from bans (which expire).
    pub async fn refuse(&self, peer: PeerId) -> Result<(), NetError> {
        self.commands
            .send(Command::Refuse {
                peer,
                refused: true,
            })
            .await
            .map_err(|_| NetError::Stopped)
    }

    /// Takes `peer` off the block list (a peer still banned stays refused until its ban ends).
    pub async fn accept(&self, peer: PeerId) -> Result<(), NetError> {
        self.commands
            .send(Command::Refuse {
                peer,
                refused: false,
            })
            .await
            .map_err(|_| NetError::Stopped)
    }
}

/// The network before it runs: subscribe and register services, then `run` it.
pub struct Network {
    cfg: NetConfig,
    swarm: Swarm<Behaviour>,
    handle: NetHandle,
    commands: mpsc::Receiver<Command>,
    subscribers: HashMap<Topic, mpsc::Sender<GossipMessage>>,
    servers: HashMap<Service, mpsc::Sender<InboundRequest>>,
    metrics: NetMetrics,
}

impl Network {
    /// Builds the swarm and binds the listen addresses. Nothing is dialled until `run`.
    pub fn new(
        cfg: NetConfig,
        key: Keypair,
        registry: &prometheus::Registry,
    ) -> Result<Network, NetError> {
        let setup = |e: &dyn std::fmt::Display| NetError::Setup(e.to_string());
        let metrics = NetMetrics::register(registry).map_err(|e| setup(&e))?;
        let local_peer_id = key.public().to_peer_id();
        let network = cfg.network.clone();
        let max_gossip = Topic::ALL
            .iter()
            .map(|t| t.max_bytes())
            .max()
            .unwrap_or(1 << 20);
        let cfg2 = cfg.clone();
        let swarm = SwarmBuilder::with_existing_identity(key)
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(|e| setup(&e))?
            .with_quic()
            .with_dns()
            .map_err(|e| setup(&e))?
            .with_relay_client(noise::Config::new, yamux::Config::default)
            .map_err(|e| setup(&e))?
            .with_behaviour(|key, relay_client| {
                build_behaviour(&cfg2, key, relay_client, max_gossip)
            })
            .map_err(|e| setup(&e))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(cfg.idle_timeout))
            .build();
        let mut swarm = swarm;
        // Bind now, so a port in use is an error at start rather than a silent lonely node.
        for addr in &cfg.listen {
            swarm
                .listen_on(addr.clone())
                .map_err(|e| NetError::Listen {
                    addr: addr.clone(),
                    reason: e.to_string(),
                })?;
        }
        let (tx, commands) = mpsc::channel(1024);
        let handle = NetHandle {
            commands: tx,
            local_peer_id,
            connected: Arc::new(RwLock::new(Vec::new())),
            listen_addrs: Arc::new(RwLock::new(Vec::new())),
        };
        tracing::info!(peer_id = %local_peer_id, %network, "network identity");
        Ok(Network {
            cfg,
            swarm,
            handle,
            commands,
            subscribers: HashMap::new(),
            servers: HashMap::new(),
            metrics,
        })
    }

    pub fn handle(&self) -> NetHandle {
        self.handle.clone()
    }

    /// Joins `topic`; its messages arrive on the returned channel and each needs a verdict.
    pub fn subscribe(&mut self, topic: Topic) -> Result<mpsc::Receiver<GossipMessage>, NetError> {
        let t = IdentTopic::new(topic.name(&self.cfg.network));
        self.swarm
            .behaviour_mut()
            .gossip
            .subscribe(&t)
            .map_err(|e| NetError::Setup(e.to_string()))?;
        let (tx, rx) = mpsc::channel(SUBSCRIBER_BUFFER);
        self.subscribers.insert(topic, tx);
        Ok(rx)
    }

    /// Serves a request kind; requests arrive on the returned channel.
    pub fn serve(&mut self, service: Service) -> mpsc::Receiver<InboundRequest> {
        let (tx, rx) = mpsc::channel(256);
        self.servers.insert(service, tx);
        rx
    }

    /// Dials the bootstrap peers and runs until `shutdown` turns true.
    pub async fn run(self, shutdown: watch::Receiver<bool>) -> Result<(), NetError> {
        let mut swarm = self.swarm;
        for addr in &self.cfg.bootstrap {
            if let Some(peer) = peer_of(addr) {
                swarm.behaviour_mut().kad.add_address(&peer, addr.clone());
            }
        }
        let topics: HashMap<TopicHash, Topic> = Topic::ALL
            .iter()
            .map(|t| (IdentTopic::new(t.name(&self.cfg.network)).hash(), *t))
            .collect();
        let known = match &self.cfg.known_peers {
            Some(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || crate::known_peers::load(&path))
                    .await
                    .unwrap_or_default()
            }
            None => KnownPeers::default(),
        };
        let heard = match &self.cfg.address_book {
            Some(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || {
                    crate::known_peers::load_or_set_aside(
                        &path,
                        "the address book",
                        crate::address_book::AddressBook::decode,
                    )
                })
                .await
                .ok()
                .flatten()
                .unwrap_or_else(crate::address_book::AddressBook::fresh)
            }
            None => crate::address_book::AddressBook::fresh(),
        };
        let mut task = SwarmTask {
            book: PeerBook::new(self.cfg.policy.clone()),
            last_lookup: None,
            reach: crate::reachability::Reachability::default(),
            seed_answers: mpsc::channel(1),
            seeding: false,
            last_seed_lookup: None,
            known,
            heard,
            cfg: self.cfg,
            swarm,
            handle: self.handle,
            subscribers: self.subscribers,
            servers: self.servers,
            metrics: self.metrics,
            topics,
            pending_requests: HashMap::new(),
            pending_replies: FuturesUnordered::new(),
            refused: std::collections::BTreeSet::new(),
        };
        task.dial_known_peers();
        task.dial_bootstrap();
        task.ask_seeds(std::time::Instant::now());
        task.run(self.commands, shutdown).await;
        Ok(())
    }
}
