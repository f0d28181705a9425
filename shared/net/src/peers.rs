//! What this node knows and thinks of its peers: scores, bans, message rate limits and the
//! outbound address diversity rule. Pure bookkeeping: time is an argument, and the swarm task
//! acts on the answers (disconnects, blocks, drops messages).

use doin_api::node::{ConnectionView, PeerEntry};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId};
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How peers are judged.
#[derive(Clone, Debug)]
pub struct PeerPolicy {
    /// A peer whose score falls to this value or below is banned.
    pub ban_score: i64,
    /// How long a ban lasts.
    pub ban_duration: Duration,
    /// Score points forgiven per second (scores recover towards 0, never above).
    pub recovery_per_second: i64,
    /// Gossip messages and requests a peer may send per second, sustained.
    pub messages_per_second: u32,
    /// Messages a peer may send in a burst above the sustained rate.
    pub message_burst: u32,
    /// Outbound connections allowed into one IPv4 /24 (0 = no limit).
    pub max_outbound_per_24: usize,
    /// Outbound connections allowed into one IPv4 /16 (0 = no limit).
    pub max_outbound_per_16: usize,
}

impl Default for PeerPolicy {
    fn default() -> Self {
        PeerPolicy {
            ban_score: -100,
            ban_duration: Duration::from_secs(3600),
            recovery_per_second: 1,
            messages_per_second: 200,
            message_burst: 1000,
            max_outbound_per_24: 2,
            max_outbound_per_16: 4,
        }
    }
}

/// Something a peer did wrong, with what it costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Misbehaviour {
    /// A gossip message that failed validation (undecodable, bad signature, invalid block).
    InvalidMessage,
    /// A message larger than its topic's cap.
    OversizeMessage,
    /// More messages than the rate limit allows.
    RateExceeded,
    /// A request this node cannot parse or does not serve.
    BadRequest,
    /// A response that does not decode or contradicts what was asked.
    InvalidResponse,
}

impl Misbehaviour {
    pub fn penalty(self) -> i64 {
        match self {
            Misbehaviour::InvalidMessage => 25,
            Misbehaviour::OversizeMessage => 50,
            Misbehaviour::RateExceeded => 2,
            Misbehaviour::BadRequest => 10,
            Misbehaviour::InvalidResponse => 25,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Misbehaviour::InvalidMessage => "invalid-message",
            Misbehaviour::OversizeMessage => "oversize-message",
            Misbehaviour::RateExceeded => "rate-exceeded",
            Misbehaviour::BadRequest => "bad-request",
            Misbehaviour::InvalidResponse => "invalid-response",
        }
    }
}

#[derive(Clone, Debug)]
struct PeerState {
    score: i64,
    score_at: Instant,
    /// Rate-limit tokens in thousandths of a message.
    milli_tokens: u64,
    tokens_at: Instant,
    /// The peer's open connections.
    links: Vec<Link>,
    addresses: Vec<String>,
    protocols: Vec<String>,
    agent: Option<String>,
}

/// One open connection to a peer.
#[derive(Clone, Debug)]
pub struct Link {
    pub id: ConnectionId,
    /// The peer's end: the address dialled, or where an inbound connection came from.
    pub remote: Multiaddr,
    /// This node dialled.
    pub outbound: bool,
    /// When it was established.
    pub since: Instant,
}

impl Link {
    /// Carried by a relay (`/p2p-circuit`) rather than direct.
    pub fn relayed(&self) -> bool {
        self.remote.iter().any(|p| p == Protocol::P2pCircuit)
    }
}

impl PeerState {
    /// The remote IP of the first connection this node dialled (for a relayed one, the
    /// relay's), which is what outbound diversity counts.
    fn outbound_ip(&self) -> Option<IpAddr> {
        self.links
            .iter()
            .find(|l| l.outbound)
            .and_then(|l| ip_of(&l.remote))
    }
}

#[derive(Debug, Default)]
pub struct PeerBook {
    policy: PeerPolicy,
    peers: HashMap<PeerId, PeerState>,
    bans: HashMap<PeerId, Instant>,
}

/// Whether an address counts for outbound diversity: loopback and private addresses are
/// exempt (local test networks and LANs), every public address counts.
fn counts_for_diversity(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !(v4.is_loopback() || v4.is_private() || v4.is_link_local()),
        IpAddr::V6(v6) => !v6.is_loopback(),
    }
}

