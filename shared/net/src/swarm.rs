//! The swarm itself: the combined libp2p behaviour and the task that drives it.
//!
//! The task owns the `Swarm`. It enforces the per-peer rules (size caps, rate limits, scores,
//! bans, outbound diversity, connection admission) before a message or request reaches a chain
//! service, and it is the only place that talks to libp2p directly.

use crate::address_book::Source;
use crate::admission_behaviour::{AdmissionBehaviour, AdmissionEvent};
use crate::codec::FrameCodec;
use crate::config::NetConfig;
use crate::discovery::{dial_once, with_peer};
use crate::known_peers::KnownPeers;
use crate::metrics::NetMetrics;
use crate::peers::{ip_of, Link, Misbehaviour, PeerBook};
use crate::service::{Command, GossipMessage, InboundRequest, NetHandle, RequestError, Verdict};
use crate::topics::{Service, Topic};
use doin_api::node::PeersView;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use libp2p::core::ConnectedPoint;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, MessageId, TopicHash};
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport, ResponseChannel};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::{DialError, NetworkBehaviour, SwarmEvent};
use libp2p::{
    allow_block_list, autonat, connection_limits, dcutr, identify, kad, mdns, ping, relay,
    Multiaddr, PeerId, StreamProtocol, Swarm,
};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};

#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    /// First: a behaviour after one that refuses a connection has already been handed it (the
    /// request-response behaviour records it then, and a refusal behind it leaves a connection
    /// it believes open). Admission itself records a connection only once all accepted it.
    pub(crate) admission: AdmissionBehaviour,
    pub(crate) blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    pub(crate) limits: connection_limits::Behaviour,
    pub(crate) gossip: gossipsub::Behaviour,
    pub(crate) kad: kad::Behaviour<kad::store::MemoryStore>,
    pub(crate) identify: identify::Behaviour,
    pub(crate) ping: ping::Behaviour,
    pub(crate) mdns: Toggle<mdns::tokio::Behaviour>,
    pub(crate) autonat: autonat::Behaviour,
    pub(crate) relay_client: relay::client::Behaviour,
    pub(crate) relay_server: Toggle<relay::Behaviour>,
    pub(crate) dcutr: dcutr::Behaviour,
    pub(crate) requests: request_response::Behaviour<FrameCodec>,
}

pub(crate) fn peer_of(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter().find_map(|p| match p {
        Protocol::P2p(id) => Some(id),
        _ => None,
    })
}

