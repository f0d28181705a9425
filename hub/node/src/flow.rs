//! How payments move through the hub: which proposals of a peer the hub signs, what a
//! completed update sets in motion on the other channel, and the hub's own proposals.
//!
//! Called by [`Hub::handle`] under the state lock; everything it changes goes into the one
//! [`Staged`] batch of that input.

use crate::hub::{now, now_ms, Hub, HubError, ProposalContext, Staged, State, MAX_SPLIT_SHARES};
use crate::store::{ChannelRole, HubChannel, Payment, PaymentKind, Route, RouteState};
use doin_channels::{parse_invoice, Change, ChannelMachine, Event};
use doin_tx_core::channel::{sha256, ChannelId, Side};
use doin_types::{Hash256, Height, PublicKeyBytes};
use std::collections::{BTreeMap, BTreeSet};

/// The channel `id` as staged, loading it from the state first.
pub(crate) fn staged_channel<'a>(
    st: &State,
    staged: &'a mut Staged,
    id: &ChannelId,
) -> Option<&'a mut HubChannel> {
    if !staged.channels.contains_key(id) {
        let c = st.channels.get(id)?.clone();
        staged.channels.insert(*id, c);
    }
    staged.channels.get_mut(id)
}

fn staged_route<'a>(st: &State, staged: &'a mut Staged, hash: &Hash256) -> Option<&'a mut Route> {
    if !staged.routes.contains_key(hash) {
        let r = st.routes.get(hash)?.clone();
        staged.routes.insert(*hash, r);
    }
    staged.routes.get_mut(hash)
}

/// The payee's side of a routed payment is gone (refused or expired): the route fails and
/// the hub gives the payer's HTLC back.
pub(crate) fn fail_route(st: &State, staged: &mut Staged, payment_hash: Hash256) {
    if let Some(r) = staged_route(st, staged, &payment_hash) {
        r.state = RouteState::Failed;
        let incoming = r.incoming;
        if let Some(ic) = staged_channel(st, staged, &incoming) {
            ic.queued.push(Change::FailHtlc { payment_hash });
        }
    }
}

/// The hub learned `preimage` from the payee (off chain or on chain): the route is paid
/// out, and the hub claims the payer's HTLC with it. Idempotent: a route already fulfilled,
/// failed or unknown is left alone.
pub(crate) fn fulfil_route(st: &mut State, staged: &mut Staged, preimage: [u8; 32]) -> bool {
    let hash = Hash256(sha256(&preimage));
    let Some(r) = staged_route(st, staged, &hash) else {
        return false;
    };
    if r.state != RouteState::Pending {
        return false;
    }
    r.state = RouteState::Fulfilled { preimage };
    let (incoming, outgoing, payee, out, fee) = (
        r.incoming,
        r.outgoing,
        r.payee,
        r.amount_out_msat,
        r.amount_in_msat.saturating_sub(r.amount_out_msat),
    );
    if let Some(ic) = staged_channel(st, staged, &incoming) {
        ic.queued.push(Change::FulfillHtlc { preimage });
    }
    let state_seq = staged_channel(st, staged, &outgoing)
        .map(|c| c.machine.latest.state.seq)
        .unwrap_or(0);
    let payment = Payment {
        seq: 0,
        at_ms: now_ms(),
        kind: PaymentKind::RoutedOut,
        channel: outgoing,
        counterparty: payee,
        amount_msat: out,
        fee_msat: fee,
        stream: None,
        payment_hash: Some(hash),
        state_seq,
        optimae: None,
    };
    Hub::record(st, staged, payment, Some(payee));
    true
}

/// The side the peer is on, seen from the hub.
fn peer_side(role: ChannelRole) -> Side {
    match role {
        ChannelRole::Incoming => Side::A,
        ChannelRole::Outgoing => Side::B,
    }
}

impl Hub {
    pub(crate) fn record(
        st: &mut State,
        staged: &mut Staged,
        payment: Payment,
        payee: Option<PublicKeyBytes>,
    ) {
        let mut p = payment;
        p.seq = st.next_seq;
        st.next_seq = st.next_seq.saturating_add(1);
        staged.payments.push((p, payee));
    }

