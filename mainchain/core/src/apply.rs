//! The main-chain state transition: `apply_block` checks every rule of a block against the
//! parent state and returns the next state; `build_block` assembles a valid block from
//! candidate messages. Both run the same `execute`, so what a producer builds is exactly what
//! an importer accepts.

use crate::block::{MainBlock, MainBody, MainHeader, SignedMainHeader};
use crate::error::{ItemError, MainBlockError};
use crate::fixed::Fx;
use crate::items::{commit, register, reveal, verdict};
use crate::msg::OptimaeId;
use crate::params::MainChainParams;
use crate::reward;
use crate::state::MainState;
use crate::DomainId;
use doin_crypto::KeyPair;
use doin_types::{Hash256, PortError, PublicKeyBytes, StakedSet, Timestamp, TxCheckpoint};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// What the importing node knows that the block does not: its clock and its transfer chain.
#[derive(Clone, Copy)]
pub struct MainContext<'a> {
    pub now: Timestamp,
    pub tx_chain: &'a dyn TxChainView,
}

/// What the main chain needs from the transfer chain: the port the node implements.
pub trait TxChainView {
    /// Hash of the transfer block at `height` if this node has it and it is final.
    fn final_block_hash(&self, height: u64) -> Result<Option<Hash256>, PortError>;

    /// The final transfer block a producer should checkpoint now, if any.
    fn checkpoint_candidate(&self) -> Result<Option<TxCheckpoint>, PortError>;

    /// Who is staked as evaluator and optimizer in the transfer state after the final block
    /// at `height` (read through that block's state root); `None` if this node cannot tell.
    fn stakes_at(&self, height: u64) -> Result<Option<StakedSet>, PortError>;

    /// The first final transfer block whose `main_anchor` covers main height `main_height`
    /// (its height and hash), if any. Only views use this (main-block finality); consensus
    /// does not.
    fn anchoring_block(&self, _main_height: u64) -> Result<Option<(u64, Hash256)>, PortError> {
        Ok(None)
    }

    /// The highest main height the transfer chain has anchored (and so applied the effects
    /// of): the main chain is never reorganised at or below it. 0 when nothing is anchored.
    fn anchored_main_height(&self) -> Result<u64, PortError> {
        Ok(0)
    }
}

/// No transfer chain: nothing to checkpoint, and a block that moves its checkpoint cannot be
/// checked.
pub struct NoTxChain;

impl TxChainView for NoTxChain {
    fn final_block_hash(&self, _height: u64) -> Result<Option<Hash256>, PortError> {
        Ok(None)
    }

    fn checkpoint_candidate(&self) -> Result<Option<TxCheckpoint>, PortError> {
        Ok(None)
    }

    fn stakes_at(&self, _height: u64) -> Result<Option<StakedSet>, PortError> {
        Ok(None)
    }
}

/// The staked sets a block adopts: those at its checkpoint when the checkpoint moves.
fn adopted_stakes(
    tx_chain: &dyn TxChainView,
    parent: &TxCheckpoint,
    next: &TxCheckpoint,
) -> Result<Option<StakedSet>, MainBlockError> {
    if next.height <= parent.height {
        return Ok(None);
    }
    tx_chain
        .stakes_at(next.height)
        .map_err(MainBlockError::TxChain)?
        .map(Some)
        .ok_or(MainBlockError::UnknownTxBlock {
            height: next.height,
        })
}

/// Checks that checkpoint `next` may follow `parent`: never back, never a different block at
/// the same height, and a new one must be a final block of the transfer chain this node has.
pub fn check_checkpoint(
    tx_chain: &dyn TxChainView,
    parent: &TxCheckpoint,
    next: &TxCheckpoint,
) -> Result<(), MainBlockError> {
    if next.height < parent.height {
        return Err(MainBlockError::CheckpointBackwards {
            parent: parent.height,
            got: next.height,
        });
    }
    if next.height == parent.height {
        return if next.hash == parent.hash {
            Ok(())
        } else {
            Err(MainBlockError::CheckpointChanged {
                height: next.height,
            })
        };
    }
    match tx_chain
        .final_block_hash(next.height)
        .map_err(MainBlockError::TxChain)?
    {
        None => Err(MainBlockError::UnknownTxBlock {
            height: next.height,
        }),
        Some(h) if h != next.hash => Err(MainBlockError::CheckpointMismatch {
            height: next.height,
        }),
        Some(_) => Ok(()),
    }
}

