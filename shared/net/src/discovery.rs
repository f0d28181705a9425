//! How this node finds peers: the anchors and known peers of its last run, its bootstrap
//! list, its DNS seeds ([`crate::seeds`]), Kademlia lookups, and draws from the peers it
//! reached before and the addresses it heard ([`crate::address_book`]); and saving both for
//! the next run. mDNS and identify feed the same DHT and book from the swarm's events.

use crate::known_peers;
use crate::seeds::{self, SEED_INTERVAL};
use crate::swarm::{peer_of, SwarmTask};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::{Multiaddr, PeerId};
use std::time::{Duration, Instant};

/// A node short of peers asks the DHT for more at most this often when new peers identify.
pub(crate) const LOOKUP_INTERVAL: Duration = Duration::from_secs(5);

/// A dial of `addr` that is skipped when its peer is connected or being dialled already, so
/// that redials do not pile up connections to one peer (an operator's explicit dial, by
/// contrast, always goes out).
pub(crate) fn dial_once(addr: &Multiaddr) -> DialOpts {
    match peer_of(addr) {
        Some(peer) => DialOpts::peer_id(peer)
            .addresses(vec![addr.clone()])
            .condition(PeerCondition::DisconnectedAndNotDialing)
            .build(),
        None => DialOpts::unknown_peer_id().address(addr.clone()).build(),
    }
}

/// `addr` ending in `/p2p/<peer>` (added when missing).
pub(crate) fn with_peer(addr: &Multiaddr, peer: PeerId) -> Multiaddr {
    match addr.iter().last() {
        Some(libp2p::multiaddr::Protocol::P2p(_)) => addr.clone(),
        _ => addr.clone().with(libp2p::multiaddr::Protocol::P2p(peer)),
    }
}

/// Writes `bytes` to `path` durably on a blocking thread; waits for it when `wait`.
async fn save_in_background(
    path: std::path::PathBuf,
    bytes: Result<Vec<u8>, doin_codec::CodecError>,
    what: &'static str,
    wait: bool,
) {
    let bytes = match bytes {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(error = %e, "cannot encode {what}");
            return;
        }
    };
    let write = tokio::task::spawn_blocking(move || {
        if let Err(e) = known_peers::save(&path, &bytes) {
            tracing::warn!(file = %path.display(), error = %e, "cannot save {what}");
        }
    });
    if wait {
        let _ = write.await;
    }
}

/// What each DNS seed gave (or why nothing).
pub(crate) type SeedAnswers = Vec<(String, Result<Vec<Multiaddr>, String>)>;

impl SwarmTask {
    /// Writes the known peers and anchors, and the address book, where they changed: in the
    /// background during the run, awaited at shutdown so that the next run starts from them.
    pub(crate) async fn save_known_peers(&mut self, at_shutdown: bool) {
        if let Some(path) = self.cfg.known_peers.clone() {
            let connected = self.handle.connected.read().clone();
            self.known.set_anchors(&connected);
            if self.known.changed() {
                self.known.mark_saved();
                save_in_background(
                    path,
                    self.known.encode(),
                    "the list of known peers",
                    at_shutdown,
                )
                .await;
            }
        }
        if let Some(path) = self.cfg.address_book.clone() {
            if self.heard.changed() {
                self.heard.mark_saved();
                save_in_background(path, self.heard.encode(), "the address book", at_shutdown)
                    .await;
            }
        }
    }

    /// Dials the anchors saved by the last run, before the bootstrap peers, and tells the DHT
    /// every address remembered.
    pub(crate) fn dial_known_peers(&mut self) {
        for addr in self.known.addresses().to_vec() {
            if let Some(peer) = peer_of(&addr) {
                self.swarm.behaviour_mut().kad.add_address(&peer, addr);
            }
        }
        for addr in self.known.anchors().to_vec() {
            tracing::info!(%addr, "dialling an anchor peer from the last run");
            if let Err(e) = self.swarm.dial(dial_once(&addr)) {
                tracing::debug!(%addr, error = %e, "cannot dial anchor peer");
            }
        }
    }

    pub(crate) fn dial_bootstrap(&mut self) {
        let connected = self.handle.connected.read().clone();
        for addr in self.cfg.bootstrap.clone() {
            // A network's shipped list names its bootstrap nodes, this one perhaps among them.
            if peer_of(&addr)
                .is_some_and(|p| connected.contains(&p) || p == self.handle.local_peer_id)
            {
                continue;
            }
            if let Err(e) = self.swarm.dial(dial_once(&addr)) {
                tracing::debug!(%addr, error = %e, "cannot dial bootstrap peer");
            }
        }
    }

    /// Asks the DHT for peers near this node, at most every [`LOOKUP_INTERVAL`].
    pub(crate) fn look_for_peers(&mut self, now: Instant) {
        if self
            .last_lookup
            .is_some_and(|t| now.saturating_duration_since(t) < LOOKUP_INTERVAL)
        {
            return;
        }
        self.last_lookup = Some(now);
        // Fails harmlessly when the DHT knows nobody yet.
        let _ = self.swarm.behaviour_mut().kad.bootstrap();
    }

