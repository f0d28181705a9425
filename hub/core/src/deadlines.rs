//! HTLC deadlines: what the watchtower does so that the hub never pays a payee without being
//! able to collect from the payer, and never leaves its money locked behind a payee that has
//! stopped answering.
//!
//! - **Learn**: a payee may take an HTLC on chain (`HtlcClaim`) rather than off chain. The
//!   preimage is then read from the chain's blocks and used towards the payer exactly like one
//!   shown off chain (`watch`).
//! - **Expire out**: an HTLC towards a payee that reached its expiry can no longer be taken
//!   (the channel machine and the chain both refuse its preimage from then on), so the payer's
//!   HTLC is given back and the hub proposes to take its own back. If the payee has not signed
//!   that within `margin` blocks, the hub closes the channel on chain; an unclaimed HTLC returns
//!   to the hub at settlement.
//! - **Claim in**: when the hub knows the preimage of a payer's HTLC and the payer still has
//!   not signed the fulfilment `margin` blocks before that HTLC's expiry, the hub posts its
//!   newest state and claims the HTLC on chain with the preimage, in the same pass (the claim
//!   follows the close in nonce order, so it lands after it).
//!
//! `margin` is [`crate::HubConfig::htlc_margin`].

use crate::booking::fail_route;
use crate::error::HubError;
use crate::io::{Condition, Mark};
use crate::pass::Pass;
use crate::records::{ChannelRole, RouteState};
use doin_channels::{Change, InFlight};
use doin_tx_core::channel::{ChannelId, Side};
use doin_tx_core::TxPayload;
use doin_types::{Hash256, Height};

/// Acts on the deadlines of the HTLCs on every channel still open off chain.
pub(crate) fn htlc_deadlines(pass: &mut Pass<'_, '_>) -> Result<(), HubError> {
    let with_htlcs: Vec<(ChannelId, ChannelRole)> = pass
        .s
        .st
        .channels
        .iter()
        .filter(|(_, c)| {
            c.confirmed && c.closed_at.is_none() && !c.machine.latest.state.htlcs.is_empty()
        })
        .map(|(id, c)| (*id, c.role))
        .collect();
    for (id, role) in with_htlcs {
        if pass.s.channel(&id).is_none_or(|c| c.closing) {
            continue;
        }
        match role {
            ChannelRole::Outgoing => expire_outgoing(pass, &id)?,
            ChannelRole::Incoming => claim_in_time(pass, &id)?,
        }
    }
    Ok(())
}

/// The hub's expired HTLCs towards a payee: the payer's side is released, the hub asks for
/// its own back, and closes on chain if the payee does not sign that in time.
fn expire_outgoing(pass: &mut Pass<'_, '_>, id: &ChannelId) -> Result<(), HubError> {
    let height = pass.snap.height;
    let c = pass.s.channel(id).ok_or(HubError::UnknownChannel(*id))?;
    let expired: Vec<(Hash256, Height)> = c
        .machine
        .latest
        .state
        .htlcs
        .iter()
        .filter(|h| h.offered_by == Side::A && h.expiry <= height)
        .map(|h| (h.payment_hash, h.expiry))
        .collect();
    let Some(oldest) = expired.iter().map(|(_, e)| *e).min() else {
        return Ok(());
    };
    for (hash, _) in &expired {
        if pass.s.peek_route(hash).map(|r| &r.state) == Some(&RouteState::Pending) {
            fail_route(pass.s, *hash);
            pass.report.expired.push(*hash);
        }
        let c = pass.s.channel(id).ok_or(HubError::UnknownChannel(*id))?;
        let expire = Change::ExpireHtlc {
            payment_hash: *hash,
        };
        let proposed = matches!(
            &c.machine.in_flight,
            Some(InFlight::Proposed { change, .. }) if *change == expire
        );
        if !proposed && !c.queued.contains(&expire) {
            c.queued.push(expire);
        }
    }
    if height >= oldest.saturating_add(pass.s.cfg().htlc_margin()) {
        tracing::warn!(channel = %id, "the payee does not give back an expired HTLC; closing on chain");
        force_close(pass, id)?;
    }
    Ok(())
}

/// A payer's HTLC the hub has the preimage of, close to its expiry and still not given up by
/// the payer: close and claim it on chain.
fn claim_in_time(pass: &mut Pass<'_, '_>, id: &ChannelId) -> Result<(), HubError> {
    let height = pass.snap.height;
    let margin = pass.s.cfg().htlc_margin();
    let c = pass
        .s
        .peek_channel(id)
        .ok_or(HubError::UnknownChannel(*id))?;
    let due: Vec<Hash256> = c
        .machine
        .latest
        .state
        .htlcs
        .iter()
        .filter(|h| h.offered_by == Side::A && height < h.expiry)
        .filter(|h| height.saturating_add(margin) >= h.expiry)
        .map(|h| h.payment_hash)
        .collect();
    if due.iter().any(|hash| pass.preimage_of(hash).is_some()) {
        tracing::warn!(channel = %id, "the payer has not released an HTLC the hub was paid for; claiming it on chain");
        force_close(pass, id)?;
    }
    Ok(())
}

/// Posts the hub's newest state of `id` and, if the chain takes it, claims at once every HTLC
/// in it the hub holds the preimage of.
fn force_close(pass: &mut Pass<'_, '_>, id: &ChannelId) -> Result<(), HubError> {
    let c = pass
        .s
        .peek_channel(id)
        .ok_or(HubError::UnknownChannel(*id))?;
    let latest = c.machine.latest.clone();
    let state = (latest.state.seq > 0).then(|| Box::new(latest.clone()));
    let close = pass.submit(
        TxPayload::ChannelForceClose {
            channel: *id,
            state,
        },
        Condition::Always,
        vec![Mark::ForceClosed { channel: *id }],
    );
    pass.closing_now.insert(*id);
    pass.claim_posted(id, &[(&latest.state, Condition::IfAccepted(close))]);
    Ok(())
}
