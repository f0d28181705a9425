//! The sync engine against simulated peers and a simulated local chain, without a network:
//! peer choice, fork search, header windows, body ranges in flight, retries and blame.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use doin_sync::{
    Answer, Checked, Effect, Event, Imported, Round, SyncLimits, SyncReport, SyncSpec,
};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

/// A block of a simulated chain: its height, its own id and its parent's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Head {
    height: u64,
    id: u64,
    parent: u64,
    /// A header that fails its check (a forged signature, say).
    forged: bool,
}

#[derive(Clone, Debug)]
struct Blk {
    head: Head,
    /// A body that breaks a rule.
    bad: bool,
}

#[derive(Clone, Debug)]
struct Status {
    height: u64,
    tip: u64,
    /// What fork choice compares (work).
    work: u64,
    /// Lowest height the peer serves (it pruned what is below).
    kept_from: u64,
}

struct Spec {
    fork_depth: Option<u64>,
    /// A window ends after a header at a multiple of this height (an epoch boundary).
    epoch: Option<u64>,
}

impl SyncSpec for Spec {
    type Peer = u8;
    type Status = Status;
    type Header = Head;
    type Block = Blk;
    type Anchor = Head;
    type Tip = Head;

    fn limits(&self) -> SyncLimits {
        SyncLimits {
            status_fanout: 8,
            header_window: 20,
            max_headers_per_answer: 8,
            max_blocks_per_answer: 3,
            bodies_in_flight: 2,
            fork_search_depth: self.fork_depth,
        }
    }
    fn status_height(&self, s: &Status) -> u64 {
        s.height
    }
    fn compare(&self, a: &Status, b: &Status) -> Ordering {
        // Most work; among equals the lower tip id (any fixed order will do).
        a.work.cmp(&b.work).then(b.tip.cmp(&a.tip))
    }
    fn behind(&self, tip: &Head, peer: &Status) -> bool {
        peer.work > tip.height
    }
    fn can_serve(&self, holder: &Status, _best: &Status, height: u64) -> bool {
        holder.height >= height
    }
    fn tip_height(&self, t: &Head) -> u64 {
        t.height
    }
    fn serves_from(&self, s: &Status) -> u64 {
        s.kept_from
    }
    fn header_height(&self, h: &Head) -> u64 {
        h.height
    }
    fn anchor_height(&self, a: &Head) -> u64 {
        a.height
    }
    fn advance(&self, anchor: &Head, verified: &[Head]) -> Head {
        *verified.last().unwrap_or(anchor)
    }
    fn ends_window(&self, anchor: &Head) -> bool {
        self.epoch.is_some_and(|e| anchor.height % e == 0)
    }
    fn same(&self, mine: &Head, header: &Head) -> bool {
        mine == header
    }
    fn builds_on(&self, header: &Head, parent: &Head) -> bool {
        header.parent == parent.id
    }
    fn block_height(&self, b: &Blk) -> u64 {
        b.head.height
    }
    fn carries(&self, block: &Blk, header: &Head) -> bool {
        block.head == *header
    }
}

/// A chain of `len` blocks after genesis whose ids start at `salt` from `fork_at` on (below
/// that it shares the common chain's ids).
fn chain(len: u64, fork_at: u64, salt: u64) -> Vec<Head> {
    let mut out = vec![Head {
        height: 0,
        id: 0,
        parent: 0,
        forged: false,
    }];
    for h in 1..=len {
        let id = if h >= fork_at { salt + h } else { h };
        out.push(Head {
            height: h,
            id,
            parent: out[h as usize - 1].id,
            forged: false,
        });
    }
    out
}

#[derive(Default)]
struct PeerSim {
    chain: Vec<Head>,
    /// Heights whose block this peer serves with another header (a lying peer).
    swaps: BTreeSet<u64>,
    /// Heights whose block body is invalid.
    bad: BTreeSet<u64>,
    /// Never answers block requests.
    mute_bodies: bool,
    /// Answers header requests with more than asked.
    flood: bool,
    status_invalid: bool,
    /// Pruned: serves nothing below this height.
    kept_from: u64,
}

struct World {
    spec_fork: Option<u64>,
    spec_epoch: Option<u64>,
    local: Vec<Head>,
    peers: BTreeMap<u8, PeerSim>,
    penalised: Vec<(u8, String)>,
    requests: Vec<String>,
}

