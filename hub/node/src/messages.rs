//! The peer's channel messages: how a request (one message, or a `Confirm` pipelined with
//! the next proposal) goes through the hub. The channel's machine runs first on a copy,
//! without the state lock (the signatures are made and checked there, so inputs on different
//! channels use every core); then, under the lock, the hub's policy is checked, the result is
//! applied if the channel has not moved since the copy (else computed again), and everything
//! the request changed is queued as one batch; the answer leaves once that batch is on disk.
//!
//! This module owns the order of those steps; what the hub accepts and what an update sets in
//! motion is `flow`'s, the state and its persistence `hub`'s and `store`'s.

use crate::hub::{Handled, Hub, HubError, ProposalContext, Staged, State};
use crate::store::{ChannelRole, Payment};
use doin_channels::{Change, ChannelMachine, InFlight, Message};
use doin_store::WriteBatch;
use doin_tx_core::channel::ChannelId;
use doin_types::Height;

impl Hub {
    /// Handles a message from the peer of channel `id`; `ctx` says what a payer's proposal is
    /// for. Returns the answer once everything it depends on is durable.
    pub fn handle(
        &self,
        id: &ChannelId,
        msg: Message,
        ctx: ProposalContext,
    ) -> Result<Handled, HubError> {
        self.handle_messages(id, vec![(msg, ctx)])
    }

    /// Handles a `Confirm` of the update in flight and the peer's next proposal in one input:
    /// both are written in one durable step and answered by the answer to the proposal. A
    /// streaming payer confirms tick *n* and proposes tick *n + 1* in one round trip.
    pub fn handle_pipelined(
        &self,
        id: &ChannelId,
        confirm: Message,
        next: Message,
        ctx: ProposalContext,
    ) -> Result<Handled, HubError> {
        if !matches!(confirm, Message::Confirm { .. }) {
            return Err(HubError::Invalid(
                "only a Confirm can be followed by another message in one request".into(),
            ));
        }
        self.handle_messages(id, vec![(confirm, ProposalContext::default()), (next, ctx)])
    }

    fn handle_messages(
        &self,
        id: &ChannelId,
        msgs: Vec<(Message, ProposalContext)>,
    ) -> Result<Handled, HubError> {
        let result = self.handle_inner(id, msgs);
        let outcome = match &result {
            Ok(Handled {
                reply: Some(Message::Reject { .. }),
                ..
            }) => "rejected",
            Ok(_) => "accepted",
            Err(_) => "error",
        };
        self.store
            .metrics()
            .messages
            .with_label_values(&[outcome])
            .inc();
        result
    }

