//! The hub's persistent layout on `KvStore`, and group commit.
//!
//! Column families:
//! - `hub_channels`: channel id → [`HubChannel`] (the state machine's snapshot and the hub's
//!   bookkeeping around it)
//! - `hub_routes`: payment hash → [`Route`] of a hash-locked payment through the hub
//! - `hub_streams`: stream id → [`Stream`]
//! - `hub_payments`: sequence number (big-endian) → [`Payment`], the accounting ledger
//! - `hub_payee_payments`: payee ‖ sequence number → nothing (a payee's payments in order)
//! - `hub_idempotency`: idempotency key → the answer given to the first request
//! - `hub_paid_votes`: optimae ‖ evaluator → the payer channel whose tick paid that vote's
//!   verification fee (each vote is paid once)
//! - `hub_invoices`: payment hash → [`HubInvoice`], an invoice payable to the hub itself
//! - `hub_funds`: optimae id → [`Fund`], a verification fund a payer put in at reveal
//! - `hub_meta`: the layout version (`layout`) and how far the watchtower has read the chain
//!   for revealed preimages (`claims-scanned`)
//!
//! Every operation of the hub is one [`WriteBatch`], written with `fsync` before any signature
//! or answer leaves the process. Batches submitted at the same time share one `fsync` (group
//! commit): the writer thread takes everything queued, writes it as one batch and wakes every
//! caller. A caller never returns before its own batch is durable.

use crate::metrics::HubMetrics;
use doin_channels::{Change, Snapshot};
use doin_codec::{decode_exact, encode};
use doin_store::{Cf, Direction, Durability, KvStore, StoreError, WriteBatch};
use doin_telemetry::prometheus::Histogram;
use doin_tx_core::channel::ChannelId;
use doin_types::{Hash256, Height, PublicKeyBytes};
use serde::{Deserialize, Serialize};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const CF_CHANNELS: Cf = "hub_channels";
pub const CF_ROUTES: Cf = "hub_routes";
pub const CF_STREAMS: Cf = "hub_streams";
pub const CF_PAYMENTS: Cf = "hub_payments";
pub const CF_PAYEE_PAYMENTS: Cf = "hub_payee_payments";
pub const CF_IDEMPOTENCY: Cf = "hub_idempotency";
pub const CF_META: Cf = "hub_meta";
pub const CF_PAID_VOTES: Cf = "hub_paid_votes";
pub const CF_INVOICES: Cf = "hub_invoices";
pub const CF_FUNDS: Cf = "hub_funds";

pub const COLUMNS: &[Cf] = &[
    CF_CHANNELS,
    CF_ROUTES,
    CF_STREAMS,
    CF_PAYMENTS,
    CF_PAYEE_PAYMENTS,
    CF_IDEMPOTENCY,
    CF_META,
    CF_PAID_VOTES,
    CF_INVOICES,
    CF_FUNDS,
];

/// The layout this build reads and writes. A store written by another layout is refused at
/// open rather than misread.
/// (3: a pending proposal's context records the streams a split tick pays and the optimae a
/// funding tick funds; verification funds; ledger kinds for funds.)
pub const LAYOUT_VERSION: u32 = 3;
const META_LAYOUT: &[u8] = b"layout";
const META_CLAIMS_SCANNED: &[u8] = b"claims-scanned";

/// Which way a channel faces from the hub.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChannelRole {
    /// A payer's channel: the payer opened it and pays into the hub (the hub is side B).
    Incoming,
    /// The hub's channel to a payee: the hub opened it and pays out (the hub is side A).
    Outgoing,
}

