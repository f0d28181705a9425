//! The signed forms of consensus messages are pinned: their signing hashes are golden values,
//! so a change of encoding, tag or field order cannot slip in unnoticed (other implementations
//! check certificates byte for byte).

#![allow(clippy::unwrap_used, clippy::expect_used)]

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
