//! A peer's channel messages: one, or a `Confirm` pipelined with the next proposal. Each goes
//! through the hub's policy (proposals only), the channel's machine and what the completed
//! update sets in motion. A refused proposal ends the input (nothing after it applies); a
//! message that fails adds nothing, while the messages before it still count.
//!
//! The machine's steps can be made beforehand on a copy of the channel ([`precompute`], where
//! the signatures are made and checked) so the caller does that work without its lock; a
//! step is used only if the channel is still exactly at the snapshot it started from, else
//! the machine runs again here — so one channel never signs two states at one `seq`.

use crate::booking::{fulfil_route, on_event};
use crate::error::HubError;
use crate::io::{ChainSnapshot, HubOutput, Precomputed, ProposalContext, Reply, Writes};
use crate::policy::check_proposal;
use crate::records::ChannelRole;
use crate::state::{HubState, Staging};
use doin_channels::{Change, ChannelMachine, InFlight, Message, Snapshot};
use doin_crypto::KeyPair;
use doin_tx_core::channel::ChannelId;
use doin_types::Height;
use std::collections::BTreeSet;
use std::time::Duration;

/// Runs the channel's machine over `msgs` from `base`, a copy of the channel's snapshot: the
/// signing and checking of an input, done without the hub's lock. Stops after the first step
/// that fails.
pub fn precompute(
    key: &KeyPair,
    base: Snapshot,
    msgs: &[(Message, ProposalContext)],
    height: Height,
) -> Vec<Precomputed> {
    let mut machine = ChannelMachine::restore(base);
    let mut steps = Vec::with_capacity(msgs.len());
    for (msg, _) in msgs {
        let from = machine.snapshot().clone();
        let out = machine.handle(key, msg.clone(), height);
        let failed = out.is_err();
        steps.push(Precomputed {
            from,
            out,
            to: machine.snapshot().clone(),
        });
        if failed {
            break;
        }
    }
    steps
}

/// Handles `msgs` from the peer of `id`.
pub(crate) fn handle_messages(
    st: &mut HubState,
    snap: &ChainSnapshot,
    now: Duration,
    now_ms: u64,
    id: &ChannelId,
    msgs: Vec<(Message, ProposalContext)>,
    precomputed: Vec<Precomputed>,
) -> Result<HubOutput, HubError> {
    if msgs.iter().any(|(m, _)| *m.channel_id() != *id) {
        return Err(HubError::Invalid(
            "the message is for another channel".into(),
        ));
    }
    if msgs.len() > 1 && !matches!(msgs.first(), Some((Message::Confirm { .. }, _))) {
        return Err(HubError::Invalid(
            "only a Confirm can be followed by another message in one request".into(),
        ));
    }
    let mut steps = precomputed.into_iter();
    let mut writes = Writes::default();
    let mut reply = None;
    let mut error = None;
    for (msg, ctx) in msgs {
        match apply_message(st, snap, now, now_ms, id, msg, ctx, steps.next()) {
            Ok((answer, w)) => {
                merge(&mut writes, w);
                reply = answer;
            }
            Err(e) => {
                error = Some(e);
                break;
            }
        }
        // A refused proposal ends the input: nothing after it applies.
        if matches!(reply, Some(Message::Reject { .. })) {
            break;
        }
    }
    Ok(HubOutput::new(writes, Reply::Messages { reply, error }))
}

/// Adds `later`'s writes to `into` (the later record of one key wins).
fn merge(into: &mut Writes, later: Writes) {
    into.channels.extend(later.channels);
    into.deleted_channels.extend(later.deleted_channels);
    into.streams.extend(later.streams);
    into.routes.extend(later.routes);
    into.payments.extend(later.payments);
    if later.claims_scanned.is_some() {
        into.claims_scanned = later.claims_scanned;
    }
    into.answers.extend(later.answers);
    into.deleted_answers.extend(later.deleted_answers);
    into.paid_votes.extend(later.paid_votes);
    into.invoices.extend(later.invoices);
    into.funds.extend(later.funds);
}

/// Applies one message of the peer: the hub's policy, the machine (the precomputed `step`
/// when the channel has not moved since, else run here), what the update sets in motion.
/// Its writes are applied to the state only if all of it succeeds.
#[allow(clippy::too_many_arguments)]
fn apply_message(
    st: &mut HubState,
    snap: &ChainSnapshot,
    now: Duration,
    now_ms: u64,
    id: &ChannelId,
    msg: Message,
    ctx: ProposalContext,
    step: Option<Precomputed>,
) -> Result<(Option<Message>, Writes), HubError> {
    let height = snap.height;
    let channel = st
        .channels
        .get(id)
        .cloned()
        .ok_or(HubError::UnknownChannel(*id))?;
    if !channel.is_open() {
        return Err(HubError::Invalid("the channel is not open".into()));
    }
    if let Message::Propose { change, .. } = &msg {
        if let Err(reason) = check_proposal(st, snap, now, id, &channel, change, &ctx) {
            let reject = Message::Reject {
                channel_id: *id,
                seq: channel.machine.latest.state.seq.saturating_add(1),
                reason,
            };
            // Nothing to write: the hub signed nothing.
            return Ok((Some(reject), Writes::default()));
        }
    }
    let was_accepted = matches!(channel.machine.in_flight, Some(InFlight::Accepted { .. }));
    let (out, snapshot) = match step {
        Some(step) if step.from == channel.machine => (step.out?, step.to),
        // The channel moved since the copy was taken (another input on it): run it here.
        _ => {
            let mut machine = ChannelMachine::restore(channel.machine.clone());
            let out = machine.handle(&st.params.key, msg, height)?;
            (out, machine.snapshot().clone())
        }
    };
    let mut s = Staging::new(st, now_ms);
    let mut updated = channel;
    updated.machine = snapshot;
    let now_accepted = matches!(updated.machine.in_flight, Some(InFlight::Accepted { .. }));
    // The hub just signed a new proposal of the peer: keep what it is for, with it.
    if !was_accepted && now_accepted {
        let pending = ctx.pending();
        // The votes count as paid from the hub's signature on: the payer holds a state both
        // signed from then on.
        let votes = pending.votes(|stream| s.st.streams.get(stream).map(|x| x.payee));
        s.w.paid_votes.extend(votes.into_iter().map(|v| (v, *id)));
        updated.pending_context = Some(pending);
    }
    let role = updated.role;
    // A payee's preimage is the hub's to use from the moment it signs the fulfilment: the
    // payee holds a state both signed from then on, confirmed or not.
    let fulfilment = match (&role, was_accepted, &updated.machine.in_flight) {
        (
            ChannelRole::Outgoing,
            false,
            Some(InFlight::Accepted {
                change: Change::FulfillHtlc { preimage },
                ..
            }),
        ) => Some(*preimage),
        _ => None,
    };
    s.w.channels.insert(*id, updated);
    if let Some(preimage) = fulfilment {
        fulfil_route(&mut s, preimage)?;
    }
    for event in out.events {
        on_event(&mut s, now, id, event)?;
    }
    crate::flush::flush_staged(&mut s, height, &BTreeSet::new())?;
    Ok((out.send, s.commit()))
}
