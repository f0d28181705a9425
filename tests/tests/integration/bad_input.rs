//! Every kind of bad input gets a clear 4xx problem with a stable type, and changes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use doin_crypto::KeyPair;
use doin_tx_core::{
    Allocation, ConsensusParams, GenesisSpec, SignedTx, StakeRole, Tx, TxBody, TxPayload,
};
use doin_tx_node::TxChain;
use doin_types::{Address, Amount, ChainId, Hash256, Network, PublicKeyBytes, Timestamp};
use serde_json::{json, Value};
use std::sync::Arc;

struct Setup {
    chain: Arc<TxChain>,
    router: axum::Router,
    rich: KeyPair,
    poor: KeyPair,
    validator: KeyPair,
    _dir: tempfile::TempDir,
}

const RICH: u64 = 1_000 * 100_000_000;
const POOR: u64 = 5_000;

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let rich = KeyPair::generate();
    let poor = KeyPair::generate();
    let validator = KeyPair::generate();
    let spec = GenesisSpec {
        stakes: Vec::new(),
        network: Network::Devnet,
        chain_name: "bad-input".into(),
        genesis_time: Timestamp(doin_tx_node::now_ms() - 10_000),
        params: ConsensusParams::public_defaults(),
        validators: vec![validator.public()],
        allocations: vec![
            Allocation {
                key: rich.public(),
                amount: Amount::from_base_units(RICH),
            },
            Allocation {
                key: poor.public(),
                amount: Amount::from_base_units(POOR),
            },
        ],
    };
    let chain = doin_tests::open_rocks_chain(dir.path(), spec).unwrap();
    let router = doin_tests::gateway_for(chain.clone()).unwrap();
    Setup {
        chain,
        router,
        rich,
        poor,
        validator,
        _dir: dir,
    }
}

fn body(s: &Setup, from: &KeyPair, nonce: u64, amount: u64) -> TxBody {
    TxBody {
        chain_id: s.chain.params().chain_id,
        sender: from.public(),
        nonce,
        max_fee_per_weight: Amount::from_base_units(20),
        max_priority_fee_per_weight: Amount::from_base_units(1),
        payload: TxPayload::Transfer {
            to: KeyPair::generate().public(),
            amount: Amount::from_base_units(amount),
        },
    }
}

fn hex_of(tx: SignedTx) -> String {
    hex::encode(Tx::from_signed(tx).unwrap().bytes())
}

async fn call(s: &Setup, req: Request<Body>) -> (StatusCode, String, Value) {
    doin_tests::call(&s.router, req).await
}

fn post_json(path: &str, body: String) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap()
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

fn submit(tx_hex: &str) -> Request<Body> {
    post_json("/v1/tx/transactions", json!({ "tx": tx_hex }).to_string())
}

