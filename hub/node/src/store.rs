//! The hub's persistent layout on `KvStore`, and group commit.
//!
//! Column families (one typed [`Table`] each; the records are `doin-hub-core`'s):
//! - `hub_channels`: channel id → [`HubChannel`] (the state machine's snapshot and the hub's
//!   bookkeeping around it)
//! - `hub_routes`: payment hash → [`Route`] of a hash-locked payment through the hub
//! - `hub_streams`: stream id → [`Stream`]
//! - `hub_payments`: sequence number (big-endian) → [`Payment`], the accounting ledger
//! - `hub_payee_payments`: payee ‖ sequence number → nothing (a payee's payments in order)
//! - `hub_payer_payments`: payer ‖ sequence number → nothing (a payer's ledger entries in
//!   order: what it paid in and what came back; built from the ledger once if missing)
//! - `hub_idempotency`: idempotency key → the answer given to the first request
//! - `hub_idempotency_made`: idempotency key → when its answer was written (unix ms), so that
//!   answers expire (`hub.idempotency_ttl_secs`)
//! - `hub_paid_votes`: optimae ‖ evaluator → the payer channel whose tick paid that vote's
//!   verification fee (each vote is paid once)
//! - `hub_invoices`: payment hash → [`HubInvoice`], an invoice payable to the hub itself
//! - `hub_funds`: optimae id → [`Fund`], a verification fund a payer put in at reveal
//! - `hub_api_keys`: key id → [`ApiKey`] (the SHA-256 of its secret, its scopes)
//! - `hub_channel_requests`: payment transaction id → [`ChannelRequest`], a channel a payee
//!   bought
//! - `hub_events`: sequence number (big-endian) → [`HubEvent`], channel and fund events for
//!   webhooks (written in the batch of the change they report)
//! - `hub_webhooks`, `hub_webhook_deliveries`, `hub_webhook_due`, `hub_webhook_meta`: webhook
//!   subscriptions and their persisted outbox ([`crate::webhook_outbox`])
//! - `hub_meta`: the layout version (`layout`) and how far the watchtower has read the chain
//!   for revealed preimages (`claims-scanned`)
//!
//! Every input of the hub is one [`WriteBatch`] ([`HubStore::batch`] of the core's
//! [`Writes`]), written with `fsync` before any signature, transaction or answer that depends
//! on it leaves the process. Batches submitted at the same time share one `fsync` (group
//! commit): the writer thread takes everything queued, writes it as one batch and wakes every
//! caller. A caller never returns before its own batch is durable.

use crate::api_keys::ApiKey;
use crate::metrics::HubMetrics;
use doin_hub_core::Writes;
use doin_store::{Cf, Direction, Durability, KvStore, Raw, StoreError, Table, WriteBatch};
use doin_telemetry::prometheus::Histogram;
use doin_tx_core::channel::ChannelId;
use doin_types::{Hash256, Height, PublicKeyBytes};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use doin_hub_core::records::{
    ChannelRequest, ChannelRole, Fund, HubChannel, HubEvent, HubEventKind, HubInvoice, Payment,
    PaymentKind, PendingContext, RequestState, Route, RouteState, StoredAnswer, Stream,
    StreamShare, VoteRef,
};

const CHANNELS: Table<ChannelId, HubChannel> = Table::new("hub_channels", "hub channel");
const ROUTES: Table<Hash256, Route> = Table::new("hub_routes", "route");
const STREAMS: Table<Hash256, Stream> = Table::new("hub_streams", "stream");
const PAYMENTS: Table<u64, Payment> = Table::new("hub_payments", "payment");
const PAYEE_PAYMENTS: Table<(PublicKeyBytes, u64), Vec<u8>, Raw> =
    Table::new("hub_payee_payments", "payee payment");
const IDEMPOTENCY: Table<String, StoredAnswer> = Table::new("hub_idempotency", "idempotent answer");
const ANSWER_MADE: Table<String, u64> = Table::new("hub_idempotency_made", "answer time");
const LAYOUT: Table<Vec<u8>, u32> = Table::new("hub_meta", "hub layout");
const CLAIMS_SCANNED: Table<Vec<u8>, Height> = Table::new("hub_meta", "claims scanned");
const PAID_VOTES: Table<(Hash256, PublicKeyBytes), ChannelId> =
    Table::new("hub_paid_votes", "paid vote");
