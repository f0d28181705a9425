//! Wallet interoperability: a transfer built and signed by an independent BIP340 implementation
//! (JavaScript, @noble/curves, from the npm registry), following only docs/transactions.md, is
//! accepted by the node and moves the funds.
//!
//! Needs Node.js and `npm ci` in tests/interop (the CI script does both).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use doin_crypto::KeyPair;
use doin_tx_core::{Allocation, ConsensusParams, GenesisSpec, Tx, TxBody, TxPayload};
use doin_types::{Amount, Network, Timestamp};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;
use tower::ServiceExt;

fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("interop")
}

fn js_sign(input: &Value) -> Value {
    let dir = interop_dir();
    assert!(
        dir.join("node_modules/@noble/curves").exists(),
        "missing JavaScript dependencies: run `npm ci` in {} (the CI script does)",
        dir.display()
    );
    let out = Command::new("node")
        .arg(dir.join("sign_transfer.mjs"))
        .arg(input.to_string())
        .current_dir(&dir)
        .output()
        .expect("run node (is Node.js installed?)");
    assert!(
        out.status.success(),
        "JavaScript signer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("signer output is JSON")
}

#[tokio::test]
async fn a_transfer_signed_by_an_independent_bip340_library_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let wallet = KeyPair::generate();
    let recipient = KeyPair::generate();
    let validator = KeyPair::generate();
    let spec = GenesisSpec {
        stakes: Vec::new(),
        network: Network::Devnet,
        chain_name: "interop".into(),
        genesis_time: Timestamp(doin_tx_node::now_ms() - 10_000),
        params: ConsensusParams::public_defaults(),
        validators: vec![validator.public()],
        allocations: vec![Allocation {
            key: wallet.public(),
            amount: Amount::from_base_units(10_000_000_000),
        }],
    };
    let chain = doin_tests::open_rocks_chain(dir.path(), spec).unwrap();
    let router = doin_tests::gateway_for(chain.clone()).unwrap();

    let input = json!({
        "chain_id": chain.params().chain_id.to_string(),
        "secret_key": hex::encode(*wallet.secret_bytes()),
        "nonce": "0",
        "max_fee_per_weight": "25",
        "max_priority_fee_per_weight": "2",
        "to": recipient.public().to_hex(),
        "amount": "123456789",
    });
    let signed = js_sign(&input);
    assert_eq!(signed["sender"], wallet.public().to_hex());

    // The JavaScript side derived the same signing hash as our code from the spec alone.
    let body = TxBody {
        chain_id: chain.params().chain_id,
        sender: wallet.public(),
        nonce: 0,
        max_fee_per_weight: Amount::from_base_units(25),
        max_priority_fee_per_weight: Amount::from_base_units(2),
        payload: TxPayload::Transfer {
            to: recipient.public(),
            amount: Amount::from_base_units(123_456_789),
        },
    };
    assert_eq!(signed["sighash"], body.sighash().unwrap().to_hex());
    let tx_hex = signed["tx"].as_str().unwrap();
    let decoded = Tx::decode(&hex::decode(tx_hex).unwrap(), 1000).unwrap();
    assert_eq!(decoded.body(), &body);
    assert_eq!(signed["id"], decoded.id().to_hex());

    // Submit over REST.
    let req = Request::post("/v1/tx/transactions")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({ "tx": tx_hex }).to_string()))
        .unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let v: Value = serde_json::from_slice(
        &axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(v["id"], signed["id"]);

    // Included and final in the next block; the recipient holds the amount.
    let c = chain.clone();
    tokio::task::spawn_blocking(move || {
        c.produce_block(&validator, Timestamp(doin_tx_node::now_ms()))
    })
    .await
    .unwrap()
    .unwrap();
    let req = Request::get(format!("/v1/tx/transactions/{}", decoded.id()))
        .body(Body::empty())
        .unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    let v: Value = serde_json::from_slice(
        &axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(v["status"], "final", "{v}");
    assert_eq!(v["confirmations"], 1);
    assert_eq!(
        chain.account(&recipient.public()).unwrap().balance,
        Amount::from_base_units(123_456_789)
    );
}
