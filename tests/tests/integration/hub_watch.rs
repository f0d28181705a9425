//! Black-box: a payer and a payee get their money on chain when the hub cheats and vanishes.
//! Two `doin node` processes: a validator of the transfer chain, and the hub's node following
//! it over libp2p. The payer streams to the payee through the hub; then the hub posts an old
//! state of the payee's channel and its node is killed. The payee's `doin hub watch` takes the
//! hub's payouts as the hub pushes them while it lives, and, reading the chain from the
//! validator only, challenges the old state with its newest, settles after the window and
//! finds its balance plus the hub's forfeited reserve on chain; the payer's `doin hub close
//! --force` closes its channel without asking the hub.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::{self, doin, get, get_ok, wait_until, write_key, NodeProc};
use crate::hub_cli::{balance, load_machine, operator_opens, stream_to, tick, user, Cli};
use doin_crypto::KeyPair;
use doin_tx_core::{Tx, TxBody, TxPayload};
use doin_types::{Address, Amount, Hash256, Network};
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The hub's channel to the payee locks 0.004 DOIN; its reserve is 1 % of that.
const PAYEE_CAPACITY_UNITS: u64 = 400_000;
const RESERVE_MSAT: u64 = PAYEE_CAPACITY_UNITS * 1_000 / 100;

fn channel_on_chain(rest: &str, id: &str) -> Value {
    get_ok(&format!("{rest}/v1/tx/channels/{id}")).unwrap_or(Value::Null)
}

/// The payee's operations of `kind` on `rest`.
fn operations(rest: &str, k: &KeyPair, kind: &str) -> Vec<Value> {
    let a = Address::new(Network::Devnet, k.public());
    let (_, v) = get(&format!(
        "{rest}/v1/tx/accounts/{a}/operations?limit=200&order=oldest"
    ))
    .unwrap();
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["kind"] == kind)
        .cloned()
        .collect()
}

fn amount(v: &Value) -> u64 {
    v.as_str().unwrap().parse().unwrap()
}

