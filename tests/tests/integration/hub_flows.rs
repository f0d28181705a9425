//! The hub end to end on a real transfer chain (RocksDB, signed transactions, blocks): a payer
//! streams micropayments to a payee through the hub, set up by the payee's invoice; a
//! hash-locked payment goes payer → hub → payee; the hub restarts from its store without
//! losing an acknowledged payment; a payer that posts an old state is challenged by the
//! watchtower and loses its reserve; the payee closes and finds the money in its balance; and
//! the supply adds up throughout.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use doin_channels::ChannelMachine;
use doin_channels::{Change, Message};
use doin_crypto::KeyPair;
use doin_hub::store::{PaymentKind, StreamShare};
use doin_hub::{HubConfig, HubError, PendingAnswer, ProposalContext};
use doin_tests::hub_harness::{
    copy_key, exchange, htlc_context, open_hub, payee_invoice, pull, tick_context, HubWorld, Net,
    Peer, UNIT,
};
use doin_tx_core::channel::{sha256, ChannelId, ChannelPhase, Side};
use doin_tx_core::{ConsensusParams, StateView, TxPayload};
use doin_types::{Amount, Hash256, Msat, Network, PublicKeyBytes};

/// Windows of a few blocks, so the tests can wait them out.
fn short_windows() -> HubConfig {
    HubConfig {
        dispute_blocks: 4,
        min_dispute_blocks: 3,
        cltv_delta: 5,
        ..HubConfig::default()
    }
}

