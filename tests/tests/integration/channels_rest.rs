//! Channels through a node: a channel opened and force-closed by submitted transactions shows
//! on `GET /v1/tx/channels/{id}` and in the chain totals; unknown and malformed ids get clear
//! problems.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use doin_crypto::KeyPair;
use doin_tx_core::channel::channel_id;
use doin_tx_core::{Allocation, ConsensusParams, GenesisSpec, Tx, TxBody, TxPayload};
use doin_types::{Amount, Network, Timestamp};
use serde_json::Value;

async fn get(router: &axum::Router, path: &str) -> (StatusCode, Value) {
    let req = Request::get(path).body(Body::empty()).unwrap();
    let (status, _, v) = doin_tests::call(router, req).await;
    (status, v)
}

#[tokio::test]
async fn an_opened_and_force_closed_channel_shows_over_rest() {
    let dir = tempfile::tempdir().unwrap();
    let validator = KeyPair::generate();
    let (a, b) = (KeyPair::generate(), KeyPair::generate());
    let spec = GenesisSpec {
        stakes: Vec::new(),
        network: Network::Devnet,
        chain_name: "channels".into(),
        genesis_time: Timestamp(doin_tx_node::now_ms() - 10_000),
        params: ConsensusParams::public_defaults(),
        validators: vec![validator.public()],
        allocations: vec![Allocation {
            key: a.public(),
            amount: Amount::from_base_units(1_000_000_000),
        }],
    };
    let chain = doin_tests::open_rocks_chain(dir.path(), spec).unwrap();
    let router = doin_tests::gateway_for(chain.clone()).unwrap();
    let chain_id = chain.params().chain_id;
    let send = |nonce, payload| {
        let body = TxBody {
            chain_id,
            sender: a.public(),
            nonce,
            max_fee_per_weight: Amount::from_base_units(20),
            max_priority_fee_per_weight: Amount::from_base_units(1),
            payload,
        };
        let tx = Tx::from_signed(body.sign(&a).unwrap()).unwrap();
        chain.submit(tx.bytes()).unwrap();
        chain
            .produce_block(&validator, Timestamp(doin_tx_node::now_ms()))
            .unwrap();
    };
    send(
        0,
        TxPayload::ChannelOpen {
            counterparty: b.public(),
            deposit: Amount::from_base_units(70_000),
            counterparty_deposit: Amount::ZERO,
            dispute_blocks: 2_880,
            consent: None,
        },
    );
    let id = channel_id(&chain_id, &a.public(), 0);
    let (status, v) = get(&router, &format!("/v1/tx/channels/{}", id.to_hex())).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["phase"], "open");
    assert_eq!(v["capacity"], "70000");
    assert_eq!(v["posted"], Value::Null);
    let (_, info) = get(&router, "/v1/tx/info").await;
    assert_eq!(info["in_channels"], "70000");

    send(
        1,
        TxPayload::ChannelForceClose {
            channel: id,
            state: None,
        },
    );
    let (_, v) = get(&router, &format!("/v1/tx/channels/{}", id.to_hex())).await;
    assert_eq!(v["phase"], "closing");
    assert_eq!(v["posted"]["seq"], 0);
    assert_eq!(v["posted"]["balance_a_msat"], "70000000");
    assert_eq!(v["posted"]["posted_by"], "a");
    assert_eq!(v["posted"]["closes_at"], 2 + 2_880);

    let (status, v) = get(&router, &format!("/v1/tx/channels/{}", "ab".repeat(32))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    assert!(v["type"].as_str().unwrap().ends_with("channel-not-found"));
    let (status, _) = get(&router, "/v1/tx/channels/xyz").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
