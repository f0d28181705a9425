//! What a chain supplies to the sync engine ([`SyncSpec`]: its types, order of peers and
//! limits) and what passes between the engine and its caller: the effects a round asks for,
//! the events that answer them, and what a peer's answer, a header check or an import came to.
//! Types only: the decisions are the `machine` module's.

use std::cmp::Ordering;

/// What the engine needs to know about one chain: its message types, how to compare peers and
/// blocks, and its limits. Pure: every method answers from its arguments (and the chain's
/// fixed parameters held by the implementor).
pub trait SyncSpec {
    type Peer: Copy + Ord + std::fmt::Debug;
    /// Where a peer says its chain is.
    type Status: Clone;
    /// A signed header as peers send it.
    type Header: Clone;
    type Block;
    /// What headers after it are checked against (the header, and for a chain with epochs,
    /// the validator sets its successors are checked with).
    type Anchor: Clone;
    /// This node's tip as the engine compares it with peers.
    type Tip: Clone + PartialEq;

    fn limits(&self) -> SyncLimits;

    fn status_height(&self, s: &Self::Status) -> u64;
    /// Which of two peers to follow: the greater.
    fn compare(&self, a: &Self::Status, b: &Self::Status) -> Ordering;
    /// Whether the peer's chain is one this node should take.
    fn behind(&self, tip: &Self::Tip, peer: &Self::Status) -> bool;
    /// Whether a peer that reported `holder` has the blocks of the followed peer (`best`) up
    /// to `height`.
    fn can_serve(&self, holder: &Self::Status, best: &Self::Status, height: u64) -> bool;
    fn tip_height(&self, t: &Self::Tip) -> u64;
    /// Lowest height whose blocks and headers the peer serves: a peer that pruned its history
    /// past this node's next block is no sync partner for it.
    fn serves_from(&self, _s: &Self::Status) -> u64 {
        0
    }

    fn header_height(&self, h: &Self::Header) -> u64;
    fn anchor_height(&self, a: &Self::Anchor) -> u64;
    /// The anchor after `verified` headers were checked on top of `anchor`.
    fn advance(&self, anchor: &Self::Anchor, verified: &[Self::Header]) -> Self::Anchor;
    /// Whether the headers after `anchor` can only be checked once its block is applied (an
    /// epoch boundary that fixes the next validator set): the window ends there.
    fn ends_window(&self, anchor: &Self::Anchor) -> bool;
    /// Whether `header` is exactly this node's header `mine` (fork search).
    fn same(&self, mine: &Self::Anchor, header: &Self::Header) -> bool;
    /// Whether `header` builds on this node's `parent` (fork search).
    fn builds_on(&self, header: &Self::Header, parent: &Self::Anchor) -> bool;
    fn block_height(&self, b: &Self::Block) -> u64;
    /// Whether `block` carries exactly `header` (and its signature).
    fn carries(&self, block: &Self::Block, header: &Self::Header) -> bool;
}

/// How much one chain's sync asks for at a time.
#[derive(Clone, Copy, Debug)]
pub struct SyncLimits {
    /// Peers asked for their status in one round.
    pub status_fanout: usize,
    /// Heights whose headers are fetched and checked before their bodies.
    pub header_window: u64,
    pub max_headers_per_answer: u32,
    pub max_blocks_per_answer: u32,
    /// Block ranges fetched at the same time.
    pub bodies_in_flight: usize,
    /// How far below its tip a chain with forks looks for the block it shares with a peer;
    /// `None` for a chain whose blocks are final (it builds on its tip).
    pub fork_search_depth: Option<u64>,
}

/// A peer's answer to one request.
#[derive(Debug)]
pub enum Answer<T> {
    Ok(T),
    /// No answer (timeout, disconnect): not the peer's fault.
    Failed,
    /// Malformed or not what was asked: the peer's fault.
    Invalid,
    /// The peer is on another chain: not a sync partner, not at fault.
    OtherChain,
}

