//! The two-party state machine: payments and HTLCs complete with states both parties signed
//! that the chain's rules accept; crossing proposals, retransmissions, forged signatures and
//! overspending are handled without ever signing two states at one seq; and (as a property)
//! both sides always agree and the channel always holds exactly its capacity.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use doin_channels::machine::*;
use doin_channels::ChannelError;
use doin_crypto::KeyPair;
use doin_tx_core::channel::{channel_id, sha256, Channel, Side};
use doin_types::{Amount, ChainId, Hash256};
use proptest::prelude::*;

const CHAIN: ChainId = ChainId(Hash256([3; 32]));

struct Pair {
    ka: KeyPair,
    kb: KeyPair,
    a: ChannelMachine,
    b: ChannelMachine,
    chain_channel: Channel,
    /// Every snapshot each side was told to persist, in order.
    persisted: Vec<(Side, u64)>,
}

fn pair(deposit_a: u64, deposit_b: u64) -> Pair {
    let (ka, kb) = (KeyPair::generate(), KeyPair::generate());
    let id = channel_id(&CHAIN, &ka.public(), 0);
    let chain_channel = Channel::open(
        ka.public(),
        kb.public(),
        Amount::from_base_units(deposit_a),
        Amount::from_base_units(deposit_b),
        10,
        1,
    )
    .unwrap();
    let m = |side| {
        ChannelMachine::new(
            CHAIN,
            id,
            side,
            ka.public(),
            kb.public(),
            chain_channel.opening_a_msat,
            chain_channel.opening_b_msat,
        )
        .unwrap()
    };
    Pair {
        a: m(Side::A),
        b: m(Side::B),
        ka,
        kb,
        chain_channel,
        persisted: Vec::new(),
    }
}

impl Pair {
    fn machine(&mut self, side: Side) -> (&mut ChannelMachine, &KeyPair) {
        match side {
            Side::A => (&mut self.a, &self.ka),
            Side::B => (&mut self.b, &self.kb),
        }
    }

    /// Delivers `msg` to `to` and every answer back and forth until none is left; returns all
    /// events in order.
    fn deliver(&mut self, mut to: Side, msg: Message, height: u64) -> Vec<(Side, Event)> {
        let mut events = Vec::new();
        let mut next = Some(msg);
        while let Some(msg) = next.take() {
            let (m, key) = self.machine(to);
            let key = KeyPair::from_secret_bytes(&key.secret_bytes()).unwrap();
            let out = m.handle(&key, msg, height).unwrap();
            if let Some(s) = &out.persist {
                self.persisted.push((to, s.latest.state.seq));
            }
            events.extend(out.events.into_iter().map(|e| (to, e)));
            next = out.send;
            to = to.other();
        }
        events
    }

    /// `side` proposes `change` and the update runs to the end.
    fn update(&mut self, side: Side, change: Change, height: u64) -> Vec<(Side, Event)> {
        let out = self.machine(side).0.propose(change, height).unwrap();
        assert!(out.persist.is_some());
        self.deliver(side.other(), out.send.unwrap(), height)
    }

    fn assert_agree(&self) {
        assert_eq!(self.a.latest(), self.b.latest());
        assert!(self.a.in_flight().is_none() && self.b.in_flight().is_none());
        let latest = self.a.latest();
        if latest.state.seq > 0 {
            // What both hold is a state the chain accepts.
            self.chain_channel
                .check_state(&CHAIN, &self.a.id(), latest)
                .unwrap();
        }
    }
}