#[tokio::test]
async fn every_bad_input_row_is_a_clear_problem_and_changes_nothing() {
    let s = setup();
    // Include one transaction from `rich` so that nonce 0 is "too low" afterwards.
    let first = body(&s, &s.rich, 0, 1).sign(&s.rich).unwrap();
    let first_hex = hex_of(first);
    let (code, _, _) = call(&s, submit(&first_hex)).await;
    assert_eq!(code, StatusCode::ACCEPTED);
    let chain = s.chain.clone();
    let validator = KeyPair::from_secret_bytes(&s.validator.secret_bytes()).unwrap();
    tokio::task::spawn_blocking(move || {
        chain.produce_block(&validator, Timestamp(doin_tx_node::now_ms()))
    })
    .await
    .unwrap()
    .unwrap();

    let before_tip = s.chain.tip().hash;
    let before_rich = s.chain.account(&s.rich.public()).unwrap();
    let before_poor = s.chain.account(&s.poor.public()).unwrap();
    let valid = body(&s, &s.rich, 1, 10);
    let good_hex = hex_of(valid.clone().sign(&s.rich).unwrap());

    let mut trailing = hex::decode(&good_hex).unwrap();
    trailing.push(0);
    let mut wrong_chain = valid.clone();
    wrong_chain.chain_id = ChainId(Hash256([7; 32]));
    let mut bad_sig = valid.clone().sign(&s.rich).unwrap();
    bad_sig.signature.0[5] ^= 1;
    let mut high_s = valid.clone().sign(&s.rich).unwrap();
    high_s.signature.0[32..].copy_from_slice(&[0xff; 32]);
    let mut overflow = valid.clone();
    overflow.payload = TxPayload::Transfer {
        to: KeyPair::generate().public(),
        amount: Amount::MAX,
    };
    let mut low_fee = valid.clone();
    low_fee.max_fee_per_weight = Amount::from_base_units(1);
    low_fee.max_priority_fee_per_weight = Amount::ZERO;
    let mut zero = valid.clone();
    zero.payload = TxPayload::Transfer {
        to: KeyPair::generate().public(),
        amount: Amount::ZERO,
    };
    let mut prio = valid.clone();
    prio.max_priority_fee_per_weight = Amount::from_base_units(21);
    let mut bad_to = valid.clone();
    bad_to.payload = TxPayload::Transfer {
        to: PublicKeyBytes([0xff; 32]),
        amount: Amount::from_base_units(1),
    };
    let oversize_tx = "00".repeat(70_000);
    let staking = |payload: TxPayload| {
        let mut b = valid.clone();
        b.payload = payload;
        hex_of(b.sign(&s.rich).unwrap())
    };
    let below_minimum = staking(TxPayload::Stake {
        role: StakeRole::Optimizer,
        amount: Amount::from_base_units(1),
        domains: vec![],
    });
    let unsorted_domains = staking(TxPayload::Stake {
        role: StakeRole::Evaluator,
        amount: Amount::from_base_units(100 * 100_000_000),
        domains: vec!["sphere".into(), "rastrigin".into()],
    });
    let unstake_unbonded = staking(TxPayload::Unstake {
        role: StakeRole::Evaluator,
        amount: Amount::from_base_units(1),
    });
    let withdraw_nothing = staking(TxPayload::Withdraw {
        role: StakeRole::Optimizer,
    });

    let rich_addr = Address::new(Network::Devnet, s.rich.public()).to_string();
    let mut broken_addr: Vec<char> = rich_addr.chars().collect();
    let last = broken_addr.len() - 1;
    broken_addr[last] = if broken_addr[last] == 'q' { 'p' } else { 'q' };
    let broken_addr: String = broken_addr.into_iter().collect();
    let mainnet_addr = Address::new(Network::Mainnet, s.rich.public()).to_string();

    type Row = (&'static str, Request<Body>, StatusCode, &'static str);
    let rows: Vec<Row> = vec![
        (
            "malformed JSON",
            post_json("/v1/tx/transactions", "{\"tx\":".into()),
            StatusCode::BAD_REQUEST,
            "malformed-json",
        ),
        (
            "JSON of the wrong shape",
            post_json("/v1/tx/transactions", json!({"raw": good_hex}).to_string()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-request-body",
        ),
        (
            "not JSON content type",
            Request::post("/v1/tx/transactions")
                .header(header::CONTENT_TYPE, "text/plain")
                .body(Body::from("x"))
                .unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
        ),
        (
            "malformed hex",
            submit("zz"),
            StatusCode::BAD_REQUEST,
            "invalid-hex",
        ),
        (
            "empty transaction",
            submit(""),
            StatusCode::BAD_REQUEST,
            "malformed-transaction",
        ),
        (
            "truncated transaction",
            submit(&good_hex[..good_hex.len() - 2]),
            StatusCode::BAD_REQUEST,
            "malformed-transaction",
        ),
        (
            "trailing bytes",
            submit(&hex::encode(trailing)),
            StatusCode::BAD_REQUEST,
            "malformed-transaction",
        ),
        (
            "oversize body",
            post_json(
                "/v1/tx/transactions",
                json!({"tx": "00".repeat(200_000)}).to_string(),
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
        ),
        (
            "oversize transaction",
            submit(&oversize_tx),
            StatusCode::PAYLOAD_TOO_LARGE,
            "transaction-too-large",
        ),
        (
            "wrong chain id",
            submit(&hex_of(wrong_chain.sign(&s.rich).unwrap())),
            StatusCode::BAD_REQUEST,
            "wrong-chain",
        ),
        (
            "bad signature",
            submit(&hex_of(bad_sig)),
            StatusCode::BAD_REQUEST,
            "invalid-signature",
        ),
        (
            "malformed (high-s) signature",
            submit(&hex_of(high_s)),
            StatusCode::BAD_REQUEST,
            "malformed-signature",
        ),
        (
            "signed by another key",
            submit(&hex_of(valid.clone().sign(&s.poor).unwrap())),
            StatusCode::BAD_REQUEST,
            "invalid-signature",
        ),
        (
            "nonce too low",
            submit(&hex_of(body(&s, &s.rich, 0, 5).sign(&s.rich).unwrap())),
            StatusCode::BAD_REQUEST,
            "nonce-too-low",
        ),
        (
            "nonce too high",
            submit(&hex_of(body(&s, &s.rich, 9, 5).sign(&s.rich).unwrap())),
            StatusCode::BAD_REQUEST,
            "nonce-too-high",
        ),
        (
            "balance short of amount + max fee",
            submit(&hex_of(body(&s, &s.poor, 0, POOR).sign(&s.poor).unwrap())),
            StatusCode::BAD_REQUEST,
            "insufficient-balance",
        ),
        (
            "amount overflow",
            submit(&hex_of(overflow.sign(&s.rich).unwrap())),
            StatusCode::BAD_REQUEST,
            "amount-overflow",
        ),
        (
            "fee below base fee",
            submit(&hex_of(low_fee.sign(&s.rich).unwrap())),
            StatusCode::BAD_REQUEST,
            "fee-below-base-fee",
        ),
        (
            "zero amount",
            submit(&hex_of(zero.sign(&s.rich).unwrap())),
            StatusCode::BAD_REQUEST,
            "zero-amount",
        ),
        (
            "tip above max fee",
            submit(&hex_of(prio.sign(&s.rich).unwrap())),
            StatusCode::BAD_REQUEST,
            "priority-fee-above-max-fee",
        ),
        (
            "stake below the role's minimum",
            submit(&below_minimum),
            StatusCode::BAD_REQUEST,
            "stake-below-minimum",
        ),
        (
            "evaluator domains not in ascending order",
            submit(&unsorted_domains),
            StatusCode::BAD_REQUEST,
            "invalid-stake",
        ),
        (
            "unstake more than is bonded",
            submit(&unstake_unbonded),
            StatusCode::BAD_REQUEST,
            "unstake-exceeds-stake",
        ),
        (
            "withdraw with nothing unbonding",
            submit(&withdraw_nothing),
            StatusCode::BAD_REQUEST,
            "nothing-to-withdraw",
        ),
        (
            "recipient not a key",
            submit(&hex_of(bad_to.sign(&s.rich).unwrap())),
            StatusCode::BAD_REQUEST,
            "invalid-recipient",
        ),
        (
            "bad address checksum",
            get(&format!("/v1/tx/accounts/{broken_addr}")),
            StatusCode::BAD_REQUEST,
            "invalid-address",
        ),
        (
            "address of another network",
            get(&format!("/v1/tx/accounts/{mainnet_addr}")),
            StatusCode::BAD_REQUEST,
            "wrong-network-address",
        ),
        (
            "garbage address",
            get("/v1/tx/accounts/hello"),
            StatusCode::BAD_REQUEST,
            "invalid-address",
        ),
        (
            "malformed tx id",
            get("/v1/tx/transactions/xyz"),
            StatusCode::BAD_REQUEST,
            "invalid-hash",
        ),
        (
            "unknown tx id",
            get(&format!("/v1/tx/transactions/{}", "ab".repeat(32))),
            StatusCode::NOT_FOUND,
            "transaction-not-found",
        ),
        (
            "malformed block id",
            get("/v1/tx/blocks/-1"),
            StatusCode::BAD_REQUEST,
            "invalid-block-id",
        ),
        (
            "future block",
            get("/v1/tx/blocks/999999"),
            StatusCode::NOT_FOUND,
            "block-not-found",
        ),
        (
            "unknown block hash",
            get(&format!("/v1/tx/blocks/{}", "cd".repeat(32))),
            StatusCode::NOT_FOUND,
            "block-not-found",
        ),
        (
            "bad cursor",
            get(&format!(
                "/v1/tx/accounts/{rich_addr}/transactions?cursor=abc"
            )),
            StatusCode::BAD_REQUEST,
            "invalid-cursor",
        ),
        (
            "bad limit",
            get("/v1/tx/blocks?limit=0"),
            StatusCode::BAD_REQUEST,
            "invalid-limit",
        ),
        (
            "limit not a number",
            get("/v1/tx/blocks?limit=ten"),
            StatusCode::BAD_REQUEST,
            "invalid-query",
        ),
        (
            "unknown query parameter",
            get("/v1/tx/blocks?limt=5"),
            StatusCode::BAD_REQUEST,
            "invalid-query",
        ),
        (
            "bad Last-Event-ID",
            Request::get("/v1/events")
                .header("last-event-id", "x")
                .body(Body::empty())
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "invalid-event-id",
        ),
        (
            "unknown route",
            get("/v1/tx/nothing-here"),
            StatusCode::NOT_FOUND,
            "not-found",
        ),
        (
            "wrong method",
            Request::delete("/v1/tx/info").body(Body::empty()).unwrap(),
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
        ),
        (
            "chain not run by this node",
            get("/v1/main/blocks/latest"),
            StatusCode::NOT_FOUND,
            "chain-disabled",
        ),
    ];
    let n = rows.len();
    for (name, req, want_status, want_kind) in rows {
        let (status, ctype, v) = call(&s, req).await;
        assert_eq!(status, want_status, "{name}: status (body {v})");
        assert_eq!(ctype, "application/problem+json", "{name}: content type");
        assert_eq!(
            v["type"],
            format!("urn:doin:problem:{want_kind}"),
            "{name}: problem type (body {v})"
        );
        assert_eq!(v["status"], want_status.as_u16(), "{name}: status member");
        assert!(
            v["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{name}: detail"
        );
    }
    assert!(n >= 30);

    // Nothing changed: same tip, same balances, empty mempool.
    assert_eq!(s.chain.tip().hash, before_tip);
    assert_eq!(s.chain.account(&s.rich.public()).unwrap(), before_rich);
    assert_eq!(s.chain.account(&s.poor.public()).unwrap(), before_poor);
    assert_eq!(s.chain.mempool_stats().0, 0);

    // And the valid transaction still goes through afterwards, twice (second is a resubmission).
    let (code, _, v) = call(&s, submit(&good_hex)).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["status"], "pending");
    let (code, _, v2) = call(&s, submit(&good_hex)).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(v2["id"], v["id"]);
    assert_eq!(v2["status"], "pending");
}
