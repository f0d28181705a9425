//! Double signing: a validator that signs two different votes at one height and round can be
//! reported by anyone; its whole validator stake is burned (supply stays accounted for), it can
//! never bond as a validator again, and the same evidence cannot be used twice. Evidence that
//! does not prove double signing changes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use doin_crypto::KeyPair;
use doin_tx_core::bft::{signing_hash, Equivocation, VoteForm, VoteKind, TAG_BFT_VOTE};
use doin_tx_core::memtree::MemoryState;
use doin_tx_core::state::StateView;
use doin_tx_core::*;
use doin_types::{Amount, ChainId, Hash256};

use crate::common;

const STAKE: u64 = 5_000;

/// The common fixture, with the validator's stake bonded at genesis.
fn staked_fixture() -> common::Fixture {
    let mut f = common::fixture(2);
    f.spec.stakes.push(GenesisStake {
        key: f.validator.public(),
        role: StakeRole::Validator,
        amount: Amount::from_base_units(STAKE),
        domains: Vec::new(),
    });
    f.params = ChainParams::from_genesis(&f.spec).unwrap();
    f.state = MemoryState::new();
    let (genesis, applied) = genesis(&f.spec, &f.state).unwrap();
    f.state.commit(&applied);
    f.genesis = genesis;
    f
}

fn vote(
    chain: &ChainId,
    key: &KeyPair,
    height: u64,
    block: u8,
) -> (VoteForm, doin_types::SignatureBytes) {
    let form = VoteForm {
        kind: VoteKind::Precommit,
        height,
        round: 0,
        block: Some(Hash256([block; 32])),
        validator: key.public(),
    };
    let sig = key.sign(&signing_hash(TAG_BFT_VOTE, chain, &form).unwrap());
    (form, sig)
}

pub(crate) fn evidence(chain: &ChainId, key: &KeyPair) -> Equivocation {
    let (first, first_signature) = vote(chain, key, 7, 1);
    let (second, second_signature) = vote(chain, key, 7, 2);
    Equivocation {
        first,
        first_signature,
        second,
        second_signature,
    }
}

fn report(f: &common::Fixture, nonce: u64, e: Equivocation) -> Tx {
    Tx::from_signed(common::signed(
        f,
        &f.users[0],
        nonce,
        TxPayload::ReportEquivocation {
            evidence: Box::new(e),
        },
        10,
        1,
    ))
    .unwrap()
}

fn supply(f: &common::Fixture) -> (u128, u128) {
    let stats = f.state.chain_stats().unwrap();
    let mut held = 0u128;
    for u in &f.users {
        held += f
            .state
            .account(&u.public())
            .unwrap()
            .unwrap_or_default()
            .balance
            .base_units() as u128;
    }
    held += f
        .state
        .account(&f.validator.public())
        .unwrap()
        .unwrap_or_default()
        .balance
        .base_units() as u128;
    held += stats.staked.base_units() as u128;
    (
        stats.issued.base_units() as u128 - stats.burned.base_units() as u128,
        held,
    )
}

#[test]
fn a_double_signing_validator_loses_its_stake_once_and_for_good() {
    let mut f = staked_fixture();
    let chain = f.params.chain_id;
    let e = evidence(&chain, &f.validator);
    assert_eq!(e.offender(&chain), Ok(f.validator.public()));
    let burned_before = f.state.chain_stats().unwrap().burned;

    let parent = f.genesis.header.clone();
    let tx = report(&f, 0, e.clone());
    let (b1, skipped) = common::build_and_import(&mut f, &NoMainChain, &parent, vec![tx]);
    assert!(skipped.is_empty(), "{skipped:?}");
    assert_eq!(b1.txs.len(), 1);
    let st = f
        .state
        .stake(&f.validator.public(), StakeRole::Validator)
        .unwrap()
        .unwrap();
    assert!(st.tombstoned);
    assert_eq!(st.locked().unwrap(), Amount::ZERO);
    let stats = f.state.chain_stats().unwrap();
    assert_eq!(stats.staked, Amount::ZERO);
    assert!(stats.burned.base_units() >= burned_before.base_units() + STAKE);
    let (expected, held) = supply(&f);
    assert_eq!(expected, held, "issued - burned = balances + stakes");
    assert!(!f
        .state
        .stakers()
        .unwrap()
        .iter()
        .any(|(k, _)| *k == f.validator.public()));

    // The same evidence again: nothing left to take, refused.
    let parent = b1.header.clone();
    let tx = report(&f, 1, e);
    let (_, skipped) = common::build_and_import(&mut f, &NoMainChain, &parent, vec![tx]);
    assert_eq!(skipped, vec![TxError::Tombstoned]);
}

