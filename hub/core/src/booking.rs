//! What a completed update sets in motion: the books of streams, routes and funds, what the
//! hub now owes each payee, the ledger entries, and the changes the hub queues on the other
//! channel (an HTLC forwarded, a fulfilment or failure passed back).

use crate::error::HubError;
use crate::records::{ChannelRole, Fund, Payment, PaymentKind, Route, RouteState, Stream};
use crate::state::Staging;
use doin_channels::{parse_invoice, Change, Event};
use doin_tx_core::channel::{sha256, ChannelId, Side};
use doin_types::{Hash256, Msat, PublicKeyBytes};
use std::time::Duration;

/// The side the peer is on, seen from the hub.
pub(crate) fn peer_side(role: ChannelRole) -> Side {
    match role {
        ChannelRole::Incoming => Side::A,
        ChannelRole::Outgoing => Side::B,
    }
}

/// The payee's side of a routed payment is gone (refused or expired): the route fails and the
/// hub gives the payer's HTLC back.
pub(crate) fn fail_route(s: &mut Staging<'_>, payment_hash: Hash256) {
    if let Some(r) = s.route(&payment_hash) {
        r.state = RouteState::Failed;
        let incoming = r.incoming;
        if let Some(ic) = s.channel(&incoming) {
            ic.queued.push(Change::FailHtlc { payment_hash });
        }
    }
}

