//! Payment channels on the transfer chain (docs/channels.md): opening with one or both deposits,
//! cooperative close, force close with a dispute window, challenge by a higher state with the
//! reserve forfeited, HTLC claims and timeouts, settlement — with the supply conserved at every
//! step, and (as properties) channel totals always equal to the capacity and no payout above
//! what was locked.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use doin_crypto::KeyPair;
use doin_tx_core::channel::*;
use doin_tx_core::state::StateView;
use doin_tx_core::{Block, NoMainChain, Tx, TxError, TxPayload};
use doin_types::{Amount, ChainId, Hash256, PublicKeyBytes};
use proptest::prelude::*;

fn units(n: u64) -> Amount {
    Amount::from_base_units(n)
}

fn copy(k: &KeyPair) -> KeyPair {
    KeyPair::from_secret_bytes(&k.secret_bytes()).unwrap()
}

struct Chan {
    f: Fixture,
    a: KeyPair,
    b: KeyPair,
    tip: Block,
    nonces: std::collections::BTreeMap<PublicKeyBytes, u64>,
}

impl Chan {
    fn new() -> Chan {
        let f = fixture(3);
        let (a, b) = (copy(&f.users[0]), copy(&f.users[1]));
        let tip = f.genesis.clone();
        Chan {
            f,
            a,
            b,
            tip,
            nonces: Default::default(),
        }
    }

    fn tx(&mut self, from: &KeyPair, payload: TxPayload) -> Tx {
        let nonce = self.nonces.entry(from.public()).or_default();
        let tx = Tx::from_signed(signed(&self.f, from, *nonce, payload, 100, 1)).unwrap();
        *nonce += 1;
        tx
    }

    /// Puts `payload` from `from` in the next block; the error if the block skipped it (the
    /// nonce is then given back).
    fn send(&mut self, from: &KeyPair, payload: TxPayload) -> Result<(), TxError> {
        let tx = self.tx(from, payload);
        let parent = self.tip.header.clone();
        let (block, skipped) = build_and_import(&mut self.f, &NoMainChain, &parent, vec![tx]);
        self.tip = block;
        self.assert_supply();
        match skipped.into_iter().next() {
            None => Ok(()),
            Some(e) => {
                *self.nonces.get_mut(&from.public()).unwrap() -= 1;
                Err(e)
            }
        }
    }

    fn empty_blocks(&mut self, n: u64) {
        for _ in 0..n {
            let parent = self.tip.header.clone();
            self.tip = build_and_import(&mut self.f, &NoMainChain, &parent, Vec::new()).0;
        }
    }

    fn height(&self) -> u64 {
        self.tip.header.height
    }

    fn balance(&self, k: &KeyPair) -> u64 {
        self.f
            .state
            .account(&k.public())
            .unwrap()
            .unwrap_or_default()
            .balance
            .base_units()
    }

    /// Balances + stakes + channels = issued − burned.
    fn assert_supply(&self) {
        let stats = self.f.state.chain_stats().unwrap();
        let balances: u64 = self
            .f
            .state
            .accounts()
            .values()
            .map(|a| a.balance.base_units())
            .sum();
        assert_eq!(
            balances + stats.staked.base_units() + stats.in_channels.base_units(),
            stats.circulating().unwrap().base_units()
        );
    }

    fn chain_id(&self) -> ChainId {
        self.f.params.chain_id
    }

    /// Opens a channel A → B with both deposits; returns its id.
    fn open(&mut self, deposit_a: u64, deposit_b: u64, dispute_blocks: u64) -> ChannelId {
        let (a, b) = (copy(&self.a), copy(&self.b));
        let nonce = self.nonces.get(&a.public()).copied().unwrap_or(0);
        let id = channel_id(&self.chain_id(), &a.public(), nonce);
        let consent = (deposit_b > 0).then(|| {
            let terms = OpenConsent {
                channel_id: id,
                party_a: a.public(),
                party_b: b.public(),
                deposit_a: units(deposit_a),
                deposit_b: units(deposit_b),
                dispute_blocks,
            };
            b.sign(&terms.signing_hash(&self.chain_id()).unwrap())
        });
        self.send(
            &a,
            TxPayload::ChannelOpen {
                counterparty: b.public(),
                deposit: units(deposit_a),
                counterparty_deposit: units(deposit_b),
                dispute_blocks,
                consent,
            },
        )
        .unwrap();
        id
    }

