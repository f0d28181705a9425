//! Which connections a node keeps: the inbound budget, the outbound slots reserved for peers
//! this node chose, and the short stay a full node grants a newcomer so that it can learn other
//! peers' addresses before it is let go.
//!
//! [`Admission`] is pure bookkeeping over connection ids (time is an argument); it must not
//! dial, close or log. [`AdmissionBehaviour`] is its thin libp2p shell: it refuses a connection
//! while the handshake completes (so a Kademlia lookup sees a dial failure and moves on, rather
//! than a connection that opens and closes), and closes newcomers when their stay ends.
//!
//! Why a short stay instead of a refusal: a newcomer whose bootstrap peers are all full is
//! refused by each of them and knows nobody else, so it would stay isolated. Admitted for a
//! grace period, it runs identify and a Kademlia lookup through the full peer, learns the
//! peers near it, and dials those; the full peer then closes the connection (or keeps it, if a
//! slot has freed meanwhile).

use crate::peers::{ip_of, Netgroup};
use libp2p::core::transport::PortUse;
use libp2p::core::{ConnectedPoint, Endpoint};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{
    dummy, CloseConnection, ConnectionClosed, ConnectionDenied, ConnectionId, FromSwarm,
    NetworkBehaviour, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// How many connections of each kind a node keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdmissionLimits {
    /// Peers kept, inbound and outbound together (a peer may hold two connections).
    pub max_connections: u32,
    /// Of `max_connections`, how many only outbound peers may use: inbound peers never take
    /// the last `outbound_reserved` slots, so a flood of inbound connections cannot push out
    /// the peers this node chose itself.
    pub outbound_reserved: u32,
    /// Inbound peers kept from one network group (IPv4 /16, IPv6 /32; loopback and private
    /// addresses exempt), 0 for no limit: an attacker with many addresses in few groups cannot
    /// take every inbound slot.
    pub max_inbound_per_netgroup: u32,
    /// Newcomers admitted at once above the limits, each for `newcomer_grace`.
    pub newcomer_slots: u32,
    /// How long a newcomer admitted above the limits stays.
    pub newcomer_grace: Duration,
}

impl AdmissionLimits {
    /// Inbound peers kept at most (none if the reserve takes every slot).
    pub fn inbound_budget(&self) -> u32 {
        self.max_connections.saturating_sub(self.outbound_reserved)
    }
}

/// What to do with a connection that has just been established.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admitted {
    /// Counted among the node's peers.
    Kept,
    /// A newcomer above the limits: served until its grace ends, not counted as a peer.
    Newcomer,
    /// Over every limit: close it now.
    Refused,
}

/// What became of a newcomer whose grace ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GraceEnded {
    /// A slot had freed: the connection is kept.
    Kept,
    /// Still full: close the connection.
    Close,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Inbound,
    Outbound,
    Newcomer { until: Instant },
}

#[derive(Clone, Copy, Debug)]
struct Open {
    peer: PeerId,
    kind: Kind,
    /// The remote's network group, for inbound connections.
    netgroup: Option<Netgroup>,
}

/// The connections open now and how each counts.
#[derive(Debug)]
pub struct Admission {
    limits: AdmissionLimits,
    open: BTreeMap<ConnectionId, Open>,
}

impl Admission {
    pub fn new(limits: AdmissionLimits) -> Admission {
        Admission {
            limits,
            open: BTreeMap::new(),
        }
    }

    pub fn limits(&self) -> AdmissionLimits {
        self.limits
    }

    /// Peers with a kept connection, each with whether any of them is outbound.
    fn kept_by_peer(&self) -> HashMap<PeerId, bool> {
        let mut peers: HashMap<PeerId, bool> = HashMap::new();
        for o in self.open.values() {
            match o.kind {
                Kind::Inbound => {
                    peers.entry(o.peer).or_insert(false);
                }
                Kind::Outbound => {
                    peers.insert(o.peer, true);
                }
                Kind::Newcomer { .. } => {}
            }
        }
        peers
    }

