//! Staking rules: bond, unbond, withdraw; minimum stakes; evaluator domains; and that the
//! unbonding period cannot be skipped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{fixture, signed, Fixture};
use doin_crypto::KeyPair;
use doin_tx_core::{Block, BlockHeader, NoMainChain, StakeRole, StateView, Tx, TxError, TxPayload};
use doin_types::Amount;

/// Builds a block of `payloads` (one sender, consecutive nonces from its account nonce),
/// imports it and commits it; returns the block and the builder's skip reasons.
fn block(
    f: &mut Fixture,
    parent: &BlockHeader,
    from: &KeyPair,
    payloads: Vec<TxPayload>,
) -> (Block, Vec<TxError>) {
    let nonce = f
        .state
        .account(&from.public())
        .unwrap()
        .unwrap_or_default()
        .nonce;
    let txs: Vec<Tx> = payloads
        .into_iter()
        .enumerate()
        .map(|(i, p)| Tx::from_signed(signed(f, from, nonce + i as u64, p, 20, 1)).unwrap())
        .collect();
    common::build_and_import(f, &NoMainChain, parent, txs)
}

fn units(n: u64) -> Amount {
    Amount::from_base_units(n)
}

fn balance(f: &Fixture, k: &KeyPair) -> u64 {
    f.state
        .account(&k.public())
        .unwrap()
        .unwrap_or_default()
        .balance
        .base_units()
}

#[test]
fn bond_unbond_and_withdraw_only_after_the_unbonding_period() {
    let mut f = fixture(1);
    let u = f.users.remove(0);
    let g = f.genesis.header.clone();
    let start = balance(&f, &u);

    let stake = TxPayload::Stake {
        role: StakeRole::Evaluator,
        amount: units(2_000),
        domains: vec!["rastrigin".into(), "sphere".into()],
    };
    let (b1, skipped) = block(&mut f, &g, &u, vec![stake]);
    assert!(skipped.is_empty(), "{skipped:?}");
    let st = f
        .state
        .stake(&u.public(), StakeRole::Evaluator)
        .unwrap()
        .unwrap();
    assert_eq!(st.bonded, units(2_000));
    assert_eq!(
        st.domains,
        vec!["rastrigin".to_string(), "sphere".to_string()]
    );
    let fee1 = start - 2_000 - balance(&f, &u);
    assert!(fee1 > 0);
    assert_eq!(f.state.chain_stats().unwrap().staked, units(2_000));

    // Unstake 1 500 at height 2: free from height 2 + 3 = 5.
    let unstake = TxPayload::Unstake {
        role: StakeRole::Evaluator,
        amount: units(1_500),
    };
    let (b2, skipped) = block(&mut f, &b1.header, &u, vec![unstake]);
    assert!(skipped.is_empty(), "{skipped:?}");
    let st = f
        .state
        .stake(&u.public(), StakeRole::Evaluator)
        .unwrap()
        .unwrap();
    assert_eq!(
        (st.bonded, st.unbonding, st.unbonding_until),
        (units(500), units(1_500), 5)
    );

    // Withdrawing at heights 3 and 4 is refused: the period cannot be skipped.
    let withdraw = || TxPayload::Withdraw {
        role: StakeRole::Evaluator,
    };
    let (b3, skipped) = block(&mut f, &b2.header, &u, vec![withdraw()]);
    assert_eq!(skipped, vec![TxError::StillUnbonding { until: 5, now: 3 }]);
    let (b4, skipped) = block(&mut f, &b3.header, &u, vec![withdraw()]);
    assert_eq!(skipped, vec![TxError::StillUnbonding { until: 5, now: 4 }]);
    let before = balance(&f, &u);
    let (b5, skipped) = block(&mut f, &b4.header, &u, vec![withdraw()]);
    assert!(skipped.is_empty(), "{skipped:?}");
    let tx5 = Tx::from_signed(b5.txs[0].clone()).unwrap();
    let fee5 = doin_tx_core::fees::fee_split(units(20), units(1), b5.header.base_fee, tx5.weight())
        .unwrap()
        .total()
        .unwrap()
        .base_units();
    assert_eq!(balance(&f, &u), before + 1_500 - fee5);
    assert_eq!(f.state.chain_stats().unwrap().staked, units(500));

    // Nothing left to withdraw.
    let (_, skipped) = block(&mut f, &b5.header, &u, vec![withdraw()]);
    assert_eq!(skipped, vec![TxError::NothingToWithdraw]);
}

