//! Which proposals of a peer the hub signs. The channel machine checks the mechanics (the
//! sequence, the signatures, the balances); this checks the hub's policy: streams and their
//! budgets, invoices, fees, the hub's liquidity towards each payee, evaluator pay. A refusal
//! is a reason sent back to the peer in a `Reject`; nothing is signed or written for it.

use crate::io::{ChainSnapshot, Decision, ProposalContext, MAX_SPLIT_SHARES};
use crate::records::{ChannelRole, HubChannel, RouteState, Stream, VoteRef};
use crate::state::{spendable, HubState};
use doin_channels::{parse_invoice, Change};
use doin_tx_core::channel::ChannelId;
use doin_types::{Hash256, Msat};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Whether the hub signs `change` proposed by the peer of `id`.
pub(crate) fn check_proposal(
    st: &HubState,
    snap: &ChainSnapshot,
    now: Duration,
    id: &ChannelId,
    channel: &HubChannel,
    change: &Change,
    ctx: &ProposalContext,
) -> Result<(), String> {
    let height = snap.height;
    match (channel.role, change) {
        (ChannelRole::Incoming, Change::Pay { amount_msat }) => {
            let amount = Msat::new(*amount_msat);
            if let Some(optimae) = ctx.fund {
                return check_funding(st, snap, id, ctx, &optimae);
            }
            if !ctx.split.is_empty() {
                return check_split_tick(st, snap, id, channel, ctx, amount);
            }
            let Some(sid) = ctx.stream else {
                return Ok(());
            };
            let s = stream_paid_from(st, id, &sid)?;
            if let Some(vote) = &ctx.vote {
                check_vote_pay(st, snap, id, channel, s, vote, amount)?;
            }
            let forward = check_share(st, s, amount)?;
            check_payee_room(st, &s.payee_channel, forward)
        }
        (
            ChannelRole::Incoming,
            Change::AddHtlc {
                amount_msat,
                payment_hash,
                expiry,
            },
        ) => {
            let amount = Msat::new(*amount_msat);
            let text = ctx
                .invoice
                .as_deref()
                .ok_or("an HTLC through the hub names the invoice it pays")?;
            let inv =
                parse_invoice(text, st.params.network, now, None).map_err(|e| e.to_string())?;
            if inv.payment_hash != *payment_hash {
                return Err("the HTLC's hash is not the invoice's".into());
            }
            if inv.payee == st.params.public_key() {
                // Payable to the hub itself: taken at once with the preimage it kept.
                let own = st
                    .invoices
                    .get(payment_hash)
                    .ok_or("the hub made no such invoice")?;
                if own.paid_by.is_some() {
                    return Err("the invoice is paid already".into());
                }
                if amount < own.amount_msat {
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
            let invoice_amount = Msat::new(inv.amount_msat);
            let fee = st
                .params
                .cfg
                .fee
                .fee(invoice_amount)
                .ok_or("fee overflows")?;
            let needed = invoice_amount.checked_add(fee).map_err(|e| e.to_string())?;
            if amount < needed {
                return Err(format!(
                    "the HTLC must carry the invoice's {} msat plus the hub's fee of {fee}",
                    inv.amount_msat
                ));
            }
            let out_expiry = expiry.saturating_sub(st.params.cfg.cltv_delta);
            if out_expiry < height.saturating_add(inv.min_final_cltv_blocks) {
                return Err("the HTLC expires too soon to forward".into());
            }
            let payee = st
                .payee_channel(&inv.payee)
                .and_then(|c| st.channels.get(&c))
                .ok_or("the hub has no open channel to the invoice's payee")?;
            if spendable(payee).map_err(|e| e.to_string())? < invoice_amount {
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
        (ChannelRole::Incoming, _) => Err("the hub offers no HTLCs on a payer's channel".into()),
        (ChannelRole::Outgoing, Change::AddHtlc { .. } | Change::ExpireHtlc { .. }) => {
            Err("payees do not route through the hub".into())
        }
        (ChannelRole::Outgoing, _) => Ok(()),
    }
}

/// The open stream `sid`, paid from channel `id`.
fn stream_paid_from<'a>(
    st: &'a HubState,
    id: &ChannelId,
    sid: &Hash256,
) -> Result<&'a Stream, String> {
    let s = st.streams.get(sid).ok_or("no such stream")?;
    if s.closed || s.payer_channel != *id {
        return Err("the stream is closed or not paid from this channel".into());
    }
    Ok(s)
}

/// Whether stream `s` may take `amount` more (its budget, the hub's fee): what the hub
/// forwards to the payee for it.
fn check_share(st: &HubState, s: &Stream, amount: Msat) -> Result<Msat, String> {
    let total = s
        .received_msat
        .checked_add(amount)
        .map_err(|e| e.to_string())?;
    if total > s.budget_msat {
        return Err(format!(
            "the tick takes the stream past its budget of {} msat",
            s.budget_msat
        ));
    }
    let fee = st.params.cfg.fee.fee(amount).ok_or("fee overflows")?;
    amount
        .checked_sub(fee)
        .ok()
        .filter(|f| !f.is_zero())
        .ok_or_else(|| format!("the tick does not cover the hub's fee of {fee} msat"))
}

/// Whether the hub can owe the payee of `payee_channel` `forward` msat more.
fn check_payee_room(st: &HubState, payee_channel: &ChannelId, forward: Msat) -> Result<(), String> {
    let payee = st
        .channels
        .get(payee_channel)
        .ok_or("the payee's channel is gone")?;
    if payee.closing || payee.closed_at.is_some() || payee.close_requested_at.is_some() {
        return Err("the payee's channel is closing: the stream ends".into());
    }
    let owed = payee
        .owed_msat
        .checked_add(forward)
        .map_err(|e| e.to_string())?;
    if owed > st.params.cfg.max_owed() || spendable(payee).map_err(|e| e.to_string())? < forward {
        return Err("the hub has not enough liquidity towards the payee".into());
    }
    Ok(())
}

/// A split tick: one `Pay` of channel `id` paying each share to its stream. Every share is
/// checked as a tick of its own; the hub's room towards a payee is checked for the sum of the
/// shares that go to it.
fn check_split_tick(
    st: &HubState,
    snap: &ChainSnapshot,
    id: &ChannelId,
    channel: &HubChannel,
    ctx: &ProposalContext,
    amount: Msat,
) -> Result<(), String> {
    if ctx.stream.is_some() || ctx.invoice.is_some() || ctx.vote.is_some() {
        return Err("a split tick names only its shares (no stream, invoice or vote)".into());
    }
    if ctx.split.len() > MAX_SPLIT_SHARES {
        return Err(format!(
            "a split tick pays at most {MAX_SPLIT_SHARES} streams"
        ));
    }
    let mut sum = Msat::ZERO;
    let mut seen = BTreeSet::new();
    let mut to_payee: BTreeMap<ChannelId, Msat> = BTreeMap::new();
    for share in &ctx.split {
        if !seen.insert(share.stream) {
            return Err("a split tick names a stream twice".into());
        }
        sum = sum
            .checked_add(share.amount_msat)
            .map_err(|e| e.to_string())?;
        let s = stream_paid_from(st, id, &share.stream)?;
        if let Some(vote) = share.vote(s.payee) {
            check_vote_pay(st, snap, id, channel, s, &vote, share.amount_msat)?;
        }
        let forward = check_share(st, s, share.amount_msat)?;
        let owed = to_payee.entry(s.payee_channel).or_insert(Msat::ZERO);
        *owed = owed.checked_add(forward).map_err(|e| e.to_string())?;
    }
    if sum != amount {
        return Err(format!(
            "the shares add up to {sum} msat, the tick pays {amount} msat"
        ));
    }
    to_payee
        .iter()
        .try_for_each(|(payee, forward)| check_payee_room(st, payee, *forward))
}

/// A tick that pays a vote's verification fee: the vote is the stream payee's, on the main
/// chain and agreeing with the decision, the tick is exactly the fee, and the vote has not
/// been paid (a retransmission of the proposal that pays it is fine).
fn check_vote_pay(
    st: &HubState,
    snap: &ChainSnapshot,
    id: &ChannelId,
    channel: &HubChannel,
    stream: &Stream,
    vote: &VoteRef,
    amount: Msat,
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
    let main = snap
        .main
        .as_ref()
        .ok_or("this hub does not see the main chain: it cannot release evaluator pay")?;
    let fee = main
        .vote_fees
        .get(vote)
        .ok_or("the main chain was not asked about this vote; try again")?
        .clone()
        .map_err(|e| e.to_string())?
        .ok_or("the main chain holds no agreeing vote of this evaluator on this optimae")?;
    let fee = Msat::from_amount(fee).map_err(|_| "the fee overflows")?;
    if amount != fee {
        return Err(format!(
            "a vote pays exactly its verification fee of {fee} msat"
        ));
    }
    Ok(())
}

/// A funding tick: channel `id` puts money into `optimae`'s verification fund while the main
/// chain has the optimae revealed and not finally decided.
fn check_funding(
    st: &HubState,
    snap: &ChainSnapshot,
    id: &ChannelId,
    ctx: &ProposalContext,
    optimae: &Hash256,
) -> Result<(), String> {
    if ctx.stream.is_some() || ctx.invoice.is_some() || ctx.vote.is_some() || !ctx.split.is_empty()
    {
        return Err("a funding tick names only its optimae".into());
    }
    if let Some(f) = st.funds.get(optimae) {
        if f.settled {
            return Err("this optimae's fund is settled already".into());
        }
        if f.payer_channel != *id {
            return Err("this optimae's fund is paid from another channel".into());
        }
    }
    let main = snap
        .main
        .as_ref()
        .ok_or("this hub does not see the main chain: it cannot hold verification funds")?;
    let decision = main
        .decisions
        .get(optimae)
        .ok_or("the main chain was not asked about this optimae; try again")?
        .clone()
        .map_err(|e| e.to_string())?;
    match decision {
        Decision::Pending => Ok(()),
        Decision::Unknown => Err("the main chain has no such optimae revealed".into()),
        Decision::Final { .. } => {
            Err("this optimae is decided already: there is nothing to fund".into())
        }
    }
}
