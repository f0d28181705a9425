//! Peers this node has dialled and kept, remembered across restarts, and the anchors among
//! them: the peers it was connected to when it stopped, dialled first when it starts again
//! (before the bootstrap list), so that a restart does not hand the choice of its first peers to
//! whoever answers the bootstrap peers' DHT first.
//!
//! Only outbound peers are remembered: an address this node dialled successfully is one it
//! chose and can reach; an inbound peer's address may be anything it claims. One network group
//! keeps at most [`MAX_KNOWN_PER_GROUP`] of the [`MAX_KNOWN`] places. [`KnownPeers`] is a
//! pure structure; [`load`] and [`save`] are its file I/O (one canonical encoding, bounded,
//! written to a temporary file, synced, then renamed). A file that does not decode is set aside
//! as `<file>.bad` and the node starts with an empty list instead of stopping.

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};

/// Addresses remembered at most; the least recently kept are forgotten first.
pub const MAX_KNOWN: usize = 256;
/// Addresses remembered at most from one network group (IPv4 /16, IPv6 /32; loopback and
/// private addresses together): peers of one group cannot fill the list, however often this
/// node reaches them.
pub const MAX_KNOWN_PER_GROUP: usize = 32;
/// Peers dialled first at start.
pub const ANCHORS: usize = 2;
/// The file is never larger than this (256 addresses of a few hundred bytes each fit easily).
const MAX_FILE_BYTES: usize = 256 * 1024;
const FORMAT_VERSION: u8 = 1;

#[derive(Serialize, Deserialize)]
struct FileV1 {
    version: u8,
    anchors: Vec<String>,
    addresses: Vec<String>,
}

