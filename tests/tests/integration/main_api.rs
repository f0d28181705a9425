//! The main chain over REST: reads answer what the chain holds, every client mistake on the
//! main-chain routes is a clear 4xx problem with a stable type and changes nothing, and a node
//! that does not run the transfer chain says so.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use doin_codec::encode;
use doin_crypto::KeyPair;
use doin_main_core::msg::commitment;
use doin_main_core::*;
use doin_main_node::{MainChain, MainChainConfig};
use doin_store::{KvStore, RocksConfig, RocksStore};
use doin_telemetry::Metrics;
use doin_types::{Address, Amount, ChainId, Hash256, Network, Timestamp};
use serde_json::{json, Value};
use std::sync::Arc;

struct Setup {
    chain: Arc<MainChain>,
    router: axum::Router,
    optimizer: KeyPair,
    producer: KeyPair,
    _dir: tempfile::TempDir,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let evaluators: Vec<KeyPair> = (0..3).map(|_| KeyPair::generate()).collect();
    let optimizer = KeyPair::generate();
    let domain = doin_tests::sphere_domain(Amount::ZERO);
    let spec = MainGenesisSpec {
        network: Network::Devnet,
        chain_name: "main-api".into(),
        genesis_time: Timestamp(doin_main_node::producer::now_ms() - 10_000),
        params: MainParams {
            target_block_time_ms: 1000,
            carrier_interval_ms: 1000,
            ..MainParams::public_defaults()
        },
        evaluators: evaluators
            .iter()
            .map(|k| EvaluatorEntry {
                key: k.public(),
                domains: vec![domain.id.clone()],
                stake: Amount::from_base_units(1),
                all_domains: false,
            })
            .collect(),
        domains: vec![domain],
        reputation: vec![],
    };
    let kv: Arc<dyn KvStore> = Arc::new(
        RocksStore::open(
            dir.path(),
            doin_main_node::store::COLUMNS,
            &RocksConfig::default(),
        )
        .unwrap(),
    );
    let chain = MainChain::open(kv, spec, MainChainConfig::default(), &Metrics::new()).unwrap();
    let router = doin_tests::gateway_with(None, Some(chain.clone())).unwrap();
    Setup {
        chain,
        router,
        optimizer,
        producer: KeyPair::generate(),
        _dir: dir,
    }
}

async fn call(s: &Setup, req: Request<Body>) -> (StatusCode, Value) {
    let (status, ctype, v) = doin_tests::call(&s.router, req).await;
    if status.is_client_error() {
        assert_eq!(ctype, "application/problem+json", "{v}");
    }
    (status, v)
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

fn post(path: &str, body: String) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap()
}

fn message(hex: &str) -> String {
    json!({ "message": hex }).to_string()
}

fn commit(s: &Setup, chain_id: ChainId) -> SignedCommit {
    let d = DomainId::new("sphere").unwrap();
    let params = vec![Fx::ONE, Fx::ONE];
    Signed::sign(
        Commit {
            chain_id,
            domain: d.clone(),
            optimizer: s.optimizer.public(),
            commitment: commitment(
                &d,
                &s.optimizer.public(),
                &params,
                Fx::from_int(2),
                &[1; 32],
            )
            .unwrap(),
        },
        &s.optimizer,
    )
    .unwrap()
}

