//! The REST API's request and response types, in one place for the routes that answer them,
//! the command-line clients that read them and the tests: a field added here is added for all.
//!
//! Types only: no route, no service, no I/O. Amounts of base units are decimal strings,
//! milli-unit amounts too; hashes and ids are hex; addresses bech32m (see `docs/api.md`).

// Every dependency in Cargo.toml is used (checked outside test builds, which also see the
// dev-dependencies).
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

pub mod hub;
pub mod mainchain;
pub mod node;
pub mod tx;
