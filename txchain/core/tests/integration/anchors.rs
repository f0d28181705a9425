//! Transfer → main anchoring: main-chain credits reach transfer-chain balances exactly once, in
//! order, and every forged, backward or unknown anchor is refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{fixture, transfer, Fixture, MainChainStub};
use doin_crypto::KeyPair;
use doin_tx_core::{
    apply_block, build_block, ApplyContext, Block, BlockError, BlockHeader, StateView, Tx,
    MAX_ANCHOR_STEP,
};
use doin_types::{Amount, Hash256, MainAnchor, PublicKeyBytes, Timestamp};

fn ctx(now: u64) -> ApplyContext {
    ApplyContext {
        now: Timestamp(now),
        verify_tx_signatures: true,
    }
}

/// Builds the next block on `parent` with `main`'s candidate, imports it and commits it.
fn next(f: &mut Fixture, main: &MainChainStub, parent: &BlockHeader, txs: Vec<Tx>) -> Block {
    common::build_and_import(f, main, parent, txs).0
}

fn balance(f: &Fixture, key: &PublicKeyBytes) -> u64 {
    f.state
        .accounts()
        .get(key)
        .map_or(0, |a| a.balance.base_units())
}

fn sum_balances(f: &Fixture) -> u64 {
    f.state
        .accounts()
        .values()
        .map(|a| a.balance.base_units())
        .sum()
}

#[test]
fn credits_of_anchored_main_blocks_apply_exactly_once_and_in_order() {
    let mut f = fixture(2);
    let evaluator = KeyPair::generate().public();
    let mut main = MainChainStub::with_blocks(10, &[evaluator, f.users[0].public()]);
    let genesis_sum = sum_balances(&f);

    // Nothing to anchor yet: the anchor stays where it is.
    let g = f.genesis.header.clone();
    let b1 = next(&mut f, &main, &g, vec![]);
    assert_eq!(b1.header.main_anchor, MainAnchor::NONE);

    // Anchor main block 3: blocks 1, 2 and 3 pay 1 + 2 + 3 to each payee.
    main.candidate = Some(main.anchor(3));
    let b2 = next(&mut f, &main, &b1.header, vec![]);
    assert_eq!(b2.header.main_anchor, main.anchor(3));
    assert_eq!(balance(&f, &evaluator), 6);

    // The same candidate again: the anchor stays, nothing is credited twice.
    let b3 = next(&mut f, &main, &b2.header, vec![]);
    assert_eq!(b3.header.main_anchor, main.anchor(3));
    assert_eq!(balance(&f, &evaluator), 6);

    // Move to 5: only 4 and 5 are new. A credit is spendable in the block that imports it:
    // the evaluator account (new here) can not send yet, but user 0 can.
    main.candidate = Some(main.anchor(5));
    let tx = Tx::from_signed(transfer(&f, &f.users[0], &f.users[1], 0, 100, 50, 0)).unwrap();
    let b4 = next(&mut f, &main, &b3.header, vec![tx]);
    assert_eq!(b4.header.main_anchor, main.anchor(5));
    assert_eq!(balance(&f, &evaluator), 15);
    let stats = f.state.chain_stats().unwrap();
    assert_eq!(stats.imported.base_units(), 30);
    assert_eq!(stats.main_anchor, main.anchor(5));
    // Supply: genesis + imported − burned = every balance.
    assert_eq!(
        genesis_sum + stats.imported.base_units() - stats.burned.base_units(),
        sum_balances(&f)
    );
}

#[test]
fn a_far_candidate_is_reached_in_steps_of_at_most_the_cap() {
    let mut f = fixture(1);
    let payee = KeyPair::generate().public();
    let top = MAX_ANCHOR_STEP * 2 + 3;
    let mut main = MainChainStub::with_blocks(top, &[payee]);
    main.candidate = Some(main.anchor(top));
    let mut parent = f.genesis.header.clone();
    let mut heights = Vec::new();
    for _ in 0..3 {
        let b = next(&mut f, &main, &parent, vec![]);
        heights.push(b.header.main_anchor.height);
        parent = b.header;
    }
    assert_eq!(heights, vec![MAX_ANCHOR_STEP, MAX_ANCHOR_STEP * 2, top]);
    assert_eq!(balance(&f, &payee), top * (top + 1) / 2);
}

