//! Black-box: the hub in a real `doin node` process (transfer chain + hub on one RocksDB), a
//! payer and a payee talking to it only over REST with signed channel messages.
//!
//! A stream set up by the payee's invoice carries ticks; the node is killed with SIGKILL in
//! the middle of an update (after the hub signed, before the payer confirmed); after the
//! restart every payment the hub had acknowledged is still there, the update completes, both
//! sides of both channels agree with the hub, the stream goes on, and the payee closes its
//! channel and finds the money in its transfer-chain balance.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{doin, get, get_text, hub_node, post, post_with, wait_until};
use doin_channels::{create_invoice, Change, ChannelMachine, InvoiceTerms, Message};
use doin_crypto::KeyPair;
use doin_hub::api::{
    feed_auth_hash, message_auth_hash, pipelined_auth_hash, stream_auth_hash, SignedContext,
};
use doin_hub::store::StreamShare;
use doin_tx_core::channel::{channel_id, sha256, ChannelId, Side};
use doin_tx_core::{Tx, TxBody, TxPayload};
use doin_types::{Address, Amount, ChainId, Hash256, Network};
use serde_json::{json, Value};
use std::time::{SystemTime, UNIX_EPOCH};

const UNIT: u64 = 1_000;

struct Client {
    rest: String,
    chain_id: ChainId,
}

impl Client {
    fn submit(&self, from: &KeyPair, nonce: u64, payload: TxPayload) -> String {
        let body = TxBody {
            chain_id: self.chain_id,
            sender: from.public(),
            nonce,
            max_fee_per_weight: Amount::from_base_units(50),
            max_priority_fee_per_weight: Amount::from_base_units(1),
            payload,
        };
        let tx = Tx::from_signed(body.sign(from).unwrap()).unwrap();
        let (s, v) = post(
            &format!("{}/v1/tx/transactions", self.rest),
            json!({"tx": hex::encode(tx.bytes())}),
            None,
        );
        assert!(s == 202 || s == 200, "{s} {v}");
        v["id"].as_str().unwrap().to_string()
    }

    /// Sends `msg` on `channel`, signed by `key`; the hub's reply and the payments it reports.
    fn send(
        &self,
        key: &KeyPair,
        channel: &ChannelId,
        msg: &Message,
        stream: Option<&Hash256>,
    ) -> (Option<Message>, Vec<Value>) {
        common::send_channel_message(&self.rest, &self.chain_id, key, channel, msg, stream)
    }

    /// Sends `confirm` and `next` in one request (`next` pays into `stream`); the status, the
    /// answer, the hub's reply to `next` and the payments it reports.
    fn send_pipelined(
        &self,
        key: &KeyPair,
        channel: &ChannelId,
        confirm: &Message,
        next: &Message,
        stream: &Hash256,
    ) -> (u16, Value, Option<Message>) {
        let (a, b) = (confirm.encode().unwrap(), next.encode().unwrap());
        let sig = key.sign(&pipelined_auth_hash(
            &self.chain_id,
            channel,
            &a,
            &b,
            &SignedContext {
                stream: Some(stream),
                ..SignedContext::default()
            },
        ));
        let (s, v) = post(
            &format!(
                "{}/v1/hub/channels/{}/messages",
                self.rest,
                channel.to_hex()
            ),
            json!({"message": hex::encode(&a), "next": hex::encode(&b),
                "stream": stream.to_hex(), "signature": hex::encode(sig.0)}),
            None,
        );
        let reply = v["reply"]
            .as_str()
            .map(|h| Message::decode(&hex::decode(h).unwrap()).unwrap());
        (s, v, reply)
    }

    /// The payer pays one tick into `stream`; the payments the hub acknowledged.
    fn tick(
        &self,
        payer: &KeyPair,
        m: &mut ChannelMachine,
        stream: &Hash256,
        msat: u64,
    ) -> Vec<Value> {
        let id = m.id();
        let out = m.propose(Change::Pay { amount_msat: msat }, 1).unwrap();
        let (accept, _) = self.send(payer, &id, &out.send.unwrap(), Some(stream));
        let confirm = m.handle(payer, accept.unwrap(), 1).unwrap().send.unwrap();
        let (none, acked) = self.send(payer, &id, &confirm, Some(stream));
        assert!(none.is_none());
        acked
    }

