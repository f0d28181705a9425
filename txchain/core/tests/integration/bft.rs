//! The signed forms of consensus messages are pinned: their signing hashes are golden values,
//! so a change of encoding, tag or field order cannot slip in unnoticed (other implementations
//! check certificates byte for byte). Validator sets and commit certificates: every way a
//! certificate can fail to prove a block final.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use doin_codec::{decode_exact, encode};
use doin_crypto::KeyPair;
use doin_tx_core::bft::*;
use doin_types::{ChainId, Hash256, PublicKeyBytes};

const CHAIN: ChainId = ChainId(Hash256([7; 32]));

fn vote() -> VoteForm {
    VoteForm {
        kind: VoteKind::Precommit,
        height: 42,
        round: 1,
        block: Some(Hash256([3; 32])),
        validator: PublicKeyBytes([9; 32]),
    }
}

fn proposal() -> ProposalForm {
    ProposalForm {
        height: 42,
        round: 1,
        block: Hash256([3; 32]),
        pol_round: None,
        proposer: PublicKeyBytes([9; 32]),
    }
}

#[test]
fn signing_hashes_are_golden() {
    let v = signing_hash(TAG_BFT_VOTE, &CHAIN, &vote()).unwrap();
    let p = signing_hash(TAG_BFT_PROPOSAL, &CHAIN, &proposal()).unwrap();
    assert_eq!(v.to_hex(), VOTE_GOLDEN);
    assert_eq!(p.to_hex(), PROPOSAL_GOLDEN);
}

const VOTE_GOLDEN: &str = "c894402430eee1a2b7babb6fb0fe3066def394298dc2b35234a6f55fbeae6561";
const PROPOSAL_GOLDEN: &str = "9cf5da51c19f7d84a058936eb674777a23a7cce5dd70451cc81dc820c9002fef";

#[test]
fn a_signature_holds_for_its_form_chain_and_signer_only() {
    let key = KeyPair::generate();
    let mut v = vote();
    v.validator = key.public();
    let sig = key.sign(&signing_hash(TAG_BFT_VOTE, &CHAIN, &v).unwrap());
    assert!(v.verify(&CHAIN, &sig));
    assert!(!v.verify(&ChainId(Hash256([8; 32])), &sig), "another chain");
    let mut nil = v.clone();
    nil.block = None;
    assert!(!nil.verify(&CHAIN, &sig), "a vote for nil is another vote");
    let mut prevote = v.clone();
    prevote.kind = VoteKind::Prevote;
    assert!(
        !prevote.verify(&CHAIN, &sig),
        "a prevote is not a precommit"
    );
    let mut p = proposal();
    p.proposer = key.public();
    assert!(
        !p.verify(&CHAIN, &sig),
        "a vote signature is no proposal signature"
    );
}

fn keys(n: usize) -> Vec<KeyPair> {
    let mut k: Vec<KeyPair> = (0..n).map(|_| KeyPair::generate()).collect();
    k.sort_by_key(|k| k.public());
    k
}

fn refs(k: &[KeyPair]) -> Vec<&KeyPair> {
    k.iter().collect()
}

#[test]
fn validator_sets_come_from_the_largest_stakes() {
    let k = keys(5);
    let stakes = vec![
        (k[0].public(), 10),
        (k[1].public(), 50),
        (k[2].public(), 0),
        (k[3].public(), 50),
        (k[4].public(), 30),
    ];
    let set = ValidatorSet::from_stakes(stakes, 3).unwrap();
    let chosen: Vec<PublicKeyBytes> = set.validators().iter().map(|(k, _)| *k).collect();
    let mut expected = vec![k[1].public(), k[3].public(), k[4].public()];
    expected.sort();
    assert_eq!(chosen, expected, "top three by stake, in key order");
    assert_eq!((set.total_power(), set.quorum_power()), (130, 87));
    assert_eq!(set.power_of(&k[4].public()), Some(30));
    assert_eq!(set.power_of(&k[0].public()), None);
    assert_eq!(
        ValidatorSet::new(vec![(k[0].public(), 0)]),
        Err(ValidatorSetError::Empty)
    );
    assert_eq!(
        ValidatorSet::new(vec![(k[0].public(), 1), (k[0].public(), 2)]),
        Err(ValidatorSetError::Duplicate(k[0].public()))
    );
    assert_eq!(
        ValidatorSet::new(vec![(k[0].public(), u64::MAX), (k[1].public(), 1)]),
        Err(ValidatorSetError::Overflow)
    );
    for (n, q) in [(1, 1), (3, 3), (4, 3), (7, 5), (10, 7)] {
        let s = ValidatorSet::new(keys(n).iter().map(|k| (k.public(), 1))).unwrap();
        assert_eq!(s.quorum_power(), q, "{n} equal validators");
    }
}

