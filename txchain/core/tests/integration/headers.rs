//! Headers-first checks: a run of signed headers is accepted only when it links up from our
//! tip, every header carries the right proposer's signature and proves its parent final
//! (`last_commit`); the first bad header is named.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use doin_crypto::KeyPair;
use doin_tx_core::bft::{CertificateError, CommitCertificate};
use doin_tx_core::state::StateView;
use doin_tx_core::{verify_header_chain, BlockError, EpochValidators, NoMainChain, SignedHeader};
use doin_types::Timestamp;

use crate::common;

/// A chain of `n` blocks on the fixture's genesis; their signed headers.
fn chain(n: usize) -> (common::Fixture, Vec<SignedHeader>) {
    let mut f = common::fixture(2);
    let mut parent = f.genesis.header.clone();
    let mut headers = Vec::new();
    for i in 0..n {
        let tx = common::transfer(&f, &f.users[0], &f.users[1], i as u64, 10, 100, 1);
        let txs = vec![doin_tx_core::Tx::from_signed(tx).unwrap()];
        let (block, skipped) = common::build_and_import(&mut f, &NoMainChain, &parent, txs);
        assert!(skipped.is_empty());
        parent = block.header.clone();
        headers.push(block.signed_header());
    }
    (f, headers)
}

/// The validator sets of the fixture's state (the same at every height: no epoch closes).
fn sets(f: &common::Fixture) -> EpochValidators {
    f.state.validators().unwrap()
}

fn later(f: &common::Fixture) -> Timestamp {
    Timestamp(f.genesis.header.time.0 + 1_000_000)
}

#[test]
fn an_honest_run_of_headers_verifies() {
    let (f, headers) = chain(5);
    let now = later(&f);
    assert_eq!(
        verify_header_chain(&f.params, &f.genesis.header, &sets(&f), &headers, now),
        Ok(5)
    );
    // From the middle too: the parent is whatever we already have.
    assert_eq!(
        verify_header_chain(&f.params, &headers[1].header, &sets(&f), &headers[2..], now),
        Ok(3)
    );
    assert_eq!(
        verify_header_chain(&f.params, &f.genesis.header, &sets(&f), &[], now),
        Ok(0)
    );
}

#[test]
fn the_first_bad_header_is_named() {
    let (f, headers) = chain(5);
    let now = later(&f);
    let g = &f.genesis.header;

    // A gap.
    let mut gap = headers.clone();
    gap.remove(2);
    assert!(matches!(
        verify_header_chain(&f.params, g, &sets(&f), &gap, now),
        Err((2, BlockError::WrongHeight { .. }))
    ));

    // Not on top of our tip.
    assert!(matches!(
        verify_header_chain(&f.params, g, &sets(&f), &headers[1..], now),
        Err((0, BlockError::WrongHeight { .. }))
    ));

    // A tampered field breaks the signature (the hash is what is signed) and the next link.
    let mut tampered = headers.clone();
    tampered[3].header.state_root.0[0] ^= 1;
    assert_eq!(
        verify_header_chain(&f.params, g, &sets(&f), &tampered, now),
        Err((3, BlockError::BadSignature))
    );

    // Re-signed by someone who is not the proposer.
    let mut forged = headers.clone();
    let stranger = KeyPair::generate();
    forged[1].header.proposer = stranger.public();
    forged[1].signature = stranger.sign(&forged[1].header.hash().unwrap());
    assert_eq!(
        verify_header_chain(&f.params, g, &sets(&f), &forged, now),
        Err((1, BlockError::WrongProposer))
    );

    // A signature that does not match.
    let mut bad_sig = headers.clone();
    bad_sig[4].signature = headers[3].signature;
    assert_eq!(
        verify_header_chain(&f.params, g, &sets(&f), &bad_sig, now),
        Err((4, BlockError::BadSignature))
    );

    // Headers from the future (beyond the allowed drift) are not accepted yet.
    let long_ago = Timestamp(f.genesis.header.time.0 - 20_000);
    assert!(matches!(
        verify_header_chain(&f.params, g, &sets(&f), &headers, long_ago),
        Err((0, BlockError::TimeInFuture { .. }))
    ));
}