/// The IP address a multiaddress starts from (for a relayed address, the relay's).
pub(crate) fn ip_of(addr: &libp2p::Multiaddr) -> Option<IpAddr> {
    use libp2p::multiaddr::Protocol;
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

/// A public address's network group: its IPv4 /16 or IPv6 /32, the unit an attacker with many
/// addresses usually cannot spread across. `None` for addresses exempt from diversity rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Netgroup {
    V4(u16),
    V6(u32),
}

impl Netgroup {
    /// A key for grouping peers: the group's own, or one shared by every address exempt from
    /// the diversity rules (loopback, private, relayed).
    pub(crate) fn key(group: Option<Netgroup>) -> Vec<u8> {
        match group {
            Some(Netgroup::V4(g)) => [&[4u8][..], &g.to_be_bytes()].concat(),
            Some(Netgroup::V6(g)) => [&[6u8][..], &g.to_be_bytes()].concat(),
            None => b"local".to_vec(),
        }
    }

    pub fn of(ip: &IpAddr) -> Option<Netgroup> {
        if !counts_for_diversity(ip) {
            return None;
        }
        Some(match ip {
            IpAddr::V4(v4) => {
                let [a, b, _, _] = v4.octets();
                Netgroup::V4(u16::from_be_bytes([a, b]))
            }
            IpAddr::V6(v6) => {
                let [a, b, c, d, ..] = v6.octets();
                Netgroup::V6(u32::from_be_bytes([a, b, c, d]))
            }
        })
    }
}

fn same_prefix(a: &IpAddr, b: &IpAddr, bits: u32) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            (u32::from(*a) & mask) == (u32::from(*b) & mask)
        }
        // IPv6: the /24 and /16 rules apply to the matching /48 and /32.
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let bits6 = if bits >= 24 { 48 } else { 32 };
            let mask = u128::MAX.checked_shl(128 - bits6).unwrap_or(0);
            (u128::from(*a) & mask) == (u128::from(*b) & mask)
        }
        _ => false,
    }
}

impl PeerBook {
    pub fn new(policy: PeerPolicy) -> PeerBook {
        PeerBook {
            policy,
            peers: HashMap::new(),
            bans: HashMap::new(),
        }
    }

    pub fn policy(&self) -> &PeerPolicy {
        &self.policy
    }

    fn entry(&mut self, peer: PeerId, now: Instant) -> &mut PeerState {
        let burst = u64::from(self.policy.message_burst).saturating_mul(1000);
        self.peers.entry(peer).or_insert_with(|| PeerState {
            score: 0,
            score_at: now,
            milli_tokens: burst,
            tokens_at: now,
            links: Vec::new(),
            addresses: Vec::new(),
            protocols: Vec::new(),
            agent: None,
        })
    }

    fn recover(policy: &PeerPolicy, state: &mut PeerState, now: Instant) {
        let secs = now.saturating_duration_since(state.score_at).as_secs();
        if secs > 0 {
            let forgiven = i64::try_from(secs)
                .unwrap_or(i64::MAX)
                .saturating_mul(policy.recovery_per_second);
            state.score = state.score.saturating_add(forgiven).min(0);
            state.score_at += Duration::from_secs(secs);
        }
    }

    /// Whether an outbound connection to `ip` keeps the diversity rule.
    pub fn outbound_allowed(&self, ip: &IpAddr) -> bool {
        if !counts_for_diversity(ip) {
            return true;
        }
        let count = |bits: u32| {
            self.peers
                .values()
                .filter_map(PeerState::outbound_ip)
                .filter(|other| same_prefix(ip, other, bits))
                .count()
        };
        let p = &self.policy;
        (p.max_outbound_per_24 == 0 || count(24) < p.max_outbound_per_24)
            && (p.max_outbound_per_16 == 0 || count(16) < p.max_outbound_per_16)
    }

    /// Records a new connection.
    pub fn connected(&mut self, peer: PeerId, link: Link, now: Instant) {
        self.entry(peer, now).links.push(link);
    }

