//! Compact blocks: a receiver with the transactions rebuilds the exact block; one without gets
//! told precisely what is missing; a peer cannot slip in another transaction; and the relayed
//! size is the fraction the network design counts on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use doin_tx_core::{Block, CompactBlock, PartialBlock, SignedTx, Tx};

use crate::common;

fn block_of(n: usize) -> (Block, Vec<Tx>) {
    let b = common::loose_block(n);
    (b.block, b.txs)
}

fn pool(txs: &[Tx]) -> Vec<(doin_tx_core::TxId, &SignedTx)> {
    txs.iter().map(|t| (t.id(), t.signed())).collect()
}

#[test]
fn a_full_mempool_rebuilds_the_exact_block() {
    let (block, txs) = block_of(100);
    let compact = CompactBlock::from_block(&block).unwrap();
    let bytes = compact.encode().unwrap();
    let decoded = CompactBlock::decode(&bytes, 1 << 20).unwrap();
    // Unrelated pool transactions do not get in the way.
    let (_, other) = block_of(50);
    let mut all = pool(&other);
    all.extend(pool(&txs));
    let partial = PartialBlock::new(decoded, all).unwrap();
    assert!(partial.missing().is_empty());
    assert_eq!(partial.into_block().unwrap().unwrap(), block);
}

#[test]
fn missing_transactions_are_named_and_filled_from_the_sender() {
    let (block, txs) = block_of(20);
    let compact = CompactBlock::from_block(&block).unwrap();
    // The receiver has every other transaction.
    let have: Vec<Tx> = txs.iter().step_by(2).cloned().collect();
    let mut partial = PartialBlock::new(compact.clone(), pool(&have)).unwrap();
    let missing = partial.missing();
    assert_eq!(
        missing,
        (0..20).filter(|i| i % 2 == 1).collect::<Vec<u32>>()
    );
    assert!(partial.clone().into_block().unwrap().is_none());
    // A peer answering with the wrong transaction is caught.
    let wrong: Vec<SignedTx> = missing.iter().map(|_| txs[0].signed().clone()).collect();
    assert!(partial.clone().fill(&missing, wrong).is_err());
    assert!(partial.clone().fill(&missing[1..], vec![]).is_err());
    assert!(partial
        .clone()
        .fill(&[99], vec![txs[0].signed().clone()])
        .is_err());
    let right: Vec<SignedTx> = missing
        .iter()
        .map(|&i| block.txs[i as usize].clone())
        .collect();
    partial.fill(&missing, right).unwrap();
    assert_eq!(partial.into_block().unwrap().unwrap(), block);
}

#[test]
fn decoding_refuses_a_count_mismatch_trailing_bytes_and_oversize_input() {
    let (block, _) = block_of(5);
    let mut compact = CompactBlock::from_block(&block).unwrap();
    let bytes = compact.encode().unwrap();
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(CompactBlock::decode(&trailing, 1 << 20).is_err());
    assert!(CompactBlock::decode(&bytes, bytes.len() - 1).is_err());
    compact.short_ids.pop();
    assert!(CompactBlock::decode(&compact.encode().unwrap(), 1 << 20).is_err());
}

#[test]
fn a_wrong_rebuild_is_refused_by_the_transaction_root() {
    let (block, txs) = block_of(3);
    let mut compact = CompactBlock::from_block(&block).unwrap();
    // Swap two ids: every slot fills, but in the wrong order for the header's root.
    compact.short_ids.swap(0, 1);
    let partial = PartialBlock::new(compact, pool(&txs)).unwrap();
    assert!(partial.missing().is_empty());
    assert!(partial.into_block().is_err());
}

/// The goal of docs/network.md: ≥ 94 % of a 100-transaction block's bytes are saved when the
/// receiver's mempool holds every transaction (sizes are deterministic, so this is a test, not
/// a benchmark).
#[test]
fn compact_relay_saves_at_least_94_percent_at_100_transactions() {
    for n in [100usize, 1000] {
        let (block, _) = block_of(n);
        let full = block.encode().unwrap().len();
        let compact = CompactBlock::from_block(&block)
            .unwrap()
            .encode()
            .unwrap()
            .len();
        let saved_permille = (full - compact) * 1000 / full;
        println!("{n} transactions: full {full} B, compact {compact} B, saved {saved_permille}‰");
        assert!(saved_permille >= 940, "{n}: saved only {saved_permille}‰");
    }
}
