//! The hub's books under random message sequences, without a runtime, a store or a chain: a
//! few payers stream ticks (single and split, some over budget), payees take or refuse the
//! hub's payouts, messages are lost, the hub crashes between deciding and persisting, the
//! watch and flushes run in between. After every step:
//!
//! - every channel holds its capacity (both balances and the HTLCs add up to the deposits);
//! - money is conserved in total: what payers paid into the hub equals what payees received,
//!   plus the hub's fees, plus what the hub still owes payees;
//! - the hub never signs two different states for one sequence number of a channel (only
//!   what left the hub counts: an output lost in a crash was never sent).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use doin_channels::{create_invoice, ChannelMachine, InvoiceTerms, Message, Snapshot};
use doin_crypto::KeyPair;
use doin_hub_core::records::{ChannelRole, HubChannel, Payment, Stream, StreamShare};
use doin_hub_core::{
    handle, ChainSnapshot, HubConfig, HubInput, HubParams, HubState, Loaded, ProposalContext,
    Reply, Writes,
};
use doin_tx_core::channel::{sha256, ChannelId, ChannelState, Side};
use doin_types::{ChainId, Hash256, Msat, Network};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

const PAYERS: usize = 3;
const PAYEES: usize = 3;
const DEPOSIT: u64 = 100_000_000;
const BUDGET: u64 = 20_000_000;
const HEIGHT: u64 = 10;

fn now() -> Duration {
    Duration::from_secs(1_800_000_000)
}

/// The hub crashed before persisting an input's output: nothing of it left the hub.
#[derive(Debug)]
struct Crashed;

/// One of the hub's peers.
#[derive(Clone, Copy, Debug)]
enum Who {
    Payer(usize),
    Payee(usize),
}

/// What the test does next.
#[derive(Clone, Debug)]
enum Step {
    /// Payer `payer` ticks its stream to payee `payee` with `amount` msat.
    Tick {
        payer: usize,
        payee: usize,
        amount: u64,
    },
    /// Payer `payer` pays all its streams at once, `amount` msat each.
    Split {
        payer: usize,
        amount: u64,
    },
    /// Payee `payee` fetches the hub's proposal and takes it (or refuses it).
    Pull {
        payee: usize,
        refuse: bool,
    },
    Watch,
    Flush,
    /// The next input's output is lost: the hub crashed before persisting it.
    Crash,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..PAYERS, 0..PAYEES, 1u64..4_000_000)
            .prop_map(|(payer, payee, amount)| Step::Tick { payer, payee, amount }),
        2 => (0..PAYERS, 1u64..3_000_000).prop_map(|(payer, amount)| Step::Split { payer, amount }),
        3 => (0..PAYEES, prop::bool::weighted(0.2)).prop_map(|(payee, refuse)| Step::Pull { payee, refuse }),
        1 => Just(Step::Watch),
        1 => Just(Step::Flush),
        1 => Just(Step::Crash),
    ]
}

/// A peer of the hub: its key and its side of the channel.
struct Peer {
    key: KeyPair,
    channel: ChannelId,
    m: ChannelMachine,
    /// A message of this peer the hub lost in a crash: sent again before anything else.
    resend: Option<(Message, ProposalContext)>,
}

/// The hub as its shell would run it, with a map standing in for its store.
struct World {
    params: HubParams,
    state: HubState,
    /// What was persisted: the records the state is rebuilt from after a crash.
    disk: Disk,
    payers: Vec<Peer>,
    payees: Vec<Peer>,
    /// streams[payer][payee]
    streams: Vec<Vec<Hash256>>,
    /// Every state the hub sent a signature for: (channel, seq) → the state.
    signed: BTreeMap<(ChannelId, u64), ChannelState>,
    crash_next: bool,
    /// Each channel's machine as it was one message earlier: a copy another request may still
    /// be signing on (see `exchange`).
    stale: BTreeMap<ChannelId, Snapshot>,
    inputs: u64,
}

#[derive(Default, Clone)]
struct Disk {
    channels: BTreeMap<ChannelId, HubChannel>,
    streams: BTreeMap<Hash256, Stream>,
    payments: BTreeMap<u64, Payment>,
}

impl Disk {
    fn apply(&mut self, w: &Writes) {
        for id in &w.deleted_channels {
            self.channels.remove(id);
        }
        self.channels
            .extend(w.channels.iter().map(|(k, v)| (*k, v.clone())));
        self.streams
            .extend(w.streams.iter().map(|(k, v)| (*k, v.clone())));
        for (p, _) in &w.payments {
            self.payments.insert(p.seq, p.clone());
        }
    }