#[test]
fn payments_complete_with_states_the_chain_accepts() {
    let mut p = pair(1_000, 500);
    let events = p.update(
        Side::A,
        Change::Pay {
            amount_msat: 250_500,
        },
        5,
    );
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(matches!(
        events[0],
        (
            Side::A,
            Event::Completed {
                seq: 1,
                proposer: Side::A,
                ..
            }
        )
    ));
    assert!(matches!(
        events[1],
        (
            Side::B,
            Event::Completed {
                seq: 1,
                proposer: Side::A,
                ..
            }
        )
    ));
    p.assert_agree();
    assert_eq!(p.a.my_balance_msat(), 1_000_000 - 250_500);
    assert_eq!(p.b.my_balance_msat(), 500_000 + 250_500);
    // B pays back; the cooperative close of the final state pays out what the state says.
    p.update(Side::B, Change::Pay { amount_msat: 500 }, 5);
    p.assert_agree();
    let (_, payout) = p
        .chain_channel
        .coop_close(&CHAIN, &p.a.id(), p.a.latest(), 7)
        .unwrap();
    assert_eq!(payout.to_a.base_units(), 750);
    assert_eq!(payout.to_b.base_units(), 750);
    // Every side persisted before it sent: the acceptor at Accept, the proposer at Confirm.
    assert!(p.persisted.contains(&(Side::B, 0)) && p.persisted.contains(&(Side::A, 1)));
}

#[test]
fn htlcs_are_added_fulfilled_failed_and_expired() {
    let mut p = pair(1_000, 0);
    let id = p.a.id();
    let (pre1, pre2, pre3) = ([7u8; 32], [8u8; 32], [9u8; 32]);
    let add = |pre: &[u8; 32]| Change::AddHtlc {
        amount_msat: 100_000,
        payment_hash: Hash256(sha256(pre)),
        expiry: 50,
    };
    for pre in [&pre1, &pre2, &pre3] {
        p.update(Side::A, add(pre), 10);
    }
    p.assert_agree();
    assert_eq!(p.a.latest().state.htlcs.len(), 3);
    assert_eq!(p.a.my_balance_msat(), 700_000);

    // A proposal with a wrong preimage (built by hand: B's own machine would not make it)
    // is refused by A, which signs nothing.
    let events = p.deliver(
        Side::A,
        Message::Propose {
            channel_id: id,
            seq: 4,
            change: Change::FulfillHtlc { preimage: [1; 32] },
        },
        10,
    );
    assert!(events.is_empty());
    assert!(p.a.in_flight().is_none());
    // B takes the first with its preimage, gives up the second.
    p.update(Side::B, Change::FulfillHtlc { preimage: pre1 }, 10);
    p.update(
        Side::B,
        Change::FailHtlc {
            payment_hash: Hash256(sha256(&pre2)),
        },
        10,
    );
    p.assert_agree();
    assert_eq!(p.b.my_balance_msat(), 100_000);
    assert_eq!(p.a.my_balance_msat(), 800_000);
    // A takes the third back only once it has expired, and B refuses it earlier.
    let expire = Change::ExpireHtlc {
        payment_hash: Hash256(sha256(&pre3)),
    };
    assert_eq!(
        p.a.propose(expire.clone(), 49).unwrap_err(),
        ChannelError::HtlcExpiry
    );
    let events = p.deliver(
        Side::B,
        Message::Propose {
            channel_id: id,
            seq: 6,
            change: expire.clone(),
        },
        49,
    );
    assert!(matches!(&events[..], [(Side::A, Event::Rejected { .. })]) || events.is_empty());
    p.update(Side::A, expire, 50);
    p.assert_agree();
    assert_eq!(p.a.my_balance_msat(), 900_000);
    assert!(p.a.latest().state.htlcs.is_empty());
    // A fulfilment after expiry is refused: B still thinks it is in time (height 49), A has
    // seen block 50 and refuses to sign.
    p.update(Side::A, add(&pre1), 10);
    let late =
        p.b.propose(Change::FulfillHtlc { preimage: pre1 }, 49)
            .unwrap();
    let events = p.deliver(Side::A, late.send.unwrap(), 50);
    assert!(
        matches!(&events[..], [(Side::B, Event::Rejected { .. })]),
        "{events:?}"
    );
    assert_eq!(
        p.b.propose(Change::FulfillHtlc { preimage: pre1 }, 50)
            .unwrap_err(),
        ChannelError::HtlcExpiry
    );
    p.assert_agree();
    assert_eq!(p.a.latest().state.htlcs.len(), 1);
}

