//! Which connections a node keeps: the inbound budget, the outbound slots reserved for peers
//! this node chose, and the short stay a full node grants a newcomer so that it can learn other
//! peers' addresses before it is let go.
//!
//! [`Admission`] is pure bookkeeping over connection ids (time is an argument); it must not
//! dial, close or log. Its thin libp2p shell is `admission_behaviour.rs`: it refuses a
//! connection while the handshake completes (so a Kademlia lookup sees a dial failure and moves
//! on, rather than a connection that opens and closes), and closes newcomers when their stay
//! ends and peers evicted for them.
//!
//! Why a short stay instead of a refusal: a newcomer whose bootstrap peers are all full is
//! refused by each of them and knows nobody else, so it would stay isolated. Admitted for a
//! grace period, it runs identify and a Kademlia lookup through the full peer, learns the
//! peers near it, and dials those; the full peer then closes the connection (or keeps it, if a
//! slot has freed meanwhile).

use crate::peers::Netgroup;
use libp2p::swarm::ConnectionId;
use libp2p::PeerId;
use std::collections::{BTreeMap, HashMap};
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

/// What became of a newcomer whose grace ended (and of a peer evicted for it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GraceEnded {
    /// A slot had freed, or was freed by an eviction: the connection is kept.
    Kept,
    /// Still full: close the connection.
    Close,
    /// A connection of the inbound peer evicted to make room: close it.
    Evicted,
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
    /// When it was established.
    since: Instant,
}

/// The connections open now and how each counts.
#[derive(Debug)]
pub struct Admission {
    limits: AdmissionLimits,
    open: BTreeMap<ConnectionId, Open>,
    /// Keys the network groups protected from eviction, so an attacker cannot pick them.
    secret: [u8; 32],
    /// Each connected peer's last ping round trip.
    pings: HashMap<PeerId, Duration>,
    /// When each connected peer last delivered something this node accepted.
    useful: HashMap<PeerId, Instant>,
}

impl Admission {
    pub fn new(limits: AdmissionLimits) -> Admission {
        Admission {
            limits,
            open: BTreeMap::new(),
            secret: rand::random(),
            pings: HashMap::new(),
            useful: HashMap::new(),
        }
    }

    /// Records a peer's ping round trip (it protects fast peers from eviction).
    pub fn ping(&mut self, peer: PeerId, rtt: Duration) {
        if self.open.values().any(|o| o.peer == peer) {
            self.pings.insert(peer, rtt);
        }
    }

    /// Records that `peer` delivered something this node accepted.
    pub fn useful(&mut self, peer: PeerId, now: Instant) {
        if self.open.values().any(|o| o.peer == peer) {
            self.useful.insert(peer, now);
        }
    }

    /// The inbound peer to evict for a newcomer ([`crate::eviction`]), if any is unprotected.
    /// Only peers kept by inbound connections alone are candidates.
    fn eviction_victim(&self, kept: &HashMap<PeerId, bool>) -> Option<PeerId> {
        let mut first: HashMap<PeerId, (Instant, Option<Netgroup>)> = HashMap::new();
        for o in self.open.values() {
            if o.kind == Kind::Inbound && kept.get(&o.peer) == Some(&false) {
                let e = first.entry(o.peer).or_insert((o.since, o.netgroup));
                if o.since < e.0 {
                    *e = (o.since, o.netgroup);
                }
            }
        }
        let candidates = first
            .into_iter()
            .map(|(peer, (since, group))| crate::eviction::Candidate {
                peer,
                group: Netgroup::key(group),
                since,
                ping: self.pings.get(&peer).copied(),
                useful: self.useful.get(&peer).copied(),
            })
            .collect();
        crate::eviction::choose(candidates, &self.secret)
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
        Self::to_u32(kept.len()) < self.limits.max_connections
            && Self::to_u32(inbound) < self.limits.inbound_budget()
            && self.group_has_room(kept, netgroup)
    }