#[test]
fn streams_routed_payments_restart_watchtower_and_payout_through_the_hub() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = short_windows();
    // The hub has a channel to the payee (100 000 units); the payer one to the hub (50 000).
    let HubWorld {
        net,
        mut hub,
        hub_key,
        mut payer,
        mut payee,
        in_id,
        out_id,
    } = HubWorld::new(dir.path(), cfg.clone(), 50_000, 100_000);
    let (payer_key, payee_key) = (copy_key(&payer.key), copy_key(&payee.key));

    // The payee's invoice sets up a stream of at most 20 000 units.
    let stream_invoice = payee_invoice(&payee_key, 20_000 * UNIT, [1; 32], "evaluation stream");
    let stream = hub.open_stream(in_id, &stream_invoice).unwrap();
    let ctx = || tick_context(stream.id);
    // 30 ticks of 100.5 units each; the payee pulls after every few.
    let h = net.height();
    for tick in 0..30 {
        let out = payer
            .m
            .propose(
                Change::Pay {
                    amount_msat: 100_500,
                },
                h,
            )
            .unwrap();
        exchange(&hub, &mut payer, &in_id, out.send.unwrap(), ctx(), h);
        if tick % 4 == 3 {
            while pull(&hub, &mut payee, &out_id, h) {}
        }
    }
    while pull(&hub, &mut payee, &out_id, h) {}
    let s = hub.stream(&stream.id).unwrap();
    assert_eq!(s.ticks, 30);
    assert_eq!(s.received_msat.get(), 30 * 100_500);
    // 0.1 % fee per tick: 100 msat each.
    assert_eq!(s.fees_msat.get(), 30 * 100);
    assert_eq!(s.forwarded_msat.get(), 30 * 100_400);
    assert_eq!(payee.m.my_balance_msat(), 30 * 100_400);
    assert_eq!(payer.m.my_balance_msat(), 50_000 * UNIT - 30 * 100_500);
    assert_eq!(
        payer.m.latest(),
        &hub.channel(&in_id).unwrap().machine.latest
    );
    assert_eq!(
        payee.m.latest(),
        &hub.channel(&out_id).unwrap().machine.latest
    );
    // Over budget is refused without a signature.
    let over = payer
        .m
        .propose(
            Change::Pay {
                amount_msat: 20_000 * UNIT,
            },
            h,
        )
        .unwrap();
    let refused = hub.handle(&in_id, over.send.unwrap(), ctx()).unwrap();
    assert!(
        matches!(refused.reply, Some(Message::Reject { .. })),
        "{refused:?}"
    );
    // The test's payer keeps its channel in memory: nothing to persist or send.
    let _ = payer
        .m
        .handle(&payer.key, refused.reply.unwrap(), h)
        .unwrap();

    // The hub restarts: every acknowledged payment and state is still there.
    let ledger_before = hub.store().payments(0, 10_000).unwrap();
    drop(hub);
    hub = open_hub(dir.path(), &hub_key, &net, cfg.clone());
    assert_eq!(hub.store().payments(0, 10_000).unwrap(), ledger_before);
    assert_eq!(hub.stream(&stream.id).unwrap(), s);
    assert_eq!(
        payer.m.latest(),
        &hub.channel(&in_id).unwrap().machine.latest
    );
    let delivered: u64 = ledger_before
        .iter()
        .filter(|p| p.kind == PaymentKind::StreamOut)
        .map(|p| p.amount_msat.get())
        .sum();
    assert_eq!(delivered, payee.m.my_balance_msat());
    let payee_view = hub
        .store()
        .payee_payments(&payee_key.public(), 0, 1_000)
        .unwrap();
    assert!(payee_view.iter().all(|p| p.kind == PaymentKind::StreamOut));
    assert_eq!(
        payee_view.iter().map(|p| p.amount_msat.get()).sum::<u64>(),
        delivered
    );

    // A hash-locked payment of 777 units: payer → hub → payee, released by the preimage.
    let preimage = [42u8; 32];
    let invoice = payee_invoice(&payee_key, 777 * UNIT, preimage, "one verification");
    let h = net.height();
    let fee = cfg.fee.fee(Msat::new(777 * UNIT)).unwrap().get();
    let add = payer
        .m
        .propose(
            Change::AddHtlc {
                amount_msat: 777 * UNIT + fee,
                payment_hash: Hash256(sha256(&preimage)),
                expiry: h + 40,
            },
            h,
        )
        .unwrap();
    exchange(
        &hub,
        &mut payer,
        &in_id,
        add.send.unwrap(),
        htlc_context(invoice),
        h,
    );
    // The hub locked the same hash towards the payee, with an earlier expiry.
    assert!(pull(&hub, &mut payee, &out_id, h));
    let locked = &payee.m.latest().state.htlcs[0];
    assert_eq!(locked.amount_msat, 777 * UNIT);
    assert_eq!(locked.expiry, h + 40 - 5);
    // The payee takes it with the preimage; the hub then takes the payer's with it.
    let take = payee
        .m
        .propose(Change::FulfillHtlc { preimage }, h)
        .unwrap();
    exchange(
        &hub,
        &mut payee,
        &out_id,
        take.send.unwrap(),
        ProposalContext::default(),
        h,
    );
    assert!(pull(&hub, &mut payer, &in_id, h));
    assert!(payer.m.latest().state.htlcs.is_empty());
    assert_eq!(payee.m.my_balance_msat(), delivered + 777 * UNIT);
    assert_eq!(
        payer.m.my_balance_msat(),
        50_000 * UNIT - 30 * 100_500 - 777 * UNIT - fee
    );

    // The payer posts its opening state (seq 0), older than what it signed since: the
    // watchtower challenges with the newest state and the payer forfeits 1 % of 50 000.
    net.send(
        &payer_key,
        TxPayload::ChannelForceClose {
            channel: in_id,
            state: None,
        },
    );
    net.block();
    let report = hub.watch().unwrap();
    assert_eq!(report.challenged, vec![in_id]);
    net.block();
    let latest_seq = payer.m.latest().state.seq;
    match net.chain.store().channel(&in_id).unwrap().unwrap().phase {
        ChannelPhase::Closing {
            posted, posted_by, ..
        } => {
            assert_eq!(posted.seq, latest_seq);
            assert_eq!(posted_by, Side::B);
            assert_eq!(
                posted.balance_a_msat,
                payer.m.my_balance_msat() - 500 * UNIT
            );
        }
        other => panic!("{other:?}"),
    }
    // The payee closes cooperatively with the newest state both signed: paid at once (the
    // payer hands the transaction in here, so the payee's balance moves by exactly its share).
    let payee_before = net.balance(&payee_key);
    net.send(
        &payer_key,
        TxPayload::ChannelCoopClose {
            state: Box::new(payee.m.latest().clone()),
        },
    );
    net.block();
    assert_eq!(
        net.balance(&payee_key),
        payee_before + (delivered + 777 * UNIT) / UNIT
    );
    // The watch settles the payer's channel once its window is over.
    for _ in 0..5 {
        net.block();
        hub.watch().unwrap();
    }
    net.block();
    let report = hub.watch().unwrap();
    assert!(report.closed.contains(&in_id) || hub.channel(&in_id).unwrap().closed_at.is_some());
    assert!(hub.channel(&out_id).unwrap().closed_at.is_some());
    assert_eq!(net.chain.chain_stats().unwrap().in_channels, Amount::ZERO);
    net.assert_supply();
}

