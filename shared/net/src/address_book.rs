//! Addresses heard from others, kept so that no one who tells this node addresses can fill its
//! choice of peers: the "new" table of Bitcoin Core's address manager, in small.
//!
//! An address a peer announced (by identify) or the DHT returned goes into one of
//! [`BUCKETS`] buckets of [`BUCKET_SIZE`] places. Where is decided by hashes keyed with a
//! secret only this node knows, of the address's network group (IPv4 /16, IPv6 /32; all
//! loopback and private addresses form one group) and the group of whoever told it: one
//! source group reaches at most [`BUCKETS_PER_SOURCE`] buckets, and one address group at most
//! one place in each. An occupied place keeps its address unless that one has failed
//! [`TERRIBLE_FAILURES`] dials in a row. So an attacker with many addresses in few groups, or
//! announcing through few peers, holds a bounded share of the table however much it sends,
//! and cannot push out what was heard before.
//!
//! The peers this node itself reached are kept apart ([`crate::known_peers`]); a node short of
//! peers draws alternately from those and from here ([`AddressBook::draw`]). Pure: the secret
//! and every input are arguments; the swarm task feeds it and dials what it draws.

use crate::peers::{ip_of, Netgroup};
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};

pub const BUCKETS: usize = 64;
pub const BUCKET_SIZE: usize = 16;
/// Buckets the addresses told by one source group can land in.
pub const BUCKETS_PER_SOURCE: u64 = 8;
/// Failed dials in a row after which an address may be replaced.
pub const TERRIBLE_FAILURES: u8 = 3;
/// The file's size limit (1 024 entries of a few hundred bytes).
const MAX_FILE_BYTES: usize = 1024 * 1024;
const FORMAT_VERSION: u8 = 1;

/// Who told this node an address: a peer (by the group of the address it is connected from),
/// or the DHT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Peer(Multiaddr),
    Dht,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    addr: String,
    /// The source's group key, kept so that a restart places the entry where it was.
    source: Vec<u8>,
    failures: u8,
}

#[derive(Serialize, Deserialize)]
struct FileV1 {
    version: u8,
    secret: Vec<u8>,
    entries: Vec<Entry>,
}

#[derive(Clone, Debug)]
pub struct AddressBook {
    secret: [u8; 32],
    places: Vec<Option<(PeerId, Multiaddr, Entry)>>,
    draws: u64,
    changed: bool,
}

/// The group key of an address: its public netgroup, one shared key for loopback and private
/// addresses, or the DNS name it starts with.
fn group_of(addr: &Multiaddr) -> Vec<u8> {
    match ip_of(addr) {
        Some(ip) => Netgroup::key(Netgroup::of(&ip)),
        None => match addr.iter().next() {
            Some(Protocol::Dns(n) | Protocol::Dns4(n) | Protocol::Dns6(n)) => {
                [b"dns:".as_slice(), n.as_bytes()].concat()
            }
            _ => b"other".to_vec(),
        },
    }
}

fn source_key(source: &Source) -> Vec<u8> {
    match source {
        Source::Peer(addr) => group_of(addr),
        Source::Dht => b"dht".to_vec(),
    }
}

/// A tagged hash of `parts` keyed with `secret`, as a number: where this node puts an address
/// (here and among its known peers) is decided by it, so no one else can predict or choose it.
pub(crate) fn keyed_hash(secret: &[u8; 32], tag: &str, parts: &[&[u8]]) -> u64 {
    let mut all: Vec<&[u8]> = Vec::with_capacity(parts.len() + 1);
    all.push(secret);
    all.extend_from_slice(parts);
    let h = doin_crypto::tagged_hash_parts(tag, &all).0;
    let mut first = [0u8; 8];
    first.copy_from_slice(&h[..8]);
    u64::from_le_bytes(first)
}

fn peer_at_end(addr: &Multiaddr) -> Option<PeerId> {
    match addr.iter().last() {
        Some(Protocol::P2p(p)) => Some(p),
        _ => None,
    }
}

impl AddressBook {
    /// An empty book with a fresh random secret.
    pub fn fresh() -> AddressBook {
        AddressBook::new(rand::random())
    }

    /// An empty book with this node's secret (made once and kept in the file).
    pub fn new(secret: [u8; 32]) -> AddressBook {
        AddressBook {
            secret,
            places: vec![None; BUCKETS * BUCKET_SIZE],
            draws: 0,
            changed: false,
        }
    }

