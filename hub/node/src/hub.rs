//! The hub's shell around `doin-hub-core`: it owns the lock on the state, reads the chains
//! before it takes the lock, runs an input through [`doin_hub_core::handle`] and carries out
//! the output in order — **persist** (the input's batch queued for the group-commit writer
//! before the lock is released, so batches reach the disk in the order their inputs were
//! handled), **submit** (the hub's transactions, one after the other under their own lock so
//! their nonces follow each other; their outcomes go back to the core), **reply** (only once
//! everything it depends on is durable). Every rule of the hub is in the core; nothing here
//! decides anything about money.
//!
//! A peer's channel messages are signed and checked before the lock, on a copy of the
//! channel's machine ([`doin_hub_core::precompute`]): inputs on different channels use every
//! core, and the core uses a step only if the channel has not moved since the copy.

use crate::ports::{ChainPort, MainPort};
use crate::store::{Durable, Fund, HubChannel, HubStore, Payment, Stream};
use crate::webhook_outbox::Outbox;
use crate::webhook_records::WebhookConfig;
use doin_channels::Message;
use doin_crypto::KeyPair;
use doin_hub_core::{
    ChainSnapshot, ClaimsRead, CloseHow, Condition, HubInput, HubOutput, HubParams, HubState,
    MainSnapshot, Mark, Needs, PendingTx, Reply, Submission, WatchReport,
};
use doin_tx_core::channel::ChannelId;
use doin_types::{Amount, Hash256, Msat, PortError, PublicKeyBytes};
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use doin_hub_core::{HubConfig, HubError, PendingAnswer, ProposalContext, MAX_SPLIT_SHARES};

/// What handling a message produced: the answer to send back (already durable) and the
/// payments it completed.
#[derive(Debug, Default)]
pub struct Handled {
    pub reply: Option<Message>,
    pub payments: Vec<Payment>,
}

/// One hub.
pub struct Hub {
    key: Arc<KeyPair>,
    chain: Arc<dyn ChainPort>,
    main: Option<Arc<dyn MainPort>>,
    store: HubStore,
    cfg: HubConfig,
    state: Mutex<HubState>,
    /// Held while the hub submits transactions (and reads the nonce it signs with), so that
    /// its transactions take nonces one after the other.
    submitting: Mutex<()>,
    payments_tx: tokio::sync::broadcast::Sender<Payment>,
    /// Channels whose record just became durable changed (a proposal of the hub may wait).
    changed_tx: tokio::sync::broadcast::Sender<ChannelId>,
    /// `Idempotency-Key`s whose request is being handled: a duplicate arriving meanwhile is
    /// refused rather than run a second time.
    keys_in_flight: KeysInFlight,
    /// The webhooks' outbox ([`crate::webhooks`] fills and sends it).
    webhooks: Arc<Outbox>,
}

/// The `Idempotency-Key`s requests are using now.
#[derive(Clone, Default)]
pub struct KeysInFlight(Arc<Mutex<std::collections::HashSet<String>>>);

impl KeysInFlight {
    /// Takes `key` until the returned guard is dropped, or `None` while another holds it.
    pub fn take(&self, key: &str) -> Option<KeyInFlight> {
        self.0.lock().insert(key.to_string()).then(|| KeyInFlight {
            keys: self.clone(),
            key: key.to_string(),
        })
    }
}

/// An `Idempotency-Key` taken by one request until it is dropped.
pub struct KeyInFlight {
    keys: KeysInFlight,
    key: String,
}

impl Drop for KeyInFlight {
    fn drop(&mut self) {
        self.keys.0.lock().remove(&self.key);
    }
}

/// The wall clock, as the core takes it.
pub(crate) fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
}

/// A time as unix milliseconds (saturating far beyond any real clock).
fn millis(t: Duration) -> u64 {
    u64::try_from(t.as_millis()).unwrap_or(u64::MAX)
}

