//! Which inbound peer makes room for a newcomer when a node is full, chosen as Bitcoin Core
//! chooses: most peers are protected, each by a quality an attacker finds hard to fake all at
//! once, and what remains gives up its youngest member of its most crowded network group.
//!
//! Protected, in this order (each from what the earlier steps left):
//! 1. one peer from each of the [`PROTECT_BY_NETGROUP`] network groups whose hash keyed with
//!    this node's secret is lowest (an attacker cannot choose groups that win);
//! 2. the [`PROTECT_BY_PING`] peers with the lowest ping;
//! 3. the [`PROTECT_BY_USEFUL`] peers that most recently delivered something this node
//!    accepted (gossip or an answer);
//! 4. the longer-connected half of the rest.
//!
//! If nobody is left, nobody is evicted (the newcomer leaves instead). Otherwise the peers left
//! are grouped by network group and the youngest peer of the largest group goes (ties: the
//! group whose youngest peer is youngest). An attacker who fills a node's inbound places from
//! few groups therefore evicts its own connections first. Pure: time, pings and the secret are
//! inputs.

use libp2p::PeerId;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub(crate) const PROTECT_BY_NETGROUP: usize = 4;
pub(crate) const PROTECT_BY_PING: usize = 8;
pub(crate) const PROTECT_BY_USEFUL: usize = 4;

/// An inbound peer that could be evicted.
#[derive(Clone, Debug)]
pub(crate) struct Candidate {
    pub peer: PeerId,
    /// Its network group's key (one shared key for loopback and private addresses).
    pub group: Vec<u8>,
    /// When its connection was kept.
    pub since: Instant,
    /// Its last ping round trip, if any.
    pub ping: Option<Duration>,
    /// When it last delivered something this node accepted.
    pub useful: Option<Instant>,
}

/// The peer to evict, if any is left unprotected.
pub(crate) fn choose(mut left: Vec<Candidate>, secret: &[u8; 32]) -> Option<PeerId> {
    // 1. One peer of each of the groups that hash lowest under the secret.
    let keyed = |g: &[u8]| doin_crypto::tagged_hash_parts("DOIN/net/evict-group", &[secret, g]).0;
    let mut groups: Vec<([u8; 32], Vec<u8>)> = left
        .iter()
        .map(|c| (keyed(&c.group), c.group.clone()))
        .collect();
    groups.sort();
    groups.dedup();
    for (_, g) in groups.into_iter().take(PROTECT_BY_NETGROUP) {
        // The longest connected of the group is the one kept.
        if let Some(i) = left
            .iter()
            .enumerate()
            .filter(|(_, c)| c.group == g)
            .min_by_key(|(_, c)| c.since)
            .map(|(i, _)| i)
        {
            left.swap_remove(i);
        }
    }
    // 2. The lowest pings (no ping yet counts as the slowest).
    left.sort_by_key(|c| (c.ping.is_none(), c.ping));
    left.drain(..PROTECT_BY_PING.min(left.len()));
    // 3. The most recently useful (never useful comes last).
    left.sort_by_key(|c| std::cmp::Reverse(c.useful));
    let useful = left.iter().take_while(|c| c.useful.is_some()).count();
    left.drain(..PROTECT_BY_USEFUL.min(useful));
    // 4. The longer-connected half.
    left.sort_by_key(|c| c.since);
    left.drain(..left.len() / 2);
    // What is left: the youngest of the most crowded group.
    let mut by_group: BTreeMap<Vec<u8>, Vec<&Candidate>> = BTreeMap::new();
    for c in &left {
        by_group.entry(c.group.clone()).or_default().push(c);
    }
    let youngest = |members: &[&Candidate]| members.iter().map(|c| c.since).max();
    let (_, members) = by_group
        .iter()
        .max_by_key(|(_, members)| (members.len(), youngest(members)))?;
    members.iter().max_by_key(|c| c.since).map(|c| c.peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(group: &str, age_secs: u64, ping_ms: Option<u64>, now: Instant) -> Candidate {
        Candidate {
            peer: PeerId::random(),
            group: group.as_bytes().to_vec(),
            since: now - Duration::from_secs(age_secs),
            ping: ping_ms.map(Duration::from_millis),
            useful: None,
        }
    }

    #[test]
    fn a_small_inbound_set_is_all_protected() {
        let now = Instant::now() + Duration::from_secs(100_000);
        // Four groups and eight pings protect twelve peers: nothing is left to evict.
        let peers: Vec<Candidate> = (0..12)
            .map(|i| candidate(&format!("g{}", i % 6), 100 + i, Some(50 + i), now))
            .collect();
        assert_eq!(choose(peers, &[1; 32]), None);
    }

    #[test]
    fn an_attacker_crowding_one_group_evicts_its_own_youngest() {
        let now = Instant::now() + Duration::from_secs(100_000);
        let mut peers = Vec::new();
        // Honest peers in 10 groups, connected for hours, decent pings.
        for i in 0..10u64 {
            peers.push(candidate(
                &format!("honest{i}"),
                3_600 + i,
                Some(80 + i),
                now,
            ));
        }
        // An attacker's 30 peers in two groups, just connected, answering pings fast.
        let mut attacker = Vec::new();
        for i in 0..30u64 {
            let c = candidate(
                if i % 2 == 0 { "evil-a" } else { "evil-b" },
                i,
                Some(1),
                now,
            );
            attacker.push(c.peer);
            peers.push(c);
        }
        for secret in [[0u8; 32], [9; 32], [200; 32], [3; 32]] {
            let chosen = choose(peers.clone(), &secret).expect("someone is evictable");
            assert!(attacker.contains(&chosen), "an honest peer was chosen");
        }
    }

    #[test]
    fn useful_and_long_connected_peers_are_kept() {
        let now = Instant::now() + Duration::from_secs(100_000);
        // Forty peers of one group; the longer connected, the faster they answer pings.
        let mut peers: Vec<Candidate> = (0..40u64)
            .map(|i| candidate("same", 10 + i, Some(200 - i), now))
            .collect();
        // The youngest peer delivered something a moment ago.
        peers[0].useful = Some(now);
        let useful = peers[0].peer;
        let chosen = choose(peers.clone(), &[5; 32]).unwrap();
        assert_ne!(chosen, useful);
        let chosen_age = peers
            .iter()
            .find(|c| c.peer == chosen)
            .map(|c| now - c.since);
        // Protected: the group's oldest, the 8 fastest, the useful one, then the older half of
        // the 30 left; the youngest of the rest goes.
        assert_eq!(
            chosen_age,
            Some(Duration::from_secs(11)),
            "the youngest unprotected"
        );
    }
}
