//! Verification funds (evaluator pay locked at reveal, see `docs/hub.md`): paying a fund out
//! once its optimae's decision is final — one verification fee to each agreeing evaluator the
//! hub has a channel to, once per vote, the rest back to the payer. Whether the hub takes a
//! funding tick is [`crate::policy`]'s; booking it when it completes is
//! [`crate::booking`]'s.

use crate::error::HubError;
use crate::io::{ChainSnapshot, Decision};
use crate::records::{Fund, Payment, PaymentKind, VoteRef};
use crate::state::{spendable, Staging};
use doin_channels::Change;
use doin_types::{Amount, Msat};

/// Pays out every verification fund whose optimae is finally decided (as far as the
/// snapshot tells). A fund whose books do not add up is left alone and logged: it must not
/// stop the watch from guarding the channels.
pub(crate) fn release_funds(s: &mut Staging<'_>, snap: &ChainSnapshot) {
    let Some(main) = snap.main.as_ref() else {
        return;
    };
    let open: Vec<Fund> =
        s.st.funds
            .values()
            .filter(|f| !f.settled)
            .cloned()
            .collect();
    for fund in open {
        let (fee, agreeing) = match main.decisions.get(&fund.optimae) {
            Some(Ok(Decision::Final { fee, agreeing })) => (*fee, agreeing.clone()),
            Some(Ok(Decision::Pending | Decision::Unknown)) | None => continue,
            Some(Err(e)) => {
                tracing::warn!(optimae = %fund.optimae, error = %e, "cannot read a decision");
                continue;
            }
        };
        let optimae = fund.optimae;
        if let Err(e) = settle_fund(s, fund, fee, agreeing) {
            tracing::error!(%optimae, error = %e, "a verification fund cannot be paid out");
        }
    }
}

/// Pays `fund` out: a fee to each agreeing evaluator it can, the rest back to the payer.
/// Staged only if all of it adds up.
fn settle_fund(
    s: &mut Staging<'_>,
    mut fund: Fund,
    fee: Amount,
    agreeing: Vec<doin_types::PublicKeyBytes>,
) -> Result<(), HubError> {
    // Staged apart: a fund that fails half-way leaves nothing behind.
    let before = (
        s.w.channels.clone(),
        s.w.paid_votes.len(),
        s.w.payments.len(),
    );
    let result = pay_fund(s, &mut fund, fee, agreeing);
    if result.is_err() {
        s.w.channels = before.0;
        s.w.paid_votes.truncate(before.1);
        s.w.payments.truncate(before.2);
        return result;
    }
    s.w.funds.insert(fund.optimae, fund);
    Ok(())
}

fn pay_fund(
    s: &mut Staging<'_>,
    fund: &mut Fund,
    fee: Amount,
    agreeing: Vec<doin_types::PublicKeyBytes>,
) -> Result<(), HubError> {
    let fee = Msat::from_amount(fee)?;
    let max_owed = s.cfg().max_owed();
    for evaluator in agreeing {
        let remaining = fund.funded_msat.checked_sub(fund.released_msat)?;
        if fee.is_zero() || remaining < fee {
            break;
        }
        let vote = VoteRef {
            optimae: fund.optimae,
            evaluator,
        };
        if s.vote_paid(&vote) {
            continue;
        }
        let Some(payee_channel) = s.st.payee_channel(&evaluator) else {
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
        s.w.paid_votes.push((vote, fund.payer_channel));
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
    // The rest goes back off chain, over a payer channel that is still open (a closed one
    // leaves it with the hub, shown by the fund: returned stays 0).
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
    Ok(())
}
