//! The workspace's integration tests, in one test binary (one link instead of one per file):
//! real RocksDB stores, real libp2p between real `doin` processes, the REST API over HTTP,
//! crash recovery, the hub end to end, and the rules the crates' dependencies follow. Each
//! module is one area; `common` drives node processes.

mod bad_input;
mod bft_network;
mod channels_rest;
mod cluster_network;
mod common;
mod crash_recovery;
mod cross_chain;
mod dependency_rules;
mod doc_links;
mod evaluator_pay;
mod history_process;
mod hub_cli;
mod hub_flows;
mod hub_htlc_deadlines;
mod hub_process;
mod hub_requests;
mod hub_watch;
mod hub_webhooks;
mod interop_js;
mod main_api;
mod main_network;
mod main_reorg;
mod network_both_chains;
mod network_e2e;
mod rest_access;
mod rest_tls;
mod tx_proofs;
mod warp_process;
