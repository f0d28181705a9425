//! Peers this node has dialled and kept, remembered across restarts, and the anchors among
//! them: the peers it was connected to when it stopped, dialled first when it starts again
//! (before the bootstrap list), so that a restart does not hand the choice of its first peers to
//! whoever answers the bootstrap peers' DHT first.
//!
//! Only outbound peers are remembered: an address this node dialled successfully is one it
//! chose and can reach; an inbound peer's address may be anything it claims. They are kept the
//! way Bitcoin Core keeps its "tried" table: [`TRIED_BUCKETS`] buckets of
//! [`TRIED_BUCKET_SIZE`] places, where a peer's place is decided by hashes keyed with a secret
//! only this node knows, of its network group (IPv4 /16, IPv6 /32; loopback and private
//! addresses together) and its id. One group reaches at most [`TRIED_BUCKETS_PER_GROUP`]
//! buckets, so it holds at most [`MAX_KNOWN_PER_GROUP`] places however many of its peers this
//! node reaches, and no one can choose which places its peers take (so whom they push out). A
//! peer reached later takes its place from the one there only if that one fails a test: as
//! Bitcoin Core's addrman does before it evicts from "tried", the node dials the peer in the
//! place, and it stays if it answers ([`KnownPeers::kept_outbound`] says whom to dial). So an
//! attacker who gets itself dialled again and again cannot push out peers that still answer.
//!
//! [`KnownPeers`] is a pure structure (its secret is an argument or drawn once); [`load`] and
//! [`save`] are its file I/O (one canonical encoding, bounded, written to a temporary file,
//! synced, then renamed). A file that does not decode is set aside as `<file>.bad` and the node
//! starts with an empty list instead of stopping.

use crate::address_book::keyed_hash;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const TRIED_BUCKETS: usize = 16;
pub const TRIED_BUCKET_SIZE: usize = 16;
/// Buckets the peers of one network group can land in.
pub const TRIED_BUCKETS_PER_GROUP: u64 = 2;
/// Peers remembered at most.
pub const MAX_KNOWN: usize = TRIED_BUCKETS * TRIED_BUCKET_SIZE;
/// Peers remembered at most from one network group: peers of one group cannot fill the list,
/// however often this node reaches them.
pub const MAX_KNOWN_PER_GROUP: usize = TRIED_BUCKETS_PER_GROUP as usize * TRIED_BUCKET_SIZE;
/// Peers dialled first at start.
pub const ANCHORS: usize = 2;
/// Places whose peer is being tested at a time; a newcomer colliding with a place beyond this
/// (or with a place already under test) is not recorded (it will be reached again).
pub const MAX_TESTS: usize = 8;
/// How long the test of a place's peer may go unanswered before the newcomer takes the place.
/// A dial fails well within it; this only covers a test whose answer never came.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(60);
/// The file is never larger than this (256 addresses of a few hundred bytes each fit easily).
const MAX_FILE_BYTES: usize = 256 * 1024;
/// Version 2 adds the secret and keyed places; a version 1 file (a most-recent-first list) is
/// still read, its peers placed with a new secret.
const FORMAT_VERSION: u8 = 2;

#[derive(Serialize, Deserialize)]
struct FileV1 {
    version: u8,
    anchors: Vec<String>,
    addresses: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct FileV2 {
    version: u8,
    secret: Vec<u8>,
    anchors: Vec<String>,
    /// Most recently kept first; the places follow from the secret.
    addresses: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Kept {
    peer: PeerId,
    /// Ends in `/p2p/<peer>`.
    addr: Multiaddr,
    /// When it was kept, on this list's own clock.
    at: u64,
}

/// A newcomer that wants a taken place, waiting on the test of the peer there.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Test {
    place: usize,
    occupant: PeerId,
    newcomer: PeerId,
    newcomer_addr: Multiaddr,
    since: Instant,
}

/// Remembered peers, each once, in keyed places; each address ends in `/p2p/<id>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownPeers {
    secret: [u8; 32],
    places: Vec<Option<Kept>>,
    clock: u64,
    anchors: Vec<Multiaddr>,
    changed: bool,
    /// Not saved: a restart forgets the newcomers waiting (they will be reached again).
    tests: Vec<Test>,
}

impl Default for KnownPeers {
    /// An empty list with a fresh random secret.
    fn default() -> Self {
        KnownPeers::new(rand::random())
    }
}