/// Re-signs a header after a change, as its (legitimate) proposer would.
fn resigned(
    f: &common::Fixture,
    mut h: SignedHeader,
    change: impl FnOnce(&mut SignedHeader),
) -> SignedHeader {
    change(&mut h);
    h.signature = f.validator.sign(&h.header.hash().unwrap());
    h
}

#[test]
fn every_header_after_the_first_proves_its_parent_final() {
    let (f, headers) = chain(3);
    let now = later(&f);
    let g = &f.genesis.header;
    assert!(headers[0].header.last_commit.is_none());
    let cert = headers[1].header.last_commit.clone().unwrap();
    assert_eq!(cert.height, 1);
    assert_eq!(cert.block, headers[0].hash().unwrap());
    assert_eq!(cert.signatures.len(), 1);

    // Missing, or present where there is nothing to certify.
    let missing = resigned(&f, headers[1].clone(), |h| h.header.last_commit = None);
    assert_eq!(
        verify_header_chain(&f.params, &headers[0].header, &sets(&f), &[missing], now),
        Err((0, BlockError::MissingLastCommit))
    );
    let early = resigned(&f, headers[0].clone(), |h| {
        h.header.last_commit = Some(cert.clone())
    });
    assert_eq!(
        verify_header_chain(&f.params, g, &sets(&f), &[early], now),
        Err((0, BlockError::UnexpectedLastCommit))
    );
    // Signed by someone who is not a validator, or for another block.
    let outsider = KeyPair::generate();
    let foreign = resigned(&f, headers[1].clone(), |h| {
        h.header.last_commit = Some(
            CommitCertificate::sign(&f.params.chain_id, 1, 0, cert.block, &[&outsider]).unwrap(),
        )
    });
    assert_eq!(
        verify_header_chain(&f.params, &headers[0].header, &sets(&f), &[foreign], now),
        Err((
            0,
            BlockError::LastCommit(CertificateError::UnknownSigner(outsider.public()))
        ))
    );
    let elsewhere = resigned(&f, headers[2].clone(), |h| {
        h.header.last_commit = Some(cert.clone());
    });
    assert_eq!(
        verify_header_chain(&f.params, &headers[1].header, &sets(&f), &[elsewhere], now),
        Err((
            0,
            BlockError::LastCommit(CertificateError::WrongHeight {
                expected: 2,
                got: 1
            })
        ))
    );
    // A certificate whose signature was copied onto another block.
    let copied = resigned(&f, headers[2].clone(), |h| {
        let mut c = cert.clone();
        c.height = 2;
        c.block = headers[1].hash().unwrap();
        h.header.last_commit = Some(c);
    });
    assert_eq!(
        verify_header_chain(&f.params, &headers[1].header, &sets(&f), &[copied], now),
        Err((
            0,
            BlockError::LastCommit(CertificateError::BadSignature(f.validator.public()))
        ))
    );
}

#[test]
fn a_solo_producer_cannot_certify_for_several_validators() {
    let mut f = common::fixture(2);
    let other = KeyPair::generate();
    f.spec.validators.push(other.public());
    common::regenesis(&mut f);
    let pick = |h: u64| {
        if f.params.expected_proposer(h) == Some(f.validator.public()) {
            &f.validator
        } else {
            &other
        }
    };
    // Height 1 needs no certificate; height 2 needs a quorum of two, which one key is not.
    let build = |parent: &doin_tx_core::BlockHeader| {
        doin_tx_core::build_block(
            &f.params,
            &f.state,
            &f.state,
            &NoMainChain,
            parent,
            Timestamp(parent.time.0 + 1),
            pick(parent.height + 1),
            Vec::new(),
            true,
        )
    };
    let first = build(&f.genesis.header).unwrap().block;
    assert!(first.header.last_commit.is_none());
    let err = build(&first.header).expect_err("no quorum from one of two validators");
    assert!(
        matches!(
            err,
            BlockError::LastCommit(CertificateError::NotEnoughPower {
                signed: 1,
                needed: 2,
                ..
            })
        ),
        "{err:?}"
    );
}
