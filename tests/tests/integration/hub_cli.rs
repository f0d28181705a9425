//! Black-box: `doin hub …` commands against a real `doin node` process, as a new payer, payee
//! and hub operator would use them. The payer connects a channel to the hub; the operator
//! opens one to the payee (refused without the operator token); the payee's invoice sets up a
//! stream the payer ticks into; a Confirm lost on its way, from the payer or to the payee, is
//! sent again by the next `sync` (or `tick`), and so is a split tick whose Propose never reached
//! the hub, with the streams it was signed for; the payee syncs and is paid; a hash-locked payment for a second
//! invoice is taken by the payee's `sync` with the preimage its `invoice create` kept; the
//! payee closes its channel and finds its balance on chain; the operator exports the books.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{doin, get, hub_node, wait_until, write_key};
use doin_channels::{Change, ChannelMachine, Message, Snapshot};
use doin_crypto::KeyPair;
use doin_hub::store::StreamShare;
use doin_types::{Address, ChainId, Hash256, Msat, Network};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const UNIT: u64 = 1_000;

/// One user of the CLI: a key file and a state directory.
pub(crate) struct User {
    pub(crate) keystore: PathBuf,
    pub(crate) state_dir: PathBuf,
}

pub(crate) struct Cli {
    pub(crate) doin: PathBuf,
    pub(crate) rest: String,
    pub(crate) cookie: PathBuf,
}

impl Cli {
    /// Runs `doin hub <args> --json` as `user`; its exit status, JSON output and stderr.
    pub(crate) fn run(&self, user: Option<&User>, args: &[&str]) -> (bool, Value, String) {
        let mut cmd = Command::new(&self.doin);
        cmd.arg("hub")
            .args(args)
            .args(["--json", "--node", &self.rest])
            .arg("--cookie")
            .arg(&self.cookie);
        if let Some(u) = user {
            cmd.arg("--keystore")
                .arg(&u.keystore)
                .arg("--state-dir")
                .arg(&u.state_dir);
        }
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        // The last line is the command's JSON answer (progress goes to stderr).
        let json = stdout
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str(l).ok())
            .unwrap_or(Value::Null);
        (
            out.status.success(),
            json,
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }

    pub(crate) fn ok(&self, user: Option<&User>, args: &[&str]) -> Value {
        let (ok, v, err) = self.run(user, args);
        assert!(ok, "doin hub {args:?} failed: {err}");
        v
    }
}

pub(crate) fn user(dir: &Path, name: &str, k: &KeyPair) -> User {
    User {
        keystore: write_key(dir, name, k),
        state_dir: dir.join(format!("{name}-channels")),
    }
}

/// The operator opens a channel of `deposit` DOIN from the hub to `payee_addr` and waits
/// until it is open; its id.
pub(crate) fn operator_opens(cli: &Cli, payee_addr: &str, deposit: &str) -> String {
    let opened = cli.ok(
        None,
        &[
            "operator",
            "open",
            "--payee",
            payee_addr,
            "--deposit",
            deposit,
        ],
    );
    let out_id = opened["channel_id"].as_str().unwrap().to_string();
    wait_until("the hub's channel to the payee is open", 60, || {
        (cli.ok(None, &["channels", &out_id])["status"] == "open").then_some(())
    });
    out_id
}

/// The payee's invoice of `amount_msat` sets up a stream from the payer's channel `in_id`;
/// the stream's id.
pub(crate) fn stream_to(
    cli: &Cli,
    payer: &User,
    payee: &User,
    in_id: &str,
    amount_msat: &str,
) -> String {
    let invoice = cli.ok(
        Some(payee),
        &["invoice", "create", "--amount-msat", amount_msat],
    )["invoice"]
        .as_str()
        .unwrap()
        .to_string();
    cli.ok(
        Some(payer),
        &["stream-open", "--channel", in_id, "--invoice", &invoice],
    )["id"]
        .as_str()
        .unwrap()
        .to_string()
}

pub(crate) fn balance(rest: &str, k: &KeyPair) -> u64 {
    let a = Address::new(Network::Devnet, k.public());
    let (_, v) = get(&format!("{rest}/v1/tx/accounts/{a}")).unwrap();
    v["balance"].as_str().unwrap().parse().unwrap()
}