    fn loaded(&self) -> Loaded {
        Loaded {
            channels: self.channels.iter().map(|(k, v)| (*k, v.clone())).collect(),
            streams: self.streams.values().cloned().collect(),
            next_seq: self.payments.keys().next_back().map_or(1, |s| s + 1),
            claims_scanned: HEIGHT,
            ..Loaded::default()
        }
    }
}

fn key(i: u8) -> KeyPair {
    KeyPair::from_secret_bytes(&[i; 32]).unwrap()
}

impl World {
    fn new() -> World {
        let chain_id = ChainId(Hash256([7; 32]));
        let hub = key(1);
        let params = HubParams {
            key: Arc::new(key(1)),
            cfg: HubConfig::default(),
            chain_id,
            network: Network::Devnet,
        };
        let mut disk = Disk::default();
        let channel = |peer: &KeyPair, n: u8, role: ChannelRole| {
            let id = Hash256([n; 32]);
            let (me, a, b) = match role {
                ChannelRole::Incoming => (Side::B, peer.public(), hub.public()),
                ChannelRole::Outgoing => (Side::A, hub.public(), peer.public()),
            };
            let hub_m = ChannelMachine::new(chain_id, id, me, a, b, DEPOSIT, 0).unwrap();
            let peer_side = if me == Side::A { Side::B } else { Side::A };
            let peer_m = ChannelMachine::new(chain_id, id, peer_side, a, b, DEPOSIT, 0).unwrap();
            (
                id,
                HubChannel::new(role, peer.public(), hub_m.snapshot().clone(), true),
                peer_m,
            )
        };
        // Payers' channels come in (the hub is side B), payees' go out; key seeds 10.. and 20..
        let mut peers = |count: usize, seed: u8, role: ChannelRole| {
            (0..count)
                .map(|i| {
                    let k = key(seed + i as u8);
                    let (id, c, m) = channel(&k, seed + i as u8, role);
                    disk.channels.insert(id, c);
                    Peer {
                        key: k,
                        channel: id,
                        m,
                        resend: None,
                    }
                })
                .collect::<Vec<_>>()
        };
        let payers = peers(PAYERS, 10, ChannelRole::Incoming);
        let payees = peers(PAYEES, 20, ChannelRole::Outgoing);
        let state = HubState::new(params.clone(), disk.loaded());
        let mut w = World {
            params,
            state,
            disk,
            payers,
            payees,
            streams: Vec::new(),
            signed: BTreeMap::new(),
            crash_next: false,
            stale: BTreeMap::new(),
            inputs: 0,
        };
        for p in 0..PAYERS {
            let mut row = Vec::new();
            for q in 0..PAYEES {
                let preimage = [(p * PAYEES + q + 1) as u8; 32];
                let invoice = create_invoice(
                    Network::Devnet,
                    &w.payees[q].key,
                    &InvoiceTerms {
                        amount_msat: BUDGET,
                        payment_hash: Hash256(sha256(&preimage)),
                        payment_secret: [9; 32],
                        description: "stream".into(),
                        expiry_secs: 3600,
                        min_final_cltv_blocks: 20,
                    },
                    now(),
                )
                .unwrap();
                let out = w.input(HubInput::OpenStream {
                    payer_channel: w.payers[p].channel,
                    invoice,
                });
                match out {
                    Ok(Some(Reply::Stream(s))) => row.push(s.id),
                    other => panic!("stream not opened: {other:?}"),
                }
            }
            w.streams.push(row);
        }
        w
    }

    /// Runs one input the way the shell does: persist, then the reply leaves. After a crash
    /// nothing of it is persisted or sent (`Err`), and the state is what the store holds.
    fn input(&mut self, input: HubInput) -> Result<Option<Reply>, Crashed> {
        let snap = ChainSnapshot {
            height: HEIGHT,
            ..ChainSnapshot::default()
        };
        let out = match handle(&mut self.state, input, now(), &snap) {
            Ok(out) => out,
            // Refused: nothing changed, nothing to send.
            Err(_) => return Ok(None),
        };
        if std::mem::take(&mut self.crash_next) {
            self.state = HubState::new(self.params.clone(), self.disk.loaded());
            return Err(Crashed);
        }
        self.disk.apply(&out.writes);
        Ok(Some(out.reply))
    }

    fn peer(&mut self, who: Who) -> &mut Peer {
        match who {
            Who::Payer(i) => &mut self.payers[i],
            Who::Payee(i) => &mut self.payees[i],
        }
    }

    /// Sends again what the hub lost of `who`'s messages in a crash.
    fn catch_up(&mut self, who: Who) {
        if let Some((msg, ctx)) = self.peer(who).resend.take() {
            self.exchange(who, msg, ctx);
        }
    }