    fn hash(&self, tag: &str, parts: &[&[u8]]) -> u64 {
        keyed_hash(&self.secret, tag, parts)
    }

    /// The one place `peer` (at an address of `group`, told by `source`) may take.
    fn place(&self, peer: &PeerId, group: &[u8], source: &[u8]) -> usize {
        let spread = self.hash("DOIN/net/addrbook/spread", &[group, source]) % BUCKETS_PER_SOURCE;
        let bucket = self.hash("DOIN/net/addrbook/bucket", &[source, &spread.to_le_bytes()])
            % BUCKETS as u64;
        let slot = self.hash(
            "DOIN/net/addrbook/slot",
            &[&bucket.to_le_bytes(), &peer.to_bytes()],
        ) % BUCKET_SIZE as u64;
        // Both below their bounds, so the index fits.
        (bucket as usize) * BUCKET_SIZE + slot as usize
    }

    /// Records that `source` told of `addr` (ending in `/p2p/<peer>`); returns whether it was
    /// kept. Relayed addresses are not kept (they last as long as a reservation).
    pub fn heard(&mut self, addr: &Multiaddr, source: &Source) -> bool {
        let Some(peer) = peer_at_end(addr) else {
            return false;
        };
        if addr.iter().any(|p| p == Protocol::P2pCircuit) {
            return false;
        }
        let source = source_key(source);
        let i = self.place(&peer, &group_of(addr), &source);
        let replace = match &self.places[i] {
            None => true,
            Some((p, a, _)) if *p == peer => a != addr,
            Some((_, _, e)) => e.failures >= TERRIBLE_FAILURES,
        };
        if replace {
            self.places[i] = Some((
                peer,
                addr.clone(),
                Entry {
                    addr: addr.to_string(),
                    source,
                    failures: 0,
                },
            ));
            self.changed = true;
        }
        replace
    }

    /// A dial of `peer` failed.
    pub fn failed(&mut self, peer: &PeerId) {
        for (p, _, e) in self.places.iter_mut().flatten() {
            if p == peer {
                e.failures = e.failures.saturating_add(1);
                self.changed = true;
            }
        }
    }

    /// `peer` was reached: it is kept among the known peers from now on, not here.
    pub fn reached(&mut self, peer: &PeerId) {
        for place in &mut self.places {
            if place.as_ref().is_some_and(|(p, _, _)| p == peer) {
                *place = None;
                self.changed = true;
            }
        }
    }

    /// An address to dial: a place chosen by a keyed hash of a counter (so an observer cannot
    /// predict it), the first taken one from there whose peer `skip` does not exclude.
    pub fn draw(&mut self, skip: impl Fn(&PeerId) -> bool) -> Option<Multiaddr> {
        self.draws = self.draws.wrapping_add(1);
        let n = self.places.len();
        let start =
            (self.hash("DOIN/net/addrbook/draw", &[&self.draws.to_le_bytes()]) % n as u64) as usize;
        (0..n)
            .map(|k| (start + k) % n)
            .find_map(|i| match &self.places[i] {
                Some((p, a, e)) if !skip(p) && e.failures < TERRIBLE_FAILURES => Some(a.clone()),
                _ => None,
            })
    }