#[test]
fn a_commit_certificate_proves_finality_only_with_a_two_thirds_quorum() {
    let k = keys(4);
    let set = ValidatorSet::new(k.iter().map(|k| (k.public(), 100))).unwrap();
    let block = Hash256([3; 32]);
    let good = CommitCertificate::sign(&CHAIN, 10, 1, block, &refs(&k[..3])).unwrap();
    assert_eq!(good.verify(&CHAIN, 10, &block, &set), Ok(()));
    let all = CommitCertificate::sign(&CHAIN, 10, 1, block, &refs(&k)).unwrap();
    assert_eq!(all.verify(&CHAIN, 10, &block, &set), Ok(()));

    // One codec, no trailing bytes.
    let bytes = encode(&good).unwrap();
    assert_eq!(decode_exact::<CommitCertificate>(&bytes).unwrap(), good);
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(decode_exact::<CommitCertificate>(&longer).is_err());

    let two = CommitCertificate::sign(&CHAIN, 10, 1, block, &refs(&k[..2])).unwrap();
    assert_eq!(
        two.verify(&CHAIN, 10, &block, &set),
        Err(CertificateError::NotEnoughPower {
            signed: 200,
            needed: 267,
            total: 400
        })
    );
    let mut dup = two.clone();
    dup.signatures.push(dup.signatures[0]);
    assert_eq!(
        dup.verify(&CHAIN, 10, &block, &set),
        Err(CertificateError::DuplicateSigner(dup.signatures[0].0))
    );
    let outsider = KeyPair::generate();
    let mut foreign = two.clone();
    foreign.signatures.extend(
        CommitCertificate::sign(&CHAIN, 10, 1, block, &[&outsider])
            .unwrap()
            .signatures,
    );
    assert_eq!(
        foreign.verify(&CHAIN, 10, &block, &set),
        Err(CertificateError::UnknownSigner(outsider.public()))
    );
    // A signature for another block, another round or another chain, copied over.
    for copied in [
        CommitCertificate::sign(&CHAIN, 10, 1, Hash256([4; 32]), &[&k[2]]).unwrap(),
        CommitCertificate::sign(&CHAIN, 10, 2, block, &[&k[2]]).unwrap(),
        CommitCertificate::sign(&ChainId(Hash256([8; 32])), 10, 1, block, &[&k[2]]).unwrap(),
    ] {
        let mut forged = two.clone();
        forged.signatures.extend(copied.signatures);
        assert_eq!(
            forged.verify(&CHAIN, 10, &block, &set),
            Err(CertificateError::BadSignature(k[2].public()))
        );
    }
    assert_eq!(
        good.verify(&CHAIN, 11, &block, &set),
        Err(CertificateError::WrongHeight {
            expected: 11,
            got: 10
        })
    );
    assert_eq!(
        good.verify(&CHAIN, 10, &Hash256([4; 32]), &set),
        Err(CertificateError::WrongBlock)
    );
    let mut huge = good.clone();
    huge.signatures = vec![good.signatures[0]; MAX_VALIDATORS + 1];
    assert_eq!(
        huge.verify(&CHAIN, 10, &block, &set),
        Err(CertificateError::TooManySignatures)
    );
    // Power, not head count: one validator with most of the stake is a quorum alone.
    let weighted = ValidatorSet::new(vec![
        (k[0].public(), 700),
        (k[1].public(), 100),
        (k[2].public(), 100),
        (k[3].public(), 100),
    ])
    .unwrap();
    let alone = CommitCertificate::sign(&CHAIN, 10, 1, block, &[&k[0]]).unwrap();
    assert_eq!(alone.verify(&CHAIN, 10, &block, &weighted), Ok(()));
}
