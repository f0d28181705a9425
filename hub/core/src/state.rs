//! The hub's state: who it is ([`HubParams`]), every record it keeps, and the staging of one
//! input's changes. An input reads the state, stages what it changes in a [`Writes`] and, only
//! once it has succeeded, applies them to the state and hands them out to be persisted: a
//! refused input leaves the state as it was.

use crate::config::HubConfig;
use crate::error::HubError;
use crate::io::Writes;
use crate::records::{
    ChannelRequest, ChannelRole, Fund, HubChannel, HubEvent, HubEventKind, HubInvoice, Payment,
    Route, Stream, VoteRef,
};
use doin_channels::{Change, ChannelMachine, InFlight, Message};
use doin_crypto::KeyPair;
use doin_tx_core::channel::{ChannelId, Side};
use doin_types::{ChainId, Hash256, Height, Msat, MsatError, Network, PublicKeyBytes};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Who the hub is and how it runs: fixed for its lifetime.
#[derive(Clone)]
pub struct HubParams {
    pub key: Arc<KeyPair>,
    pub cfg: HubConfig,
    pub chain_id: ChainId,
    pub network: Network,
}

impl HubParams {
    pub fn public_key(&self) -> PublicKeyBytes {
        self.key.public()
    }
}

/// Everything the hub knows, loaded from its store at start.
pub struct HubState {
    pub(crate) params: HubParams,
    pub(crate) channels: BTreeMap<ChannelId, HubChannel>,
    pub(crate) streams: BTreeMap<Hash256, Stream>,
    pub(crate) routes: BTreeMap<Hash256, Route>,
    /// The sequence number the next ledger entry gets.
    pub(crate) next_seq: u64,
    /// The sequence number the next [`HubEvent`] gets.
    pub(crate) next_event_seq: u64,
    /// Invoices payable to the hub, by payment hash.
    pub(crate) invoices: BTreeMap<Hash256, HubInvoice>,
    /// Votes whose fee a payer's tick paid (or is paying), with that payer's channel.
    pub(crate) paid_votes: BTreeMap<VoteRef, ChannelId>,
    /// Verification funds, by optimae.
    pub(crate) funds: BTreeMap<Hash256, Fund>,
    /// Payees' channel requests, by payment id.
    pub(crate) requests: BTreeMap<Hash256, ChannelRequest>,
    /// The last final height the watchtower read for preimages revealed on chain.
    pub(crate) claims_scanned: Height,
}

/// What a hub's store holds, to build its state from.
#[derive(Default)]
pub struct Loaded {
    pub channels: Vec<(ChannelId, HubChannel)>,
    pub streams: Vec<Stream>,
    pub routes: Vec<Route>,
    pub next_seq: u64,
    pub next_event_seq: u64,
    pub invoices: Vec<HubInvoice>,
    pub paid_votes: Vec<(VoteRef, ChannelId)>,
    pub funds: Vec<Fund>,
    pub requests: Vec<ChannelRequest>,
    pub claims_scanned: Height,
}

/// Channels of the hub by role (`payer`, `payee`) and status, with what it owes payees.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Gauges {
    pub channels: BTreeMap<(&'static str, &'static str), i64>,
    pub owed_msat: u128,
    pub open_streams: usize,
    /// What the hub can still pay payees over open channels (less what it owes them already).
    pub outbound_msat: u128,
    /// What payers can still pay the hub over open channels.
    pub inbound_msat: u128,
}

impl HubState {
    pub fn new(params: HubParams, loaded: Loaded) -> HubState {
        HubState {
            params,
            channels: loaded.channels.into_iter().collect(),
            streams: loaded.streams.into_iter().map(|s| (s.id, s)).collect(),
            routes: loaded
                .routes
                .into_iter()
                .map(|r| (r.payment_hash, r))
                .collect(),
            next_seq: loaded.next_seq.max(1),
            next_event_seq: loaded.next_event_seq.max(1),
            invoices: loaded
                .invoices
                .into_iter()
                .map(|i| (i.payment_hash, i))
                .collect(),
            paid_votes: loaded.paid_votes.into_iter().collect(),
            funds: loaded.funds.into_iter().map(|f| (f.optimae, f)).collect(),
            requests: loaded.requests.into_iter().map(|r| (r.id, r)).collect(),
            claims_scanned: loaded.claims_scanned,
        }
    }

    pub fn params(&self) -> &HubParams {
        &self.params
    }

    pub fn channel(&self, id: &ChannelId) -> Option<&HubChannel> {
        self.channels.get(id)
    }

    pub fn channels(&self) -> impl Iterator<Item = (&ChannelId, &HubChannel)> {
        self.channels.iter()
    }

    pub fn stream(&self, id: &Hash256) -> Option<&Stream> {
        self.streams.get(id)
    }

    pub fn streams(&self) -> impl Iterator<Item = &Stream> {
        self.streams.values()
    }