/// The hub learned `preimage` from the payee (off chain or on chain): the route is paid out,
/// and the hub claims the payer's HTLC with it. Idempotent: a route already fulfilled, failed
/// or unknown is left alone.
pub(crate) fn fulfil_route(s: &mut Staging<'_>, preimage: [u8; 32]) -> Result<bool, HubError> {
    let hash = Hash256(sha256(&preimage));
    let Some(r) = s.route(&hash) else {
        return Ok(false);
    };
    if r.state != RouteState::Pending {
        return Ok(false);
    }
    r.state = RouteState::Fulfilled { preimage };
    let (incoming, outgoing, payee, out) = (r.incoming, r.outgoing, r.payee, r.amount_out_msat);
    // The forward was checked to leave the hub its fee: what came in covers what went out.
    let fee = r.amount_in_msat.checked_sub(r.amount_out_msat)?;
    if let Some(ic) = s.channel(&incoming) {
        ic.queued.push(Change::FulfillHtlc { preimage });
    }
    let state_seq = s
        .channel(&outgoing)
        .map(|c| c.machine.latest.state.seq)
        .unwrap_or(0);
    let payment = Payment {
        seq: 0,
        at_ms: s.now_ms,
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
    s.record(payment, Some(payee))?;
    Ok(true)
}

/// A ledger entry of channel `id`'s peer at the channel's current state.
struct Ledger {
    channel: ChannelId,
    peer: PublicKeyBytes,
    state_seq: u64,
    at_ms: u64,
}

impl Ledger {
    fn entry(
        &self,
        kind: PaymentKind,
        amount: Msat,
        fee: Msat,
        stream: Option<Hash256>,
        payment_hash: Option<Hash256>,
    ) -> Payment {
        Payment {
            seq: 0,
            at_ms: self.at_ms,
            kind,
            channel: self.channel,
            counterparty: self.peer,
            amount_msat: amount,
            fee_msat: fee,
            stream,
            payment_hash,
            state_seq: self.state_seq,
            optimae: None,
        }
    }
}

/// Books `amount` of a tick into stream `stream`: the stream's totals, what the hub now owes
/// its payee, and the stream's ledger entry.
fn book_tick(
    s: &mut Staging<'_>,
    ledger: &Ledger,
    mut stream: Stream,
    amount: Msat,
) -> Result<(), HubError> {
    // The tick was checked to cover the fee when it came in.
    let fee = s
        .cfg()
        .fee
        .fee(amount)
        .ok_or(HubError::Money(doin_types::MsatError::Overflow))?;
    let forward = amount.checked_sub(fee)?;
    stream.received_msat = stream.received_msat.checked_add(amount)?;
    stream.fees_msat = stream.fees_msat.checked_add(fee)?;
    stream.forwarded_msat = stream.forwarded_msat.checked_add(forward)?;
    stream.ticks = stream
        .ticks
        .checked_add(1)
        .ok_or(HubError::Money(doin_types::MsatError::Overflow))?;
    if let Some(pc) = s.channel(&stream.payee_channel) {
        pc.owed_msat = pc.owed_msat.checked_add(forward)?;
    }
    let p = ledger.entry(PaymentKind::StreamIn, amount, fee, Some(stream.id), None);
    s.w.streams.insert(stream.id, stream);
    s.record(p, None)
}

/// A funding tick of `amount` from channel `id` completed (checked when it came in): into
/// `optimae`'s fund. What cannot join it any more goes straight back to the payer: a fund
/// settled between the hub's signature and the Confirm pays nothing more out, and a fund
/// another channel opened meanwhile returns its rest to that channel only.
fn book_funding(
    s: &mut Staging<'_>,
    id: &ChannelId,
    optimae: Hash256,
    amount: Msat,
) -> Result<(), HubError> {
    let existing = s.fund(&optimae).cloned();
    let mut fund = match existing {
        Some(f) if f.payer_channel != *id => {
            if let Some(c) = s.channel(id) {
                c.queued.push(Change::Pay {
                    amount_msat: amount.get(),
                });
            }
            return Ok(());
        }
        Some(f) => f,
        None => Fund {
            optimae,
            payer_channel: *id,
            funded_msat: Msat::ZERO,
            released_msat: Msat::ZERO,
            returned_msat: Msat::ZERO,
            paid: Vec::new(),
            funded_at_ms: s.now_ms,
            settled: false,
        },
    };
    fund.funded_msat = fund.funded_msat.checked_add(amount)?;
    if fund.settled {
        if let Some(c) = s.channel(id) {
            c.queued.push(Change::Pay {
                amount_msat: amount.get(),
            });
            fund.returned_msat = fund.returned_msat.checked_add(amount)?;
        }
    }
    s.w.funds.insert(optimae, fund);
    Ok(())
}

/// Acts on one event of channel `id`'s machine.
pub(crate) fn on_event(
    s: &mut Staging<'_>,
    now: Duration,
    id: &ChannelId,
    event: Event,
) -> Result<(), HubError> {
    let c = s.channel(id).ok_or(HubError::UnknownChannel(*id))?;
    let (role, peer) = (c.role, c.peer);
    let ledger = Ledger {
        channel: *id,
        peer,
        state_seq: c.machine.latest.state.seq,
        at_ms: s.now_ms,
    };
    let me = s.me();
    match event {
        Event::Completed {
            proposer, change, ..
        } if proposer == peer_side(role) => match (role, change) {
            (ChannelRole::Incoming, Change::Pay { amount_msat }) => {
                let amount = Msat::new(amount_msat);
                let ctx = s
                    .channel(id)
                    .and_then(|c| c.pending_context.take())
                    .unwrap_or_default();
                if let Some(optimae) = ctx.fund {
                    book_funding(s, id, optimae, amount)?;
                    let p = Payment {
                        optimae: Some(optimae),
                        ..ledger.entry(PaymentKind::FundIn, amount, Msat::ZERO, None, None)
                    };
                    return s.record(p, None);
                }
                if !ctx.split.is_empty() {
                    // Checked when the proposal came in; the shares add up to the Pay.
                    for share in &ctx.split {
                        if let Some(stream) = s.st.streams.get(&share.stream).cloned() {
                            book_tick(s, &ledger, stream, share.amount_msat)?;
                        }
                    }
                    return Ok(());
                }
                match ctx.stream.and_then(|sid| s.st.streams.get(&sid).cloned()) {
                    Some(stream) => book_tick(s, &ledger, stream, amount)?,
                    None => {
                        let p = ledger.entry(PaymentKind::Received, amount, Msat::ZERO, None, None);
                        s.record(p, Some(me))?;
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
                let amount = Msat::new(amount_msat);
                let ctx = s
                    .channel(id)
                    .and_then(|c| c.pending_context.take())
                    .unwrap_or_default();
                if let Some(own) = s.st.invoices.get(&payment_hash).cloned() {
                    // An invoice of the hub's own: take the HTLC with its preimage.
                    let mut own = own;
                    own.paid_by = Some(*id);
                    let preimage = own.preimage;
                    s.w.invoices.insert(payment_hash, own);
                    if let Some(c) = s.channel(id) {
                        c.queued.push(Change::FulfillHtlc { preimage });
                    }
                    let p = ledger.entry(
                        PaymentKind::Received,
                        amount,
                        Msat::ZERO,
                        None,
                        Some(payment_hash),
                    );
                    return s.record(p, Some(me));
                }
                // Checked when the proposal came in; parsed again for its terms.
                let network = s.st.params.network;
                let inv = ctx
                    .invoice
                    .as_deref()
                    .ok_or_else(|| HubError::Invalid("the invoice is gone".into()))
                    .and_then(|t| parse_invoice(t, network, now, None).map_err(Into::into));
                let outgoing = inv
                    .as_ref()
                    .ok()
                    .and_then(|inv| s.st.payee_channel(&inv.payee));
                match (inv, outgoing) {
                    (Ok(inv), Some(out)) => {
                        let expiry_out = expiry.saturating_sub(s.cfg().cltv_delta);
                        s.w.routes.insert(
                            payment_hash,
                            Route {
                                payment_hash,
                                incoming: *id,
                                outgoing: out,
                                payee: inv.payee,
                                amount_in_msat: amount,
                                amount_out_msat: Msat::new(inv.amount_msat),
                                expiry_in: expiry,
                                expiry_out,
                                state: RouteState::Pending,
                            },
                        );
                        if let Some(oc) = s.channel(&out) {
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
                        if let Some(c) = s.channel(id) {
                            c.queued.push(Change::FailHtlc { payment_hash });
                        }
                    }
                }
            }
            (ChannelRole::Incoming, Change::ExpireHtlc { payment_hash }) => {
                if let Some(r) = s.route(&payment_hash) {
                    r.state = RouteState::Failed;
                }
            }
            (ChannelRole::Outgoing, Change::FulfillHtlc { preimage }) => {
                fulfil_route(s, preimage)?;
            }
            (ChannelRole::Outgoing, Change::FailHtlc { payment_hash }) => {
                fail_route(s, payment_hash);
            }
            (ChannelRole::Outgoing, Change::Pay { amount_msat }) => {
                let p = ledger.entry(
                    PaymentKind::Received,
                    Msat::new(amount_msat),
                    Msat::ZERO,
                    None,
                    None,
                );
                s.record(p, Some(me))?;
            }
            _ => {}
        },
        // The hub's own proposal completed.
        Event::Completed { change, .. } => match (role, change) {
            // What a settled verification fund did not pay out, back to the payer.
            (ChannelRole::Incoming, Change::Pay { amount_msat }) => {
                let p = ledger.entry(
                    PaymentKind::FundReturn,
                    Msat::new(amount_msat),
                    Msat::ZERO,
                    None,
                    None,
                );
                s.record(p, None)?;
            }
            (ChannelRole::Outgoing, Change::Pay { amount_msat }) => {
                if let Some(c) = s.channel(id) {
                    c.in_flight_owed_msat = Msat::ZERO;
                }
                let p = ledger.entry(
                    PaymentKind::StreamOut,
                    Msat::new(amount_msat),
                    Msat::ZERO,
                    None,
                    None,
                );
                s.record(p, Some(peer))?;
            }
            (ChannelRole::Outgoing, Change::ExpireHtlc { payment_hash }) => {
                fail_route(s, payment_hash);
            }
            _ => {}
        },
        Event::Dropped { change } | Event::Rejected { change, .. } => {
            let Some(c) = s.channel(id) else {
                return Ok(());
            };
            match change {
                // A fund's return the payer did not take now: proposed again later.
                pay @ Change::Pay { .. } if c.role == ChannelRole::Incoming => {
                    c.queued.insert(0, pay)
                }
                Change::Pay { .. } => {
                    c.owed_msat = c.owed_msat.checked_add(c.in_flight_owed_msat)?;
                    c.in_flight_owed_msat = Msat::ZERO;
                }
                // The peer will not take it now: propose it again later. (A payee that keeps
                // refusing an HTLC lets it expire; the watch then takes it back.)
                other => c.queued.insert(0, other),
            }
        }
    }
    Ok(())
}