impl World {
    fn new(local: Vec<Head>) -> World {
        World {
            spec_fork: None,
            spec_epoch: None,
            local,
            peers: BTreeMap::new(),
            penalised: Vec::new(),
            requests: Vec::new(),
        }
    }

    fn spec(&self) -> Spec {
        Spec {
            fork_depth: self.spec_fork,
            epoch: self.spec_epoch,
        }
    }

    fn tip(&self) -> Head {
        *self.local.last().unwrap()
    }

    /// Runs one round to its end, answering every effect from the simulation.
    fn round(&mut self) -> SyncReport {
        let mut round = Round::new(self.spec(), self.tip(), SyncReport::default());
        let mut queue: Vec<Effect<Spec>> = round.start(self.peers.keys().copied().collect());
        let mut steps = 0;
        while !queue.is_empty() {
            steps += 1;
            assert!(steps < 10_000, "the round does not end");
            let effect = queue.remove(0);
            let event = match effect {
                Effect::Done => break,
                Effect::Penalize(p, why) => {
                    self.penalised.push((p, why));
                    continue;
                }
                Effect::AskStatus(peers) => Event::Statuses(
                    peers
                        .into_iter()
                        .map(|p| {
                            let sim = &self.peers[&p];
                            let tip = sim.chain.last().unwrap();
                            let answer = if sim.status_invalid {
                                Answer::Invalid
                            } else {
                                Answer::Ok(Status {
                                    height: tip.height,
                                    tip: tip.id,
                                    work: tip.height + u64::from(tip.id > 1_000),
                                    kept_from: sim.kept_from,
                                })
                            };
                            (p, answer)
                        })
                        .collect(),
                ),
                Effect::AskHeaders { peer, from, max } => {
                    self.requests.push(format!("headers {peer} {from} {max}"));
                    let sim = &self.peers[&peer];
                    let take = if sim.flood {
                        max as usize + 1
                    } else {
                        max as usize
                    };
                    Event::Headers(Answer::Ok(
                        sim.chain
                            .iter()
                            .skip(from as usize)
                            .take(take)
                            .copied()
                            .collect(),
                    ))
                }
                Effect::ReadLocal { from, to } => Event::Local(
                    (from..=to)
                        .filter_map(|h| self.local.get(h as usize).copied())
                        .collect(),
                ),
                Effect::Check { anchor, batch } => {
                    let mut parent = anchor;
                    let mut result = Checked::Valid(batch.len());
                    for (i, h) in batch.iter().enumerate() {
                        // Past an epoch boundary nothing can be checked yet.
                        if i > 0 && self.spec().ends_window(&parent) {
                            result = Checked::Valid(i);
                            break;
                        }
                        if h.forged || h.parent != parent.id || h.height != parent.height + 1 {
                            result = Checked::Invalid {
                                index: i,
                                blame: true,
                                reason: "bad header".into(),
                            };
                            break;
                        }
                        parent = *h;
                    }
                    Event::Checked(result)
                }
                Effect::Fetch(fetches) => Event::Bodies(
                    fetches
                        .into_iter()
                        .map(|f| {
                            self.requests
                                .push(format!("blocks {} {} {}", f.peer, f.from, f.max));
                            let sim = &self.peers[&f.peer];
                            if sim.mute_bodies {
                                return (f.range, Answer::Failed);
                            }
                            let blocks = sim
                                .chain
                                .iter()
                                .skip(f.from as usize)
                                .take(f.max as usize)
                                .map(|h| {
                                    let mut head = *h;
                                    if sim.swaps.contains(&h.height) {
                                        head.id += 7;
                                    }
                                    Blk {
                                        head,
                                        bad: sim.bad.contains(&h.height),
                                    }
                                })
                                .collect();
                            (f.range, Answer::Ok(blocks))
                        })
                        .collect(),
                ),
                Effect::Import(blocks) => {
                    let mut outcomes = Vec::new();
                    for b in blocks {
                        let h = b.head.height;
                        if b.bad {
                            outcomes.push((h, Imported::Invalid("bad body".into())));
                            break;
                        }
                        if self.local.get(h as usize) == Some(&b.head) {
                            outcomes.push((h, Imported::Known));
                            continue;
                        }
                        // A block of another branch replaces ours from its height.
                        self.local.truncate(h as usize);
                        assert_eq!(self.local.last().unwrap().id, b.head.parent);
                        self.local.push(b.head);
                        outcomes.push((h, Imported::Imported));
                    }
                    Event::Imported {
                        outcomes,
                        tip: self.tip(),
                    }
                }
            };
            queue.extend(round.handle(event));
        }
        assert!(round.is_over());
        round.progress().clone()
    }
}