    /// Direct connections that duplicate an older one to the same peer in the same direction
    /// and have been open at least `grace`, to be closed. One direct connection each way is
    /// enough (each way, because which end dialled matters to both: outbound places are kept
    /// for peers a node chose). More come from repeated dials, hole punches and every AutoNAT
    /// dial-back (a connection of its own, which gossip then keeps open); left alone they pile
    /// up until the per-peer connection limit refuses the next dial-back, and the probe wrongly
    /// says "private". Only the end with the smaller peer id closes, so the two ends never
    /// close different ones and leave none; it keeps the oldest, which carried the traffic so
    /// far. Relayed connections are not counted here (a hole punch closes them).
    pub fn surplus_links(
        &self,
        local: &PeerId,
        now: Instant,
        grace: Duration,
    ) -> Vec<(PeerId, ConnectionId)> {
        let mut surplus = Vec::new();
        for (peer, state) in &self.peers {
            if local >= peer {
                continue;
            }
            for outbound in [true, false] {
                let mut same_way: Vec<&Link> = state
                    .links
                    .iter()
                    .filter(|l| !l.relayed() && l.outbound == outbound)
                    .collect();
                same_way.sort_by_key(|l| l.since);
                surplus.extend(
                    same_way
                        .iter()
                        .skip(1)
                        .filter(|l| now.saturating_duration_since(l.since) >= grace)
                        .map(|l| (*peer, l.id)),
                );
            }
        }
        surplus
    }

    /// Records a closed connection.
    pub fn disconnected(&mut self, peer: &PeerId, id: ConnectionId) {
        if let Some(state) = self.peers.get_mut(peer) {
            state.links.retain(|l| l.id != id);
        }
    }

    /// The open connections to `peer`.
    pub fn links(&self, peer: &PeerId) -> &[Link] {
        self.peers.get(peer).map_or(&[], |s| s.links.as_slice())
    }

    /// Whether `peer` said (by identify) that it speaks `protocol`.
    pub fn speaks(&self, peer: &PeerId, protocol: &str) -> bool {
        self.peers
            .get(peer)
            .is_some_and(|s| s.protocols.iter().any(|p| p == protocol))
    }

    /// Records what a peer says about itself.
    pub fn identified(
        &mut self,
        peer: PeerId,
        agent: String,
        protocols: Vec<String>,
        addresses: Vec<String>,
        now: Instant,
    ) {
        let state = self.entry(peer, now);
        state.agent = Some(agent);
        state.protocols = protocols;
        state.addresses = addresses;
    }

    /// Takes one message from the peer's rate allowance; false when it has none left.
    pub fn allow_message(&mut self, peer: PeerId, now: Instant) -> bool {
        let rate = u64::from(self.policy.messages_per_second);
        let burst = u64::from(self.policy.message_burst).saturating_mul(1000);
        let state = self.entry(peer, now);
        let elapsed_ms = now.saturating_duration_since(state.tokens_at).as_millis();
        let refill = u64::try_from(elapsed_ms)
            .unwrap_or(u64::MAX)
            .saturating_mul(rate);
        state.milli_tokens = state.milli_tokens.saturating_add(refill).min(burst);
        state.tokens_at = now;
        if state.milli_tokens >= 1000 {
            state.milli_tokens -= 1000;
            true
        } else {
            false
        }
    }

    /// Charges a peer for misbehaviour. Returns true when the peer is now banned.
    pub fn penalize(&mut self, peer: PeerId, what: Misbehaviour, now: Instant) -> bool {
        let policy = self.policy.clone();
        let state = self.entry(peer, now);
        Self::recover(&policy, state, now);
        state.score = state.score.saturating_sub(what.penalty());
        if state.score <= policy.ban_score {
            state.score = policy.ban_score;
            self.bans.insert(peer, now + policy.ban_duration);
            true
        } else {
            false
        }
    }

    pub fn is_banned(&self, peer: &PeerId, now: Instant) -> bool {
        self.bans.get(peer).is_some_and(|until| *until > now)
    }