#[test]
fn crossing_proposals_retransmissions_and_forgeries_never_make_two_states_at_one_seq() {
    let mut p = pair(1_000, 1_000);
    let id = p.a.id();
    // Both propose seq 1 at once.
    let from_a = p.a.propose(Change::Pay { amount_msat: 10 }, 1).unwrap();
    let from_b = p.b.propose(Change::Pay { amount_msat: 20 }, 1).unwrap();
    // A refuses B's (A goes first); the refusal is still on its way when B gets A's.
    let refusal = p.a.handle(&p.ka, from_b.send.unwrap(), 1).unwrap();
    assert!(matches!(refusal.send, Some(Message::Reject { .. })));
    assert!(refusal.persist.is_none());
    // B drops its own, accepts A's, and the update completes.
    let events = p.deliver(Side::B, from_a.send.clone().unwrap(), 1);
    assert!(events.contains(&(
        Side::B,
        Event::Dropped {
            change: Change::Pay { amount_msat: 20 }
        }
    )));
    // The late refusal changes nothing.
    let late = p.b.handle(&p.kb, refusal.send.unwrap(), 1).unwrap();
    assert_eq!(late, Output::default());
    p.assert_agree();
    assert_eq!(p.a.latest().state.seq, 1);
    assert_eq!(p.b.my_balance_msat(), 1_000_010);
    // B proposes its payment again.
    p.update(Side::B, Change::Pay { amount_msat: 20 }, 1);
    p.assert_agree();

    // A retransmitted proposal gets the same signature back; a different change at a seq
    // already signed is refused.
    let out = p.a.propose(Change::Pay { amount_msat: 5 }, 1).unwrap();
    let proposal = out.send.unwrap();
    let first = p.b.handle(&p.kb, proposal.clone(), 1).unwrap();
    let again = p.b.handle(&p.kb, proposal, 1).unwrap();
    assert_eq!(first.send, again.send);
    let other =
        p.b.handle(
            &p.kb,
            Message::Propose {
                channel_id: id,
                seq: 3,
                change: Change::Pay { amount_msat: 6 },
            },
            1,
        )
        .unwrap();
    assert!(matches!(other.send, Some(Message::Reject { .. })));
    // A forged acceptance is refused and changes nothing.
    let Some(Message::Accept { sig, .. }) = first.send else {
        panic!()
    };
    let mut bad = sig;
    bad.0[5] ^= 1;
    let before = p.a.snapshot().clone();
    assert_eq!(
        p.a.handle(
            &p.ka,
            Message::Accept {
                channel_id: id,
                seq: 3,
                sig: bad
            },
            1
        )
        .unwrap_err(),
        ChannelError::BadSignature
    );
    assert_eq!(p.a.snapshot(), &before);
    p.deliver(
        Side::A,
        Message::Accept {
            channel_id: id,
            seq: 3,
            sig,
        },
        1,
    );
    p.assert_agree();
    // Messages for another channel, or handled with the wrong key, are refused.
    assert_eq!(
        p.a.handle(
            &p.ka,
            Message::Reject {
                channel_id: Hash256([0; 32]),
                seq: 1,
                reason: String::new()
            },
            1
        )
        .unwrap_err(),
        ChannelError::WrongChannel
    );
    assert_eq!(
        p.a.propose(Change::Pay { amount_msat: 1 }, 1)
            .and_then(|o| p.b.handle(&p.ka, o.send.unwrap(), 1).map(|_| ()))
            .unwrap_err(),
        ChannelError::WrongKey
    );
    // Overspending is refused at the proposer.
    let mut q = pair(1, 1);
    assert_eq!(
        q.a.propose(Change::Pay { amount_msat: 1_001 }, 1)
            .unwrap_err(),
        ChannelError::InsufficientFunds
    );
}

