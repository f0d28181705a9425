//! The transfer chain core's rules, driven through its public API: blocks, headers, epochs,
//! anchoring, channels, staking, evidence, proofs, compact blocks, decoders, golden vectors and
//! properties, in one test binary.

mod anchors;
mod bft;
mod blocks;
mod channels;
mod common;
mod compact;
mod decoders;
mod epochs;
mod evidence;
mod headers;
mod operations;
mod proof;
mod properties;
mod staking;
mod tree_batch;
mod vectors;