/// One channel of the hub.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HubChannel {
    pub role: ChannelRole,
    pub peer: PublicKeyBytes,
    pub machine: Snapshot,
    /// Outgoing: stream money forwarded to the payee and not yet in a proposal.
    pub owed_msat: u64,
    /// Outgoing: the part of the `Pay` in flight that came from `owed_msat` (back to owed if
    /// the payee refuses it).
    pub in_flight_owed_msat: u64,
    /// Changes the hub will propose once the channel is free (HTLC forwards, fulfilments,
    /// failures), in order.
    pub queued: Vec<Change>,
    /// The channel is on chain (an outgoing one is recorded before its opening transaction
    /// is included).
    pub confirmed: bool,
    /// A close is under way on chain (posted by either side): the hub proposes nothing more.
    pub closing: bool,
    /// Set once the channel is paid out on chain.
    pub closed_at: Option<Height>,
    /// The watchtower's last challenge (the seq it posted), so it does not repeat it.
    pub challenged_seq: Option<u64>,
    /// The watchtower submitted the settlement.
    pub settle_submitted: bool,
    /// Payment hashes whose HTLC the watchtower claimed on chain with the preimage.
    pub claims_submitted: Vec<Hash256>,
    /// An outgoing channel's signed opening transaction, kept until the channel is on chain
    /// so the watch can submit it again (after a crash, or a node that lost its mempool).
    pub opening_tx: Option<Vec<u8>>,
    /// The operator asked to close this payee channel at this height: nothing new goes
    /// towards the payee, and the watch closes it once what the hub owes has been taken.
    pub close_requested_at: Option<Height>,
    /// What the peer's proposal in flight (signed by the hub, not yet confirmed) is for: kept
    /// with it so a restart in between books the payment where it belongs.
    pub pending_context: Option<PendingContext>,
}

impl HubChannel {
    /// A channel the hub just took on, with nothing owed, queued or posted yet.
    pub fn new(
        role: ChannelRole,
        peer: PublicKeyBytes,
        machine: Snapshot,
        confirmed: bool,
    ) -> Self {
        HubChannel {
            role,
            peer,
            machine,
            owed_msat: 0,
            in_flight_owed_msat: 0,
            queued: Vec::new(),
            confirmed,
            closing: false,
            closed_at: None,
            challenged_seq: None,
            settle_submitted: false,
            claims_submitted: Vec::new(),
            opening_tx: None,
            close_requested_at: None,
            pending_context: None,
        }
    }
}

/// An invoice payable to the hub itself, with the preimage the hub takes the payment with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubInvoice {
    pub text: String,
    pub payment_hash: Hash256,
    pub preimage: [u8; 32],
    pub amount_msat: u64,
    pub description: String,
    /// Unix seconds.
    pub expires_at: u64,
    /// The payer channel whose HTLC paid it, once paid.
    pub paid_by: Option<ChannelId>,
}

/// An evaluator's vote on an optimae, named by a tick that pays its verification fee.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct VoteRef {
    pub optimae: Hash256,
    pub evaluator: PublicKeyBytes,
}

impl VoteRef {
    pub fn key(&self) -> Vec<u8> {
        let mut k = self.optimae.0.to_vec();
        k.extend_from_slice(&self.evaluator.0);
        k
    }
}

/// The stream, invoice or vote a peer's proposal names.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingContext {
    pub stream: Option<Hash256>,
    pub invoice: Option<String>,
    pub vote: Option<VoteRef>,
    /// A split tick: the streams one `Pay` pays, and how much each.
    pub split: Vec<StreamShare>,
    /// A funding tick: the optimae whose verification fees it puts in a fund.
    pub fund: Option<Hash256>,
}

/// A verification fund: what a payer put in (at reveal) for the evaluators of one optimae.
/// The hub holds it; once the optimae's decision is final it pays each agreeing evaluator one
/// verification fee out of it and returns the rest to the payer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fund {
    pub optimae: Hash256,
    /// The payer's channel: funding ticks come from it, the rest goes back over it.
    pub payer_channel: ChannelId,
    pub funded_msat: u64,
    /// Paid to evaluators (verification fees, the hub's fee included).
    pub released_msat: u64,
    /// Given back to the payer (proposed on its channel when the fund settled).
    pub returned_msat: u64,
    /// Each evaluator paid and what its fee was (msat, the hub's fee included).
    pub paid: Vec<(PublicKeyBytes, u64)>,
    pub funded_at_ms: u64,
    /// Set when the decision was final and the fund paid out: takes nothing more.
    pub settled: bool,
}

/// One stream's part of a split tick (a payer paying several of its streams with one signed
/// update).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamShare {
    pub stream: Hash256,
    pub amount_msat: u64,
    /// Evaluator pay: the share pays the verification fee of the stream payee's vote on this
    /// optimae (checked like a single tick naming the vote).
    pub vote_optimae: Option<Hash256>,
}

impl StreamShare {
    /// The vote this share pays, if any: the stream payee's on `vote_optimae`.
    pub fn vote(&self, payee: PublicKeyBytes) -> Option<VoteRef> {
        self.vote_optimae.map(|optimae| VoteRef {
            optimae,
            evaluator: payee,
        })
    }
}

