//! The thin async shell around [`crate::machine::Round`]: it runs rounds on a timer (or when a
//! chain's gossip says it is behind), carries out each effect through the chain's
//! [`SyncIo`] adapter — requests to peers, checks and imports off the async threads, penalties
//! — and publishes the progress. It decides nothing itself.
//!
//! It also holds the one loop that answers peers' sync requests, for both chains.

use crate::machine::{Round, SyncReport};
use crate::spec::{Answer, Checked, Effect, Event, Imported, SyncSpec};
use doin_net::tasks::{next_or_shutdown, tick_or_shutdown};
use doin_net::{InboundRequest, Misbehaviour, NetHandle, PeerId};
use parking_lot::RwLock;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, Notify};

/// How often progress is logged while syncing.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// Where a chain's sync stands, shared with the gateway.
#[derive(Clone, Default)]
pub struct SyncState(Arc<RwLock<SyncReport>>);

impl SyncState {
    pub fn report(&self) -> SyncReport {
        self.0.read().clone()
    }

    pub fn is_syncing(&self) -> bool {
        self.0.read().syncing
    }

    fn set(&self, report: &SyncReport) {
        *self.0.write() = report.clone();
    }
}

/// Runs a chain's header check off the async threads (checking signatures is CPU work); a
/// check that could not run blames no one.
pub async fn check_blocking<E>(
    check: impl FnOnce() -> Result<usize, (usize, E)> + Send + 'static,
    blame: impl FnOnce(&E) -> bool,
) -> Checked
where
    E: std::fmt::Display + Send + 'static,
{
    match tokio::task::spawn_blocking(check).await {
        Ok(checked) => Checked::from_check(checked, blame),
        Err(e) => {
            tracing::error!(error = %e, "header check task failed");
            Checked::Invalid {
                index: 0,
                blame: false,
                reason: e.to_string(),
            }
        }
    }
}

type Status<I> = <<I as SyncIo>::Spec as SyncSpec>::Status;
type Header<I> = <<I as SyncIo>::Spec as SyncSpec>::Header;
type Block<I> = <<I as SyncIo>::Spec as SyncSpec>::Block;
type Anchor<I> = <<I as SyncIo>::Spec as SyncSpec>::Anchor;
type Tip<I> = <<I as SyncIo>::Spec as SyncSpec>::Tip;

/// What the engine needs a chain to do: ask its peers, read its own headers, check headers
/// and import blocks (off the async threads: signatures and disk), punish peers. Each chain
/// implements it over its service and its wire messages.
#[async_trait::async_trait]
pub trait SyncIo: Send + Sync {
    type Spec: SyncSpec<Peer = PeerId> + Send;

    /// The chain's name in log lines ("transfer chain").
    fn name(&self) -> &'static str;
    fn spec(&self) -> Self::Spec;
    fn tip(&self) -> Tip<Self>;
    /// The network the chain's peers are reached on.
    fn net(&self) -> &NetHandle;
    /// The peers a round may ask: every connected one.
    fn peers(&self) -> Vec<PeerId> {
        self.net().connected_peers()
    }
    async fn status(&self, peer: PeerId) -> Answer<Status<Self>>;
    async fn headers(&self, peer: PeerId, from: u64, max: u32) -> Answer<Vec<Header<Self>>>;
    async fn blocks(&self, peer: PeerId, from: u64, max: u32) -> Answer<Vec<Block<Self>>>;
    /// This node's anchors at heights `from..=to` (fewer if it lacks some).
    async fn local(&self, from: u64, to: u64) -> Vec<Anchor<Self>>;
    async fn check(&self, anchor: Anchor<Self>, batch: Vec<Header<Self>>) -> Checked;
    async fn import(&self, block: Block<Self>) -> Imported;
    /// Scores a peer down for an invalid answer.
    async fn penalize(&self, peer: PeerId) {
        self.net()
            .penalize(peer, Misbehaviour::InvalidResponse)
            .await;
    }
}

/// How soon a round follows one that imported blocks and then paused. Such a pause most
/// often waits on the node's other chain (a transfer block anchors a main block this node
/// lacks, a main block checkpoints a transfer block it lacks), which its own sync is bringing
/// meanwhile: a node far behind on both chains catches up in small steps of each, and a full
/// interval between the steps would make that slow.
const RETRY_AFTER_PROGRESS: Duration = Duration::from_millis(250);

/// Runs sync rounds every `interval` (or at once when `wake` is notified) until shutdown; a
/// round that made progress before it paused is followed sooner.
pub async fn sync_loop<I: SyncIo>(
    io: Arc<I>,
    state: SyncState,
    interval: Duration,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), String> {
    let mut next_in = interval;
    while tick_or_shutdown(next_in, &wake, &mut shutdown).await {
        let end = run_round(io.as_ref(), &state, &shutdown).await;
        next_in = if end.paused && end.imported > 0 {
            RETRY_AFTER_PROGRESS.min(interval)
        } else {
            interval
        };
    }
    Ok(())
}

/// How a round ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoundEnd {
    /// Blocks it imported.
    pub imported: usize,
    /// An import paused it (the block could not be imported now, through no peer's fault).
    pub paused: bool,
}

