//! Verification funds (evaluator pay locked at reveal, see `docs/hub.md`): paying a fund out
//! once its optimae's decision is final — one verification fee to each agreeing evaluator the
//! hub has a channel to, once per vote, the rest back to the payer (off chain over the payer's
//! channel, or on chain when that channel is closing or closed); under
//! [`Unchanneled::Hold`] the fund waits for an agreeing evaluator without a channel until it
//! has one; a fund whose optimae is not decided (or that still waits) `fund_timeout_secs`
//! after it was funded goes back (whole, or what is left). Whether the hub takes a funding tick
//! is [`crate::policy`]'s; booking it when it completes is [`crate::booking`]'s.

use crate::config::Unchanneled;
use crate::error::HubError;
use crate::io::{Condition, Decision, Mark};
use crate::pass::Pass;
use crate::records::{Fund, HubEventKind, Payment, PaymentKind, VoteRef};
use crate::state::{spendable, Staging};
use doin_channels::Change;
use doin_tx_core::channel::MSAT_PER_UNIT;
use doin_tx_core::TxPayload;
use doin_types::{Amount, Msat};

/// Pays out every verification fund whose optimae is finally decided (as far as the
/// snapshot tells), gives back whole every fund whose optimae stayed undecided past the
/// timeout, and returns on chain what settled funds could not give back off chain. A fund
/// whose books do not add up is left alone and logged: it must not stop the watch from
/// guarding the channels.
pub(crate) fn release_funds(pass: &mut Pass<'_, '_>) {
    let snap = pass.snap;
    if let Some(main) = snap.main.as_ref() {
        let s = &mut *pass.s;
        let timeout_ms = s.cfg().fund_timeout_secs.saturating_mul(1_000);
        let open: Vec<Fund> =
            s.st.funds
                .values()
                .filter(|f| !f.settled)
                .cloned()
                .collect();
        for fund in open {
            let timed_out = s.now_ms.saturating_sub(fund.funded_at_ms) > timeout_ms;
            let (fee, agreeing) = match main.decisions.get(&fund.optimae) {
                Some(Ok(Decision::Final { fee, agreeing })) => (*fee, agreeing.clone()),
                Some(Ok(Decision::Pending | Decision::Unknown)) if timed_out => {
                    tracing::info!(optimae = %fund.optimae, "an optimae stayed undecided past the fund timeout: its fund goes back");
                    (Amount::ZERO, Vec::new())
                }
                Some(Ok(Decision::Pending | Decision::Unknown)) | None => continue,
                Some(Err(e)) => {
                    tracing::warn!(optimae = %fund.optimae, error = %e, "cannot read a decision");
                    continue;
                }
            };
            let optimae = fund.optimae;
            if let Err(e) = settle_fund(s, fund, fee, agreeing, timed_out) {
                tracing::error!(%optimae, error = %e, "a verification fund cannot be paid out");
            }
        }
    }
    return_on_chain(pass);
}

/// What settled funds kept because their payer's channel was closing or closed goes back on
/// chain: a transfer of the whole base units to the payer (less than one base unit stays, as
/// a payout rounds down). Booked once the chain takes it ([`Mark::FundReturnedOnChain`]).
fn return_on_chain(pass: &mut Pass<'_, '_>) {
    let kept: Vec<Fund> = pass
        .s
        .st
        .funds
        .values()
        .chain(pass.s.w.funds.values())
        .filter(|f| f.settled && f.returned_msat.is_zero())
        .cloned()
        .collect();
    let mut done = std::collections::BTreeSet::new();
    for fund in kept {
        // Staged this pass wins over the stored record.
        let Some(fund) = pass.s.fund(&fund.optimae).cloned() else {
            continue;
        };
        if !done.insert(fund.optimae) || !fund.returned_msat.is_zero() {
            continue;
        }
        let Some(payer) = pass
            .s
            .peek_channel(&fund.payer_channel)
            .filter(|c| c.closing || c.closed_at.is_some())
            .map(|c| c.peer)
        else {
            continue;
        };
        let Ok(back) = fund.funded_msat.checked_sub(fund.released_msat) else {
            continue;
        };
        let units = back.get() / MSAT_PER_UNIT;
        if units == 0 {
            continue;
        }
        pass.submit(
            TxPayload::Transfer {
                to: payer,
                amount: Amount::from_base_units(units),
            },
            Condition::Always,
            vec![Mark::FundReturnedOnChain {
                optimae: fund.optimae,
                returned_msat: Msat::new(units.saturating_mul(MSAT_PER_UNIT)),
            }],
        );
    }
}

/// The chain took the transfer that gives a fund's rest back: the fund and the ledger say so.
pub(crate) fn returned_on_chain(
    s: &mut Staging<'_>,
    optimae: &doin_types::Hash256,
    returned_msat: Msat,
) -> Result<(), HubError> {
    let Some(mut fund) = s.fund(optimae).cloned() else {
        return Ok(());
    };
    if !fund.returned_msat.is_zero() {
        return Ok(());
    }
    fund.returned_msat = returned_msat;
    let payer = s
        .peek_channel(&fund.payer_channel)
        .map(|c| c.peer)
        .ok_or_else(|| HubError::Internal("a fund's payer channel is gone".into()))?;
    let entry = Payment {
        seq: 0,
        at_ms: s.now_ms,
        kind: PaymentKind::FundReturn,
        channel: fund.payer_channel,
        counterparty: payer,
        amount_msat: returned_msat,
        fee_msat: Msat::ZERO,
        stream: None,
        payment_hash: None,
        // On chain: no channel state carries it.
        state_seq: 0,
        optimae: Some(fund.optimae),
    };
    s.record(entry, None)?;
    s.w.funds.insert(fund.optimae, fund);
    Ok(())
}