    /// The payee accepts whatever the hub proposes on `channel`; the payments acknowledged.
    fn pull(&self, payee: &KeyPair, m: &mut ChannelMachine) -> Vec<Value> {
        let id = m.id();
        let mut acked = Vec::new();
        loop {
            let (_, v) = get(&format!(
                "{}/v1/hub/channels/{}/outbox",
                self.rest,
                id.to_hex()
            ))
            .unwrap();
            let Some(h) = v["message"].as_str() else {
                return acked;
            };
            let proposal = Message::decode(&hex::decode(h).unwrap()).unwrap();
            let accept = m.handle(payee, proposal, 1).unwrap().send.unwrap();
            let (confirm, payments) = self.send(payee, &id, &accept, None);
            let _ = m.handle(payee, confirm.unwrap(), 1).unwrap();
            acked.extend(payments);
        }
    }

    fn hub_channel(&self, id: &ChannelId) -> Value {
        get(&format!("{}/v1/hub/channels/{}", self.rest, id.to_hex()))
            .unwrap()
            .1
    }
}

#[test]
fn a_hub_killed_mid_stream_keeps_every_acknowledged_payment_and_the_payee_gets_paid_on_chain() {
    let _nodes = common::node_processes();
    let dir = tempfile::tempdir().unwrap();
    let (validator, hub, payer, payee) = (
        KeyPair::generate(),
        KeyPair::generate(),
        KeyPair::generate(),
        KeyPair::generate(),
    );
    let (mut node, spec) = hub_node(dir.path(), "hub", &validator, &hub, &[&hub, &payer, &payee]);
    let doin = doin();
    node.start(&doin);
    let chain_id = spec.chain_id().unwrap();
    let c = Client {
        rest: node.rest.clone(),
        chain_id,
    };
    let addr = |k: &KeyPair| Address::new(Network::Devnet, k.public()).to_string();

    // The payer opens a channel to the hub; the hub opens one to the payee (an idempotent call).
    c.submit(
        &payer,
        0,
        TxPayload::ChannelOpen {
            counterparty: hub.public(),
            deposit: Amount::from_base_units(50_000),
            counterparty_deposit: Amount::ZERO,
            dispute_blocks: 30,
            consent: None,
        },
    );
    let in_id = channel_id(&chain_id, &payer.public(), 0);
    // Opening the hub's channels is the operator's call: the token is in the data directory.
    let cookie = std::fs::read_to_string(dir.path().join("data").join("hub.cookie")).unwrap();
    let open_out_as = |token: Option<&str>| {
        post_with(
            &format!("{}/v1/hub/channels/outgoing", c.rest),
            json!({"payee": addr(&payee), "deposit": "40000"}),
            Some("open-payee-1"),
            token,
        )
    };
    for token in [None, Some("0".repeat(64).as_str())] {
        let (s, v) = open_out_as(token);
        assert_eq!(
            (s, &v["type"]),
            (401, &json!("urn:doin:problem:operator-only"))
        );
    }
    let open_out = || open_out_as(Some(&cookie));
    // Eight copies of the request at once: one opens the channel; each other either waits
    // out as `409 idempotency-key-in-flight` or gets the first answer. Never a second channel.
    let answers: Vec<(u16, Value)> = std::thread::scope(|s| {
        let calls: Vec<_> = (0..8).map(|_| s.spawn(open_out)).collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let first = answers
        .iter()
        .find(|(s, _)| *s == 202)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("no duplicate was answered 202: {answers:?}"));
    for (s, v) in &answers {
        match s {
            202 => assert_eq!(v, &first, "duplicates got different answers"),
            409 => {
                assert_eq!(v["type"], "urn:doin:problem:idempotency-key-in-flight");
                assert_eq!(v["retriable"], true, "asking again gets the answer");
            }
            _ => panic!("a duplicate got {s} {v}"),
        }
    }
    let (s, again) = open_out();
    assert_eq!(
        (s, &again),
        (202, &first),
        "a repeated Idempotency-Key got another answer"
    );
    let (_, to_payee) = get_text(&format!("{}/v1/hub/channels", c.rest), Some(&cookie)).unwrap();
    let to_payee: Vec<Value> = serde_json::from_str(&to_payee).unwrap();
    let to_payee = to_payee
        .iter()
        .filter(|ch| ch["role"] == "outgoing" && ch["peer"] == json!(addr(&payee)))
        .count();
    assert_eq!(
        to_payee, 1,
        "concurrent duplicates opened more than one channel"
    );
    let out_id = Hash256::from_hex(first["channel_id"].as_str().unwrap()).unwrap();
    wait_until("the payer's channel is on chain", 60, || {
        matches!(
            get(&format!("{}/v1/tx/channels/{}", c.rest, in_id.to_hex())),
            Some((200, _))
        )
        .then_some(())
    });
    let (s, v) = post(
        &format!("{}/v1/hub/channels", c.rest),
        json!({"channel_id": in_id.to_hex()}),
        None,
    );
    assert_eq!(s, 201, "{v}");
    wait_until("the hub's channel to the payee is open", 60, || {
        (c.hub_channel(&out_id)["status"] == "open").then_some(())
    });
    let mut payer_m = ChannelMachine::new(
        chain_id,
        in_id,
        Side::A,
        payer.public(),
        hub.public(),
        50_000 * UNIT,
        0,
    )
    .unwrap();
    let mut payee_m = ChannelMachine::new(
        chain_id,
        out_id,
        Side::B,
        hub.public(),
        payee.public(),
        40_000 * UNIT,
        0,
    )
    .unwrap();

    // The payee's invoice sets up the stream.
    let invoice = create_invoice(
        Network::Devnet,
        &payee,
        &InvoiceTerms {
            amount_msat: 10_000 * UNIT,
            payment_hash: Hash256(sha256(&[9; 32])),
            payment_secret: [1; 32],
            description: "stream".into(),
            expiry_secs: 3_600,
            min_final_cltv_blocks: 5,
        },
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap(),
    )
    .unwrap();
    // Only the payer binds an invoice to its channel.
    let open_stream = |signer: &KeyPair| {
        let sig = signer.sign(&stream_auth_hash(&chain_id, &in_id, &invoice));
        post(
            &format!("{}/v1/hub/streams", c.rest),
            json!({"payer_channel": in_id.to_hex(), "invoice": invoice, "signature": hex::encode(sig.0)}),
            None,
        )
    };
    let (s, v) = open_stream(&payee);
    assert_eq!(
        (s, &v["type"]),
        (401, &json!("urn:doin:problem:not-the-peer"))
    );
    let (s, v) = open_stream(&payer);
    assert_eq!(s, 201, "{v}");
    let stream = Hash256::from_hex(v["id"].as_str().unwrap()).unwrap();

    // A message signed by someone else is refused.
    let forged = payer_m
        .clone()
        .propose(Change::Pay { amount_msat: 1 }, 1)
        .unwrap();
    let bytes = forged.send.unwrap().encode().unwrap();
    let sig = payee.sign(&message_auth_hash(
        &chain_id,
        &in_id,
        &bytes,
        &SignedContext::default(),
    ));
    let (s, _) = post(
        &format!("{}/v1/hub/channels/{}/messages", c.rest, in_id.to_hex()),
        json!({"message": hex::encode(&bytes), "signature": hex::encode(sig.0)}),
        None,
    );
    assert_eq!(s, 401);

    let mut acked_out: Vec<Value> = Vec::new();
    for _ in 0..12 {
        c.tick(&payer, &mut payer_m, &stream, 100_000);
        acked_out.extend(c.pull(&payee, &mut payee_m));
    }
    // Mid-update: the hub has signed the payer's next tick; SIGKILL before the confirmation.
    let out = payer_m
        .propose(
            Change::Pay {
                amount_msat: 100_000,
            },
            1,
        )
        .unwrap();
    let (accept, _) = c.send(&payer, &in_id, &out.send.unwrap(), Some(&stream));
    let confirm = payer_m
        .handle(&payer, accept.unwrap(), 1)
        .unwrap()
        .send
        .unwrap();
    node.kill9();
    node.start(&doin);
    // Every payment acknowledged to the payee is still there. The payee's payments are shown
    // to the payee only (or the operator): not without its signature, not with someone
    // else's, not with one older than the window.
    let feed = format!(
        "{}/v1/hub/payees/{}/payments?limit=1000",
        c.rest,
        addr(&payee)
    );
    let now_ms = u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let signed = |k: &KeyPair, at: u64| {
        let sig = k.sign(&feed_auth_hash(&chain_id, &payee.public(), at));
        format!("{feed}&at={at}&sig={}", hex::encode(sig.0))
    };
    assert_eq!(get(&feed).unwrap().0, 401);
    assert_eq!(get(&signed(&payer, now_ms)).unwrap().0, 401);
    assert_eq!(get(&signed(&payee, now_ms - 600_000)).unwrap().0, 401);
    assert_eq!(get(&format!("{feed}&at={now_ms}&sig=zz")).unwrap().0, 400);
    assert_eq!(get(&format!("{feed}&at=soon&sig=00")).unwrap().0, 400);
    assert_eq!(get(&format!("{feed}&since=1")).unwrap().0, 400);
    let (s, kept) = get(&signed(&payee, now_ms)).unwrap();
    assert_eq!(s, 200, "{kept}");
    let kept = kept.as_array().unwrap().clone();
    // The hub's lists: all to the operator, to a party what concerns it, to nobody else; and
    // the payer's own history.
    let token = std::fs::read_to_string(dir.path().join("data").join("hub.cookie")).unwrap();
    let party = |path: &str, k: &KeyPair, signer: &KeyPair| {
        let sig = signer.sign(&feed_auth_hash(&chain_id, &k.public(), now_ms));
        format!(
            "{}{path}?party={}&at={now_ms}&sig={}",
            c.rest,
            addr(k),
            hex::encode(sig.0)
        )
    };
    for list in ["/v1/hub/channels", "/v1/hub/streams", "/v1/hub/funds"] {
        assert_eq!(get(&format!("{}{list}", c.rest)).unwrap().0, 401, "{list}");
        assert_eq!(get(&party(list, &payee, &payer)).unwrap().0, 401, "{list}");
    }
    let (_, all) = get_text(&format!("{}/v1/hub/channels", c.rest), Some(token.trim())).unwrap();
    let all: Vec<Value> = serde_json::from_str(&all).unwrap();
    assert_eq!(all.len(), 2, "{all:?}");
    let (s, mine) = get(&party("/v1/hub/channels", &payee, &payee)).unwrap();
    assert_eq!(s, 200, "{mine}");
    let mine = mine.as_array().unwrap();
    assert!(
        mine.len() == 1 && mine[0]["peer"] == json!(addr(&payee)),
        "{mine:?}"
    );
    // By pages, in id order.
    let (_, first_page) = get_text(
        &format!("{}/v1/hub/channels?limit=1", c.rest),
        Some(token.trim()),
    )
    .unwrap();
    let first_page: Vec<Value> = serde_json::from_str(&first_page).unwrap();
    let after = first_page[0]["id"].as_str().unwrap();
    let (_, second_page) = get_text(
        &format!("{}/v1/hub/channels?limit=5&after={after}", c.rest),
        Some(token.trim()),
    )
    .unwrap();
    let second_page: Vec<Value> = serde_json::from_str(&second_page).unwrap();
    assert_eq!([first_page, second_page].concat(), all);
    let (s, streams) = get(&party("/v1/hub/streams", &payer, &payer)).unwrap();
    assert_eq!(
        (s, streams.as_array().unwrap().len()),
        (200, 1),
        "{streams}"
    );
    let history = format!("/v1/hub/payers/{}/payments", addr(&payer));
    let sig = payer.sign(&feed_auth_hash(&chain_id, &payer.public(), now_ms));
    let (s, paid) = get(&format!(
        "{}{history}?at={now_ms}&sig={}",
        c.rest,
        hex::encode(sig.0)
    ))
    .unwrap();
    assert_eq!(s, 200, "{paid}");
    let paid = paid.as_array().unwrap();
    assert!(
        !paid.is_empty() && paid.iter().all(|p| p["kind"] == "stream_in"),
        "{paid:?}"
    );
    assert_eq!(get(&format!("{}{history}", c.rest)).unwrap().0, 401);
    for p in &acked_out {
        assert!(
            kept.contains(p),
            "acknowledged payment {p} lost in the crash"
        );
    }
    // The interrupted update completes, pipelined with the next tick (one request carries
    // the Confirm of one tick and the proposal of the next); then four more ticks that way.
    let pay = |m: &mut ChannelMachine| {
        m.propose(
            Change::Pay {
                amount_msat: 100_000,
            },
            1,
        )
        .unwrap()
        .send
        .unwrap()
    };
    let mut confirm = confirm;
    let mut next = pay(&mut payer_m);
    // Signed as a single message, or not led by a Confirm: refused, nothing done.
    let (a, b) = (confirm.encode().unwrap(), next.encode().unwrap());
    let single = payer.sign(&message_auth_hash(
        &chain_id,
        &in_id,
        &a,
        &SignedContext {
            stream: Some(&stream),
            ..SignedContext::default()
        },
    ));
    let (s, _) = post(
        &format!("{}/v1/hub/channels/{}/messages", c.rest, in_id.to_hex()),
        json!({"message": hex::encode(&a), "next": hex::encode(&b),
            "stream": stream.to_hex(), "signature": hex::encode(single.0)}),
        None,
    );
    assert_eq!(s, 401);
    let (s, v, _) = c.send_pipelined(&payer, &in_id, &next, &confirm, &stream);
    assert_eq!(s, 400, "{v}");
    for tick in 0..5 {
        let (s, v, accept) = c.send_pipelined(&payer, &in_id, &confirm, &next, &stream);
        assert_eq!(s, 200, "{v}");
        let acked = v["payments"].as_array().unwrap();
        assert_eq!(acked.len(), 1, "the confirmed tick is booked once");
        acked_out.extend(c.pull(&payee, &mut payee_m));
        confirm = payer_m
            .handle(&payer, accept.unwrap(), 1)
            .unwrap()
            .send
            .unwrap();
        if tick < 4 {
            next = pay(&mut payer_m);
        }
    }
    let (none, acked) = c.send(&payer, &in_id, &confirm, Some(&stream));
    assert!(none.is_none());
    assert_eq!(acked.len(), 1);
    acked_out.extend(c.pull(&payee, &mut payee_m));
    // A split tick (here of one share) over REST: the shares are part of what the payer
    // signs; an empty list or an amount that is not a number is refused before anything.
    let tick = pay(&mut payer_m);
    let bytes = tick.encode().unwrap();
    let share = [StreamShare {
        stream,
        amount_msat: doin_types::Msat::new(100_000),
        vote_optimae: None,
    }];
    let url = format!("{}/v1/hub/channels/{}/messages", c.rest, in_id.to_hex());
    let signed = |split: &[StreamShare]| {
        let sig = payer.sign(&message_auth_hash(
            &chain_id,
            &in_id,
            &bytes,
            &SignedContext {
                split,
                ..SignedContext::default()
            },
        ));
        hex::encode(sig.0)
    };
    let body = |split: Value, sig: String| json!({"message": hex::encode(&bytes), "split": split, "signature": sig});
    let share_json = json!([{"stream": stream.to_hex(), "amount_msat": "100000"}]);
    let (s, _) = post(&url, body(json!([]), signed(&[])), None);
    assert_eq!(s, 400);
    let bad_amount = json!([{"stream": stream.to_hex(), "amount_msat": "1e5"}]);
    let (s, _) = post(&url, body(bad_amount, signed(&share)), None);
    assert_eq!(s, 400);
    // More than 64 shares or a malformed vote: 400; a field the API does not know: 422.
    let too_many: Vec<Value> = (0..65)
        .map(|_| json!({"stream": stream.to_hex(), "amount_msat": "1"}))
        .collect();
    let (s, _) = post(&url, body(json!(too_many), signed(&share)), None);
    assert_eq!(s, 400);
    let bad_vote =
        json!([{"stream": stream.to_hex(), "amount_msat": "100000", "vote_optimae": "xyz"}]);
    let (s, _) = post(&url, body(bad_vote, signed(&share)), None);
    assert_eq!(s, 400);
    let unknown = json!([{"stream": stream.to_hex(), "amount_msat": "100000", "memo": "x"}]);
    let (s, _) = post(&url, body(unknown, signed(&share)), None);
    assert_eq!(s, 422, "JSON of the wrong shape");
    let (s, _) = post(&url, body(share_json.clone(), signed(&[])), None);
    assert_eq!(s, 401, "the split is signed");
    let (s, v) = post(&url, body(share_json, signed(&share)), None);
    assert_eq!(s, 200, "{v}");
    let accept = Message::decode(&hex::decode(v["reply"].as_str().unwrap()).unwrap()).unwrap();
    let confirm = payer_m.handle(&payer, accept, 1).unwrap().send.unwrap();
    let (none, acked) = c.send(&payer, &in_id, &confirm, None);
    assert!(none.is_none());
    assert_eq!(acked.len(), 1);
    assert_eq!(acked[0]["stream"], stream.to_hex());
    acked_out.extend(c.pull(&payee, &mut payee_m));
    // A funding tick over REST: the optimae is part of what the payer signs; this node runs
    // no main chain, so the hub refuses it unsigned (a Reject), and a malformed id is 400.
    let funding = pay(&mut payer_m);
    let fbytes = funding.encode().unwrap();
    let optimae = Hash256([5; 32]);
    let fsig = |o: Option<&Hash256>| {
        let ctx = SignedContext {
            fund_optimae: o,
            ..SignedContext::default()
        };
        hex::encode(
            payer
                .sign(&message_auth_hash(&chain_id, &in_id, &fbytes, &ctx))
                .0,
        )
    };
    let fbody = |o: &str, sig: String| json!({"message": hex::encode(&fbytes), "fund_optimae": o, "signature": sig});
    let (s, _) = post(&url, fbody(&optimae.to_hex(), fsig(None)), None);
    assert_eq!(s, 401, "the funded optimae is signed");
    let (s, _) = post(&url, fbody("zz", fsig(Some(&optimae))), None);
    assert_eq!(s, 400);
    let (s, v) = post(&url, fbody(&optimae.to_hex(), fsig(Some(&optimae))), None);
    assert_eq!(s, 200, "{v}");
    let reject = Message::decode(&hex::decode(v["reply"].as_str().unwrap()).unwrap()).unwrap();
    let Message::Reject { reason, .. } = &reject else {
        panic!("the hub signed a funding tick without the main chain: {reject:?}");
    };
    assert!(reason.contains("does not see the main chain"), "{reason}");
    let _ = payer_m.handle(&payer, reject, 1).unwrap();
    let hin = c.hub_channel(&in_id);
    assert_eq!(hin["seq"], payer_m.latest().state.seq);
    assert_eq!(
        hin["peer_balance_msat"],
        payer_m.my_balance_msat().to_string()
    );
    let hout = c.hub_channel(&out_id);
    assert_eq!(hout["seq"], payee_m.latest().state.seq);
    assert_eq!(
        hout["peer_balance_msat"],
        payee_m.my_balance_msat().to_string()
    );
    // 19 ticks of 100 000 msat, less 0.1 % each.
    assert_eq!(payee_m.my_balance_msat(), 19 * 99_900);
    let delivered: u64 = acked_out
        .iter()
        .map(|p| p["amount_msat"].as_str().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(delivered, payee_m.my_balance_msat());
    let csv_url = format!("{}/v1/hub/accounting.csv", c.rest);
    assert_eq!(get_text(&csv_url, None).unwrap().0, 401);
    // A restart made a new token.
    let cookie = std::fs::read_to_string(dir.path().join("data").join("hub.cookie")).unwrap();
    let (_, csv) = get_text(&csv_url, Some(&cookie)).unwrap();
    assert!(csv.starts_with("seq,at_ms,kind"));
    assert_eq!(
        csv.lines().filter(|l| l.contains(",stream_in,")).count(),
        19
    );
    // A time range: the entries made in it, by their `at_ms`.
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    let times: Vec<u64> = rows.iter().map(|r| r[1].parse().unwrap()).collect();
    let middle = times[times.len() / 2];
    let (_, later) = get_text(&format!("{csv_url}?from={middle}"), Some(&cookie)).unwrap();
    let (_, earlier) = get_text(&format!("{csv_url}?to={middle}"), Some(&cookie)).unwrap();
    assert_eq!(
        later.lines().count() - 1,
        times.iter().filter(|t| **t >= middle).count()
    );
    assert_eq!(
        earlier.lines().count() - 1,
        times.iter().filter(|t| **t < middle).count()
    );
    let (s, empty) = get_text(&format!("{csv_url}?from=5&to=4"), Some(&cookie)).unwrap();
    assert_eq!(
        (s, empty.lines().count()),
        (200, 1),
        "an empty range: the header alone"
    );

    // API keys: made by the operator, each with its scopes, shown once, revocable.
    let keys_url = format!("{}/v1/hub/keys", c.rest);
    let (s, books) = post_with(
        &keys_url,
        json!({"scopes": ["read"], "label": "books"}),
        None,
        Some(&cookie),
    );
    assert_eq!(s, 201, "{books}");
    let books_key = books["key"].as_str().unwrap().to_string();
    assert_eq!(get_text(&csv_url, Some(&books_key)).unwrap().0, 200);
    let (s, v) = post_with(
        &format!("{}/v1/hub/invoices", c.rest),
        json!({"amount_msat": "1000"}),
        None,
        Some(&books_key),
    );
    assert_eq!(
        (s, &v["type"]),
        (403, &json!("urn:doin:problem:insufficient-scope"))
    );
    // A read key cannot make keys; the list never shows a secret.
    let (s, _) = post_with(
        &keys_url,
        json!({"scopes": ["admin"]}),
        None,
        Some(&books_key),
    );
    assert_eq!(s, 403);
    let (_, listed) = get_text(&keys_url, Some(&cookie)).unwrap();
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(listed[0].get("key").is_none(), "{listed}");
    assert_eq!(listed[0]["scopes"], json!(["read"]));
    // A forged secret for a real id is refused like no key at all.
    let forged = format!(
        "{}{}",
        &books_key[..books_key.len() - 1],
        if books_key.ends_with('0') { "1" } else { "0" }
    );
    assert_eq!(get_text(&csv_url, Some(&forged)).unwrap().0, 401);
    let id = books["id"].as_str().unwrap();
    assert_eq!(
        common::delete_with(&format!("{keys_url}/{id}"), Some(&cookie)),
        204
    );
    assert_eq!(get_text(&csv_url, Some(&books_key)).unwrap().0, 401);
    assert_eq!(
        common::delete_with(&format!("{keys_url}/{id}"), Some(&cookie)),
        404
    );

    // The metrics count what happened since the restart: 7 stream ticks in, every one
    // persisted before its answer, and the two channels open.
    let (_, metrics) = get_text(&format!("{}/metrics", c.rest), None).unwrap();
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} missing from /metrics"))
    };
    assert_eq!(value("doin_hub_payments_total{kind=\"stream_in\"}"), 7.0);
    assert!(value("doin_hub_persist_seconds_count") >= 7.0);
    assert_eq!(
        value("doin_hub_channels{role=\"payer\",status=\"open\"}"),
        1.0
    );
    assert_eq!(
        value("doin_hub_channels{role=\"payee\",status=\"open\"}"),
        1.0
    );

    // The payee closes with the newest state both signed and is paid on chain at once.
    let before: u64 = {
        let (_, v) = get(&format!("{}/v1/tx/accounts/{}", c.rest, addr(&payee))).unwrap();
        v["balance"].as_str().unwrap().parse().unwrap()
    };
    let id = c.submit(
        &payee,
        0,
        TxPayload::ChannelCoopClose {
            state: Box::new(payee_m.latest().clone()),
        },
    );
    let fee: u64 = wait_until("the close is in a block", 60, || {
        let (_, v) = get(&format!("{}/v1/tx/transactions/{id}", c.rest))?;
        v["fee_paid"]["total"].as_str()?.parse().ok()
    });
    let (_, v) = get(&format!("{}/v1/tx/accounts/{}", c.rest, addr(&payee))).unwrap();
    let after: u64 = v["balance"].as_str().unwrap().parse().unwrap();
    assert_eq!(after, before + payee_m.my_balance_msat() / UNIT - fee);
    wait_until("the hub sees its channel closed", 30, || {
        (c.hub_channel(&out_id)["status"] == "closed").then_some(())
    });
}
