//! Whether peers can dial this node, and a relay for when they cannot.
//!
//! AutoNAT asks connected peers to dial this node back; its verdict (`public`, `private` or
//! `unknown`) comes here. A `private` node asks one connected relay (a peer that offers the
//! circuit relay's hop protocol and that this node reached directly) for a reservation and
//! advertises the circuit address it gets, so that others can reach it through the relay;
//! DCUtR then upgrades such a relayed connection to a direct one by hole punching. A private
//! node with no relay to ask says so once, in its log and in `/v1/node/peers`, and tries again
//! as peers come.
//!
//! Pure: this module decides and remembers; the swarm task listens on the circuit address,
//! stops listening, and reports what libp2p answered. Time is an argument.

use doin_api::node::{NatStatus, ReachabilityView};
use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A relay that refused, or whose reservation ended, is not asked again for this long.
pub(crate) const RELAY_RETRY: Duration = Duration::from_secs(60);

/// A relay this node can ask: a connected peer offering the hop protocol, and the address
/// this node reached it at.
#[derive(Clone, Debug)]
pub(crate) struct RelayCandidate {
    pub peer: PeerId,
    pub address: Multiaddr,
}

/// What the swarm task should do next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    Nothing,
    /// Listen on this circuit address (which asks `relay` for a reservation), then report
    /// the listener with [`Reachability::asking`].
    Reserve {
        relay: PeerId,
        circuit: Multiaddr,
    },
    /// Stop listening on the circuit (the node is public now).
    Release(ListenerId),
    /// The node is private and no relay can be asked: say so (once per verdict).
    WarnNoRelay,
}

#[derive(Clone, Debug)]
struct Reservation {
    relay: PeerId,
    listener: ListenerId,
    circuit: Multiaddr,
    /// The relay accepted.
    accepted: bool,
}

#[derive(Debug)]
pub(crate) struct Reachability {
    status: NatStatus,
    public_address: Option<Multiaddr>,
    reservation: Option<Reservation>,
    /// Relays that refused or dropped this node, with when they may be asked again.
    resting: HashMap<PeerId, Instant>,
    /// The missing relay was reported for the current verdict.
    warned: bool,
}

impl Default for Reachability {
    fn default() -> Self {
        Reachability {
            status: NatStatus::Unknown,
            public_address: None,
            reservation: None,
            resting: HashMap::new(),
            warned: false,
        }
    }
}

/// The circuit address at `relay` reached at `address`: `<address>/p2p/<relay>/p2p-circuit`.
pub(crate) fn circuit_via(relay: PeerId, address: &Multiaddr) -> Multiaddr {
    let mut base: Multiaddr = address
        .iter()
        .filter(|p| !matches!(p, Protocol::P2p(_)))
        .collect();
    base.push(Protocol::P2p(relay));
    base.push(Protocol::P2pCircuit);
    base
}

impl Reachability {
    pub(crate) fn status(&self) -> NatStatus {
        self.status
    }

    /// AutoNAT's new verdict.
    pub(crate) fn set_status(&mut self, status: NatStatus, public_address: Option<Multiaddr>) {
        if status != self.status {
            self.warned = false;
        }
        self.status = status;
        self.public_address = public_address.filter(|_| status == NatStatus::Public);
    }

    /// What to do now, given the relays that could be asked (in order of preference).
    pub(crate) fn next_step(&mut self, candidates: &[RelayCandidate], now: Instant) -> Step {
        self.resting.retain(|_, until| *until > now);
        match self.status {
            NatStatus::Public => match self.reservation.take() {
                Some(r) => Step::Release(r.listener),
                None => Step::Nothing,
            },
            // An unknown verdict (peers gone, say) keeps what a private one set up.
            NatStatus::Unknown => Step::Nothing,
            NatStatus::Private => {
                if self.reservation.is_some() {
                    return Step::Nothing;
                }
                match candidates
                    .iter()
                    .find(|c| !self.resting.contains_key(&c.peer))
                {
                    Some(c) => Step::Reserve {
                        relay: c.peer,
                        circuit: circuit_via(c.peer, &c.address),
                    },
                    None if self.warned => Step::Nothing,
                    None => {
                        self.warned = true;
                        Step::WarnNoRelay
                    }
                }
            }
        }
    }

    /// The swarm listens on `circuit` at `relay`: a reservation is being asked for.
    pub(crate) fn asking(&mut self, relay: PeerId, listener: ListenerId, circuit: Multiaddr) {
        // Should this relay fail too, with no other left, that is news again.
        self.warned = false;
        self.reservation = Some(Reservation {
            relay,
            listener,
            circuit,
            accepted: false,
        });
    }

    /// Listening on the circuit failed at once: rest that relay.
    pub(crate) fn refused(&mut self, relay: PeerId, now: Instant) {
        self.resting.insert(relay, now + RELAY_RETRY);
    }

    /// The relay accepted the reservation (or renewed it); returns the circuit address the
    /// first time.
    pub(crate) fn accepted(&mut self, relay: &PeerId) -> Option<Multiaddr> {
        match &mut self.reservation {
            Some(r) if r.relay == *relay && !r.accepted => {
                r.accepted = true;
                self.warned = false;
                Some(r.circuit.clone())
            }
            _ => None,
        }
    }

