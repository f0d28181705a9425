//! The hub: channels to many payers and payees, streams and hash-locked payments through it.
//!
//! The hub is side B of every payer's channel (the payer opened it) and side A of its own
//! channels to payees. Each channel runs a [`ChannelMachine`]; this module decides what the hub
//! accepts and proposes, and keeps the books:
//!
//! - **streams**: a payee's invoice sets one up between a payer channel and the payee's
//!   channel; each tick the payer proposes one `Pay` of everything since the last tick (one
//!   signature covers many micropayments); once that update is signed by both, the amount less
//!   the hub's fee is owed to the payee, and the hub pays what it owes in one `Pay` whenever the
//!   payee's channel is free (so ticks are batched again on the way out);
//! - **routed payments**: a payer locks an HTLC for a payee's invoice; the hub locks the
//!   same hash towards the payee (less its fee, with an earlier expiry); the payee's preimage
//!   releases both, a refusal releases both back. The hub never holds the payer's money
//!   without the matching lock towards the payee;
//! - **verification funds**: a payer funds an optimae's evaluators at reveal; once the
//!   decision is final each agreeing evaluator is paid one fee out of it, the rest goes back
//!   (`funds`).
//!
//! Every input is applied under one lock on the in-memory state, queued as one batch for the
//! group-commit writer before the lock is released, and answered only once that batch is on
//! disk (batches are written in queue order, so an answer never depends on state that is not
//! durable). Nothing is signed or answered before it is persisted. The signatures themselves
//! are made and checked before the lock, on a copy of the channel's machine (`messages`); the
//! result is applied only if the channel has not moved since the copy, else computed again
//! under the lock — so inputs on different channels use every core, and one channel never
//! signs two states at one `seq`.