#[test]
fn a_payer_a_payee_and_the_operator_use_the_hub_from_the_command_line() {
    let _nodes = common::node_processes();
    let dir = tempfile::tempdir().unwrap();
    let (validator, hub, payer_key, payee_key) = (
        KeyPair::generate(),
        KeyPair::generate(),
        KeyPair::generate(),
        KeyPair::generate(),
    );
    let (mut node, spec) = hub_node(
        dir.path(),
        "hub-cli",
        &validator,
        &hub,
        &[&hub, &payer_key, &payee_key],
    );
    let doin = doin();
    node.start(&doin);
    let cli = Cli {
        doin,
        rest: node.rest.clone(),
        cookie: dir.path().join("data").join("hub.cookie"),
    };
    let payer = user(dir.path(), "payer", &payer_key);
    let payee = user(dir.path(), "payee", &payee_key);
    let payee_addr = Address::new(Network::Devnet, payee_key.public()).to_string();

    let info = cli.ok(None, &["info"]);
    assert_eq!(
        info["address"],
        Address::new(Network::Devnet, hub.public()).to_string()
    );

    // The payer locks 0.005 DOIN (500 000 base units) in a channel to the hub.
    let connected = cli.ok(Some(&payer), &["connect", "--deposit", "0.005"]);
    let in_id = connected["id"].as_str().unwrap().to_string();
    assert_eq!(connected["role"], "incoming");

    // Opening the hub's channel to the payee is the operator's: refused with a wrong token.
    let wrong = dir.path().join("wrong.cookie");
    std::fs::write(&wrong, "f".repeat(64)).unwrap();
    let (ok, _, err) = Cli {
        cookie: wrong.clone(),
        doin: cli.doin.clone(),
        rest: cli.rest.clone(),
    }
    .run(
        None,
        &[
            "operator",
            "open",
            "--payee",
            &payee_addr,
            "--deposit",
            "0.004",
        ],
    );
    assert!(!ok && err.contains("operator-only"), "{err}");
    let out_id = operator_opens(&cli, &payee_addr, "0.004");
    // Nothing to take yet: the payee's state starts from the channel's opening on chain.
    let synced = cli.ok(Some(&payee), &["sync", "--channel", &out_id]);
    assert_eq!(
        (
            synced["completed"].as_u64(),
            synced["my_balance_msat"].as_str()
        ),
        (Some(0), Some("0"))
    );

    // The payee's invoice sets up a stream; the payer pays five ticks of 100 units.
    let inv = cli.ok(
        Some(&payee),
        &[
            "invoice",
            "create",
            "--amount-msat",
            "10000000",
            "--description",
            "evaluation",
        ],
    );
    let invoice = inv["invoice"].as_str().unwrap().to_string();
    let decoded = cli.ok(None, &["invoice", "decode", &invoice]);
    assert_eq!(decoded["payee"], payee_addr);
    let stream = cli.ok(
        Some(&payer),
        &["stream-open", "--channel", &in_id, "--invoice", &invoice],
    );
    let stream_id = stream["id"].as_str().unwrap().to_string();
    let ticked = cli.ok(
        Some(&payer),
        &tick(&in_id, &stream_id, "100000", &["--count", "5"]),
    );
    assert_eq!(ticked["completed"], 5);
    // A tick whose Confirm never reaches the hub: the hub waits for it with the update in
    // flight and would refuse every later tick. The payer's `sync` sends it again.
    let chain_id = spec.chain_id().unwrap();
    lose_the_confirm_of_a_tick(&cli, &chain_id, &payer_key, &payer, &in_id, &stream_id);
    let at_hub = cli.ok(None, &["channels", &in_id]);
    assert_eq!(at_hub["update_in_flight"], true, "{at_hub}");
    let synced = cli.ok(Some(&payer), &["sync", "--channel", &in_id]);
    let at_hub = cli.ok(None, &["channels", &in_id]);
    assert_eq!(at_hub["update_in_flight"], false, "{at_hub}");
    assert_eq!(at_hub["peer_balance_msat"], synced["my_balance_msat"]);
    assert_eq!(cli.ok(None, &["streams", &stream_id])["ticks"], 6);
    // Again, and this time the next `tick` finds out (the hub refuses it), sends the lost
    // Confirm and pays its own tick too.
    lose_the_confirm_of_a_tick(&cli, &chain_id, &payer_key, &payer, &in_id, &stream_id);
    let ticked = cli.ok(Some(&payer), &tick(&in_id, &stream_id, "100000", &[]));
    assert_eq!(ticked["completed"], 1, "{ticked}");
    assert_eq!(cli.ok(None, &["streams", &stream_id])["ticks"], 8);
    // A tick naming a vote: this node runs no main chain, so the hub refuses it unsigned.
    let vote = "ab".repeat(32);
    let (ok, _, err) = cli.run(
        Some(&payer),
        &tick(&in_id, &stream_id, "25000", &["--vote", &vote]),
    );
    assert!(!ok && err.contains("does not see the main chain"), "{err}");
    // A verification fund: refused the same way, unsigned.
    let (ok, _, err) = cli.run(
        Some(&payer),
        &[
            "fund",
            "--channel",
            &in_id,
            "--optimae",
            &"cd".repeat(32),
            "--amount-msat",
            "75000",
        ],
    );
    assert!(!ok && err.contains("does not see the main chain"), "{err}");
    // The payee accepts a payout but the hub's Confirm never reaches it: its `sync` sends the
    // acceptance again and gets the Confirm back.
    lose_the_confirm_of_a_payout(&cli, &chain_id, &payee_key, &payee, &out_id);
    let synced = cli.ok(Some(&payee), &["sync", "--channel", &out_id]);
    // 0.1 % of every tick stays with the hub.
    assert_eq!(synced["my_balance_msat"], (8 * 99_900).to_string());
    let at_hub = cli.ok(None, &["channels", &out_id]);
    assert_eq!(at_hub["peer_balance_msat"], synced["my_balance_msat"]);

    // A second stream; two split ticks pay both streams 50 units each, one update per tick.
    let inv_b = cli.ok(
        Some(&payee),
        &["invoice", "create", "--amount-msat", "1000000"],
    );
    let stream_b = cli.ok(
        Some(&payer),
        &[
            "stream-open",
            "--channel",
            &in_id,
            "--invoice",
            inv_b["invoice"].as_str().unwrap(),
        ],
    );
    let stream_b = stream_b["id"].as_str().unwrap().to_string();
    let split = cli.ok(
        Some(&payer),
        &[
            "tick",
            "--channel",
            &in_id,
            "--stream",
            &stream_id,
            "--stream",
            &stream_b,
            "--amount-msat",
            "50000",
            "--count",
            "2",
        ],
    );
    assert_eq!(split["completed"], 2, "{split}");
    // A third split tick whose Propose never reaches the hub (it was down): the payer's
    // `sync` sends it again with the shares it was signed for, so both streams are paid.
    lose_the_propose_of_a_split_tick(
        &chain_id,
        &payer_key,
        &payer,
        &in_id,
        &[&stream_id, &stream_b],
    );
    let at_hub = cli.ok(None, &["channels", &in_id]);
    assert_eq!(at_hub["update_in_flight"], false, "{at_hub}");
    let synced = cli.ok(Some(&payer), &["sync", "--channel", &in_id]);
    assert_eq!(synced["completed"], 1, "{synced}");
    assert!(
        std::fs::read_dir(&payer.state_dir)
            .unwrap()
            .flatten()
            .all(|e| !e.file_name().to_string_lossy().ends_with(".context")),
        "the context of a completed proposal is removed: {:?}",
        std::fs::read_dir(&payer.state_dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect::<Vec<_>>()
    );
    for id in [&stream_id, &stream_b] {
        let st = cli.ok(None, &["streams", id]);
        assert_eq!(st["ticks"], if *id == stream_id { 11 } else { 3 }, "{st}");
    }
    let streamed = 8 * 99_900 + 6 * 49_950;
    let synced = cli.ok(Some(&payee), &["sync", "--channel", &out_id]);
    assert_eq!(synced["my_balance_msat"], streamed.to_string());

    // A hash-locked payment of 70 units: the payee's sync takes it with the kept preimage,
    // the payer's sync sees it fulfilled.
    let inv2 = cli.ok(
        Some(&payee),
        &["invoice", "create", "--amount-msat", "70000"],
    );
    let invoice2 = inv2["invoice"].as_str().unwrap().to_string();
    let paid = cli.ok(
        Some(&payer),
        &["pay", "--channel", &in_id, "--invoice", &invoice2],
    );
    assert_eq!(paid["completed"], 1, "{paid}");
    let synced = cli.ok(Some(&payee), &["sync", "--channel", &out_id]);
    assert_eq!(
        synced["my_balance_msat"],
        (streamed + 70 * UNIT).to_string(),
        "{synced}"
    );
    let settled = cli.ok(Some(&payer), &["sync", "--channel", &in_id]);
    let fee = 70 * UNIT / 1000;
    assert_eq!(
        settled["my_balance_msat"],
        (500_000 * UNIT - 8 * 100_000 - 3 * 100_000 - 70 * UNIT - fee).to_string(),
        "{settled}"
    );
    let payments = cli.ok(None, &["payments", &payee_addr]);
    let kinds: Vec<&str> = payments
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"stream_out") && kinds.contains(&"routed_out"),
        "{kinds:?}"
    );
    // The payee reads the same with its own key (a fresh signature per request); the payer,
    // without the operator's token, is refused.
    assert_eq!(cli.ok(Some(&payee), &["payments"]), payments);
    let (ok, _, err) = Cli {
        cookie: wrong.clone(),
        doin: cli.doin.clone(),
        rest: cli.rest.clone(),
    }
    .run(Some(&payer), &["payments", &payee_addr]);
    assert!(!ok && err.contains("payee-only"), "{err}");
    // The live feed, signed by the payee: the entries so far arrive first.
    let mut follow = Command::new(&cli.doin)
        .args(["hub", "payments", "--follow", "--json", "--node", &cli.rest])
        .arg("--keystore")
        .arg(&payee.keystore)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = follow.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let first: Value =
        serde_json::from_str(&rx.recv_timeout(Duration::from_secs(30)).unwrap()).unwrap();
    follow.kill().unwrap();
    follow.wait().unwrap();
    assert_eq!(first, payments[0]);

    // Closing from a machine without the channel's history (an old state) is refused: it
    // would forfeit the reserve.
    let stranger = User {
        keystore: payee.keystore.clone(),
        state_dir: dir.path().join("empty-state"),
    };
    let (ok, _, err) = cli.run(Some(&stranger), &["close", "--channel", &out_id]);
    assert!(!ok && err.contains("older than the hub's"), "{err}");

    // The payee closes with the newest state both signed and is paid on chain at once.
    let before = balance(&cli.rest, &payee_key);
    let closed = cli.ok(Some(&payee), &["close", "--channel", &out_id, "--wait"]);
    let fee_paid: u64 = closed["fee_paid"]["total"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        balance(&cli.rest, &payee_key),
        before + (streamed + 70 * UNIT) / UNIT - fee_paid
    );

    // An invoice of the hub itself, paid by the payer and taken by the hub at once.
    let own = cli.ok(
        None,
        &[
            "operator",
            "invoice",
            "--amount-msat",
            "5000",
            "--description",
            "liquidity",
        ],
    );
    let own_invoice = own["invoice"].as_str().unwrap().to_string();
    let paid = cli.ok(
        Some(&payer),
        &["pay", "--channel", &in_id, "--invoice", &own_invoice],
    );
    assert_eq!(paid["completed"], 1, "{paid}");
    let settled = cli.ok(Some(&payer), &["sync", "--channel", &in_id]);
    assert_eq!(
        settled["my_balance_msat"],
        (500_000 * UNIT - 8 * 100_000 - 3 * 100_000 - 70 * UNIT - fee - 5_000).to_string(),
        "{settled}"
    );
    let status = cli.ok(
        None,
        &[
            "operator",
            "invoice-status",
            own["payment_hash"].as_str().unwrap(),
        ],
    );
    assert_eq!(status["paid_by"], in_id.as_str());

    // The operator's books.
    let out = Command::new(&cli.doin)
        .args([
            "hub",
            "operator",
            "accounting",
            "--node",
            &cli.rest,
            "--cookie",
        ])
        .arg(&cli.cookie)
        .output()
        .unwrap();
    let csv = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    // Eight ticks (the two whose Confirm was sent twice booked once) and three split ticks of
    // two shares: an entry per stream and tick.
    assert_eq!(
        csv.lines().filter(|l| l.contains(",stream_in,")).count(),
        14
    );
    assert_eq!(
        csv.lines().filter(|l| l.contains(",routed_out,")).count(),
        1
    );
}

