//! Account operations over REST on a real RocksDB: an exchange that pages through an account's
//! operations reconciles to the node's balance at every height (`?height=`), both orders list
//! the same operations, they survive a restart, a store of the previous layout is upgraded in
//! place, and every bad input is a clear 4xx. The event stream follows an account, and replays
//! a kept `main_reorg` event with its id after a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::service::{keys, open_pruning, rest_get, signed, spec, time, transfer, Keys};
use doin_crypto::KeyPair;
use doin_store::WriteBatch;
use doin_telemetry::Metrics;
use doin_tx_core::{StakeRole, Tx, TxPayload};
use doin_tx_node::store::PruneConfig;
use doin_tx_node::TxChain;
use doin_types::{Address, Amount};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;

fn open(dir: &Path, k: &Keys) -> Arc<TxChain> {
    open_pruning(dir, spec(k), PruneConfig::default(), &Metrics::new()).unwrap()
}

fn address(chain: &TxChain, key: &KeyPair) -> String {
    Address::new(chain.params().network, key.public()).to_string()
}

fn units(v: &Value) -> u128 {
    v.as_str().unwrap().parse().unwrap()
}

fn stake(chain: &TxChain, from: &KeyPair, amount: u64) -> Tx {
    let payload = TxPayload::Stake {
        role: StakeRole::Optimizer,
        amount: Amount::from_base_units(amount),
        domains: Vec::new(),
    };
    signed(chain, from, payload, 2)
}

/// Blocks `from..=to`, each with a few transfers among the users and to the validator, and a
/// stake every fifth block.
fn grow(chain: &TxChain, k: &Keys, from: u64, to: u64) {
    for h in from..=to {
        let n = k.users.len();
        let (a, b) = (h as usize % n, (h as usize + 1) % n);
        chain
            .submit(transfer(chain, &k.users[a], &k.users[b], 1_000 + h).bytes())
            .unwrap();
        chain
            .submit(transfer(chain, &k.users[b], &k.validator, 10 + h).bytes())
            .unwrap();
        if h % 5 == 0 {
            chain
                .submit(stake(chain, &k.users[a], 2_000_000_000).bytes())
                .unwrap();
        }
        chain.produce_block(&k.validator, time(h)).unwrap();
    }
}

/// Every operation of `who`, walking pages of `limit` in `order`.
fn all_operations(chain: &Arc<TxChain>, who: &str, order: &str, limit: usize) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/tx/accounts/{who}/operations?order={order}&limit={limit}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, page) = rest_get(chain, &path);
        assert_eq!(status, 200, "{page}");
        let got = page["items"].as_array().unwrap();
        assert!(got.len() <= limit);
        items.extend(got.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return items,
        }
    }
}