    fn to_u32(n: usize) -> u32 {
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// Peers kept, inbound and outbound. A peer counts once however many connections it has.
    pub fn kept(&self) -> u32 {
        Self::to_u32(self.kept_by_peer().len())
    }

    /// Peers kept that only dialled us.
    pub fn kept_inbound(&self) -> u32 {
        Self::to_u32(self.kept_by_peer().values().filter(|out| !**out).count())
    }

    pub fn newcomers(&self) -> u32 {
        Self::to_u32(
            self.open
                .values()
                .filter(|o| matches!(o.kind, Kind::Newcomer { .. }))
                .count(),
        )
    }

    /// Whether one more inbound peer from `netgroup` fits, given the kept peers (computed once
    /// per decision: this runs for every connection and every dial a full node refuses).
    fn inbound_has_room(&self, kept: &HashMap<PeerId, bool>, netgroup: Option<Netgroup>) -> bool {
        let inbound = kept.values().filter(|outbound| !**outbound).count();
        let limit = self.limits.max_inbound_per_netgroup;
        let group_has_room = match netgroup {
            Some(g) if limit > 0 => {
                let mut from_group: Vec<PeerId> = self
                    .open
                    .values()
                    .filter(|o| o.kind == Kind::Inbound && o.netgroup == Some(g))
                    .filter(|o| kept.get(&o.peer) == Some(&false))
                    .map(|o| o.peer)
                    .collect();
                from_group.sort();
                from_group.dedup();
                Self::to_u32(from_group.len()) < limit
            }
            _ => true,
        };
        Self::to_u32(kept.len()) < self.limits.max_connections
            && Self::to_u32(inbound) < self.limits.inbound_budget()
            && group_has_room
    }

    /// What a connection with `peer` established now would be, without recording it.
    /// `inbound` is true when the peer dialled us, from `netgroup`; `peer` is unknown before an
    /// outbound handshake when only an address was dialled.
    ///
    /// A second connection of a peer already kept takes no slot (libp2p's per-peer limit
    /// bounds those). Outbound connections use any free slot, the reserved ones included; an
    /// outbound connection over `max_connections` (a Kademlia lookup dialling a peer) is
    /// refused.
    pub fn decide(
        &self,
        peer: Option<&PeerId>,
        inbound: bool,
        netgroup: Option<Netgroup>,
    ) -> Admitted {
        let kept = self.kept_by_peer();
        if peer.is_some_and(|p| kept.contains_key(p)) {
            Admitted::Kept
        } else if !inbound {
            if Self::to_u32(kept.len()) >= self.limits.max_connections {
                Admitted::Refused
            } else {
                Admitted::Kept
            }
        } else if self.inbound_has_room(&kept, netgroup) {
            Admitted::Kept
        } else if self.newcomers() < self.limits.newcomer_slots {
            Admitted::Newcomer
        } else {
            Admitted::Refused
        }
    }

    /// Decides on a connection just established and records it unless refused.
    pub fn established(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        inbound: bool,
        netgroup: Option<Netgroup>,
        now: Instant,
    ) -> Admitted {
        let decision = self.decide(Some(&peer), inbound, netgroup);
        let kind = match decision {
            Admitted::Refused => return decision,
            // A grace beyond what a clock can hold ends at once rather than never.
            Admitted::Newcomer => Kind::Newcomer {
                until: now.checked_add(self.limits.newcomer_grace).unwrap_or(now),
            },
            Admitted::Kept if inbound => Kind::Inbound,
            Admitted::Kept => Kind::Outbound,
        };
        let netgroup = netgroup.filter(|_| inbound);
        self.open.insert(
            id,
            Open {
                peer,
                kind,
                netgroup,
            },
        );
        decision
    }

    /// Forgets a closed connection.
    pub fn closed(&mut self, id: ConnectionId) {
        self.open.remove(&id);
    }

    /// Newcomers whose grace has ended, each kept if a slot has freed (oldest first) or to be
    /// closed. A newcomer to be closed is forgotten here; its close event is then a no-op.
    pub fn grace_ended(&mut self, now: Instant) -> Vec<(ConnectionId, PeerId, GraceEnded)> {
        let mut due: Vec<(Instant, ConnectionId)> = self
            .open
            .iter()
            .filter_map(|(id, o)| match o.kind {
                Kind::Newcomer { until } if until <= now => Some((until, *id)),
                _ => None,
            })
            .collect();
        due.sort();
        let mut out = Vec::with_capacity(due.len());
        for (_, id) in due {
            let Some(group) = self.open.get(&id).map(|o| o.netgroup) else {
                continue;
            };
            let room = self.inbound_has_room(&self.kept_by_peer(), group);
            let Some(open) = self.open.get_mut(&id) else {
                continue;
            };
            let peer = open.peer;
            if room {
                open.kind = Kind::Inbound;
                out.push((id, peer, GraceEnded::Kept));
            } else {
                self.open.remove(&id);
                out.push((id, peer, GraceEnded::Close));
            }
        }
        out
    }

    /// Whether `peer` has a kept connection (a newcomer does not count as a peer).
    pub fn is_kept(&self, peer: &PeerId) -> bool {
        self.open
            .values()
            .any(|o| o.peer == *peer && !matches!(o.kind, Kind::Newcomer { .. }))
    }

    /// Peers with at least one kept connection, each once.
    pub fn kept_peers(&self) -> Vec<PeerId> {
        self.kept_by_peer().into_keys().collect()
    }
}

/// What the admission behaviour reports to the swarm task (for metrics, logs and the list of
/// connected peers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdmissionEvent {
    Kept(PeerId),
    Newcomer(PeerId),
    NewcomerKept(PeerId),
    NewcomerClosed(PeerId),
    /// Refused during the handshake; `inbound` says who dialled.
    Refused {
        inbound: bool,
    },
}