#[test]
fn a_payee_challenges_and_settles_by_itself_when_the_hub_posts_an_old_state_and_vanishes() {
    let _nodes = common::node_processes();
    let dir = tempfile::tempdir().unwrap();
    let doin = doin();
    let (validator, hub, payer_key, payee_key) = (
        KeyPair::generate(),
        KeyPair::generate(),
        KeyPair::generate(),
        KeyPair::generate(),
    );
    let spec = doin_tests::funded_genesis(
        "hub-watch",
        &validator,
        &[&hub, &payer_key, &payee_key],
        100_000_000,
        doin_tx_core::ConsensusParams {
            target_block_time_ms: 300,
            ..doin_tx_core::ConsensusParams::public_defaults()
        },
    );
    let chain_id = spec.chain_id().unwrap();
    let genesis = dir.path().join("genesis.json");
    std::fs::write(&genesis, serde_json::to_string(&spec).unwrap()).unwrap();
    let validator_file = write_key(dir.path(), "validator", &validator);
    let hub_file = write_key(dir.path(), "hub", &hub);

    let mut chain = NodeProc::tx_node(
        dir.path(),
        "chain",
        &genesis,
        "127.0.0.1",
        &[],
        200,
        &format!(
            "[producer]\nenabled = true\nkeystore = {validator_file:?}\nblock_time_ms = 300\n"
        ),
    );
    chain.start(&doin);
    let mut hub_node = NodeProc::tx_node(
        dir.path(),
        "hub",
        &genesis,
        "127.0.0.1",
        &[chain.listen_address()],
        200,
        &format!(
            "[hub]\nkeystore = {hub_file:?}\ndispute_blocks = 40\nmin_dispute_blocks = 10\n\
             watch_interval_ms = 200\n"
        ),
    );
    // The hub runs beside the transfer chain in its own node.
    let config = std::fs::read_to_string(&hub_node.config).unwrap();
    std::fs::write(
        &hub_node.config,
        config.replace("chains = [\"tx\"]", "chains = [\"tx\", \"hub\"]"),
    )
    .unwrap();
    hub_node.start(&doin);
    wait_until("the hub's node follows the chain", 60, || {
        (hub_node.height() >= 2).then_some(())
    });

    let cli = Cli {
        doin: doin.clone(),
        rest: hub_node.rest.clone(),
        cookie: dir.path().join("hub").join("hub.cookie"),
    };
    let payer = user(dir.path(), "payer", &payer_key);
    let payee = user(dir.path(), "payee", &payee_key);
    let payee_addr = Address::new(Network::Devnet, payee_key.public()).to_string();
    let connected = cli.ok(Some(&payer), &["connect", "--deposit", "0.005"]);
    let in_id = connected["id"].as_str().unwrap().to_string();
    let out_id = operator_opens(&cli, &payee_addr, "0.004");
    let stream = stream_to(&cli, &payer, &payee, &in_id, "100000000");

    // Two rounds of ticks, each paid out to the payee: the first payout's state is the old
    // one the hub will post.
    cli.ok(
        Some(&payer),
        &tick(&in_id, &stream, "1000000", &["--count", "2"]),
    );
    let old = wait_until("the payee is paid the first ticks", 30, || {
        cli.ok(Some(&payee), &["sync", "--channel", &out_id]);
        let latest = load_machine(&payee, &out_id).0.latest().clone();
        (latest.state.seq >= 1).then_some(latest)
    });
    // From here the payee's watch runs: it reads the chain from the validator only, and takes
    // the hub's payouts as the hub pushes them (nobody calls `sync` any more).
    let mut watch = Command::new(&doin)
        .args(["hub", "watch", "--json", "--interval-ms", "300", "--node"])
        .arg(&chain.rest)
        .arg("--hub")
        .arg(&hub_node.rest)
        .arg("--keystore")
        .arg(&payee.keystore)
        .arg("--state-dir")
        .arg(&payee.state_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    cli.ok(
        Some(&payer),
        &tick(&in_id, &stream, "3000000", &["--count", "3"]),
    );
    let paid_after = |seq: u64| {
        wait_until("the hub's payout is pushed to the payee", 30, || {
            let (m, _) = load_machine(&payee, &out_id);
            (m.latest().state.seq > seq && m.in_flight().is_none()).then_some(m)
        })
    };
    let later = paid_after(old.state.seq);
    // The watch has looked at the hub once by now; this payout can only come pushed.
    cli.ok(Some(&payer), &tick(&in_id, &stream, "2000000", &[]));
    let newest = paid_after(later.latest().state.seq);
    let payee_msat = newest.my_balance_msat();
    assert!(payee_msat > 0);

    // The hub posts the old state and its node disappears.
    hub_node.kill9();
    let hub_addr = Address::new(Network::Devnet, hub.public()).to_string();
    let (_, account) = get(&format!("{}/v1/tx/accounts/{hub_addr}", chain.rest)).unwrap();
    let body = TxBody {
        chain_id,
        sender: hub.public(),
        nonce: account["next_nonce"].as_u64().unwrap(),
        max_fee_per_weight: Amount::from_base_units(50),
        max_priority_fee_per_weight: Amount::from_base_units(1),
        payload: TxPayload::ChannelForceClose {
            channel: Hash256::from_hex(&out_id).unwrap(),
            state: Some(Box::new(old.clone())),
        },
    };
    let cheat = Tx::from_signed(body.sign(&hub).unwrap()).unwrap();
    let (s, v) = common::post(
        &format!("{}/v1/tx/transactions", chain.rest),
        json!({"tx": hex::encode(cheat.bytes())}),
        None,
    );
    assert!(s == 202 || s == 200, "{s} {v}");
    wait_until("the old state is posted", 60, || {
        (channel_on_chain(&chain.rest, &out_id)["posted"]["seq"] == json!(old.state.seq))
            .then_some(())
    });
    let payee_before = balance(&chain.rest, &payee_key);
    let fees_before = operations(&chain.rest, &payee_key, "fee").len();

    // The payee's watch challenges and settles, and stops once the channel is paid out.
    let deadline = Instant::now() + Duration::from_secs(120);
    while watch.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = watch.kill();
            let out = watch.wait_with_output().unwrap();
            panic!(
                "the watch did not finish: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = watch.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let actions: Vec<String> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|v| v["action"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(actions.contains(&"synced".to_string()), "{stdout}");
    // What it did on chain; talking with the hub (a pass may find it already gone) is not.
    let on_chain: Vec<&String> = actions
        .iter()
        .filter(|a| *a != "synced" && *a != "hub-unreachable")
        .collect();
    assert_eq!(on_chain, ["challenge", "settle"], "{stdout}");

    let record = channel_on_chain(&chain.rest, &out_id);
    assert_eq!(record["phase"], "closed", "{record}");
    // Its newest balance plus the hub's forfeited reserve, rounded down to base units; less
    // the fees of its two transactions.
    let payouts = operations(&chain.rest, &payee_key, "channel_payout");
    assert_eq!(payouts.len(), 1, "{payouts:?}");
    let paid = amount(&payouts[0]["credit"]);
    assert_eq!(paid, (payee_msat + RESERVE_MSAT) / 1_000);
    let fees: u64 = operations(&chain.rest, &payee_key, "fee")[fees_before..]
        .iter()
        .map(|o| amount(&o["debit"]))
        .sum();
    assert_eq!(
        operations(&chain.rest, &payee_key, "fee").len() - fees_before,
        2
    );
    assert_eq!(balance(&chain.rest, &payee_key), payee_before + paid - fees);

    // The payer closes its own channel without the hub: at once, with its newest state.
    let (payer_m, _) = load_machine(&payer, &in_id);
    let payer_before = balance(&chain.rest, &payer_key);
    let closing = Cli {
        doin: doin.clone(),
        rest: chain.rest.clone(),
        cookie: cli.cookie.clone(),
    }
    .ok(
        Some(&payer),
        &["close", "--channel", &in_id, "--force", "--wait"],
    );
    assert!(
        matches!(closing["status"].as_str(), Some("final" | "anchored")),
        "{closing}"
    );
    assert_eq!(channel_on_chain(&chain.rest, &in_id)["phase"], "closed");
    let fee = amount(&operations(&chain.rest, &payer_key, "fee").last().unwrap()["debit"]);
    assert_eq!(
        balance(&chain.rest, &payer_key),
        payer_before + payer_m.my_balance_msat() / 1_000 - fee
    );
}