/// `addr` ending in `/p2p/<peer>` (added if missing), or `None` if it names another peer.
fn with_peer(addr: &Multiaddr, peer: PeerId) -> Option<Multiaddr> {
    match addr.iter().last() {
        Some(Protocol::P2p(p)) if p == peer => Some(addr.clone()),
        Some(Protocol::P2p(_)) => None,
        _ => Some(addr.clone().with(Protocol::P2p(peer))),
    }
}

fn group_of(addr: &Multiaddr) -> Vec<u8> {
    crate::peers::Netgroup::key(
        crate::peers::ip_of(addr)
            .as_ref()
            .and_then(crate::peers::Netgroup::of),
    )
}

fn peer_of(addr: &Multiaddr) -> Option<PeerId> {
    match addr.iter().last() {
        Some(Protocol::P2p(p)) => Some(p),
        _ => None,
    }
}

impl KnownPeers {
    /// An empty list with this node's secret (made once and kept in the file).
    pub fn new(secret: [u8; 32]) -> KnownPeers {
        KnownPeers {
            secret,
            places: vec![None; MAX_KNOWN],
            clock: 0,
            anchors: Vec::new(),
            changed: false,
            tests: Vec::new(),
        }
    }

    /// The one place `peer`, at an address of `group`, may take.
    fn place(&self, peer: &PeerId, group: &[u8]) -> usize {
        let id = peer.to_bytes();
        let spread =
            keyed_hash(&self.secret, "DOIN/net/tried/spread", &[&id]) % TRIED_BUCKETS_PER_GROUP;
        let bucket = keyed_hash(
            &self.secret,
            "DOIN/net/tried/bucket",
            &[group, &spread.to_le_bytes()],
        ) % TRIED_BUCKETS as u64;
        let slot = keyed_hash(
            &self.secret,
            "DOIN/net/tried/slot",
            &[&bucket.to_le_bytes(), &id],
        ) % TRIED_BUCKET_SIZE as u64;
        // Both below their bounds, so the index fits.
        (bucket as usize) * TRIED_BUCKET_SIZE + slot as usize
    }

    /// Records that this node dialled `peer` at `addr` and kept the connection. The peer takes
    /// its place if it is free or its own. If another peer holds it, that peer stays while it
    /// is connected (`connected` says which are); otherwise it is tested: the answer is the
    /// address to dial, and [`KnownPeers::unreachable`] or [`KnownPeers::expire_tests`] give
    /// the place to the newcomer if the test fails, while the tested peer's own kept
    /// connection (this call again, for it) keeps the place its own.
    pub fn kept_outbound(
        &mut self,
        peer: PeerId,
        addr: &Multiaddr,
        connected: impl Fn(&PeerId) -> bool,
        now: Instant,
    ) -> Option<Multiaddr> {
        let addr = with_peer(addr, peer)?;
        // A relayed address depends on the relay's reservation; the peer is found again
        // through the DHT instead.
        if addr.iter().any(|p| p == Protocol::P2pCircuit) {
            return None;
        }
        // A peer under test that is reached again has passed its test.
        self.tests.retain(|t| t.occupant != peer);
        let i = self.place(&peer, &group_of(&addr));
        match &self.places[i] {
            Some(k) if k.peer == peer && k.addr == addr && k.at == self.clock => return None,
            Some(k) if k.peer != peer && connected(&k.peer) => return None,
            Some(k) if k.peer != peer => {
                if self.tests.len() >= MAX_TESTS || self.tests.iter().any(|t| t.place == i) {
                    return None;
                }
                self.tests.push(Test {
                    place: i,
                    occupant: k.peer,
                    newcomer: peer,
                    newcomer_addr: addr,
                    since: now,
                });
                return Some(k.addr.clone());
            }
            _ => {}
        }
        self.take_place(i, peer, addr);
        None
    }

    /// Puts `peer` in place `i` (moving it if it was elsewhere).
    fn take_place(&mut self, i: usize, peer: PeerId, addr: Multiaddr) {
        // Each peer once: at another address (so maybe in another group) it moves.
        for place in &mut self.places {
            if place.as_ref().is_some_and(|k| k.peer == peer) {
                *place = None;
            }
        }
        self.clock += 1;
        self.places[i] = Some(Kept {
            peer,
            addr,
            at: self.clock,
        });
        self.changed = true;
    }

    /// A newcomer whose test failed takes the place, unless the place changed meanwhile.
    fn give_place(&mut self, test: Test) {
        let still = self.places[test.place]
            .as_ref()
            .is_some_and(|k| k.peer == test.occupant);
        if still {
            self.take_place(test.place, test.newcomer, test.newcomer_addr);
        }
    }

