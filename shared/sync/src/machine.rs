//! Headers-first sync as a state machine, sans I/O: one round at a time, it decides which
//! peer to follow, where this node's chain and the peer's part, which headers to ask for,
//! which block ranges to fetch from whom, and whom to blame; the caller carries out each
//! [`Effect`] and feeds back what came of it as an [`Event`]. It reads no clock, sends
//! nothing and stores nothing, so every decision can be tested without a network.
//!
//! A round:
//!
//! 1. **Status**: up to `status_fanout` peers say where their chain is; the best by the
//!    chain's own order (height, or most work) is followed while this node is behind it.
//! 2. **Base**: where the two chains part. A chain without forks builds on its own tip; one
//!    with forks compares the peer's recent headers with its own and takes the last block
//!    they share (never deeper than `fork_search_depth`).
//! 3. **Headers**: a window of signed headers after the base, batch by batch, each checked
//!    as a chain before any body is fetched: a peer advertising a chain it cannot back is
//!    caught after kilobytes, not megabytes.
//! 4. **Bodies**: the window's blocks in ranges, several in flight, each from a peer that can
//!    serve it (and retried once from the followed peer); each block must carry exactly its
//!    checked header; then imported in order, every rule re-checked by the chain.
//!
//! Then the next window, until this node is level with the peer or a window brings nothing.

pub use crate::spec::{Answer, Checked, Effect, Event, Fetch, Imported, SyncLimits, SyncSpec};
pub use doin_api::node::SyncReport;
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// `local / best` in percent (100 when level or ahead).
pub fn percent(local: u64, best: u64) -> u8 {
    if best == 0 || local >= best {
        100
    } else {
        u8::try_from(u128::from(local) * 100 / u128::from(best)).unwrap_or(100)
    }
}

/// Where a round is.
enum Phase<S: SyncSpec> {
    Statuses,
    /// The peer's headers around this node's tip were asked for (fork search).
    ForkHeaders {
        lo: u64,
    },
    /// This node's headers `lo - 1..` were asked for, to compare with the peer's.
    ForkLocal {
        theirs: Vec<S::Header>,
    },
    /// Headers up to `end` after `anchor` are being fetched and checked.
    Headers {
        anchor: S::Anchor,
        end: u64,
        /// Checked headers of this window, and the batch being checked.
        got: Vec<S::Header>,
        checking: Vec<S::Header>,
    },
    /// The window's blocks are being fetched, `groups` ranges at a time.
    Bodies(Bodies<S>),
    /// Blocks are being imported; `rest` follow once they are.
    Importing(Bodies<S>),
    Over,
}

/// The block ranges of one window.
struct Bodies<S: SyncSpec> {
    /// The window's checked headers, in ranges.
    ranges: Vec<Vec<S::Header>>,
    /// The first range of the group in flight.
    next: usize,
    /// Ranges of the group being fetched: what has come of each so far.
    fetched: BTreeMap<usize, Vec<S::Block>>,
    /// Ranges retried from the followed peer.
    retried: Vec<usize>,
    /// Whom each range was last asked of (blamed for what it answers).
    asked: BTreeMap<usize, S::Peer>,
    /// A range could not be had even from the followed peer: the round ends after what came
    /// before it is imported.
    cut: bool,
    /// The tip before the window.
    tip_before: S::Tip,
}

/// One sync round.
pub struct Round<S: SyncSpec> {
    spec: S,
    tip: S::Tip,
    best: Option<(S::Peer, S::Status)>,
    statuses: Vec<(S::Peer, S::Status)>,
    phase: Phase<S>,
    progress: SyncReport,
}

impl<S: SyncSpec> Round<S> {
    /// A round from this node's `tip`, among `peers`, carrying on `progress` (the totals of
    /// earlier rounds).
    pub fn new(spec: S, tip: S::Tip, progress: SyncReport) -> Round<S> {
        Round {
            spec,
            tip,
            best: None,
            statuses: Vec::new(),
            phase: Phase::Statuses,
            progress,
        }
    }

    /// The first effects: ask the first peers of `peers` where they are.
    #[must_use]
    pub fn start(&mut self, peers: Vec<S::Peer>) -> Vec<Effect<S>> {
        let asked: Vec<S::Peer> = peers
            .into_iter()
            .take(self.spec.limits().status_fanout)
            .collect();
        vec![Effect::AskStatus(asked)]
    }

    pub fn progress(&self) -> &SyncReport {
        &self.progress
    }

