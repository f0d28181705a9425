//! Inclusion proofs over REST: what `GET /v1/anchors/tx/{id}` serves verifies offline against
//! the genesis file alone, for every transaction of a block; tampering with the served JSON is
//! caught; pending, unknown and malformed ids get clear problems.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use doin_client::proofcheck::verify_proof_json;
use doin_crypto::KeyPair;
use doin_tx_core::bft::CommitCertificate;
use doin_tx_core::{
    Allocation, ConsensusParams, GenesisSpec, GenesisStake, StakeRole, Tx, TxBody, TxPayload,
};
use doin_types::{Amount, Network, Timestamp};
use serde_json::Value;

fn genesis_of(validator: &KeyPair, users: &[KeyPair]) -> GenesisSpec {
    GenesisSpec {
        stakes: Vec::new(),
        network: Network::Devnet,
        chain_name: "proofs".into(),
        genesis_time: Timestamp(doin_tx_node::now_ms() - 10_000),
        params: ConsensusParams::public_defaults(),
        validators: vec![validator.public()],
        allocations: users
            .iter()
            .map(|u| Allocation {
                key: u.public(),
                amount: Amount::from_base_units(1_000_000_000),
            })
            .collect(),
    }
}

async fn get(router: &axum::Router, path: &str) -> (StatusCode, Value) {
    let req = Request::get(path).body(Body::empty()).unwrap();
    let (status, _, v) = doin_tests::call(router, req).await;
    (status, v)
}

#[tokio::test]
async fn served_proofs_verify_offline_and_tampering_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let validator = KeyPair::generate();
    let users: Vec<KeyPair> = (0..5).map(|_| KeyPair::generate()).collect();
    let spec = genesis_of(&validator, &users);
    let chain = doin_tests::open_rocks_chain(dir.path(), spec.clone()).unwrap();
    let router = doin_tests::gateway_for(chain.clone()).unwrap();

    let mut ids = Vec::new();
    for (i, u) in users.iter().enumerate() {
        let body = TxBody {
            chain_id: chain.params().chain_id,
            sender: u.public(),
            nonce: 0,
            max_fee_per_weight: Amount::from_base_units(20),
            max_priority_fee_per_weight: Amount::from_base_units(1),
            payload: TxPayload::Transfer {
                to: users[(i + 1) % users.len()].public(),
                amount: Amount::from_base_units(1_000 + i as u64),
            },
        };
        let tx = Tx::from_signed(body.sign(u).unwrap()).unwrap();
        chain.submit(tx.bytes()).unwrap();
        ids.push(tx.id());
    }

    // Pending: no proof yet, and the answer says why.
    let (status, v) = get(&router, &format!("/v1/anchors/tx/{}", ids[0].to_hex())).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    assert!(v["type"]
        .as_str()
        .unwrap()
        .ends_with("transaction-not-in-block"));
    assert!(v["detail"].as_str().unwrap().contains("pending"), "{v}");

    let block = chain
        .produce_block(&validator, Timestamp(doin_tx_node::now_ms()))
        .unwrap();
    assert_eq!(block.txs.len(), 5);

    for id in &ids {
        let (status, v) = get(&router, &format!("/v1/anchors/tx/{}", id.to_hex())).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        assert_eq!(v["format"], "doin-tx-inclusion/2");
        assert_eq!(v["height"], 1);
        assert_eq!(v["checkpoint"], Value::Null);
        let proven = verify_proof_json(&v.to_string(), &spec).unwrap();
        assert_eq!(proven.tx_id, *id);
        assert_eq!(proven.block_hash, block.hash().unwrap());
    }

    let (_, served) = get(&router, &format!("/v1/anchors/tx/{}", ids[2].to_hex())).await;

    // A convenience field that disagrees with the proof.
    let mut lying = served.clone();
    lying["tx_id"] = Value::String(ids[3].to_hex());
    let err = verify_proof_json(&lying.to_string(), &spec).unwrap_err();
    assert!(err.to_string().contains("tx_id"), "{err}");
    let mut lying = served.clone();
    lying["height"] = Value::from(2);
    assert!(verify_proof_json(&lying.to_string(), &spec).is_err());

    // One flipped bit anywhere in the proof bytes.
    let bytes = hex::decode(served["proof"].as_str().unwrap()).unwrap();
    for pos in [0, bytes.len() / 3, bytes.len() / 2, bytes.len() - 1] {
        let mut flipped = bytes.clone();
        flipped[pos] ^= 0x01;
        let mut doc = served.clone();
        doc["proof"] = Value::String(hex::encode(&flipped));
        assert!(
            verify_proof_json(&doc.to_string(), &spec).is_err(),
            "a flip at byte {pos} went unnoticed"
        );
    }

    // Another chain's genesis (other validators, other chain id) does not accept it.
    let other = genesis_of(&KeyPair::generate(), &users);
    assert!(verify_proof_json(&served.to_string(), &other).is_err());

    // Another format, or something that is not a proof at all.
    let mut doc = served.clone();
    doc["format"] = Value::String("doin-tx-inclusion/9".into());
    assert!(verify_proof_json(&doc.to_string(), &spec).is_err());
    assert!(verify_proof_json("not json", &spec).is_err());

    // Unknown and malformed ids.
    let (status, v) = get(&router, &format!("/v1/anchors/tx/{}", "ab".repeat(32))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("no transaction"));
    let (status, v) = get(&router, "/v1/anchors/tx/zz").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["type"].as_str().unwrap().ends_with("invalid-hash"));
}