    /// The dial that tested `peer` failed: the newcomers waiting on it take their places.
    pub fn unreachable(&mut self, peer: &PeerId) {
        let (failed, waiting): (Vec<Test>, Vec<Test>) =
            self.tests.drain(..).partition(|t| t.occupant == *peer);
        self.tests = waiting;
        for test in failed {
            self.give_place(test);
        }
    }

    /// The test of `peer` could not be made (this node refused its own dial): the peer stays
    /// and the newcomers waiting on it are not recorded.
    pub fn untested(&mut self, peer: &PeerId) {
        self.tests.retain(|t| t.occupant != *peer);
    }

    /// Tests unanswered for [`TEST_TIMEOUT`] count as failed.
    pub fn expire_tests(&mut self, now: Instant) {
        let (expired, waiting): (Vec<Test>, Vec<Test>) = self
            .tests
            .drain(..)
            .partition(|t| now.saturating_duration_since(t.since) >= TEST_TIMEOUT);
        self.tests = waiting;
        for test in expired {
            self.give_place(test);
        }
    }

    /// Tests under way.
    pub fn tests(&self) -> usize {
        self.tests.len()
    }

    /// Chooses the anchors: the most recently kept of the peers connected now.
    pub fn set_anchors(&mut self, connected: &[PeerId]) {
        let anchors: Vec<Multiaddr> = self
            .addresses()
            .into_iter()
            .filter(|a| peer_of(a).is_some_and(|p| connected.contains(&p)))
            .take(ANCHORS)
            .collect();
        if anchors != self.anchors {
            self.anchors = anchors;
            self.changed = true;
        }
    }

    pub fn anchors(&self) -> &[Multiaddr] {
        &self.anchors
    }

    /// Every remembered address, most recently kept first.
    pub fn addresses(&self) -> Vec<Multiaddr> {
        let mut kept: Vec<&Kept> = self.places.iter().flatten().collect();
        kept.sort_by_key(|k| std::cmp::Reverse(k.at));
        kept.into_iter().map(|k| k.addr.clone()).collect()
    }

    pub fn len(&self) -> usize {
        self.places.iter().flatten().count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether anything changed since the last [`KnownPeers::mark_saved`].
    pub fn changed(&self) -> bool {
        self.changed
    }

    pub fn mark_saved(&mut self) {
        self.changed = false;
    }

    /// The file's bytes.
    pub fn encode(&self) -> Result<Vec<u8>, doin_codec::CodecError> {
        let strings = |v: &[Multiaddr]| v.iter().map(|a| a.to_string()).collect();
        doin_codec::encode(&FileV2 {
            version: FORMAT_VERSION,
            secret: self.secret.to_vec(),
            anchors: strings(&self.anchors),
            addresses: strings(&self.addresses()),
        })
    }

    /// Reads the file's bytes: exact, bounded, every address one of a peer. The peers are
    /// placed again from the secret, oldest first, so the list is the one that was saved.
    pub fn decode(bytes: &[u8]) -> Result<KnownPeers, String> {
        let (secret, anchors, addresses, migrated) =
            match doin_codec::decode_exact_bounded::<FileV2>(bytes, MAX_FILE_BYTES) {
                Ok(file) if file.version == FORMAT_VERSION => {
                    let secret: [u8; 32] = file
                        .secret
                        .try_into()
                        .map_err(|_| "the secret is not 32 bytes".to_string())?;
                    (secret, file.anchors, file.addresses, false)
                }
                Ok(file) => return Err(format!("unknown format version {}", file.version)),
                Err(v2_error) => {
                    match doin_codec::decode_exact_bounded::<FileV1>(bytes, MAX_FILE_BYTES) {
                        Ok(file) if file.version == 1 => {
                            (rand::random(), file.anchors, file.addresses, true)
                        }
                        _ => return Err(v2_error.to_string()),
                    }
                }
            };
        if addresses.len() > MAX_KNOWN || anchors.len() > ANCHORS {
            return Err("more addresses than a node keeps".into());
        }
        let parse = |v: Vec<String>| -> Result<Vec<(PeerId, Multiaddr)>, String> {
            v.into_iter()
                .map(|s| {
                    let a: Multiaddr = s.parse().map_err(|e| format!("{s:?}: {e}"))?;
                    let p = peer_of(&a)
                        .ok_or_else(|| format!("{s:?} does not end in /p2p/<peer id>"))?;
                    Ok((p, a))
                })
                .collect()
        };
        let mut known = KnownPeers::new(secret);
        for (peer, addr) in parse(addresses)?.into_iter().rev() {
            // A list this build saved has one peer per place; a first-format list placed
            // with a new secret may collide, and then the more recent peer wins, untested.
            if let Some(addr) = with_peer(&addr, peer) {
                let i = known.place(&peer, &group_of(&addr));
                known.take_place(i, peer, addr);
            }
        }
        known.anchors = parse(anchors)?.into_iter().map(|(_, a)| a).collect();
        // A migrated file is written again in the current format.
        known.changed = migrated;
        Ok(known)
    }
}

/// Loads the list at `path`: empty if there is none; set aside (renamed to `<path>.bad`, with a
/// warning) if it cannot be read, so a damaged file never stops the node.
pub fn load(path: &Path) -> KnownPeers {
    load_or_set_aside(path, "the list of known peers", KnownPeers::decode).unwrap_or_default()
}

/// Reads and decodes the file at `path`: `None` if there is none, or if it cannot be read or
/// decoded — then, with a warning naming `what`, it is renamed to `<path>.bad` so that it is
/// kept for a look but never stops the node.
pub(crate) fn load_or_set_aside<T>(
    path: &Path,
    what: &str,
    decode: impl FnOnce(&[u8]) -> Result<T, String>,
) -> Option<T> {
    match std::fs::read(path) {
        Ok(bytes) => match decode(&bytes) {
            Ok(value) => Some(value),
            Err(e) => {
                let aside = bad_path(path);
                tracing::warn!(file = %path.display(), error = %e, set_aside = %aside.display(),
                    "{what} does not decode; starting without it");
                if let Err(e) = std::fs::rename(path, &aside) {
                    tracing::warn!(error = %e, "cannot set the damaged file aside");
                }
                None
            }
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "cannot read {what}");
            None
        }
    }
}

