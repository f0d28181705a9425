//! Verification funds (DESIGN §7, evaluator pay locked at reveal): whether the hub takes a
//! funding tick, and paying a fund out once its optimae's decision is final — one
//! verification fee to each agreeing evaluator the hub has a channel to, once per vote, the
//! rest back to the payer. Booking a funding tick when it completes is `flow`'s (with the
//! other ticks); the main chain is reached only through [`crate::ports::MainPort`].

use crate::flow::staged_channel;
use crate::hub::{now_ms, Hub, ProposalContext, Staged, State};
use crate::ports::Decision;
use crate::store::{Payment, PaymentKind};
use doin_channels::Change;
use doin_tx_core::channel::ChannelId;
use doin_types::Hash256;

impl Hub {
    /// A funding tick: channel `id` puts money into `optimae`'s verification fund while the
    /// main chain has the optimae revealed and not finally decided.
    pub(crate) fn check_funding(
        &self,
        st: &State,
        id: &ChannelId,
        ctx: &ProposalContext,
        optimae: &Hash256,
    ) -> Result<(), String> {
        if ctx.stream.is_some()
            || ctx.invoice.is_some()
            || ctx.vote.is_some()
            || !ctx.split.is_empty()
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
        let main = self
            .main
            .as_ref()
            .ok_or("this hub does not see the main chain: it cannot hold verification funds")?;
        match main.decision(optimae)? {
            Decision::Pending => Ok(()),
            Decision::Unknown => Err("the main chain has no such optimae revealed".into()),
            Decision::Final { .. } => {
                Err("this optimae is decided already: there is nothing to fund".into())
            }
        }
    }

    /// A funding tick of `amount_msat` from channel `id` completed (checked when it came in):
    /// into `optimae`'s fund. What cannot join it any more goes straight back to the payer:
    /// a fund settled between the hub's signature and the Confirm pays nothing more out, and
    /// a fund another channel opened meanwhile returns its rest to that channel only.
    pub(crate) fn book_funding(
        &self,
        st: &State,
        staged: &mut Staged,
        id: &ChannelId,
        optimae: Hash256,
        amount_msat: u64,
    ) {
        let existing = staged
            .funds
            .get(&optimae)
            .or_else(|| st.funds.get(&optimae))
            .cloned();
        let mut fund = match existing {
            Some(f) if f.payer_channel != *id => {
                if let Some(c) = staged_channel(st, staged, id) {
                    c.queued.push(Change::Pay { amount_msat });
                }
                return;
            }
            Some(f) => f,
            None => crate::store::Fund {
                optimae,
                payer_channel: *id,
                funded_msat: 0,
                released_msat: 0,
                returned_msat: 0,
                paid: Vec::new(),
                funded_at_ms: now_ms(),
                settled: false,
            },
        };
        fund.funded_msat = fund.funded_msat.saturating_add(amount_msat);
        if fund.settled {
            if let Some(c) = staged_channel(st, staged, id) {
                c.queued.push(Change::Pay { amount_msat });
                fund.returned_msat = fund.returned_msat.saturating_add(amount_msat);
            }
        }
        staged.funds.insert(optimae, fund);
    }

    /// Pays out every verification fund whose optimae is finally decided: one verification fee
    /// to each agreeing evaluator the hub has a channel to (owed to it like stream money, less
    /// the hub's fee), once per vote; what is left goes back to the payer on its channel.
    pub(crate) fn release_funds(&self, st: &mut State, staged: &mut Staged) {
        let Some(main) = self.main.as_ref() else {
            return;
        };
        let open: Vec<crate::store::Fund> =
            st.funds.values().filter(|f| !f.settled).cloned().collect();
        for mut fund in open {
            let (fee, agreeing) = match main.decision(&fund.optimae) {
                Ok(Decision::Final { fee, agreeing }) => (fee, agreeing),
                Ok(Decision::Pending | Decision::Unknown) => continue,
                Err(e) => {
                    tracing::warn!(optimae = %fund.optimae, error = %e, "cannot read a decision");
                    continue;
                }
            };
            let fee_msat = fee
                .base_units()
                .checked_mul(doin_tx_core::channel::MSAT_PER_UNIT)
                .unwrap_or(0);
            for evaluator in agreeing {
                let remaining = fund.funded_msat.saturating_sub(fund.released_msat);
                if fee_msat == 0 || remaining < fee_msat {
                    break;
                }
                let vote = crate::store::VoteRef {
                    optimae: fund.optimae,
                    evaluator,
                };
                let paid = st.paid_votes.contains_key(&vote)
                    || staged.paid_votes.iter().any(|(v, _)| *v == vote);
                if paid {
                    continue;
                }
                let Some(payee_channel) = Self::payee_channel(st, &evaluator) else {
                    continue;
                };
                let hub_fee = self.cfg.fee.fee(fee_msat).unwrap_or(fee_msat);
                let forward = fee_msat.saturating_sub(hub_fee);
                let Some(pc) = staged_channel(st, staged, &payee_channel) else {
                    continue;
                };
                let room = pc.owed_msat.saturating_add(forward) <= self.cfg.max_owed_msat
                    && Self::spendable(pc) >= forward;
                if forward == 0 || !room {
                    continue;
                }
                pc.owed_msat = pc.owed_msat.saturating_add(forward);
                let state_seq = pc.machine.latest.state.seq;
                fund.released_msat = fund.released_msat.saturating_add(fee_msat);
                fund.paid.push((evaluator, fee_msat));
                staged.paid_votes.push((vote, fund.payer_channel));
                let entry = Payment {
                    seq: 0,
                    at_ms: now_ms(),
                    kind: PaymentKind::FundRelease,
                    channel: payee_channel,
                    counterparty: evaluator,
                    amount_msat: fee_msat,
                    fee_msat: hub_fee,
                    stream: None,
                    payment_hash: None,
                    state_seq,
                    optimae: Some(fund.optimae),
                };
                Self::record(st, staged, entry, None);
            }
            // The rest goes back off chain, over a payer channel that is still open (a closed
            // one leaves it with the hub, shown by the fund: returned stays 0).
            let back = fund.funded_msat.saturating_sub(fund.released_msat);
            if back > 0 {
                if let Some(c) = staged_channel(st, staged, &fund.payer_channel)
                    .filter(|c| c.confirmed && !c.closing && c.closed_at.is_none())
                {
                    c.queued.push(Change::Pay { amount_msat: back });
                    fund.returned_msat = back;
                }
            }
            fund.settled = true;
            staged.funds.insert(fund.optimae, fund);
        }
    }
}
