//! The BFT context's pieces on their own: validator sets from stakes, proposer rotation, and
//! domain-separated BIP340 signing of consensus messages through the engine's traits; a
//! certificate made of the engine-signed precommits proves the block final.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use arc_malachitebft_core_types::ProposalPart as _;
use arc_malachitebft_core_types::{Context, NilOrVal, Round, Validator, ValidatorSet as _};
use arc_malachitebft_signing::{Signer, Verifier};
use doin_crypto::KeyPair;
use doin_tx_node::consensus::*;
use doin_types::{ChainId, Hash256, PublicKeyBytes};
use std::sync::Arc;

fn keys(n: usize) -> Vec<Arc<KeyPair>> {
    let mut k: Vec<Arc<KeyPair>> = (0..n).map(|_| Arc::new(KeyPair::generate())).collect();
    k.sort_by_key(|k| k.public());
    k
}

fn equal_set(keys: &[Arc<KeyPair>]) -> BftValidatorSet {
    BftValidatorSet::new(keys.iter().map(|k| (k.public(), 100))).unwrap()
}

const CHAIN: ChainId = ChainId(Hash256([7; 32]));

#[test]
fn the_engine_sees_the_chains_validator_set() {
    let k = keys(5);
    let stakes: Vec<(PublicKeyBytes, u64)> = vec![
        (k[0].public(), 10),
        (k[1].public(), 50),
        (k[2].public(), 0),
        (k[3].public(), 50),
        (k[4].public(), 30),
    ];
    let chain_set = ValidatorSet::from_stakes(stakes, 3).unwrap();
    let set = BftValidatorSet::from(chain_set.clone());
    assert_eq!(set.set(), &chain_set);
    assert_eq!(set.count(), 3);
    assert_eq!(set.total_voting_power(), chain_set.total_power());
    for (i, (key, power)) in chain_set.validators().iter().enumerate() {
        let v = set.get_by_index(i).unwrap();
        assert_eq!((v.public_key(), v.voting_power()), (key, *power));
        assert_eq!(set.get_by_address(&ValidatorAddress(*key)), Some(v));
    }
    assert!(set
        .get_by_address(&ValidatorAddress(k[0].public()))
        .is_none());
    assert_eq!(
        BftValidatorSet::new(vec![(k[0].public(), 0)]),
        Err(ValidatorSetError::Empty)
    );
}

#[test]
fn every_validator_proposes_in_turn() {
    let k = keys(4);
    let set = equal_set(&k);
    let ctx = DoinContext;
    let proposers: Vec<ValidatorAddress> = (1..=4)
        .map(|h| {
            *ctx.select_proposer(&set, BftHeight(h), Round::new(0))
                .address()
        })
        .collect();
    let distinct: std::collections::BTreeSet<_> = proposers.iter().collect();
    assert_eq!(distinct.len(), 4, "four heights, four proposers");
    // A new round moves to the next validator.
    let r0 = *ctx
        .select_proposer(&set, BftHeight(9), Round::new(0))
        .address();
    let r1 = *ctx
        .select_proposer(&set, BftHeight(9), Round::new(1))
        .address();
    assert_ne!(r0, r1);
    // Same inputs, same proposer.
    assert_eq!(
        r0,
        *ctx.select_proposer(&set, BftHeight(9), Round::new(0))
            .address()
    );
}

#[tokio::test]
async fn consensus_signatures_are_bound_to_their_kind_and_chain() {
    let key = Arc::new(KeyPair::generate());
    let signer = ConsensusSigner::new(CHAIN, ConsensusKey(key.clone()));
    let ctx = DoinContext;
    let me = ValidatorAddress(key.public());
    let block = Hash256([1; 32]);
    let vote = ctx.new_precommit(BftHeight(5), Round::new(0), NilOrVal::Val(block), me);
    let signed = signer.sign_vote(vote.clone()).await.unwrap();
    assert!(signer
        .verify_signed_vote(&vote, &signed.signature, &key.public())
        .await
        .unwrap()
        .is_valid());
    // Another chain, another kind of message, another vote, another key: all invalid.
    let other_chain = ConsensusSigner::verifier(ChainId(Hash256([8; 32])));
    assert!(other_chain
        .verify_signed_vote(&vote, &signed.signature, &key.public())
        .await
        .unwrap()
        .is_invalid());
    assert!(!signer.check(
        TAG_BFT_PROPOSAL,
        &vote.form().unwrap(),
        &signed.signature,
        &key.public()
    ));
    assert!(vote.form().unwrap().verify(&CHAIN, &signed.signature));
    let prevote = ctx.new_prevote(BftHeight(5), Round::new(0), NilOrVal::Val(block), me);
    assert!(signer
        .verify_signed_vote(&prevote, &signed.signature, &key.public())
        .await
        .unwrap()
        .is_invalid());
    assert!(signer
        .verify_signed_vote(&vote, &signed.signature, &KeyPair::generate().public())
        .await
        .unwrap()
        .is_invalid());

    let proposal = ctx.new_proposal(
        BftHeight(5),
        Round::new(0),
        BlockValue(block),
        Round::Nil,
        me,
    );
    let sp = signer.sign_proposal(proposal.clone()).await.unwrap();
    assert!(signer
        .verify_signed_proposal(&proposal, &sp.signature, &key.public())
        .await
        .unwrap()
        .is_valid());
    assert!(!signer.check(
        TAG_BFT_VOTE,
        &proposal.form().unwrap(),
        &sp.signature,
        &key.public()
    ));

    // A node without a validator key verifies but cannot sign.
    assert!(ConsensusSigner::verifier(CHAIN)
        .sign_vote(vote)
        .await
        .is_err());
}