/// The network group of a remote address. A relayed connection's address names the relay, not
/// the peer, so it has none (the relay limits its own circuits).
fn netgroup_of(addr: &Multiaddr) -> Option<Netgroup> {
    if addr.iter().any(|p| p == Protocol::P2pCircuit) {
        return None;
    }
    ip_of(addr).as_ref().and_then(Netgroup::of)
}

/// [`Admission`] as a libp2p behaviour. Put it first in the combined behaviour: the behaviours
/// after it are not handed a connection it refuses (some record a connection as soon as they are
/// handed it, and would believe a refused one open). It records a connection itself only when
/// every behaviour has accepted it, so a refusal by a later one (block list, per-peer limit)
/// leaves nothing behind here.
pub(crate) struct AdmissionBehaviour {
    state: Admission,
    events: VecDeque<ToSwarm<AdmissionEvent, THandlerInEvent<Self>>>,
    tick: tokio::time::Interval,
}

/// Why a connection was refused.
#[derive(Debug)]
pub(crate) struct NoSlot {
    pub(crate) inbound: bool,
}

impl std::fmt::Display for NoSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let side = if self.inbound { "inbound" } else { "outbound" };
        write!(f, "no {side} connection slot left")
    }
}

impl std::error::Error for NoSlot {}

impl AdmissionBehaviour {
    pub(crate) fn new(limits: AdmissionLimits) -> AdmissionBehaviour {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        AdmissionBehaviour {
            state: Admission::new(limits),
            events: VecDeque::new(),
            tick,
        }
    }

    pub(crate) fn state(&self) -> &Admission {
        &self.state
    }

    fn check(
        &mut self,
        peer: Option<&PeerId>,
        inbound: bool,
        remote: Option<&Multiaddr>,
    ) -> Result<(), ConnectionDenied> {
        let netgroup = remote.and_then(netgroup_of);
        if self.state.decide(peer, inbound, netgroup) == Admitted::Refused {
            self.events
                .push_back(ToSwarm::GenerateEvent(AdmissionEvent::Refused { inbound }));
            return Err(ConnectionDenied::new(NoSlot { inbound }));
        }
        Ok(())
    }
}