#[test]
fn messages_decode_exactly_or_not_at_all() {
    let msg = Message::Propose {
        channel_id: Hash256([1; 32]),
        seq: 9,
        change: Change::AddHtlc {
            amount_msat: 5,
            payment_hash: Hash256([2; 32]),
            expiry: 77,
        },
    };
    let bytes = msg.encode().unwrap();
    assert_eq!(Message::decode(&bytes).unwrap(), msg);
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(matches!(
        Message::decode(&trailing),
        Err(ChannelError::Malformed(_))
    ));
    assert!(matches!(
        Message::decode(&vec![0; MAX_MESSAGE_BYTES + 1]),
        Err(ChannelError::Malformed(_))
    ));
    assert!(matches!(
        Message::decode(&bytes[..bytes.len() - 1]),
        Err(ChannelError::Malformed(_))
    ));
}

#[test]
fn a_restored_machine_continues_where_it_stopped() {
    let mut p = pair(100, 100);
    let out = p.a.propose(Change::Pay { amount_msat: 7 }, 1).unwrap();
    // A crashes after persisting its proposal; B accepts meanwhile.
    let persisted = out.persist.unwrap();
    let accept = p.b.handle(&p.kb, out.send.unwrap(), 1).unwrap();
    p.a = ChannelMachine::restore(persisted);
    p.deliver(Side::A, accept.send.unwrap(), 1);
    p.assert_agree();
    assert_eq!(p.b.my_balance_msat(), 100_007);
}

#[test]
fn a_lost_confirmation_is_recovered_by_sending_again_what_was_sent() {
    let mut p = pair(100, 100);
    let id = p.a.id();
    // A proposes, B accepts, A confirms, and the confirmation is lost: A is done, B waits.
    let propose = p.a.propose(Change::Pay { amount_msat: 7 }, 1).unwrap();
    let accept = p.b.handle(&p.kb, propose.send.unwrap(), 1).unwrap();
    let accept = accept.send.unwrap();
    let confirm = p.a.handle(&p.ka, accept.clone(), 1).unwrap().send.unwrap();
    assert!(p.a.in_flight().is_none());
    assert!(matches!(p.b.in_flight(), Some(InFlight::Accepted { .. })));
    // B proposes nothing new meanwhile: A's next proposal is refused until B has its answer.
    let next = p.a.propose(Change::Pay { amount_msat: 1 }, 1).unwrap();
    let refused = p.b.handle(&p.kb, next.send.unwrap(), 1).unwrap();
    let refusal = refused.send.unwrap();
    assert!(matches!(refusal, Message::Reject { .. }));
    let dropped = p.a.handle(&p.ka, refusal, 1).unwrap();
    assert!(matches!(dropped.events[..], [Event::Rejected { .. }]));
    // B sends its acceptance again: A answers with the same confirmation, and both agree.
    let again = p.a.handle(&p.ka, accept.clone(), 1).unwrap();
    assert_eq!(again.send.as_ref(), Some(&confirm));
    assert!(again.persist.is_none() && again.events.is_empty());
    let events = p.deliver(Side::B, confirm.clone(), 1);
    assert_eq!(events.len(), 1);
    p.assert_agree();
    assert_eq!(p.b.my_balance_msat(), 100_007);
    // A confirmation or an acceptance arriving once more changes nothing on either side.
    let before = (p.a.snapshot().clone(), p.b.snapshot().clone());
    assert_eq!(
        p.b.handle(&p.kb, confirm.clone(), 1).unwrap(),
        Output::default()
    );
    p.deliver(Side::A, accept, 1);
    assert_eq!((p.a.snapshot().clone(), p.b.snapshot().clone()), before);
    // ... unless its signature is not the other party's on the latest state.
    let Message::Confirm { seq, mut sig, .. } = confirm else {
        panic!()
    };
    sig.0[3] ^= 1;
    let forged = Message::Confirm {
        channel_id: id,
        seq,
        sig,
    };
    assert_eq!(
        p.b.handle(&p.kb, forged, 1).unwrap_err(),
        ChannelError::BadSignature
    );
    let forged = Message::Accept {
        channel_id: id,
        seq,
        sig,
    };
    assert_eq!(
        p.a.handle(&p.ka, forged, 1).unwrap_err(),
        ChannelError::BadSignature
    );
    // Seq 0 (the opening split nobody signed) has nothing to send again.
    let mut q = pair(100, 100);
    let zero = Message::Confirm {
        channel_id: q.a.id(),
        seq: 0,
        sig,
    };
    assert_eq!(
        q.a.handle(&q.ka, zero, 1).unwrap_err(),
        ChannelError::Unexpected
    );
    assert!(q.a.in_flight().is_none() && q.a.latest().state.seq == 0);
}

