//! `POST /v1/tx/transactions/simulate`: the dry run answers what a submission would get —
//! the fee and balance changes the next block then applies exactly, or the problem with its
//! members — and admits nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::service::{keys, open_pruning, rest_post, spec, time};
use doin_crypto::KeyPair;
use doin_telemetry::Metrics;
use doin_tx_core::{Tx, TxBody, TxPayload};
use doin_tx_node::store::PruneConfig;
use doin_tx_node::TxChain;
use doin_types::{Address, Amount};
use serde_json::{json, Value};
use std::sync::Arc;

fn transfer(chain: &TxChain, from: &KeyPair, to: &KeyPair, nonce: u64, amount: u64) -> Tx {
    let body = TxBody {
        chain_id: chain.params().chain_id,
        sender: from.public(),
        nonce,
        max_fee_per_weight: Amount::from_base_units(100),
        max_priority_fee_per_weight: Amount::from_base_units(3),
        payload: TxPayload::Transfer {
            to: to.public(),
            amount: Amount::from_base_units(amount),
        },
    };
    Tx::from_signed(body.sign(from).unwrap()).unwrap()
}

fn simulate(chain: &Arc<TxChain>, tx_hex: &str) -> (u16, Value) {
    rest_post(
        chain,
        "/v1/tx/transactions/simulate",
        &json!({ "tx": tx_hex }),
    )
}

fn units(v: &Value) -> i128 {
    v.as_str().unwrap().parse().unwrap()
}

#[test]
fn a_dry_run_says_what_the_next_block_will_do_and_admits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let k = keys();
    let chain = open_pruning(
        dir.path(),
        spec(&k),
        PruneConfig::default(),
        &Metrics::new(),
    )
    .unwrap();
    let (alice, bob) = (&k.users[0], &k.users[1]);
    let network = chain.params().network;
    let address = |key: &KeyPair| Address::new(network, key.public()).to_string();
    let tx = transfer(&chain, alice, bob, 0, 5_000);
    let tx_hex = hex::encode(tx.bytes());

    let (status, sim) = simulate(&chain, &tx_hex);
    assert_eq!(status, 200, "{sim}");
    assert_eq!(sim["outcome"], "accepted");
    assert_eq!(sim["id"], tx.id().to_hex());
    assert!(sim["problem"].is_null());
    assert_eq!(chain.mempool_stats().0, 0, "a dry run admits nothing");
    let (burned, tip) = (units(&sim["fee"]["burned"]), units(&sim["fee"]["tip"]));
    assert!(burned > 0 && tip > 0, "{sim}");
    let changes: Vec<(String, i128, i128)> = sim["balance_changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["address"].as_str().unwrap().to_string(),
                units(&c["before"]),
                units(&c["after"]),
            )
        })
        .collect();
    let change_of = |who: &str| {
        changes
            .iter()
            .find(|(a, _, _)| a == who)
            .map(|(_, before, after)| after - before)
    };
    assert_eq!(change_of(&address(alice)), Some(-(5_000 + burned + tip)));
    assert_eq!(change_of(&address(bob)), Some(5_000));
    assert_eq!(change_of(&address(&k.validator)), Some(tip), "{sim}");
    // The operations it would make: the fee first, then the transfer and the tip; per account
    // they net to its balance change.
    let ops = sim["operations"].as_array().unwrap();
    let kinds: Vec<&str> = ops.iter().map(|o| o["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["fee", "transfer_out", "transfer_in", "tip"],
        "{sim}"
    );
    assert_eq!(units(&ops[0]["fee"]["burned"]), burned);
    for (who, _, _) in &changes {
        let net: i128 = ops
            .iter()
            .filter(|o| o["address"] == who.as_str())
            .map(|o| units(&o["credit"]) - units(&o["debit"]))
            .sum();
        assert_eq!(Some(net), change_of(who), "{who}: {sim}");
    }
    // Only the burned part leaves the balances.
    let net: i128 = changes.iter().map(|(_, b, a)| a - b).sum();
    assert_eq!(net, -burned);

    // The next block does exactly that.
    let alice_after = changes
        .iter()
        .find(|(a, _, _)| *a == address(alice))
        .map(|(_, _, after)| *after)
        .unwrap();
    assert!(chain.submit(tx.bytes()).unwrap().new);
    let (_, known) = simulate(&chain, &tx_hex);
    assert_eq!(
        (&known["outcome"], &known["status"]),
        (&json!("known"), &json!("pending"))
    );
    chain.produce_block(&k.validator, time(1)).unwrap();
    let balance = chain.account(&alice.public()).unwrap().balance.base_units();
    assert_eq!(i128::from(balance), alice_after);

    // A refusal is the problem a submission would get, members included.
    let gap = transfer(&chain, alice, bob, 5, 1);
    let (status, refused) = simulate(&chain, &hex::encode(gap.bytes()));
    assert_eq!(status, 200, "{refused}");
    assert_eq!(refused["outcome"], "refused");
    assert_eq!(
        refused["problem"]["type"],
        "urn:doin:problem:nonce-too-high"
    );
    assert_eq!(refused["problem"]["expected_nonce"], 1);
    assert_eq!(refused["problem"]["retriable"], false);
    assert!(refused["fee"].is_null());

    // Bytes that are no transaction are the request's own problem.
    let (status, bad) = simulate(&chain, "zz");
    assert_eq!(
        (status, &bad["type"]),
        (400, &json!("urn:doin:problem:invalid-hex"))
    );
    let (status, bad) = simulate(&chain, "00ff");
    assert_eq!(status, 400, "{bad}");
    assert_eq!(bad["type"], "urn:doin:problem:malformed-transaction");
}
