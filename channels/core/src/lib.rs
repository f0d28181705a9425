//! Off-chain payment channels (docs/channels.md), sans I/O: the two-party state machine that both
//! sides of a channel run ([`machine`]) and BOLT11 invoices that name payments ([`invoice`]).
//!
//! The on-chain side — what a signed state is, and the open, close, challenge, settle and
//! HTLC-claim rules — is `doin_tx_core::channel`; this crate produces the states those rules
//! accept. It owns no storage, network or clock: inputs come in as arguments, and every output
//! says what to persist and what to send, in that order.

// Every dependency in Cargo.toml is used (checked outside test builds, which also see the
// dev-dependencies).
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

pub mod invoice;
pub mod machine;

pub use invoice::{create_invoice, parse_invoice, InvoiceError, InvoiceTerms, ParsedInvoice};
pub use machine::{
    apply_change, Change, ChannelMachine, Event, InFlight, Message, Output, Snapshot,
};

/// Why a channel operation was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    #[error("an update is already in flight on this channel")]
    Busy,
    #[error("the message is for another channel")]
    WrongChannel,
    #[error("the key is not this party's")]
    WrongKey,
    #[error("the message does not answer the update in flight")]
    Unexpected,
    #[error("the other party's signature does not verify")]
    BadSignature,
    #[error("the paying side has not enough in the channel")]
    InsufficientFunds,
    #[error("an amount of zero")]
    ZeroAmount,
    #[error("an amount overflows")]
    Overflow,
    #[error("the HTLC's expiry does not allow this at the current height")]
    HtlcExpiry,
    #[error("no such HTLC offered by that side")]
    UnknownHtlc,
    #[error("an HTLC with this payment hash is already pending")]
    DuplicateHtlc,
    #[error("too many pending HTLCs")]
    TooManyHtlcs,
    #[error("state encoding failed: {0}")]
    Encoding(String),
    #[error("malformed message: {0}")]
    Malformed(String),
}
