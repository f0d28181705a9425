//! Every block-validation rule, each broken on its own by an otherwise valid block.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use doin_crypto::KeyPair;
use doin_tx_core::NoMainChain;
use doin_tx_core::{
    apply_block, build_block, ApplyContext, Block, BlockError, BlockHeader, Tx, TxError,
};
use doin_types::{Amount, Hash256, Timestamp};

fn ctx(now: u64) -> ApplyContext {
    ApplyContext {
        now: Timestamp(now),
        verify_tx_signatures: true,
    }
}

fn resign(mut header: BlockHeader, txs: Vec<doin_tx_core::SignedTx>, key: &KeyPair) -> Block {
    header.tx_count = txs.len() as u32;
    Block::sign(header, txs, key).unwrap()
}

/// A valid block with two transfers, built on genesis.
fn valid(f: &Fixture) -> Block {
    let txs = vec![
        Tx::from_signed(transfer(f, &f.users[0], &f.users[1], 0, 100, 50, 2)).unwrap(),
        Tx::from_signed(transfer(f, &f.users[1], &f.users[0], 0, 7, 50, 0)).unwrap(),
    ];
    let built = build_block(
        &f.params,
        &f.state,
        &f.state,
        &NoMainChain,
        &f.genesis.header,
        Timestamp(f.genesis.header.time.0 + 1000),
        &f.validator,
        txs,
        true,
    )
    .unwrap();
    assert!(built.skipped.is_empty());
    built.block
}

fn now(f: &Fixture) -> u64 {
    f.genesis.header.time.0 + 2000
}

fn check(f: &Fixture, b: &Block) -> Result<(), BlockError> {
    apply_block(
        &f.params,
        &f.state,
        &f.state,
        &NoMainChain,
        &f.genesis.header,
        b,
        ctx(now(f)),
    )
    .map(|_| ())
}

#[test]
fn valid_block_applies_with_the_same_root() {
    let f = fixture(2);
    let b = valid(&f);
    let applied = apply_block(
        &f.params,
        &f.state,
        &f.state,
        &NoMainChain,
        &f.genesis.header,
        &b,
        ctx(now(&f)),
    )
    .unwrap();
    assert_eq!(applied.state_root, b.header.state_root);
    assert_eq!(applied.receipts.len(), 2);
}

#[test]
fn each_header_rule_is_enforced() {
    let f = fixture(2);
    let b = valid(&f);
    let key = &f.validator;
    let txs = b.txs.clone();

    let mut h = b.header.clone();
    h.chain_id = doin_types::ChainId(Hash256([9; 32]));
    assert_eq!(
        check(&f, &resign(h, txs.clone(), key)),
        Err(BlockError::WrongChain)
    );

    let mut h = b.header.clone();
    h.height = 2;
    assert!(matches!(
        check(&f, &resign(h, txs.clone(), key)),
        Err(BlockError::WrongHeight { .. })
    ));

    let mut h = b.header.clone();
    h.parent = Hash256([1; 32]);
    assert_eq!(
        check(&f, &resign(h, txs.clone(), key)),
        Err(BlockError::WrongParent)
    );

    let mut h = b.header.clone();
    h.time = f.genesis.header.time;
    assert!(matches!(
        check(&f, &resign(h, txs.clone(), key)),
        Err(BlockError::TimeNotIncreasing { .. })
    ));

    let mut h = b.header.clone();
    h.time = Timestamp(now(&f) + f.params.consensus.max_future_drift_ms + 1);
    assert!(matches!(
        check(&f, &resign(h, txs.clone(), key)),
        Err(BlockError::TimeInFuture { .. })
    ));

    // Signed by someone who is not the validator.
    let stranger = KeyPair::generate();
    let mut h = b.header.clone();
    h.proposer = stranger.public();
    assert_eq!(
        check(&f, &resign(h, txs.clone(), &stranger)),
        Err(BlockError::WrongProposer)
    );

    // Right proposer named, wrong key signed.
    let forged = resign(b.header.clone(), txs.clone(), &stranger);
    assert_eq!(check(&f, &forged), Err(BlockError::BadSignature));

    let mut h = b.header.clone();
    h.base_fee = Amount::from_base_units(h.base_fee.base_units() + 1);
    assert!(matches!(
        check(&f, &resign(h, txs.clone(), key)),
        Err(BlockError::WrongBaseFee { .. })
    ));

    let mut h = b.header.clone();
    h.weight_used += 1;
    assert!(matches!(
        check(&f, &resign(h, txs.clone(), key)),
        Err(BlockError::WrongWeight { .. })
    ));

    let mut h = b.header.clone();
    h.tx_root = Hash256([3; 32]);
    assert_eq!(
        check(&f, &resign(h, txs.clone(), key)),
        Err(BlockError::WrongTxRoot)
    );

    let mut h = b.header.clone();
    h.state_root = Hash256([4; 32]);
    assert_eq!(
        check(&f, &resign(h, txs.clone(), key)),
        Err(BlockError::WrongStateRoot)
    );
}