    fn sign(&self, state: ChannelState) -> Box<SignedChannelState> {
        let hash = state.signing_hash(&self.chain_id()).unwrap();
        Box::new(SignedChannelState {
            sig_a: self.a.sign(&hash),
            sig_b: self.b.sign(&hash),
            state,
        })
    }

    fn channel(&self, id: &ChannelId) -> Channel {
        self.f.state.channel(id).unwrap().unwrap()
    }
}

fn state(id: ChannelId, seq: u64, a_msat: u64, b_msat: u64, htlcs: Vec<Htlc>) -> ChannelState {
    ChannelState {
        channel_id: id,
        seq,
        balance_a_msat: a_msat,
        balance_b_msat: b_msat,
        htlcs,
    }
}

#[test]
fn a_dual_funded_channel_closes_cooperatively_with_rounding_burned() {
    let mut c = Chan::new();
    let (a, b) = (copy(&c.a), copy(&c.b));
    let (a0, b0) = (c.balance(&a), c.balance(&b));
    let id = c.open(10_000, 5_000, 10);
    let ch = c.channel(&id);
    assert_eq!(ch.capacity, units(15_000));
    assert_eq!(ch.phase, ChannelPhase::Open);
    assert_eq!(c.balance(&b), b0 - 5_000);
    assert_eq!(c.f.state.chain_stats().unwrap().in_channels, units(15_000));
    let a_after_open = c.balance(&a);
    assert!(a_after_open < a0 - 10_000, "deposit and fee paid");

    // A state that does not add up, or signed by one side only, is refused.
    let bad = c.sign(state(id, 3, 12_000_000, 2_999_999, vec![]));
    assert!(matches!(
        c.send(&b, TxPayload::ChannelCoopClose { state: bad }),
        Err(TxError::InvalidChannel(_))
    ));
    let mut one_sided = c.sign(state(id, 3, 12_000_500, 2_999_500, vec![]));
    one_sided.sig_b = one_sided.sig_a;
    assert!(matches!(
        c.send(&b, TxPayload::ChannelCoopClose { state: one_sided }),
        Err(TxError::InvalidChannel(_))
    ));

    let burned_before = c.f.state.chain_stats().unwrap().burned;
    let close = c.sign(state(id, 3, 12_000_500, 2_999_500, vec![]));
    let b_before = c.balance(&b);
    // Anyone may hand in a state both signed (here a third party pays the fee).
    let courier = copy(&c.f.users[2]);
    c.send(
        &courier,
        TxPayload::ChannelCoopClose {
            state: close.clone(),
        },
    )
    .unwrap();
    // The half units round down; the remainder (one unit) is burned.
    assert_eq!(c.balance(&a), a_after_open + 12_000);
    assert_eq!(c.balance(&b), b_before + 2_999);
    let stats = c.f.state.chain_stats().unwrap();
    assert_eq!(stats.in_channels, Amount::ZERO);
    assert!(stats.burned.base_units() > burned_before.base_units());
    assert!(matches!(c.channel(&id).phase, ChannelPhase::Closed { .. }));
    // Closed is closed.
    assert_eq!(
        c.send(&b, TxPayload::ChannelCoopClose { state: close }),
        Err(TxError::ChannelNotOpen)
    );
}

#[test]
fn opening_needs_the_counterpartys_consent_and_funds() {
    let mut c = Chan::new();
    let (a, b, stranger) = (copy(&c.a), copy(&c.b), copy(&c.f.users[2]));
    let open = |consent| TxPayload::ChannelOpen {
        counterparty: b.public(),
        deposit: units(100),
        counterparty_deposit: units(50),
        dispute_blocks: 10,
        consent,
    };
    // No consent for B's deposit: refused without state.
    assert!(matches!(
        c.send(&a, open(None)),
        Err(TxError::InvalidChannel(_))
    ));
    // Consent by someone else.
    let nonce = c.nonces.get(&a.public()).copied().unwrap_or(0);
    let terms = OpenConsent {
        channel_id: channel_id(&c.chain_id(), &a.public(), nonce),
        party_a: a.public(),
        party_b: b.public(),
        deposit_a: units(100),
        deposit_b: units(50),
        dispute_blocks: 10,
    };
    let by_stranger = stranger.sign(&terms.signing_hash(&c.chain_id()).unwrap());
    assert!(matches!(
        c.send(&a, open(Some(by_stranger))),
        Err(TxError::InvalidChannel(_))
    ));
    // A channel with oneself, or with a zero window.
    let self_channel = TxPayload::ChannelOpen {
        counterparty: a.public(),
        deposit: units(100),
        counterparty_deposit: Amount::ZERO,
        dispute_blocks: 10,
        consent: None,
    };
    assert!(matches!(
        c.send(&a, self_channel),
        Err(TxError::InvalidChannel(_))
    ));
    // More than B holds.
    let too_much = units(START_BALANCE * 2);
    let terms = OpenConsent {
        deposit_b: too_much,
        ..terms
    };
    let consent = b.sign(&terms.signing_hash(&c.chain_id()).unwrap());
    assert!(matches!(
        c.send(
            &a,
            TxPayload::ChannelOpen {
                counterparty: b.public(),
                deposit: units(100),
                counterparty_deposit: too_much,
                dispute_blocks: 10,
                consent: Some(consent),
            }
        ),
        Err(TxError::InsufficientBalance { .. })
    ));
}