    /// Whether one more inbound peer from `netgroup` keeps the per-group limit.
    fn group_has_room(&self, kept: &HashMap<PeerId, bool>, netgroup: Option<Netgroup>) -> bool {
        let limit = self.limits.max_inbound_per_netgroup;
        match netgroup {
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
        }
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
                since: now,
            },
        );
        decision
    }

    /// Forgets a closed connection.
    pub fn closed(&mut self, id: ConnectionId) {
        if let Some(o) = self.open.remove(&id) {
            self.forget_if_gone(&o.peer);
        }
    }

    fn forget_if_gone(&mut self, peer: &PeerId) {
        if !self.open.values().any(|o| o.peer == *peer) {
            self.pings.remove(peer);
            self.useful.remove(peer);
        }
    }

    /// Newcomers whose grace has ended, oldest first: each kept if a slot has freed, or kept in
    /// place of an inbound peer evicted for it (see `eviction.rs`; only when its own network
    /// group has room), or to be closed. What is to be closed (a newcomer, or every connection
    /// of an evicted peer) is forgotten here; its close event is then a no-op.
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
            let kept = self.kept_by_peer();
            let room = self.inbound_has_room(&kept, group);
            let victim = if room || !self.group_has_room(&kept, group) {
                None
            } else {
                self.eviction_victim(&kept)
            };
            if let Some(victim) = victim {
                let gone: Vec<ConnectionId> = self
                    .open
                    .iter()
                    .filter(|(_, o)| o.peer == victim)
                    .map(|(id, _)| *id)
                    .collect();
                for v in gone {
                    self.open.remove(&v);
                    out.push((v, victim, GraceEnded::Evicted));
                }
                self.forget_if_gone(&victim);
            }
            let Some(open) = self.open.get_mut(&id) else {
                continue;
            };
            let peer = open.peer;
            if room || victim.is_some() {
                open.kind = Kind::Inbound;
                out.push((id, peer, GraceEnded::Kept));
            } else {
                self.open.remove(&id);
                self.forget_if_gone(&peer);
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
    fn a_newcomer_replaces_the_youngest_peer_of_the_most_crowded_group_when_one_is_unprotected() {
        let start = Instant::now();
        let mut a = Admission::new(AdmissionLimits {
            max_connections: 24,
            outbound_reserved: 4,
            max_inbound_per_netgroup: 10,
            newcomer_slots: 2,
            newcomer_grace: Duration::from_secs(10),
        });
        let group = |ip: &str| Netgroup::of(&ip.parse().unwrap());
        // Ten honest inbound peers from ten groups, an hour ago, answering pings in 50 ms.
        let mut n = 0;
        let mut honest = Vec::new();
        for i in 0..10 {
            let p = PeerId::random();
            honest.push(p);
            let ip = format!("{}.1.1.1", 20 + i);
            assert_eq!(
                a.established(conn(n), p, true, group(&ip), start),
                Admitted::Kept
            );
            a.ping(p, Duration::from_millis(50));
            n += 1;
        }
        // An attacker fills the other ten inbound places from one group, later, answering
        // pings fast.
        let later = start + Duration::from_secs(3_600);
        let mut attacker = Vec::new();
        for i in 0..10 {
            let p = PeerId::random();
            attacker.push(p);
            let ip = format!("66.66.{i}.1");
            let at = later + Duration::from_secs(i);
            assert_eq!(
                a.established(conn(n), p, true, group(&ip), at),
                Admitted::Kept
            );
            a.ping(p, Duration::from_millis(1));
            n += 1;
        }
        assert_eq!(a.kept_inbound(), 20);
        // A newcomer from a new group: at the end of its stay an attacker's peer makes room.
        let newcomer = PeerId::random();
        let at = later + Duration::from_secs(20);
        assert_eq!(
            a.established(conn(n), newcomer, true, group("99.1.1.1"), at),
            Admitted::Newcomer
        );
        let ended = a.grace_ended(at + Duration::from_secs(10));
        let evicted: Vec<PeerId> = ended
            .iter()
            .filter(|e| e.2 == GraceEnded::Evicted)
            .map(|e| e.1)
            .collect();
        assert_eq!(evicted.len(), 1, "{ended:?}");
        assert!(attacker.contains(&evicted[0]), "an attacker's peer goes");
        assert!(ended.contains(&(conn(n), newcomer, GraceEnded::Kept)));
        assert!(a.is_kept(&newcomer) && !a.is_kept(&evicted[0]));
        assert_eq!(a.kept_inbound(), 20);
        assert!(honest.iter().all(|h| a.is_kept(h)));
    }

    #[test]
    fn a_small_full_node_evicts_nobody() {
        // Two inbound places: the group and the ping protections cover both.
        let now = Instant::now();
        let mut a = Admission::new(limits());
        assert_eq!(
            a.established(conn(1), PeerId::random(), true, None, now),
            Admitted::Kept
        );
        assert_eq!(
            a.established(conn(2), PeerId::random(), true, None, now),
            Admitted::Kept
        );
        let newcomer = PeerId::random();
        assert_eq!(
            a.established(conn(3), newcomer, true, None, now),
            Admitted::Newcomer
        );
        let ended = a.grace_ended(now + Duration::from_secs(10));
        assert_eq!(ended, vec![(conn(3), newcomer, GraceEnded::Close)]);
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