#[test]
fn an_operator_close_pays_the_payee_what_it_is_owed_first_and_ends_its_streams() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = short_windows();
    let HubWorld {
        net,
        hub,
        mut payer,
        mut payee,
        in_id,
        out_id,
        ..
    } = HubWorld::new(dir.path(), cfg, 50_000, 100_000);
    let payee_key = copy_key(&payee.key);
    let invoice = payee_invoice(&payee_key, 20_000 * UNIT, [4; 32], "evaluation stream");
    let stream = hub.open_stream(in_id, &invoice).unwrap();
    let ctx = || tick_context(stream.id);
    let h = net.height();
    let tick = |payer: &mut doin_tests::hub_harness::Peer| {
        let first = hub.handle(&in_id, payer.pay(100_000, h), ctx()).unwrap();
        let reply = first.reply.unwrap();
        let out = payer.m.handle(&payer.key, reply, h).unwrap();
        if let Some(confirm) = out.send {
            hub.handle(&in_id, confirm, ctx()).unwrap();
        }
    };
    // Three ticks; the payee has not taken the payout yet when the operator closes.
    for _ in 0..3 {
        tick(&mut payer);
    }
    assert_eq!(hub.close(&out_id).unwrap(), "after-payout");
    // Nothing new towards the payee: the next tick is refused, unsigned.
    let before = payer.m.latest().state.seq;
    tick(&mut payer);
    assert_eq!(payer.m.latest().state.seq, before);
    assert!(payer.m.in_flight().is_none());
    // Not closed while the payout waits.
    net.block();
    assert!(hub.watch().unwrap().closing.is_empty());
    while pull(&hub, &mut payee, &out_id, h) {}
    assert_eq!(payee.m.my_balance_msat(), 3 * 99_900);
    // Now the watch closes cooperatively and the payee is paid on chain at once.
    let balance = net.balance(&payee_key);
    assert_eq!(hub.watch().unwrap().closing, vec![out_id]);
    net.block();
    assert_eq!(net.balance(&payee_key), balance + 3 * 99_900 / UNIT);
    hub.watch().unwrap();
    assert!(hub.channel(&out_id).unwrap().closed_at.is_some());
    net.assert_supply();
}

