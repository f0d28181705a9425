//! Property tests of the state transition over random sequences of transfers, stakes, unstakes
//! and withdrawals: balances plus stakes = issued − burned, the staked total equals what the
//! stakes hold, balances never underflow, nonces stay gap-free, and a block built by the
//! producer is accepted, with the same root, by an importing node.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use doin_tx_core::memtree::MemoryState;
use doin_tx_core::NoMainChain;
use doin_tx_core::{apply_block, build_block, ApplyContext, StakeRole, StateView, Tx, TxPayload};
use doin_types::{Amount, Timestamp};
use proptest::prelude::*;
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
struct Action {
    from: usize,
    to: usize,
    amount: u64,
    nonce_offset: i8,
    max_fee: u64,
    tip: u64,
    /// 0 transfer, 1 stake, 2 unstake, 3 withdraw.
    kind: u8,
    role: StakeRole,
}

fn action(users: usize) -> impl Strategy<Value = Action> {
    (
        (
            0..users,
            0..users,
            prop_oneof![1u64..1_000, 1u64..START_BALANCE, Just(START_BALANCE * 2)],
            prop_oneof![8 => Just(0i8), 1 => Just(-1i8), 1 => Just(1i8)],
        ),
        (
            prop_oneof![Just(5u64), 10u64..40],
            0u64..5,
            prop_oneof![5 => Just(0u8), 2 => Just(1u8), 1 => Just(2u8), 1 => Just(3u8)],
            prop_oneof![
                Just(StakeRole::Validator),
                Just(StakeRole::Evaluator),
                Just(StakeRole::Optimizer)
            ],
        ),
    )
        .prop_map(
            |((from, to, amount, nonce_offset), (max_fee, tip, kind, role))| Action {
                from,
                to,
                amount,
                nonce_offset,
                max_fee,
                tip: tip.min(max_fee),
                kind,
                role,
            },
        )
}

fn payload(f: &Fixture, a: &Action) -> TxPayload {
    let amount = Amount::from_base_units(a.amount);
    match a.kind {
        0 => TxPayload::Transfer {
            to: f.users[a.to].public(),
            amount,
        },
        1 => TxPayload::Stake {
            role: a.role,
            amount,
            domains: if a.role == StakeRole::Evaluator {
                vec!["sphere".into()]
            } else {
                vec![]
            },
        },
        2 => TxPayload::Unstake {
            role: a.role,
            amount,
        },
        _ => TxPayload::Withdraw { role: a.role },
    }
}

fn sum_balances(state: &MemoryState) -> u128 {
    state
        .accounts()
        .values()
        .map(|a| u128::from(a.balance.base_units()))
        .sum()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_sequences_keep_every_invariant(
        actions in proptest::collection::vec(action(4), 1..60),
        block_size in 1usize..12,
    ) {
        let mut f = fixture(4);
        let mut parent = f.genesis.header.clone();
        // Nonces the test expects each account to have; used to make mostly-valid txs.
        let mut next_nonce: BTreeMap<usize, u64> = BTreeMap::new();
        let mut included_per_sender: BTreeMap<_, Vec<u64>> = BTreeMap::new();
        for chunk in actions.chunks(block_size) {
            let mut candidates = Vec::new();
            for a in chunk {
                let n = next_nonce.entry(a.from).or_insert(0);
                let nonce = (*n as i64 + a.nonce_offset as i64).max(0) as u64;
                if a.nonce_offset == 0 { *n += 1; }
                let tx = signed(&f, &f.users[a.from], nonce, payload(&f, a), a.max_fee, a.tip);
                candidates.push(Tx::from_signed(tx).unwrap());
            }
            let time = Timestamp(parent.time.0 + 1000);
            let built = build_block(&f.params, &f.state, &f.state, &NoMainChain, &parent, time, &f.validator, candidates, true).unwrap();

            // An importing node accepts the block and derives the same root.
            let imported = apply_block(
                &f.params, &f.state, &f.state, &NoMainChain, &parent, &built.block,
                ApplyContext { now: time, verify_tx_signatures: true },
            ).unwrap();
            prop_assert_eq!(imported.state_root, built.block.header.state_root);
            prop_assert_eq!(&imported.diff, &built.applied.diff);

            for tx in &built.block.txs {
                included_per_sender.entry(tx.body.sender).or_default().push(tx.body.nonce);
            }
            f.state.commit(&imported);
            parent = built.block.header.clone();

            // Resync the test's expected nonces with reality (skipped txs did not consume one).
            for (i, u) in f.users.iter().enumerate() {
                let acct = f.state.account(&u.public()).unwrap().unwrap_or_default();
                next_nonce.insert(i, acct.nonce);
            }

            // Supply: every balance and stake together equals issued − burned, and the staked
            // total is what the stakes hold.
            let stats = f.state.chain_stats().unwrap();
            let circulating = stats.circulating().unwrap();
            let locked: u128 = f
                .state
                .stakes()
                .values()
                .map(|s| u128::from(s.locked().unwrap().base_units()))
                .sum();
            prop_assert_eq!(locked, u128::from(stats.staked.base_units()));
            prop_assert_eq!(
                sum_balances(&f.state) + locked,
                u128::from(circulating.base_units())
            );
            // The stakers registry lists exactly the stakes with something bonded.
            let bonded: Vec<_> = f
                .state
                .stakes()
                .iter()
                .filter(|(_, st)| !st.bonded.is_zero())
                .map(|(k, _)| *k)
                .collect();
            prop_assert_eq!(f.state.stakers().unwrap(), bonded);
            // No stake is below its role's minimum unless it is fully unbonded.
            for ((_, role), st) in f.state.stakes() {
                prop_assert!(
                    st.bonded.is_zero() || st.bonded >= f.params.consensus.staking.min_stake(*role)
                );
            }
            prop_assert_eq!(
                stats.issued,
                Amount::from_base_units(START_BALANCE * 4)
            );
        }
        // Nonces gap-free: each sender's included nonces are exactly 0, 1, 2, … in order, and
        // the account nonce equals the count.
        for (sender, nonces) in &included_per_sender {
            let expected: Vec<u64> = (0..nonces.len() as u64).collect();
            prop_assert_eq!(nonces, &expected);
            let acct = f.state.account(sender).unwrap().unwrap_or_default();
            prop_assert_eq!(acct.nonce, nonces.len() as u64);
        }
    }
}

#[test]
fn determinism_two_fresh_states_same_roots() {
    let f = fixture(3);
    let txs: Vec<Tx> = (0..5)
        .map(|i| Tx::from_signed(transfer(&f, &f.users[0], &f.users[1], i, 10 + i, 30, 1)).unwrap())
        .collect();
    let built = build_block(
        &f.params,
        &f.state,
        &f.state,
        &NoMainChain,
        &f.genesis.header,
        Timestamp(f.genesis.header.time.0 + 5),
        &f.validator,
        txs,
        true,
    )
    .unwrap();
    // A second node rebuilds genesis from the same spec and imports the block.
    let mut other = MemoryState::new();
    let (g2, applied) = doin_tx_core::genesis(&f.spec, &other).unwrap();
    assert_eq!(g2.hash().unwrap(), f.genesis.hash().unwrap());
    other.commit(&applied);
    let imported = apply_block(
        &f.params,
        &other,
        &other,
        &NoMainChain,
        &g2.header,
        &built.block,
        ApplyContext {
            now: Timestamp(u64::MAX / 2),
            verify_tx_signatures: true,
        },
    )
    .unwrap();
    assert_eq!(imported.state_root, built.block.header.state_root);
}