/// Where a hash-locked payment through the hub stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RouteState {
    /// Locked on the incoming channel, forwarded (or queued) on the outgoing one.
    Pending,
    /// The payee showed the preimage; the hub claims the incoming HTLC with it.
    Fulfilled { preimage: [u8; 32] },
    /// The payee gave the HTLC up; the hub gives the incoming one up too.
    Failed,
}

/// A hash-locked payment payer → hub → payee.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub payment_hash: Hash256,
    pub incoming: ChannelId,
    pub outgoing: ChannelId,
    pub payee: PublicKeyBytes,
    pub amount_in_msat: u64,
    pub amount_out_msat: u64,
    pub expiry_in: Height,
    pub expiry_out: Height,
    pub state: RouteState,
}

/// A stream of cumulative payments from one payer channel to one payee, set up by invoice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stream {
    /// The invoice's payment hash.
    pub id: Hash256,
    pub payer_channel: ChannelId,
    pub payee_channel: ChannelId,
    pub payee: PublicKeyBytes,
    /// Most the stream may carry in total (the invoice amount).
    pub budget_msat: u64,
    pub received_msat: u64,
    pub forwarded_msat: u64,
    pub fees_msat: u64,
    pub ticks: u64,
    pub opened_at_ms: u64,
    pub closed: bool,
}

/// The first answer to a request with an `Idempotency-Key`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAnswer {
    /// What the request asked (a repeat must ask the same).
    pub fingerprint: String,
    pub status: u16,
    /// The JSON body.
    pub body: Vec<u8>,
}

/// What a ledger entry records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentKind {
    /// A stream tick received from the payer.
    StreamIn,
    /// Stream money delivered to the payee (signed by both on the payee's channel).
    StreamOut,
    /// A hash-locked payment delivered to the payee.
    RoutedOut,
    /// A direct payment to the hub.
    Received,
    /// A payer put money in a verification fund (held by the hub).
    FundIn,
    /// One agreeing evaluator's verification fee out of a fund (now owed to the evaluator).
    FundRelease,
    /// What a settled fund did not pay out, back on the payer's channel.
    FundReturn,
}

impl PaymentKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            PaymentKind::StreamIn => "stream_in",
            PaymentKind::StreamOut => "stream_out",
            PaymentKind::RoutedOut => "routed_out",
            PaymentKind::Received => "received",
            PaymentKind::FundIn => "fund_in",
            PaymentKind::FundRelease => "fund_release",
            PaymentKind::FundReturn => "fund_return",
        }
    }
}

/// One entry of the accounting ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub seq: u64,
    pub at_ms: u64,
    pub kind: PaymentKind,
    pub channel: ChannelId,
    /// Who paid (incoming) or was paid (outgoing).
    pub counterparty: PublicKeyBytes,
    pub amount_msat: u64,
    pub fee_msat: u64,
    pub stream: Option<Hash256>,
    pub payment_hash: Option<Hash256>,
    /// The channel state (`seq`) that carries it.
    pub state_seq: u64,
    /// A verification fund's entries: the optimae it is for.
    pub optimae: Option<Hash256>,
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

fn get<T: serde::de::DeserializeOwned>(
    kv: &dyn KvStore,
    cf: Cf,
    key: &[u8],
    what: &str,
) -> Result<Option<T>, StoreError> {
    match kv.get(cf, key)? {
        None => Ok(None),
        Some(b) => decode_exact(&b).map(Some).map_err(|e| corrupt(what, e)),
    }
}

/// Adds `value` under `key` to `batch`.
pub fn put<T: Serialize>(
    batch: &mut WriteBatch,
    cf: Cf,
    key: &[u8],
    value: &T,
) -> Result<(), StoreError> {
    batch.put(cf, key.to_vec(), encode(value).map_err(|e| corrupt(cf, e))?);
    Ok(())
}

type Job = (WriteBatch, mpsc::Sender<Result<(), StoreError>>);

/// The commit thread's view of the metrics.
struct CommitTimers {
    fsync_seconds: Histogram,
    commit_inputs: Histogram,
}

/// A queued write; [`Durable::wait`] returns once it is on disk.
pub struct Durable {
    done: Option<mpsc::Receiver<Result<(), StoreError>>>,
    queued_at: Instant,
    persist_seconds: Histogram,
}

impl Durable {
    pub fn wait(self) -> Result<(), StoreError> {
        let gone = || StoreError::Backend("the hub's commit thread is gone".into());
        let result = self.done.ok_or_else(gone)?.recv().map_err(|_| gone())?;
        self.persist_seconds
            .observe(self.queued_at.elapsed().as_secs_f64());
        result
    }
}