/// Remembered peers, most recently kept first, each once, each address ending in `/p2p/<id>`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KnownPeers {
    addresses: Vec<Multiaddr>,
    anchors: Vec<Multiaddr>,
    changed: bool,
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
    /// Records that this node dialled `peer` at `addr` and kept the connection.
    pub fn kept_outbound(&mut self, peer: PeerId, addr: &Multiaddr) {
        let Some(addr) = with_peer(addr, peer) else {
            return;
        };
        // A relayed address depends on the relay's reservation; the peer is found again
        // through the DHT instead.
        if addr.iter().any(|p| p == Protocol::P2pCircuit) {
            return;
        }
        if self.addresses.first() == Some(&addr) {
            return;
        }
        self.addresses.retain(|a| peer_of(a) != Some(peer));
        let group = group_of(&addr);
        self.addresses.insert(0, addr);
        // The least recent of the group goes when the group is over its share.
        if let Some(oldest) = self
            .addresses
            .iter()
            .enumerate()
            .filter(|(_, a)| group_of(a) == group)
            .map(|(i, _)| i)
            .nth(MAX_KNOWN_PER_GROUP)
        {
            self.addresses.remove(oldest);
        }
        self.addresses.truncate(MAX_KNOWN);
        self.changed = true;
    }

    /// Chooses the anchors: the most recently kept of the peers connected now.
    pub fn set_anchors(&mut self, connected: &[PeerId]) {
        let anchors: Vec<Multiaddr> = self
            .addresses
            .iter()
            .filter(|a| peer_of(a).is_some_and(|p| connected.contains(&p)))
            .take(ANCHORS)
            .cloned()
            .collect();
        if anchors != self.anchors {
            self.anchors = anchors;
            self.changed = true;
        }
    }

    pub fn anchors(&self) -> &[Multiaddr] {
        &self.anchors
    }

    pub fn addresses(&self) -> &[Multiaddr] {
        &self.addresses
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
        doin_codec::encode(&FileV1 {
            version: FORMAT_VERSION,
            anchors: strings(&self.anchors),
            addresses: strings(&self.addresses),
        })
    }

    /// Reads the file's bytes: exact, bounded, every address one of a peer.
    pub fn decode(bytes: &[u8]) -> Result<KnownPeers, String> {
        let file: FileV1 =
            doin_codec::decode_exact_bounded(bytes, MAX_FILE_BYTES).map_err(|e| e.to_string())?;
        if file.version != FORMAT_VERSION {
            return Err(format!("unknown format version {}", file.version));
        }
        if file.addresses.len() > MAX_KNOWN || file.anchors.len() > ANCHORS {
            return Err("more addresses than a node keeps".into());
        }
        let parse = |v: Vec<String>| -> Result<Vec<Multiaddr>, String> {
            v.into_iter()
                .map(|s| {
                    let a: Multiaddr = s.parse().map_err(|e| format!("{s:?}: {e}"))?;
                    if peer_of(&a).is_none() {
                        return Err(format!("{s:?} does not end in /p2p/<peer id>"));
                    }
                    Ok(a)
                })
                .collect()
        };
        Ok(KnownPeers {
            anchors: parse(file.anchors)?,
            addresses: parse(file.addresses)?,
            changed: false,
        })
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

    #[test]
    fn one_network_group_holds_a_bounded_share() {
        let mut k = KnownPeers::default();
        for i in 0..100 {
            k.kept_outbound(PeerId::random(), &spread(i));
        }
        // Many peers of one group reached one after another keep only their share, the
        // most recent ones, and push out no other group.
        for port in 0..200 {
            k.kept_outbound(PeerId::random(), &addr(port));
        }
        let same = k
            .addresses()
            .iter()
            .filter(|a| a.to_string().starts_with("/ip4/203.0."))
            .count();
        assert_eq!(same, MAX_KNOWN_PER_GROUP);
        assert_eq!(k.addresses().len(), 100 + MAX_KNOWN_PER_GROUP);
        assert!(k.addresses()[0]
            .to_string()
            .starts_with("/ip4/203.0.113.1/tcp/199/"));
    }

    #[test]
    fn most_recent_first_each_peer_once_and_bounded() {
        let mut k = KnownPeers::default();
        let peers: Vec<PeerId> = (0..MAX_KNOWN + 5).map(|_| PeerId::random()).collect();
        for (i, p) in peers.iter().enumerate() {
            k.kept_outbound(*p, &spread(i));
        }
        assert_eq!(k.addresses().len(), MAX_KNOWN);
        // Kept again at a new address: moves to the front, still once.
        k.kept_outbound(peers[MAX_KNOWN], &spread(9999));
        assert_eq!(k.addresses().len(), MAX_KNOWN);
        assert_eq!(
            k.addresses()[0],
            spread(9999).with(Protocol::P2p(peers[MAX_KNOWN]))
        );
        // An address naming another peer is not recorded under this one.
        let other = addr(5).with(Protocol::P2p(PeerId::random()));
        k.mark_saved();
        k.kept_outbound(peers[0], &other);
        assert!(!k.changed());
    }

    #[test]
    fn anchors_are_the_most_recent_connected_peers_and_survive_the_file() {
        let mut k = KnownPeers::default();
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        k.kept_outbound(a, &addr(1));
        k.kept_outbound(b, &addr(2));
        k.kept_outbound(c, &addr(3));
        k.set_anchors(&[a, c]);
        assert_eq!(
            k.anchors(),
            &[
                addr(3).with(Protocol::P2p(c)),
                addr(1).with(Protocol::P2p(a))
            ]
        );
        let bytes = k.encode().unwrap();
        let back = KnownPeers::decode(&bytes).unwrap();
        assert_eq!(back.anchors(), k.anchors());
        assert_eq!(back.addresses(), k.addresses());
        // Exact: trailing bytes and garbage are refused.
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(KnownPeers::decode(&longer).is_err());
        assert!(KnownPeers::decode(b"garbage").is_err());
    }

    #[test]
    fn a_damaged_file_is_set_aside_and_the_node_starts_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("net").join("known_peers");
        assert_eq!(load(&path), KnownPeers::default());
        let mut k = KnownPeers::default();
        k.kept_outbound(PeerId::random(), &addr(1));
        save(&path, &k.encode().unwrap()).unwrap();
        assert_eq!(load(&path).addresses(), k.addresses());
        std::fs::write(&path, b"\x01\x02not a list").unwrap();
        assert_eq!(load(&path), KnownPeers::default());
        assert!(!path.exists());
        assert!(dir.path().join("net").join("known_peers.bad").exists());
    }
}