#[test]
fn an_exchange_reconciles_every_account_at_every_height_from_the_operations() {
    let dir = tempfile::tempdir().unwrap();
    let k = keys();
    let chain = open(dir.path(), &k);
    grow(&chain, &k, 1, 24);
    let tip = chain.tip().header.height;
    let mut everyone: Vec<&KeyPair> = k.users.iter().collect();
    everyone.push(&k.validator);
    for key in everyone {
        let who = address(&chain, key);
        let ops = all_operations(&chain, &who, "oldest", 7);
        let mut newest = all_operations(&chain, &who, "newest", 5);
        newest.reverse();
        assert_eq!(ops, newest, "both orders list the same operations");
        // The books: credits minus debits, in order, give each balance_after, and at every
        // height the node's balance after that block.
        let mut balance: u128 = 0;
        let mut after_height = vec![0u128; tip as usize + 1];
        let mut next = 0usize;
        for height in 0..=tip {
            while next < ops.len() && ops[next]["height"].as_u64().unwrap() == height {
                let op = &ops[next];
                assert_eq!(op["address"], who.as_str());
                balance = balance + units(&op["credit"]) - units(&op["debit"]);
                assert_eq!(units(&op["balance_after"]), balance, "{op}");
                next += 1;
            }
            after_height[height as usize] = balance;
        }
        assert_eq!(next, ops.len(), "operations are in height order");
        for height in 0..=tip {
            let (status, acct) =
                rest_get(&chain, &format!("/v1/tx/accounts/{who}?height={height}"));
            assert_eq!(status, 200, "{acct}");
            assert_eq!(
                units(&acct["balance"]),
                after_height[height as usize],
                "{who} after {height}"
            );
            assert_eq!(acct["height"], height);
            assert_eq!(acct["final_height"], height);
            assert_eq!(acct["final_balance"], acct["balance"]);
        }
        let (_, now) = rest_get(&chain, &format!("/v1/tx/accounts/{who}"));
        assert_eq!(units(&now["balance"]), balance);
        assert_eq!(units(&now["final_balance"]), balance);
        assert_eq!(now["height"], tip);
    }
    // What each kind carries.
    let alice = address(&chain, &k.users[0]);
    let ops = all_operations(&chain, &alice, "oldest", 200);
    assert_eq!(ops[0]["kind"], "genesis");
    assert_eq!(ops[0]["height"], 0);
    let fee = ops.iter().find(|o| o["kind"] == "fee").unwrap();
    assert_eq!(
        units(&fee["fee"]["burned"]) + units(&fee["fee"]["tip"]),
        units(&fee["debit"])
    );
    assert!(fee["transaction"].as_str().unwrap().len() == 64);
    let staked = ops.iter().find(|o| o["kind"] == "stake").unwrap();
    assert_eq!(staked["stake"]["role"], "optimizer");
    assert_eq!(units(&staked["stake"]["amount"]), 2_000_000_000);
    assert_eq!(units(&staked["debit"]), 2_000_000_000);
    let validator = address(&chain, &k.validator);
    let tips = all_operations(&chain, &validator, "oldest", 200);
    assert!(tips.iter().any(|o| o["kind"] == "tip"));
    assert!(tips.iter().any(|o| o["kind"] == "transfer_in"));

    // After a restart, the same operations.
    drop(chain);
    let chain = open(dir.path(), &k);
    assert_eq!(all_operations(&chain, &alice, "oldest", 200), ops);
    // Following an account: the last item's cursor, polled again, gives nothing new; a new
    // block's operations follow it.
    let last = ops.last().unwrap()["cursor"].as_str().unwrap().to_string();
    let path = format!("/v1/tx/accounts/{alice}/operations?order=oldest&cursor={last}");
    let (_, page) = rest_get(&chain, &path);
    assert_eq!(page["items"].as_array().unwrap().len(), 0);
    assert!(page["next_cursor"].is_null());
    grow(&chain, &k, tip + 1, tip + 4);
    let (_, page) = rest_get(&chain, &path);
    assert!(!page["items"].as_array().unwrap().is_empty());
    assert!(page["items"][0]["height"].as_u64().unwrap() > tip);
}

#[test]
fn bad_queries_are_clear_problems() {
    let dir = tempfile::tempdir().unwrap();
    let k = keys();
    let chain = open(dir.path(), &k);
    grow(&chain, &k, 1, 3);
    let who = address(&chain, &k.users[0]);
    let problem = |path: String, status: u16, kind: &str| {
        let (got, body) = rest_get(&chain, &path);
        assert_eq!(got, status, "{path}: {body}");
        assert_eq!(body["type"], format!("urn:doin:problem:{kind}"), "{path}");
    };
    let ops = format!("/v1/tx/accounts/{who}/operations");
    for cursor in [
        "x",
        "1",
        "1.",
        ".1",
        "-1.0",
        "1.2.3",
        "99999999999999999999.0",
    ] {
        problem(format!("{ops}?cursor={cursor}"), 400, "invalid-cursor");
    }
    problem(format!("{ops}?limit=0"), 400, "invalid-limit");
    problem(format!("{ops}?limit=201"), 400, "invalid-limit");
    problem(format!("{ops}?order=sideways"), 400, "invalid-query");
    problem(format!("{ops}?colour=red"), 400, "invalid-query");
    problem(
        "/v1/tx/accounts/doin1nope/operations".into(),
        400,
        "invalid-address",
    );
    let acct = format!("/v1/tx/accounts/{who}");
    problem(format!("{acct}?height=4"), 404, "block-not-found");
    problem(format!("{acct}?height=-1"), 400, "invalid-query");
    problem(format!("{acct}?height=x"), 400, "invalid-query");
    // An account that never moved has no operations and a zero balance at every height.
    let stranger = address(&chain, &KeyPair::generate());
    let (status, page) = rest_get(&chain, &format!("/v1/tx/accounts/{stranger}/operations"));
    assert_eq!(status, 200);
    assert_eq!(page["items"].as_array().unwrap().len(), 0);
    let (status, body) = rest_get(&chain, &format!("/v1/tx/accounts/{stranger}?height=1"));
    assert_eq!(status, 200);
    assert_eq!(body["balance"], "0");
}

