//! The channel hub's money logic, sans I/O: channels to many payers and payees, streamed
//! micropayments, hash-locked payments through the hub, verification funds, the watchtower's
//! decisions, and the books — as one function of the state and an input:
//!
//! ```text
//! handle(&mut HubState, HubInput, now, &ChainSnapshot) -> Result<HubOutput, HubError>
//! ```
//!
//! The hub is side B of every payer's channel (the payer opened it) and side A of its own
//! channels to payees. Each channel runs a [`doin_channels::ChannelMachine`]; this crate decides
//! what the hub accepts and proposes, and keeps the books:
//!
//! - **streams**: a payee's invoice sets one up between a payer channel and the payee's
//!   channel; each tick the payer proposes one `Pay` of everything since the last tick (one
//!   signature covers many micropayments); once that update is signed by both, the amount less
//!   the hub's fee is owed to the payee, and the hub pays what it owes in one `Pay` whenever the
//!   payee's channel is free (so ticks are batched again on the way out). A split tick pays
//!   several streams of one payer with one update;
//! - **routed payments**: a payer locks an HTLC for a payee's invoice; the hub locks the same
//!   hash towards the payee (less its fee, with an earlier expiry); the payee's preimage
//!   releases both, a refusal releases both back. The hub never holds the payer's money
//!   without the matching lock towards the payee;
//! - **verification funds**: a payer funds an optimae's evaluators at reveal; once the
//!   decision is final each agreeing evaluator is paid one fee out of it, the rest goes back.
//!
//! Where each rule lives: [`policy`] (which proposals the hub signs), [`booking`] (what a
//! completed update sets in motion), [`flush`] (the hub's own proposals), [`messages`] (a
//! peer's messages through all of that), [`funds`], [`watch`] and [`deadlines`] (the
//! watchtower), [`operations`] (channels, invoices, streams, closes), [`requests`] (channels a
//! payee buys), [`records`] (what is kept), [`request`] (a peer's message request as the REST layer receives it), [`state`] (the state and the staging of one input).
//!
//! The core reads no clock, calls no port and takes no lock: the time comes in as `now`, what
//! the chains said as a [`ChainSnapshot`] (which [`needs`] tells the caller to read first), and
//! everything it decides comes out as a [`HubOutput`] that the caller carries out in order —
//! **persist** the writes, **submit** the transactions (feeding their outcomes back as
//! [`HubInput::Apply`]), **reply**. No signature, answer or transaction may leave before the
//! state it depends on is on disk. Money is [`doin_types::Msat`] with checked arithmetic: an
//! overflow or a shortfall is an error, never a saturation.

// Every dependency in Cargo.toml is used (checked outside test builds, which also see the
// dev-dependencies).
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

pub mod auth;
pub mod booking;
pub mod config;
pub mod deadlines;
mod error;
pub mod flush;
pub mod funds;
mod io;
pub mod messages;
pub mod operations;
mod pass;
pub mod policy;
pub mod records;
pub mod request;
pub mod requests;
pub mod state;
pub mod txs;
pub mod watch;

pub use config::{FeePolicy, HubConfig, RequestPolicy, Unchanneled};
pub use error::HubError;
pub use io::{
    ChainSnapshot, ClaimsRead, CloseHow, Condition, Decision, HubInput, HubOutput, MainSnapshot,
    Mark, Needs, PendingAnswer, PendingTx, Precomputed, ProposalContext, Reply, Submission,
    TxState, WatchReport, Writes, MAX_SPLIT_SHARES,
};
pub use messages::precompute;
pub use state::{HubParams, HubState, Loaded};
pub use watch::MAX_CLAIM_BLOCKS_PER_PASS;

use doin_types::Height;
use std::time::Duration;

/// Handles one input at time `now` (since the Unix epoch) against what the chains said.
/// On success the state already includes the output's writes; the caller persists them before
/// it submits or answers anything. On error the state is as it was.
pub fn handle(
    state: &mut HubState,
    input: HubInput,
    now: Duration,
    chain: &ChainSnapshot,
) -> Result<HubOutput, HubError> {
    let now_ms = u64::try_from(now.as_millis()).unwrap_or(u64::MAX);
    match input {
        HubInput::Messages {
            channel,
            msgs,
            precomputed,
        } => messages::handle_messages(state, chain, now, now_ms, &channel, msgs, precomputed),
        HubInput::RegisterIncoming { channel } => {
            operations::register_incoming(state, chain, now_ms, channel)
        }
        HubInput::OpenOutgoing {
            payee,
            deposit,
            answer,
        } => operations::open_outgoing(state, chain, now_ms, payee, deposit, answer),
        HubInput::CreateInvoice {
            amount,
            description,
            expiry_secs,
            preimage,
            secret,
        } => operations::create_invoice(
            state,
            now,
            now_ms,
            amount,
            description,
            expiry_secs,
            preimage,
            secret,
        ),
        HubInput::OpenStream {
            payer_channel,
            invoice,
        } => operations::open_stream(state, now, now_ms, payer_channel, &invoice),
        HubInput::CloseStream { stream } => operations::close_stream(state, now_ms, &stream),
        HubInput::Close { channel, answer } => {
            operations::close(state, chain, now_ms, &channel, answer)
        }
        HubInput::RequestChannel {
            payment,
            capacity,
            duration_blocks,
        } => requests::request_channel(state, now_ms, &payment, capacity, duration_blocks),
        HubInput::OpenRequested => requests::open_requested(state, chain, now_ms),
        HubInput::FlushAll => flush::flush_all(state, chain.height, now_ms),
        HubInput::Watch => watch::watch(state, chain, now_ms),
        HubInput::Apply { marks } => watch::apply_marks(state, marks, now_ms),
    }
}

/// What `input` needs read from the chains at final height `height` before it is handled.
pub fn needs(state: &HubState, input: &HubInput, height: Height) -> Needs {
    let mut n = Needs::default();
    match input {
        HubInput::Messages { msgs, .. } => {
            for (_, ctx) in msgs {
                n.vote_fees.extend(
                    ctx.pending()
                        .votes(|stream| state.streams.get(stream).map(|s| s.payee)),
                );
                n.decisions.extend(ctx.fund);
            }
        }
        HubInput::RegisterIncoming { channel } => n.channels.push(*channel),
        HubInput::OpenOutgoing { .. } => n.nonce = true,
        HubInput::OpenRequested => {
            n.payments = requests::paying(state);
            n.nonce = !n.payments.is_empty();
        }
        HubInput::Watch => {
            n.channels = state
                .channels
                .iter()
                .filter(|(_, c)| c.closed_at.is_none())
                .map(|(id, _)| *id)
                .collect();
            if height > state.claims_scanned {
                n.claims_from = Some(state.claims_scanned.saturating_add(1));
            }
            n.decisions = state
                .funds
                .values()
                .filter(|f| !f.settled)
                .map(|f| f.optimae)
                .collect();
        }
        HubInput::CreateInvoice { .. }
        | HubInput::OpenStream { .. }
        | HubInput::CloseStream { .. }
        | HubInput::Close { .. }
        | HubInput::RequestChannel { .. }
        | HubInput::FlushAll
        | HubInput::Apply { .. } => {}
    }
    n
}