    /// The peer followed this round and the height it reported.
    pub fn target(&self) -> Option<(S::Peer, u64)> {
        self.best
            .as_ref()
            .map(|(p, s)| (*p, self.spec.status_height(s)))
    }

    pub fn is_over(&self) -> bool {
        matches!(self.phase, Phase::Over)
    }

    /// Takes what came of the last effect; returns what to do next.
    #[must_use]
    pub fn handle(&mut self, event: Event<S>) -> Vec<Effect<S>> {
        let phase = std::mem::replace(&mut self.phase, Phase::Over);
        let effects = match (phase, event) {
            (Phase::Statuses, Event::Statuses(answers)) => self.on_statuses(answers),
            (Phase::ForkHeaders { lo }, Event::Headers(answer)) => self.on_fork_headers(lo, answer),
            (Phase::ForkLocal { theirs }, Event::Local(mine)) => self.on_fork_local(theirs, mine),
            (
                Phase::Headers {
                    anchor,
                    end,
                    got,
                    checking,
                },
                event,
            ) => self.on_headers(anchor, end, got, checking, event),
            (Phase::Bodies(b), Event::Bodies(answers)) => self.on_bodies(b, answers),
            (Phase::Importing(b), Event::Imported { outcomes, tip }) => {
                self.on_imported(b, outcomes, tip)
            }
            // An answer to nothing asked: the round ends (the caller's mistake, not a peer's).
            (_, _) => Vec::new(),
        };
        self.finish_if_idle(effects)
    }

    /// Ends the round when a step decided nothing more.
    fn finish_if_idle(&mut self, mut effects: Vec<Effect<S>>) -> Vec<Effect<S>> {
        let waiting = effects
            .iter()
            .any(|e| !matches!(e, Effect::Penalize(..) | Effect::Done));
        if !waiting {
            self.phase = Phase::Over;
            self.progress.local_height = self.spec.tip_height(&self.tip);
            let target = self.target().map(|(_, h)| h);
            let local = self.progress.local_height;
            self.progress.syncing = target.is_some_and(|t| t > local.saturating_add(1));
            self.progress.progress_percent = percent(local, target.unwrap_or(local));
            if !effects.iter().any(|e| matches!(e, Effect::Done)) {
                effects.push(Effect::Done);
            }
        }
        effects
    }

    fn on_statuses(&mut self, answers: Vec<(S::Peer, Answer<S::Status>)>) -> Vec<Effect<S>> {
        let mut effects = Vec::new();
        let next = self.spec.tip_height(&self.tip).saturating_add(1);
        self.progress.peers_pruned_past_us = 0;
        for (peer, answer) in answers {
            match answer {
                // A peer that pruned the blocks this node needs next cannot serve it.
                Answer::Ok(s) if self.spec.serves_from(&s) > next => {
                    self.progress.peers_pruned_past_us += 1
                }
                Answer::Ok(s) => self.statuses.push((peer, s)),
                Answer::Invalid => {
                    effects.push(Effect::Penalize(peer, "invalid status answer".into()))
                }
                Answer::Failed | Answer::OtherChain => {}
            }
        }
        // The first of the greatest among the peers ahead of this node, as peers were asked
        // (the greatest of all may be level with it where the chain's order is not its
        // height, while others are ahead); with none ahead, the first of the greatest.
        let mut best: Option<&(S::Peer, S::Status)> = None;
        let mut best_ahead: Option<&(S::Peer, S::Status)> = None;
        for candidate in &self.statuses {
            let greater = |b: Option<&(S::Peer, S::Status)>| {
                b.is_none_or(|b| self.spec.compare(&candidate.1, &b.1) == Ordering::Greater)
            };
            if greater(best) {
                best = Some(candidate);
            }
            if self.spec.behind(&self.tip, &candidate.1) && greater(best_ahead) {
                best_ahead = Some(candidate);
            }
        }
        self.best = best_ahead.or(best).cloned();
        let local = self.spec.tip_height(&self.tip);
        let best_height = self.target().map(|(_, h)| h);
        self.progress.local_height = local;
        self.progress.peers_on_chain = self.statuses.len();
        self.progress.best_peer_height = best_height;
        self.progress.syncing = best_height.is_some_and(|h| h > local.saturating_add(1));
        self.progress.progress_percent = percent(local, best_height.unwrap_or(local));
        effects.extend(self.next_window());
        effects
    }