/// Submits each payload in a block of its own; returns the skip reason of each (None: included).
fn each(
    f: &mut Fixture,
    parent: &mut BlockHeader,
    from: &KeyPair,
    payloads: Vec<TxPayload>,
) -> Vec<Option<TxError>> {
    payloads
        .into_iter()
        .map(|p| {
            let (b, mut skipped) = block(f, &parent.clone(), from, vec![p]);
            *parent = b.header;
            skipped.pop()
        })
        .collect()
}

#[test]
fn stake_rules_refuse_what_they_must() {
    let mut f = fixture(1);
    let u = f.users.remove(0);
    let mut parent = f.genesis.header.clone();
    let stake = |role, amount, domains: &[&str]| TxPayload::Stake {
        role,
        amount: units(amount),
        domains: domains.iter().map(|d| d.to_string()).collect(),
    };
    let got = each(
        &mut f,
        &mut parent,
        &u,
        vec![
            // Below the validator minimum (1 000).
            stake(StakeRole::Validator, 999, &[]),
            // An evaluator must name domains.
            stake(StakeRole::Evaluator, 600, &[]),
            // Only evaluators name domains.
            stake(StakeRole::Optimizer, 600, &["sphere"]),
            // Domains ascending, without repeats, well-formed.
            stake(StakeRole::Evaluator, 600, &["sphere", "rastrigin"]),
            stake(StakeRole::Evaluator, 600, &["Sphere"]),
            // Fine.
            stake(StakeRole::Optimizer, 100, &[]),
            // More than is bonded.
            TxPayload::Unstake {
                role: StakeRole::Optimizer,
                amount: units(101),
            },
            // Leaving less than the minimum bonded (100 − 1 = 99 < 100).
            TxPayload::Unstake {
                role: StakeRole::Optimizer,
                amount: units(1),
            },
            // Zero amounts are refused before any state is read.
            TxPayload::Unstake {
                role: StakeRole::Optimizer,
                amount: units(0),
            },
            // All of it is fine: a stake may go to zero.
            TxPayload::Unstake {
                role: StakeRole::Optimizer,
                amount: units(100),
            },
        ],
    );
    assert!(matches!(
        got[0],
        Some(TxError::StakeBelowMinimum {
            role: "validator",
            ..
        })
    ));
    for (i, g) in got.iter().enumerate().take(5).skip(1) {
        assert!(matches!(g, Some(TxError::InvalidStake(_))), "{i}: {g:?}");
    }
    assert_eq!(got[5], None);
    assert!(matches!(got[6], Some(TxError::UnstakeExceedsStake { .. })));
    assert!(matches!(got[7], Some(TxError::StakeBelowMinimum { .. })));
    assert_eq!(got[8], Some(TxError::ZeroAmount));
    assert_eq!(got[9], None);
}

#[test]
fn a_stake_larger_than_the_balance_is_refused() {
    let mut f = fixture(1);
    let u = f.users.remove(0);
    let g = f.genesis.header.clone();
    let all = balance(&f, &u);
    let (_, skipped) = block(
        &mut f,
        &g,
        &u,
        vec![TxPayload::Stake {
            role: StakeRole::Optimizer,
            amount: units(all),
            domains: vec![],
        }],
    );
    assert!(matches!(skipped[0], TxError::InsufficientBalance { .. }));
}