#[test]
fn an_opening_a_node_lost_is_submitted_again_by_the_watch_and_its_answer_kept_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let (validator, hub_key, payee) = (
        KeyPair::generate(),
        KeyPair::generate(),
        KeyPair::generate(),
    );
    let spec = doin_tests::funded_genesis(
        "hub",
        &validator,
        &[&hub_key, &payee],
        10_000_000,
        ConsensusParams::public_defaults(),
    );
    // Node A takes the hub's opening transaction; node B (same chain) never sees it.
    let net_a = Net {
        chain: doin_tests::open_rocks_chain(&dir.path().join("a"), spec.clone()).unwrap(),
        validator: copy_key(&validator),
        spec: spec.clone(),
    };
    let hub = open_hub(dir.path(), &hub_key, &net_a, HubConfig::default());
    let answer = PendingAnswer {
        key: "open-1".into(),
        fingerprint: "open:payee".into(),
        status: 202,
        body: |id: &ChannelId| id.to_hex().into_bytes(),
    };
    let id = hub
        .open_outgoing_answering(payee.public(), Amount::from_base_units(1_000), Some(answer))
        .unwrap();
    // The answer was written with the channel's record.
    let stored = hub.idempotent_answer("open-1").unwrap().unwrap();
    assert_eq!(stored.body, id.to_hex().into_bytes());
    drop(hub);
    drop(net_a);

    let net_b = Net {
        chain: doin_tests::open_rocks_chain(&dir.path().join("b"), spec.clone()).unwrap(),
        validator,
        spec,
    };
    let hub = open_hub(dir.path(), &hub_key, &net_b, HubConfig::default());
    net_b.block();
    assert!(net_b.chain.store().channel(&id).unwrap().is_none());
    // The watch hands the recorded transaction to B; the channel opens there.
    assert!(hub.watch().unwrap().confirmed.is_empty());
    net_b.block();
    assert_eq!(hub.watch().unwrap().confirmed, vec![id]);
    assert!(hub.channel(&id).unwrap().opening_tx.is_none());
    net_b.assert_supply();
}

#[test]
fn a_payee_nobody_but_the_hub_or_no_one_can_sign_for_is_refused_before_anything_is_staged() {
    let dir = tempfile::tempdir().unwrap();
    let (validator, hub_key) = (KeyPair::generate(), KeyPair::generate());
    let spec = doin_tests::funded_genesis(
        "hub",
        &validator,
        &[&hub_key],
        10_000_000,
        ConsensusParams::public_defaults(),
    );
    let net = Net {
        chain: doin_tests::open_rocks_chain(&dir.path().join("a"), spec.clone()).unwrap(),
        validator,
        spec,
    };
    let hub = open_hub(dir.path(), &hub_key, &net, HubConfig::default());
    // Above the field's prime: a well-formed address whose key no one can ever sign for.
    let nobody = PublicKeyBytes([0xff; 32]);
    let refused = hub.open_outgoing(nobody, Amount::from_base_units(1_000));
    assert!(
        matches!(refused, Err(HubError::Invalid(ref why)) if why.contains("public key")),
        "{refused:?}"
    );
    let to_itself = hub.open_outgoing(hub_key.public(), Amount::from_base_units(1_000));
    assert!(
        matches!(to_itself, Err(HubError::Invalid(ref why)) if why.contains("two different parties")),
        "{to_itself:?}"
    );
    assert!(hub.channels().is_empty());
    net.block();
    net.assert_supply();
}