#[derive(Clone, Debug)]
enum Step {
    Pay(bool, u64),
    Add(bool, u64, u8),
    Fulfill(bool, u8),
    Fail(bool, u8),
    Tick,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (any::<bool>(), 1u64..400_000).prop_map(|(b, x)| Step::Pay(b, x)),
        (any::<bool>(), 1u64..200_000, 0u8..5).prop_map(|(b, x, h)| Step::Add(b, x, h)),
        (any::<bool>(), 0u8..5).prop_map(|(b, h)| Step::Fulfill(b, h)),
        (any::<bool>(), 0u8..5).prop_map(|(b, h)| Step::Fail(b, h)),
        Just(Step::Tick),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn both_sides_agree_and_the_channel_always_holds_its_capacity(
        steps in proptest::collection::vec(step(), 1..40)
    ) {
        let mut p = pair(1_000, 700);
        let capacity = 1_700_000u64;
        let mut height = 1u64;
        for s in steps {
            let (side, change) = match s {
                Step::Pay(b, x) => (b, Change::Pay { amount_msat: x }),
                Step::Add(b, x, h) => (b, Change::AddHtlc {
                    amount_msat: x,
                    payment_hash: Hash256(sha256(&[h; 32])),
                    expiry: height + 3,
                }),
                Step::Fulfill(b, h) => (b, Change::FulfillHtlc { preimage: [h; 32] }),
                Step::Fail(b, h) => (b, Change::FailHtlc { payment_hash: Hash256(sha256(&[h; 32])) }),
                Step::Tick => { height += 1; continue; }
            };
            let side = if side { Side::B } else { Side::A };
            // Changes the proposer cannot make are refused before anything is sent.
            if let Ok(out) = p.machine(side).0.propose(change, height) {
                p.deliver(side.other(), out.send.unwrap(), height);
            }
            p.assert_agree();
            prop_assert_eq!(p.a.latest().state.total_msat(), Some(capacity));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// A peer's bytes, whatever they are: decoding never panics, and whatever decodes a
    /// machine handles with an answer or an error, never a panic, never a broken channel.
    #[test]
    fn arbitrary_peer_bytes_never_panic_or_break_the_channel(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    ) {
        let mut p = pair(1_000, 700);
        let before = p.b.latest().clone();
        // Raw bytes, and a genuine proposal with a few bytes changed.
        let genuine = p
            .a
            .propose(Change::Pay { amount_msat: 5_000 }, 1)
            .unwrap()
            .send
            .unwrap()
            .encode()
            .unwrap();
        let mut mutated = genuine.clone();
        for (at, x) in &flips {
            let i = at.index(mutated.len());
            mutated[i] ^= x;
        }
        for input in [bytes, mutated] {
            if let Ok(msg) = Message::decode(&input) {
                let _ = p.b.handle(&p.kb, msg, 1);
            }
            // Nothing both signed changes without a signature of each side.
            prop_assert_eq!(p.b.latest(), &before);
            prop_assert_eq!(p.b.latest().state.total_msat(), Some(1_700_000));
        }
    }
}