    /// A listener closed: when it was the circuit's, the reservation is gone. A relay that
    /// refused or failed (`failed`) rests; one whose connection merely closed may be asked
    /// again as soon as it is back. Returns the relay.
    pub(crate) fn listener_closed(
        &mut self,
        listener: ListenerId,
        failed: bool,
        now: Instant,
    ) -> Option<PeerId> {
        if self.reservation.as_ref().map(|r| r.listener) != Some(listener) {
            return None;
        }
        let r = self.reservation.take()?;
        if failed {
            self.resting.insert(r.relay, now + RELAY_RETRY);
        }
        Some(r.relay)
    }

    pub(crate) fn view(&self) -> ReachabilityView {
        let relay_address = self
            .reservation
            .as_ref()
            .filter(|r| r.accepted)
            .map(|r| r.circuit.to_string());
        let problem = match (&self.status, &self.reservation) {
            (NatStatus::Private, None) => Some(
                "behind a NAT or a firewall, and no connected peer offers relaying: \
                 peers cannot dial this node"
                    .to_string(),
            ),
            (NatStatus::Private, Some(r)) if !r.accepted => Some(format!(
                "behind a NAT or a firewall; asking relay {} for a reservation",
                r.relay
            )),
            _ => None,
        };
        ReachabilityView {
            status: self.status,
            public_address: self.public_address.as_ref().map(|a| a.to_string()),
            relay_address,
            problem,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate() -> RelayCandidate {
        RelayCandidate {
            peer: PeerId::random(),
            address: "/ip4/10.0.0.1/tcp/8646".parse().unwrap(),
        }
    }

    #[test]
    fn a_private_node_reserves_a_relay_slot_and_a_public_one_releases_it() {
        let mut r = Reachability::default();
        let t = Instant::now();
        let c = candidate();
        assert_eq!(r.next_step(std::slice::from_ref(&c), t), Step::Nothing);
        r.set_status(NatStatus::Private, None);
        let Step::Reserve { relay, circuit } = r.next_step(std::slice::from_ref(&c), t) else {
            panic!("a private node with a relay reserves");
        };
        assert_eq!(relay, c.peer);
        assert_eq!(
            circuit.to_string(),
            format!("/ip4/10.0.0.1/tcp/8646/p2p/{}/p2p-circuit", c.peer)
        );
        let listener = ListenerId::next();
        r.asking(relay, listener, circuit.clone());
        assert!(r.view().problem.is_some(), "waiting for the relay");
        assert_eq!(r.next_step(std::slice::from_ref(&c), t), Step::Nothing);
        assert_eq!(r.accepted(&relay), Some(circuit.clone()));
        assert_eq!(r.accepted(&relay), None, "a renewal is not news");
        let view = r.view();
        assert_eq!(view.relay_address, Some(circuit.to_string()));
        assert_eq!(view.problem, None);
        // Unknown keeps the reservation; public releases it.
        r.set_status(NatStatus::Unknown, None);
        assert_eq!(r.next_step(&[], t), Step::Nothing);
        r.set_status(
            NatStatus::Public,
            Some("/ip4/1.2.3.4/tcp/1".parse().unwrap()),
        );
        assert_eq!(r.next_step(&[], t), Step::Release(listener));
        assert_eq!(r.view().relay_address, None);
        assert_eq!(
            r.view().public_address.as_deref(),
            Some("/ip4/1.2.3.4/tcp/1")
        );
    }

    #[test]
    fn no_relay_is_reported_once_per_verdict_and_a_lost_relay_rests() {
        let mut r = Reachability::default();
        let t = Instant::now();
        r.set_status(NatStatus::Private, None);
        assert_eq!(r.next_step(&[], t), Step::WarnNoRelay);
        assert_eq!(r.next_step(&[], t), Step::Nothing, "said once");
        assert!(r.view().problem.is_some());
        let (a, b) = (candidate(), candidate());
        let both = [a.clone(), b.clone()];
        let Step::Reserve { circuit, .. } = r.next_step(&both, t) else {
            panic!("a relay came");
        };
        let listener = ListenerId::next();
        r.asking(a.peer, listener, circuit);
        assert_eq!(
            r.listener_closed(ListenerId::next(), true, t),
            None,
            "not ours"
        );
        assert_eq!(r.listener_closed(listener, true, t), Some(a.peer));
        // The first relay rests; the second is asked.
        let Step::Reserve { relay, .. } = r.next_step(&both, t) else {
            panic!("the other relay");
        };
        assert_eq!(relay, b.peer);
        r.refused(b.peer, t);
        assert_eq!(r.next_step(&both, t), Step::WarnNoRelay);
        // After the rest both may be asked again.
        let later = t + RELAY_RETRY + Duration::from_secs(1);
        let Step::Reserve { relay, circuit } = r.next_step(&both, later) else {
            panic!("rested long enough");
        };
        assert_eq!(relay, a.peer);
        // A relay whose connection merely closed does not rest.
        let listener = ListenerId::next();
        r.asking(relay, listener, circuit);
        assert_eq!(r.listener_closed(listener, false, later), Some(a.peer));
        assert!(
            matches!(r.next_step(&both, later), Step::Reserve { relay, .. } if relay == a.peer)
        );
    }
}