    /// Runs the channel's machine over `msgs` on a copy, without the state lock: this is where
    /// the signatures are made and checked, so the hub's inputs on different channels sign
    /// and verify in parallel. Each step keeps the snapshot it started from; the result of a
    /// step is used only if the channel is still exactly at that snapshot when it is applied.
    fn precompute(
        &self,
        id: &ChannelId,
        msgs: &[(Message, ProposalContext)],
        height: Height,
    ) -> Vec<Precomputed> {
        let Some(base) = self
            .state
            .lock()
            .channels
            .get(id)
            .map(|c| c.machine.clone())
        else {
            return Vec::new();
        };
        let mut machine = ChannelMachine::restore(base);
        let mut steps = Vec::with_capacity(msgs.len());
        for (msg, _) in msgs {
            let from = machine.snapshot().clone();
            let out = machine.handle(&self.key, msg.clone(), height);
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

    fn handle_inner(
        &self,
        id: &ChannelId,
        msgs: Vec<(Message, ProposalContext)>,
    ) -> Result<Handled, HubError> {
        if msgs.iter().any(|(m, _)| *m.channel_id() != *id) {
            return Err(HubError::Invalid(
                "the message is for another channel".into(),
            ));
        }
        let height = self.chain.height();
        let mut steps = self.precompute(id, &msgs, height).into_iter();
        let mut st = self.state.lock();
        // One batch for the whole request: one write, one wait.
        let mut batch = WriteBatch::new();
        let mut payments = Vec::new();
        let mut handled = Handled::default();
        let mut result = Ok(());
        for (msg, ctx) in msgs {
            match self.apply_message(&mut st, id, msg, ctx, steps.next(), height, &mut batch) {
                Ok((reply, made)) => {
                    payments.extend(made);
                    handled.reply = reply;
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
            // A refused proposal ends the request: nothing after it applies.
            if matches!(handled.reply, Some(Message::Reject { .. })) {
                break;
            }
        }
        // Nothing staged (a refusal, an error): nothing to wait for.
        let durable = (!batch.is_empty()).then(|| self.store.enqueue(batch));
        drop(st);
        // Answered only once everything staged is on disk (batches are written in order).
        if let Some(durable) = durable {
            handled.payments = self.finish(durable, payments)?;
        }
        result.map(|()| handled)
    }

    /// Applies one message of the peer under the state lock: the hub's policy, the machine
    /// (the precomputed `step` when the channel has not moved since, else computed here),
    /// what the update sets in motion, and the one batch that makes it durable.
    #[allow(clippy::too_many_arguments)]
    fn apply_message(
        &self,
        st: &mut State,
        id: &ChannelId,
        msg: Message,
        ctx: ProposalContext,
        step: Option<Precomputed>,
        height: Height,
        batch: &mut WriteBatch,
    ) -> Result<(Option<Message>, Vec<Payment>), HubError> {
        let channel = st
            .channels
            .get(id)
            .cloned()
            .ok_or(HubError::UnknownChannel(*id))?;
        if !channel.confirmed || channel.closing || channel.closed_at.is_some() {
            return Err(HubError::Invalid("the channel is not open".into()));
        }
        if let Message::Propose { change, .. } = &msg {
            if let Err(reason) = self.check_proposal(st, id, &channel, change, &ctx, height) {
                let reject = Message::Reject {
                    channel_id: *id,
                    seq: channel.machine.latest.state.seq.saturating_add(1),
                    reason,
                };
                // Nothing to write: the hub signed nothing.
                return Ok((Some(reject), Vec::new()));
            }
        }
        let was_accepted = matches!(channel.machine.in_flight, Some(InFlight::Accepted { .. }));
        let (out, snapshot) = match step {
            Some(step) if step.from == channel.machine => (step.out?, step.to),
            // The channel moved since the copy was taken (another input on it): compute here.
            _ => {
                let mut machine = ChannelMachine::restore(channel.machine.clone());
                let out = machine.handle(&self.key, msg, height)?;
                (out, machine.snapshot().clone())
            }
        };
        let mut staged = Staged::default();
        let mut updated = channel;
        updated.machine = snapshot;
        let now_accepted = matches!(updated.machine.in_flight, Some(InFlight::Accepted { .. }));
        // The hub just signed a new proposal of the peer: keep what it is for, with it.
        if !was_accepted && now_accepted {
            updated.pending_context = Some(crate::store::PendingContext {
                stream: ctx.stream,
                invoice: ctx.invoice,
                vote: ctx.vote,
                split: ctx.split.clone(),
                fund: ctx.fund,
            });
            // The vote counts as paid from the hub's signature on: the payer holds a state
            // both signed from then on.
            if let Some(vote) = ctx.vote {
                staged.paid_votes.push((vote, *id));
            }
            for share in &ctx.split {
                let payee = st.streams.get(&share.stream).map(|s| s.payee);
                if let Some(vote) = payee.and_then(|p| share.vote(p)) {
                    staged.paid_votes.push((vote, *id));
                }
            }
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
        staged.channels.insert(*id, updated);
        if let Some(preimage) = fulfilment {
            crate::flow::fulfil_route(st, &mut staged, preimage);
        }
        for event in out.events {
            self.on_event(st, &mut staged, id, event)?;
        }
        self.flush_staged(st, &mut staged, height);
        // Staged on its own first: a message that fails half-way adds nothing to the request's
        // batch (the messages before it are still written).
        let mut own = WriteBatch::new();
        let payments = self.stage_into(st, staged, &mut own)?;
        batch.extend(own);
        Ok((out.send, payments))
    }
}

/// One message run through a copy of a channel's machine outside the state lock.
struct Precomputed {
    /// The snapshot the step started from.
    from: doin_channels::Snapshot,
    out: Result<doin_channels::Output, doin_channels::ChannelError>,
    /// The snapshot after the step.
    to: doin_channels::Snapshot,
}
