//! Verification funds after the decision: what a closed payer channel cannot take back goes
//! back on chain once, a fund whose optimae stays undecided goes back after the timeout, and
//! an evaluator without a channel is paid later or not, as the policy says.

#![allow(clippy::unwrap_used)]

use doin_channels::{Change, ChannelMachine};
use doin_crypto::KeyPair;
use doin_hub_core::config::{HubConfig, Unchanneled};
use doin_hub_core::records::{ChannelRole, Fund, HubChannel, HubEventKind, PaymentKind, VoteRef};
use doin_hub_core::{ChainSnapshot, Decision, HubInput, MainSnapshot, Mark, PendingTx};
use doin_hub_core::{HubParams, HubState, Loaded};
use doin_tx_core::channel::Side;
use doin_tx_core::TxPayload;
use doin_types::{Amount, ChainId, Hash256, Msat, Network};
use std::sync::Arc;
use std::time::Duration;

const DAY_MS: u64 = 86_400_000;

fn key(i: u8) -> KeyPair {
    KeyPair::from_secret_bytes(&[i; 32]).unwrap()
}

/// A hub with one payer channel (`closed` or open) and one fund from it.
fn hub(closed: bool, fund: Fund) -> HubState {
    let chain_id = ChainId(Hash256([7; 32]));
    let (hub, payer) = (key(1), key(2));
    let id = fund.payer_channel;
    let m = ChannelMachine::new(
        chain_id,
        id,
        Side::B,
        payer.public(),
        hub.public(),
        10_000_000,
        0,
    )
    .unwrap();
    let mut c = HubChannel::new(
        ChannelRole::Incoming,
        payer.public(),
        m.snapshot().clone(),
        true,
    );
    c.closed_at = closed.then_some(5);
    let params = HubParams {
        key: Arc::new(hub),
        cfg: HubConfig::default(),
        chain_id,
        network: Network::Devnet,
    };
    HubState::new(
        params,
        Loaded {
            channels: vec![(id, c)],
            funds: vec![fund],
            ..Loaded::default()
        },
    )
}

fn fund(settled: bool, released: u64) -> Fund {
    Fund {
        optimae: Hash256([9; 32]),
        payer_channel: Hash256([3; 32]),
        funded_msat: Msat::new(5_000_500),
        released_msat: Msat::new(released),
        returned_msat: Msat::ZERO,
        paid: Vec::new(),
        funded_at_ms: 0,
        settled,
    }
}

fn pending(optimae: Hash256) -> ChainSnapshot {
    let mut main = MainSnapshot::default();
    main.decisions.insert(optimae, Ok(Decision::Pending));
    ChainSnapshot {
        height: 10,
        main: Some(main),
        ..ChainSnapshot::default()
    }
}

#[test]
fn what_a_closed_payer_channel_cannot_take_back_goes_back_on_chain_once() {
    let f = fund(true, 2_000_000);
    let mut st = hub(true, f.clone());
    let out = watch(&mut st, &pending(f.optimae), 1_000).unwrap();
    let [sub] = &out.submissions[..] else {
        panic!("{:?}", out.submissions)
    };
    // 3 000 500 msat kept: 3 000 base units go back, the half unit stays.
    assert_eq!(
        sub.tx,
        PendingTx::Payload(TxPayload::Transfer {
            to: key(2).public(),
            amount: Amount::from_base_units(3_000),
        })
    );
    let booked = apply(&mut st, sub.on_accept.clone(), 2_000).unwrap();
    assert_eq!(
        st.fund(&f.optimae).unwrap().returned_msat,
        Msat::new(3_000_000)
    );
    let ledger = booked.writes.ledger();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].kind, PaymentKind::FundReturn);
    // Returned: nothing goes out again, even if the mark came twice.
    let again = watch(&mut st, &pending(f.optimae), 3_000).unwrap();
    assert!(again.submissions.is_empty());
    let twice = apply(
        &mut st,
        vec![Mark::FundReturnedOnChain {
            optimae: f.optimae,
            returned_msat: Msat::new(3_000_000),
        }],
        4_000,
    )
    .unwrap();
    assert!(twice.writes.ledger().is_empty());
}