#[test]
fn a_tick_naming_a_vote_is_released_only_for_a_vote_the_main_chain_holds() {
    use doin_hub::store::VoteRef;
    use doin_main_core::{EvaluatorEntry, MainGenesisSpec, MainParams};
    let dir = tempfile::tempdir().unwrap();
    let cfg = short_windows();
    let HubWorld {
        net,
        hub,
        mut payer,
        payee,
        in_id,
        ..
    } = HubWorld::new(dir.path(), cfg, 50_000, 100_000);
    // A main chain where the payee is an evaluator, with no vote of it yet.
    let domain = doin_tests::sphere_domain(Amount::from_base_units(25));
    let spec = MainGenesisSpec {
        network: Network::Devnet,
        chain_name: "votes".into(),
        genesis_time: doin_types::Timestamp(doin_main_node::producer::now_ms()),
        params: MainParams::public_defaults(),
        evaluators: vec![EvaluatorEntry {
            key: payee.key.public(),
            domains: vec![domain.id.clone()],
            stake: Amount::from_base_units(1),
            all_domains: false,
        }],
        domains: vec![domain],
        reputation: vec![],
    };
    let kv: std::sync::Arc<dyn doin_store::KvStore> = std::sync::Arc::new(
        doin_store::RocksStore::open(
            &dir.path().join("main"),
            doin_main_node::store::COLUMNS,
            &doin_store::RocksConfig::default(),
        )
        .unwrap(),
    );
    let main = doin_main_node::MainChain::open(
        kv,
        spec,
        doin_main_node::MainChainConfig::default(),
        &doin_telemetry::Metrics::new(),
    )
    .unwrap();

    let invoice = payee_invoice(&payee.key, 20_000 * UNIT, [6; 32], "verification");
    let stream = hub.open_stream(in_id, &invoice).unwrap();
    let vote = VoteRef {
        optimae: Hash256([8; 32]),
        evaluator: payee.key.public(),
    };
    let h = net.height();
    // A tick naming the vote, or (split) a split tick whose one share names it; a funding
    // tick into an optimae's verification fund.
    let tick = |vote: VoteRef| ProposalContext {
        stream: Some(stream.id),
        vote: Some(vote),
        ..ProposalContext::default()
    };
    let split_tick =
        |vote: VoteRef| split_context_voting(&[(stream.id, 25 * UNIT, Some(vote.optimae))]);
    let funding = |optimae: Hash256| ProposalContext {
        fund: Some(optimae),
        ..ProposalContext::default()
    };
    // (A share's vote is always its stream payee's: someone else's cannot be named.)
    let payee_key = payee.key.public();
    let mut refused = |hub: &doin_hub::Hub, vote: VoteRef| -> String {
        let single = refused_tick(hub, &mut payer, &in_id, h, tick(vote));
        if vote.evaluator == payee_key {
            let split = refused_tick(hub, &mut payer, &in_id, h, split_tick(vote));
            assert_eq!(single, split, "a split share is checked like a tick");
        }
        single
    };
    // A hub that does not see the main chain releases no evaluator pay.
    assert!(refused(&hub, vote).contains("does not see the main chain"));
    // One that does, not for a vote the main chain does not hold, nor for someone else's.
    let hub = hub.with_main(std::sync::Arc::new(
        doin_node::hub_port::MainChainVotes::new(&main),
    ));
    assert!(refused(&hub, vote).contains("holds no agreeing vote"));
    let other = VoteRef {
        evaluator: KeyPair::generate().public(),
        ..vote
    };
    assert!(refused(&hub, other).contains("not the stream payee's"));
    // A verification fund only for an optimae the main chain has revealed, and alone.
    let reason = refused_tick(&hub, &mut payer, &in_id, h, funding(vote.optimae));
    assert!(reason.contains("no such optimae revealed"), "{reason}");
    let with_stream = ProposalContext {
        stream: Some(stream.id),
        ..funding(vote.optimae)
    };
    let reason = refused_tick(&hub, &mut payer, &in_id, h, with_stream);
    assert!(reason.contains("names only its optimae"), "{reason}");
    assert!(hub.funds().is_empty());
    assert_eq!(hub.stream(&stream.id).unwrap().ticks, 0);
}