impl<T> Answer<T> {
    /// What a reply comes to: no reply is `Failed`; a reply `pick` finds nothing in (not
    /// what was asked) is `Invalid`.
    pub fn from_reply<R>(reply: Option<R>, pick: impl FnOnce(R) -> Option<T>) -> Answer<T> {
        match reply.map(pick) {
            Some(Some(t)) => Answer::Ok(t),
            Some(None) => Answer::Invalid,
            None => Answer::Failed,
        }
    }

    /// An answer from a peer whose chain is not ours (`ours` says no) is `OtherChain`.
    pub fn on_chain(self, ours: impl FnOnce(&T) -> bool) -> Answer<T> {
        match self {
            Answer::Ok(t) if !ours(&t) => Answer::OtherChain,
            other => other,
        }
    }
}

/// What checking a batch of headers found.
#[derive(Debug)]
pub enum Checked {
    /// The first `n` headers form a valid chain on the anchor (the rest, if any, can only be
    /// checked once an epoch boundary is applied).
    Valid(usize),
    /// Header `index` is invalid; `blame` says whether that is the peer's fault (a header
    /// from the future may be a clock's).
    Invalid {
        index: usize,
        blame: bool,
        reason: String,
    },
}

impl Checked {
    /// What a chain's check of a batch found: `Ok(n)` valid headers, or the index of the first
    /// invalid one and why; `blame` says whether that error is the peer's fault.
    pub fn from_check<E: std::fmt::Display>(
        checked: Result<usize, (usize, E)>,
        blame: impl FnOnce(&E) -> bool,
    ) -> Checked {
        match checked {
            Ok(n) => Checked::Valid(n),
            Err((index, e)) => Checked::Invalid {
                index,
                blame: blame(&e),
                reason: e.to_string(),
            },
        }
    }
}

/// What importing a block came to.
#[derive(Debug)]
pub enum Imported {
    Imported,
    /// The node has it already (it came by gossip meanwhile).
    Known,
    /// The block breaks a rule: its sender is to blame.
    Invalid(String),
    /// It cannot be imported now, through no fault of the sender (a main block it names is
    /// missing, storage failed): the round ends.
    Paused(String),
}

/// One block range to fetch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetch<P> {
    /// Which range of the window (answers name it).
    pub range: usize,
    pub peer: P,
    pub from: u64,
    pub max: u32,
}

/// What the caller must do next.
#[derive(Debug)]
#[must_use = "a sync round waits for the event that answers each effect"]
pub enum Effect<S: SyncSpec> {
    /// Ask these peers where they are; answer with [`Event::Statuses`].
    AskStatus(Vec<S::Peer>),
    /// Ask `peer` for up to `max` signed headers from `from`; answer with [`Event::Headers`].
    AskHeaders { peer: S::Peer, from: u64, max: u32 },
    /// Read this node's own headers `from..=to` as anchors; answer with [`Event::Local`].
    ReadLocal { from: u64, to: u64 },
    /// Check `batch` as a chain on `anchor`; answer with [`Event::Checked`].
    Check {
        anchor: S::Anchor,
        batch: Vec<S::Header>,
    },
    /// Fetch these ranges (at the same time); answer with [`Event::Bodies`].
    Fetch(Vec<Fetch<S::Peer>>),
    /// Import these blocks in order, stopping at the first that does not import; answer with
    /// [`Event::Imported`].
    Import(Vec<S::Block>),
    /// The peer misbehaved (an invalid answer, header or block).
    Penalize(S::Peer, String),
    /// The round is over.
    Done,
}

/// What came of an effect.
#[derive(Debug)]
pub enum Event<S: SyncSpec> {
    Statuses(Vec<(S::Peer, Answer<S::Status>)>),
    Headers(Answer<Vec<S::Header>>),
    /// This node's headers asked for, lowest first (fewer if it lacks some).
    Local(Vec<S::Anchor>),
    Checked(Checked),
    Bodies(Vec<(usize, Answer<Vec<S::Block>>)>),
    /// The import's outcomes in order (it stopped after the first that is not imported or
    /// known), and this node's tip after it.
    Imported {
        outcomes: Vec<(u64, Imported)>,
        tip: S::Tip,
    },
}