fn signed_tx(chain: &doin_tx_node::TxChain, from: &KeyPair, nonce: u64, payload: TxPayload) -> Tx {
    let body = TxBody {
        chain_id: chain.params().chain_id,
        sender: from.public(),
        nonce,
        max_fee_per_weight: Amount::from_base_units(20),
        max_priority_fee_per_weight: Amount::from_base_units(1),
        payload,
    };
    Tx::from_signed(body.sign(from).unwrap()).unwrap()
}

/// After an epoch boundary seats a validator the genesis file does not name, proofs of its
/// blocks still verify offline: the served proof carries the hop that traces its seat back to
/// the genesis validators.
#[tokio::test]
async fn proofs_hold_after_an_epoch_seats_a_validator_genesis_does_not_name() {
    let dir = tempfile::tempdir().unwrap();
    let genesis_validator = KeyPair::generate();
    let newcomer = KeyPair::generate();
    let payer = KeyPair::generate();
    let mut spec = genesis_of(&genesis_validator, &[]);
    let min = spec.params.staking.min_validator_stake;
    spec.params.epoch_blocks = 2;
    spec.params.max_validators = 1;
    spec.stakes.push(GenesisStake {
        key: genesis_validator.public(),
        role: StakeRole::Validator,
        amount: min,
        domains: Vec::new(),
    });
    let plenty = min.checked_mul(10).unwrap();
    spec.allocations = vec![
        Allocation {
            key: newcomer.public(),
            amount: plenty,
        },
        Allocation {
            key: payer.public(),
            amount: plenty,
        },
    ];
    let chain = doin_tests::open_rocks_chain(dir.path(), spec.clone()).unwrap();
    let router = doin_tests::gateway_for(chain.clone()).unwrap();
    let now = || Timestamp(doin_tx_node::now_ms());

    // Block 1: the newcomer bonds twice the genesis validator's stake; block 2 closes the
    // epoch and hands it the only seat.
    let bond = signed_tx(
        &chain,
        &newcomer,
        0,
        TxPayload::Stake {
            role: StakeRole::Validator,
            amount: min.checked_mul(2).unwrap(),
            domains: Vec::new(),
        },
    );
    chain.submit(bond.bytes()).unwrap();
    chain.produce_block(&genesis_validator, now()).unwrap();
    chain.produce_block(&genesis_validator, now()).unwrap();
    let seated = chain.validator_set_at(3).unwrap();
    assert!(seated.contains(&newcomer.public()) && !seated.contains(&genesis_validator.public()));

    // Block 3, proposed and finalised by the newcomer alone, holds a payment.
    let pay = signed_tx(
        &chain,
        &payer,
        0,
        TxPayload::Transfer {
            to: newcomer.public(),
            amount: Amount::from_base_units(5_000),
        },
    );
    chain.submit(pay.bytes()).unwrap();
    let parent_commit = chain.certificate(2).unwrap().unwrap();
    let block3 = chain
        .propose_block(&newcomer, now(), Some(&parent_commit))
        .unwrap();
    let cert3 = CommitCertificate::sign(
        &chain.params().chain_id,
        3,
        0,
        block3.hash().unwrap(),
        &[&newcomer],
    )
    .unwrap();
    chain.commit_decided(&block3, &cert3, now()).unwrap();

    for (id, height, proposer) in [
        (bond.id(), 1, genesis_validator.public()),
        (pay.id(), 3, newcomer.public()),
    ] {
        let (status, v) = get(&router, &format!("/v1/anchors/tx/{}", id.to_hex())).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        let proven = verify_proof_json(&v.to_string(), &spec).unwrap();
        assert_eq!((proven.tx_id, proven.height), (id, height));
        assert_eq!(proven.proposer, proposer);
    }

    // The genesis validator alone cannot finalise block 3 in a proof: swap in its certificate.
    let (_, served) = get(&router, &format!("/v1/anchors/tx/{}", pay.id().to_hex())).await;
    let mut proof = doin_tx_core::TxInclusionProof::decode(
        &hex::decode(served["proof"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    proof.finality.certificate = CommitCertificate::sign(
        &chain.params().chain_id,
        3,
        0,
        block3.hash().unwrap(),
        &[&genesis_validator],
    )
    .unwrap();
    let mut doc = served.clone();
    doc["proof"] = Value::String(hex::encode(proof.encode().unwrap()));
    let err = verify_proof_json(&doc.to_string(), &spec).unwrap_err();
    assert!(
        err.to_string().contains("not a validator of this height"),
        "{err}"
    );
    // Without the hop the proof does not hold either.
    proof.finality.certificate = cert3;
    proof.finality.hops.clear();
    doc["proof"] = Value::String(hex::encode(proof.encode().unwrap()));
    let err = verify_proof_json(&doc.to_string(), &spec).unwrap_err();
    assert!(err.to_string().contains("epoch hops"), "{err}");
}