fn peer(chain: Vec<Head>) -> PeerSim {
    PeerSim {
        chain,
        ..PeerSim::default()
    }
}

#[test]
fn a_node_behind_catches_up_window_by_window_from_the_best_peer() {
    let mut w = World::new(chain(4, u64::MAX, 0));
    w.peers.insert(1, peer(chain(50, u64::MAX, 0)));
    w.peers.insert(2, peer(chain(30, u64::MAX, 0)));
    let report = w.round();
    assert_eq!(w.tip().height, 50);
    assert!(w.penalised.is_empty(), "{:?}", w.penalised);
    assert_eq!(report.best_peer_height, Some(50));
    assert_eq!(report.blocks_synced, 46);
    assert_eq!(report.headers_synced, 46);
    assert_eq!(report.progress_percent, 100);
    assert!(!report.syncing);
    // Headers only from the followed peer, in batches of at most 8, within windows of 20.
    let headers: Vec<&String> = w
        .requests
        .iter()
        .filter(|r| r.starts_with("headers"))
        .collect();
    assert!(headers.iter().all(|r| r.starts_with("headers 1 ")));
    assert_eq!(headers[0], "headers 1 5 8");
    // Bodies in ranges of 3, spread over the peers that have them (peer 2 up to 30).
    assert!(w.requests.contains(&"blocks 2 8 3".to_string()));
    assert!(w
        .requests
        .iter()
        .filter(|r| r.starts_with("blocks 2"))
        .all(|r| r.split(' ').nth(2).unwrap().parse::<u64>().unwrap() + 2 <= 30));
}

#[test]
fn a_node_level_with_its_peers_asks_for_nothing_more() {
    let mut w = World::new(chain(10, u64::MAX, 0));
    w.peers.insert(1, peer(chain(10, u64::MAX, 0)));
    w.peers.insert(2, peer(chain(9, u64::MAX, 0)));
    let report = w.round();
    assert!(w.requests.is_empty());
    assert_eq!(report.peers_on_chain, 2);
    assert!(!report.syncing);
}

#[test]
fn a_peer_that_pruned_the_next_blocks_is_not_asked_and_is_counted() {
    let mut w = World::new(chain(4, u64::MAX, 0));
    // The longest chain, but it keeps blocks from 20 on only.
    w.peers.insert(
        1,
        PeerSim {
            kept_from: 20,
            ..peer(chain(60, u64::MAX, 0))
        },
    );
    // Keeps from 5: exactly this node's next block.
    w.peers.insert(
        2,
        PeerSim {
            kept_from: 5,
            ..peer(chain(40, u64::MAX, 0))
        },
    );
    let report = w.round();
    assert_eq!(report.peers_pruned_past_us, 1);
    assert_eq!(report.peers_on_chain, 1);
    assert_eq!(w.tip().height, 40);
    assert!(
        w.requests.iter().all(|r| r.split(' ').nth(1) != Some("1")),
        "{:?}",
        w.requests
    );
    assert!(w.penalised.is_empty(), "{:?}", w.penalised);
    // Once past its floor, the pruned peer is a partner again.
    let report = w.round();
    assert_eq!(report.peers_pruned_past_us, 0);
    assert_eq!(w.tip().height, 60);
}

#[test]
fn an_invalid_header_costs_the_peer_before_any_body_is_fetched() {
    let mut w = World::new(chain(2, u64::MAX, 0));
    let mut lying = chain(40, u64::MAX, 0);
    lying[12].forged = true;
    w.peers.insert(1, peer(lying));
    w.round();
    assert_eq!(w.penalised.len(), 1);
    assert_eq!(w.penalised[0].0, 1);
    assert!(
        w.penalised[0].1.contains("header at 12"),
        "{:?}",
        w.penalised
    );
    assert!(!w.requests.iter().any(|r| r.starts_with("blocks")));
    assert_eq!(w.tip().height, 2);
}

#[test]
fn an_oversize_header_answer_costs_the_peer() {
    let mut w = World::new(chain(2, u64::MAX, 0));
    let mut p = peer(chain(40, u64::MAX, 0));
    p.flood = true;
    w.peers.insert(1, p);
    w.round();
    assert_eq!(w.penalised.len(), 1);
    assert_eq!(w.tip().height, 2);
}