    pub fn len(&self) -> usize {
        self.places.iter().flatten().count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every address kept.
    pub fn addresses(&self) -> impl Iterator<Item = &Multiaddr> {
        self.places.iter().flatten().map(|(_, a, _)| a)
    }

    pub fn changed(&self) -> bool {
        self.changed
    }

    pub fn mark_saved(&mut self) {
        self.changed = false;
    }

    /// The file's bytes: the secret and every entry with its source's group.
    pub fn encode(&self) -> Result<Vec<u8>, doin_codec::CodecError> {
        doin_codec::encode(&FileV1 {
            version: FORMAT_VERSION,
            secret: self.secret.to_vec(),
            entries: self
                .places
                .iter()
                .flatten()
                .map(|(_, _, e)| e.clone())
                .collect(),
        })
    }

    /// Reads the file's bytes (exact, bounded); each entry goes back to its place.
    pub fn decode(bytes: &[u8]) -> Result<AddressBook, String> {
        let file: FileV1 =
            doin_codec::decode_exact_bounded(bytes, MAX_FILE_BYTES).map_err(|e| e.to_string())?;
        if file.version != FORMAT_VERSION {
            return Err(format!("unknown format version {}", file.version));
        }
        let secret: [u8; 32] = file
            .secret
            .try_into()
            .map_err(|_| "the secret is not 32 bytes".to_string())?;
        if file.entries.len() > BUCKETS * BUCKET_SIZE {
            return Err("more entries than the book has places".into());
        }
        let mut book = AddressBook::new(secret);
        for e in file.entries {
            let addr: Multiaddr = e.addr.parse().map_err(|x| format!("{:?}: {x}", e.addr))?;
            let peer = peer_at_end(&addr)
                .ok_or_else(|| format!("{:?} does not end in /p2p/<peer id>", e.addr))?;
            let i = book.place(&peer, &group_of(&addr), &e.source);
            book.places[i] = Some((peer, addr, e));
        }
        Ok(book)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(ip: &str, peer: PeerId) -> Multiaddr {
        format!("/ip4/{ip}/tcp/8646/p2p/{peer}").parse().unwrap()
    }

    fn from(ip: &str) -> Source {
        Source::Peer(format!("/ip4/{ip}/tcp/1").parse().unwrap())
    }

    #[test]
    fn an_attacker_announcing_through_few_peers_holds_a_bounded_share() {
        let mut book = AddressBook::new([7; 32]);
        // Honest peers in many groups, told by many honest peers.
        for i in 0..200u32 {
            let ip = format!("{}.{}.0.1", 130 + i % 60, i / 60 + 1);
            let src = format!("{}.9.0.1", 130 + (i * 7) % 60);
            book.heard(&addr(&ip, PeerId::random()), &from(&src));
        }
        let honest = book.len();
        assert!(honest > 150, "{honest} of 200 honest addresses kept");
        // An attacker with 100 000 addresses in 4 groups, announced through 3 peers of its own.
        for i in 0..100_000u32 {
            let ip = format!("66.{}.{}.{}", i % 4, (i / 4) % 250, (i / 1000) % 250);
            let src = format!("66.{}.0.9", i % 3);
            book.heard(&addr(&ip, PeerId::random()), &from(&src));
        }
        // One address group told by one source lands in one bucket: 4 groups through 3
        // peers hold at most 12 buckets of 16 places, of 1 024.
        let attacker = book
            .addresses()
            .filter(|a| a.to_string().starts_with("/ip4/66."))
            .count();
        assert!(
            attacker <= 4 * 3 * BUCKET_SIZE,
            "{attacker} attacker addresses kept"
        );
        let survivors = book
            .addresses()
            .filter(|a| !a.to_string().starts_with("/ip4/66."))
            .count();
        assert_eq!(survivors, honest, "nothing heard before was pushed out");
    }

    #[test]
    fn failing_addresses_give_way_and_reached_ones_leave() {
        let mut book = AddressBook::new([1; 32]);
        let p = PeerId::random();
        let a = addr("8.8.8.8", p);
        assert!(book.heard(&a, &Source::Dht));
        assert!(
            !book.heard(&a, &Source::Dht),
            "the same again changes nothing"
        );
        assert_eq!(book.draw(|_| false), Some(a.clone()));
        assert_eq!(book.draw(|x| *x == p), None);
        for _ in 0..TERRIBLE_FAILURES {
            book.failed(&p);
        }
        assert_eq!(
            book.draw(|_| false),
            None,
            "a terrible address is not drawn"
        );
        book.reached(&p);
        assert!(book.is_empty());
        // Relayed addresses and addresses without a peer are not kept.
        let relayed: Multiaddr = format!("/ip4/8.8.8.8/tcp/1/p2p/{p}/p2p-circuit/p2p/{p}")
            .parse()
            .unwrap();
        assert!(!book.heard(&relayed, &Source::Dht));
        assert!(!book.heard(&"/ip4/8.8.8.8/tcp/1".parse().unwrap(), &Source::Dht));
    }

    #[test]
    fn the_book_survives_its_file_in_the_same_places() {
        let mut book = AddressBook::new([3; 32]);
        for i in 0..50u8 {
            book.heard(
                &addr(&format!("9.{i}.1.1"), PeerId::random()),
                &from("5.5.5.5"),
            );
        }
        let bytes = book.encode().unwrap();
        let back = AddressBook::decode(&bytes).unwrap();
        let mut a: Vec<String> = book.addresses().map(|a| a.to_string()).collect();
        let mut b: Vec<String> = back.addresses().map(|a| a.to_string()).collect();
        a.sort();
        b.sort();
        assert_eq!(a, b);
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(AddressBook::decode(&longer).is_err());
        assert!(AddressBook::decode(b"junk").is_err());
    }
}
