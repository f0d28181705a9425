//! HTLC deadlines: what the watchtower does so that the hub never pays a payee without being
//! able to collect from the payer, and never leaves its money locked behind a payee that has
//! stopped answering.
//!
//! - **Learn**: a payee may take an HTLC on chain (`HtlcClaim`) rather than off chain. The
//!   preimage is then read from the chain's blocks and used towards the payer exactly like one
//!   shown off chain.
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
//! `margin` is half the hub's `cltv_delta` (at least two blocks: one for the close, one
//! spare): the blocks between a route's two expiries are split between the payee's deadline
//! and the hub's.
//!
//! Everything here runs inside [`Hub::watch`], under the state lock, and goes into its batch.

use crate::flow::{fail_route, fulfil_route, staged_channel};
use crate::hub::{Hub, HubError, Staged, State};
use crate::store::{ChannelRole, HubChannel, HubInvoice, Route, RouteState};
use crate::watch::WatchReport;
use doin_channels::{Change, InFlight};
use doin_tx_core::channel::{sha256, ChannelId, ChannelState, Side};
use doin_tx_core::TxPayload;
use doin_types::{Hash256, Height};
use std::collections::BTreeMap;

/// Most blocks read for revealed preimages in one pass; the rest wait for the next pass, so
/// a hub far behind never holds its state lock for long.
const MAX_BLOCKS_PER_PASS: u64 = 1_000;

/// A route as this pass sees it (staged changes first).
fn route_state<'a>(
    staged: &'a BTreeMap<Hash256, Route>,
    state: &'a BTreeMap<Hash256, Route>,
    hash: &Hash256,
) -> Option<&'a RouteState> {
    staged
        .get(hash)
        .or_else(|| state.get(hash))
        .map(|r| &r.state)
}

/// The preimages the hub may claim a payer's HTLC with: of routes the payee fulfilled, and of
/// the hub's own invoices a payer paid.
pub(crate) struct Preimages<'a> {
    pub(crate) staged_routes: &'a BTreeMap<Hash256, Route>,
    pub(crate) routes: &'a BTreeMap<Hash256, Route>,
    pub(crate) invoices: &'a BTreeMap<Hash256, HubInvoice>,
}

impl Preimages<'_> {
    fn of(&self, hash: &Hash256) -> Option<[u8; 32]> {
        if let Some(RouteState::Fulfilled { preimage }) =
            route_state(self.staged_routes, self.routes, hash)
        {
            return Some(*preimage);
        }
        self.invoices
            .get(hash)
            .filter(|i| i.paid_by.is_some())
            .map(|i| i.preimage)
    }
}

impl Hub {
    /// Blocks before an HTLC's expiry by which the hub acts on chain (see the module docs).
    pub(crate) fn htlc_margin(&self) -> u64 {
        (self.cfg.cltv_delta / 2).max(2)
    }

    /// Reads the final blocks since the last pass for preimages payees revealed on chain
    /// for HTLCs the hub forwarded.
    pub(crate) fn learn_claimed_preimages(
        &self,
        st: &mut State,
        staged: &mut Staged,
        height: Height,
        report: &mut WatchReport,
    ) -> Result<(), HubError> {
        if height <= st.claims_scanned {
            return Ok(());
        }
        let from = st.claims_scanned.saturating_add(1);
        let to = height.min(from.saturating_add(MAX_BLOCKS_PER_PASS - 1));
        for (channel, preimage) in self.chain.htlc_claims(from, to).map_err(HubError::Chain)? {
            let hash = Hash256(sha256(&preimage));
            let forwarded_there = st.routes.get(&hash).is_some_and(|r| r.outgoing == channel);
            if forwarded_there && fulfil_route(st, staged, preimage) {
                tracing::info!(payment_hash = %hash, %channel, "preimage learned from the chain");
                report.learned.push(hash);
            }
        }
        staged.claims_scanned = Some(to);
        Ok(())
    }

    /// Acts on the deadlines of the HTLCs on every channel still open off chain.
    pub(crate) fn htlc_deadlines(
        &self,
        st: &mut State,
        staged: &mut Staged,
        height: Height,
        report: &mut WatchReport,
    ) -> Result<(), HubError> {
        let with_htlcs: Vec<(ChannelId, ChannelRole)> = st
            .channels
            .iter()
            .filter(|(_, c)| {
                c.confirmed && c.closed_at.is_none() && !c.machine.latest.state.htlcs.is_empty()
            })
            .map(|(id, c)| (*id, c.role))
            .collect();
        for (id, role) in with_htlcs {
            if staged_channel(st, staged, &id).is_none_or(|c| c.closing) {
                continue;
            }
            match role {
                ChannelRole::Outgoing => self.expire_outgoing(st, staged, &id, height, report)?,
                ChannelRole::Incoming => self.claim_in_time(st, staged, &id, height, report)?,
            }
        }
        Ok(())
    }