/// The checkpoint a producer uses: the transfer chain's candidate when it is ahead of the
/// parent's, else the parent's.
fn choose_checkpoint(
    tx_chain: &dyn TxChainView,
    parent: &TxCheckpoint,
) -> Result<TxCheckpoint, MainBlockError> {
    match tx_chain
        .checkpoint_candidate()
        .map_err(MainBlockError::TxChain)?
    {
        Some(c) if c.height > parent.height => Ok(c),
        _ => Ok(*parent),
    }
}

/// What happened to a commit or an optimae in a block; the node indexes these for REST.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum OptimaeEvent {
    Registered {
        domain: DomainId,
        sponsor: PublicKeyBytes,
    },
    Committed {
        commit_id: Hash256,
        domain: DomainId,
        optimizer: PublicKeyBytes,
    },
    Revealed {
        optimae_id: OptimaeId,
        commit_id: Hash256,
        domain: DomainId,
        optimizer: PublicKeyBytes,
        reported: Fx,
    },
    Accepted {
        optimae_id: OptimaeId,
        domain: DomainId,
        optimizer: PublicKeyBytes,
        round: u8,
        verified: Fx,
        /// Counted work before the per-domain cap.
        work: Fx,
        new_best: bool,
        votes: Vec<(PublicKeyBytes, Fx, bool)>,
    },
    Rejected {
        optimae_id: OptimaeId,
        domain: DomainId,
        optimizer: PublicKeyBytes,
        round: u8,
        verified: Fx,
        votes: Vec<(PublicKeyBytes, Fx, bool)>,
    },
    Escalated {
        optimae_id: OptimaeId,
        votes: Vec<(PublicKeyBytes, Fx, bool)>,
    },
    Inconclusive {
        optimae_id: OptimaeId,
        votes: Vec<(PublicKeyBytes, Fx, bool)>,
    },
    Expired {
        optimae_id: OptimaeId,
    },
}

/// The result of applying a valid block.
#[derive(Clone, Debug)]
pub struct AppliedMain {
    pub state: MainState,
    pub events: Vec<OptimaeEvent>,
}

/// An item the builder left out, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub kind: &'static str,
    pub index: usize,
    pub error: ItemError,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Importing: the first invalid item invalidates the block.
    Strict,
    /// Building: invalid items are left out.
    Lenient,
}

struct Executed {
    state: MainState,
    body: MainBody,
    events: Vec<OptimaeEvent>,
    counted_work: Fx,
    /// Indexes (in `body.verdicts`) of verdicts that produced counted work.
    work_verdicts: Vec<usize>,
    skipped: Vec<Skipped>,
}

/// The block-independent inputs of `execute`.
struct Frame<'a> {
    params: &'a MainChainParams,
    /// Staked sets the block adopts before its items (a new transfer checkpoint's).
    staked: Option<StakedSet>,
    height: u64,
    parent_hash: Hash256,
    parent_time: Timestamp,
    time: Timestamp,
    producer: PublicKeyBytes,
}