fn bad_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".bad");
    PathBuf::from(name)
}

/// Writes the list's `bytes` to `path` durably, as the node key is written: a temporary file,
/// synced, renamed over `path`, the directory synced.
pub fn save(path: &Path, bytes: &[u8]) -> io::Result<()> {
    crate::node_key::write_durably(path, bytes, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> Multiaddr {
        format!("/ip4/203.0.113.1/tcp/{port}").parse().unwrap()
    }

    /// An address in its own /16 for each `i`.
    fn spread(i: usize) -> Multiaddr {
        format!("/ip4/{}.{}.1.1/tcp/8646", 1 + i / 200, i % 200)
            .parse()
            .unwrap()
    }

    fn none(_: &PeerId) -> bool {
        false
    }

    /// Keeps `peer` as the swarm would if every tested peer failed its test at once (the
    /// worst case for the peers already kept).
    fn keep(k: &mut KnownPeers, peer: PeerId, addr: &Multiaddr) {
        if let Some(tested) = k.kept_outbound(peer, addr, none, Instant::now()) {
            k.unreachable(&peer_of(&tested).unwrap());
        }
    }

    fn in_group(k: &KnownPeers, prefix: &str) -> usize {
        k.addresses()
            .iter()
            .filter(|a| a.to_string().starts_with(prefix))
            .count()
    }

    #[test]
    fn one_network_group_holds_a_bounded_share() {
        let mut k = KnownPeers::default();
        for i in 0..100 {
            keep(&mut k, PeerId::random(), &spread(i));
        }
        let before = k.len();
        // Many peers of one group reached one after another take at most the group's share
        // of places, and so push out at most that many of the others.
        for port in 0..2_000 {
            keep(&mut k, PeerId::random(), &addr(port));
        }
        let same = in_group(&k, "/ip4/203.0.");
        assert!(same <= MAX_KNOWN_PER_GROUP, "{same}");
        // 2 000 peers over at most 32 places: every place of the group's buckets is taken. Its
        // two spreads may hash to one bucket (1 secret in 16), so count its buckets.
        let group = group_of(&addr(0));
        let buckets: std::collections::BTreeSet<u64> = (0..TRIED_BUCKETS_PER_GROUP)
            .map(|spread| {
                keyed_hash(
                    &k.secret,
                    "DOIN/net/tried/bucket",
                    &[&group, &spread.to_le_bytes()],
                ) % TRIED_BUCKETS as u64
            })
            .collect();
        assert_eq!(same, buckets.len() * TRIED_BUCKET_SIZE);
        assert!(k.len() - same >= before - MAX_KNOWN_PER_GROUP);
        // The last one reached is first.
        assert!(k.addresses()[0]
            .to_string()
            .starts_with("/ip4/203.0.113.1/tcp/1999/"));
    }

    #[test]
    fn where_a_peer_lands_depends_on_the_secret() {
        let peers: Vec<PeerId> = (0..64).map(|_| PeerId::random()).collect();
        let (a, b) = (KnownPeers::new([1; 32]), KnownPeers::new([2; 32]));
        let group = group_of(&addr(1));
        let moved = peers
            .iter()
            .filter(|p| a.place(p, &group) != b.place(p, &group))
            .count();
        // 1 in 32 would stay by chance (same bucket of the group's two, same slot).
        assert!(moved > 48, "{moved}");
        // With one secret a peer always lands in the same place.
        assert!(peers
            .iter()
            .all(|p| a.place(p, &group) == KnownPeers::new([1; 32]).place(p, &group)));
    }

    /// A peer and a rival that lands in its place.
    fn rivals(k: &KnownPeers) -> (PeerId, PeerId) {
        let first = PeerId::random();
        let group = group_of(&addr(1));
        let place = k.place(&first, &group);
        let rival = std::iter::repeat_with(PeerId::random)
            .find(|p| k.place(p, &group) == place)
            .unwrap();
        (first, rival)
    }

    #[test]
    fn a_connected_peer_keeps_its_place() {
        let mut k = KnownPeers::new([7; 32]);
        let (first, rival) = rivals(&k);
        let t = Instant::now();
        assert_eq!(k.kept_outbound(first, &addr(1), none, t), None);
        // While the first is connected, the rival is not recorded in its place, nor tested.
        assert_eq!(k.kept_outbound(rival, &addr(2), |p| *p == first, t), None);
        assert_eq!(k.addresses(), vec![addr(1).with(Protocol::P2p(first))]);
        assert_eq!(k.tests(), 0);
    }

    #[test]
    fn a_peer_in_the_place_is_tested_before_a_newcomer_takes_it() {
        let first_addr = |p| addr(1).with(Protocol::P2p(p));
        let t = Instant::now();
        // It answers: it stays, and the newcomer is not recorded.
        let mut k = KnownPeers::new([7; 32]);
        let (first, rival) = rivals(&k);
        k.kept_outbound(first, &addr(1), none, t);
        assert_eq!(
            k.kept_outbound(rival, &addr(2), none, t),
            Some(first_addr(first))
        );
        assert_eq!(k.addresses(), vec![first_addr(first)]);
        // One test per place: the same newcomer again (or another) waits on the same test.
        assert_eq!(k.kept_outbound(rival, &addr(2), none, t), None);
        assert_eq!(k.tests(), 1);
        k.kept_outbound(first, &addr(1), none, t);
        assert_eq!(k.tests(), 0);
        k.unreachable(&first);
        k.expire_tests(t + TEST_TIMEOUT);
        assert_eq!(k.addresses(), vec![first_addr(first)]);

        // It does not answer: the newcomer takes the place.
        let mut k = KnownPeers::new([7; 32]);
        k.kept_outbound(first, &addr(1), none, t);
        k.kept_outbound(rival, &addr(2), none, t);
        k.unreachable(&first);
        assert_eq!(k.addresses(), vec![addr(2).with(Protocol::P2p(rival))]);

        // No answer at all within the timeout: the same.
        let mut k = KnownPeers::new([7; 32]);
        k.kept_outbound(first, &addr(1), none, t);
        k.kept_outbound(rival, &addr(2), none, t);
        k.expire_tests(t + TEST_TIMEOUT - Duration::from_secs(1));
        assert_eq!(k.addresses(), vec![first_addr(first)]);
        k.expire_tests(t + TEST_TIMEOUT);
        assert_eq!(k.addresses(), vec![addr(2).with(Protocol::P2p(rival))]);

        // The test could not be made: the peer stays.
        let mut k = KnownPeers::new([7; 32]);
        k.kept_outbound(first, &addr(1), none, t);
        k.kept_outbound(rival, &addr(2), none, t);
        k.untested(&first);
        k.expire_tests(t + TEST_TIMEOUT);
        assert_eq!(k.addresses(), vec![first_addr(first)]);
    }

    #[test]
    fn tests_under_way_are_bounded() {
        let mut k = KnownPeers::default();
        let t = Instant::now();
        for i in 0..MAX_KNOWN {
            keep(&mut k, PeerId::random(), &spread(i));
        }
        let kept = k.addresses();
        let mut asked = 0;
        for i in 0..MAX_KNOWN {
            if k.kept_outbound(PeerId::random(), &spread(i), none, t)
                .is_some()
            {
                asked += 1;
            }
        }
        assert_eq!(asked, MAX_TESTS);
        assert_eq!(k.tests(), MAX_TESTS);
        // Newcomers took free places only: nobody was pushed out before a test failed.
        let now_kept = k.addresses();
        assert!(kept.iter().all(|a| now_kept.contains(a)));
    }

    #[test]
    fn most_recent_first_each_peer_once_and_bounded() {
        let mut k = KnownPeers::default();
        let peers: Vec<PeerId> = (0..MAX_KNOWN * 2).map(|_| PeerId::random()).collect();
        for (i, p) in peers.iter().enumerate() {
            keep(&mut k, *p, &spread(i));
        }
        assert!(k.len() <= MAX_KNOWN);
        // Kept again at a new address: first, still once.
        let last = peers[MAX_KNOWN * 2 - 1];
        keep(&mut k, last, &spread(9999));
        assert_eq!(k.addresses()[0], spread(9999).with(Protocol::P2p(last)));
        let listed = k.addresses();
        assert_eq!(
            listed.iter().filter(|a| peer_of(a) == Some(last)).count(),
            1
        );
        // Kept again as it is: nothing to save.
        k.mark_saved();
        keep(&mut k, last, &spread(9999));
        assert!(!k.changed());
        // An address naming another peer is not recorded under this one.
        let other = addr(5).with(Protocol::P2p(PeerId::random()));
        keep(&mut k, peers[0], &other);
        assert!(!k.changed());
    }

    #[test]
    fn the_file_gives_back_the_same_list_and_anchors() {
        let mut k = KnownPeers::default();
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        keep(&mut k, a, &spread(1));
        keep(&mut k, b, &spread(2));
        keep(&mut k, c, &spread(3));
        k.set_anchors(&[a, c]);
        assert_eq!(
            k.anchors(),
            &[
                spread(3).with(Protocol::P2p(c)),
                spread(1).with(Protocol::P2p(a))
            ]
        );
        let bytes = k.encode().unwrap();
        let back = KnownPeers::decode(&bytes).unwrap();
        assert_eq!(back.anchors(), k.anchors());
        assert_eq!(back.addresses(), k.addresses());
        // Every peer in the same place.
        let places = |k: &KnownPeers| -> Vec<Option<(PeerId, Multiaddr)>> {
            k.places
                .iter()
                .map(|p| p.as_ref().map(|kept| (kept.peer, kept.addr.clone())))
                .collect()
        };
        assert_eq!(places(&back), places(&k));
        assert!(!back.changed());
        // Exact: trailing bytes and garbage are refused.
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(KnownPeers::decode(&longer).is_err());
        assert!(KnownPeers::decode(b"garbage").is_err());
    }

    #[test]
    fn a_list_of_the_first_format_is_read_and_rewritten() {
        let (a, b) = (PeerId::random(), PeerId::random());
        let newest = spread(1).with(Protocol::P2p(a));
        let older = spread(2).with(Protocol::P2p(b));
        let v1 = doin_codec::encode(&FileV1 {
            version: 1,
            anchors: vec![newest.to_string()],
            addresses: vec![newest.to_string(), older.to_string()],
        })
        .unwrap();
        let k = KnownPeers::decode(&v1).unwrap();
        assert_eq!(k.addresses(), vec![newest.clone(), older]);
        assert_eq!(k.anchors(), &[newest]);
        assert!(k.changed(), "written again in the current format");
    }

    #[test]
    fn a_damaged_file_is_set_aside_and_the_node_starts_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("net").join("known_peers");
        assert!(load(&path).is_empty());
        let mut k = KnownPeers::default();
        keep(&mut k, PeerId::random(), &addr(1));
        save(&path, &k.encode().unwrap()).unwrap();
        assert_eq!(load(&path).addresses(), k.addresses());
        std::fs::write(&path, b"\x01\x02not a list").unwrap();
        assert!(load(&path).is_empty());
        assert!(!path.exists());
        assert!(dir.path().join("net").join("known_peers.bad").exists());
    }
}