    /// The hub's expired HTLCs towards a payee: the payer's side is released, the hub asks
    /// for its own back, and closes on chain if the payee does not sign that in time.
    fn expire_outgoing(
        &self,
        st: &mut State,
        staged: &mut Staged,
        id: &ChannelId,
        height: Height,
        report: &mut WatchReport,
    ) -> Result<(), HubError> {
        let c = staged_channel(st, staged, id).ok_or(HubError::UnknownChannel(*id))?;
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
            if route_state(&staged.routes, &st.routes, hash) == Some(&RouteState::Pending) {
                fail_route(st, staged, *hash);
                report.expired.push(*hash);
            }
            let c = staged_channel(st, staged, id).ok_or(HubError::UnknownChannel(*id))?;
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
        if height >= oldest.saturating_add(self.htlc_margin()) {
            tracing::warn!(channel = %id, "the payee does not give back an expired HTLC; closing on chain");
            self.force_close(st, staged, id, height, report)?;
        }
        Ok(())
    }

    /// A payer's HTLC the hub has the preimage of, close to its expiry and still not given
    /// up by the payer: close and claim it on chain.
    fn claim_in_time(
        &self,
        st: &mut State,
        staged: &mut Staged,
        id: &ChannelId,
        height: Height,
        report: &mut WatchReport,
    ) -> Result<(), HubError> {
        let margin = self.htlc_margin();
        let c = staged_channel(st, staged, id).ok_or(HubError::UnknownChannel(*id))?;
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
        let preimages = Preimages {
            staged_routes: &staged.routes,
            routes: &st.routes,
            invoices: &st.invoices,
        };
        let known = due.iter().any(|hash| preimages.of(hash).is_some());
        if known {
            tracing::warn!(channel = %id, "the payer has not released an HTLC the hub was paid for; claiming it on chain");
            self.force_close(st, staged, id, height, report)?;
        }
        Ok(())
    }

    /// Posts the hub's newest state of `id` and claims at once every HTLC in it the hub holds
    /// the preimage of.
    fn force_close(
        &self,
        st: &mut State,
        staged: &mut Staged,
        id: &ChannelId,
        height: Height,
        report: &mut WatchReport,
    ) -> Result<(), HubError> {
        let c = staged_channel(st, staged, id).ok_or(HubError::UnknownChannel(*id))?;
        let latest = c.machine.latest.clone();
        let state = (latest.state.seq > 0).then(|| Box::new(latest.clone()));
        if !self.submit_or_retry(
            id,
            TxPayload::ChannelForceClose {
                channel: *id,
                state,
            },
        )? {
            return Ok(());
        }
        report.force_closed.push(*id);
        let Some(c) = staged.channels.get_mut(id) else {
            return Ok(());
        };
        c.closing = true;
        let preimages = Preimages {
            staged_routes: &staged.routes,
            routes: &st.routes,
            invoices: &st.invoices,
        };
        self.claim_posted(id, c, &latest.state, &preimages, height, report)
    }

    /// Claims on chain, once each and before its expiry, every HTLC the peer offered in the
    /// `posted` state whose preimage the hub knows.
    pub(crate) fn claim_posted(
        &self,
        id: &ChannelId,
        c: &mut HubChannel,
        posted: &ChannelState,
        preimages: &Preimages<'_>,
        height: Height,
        report: &mut WatchReport,
    ) -> Result<(), HubError> {
        let peer = match c.role {
            ChannelRole::Incoming => Side::A,
            ChannelRole::Outgoing => Side::B,
        };
        for h in posted
            .htlcs
            .iter()
            .filter(|h| h.offered_by == peer && height < h.expiry)
        {
            let Some(preimage) = preimages.of(&h.payment_hash) else {
                continue;
            };
            if c.claims_submitted.contains(&h.payment_hash) {
                continue;
            }
            let claim = TxPayload::HtlcClaim {
                channel: *id,
                preimage,
            };
            if self.submit_or_retry(id, claim)? {
                c.claims_submitted.push(h.payment_hash);
                report.claimed.push(h.payment_hash);
            }
        }
        Ok(())
    }
}
