//! Headers-first sync, once for both chains: a sans-IO state machine ([`machine`]) that
//! chooses the peer to follow, finds where the chains part, fetches and checks headers in
//! windows, fetches bodies in ranges from the peers that have them and blames whoever sent
//! something wrong; and a thin async driver ([`driver`]) that carries out its effects through
//! a chain's [`driver::SyncIo`] adapter.
//!
//! A chain supplies what differs: its types and order of peers ([`spec::SyncSpec`]: height
//! for the transfer chain, most work for the main chain), how it checks a batch of headers
//! and imports a block, and its wire messages. It never decides validity here: the chain's
//! core does.

// Every dependency in Cargo.toml is used (checked outside test builds, which also see the
// dev-dependencies).
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

pub mod driver;
pub mod machine;
pub mod spec;

pub use driver::{
    check_blocking, consecutive, run_round, serve, sync_loop, RoundEnd, SyncIo, SyncState,
};
pub use machine::{Round, SyncReport};
pub use spec::{Answer, Checked, Effect, Event, Fetch, Imported, SyncLimits, SyncSpec};
