//! One watch pass's decisions in progress: the staged changes, the report, the transactions
//! to submit in order (with the conditions and marks of each), and the channels being closed
//! on chain. Shared by [`crate::watch`] and [`crate::deadlines`].

use crate::io::{ChainSnapshot, Condition, Mark, PendingTx, Submission, WatchReport};
use crate::state::Staging;
use doin_tx_core::channel::{ChannelId, ChannelState};
use doin_tx_core::TxPayload;
use doin_types::Hash256;
use std::collections::{BTreeMap, BTreeSet};

/// One pass's decisions in progress.
pub(crate) struct Pass<'a, 'b> {
    pub(crate) s: &'a mut Staging<'b>,
    pub(crate) snap: &'a ChainSnapshot,
    pub(crate) report: WatchReport,
    pub(crate) submissions: Vec<Submission>,
    /// Channels this pass closes on chain (if the chain takes the close): the hub proposes
    /// nothing more on them.
    pub(crate) closing_now: BTreeSet<ChannelId>,
}

impl Pass<'_, '_> {
    /// Adds a submission; returns its index (for the conditions of later ones).
    pub(crate) fn submit(
        &mut self,
        payload: TxPayload,
        when: Condition,
        on_accept: Vec<Mark>,
    ) -> usize {
        self.submissions.push(Submission {
            tx: PendingTx::Payload(payload),
            when,
            on_accept,
            on_refusal: Vec::new(),
        });
        self.submissions.len() - 1
    }

    /// Claims on chain every HTLC the peer offered in the state that will stand (`states`:
    /// each candidate state with the condition under which it stands) whose preimage the hub
    /// knows, before its expiry and once each.
    pub(crate) fn claim_posted(&mut self, id: &ChannelId, states: &[(&ChannelState, Condition)]) {
        let height = self.snap.height;
        let Some(c) = self.s.peek_channel(id) else {
            return;
        };
        let peer = crate::booking::peer_side(c.role);
        // Each hash once, with the conditions under which its HTLC is in the standing state.
        let mut wanted: BTreeMap<Hash256, Vec<Condition>> = BTreeMap::new();
        for (state, when) in states {
            for h in state
                .htlcs
                .iter()
                .filter(|h| h.offered_by == peer && height < h.expiry)
            {
                if c.claims_submitted.contains(&h.payment_hash) {
                    continue;
                }
                wanted.entry(h.payment_hash).or_default().push(*when);
            }
        }
        for (hash, conditions) in wanted {
            let Some(preimage) = self.preimage_of(&hash) else {
                continue;
            };
            // In the state that stands whichever way its condition goes: claimed whatever
            // happens; else only where it stands.
            let either_way = conditions.iter().any(|c| match c {
                Condition::IfAccepted(i) => conditions.contains(&Condition::IfRefused(*i)),
                _ => false,
            });
            let when = if either_way {
                Condition::Always
            } else {
                conditions[0]
            };
            self.submit(
                TxPayload::HtlcClaim {
                    channel: *id,
                    preimage,
                },
                when,
                vec![Mark::ClaimSubmitted { channel: *id, hash }],
            );
        }
    }

    /// The preimage the hub may claim a payer's HTLC with: of a route the payee fulfilled,
    /// or of the hub's own invoice a payer paid.
    pub(crate) fn preimage_of(&self, hash: &Hash256) -> Option<[u8; 32]> {
        if let Some(crate::records::RouteState::Fulfilled { preimage }) =
            self.s.peek_route(hash).map(|r| &r.state)
        {
            return Some(*preimage);
        }
        self.s
            .st
            .invoices
            .get(hash)
            .filter(|i| i.paid_by.is_some())
            .map(|i| i.preimage)
    }
}