pub(crate) fn build_behaviour(
    cfg: &NetConfig,
    key: &Keypair,
    relay_client: relay::client::Behaviour,
    max_gossip: usize,
) -> Result<Behaviour, Box<dyn std::error::Error + Send + Sync>> {
    let peer_id = key.public().to_peer_id();
    let gossip_cfg = gossipsub::ConfigBuilder::default()
        // The transport cap sits above every topic's own cap so that an oversize message
        // reaches our checks and costs its sender score, instead of silently failing a frame.
        .max_transmit_size(max_gossip.saturating_mul(2))
        .validation_mode(gossipsub::ValidationMode::Strict)
        .duplicate_cache_time(crate::GOSSIP_DUPLICATE_WINDOW)
        .validate_messages()
        // Content-addressed ids: the same transaction relayed by two nodes is one message.
        .message_id_fn(|m: &gossipsub::Message| {
            let h = doin_crypto::tagged_hash_parts(
                "DOIN/net/gossip-id",
                &[m.topic.as_str().as_bytes(), &m.data],
            );
            MessageId::from(h.0.to_vec())
        })
        .build()?;
    let gossip_cfg = {
        let mut builder = gossipsub::ConfigBuilder::from(gossip_cfg);
        // A publisher sends to its mesh like any relay, not to every peer it has: flooding
        // the first hop costs a copy per connection and saves only part of one hop.
        builder.flood_publish(false);
        for topic in Topic::ALL {
            let mesh = topic.mesh();
            let hash = IdentTopic::new(topic.name(&cfg.network)).hash();
            builder
                .mesh_n_for_topic(mesh.target, hash.clone())
                .mesh_n_low_for_topic(mesh.low, hash.clone())
                .mesh_n_high_for_topic(mesh.high, hash.clone())
                .mesh_outbound_min_for_topic(mesh.outbound_min, hash);
        }
        builder.build()?
    };
    let gossip = gossipsub::Behaviour::new(
        gossipsub::MessageAuthenticity::Signed(key.clone()),
        gossip_cfg,
    )?;
    let kad_protocol = StreamProtocol::try_from_owned(format!("/doin/{}/kad/1", cfg.network))?;
    let mut kad = kad::Behaviour::with_config(
        peer_id,
        kad::store::MemoryStore::new(peer_id),
        kad::Config::new(kad_protocol),
    );
    kad.set_mode(Some(kad::Mode::Server));
    let mdns = if cfg.mdns {
        Some(mdns::tokio::Behaviour::new(
            mdns::Config::default(),
            peer_id,
        )?)
    } else {
        None
    };
    let relay_server = cfg
        .relay_server
        .then(|| relay::Behaviour::new(peer_id, relay::Config::default()));
    let request_protocol =
        StreamProtocol::try_from_owned(format!("/doin/{}/request/1", cfg.network))?;
    let requests = request_response::Behaviour::with_codec(
        FrameCodec {
            max_request_bytes: cfg.max_request_bytes,
            max_response_bytes: cfg.max_response_bytes,
        },
        [(request_protocol, ProtocolSupport::Full)],
        request_response::Config::default().with_request_timeout(cfg.request_timeout),
    );
    Ok(Behaviour {
        admission: AdmissionBehaviour::new(cfg.admission_limits()),
        blocked: allow_block_list::Behaviour::default(),
        limits: connection_limits::Behaviour::new(
            connection_limits::ConnectionLimits::default()
                // How many connections in all is `admission`'s to decide. Per peer: a dial
                // each way (or a relayed connection and its direct upgrade), and the AutoNAT
                // dial-back of each end, which always opens a connection of its own. The
                // maintenance closes duplicates within seconds (`PeerBook::surplus_links`).
                .with_max_established_per_peer(Some(4)),
        ),
        gossip,
        kad,
        identify: identify::Behaviour::new(
            identify::Config::new(format!("/doin/{}/1", cfg.network), key.public())
                .with_agent_version(format!("doin/{}", env!("CARGO_PKG_VERSION")))
                // A relay circuit address a private node gains later reaches its peers at
                // once, not at the next periodic identify.
                .with_push_listen_addr_updates(true),
        ),
        // A connection that stops answering pings is closed (see `on_ping`), so a peer
        // cut off without a word is dropped in seconds rather than waited on.
        ping: ping::Behaviour::new(
            ping::Config::new()
                .with_interval(PING_INTERVAL)
                .with_timeout(PING_TIMEOUT),
        ),
        mdns: Toggle::from(mdns),
        autonat: autonat::Behaviour::new(
            peer_id,
            autonat::Config {
                // A node learns whether it is reachable within a minute of start, and tries
                // again soon when no peer could probe it yet.
                boot_delay: Duration::from_secs(10),
                retry_interval: Duration::from_secs(30),
                throttle_server_period: Duration::from_secs(30),
                only_global_ips: !cfg.probe_private_addresses,
                ..autonat::Config::default()
            },
        ),
        relay_client,
        relay_server: Toggle::from(relay_server),
        dcutr: dcutr::Behaviour::new(peer_id),
        requests,
    })
}

/// Where the answer to an outbound request goes.
type RequestReply = oneshot::Sender<Result<Vec<u8>, RequestError>>;

type PendingReply = std::pin::Pin<
    Box<
        dyn std::future::Future<
                Output = (
                    ResponseChannel<Vec<u8>>,
                    Service,
                    Result<Result<Vec<u8>, String>, oneshot::error::RecvError>,
                ),
            > + Send,
    >,
>;