/// Checks `block` on top of `parent` (whose post-state is `state`); returns the new state.
pub fn apply_block(
    params: &MainChainParams,
    state: &MainState,
    parent: &MainHeader,
    block: &MainBlock,
    ctx: MainContext,
) -> Result<AppliedMain, MainBlockError> {
    let h = &block.header;
    let c = &params.consensus;
    let parent_hash = check_linkage(params, parent, h, ctx.now)?;
    check_checkpoint(ctx.tx_chain, &parent.tx_checkpoint, &h.tx_checkpoint)?;
    let staked = adopted_stakes(ctx.tx_chain, &parent.tx_checkpoint, &h.tx_checkpoint)?;
    check_caps(c, &block.body)?;
    if block.body.root()? != h.body_root {
        return Err(MainBlockError::WrongBodyRoot);
    }
    block.verify_signature()?;
    if h.threshold != state.controller.threshold {
        return Err(MainBlockError::WrongThreshold {
            expected: state.controller.threshold,
            got: h.threshold,
        });
    }
    let frame = Frame {
        params,
        staked,
        height: h.height,
        parent_hash,
        parent_time: parent.time,
        time: h.time,
        producer: h.producer,
    };
    let ex = execute(&frame, state, &block.body, Mode::Strict)?;
    if ex.counted_work != h.counted_work {
        return Err(MainBlockError::WrongCountedWork {
            expected: ex.counted_work,
            got: h.counted_work,
        });
    }
    check_threshold(params, parent, h.time, ex.counted_work, h.threshold)?;
    if ex.body.coinbase != block.body.coinbase {
        return Err(MainBlockError::WrongCoinbase);
    }
    let cumulative = parent
        .cumulative_work
        .checked_add(ex.counted_work.0 as u128)
        .ok_or(MainBlockError::Overflow("cumulative work"))?;
    if cumulative != h.cumulative_work {
        return Err(MainBlockError::WrongCumulativeWork);
    }
    let root = ex.state.root().map_err(MainBlockError::Malformed)?;
    if root != h.state_root {
        return Err(MainBlockError::WrongStateRoot);
    }
    Ok(AppliedMain {
        state: ex.state,
        events: ex.events,
    })
}

/// The checks of a header against its parent alone: chain, height, parent hash, time (rising
/// and not too far ahead of `now`). Returns the parent's hash.
fn check_linkage(
    params: &MainChainParams,
    parent: &MainHeader,
    h: &MainHeader,
    now: Timestamp,
) -> Result<Hash256, MainBlockError> {
    if h.chain_id != params.chain_id {
        return Err(MainBlockError::WrongChain);
    }
    let expected_height = parent
        .height
        .checked_add(1)
        .ok_or(MainBlockError::Overflow("height"))?;
    if h.height != expected_height {
        return Err(MainBlockError::WrongHeight {
            expected: expected_height,
            got: h.height,
        });
    }
    let parent_hash = parent.hash()?;
    if h.parent != parent_hash {
        return Err(MainBlockError::WrongParent);
    }
    if h.time <= parent.time {
        return Err(MainBlockError::TimeNotIncreasing {
            time: h.time,
            parent: parent.time,
        });
    }
    if h.time.0 > now.0.saturating_add(params.consensus.max_future_drift_ms) {
        return Err(MainBlockError::TimeInFuture { time: h.time, now });
    }
    Ok(parent_hash)
}

/// Checks a run of signed main headers on top of `parent` without bodies or state: linkage,
/// times, the producer's signature, counted work against the header's threshold (or the
/// carrier rule) and cumulative work. What needs the state — the threshold's value, the
/// verdicts behind the counted work, the state root — is checked when the blocks are applied.
/// Used by headers-first sync; on failure, the index of the first bad header and its error.
pub fn verify_main_header_chain(
    params: &MainChainParams,
    parent: &MainHeader,
    headers: &[SignedMainHeader],
    now: Timestamp,
) -> Result<(), (usize, MainBlockError)> {
    let mut parent = parent;
    for (i, s) in headers.iter().enumerate() {
        let h = &s.header;
        let check = || -> Result<(), MainBlockError> {
            check_linkage(params, parent, h, now)?;
            check_threshold(params, parent, h.time, h.counted_work, h.threshold)?;
            let counted = u128::try_from(h.counted_work.0)
                .map_err(|_| MainBlockError::Malformed("negative counted work".into()))?;
            let cumulative = parent
                .cumulative_work
                .checked_add(counted)
                .ok_or(MainBlockError::Overflow("cumulative work"))?;
            if cumulative != h.cumulative_work {
                return Err(MainBlockError::WrongCumulativeWork);
            }
            s.verify_signature()
        };
        check().map_err(|e| (i, e))?;
        parent = h;
    }
    Ok(())
}