#[tokio::test]
async fn main_chain_reads_and_every_bad_input_is_a_clear_problem() {
    let s = setup();
    let chain_id = s.chain.params().chain_id;
    let good = commit(&s, chain_id);
    let good_hex = hex::encode(encode(&good).unwrap());
    let mut trailing = encode(&good).unwrap();
    trailing.push(0);
    let mut forged = good.clone();
    forged.signature.0[3] ^= 1;
    let other_chain = commit(&s, ChainId(Hash256([9; 32])));
    let tdoin = Address::new(Network::Testnet, s.optimizer.public()).to_string();
    let before = s.chain.head().hash;

    let rows: Vec<(Request<Body>, StatusCode, &str)> = vec![
        (
            post("/v1/main/commits", "{".into()),
            StatusCode::BAD_REQUEST,
            "malformed-json",
        ),
        (
            post("/v1/main/commits", json!({"msg": "00"}).to_string()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-request-body",
        ),
        (
            post("/v1/main/commits", message("zz")),
            StatusCode::BAD_REQUEST,
            "invalid-hex",
        ),
        (
            post("/v1/main/commits", message("00")),
            StatusCode::BAD_REQUEST,
            "malformed-message",
        ),
        (
            post("/v1/main/commits", message(&hex::encode(&trailing))),
            StatusCode::BAD_REQUEST,
            "malformed-message",
        ),
        (
            post(
                "/v1/main/commits",
                message(&hex::encode(encode(&forged).unwrap())),
            ),
            StatusCode::BAD_REQUEST,
            "bad-signature",
        ),
        (
            post(
                "/v1/main/commits",
                message(&hex::encode(encode(&other_chain).unwrap())),
            ),
            StatusCode::BAD_REQUEST,
            "wrong-chain",
        ),
        (
            post("/v1/main/reveals", message(&good_hex)),
            StatusCode::BAD_REQUEST,
            "malformed-message",
        ),
        (
            post("/v1/main/votes", message(&good_hex)),
            StatusCode::BAD_REQUEST,
            "malformed-message",
        ),
        (
            post("/v1/main/domains", message(&good_hex)),
            StatusCode::BAD_REQUEST,
            "malformed-message",
        ),
        (
            post("/v1/main/commits", message(&"00".repeat(100 * 1024))),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
        ),
        (
            get("/v1/main/optimae/xyz"),
            StatusCode::BAD_REQUEST,
            "invalid-hash",
        ),
        (
            get(&format!("/v1/main/optimae/{}", "ab".repeat(32))),
            StatusCode::NOT_FOUND,
            "optimae-not-found",
        ),
        (
            get(&format!("/v1/main/commits/{}", "ab".repeat(32))),
            StatusCode::NOT_FOUND,
            "commit-not-found",
        ),
        (
            get("/v1/main/blocks/nope"),
            StatusCode::BAD_REQUEST,
            "invalid-block-id",
        ),
        (
            get("/v1/main/blocks/99"),
            StatusCode::NOT_FOUND,
            "block-not-found",
        ),
        (
            get("/v1/main/domains/Not_An_Id"),
            StatusCode::BAD_REQUEST,
            "invalid-domain-id",
        ),
        (
            get("/v1/main/domains/missing"),
            StatusCode::NOT_FOUND,
            "domain-not-found",
        ),
        (
            get("/v1/main/domains/sphere?history=0"),
            StatusCode::BAD_REQUEST,
            "invalid-limit",
        ),
        (
            get("/v1/main/domains/sphere?bogus=1"),
            StatusCode::BAD_REQUEST,
            "invalid-query",
        ),
        (
            get("/v1/main/participants?role=miner"),
            StatusCode::BAD_REQUEST,
            "invalid-role",
        ),
        (
            get("/v1/main/rewards/ddoin1notanaddress"),
            StatusCode::BAD_REQUEST,
            "invalid-address",
        ),
        (
            get(&format!("/v1/main/rewards/{tdoin}")),
            StatusCode::BAD_REQUEST,
            "wrong-network-address",
        ),
        (get("/v1/tx/info"), StatusCode::NOT_FOUND, "chain-disabled"),
        (get("/v1/anchors/x"), StatusCode::NOT_FOUND, "not-available"),
    ];
    for (req, status, kind) in rows {
        let what = format!("{} {}", req.method(), req.uri());
        let (code, v) = call(&s, req).await;
        assert_eq!(code, status, "{what}: {v}");
        assert_eq!(v["type"], format!("urn:doin:problem:{kind}"), "{what}: {v}");
    }
    assert_eq!(s.chain.pool_len(), 0, "nothing was pooled");
    assert_eq!(s.chain.head().hash, before, "nothing changed");

    // The valid commit: 202 pooled, then 200 known; a block carries it.
    let (code, v) = call(&s, post("/v1/main/commits", message(&good_hex))).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["status"], "pooled");
    let id = v["id"].as_str().unwrap().to_string();
    let (code, v) = call(&s, post("/v1/main/commits", message(&good_hex))).await;
    assert_eq!(
        (code, v["status"].as_str()),
        (StatusCode::OK, Some("known"))
    );
    let chain = s.chain.clone();
    let producer = KeyPair::from_secret_bytes(&s.producer.secret_bytes()).unwrap();
    let block = tokio::task::spawn_blocking(move || {
        chain.produce(&producer, Timestamp(doin_main_node::producer::now_ms()))
    })
    .await
    .unwrap()
    .unwrap()
    .expect("a carrier block");
    let (code, v) = call(&s, get(&format!("/v1/main/commits/{id}"))).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(v["status"], "committed");
    assert_eq!(v["height"], 1);

    // Reads.
    let (_, info) = call(&s, get("/v1/main/info")).await;
    assert_eq!(info["height"], 1);
    assert_eq!(info["tip_hash"], block.hash().unwrap().to_hex());
    let (_, b) = call(&s, get("/v1/main/blocks/latest")).await;
    assert_eq!(b["kind"], "carrier");
    assert_eq!(b["commits"][0], id);
    // The block list, newest first, a page at a time down to the genesis block.
    let (code, page) = call(&s, get("/v1/main/blocks?limit=1")).await;
    assert_eq!(code, StatusCode::OK, "{page}");
    assert_eq!(page["items"][0]["height"], 1);
    assert_eq!(page["items"][0]["commits"][0], id);
    assert_eq!(page["next_cursor"], "1");
    let (_, page) = call(&s, get("/v1/main/blocks?limit=1&cursor=1")).await;
    assert_eq!(page["items"][0]["height"], 0);
    assert!(page["next_cursor"].is_null(), "{page}");
    let (_, page) = call(&s, get("/v1/main/blocks")).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert!(page["next_cursor"].is_null(), "{page}");
    let (_, page) = call(&s, get("/v1/main/blocks?cursor=0")).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 0);
    for (query, kind) in [
        ("cursor=x", "invalid-cursor"),
        ("limit=0", "invalid-limit"),
        ("limit=201", "invalid-limit"),
    ] {
        let (code, v) = call(&s, get(&format!("/v1/main/blocks?{query}"))).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{query}: {v}");
        assert_eq!(v["type"], format!("urn:doin:problem:{kind}"), "{query}");
        assert_eq!(v["retriable"], false);
    }
    let (_, d) = call(&s, get("/v1/main/domains/sphere?history=5")).await;
    assert_eq!(d["best_metric"], "100.000000000");
    assert_eq!(d["eligible_evaluators"], 3);
    let (_, ps) = call(&s, get("/v1/main/participants?role=evaluator")).await;
    assert_eq!(ps.as_array().unwrap().len(), 3);
    let (code, st) = call(&s, get("/v1/main/stats")).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(st["carrier_blocks"], 1);
    let addr = Address::new(Network::Devnet, s.optimizer.public()).to_string();
    let (code, r) = call(&s, get(&format!("/v1/main/rewards/{addr}"))).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(r["total"], "0");
    // The OpenAPI document lists the main-chain routes.
    let (_, doc) = call(&s, get("/openapi.json")).await;
    assert!(doc["paths"]["/v1/main/optimae/{id}"].is_object());
    // … and every route of the other services, including the cross-chain ones.
    for path in [
        "/v1/main/blocks",
        "/v1/tx/mempool",
        "/v1/events",
        "/v1/tx/accounts/{address}/stakes",
        "/v1/anchors/tx/{id}",
        "/v1/anchors/main/{height}",
        "/v1/anchors/checkpoint/{tx_height}",
        "/v1/tx/channels/{id}",
        "/v1/hub/info",
        "/v1/hub/channels",
        "/v1/hub/channels/outgoing",
        "/v1/hub/channels/{id}/messages",
        "/v1/hub/channels/{id}/outbox",
        "/v1/hub/channels/{id}/close",
        "/v1/hub/invoices",
        "/v1/hub/invoices/{hash}",
        "/v1/hub/invoices/decode",
        "/v1/hub/streams",
        "/v1/hub/streams/{id}/close",
        "/v1/hub/funds",
        "/v1/hub/funds/{optimae}",
        "/v1/hub/payees/{address}/payments",
        "/v1/hub/payees/{address}/events",
        "/v1/hub/accounting.csv",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
}