/// What happened to one submission.
enum Outcome {
    Accepted,
    Refused(PortError),
    /// Its condition did not hold.
    Skipped,
}

impl Hub {
    /// Opens the hub over `store`, loading every channel, stream and route.
    pub fn open(
        key: KeyPair,
        chain: Arc<dyn ChainPort>,
        store: HubStore,
        cfg: HubConfig,
    ) -> Result<Hub, HubError> {
        store.check_layout()?;
        let indexed = store.index_payers()?;
        if indexed > 0 {
            tracing::info!(
                entries = indexed,
                "hub: payers' history indexed from the ledger"
            );
        }
        let (mut loaded, scanned) = store.load()?;
        // A new hub has no HTLC on chain to learn from: it reads from today's tip on.
        loaded.claims_scanned = scanned.unwrap_or_else(|| chain.height());
        let key = Arc::new(key);
        let params = HubParams {
            key: key.clone(),
            cfg: cfg.clone(),
            chain_id: chain.chain_id(),
            network: chain.network(),
        };
        let (payments_tx, _) = tokio::sync::broadcast::channel(4096);
        let (changed_tx, _) = tokio::sync::broadcast::channel(4096);
        Ok(Hub {
            key,
            chain,
            main: None,
            cfg,
            state: Mutex::new(HubState::new(params, loaded)),
            submitting: Mutex::new(()),
            payments_tx,
            changed_tx,
            keys_in_flight: KeysInFlight::default(),
            webhooks: Arc::new(Outbox::new(store.kv().clone(), WebhookConfig::default())),
            store,
        })
    }

    /// Lets the hub release evaluator pay: ticks naming a vote are checked against the main
    /// chain through `main`.
    pub fn with_main(mut self, main: Arc<dyn MainPort>) -> Hub {
        self.main = Some(main);
        self
    }

    /// Delivers webhooks as `cfg` says (the default otherwise).
    pub fn with_webhook_config(mut self, cfg: WebhookConfig) -> Hub {
        self.webhooks = Arc::new(Outbox::new(self.store.kv().clone(), cfg));
        self
    }

    /// The webhooks' outbox.
    pub fn webhooks(&self) -> &Arc<Outbox> {
        &self.webhooks
    }

    pub fn public_key(&self) -> PublicKeyBytes {
        self.key.public()
    }

    pub fn config(&self) -> &HubConfig {
        &self.cfg
    }

    pub fn store(&self) -> &HubStore {
        &self.store
    }

    pub fn chain(&self) -> &Arc<dyn ChainPort> {
        &self.chain
    }

    /// Takes `key` for one request, or `None` while another request holds it.
    pub fn take_idempotency_key(&self, key: &str) -> Option<KeyInFlight> {
        self.keys_in_flight.take(key)
    }

    /// The answer kept under `key`, unless it has expired.
    pub fn idempotent_answer(
        &self,
        key: &str,
    ) -> Result<Option<crate::store::StoredAnswer>, HubError> {
        Ok(self.store.answer(key, self.answers_made_after_ms())?)
    }

    /// Deletes the answers older than `idempotency_ttl_secs`; returns how many.
    pub fn expire_answers(&self) -> Result<usize, HubError> {
        Ok(self
            .store
            .expire_answers(self.answers_made_after_ms(), millis(now()))?)
    }

    /// Answers written before this time (unix ms) have expired.
    fn answers_made_after_ms(&self) -> u64 {
        let ttl = self.cfg.idempotency_ttl_secs.saturating_mul(1_000);
        // A lifetime longer than the clock: nothing has expired.
        millis(now()).saturating_sub(ttl)
    }

    /// Ledger entries as they are made durable.
    pub fn subscribe_payments(&self) -> tokio::sync::broadcast::Receiver<Payment> {
        self.payments_tx.subscribe()
    }

    /// Channels as their records are made durable (look at [`Hub::outbox`] then).
    pub fn subscribe_channel_changes(&self) -> tokio::sync::broadcast::Receiver<ChannelId> {
        self.changed_tx.subscribe()
    }