#[test]
fn a_store_of_the_previous_layout_keeps_operations_from_its_next_block() {
    let dir = tempfile::tempdir().unwrap();
    let k = keys();
    {
        let chain = open(dir.path(), &k);
        grow(&chain, &k, 1, 5);
        // As a node of the previous release left it: layout 5, no operations.
        let kv = chain.store().kv().clone();
        let mut batch = WriteBatch::new();
        for cf in ["tx_account_ops", "tx_ops_by_height"] {
            let keys: Vec<Vec<u8>> = kv
                .iter_from(cf, &[], doin_store::Direction::Forward)
                .unwrap()
                .map(|e| e.unwrap().0)
                .collect();
            for key in keys {
                batch.delete(cf, key);
            }
        }
        batch.put(
            "tx_meta",
            b"schema".to_vec(),
            doin_codec::encode(&5u32).unwrap(),
        );
        kv.write(batch, doin_store::Durability::Sync).unwrap();
    }
    let chain = open(dir.path(), &k);
    assert_eq!(chain.store().schema_version().unwrap(), Some(6));
    assert_eq!(chain.store().operations_from().unwrap(), 6);
    let who = address(&chain, &k.users[0]);
    let (_, now) = rest_get(&chain, &format!("/v1/tx/accounts/{who}"));
    // The tip's state is still answered (the operations start from it); older is pruned.
    let (status, at_tip) = rest_get(&chain, &format!("/v1/tx/accounts/{who}?height=5"));
    assert_eq!(status, 200, "{at_tip}");
    assert_eq!(at_tip["balance"], now["balance"]);
    let (status, body) = rest_get(&chain, &format!("/v1/tx/accounts/{who}?height=4"));
    assert_eq!(status, 410, "{body}");
    assert_eq!(body["kept_from"], 6);
    grow(&chain, &k, 6, 8);
    let ops = all_operations(&chain, &who, "oldest", 50);
    assert!(!ops.is_empty());
    assert!(ops.iter().all(|o| o["height"].as_u64().unwrap() >= 6));
    let (status, at_5) = rest_get(&chain, &format!("/v1/tx/accounts/{who}?height=5"));
    assert_eq!(status, 200);
    assert_eq!(at_5["balance"], now["balance"]);
}

/// Reads `n` events from `/v1/events?account=…` resuming after `last_id`, calling `meanwhile`
/// once the stream is open: (id, event name, data) each.
fn account_events(
    chain: &Arc<TxChain>,
    who: &str,
    last_id: Option<&str>,
    n: usize,
    meanwhile: impl FnOnce() + Send + 'static,
) -> Vec<(String, String, Value)> {
    events(
        chain,
        &format!("/v1/events?account={who}"),
        last_id,
        n,
        meanwhile,
    )
}

/// Reads `n` events from `path` resuming after `last_id`, calling `meanwhile` once the stream
/// is open: (id, event name, data) each.
fn events(
    chain: &Arc<TxChain>,
    path: &str,
    last_id: Option<&str>,
    n: usize,
    meanwhile: impl FnOnce() + Send + 'static,
) -> Vec<(String, String, Value)> {
    use tokio_stream::StreamExt as _;
    use tower::ServiceExt as _;
    let router = doin_tx_node::api::router(chain.clone());
    let mut req = axum::http::Request::get(path);
    if let Some(id) = last_id {
        req = req.header("last-event-id", id);
    }
    let req = req.body(axum::body::Body::empty()).unwrap();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async move {
            let resp = router.oneshot(req).await.unwrap();
            assert_eq!(resp.status(), 200);
            let mut body = resp.into_body().into_data_stream();
            let producer = std::thread::spawn(meanwhile);
            let (mut buf, mut out) = (String::new(), Vec::new());
            while out.len() < n {
                let chunk = tokio::time::timeout(std::time::Duration::from_secs(20), body.next())
                    .await
                    .expect("an event within 20 s")
                    .expect("the stream goes on")
                    .unwrap();
                buf.push_str(std::str::from_utf8(&chunk).unwrap());
                while let Some(end) = buf.find("\n\n") {
                    let frame: String = buf.drain(..end + 2).collect();
                    let field = |name: &str| {
                        frame
                            .lines()
                            .find_map(|l| l.strip_prefix(name))
                            .map(|v| v.trim().to_string())
                    };
                    if let (Some(id), Some(event), Some(data)) =
                        (field("id:"), field("event:"), field("data:"))
                    {
                        out.push((id, event, serde_json::from_str(&data).unwrap()));
                    }
                }
            }
            producer.join().unwrap();
            out
        })
}