#[test]
fn a_pipelined_confirm_and_next_tick_are_one_durable_step_and_a_refused_tick_keeps_the_confirm() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = short_windows();
    let HubWorld {
        net,
        hub,
        hub_key,
        mut payer,
        mut payee,
        in_id,
        out_id,
    } = HubWorld::new(dir.path(), cfg.clone(), 50_000, 100_000);
    let payee_key = copy_key(&payee.key);
    // A budget of five ticks.
    let invoice = payee_invoice(&payee_key, 500_000, [6; 32], "pipelined stream");
    let stream = hub.open_stream(in_id, &invoice).unwrap();
    let ctx = || tick_context(stream.id);
    let h = net.height();
    let propose = |payer: &mut doin_tests::hub_harness::Peer| payer.pay(100_000, h);
    // Tick 1 alone; ticks 2..=5 each carry the previous tick's Confirm.
    let first = hub.handle(&in_id, propose(&mut payer), ctx()).unwrap();
    let mut confirm = payer
        .m
        .handle(&payer.key, first.reply.unwrap(), h)
        .unwrap()
        .send
        .unwrap();
    // Only a Confirm may lead: a proposal followed by another is refused before anything.
    let p = propose(&mut payer);
    assert!(hub
        .handle_pipelined(&in_id, p.clone(), confirm.clone(), ctx())
        .is_err());
    // A Confirm with a forged signature: an error, and the next proposal is not signed.
    let Message::Confirm {
        channel_id, seq, ..
    } = confirm.clone()
    else {
        panic!("a confirm");
    };
    let forged = Message::Confirm {
        channel_id,
        seq,
        sig: payee_key.sign(&Hash256([1; 32])),
    };
    assert!(hub
        .handle_pipelined(&in_id, forged, p.clone(), ctx())
        .is_err());
    assert_eq!(hub.channel(&in_id).unwrap().machine.latest.state.seq, 0);
    let mut next = Some(p);
    for tick in 2..=5u64 {
        let proposal = next.take().unwrap_or_else(|| propose(&mut payer));
        let handled = hub
            .handle_pipelined(&in_id, confirm, proposal, ctx())
            .unwrap();
        // The confirmed tick is in the books by the time the answer comes.
        assert_eq!(hub.stream(&stream.id).unwrap().ticks, tick - 1);
        confirm = payer
            .m
            .handle(&payer.key, handled.reply.unwrap(), h)
            .unwrap()
            .send
            .unwrap();
    }
    // The sixth tick is over the budget: refused, unsigned, but the Confirm of the fifth counts.
    let over = propose(&mut payer);
    let handled = hub.handle_pipelined(&in_id, confirm, over, ctx()).unwrap();
    assert!(matches!(handled.reply, Some(Message::Reject { .. })));
    let s = hub.stream(&stream.id).unwrap();
    assert_eq!((s.ticks, s.received_msat.get()), (5, 500_000));
    assert_eq!(
        hub.channel(&in_id).unwrap().machine.latest,
        *payer.m.latest()
    );
    // All of it is on disk: a reopened hub has the same books and pays the payee all five.
    drop(hub);
    let hub = open_hub(dir.path(), &hub_key, &net, cfg);
    assert_eq!(hub.stream(&stream.id).unwrap().ticks, 5);
    assert_eq!(
        hub.channel(&in_id).unwrap().machine.latest,
        *payer.m.latest()
    );
    hub.flush_all().unwrap();
    while pull(&hub, &mut payee, &out_id, h) {}
    assert_eq!(payee.m.my_balance_msat(), 5 * 99_900);
}

/// `payer` proposes a 25-unit `Pay` with `ctx` on `in_id`; the hub must refuse it unsigned.
/// The reason it gave.
fn refused_tick(
    hub: &doin_hub::Hub,
    payer: &mut Peer,
    in_id: &ChannelId,
    h: u64,
    ctx: ProposalContext,
) -> String {
    let proposal = payer.pay(25 * UNIT, h);
    let reply = hub.handle(in_id, proposal, ctx).unwrap().reply;
    let Some(Message::Reject { reason, .. }) = reply.clone() else {
        panic!("the hub signed it: {reply:?}");
    };
    let _ = payer.m.handle(&payer.key, reply.unwrap(), h).unwrap();
    reason
}

/// The context of a split tick paying `shares` (stream, msat).
fn split_context(shares: &[(Hash256, u64)]) -> ProposalContext {
    let voting: Vec<_> = shares.iter().map(|(s, a)| (*s, *a, None)).collect();
    split_context_voting(&voting)
}

