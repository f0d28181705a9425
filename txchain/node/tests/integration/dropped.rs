//! What the mempool holds and lets go, over REST: its pending transactions are listed a page at
//! a time, and a transaction it lets go is answered `410 transaction-dropped` with its reason —
//! replaced by its sender, or invalidated by a block that used its nonce — instead of an
//! "unknown" `404`, and the answer survives a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::service::{keys, open_pruning, rest_get, spec, time};
use doin_crypto::KeyPair;
use doin_telemetry::Metrics;
use doin_tx_core::{Tx, TxBody, TxPayload};
use doin_tx_node::dropped::DropReason;
use doin_tx_node::store::PruneConfig;
use doin_tx_node::TxChain;
use doin_types::Amount;
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;

fn open(dir: &Path, k: &super::service::Keys) -> Arc<TxChain> {
    open_pruning(dir, spec(k), PruneConfig::default(), &Metrics::new()).unwrap()
}

/// A transfer of `amount` from `from` at `nonce`, paying up to `fee` per weight unit (a tip of
/// a hundredth of it).
fn signed(chain: &TxChain, from: &KeyPair, to: &KeyPair, nonce: u64, fee: u64, amount: u64) -> Tx {
    let body = TxBody {
        chain_id: chain.params().chain_id,
        sender: from.public(),
        nonce,
        max_fee_per_weight: Amount::from_base_units(fee),
        max_priority_fee_per_weight: Amount::from_base_units(fee / 100),
        payload: TxPayload::Transfer {
            to: to.public(),
            amount: Amount::from_base_units(amount),
        },
    };
    Tx::from_signed(body.sign(from).unwrap()).unwrap()
}

/// `GET /v1/tx/transactions/{id}` on `chain`'s REST router: status and JSON body.
fn get_tx(chain: &Arc<TxChain>, tx: &Tx) -> (u16, Value) {
    rest_get(chain, &format!("/v1/tx/transactions/{}", tx.id().to_hex()))
}

#[test]
fn a_dropped_transaction_is_answered_with_its_reason_also_after_a_restart() {
    let (dir, other_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let k = keys();
    let chain = open(dir.path(), &k);
    let (alice, bob, carol) = (&k.users[0], &k.users[1], &k.users[2]);

    // Alice replaces her pending transfer with a better-paying one at the same nonce.
    let first = signed(&chain, alice, bob, 0, 100, 5);
    let better = signed(&chain, alice, bob, 0, 200, 6);
    assert!(chain.submit(first.bytes()).unwrap().new);
    let o = chain.submit(better.bytes()).unwrap();
    assert_eq!(o.replaced, Some(first.id()));
    let (status, body) = get_tx(&chain, &first);
    assert_eq!(status, 410, "{body}");
    assert_eq!(body["type"], "urn:doin:problem:transaction-dropped");
    assert_eq!(body["reason"], "replaced");
    assert_eq!(body["replaced_by"], better.id().to_hex());
    assert_eq!(get_tx(&chain, &better).0, 200);

    // Carol's pending transfer loses its nonce to another of hers that a block from elsewhere
    // includes.
    let pending = signed(&chain, carol, bob, 0, 100, 7);
    assert!(chain.submit(pending.bytes()).unwrap().new);
    let elsewhere = open(other_dir.path(), &k);
    let rival = signed(&elsewhere, carol, bob, 0, 100, 8);
    elsewhere.submit(rival.bytes()).unwrap();
    let block = elsewhere.produce_block(&k.validator, time(1)).unwrap();
    chain.import_block(&block, time(2)).unwrap();
    let (status, body) = get_tx(&chain, &pending);
    assert_eq!(
        (status, &body["reason"]),
        (410, &Value::from("invalidated")),
        "{body}"
    );
    assert!(body["detail"].as_str().unwrap().contains("nonce"), "{body}");
    assert_eq!(get_tx(&chain, &rival).0, 200);
    // Never seen at all: still 404.
    let unknown = signed(&chain, bob, carol, 9, 100, 1);
    assert_eq!(get_tx(&chain, &unknown).0, 404);

    // A restart keeps what was dropped and why.
    drop(chain);
    let chain = open(dir.path(), &k);
    assert_eq!(
        chain.dropped(&first.id()).map(|d| d.reason),
        Some(DropReason::Replaced { by: better.id() })
    );
    let (status, body) = get_tx(&chain, &pending);
    assert_eq!(
        (status, &body["reason"]),
        (410, &Value::from("invalidated")),
        "{body}"
    );
}

/// `GET /v1/tx/mempool` pages through pending transactions in admission order; what a block
/// took or a replacement pushed out is gone from it.
#[test]
fn the_mempool_is_listed_a_page_at_a_time_in_admission_order() {
    let dir = tempfile::tempdir().unwrap();
    let k = keys();
    let chain = open(dir.path(), &k);
    let (alice, bob, carol) = (&k.users[0], &k.users[1], &k.users[2]);
    let txs = [
        signed(&chain, alice, bob, 0, 100, 1),
        signed(&chain, bob, carol, 0, 100, 2),
        signed(&chain, alice, carol, 1, 100, 3),
    ];
    for t in &txs {
        assert!(chain.submit(t.bytes()).unwrap().new);
    }
    let (status, page) = rest_get(&chain, "/v1/tx/mempool?limit=2");
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["count"], 3);
    let ids = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&page), vec![txs[0].id().to_hex(), txs[1].id().to_hex()]);
    assert_eq!(page["items"][0]["status"], "pending");
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    let (_, next) = rest_get(&chain, &format!("/v1/tx/mempool?limit=2&cursor={cursor}"));
    assert_eq!(ids(&next), vec![txs[2].id().to_hex()]);
    assert!(next["next_cursor"].is_null(), "{next}");
    // A block takes them all: the pool is empty.
    let block = chain.produce_block(&k.validator, time(1)).unwrap();
    assert_eq!(block.txs.len(), 3);
    let (_, empty) = rest_get(&chain, "/v1/tx/mempool");
    assert_eq!(empty["count"], 0);
    assert!(ids(&empty).is_empty());
    for query in ["cursor=x", "limit=0", "limit=201"] {
        let (status, problem) = rest_get(&chain, &format!("/v1/tx/mempool?{query}"));
        assert_eq!(status, 400, "{query}: {problem}");
        assert_eq!(problem["retriable"], false);
    }
}
