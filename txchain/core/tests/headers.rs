//! Headers-first checks: a run of signed headers is accepted only when it links up from our
//! tip and every header carries the right proposer's signature; the first bad header is named.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use doin_crypto::KeyPair;
use doin_tx_core::{verify_header_chain, BlockError, NoMainChain, SignedHeader};
use doin_types::Timestamp;

mod common;

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

fn later(f: &common::Fixture) -> Timestamp {
    Timestamp(f.genesis.header.time.0 + 1_000_000)
}

#[test]
fn an_honest_run_of_headers_verifies() {
    let (f, headers) = chain(5);
    let now = later(&f);
    assert_eq!(
        verify_header_chain(&f.params, &f.genesis.header, &headers, now),
        Ok(())
    );
    // From the middle too: the parent is whatever we already have.
    assert_eq!(
        verify_header_chain(&f.params, &headers[1].header, &headers[2..], now),
        Ok(())
    );
    assert_eq!(
        verify_header_chain(&f.params, &f.genesis.header, &[], now),
        Ok(())
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
        verify_header_chain(&f.params, g, &gap, now),
        Err((2, BlockError::WrongHeight { .. }))
    ));

    // Not on top of our tip.
    assert!(matches!(
        verify_header_chain(&f.params, g, &headers[1..], now),
        Err((0, BlockError::WrongHeight { .. }))
    ));

    // A tampered field breaks the signature (the hash is what is signed) and the next link.
    let mut tampered = headers.clone();
    tampered[3].header.state_root.0[0] ^= 1;
    assert_eq!(
        verify_header_chain(&f.params, g, &tampered, now),
        Err((3, BlockError::BadSignature))
    );

    // Re-signed by someone who is not the proposer.
    let mut forged = headers.clone();
    let stranger = KeyPair::generate();
    forged[1].header.proposer = stranger.public();
    forged[1].signature = stranger.sign(&forged[1].header.hash().unwrap());
    assert_eq!(
        verify_header_chain(&f.params, g, &forged, now),
        Err((1, BlockError::WrongProposer))
    );

    // A signature that does not match.
    let mut bad_sig = headers.clone();
    bad_sig[4].signature = headers[3].signature;
    assert_eq!(
        verify_header_chain(&f.params, g, &bad_sig, now),
        Err((4, BlockError::BadSignature))
    );

    // Headers from the future (beyond the allowed drift) are not accepted yet.
    let long_ago = Timestamp(f.genesis.header.time.0 - 20_000);
    assert!(matches!(
        verify_header_chain(&f.params, g, &headers, long_ago),
        Err((0, BlockError::TimeInFuture { .. }))
    ));
}
