//! The BFT context's pieces on their own: validator sets from stakes, proposer rotation, and
//! domain-separated BIP340 signing of consensus messages through the engine's traits; a
//! certificate made of the engine-signed precommits proves the block final.

#![allow(clippy::unwrap_used, clippy::expect_used)]

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