    pub fn channel(&self, id: &ChannelId) -> Option<HubChannel> {
        self.state.lock().channel(id).cloned()
    }

    pub fn channels(&self) -> Vec<(ChannelId, HubChannel)> {
        self.state
            .lock()
            .channels()
            .map(|(k, v)| (*k, v.clone()))
            .collect()
    }

    pub fn stream(&self, id: &Hash256) -> Option<Stream> {
        self.state.lock().stream(id).cloned()
    }

    pub fn streams(&self) -> Vec<Stream> {
        self.state.lock().streams().cloned().collect()
    }

    pub fn fund(&self, optimae: &Hash256) -> Option<Fund> {
        self.state.lock().fund(optimae).cloned()
    }

    pub fn funds(&self) -> Vec<Fund> {
        self.state.lock().funds().cloned().collect()
    }

    pub fn invoice(&self, hash: &Hash256) -> Option<crate::store::HubInvoice> {
        self.state.lock().invoice(hash).cloned()
    }

    /// The proposal the hub has in flight on `id` for the peer to accept, if any (peers fetch
    /// it: the hub reaches no one).
    pub fn outbox(&self, id: &ChannelId) -> Result<Option<Message>, HubError> {
        self.state.lock().outbox(id)
    }

    /// Reads from the chains what an input needs, at final height `height`.
    fn snapshot(&self, height: u64, needs: &Needs) -> Result<ChainSnapshot, HubError> {
        let chain = HubError::Chain;
        let mut snap = ChainSnapshot {
            height,
            ..ChainSnapshot::default()
        };
        if needs.nonce {
            snap.base_fee = self.chain.base_fee();
            snap.hub_nonce = Some(self.chain.next_nonce(&self.key.public()).map_err(chain)?);
        }
        for id in &needs.channels {
            snap.channels
                .insert(*id, self.chain.channel(id).map_err(chain)?);
        }
        if let Some(from) = needs.claims_from {
            let to = height.min(from.saturating_add(doin_hub_core::MAX_CLAIM_BLOCKS_PER_PASS - 1));
            let claims = self.chain.htlc_claims(from, to).map_err(chain)?;
            snap.claims = Some(ClaimsRead { from, to, claims });
        }
        for id in &needs.payments {
            snap.payments.insert(*id, self.chain.tx_state(id));
        }
        if let Some(main) = &self.main {
            let mut m = MainSnapshot::default();
            for optimae in &needs.decisions {
                m.decisions.insert(*optimae, main.decision(optimae));
            }
            for vote in &needs.vote_fees {
                m.vote_fees
                    .insert(*vote, main.vote_fee(&vote.optimae, &vote.evaluator));
            }
            snap.main = Some(m);
        }
        Ok(snap)
    }

    /// The snapshot `input` needs, read now.
    fn snapshot_for(&self, input: &HubInput) -> Result<ChainSnapshot, HubError> {
        let height = self.chain.height();
        let needs = doin_hub_core::needs(&self.state.lock(), input, height);
        self.snapshot(height, &needs)
    }

    /// Handles `input` and makes its writes durable; the output's submissions and reply are
    /// the caller's to carry out next.
    fn run(&self, input: HubInput, snap: &ChainSnapshot) -> Result<HubOutput, HubError> {
        let mut st = self.state.lock();
        let at = now();
        let out = doin_hub_core::handle(&mut st, input, at, snap)?;
        let durable = if out.writes.is_empty() {
            None
        } else {
            // Queued before the lock is released: batches reach the disk in input order.
            Some(
                self.store
                    .enqueue(HubStore::batch(&out.writes, millis(at))?),
            )
        };
        drop(st);
        if let Some(durable) = durable {
            self.finish(durable, out.writes.ledger())?;
            for id in out.writes.channels.keys() {
                // Nobody listening is fine.
                let _ = self.changed_tx.send(*id);
            }
        }
        Ok(out)
    }