    /// Lifts bans that ran out and returns whom they covered.
    pub fn expire_bans(&mut self, now: Instant) -> Vec<PeerId> {
        let expired: Vec<PeerId> = self
            .bans
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(p, _)| *p)
            .collect();
        for p in &expired {
            self.bans.remove(p);
            if let Some(state) = self.peers.get_mut(p) {
                state.score = 0;
                state.score_at = now;
            }
        }
        expired
    }

    /// Forgets disconnected, unbanned peers (keeps the book bounded).
    pub fn forget_idle(&mut self, now: Instant) {
        let bans = &self.bans;
        self.peers
            .retain(|p, s| !s.links.is_empty() || bans.get(p).is_some_and(|u| *u > now));
    }

    pub fn score(&mut self, peer: &PeerId, now: Instant) -> i64 {
        let policy = self.policy.clone();
        match self.peers.get_mut(peer) {
            Some(state) => {
                Self::recover(&policy, state, now);
                state.score
            }
            None => 0,
        }
    }

    pub fn summaries(&mut self, now: Instant) -> Vec<PeerEntry> {
        let policy = self.policy.clone();
        let mut out: Vec<PeerEntry> = self
            .peers
            .iter_mut()
            .map(|(id, s)| {
                Self::recover(&policy, s, now);
                PeerEntry {
                    peer_id: id.to_string(),
                    score: s.score,
                    connected: !s.links.is_empty(),
                    outbound: s.links.iter().any(|l| l.outbound),
                    connections: s
                        .links
                        .iter()
                        .map(|l| ConnectionView {
                            remote_address: l.remote.to_string(),
                            outbound: l.outbound,
                            relayed: l.relayed(),
                        })
                        .collect(),
                    addresses: s.addresses.clone(),
                    protocols: s.protocols.clone(),
                    agent: s.agent.clone(),
                    banned_for_secs: self
                        .bans
                        .get(id)
                        .filter(|u| **u > now)
                        .map(|u| u.saturating_duration_since(now).as_secs()),
                }
            })
            .collect();
        out.sort_by(|a, b| a.peer_id.cmp(&b.peer_id));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book() -> PeerBook {
        PeerBook::new(PeerPolicy {
            messages_per_second: 10,
            message_burst: 5,
            ..PeerPolicy::default()
        })
    }

    #[test]
    fn repeated_invalid_messages_end_in_a_ban_that_expires() {
        let mut b = book();
        let p = PeerId::random();
        let t0 = Instant::now();
        let mut banned_after = None;
        for i in 1..=10 {
            if b.penalize(p, Misbehaviour::InvalidMessage, t0) {
                banned_after = Some(i);
                break;
            }
        }
        assert_eq!(banned_after, Some(4), "4 × 25 points reaches -100");
        assert!(b.is_banned(&p, t0));
        let later = t0 + b.policy().ban_duration + Duration::from_secs(1);
        assert!(!b.is_banned(&p, later));
        assert_eq!(b.expire_bans(later), vec![p]);
        assert_eq!(b.score(&p, later), 0);
    }

    #[test]
    fn scores_recover_slowly_and_never_above_zero() {
        let mut b = book();
        let p = PeerId::random();
        let t0 = Instant::now();
        assert!(!b.penalize(p, Misbehaviour::OversizeMessage, t0));
        assert_eq!(b.score(&p, t0), -50);
        assert_eq!(b.score(&p, t0 + Duration::from_secs(20)), -30);
        assert_eq!(b.score(&p, t0 + Duration::from_secs(500)), 0);
        // A well-spaced offender is never banned; a fast one is.
        let q = PeerId::random();
        let mut t = t0;
        for _ in 0..20 {
            assert!(!b.penalize(q, Misbehaviour::InvalidMessage, t));
            t += Duration::from_secs(30);
        }
    }

    #[test]
    fn rate_limit_allows_a_burst_then_the_sustained_rate() {
        let mut b = book();
        let p = PeerId::random();
        let t0 = Instant::now();
        let burst = (0..20).filter(|_| b.allow_message(p, t0)).count();
        assert_eq!(burst, 5);
        // 10 per second: after 300 ms three more.
        let t1 = t0 + Duration::from_millis(300);
        assert_eq!((0..20).filter(|_| b.allow_message(p, t1)).count(), 3);
    }

    #[test]
    fn netgroups_are_ipv4_16_and_ipv6_32_of_public_addresses() {
        let g = |s: &str| Netgroup::of(&s.parse().unwrap());
        assert_eq!(g("203.0.113.7"), g("203.0.200.1"));
        assert_ne!(g("203.0.113.7"), g("203.1.113.7"));
        assert_eq!(g("2001:db8:1::1"), g("2001:db8:ffff::2"));
        assert_ne!(g("2001:db8::1"), g("2001:db9::1"));
        assert_eq!(g("127.0.0.1"), None);
        assert_eq!(g("10.1.2.3"), None);
        assert_eq!(g("::1"), None);
    }

    #[test]
    fn outbound_diversity_caps_public_prefixes_only() {
        let mut b = book();
        let t = Instant::now();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let link = |ip: &str, outbound: bool| Link {
            id: ConnectionId::new_unchecked(0),
            remote: format!("/ip4/{ip}/tcp/1").parse().unwrap(),
            outbound,
            since: t,
        };
        b.connected(PeerId::random(), link("8.8.4.1", true), t);
        b.connected(PeerId::random(), link("8.8.4.2", true), t);
        assert!(!b.outbound_allowed(&ip("8.8.4.3")), "third in one /24");
        assert!(b.outbound_allowed(&ip("8.8.5.3")), "same /16, other /24");
        b.connected(PeerId::random(), link("8.8.5.3", true), t);
        b.connected(PeerId::random(), link("8.8.6.3", true), t);
        assert!(!b.outbound_allowed(&ip("8.8.7.3")), "fifth in one /16");
        assert!(b.outbound_allowed(&ip("9.9.9.9")));
        // Loopback and private addresses are exempt.
        for i in 1..10 {
            b.connected(PeerId::random(), link(&format!("127.0.0.{i}"), true), t);
        }
        assert!(b.outbound_allowed(&ip("127.0.0.20")));
        assert!(b.outbound_allowed(&ip("10.0.0.1")));
        // Inbound connections do not count.
        let mut c = book();
        for _ in 0..5 {
            c.connected(PeerId::random(), link("8.8.4.9", false), t);
        }
        assert!(c.outbound_allowed(&ip("8.8.4.1")));
    }

    #[test]
    fn the_smaller_peer_id_closes_duplicates_each_way_after_a_grace_keeping_the_oldest() {
        let mut b = book();
        let t = Instant::now();
        let grace = Duration::from_secs(5);
        let mut ids = [PeerId::random(), PeerId::random(), PeerId::random()];
        ids.sort();
        let [low, mid, high] = ids;
        let link = |id: usize, remote: &str, since: Instant| Link {
            id: ConnectionId::new_unchecked(id),
            remote: remote.parse().unwrap(),
            outbound: id != 7,
            since,
        };
        let direct = "/ip4/10.0.0.2/tcp/1";
        let relayed = "/ip4/10.0.0.9/tcp/1/p2p-circuit";
        // To `high`: a relayed link, the oldest direct one, a duplicate past its grace and
        // one still in it.
        b.connected(high, link(1, relayed, t), t);
        b.connected(high, link(2, direct, t + Duration::from_secs(1)), t);
        b.connected(high, link(3, direct, t + Duration::from_secs(2)), t);
        b.connected(high, link(4, direct, t + Duration::from_secs(9)), t);
        // And one inbound, the only one that way: it stays.
        b.connected(high, link(7, direct, t + Duration::from_secs(3)), t);
        // To `low`: duplicates too, but `low` is the one that closes them.
        b.connected(low, link(5, direct, t), t);
        b.connected(low, link(6, direct, t), t);
        let now = t + Duration::from_secs(10);
        assert_eq!(
            b.surplus_links(&mid, now, grace),
            vec![(high, ConnectionId::new_unchecked(3))]
        );
        // Later the young one is past its grace as well; the oldest always stays.
        let mut later = b.surplus_links(&mid, now + grace, grace);
        later.sort_by_key(|(_, id)| format!("{id:?}"));
        assert_eq!(
            later,
            vec![
                (high, ConnectionId::new_unchecked(3)),
                (high, ConnectionId::new_unchecked(4))
            ]
        );
        // One direct connection (and a relayed one) is never surplus.
        b.disconnected(&high, ConnectionId::new_unchecked(3));
        b.disconnected(&high, ConnectionId::new_unchecked(4));
        assert!(b.surplus_links(&mid, now + grace, grace).is_empty());
    }
}