#[test]
fn a_stale_force_close_is_challenged_and_the_publisher_forfeits_the_reserve() {
    let mut c = Chan::new();
    let (a, b, stranger) = (copy(&c.a), copy(&c.b), copy(&c.f.users[2]));
    let id = c.open(10_000, 5_000, 5);
    let old = c.sign(state(id, 1, 9_000_000, 6_000_000, vec![]));
    let latest = c.sign(state(id, 2, 4_000_000, 11_000_000, vec![]));

    // Only a party may force-close.
    assert_eq!(
        c.send(
            &stranger,
            TxPayload::ChannelForceClose {
                channel: id,
                state: Some(old.clone()),
            }
        ),
        Err(TxError::NotAChannelParty)
    );
    // A publishes the old state, better for A.
    c.send(
        &a,
        TxPayload::ChannelForceClose {
            channel: id,
            state: Some(old.clone()),
        },
    )
    .unwrap();
    let closes_at = c.height() + 5;
    // Settling inside the window, or re-posting the same seq, is refused.
    assert_eq!(
        c.send(&b, TxPayload::ChannelSettle { channel: id }),
        Err(TxError::DisputeWindowOpen { until: closes_at })
    );
    assert_eq!(
        c.send(&b, TxPayload::ChannelChallenge { state: old }),
        Err(TxError::StaleChannelState { posted: 1, got: 1 })
    );
    // B challenges with the latest state: A forfeits 1 % of 15 000 to B.
    c.send(
        &b,
        TxPayload::ChannelChallenge {
            state: latest.clone(),
        },
    )
    .unwrap();
    match c.channel(&id).phase {
        ChannelPhase::Closing {
            posted, posted_by, ..
        } => {
            assert_eq!(posted_by, Side::B);
            assert_eq!(posted.balance_a_msat, 3_850_000);
            assert_eq!(posted.balance_b_msat, 11_150_000);
        }
        other => panic!("{other:?}"),
    }
    c.empty_blocks(5);
    assert!(c.height() >= closes_at);
    assert_eq!(
        c.send(&b, TxPayload::ChannelChallenge { state: latest }),
        Err(TxError::DisputeWindowOver {
            closed_at: closes_at
        })
    );
    let (a_before, b_before) = (c.balance(&a), c.balance(&b));
    // Anyone may settle once the window is over.
    c.send(&stranger, TxPayload::ChannelSettle { channel: id })
        .unwrap();
    assert_eq!(c.balance(&a), a_before + 3_850);
    assert_eq!(c.balance(&b), b_before + 11_150);
    assert_eq!(c.f.state.chain_stats().unwrap().in_channels, Amount::ZERO);
}