#[tokio::test]
async fn precommits_signed_for_the_engine_make_a_commit_certificate() {
    let k = keys(4);
    let set = equal_set(&k);
    let block = Hash256([3; 32]);
    let mut signatures = Vec::new();
    for key in &k[..3] {
        let signer = ConsensusSigner::new(CHAIN, ConsensusKey(key.clone()));
        let vote = DoinContext.new_precommit(
            BftHeight(10),
            Round::new(2),
            NilOrVal::Val(block),
            ValidatorAddress(key.public()),
        );
        signatures.push((
            key.public(),
            signer.sign_vote(vote).await.unwrap().signature,
        ));
    }
    let cert = CommitCertificate {
        height: 10,
        round: 2,
        block,
        signatures,
    };
    assert_eq!(cert.verify(&CHAIN, 10, &block, set.set()), Ok(()));
    let mut two = cert.clone();
    two.signatures.pop();
    assert!(matches!(
        two.verify(&CHAIN, 10, &block, set.set()),
        Err(CertificateError::NotEnoughPower { .. })
    ));
}

/// A signed block of `n` (structurally valid, unverified) transactions at height 5.
fn big_block(key: &KeyPair, n: usize) -> doin_tx_core::Block {
    let tx = doin_tx_core::SignedTx {
        body: doin_tx_core::TxBody {
            chain_id: CHAIN,
            sender: key.public(),
            nonce: 0,
            max_fee_per_weight: doin_types::Amount::from_base_units(10),
            max_priority_fee_per_weight: doin_types::Amount::from_base_units(1),
            payload: doin_tx_core::TxPayload::Transfer {
                to: key.public(),
                amount: doin_types::Amount::from_base_units(1),
            },
        },
        signature: doin_types::SignatureBytes([0; 64]),
    };
    let header = doin_tx_core::BlockHeader {
        chain_id: CHAIN,
        height: 5,
        parent: Hash256([1; 32]),
        time: doin_types::Timestamp(1),
        proposer: key.public(),
        state_root: Hash256([2; 32]),
        tx_root: Hash256([3; 32]),
        base_fee: doin_types::Amount::from_base_units(1),
        weight_used: 0,
        tx_count: n as u32,
        main_anchor: doin_types::MainAnchor::NONE,
        last_commit: None,
    };
    doin_tx_core::Block::sign(header, vec![tx; n], key).unwrap()
}

const MAX: usize = 4 * 1024 * 1024;

#[test]
fn a_block_streamed_in_parts_comes_back_whole_in_any_order() {
    let key = KeyPair::generate();
    let me = ValidatorAddress(key.public());
    let block = big_block(&key, 1_000);
    let mut parts = split_block(&block, BftHeight(5), Round::new(0), me, MAX).unwrap();
    assert!(parts.len() >= 3, "{} parts", parts.len());
    assert!(parts.iter().all(|p| p.bytes.len() <= PART_BYTES));
    assert!(parts[0].is_first() && parts.last().unwrap().is_last());
    parts.reverse();
    let mut c = PartsCollector::new(MAX, 8);
    let last = parts.pop().unwrap();
    for p in &parts {
        assert_eq!(c.insert(p.clone()), Ok(PartsOutcome::Incomplete));
        // A repeated part is harmless.
        assert_eq!(c.insert(p.clone()), Ok(PartsOutcome::Incomplete));
    }
    assert_eq!(
        c.insert(last),
        Ok(PartsOutcome::Complete(Box::new(block.clone())))
    );
    assert!(c.is_empty(), "a finished stream is forgotten");

    // A single-part block.
    let small = big_block(&key, 3);
    let one = split_block(&small, BftHeight(5), Round::new(1), me, MAX).unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(
        c.insert(one[0].clone()),
        Ok(PartsOutcome::Complete(Box::new(small)))
    );
}