/// Pays `fund` out: a fee to each agreeing evaluator it can, the rest back to the payer;
/// under [`Unchanneled::Hold`] the fund stays open (what it paid so far staged) while an
/// agreeing evaluator it could pay has no channel yet and the fund has not `timed_out`.
/// Staged only if all of it adds up.
fn settle_fund(
    s: &mut Staging<'_>,
    mut fund: Fund,
    fee: Amount,
    agreeing: Vec<doin_types::PublicKeyBytes>,
    timed_out: bool,
) -> Result<(), HubError> {
    // Staged apart: a fund that fails half-way leaves nothing behind.
    let before = (
        s.w.channels.clone(),
        s.w.paid_votes.len(),
        s.w.payments.len(),
    );
    let released_before = fund.released_msat;
    let hold = s.cfg().unchanneled_evaluators == Unchanneled::Hold && !timed_out;
    let result = pay_fund(s, &mut fund, fee, agreeing, hold);
    let settled = match result {
        Ok(settled) => settled,
        Err(e) => {
            s.w.channels = before.0;
            s.w.paid_votes.truncate(before.1);
            s.w.payments.truncate(before.2);
            return Err(e);
        }
    };
    if !settled {
        // Held for an evaluator without a channel: only what it paid now is written.
        if fund.released_msat != released_before {
            s.w.funds.insert(fund.optimae, fund);
        }
        return Ok(());
    }
    s.event(HubEventKind::FundSettled {
        optimae: fund.optimae,
        payer_channel: fund.payer_channel,
        funded_msat: fund.funded_msat,
        released_msat: fund.released_msat,
        returned_msat: fund.returned_msat,
        evaluators_paid: u32::try_from(fund.paid.len()).unwrap_or(u32::MAX),
    })?;
    s.w.funds.insert(fund.optimae, fund);
    Ok(())
}

/// Releases the fees it can; whether the fund is then settled (the rest going back), which it
/// is not when `hold` and an agreeing evaluator it could pay has no channel from the hub.
fn pay_fund(
    s: &mut Staging<'_>,
    fund: &mut Fund,
    fee: Amount,
    agreeing: Vec<doin_types::PublicKeyBytes>,
    hold: bool,
) -> Result<bool, HubError> {
    let fee = Msat::from_amount(fee)?;
    let max_owed = s.cfg().max_owed();
    let mut waiting = false;
    // `agreeing` lists an evaluator once per agreeing vote: one that agreed in round 1 and
    // again in round 2 is paid twice. Every evaluator's first vote comes before anyone's
    // second, so a fund too small for both rounds pays each evaluator once first.
    let mut votes: Vec<(usize, doin_types::PublicKeyBytes)> = Vec::with_capacity(agreeing.len());
    for evaluator in agreeing {
        let nth = votes.iter().filter(|(_, e)| *e == evaluator).count();
        votes.push((nth, evaluator));
    }
    votes.sort();
    for (nth, evaluator) in votes {
        let remaining = fund.funded_msat.checked_sub(fund.released_msat)?;
        if fee.is_zero() || remaining < fee {
            break;
        }
        let vote = VoteRef {
            optimae: fund.optimae,
            evaluator,
        };
        // The fund marks the vote paid with its first payment to the evaluator, so a mark
        // without one is a tick's that named the vote: that evaluator was paid by its payer
        // directly, and the fund pays it nothing.
        let by_fund = fund.paid.iter().filter(|(e, _)| *e == evaluator).count();
        if by_fund > nth || (by_fund == 0 && s.vote_paid(&vote)) {
            continue;
        }
        let Some(payee_channel) = s.st.payee_channel(&evaluator) else {
            waiting = true;
            continue;
        };
        let hub_fee = s
            .cfg()
            .fee
            .fee(fee)
            .ok_or(HubError::Money(doin_types::MsatError::Overflow))?;
        // A fee the hub's own charge eats whole pays the evaluator nothing: not released.
        let forward = match fee.checked_sub(hub_fee) {
            Ok(f) if !f.is_zero() => f,
            _ => continue,
        };
        let Some(pc) = s.channel(&payee_channel) else {
            continue;
        };
        let owed = pc.owed_msat.checked_add(forward)?;
        if owed > max_owed || spendable(pc)? < forward {
            continue;
        }
        pc.owed_msat = owed;
        let state_seq = pc.machine.latest.state.seq;
        fund.released_msat = fund.released_msat.checked_add(fee)?;
        fund.paid.push((evaluator, fee));
        if !s.vote_paid(&vote) {
            s.w.paid_votes.push((vote, fund.payer_channel));
        }
        let entry = Payment {
            seq: 0,
            at_ms: s.now_ms,
            kind: PaymentKind::FundRelease,
            channel: payee_channel,
            counterparty: evaluator,
            amount_msat: fee,
            fee_msat: hub_fee,
            stream: None,
            payment_hash: None,
            state_seq,
            optimae: Some(fund.optimae),
        };
        s.record(entry, None)?;
    }
    if hold && waiting {
        return Ok(false);
    }
    // The rest goes back off chain, over a payer channel that is still open (over a closing
    // or closed one it goes on chain: `return_on_chain`; until then returned stays 0).
    let back = fund.funded_msat.checked_sub(fund.released_msat)?;
    if !back.is_zero() {
        if let Some(c) = s
            .channel(&fund.payer_channel)
            .filter(|c| c.confirmed && !c.closing && c.closed_at.is_none())
        {
            c.queued.push(Change::Pay {
                amount_msat: back.get(),
            });
            fund.returned_msat = back;
        }
    }
    fund.settled = true;
    Ok(true)
}