    /// Whether the hub signs `change` proposed by the peer of `id`: the machine checks the
    /// mechanics; this checks the hub's policy (streams, invoices, fees, liquidity).
    pub(crate) fn check_proposal(
        &self,
        st: &State,
        id: &ChannelId,
        channel: &HubChannel,
        change: &Change,
        ctx: &ProposalContext,
        height: Height,
    ) -> Result<(), String> {
        match (channel.role, change) {
            (ChannelRole::Incoming, Change::Pay { amount_msat }) => {
                if let Some(optimae) = ctx.fund {
                    return self.check_funding(st, id, ctx, &optimae);
                }
                if !ctx.split.is_empty() {
                    return self.check_split_tick(st, id, channel, ctx, *amount_msat);
                }
                let Some(sid) = ctx.stream else {
                    return Ok(());
                };
                let s = Self::stream_paid_from(st, id, &sid)?;
                if let Some(vote) = &ctx.vote {
                    self.check_vote_pay(st, id, channel, s, vote, *amount_msat)?;
                }
                let forward = self.check_share(s, *amount_msat)?;
                self.check_payee_room(st, &s.payee_channel, forward)
            }
            (
                ChannelRole::Incoming,
                Change::AddHtlc {
                    amount_msat,
                    payment_hash,
                    expiry,
                },
            ) => {
                let text = ctx
                    .invoice
                    .as_deref()
                    .ok_or("an HTLC through the hub names the invoice it pays")?;
                let inv = parse_invoice(text, self.chain.network(), now(), None)
                    .map_err(|e| e.to_string())?;
                if inv.payment_hash != *payment_hash {
                    return Err("the HTLC's hash is not the invoice's".into());
                }
                if inv.payee == self.key.public() {
                    // Payable to the hub itself: taken at once with the preimage it kept.
                    let own = st
                        .invoices
                        .get(payment_hash)
                        .ok_or("the hub made no such invoice")?;
                    if own.paid_by.is_some() {
                        return Err("the invoice is paid already".into());
                    }
                    if *amount_msat < own.amount_msat {
                        return Err(format!(
                            "the HTLC must carry the invoice's {} msat",
                            own.amount_msat
                        ));
                    }
                    if *expiry <= height.saturating_add(1) {
                        return Err("the HTLC expires too soon to be taken".into());
                    }
                    return Ok(());
                }
                if st.routes.contains_key(payment_hash) {
                    return Err("a payment with this hash already went through the hub".into());
                }
                let fee = self.cfg.fee.fee(inv.amount_msat).ok_or("fee overflows")?;
                if *amount_msat < inv.amount_msat.saturating_add(fee) {
                    return Err(format!(
                        "the HTLC must carry the invoice's {} msat plus the hub's fee of {fee}",
                        inv.amount_msat
                    ));
                }
                let out_expiry = expiry.saturating_sub(self.cfg.cltv_delta);
                if out_expiry < height.saturating_add(inv.min_final_cltv_blocks) {
                    return Err("the HTLC expires too soon to forward".into());
                }
                let payee = Self::payee_channel(st, &inv.payee)
                    .and_then(|c| st.channels.get(&c))
                    .ok_or("the hub has no open channel to the invoice's payee")?;
                if Self::spendable(payee) < inv.amount_msat {
                    return Err("the hub has not enough liquidity towards the payee".into());
                }
                Ok(())
            }
            (ChannelRole::Incoming, Change::ExpireHtlc { payment_hash }) => {
                match st.routes.get(payment_hash).map(|r| &r.state) {
                    Some(RouteState::Fulfilled { .. }) => {
                        Err("the payee was paid; the hub claims this HTLC".into())
                    }
                    Some(RouteState::Pending) => {
                        Err("the payment is still pending towards the payee".into())
                    }
                    _ => Ok(()),
                }
            }
            (ChannelRole::Incoming, _) => {
                Err("the hub offers no HTLCs on a payer's channel".into())
            }
            (ChannelRole::Outgoing, Change::AddHtlc { .. } | Change::ExpireHtlc { .. }) => {
                Err("payees do not route through the hub".into())
            }
            (ChannelRole::Outgoing, _) => Ok(()),
        }
    }