    /// Starts the next window if the followed peer is still ahead.
    fn next_window(&mut self) -> Vec<Effect<S>> {
        let Some((peer, status)) = self.best.clone() else {
            return Vec::new();
        };
        if !self.spec.behind(&self.tip, &status) {
            return Vec::new();
        }
        let local = self.spec.tip_height(&self.tip);
        match self.spec.limits().fork_search_depth {
            // Final blocks: the window builds on this node's tip.
            None => {
                self.phase = Phase::ForkLocal { theirs: Vec::new() };
                vec![Effect::ReadLocal {
                    from: local,
                    to: local,
                }]
            }
            Some(depth) => {
                let top = local.min(self.spec.status_height(&status));
                let lo = local.saturating_sub(depth).max(1);
                if top < lo {
                    // The peer is below the search: its chain builds on our block at its top.
                    self.phase = Phase::ForkLocal { theirs: Vec::new() };
                    return vec![Effect::ReadLocal { from: top, to: top }];
                }
                let max = u32::try_from(top - lo + 1)
                    .unwrap_or(u32::MAX)
                    .min(self.spec.limits().max_headers_per_answer);
                self.phase = Phase::ForkHeaders { lo };
                vec![Effect::AskHeaders {
                    peer,
                    from: lo,
                    max,
                }]
            }
        }
    }

    fn on_fork_headers(&mut self, lo: u64, answer: Answer<Vec<S::Header>>) -> Vec<Effect<S>> {
        let Some((peer, _)) = self.best.clone() else {
            return Vec::new();
        };
        match answer {
            Answer::Ok(theirs)
                if theirs.len() <= self.spec.limits().max_headers_per_answer as usize =>
            {
                let to = lo.saturating_sub(1).saturating_add(theirs.len() as u64);
                self.phase = Phase::ForkLocal { theirs };
                vec![Effect::ReadLocal {
                    from: lo.saturating_sub(1),
                    to,
                }]
            }
            Answer::Ok(_) | Answer::Invalid => {
                vec![Effect::Penalize(peer, "invalid header answer".into())]
            }
            Answer::Failed | Answer::OtherChain => Vec::new(),
        }
    }

    /// The last block this node shares with the followed peer: `mine` are this node's
    /// anchors from just below the peer's headers `theirs` (or the tip alone).
    fn on_fork_local(&mut self, theirs: Vec<S::Header>, mine: Vec<S::Anchor>) -> Vec<Effect<S>> {
        let Some((peer, status)) = self.best.clone() else {
            return Vec::new();
        };
        let Some(mut common) = mine.first().cloned() else {
            return Vec::new();
        };
        match theirs.first() {
            None => {}
            Some(first) if self.spec.builds_on(first, &common) => {
                for (header, ours) in theirs.iter().zip(mine.iter().skip(1)) {
                    if !self.spec.same(ours, header) {
                        break;
                    }
                    common = ours.clone();
                }
            }
            // The peer's chain parts from ours below what this node can take back.
            Some(_) => return Vec::new(),
        }
        let base = self.spec.anchor_height(&common);
        let end = self
            .spec
            .status_height(&status)
            .min(base.saturating_add(self.spec.limits().header_window));
        self.headers_after(peer, common, end, Vec::new())
    }

    /// Asks for the next batch of headers after `anchor` up to `end`, or moves on to the
    /// bodies of what was checked.
    fn headers_after(
        &mut self,
        peer: S::Peer,
        anchor: S::Anchor,
        end: u64,
        got: Vec<S::Header>,
    ) -> Vec<Effect<S>> {
        let at = self.spec.anchor_height(&anchor);
        if at >= end || (!got.is_empty() && self.spec.ends_window(&anchor)) {
            return self.bodies(got);
        }
        let max = u32::try_from(end - at)
            .unwrap_or(u32::MAX)
            .min(self.spec.limits().max_headers_per_answer);
        self.phase = Phase::Headers {
            anchor,
            end,
            got,
            checking: Vec::new(),
        };
        vec![Effect::AskHeaders {
            peer,
            from: at + 1,
            max,
        }]
    }