#[test]
fn htlcs_are_claimed_with_their_preimage_or_return_after_expiry() {
    let mut c = Chan::new();
    let (a, b, courier) = (copy(&c.a), copy(&c.b), copy(&c.f.users[2]));
    let id = c.open(10_000, 0, 3);
    let (pre1, pre2) = ([1u8; 32], [2u8; 32]);
    // Each send below makes a block (refused ones too): the window ends at block 7, the
    // HTLCs expire at 11.
    let expiry = c.height() + 10;
    let htlc = |pre: &[u8; 32], msat| Htlc {
        offered_by: Side::A,
        amount_msat: msat,
        payment_hash: Hash256(sha256(pre)),
        expiry,
    };
    let with_htlcs = c.sign(state(
        id,
        7,
        6_000_000,
        1_000_000,
        vec![htlc(&pre1, 2_000_000), htlc(&pre2, 1_000_000)],
    ));
    // HTLCs are never paid by a cooperative close.
    assert!(matches!(
        c.send(
            &b,
            TxPayload::ChannelCoopClose {
                state: with_htlcs.clone()
            }
        ),
        Err(TxError::InvalidChannel(_))
    ));
    // Nothing to claim on an open channel.
    assert_eq!(
        c.send(
            &b,
            TxPayload::HtlcClaim {
                channel: id,
                preimage: pre1
            }
        ),
        Err(TxError::ChannelNotClosing)
    );
    c.send(
        &b,
        TxPayload::ChannelForceClose {
            channel: id,
            state: Some(with_htlcs),
        },
    )
    .unwrap();
    assert_eq!(
        c.send(
            &b,
            TxPayload::HtlcClaim {
                channel: id,
                preimage: [9; 32]
            }
        ),
        Err(TxError::HtlcNotFound)
    );
    c.send(
        &b,
        TxPayload::HtlcClaim {
            channel: id,
            preimage: pre1,
        },
    )
    .unwrap();
    // The window (3 blocks) ends before the HTLC's expiry: settling waits for the expiry.
    c.empty_blocks(1);
    assert_eq!(
        c.send(&a, TxPayload::ChannelSettle { channel: id }),
        Err(TxError::DisputeWindowOpen { until: expiry })
    );
    while c.height() < expiry {
        c.empty_blocks(1);
    }
    assert_eq!(
        c.send(
            &b,
            TxPayload::HtlcClaim {
                channel: id,
                preimage: pre2
            }
        ),
        Err(TxError::HtlcExpired { expiry })
    );
    let (a_before, b_before) = (c.balance(&a), c.balance(&b));
    c.send(&courier, TxPayload::ChannelSettle { channel: id })
        .unwrap();
    // B gets its 1 000 plus the claimed 2 000; A its 6 000 plus the expired 1 000.
    assert_eq!(c.balance(&b), b_before + 3_000);
    assert_eq!(c.balance(&a), a_before + 7_000);
}