/// One round: carries out the machine's effects until it is done (or shutdown starts).
pub async fn run_round<I: SyncIo>(
    io: &I,
    state: &SyncState,
    shutdown: &watch::Receiver<bool>,
) -> RoundEnd {
    let spec = io.spec();
    let from = spec.tip_height(&io.tip());
    let mut round = Round::new(io.spec(), io.tip(), state.report());
    let mut queue: VecDeque<_> = round.start(io.peers()).into();
    let started = Instant::now();
    let mut last_log = Instant::now();
    let mut announced = false;
    // Why the last import stopped the round, when it did (told with the round's end).
    let mut paused: Option<String> = None;
    let mut imported = 0usize;
    while let Some(effect) = queue.pop_front() {
        if *shutdown.borrow() {
            break;
        }
        let event = match effect {
            Effect::Done => break,
            Effect::Penalize(peer, why) => {
                tracing::warn!(%peer, chain = io.name(), "peer penalised: {why}");
                io.penalize(peer).await;
                continue;
            }
            Effect::AskStatus(peers) => {
                let answers = futures::future::join_all(
                    peers
                        .into_iter()
                        .map(|p| async move { (p, io.status(p).await) }),
                )
                .await;
                Event::Statuses(answers)
            }
            Effect::AskHeaders { peer, from, max } => {
                Event::Headers(io.headers(peer, from, max).await)
            }
            Effect::ReadLocal { from, to } => Event::Local(io.local(from, to).await),
            Effect::Check { anchor, batch } => Event::Checked(io.check(anchor, batch).await),
            Effect::Fetch(fetches) => {
                let answers = futures::future::join_all(
                    fetches
                        .into_iter()
                        .map(|f| async move { (f.range, io.blocks(f.peer, f.from, f.max).await) }),
                )
                .await;
                Event::Bodies(answers)
            }
            Effect::Import(blocks) => {
                let mut outcomes = Vec::with_capacity(blocks.len());
                for block in blocks {
                    let height = spec.block_height(&block);
                    let outcome = io.import(block).await;
                    match &outcome {
                        Imported::Paused(why) => paused = Some(format!("block {height}: {why}")),
                        Imported::Imported => imported += 1,
                        Imported::Known | Imported::Invalid(_) => {}
                    }
                    let go_on = matches!(outcome, Imported::Imported | Imported::Known);
                    outcomes.push((height, outcome));
                    if !go_on {
                        break;
                    }
                }
                Event::Imported {
                    outcomes,
                    tip: io.tip(),
                }
            }
        };
        queue.extend(round.handle(event));
        state.set(round.progress());
        if let Some((peer, target)) = round.target().filter(|_| !round.is_over()) {
            let r = round.progress();
            if !announced && target > r.local_height {
                announced = true;
                tracing::info!(%peer, from, target, chain = io.name(), "behind a peer; syncing headers first");
            }
            if announced && last_log.elapsed() >= LOG_EVERY {
                last_log = Instant::now();
                tracing::info!(
                    height = r.local_height,
                    headers = r.verified_header_height,
                    target,
                    progress = %format!("{}%", crate::machine::percent(r.local_height, target)),
                    chain = io.name(),
                    "syncing"
                );
            }
        }
    }
    state.set(round.progress());
    let r = round.progress();
    let paused_why = paused.as_deref().unwrap_or("no");
    if announced {
        tracing::info!(
            height = r.local_height,
            target = r.best_peer_height,
            seconds = started.elapsed().as_secs(),
            chain = io.name(),
            paused = paused_why,
            "sync round ended"
        );
    } else {
        // A quiet round (no peer ahead, or no peer answered): only worth a line when looking
        // closer, but then it tells a node that waits from one whose rounds stopped.
        tracing::debug!(
            height = r.local_height,
            best_peer = ?r.best_peer_height,
            peers = r.peers_on_chain,
            seconds = started.elapsed().as_secs(),
            chain = io.name(),
            paused = paused_why,
            "quiet sync round ended"
        );
    }
    RoundEnd {
        imported,
        paused: paused.is_some(),
    }
}

/// Answers peers' sync requests until shutdown: each is decoded by `decode` (a request that
/// does not decode costs its sender score) and answered by `answer` off the async threads.
pub async fn serve<R: Send + 'static>(
    net: NetHandle,
    mut requests: mpsc::Receiver<InboundRequest>,
    mut shutdown: watch::Receiver<bool>,
    decode: fn(&[u8]) -> Result<R, String>,
    answer: Arc<dyn Fn(R) -> Result<Vec<u8>, String> + Send + Sync>,
) -> Result<(), String> {
    while let Some(req) = next_or_shutdown(&mut requests, &mut shutdown).await {
        let parsed = match decode(&req.data) {
            Ok(r) => r,
            Err(e) => {
                net.penalize(req.peer, Misbehaviour::BadRequest).await;
                let _ = req.reply.send(Err(format!("malformed request: {e}")));
                continue;
            }
        };
        let answer = answer.clone();
        let answered = tokio::task::spawn_blocking(move || answer(parsed))
            .await
            .map_err(|e| format!("sync server task failed: {e}"))?;
        let _ = req.reply.send(answered);
    }
    Ok(())
}

/// Consecutive items from `from` while `read` has them, at most `max` and stopping once
/// `size` of what was taken reaches `byte_target`: a range answer's body.
pub fn consecutive<T, E>(
    from: u64,
    tip: u64,
    max: usize,
    byte_target: usize,
    size: impl Fn(&T) -> usize,
    read: impl Fn(u64) -> Result<Option<T>, E>,
) -> Result<Vec<T>, E> {
    let mut out = Vec::new();
    let mut bytes = 0usize;
    let mut h = from.max(1);
    while h <= tip && out.len() < max {
        let Some(item) = read(h)? else {
            break;
        };
        bytes = bytes.saturating_add(size(&item));
        out.push(item);
        if bytes >= byte_target {
            break;
        }
        h += 1;
    }
    Ok(out)
}
