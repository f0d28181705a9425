//! Headers-first checks for the main chain: an honest run of signed headers verifies from any
//! point of the chain; a gap, a tampered or re-signed header, inflated work or a header from
//! the future is refused, naming the first bad header.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use doin_main_core::*;
use doin_types::Timestamp;

/// Genesis header and four blocks: carriers (commit, reveal), one with real work, a carrier.
fn run() -> (Chain, MainHeader, Vec<SignedMainHeader>) {
    let mut c = chain();
    let genesis = c.tip.clone();
    let claim = c.claim("sphere-a", 1);
    let id = c.commit_and_reveal(0, &claim);
    let v = c.honest_verdict(&id);
    let t = Timestamp(c.tip.time.0 + 1000);
    c.extend(
        t,
        MainBody {
            verdicts: vec![v],
            ..Default::default()
        },
    );
    let next = c.claim("sphere-a", 2);
    let cm = c.commit(&c.optimizers[1], &next);
    let t = c.carrier_time();
    c.extend(
        t,
        MainBody {
            commits: vec![cm],
            ..Default::default()
        },
    );
    let headers = c.blocks.iter().map(|b| b.signed_header()).collect();
    (c, genesis, headers)
}

fn later(c: &Chain) -> Timestamp {
    Timestamp(c.tip.time.0 + 1_000)
}

#[test]
fn an_honest_run_verifies() {
    let (c, genesis, headers) = run();
    assert_eq!(headers.len(), 4);
    assert!(
        headers[2].header.counted_work > Fx::ZERO,
        "one block carries work"
    );
    let now = later(&c);
    assert_eq!(
        verify_main_header_chain(&c.params, &genesis, &headers, now),
        Ok(())
    );
    assert_eq!(
        verify_main_header_chain(&c.params, &headers[0].header, &headers[1..], now),
        Ok(())
    );
}

#[test]
fn the_first_bad_header_is_named() {
    let (c, genesis, headers) = run();
    let now = later(&c);
    let check = |h: &[SignedMainHeader]| verify_main_header_chain(&c.params, &genesis, h, now);

    let mut gap = headers.clone();
    gap.remove(1);
    assert!(matches!(
        check(&gap),
        Err((1, MainBlockError::WrongHeight { .. }))
    ));

    let mut tampered = headers.clone();
    tampered[2].header.state_root.0[0] ^= 1;
    assert_eq!(check(&tampered), Err((2, MainBlockError::BadSignature)));

    // More work claimed, re-signed by the producer: cumulative work no longer adds up.
    let mut inflated = headers.clone();
    inflated[2].header.counted_work = Fx(inflated[2].header.counted_work.0 + 1);
    inflated[2].signature = c.producer.sign(&inflated[2].header.hash().unwrap());
    assert_eq!(
        check(&inflated),
        Err((2, MainBlockError::WrongCumulativeWork))
    );

    // Negative work is refused outright.
    let mut negative = headers.clone();
    negative[3].header.counted_work = Fx(-1);
    negative[3].header.threshold = Fx(-2);
    negative[3].signature = c.producer.sign(&negative[3].header.hash().unwrap());
    assert!(matches!(
        check(&negative),
        Err((3, MainBlockError::Malformed(_)))
    ));

    // Too little work and not a carrier (too soon after its parent).
    let mut weak = headers.clone();
    weak[3].header.threshold = Fx(i64::MAX);
    weak[3].header.counted_work = Fx(1);
    weak[3].header.cumulative_work = weak[2].header.cumulative_work + 1;
    weak[3].signature = c.producer.sign(&weak[3].header.hash().unwrap());
    assert!(matches!(
        check(&weak),
        Err((3, MainBlockError::BelowThreshold { .. }))
    ));

    let long_ago = Timestamp(genesis.time.0);
    assert!(matches!(
        verify_main_header_chain(&c.params, &genesis, &headers, long_ago),
        Err((_, MainBlockError::TimeInFuture { .. }))
    ));
}