const INVOICES: Table<Hash256, HubInvoice> = Table::new("hub_invoices", "hub invoice");
const FUNDS: Table<Hash256, Fund> = Table::new("hub_funds", "fund");
const API_KEYS: Table<String, ApiKey> = Table::new("hub_api_keys", "API key");
const PAYER_PAYMENTS: Table<(PublicKeyBytes, u64), Vec<u8>, Raw> =
    Table::new("hub_payer_payments", "payer payment");
const EVENTS: Table<u64, HubEvent> = Table::new("hub_events", "hub event");
const REQUESTS: Table<Hash256, ChannelRequest> =
    Table::new("hub_channel_requests", "channel request");

pub const COLUMNS: &[Cf] = &[
    CHANNELS.cf(),
    ROUTES.cf(),
    STREAMS.cf(),
    PAYMENTS.cf(),
    PAYEE_PAYMENTS.cf(),
    IDEMPOTENCY.cf(),
    ANSWER_MADE.cf(),
    LAYOUT.cf(),
    PAID_VOTES.cf(),
    INVOICES.cf(),
    FUNDS.cf(),
    REQUESTS.cf(),
    API_KEYS.cf(),
    EVENTS.cf(),
    PAYER_PAYMENTS.cf(),
    crate::webhook_records::WEBHOOKS.cf(),
    crate::webhook_records::DELIVERIES.cf(),
    crate::webhook_records::DUE.cf(),
    crate::webhook_records::CURSORS.cf(),
];

/// The layout this build reads and writes. A store written by another layout is refused at
/// open rather than misread.
/// (3: a pending proposal's context records the streams a split tick pays and the optimae a
/// funding tick funds; verification funds; ledger kinds for funds.)
pub const LAYOUT_VERSION: u32 = 3;
const META_LAYOUT: &[u8] = b"layout";
const META_CLAIMS_SCANNED: &[u8] = b"claims-scanned";
/// Set once `hub_payer_payments` holds every payer entry of the ledger.
const META_PAYER_INDEX: &[u8] = b"payer-index";
const PAYER_INDEX_BUILT: Table<Vec<u8>, u32> = Table::new("hub_meta", "payer index built");

type Job = (WriteBatch, mpsc::Sender<Result<(), StoreError>>);

/// The commit thread's view of the metrics.
struct CommitTimers {
    fsync_seconds: Histogram,
    commit_inputs: Histogram,
}

/// A queued write; [`Durable::wait`] returns once it is on disk.
#[must_use = "nothing that depends on the write may leave before `wait` returns"]
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

