//! [`Admission`](crate::Admission) as a libp2p behaviour: the shell that carries out its
//! decisions (refusing during the handshake, closing newcomers and evicted peers) and reports
//! them to the swarm task.

use crate::admission::{Admission, AdmissionLimits, Admitted, GraceEnded};
use crate::peers::{ip_of, Netgroup};
use libp2p::core::transport::PortUse;
use libp2p::core::{ConnectedPoint, Endpoint};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{
    dummy, CloseConnection, ConnectionClosed, ConnectionDenied, ConnectionId, FromSwarm,
    NetworkBehaviour, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId};
use std::collections::VecDeque;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// What the admission behaviour reports to the swarm task (for metrics, logs and the list of
/// connected peers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdmissionEvent {
    Kept(PeerId),
    Newcomer(PeerId),
    NewcomerKept(PeerId),
    NewcomerClosed(PeerId),
    /// An inbound peer evicted to keep a newcomer (once per closed connection).
    Evicted(PeerId),
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

    pub(crate) fn state_mut(&mut self) -> &mut Admission {
        &mut self.state
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
                    GraceEnded::Evicted => {
                        self.events.push_back(ToSwarm::CloseConnection {
                            peer_id: peer,
                            connection: CloseConnection::One(connection),
                        });
                        self.events
                            .push_back(ToSwarm::GenerateEvent(AdmissionEvent::Evicted(peer)));
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
