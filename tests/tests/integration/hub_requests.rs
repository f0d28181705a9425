//! Black-box: payees buy their inbound channel from the hub (a real `doin node` with the hub),
//! without the operator. A payee's `doin hub request-channel` pays the quoted fee on chain and
//! gets a channel of the capacity it asked for, which a payer's stream then pays through; the
//! operator cannot close it before the lease ends. Over REST: a bad payment is refused, the
//! same payment again finds the same request, and a request beyond the hub's liquidity for
//! requested channels gets `409`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::{self, doin, get, get_ok, hub_node, post, wait_until};
use crate::hub_cli::{balance, stream_to, tick, user, Cli};
use doin_crypto::KeyPair;
use doin_tx_core::{Tx, TxBody, TxPayload};
use doin_types::{Address, Amount, ChainId, Network};
use serde_json::{json, Value};

const CAPACITY: u64 = 300_000;
/// The default policy's fee: 10 000 base units plus 1 % of the capacity.
const FEE: u64 = 10_000 + CAPACITY / 100;

fn payment(chain_id: ChainId, payer: &KeyPair, to: &KeyPair, amount: u64, nonce: u64) -> String {
    let body = TxBody {
        chain_id,
        sender: payer.public(),
        nonce,
        max_fee_per_weight: Amount::from_base_units(50),
        max_priority_fee_per_weight: Amount::from_base_units(1),
        payload: TxPayload::Transfer {
            to: to.public(),
            amount: Amount::from_base_units(amount),
        },
    };
    hex::encode(Tx::from_signed(body.sign(payer).unwrap()).unwrap().bytes())
}

fn request(rest: &str, capacity: u64, payment: &str) -> (u16, Value) {
    post(
        &format!("{rest}/v1/hub/channel-requests"),
        json!({"capacity": capacity.to_string(), "duration_blocks": 100, "payment": payment}),
        None,
    )
}