/// The context of a split tick paying `shares` (stream, msat, the optimae of the vote paid).
fn split_context_voting(shares: &[(Hash256, u64, Option<Hash256>)]) -> ProposalContext {
    ProposalContext {
        split: shares
            .iter()
            .map(|(stream, amount_msat, vote_optimae)| StreamShare {
                stream: *stream,
                amount_msat: Msat::new(*amount_msat),
                vote_optimae: *vote_optimae,
            })
            .collect(),
        ..ProposalContext::default()
    }
}

#[test]
fn a_split_tick_pays_several_streams_with_one_update_and_is_checked_share_by_share() {
    let dir = tempfile::tempdir().unwrap();
    // The hub may owe a payee at most 200 000 msat at a time.
    let cfg = HubConfig {
        max_owed_msat: 200_000,
        ..short_windows()
    };
    let HubWorld {
        net,
        hub,
        hub_key,
        mut payer,
        mut payee,
        in_id,
        out_id,
    } = HubWorld::new(dir.path(), cfg.clone(), 50_000, 100_000);
    // A second payee, with a channel the hub funds.
    let payee2_key = KeyPair::generate();
    let out2 = hub
        .open_outgoing(payee2_key.public(), Amount::from_base_units(100_000))
        .unwrap();
    net.block();
    assert_eq!(hub.watch().unwrap().confirmed, vec![out2]);
    let mut payee2 = Peer {
        m: ChannelMachine::new(
            net.chain.params().chain_id,
            out2,
            Side::B,
            hub_key.public(),
            payee2_key.public(),
            100_000 * UNIT,
            0,
        )
        .unwrap(),
        key: payee2_key,
    };
    // Two streams to the first payee, one to the second, each a budget of 300 000 msat.
    let payee_key = copy_key(&payee.key);
    let a = hub
        .open_stream(in_id, &payee_invoice(&payee_key, 300_000, [1; 32], "a"))
        .unwrap()
        .id;
    let b = hub
        .open_stream(in_id, &payee_invoice(&payee_key, 300_000, [2; 32], "b"))
        .unwrap()
        .id;
    let c = hub
        .open_stream(in_id, &payee_invoice(&payee2.key, 300_000, [3; 32], "c"))
        .unwrap()
        .id;
    let h = net.height();
    let refused = |payer: &mut Peer, amount: u64, ctx: ProposalContext, why: &str| {
        let handled = hub.handle(&in_id, payer.pay(amount, h), ctx).unwrap();
        let Some(reject @ Message::Reject { .. }) = handled.reply else {
            panic!("{why}: refused");
        };
        if let Message::Reject { reason, .. } = &reject {
            assert!(reason.contains(why), "{reason}");
        }
        let _ = payer.m.handle(&payer.key, reject, h).unwrap();
    };
    // Shares that do not add up to the Pay, a stream named twice, an unknown stream, a share
    // past its stream's budget, a split with a stream beside it: refused, nothing signed.
    refused(
        &mut payer,
        250_000,
        split_context(&[(a, 100_000), (b, 100_000)]),
        "add up",
    );
    refused(
        &mut payer,
        200_000,
        split_context(&[(a, 100_000), (a, 100_000)]),
        "twice",
    );
    refused(
        &mut payer,
        200_000,
        split_context(&[(a, 100_000), (Hash256([9; 32]), 100_000)]),
        "no such stream",
    );
    refused(
        &mut payer,
        400_001,
        split_context(&[(a, 100_000), (b, 300_001)]),
        "budget",
    );
    // Two shares to one payee that fit one by one but not together.
    refused(
        &mut payer,
        240_000,
        split_context(&[(a, 120_000), (b, 120_000)]),
        "liquidity",
    );
    let mut with_stream = split_context(&[(a, 100_000)]);
    with_stream.stream = Some(b);
    refused(&mut payer, 100_000, with_stream, "only its shares");
    assert_eq!(hub.channel(&in_id).unwrap().machine.latest.state.seq, 0);
    // One update pays all three streams: three stream payments, each its share.
    let shares = [(a, 100_000), (b, 50_000), (c, 120_000)];
    let handled = hub
        .handle(&in_id, payer.pay(270_000, h), split_context(&shares))
        .unwrap();
    let confirm = payer
        .m
        .handle(&payer.key, handled.reply.unwrap(), h)
        .unwrap()
        .send
        .unwrap();
    let handled = hub
        .handle(&in_id, confirm, ProposalContext::default())
        .unwrap();
    let mut paid: Vec<_> = handled
        .payments
        .iter()
        .map(|p| {
            assert_eq!(p.kind, PaymentKind::StreamIn);
            (p.stream.unwrap(), p.amount_msat.get())
        })
        .collect();
    paid.sort();
    let mut expected = shares.to_vec();
    expected.sort();
    assert_eq!(paid, expected);
    // The next split tick is signed by the hub, then the hub stops before the Confirm: the
    // reopened hub still knows what the signed tick pays and books it on the Confirm.
    let handled = hub
        .handle(
            &in_id,
            payer.pay(150_000, h),
            split_context(&[(a, 50_000), (c, 100_000)]),
        )
        .unwrap();
    drop(hub);
    let hub = open_hub(dir.path(), &hub_key, &net, cfg);
    let confirm = payer
        .m
        .handle(&payer.key, handled.reply.unwrap(), h)
        .unwrap()
        .send
        .unwrap();
    hub.handle(&in_id, confirm, ProposalContext::default())
        .unwrap();
    let ticks = |s| {
        let s = hub.stream(&s).unwrap();
        (s.ticks, s.received_msat.get())
    };
    assert_eq!(ticks(a), (2, 150_000));
    assert_eq!(ticks(b), (1, 50_000));
    assert_eq!(ticks(c), (2, 220_000));
    assert_eq!(
        hub.channel(&in_id).unwrap().machine.latest,
        *payer.m.latest()
    );
    // Each payee takes what its streams forwarded.
    let forwarded = |ids: &[Hash256]| -> u64 {
        ids.iter()
            .map(|s| hub.stream(s).unwrap().forwarded_msat.get())
            .sum()
    };
    hub.flush_all().unwrap();
    while pull(&hub, &mut payee, &out_id, h) {}
    while pull(&hub, &mut payee2, &out2, h) {}
    assert_eq!(payee.m.my_balance_msat(), forwarded(&[a, b]));
    assert_eq!(payee2.m.my_balance_msat(), forwarded(&[c]));
    assert!(forwarded(&[a, b, c]) > 0);
}