    pub fn route(&self, hash: &Hash256) -> Option<&Route> {
        self.routes.get(hash)
    }

    pub fn fund(&self, optimae: &Hash256) -> Option<&Fund> {
        self.funds.get(optimae)
    }

    pub fn request(&self, id: &Hash256) -> Option<&ChannelRequest> {
        self.requests.get(id)
    }

    /// The height until which `channel` is leased to the payee that bought it, if it is.
    pub fn leased_until(&self, channel: &ChannelId) -> Option<Height> {
        self.requests.values().find_map(|r| match &r.state {
            crate::records::RequestState::Opened {
                channel: c,
                lease_until,
            } if c == channel => Some(*lease_until),
            _ => None,
        })
    }

    pub fn funds(&self) -> impl Iterator<Item = &Fund> {
        self.funds.values()
    }

    pub fn invoice(&self, hash: &Hash256) -> Option<&HubInvoice> {
        self.invoices.get(hash)
    }

    /// Which payer channel paid `vote`'s verification fee, if one did.
    pub fn paid_vote(&self, vote: &VoteRef) -> Option<&ChannelId> {
        self.paid_votes.get(vote)
    }

    pub fn claims_scanned(&self) -> Height {
        self.claims_scanned
    }

    /// The proposal the hub has in flight on `id` for the peer to accept, if any (peers fetch
    /// it: the hub reaches no one).
    pub fn outbox(&self, id: &ChannelId) -> Result<Option<Message>, HubError> {
        let c = self.channels.get(id).ok_or(HubError::UnknownChannel(*id))?;
        Ok(match &c.machine.in_flight {
            Some(InFlight::Proposed { change, state }) => Some(Message::Propose {
                channel_id: *id,
                seq: state.seq,
                change: change.clone(),
            }),
            _ => None,
        })
    }

    /// The channel gauges: channels by role and status, what is owed, open streams.
    pub fn gauges(&self) -> Gauges {
        let mut g = Gauges::default();
        for c in self.channels.values() {
            let role = match c.role {
                ChannelRole::Incoming => "payer",
                ChannelRole::Outgoing => "payee",
            };
            *g.channels.entry((role, c.status())).or_default() += 1;
            g.owed_msat += u128::from(c.owed_msat.get());
            if c.is_open() {
                match c.role {
                    // A channel whose books do not add up offers nothing.
                    ChannelRole::Outgoing => {
                        g.outbound_msat += u128::from(spendable(c).map_or(0, |m| m.get()))
                    }
                    ChannelRole::Incoming => g.inbound_msat += u128::from(peer_balance(c).get()),
                }
            }
        }
        g.open_streams = self.streams.values().filter(|s| !s.closed).count();
        g
    }

    /// The outgoing channel the hub has to `payee` (confirmed, not closing), if any.
    pub(crate) fn payee_channel(&self, payee: &PublicKeyBytes) -> Option<ChannelId> {
        self.channels
            .iter()
            .find(|(_, c)| {
                c.role == ChannelRole::Outgoing
                    && c.peer == *payee
                    && c.is_open()
                    && c.close_requested_at.is_none()
            })
            .map(|(id, _)| *id)
    }

    /// Applies what an input staged: from here on the state includes it. The caller persists
    /// the same `writes` before anything that depends on them leaves.
    pub(crate) fn apply(&mut self, writes: &Writes) {
        for id in &writes.deleted_channels {
            self.channels.remove(id);
        }
        self.channels
            .extend(writes.channels.iter().map(|(k, v)| (*k, v.clone())));
        self.streams
            .extend(writes.streams.iter().map(|(k, v)| (*k, v.clone())));
        self.routes
            .extend(writes.routes.iter().map(|(k, v)| (*k, v.clone())));
        self.invoices
            .extend(writes.invoices.iter().map(|(k, v)| (*k, v.clone())));
        self.funds
            .extend(writes.funds.iter().map(|(k, v)| (*k, v.clone())));
        for id in &writes.deleted_requests {
            self.requests.remove(id);
        }
        self.requests
            .extend(writes.requests.iter().map(|(k, v)| (*k, v.clone())));
        self.paid_votes.extend(writes.paid_votes.iter().copied());
        if let Some(h) = writes.claims_scanned {
            self.claims_scanned = h;
        }
    }
}

/// What the hub can still pay out on a channel: its balance less what it owes and has in
/// flight or queued. A shortfall means the books are broken, and is an error.
pub fn spendable(c: &HubChannel) -> Result<Msat, MsatError> {
    let latest = &c.machine.latest.state;
    let mine = Msat::new(match c.machine.me {
        Side::A => latest.balance_a_msat,
        Side::B => latest.balance_b_msat,
    });
    let queued = Msat::sum(c.queued.iter().map(|ch| match ch {
        Change::AddHtlc { amount_msat, .. } | Change::Pay { amount_msat } => {
            Msat::new(*amount_msat)
        }
        _ => Msat::ZERO,
    }))?;
    let in_flight = match &c.machine.in_flight {
        Some(InFlight::Proposed {
            change: Change::Pay { amount_msat } | Change::AddHtlc { amount_msat, .. },
            ..
        }) => Msat::new(*amount_msat),
        _ => Msat::ZERO,
    };
    mine.checked_sub(c.owed_msat)?
        .checked_sub(queued)?
        .checked_sub(in_flight)
}