#[test]
fn a_block_without_its_checked_header_costs_its_server_and_is_fetched_from_the_followed_peer() {
    let mut w = World::new(chain(0, u64::MAX, 0));
    w.peers.insert(1, peer(chain(12, u64::MAX, 0)));
    let mut liar = peer(chain(12, u64::MAX, 0));
    liar.swaps.insert(5);
    w.peers.insert(2, liar);
    w.round();
    assert_eq!(w.tip().height, 12);
    assert!(w.penalised.iter().all(|(p, _)| *p == 2));
    assert!(!w.penalised.is_empty());
}

#[test]
fn a_range_nobody_serves_ends_the_round_after_what_came_before_it() {
    let mut w = World::new(chain(0, u64::MAX, 0));
    let mut mute = peer(chain(12, u64::MAX, 0));
    mute.mute_bodies = true;
    w.peers.insert(1, mute);
    let report = w.round();
    assert_eq!(w.tip().height, 0);
    assert!(w.penalised.is_empty());
    assert!(report.syncing);
    // The first range was asked twice (once retried), nothing after it.
    assert_eq!(
        w.requests
            .iter()
            .filter(|r| r.starts_with("blocks"))
            .count(),
        4
    );
}

#[test]
fn an_invalid_block_costs_the_followed_peer_and_ends_the_round() {
    let mut w = World::new(chain(0, u64::MAX, 0));
    let mut p = peer(chain(12, u64::MAX, 0));
    p.bad.insert(4);
    w.peers.insert(1, p);
    w.round();
    assert_eq!(w.tip().height, 3);
    assert_eq!(w.penalised.len(), 1);
    assert!(w.penalised[0].1.contains("block 4"));
}

#[test]
fn a_chain_with_forks_takes_the_peer_branch_from_the_last_block_they_share() {
    // Ours forks off at 8 (ids 1..7 shared), theirs carries more work.
    let mut w = World::new(chain(10, 8, 500));
    w.spec_fork = Some(6);
    w.peers.insert(1, peer(chain(14, 8, 2_000)));
    w.round();
    assert_eq!(w.tip().height, 14);
    assert_eq!(w.tip().id, 2_014);
    assert_eq!(w.local[7].id, 7);
    assert!(w.penalised.is_empty());
    // The fork search asked for the peer's headers from 4 (10 - 6), then headers from 8.
    assert_eq!(w.requests[0], "headers 1 4 7");
    assert!(w.requests.contains(&"headers 1 8 7".to_string()));
}

#[test]
fn a_fork_deeper_than_the_search_is_left_alone() {
    let mut w = World::new(chain(20, 3, 500));
    w.spec_fork = Some(5);
    w.peers.insert(1, peer(chain(25, 3, 2_000)));
    w.round();
    assert_eq!(w.tip().id, 520);
    assert!(!w.requests.iter().any(|r| r.starts_with("blocks")));
}

#[test]
fn a_window_ends_at_an_epoch_boundary_and_the_next_starts_after_it_is_applied() {
    let mut w = World::new(chain(0, u64::MAX, 0));
    w.spec_epoch = Some(5);
    w.peers.insert(1, peer(chain(12, u64::MAX, 0)));
    w.round();
    assert_eq!(w.tip().height, 12);
    let headers: Vec<&String> = w
        .requests
        .iter()
        .filter(|r| r.starts_with("headers"))
        .collect();
    // Up to 5, then from 6 (after 5 is applied), then from 11.
    assert_eq!(headers[0], "headers 1 1 8");
    assert!(headers.iter().any(|r| r.starts_with("headers 1 6 ")));
    assert!(headers.iter().any(|r| r.starts_with("headers 1 11 ")));
}

#[test]
fn a_peer_with_an_invalid_status_answer_is_penalised_and_not_followed() {
    let mut w = World::new(chain(0, u64::MAX, 0));
    let mut liar = peer(chain(99, u64::MAX, 0));
    liar.status_invalid = true;
    w.peers.insert(1, liar);
    w.peers.insert(2, peer(chain(6, u64::MAX, 0)));
    let report = w.round();
    assert_eq!(w.penalised.len(), 1);
    assert_eq!(w.tip().height, 6);
    assert_eq!(report.best_peer_height, Some(6));
}