    /// Waits until an input's batch is on disk, then counts and announces its ledger entries.
    fn finish(&self, durable: Durable, payments: Vec<Payment>) -> Result<(), HubError> {
        durable.wait()?;
        let m = self.store.metrics();
        for p in &payments {
            m.payments.with_label_values(&[p.kind.as_str()]).inc();
            m.payments_msat
                .with_label_values(&[p.kind.as_str()])
                .inc_by(p.amount_msat.get());
        }
        for p in payments {
            // Nobody listening is fine.
            let _ = self.payments_tx.send(p);
        }
        Ok(())
    }

    /// Submits `subs` in order (the caller holds `submitting`), each whose condition holds;
    /// payloads are signed with the hub's next nonce at the time.
    fn submit_all(&self, subs: &[Submission]) -> Vec<Outcome> {
        let mut outcomes: Vec<Outcome> = Vec::with_capacity(subs.len());
        for sub in subs {
            let go = match sub.when {
                Condition::Always => true,
                Condition::IfAccepted(i) => matches!(outcomes.get(i), Some(Outcome::Accepted)),
                Condition::IfRefused(i) => matches!(outcomes.get(i), Some(Outcome::Refused(_))),
            };
            if !go {
                outcomes.push(Outcome::Skipped);
                continue;
            }
            let submitted = match &sub.tx {
                PendingTx::Signed(bytes) => self.chain.submit(bytes),
                PendingTx::Payload(payload) => self
                    .chain
                    .next_nonce(&self.key.public())
                    .and_then(|nonce| {
                        doin_hub_core::txs::sign(
                            &self.key,
                            self.chain.chain_id(),
                            nonce,
                            self.chain.base_fee(),
                            payload.clone(),
                        )
                        .map_err(PortError::Invalid)
                    })
                    .and_then(|tx| self.chain.submit(&tx)),
            };
            outcomes.push(match submitted {
                Ok(_) => Outcome::Accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "a hub transaction was refused; it is tried again when next due");
                    Outcome::Refused(e)
                }
            });
        }
        outcomes
    }

    /// The marks the outcomes of `subs` call for.
    fn marks(subs: Vec<Submission>, outcomes: &[Outcome]) -> Vec<Mark> {
        subs.into_iter()
            .zip(outcomes)
            .flat_map(|(sub, outcome)| match outcome {
                Outcome::Accepted => sub.on_accept,
                Outcome::Refused(_) => sub.on_refusal,
                Outcome::Skipped => Vec::new(),
            })
            .collect()
    }

    /// Submits an output's transactions, records their outcomes, and returns what the
    /// recording reported and the first refusal.
    fn carry_out(
        &self,
        subs: Vec<Submission>,
        snap: &ChainSnapshot,
    ) -> Result<(WatchReport, Option<PortError>), HubError> {
        if subs.is_empty() {
            return Ok((WatchReport::default(), None));
        }
        let mut outcomes = self.submit_all(&subs);
        let marks = Self::marks(subs, &outcomes);
        let refusal = outcomes.iter_mut().find_map(|o| match o {
            Outcome::Refused(e) => Some(e.clone()),
            _ => None,
        });
        if marks.is_empty() {
            return Ok((WatchReport::default(), refusal));
        }
        let out = self.run(HubInput::Apply { marks }, snap)?;
        Ok((out.report, refusal))
    }

    /// Handles a message from the peer of channel `id`; `ctx` says what a payer's proposal is
    /// for. Returns the answer once everything it depends on is durable.
    pub fn handle(
        &self,
        id: &ChannelId,
        msg: Message,
        ctx: ProposalContext,
    ) -> Result<Handled, HubError> {
        self.handle_messages(id, vec![(msg, ctx)])
    }

    /// Handles a `Confirm` of the update in flight and the peer's next proposal in one input:
    /// both are written in one durable step and answered by the answer to the proposal. A
    /// streaming payer confirms tick *n* and proposes tick *n + 1* in one round trip.
    pub fn handle_pipelined(
        &self,
        id: &ChannelId,
        confirm: Message,
        next: Message,
        ctx: ProposalContext,
    ) -> Result<Handled, HubError> {
        if !matches!(confirm, Message::Confirm { .. }) {
            return Err(HubError::Invalid(
                "only a Confirm can be followed by another message in one request".into(),
            ));
        }
        self.handle_messages(id, vec![(confirm, ProposalContext::default()), (next, ctx)])
    }

    fn handle_messages(
        &self,
        id: &ChannelId,
        msgs: Vec<(Message, ProposalContext)>,
    ) -> Result<Handled, HubError> {
        let result = self.handle_inner(id, msgs);
        let outcome = match &result {
            Ok(Handled {
                reply: Some(Message::Reject { .. }),
                ..
            }) => "rejected",
            Ok(_) => "accepted",
            Err(_) => "error",
        };
        self.store
            .metrics()
            .messages
            .with_label_values(&[outcome])
            .inc();
        result
    }

    fn handle_inner(
        &self,
        id: &ChannelId,
        msgs: Vec<(Message, ProposalContext)>,
    ) -> Result<Handled, HubError> {
        let height = self.chain.height();
        let mut input = HubInput::Messages {
            channel: *id,
            msgs,
            precomputed: Vec::new(),
        };
        // The lock is held only to copy the channel and see what the chains must be asked.
        let (base, needs) = {
            let st = self.state.lock();
            let base = st.channel(id).map(|c| c.machine.clone());
            (base, doin_hub_core::needs(&st, &input, height))
        };
        if let (
            Some(base),
            HubInput::Messages {
                msgs, precomputed, ..
            },
        ) = (base, &mut input)
        {
            *precomputed = doin_hub_core::precompute(&self.key, base, msgs, height);
        }
        let snap = self.snapshot(height, &needs)?;
        let out = self.run(input, &snap)?;
        let payments = out.writes.ledger();
        match out.reply {
            Reply::Messages { error: Some(e), .. } => Err(e),
            Reply::Messages { reply, error: None } => Ok(Handled { reply, payments }),
            other => Err(unexpected(&other)),
        }
    }

    /// Takes over a channel a payer opened on chain with this hub as counterparty.
    pub fn register_incoming(&self, id: ChannelId) -> Result<HubChannel, HubError> {
        let input = HubInput::RegisterIncoming { channel: id };
        let snap = self.snapshot_for(&input)?;
        match self.run(input, &snap)?.reply {
            Reply::Channel(c) => Ok(*c),
            other => Err(unexpected(&other)),
        }
    }

    /// Opens a channel from the hub to `payee` with `deposit` on chain. The channel is usable
    /// once the transfer chain has it ([`Hub::watch`] notices).
    pub fn open_outgoing(
        &self,
        payee: PublicKeyBytes,
        deposit: Amount,
    ) -> Result<ChannelId, HubError> {
        self.open_outgoing_answering(payee, deposit, None)
    }

    /// [`Hub::open_outgoing`], writing `answer` with the channel's record.
    pub fn open_outgoing_answering(
        &self,
        payee: PublicKeyBytes,
        deposit: Amount,
        answer: Option<PendingAnswer<ChannelId>>,
    ) -> Result<ChannelId, HubError> {
        // The nonce read for the channel's id stays the hub's until its transaction is in.
        let _submitting = self.submitting.lock();
        let input = HubInput::OpenOutgoing {
            payee,
            deposit,
            answer,
        };
        let snap = self.snapshot_for(&input)?;
        let out = self.run(input, &snap)?;
        let Reply::Opened(id) = out.reply else {
            return Err(unexpected(&out.reply));
        };
        match self.carry_out(out.submissions, &snap)? {
            (_, Some(refused)) => Err(HubError::Chain(refused)),
            (_, None) => Ok(id),
        }
    }

    /// A payee buys an inbound channel of `capacity` for `duration_blocks` with `payment`, its
    /// signed transfer of the fee to the hub (see `doin_hub_core::requests`): the request is
    /// durable before the payment is submitted. A payment the chain refuses at once takes the
    /// request back out and is the answer.
    pub fn request_channel(
        &self,
        payment: Vec<u8>,
        capacity: Amount,
        duration_blocks: u64,
    ) -> Result<crate::store::ChannelRequest, HubError> {
        let input = HubInput::RequestChannel {
            payment,
            capacity,
            duration_blocks,
        };
        let snap = self.snapshot_for(&input)?;
        let out = self.run(input, &snap)?;
        let Reply::Request(request) = out.reply else {
            return Err(unexpected(&out.reply));
        };
        match self.carry_out(out.submissions, &snap)? {
            (_, Some(refused)) => Err(HubError::Chain(refused)),
            (_, None) => Ok(request),
        }
    }

    /// Opens the channels whose request is paid (once per watch pass).
    pub fn open_requested(&self) -> Result<WatchReport, HubError> {
        if doin_hub_core::requests::paying(&self.state.lock()).is_empty() {
            return Ok(WatchReport::default());
        }
        // The nonces read for the channels' ids stay the hub's until their transactions are in.
        let _submitting = self.submitting.lock();
        let input = HubInput::OpenRequested;
        let snap = self.snapshot_for(&input)?;
        let out = self.run(input, &snap)?;
        Ok(self.carry_out(out.submissions, &snap)?.0)
    }

    pub fn channel_request(&self, id: &Hash256) -> Option<crate::store::ChannelRequest> {
        self.state.lock().request(id).cloned()
    }

    /// A new invoice payable to the hub itself for `amount`, valid `expiry_secs`; the hub
    /// keeps its preimage (written before the invoice is returned) and takes a payer's HTLC
    /// for it at once.
    pub fn create_invoice(
        &self,
        amount: Msat,
        description: &str,
        expiry_secs: u64,
    ) -> Result<crate::store::HubInvoice, HubError> {
        use rand::RngCore;
        let mut preimage = [0u8; 32];
        let mut secret = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut preimage);
        rand::rngs::OsRng.fill_bytes(&mut secret);
        let input = HubInput::CreateInvoice {
            amount,
            description: description.to_string(),
            expiry_secs,
            preimage,
            secret,
        };
        match self.run(input, &ChainSnapshot::default())?.reply {
            Reply::Invoice(i) => Ok(i),
            other => Err(unexpected(&other)),
        }
    }

    /// Sets up a stream from `payer_channel` to the payee of `invoice` (its amount is the
    /// stream's budget, its payment hash the stream's id).
    pub fn open_stream(&self, payer_channel: ChannelId, invoice: &str) -> Result<Stream, HubError> {
        let input = HubInput::OpenStream {
            payer_channel,
            invoice: invoice.to_string(),
        };
        match self.run(input, &ChainSnapshot::default())?.reply {
            Reply::Stream(s) => Ok(s),
            other => Err(unexpected(&other)),
        }
    }

    /// Closes a stream: no further ticks are accepted (what it carried stays paid).
    pub fn close_stream(&self, id: &Hash256) -> Result<Stream, HubError> {
        let input = HubInput::CloseStream { stream: *id };
        match self.run(input, &ChainSnapshot::default())?.reply {
            Reply::Stream(s) => Ok(s),
            other => Err(unexpected(&other)),
        }
    }

    /// Proposes whatever waits on every channel (after a restart, or when a payee comes
    /// back). Returns how many channels got a proposal.
    pub fn flush_all(&self) -> Result<usize, HubError> {
        let input = HubInput::FlushAll;
        let snap = self.snapshot_for(&input)?;
        match self.run(input, &snap)?.reply {
            Reply::Flushed(n) => Ok(n),
            other => Err(unexpected(&other)),
        }
    }

    /// Closes channel `id` from the hub's side. A payee channel with something still due or
    /// under way is closed once the payee has taken it (`after-payout`; nothing new goes
    /// towards it meanwhile, and after `cltv_delta` blocks it is closed regardless); otherwise
    /// at once: cooperatively with the newest state both signed when it holds no HTLC and
    /// nothing is in flight (paid out at once), else by posting that state (the watch settles
    /// it after the window).
    pub fn close(&self, id: &ChannelId) -> Result<&'static str, HubError> {
        self.close_answering(id, None)
    }

    /// [`Hub::close`], writing `answer` with the channel's new state.
    pub fn close_answering(
        &self,
        id: &ChannelId,
        answer: Option<PendingAnswer<CloseHow>>,
    ) -> Result<&'static str, HubError> {
        let _submitting = self.submitting.lock();
        let input = HubInput::Close {
            channel: *id,
            answer,
        };
        let snap = self.snapshot_for(&input)?;
        let out = self.run(input, &snap)?;
        let Reply::Closed(how) = out.reply else {
            return Err(unexpected(&out.reply));
        };
        match self.carry_out(out.submissions, &snap)? {
            (_, Some(refused)) => Err(HubError::Chain(refused)),
            (_, None) => Ok(how.as_str()),
        }
    }

    /// One pass of the watchtower over every channel the hub has not seen paid out (see
    /// `doin_hub_core::watch`). Run it once per transfer block; it is idempotent.
    pub fn watch(&self) -> Result<WatchReport, HubError> {
        let _submitting = self.submitting.lock();
        let input = HubInput::Watch;
        let snap = self.snapshot_for(&input)?;
        let out = self.run(input, &snap)?;
        let mut report = out.report;
        let (outcomes, _) = self.carry_out(out.submissions, &snap)?;
        report.merge(outcomes);
        self.set_gauges();
        self.count_actions(&report);
        Ok(report)
    }

    /// Counts a watch pass whose transaction the chain refused (`doin_hub_watch_failures_total`).
    pub fn watch_failed(&self) {
        self.store.metrics().watch_failures.inc();
    }

    fn set_gauges(&self) {
        let g = self.state.lock().gauges();
        let m = self.store.metrics();
        for role in ["payer", "payee"] {
            for status in ["opening", "open", "closing", "closed"] {
                let n = g.channels.get(&(role, status)).copied().unwrap_or(0);
                m.channels.with_label_values(&[role, status]).set(n);
            }
        }
        m.owed_msat
            .set(i64::try_from(g.owed_msat).unwrap_or(i64::MAX));
        m.open_streams
            .set(i64::try_from(g.open_streams).unwrap_or(i64::MAX));
        for (direction, msat) in [("outbound", g.outbound_msat), ("inbound", g.inbound_msat)] {
            m.liquidity_msat
                .with_label_values(&[direction])
                .set(i64::try_from(msat).unwrap_or(i64::MAX));
        }
    }

    fn count_actions(&self, r: &WatchReport) {
        let m = self.store.metrics();
        for (action, ids) in r.groups() {
            if !ids.is_empty() {
                m.watch_actions
                    .with_label_values(&[action])
                    .inc_by(ids.len() as u64);
            }
        }
    }
}

/// A reply of another input than the one handled: a fault of this build, not of the caller.
fn unexpected(reply: &Reply) -> HubError {
    HubError::Internal(format!(
        "the hub answered with an unexpected reply: {reply:?}"
    ))
}

#[cfg(test)]
mod tests {
    use super::KeysInFlight;

    #[test]
    fn a_key_in_flight_is_refused_until_its_request_ends() {
        let keys = KeysInFlight::default();
        let first = keys.take("k");
        assert!(first.is_some());
        assert!(keys.take("k").is_none());
        assert!(keys.take("other").is_some());
        drop(first);
        assert!(keys.take("k").is_some());
    }
}