use crate::fees::HubConfig;
use crate::ports::ChainPort;
use crate::store::{
    put, ChannelRole, HubChannel, HubStore, Payment, Route, Stream, CF_CHANNELS, CF_ROUTES,
    CF_STREAMS,
};
use doin_channels::{parse_invoice, Change, ChannelMachine, InFlight, Message};
use doin_crypto::KeyPair;
use doin_store::{StoreError, WriteBatch};
use doin_tx_core::channel::{channel_id, ChannelId, ChannelPhase, Side};
use doin_types::{Amount, Hash256, Height, PublicKeyBytes};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Why the hub refused a request (the REST layer maps these to problem types).
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("no channel {0} at this hub")]
    UnknownChannel(ChannelId),
    #[error("no stream {0}")]
    UnknownStream(Hash256),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Liquidity(String),
    #[error(transparent)]
    Channel(#[from] doin_channels::ChannelError),
    #[error(transparent)]
    Invoice(#[from] doin_channels::InvoiceError),
    #[error("the transfer chain: {0}")]
    Chain(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What handling a message produced: the answer to send back (already durable) and the
/// payments it completed.
#[derive(Debug, Default)]
pub struct Handled {
    pub reply: Option<Message>,
    pub payments: Vec<Payment>,
}

/// Extra context of a proposal from a payer (which stream a tick belongs to, which invoice an
/// HTLC pays).
#[derive(Clone, Debug, Default)]
pub struct ProposalContext {
    pub stream: Option<Hash256>,
    pub invoice: Option<String>,
    /// A stream tick that pays an evaluator's verification fee for this vote (released only
    /// for a vote the main chain holds).
    pub vote: Option<crate::store::VoteRef>,
    /// A split tick: one `Pay` that pays several streams of this payer at once, each its
    /// share (the shares add up to the `Pay`). Used alone: no `stream`, `invoice` or `vote`.
    pub split: Vec<crate::store::StreamShare>,
    /// A funding tick: the `Pay` goes into the verification fund of this optimae (used alone).
    pub fund: Option<Hash256>,
}

/// The most streams one split tick pays (bounds the work and the records of one update).
pub const MAX_SPLIT_SHARES: usize = 64;

pub(crate) struct State {
    pub(crate) channels: BTreeMap<ChannelId, HubChannel>,
    pub(crate) streams: BTreeMap<Hash256, Stream>,
    pub(crate) routes: BTreeMap<Hash256, Route>,
    pub(crate) next_seq: u64,
    /// Invoices payable to the hub, by payment hash.
    pub(crate) invoices: BTreeMap<Hash256, crate::store::HubInvoice>,
    /// Votes whose fee a payer's tick paid (or is paying), with that payer's channel.
    pub(crate) paid_votes: BTreeMap<crate::store::VoteRef, ChannelId>,
    /// Verification funds, by optimae.
    pub(crate) funds: BTreeMap<Hash256, crate::store::Fund>,
    /// The last final height the watchtower read for preimages revealed on chain.
    pub(crate) claims_scanned: Height,
}

/// One hub.
pub struct Hub {
    pub(crate) key: KeyPair,
    pub(crate) chain: Arc<dyn ChainPort>,
    pub(crate) store: HubStore,
    pub(crate) cfg: HubConfig,
    pub(crate) state: Mutex<State>,
    pub(crate) main: Option<Arc<dyn crate::ports::MainPort>>,
    payments_tx: tokio::sync::broadcast::Sender<Payment>,
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

pub(crate) fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
}

/// The answer to a request with an `Idempotency-Key`, written in the batch of the operation
/// it answers: a crash can never leave the operation done without its answer (a retry would
/// repeat it) nor the answer without the operation.
pub struct PendingAnswer<R> {
    pub key: String,
    /// What the request asked (a repeat must ask the same).
    pub fingerprint: String,
    pub status: u16,
    /// The answer's JSON body, from the operation's result.
    pub body: fn(&R) -> Vec<u8>,
}

impl<R> PendingAnswer<R> {
    pub(crate) fn stored(self, result: &R) -> (String, crate::store::StoredAnswer) {
        (
            self.key,
            crate::store::StoredAnswer {
                fingerprint: self.fingerprint,
                status: self.status,
                body: (self.body)(result),
            },
        )
    }
}

/// Staged changes of one input, written as one batch.
#[derive(Default)]
pub(crate) struct Staged {
    pub(crate) channels: BTreeMap<ChannelId, HubChannel>,
    pub(crate) streams: BTreeMap<Hash256, Stream>,
    pub(crate) routes: BTreeMap<Hash256, Route>,
    pub(crate) payments: Vec<(Payment, Option<PublicKeyBytes>)>,
    pub(crate) claims_scanned: Option<Height>,
    pub(crate) answers: Vec<(String, crate::store::StoredAnswer)>,
    pub(crate) paid_votes: Vec<(crate::store::VoteRef, ChannelId)>,
    pub(crate) invoices: BTreeMap<Hash256, crate::store::HubInvoice>,
    pub(crate) funds: BTreeMap<Hash256, crate::store::Fund>,
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
        let channels = store.channels()?.into_iter().collect();
        let streams = store.streams()?.into_iter().map(|s| (s.id, s)).collect();
        let routes = store
            .routes()?
            .into_iter()
            .map(|r| (r.payment_hash, r))
            .collect();
        let next_seq = store.next_payment_seq()?;
        let paid_votes = store.paid_votes()?.into_iter().collect();
        let funds = store.funds()?.into_iter().map(|f| (f.optimae, f)).collect();
        let invoices = store
            .invoices()?
            .into_iter()
            .map(|i| (i.payment_hash, i))
            .collect();
        // A new hub has no HTLC on chain to learn from: it reads from today's tip on.
        let claims_scanned = match store.claims_scanned()? {
            Some(h) => h,
            None => chain.height(),
        };
        let (payments_tx, _) = tokio::sync::broadcast::channel(4096);
        Ok(Hub {
            key,
            chain,
            store,
            cfg,
            state: Mutex::new(State {
                channels,
                streams,
                routes,
                next_seq,
                invoices,
                paid_votes,
                funds,
                claims_scanned,
            }),
            main: None,
            payments_tx,
        })
    }

    /// Lets the hub release evaluator pay: ticks naming a vote are checked against the main
    /// chain through `main`.
    pub fn with_main(mut self, main: Arc<dyn crate::ports::MainPort>) -> Hub {
        self.main = Some(main);
        self
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

    pub fn idempotent_answer(
        &self,
        key: &str,
    ) -> Result<Option<crate::store::StoredAnswer>, HubError> {
        Ok(self.store.answer(key)?)
    }

    /// Ledger entries as they are made durable.
    pub fn subscribe_payments(&self) -> tokio::sync::broadcast::Receiver<Payment> {
        self.payments_tx.subscribe()
    }

    pub fn channel(&self, id: &ChannelId) -> Option<HubChannel> {
        self.state.lock().channels.get(id).cloned()
    }

    pub fn channels(&self) -> Vec<(ChannelId, HubChannel)> {
        self.state
            .lock()
            .channels
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect()
    }

    pub fn stream(&self, id: &Hash256) -> Option<Stream> {
        self.state.lock().streams.get(id).cloned()
    }

    pub fn fund(&self, optimae: &Hash256) -> Option<crate::store::Fund> {
        self.state.lock().funds.get(optimae).cloned()
    }

    pub fn funds(&self) -> Vec<crate::store::Fund> {
        self.state.lock().funds.values().cloned().collect()
    }

    pub fn streams(&self) -> Vec<Stream> {
        self.state.lock().streams.values().cloned().collect()
    }

    /// Writes `staged` under the state lock's protection (queued in order) and returns the
    /// handle to wait on after the lock is released.
    pub(crate) fn stage(
        &self,
        st: &mut State,
        staged: Staged,
    ) -> Result<(crate::store::Durable, Vec<Payment>), HubError> {
        let mut batch = WriteBatch::new();
        let payments = self.stage_into(st, staged, &mut batch)?;
        Ok((self.store.enqueue(batch), payments))
    }

    /// Applies `staged` to the state and adds its writes to `batch`, which the caller queues
    /// before it releases the state lock.
    pub(crate) fn stage_into(
        &self,
        st: &mut State,
        staged: Staged,
        batch: &mut WriteBatch,
    ) -> Result<Vec<Payment>, HubError> {
        for (id, c) in &staged.channels {
            put(batch, CF_CHANNELS, &id.0, c)?;
        }
        for (id, s) in &staged.streams {
            put(batch, CF_STREAMS, &id.0, s)?;
        }
        for (h, r) in &staged.routes {
            put(batch, CF_ROUTES, &h.0, r)?;
        }
        for (p, payee) in &staged.payments {
            HubStore::put_payment(batch, p, payee.as_ref())?;
        }
        for (hash, invoice) in &staged.invoices {
            put(batch, crate::store::CF_INVOICES, &hash.0, invoice)?;
        }
        st.invoices.extend(staged.invoices.clone());
        for (optimae, fund) in &staged.funds {
            put(batch, crate::store::CF_FUNDS, &optimae.0, fund)?;
        }
        st.funds.extend(staged.funds.clone());
        for (vote, channel) in &staged.paid_votes {
            put(batch, crate::store::CF_PAID_VOTES, &vote.key(), channel)?;
            st.paid_votes.insert(*vote, *channel);
        }
        for (key, answer) in &staged.answers {
            HubStore::put_answer(batch, key, answer)?;
        }
        if let Some(h) = staged.claims_scanned {
            HubStore::put_claims_scanned(batch, h)?;
            st.claims_scanned = h;
        }
        st.channels.extend(staged.channels);
        st.streams.extend(staged.streams);
        st.routes.extend(staged.routes);
        Ok(staged.payments.into_iter().map(|(p, _)| p).collect())
    }

    pub(crate) fn finish(
        &self,
        durable: crate::store::Durable,
        payments: Vec<Payment>,
    ) -> Result<Vec<Payment>, HubError> {
        durable.wait()?;
        let m = self.store.metrics();
        for p in &payments {
            m.payments.with_label_values(&[p.kind.as_str()]).inc();
            m.payments_msat
                .with_label_values(&[p.kind.as_str()])
                .inc_by(p.amount_msat);
        }
        for p in &payments {
            // Nobody listening is fine.
            let _ = self.payments_tx.send(p.clone());
        }
        Ok(payments)
    }

    /// Takes over a channel a payer opened on chain with this hub as counterparty.
    pub fn register_incoming(&self, id: ChannelId) -> Result<HubChannel, HubError> {
        if let Some(c) = self.channel(&id) {
            return Ok(c);
        }
        let on_chain = self
            .chain
            .channel(&id)
            .map_err(HubError::Chain)?
            .ok_or_else(|| HubError::Invalid(format!("no channel {id} on the transfer chain")))?;
        if on_chain.party_b != self.key.public() {
            return Err(HubError::Invalid(
                "this hub is not the channel's counterparty".into(),
            ));
        }
        if on_chain.phase != ChannelPhase::Open {
            return Err(HubError::Invalid("the channel is not open".into()));
        }
        if on_chain.dispute_blocks < self.cfg.min_dispute_blocks {
            return Err(HubError::Invalid(format!(
                "the channel's dispute window ({} blocks) is shorter than this hub accepts ({})",
                on_chain.dispute_blocks, self.cfg.min_dispute_blocks
            )));
        }
        let machine = ChannelMachine::new(
            self.chain.chain_id(),
            id,
            Side::B,
            on_chain.party_a,
            on_chain.party_b,
            on_chain.opening_a_msat,
            on_chain.opening_b_msat,
        )?;
        let channel = HubChannel::new(
            ChannelRole::Incoming,
            on_chain.party_a,
            machine.snapshot().clone(),
            true,
        );
        let mut st = self.state.lock();
        if let Some(c) = st.channels.get(&id) {
            return Ok(c.clone());
        }
        let mut staged = Staged::default();
        staged.channels.insert(id, channel.clone());
        let (durable, payments) = self.stage(&mut st, staged)?;
        drop(st);
        self.finish(durable, payments)?;
        Ok(channel)
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
        if deposit.is_zero() {
            return Err(HubError::Invalid("a deposit above zero is needed".into()));
        }
        let chain_id = self.chain.chain_id();
        let me = self.key.public();
        // Keeps concurrent opens from taking the same nonce.
        let mut st = self.state.lock();
        let nonce = self.chain.next_nonce(&me).map_err(HubError::Chain)?;
        let id = channel_id(&chain_id, &me, nonce);
        let capacity_msat = deposit
            .base_units()
            .checked_mul(doin_tx_core::channel::MSAT_PER_UNIT)
            .ok_or_else(|| HubError::Invalid("the deposit is too large".into()))?;
        let machine = ChannelMachine::new(chain_id, id, Side::A, me, payee, capacity_msat, 0)?;
        let channel = HubChannel::new(
            ChannelRole::Outgoing,
            payee,
            machine.snapshot().clone(),
            false,
        );
        let tx = crate::txs::sign(
            &self.key,
            chain_id,
            nonce,
            self.chain.base_fee(),
            doin_tx_core::TxPayload::ChannelOpen {
                counterparty: payee,
                deposit,
                counterparty_deposit: Amount::ZERO,
                dispute_blocks: self.cfg.dispute_blocks,
                consent: None,
            },
        )
        .map_err(HubError::Invalid)?;
        // Recorded with its transaction before it is submitted: after a crash in between the
        // watch submits it again, so the hub never forgets coins it locked.
        let mut channel = channel;
        channel.opening_tx = Some(tx.clone());
        let mut staged = Staged::default();
        staged.channels.insert(id, channel);
        staged.answers.extend(answer.map(|a| a.stored(&id)));
        let answer_key = staged.answers.first().map(|(k, _)| k.clone());
        let (durable, _) = self.stage(&mut st, staged)?;
        durable.wait()?;
        // Submitted under the lock, so the next open sees this nonce taken.
        if let Err(e) = self.chain.submit(&tx) {
            // Refused: the channel never existed; its record and answer go.
            let mut batch = WriteBatch::new();
            batch.delete(CF_CHANNELS, id.0.to_vec());
            if let Some(k) = answer_key {
                batch.delete(crate::store::CF_IDEMPOTENCY, k.into_bytes());
            }
            let durable = self.store.enqueue(batch);
            st.channels.remove(&id);
            drop(st);
            durable.wait()?;
            return Err(HubError::Chain(e));
        }
        drop(st);
        Ok(id)
    }

    /// A new invoice payable to the hub itself for `amount_msat`, valid `expiry_secs`; the
    /// hub keeps its preimage (written before the invoice is returned) and takes a payer's
    /// HTLC for it at once.
    pub fn create_invoice(
        &self,
        amount_msat: u64,
        description: &str,
        expiry_secs: u64,
    ) -> Result<crate::store::HubInvoice, HubError> {
        use rand::RngCore;
        if amount_msat == 0 {
            return Err(HubError::Invalid("an amount above zero is needed".into()));
        }
        let mut preimage = [0u8; 32];
        let mut secret = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut preimage);
        rand::rngs::OsRng.fill_bytes(&mut secret);
        let payment_hash = Hash256(doin_tx_core::channel::sha256(&preimage));
        let created = now();
        let text = doin_channels::create_invoice(
            self.chain.network(),
            &self.key,
            &doin_channels::InvoiceTerms {
                amount_msat,
                payment_hash,
                payment_secret: secret,
                description: description.to_string(),
                expiry_secs,
                min_final_cltv_blocks: self.htlc_margin(),
            },
            created,
        )?;
        let invoice = crate::store::HubInvoice {
            text,
            payment_hash,
            preimage,
            amount_msat,
            description: description.to_string(),
            expires_at: created.as_secs().saturating_add(expiry_secs),
            paid_by: None,
        };
        let mut st = self.state.lock();
        let mut staged = Staged::default();
        staged.invoices.insert(payment_hash, invoice.clone());
        let (durable, payments) = self.stage(&mut st, staged)?;
        drop(st);
        self.finish(durable, payments)?;
        Ok(invoice)
    }

    pub fn invoice(&self, hash: &Hash256) -> Option<crate::store::HubInvoice> {
        self.state.lock().invoices.get(hash).cloned()
    }

    /// The outgoing channel the hub has to `payee` (confirmed, not closing), if any.
    pub(crate) fn payee_channel(st: &State, payee: &PublicKeyBytes) -> Option<ChannelId> {
        st.channels
            .iter()
            .find(|(_, c)| {
                c.role == ChannelRole::Outgoing
                    && c.peer == *payee
                    && c.confirmed
                    && !c.closing
                    && c.closed_at.is_none()
                    && c.close_requested_at.is_none()
            })
            .map(|(id, _)| *id)
    }

    /// What the hub can still pay out on an outgoing channel: its balance less what it owes
    /// and has in flight or queued.
    pub(crate) fn spendable(c: &HubChannel) -> u64 {
        let latest = &c.machine.latest.state;
        let mine = match c.machine.me {
            Side::A => latest.balance_a_msat,
            Side::B => latest.balance_b_msat,
        };
        let queued: u64 = c
            .queued
            .iter()
            .map(|ch| match ch {
                Change::AddHtlc { amount_msat, .. } | Change::Pay { amount_msat } => *amount_msat,
                _ => 0,
            })
            .sum();
        let in_flight = match &c.machine.in_flight {
            Some(InFlight::Proposed {
                change: Change::Pay { amount_msat } | Change::AddHtlc { amount_msat, .. },
                ..
            }) => *amount_msat,
            _ => 0,
        };
        mine.saturating_sub(c.owed_msat)
            .saturating_sub(queued)
            .saturating_sub(in_flight)
    }

    /// Sets up a stream from `payer_channel` to the payee of `invoice` (its amount is the
    /// stream's budget, its payment hash the stream's id).
    pub fn open_stream(&self, payer_channel: ChannelId, invoice: &str) -> Result<Stream, HubError> {
        let parsed = parse_invoice(invoice, self.chain.network(), now(), None)?;
        let mut st = self.state.lock();
        if let Some(s) = st.streams.get(&parsed.payment_hash) {
            if s.payer_channel == payer_channel {
                return Ok(s.clone());
            }
            return Err(HubError::Invalid(
                "the invoice already pays another stream".into(),
            ));
        }
        let payer = st
            .channels
            .get(&payer_channel)
            .ok_or(HubError::UnknownChannel(payer_channel))?;
        if payer.role != ChannelRole::Incoming || payer.closed_at.is_some() {
            return Err(HubError::Invalid(
                "streams are paid from an open payer channel".into(),
            ));
        }
        let payee_channel = Self::payee_channel(&st, &parsed.payee).ok_or_else(|| {
            HubError::Liquidity(format!(
                "the hub has no open channel to the invoice's payee {}",
                parsed.payee
            ))
        })?;
        let stream = Stream {
            id: parsed.payment_hash,
            payer_channel,
            payee_channel,
            payee: parsed.payee,
            budget_msat: parsed.amount_msat,
            received_msat: 0,
            forwarded_msat: 0,
            fees_msat: 0,
            ticks: 0,
            opened_at_ms: now_ms(),
            closed: false,
        };
        let mut staged = Staged::default();
        staged.streams.insert(stream.id, stream.clone());
        let (durable, payments) = self.stage(&mut st, staged)?;
        drop(st);
        self.finish(durable, payments)?;
        Ok(stream)
    }

    /// Closes a stream: no further ticks are accepted (what it carried stays paid).
    pub fn close_stream(&self, id: &Hash256) -> Result<Stream, HubError> {
        let mut st = self.state.lock();
        let mut s = st
            .streams
            .get(id)
            .cloned()
            .ok_or(HubError::UnknownStream(*id))?;
        s.closed = true;
        let mut staged = Staged::default();
        staged.streams.insert(s.id, s.clone());
        let (durable, payments) = self.stage(&mut st, staged)?;
        drop(st);
        self.finish(durable, payments)?;
        Ok(s)
    }

    /// The proposal the hub has in flight on `id` for the peer to accept, if any (peers fetch
    /// it: the hub reaches no one).
    pub fn outbox(&self, id: &ChannelId) -> Result<Option<Message>, HubError> {
        let st = self.state.lock();
        let c = st.channels.get(id).ok_or(HubError::UnknownChannel(*id))?;
        let m = ChannelMachine::restore(c.machine.clone());
        Ok(match m.in_flight() {
            Some(InFlight::Proposed { change, state }) => Some(Message::Propose {
                channel_id: *id,
                seq: state.seq,
                change: change.clone(),
            }),
            _ => None,
        })
    }
}
