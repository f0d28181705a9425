//! The channel hub (DESIGN §7): channels to many payers and payees, streamed micropayments,
//! hash-locked payments through the hub, a watchtower, and the books.
//!
//! - [`hub`] owns the hub's state and its entry points; `messages` takes a peer's channel
//!   messages through it (signatures outside the state lock, one durable batch per request);
//!   `flow` decides what the hub signs and proposes (`funds`: verification funds); [`watch`] guards the channels on chain and `deadlines` their HTLCs'
//!   expiries; [`store`] persists everything with
//!   group commit; [`ports`] says what the hub needs from the transfer chain (the node
//!   implements it); [`fees`] holds the fee policy and limits; [`txs`] signs the hub's
//!   transactions.
//! - Persist before acting: no signature, answer or transaction leaves before the state it
//!   depends on is on disk.
//! - This crate never imports another node crate: the transfer chain is reached through
//!   [`ports::ChainPort`].

pub mod api;
mod deadlines;
pub mod fees;
mod flow;
mod funds;
pub mod hub;
mod ledger_api;
mod message_api;
mod messages;
pub mod metrics;
pub mod ports;
pub mod store;
pub mod stream_api;
pub mod txs;
pub mod watch;

pub use fees::{FeePolicy, HubConfig};
pub use hub::{Handled, Hub, HubError, PendingAnswer, ProposalContext};
pub use metrics::HubMetrics;
pub use ports::ChainPort;
pub use store::{HubStore, COLUMNS};
pub use watch::WatchReport;
