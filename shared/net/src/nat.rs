//! The swarm task's side of NAT traversal: AutoNAT's verdicts, the relay reservation a
//! private node asks for, and DCUtR's hole punches, logged, counted and fed to
//! [`Reachability`](crate::reachability::Reachability), whose steps it carries out.

use crate::reachability::{RelayCandidate, Step};
use crate::swarm::SwarmTask;
use doin_api::node::NatStatus;
use libp2p::core::transport::ListenerId;
use libp2p::{autonat, dcutr, relay};
use std::time::Instant;

/// The hop protocol of circuit relay v2, which a relay offers.
const RELAY_HOP: &str = "/libp2p/circuit/relay/0.2.0/hop";

impl SwarmTask {
    pub(crate) fn on_autonat(&mut self, event: autonat::Event) {
        let autonat::Event::StatusChanged { new, .. } = event else {
            return;
        };
        let (status, address) = match new {
            autonat::NatStatus::Public(addr) => {
                tracing::info!(address = %addr, "reachable: peers dialled this node back");
                (NatStatus::Public, Some(addr))
            }
            autonat::NatStatus::Private => {
                tracing::info!("not reachable: peers could not dial this node back (a NAT or a firewall); looking for a relay");
                (NatStatus::Private, None)
            }
            autonat::NatStatus::Unknown => (NatStatus::Unknown, None),
        };
        self.reach.set_status(status, address);
        self.act_on_reachability();
    }

    /// Relays this node could ask: connected peers that offer the hop protocol, at the
    /// address this node dialled them (a private node cannot be dialled, so its relays are
    /// peers it dialled).
    fn relay_candidates(&self) -> Vec<RelayCandidate> {
        let mut found: Vec<RelayCandidate> = self
            .handle
            .connected
            .read()
            .iter()
            .filter(|p| self.book.speaks(p, RELAY_HOP))
            .filter_map(|p| {
                let link = self
                    .book
                    .links(p)
                    .iter()
                    .find(|l| l.outbound && !l.relayed())?;
                Some(RelayCandidate {
                    peer: *p,
                    address: link.remote.clone(),
                })
            })
            .collect();
        // Bootstrap peers first: the operator chose them.
        found.sort_by_key(|c| {
            !self
                .cfg
                .bootstrap
                .iter()
                .any(|a| crate::swarm::peer_of(a) == Some(c.peer))
        });
        found
    }

    /// Carries out what [`Reachability`](crate::reachability::Reachability) decides now.
    pub(crate) fn act_on_reachability(&mut self) {
        if self.reach.status() == NatStatus::Unknown {
            return;
        }
        let now = Instant::now();
        let candidates = self.relay_candidates();
        match self.reach.next_step(&candidates, now) {
            Step::Nothing => {}
            Step::Reserve { relay, circuit } => match self.swarm.listen_on(circuit.clone()) {
                Ok(listener) => {
                    tracing::info!(%relay, address = %circuit, "asking a relay for a reservation");
                    self.reach.asking(relay, listener, circuit);
                }
                Err(e) => {
                    tracing::warn!(%relay, error = %e, "cannot listen through the relay");
                    self.reach.refused(relay, now);
                }
            },
            Step::Release(listener) => {
                tracing::info!("reachable directly: giving up the relay reservation");
                self.swarm.remove_listener(listener);
            }
            Step::WarnNoRelay => tracing::warn!(
                "behind a NAT or a firewall and no connected peer offers relaying: peers \
                 cannot dial this node (it can still dial them); a peer with \
                 p2p.relay_server = true would help"
            ),
        }
    }

    pub(crate) fn on_relay_client(&mut self, event: relay::client::Event) {
        match event {
            relay::client::Event::ReservationReqAccepted { relay_peer_id, .. } => {
                if let Some(circuit) = self.reach.accepted(&relay_peer_id) {
                    self.metrics
                        .nat_events
                        .with_label_values(&["relay-reserved"])
                        .inc();
                    tracing::info!(relay = %relay_peer_id, address = %circuit, "the relay accepted: peers can reach this node through it");
                }
            }
            relay::client::Event::InboundCircuitEstablished { src_peer_id, .. } => {
                tracing::debug!(peer = %src_peer_id, "a peer connected through the relay");
            }
            relay::client::Event::OutboundCircuitEstablished { relay_peer_id, .. } => {
                tracing::debug!(relay = %relay_peer_id, "connected to a peer through a relay");
            }
        }
    }

    pub(crate) fn on_hole_punch(&mut self, event: dcutr::Event) {
        let outcome = match &event.result {
            Ok(_) => {
                tracing::info!(peer = %event.remote_peer_id, "hole punched: a direct connection replaces the relayed one");
                // Closed at once: gossip and requests could otherwise keep going through the
                // relay (and stall with it), and the relay's capacity is for others.
                let relayed: Vec<_> = self
                    .book
                    .links(&event.remote_peer_id)
                    .iter()
                    .filter(|l| l.relayed())
                    .map(|l| l.id)
                    .collect();
                for id in relayed {
                    self.swarm.close_connection(id);
                }
                "hole-punched"
            }
            Err(e) => {
                tracing::info!(peer = %event.remote_peer_id, error = %e, "hole punching failed; the relayed connection stays");
                "hole-punch-failed"
            }
        };
        self.metrics.nat_events.with_label_values(&[outcome]).inc();
    }

    /// A listener closed or failed: when it was the relay circuit, look for another relay.
    pub(crate) fn on_listener_gone(&mut self, listener: ListenerId, error: Option<String>) {
        let failed = error.is_some();
        if let Some(relay) = self.reach.listener_closed(listener, failed, Instant::now()) {
            self.metrics
                .nat_events
                .with_label_values(&["relay-lost"])
                .inc();
            let error = error.unwrap_or_else(|| "closed".into());
            tracing::info!(%relay, %error, "the relay reservation ended");
            self.act_on_reachability();
        }
    }
}