#[test]
fn concurrent_copies_of_one_proposal_get_one_signature() {
    // The hub signs outside its state lock on a copy of the channel; a copy that is stale by
    // the time it is applied must be computed again, so two racing retransmissions of one
    // proposal can never get two different signatures, nor two states signed at one seq.
    let dir = tempfile::tempdir().unwrap();
    let HubWorld {
        net,
        hub,
        mut payer,
        in_id,
        ..
    } = HubWorld::new(dir.path(), short_windows(), 50_000, 100_000);
    let h = net.height();
    for _ in 0..40 {
        let proposal = payer.pay(1_000, h);
        let barrier = std::sync::Barrier::new(2);
        let replies: Vec<Message> = std::thread::scope(|s| {
            let racers: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        hub.handle(&in_id, proposal.clone(), ProposalContext::default())
                            .unwrap()
                            .reply
                            .unwrap()
                    })
                })
                .collect();
            racers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        assert!(matches!(replies[0], Message::Accept { .. }));
        assert_eq!(replies[0], replies[1]);
        let confirm = payer
            .m
            .handle(&payer.key, replies[0].clone(), h)
            .unwrap()
            .send
            .unwrap();
        hub.handle(&in_id, confirm, ProposalContext::default())
            .unwrap();
        assert_eq!(
            hub.channel(&in_id).unwrap().machine.latest,
            *payer.m.latest()
        );
    }
}