/// Counted work must reach the threshold, except in a *carrier block*: zero counted work, at
/// least `carrier_interval_ms` after the parent. Carrier blocks keep commits and reveals
/// flowing when no verified work is pending (otherwise the commit–reveal pipeline could never
/// restart once empty); they add no work and mint nothing.
fn check_threshold(
    params: &MainChainParams,
    parent: &MainHeader,
    time: Timestamp,
    work: Fx,
    threshold: Fx,
) -> Result<(), MainBlockError> {
    if work >= threshold {
        return Ok(());
    }
    let carrier_ok = work == Fx::ZERO
        && time.0
            >= parent
                .time
                .0
                .saturating_add(params.consensus.carrier_interval_ms);
    if carrier_ok {
        Ok(())
    } else {
        Err(MainBlockError::BelowThreshold { work, threshold })
    }
}

fn check_caps(c: &crate::params::MainParams, body: &MainBody) -> Result<(), MainBlockError> {
    for (what, got, max) in [
        (
            "registrations",
            body.registrations.len(),
            c.max_registrations,
        ),
        ("commits", body.commits.len(), c.max_commits),
        ("reveals", body.reveals.len(), c.max_reveals),
        ("verdicts", body.verdicts.len(), c.max_verdicts),
    ] {
        if got > max as usize {
            return Err(MainBlockError::TooMany { what, got, max });
        }
    }
    Ok(())
}

/// The result of [`build_block`].
#[derive(Clone, Debug)]
pub struct BuiltMain {
    pub block: MainBlock,
    pub applied: AppliedMain,
    pub skipped: Vec<Skipped>,
}

/// Why no block can be built now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("not enough verified work yet: {work} of {threshold}")]
    NotEnoughWork { work: Fx, threshold: Fx },
    #[error(transparent)]
    Block(#[from] MainBlockError),
}

/// Builds and signs a block from `candidates` (its coinbase is ignored and recomputed).
/// Invalid items are skipped and reported. If the valid verdicts reach the threshold, a work
/// block is built; otherwise, once the carrier interval has passed and there is something to
/// carry, a carrier block without work-bearing verdicts.
pub fn build_block(
    params: &MainChainParams,
    state: &MainState,
    parent: &MainHeader,
    ctx: MainContext<'_>,
    key: &KeyPair,
    candidates: &MainBody,
) -> Result<BuiltMain, BuildError> {
    let time = ctx.now;
    let tx_checkpoint = choose_checkpoint(ctx.tx_chain, &parent.tx_checkpoint)?;
    let c = &params.consensus;
    let mut body = candidates.clone();
    body.coinbase.clear();
    body.registrations.truncate(c.max_registrations as usize);
    body.commits.truncate(c.max_commits as usize);
    body.reveals.truncate(c.max_reveals as usize);
    body.verdicts.truncate(c.max_verdicts as usize);
    let staked = adopted_stakes(ctx.tx_chain, &parent.tx_checkpoint, &tx_checkpoint)?;
    let frame = Frame {
        params,
        staked,
        height: parent.height.saturating_add(1),
        parent_hash: parent.hash()?,
        parent_time: parent.time,
        time,
        producer: key.public(),
    };
    let threshold = state.controller.threshold;
    let mut ex = execute(&frame, state, &body, Mode::Lenient)?;
    let skipped = ex.skipped.clone();
    if ex.counted_work < threshold {
        let carrier_time = time.0 >= parent.time.0.saturating_add(c.carrier_interval_ms);
        if !carrier_time {
            return Err(BuildError::NotEnoughWork {
                work: ex.counted_work,
                threshold,
            });
        }
        // Drop work-bearing verdicts until none is left (removing one can give a later one
        // in the same domain a gain, so repeat; each pass removes at least one).
        while !ex.work_verdicts.is_empty() {
            let drop: BTreeSet<usize> = ex.work_verdicts.iter().copied().collect();
            let mut next = ex.body.clone();
            next.verdicts = next
                .verdicts
                .into_iter()
                .enumerate()
                .filter(|(i, _)| !drop.contains(i))
                .map(|(_, v)| v)
                .collect();
            next.coinbase.clear();
            ex = execute(&frame, state, &next, Mode::Lenient)?;
        }
        let b = &ex.body;
        if b.registrations.is_empty()
            && b.commits.is_empty()
            && b.reveals.is_empty()
            && b.verdicts.is_empty()
        {
            return Err(BuildError::NotEnoughWork {
                work: Fx::ZERO,
                threshold,
            });
        }
    }
    let cumulative = parent
        .cumulative_work
        .checked_add(ex.counted_work.0 as u128)
        .ok_or(MainBlockError::Overflow("cumulative work"))?;
    let header = MainHeader {
        chain_id: params.chain_id,
        height: frame.height,
        parent: frame.parent_hash,
        time,
        producer: key.public(),
        threshold,
        counted_work: ex.counted_work,
        cumulative_work: cumulative,
        state_root: ex.state.root().map_err(MainBlockError::Malformed)?,
        body_root: ex.body.root()?,
        tx_checkpoint,
    };
    let block = MainBlock::sign(header, ex.body, key)?;
    // Validate what was built with the importer's rules: a builder bug must never produce a
    // block the network rejects.
    let applied = apply_block(params, state, parent, &block, ctx)?;
    Ok(BuiltMain {
        block,
        applied,
        skipped,
    })
}