#[test]
fn a_fund_whose_optimae_stays_undecided_goes_back_after_the_timeout() {
    let f = fund(false, 0);
    let mut st = hub(false, f.clone());
    let timeout = HubConfig::default().fund_timeout_secs * 1_000;
    let early = watch(&mut st, &pending(f.optimae), timeout).unwrap();
    assert!(early.writes.funds.is_empty());
    assert!(!st.fund(&f.optimae).unwrap().settled);
    let late = watch(&mut st, &pending(f.optimae), timeout + DAY_MS).unwrap();
    let settled = st.fund(&f.optimae).unwrap();
    assert!(settled.settled && settled.paid.is_empty());
    assert_eq!(settled.returned_msat, f.funded_msat);
    assert!(late.writes.funds.contains_key(&f.optimae));
    // Its `fund.settled` event is written with it (the webhooks' source).
    let events: Vec<HubEventKind> = late.writes.events.iter().map(|e| e.kind.clone()).collect();
    assert_eq!(
        events,
        [HubEventKind::FundSettled {
            optimae: f.optimae,
            payer_channel: f.payer_channel,
            funded_msat: f.funded_msat,
            released_msat: Msat::ZERO,
            returned_msat: f.funded_msat,
            evaluators_paid: 0,
        }]
    );
    assert!(early.writes.events.is_empty());
    // Proposed back over the open payer channel (off chain, no transaction).
    assert!(late.submissions.is_empty());
    let c = st.channel(&f.payer_channel).unwrap();
    let proposed = c.queued.contains(&Change::Pay {
        amount_msat: 5_000_500,
    }) || c.machine.in_flight.is_some();
    assert!(proposed, "{c:?}");
}

fn watch(
    st: &mut HubState,
    snap: &ChainSnapshot,
    now_ms: u64,
) -> Result<doin_hub_core::HubOutput, doin_hub_core::HubError> {
    doin_hub_core::handle(st, HubInput::Watch, Duration::from_millis(now_ms), snap)
}

fn apply(
    st: &mut HubState,
    marks: Vec<Mark>,
    now_ms: u64,
) -> Result<doin_hub_core::HubOutput, doin_hub_core::HubError> {
    doin_hub_core::handle(
        st,
        HubInput::Apply { marks },
        Duration::from_millis(now_ms),
        &ChainSnapshot::default(),
    )
}

/// A hub (with `cfg`) that has the payer channel of `fund`, an open channel to each of
/// `payees`, and the votes `paid` already paid.
fn hub_paying(
    cfg: HubConfig,
    fund: Fund,
    payees: &[&KeyPair],
    paid: Vec<(VoteRef, Hash256)>,
) -> HubState {
    let chain_id = ChainId(Hash256([7; 32]));
    let (hub, payer) = (key(1), key(2));
    let incoming = ChannelMachine::new(
        chain_id,
        fund.payer_channel,
        Side::B,
        payer.public(),
        hub.public(),
        10_000_000,
        0,
    )
    .unwrap();
    let mut channels = vec![(
        fund.payer_channel,
        HubChannel::new(
            ChannelRole::Incoming,
            payer.public(),
            incoming.snapshot().clone(),
            true,
        ),
    )];
    for (i, payee) in payees.iter().enumerate() {
        let id = Hash256([100 + u8::try_from(i).unwrap(); 32]);
        let m = ChannelMachine::new(
            chain_id,
            id,
            Side::A,
            hub.public(),
            payee.public(),
            10_000_000,
            0,
        )
        .unwrap();
        channels.push((
            id,
            HubChannel::new(
                ChannelRole::Outgoing,
                payee.public(),
                m.snapshot().clone(),
                true,
            ),
        ));
    }
    let params = HubParams {
        key: Arc::new(hub),
        cfg,
        chain_id,
        network: Network::Devnet,
    };
    HubState::new(
        params,
        Loaded {
            channels,
            funds: vec![fund],
            paid_votes: paid,
            ..Loaded::default()
        },
    )
}