/// Everything a hub's store holds to start the hub from.
pub use doin_hub_core::Loaded;

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

    /// The batch that makes an input's `writes` durable; `now_ms` dates the answers it keeps.
    pub fn batch(writes: &Writes, now_ms: u64) -> Result<WriteBatch, StoreError> {
        let mut b = WriteBatch::new();
        for id in &writes.deleted_channels {
            CHANNELS.delete(&mut b, id);
        }
        for key in &writes.deleted_answers {
            IDEMPOTENCY.delete(&mut b, key);
            ANSWER_MADE.delete(&mut b, key);
        }
        for (id, c) in &writes.channels {
            CHANNELS.put(&mut b, id, c)?;
        }
        for (id, s) in &writes.streams {
            STREAMS.put(&mut b, id, s)?;
        }
        for (h, r) in &writes.routes {
            ROUTES.put(&mut b, h, r)?;
        }
        for (p, payee) in &writes.payments {
            PAYMENTS.put(&mut b, &p.seq, p)?;
            if let Some(payee) = payee {
                PAYEE_PAYMENTS.put(&mut b, &(*payee, p.seq), &Vec::new())?;
            }
            if p.kind.is_payers() {
                PAYER_PAYMENTS.put(&mut b, &(p.counterparty, p.seq), &Vec::new())?;
            }
        }
        for (hash, invoice) in &writes.invoices {
            INVOICES.put(&mut b, hash, invoice)?;
        }
        for (optimae, fund) in &writes.funds {
            FUNDS.put(&mut b, optimae, fund)?;
        }
        for id in &writes.deleted_requests {
            REQUESTS.delete(&mut b, id);
        }
        for (id, request) in &writes.requests {
            REQUESTS.put(&mut b, id, request)?;
        }
        for (vote, channel) in &writes.paid_votes {
            PAID_VOTES.put(&mut b, &(vote.optimae, vote.evaluator), channel)?;
        }
        for (key, answer) in &writes.answers {
            IDEMPOTENCY.put(&mut b, key, answer)?;
            ANSWER_MADE.put(&mut b, key, &now_ms)?;
        }
        for e in &writes.events {
            EVENTS.put(&mut b, &e.seq, e)?;
        }
        if let Some(h) = writes.claims_scanned {
            CLAIMS_SCANNED.put(&mut b, &META_CLAIMS_SCANNED.to_vec(), &h)?;
        }
        Ok(b)
    }

    /// Checks the store's layout version; an empty store gets this build's.
    pub fn check_layout(&self) -> Result<(), StoreError> {
        let kv = self.kv.as_ref();
        match LAYOUT.get(kv, &META_LAYOUT.to_vec())? {
            Some(v) if v == LAYOUT_VERSION => Ok(()),
            found => {
                let empty = CHANNELS
                    .iter(kv, None, Direction::Forward)?
                    .next()
                    .is_none()
                    && self.next_payment_seq()? == 1;
                if found.is_none() && empty {
                    let mut batch = WriteBatch::new();
                    LAYOUT.put(&mut batch, &META_LAYOUT.to_vec(), &LAYOUT_VERSION)?;
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

    /// Everything the hub starts from; `claims_scanned` is `None` in a store that has never
    /// read the chain for preimages.
    pub fn load(&self) -> Result<(Loaded, Option<Height>), StoreError> {
        let kv = self.kv.as_ref();
        let paid_votes = PAID_VOTES
            .entries(kv)?
            .into_iter()
            .map(|((optimae, evaluator), channel)| (VoteRef { optimae, evaluator }, channel))
            .collect();
        let loaded = Loaded {
            channels: CHANNELS.entries(kv)?,
            streams: STREAMS.values(kv)?,
            routes: ROUTES.values(kv)?,
            next_seq: self.next_payment_seq()?,
            next_event_seq: self.next_event_seq()?,
            invoices: INVOICES.values(kv)?,
            paid_votes,
            funds: FUNDS.values(kv)?,
            requests: REQUESTS.values(kv)?,
            claims_scanned: 0,
        };
        let scanned = CLAIMS_SCANNED.get(kv, &META_CLAIMS_SCANNED.to_vec())?;
        Ok((loaded, scanned))
    }

    pub fn channel(&self, id: &ChannelId) -> Result<Option<HubChannel>, StoreError> {
        CHANNELS.get(self.kv.as_ref(), id)
    }

    pub fn route(&self, hash: &Hash256) -> Result<Option<Route>, StoreError> {
        ROUTES.get(self.kv.as_ref(), hash)
    }

    pub fn stream(&self, id: &Hash256) -> Result<Option<Stream>, StoreError> {
        STREAMS.get(self.kv.as_ref(), id)
    }

    /// One past the ledger's last sequence number. Taken from the ledger itself (not a
    /// counter) so batches merged by group commit in any order cannot make it go back.
    pub fn next_payment_seq(&self) -> Result<u64, StoreError> {
        let last = PAYMENTS
            .iter(self.kv.as_ref(), Some(&u64::MAX), Direction::Reverse)?
            .next()
            .transpose()?;
        Ok(match last {
            None => 1,
            Some((seq, _)) => seq.saturating_add(1),
        })
    }

    /// One past the last event's sequence number.
    pub fn next_event_seq(&self) -> Result<u64, StoreError> {
        let last = EVENTS
            .iter(self.kv.as_ref(), Some(&u64::MAX), Direction::Reverse)?
            .next()
            .transpose()?;
        Ok(last.map_or(1, |(seq, _)| seq.saturating_add(1)))
    }

    /// Events from `after` (exclusive), at most `limit`.
    pub fn events(&self, after: u64, limit: usize) -> Result<Vec<HubEvent>, StoreError> {
        EVENTS
            .iter(
                self.kv.as_ref(),
                Some(&after.saturating_add(1)),
                Direction::Forward,
            )?
            .take(limit)
            .map(|r| r.map(|(_, e)| e))
            .collect()
    }

    /// The key-value store under the hub (the webhooks' outbox shares it).
    pub(crate) fn kv(&self) -> &Arc<dyn KvStore> {
        &self.kv
    }

    /// Ledger entries from `after` (exclusive), at most `limit`.
    pub fn payments(&self, after: u64, limit: usize) -> Result<Vec<Payment>, StoreError> {
        PAYMENTS
            .iter(
                self.kv.as_ref(),
                Some(&after.saturating_add(1)),
                Direction::Forward,
            )?
            .take(limit)
            .map(|r| r.map(|(_, p)| p))
            .collect()
    }

    /// `payee`'s ledger entries with a sequence number above `after`, at most `limit`.
    pub fn payee_payments(
        &self,
        payee: &PublicKeyBytes,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Payment>, StoreError> {
        self.indexed_payments(PAYEE_PAYMENTS, payee, after, limit)
    }

    /// `payer`'s ledger entries (what it paid in, what came back) with a sequence number above
    /// `after`, at most `limit`.
    pub fn payer_payments(
        &self,
        payer: &PublicKeyBytes,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Payment>, StoreError> {
        self.indexed_payments(PAYER_PAYMENTS, payer, after, limit)
    }

    fn indexed_payments(
        &self,
        index: Table<(PublicKeyBytes, u64), Vec<u8>, Raw>,
        who: &PublicKeyBytes,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Payment>, StoreError> {
        let kv = self.kv.as_ref();
        let start = (*who, after.saturating_add(1));
        let mut out = Vec::new();
        for item in index.iter(kv, Some(&start), Direction::Forward)? {
            if out.len() >= limit {
                break;
            }
            let ((key, seq), _) = match item {
                Ok(entry) => entry,
                // Another layout's key past this party's: its entries are over.
                Err(StoreError::Corrupt(_)) => break,
                Err(e) => return Err(e),
            };
            if key != *who {
                break;
            }
            if let Some(p) = PAYMENTS.get(kv, &seq)? {
                out.push(p);
            }
        }
        Ok(out)
    }

    /// Builds `hub_payer_payments` from the ledger, once: a store written before the index
    /// existed gets its payers' history too. Returns how many entries it indexed.
    pub fn index_payers(&self) -> Result<usize, StoreError> {
        let kv = self.kv.as_ref();
        let flag = META_PAYER_INDEX.to_vec();
        if PAYER_INDEX_BUILT.get(kv, &flag)?.is_some() {
            return Ok(0);
        }
        let mut n = 0;
        let mut b = WriteBatch::new();
        for item in PAYMENTS.iter(kv, None, Direction::Forward)? {
            let (seq, p) = item?;
            if p.kind.is_payers() {
                PAYER_PAYMENTS.put(&mut b, &(p.counterparty, seq), &Vec::new())?;
                n += 1;
                if n % 10_000 == 0 {
                    self.commit(std::mem::take(&mut b))?;
                }
            }
        }
        PAYER_INDEX_BUILT.put(&mut b, &flag, &1)?;
        self.commit(b)?;
        Ok(n)
    }

    /// The API key `id`, if the operator made it and has not revoked it.
    pub fn api_key(&self, id: &str) -> Result<Option<ApiKey>, StoreError> {
        API_KEYS.get(self.kv.as_ref(), &id.to_string())
    }

    /// Every API key, by id.
    pub fn api_keys(&self) -> Result<Vec<(String, ApiKey)>, StoreError> {
        API_KEYS.entries(self.kv.as_ref())
    }

    /// Keeps (durably) an API key under `id`.
    pub fn put_api_key(&self, id: &str, key: &ApiKey) -> Result<(), StoreError> {
        let mut b = WriteBatch::new();
        API_KEYS.put(&mut b, &id.to_string(), key)?;
        self.commit(b)
    }

    /// Revokes (durably) the API key `id`; whether there was one.
    pub fn delete_api_key(&self, id: &str) -> Result<bool, StoreError> {
        if self.api_key(id)?.is_none() {
            return Ok(false);
        }
        let mut b = WriteBatch::new();
        API_KEYS.delete(&mut b, &id.to_string());
        self.commit(b)?;
        Ok(true)
    }

    /// The answer kept under an `Idempotency-Key`, unless it was written before `made_after_ms`
    /// (expired: the key is free again).
    pub fn answer(
        &self,
        key: &str,
        made_after_ms: u64,
    ) -> Result<Option<StoredAnswer>, StoreError> {
        let kv = self.kv.as_ref();
        let key = key.to_string();
        match ANSWER_MADE.get(kv, &key)? {
            Some(made) if made < made_after_ms => Ok(None),
            _ => IDEMPOTENCY.get(kv, &key),
        }
    }

    /// Deletes the answers written before `made_after_ms`; an answer without a time (kept by
    /// an older build) is dated `now_ms`, so it expires one lifetime from now. Returns how
    /// many were deleted.
    pub fn expire_answers(&self, made_after_ms: u64, now_ms: u64) -> Result<usize, StoreError> {
        let kv = self.kv.as_ref();
        let made: std::collections::HashMap<String, u64> =
            ANSWER_MADE.entries(kv)?.into_iter().collect();
        let mut batch = WriteBatch::new();
        let mut expired = 0;
        for (key, _) in IDEMPOTENCY.entries(kv)? {
            match made.get(&key) {
                None => ANSWER_MADE.put(&mut batch, &key, &now_ms)?,
                Some(&at) if at < made_after_ms => {
                    IDEMPOTENCY.delete(&mut batch, &key);
                    ANSWER_MADE.delete(&mut batch, &key);
                    expired += 1;
                }
                Some(_) => {}
            }
        }
        // A time whose answer is gone (deleted with a refused opening by an older build).
        for key in made.keys() {
            if IDEMPOTENCY.get(kv, key)?.is_none() {
                ANSWER_MADE.delete(&mut batch, key);
            }
        }
        if !batch.is_empty() {
            self.commit(batch)?;
        }
        Ok(expired)
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
        let result = kv.write(batch, Durability::Sync);
        timers
            .fsync_seconds
            .observe(started.elapsed().as_secs_f64());
        timers.commit_inputs.observe(waiting.len() as f64);
        for done in waiting {
            // A caller that gave up waiting is no reason to stop.
            let _ = done.send(result.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use doin_store::MemStore;

    fn store() -> HubStore {
        let metrics = HubMetrics::register(&doin_telemetry::Metrics::new()).unwrap();
        HubStore::new(Arc::new(MemStore::new(COLUMNS)), metrics)
    }

    fn answered(key: &str) -> Writes {
        let mut w = Writes::default();
        w.answers.push((
            key.to_string(),
            StoredAnswer {
                fingerprint: format!("open:{key}"),
                status: 202,
                body: b"{}".to_vec(),
            },
        ));
        w
    }

    #[test]
    fn idempotent_answers_expire_after_their_lifetime() {
        let s = store();
        s.commit(HubStore::batch(&answered("old"), 1_000).unwrap())
            .unwrap();
        s.commit(HubStore::batch(&answered("new"), 5_000).unwrap())
            .unwrap();
        // Answers written before the cut-off are gone for readers at once ...
        assert!(s.answer("old", 2_000).unwrap().is_none());
        assert!(s.answer("new", 2_000).unwrap().is_some());
        assert!(s.answer("old", 1_000).unwrap().is_some());
        // ... and from the store at the next expiry.
        assert_eq!(s.expire_answers(2_000, 6_000).unwrap(), 1);
        assert!(s.answer("old", 0).unwrap().is_none());
        assert!(s.answer("new", 0).unwrap().is_some());
        assert_eq!(s.expire_answers(2_000, 6_000).unwrap(), 0);
    }

    #[test]
    fn an_answer_kept_without_a_time_is_dated_at_the_first_expiry() {
        let s = store();
        let mut b = WriteBatch::new();
        IDEMPOTENCY
            .put(
                &mut b,
                &"legacy".to_string(),
                &answered("legacy").answers[0].1,
            )
            .unwrap();
        s.commit(b).unwrap();
        assert_eq!(s.expire_answers(10_000, 9_000).unwrap(), 0);
        assert!(s.answer("legacy", 9_000).unwrap().is_some());
        assert!(s.answer("legacy", 9_001).unwrap().is_none());
        assert_eq!(s.expire_answers(9_001, 20_000).unwrap(), 1);
    }

    #[test]
    fn a_deleted_answer_takes_its_time_with_it() {
        let s = store();
        s.commit(HubStore::batch(&answered("k"), 1_000).unwrap())
            .unwrap();
        let mut w = Writes::default();
        w.deleted_answers.push("k".to_string());
        s.commit(HubStore::batch(&w, 2_000).unwrap()).unwrap();
        assert!(ANSWER_MADE
            .get(s.kv.as_ref(), &"k".to_string())
            .unwrap()
            .is_none());
    }
}