#[test]
fn parts_that_do_not_add_up_are_refused_and_their_stream_dropped() {
    let key = KeyPair::generate();
    let me = ValidatorAddress(key.public());
    let block = big_block(&key, 1_000);
    let parts = split_block(&block, BftHeight(5), Round::new(0), me, MAX).unwrap();
    let total = parts[0].total;
    let mut c = PartsCollector::new(MAX, 8);

    c.insert(parts[0].clone()).unwrap();
    let mut conflicting = parts[0].clone();
    conflicting.bytes[0] ^= 1;
    assert_eq!(
        c.insert(conflicting),
        Err(PartsError::Conflicting { index: 0 })
    );
    assert!(c.is_empty());

    let mut out_of_range = parts[0].clone();
    out_of_range.index = total;
    assert!(matches!(
        c.insert(out_of_range),
        Err(PartsError::OutOfRange { .. })
    ));
    let mut too_many = parts[0].clone();
    too_many.total = 1_000;
    too_many.index = 999;
    assert!(matches!(
        c.insert(too_many),
        Err(PartsError::OutOfRange { .. })
    ));
    let mut empty = parts[0].clone();
    empty.bytes.clear();
    assert_eq!(c.insert(empty), Err(PartsError::Empty));

    c.insert(parts[0].clone()).unwrap();
    let mut other_total = parts[1].clone();
    other_total.total = total + 1;
    assert_eq!(c.insert(other_total), Err(PartsError::TotalMismatch));

    // More bytes than a block may have.
    assert!(matches!(
        split_block(&block, BftHeight(5), Round::new(0), me, 1_000),
        Err(PartsError::TooLarge { .. })
    ));
    // A stream announcing more parts than the size bound allows, or carrying more bytes.
    let mut one_part = PartsCollector::new(PART_BYTES, 8);
    assert!(matches!(
        one_part.insert(parts[0].clone()),
        Err(PartsError::OutOfRange { .. })
    ));
    let bytes: usize = parts.iter().map(|p| p.bytes.len()).sum();
    let mut tight = PartsCollector::new(bytes - 1, 8);
    let mut result = Ok(PartsOutcome::Incomplete);
    for p in &parts {
        result = tight.insert(p.clone());
        if result.is_err() {
            break;
        }
    }
    assert!(
        matches!(result, Err(PartsError::TooLarge { .. })),
        "{result:?}"
    );
}

#[test]
fn a_reassembled_block_must_match_its_announcement_and_signature() {
    let key = KeyPair::generate();
    let me = ValidatorAddress(key.public());
    let block = big_block(&key, 10);
    let mut c = PartsCollector::new(MAX, 8);
    let announce = |height, proposer| {
        split_block(&block, BftHeight(height), Round::new(0), proposer, MAX).unwrap()
    };
    assert_eq!(
        c.insert(announce(6, me)[0].clone()),
        Err(PartsError::Mismatch("height"))
    );
    let other = ValidatorAddress(KeyPair::generate().public());
    assert_eq!(
        c.insert(announce(5, other)[0].clone()),
        Err(PartsError::Mismatch("proposer"))
    );
    let mut tampered = block.clone();
    tampered.header.time = doin_types::Timestamp(2);
    let parts = split_block(&tampered, BftHeight(5), Round::new(0), me, MAX).unwrap();
    assert_eq!(c.insert(parts[0].clone()), Err(PartsError::BadSignature));
    let mut garbage = announce(5, me)[0].clone();
    garbage.bytes.push(0);
    assert!(matches!(c.insert(garbage), Err(PartsError::Malformed(_))));
    assert!(c.is_empty());
}

#[test]
fn streams_are_bounded_and_pruned_by_height() {
    let key = KeyPair::generate();
    let me = ValidatorAddress(key.public());
    let block = big_block(&key, 1_000);
    let mut c = PartsCollector::new(MAX, 2);
    for h in [3, 4, 5] {
        let parts = split_block(&block, BftHeight(h), Round::new(0), me, MAX).unwrap();
        c.insert(parts[0].clone()).unwrap();
    }
    assert_eq!(c.len(), 2, "the lowest stream made room");
    c.prune_below(BftHeight(5));
    assert_eq!(c.len(), 1);
}
