//! The transfer-chain service over a real store and its consensus engine, in one test binary.

mod consensus;
mod dropped;
mod history;
mod operations;
mod service;
mod simulate;
mod snapshot;