fn final_decision(optimae: Hash256, agreeing: &[&KeyPair]) -> ChainSnapshot {
    let mut main = MainSnapshot::default();
    main.decisions.insert(
        optimae,
        Ok(Decision::Final {
            fee: Amount::from_base_units(1_000),
            agreeing: agreeing.iter().map(|k| k.public()).collect(),
        }),
    );
    ChainSnapshot {
        height: 10,
        main: Some(main),
        ..ChainSnapshot::default()
    }
}

#[test]
fn under_hold_an_evaluator_without_a_channel_is_paid_once_it_has_one_or_the_fee_goes_back_at_the_timeout(
) {
    let (a, b) = (key(10), key(11));
    let hold = HubConfig {
        unchanneled_evaluators: Unchanneled::Hold,
        ..HubConfig::default()
    };
    let f = fund(false, 0);
    let fee = Msat::new(1_000_000);
    let decided = final_decision(f.optimae, &[&a, &b]);

    // `return` (the default): A is paid, B's fee goes back with the rest at once.
    let mut st = hub_paying(HubConfig::default(), f.clone(), &[&a], Vec::new());
    let _ = watch(&mut st, &decided, 1_000).unwrap();
    let done = st.fund(&f.optimae).unwrap();
    assert!(done.settled);
    assert_eq!(done.released_msat, fee);
    assert_eq!(done.returned_msat, f.funded_msat.checked_sub(fee).unwrap());

    // `hold`: A is paid now, the fund stays open for B (nothing goes back, no event).
    let mut st = hub_paying(hold.clone(), f.clone(), &[&a], Vec::new());
    let out = watch(&mut st, &decided, 1_000).unwrap();
    let held = st.fund(&f.optimae).unwrap().clone();
    assert!(!held.settled, "{held:?}");
    assert_eq!((held.released_msat, held.returned_msat), (fee, Msat::ZERO));
    assert!(out.writes.events.is_empty());
    // A later pass with B still without a channel changes nothing.
    let again = watch(&mut st, &decided, 2_000).unwrap();
    assert!(again.writes.funds.is_empty() && again.writes.payments.is_empty());

    // B gets a channel (it bought one): the next pass pays it and settles the fund.
    let paid_a = vec![(
        VoteRef {
            optimae: f.optimae,
            evaluator: a.public(),
        },
        f.payer_channel,
    )];
    let mut st = hub_paying(hold.clone(), held.clone(), &[&a, &b], paid_a.clone());
    let out = watch(&mut st, &decided, 3_000).unwrap();
    let settled = st.fund(&f.optimae).unwrap();
    assert!(settled.settled);
    assert_eq!(
        settled.released_msat,
        Msat::new(2_000_000),
        "each paid once"
    );
    assert_eq!(
        settled.returned_msat,
        f.funded_msat.checked_sub(Msat::new(2_000_000)).unwrap()
    );
    assert!(matches!(
        &out.writes.events[..],
        [e] if matches!(e.kind, HubEventKind::FundSettled { evaluators_paid: 2, .. })
    ));

    // B never gets one: past the fund's timeout its fee goes back with the rest.
    let timeout = HubConfig::default().fund_timeout_secs * 1_000;
    let mut st = hub_paying(hold, held, &[&a], paid_a);
    let _ = watch(&mut st, &decided, timeout + 1).unwrap();
    let timed_out = st.fund(&f.optimae).unwrap();
    assert!(timed_out.settled);
    assert_eq!(timed_out.released_msat, fee);
    assert_eq!(
        timed_out.returned_msat,
        f.funded_msat.checked_sub(fee).unwrap()
    );
}