    /// How many more peers this node should dial: what it lacks of `target_peers`, or of the
    /// outbound places it keeps for peers it chose, whichever is more. Counting only all
    /// connections would let a flood of inbound ones (newcomers on a short stay included)
    /// stop it from ever dialling the honest peers those places are kept for.
    pub(crate) fn dial_shortfall(&self) -> usize {
        let by_target = self
            .cfg
            .target_peers
            .saturating_sub(self.handle.connected.read().len());
        let admission = self.swarm.behaviour().admission.state();
        let outbound = admission.kept().saturating_sub(admission.kept_inbound());
        let by_reserve = self.cfg.outbound_reserved.saturating_sub(outbound);
        by_target.max(usize::try_from(by_reserve).unwrap_or(usize::MAX))
    }

    /// Dials as many peers as this node is short of ([`Self::dial_shortfall`]), drawn
    /// alternately from the peers it reached before (most recent first) and from the address
    /// book, skipping peers that are connected, banned, refused, or this node.
    pub(crate) fn dial_drawn(&mut self) {
        let connected = self.handle.connected.read().clone();
        let short = self.dial_shortfall();
        let now = Instant::now();
        let local = self.handle.local_peer_id;
        let mut chosen: Vec<PeerId> = Vec::new();
        for k in 0..short {
            let skip = |p: &PeerId| {
                *p == local
                    || connected.contains(p)
                    || chosen.contains(p)
                    || self.refused.contains(p)
                    || self.book.is_banned(p, now)
            };
            let from_known = || {
                self.known
                    .addresses()
                    .iter()
                    .find(|a| peer_of(a).is_some_and(|p| !skip(&p)))
                    .cloned()
            };
            let addr = if k % 2 == 0 {
                from_known().or_else(|| self.heard.draw(skip))
            } else {
                self.heard.draw(skip).or_else(from_known)
            };
            let Some(addr) = addr else {
                break;
            };
            if let Some(p) = peer_of(&addr) {
                chosen.push(p);
            }
            if let Err(e) = self.swarm.dial(dial_once(&addr)) {
                tracing::debug!(%addr, error = %e, "cannot dial a drawn peer");
            }
        }
    }

    /// Dials a remembered peer whose place a newly kept peer wants: it keeps the place if it
    /// answers ([`crate::known_peers::KnownPeers::kept_outbound`]).
    pub(crate) fn test_known(&mut self, tested: &Multiaddr) {
        tracing::debug!(address = %tested, "testing a remembered peer before a newcomer takes its place");
        if let Err(e) = self.swarm.dial(dial_once(tested)) {
            tracing::debug!(address = %tested, error = %e, "cannot test a remembered peer");
            if let Some(p) = peer_of(tested) {
                self.known.untested(&p);
            }
        }
    }

    /// Looks up the DNS seeds in the background, unless a lookup is under way or was made
    /// less than [`SEED_INTERVAL`] ago; the answers come back through `seed_answers`.
    pub(crate) fn ask_seeds(&mut self, now: Instant) {
        if self.cfg.dns_seeds.is_empty()
            || self.seeding
            || self
                .last_seed_lookup
                .is_some_and(|t| now.saturating_duration_since(t) < SEED_INTERVAL)
        {
            return;
        }
        self.seeding = true;
        self.last_seed_lookup = Some(now);
        let seeds = self.cfg.dns_seeds.clone();
        let local = self.handle.local_peer_id;
        let answers = self.seed_answers.0.clone();
        tokio::spawn(async move {
            let _ = answers.send(seeds::resolve(seeds, local).await).await;
        });
    }

    /// Dials what the seeds gave, as many as this node is short of peers, and tells the DHT
    /// every address whose peer is known.
    pub(crate) fn on_seed_answers(&mut self, answers: SeedAnswers) {
        self.seeding = false;
        let connected = self.handle.connected.read().clone();
        let mut short = self.dial_shortfall();
        for (seed, answer) in answers {
            let addresses = match answer {
                Ok(a) => a,
                Err(why) => {
                    tracing::warn!(%seed, %why, "DNS seed gave no peers");
                    continue;
                }
            };
            tracing::info!(%seed, peers = addresses.len(), "DNS seed answered");
            for addr in addresses {
                let peer: Option<PeerId> = peer_of(&addr);
                if let Some(p) = peer {
                    if p == self.handle.local_peer_id || connected.contains(&p) {
                        continue;
                    }
                    self.swarm.behaviour_mut().kad.add_address(&p, addr.clone());
                }
                if short > 0 {
                    short -= 1;
                    if let Err(e) = self.swarm.dial(dial_once(&addr)) {
                        tracing::debug!(%addr, error = %e, "cannot dial a peer from a DNS seed");
                    }
                }
            }
        }
    }
}