/// The arguments of `doin hub tick` paying `amount_msat` into `stream` on `channel`, then
/// `more`.
pub(crate) fn tick<'a>(
    channel: &'a str,
    stream: &'a str,
    amount_msat: &'a str,
    more: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "tick",
        "--channel",
        channel,
        "--stream",
        stream,
        "--amount-msat",
        amount_msat,
    ];
    args.extend_from_slice(more);
    args
}

/// `user`'s channel machine, read from the state file `doin hub` keeps it in.
pub(crate) fn load_machine(user: &User, channel: &str) -> (ChannelMachine, PathBuf) {
    let path = user.state_dir.join(format!("{channel}.channel"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| {
        let listed: Vec<_> = std::fs::read_dir(&user.state_dir)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        panic!("{}: {e}; the directory holds {listed:?}", path.display())
    });
    let snapshot: Snapshot = doin_codec::decode_exact(&bytes).unwrap();
    (ChannelMachine::restore(snapshot), path)
}

/// The payer pays one 100-unit tick into `stream` as `doin hub tick` would, but its Confirm is
/// lost: the payer's state file holds the update complete, the hub holds it in flight.
fn lose_the_confirm_of_a_tick(
    cli: &Cli,
    chain_id: &ChainId,
    key: &KeyPair,
    payer: &User,
    channel: &str,
    stream: &str,
) {
    let (mut m, path) = load_machine(payer, channel);
    let id = Hash256::from_hex(channel).unwrap();
    let stream = Hash256::from_hex(stream).unwrap();
    let propose = m
        .propose(
            Change::Pay {
                amount_msat: 100_000,
            },
            1,
        )
        .unwrap();
    let (accept, _) = common::send_channel_message(
        &cli.rest,
        chain_id,
        key,
        &id,
        &propose.send.unwrap(),
        Some(&stream),
    );
    let confirm = m.handle(key, accept.unwrap(), 1).unwrap();
    assert!(matches!(confirm.send, Some(Message::Confirm { .. })));
    // Persisted before sending, as always; the request with the Confirm never arrives.
    std::fs::write(&path, doin_codec::encode(m.snapshot()).unwrap()).unwrap();
}

/// The payer starts a split tick of 50 units into each of `streams` as `doin hub tick` does
/// (the same library), but the hub cannot be reached: its state file holds the proposal in
/// flight, kept with the shares it is signed for, and the hub never saw it.
fn lose_the_propose_of_a_split_tick(
    chain_id: &ChainId,
    key: &KeyPair,
    payer: &User,
    channel: &str,
    streams: &[&str],
) {
    use doin_client::hub_peer::{HubPeer, MessageContext};
    let (mut m, _) = load_machine(payer, channel);
    // A port nothing listens on: the request fails as it does while the node restarts.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let unreachable = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let peer = HubPeer {
        client: doin_client::http::Client::new(&unreachable).unwrap(),
        key: KeyPair::from_secret_bytes(&key.secret_bytes()).unwrap(),
        chain_id: *chain_id,
        network: Network::Devnet,
        state_dir: payer.state_dir.clone(),
    };
    let split: Vec<StreamShare> = streams
        .iter()
        .map(|s| StreamShare {
            stream: Hash256::from_hex(s).unwrap(),
            amount_msat: Msat::new(50_000),
            vote_optimae: None,
        })
        .collect();
    let ctx = MessageContext {
        split: &split,
        ..MessageContext::default()
    };
    let change = Change::Pay {
        amount_msat: 100_000,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sent = runtime.block_on(peer.propose(&mut m, change, ctx, 1));
    assert!(sent.is_err(), "the hub was unreachable");
    let (m, _) = load_machine(payer, channel);
    assert!(m.in_flight().is_some());
}

/// The payee accepts the hub's next payout as `doin hub sync` would, but the hub's Confirm
/// (the answer to the acceptance) is lost: the hub holds the update complete, the payee's
/// state file holds it in flight.
fn lose_the_confirm_of_a_payout(
    cli: &Cli,
    chain_id: &ChainId,
    key: &KeyPair,
    payee: &User,
    channel: &str,
) {
    let (mut m, path) = load_machine(payee, channel);
    let id = Hash256::from_hex(channel).unwrap();
    let (_, outbox) = get(&format!("{}/v1/hub/channels/{channel}/outbox", cli.rest)).unwrap();
    let proposal = hex::decode(outbox["message"].as_str().expect("a payout to take")).unwrap();
    let accept = m
        .handle(key, Message::decode(&proposal).unwrap(), 1)
        .unwrap();
    std::fs::write(&path, doin_codec::encode(m.snapshot()).unwrap()).unwrap();
    let (confirm, _) =
        common::send_channel_message(&cli.rest, chain_id, key, &id, &accept.send.unwrap(), None);
    assert!(matches!(confirm, Some(Message::Confirm { .. })));
    assert!(m.in_flight().is_some());
}