#[test]
fn a_force_close_without_a_state_posts_the_opening_split() {
    let mut c = Chan::new();
    let b = copy(&c.b);
    let id = c.open(10_000, 2_000, 2);
    c.send(
        &b,
        TxPayload::ChannelForceClose {
            channel: id,
            state: None,
        },
    )
    .unwrap();
    match c.channel(&id).phase {
        ChannelPhase::Closing { posted, .. } => {
            assert_eq!(posted.seq, 0);
            assert_eq!(
                (posted.balance_a_msat, posted.balance_b_msat),
                (10_000_000, 2_000_000)
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        c.send(
            &b,
            TxPayload::ChannelForceClose {
                channel: id,
                state: None
            }
        ),
        Err(TxError::ChannelNotOpen)
    );
}

// Rule-level properties: whatever sequence of posts, challenges and claims, the posted state
// always accounts for exactly the capacity, and the payout never exceeds it.

#[derive(Clone, Debug)]
enum Op {
    Challenge { state: usize, by_b: bool },
    Claim { preimage: u8 },
    Wait(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0usize..6, any::<bool>()).prop_map(|(state, by_b)| Op::Challenge { state, by_b }),
        (0u8..6).prop_map(|preimage| Op::Claim { preimage }),
        (1u64..4).prop_map(Op::Wait),
    ]
}

/// A random state of `capacity_msat` for channel `id`: a split between the sides and up to
/// three HTLCs with preimages 0..6.
fn random_state(
    id: ChannelId,
    seq: u64,
    capacity_msat: u64,
    cuts: &[u64],
    hashes: &[u8],
) -> ChannelState {
    let mut rest = capacity_msat;
    let mut htlcs = Vec::new();
    for (cut, pre) in cuts.iter().zip(hashes) {
        let amount = (cut % rest.max(1)).max(1).min(rest);
        if amount == 0
            || htlcs
                .iter()
                .any(|h: &Htlc| h.payment_hash.0 == sha256(&[*pre; 32]))
        {
            continue;
        }
        rest -= amount;
        htlcs.push(Htlc {
            offered_by: if pre % 2 == 0 { Side::A } else { Side::B },
            amount_msat: amount,
            payment_hash: Hash256(sha256(&[*pre; 32])),
            expiry: 5 + u64::from(*pre) * 3,
        });
    }
    let a = cuts.last().copied().unwrap_or(0) % (rest + 1);
    ChannelState {
        channel_id: id,
        seq,
        balance_a_msat: a,
        balance_b_msat: rest - a,
        htlcs,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn channel_totals_equal_the_capacity_and_payouts_never_exceed_it(
        deposit_a in 0u64..2_000_000,
        deposit_b in 1u64..2_000_000,
        cuts in proptest::collection::vec(proptest::collection::vec(any::<u64>(), 1..4), 6),
        pres in proptest::collection::vec(proptest::collection::vec(0u8..6, 1..4), 6),
        ops in proptest::collection::vec(op(), 0..12),
        coop in any::<bool>(),
    ) {
        let chain = ChainId(Hash256([4; 32]));
        let (ka, kb) = (KeyPair::generate(), KeyPair::generate());
        let id = channel_id(&chain, &ka.public(), 0);
        let ch = Channel::open(ka.public(), kb.public(), units(deposit_a), units(deposit_b), 4, 1)
            .unwrap();
        let cap = ch.capacity_msat().unwrap();
        let sign = |s: ChannelState| {
            let h = s.signing_hash(&chain).unwrap();
            SignedChannelState { sig_a: ka.sign(&h), sig_b: kb.sign(&h), state: s }
        };
        let states: Vec<SignedChannelState> = (0..6)
            .map(|i| sign(random_state(id, i as u64 + 1, cap, &cuts[i], &pres[i])))
            .collect();
        for s in &states {
            prop_assert_eq!(s.state.total_msat(), Some(cap));
        }
        let check_payout = |p: Payout| -> Result<(), TestCaseError> {
            let paid = p.to_a.base_units() + p.to_b.base_units();
            prop_assert!(paid <= deposit_a + deposit_b);
            prop_assert_eq!(paid + p.burned.base_units(), deposit_a + deposit_b);
            prop_assert!(p.burned.base_units() < 2);
            Ok(())
        };
        if coop {
            let s = &states[0];
            match ch.coop_close(&chain, &id, s, 2) {
                Ok((_, p)) => check_payout(p)?,
                Err(_) => prop_assert!(!s.state.htlcs.is_empty()),
            }
            return Ok(());
        }
        let mut height = 2;
        let mut ch = ch.force_close(&chain, &id, Some(&states[0]), Side::A, height).unwrap();
        for op in ops {
            let next = match op {
                Op::Challenge { state, by_b } => {
                    let side = if by_b { Side::B } else { Side::A };
                    ch.challenge(&chain, &id, &states[state], side, height)
                }
                Op::Claim { preimage } => ch.claim_htlc(&[preimage; 32], height),
                Op::Wait(n) => { height += n; continue; }
            };
            if let Ok(next) = next {
                ch = next;
            }
            let ChannelPhase::Closing { posted, .. } = &ch.phase else {
                return Err(TestCaseError::fail("left the closing phase"));
            };
            prop_assert_eq!(posted.total_msat(), Some(cap));
        }
        let (_, payout) = ch.settle(u64::MAX).unwrap();
        check_payout(payout)?;
    }
}

/// Golden values of what channel parties sign (`docs/channels.md`), so an implementation in
/// another language can check its bytes.
#[test]
fn channel_signing_hashes_match_the_documented_vectors() {
    let chain = ChainId(Hash256([7; 32]));
    let opener = PublicKeyBytes([9; 32]);
    let id = channel_id(&chain, &opener, 3);
    let state = ChannelState {
        channel_id: id,
        seq: 5,
        balance_a_msat: 1_000,
        balance_b_msat: 2_000,
        htlcs: vec![Htlc {
            offered_by: Side::B,
            amount_msat: 500,
            payment_hash: Hash256([4; 32]),
            expiry: 77,
        }],
    };
    let consent = OpenConsent {
        channel_id: id,
        party_a: opener,
        party_b: PublicKeyBytes([8; 32]),
        deposit_a: units(100),
        deposit_b: units(50),
        dispute_blocks: 2_880,
    };
    let got = [
        id.to_hex(),
        state.signing_hash(&chain).unwrap().to_hex(),
        consent.signing_hash(&chain).unwrap().to_hex(),
    ];
    assert_eq!(
        got,
        [
            "3d6c940ce17dea4fc6173c9ae14cc503b4d2094255f2e5b87f6423594f87fc0b",
            "bb62cfb444946dee88abcad3345fb35369be22bef65fd47c4ffc715d658f8be0",
            "126093051f46dc503e9f8329e38127f8b0210c74de2e1fc2b6f32c47fe0c163f",
        ]
    );
}