#[test]
fn a_payee_buys_its_channel_from_the_hub_and_is_paid_through_it() {
    let _nodes = common::node_processes();
    let dir = tempfile::tempdir().unwrap();
    let keys: Vec<KeyPair> = (0..6).map(|_| KeyPair::generate()).collect();
    let [validator, hub, payer_key, payee_key, second, third] = &keys[..] else {
        unreachable!()
    };
    let (mut node, spec) = hub_node(
        dir.path(),
        "hub-requests",
        validator,
        hub,
        &[hub, payer_key, payee_key, second, third],
    );
    let config = std::fs::read_to_string(&node.config).unwrap();
    std::fs::write(
        &node.config,
        format!("{config}[hub.requests]\nenabled = true\nmax_total = 700000\n"),
    )
    .unwrap();
    let doin = doin();
    node.start(&doin);
    let chain_id = spec.chain_id().unwrap();
    let rest = node.rest.clone();
    let cli = Cli {
        doin,
        rest: rest.clone(),
        cookie: dir.path().join("data").join("hub.cookie"),
    };

    // The price, and what is not sold.
    let (_, quote) = get(&format!(
        "{rest}/v1/hub/channel-requests/quote?capacity={CAPACITY}&duration_blocks=100"
    ))
    .unwrap();
    assert_eq!(quote["fee"], FEE.to_string());
    assert_eq!(
        quote["pay_to"],
        Address::new(Network::Devnet, hub.public()).to_string()
    );
    let (s, v) = get(&format!(
        "{rest}/v1/hub/channel-requests/quote?capacity=10&duration_blocks=100"
    ))
    .unwrap();
    assert_eq!(
        (s, &v["type"]),
        (400, &json!("urn:doin:problem:invalid-request"))
    );

    // The payee buys its channel from the command line.
    let payee = user(dir.path(), "payee", payee_key);
    let before = balance(&rest, payee_key);
    let bought = cli.ok(
        Some(&payee),
        &[
            "request-channel",
            "--capacity",
            "0.003",
            "--duration-blocks",
            "100",
        ],
    );
    assert_eq!(bought["status"], "opened", "{bought}");
    assert_eq!(bought["fee"], FEE.to_string());
    let out_id = bought["channel"].as_str().unwrap().to_string();
    let lease_until = bought["lease_until"].as_u64().unwrap();
    let channel = cli.ok(None, &["channels", &out_id]);
    assert_eq!(channel["role"], "outgoing");
    assert_eq!(channel["peer"], bought["payee"]);
    assert_eq!(channel["hub_balance_msat"], (CAPACITY * 1_000).to_string());
    // The payee paid the fee (and the transfer's own fee), nothing else.
    let payee_addr = Address::new(Network::Devnet, payee_key.public()).to_string();
    let (_, ops) = get(&format!(
        "{rest}/v1/tx/accounts/{payee_addr}/operations?order=oldest"
    ))
    .unwrap();
    let out: Vec<&Value> = ops["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["kind"] == "transfer_out")
        .collect();
    assert_eq!(out.len(), 1, "{ops}");
    assert_eq!(out[0]["debit"], FEE.to_string());
    let fee_paid: u64 = ops["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["kind"] == "fee")
        .map(|o| o["debit"].as_str().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(balance(&rest, payee_key), before - FEE - fee_paid);

    // A payer's stream reaches the payee through the bought channel.
    let payer = user(dir.path(), "payer", payer_key);
    let in_id = cli.ok(Some(&payer), &["connect", "--deposit", "0.005"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let stream = stream_to(&cli, &payer, &payee, &in_id, "10000000");
    cli.ok(
        Some(&payer),
        &tick(&in_id, &stream, "1000000", &["--count", "2"]),
    );
    let synced = wait_until("the payee is paid through its channel", 30, || {
        let v = cli.ok(Some(&payee), &["sync", "--channel", &out_id]);
        (v["my_balance_msat"] != "0").then_some(v)
    });
    assert!(
        synced["my_balance_msat"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );

    // The hub keeps its word: no operator close before the lease ends.
    let height = node.height();
    assert!(
        height < lease_until,
        "the lease ended before the test could look"
    );
    let (ok, _, err) = cli.run(None, &["operator", "close", &out_id]);
    assert!(!ok && err.contains("channel-leased"), "{err}");

    // Over REST: a payment that is not a transfer to the hub is refused ...
    let to_someone_else = payment(chain_id, second, third, FEE, 0);
    let (s, v) = request(&rest, CAPACITY, &to_someone_else);
    assert_eq!(
        (s, &v["type"]),
        (400, &json!("urn:doin:problem:invalid-request")),
        "{v}"
    );
    let short = payment(chain_id, second, hub, FEE - 1, 0);
    let (s, v) = request(&rest, CAPACITY, &short);
    assert_eq!(s, 400, "{v}");
    // ... the same payment again is the same request ...
    let paid = payment(chain_id, second, hub, FEE, 0);
    let (s, first) = request(&rest, CAPACITY, &paid);
    assert_eq!(s, 202, "{first}");
    let (s, again) = request(&rest, CAPACITY, &paid);
    assert_eq!((s, &again["id"]), (202, &first["id"]));
    // ... and the hub's 700 000 base units for requested channels are taken.
    let (s, v) = request(&rest, CAPACITY, &payment(chain_id, third, hub, FEE, 0));
    assert_eq!(
        (s, &v["type"]),
        (409, &json!("urn:doin:problem:insufficient-liquidity")),
        "{v}"
    );
    let id = first["id"].as_str().unwrap().to_string();
    let opened = wait_until("the second request is opened", 60, || {
        get_ok(&format!("{rest}/v1/hub/channel-requests/{id}")).filter(|r| r["status"] == "opened")
    });
    let second_channel = opened["channel"].as_str().unwrap().to_string();
    wait_until("the second channel is on chain", 60, || {
        get_ok(&format!("{rest}/v1/tx/channels/{second_channel}")).map(|_| ())
    });
}