#[test]
fn evidence_that_proves_nothing_is_refused_before_any_state() {
    let f = staked_fixture();
    let chain = f.params.chain_id;
    let v = &f.validator;
    let good = evidence(&chain, v);
    let check = |e: Equivocation| {
        report(&f, 0, e)
            .check_stateless(&chain, 10_000, true)
            .unwrap_err()
    };
    let invalid = |e: &TxError| matches!(e, TxError::InvalidEvidence(_));

    // The same vote twice.
    let mut same = good.clone();
    same.second = same.first.clone();
    same.second_signature = same.first_signature;
    assert!(invalid(&check(same)));
    // Different heights, kinds or rounds: two honest votes.
    let (second, second_signature) = vote(&chain, v, 8, 2);
    let mut heights = good.clone();
    heights.second = second;
    heights.second_signature = second_signature;
    assert!(invalid(&check(heights)));
    let mut kinds = good.clone();
    kinds.second.kind = VoteKind::Prevote;
    assert!(invalid(&check(kinds)));
    // Two validators.
    let other = KeyPair::generate();
    let (second, second_signature) = vote(&chain, &other, 7, 2);
    let mut two = good.clone();
    two.second = second;
    two.second_signature = second_signature;
    assert!(invalid(&check(two)));
    // A forged second signature, or votes from another chain.
    let mut forged = good.clone();
    forged.second_signature = forged.first_signature;
    assert!(invalid(&check(forged)));
    let elsewhere = evidence(&ChainId(Hash256([9; 32])), v);
    assert!(invalid(&check(elsewhere)));
    assert_eq!(
        report(&f, 0, good).check_stateless(&chain, 10_000, true),
        Ok(())
    );
}

#[test]
fn only_validators_can_be_reported_and_a_tombstoned_key_cannot_bond_again() {
    let mut f = staked_fixture();
    let chain = f.params.chain_id;
    // A key that is not a validator: valid evidence, but nothing it could be slashed for.
    let stranger = KeyPair::generate();
    let parent = f.genesis.header.clone();
    let tx = report(&f, 0, evidence(&chain, &stranger));
    let (b1, skipped) = common::build_and_import(&mut f, &NoMainChain, &parent, vec![tx]);
    assert_eq!(skipped, vec![TxError::NotAValidator(stranger.public())]);

    let tx = report(&f, 0, evidence(&chain, &f.validator));
    let (b2, skipped) = common::build_and_import(&mut f, &NoMainChain, &b1.header, vec![tx]);
    assert!(skipped.is_empty());
    // The validator gets coins and tries to bond again.
    let give = Tx::from_signed(common::transfer(
        &f,
        &f.users[1],
        &f.validator,
        0,
        10_000,
        10,
        1,
    ))
    .unwrap();
    let (b3, skipped) = common::build_and_import(&mut f, &NoMainChain, &b2.header, vec![give]);
    assert!(skipped.is_empty());
    let rebond = Tx::from_signed(common::signed(
        &f,
        &f.validator,
        0,
        TxPayload::Stake {
            role: StakeRole::Validator,
            amount: Amount::from_base_units(2_000),
            domains: Vec::new(),
        },
        10,
        1,
    ))
    .unwrap();
    let (_, skipped) = common::build_and_import(&mut f, &NoMainChain, &b3.header, vec![rebond]);
    assert_eq!(skipped, vec![TxError::Tombstoned]);
}