/// What the peer holds in channel `c`.
pub fn peer_balance(c: &HubChannel) -> Msat {
    Msat::new(ChannelMachine::restore(c.machine.clone()).their_balance_msat())
}

/// What the hub holds in channel `c`.
pub fn hub_balance(c: &HubChannel) -> Msat {
    Msat::new(ChannelMachine::restore(c.machine.clone()).my_balance_msat())
}

/// One input's view of the state: the records it changed so far ahead of the state's.
pub(crate) struct Staging<'a> {
    pub(crate) st: &'a mut HubState,
    pub(crate) w: Writes,
    pub(crate) now_ms: u64,
    /// The sequence number this input's next ledger entry gets.
    next_seq: u64,
    /// The sequence number this input's next event gets.
    next_event_seq: u64,
}

impl<'a> Staging<'a> {
    pub(crate) fn new(st: &'a mut HubState, now_ms: u64) -> Staging<'a> {
        let (next_seq, next_event_seq) = (st.next_seq, st.next_event_seq);
        Staging {
            st,
            w: Writes::default(),
            now_ms,
            next_seq,
            next_event_seq,
        }
    }

    pub(crate) fn cfg(&self) -> &HubConfig {
        &self.st.params.cfg
    }

    pub(crate) fn me(&self) -> PublicKeyBytes {
        self.st.params.key.public()
    }

    /// The channel `id` as staged, loading it from the state first.
    pub(crate) fn channel(&mut self, id: &ChannelId) -> Option<&mut HubChannel> {
        if !self.w.channels.contains_key(id) {
            let c = self.st.channels.get(id)?.clone();
            self.w.channels.insert(*id, c);
        }
        self.w.channels.get_mut(id)
    }

    /// The channel `id` as this input sees it, without staging it.
    pub(crate) fn peek_channel(&self, id: &ChannelId) -> Option<&HubChannel> {
        self.w.channels.get(id).or_else(|| self.st.channels.get(id))
    }

    pub(crate) fn route(&mut self, hash: &Hash256) -> Option<&mut Route> {
        if !self.w.routes.contains_key(hash) {
            let r = self.st.routes.get(hash)?.clone();
            self.w.routes.insert(*hash, r);
        }
        self.w.routes.get_mut(hash)
    }

    pub(crate) fn peek_route(&self, hash: &Hash256) -> Option<&Route> {
        self.w.routes.get(hash).or_else(|| self.st.routes.get(hash))
    }

    pub(crate) fn fund(&self, optimae: &Hash256) -> Option<&Fund> {
        self.w
            .funds
            .get(optimae)
            .or_else(|| self.st.funds.get(optimae))
    }

    /// Whether `vote`'s fee is paid, counting what this input staged.
    pub(crate) fn vote_paid(&self, vote: &VoteRef) -> bool {
        self.st.paid_votes.contains_key(vote) || self.w.paid_votes.iter().any(|(v, _)| v == vote)
    }

    /// Adds ledger entry `payment` with the next sequence number; `payee` is whose feed lists it.
    pub(crate) fn record(
        &mut self,
        payment: Payment,
        payee: Option<PublicKeyBytes>,
    ) -> Result<(), HubError> {
        let mut p = payment;
        p.seq = self.next_seq;
        self.next_seq = self
            .next_seq
            .checked_add(1)
            .ok_or_else(|| HubError::Invalid("the ledger's sequence numbers ran out".into()))?;
        self.w.payments.push((p, payee));
        Ok(())
    }

    /// Adds an event with the next event sequence number.
    pub(crate) fn event(&mut self, kind: HubEventKind) -> Result<(), HubError> {
        let seq = self.next_event_seq;
        self.next_event_seq = seq
            .checked_add(1)
            .ok_or_else(|| HubError::Invalid("the events' sequence numbers ran out".into()))?;
        self.w.events.push(HubEvent {
            seq,
            at_ms: self.now_ms,
            kind,
        });
        Ok(())
    }

    /// The staged changes, applied to the state: what the caller persists.
    pub(crate) fn commit(self) -> Writes {
        self.st.apply(&self.w);
        self.st.next_seq = self.next_seq;
        self.st.next_event_seq = self.next_event_seq;
        self.w
    }

    /// Only the channels whose record changed stay staged (a pass that loads many channels
    /// writes few).
    pub(crate) fn drop_unchanged_channels(&mut self) {
        let st = &*self.st;
        self.w
            .channels
            .retain(|id, c| st.channels.get(id) != Some(&*c));
    }
}