fn execute(
    f: &Frame<'_>,
    state: &MainState,
    body: &MainBody,
    mode: Mode,
) -> Result<Executed, MainBlockError> {
    let params = f.params;
    let c = &params.consensus;
    let h = f.height;
    let mut s = state.clone();
    s.height = h;
    if let Some(set) = &f.staked {
        s.adopt_stakes(set);
    }
    let mut events = Vec::new();
    let mut skipped = Vec::new();
    let mut out = MainBody::default();

    // Reveals of the parent block get their quorum seed: the parent's hash.
    for p in s.pending.values_mut() {
        if p.quorum_seed.is_none() && p.revealed_at.saturating_add(1) == h {
            p.quorum_seed = Some(f.parent_hash);
        }
    }

    macro_rules! item {
        ($kind:literal, $wrap:ident, $i:expr, $res:expr, $keep:expr) => {
            match $res {
                Ok(ev) => {
                    events.push(ev);
                    $keep;
                }
                Err(error) => match mode {
                    Mode::Strict => return Err(MainBlockError::$wrap { index: $i, error }),
                    Mode::Lenient => skipped.push(Skipped {
                        kind: $kind,
                        index: $i,
                        error,
                    }),
                },
            }
        };
    }

    for (i, r) in body.registrations.iter().enumerate() {
        item!(
            "registration",
            InvalidRegistration,
            i,
            register(&mut s, params, r, h),
            out.registrations.push(r.clone())
        );
    }
    for (i, cm) in body.commits.iter().enumerate() {
        item!(
            "commit",
            InvalidCommit,
            i,
            commit(&mut s, params, cm, h),
            out.commits.push(cm.clone())
        );
    }
    for (i, r) in body.reveals.iter().enumerate() {
        item!(
            "reveal",
            InvalidReveal,
            i,
            reveal(&mut s, params, r, h),
            out.reveals.push(r.clone())
        );
    }

    // Verdicts. Reputation factors use the reputation before this block, so the order of
    // verdicts inside a block changes nothing but which optimae set a domain's best first.
    let mut seen: BTreeSet<OptimaeId> = BTreeSet::new();
    let mut domain_work: BTreeMap<DomainId, Fx> = BTreeMap::new();
    let mut optimae_work: Vec<(DomainId, PublicKeyBytes, Fx)> = Vec::new();
    let mut agreeing: BTreeMap<PublicKeyBytes, u128> = BTreeMap::new();
    let mut work_verdicts = Vec::new();
    for (i, v) in body.verdicts.iter().enumerate() {
        match verdict(&mut s, state, params, v, h, &mut seen) {
            Ok(res) => {
                for k in res.agreeing {
                    *agreeing.entry(k).or_default() += 1;
                }
                if let Some((domain, optimizer, w)) = res.work {
                    if w > Fx::ZERO {
                        work_verdicts.push(out.verdicts.len());
                        let d = domain_work.entry(domain.clone()).or_default();
                        *d = d.checked_add(w).ok_or(MainBlockError::Overflow("work"))?;
                        optimae_work.push((domain, optimizer, w));
                    }
                }
                events.push(res.event);
                out.verdicts.push(v.clone());
            }
            Err(error) => match mode {
                Mode::Strict => return Err(MainBlockError::InvalidVerdict { index: i, error }),
                Mode::Lenient => skipped.push(Skipped {
                    kind: "verdict",
                    index: i,
                    error,
                }),
            },
        }
    }

    // Per-domain fairness: with work from two or more domains, none counts above 60 % of the
    // threshold.
    let threshold = state.controller.threshold;
    let cap = if domain_work.len() >= 2 {
        threshold
            .checked_mul(Fx::ratio(6, 10))
            .ok_or(MainBlockError::Overflow("cap"))?
    } else {
        Fx(i64::MAX)
    };
    let mut counted = Fx::ZERO;
    for w in domain_work.values() {
        counted = counted
            .checked_add((*w).min(cap))
            .ok_or(MainBlockError::Overflow("work"))?;
    }
    // Optimizer shares: each optimae's work scaled by its domain's cap ratio.
    let mut credited: BTreeMap<PublicKeyBytes, u128> = BTreeMap::new();
    for (domain, optimizer, w) in &optimae_work {
        let raw = domain_work.get(domain).copied().unwrap_or(Fx::ONE);
        let share = (w.0 as u128) * (raw.min(cap).0 as u128) / (raw.0.max(1) as u128);
        *credited.entry(*optimizer).or_default() += share;
    }

    // Coinbase: only a block that meets the threshold mints.
    if counted >= threshold && counted > Fx::ZERO {
        let subsidy = reward::subsidy(c.initial_subsidy, c.halving_interval, h);
        out.coinbase = reward::coinbase(subsidy, f.producer, &credited, &agreeing);
        for p in &out.coinbase {
            let r = s.rewards.entry(p.key).or_insert(doin_types::Amount::ZERO);
            *r = r
                .checked_add(p.amount)
                .map_err(|_| MainBlockError::Overflow("rewards"))?;
            s.minted = s
                .minted
                .checked_add(p.amount)
                .map_err(|_| MainBlockError::Overflow("minted"))?;
        }
    }

    // Expiry, after this block's reveals and verdicts had their chance.
    // A commit is kept one block past its window so a late reveal is told it is late, not
    // that its commit never existed.
    let keep_until = c.reveal_window.saturating_add(1);
    s.commits
        .retain(|_, cm| cm.height.saturating_add(keep_until) > h);
    let verdict_window = c.verdict_window;
    let expired: Vec<OptimaeId> = s
        .pending
        .iter()
        .filter(|(_, p)| p.round_started.saturating_add(verdict_window) <= h)
        .map(|(id, _)| *id)
        .collect();
    for id in expired {
        s.pending.remove(&id);
        events.push(OptimaeEvent::Expired { optimae_id: id });
    }

    s.controller = state.controller.after_block(
        h,
        f.time,
        f.parent_time,
        c.target_block_time_ms,
        c.epoch_length,
        c.min_threshold,
    );
    Ok(Executed {
        state: s,
        body: out,
        events,
        counted_work: counted,
        work_verdicts,
        skipped,
    })
}

/// The genesis header of a main chain (height 0; it is rebuilt from the spec, never imported).
pub fn genesis_header(
    params: &MainChainParams,
    state: &MainState,
    time: Timestamp,
) -> Result<MainHeader, MainBlockError> {
    Ok(MainHeader {
        chain_id: params.chain_id,
        height: 0,
        parent: Hash256([0; 32]),
        time,
        producer: PublicKeyBytes([0; 32]),
        threshold: Fx::ZERO,
        counted_work: Fx::ZERO,
        cumulative_work: 0,
        state_root: state.root().map_err(MainBlockError::Malformed)?,
        body_root: MainBody::default().root()?,
        tx_checkpoint: TxCheckpoint::NONE,
    })
}