    /// Records the state the hub's outgoing message `msg` signs on channel `id`.
    fn sent(&mut self, id: &ChannelId, msg: &Message) {
        let seq = match msg {
            Message::Accept { seq, .. } | Message::Confirm { seq, .. } => *seq,
            _ => return,
        };
        let c = self.state.channel(id).unwrap();
        // An Accept signs the state in flight; a Confirm the state now both signed.
        let state = match &c.machine.in_flight {
            Some(doin_channels::InFlight::Accepted { state, .. }) if state.seq == seq => {
                state.clone()
            }
            _ => {
                assert_eq!(c.machine.latest.state.seq, seq);
                c.machine.latest.state.clone()
            }
        };
        if let Some(before) = self.signed.insert((*id, seq), state.clone()) {
            assert_eq!(before, state, "the hub signed two states at seq {seq}");
        }
    }

    /// `who` sends `first` to the hub; the two answer each other until done.
    fn exchange(&mut self, who: Who, first: Message, ctx: ProposalContext) {
        let mut next = Some((first, ctx));
        while let Some((msg, ctx)) = next.take() {
            let id = *msg.channel_id();
            let msgs = vec![(msg.clone(), ctx.clone())];
            // The machine's step made beforehand, as the shell does outside its lock: on the
            // channel as it is, on a copy one message old (another request moved it since),
            // or not at all. The hub must use it only where the channel has not moved.
            let current = self.state.channel(&id).map(|c| c.machine.clone());
            self.inputs += 1;
            let base = match self.inputs % 3 {
                0 => current.clone(),
                1 => self.stale.get(&id).cloned(),
                _ => None,
            };
            let precomputed = base
                .map(|b| doin_hub_core::precompute(&self.params.key, b, &msgs, HEIGHT))
                .unwrap_or_default();
            if let Some(c) = current {
                self.stale.insert(id, c);
            }
            let reply = self.input(HubInput::Messages {
                channel: id,
                msgs,
                precomputed,
            });
            let reply = match reply {
                Ok(Some(Reply::Messages { reply: Some(r), .. })) => r,
                Ok(_) => return,
                Err(Crashed) => {
                    self.peer(who).resend = Some((msg, ctx));
                    return;
                }
            };
            self.sent(&id, &reply);
            let peer = self.peer(who);
            // A peer that cannot take the answer (the hub lost earlier messages) stops here.
            let Ok(out) = peer.m.handle(&peer.key, reply, HEIGHT) else {
                return;
            };
            next = out.send.map(|m| (m, ProposalContext::default()));
        }
    }

    /// A payer proposes `amount_msat` with `ctx`, or resends what it has in flight.
    fn pay(&mut self, payer: usize, amount_msat: u64, ctx: ProposalContext) {
        self.catch_up(Who::Payer(payer));
        let p = &mut self.payers[payer];
        let msg = match p.m.in_flight() {
            // Still waiting on an earlier proposal (its answer was lost): propose it again.
            Some(doin_channels::InFlight::Proposed { change, state }) => Message::Propose {
                channel_id: p.channel,
                seq: state.seq,
                change: change.clone(),
            },
            Some(_) => return,
            None => {
                p.m.propose(doin_channels::Change::Pay { amount_msat }, HEIGHT)
                    .unwrap()
                    .send
                    .unwrap()
            }
        };
        self.exchange(Who::Payer(payer), msg, ctx);
    }

    fn run(&mut self, s: Step) {
        match s {
            Step::Tick {
                payer,
                payee,
                amount,
            } => {
                let ctx = ProposalContext {
                    stream: Some(self.streams[payer][payee]),
                    ..ProposalContext::default()
                };
                self.pay(payer, amount, ctx);
            }
            Step::Split { payer, amount } => {
                let split: Vec<StreamShare> = self.streams[payer]
                    .iter()
                    .map(|s| StreamShare {
                        stream: *s,
                        amount_msat: Msat::new(amount),
                        vote_optimae: None,
                    })
                    .collect();
                let ctx = ProposalContext {
                    split,
                    ..ProposalContext::default()
                };
                self.pay(payer, amount * PAYEES as u64, ctx);
            }
            Step::Pull { payee, refuse } => {
                self.catch_up(Who::Payee(payee));
                // Still waiting on the hub (it lost the message again), or signed already: a
                // payee that has accepted the proposal cannot refuse it any more.
                let p = &self.payees[payee];
                if p.resend.is_some() || (refuse && p.m.in_flight().is_some()) {
                    return;
                }
                let id = self.payees[payee].channel;
                let Ok(Some(proposal)) = self.state.outbox(&id) else {
                    return;
                };
                let p = &mut self.payees[payee];
                let answer = if refuse {
                    let Message::Propose { seq, .. } = proposal else {
                        return;
                    };
                    Some(Message::Reject {
                        channel_id: id,
                        seq,
                        reason: "not now".into(),
                    })
                } else {
                    // A payee that lost track of the channel cannot take it.
                    p.m.handle(&p.key, proposal, HEIGHT)
                        .ok()
                        .and_then(|o| o.send)
                };
                if let Some(msg) = answer {
                    self.exchange(Who::Payee(payee), msg, ProposalContext::default());
                }
            }
            Step::Watch => {
                let _ = self.input(HubInput::Watch);
            }
            Step::Flush => {
                let _ = self.input(HubInput::FlushAll);
            }
            Step::Crash => self.crash_next = true,
        }
    }