    fn on_headers(
        &mut self,
        anchor: S::Anchor,
        end: u64,
        mut got: Vec<S::Header>,
        checking: Vec<S::Header>,
        event: Event<S>,
    ) -> Vec<Effect<S>> {
        let Some((peer, _)) = self.best.clone() else {
            return Vec::new();
        };
        match event {
            Event::Headers(answer) => {
                let asked = u32::try_from(end - self.spec.anchor_height(&anchor))
                    .unwrap_or(u32::MAX)
                    .min(self.spec.limits().max_headers_per_answer)
                    as usize;
                match answer {
                    // Nothing more from this peer (it may have reported a tip it lost).
                    Answer::Ok(batch) if batch.is_empty() => self.bodies(got),
                    Answer::Ok(batch) if batch.len() <= asked => {
                        self.phase = Phase::Headers {
                            anchor: anchor.clone(),
                            end,
                            got,
                            checking: batch.clone(),
                        };
                        vec![Effect::Check { anchor, batch }]
                    }
                    Answer::Ok(_) | Answer::Invalid => {
                        vec![Effect::Penalize(peer, "invalid header answer".into())]
                    }
                    // No answer: sync what was checked so far.
                    Answer::Failed | Answer::OtherChain => self.bodies(got),
                }
            }
            Event::Checked(Checked::Valid(n)) => {
                let verified: Vec<S::Header> = checking.into_iter().take(n).collect();
                if verified.is_empty() {
                    // The first header needs validator sets this node has not applied yet.
                    return self.bodies(got);
                }
                let anchor = self.spec.advance(&anchor, &verified);
                self.progress.headers_synced += verified.len() as u64;
                self.progress.verified_header_height = self.spec.anchor_height(&anchor);
                got.extend(verified);
                self.headers_after(peer, anchor, end, got)
            }
            Event::Checked(Checked::Invalid {
                index,
                blame,
                reason,
            }) => {
                let height = self.spec.anchor_height(&anchor) + 1 + index as u64;
                if blame {
                    vec![Effect::Penalize(
                        peer,
                        format!("invalid header at {height}: {reason}"),
                    )]
                } else {
                    Vec::new()
                }
            }
            _ => Vec::new(),
        }
    }

    /// The blocks of the checked `headers`, in ranges.
    fn bodies(&mut self, headers: Vec<S::Header>) -> Vec<Effect<S>> {
        if headers.is_empty() {
            return Vec::new();
        }
        let per = self.spec.limits().max_blocks_per_answer.max(1) as usize;
        let mut ranges = Vec::new();
        let mut it = headers.into_iter().peekable();
        while it.peek().is_some() {
            ranges.push(it.by_ref().take(per).collect::<Vec<_>>());
        }
        let bodies = Bodies {
            ranges,
            next: 0,
            fetched: BTreeMap::new(),
            retried: Vec::new(),
            asked: BTreeMap::new(),
            cut: false,
            tip_before: self.tip.clone(),
        };
        self.fetch_group(bodies)
    }

    /// Fetches the next group of ranges, each from a peer that can serve it.
    fn fetch_group(&mut self, mut b: Bodies<S>) -> Vec<Effect<S>> {
        let Some((best_peer, best)) = self.best.clone() else {
            return Vec::new();
        };
        if b.next >= b.ranges.len() {
            return self.next_window();
        }
        let group_end = (b.next + self.spec.limits().bodies_in_flight.max(1)).min(b.ranges.len());
        let mut fetches = Vec::new();
        for (i, range) in b.ranges[b.next..group_end].iter().enumerate() {
            let index = b.next + i;
            let last = range.last().map_or(0, |h| self.spec.header_height(h));
            let holders: Vec<S::Peer> = self
                .statuses
                .iter()
                .filter(|(_, s)| self.spec.can_serve(s, &best, last))
                .map(|(p, _)| *p)
                .collect();
            let peer = holders
                .get(i % holders.len().max(1))
                .copied()
                .unwrap_or(best_peer);
            b.fetched.insert(index, Vec::new());
            b.asked.insert(index, peer);
            fetches.push(self.fetch_of(index, peer, range, 0));
        }
        self.phase = Phase::Bodies(b);
        vec![Effect::Fetch(fetches)]
    }

    /// The request for what is missing of range `index` (`have` blocks came already).
    fn fetch_of(
        &self,
        index: usize,
        peer: S::Peer,
        range: &[S::Header],
        have: usize,
    ) -> Fetch<S::Peer> {
        let rest = &range[have.min(range.len())..];
        Fetch {
            range: index,
            peer,
            from: rest.first().map_or(0, |h| self.spec.header_height(h)),
            max: u32::try_from(rest.len()).unwrap_or(u32::MAX),
        }
    }