/// Builds a valid block anchoring `anchor_to`, then re-signs it with `header` edited by `edit`.
fn tampered(
    f: &Fixture,
    main: &MainChainStub,
    parent: &BlockHeader,
    edit: impl FnOnce(&mut BlockHeader),
) -> Block {
    let time = Timestamp(parent.time.0 + 1_000);
    let built = build_block(
        &f.params,
        &f.state,
        &f.state,
        main,
        parent,
        time,
        &f.validator,
        Vec::<Tx>::new(),
        true,
    )
    .unwrap();
    let mut header = built.block.header.clone();
    edit(&mut header);
    Block::sign(header, vec![], &f.validator).unwrap()
}

fn import(f: &Fixture, main: &MainChainStub, parent: &BlockHeader, b: &Block) -> BlockError {
    apply_block(
        &f.params,
        &f.state,
        &f.state,
        main,
        parent,
        b,
        ctx(parent.time.0 + 10_000),
    )
    .map(|_| ())
    .unwrap_err()
}

#[test]
fn forged_backward_unknown_and_oversized_anchors_are_refused() {
    let mut f = fixture(1);
    let payee = KeyPair::generate().public();
    let mut main = MainChainStub::with_blocks(MAX_ANCHOR_STEP + 10, &[payee]);
    main.candidate = Some(main.anchor(4));
    let g = f.genesis.header.clone();
    let b1 = next(&mut f, &main, &g, vec![]);
    let parent = b1.header.clone();
    main.candidate = None;

    // Backward.
    let b = tampered(&f, &main, &parent, |h| h.main_anchor = main.anchor(3));
    assert!(matches!(
        import(&f, &main, &parent, &b),
        BlockError::AnchorBackwards { parent: 4, got: 3 }
    ));
    // Same height, another block.
    let b = tampered(&f, &main, &parent, |h| {
        h.main_anchor.hash = Hash256([9; 32])
    });
    assert!(matches!(
        import(&f, &main, &parent, &b),
        BlockError::AnchorChanged { height: 4 }
    ));
    // A hash that is not the main block at that height (forged anchor).
    let b = tampered(&f, &main, &parent, |h| {
        h.main_anchor = MainAnchor {
            height: 6,
            hash: Hash256([7; 32]),
        }
    });
    assert!(matches!(
        import(&f, &main, &parent, &b),
        BlockError::AnchorMismatch { height: 6 }
    ));
    // A main block this node does not have: refused, but retryable once the main chain has it.
    let b = tampered(&f, &main, &parent, |h| {
        h.main_anchor = MainAnchor {
            height: MAX_ANCHOR_STEP + 11,
            hash: Hash256([7; 32]),
        }
    });
    let e = import(&f, &main, &parent, &b);
    assert!(matches!(e, BlockError::AnchorStepTooLarge { .. }), "{e:?}");
    let b = tampered(&f, &main, &parent, |h| {
        h.main_anchor = MainAnchor {
            height: MAX_ANCHOR_STEP,
            hash: Hash256([7; 32]),
        }
    });
    let mut shorter = MainChainStub::with_blocks(6, &[payee]);
    shorter.candidate = None;
    let e = import(&f, &shorter, &parent, &b);
    assert!(
        matches!(e, BlockError::UnknownMainBlock { height: 7 }),
        "{e:?}"
    );
    assert!(e.is_retryable());
    // Main blocks that do not link up with the parent's anchor (another main chain).
    let mut other = MainChainStub::with_blocks(8, &[payee]);
    if let Some(e5) = other.blocks.get_mut(&5) {
        e5.parent = Hash256([3; 32]);
    }
    let b = tampered(&f, &main, &parent, |h| h.main_anchor = other.anchor(6));
    assert!(matches!(
        import(&f, &other, &parent, &b),
        BlockError::MainChainBroken { height: 5 }
    ));
    // A credit the header does not account for: the state root catches it.
    let b = tampered(&f, &main, &parent, |h| h.main_anchor = main.anchor(5));
    assert!(matches!(
        import(&f, &main, &parent, &b),
        BlockError::WrongStateRoot
    ));
}