    /// The books add up (see the module docs).
    fn check(&self) {
        let mut paid_in = 0u64;
        let mut paid_out = 0u64;
        let mut owed = 0u64;
        let mut payer_deposits = 0u64;
        let mut payer_balances = 0u64;
        for (_, c) in self.state.channels() {
            let s = &c.machine;
            let latest = &s.latest.state;
            let htlcs: u64 = latest.htlcs.iter().map(|h| h.amount_msat).sum();
            assert_eq!(
                latest.balance_a_msat + latest.balance_b_msat + htlcs,
                s.capacity_msat,
                "a channel lost or made money"
            );
            let (hub_balance, peer_balance) = balances(s);
            match c.role {
                ChannelRole::Incoming => {
                    paid_in += hub_balance;
                    payer_deposits += s.capacity_msat;
                    payer_balances += peer_balance;
                }
                ChannelRole::Outgoing => {
                    paid_out += peer_balance;
                    owed += c.owed_msat.get() + c.in_flight_owed_msat.get();
                }
            }
        }
        let fees: u64 = self.state.streams().map(|s| s.fees_msat.get()).sum();
        let received: u64 = self.state.streams().map(|s| s.received_msat.get()).sum();
        assert_eq!(
            paid_in, received,
            "every payment into the hub is booked to a stream"
        );
        assert_eq!(
            paid_in,
            paid_out + fees + owed,
            "paid in = delivered + fees + still owed"
        );
        assert_eq!(payer_deposits, payer_balances + paid_out + fees + owed);
        for s in self.state.streams() {
            assert!(
                s.received_msat.get() <= BUDGET,
                "a stream went past its budget"
            );
            assert_eq!(
                s.received_msat,
                s.fees_msat.checked_add(s.forwarded_msat).unwrap()
            );
        }
    }
}

/// The hub's and the peer's balance in a channel's newest state both signed.
fn balances(s: &Snapshot) -> (u64, u64) {
    let l = &s.latest.state;
    match s.me {
        Side::A => (l.balance_a_msat, l.balance_b_msat),
        Side::B => (l.balance_b_msat, l.balance_a_msat),
    }
}

proptest! {
    // 48 cases in the test suite; `PROPTEST_CASES` asks for more.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(48),
        ..ProptestConfig::default()
    })]

    #[test]
    fn money_is_conserved_and_one_state_is_signed_per_seq(steps in prop::collection::vec(step(), 1..80)) {
        let mut w = World::new();
        w.check();
        for s in steps {
            w.run(s);
            w.check();
        }
        // Everything settles: payees take what they are owed, and the books still add up.
        w.crash_next = false;
        for _ in 0..20 {
            for i in 0..PAYERS {
                w.catch_up(Who::Payer(i));
            }
            for i in 0..PAYEES {
                w.run(Step::Pull { payee: i, refuse: false });
            }
            w.run(Step::Flush);
        }
        // Nothing is owed any more: every forwarded payment reached its payee.
        for (_, c) in w.state.channels() {
            prop_assert!(c.owed_msat.is_zero() && c.in_flight_owed_msat.is_zero());
        }
        w.check();
    }
}

#[test]
fn a_crash_before_persisting_loses_the_answer_and_the_state_together() {
    let mut w = World::new();
    w.run(Step::Tick {
        payer: 0,
        payee: 0,
        amount: 1_000_000,
    });
    w.check();
    let before = w.state.stream(&w.streams[0][0]).unwrap().clone();
    assert_eq!(before.received_msat, Msat::new(1_000_000));
    // The next tick's Accept is lost with the crash; the payer proposes again and is answered.
    w.crash_next = true;
    w.run(Step::Tick {
        payer: 0,
        payee: 0,
        amount: 2_000_000,
    });
    assert_eq!(w.state.stream(&w.streams[0][0]).unwrap(), &before);
    assert!(w.payers[0].resend.is_some());
    // The payer sends it again and is answered as if nothing happened.
    w.catch_up(Who::Payer(0));
    w.check();
    assert_eq!(
        w.state.stream(&w.streams[0][0]).unwrap().received_msat,
        Msat::new(3_000_000)
    );
}