#[test]
fn tx_order_and_content_are_enforced() {
    let f = fixture(2);
    let b = valid(&f);
    // Swapped transactions: the root changes, so the header must say so, and then the state
    // is still the same (independent senders) — swap and fix the tx root to isolate the rule.
    let mut txs = b.txs.clone();
    txs.swap(0, 1);
    let ids: Vec<Tx> = txs
        .iter()
        .cloned()
        .map(|t| Tx::from_signed(t).unwrap())
        .collect();
    let mut h = b.header.clone();
    h.tx_root = doin_tx_core::tx_root(&ids);
    assert!(check(&f, &resign(h, txs, &f.validator)).is_ok());

    // A transaction with a broken signature inside an otherwise consistent block.
    let mut bad = b.txs.clone();
    bad[0].body.payload = match bad[0].body.payload.clone() {
        doin_tx_core::TxPayload::Transfer { to, .. } => doin_tx_core::TxPayload::Transfer {
            to,
            amount: Amount::from_base_units(101),
        },
        other => panic!("the fixture block holds transfers, not {}", other.kind()),
    };
    let ids: Vec<Tx> = bad
        .iter()
        .cloned()
        .map(|t| Tx::from_signed(t).unwrap())
        .collect();
    let mut h = b.header.clone();
    h.tx_root = doin_tx_core::tx_root(&ids);
    assert_eq!(
        check(&f, &resign(h, bad, &f.validator)),
        Err(BlockError::InvalidTx {
            index: 0,
            error: TxError::BadSignature
        })
    );

    // A transfer to a key that is not on the curve (a fresh account): block application checks
    // recipient keys itself, not only the mempool.
    let off_curve = doin_types::PublicKeyBytes([0xff; 32]);
    assert!(!doin_crypto::is_valid_public_key(&off_curve));
    let mut body = b.txs[0].body.clone();
    body.payload = doin_tx_core::TxPayload::Transfer {
        to: off_curve,
        amount: Amount::from_base_units(5),
    };
    let bad = vec![body.sign(&f.users[0]).unwrap()];
    let ids: Vec<Tx> = bad
        .iter()
        .cloned()
        .map(|t| Tx::from_signed(t).unwrap())
        .collect();
    let mut h = b.header.clone();
    h.tx_root = doin_tx_core::tx_root(&ids);
    h.weight_used = ids.iter().map(|t| t.weight()).sum();
    assert_eq!(
        check(&f, &resign(h, bad, &f.validator)),
        Err(BlockError::InvalidTx {
            index: 0,
            error: TxError::InvalidRecipient
        })
    );

    // A replayed transaction (same nonce twice).
    let dup = vec![b.txs[0].clone(), b.txs[0].clone()];
    let ids: Vec<Tx> = dup
        .iter()
        .cloned()
        .map(|t| Tx::from_signed(t).unwrap())
        .collect();
    let mut h = b.header.clone();
    h.tx_root = doin_tx_core::tx_root(&ids);
    h.weight_used = ids.iter().map(|t| t.weight()).sum();
    assert_eq!(
        check(&f, &resign(h, dup, &f.validator)),
        Err(BlockError::InvalidTx {
            index: 1,
            error: TxError::NonceTooLow {
                expected: 1,
                got: 0
            }
        })
    );
}

#[test]
fn overweight_blocks_are_rejected() {
    let f = fixture(2);
    let limit = f.params.consensus.block_weight_limit;
    let per_tx = 196;
    let n = limit / per_tx + 1;
    let txs: Vec<doin_tx_core::SignedTx> = (0..n)
        .map(|i| transfer(&f, &f.users[0], &f.users[1], i, 1, 50, 0))
        .collect();
    let ids: Vec<Tx> = txs
        .iter()
        .cloned()
        .map(|t| Tx::from_signed(t).unwrap())
        .collect();
    let b = valid(&f);
    let mut h = b.header.clone();
    h.tx_root = doin_tx_core::tx_root(&ids);
    h.weight_used = ids.iter().map(|t| t.weight()).sum();
    assert!(matches!(
        check(&f, &resign(h, txs, &f.validator)),
        Err(BlockError::Overweight { .. })
    ));
}

#[test]
fn producer_skips_what_is_invalid_and_reports_why() {
    let f = fixture(2);
    let good = Tx::from_signed(transfer(&f, &f.users[0], &f.users[1], 0, 100, 50, 0)).unwrap();
    let gap = Tx::from_signed(transfer(&f, &f.users[0], &f.users[1], 5, 100, 50, 0)).unwrap();
    let cheap = Tx::from_signed(transfer(&f, &f.users[1], &f.users[0], 0, 100, 1, 0)).unwrap();
    let built = build_block(
        &f.params,
        &f.state,
        &f.state,
        &NoMainChain,
        &f.genesis.header,
        Timestamp(f.genesis.header.time.0 + 1),
        &f.validator,
        vec![good.clone(), gap.clone(), cheap.clone()],
        true,
    )
    .unwrap();
    assert_eq!(built.block.txs.len(), 1);
    assert_eq!(built.skipped.len(), 2);
    assert!(matches!(built.skipped[0].1, TxError::NonceTooHigh { .. }));
    assert!(matches!(
        built.skipped[1].1,
        TxError::FeeBelowBaseFee { .. }
    ));
}