    /// The open stream `sid`, paid from channel `id`.
    fn stream_paid_from<'a>(
        st: &'a State,
        id: &ChannelId,
        sid: &Hash256,
    ) -> Result<&'a crate::store::Stream, String> {
        let s = st.streams.get(sid).ok_or("no such stream")?;
        if s.closed || s.payer_channel != *id {
            return Err("the stream is closed or not paid from this channel".into());
        }
        Ok(s)
    }

    /// Whether stream `s` may take `amount_msat` more (its budget, the hub's fee): what the
    /// hub forwards to the payee for it.
    fn check_share(&self, s: &crate::store::Stream, amount_msat: u64) -> Result<u64, String> {
        let total = s.received_msat.checked_add(amount_msat).ok_or("overflow")?;
        if total > s.budget_msat {
            return Err(format!(
                "the tick takes the stream past its budget of {} msat",
                s.budget_msat
            ));
        }
        let fee = self.cfg.fee.fee(amount_msat).ok_or("fee overflows")?;
        amount_msat
            .checked_sub(fee)
            .filter(|f| *f > 0)
            .ok_or_else(|| format!("the tick does not cover the hub's fee of {fee} msat"))
    }

    /// Whether the hub can owe the payee of `payee_channel` `forward` msat more.
    fn check_payee_room(
        &self,
        st: &State,
        payee_channel: &ChannelId,
        forward: u64,
    ) -> Result<(), String> {
        let payee = st
            .channels
            .get(payee_channel)
            .ok_or("the payee's channel is gone")?;
        if payee.closing || payee.closed_at.is_some() || payee.close_requested_at.is_some() {
            return Err("the payee's channel is closing: the stream ends".into());
        }
        if payee.owed_msat.saturating_add(forward) > self.cfg.max_owed_msat
            || Self::spendable(payee) < forward
        {
            return Err("the hub has not enough liquidity towards the payee".into());
        }
        Ok(())
    }

    /// A split tick: one `Pay` of channel `id` paying each share to its stream. Every share
    /// is checked as a tick of its own; the hub's room towards a payee is checked for the sum
    /// of the shares that go to it.
    fn check_split_tick(
        &self,
        st: &State,
        id: &ChannelId,
        channel: &HubChannel,
        ctx: &ProposalContext,
        amount_msat: u64,
    ) -> Result<(), String> {
        if ctx.stream.is_some() || ctx.invoice.is_some() || ctx.vote.is_some() {
            return Err("a split tick names only its shares (no stream, invoice or vote)".into());
        }
        if ctx.split.len() > MAX_SPLIT_SHARES {
            return Err(format!(
                "a split tick pays at most {MAX_SPLIT_SHARES} streams"
            ));
        }
        let mut sum = 0u64;
        let mut seen = BTreeSet::new();
        let mut to_payee: BTreeMap<ChannelId, u64> = BTreeMap::new();
        for share in &ctx.split {
            if !seen.insert(share.stream) {
                return Err("a split tick names a stream twice".into());
            }
            sum = sum.checked_add(share.amount_msat).ok_or("overflow")?;
            let s = Self::stream_paid_from(st, id, &share.stream)?;
            if let Some(vote) = share.vote(s.payee) {
                self.check_vote_pay(st, id, channel, s, &vote, share.amount_msat)?;
            }
            let forward = self.check_share(s, share.amount_msat)?;
            let owed = to_payee.entry(s.payee_channel).or_insert(0);
            *owed = owed.checked_add(forward).ok_or("overflow")?;
        }
        if sum != amount_msat {
            return Err(format!(
                "the shares add up to {sum} msat, the tick pays {amount_msat} msat"
            ));
        }
        to_payee
            .iter()
            .try_for_each(|(payee, forward)| self.check_payee_room(st, payee, *forward))
    }

    /// A tick that pays a vote's verification fee: the vote is the stream payee's, on the
    /// main chain and agreeing with the decision, the tick is exactly the fee, and the vote
    /// has not been paid (a retransmission of the proposal that pays it is fine).
    fn check_vote_pay(
        &self,
        st: &State,
        id: &ChannelId,
        channel: &HubChannel,
        stream: &crate::store::Stream,
        vote: &crate::store::VoteRef,
        amount_msat: u64,
    ) -> Result<(), String> {
        if vote.evaluator != stream.payee {
            return Err("the vote is not the stream payee's".into());
        }
        if let Some(paid_by) = st.paid_votes.get(vote) {
            // The proposal in flight (a single tick or a split tick's share) pays this vote.
            let retransmitted = paid_by == id
                && channel.pending_context.as_ref().is_some_and(|p| {
                    p.vote.as_ref() == Some(vote)
                        || p.split.iter().any(|share| {
                            share.stream == stream.id && share.vote(stream.payee) == Some(*vote)
                        })
                });
            if !retransmitted {
                return Err("this vote's fee is paid already".into());
            }
        }
        let main = self
            .main
            .as_ref()
            .ok_or("this hub does not see the main chain: it cannot release evaluator pay")?;
        let fee = main
            .vote_fee(&vote.optimae, &vote.evaluator)?
            .ok_or("the main chain holds no agreeing vote of this evaluator on this optimae")?;
        let fee_msat = fee
            .base_units()
            .checked_mul(doin_tx_core::channel::MSAT_PER_UNIT)
            .ok_or("the fee overflows")?;
        if amount_msat != fee_msat {
            return Err(format!(
                "a vote pays exactly its verification fee of {fee_msat} msat"
            ));
        }
        Ok(())
    }

    /// Books `amount_msat` of a tick into stream `s`: the stream's totals, what the hub now
    /// owes its payee, and the stream's payment record (returned, to be recorded).
    fn book_tick(
        &self,
        st: &State,
        staged: &mut Staged,
        mut s: crate::store::Stream,
        amount_msat: u64,
        ledger: &dyn Fn(PaymentKind, u64, u64, Option<Hash256>, Option<Hash256>) -> Payment,
    ) -> Payment {
        let fee = self.cfg.fee.fee(amount_msat).unwrap_or(amount_msat);
        let forward = amount_msat.saturating_sub(fee);
        s.received_msat = s.received_msat.saturating_add(amount_msat);
        s.fees_msat = s.fees_msat.saturating_add(fee);
        s.forwarded_msat = s.forwarded_msat.saturating_add(forward);
        s.ticks = s.ticks.saturating_add(1);
        if let Some(pc) = staged_channel(st, staged, &s.payee_channel) {
            pc.owed_msat = pc.owed_msat.saturating_add(forward);
        }
        let p = ledger(PaymentKind::StreamIn, amount_msat, fee, Some(s.id), None);
        staged.streams.insert(s.id, s);
        p
    }

    /// Acts on one event of channel `id`'s machine.
    pub(crate) fn on_event(
        &self,
        st: &mut State,
        staged: &mut Staged,
        id: &ChannelId,
        event: Event,
    ) -> Result<(), HubError> {
        let role = staged_channel(st, staged, id)
            .ok_or(HubError::UnknownChannel(*id))?
            .role;
        let peer = staged_channel(st, staged, id)
            .ok_or(HubError::UnknownChannel(*id))?
            .peer;
        let state_seq = staged_channel(st, staged, id)
            .map(|c| c.machine.latest.state.seq)
            .unwrap_or(0);
        let ledger = |kind, amount_msat, fee_msat, stream, payment_hash| Payment {
            seq: 0,
            at_ms: now_ms(),
            kind,
            channel: *id,
            counterparty: peer,
            amount_msat,
            fee_msat,
            stream,
            payment_hash,
            state_seq,
            optimae: None,
        };
        match event {
            Event::Completed {
                proposer, change, ..
            } if proposer == peer_side(role) => match (role, change) {
                (ChannelRole::Incoming, Change::Pay { amount_msat }) => {
                    let ctx = staged_channel(st, staged, id)
                        .and_then(|c| c.pending_context.take())
                        .unwrap_or_default();
                    if let Some(optimae) = ctx.fund {
                        self.book_funding(st, staged, id, optimae, amount_msat);
                        let p = Payment {
                            optimae: Some(optimae),
                            ..ledger(PaymentKind::FundIn, amount_msat, 0, None, None)
                        };
                        Self::record(st, staged, p, None);
                        return Ok(());
                    }
                    if !ctx.split.is_empty() {
                        // Checked when the proposal came in; the shares add up to the Pay.
                        for share in &ctx.split {
                            if let Some(s) = st.streams.get(&share.stream).cloned() {
                                let p = self.book_tick(st, staged, s, share.amount_msat, &ledger);
                                Self::record(st, staged, p, None);
                            }
                        }
                        return Ok(());
                    }
                    match ctx.stream.and_then(|sid| st.streams.get(&sid).cloned()) {
                        Some(s) => {
                            let p = self.book_tick(st, staged, s, amount_msat, &ledger);
                            Self::record(st, staged, p, None);
                        }
                        None => {
                            let p = ledger(PaymentKind::Received, amount_msat, 0, None, None);
                            Self::record(st, staged, p, Some(self.key.public()));
                        }
                    }
                }
                (
                    ChannelRole::Incoming,
                    Change::AddHtlc {
                        amount_msat,
                        payment_hash,
                        expiry,
                    },
                ) => {
                    let ctx = staged_channel(st, staged, id)
                        .and_then(|c| c.pending_context.take())
                        .unwrap_or_default();
                    if let Some(own) = st.invoices.get(&payment_hash).cloned() {
                        // An invoice of the hub's own: take the HTLC with its preimage.
                        let mut own = own;
                        own.paid_by = Some(*id);
                        let preimage = own.preimage;
                        staged.invoices.insert(payment_hash, own);
                        if let Some(c) = staged_channel(st, staged, id) {
                            c.queued.push(Change::FulfillHtlc { preimage });
                        }
                        let p = ledger(
                            PaymentKind::Received,
                            amount_msat,
                            0,
                            None,
                            Some(payment_hash),
                        );
                        Self::record(st, staged, p, Some(self.key.public()));
                        return Ok(());
                    }
                    // Checked when the proposal came in; parsed again for its terms.
                    let inv = ctx
                        .invoice
                        .as_deref()
                        .ok_or_else(|| HubError::Invalid("the invoice is gone".into()))
                        .and_then(|t| {
                            parse_invoice(t, self.chain.network(), now(), None).map_err(Into::into)
                        });
                    let outgoing = inv
                        .as_ref()
                        .ok()
                        .and_then(|inv| Self::payee_channel(st, &inv.payee));
                    match (inv, outgoing) {
                        (Ok(inv), Some(out)) => {
                            let expiry_out = expiry.saturating_sub(self.cfg.cltv_delta);
                            staged.routes.insert(
                                payment_hash,
                                Route {
                                    payment_hash,
                                    incoming: *id,
                                    outgoing: out,
                                    payee: inv.payee,
                                    amount_in_msat: amount_msat,
                                    amount_out_msat: inv.amount_msat,
                                    expiry_in: expiry,
                                    expiry_out,
                                    state: RouteState::Pending,
                                },
                            );
                            if let Some(oc) = staged_channel(st, staged, &out) {
                                oc.queued.push(Change::AddHtlc {
                                    amount_msat: inv.amount_msat,
                                    payment_hash,
                                    expiry: expiry_out,
                                });
                            }
                        }
                        // Cannot forward after all (the payee's channel went away): give the
                        // payer's HTLC back.
                        _ => {
                            if let Some(c) = staged_channel(st, staged, id) {
                                c.queued.push(Change::FailHtlc { payment_hash });
                            }
                        }
                    }
                }
                (ChannelRole::Incoming, Change::ExpireHtlc { payment_hash }) => {
                    if let Some(r) = staged_route(st, staged, &payment_hash) {
                        r.state = RouteState::Failed;
                    }
                }
                (ChannelRole::Outgoing, Change::FulfillHtlc { preimage }) => {
                    fulfil_route(st, staged, preimage);
                }
                (ChannelRole::Outgoing, Change::FailHtlc { payment_hash }) => {
                    fail_route(st, staged, payment_hash);
                }
                (ChannelRole::Outgoing, Change::Pay { amount_msat }) => {
                    let p = ledger(PaymentKind::Received, amount_msat, 0, None, None);
                    Self::record(st, staged, p, Some(self.key.public()));
                }
                _ => {}
            },
            // The hub's own proposal completed.
            Event::Completed { change, .. } => match (role, change) {
                // What a settled verification fund did not pay out, back to the payer.
                (ChannelRole::Incoming, Change::Pay { amount_msat }) => {
                    let p = ledger(PaymentKind::FundReturn, amount_msat, 0, None, None);
                    Self::record(st, staged, p, None);
                }
                (ChannelRole::Outgoing, Change::Pay { amount_msat }) => {
                    if let Some(c) = staged_channel(st, staged, id) {
                        c.in_flight_owed_msat = 0;
                    }
                    let p = ledger(PaymentKind::StreamOut, amount_msat, 0, None, None);
                    Self::record(st, staged, p, Some(peer));
                }
                (ChannelRole::Outgoing, Change::ExpireHtlc { payment_hash }) => {
                    fail_route(st, staged, payment_hash);
                }
                _ => {}
            },
            Event::Dropped { change } | Event::Rejected { change, .. } => {
                let Some(c) = staged_channel(st, staged, id) else {
                    return Ok(());
                };
                match change {
                    // A fund's return the payer did not take now: proposed again later.
                    pay @ Change::Pay { .. } if c.role == ChannelRole::Incoming => {
                        c.queued.insert(0, pay)
                    }
                    Change::Pay { .. } => {
                        c.owed_msat = c.owed_msat.saturating_add(c.in_flight_owed_msat);
                        c.in_flight_owed_msat = 0;
                    }
                    // The peer will not take it now: propose it again later. (A payee that
                    // keeps refusing an HTLC lets it expire; the watch then takes it back.)
                    other => c.queued.insert(0, other),
                }
            }
        }
        Ok(())
    }

    /// Proposes the hub's next change on every staged channel that is free: a queued change
    /// first, else one `Pay` of everything owed.
    pub(crate) fn flush_staged(&self, st: &State, staged: &mut Staged, height: Height) {
        let ids: Vec<ChannelId> = staged.channels.keys().copied().collect();
        for id in ids {
            let Some(c) = staged_channel(st, staged, &id) else {
                continue;
            };
            if !c.confirmed || c.closing || c.closed_at.is_some() {
                continue;
            }
            let mut machine = ChannelMachine::restore(c.machine.clone());
            if machine.in_flight().is_some() {
                continue;
            }
            let change = if !c.queued.is_empty() {
                c.queued.remove(0)
            } else if c.role == ChannelRole::Outgoing && c.owed_msat > 0 {
                let amount = c.owed_msat.min(machine.my_balance_msat());
                if amount == 0 {
                    continue;
                }
                c.owed_msat -= amount;
                c.in_flight_owed_msat = amount;
                Change::Pay {
                    amount_msat: amount,
                }
            } else {
                continue;
            };
            match machine.propose(change.clone(), height) {
                Ok(_) => c.machine = machine.snapshot().clone(),
                Err(e) => {
                    tracing::warn!(channel = %id, "the hub cannot propose {change:?}: {e}");
                    match change {
                        // Kept for a later try (a fund's return towards a payer).
                        Change::Pay { .. } if c.role == ChannelRole::Incoming => {
                            c.queued.insert(0, change)
                        }
                        Change::Pay { .. } => {
                            c.owed_msat = c.owed_msat.saturating_add(c.in_flight_owed_msat);
                            c.in_flight_owed_msat = 0;
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    /// Proposes whatever waits on every channel (after a restart, or when a payee comes
    /// back). Returns how many channels got a proposal.
    pub fn flush_all(&self) -> Result<usize, HubError> {
        let height = self.chain.height();
        let mut st = self.state.lock();
        let mut staged = Staged::default();
        for (id, c) in &st.channels {
            let free = c.machine.in_flight.is_none();
            if free && (!c.queued.is_empty() || c.owed_msat > 0) {
                staged.channels.insert(*id, c.clone());
            }
        }
        let before: Vec<_> = staged
            .channels
            .iter()
            .map(|(id, c)| (*id, c.machine.in_flight.is_some()))
            .collect();
        self.flush_staged(&st, &mut staged, height);
        let proposed = before
            .iter()
            .filter(|(id, had)| {
                !had && staged
                    .channels
                    .get(id)
                    .is_some_and(|c| c.machine.in_flight.is_some())
            })
            .count();
        let (durable, payments) = self.stage(&mut st, staged)?;
        drop(st);
        self.finish(durable, payments)?;
        Ok(proposed)
    }
}