/// The hub's store: typed reads, and durable writes through the group-commit thread.
pub struct HubStore {
    kv: Arc<dyn KvStore>,
    /// `None` once the store is dropped (so the commit thread sees the queue close).
    jobs: parking_lot::Mutex<Option<mpsc::Sender<Job>>>,
    writer: Option<std::thread::JoinHandle<()>>,
    metrics: HubMetrics,
}

impl Drop for HubStore {
    /// Closes the queue and waits for the commit thread to write what is queued and let go of
    /// the database, so the database is never closed on a detached thread while the process
    /// exits (RocksDB aborts when its last handle is dropped during exit).
    fn drop(&mut self) {
        self.jobs.lock().take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl HubStore {
    /// The store over `kv`, timing its writes on `metrics` (which the hub counts on too).
    pub fn new(kv: Arc<dyn KvStore>, metrics: HubMetrics) -> HubStore {
        let (tx, rx) = mpsc::channel::<Job>();
        let writer = kv.clone();
        let timers = CommitTimers {
            fsync_seconds: metrics.fsync_seconds.clone(),
            commit_inputs: metrics.commit_inputs.clone(),
        };
        let writer = std::thread::Builder::new()
            .name("hub-commit".into())
            .spawn(move || group_commit(writer, rx, timers))
            .map_err(|e| tracing::error!("cannot start the hub's commit thread: {e}"))
            .ok();
        HubStore {
            kv,
            jobs: parking_lot::Mutex::new(Some(tx)),
            writer,
            metrics,
        }
    }

    pub fn metrics(&self) -> &HubMetrics {
        &self.metrics
    }

    /// Queues `batch` for a durable write. Batches are written in the order they are queued,
    /// so once one is durable every batch queued before it is too. Wait on the answer before
    /// anything that depends on the batch leaves the process.
    pub fn enqueue(&self, batch: WriteBatch) -> Durable {
        let (done_tx, done_rx) = mpsc::channel();
        let queued_at = Instant::now();
        let sent = self
            .jobs
            .lock()
            .as_ref()
            .is_some_and(|jobs| jobs.send((batch, done_tx)).is_ok());
        Durable {
            done: sent.then_some(done_rx),
            queued_at,
            persist_seconds: self.metrics.persist_seconds.clone(),
        }
    }

    /// Writes `batch` durably (fsync), sharing the sync with batches queued meanwhile.
    pub fn commit(&self, batch: WriteBatch) -> Result<(), StoreError> {
        self.enqueue(batch).wait()
    }

    /// Checks the store's layout version; an empty store gets this build's.
    pub fn check_layout(&self) -> Result<(), StoreError> {
        match get::<u32>(self.kv.as_ref(), CF_META, META_LAYOUT, "hub layout")? {
            Some(v) if v == LAYOUT_VERSION => Ok(()),
            found => {
                let empty = self.channels()?.is_empty() && self.next_payment_seq()? == 1;
                if found.is_none() && empty {
                    let mut batch = WriteBatch::new();
                    put(&mut batch, CF_META, META_LAYOUT, &LAYOUT_VERSION)?;
                    return self.commit(batch);
                }
                Err(StoreError::Corrupt(format!(
                    "the hub's store has layout {}, this build reads layout {LAYOUT_VERSION}: \
                     close its channels with the build that wrote it, or move the data \
                     directory aside",
                    found.map_or_else(|| "1".to_string(), |v| v.to_string())
                )))
            }
        }
    }

    /// Every invoice payable to the hub.
    pub fn invoices(&self) -> Result<Vec<HubInvoice>, StoreError> {
        let mut out = Vec::new();
        for item in self.kv.iter_from(CF_INVOICES, &[], Direction::Forward)? {
            let (_, v) = item?;
            out.push(decode_exact(&v).map_err(|e| corrupt("hub invoice", e))?);
        }
        Ok(out)
    }

    /// Every verification fund.
    pub fn funds(&self) -> Result<Vec<Fund>, StoreError> {
        let mut out = Vec::new();
        for item in self.kv.iter_from(CF_FUNDS, &[], Direction::Forward)? {
            let (_, v) = item?;
            out.push(decode_exact(&v).map_err(|e| corrupt("fund", e))?);
        }
        Ok(out)
    }

    /// Every vote paid, with the payer channel that paid it.
    pub fn paid_votes(&self) -> Result<Vec<(VoteRef, ChannelId)>, StoreError> {
        let mut out = Vec::new();
        for item in self.kv.iter_from(CF_PAID_VOTES, &[], Direction::Forward)? {
            let (k, v) = item?;
            let (o, e) = k
                .split_at_checked(32)
                .ok_or_else(|| corrupt("paid vote key", "short"))?;
            let vote = VoteRef {
                optimae: Hash256(
                    o.try_into()
                        .map_err(|_| corrupt("paid vote key", "length"))?,
                ),
                evaluator: PublicKeyBytes(
                    e.try_into()
                        .map_err(|_| corrupt("paid vote key", "length"))?,
                ),
            };
            out.push((vote, decode_exact(&v).map_err(|e| corrupt("paid vote", e))?));
        }
        Ok(out)
    }

    /// The last transfer-chain height the watchtower read for revealed preimages.
    pub fn claims_scanned(&self) -> Result<Option<Height>, StoreError> {
        get(
            self.kv.as_ref(),
            CF_META,
            META_CLAIMS_SCANNED,
            "claims scanned",
        )
    }

    pub fn put_claims_scanned(batch: &mut WriteBatch, height: Height) -> Result<(), StoreError> {
        put(batch, CF_META, META_CLAIMS_SCANNED, &height)
    }

    pub fn channel(&self, id: &ChannelId) -> Result<Option<HubChannel>, StoreError> {
        get(self.kv.as_ref(), CF_CHANNELS, &id.0, "hub channel")
    }

    /// Every channel, by id.
    pub fn channels(&self) -> Result<Vec<(ChannelId, HubChannel)>, StoreError> {
        let mut out = Vec::new();
        for item in self.kv.iter_from(CF_CHANNELS, &[], Direction::Forward)? {
            let (k, v) = item?;
            let id: [u8; 32] = k
                .as_slice()
                .try_into()
                .map_err(|_| corrupt("hub channel key", "not 32 bytes"))?;
            out.push((
                Hash256(id),
                decode_exact(&v).map_err(|e| corrupt("hub channel", e))?,
            ));
        }
        Ok(out)
    }

    pub fn route(&self, hash: &Hash256) -> Result<Option<Route>, StoreError> {
        get(self.kv.as_ref(), CF_ROUTES, &hash.0, "route")
    }

    pub fn routes(&self) -> Result<Vec<Route>, StoreError> {
        let mut out = Vec::new();
        for item in self.kv.iter_from(CF_ROUTES, &[], Direction::Forward)? {
            let (_, v) = item?;
            out.push(decode_exact(&v).map_err(|e| corrupt("route", e))?);
        }
        Ok(out)
    }

    pub fn stream(&self, id: &Hash256) -> Result<Option<Stream>, StoreError> {
        get(self.kv.as_ref(), CF_STREAMS, &id.0, "stream")
    }

    pub fn streams(&self) -> Result<Vec<Stream>, StoreError> {
        let mut out = Vec::new();
        for item in self.kv.iter_from(CF_STREAMS, &[], Direction::Forward)? {
            let (_, v) = item?;
            out.push(decode_exact(&v).map_err(|e| corrupt("stream", e))?);
        }
        Ok(out)
    }

    /// One past the ledger's last sequence number. Taken from the ledger itself (not a
    /// counter) so batches merged by group commit in any order cannot make it go back.
    pub fn next_payment_seq(&self) -> Result<u64, StoreError> {
        let mut it = self
            .kv
            .iter_from(CF_PAYMENTS, &u64::MAX.to_be_bytes(), Direction::Reverse)?;
        match it.next() {
            None => Ok(1),
            Some(item) => {
                let (k, _) = item?;
                let seq: [u8; 8] = k
                    .as_slice()
                    .try_into()
                    .map_err(|_| corrupt("payment key", "not 8 bytes"))?;
                Ok(u64::from_be_bytes(seq).saturating_add(1))
            }
        }
    }

    /// Adds ledger entry `p` (its `seq` taken from the caller's counter) to `batch`.
    pub fn put_payment(
        batch: &mut WriteBatch,
        p: &Payment,
        payee: Option<&PublicKeyBytes>,
    ) -> Result<(), StoreError> {
        put(batch, CF_PAYMENTS, &p.seq.to_be_bytes(), p)?;
        if let Some(payee) = payee {
            let mut k = payee.0.to_vec();
            k.extend_from_slice(&p.seq.to_be_bytes());
            batch.put(CF_PAYEE_PAYMENTS, k, Vec::new());
        }
        Ok(())
    }

    /// Ledger entries from `after` (exclusive), at most `limit`.
    pub fn payments(&self, after: u64, limit: usize) -> Result<Vec<Payment>, StoreError> {
        let start = after.saturating_add(1).to_be_bytes();
        let mut out = Vec::new();
        for item in self.kv.iter_from(CF_PAYMENTS, &start, Direction::Forward)? {
            if out.len() >= limit {
                break;
            }
            let (_, v) = item?;
            out.push(decode_exact(&v).map_err(|e| corrupt("payment", e))?);
        }
        Ok(out)
    }

    /// `payee`'s ledger entries with a sequence number above `after`, at most `limit`.
    pub fn payee_payments(
        &self,
        payee: &PublicKeyBytes,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Payment>, StoreError> {
        let mut start = payee.0.to_vec();
        start.extend_from_slice(&after.saturating_add(1).to_be_bytes());
        let mut out = Vec::new();
        for item in self
            .kv
            .iter_from(CF_PAYEE_PAYMENTS, &start, Direction::Forward)?
        {
            if out.len() >= limit {
                break;
            }
            let (k, _) = item?;
            if !k.starts_with(&payee.0) || k.len() != 40 {
                break;
            }
            let mut seq = [0u8; 8];
            seq.copy_from_slice(&k[32..]);
            if let Some(p) = get(self.kv.as_ref(), CF_PAYMENTS, &seq, "payment")? {
                out.push(p);
            }
        }
        Ok(out)
    }

    /// The answer kept under an `Idempotency-Key`.
    pub fn answer(&self, key: &str) -> Result<Option<StoredAnswer>, StoreError> {
        get(
            self.kv.as_ref(),
            CF_IDEMPOTENCY,
            key.as_bytes(),
            "idempotent answer",
        )
    }

    /// Keeps the answer given under an `Idempotency-Key` (durably).
    /// Adds `answer` under the idempotency `key` to `batch` (the batch of the operation it
    /// answers, so the one is never on disk without the other).
    pub fn put_answer(
        batch: &mut WriteBatch,
        key: &str,
        answer: &StoredAnswer,
    ) -> Result<(), StoreError> {
        put(batch, CF_IDEMPOTENCY, key.as_bytes(), answer)
    }
}

/// How long the writer waits for more batches before a sync when the last sync was shared
/// (others are writing too), and how many it takes at most in one sync.
const COMMIT_DELAY: Duration = Duration::from_micros(200);
const COMMIT_SIBLINGS: usize = 4;
const COMMIT_MAX_INPUTS: usize = 64;

/// The commit thread: takes every queued batch, writes them as one synced batch, answers all.
///
/// A sync costs the machine the same whether it carries one input or fifty. When the last
/// sync carried several, others are writing concurrently, so the writer waits a little for
/// more before it syncs (commit delay, as PostgreSQL's `commit_delay`/`commit_siblings`):
/// fewer syncs per input for a little latency. A lone writer never waits.
fn group_commit(kv: Arc<dyn KvStore>, jobs: mpsc::Receiver<Job>, timers: CommitTimers) {
    let mut last_round = 1usize;
    while let Ok(first) = jobs.recv() {
        let mut waiting = vec![first.1];
        let mut batch = first.0;
        if last_round >= COMMIT_SIBLINGS {
            let until = Instant::now() + COMMIT_DELAY;
            while waiting.len() < COMMIT_MAX_INPUTS {
                let left = until.saturating_duration_since(Instant::now());
                match jobs.recv_timeout(left) {
                    Ok((more, done)) => {
                        batch.extend(more);
                        waiting.push(done);
                    }
                    Err(_) => break,
                }
            }
        }
        while let Ok((more, done)) = jobs.try_recv() {
            batch.extend(more);
            waiting.push(done);
        }
        last_round = waiting.len();
        let started = Instant::now();
        let result = kv.write(batch, Durability::Sync).map_err(|e| e.to_string());
        timers
            .fsync_seconds
            .observe(started.elapsed().as_secs_f64());
        timers.commit_inputs.observe(waiting.len() as f64);
        for done in waiting {
            // A caller that gave up waiting is no reason to stop.
            let _ = done.send(result.clone().map_err(StoreError::Backend));
        }
    }
}