#[test]
fn anchored_slashes_burn_a_share_of_the_stake_exactly_once() {
    use doin_tx_core::{StakeRole, TxPayload};
    use doin_types::{Slash, SlashReason};
    let mut f = fixture(2);
    let mut main = MainChainStub::with_blocks(3, &[]);
    let optimizer = f.users[0].public();
    let stranger = KeyPair::generate().public();
    // User 0 stakes 10 000 as optimizer (in block 1, nothing anchored yet).
    let stake = Tx::from_signed(common::signed(
        &f,
        &f.users[0],
        0,
        TxPayload::Stake {
            role: StakeRole::Optimizer,
            amount: Amount::from_base_units(10_000),
            domains: vec![],
        },
        50,
        0,
    ))
    .unwrap();
    let g = f.genesis.header.clone();
    let b1 = next(&mut f, &main, &g, vec![stake]);
    let supply = |f: &Fixture| {
        let stats = f.state.chain_stats().unwrap();
        (
            sum_balances(f) + stats.staked.base_units(),
            stats.circulating().unwrap().base_units(),
        )
    };
    let burned_before = f.state.chain_stats().unwrap().burned;

    // Main block 2 rejected an optimae of user 0 (10 % of its stake in the test parameters)
    // and slashes a key with no stake (nothing happens).
    if let Some(e2) = main.blocks.get_mut(&2) {
        e2.slashes = vec![
            Slash {
                key: optimizer,
                reason: SlashReason::RejectedOptimae,
            },
            Slash {
                key: stranger,
                reason: SlashReason::WrongVote,
            },
        ];
    }
    main.candidate = Some(main.anchor(3));
    let b2 = next(&mut f, &main, &b1.header, vec![]);
    let st = f
        .state
        .stake(&optimizer, StakeRole::Optimizer)
        .unwrap()
        .unwrap();
    assert_eq!(st.bonded, Amount::from_base_units(9_000));
    let stats = f.state.chain_stats().unwrap();
    assert_eq!(
        stats.burned.base_units() - burned_before.base_units(),
        1_000,
        "the slashed share is burned"
    );
    assert_eq!(stats.staked, Amount::from_base_units(9_000));
    let (held, circulating) = supply(&f);
    assert_eq!(held, circulating);
    assert!(f
        .state
        .stake(&stranger, StakeRole::Evaluator)
        .unwrap()
        .is_none());

    // The anchor stays: no second slash.
    let _ = next(&mut f, &main, &b2.header, vec![]);
    let st = f
        .state
        .stake(&optimizer, StakeRole::Optimizer)
        .unwrap()
        .unwrap();
    assert_eq!(st.bonded, Amount::from_base_units(9_000));
}

#[test]
fn a_block_that_contradicts_a_checkpoint_is_refused() {
    let f = fixture(1);
    let mut main = MainChainStub::with_blocks(2, &[]);
    let g = f.genesis.header.clone();
    let b = tampered(&f, &main, &g, |_| {});
    // The main chain checkpointed another block at height 1: this one is refused.
    main.checkpoints.insert(1, Hash256([4; 32]));
    assert!(matches!(
        import(&f, &main, &g, &b),
        BlockError::ContradictsCheckpoint { height: 1 }
    ));
    // The checkpointed block itself is fine.
    main.checkpoints.insert(1, b.hash().unwrap());
    assert!(apply_block(
        &f.params,
        &f.state,
        &f.state,
        &main,
        &g,
        &b,
        ctx(g.time.0 + 10_000)
    )
    .is_ok());
}
