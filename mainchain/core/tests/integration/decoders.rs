//! Decoder robustness and encoding stability for every main-chain message type and the block:
//! arbitrary bytes never panic a decoder, anything accepted re-encodes to exactly the same bytes
//! (ids recomputed from bytes are unambiguous), trailing and truncated input is refused, and the
//! golden vectors below pin the exact bytes and ids a client in another language must produce.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use doin_codec::{decode_exact, decode_exact_bounded, encode};
use doin_crypto::KeyPair;
use doin_main_core::msg::commitment;
use doin_main_core::*;
use doin_types::{ChainId, Hash256};
use proptest::prelude::*;
use serde::{de::DeserializeOwned, Serialize};

fn key(b: u8) -> KeyPair {
    KeyPair::from_secret_bytes(&[b; 32]).unwrap()
}

fn chain() -> ChainId {
    ChainId(Hash256([0x11; 32]))
}

fn params() -> Vec<Fx> {
    vec![Fx::parse("0.5").unwrap(), Fx::parse("-1.25").unwrap()]
}

fn signed<T: Message>(body: T, k: &KeyPair) -> Signed<T> {
    // Fixed auxiliary randomness: deterministic signatures for the vectors.
    let signature = k.sign_with_aux(&body.id().unwrap(), &[0; 32]);
    Signed { body, signature }
}

fn commit_msg() -> SignedCommit {
    let d = DomainId::new("sphere").unwrap();
    let o = key(2);
    signed(
        Commit {
            chain_id: chain(),
            domain: d.clone(),
            optimizer: o.public(),
            commitment: commitment(
                &d,
                &o.public(),
                &params(),
                Fx::parse("1.8125").unwrap(),
                &[3; 32],
            )
            .unwrap(),
        },
        &o,
    )
}

fn reveal_msg() -> SignedReveal {
    let o = key(2);
    signed(
        Reveal {
            chain_id: chain(),
            commit_id: commit_msg().body.id().unwrap(),
            domain: DomainId::new("sphere").unwrap(),
            optimizer: o.public(),
            params: params(),
            reported_metric: Fx::parse("1.8125").unwrap(),
            salt: [3; 32],
        },
        &o,
    )
}

fn vote_msg() -> SignedVote {
    let e = key(4);
    signed(
        Vote {
            chain_id: chain(),
            optimae_id: reveal_msg().body.optimae_id().unwrap(),
            round: 1,
            evaluator: e.public(),
            metric: Fx::parse("1.8125").unwrap(),
        },
        &e,
    )
}

fn register_msg() -> SignedRegister {
    let s = key(5);
    signed(
        DomainRegister {
            chain_id: chain(),
            sponsor: s.public(),
            spec: DomainSpec {
                id: DomainId::new("ls-8").unwrap(),
                metric: "mse".into(),
                direction: Direction::Minimize,
                objective: Objective::LeastSquares { samples: 64 },
                dim: 8,
                scale: Fx::ratio(1, 10),
                weight: Fx::ONE,
                tolerance: Fx(1),
                baseline: Fx::from_int(10),
                eval_budget: 512,
                verification_fee: doin_types::Amount::from_base_units(1000),
            },
        },
        &s,
    )
}

fn roundtrip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(v: &T) {
    let bytes = encode(v).unwrap();
    assert_eq!(&decode_exact::<T>(&bytes).unwrap(), v);
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(
        decode_exact::<T>(&trailing).is_err(),
        "trailing byte accepted"
    );
    for cut in 0..bytes.len() {
        assert!(
            decode_exact::<T>(&bytes[..cut]).is_err(),
            "truncation at {cut} accepted"
        );
    }
    assert!(
        decode_exact_bounded::<T>(&bytes, bytes.len() - 1).is_err(),
        "oversize accepted"
    );
}

#[test]
fn every_message_round_trips_and_refuses_trailing_truncated_and_oversize_input() {
    roundtrip(&commit_msg());
    roundtrip(&reveal_msg());
    roundtrip(&vote_msg());
    roundtrip(&register_msg());
}

#[test]
fn golden_vectors() {
    // Any change here changes what every signer must produce: it is a protocol change.
    let c = commit_msg();
    assert_eq!(
        hex::encode(c.body.commitment.0),
        "982ba8c2947c61a0fcf2eb1e3d2ed0513e755bd7c4c79d9bb1da4a3a5b1d97af"
    );
    assert_eq!(
        hex::encode(c.body.id().unwrap().0),
        "a227c9dfcb386652217fec5ecd17b20939bb198d8aac562b095b73d58b77e510"
    );
    let r = reveal_msg();
    assert_eq!(
        hex::encode(r.body.optimae_id().unwrap().0),
        "f3a40073cf4414be1cd03b037f42dc8c8636a83f64c66c7729192f935801c0c7"
    );
    let v = vote_msg();
    assert_eq!(hex::encode(encode(&v).unwrap()), "1111111111111111111111111111111111111111111111111111111111111111f3a40073cf4414be1cd03b037f42dc8c8636a83f64c66c7729192f935801c0c701462779ad4aad39514614751a71085f2f10e1c7a593e4e030efb5b8721ce55b0b208e086c00000000093bf0a4a57a7f35b6d17ad6e5f63aee17a336db2ba71ce950bc9e7c7dc2546b4f22607ec5009ced41b141e7deb23c0914dc0816e48c5882df4b023d3dca8dd6");
    assert_eq!(
        hex::encode(v.body.id().unwrap().0),
        "1f76070e55c3a7b890a634b73b0157e6893629e349278c0692e7e82fb18403c7"
    );
    // The vectors verify like any other message.
    assert_eq!(v.verify(&chain()).unwrap(), v.body.id().unwrap());
    assert!(c.verify(&chain()).is_ok() && r.verify(&chain()).is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic_and_accepted_bytes_are_canonical(
        bytes in proptest::collection::vec(any::<u8>(), 0..400)
    ) {
        fn check<T: Serialize + DeserializeOwned>(bytes: &[u8]) -> Result<(), TestCaseError> {
            if let Ok(v) = decode_exact::<T>(bytes) {
                prop_assert_eq!(encode(&v).unwrap(), bytes.to_vec());
            }
            Ok(())
        }
        check::<SignedCommit>(&bytes)?;
        check::<SignedReveal>(&bytes)?;
        check::<SignedVote>(&bytes)?;
        check::<SignedRegister>(&bytes)?;
        check::<MainHeader>(&bytes)?;
        if let Ok(b) = MainBlock::decode(&bytes) {
            prop_assert_eq!(b.encode().unwrap(), bytes.clone());
        }
    }

    #[test]
    fn corrupted_votes_are_refused_or_fail_verification(pos in 0usize..170, flip in 1u8..=255) {
        let v = vote_msg();
        let mut bytes = encode(&v).unwrap();
        prop_assume!(pos < bytes.len());
        bytes[pos] ^= flip;
        if let Ok(other) = decode_exact::<SignedVote>(&bytes) {
            prop_assert!(other.verify(&chain()).is_err());
        }
    }
}
