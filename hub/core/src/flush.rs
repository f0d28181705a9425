//! The hub's own proposals: on every staged channel that is free, the first queued change,
//! else (towards a payee) one `Pay` of everything the hub owes it — so stream ticks are
//! batched again on the way out.

use crate::error::HubError;
use crate::io::{HubOutput, Reply};
use crate::records::ChannelRole;
use crate::state::{HubState, Staging};
use doin_channels::{Change, ChannelMachine};
use doin_tx_core::channel::ChannelId;
use doin_types::{Height, Msat};
use std::collections::BTreeSet;

/// Proposes the hub's next change on every staged channel that is free, except those in
/// `skip` (channels this input is closing on chain).
pub(crate) fn flush_staged(
    s: &mut Staging<'_>,
    height: Height,
    skip: &BTreeSet<ChannelId>,
) -> Result<(), HubError> {
    let ids: Vec<ChannelId> = s.w.channels.keys().copied().collect();
    for id in ids {
        if skip.contains(&id) {
            continue;
        }
        let Some(c) = s.channel(&id) else {
            continue;
        };
        if !c.is_open() {
            continue;
        }
        let mut machine = ChannelMachine::restore(c.machine.clone());
        if machine.in_flight().is_some() {
            continue;
        }
        let change = if !c.queued.is_empty() {
            c.queued.remove(0)
        } else if c.role == ChannelRole::Outgoing && !c.owed_msat.is_zero() {
            let amount = c.owed_msat.min(Msat::new(machine.my_balance_msat()));
            if amount.is_zero() {
                continue;
            }
            c.owed_msat = c.owed_msat.checked_sub(amount)?;
            c.in_flight_owed_msat = amount;
            Change::Pay {
                amount_msat: amount.get(),
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
                        c.owed_msat = c.owed_msat.checked_add(c.in_flight_owed_msat)?;
                        c.in_flight_owed_msat = Msat::ZERO;
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

/// Proposes whatever waits on every channel (after a restart, or when a payee comes back).
/// Replies with how many channels got a proposal.
pub(crate) fn flush_all(
    st: &mut HubState,
    height: Height,
    now_ms: u64,
) -> Result<HubOutput, HubError> {
    let mut s = Staging::new(st, now_ms);
    let waiting: Vec<ChannelId> =
        s.st.channels
            .iter()
            .filter(|(_, c)| {
                c.machine.in_flight.is_none() && (!c.queued.is_empty() || !c.owed_msat.is_zero())
            })
            .map(|(id, _)| *id)
            .collect();
    for id in &waiting {
        s.channel(id);
    }
    flush_staged(&mut s, height, &BTreeSet::new())?;
    let proposed = waiting
        .iter()
        .filter(|id| {
            s.w.channels
                .get(id)
                .is_some_and(|c| c.machine.in_flight.is_some())
        })
        .count();
    Ok(HubOutput::new(s.commit(), Reply::Flushed(proposed)))
}