    fn on_bodies(
        &mut self,
        mut b: Bodies<S>,
        answers: Vec<(usize, Answer<Vec<S::Block>>)>,
    ) -> Vec<Effect<S>> {
        let Some((best_peer, _)) = self.best.clone() else {
            return Vec::new();
        };
        let mut effects = Vec::new();
        let mut again = Vec::new();
        for (index, answer) in answers {
            let Some(range) = b.ranges.get(index) else {
                continue;
            };
            let have = b.fetched.get(&index).map_or(0, Vec::len);
            let rest = &range[have.min(range.len())..];
            let from = rest.first().map_or(0, |h| self.spec.header_height(h));
            let ok = match answer {
                Answer::Ok(blocks) => {
                    let consecutive = blocks.len() <= rest.len()
                        && blocks
                            .iter()
                            .enumerate()
                            .all(|(i, bl)| self.spec.block_height(bl) == from + i as u64);
                    if !consecutive {
                        effects.push(Effect::Penalize(
                            self.peer_of(&b, index, best_peer),
                            "blocks not as asked".into(),
                        ));
                        false
                    } else if blocks.is_empty() {
                        false
                    } else if let Some(bad) = blocks
                        .iter()
                        .zip(rest)
                        .position(|(bl, h)| !self.spec.carries(bl, h))
                    {
                        effects.push(Effect::Penalize(
                            self.peer_of(&b, index, best_peer),
                            format!(
                                "block {} does not carry its checked header",
                                from + bad as u64
                            ),
                        ));
                        false
                    } else {
                        if let Some(got) = b.fetched.get_mut(&index) {
                            got.extend(blocks);
                        }
                        true
                    }
                }
                Answer::Invalid => {
                    effects.push(Effect::Penalize(
                        self.peer_of(&b, index, best_peer),
                        "invalid block answer".into(),
                    ));
                    false
                }
                Answer::Failed | Answer::OtherChain => false,
            };
            let have = b.fetched.get(&index).map_or(0, Vec::len);
            if ok && have < range.len() {
                // A short answer: the rest from the same peer.
                let peer = self.peer_of(&b, index, best_peer);
                again.push(self.fetch_of(index, peer, range, have));
            } else if !ok {
                if b.retried.contains(&index) {
                    // Retried from the followed peer already: the round ends here.
                    b.ranges.truncate(index);
                    b.fetched.retain(|i, _| *i < index);
                    b.cut = true;
                    continue;
                }
                b.retried.push(index);
                if let Some(got) = b.fetched.get_mut(&index) {
                    got.clear();
                }
                again.push(self.fetch_of(index, best_peer, range, 0));
            }
        }
        if !again.is_empty() {
            again.retain(|f| f.range < b.ranges.len());
        }
        if !again.is_empty() {
            for f in &again {
                b.asked.insert(f.range, f.peer);
            }
            self.phase = Phase::Bodies(b);
            effects.push(Effect::Fetch(again));
            return effects;
        }
        // The group is in: import it in order.
        let group: Vec<usize> = b.fetched.keys().copied().collect();
        let mut blocks = Vec::new();
        for index in group {
            if let Some(got) = b.fetched.remove(&index) {
                blocks.extend(got);
            }
        }
        b.next += self.spec.limits().bodies_in_flight.max(1);
        if blocks.is_empty() {
            return effects;
        }
        self.phase = Phase::Importing(b);
        effects.push(Effect::Import(blocks));
        effects
    }

    /// The peer range `index` was last asked of.
    fn peer_of(&self, b: &Bodies<S>, index: usize, best: S::Peer) -> S::Peer {
        b.asked.get(&index).copied().unwrap_or(best)
    }

    fn on_imported(
        &mut self,
        b: Bodies<S>,
        outcomes: Vec<(u64, Imported)>,
        tip: S::Tip,
    ) -> Vec<Effect<S>> {
        let Some((best_peer, _)) = self.best.clone() else {
            return Vec::new();
        };
        self.tip = tip;
        let mut effects = Vec::new();
        let mut stopped = false;
        for (height, outcome) in outcomes {
            match outcome {
                Imported::Imported => {
                    self.progress.blocks_synced += 1;
                    self.progress.local_height = height;
                    let best = self.progress.best_peer_height.unwrap_or(height);
                    self.progress.progress_percent = percent(height, best);
                }
                Imported::Known => {}
                Imported::Invalid(reason) => {
                    effects.push(Effect::Penalize(
                        best_peer,
                        format!("invalid block {height}: {reason}"),
                    ));
                    stopped = true;
                }
                Imported::Paused(_) => stopped = true,
            }
        }
        if stopped || b.cut {
            return effects;
        }
        if b.next < b.ranges.len() {
            effects.extend(self.fetch_group(b));
            return effects;
        }
        // The window is in. No progress (the peer's blocks did not move this node's chain):
        // nothing more to get from it now.
        if self.tip == b.tip_before {
            return effects;
        }
        effects.extend(self.next_window());
        effects
    }
}