impl NetworkBehaviour for AdmissionBehaviour {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = AdmissionEvent;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.check(Some(&peer), true, Some(remote))?;
        Ok(dummy::ConnectionHandler)
    }

    fn handle_pending_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: Option<PeerId>,
        _: &[Multiaddr],
        _: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        // Full: do not even dial.
        self.check(peer.as_ref(), false, None)?;
        Ok(vec![])
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.check(Some(&peer), false, None)?;
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ConnectionEstablished(e) => {
                let inbound = e.endpoint.is_listener();
                let netgroup = match e.endpoint {
                    ConnectedPoint::Listener { send_back_addr, .. } => netgroup_of(send_back_addr),
                    ConnectedPoint::Dialer { .. } => None,
                };
                let event = match self.state.established(
                    e.connection_id,
                    e.peer_id,
                    inbound,
                    netgroup,
                    Instant::now(),
                ) {
                    Admitted::Kept => AdmissionEvent::Kept(e.peer_id),
                    Admitted::Newcomer => AdmissionEvent::Newcomer(e.peer_id),
                    // Cannot happen (checked during the handshake, in the same poll), but a
                    // connection this node has no slot for is closed, never left open.
                    Admitted::Refused => {
                        self.events.push_back(ToSwarm::CloseConnection {
                            peer_id: e.peer_id,
                            connection: CloseConnection::One(e.connection_id),
                        });
                        AdmissionEvent::Refused { inbound }
                    }
                };
                self.events.push_back(ToSwarm::GenerateEvent(event));
            }
            FromSwarm::ConnectionClosed(ConnectionClosed { connection_id, .. }) => {
                self.state.closed(connection_id);
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        libp2p::core::util::unreachable(event)
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        while self.tick.poll_tick(cx).is_ready() {
            for (connection, peer, outcome) in self.state.grace_ended(Instant::now()) {
                match outcome {
                    GraceEnded::Kept => self
                        .events
                        .push_back(ToSwarm::GenerateEvent(AdmissionEvent::NewcomerKept(peer))),
                    GraceEnded::Close => {
                        self.events.push_back(ToSwarm::CloseConnection {
                            peer_id: peer,
                            connection: CloseConnection::One(connection),
                        });
                        self.events.push_back(ToSwarm::GenerateEvent(
                            AdmissionEvent::NewcomerClosed(peer),
                        ));
                    }
                }
            }
        }
        match self.events.pop_front() {
            Some(e) => Poll::Ready(e),
            None => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> AdmissionLimits {
        AdmissionLimits {
            max_connections: 4,
            outbound_reserved: 2,
            max_inbound_per_netgroup: 0,
            newcomer_slots: 1,
            newcomer_grace: Duration::from_secs(10),
        }
    }

    fn conn(n: usize) -> ConnectionId {
        ConnectionId::new_unchecked(n)
    }

    #[test]
    fn inbound_stops_at_its_budget_and_leaves_the_reserved_slots_to_outbound() {
        let now = Instant::now();
        let mut a = Admission::new(limits());
        let p = PeerId::random;
        assert_eq!(a.established(conn(1), p(), true, None, now), Admitted::Kept);
        assert_eq!(a.established(conn(2), p(), true, None, now), Admitted::Kept);
        // The budget (4 − 2) is used: the next inbound is a newcomer, the one after refused.
        assert_eq!(
            a.established(conn(3), p(), true, None, now),
            Admitted::Newcomer
        );
        assert_eq!(
            a.established(conn(4), p(), true, None, now),
            Admitted::Refused
        );
        // The reserved slots still take outbound connections, then nothing more.
        assert_eq!(
            a.established(conn(5), p(), false, None, now),
            Admitted::Kept
        );
        assert_eq!(
            a.established(conn(6), p(), false, None, now),
            Admitted::Kept
        );
        assert_eq!(
            a.established(conn(7), p(), false, None, now),
            Admitted::Refused
        );
        assert_eq!((a.kept(), a.kept_inbound(), a.newcomers()), (4, 2, 1));
        assert_eq!(a.kept_peers().len(), 4);
    }

    #[test]
    fn a_newcomer_is_let_go_after_its_grace_unless_a_slot_freed() {
        let t0 = Instant::now();
        let mut a = Admission::new(limits());
        let (p1, p2, n1, n2) = (
            PeerId::random(),
            PeerId::random(),
            PeerId::random(),
            PeerId::random(),
        );
        a.established(conn(1), p1, true, None, t0);
        a.established(conn(2), p2, true, None, t0);
        assert_eq!(
            a.established(conn(3), n1, true, None, t0),
            Admitted::Newcomer
        );
        assert!(!a.is_kept(&n1));
        assert!(a.grace_ended(t0 + Duration::from_secs(9)).is_empty());
        assert_eq!(
            a.grace_ended(t0 + Duration::from_secs(10)),
            vec![(conn(3), n1, GraceEnded::Close)]
        );
        assert_eq!(a.newcomers(), 0);
        // The next newcomer finds a slot freed during its stay and is kept.
        let t1 = t0 + Duration::from_secs(11);
        assert_eq!(
            a.established(conn(4), n2, true, None, t1),
            Admitted::Newcomer
        );
        a.closed(conn(1));
        assert_eq!(
            a.grace_ended(t1 + Duration::from_secs(10)),
            vec![(conn(4), n2, GraceEnded::Kept)]
        );
        assert!(a.is_kept(&n2));
        assert_eq!(a.kept_inbound(), 2);
    }

    #[test]
    fn a_peer_with_two_connections_is_one_peer_until_both_close() {
        let now = Instant::now();
        let mut a = Admission::new(limits());
        let p = PeerId::random();
        a.established(conn(1), p, true, None, now);
        a.established(conn(2), p, false, None, now);
        assert_eq!(a.kept_peers(), vec![p]);
        a.closed(conn(1));
        assert!(a.is_kept(&p));
        a.closed(conn(2));
        assert!(!a.is_kept(&p));
        assert!(a.kept_peers().is_empty());
    }

    #[test]
    fn a_second_connection_of_a_kept_peer_takes_no_slot() {
        let now = Instant::now();
        let mut a = Admission::new(limits());
        let (p1, p2, p3) = (PeerId::random(), PeerId::random(), PeerId::random());
        assert_eq!(a.established(conn(1), p1, true, None, now), Admitted::Kept);
        assert_eq!(a.established(conn(2), p1, true, None, now), Admitted::Kept);
        assert_eq!(a.established(conn(3), p2, true, None, now), Admitted::Kept);
        assert_eq!((a.kept(), a.kept_inbound()), (2, 2));
        // Full for inbound: a new peer is a newcomer, a kept peer's connection is not.
        assert_eq!(a.decide(Some(&p3), true, None), Admitted::Newcomer);
        assert_eq!(a.decide(Some(&p2), true, None), Admitted::Kept);
        // A peer we also dialled counts as outbound.
        assert_eq!(a.established(conn(4), p2, false, None, now), Admitted::Kept);
        assert_eq!((a.kept(), a.kept_inbound()), (2, 1));
    }

    #[test]
    fn one_network_group_cannot_take_every_inbound_slot() {
        let now = Instant::now();
        let mut a = Admission::new(AdmissionLimits {
            max_connections: 10,
            outbound_reserved: 2,
            max_inbound_per_netgroup: 2,
            newcomer_slots: 1,
            newcomer_grace: Duration::from_secs(10),
        });
        let group = |ip: &str| Netgroup::of(&ip.parse().unwrap());
        let attacker = ["198.51.1.1", "198.51.2.2", "198.51.3.3", "198.51.4.4"];
        let mut outcomes = Vec::new();
        for (i, ip) in attacker.iter().enumerate() {
            outcomes.push(a.established(conn(i), PeerId::random(), true, group(ip), now));
        }
        // Two kept, the third a newcomer (it may learn peers and go), the fourth refused.
        assert_eq!(
            outcomes,
            vec![
                Admitted::Kept,
                Admitted::Kept,
                Admitted::Newcomer,
                Admitted::Refused
            ]
        );
        // Another group, and exempt local addresses, still get in.
        assert_eq!(
            a.established(conn(10), PeerId::random(), true, group("203.0.113.9"), now),
            Admitted::Kept
        );
        assert_eq!(
            a.established(conn(11), PeerId::random(), true, group("10.0.0.1"), now),
            Admitted::Kept
        );
        // The newcomer's stay ends without a slot in its group: it goes.
        let ended = a.grace_ended(now + Duration::from_secs(10));
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].2, GraceEnded::Close);
    }

    #[test]
    fn no_reserved_slots_when_the_reserve_exceeds_the_total() {
        let l = AdmissionLimits {
            max_connections: 2,
            outbound_reserved: 5,
            max_inbound_per_netgroup: 0,
            newcomer_slots: 0,
            newcomer_grace: Duration::from_secs(1),
        };
        let mut a = Admission::new(l);
        assert_eq!(l.inbound_budget(), 0);
        assert_eq!(
            a.established(conn(1), PeerId::random(), true, None, Instant::now()),
            Admitted::Refused
        );
    }
}
