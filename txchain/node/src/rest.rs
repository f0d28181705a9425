//! Helpers every REST route module of the transfer chain shares: reading path parameters and
//! turning store errors into problems. A leaf: it must not depend on any route module.

use crate::chain::TxChain;
use doin_http::Problem;
use doin_store::StoreError;
use doin_types::{Address, Hash256};

/// A store failure as the client sees it: `503 storage-full` when the disk is full, else `500`
/// (details go to the log).
pub(crate) fn internal(e: StoreError) -> Problem {
    match e {
        StoreError::NoSpace(_) => Problem::storage_full(e),
        e => Problem::internal(e),
    }
}

/// An address of this node's network, or `400` saying what is wrong with it.
pub(crate) fn parse_address(chain: &TxChain, s: &str) -> Result<Address, Problem> {
    let network = chain.params().network;
    Address::parse(s, network).map_err(|e| Problem::bad_request(e.kind(), e.to_string()))
}

/// A 64-hex id or hash, or `400 invalid-hash` naming `what`.
pub(crate) fn parse_hash(s: &str, what: &str) -> Result<Hash256, Problem> {
    Hash256::from_hex(s).map_err(|e| Problem::bad_request("invalid-hash", format!("{what}: {e}")))
}