#[test]
fn each_agreeing_vote_is_paid_one_fee_an_evaluator_of_both_rounds_twice_and_everyone_once_first() {
    let (a, b) = (key(10), key(11));
    let fee = Msat::new(1_000_000);
    let paid_to = |f: &Fund, k: &KeyPair| f.paid.iter().filter(|(e, _)| *e == k.public()).count();
    let vote_of = |f: &Fund, k: &KeyPair| VoteRef {
        optimae: f.optimae,
        evaluator: k.public(),
    };

    // A agreed in round 1 and again in round 2, B in round 2 only: three fees.
    let f = fund(false, 0);
    let decided = final_decision(f.optimae, &[&a, &b, &a]);
    let mut st = hub_paying(HubConfig::default(), f.clone(), &[&a, &b], Vec::new());
    let out = watch(&mut st, &decided, 1_000).unwrap();
    let done = st.fund(&f.optimae).unwrap().clone();
    assert!(done.settled);
    assert_eq!((paid_to(&done, &a), paid_to(&done, &b)), (2, 1));
    assert_eq!(done.released_msat, Msat::new(3_000_000));
    assert_eq!(
        done.returned_msat,
        f.funded_msat.checked_sub(Msat::new(3_000_000)).unwrap()
    );
    let releases = out
        .writes
        .payments
        .iter()
        .filter(|(p, _)| p.kind == PaymentKind::FundRelease)
        .count();
    assert_eq!(releases, 3, "one ledger entry per vote");
    // The vote is marked paid once, by the fund's payer channel.
    assert_eq!(st.paid_vote(&vote_of(&f, &a)), Some(&f.payer_channel));
    // A later pass pays nothing more.
    let again = watch(&mut st, &decided, 2_000).unwrap();
    assert!(again.writes.payments.is_empty());

    // A fund with room for two fees pays A and B once each before anyone twice.
    let small = Fund {
        funded_msat: Msat::new(2_000_000),
        ..fund(false, 0)
    };
    let mut st = hub_paying(HubConfig::default(), small.clone(), &[&a, &b], Vec::new());
    let _ = watch(&mut st, &decided, 1_000).unwrap();
    let done = st.fund(&small.optimae).unwrap();
    assert_eq!((paid_to(done, &a), paid_to(done, &b)), (1, 1));

    // A's vote paid by its payer directly (a tick naming it): the fund pays A nothing, on
    // this pass or any later one.
    let ticked = vec![(vote_of(&f, &a), f.payer_channel)];
    let mut st = hub_paying(HubConfig::default(), f.clone(), &[&a, &b], ticked);
    let _ = watch(&mut st, &decided, 1_000).unwrap();
    let done = st.fund(&f.optimae).unwrap();
    assert_eq!((paid_to(done, &a), paid_to(done, &b)), (0, 1));
    assert_eq!(done.released_msat, fee);

    // Under `hold`, with B still without a channel: A's two fees now, B's once it has one, and
    // A is not paid a third time on that later pass.
    let hold = HubConfig {
        unchanneled_evaluators: Unchanneled::Hold,
        ..HubConfig::default()
    };
    let mut st = hub_paying(hold.clone(), f.clone(), &[&a], Vec::new());
    let _ = watch(&mut st, &decided, 1_000).unwrap();
    let held = st.fund(&f.optimae).unwrap().clone();
    assert!(!held.settled);
    assert_eq!(paid_to(&held, &a), 2);
    let marked = vec![(vote_of(&f, &a), f.payer_channel)];
    let mut st = hub_paying(hold, held, &[&a, &b], marked);
    let _ = watch(&mut st, &decided, 2_000).unwrap();
    let done = st.fund(&f.optimae).unwrap();
    assert!(done.settled);
    assert_eq!((paid_to(done, &a), paid_to(done, &b)), (2, 1));
    assert_eq!(done.released_msat, Msat::new(3_000_000));
}

#[test]
fn the_gauges_say_what_can_still_move_over_open_channels_each_way() {
    let (a, b) = (key(10), key(11));
    let f = fund(false, 0);
    let mut st = hub_paying(HubConfig::default(), f.clone(), &[&a, &b], Vec::new());
    let g = st.gauges();
    // The payer holds its whole channel; the hub holds both payee channels.
    assert_eq!((g.inbound_msat, g.outbound_msat), (10_000_000, 20_000_000));
    // A fee released to A (less the hub's own fee) is owed to it and proposed at once: the hub
    // can pay that much less.
    let _ = watch(&mut st, &final_decision(f.optimae, &[&a]), 1_000).unwrap();
    let fee = Msat::new(1_000_000);
    let forward = fee
        .checked_sub(HubConfig::default().fee.fee(fee).unwrap())
        .unwrap();
    assert!(!forward.is_zero());
    let g = st.gauges();
    assert_eq!(g.outbound_msat, 20_000_000 - u128::from(forward.get()));
    assert_eq!(g.inbound_msat, 10_000_000);
}