pub(crate) struct SwarmTask {
    pub(crate) cfg: NetConfig,
    pub(crate) swarm: Swarm<Behaviour>,
    pub(crate) handle: NetHandle,
    pub(crate) book: PeerBook,
    pub(crate) subscribers: HashMap<Topic, mpsc::Sender<GossipMessage>>,
    pub(crate) servers: HashMap<Service, mpsc::Sender<InboundRequest>>,
    pub(crate) metrics: NetMetrics,
    pub(crate) topics: HashMap<TopicHash, Topic>,
    pub(crate) pending_requests: HashMap<OutboundRequestId, (Service, RequestReply)>,
    pub(crate) pending_replies: FuturesUnordered<PendingReply>,
    /// Peers on the operator's block list (see [`NetHandle::refuse`]): a ban that ends does
    /// not let them back.
    pub(crate) refused: std::collections::BTreeSet<PeerId>,
    /// When this node last asked the DHT for more peers because it had too few.
    pub(crate) last_lookup: Option<Instant>,
    /// Peers this node dialled and kept, saved to `cfg.known_peers`.
    pub(crate) known: KnownPeers,
    /// Addresses heard from others, saved to `cfg.address_book`.
    pub(crate) heard: crate::address_book::AddressBook,
    /// Whether peers can dial this node, and its relay reservation.
    pub(crate) reach: crate::reachability::Reachability,
    /// Where DNS seed lookups (run in the background) send their answers.
    pub(crate) seed_answers: (
        mpsc::Sender<crate::discovery::SeedAnswers>,
        mpsc::Receiver<crate::discovery::SeedAnswers>,
    ),
    /// A seed lookup is under way.
    pub(crate) seeding: bool,
    pub(crate) last_seed_lookup: Option<Instant>,
}

/// How often each connection is pinged, and how long an answer may take before the
/// connection is closed as dead.
const PING_INTERVAL: Duration = Duration::from_secs(5);
const PING_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a duplicate connection stays open before it is closed: time for the AutoNAT answer
/// it was opened for, and for requests already sent over it, to complete.
const DUPLICATE_GRACE: Duration = Duration::from_secs(5);

