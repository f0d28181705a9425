//! The main-chain service over a real store: blocks, pool, workers and external domain
//! plugins, in one test binary.

mod common;
mod plugin_domain;
mod service;