/// Makes block `height` (as `grow` does) 200 ms after it is called, from another thread: for
/// streams that must see it arrive live.
fn grow_soon(chain: &Arc<TxChain>, k: &Keys, height: u64) -> impl FnOnce() + Send + 'static {
    let copy = |key: &KeyPair| KeyPair::from_secret_bytes(&key.secret_bytes()).unwrap();
    let k = Keys {
        validator: copy(&k.validator),
        users: k.users.iter().map(copy).collect(),
    };
    let chain = chain.clone();
    move || {
        std::thread::sleep(std::time::Duration::from_millis(200));
        grow(&chain, &k, height, height);
    }
}

#[test]
fn an_account_event_stream_resumes_inside_a_block_and_follows_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let k = keys();
    let chain = open(dir.path(), &k);
    grow(&chain, &k, 1, 8);
    let who = address(&chain, &k.users[1]);
    let ops = all_operations(&chain, &who, "oldest", 200);
    let as_event_id = |op: &Value| {
        let (h, s) = op["cursor"].as_str().unwrap().split_once('.').unwrap();
        format!("{h}-{}", s.parse::<u64>().unwrap() + 1)
    };
    // From just after its genesis allocation: every later operation, in order, with its place
    // as its id.
    let got = account_events(
        &chain,
        &who,
        Some(&as_event_id(&ops[0])),
        ops.len() - 1,
        || {},
    );
    for ((id, event, data), op) in got.iter().zip(&ops[1..]) {
        assert_eq!(event, "operation");
        assert_eq!(data, op);
        assert_eq!(*id, as_event_id(op));
    }
    // Resuming from an operation in the middle of a block gives the rest of that block first.
    let middle = ops
        .iter()
        .position(|o| o["kind"] == "fee" && o["height"].as_u64().unwrap() > 2)
        .unwrap();
    let last = as_event_id(&ops[middle]);
    let rest = ops.len() - middle - 1;
    let got = account_events(&chain, &who, Some(&last), rest, || {});
    let data: Vec<&Value> = got.iter().map(|(_, _, d)| d).collect();
    let expected: Vec<&Value> = ops[middle + 1..].iter().collect();
    assert_eq!(data, expected);
    // Live: operations of blocks made while the stream is open follow.
    let tip = chain.tip().header.height;
    let last = as_event_id(ops.last().unwrap());
    let producer = grow_soon(&chain, &k, tip + 1);
    let got = account_events(&chain, &who, Some(&last), 1, producer);
    assert_eq!(got[0].2["height"], tip + 1);
}

#[test]
fn a_main_reorg_event_is_replayed_with_its_id_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let k = keys();
    let (id, data) = {
        let chain = open(dir.path(), &k);
        grow(&chain, &k, 1, 3);
        chain
            .record_main_reorg(r#"{"fork_height":7,"disconnected":[],"connected":[]}"#.into())
            .unwrap();
        let last = chain.events().last_id();
        assert_eq!((last.height, last.seq), (3, 1));
        (
            last.to_string(),
            r#"{"fork_height":7,"disconnected":[],"connected":[]}"#,
        )
    };
    let chain = open(dir.path(), &k);
    // New events at the same height continue after it.
    assert_eq!(chain.events().last_id().to_string(), id);
    // A client that had seen block 3 gets the reorganisation from the store, then what
    // follows.
    let got = events(
        &chain,
        "/v1/events",
        Some("3-0"),
        4,
        grow_soon(&chain, &k, 4),
    );
    assert_eq!(got[0].0, id);
    assert_eq!(got[0].1, "main_reorg");
    assert_eq!(got[0].2, serde_json::from_str::<Value>(data).unwrap());
    // Then the two transfers entering the pool, numbered after the kept event, and block 4.
    let rest: Vec<(&str, &str)> = got[1..]
        .iter()
        .map(|(id, kind, _)| (id.as_str(), kind.as_str()))
        .collect();
    assert_eq!(rest, [("3-2", "tx"), ("3-3", "tx"), ("4-0", "block")]);
}