impl SwarmTask {
    pub(crate) async fn run(
        &mut self,
        mut commands: mpsc::Receiver<Command>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut maintenance = tokio::time::interval(Duration::from_secs(10));
        maintenance.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.changed() => {
                    if *shutdown.borrow() {
                        break;
                    }
                }
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                command = commands.recv() => match command {
                    Some(c) => self.on_command(c),
                    None => break,
                },
                Some(answers) = self.seed_answers.1.recv() => self.on_seed_answers(answers),
                Some((channel, service, answer)) = self.pending_replies.next(), if !self.pending_replies.is_empty() => {
                    self.send_reply(channel, service, answer);
                }
                _ = maintenance.tick() => {
                    self.maintain();
                    self.save_known_peers(false).await;
                }
            }
        }
        self.save_known_peers(true).await;
        tracing::debug!("network task stopped");
    }

    fn maintain(&mut self) {
        let now = Instant::now();
        for peer in self.book.expire_bans(now) {
            if !self.refused.contains(&peer) {
                self.swarm.behaviour_mut().blocked.unblock_peer(peer);
            }
            tracing::info!(%peer, "ban expired");
        }
        self.book.forget_idle(now);
        self.known.expire_tests(now);
        for (peer, connection) in
            self.book
                .surplus_links(&self.handle.local_peer_id, now, DUPLICATE_GRACE)
        {
            tracing::debug!(%peer, ?connection, "closing a duplicate connection");
            self.count_admission("duplicate-closed");
            self.swarm.close_connection(connection);
        }
        self.act_on_reachability();
        if self.dial_shortfall() > 0 {
            self.dial_bootstrap();
            self.look_for_peers(now);
            self.ask_seeds(now);
            self.dial_drawn();
        }
    }

    fn on_admission(&mut self, event: AdmissionEvent) {
        let outcome = match event {
            AdmissionEvent::Kept(peer) => {
                tracing::debug!(%peer, "peer connected");
                "kept"
            }
            AdmissionEvent::Newcomer(peer) => {
                tracing::debug!(%peer, "full: admitting a newcomer for a short stay");
                "newcomer"
            }
            AdmissionEvent::NewcomerKept(peer) => {
                tracing::debug!(%peer, "newcomer kept: a slot freed during its stay");
                "newcomer-kept"
            }
            AdmissionEvent::NewcomerClosed(peer) => {
                tracing::debug!(%peer, "newcomer's stay ended; closing its connection");
                "newcomer-closed"
            }
            AdmissionEvent::Evicted(peer) => {
                tracing::debug!(%peer, "inbound peer evicted to keep a newcomer");
                "evicted"
            }
            AdmissionEvent::Refused { inbound: true } => "refused-inbound",
            AdmissionEvent::Refused { inbound: false } => "refused-outbound",
        };
        self.count_admission(outcome);
        self.refresh_connected();
    }

    fn count_admission(&self, outcome: &str) {
        self.metrics.admissions.with_label_values(&[outcome]).inc();
    }

    fn ban(&mut self, peer: PeerId, what: Misbehaviour) {
        self.metrics.bans.inc();
        tracing::warn!(%peer, reason = what.label(), "banning peer");
        self.swarm.behaviour_mut().blocked.block_peer(peer);
        self.swarm.behaviour_mut().gossip.blacklist_peer(&peer);
    }

    pub(crate) fn penalize(&mut self, peer: PeerId, what: Misbehaviour) {
        self.metrics
            .penalties
            .with_label_values(&[what.label()])
            .inc();
        tracing::debug!(%peer, reason = what.label(), "peer penalized");
        if self.book.penalize(peer, what, Instant::now()) {
            self.ban(peer, what);
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Publish { topic, data } => {
                let t = IdentTopic::new(topic.name(&self.cfg.network));
                match self.swarm.behaviour_mut().gossip.publish(t, data) {
                    Ok(_) => {
                        self.metrics
                            .gossip_published
                            .with_label_values(&[topic.label()])
                            .inc();
                    }
                    // Nobody to send to yet, or already sent: neither is an error for the caller.
                    Err(e) => tracing::debug!(topic = topic.label(), error = %e, "not published"),
                }
            }
            Command::Judge {
                id,
                source,
                topic,
                verdict,
            } => {
                self.metrics
                    .gossip_received
                    .with_label_values(&[topic.label(), verdict.label()])
                    .inc();
                let acceptance = match verdict {
                    Verdict::Accept => MessageAcceptance::Accept,
                    Verdict::Ignore => MessageAcceptance::Ignore,
                    Verdict::Reject => MessageAcceptance::Reject,
                };
                self.swarm
                    .behaviour_mut()
                    .gossip
                    .report_message_validation_result(&id, &source, acceptance);
                if verdict == Verdict::Reject {
                    self.penalize(source, Misbehaviour::InvalidMessage);
                }
                if verdict == Verdict::Accept {
                    self.swarm
                        .behaviour_mut()
                        .admission
                        .state_mut()
                        .useful(source, Instant::now());
                }
            }
            Command::Request {
                peer,
                service,
                data,
                reply,
            } => {
                let mut frame = Vec::with_capacity(data.len() + 1);
                frame.push(service.tag());
                frame.extend_from_slice(&data);
                if frame.len() > self.cfg.max_request_bytes {
                    let _ = reply.send(Err(RequestError::Failed(format!(
                        "request of {} bytes exceeds the {}-byte limit",
                        frame.len(),
                        self.cfg.max_request_bytes
                    ))));
                    return;
                }
                let id = self
                    .swarm
                    .behaviour_mut()
                    .requests
                    .send_request(&peer, frame);
                self.pending_requests.insert(id, (service, reply));
            }
            Command::Penalize { peer, what } => self.penalize(peer, what),
            Command::Refuse { peer, refused } => {
                if refused {
                    tracing::info!(%peer, "peer refused");
                    self.refused.insert(peer);
                    self.swarm.behaviour_mut().blocked.block_peer(peer);
                } else if self.refused.remove(&peer) && !self.book.is_banned(&peer, Instant::now())
                {
                    tracing::info!(%peer, "peer accepted again");
                    self.swarm.behaviour_mut().blocked.unblock_peer(peer);
                }
            }
            Command::Peers { reply } => {
                let view = PeersView {
                    local_peer_id: self.handle.local_peer_id.to_string(),
                    listen_addresses: self
                        .handle
                        .listen_addrs
                        .read()
                        .iter()
                        .map(|a| a.to_string())
                        .collect(),
                    reachability: self.reach.view(),
                    peers: self.book.summaries(Instant::now()),
                };
                let _ = reply.send(view);
            }
            Command::Dial(addr) => {
                if let Err(e) = self.swarm.dial(addr.clone()) {
                    tracing::debug!(%addr, error = %e, "dial failed");
                }
            }
        }
    }

    fn refresh_connected(&mut self) {
        let peers = self.swarm.behaviour().admission.state().kept_peers();
        self.metrics.peers.set(peers.len() as i64);
        *self.handle.connected.write() = peers;
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                let full = address
                    .clone()
                    .with(Protocol::P2p(self.handle.local_peer_id));
                tracing::info!(address = %full, "listening for peers");
                self.handle.listen_addrs.write().push(full);
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                let full = address.with(Protocol::P2p(self.handle.local_peer_id));
                self.handle.listen_addrs.write().retain(|a| *a != full);
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                connection_id,
                ..
            } => {
                let now = Instant::now();
                if self.book.is_banned(&peer_id, now) {
                    let _ = self.swarm.close_connection(connection_id);
                    return;
                }
                let outbound_ip = match &endpoint {
                    ConnectedPoint::Dialer { address, .. } => ip_of(address),
                    ConnectedPoint::Listener { .. } => None,
                };
                let link = Link {
                    id: connection_id,
                    remote: endpoint.get_remote_address().clone(),
                    outbound: endpoint.is_dialer(),
                    since: now,
                };
                let is_bootstrap = self
                    .cfg
                    .bootstrap
                    .iter()
                    .any(|a| peer_of(a) == Some(peer_id));
                if let Some(ip) = outbound_ip {
                    if !is_bootstrap && !self.book.outbound_allowed(&ip) {
                        tracing::debug!(%peer_id, %ip, "closing outbound connection: too many peers in its address range");
                        let _ = self.swarm.close_connection(connection_id);
                        return;
                    }
                }
                if let ConnectedPoint::Dialer { address, .. } = &endpoint {
                    if self.swarm.behaviour().admission.state().is_kept(&peer_id) {
                        let connected = self.handle.connected.read();
                        let test = self.known.kept_outbound(
                            peer_id,
                            address,
                            |p| connected.contains(p),
                            now,
                        );
                        drop(connected);
                        self.heard.reached(&peer_id);
                        if let Some(tested) = test {
                            self.test_known(&tested);
                        }
                    }
                }
                self.book.connected(peer_id, link, now);
                self.refresh_connected();
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                ..
            } => {
                self.book.disconnected(&peer_id, connection_id);
                if num_established == 0 {
                    tracing::debug!(%peer_id, "peer disconnected");
                }
                self.refresh_connected();
            }
            SwarmEvent::OutgoingConnectionError {
                peer_id: Some(peer),
                error,
                ..
            } => {
                self.heard.failed(&peer);
                // Only a dial that reached out and failed says the peer is gone; one this
                // node refused or gave up itself says nothing about it.
                match error {
                    DialError::Transport(_) | DialError::WrongPeerId { .. } => {
                        self.known.unreachable(&peer)
                    }
                    _ => self.known.untested(&peer),
                }
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                reason,
                ..
            } => self.on_listener_gone(listener_id, reason.err().map(|e| e.to_string())),
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(event),
            _ => {}
        }
    }

    fn on_behaviour_event(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Gossip(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            }) => self.on_gossip(propagation_source, message_id, message),
            BehaviourEvent::Requests(e) => self.on_request_event(e),
            BehaviourEvent::Admission(e) => self.on_admission(e),
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                let told_by = self.book.links(&peer_id).first().map(|l| l.remote.clone());
                for addr in &info.listen_addrs {
                    self.swarm
                        .behaviour_mut()
                        .kad
                        .add_address(&peer_id, addr.clone());
                    if let Some(from) = &told_by {
                        self.heard
                            .heard(&with_peer(addr, peer_id), &Source::Peer(from.clone()));
                    }
                }
                let now = Instant::now();
                self.book.identified(
                    peer_id,
                    info.agent_version,
                    info.protocols.iter().map(|p| p.to_string()).collect(),
                    info.listen_addrs.iter().map(|a| a.to_string()).collect(),
                    now,
                );
                // A node short of peers (a newcomer, perhaps on a short stay at a full peer)
                // asks the DHT at once rather than at the next maintenance round.
                if self.dial_shortfall() > 0 {
                    self.look_for_peers(now);
                }
                // It may be the relay a private node was waiting for.
                self.act_on_reachability();
            }
            BehaviourEvent::Ping(ping::Event {
                peer,
                result: Ok(rtt),
                ..
            }) => self
                .swarm
                .behaviour_mut()
                .admission
                .state_mut()
                .ping(peer, rtt),
            BehaviourEvent::Ping(ping::Event {
                peer,
                connection,
                result: Err(e @ (ping::Failure::Timeout | ping::Failure::Other { .. })),
            }) => {
                // libp2p keeps a connection whose pings fail; a silent peer would then hold
                // requests until they time out, one after another.
                tracing::debug!(%peer, error = %e, "ping failed; closing the connection");
                self.swarm.close_connection(connection);
            }
            BehaviourEvent::Autonat(e) => self.on_autonat(e),
            BehaviourEvent::RelayClient(e) => self.on_relay_client(e),
            BehaviourEvent::Dcutr(e) => self.on_hole_punch(e),
            BehaviourEvent::Mdns(mdns::Event::Discovered(found)) => {
                tracing::info!(
                    addresses = found.len(),
                    "found peers on the local network (mDNS)"
                );
                let connected = self.handle.connected.read().clone();
                for (peer, addr) in found {
                    self.swarm
                        .behaviour_mut()
                        .kad
                        .add_address(&peer, addr.clone());
                    if !connected.contains(&peer) && !self.book.is_banned(&peer, Instant::now()) {
                        let _ = self.swarm.dial(dial_once(&addr));
                    }
                }
            }
            BehaviourEvent::Kad(kad::Event::RoutingUpdated {
                peer, addresses, ..
            }) => {
                for addr in addresses.iter() {
                    let addr = with_peer(addr, peer);
                    self.heard.heard(&addr, &Source::Dht);
                }
                // What this node dials is drawn from what it knows, not handed to it by
                // whoever answers a lookup.
                self.dial_drawn();
            }
            _ => {}
        }
    }

    fn on_gossip(&mut self, source: PeerId, id: MessageId, message: gossipsub::Message) {
        let now = Instant::now();
        let judge = |task: &mut SwarmTask, acceptance: MessageAcceptance| {
            task.swarm
                .behaviour_mut()
                .gossip
                .report_message_validation_result(&id, &source, acceptance);
        };
        let Some(topic) = self.topics.get(&message.topic).copied() else {
            judge(self, MessageAcceptance::Ignore);
            return;
        };
        self.metrics
            .gossip_received_bytes
            .with_label_values(&[topic.label()])
            .inc_by(message.data.len() as u64);
        if !self.book.allow_message(source, now) {
            self.metrics
                .gossip_received
                .with_label_values(&[topic.label(), "rate-limited"])
                .inc();
            judge(self, MessageAcceptance::Ignore);
            self.penalize(source, Misbehaviour::RateExceeded);
            return;
        }
        if message.data.len() > topic.max_bytes() {
            self.metrics
                .gossip_received
                .with_label_values(&[topic.label(), "oversize"])
                .inc();
            judge(self, MessageAcceptance::Reject);
            self.penalize(source, Misbehaviour::OversizeMessage);
            return;
        }
        let Some(subscriber) = self.subscribers.get(&topic) else {
            judge(self, MessageAcceptance::Ignore);
            return;
        };
        let msg = GossipMessage {
            topic,
            source,
            data: message.data,
            id: id.clone(),
        };
        if subscriber.try_send(msg).is_err() {
            tracing::debug!(topic = topic.label(), "subscriber behind; message ignored");
            judge(self, MessageAcceptance::Ignore);
        }
    }
}
