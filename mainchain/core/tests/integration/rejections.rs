//! Every rule a main block can break, each broken on its own, checked with the importer's
//! rules (`apply_block`): a rule enforced only when producing would let a dishonest producer
//! through.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use doin_crypto::KeyPair;
use doin_main_core::*;
use doin_types::{Hash256, Timestamp};

/// A signed block at the next height with `body` and a header that passes the header checks;
/// the fields computed from execution are placeholders, so only rules checked before them
/// can be tested with it.
fn forge(c: &Chain, time: Timestamp, body: MainBody) -> MainBlock {
    let header = MainHeader {
        chain_id: c.id(),
        height: c.tip.height + 1,
        parent: c.hash0(),
        time,
        producer: c.producer.public(),
        threshold: c.state.controller.threshold,
        counted_work: Fx::ZERO,
        cumulative_work: c.tip.cumulative_work,
        state_root: Hash256([0; 32]),
        body_root: Hash256([0; 32]),
        tx_checkpoint: c.tip.tx_checkpoint,
    };
    c.resign(header, body)
}

fn item_err(c: &Chain, body: MainBody) -> MainBlockError {
    c.check(&forge(c, c.carrier_time(), body)).unwrap_err()
}

/// A chain whose tip has one revealed optimae awaiting its verdict.
fn with_pending() -> (Chain, OptimaeId) {
    let mut c = chain();
    let claim = c.claim("sphere-a", 1);
    let id = c.commit_and_reveal(0, &claim);
    (c, id)
}

fn verdict_err(c: &Chain, v: Verdict) -> ItemError {
    match item_err(
        c,
        MainBody {
            verdicts: vec![v],
            ..Default::default()
        },
    ) {
        MainBlockError::InvalidVerdict { index: 0, error } => error,
        other => panic!("expected a verdict error, got {other:?}"),
    }
}

fn reveal_err(c: &Chain, body: MainBody) -> ItemError {
    match item_err(c, body) {
        MainBlockError::InvalidReveal { error, .. } => error,
        other => panic!("expected a reveal error, got {other:?}"),
    }
}

#[test]
fn reveal_without_commit() {
    let c = chain();
    let claim = c.claim("sphere-a", 1);
    let cm = c.commit(&c.optimizers[0], &claim);
    let rv = c.reveal(&c.optimizers[0], &claim, &cm);
    assert_eq!(
        reveal_err(
            &c,
            MainBody {
                reveals: vec![rv],
                ..Default::default()
            }
        ),
        ItemError::RevealWithoutCommit
    );
}

#[test]
fn reveal_in_the_commit_block_is_too_early() {
    let c = chain();
    let claim = c.claim("sphere-a", 1);
    let cm = c.commit(&c.optimizers[0], &claim);
    let rv = c.reveal(&c.optimizers[0], &claim, &cm);
    assert!(matches!(
        reveal_err(
            &c,
            MainBody {
                commits: vec![cm],
                reveals: vec![rv],
                ..Default::default()
            }
        ),
        ItemError::RevealTooEarly { .. }
    ));
}

#[test]
fn reveal_after_the_window_is_too_late() {
    let mut c = chain();
    let claim = c.claim("sphere-a", 1);
    let cm = c.commit(&c.optimizers[0], &claim);
    let rv = c.reveal(&c.optimizers[0], &claim, &cm);
    let t = c.carrier_time();
    c.extend(
        t,
        MainBody {
            commits: vec![cm],
            ..Default::default()
        },
    );
    let window = c.params.consensus.reveal_window;
    for i in 0..window {
        let filler = c.commit(&c.optimizers[1], &c.claim("sphere-b", i as i64));
        let t = c.carrier_time();
        c.extend(
            t,
            MainBody {
                commits: vec![filler],
                ..Default::default()
            },
        );
    }
    assert_eq!(
        reveal_err(
            &c,
            MainBody {
                reveals: vec![rv],
                ..Default::default()
            }
        ),
        ItemError::RevealTooLate {
            late: window + 1,
            window
        }
    );
}

#[test]
fn reveal_that_does_not_open_its_commitment() {
    let mut c = chain();
    let claim = c.claim("sphere-a", 1);
    let cm = c.commit(&c.optimizers[0], &claim);
    let t = c.carrier_time();
    c.extend(
        t,
        MainBody {
            commits: vec![cm.clone()],
            ..Default::default()
        },
    );
    // Better parameters than committed to (front-running one's own commitment).
    let mut other = claim.clone();
    other.params = vec![Fx::ZERO; 4];
    let rv = c.reveal(&c.optimizers[0], &other, &cm);
    assert_eq!(
        reveal_err(
            &c,
            MainBody {
                reveals: vec![rv],
                ..Default::default()
            }
        ),
        ItemError::RevealMismatch
    );
    // Someone else opening the commitment.
    let thief = c.reveal(&c.optimizers[1], &claim, &cm);
    assert_eq!(
        reveal_err(
            &c,
            MainBody {
                reveals: vec![thief],
                ..Default::default()
            }
        ),
        ItemError::RevealMismatch
    );
    // A changed reported metric.
    let mut lie = claim.clone();
    lie.reported = Fx::ZERO;
    let rv = c.reveal(&c.optimizers[0], &lie, &cm);
    assert_eq!(
        reveal_err(
            &c,
            MainBody {
                reveals: vec![rv],
                ..Default::default()
            }
        ),
        ItemError::RevealMismatch
    );
}

#[test]
fn reveal_in_a_domain_with_too_few_evaluators() {
    let mut c = chain_with(2, |_| {});
    let claim = c.claim("sphere-a", 1);
    let cm = c.commit(&c.optimizers[0], &claim);
    let rv = c.reveal(&c.optimizers[0], &claim, &cm);
    let t = c.carrier_time();
    c.extend(
        t,
        MainBody {
            commits: vec![cm],
            ..Default::default()
        },
    );
    assert_eq!(
        reveal_err(
            &c,
            MainBody {
                reveals: vec![rv],
                ..Default::default()
            }
        ),
        ItemError::TooFewEvaluators { eligible: 2 }
    );
}

#[test]
fn vote_from_an_evaluator_outside_the_quorum() {
    let (c, id) = with_pending();
    let mut v = c.honest_verdict(&id);
    let quorum = c.quorum(&id);
    let outsider = c
        .evaluators
        .iter()
        .find(|k| !quorum.contains(&k.public()))
        .unwrap();
    v.votes[1] = c.vote(outsider, &id, 1, v.votes[1].body.metric);
    assert_eq!(verdict_err(&c, v), ItemError::VoterNotSelected { index: 1 });
    // Not an evaluator at all.
    let mut v = c.honest_verdict(&id);
    v.votes[2] = c.vote(&KeyPair::generate(), &id, 1, v.votes[2].body.metric);
    assert_eq!(verdict_err(&c, v), ItemError::VoterNotSelected { index: 2 });
}

#[test]
fn forged_vote_signature() {
    let (c, id) = with_pending();
    let mut v = c.honest_verdict(&id);
    v.votes[0].body.metric = Fx(v.votes[0].body.metric.0 + 1);
    assert_eq!(
        verdict_err(&c, v),
        ItemError::BadVote {
            index: 0,
            error: MsgError::BadSignature
        }
    );
    let mut v = c.honest_verdict(&id);
    v.votes[2].signature.0[5] ^= 1;
    assert!(matches!(
        verdict_err(&c, v),
        ItemError::BadVote { index: 2, .. }
    ));
}

#[test]
fn duplicate_vote() {
    let (c, id) = with_pending();
    let mut v = c.honest_verdict(&id);
    v.votes[1] = v.votes[0].clone();
    assert_eq!(verdict_err(&c, v), ItemError::DuplicateVote { index: 1 });
}

#[test]
fn too_few_votes_wrong_round_and_mismatched_votes() {
    let (c, id) = with_pending();
    let mut v = c.honest_verdict(&id);
    v.votes.truncate(1);
    assert_eq!(
        verdict_err(&c, v),
        ItemError::VoteCount {
            got: 1,
            min: 2,
            quorum: 3
        }
    );
    let mut v = c.honest_verdict(&id);
    v.round = 2;
    assert_eq!(
        verdict_err(&c, v),
        ItemError::WrongRound {
            expected: 1,
            got: 2
        }
    );
    let mut v = c.honest_verdict(&id);
    let k = c.evaluator(&v.votes[0].body.evaluator);
    v.votes[0] = c.vote(k, &Hash256([7; 32]), 1, Fx::ZERO);
    assert_eq!(verdict_err(&c, v), ItemError::VoteMismatch { index: 0 });
    let v = Verdict {
        optimae_id: Hash256([7; 32]),
        round: 1,
        votes: vec![],
    };
    assert_eq!(verdict_err(&c, v), ItemError::UnknownOptimae);
    // The same optimae decided twice in one block.
    let v = c.honest_verdict(&id);
    match item_err(
        &c,
        MainBody {
            verdicts: vec![v.clone(), v],
            ..Default::default()
        },
    ) {
        MainBlockError::InvalidVerdict { index: 1, error } => {
            assert_eq!(error, ItemError::DuplicateVerdict)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn verdict_in_the_reveal_block_is_too_early() {
    let mut c = chain();
    let claim = c.claim("sphere-a", 1);
    let cm = c.commit(&c.optimizers[0], &claim);
    let rv = c.reveal(&c.optimizers[0], &claim, &cm);
    let t = c.carrier_time();
    c.extend(
        t,
        MainBody {
            commits: vec![cm],
            ..Default::default()
        },
    );
    let id = rv.body.optimae_id().unwrap();
    let v = Verdict {
        optimae_id: id,
        round: 1,
        votes: vec![],
    };
    match item_err(
        &c,
        MainBody {
            reveals: vec![rv],
            verdicts: vec![v],
            ..Default::default()
        },
    ) {
        MainBlockError::InvalidVerdict { error, .. } => {
            assert_eq!(error, ItemError::VerdictTooEarly)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn commit_and_registration_rules() {
    let c = chain();
    let claim = c.claim("sphere-a", 1);
    let cm = c.commit(&c.optimizers[0], &claim);
    match item_err(
        &c,
        MainBody {
            commits: vec![cm.clone(), cm.clone()],
            ..Default::default()
        },
    ) {
        MainBlockError::InvalidCommit { index: 1, error } => {
            assert_eq!(error, ItemError::DuplicateCommit)
        }
        other => panic!("{other:?}"),
    }
    let mut unknown = cm.body.clone();
    unknown.domain = DomainId::new("nope").unwrap();
    let unknown = Signed::sign(unknown, &c.optimizers[0]).unwrap();
    assert!(matches!(
        item_err(
            &c,
            MainBody {
                commits: vec![unknown],
                ..Default::default()
            }
        ),
        MainBlockError::InvalidCommit {
            error: ItemError::UnknownDomain(_),
            ..
        }
    ));
    let mut other_chain = cm.body.clone();
    other_chain.chain_id = doin_types::ChainId(Hash256([3; 32]));
    let other_chain = Signed::sign(other_chain, &c.optimizers[0]).unwrap();
    assert!(matches!(
        item_err(
            &c,
            MainBody {
                commits: vec![other_chain],
                ..Default::default()
            }
        ),
        MainBlockError::InvalidCommit {
            error: ItemError::Message(MsgError::WrongChain),
            ..
        }
    ));

    let sponsor = KeyPair::generate();
    let chain_id = c.id();
    let reg = |spec: DomainSpec| {
        Signed::sign(
            DomainRegister {
                chain_id,
                sponsor: sponsor.public(),
                spec,
            },
            &sponsor,
        )
        .unwrap()
    };
    assert!(matches!(
        item_err(
            &c,
            MainBody {
                registrations: vec![reg(sphere("sphere-a"))],
                ..Default::default()
            }
        ),
        MainBlockError::InvalidRegistration {
            error: ItemError::DomainExists(_),
            ..
        }
    ));
    let mut bad = sphere("flat");
    bad.dim = 0;
    assert!(matches!(
        item_err(
            &c,
            MainBody {
                registrations: vec![reg(bad)],
                ..Default::default()
            }
        ),
        MainBlockError::InvalidRegistration {
            error: ItemError::Domain(_),
            ..
        }
    ));
    // A valid registration carries a block on its own and the domain is usable after it.
    let mut c = c;
    let t = c.carrier_time();
    c.extend(
        t,
        MainBody {
            registrations: vec![reg(sphere("sphere-c"))],
            ..Default::default()
        },
    );
    assert!(c
        .state
        .domains
        .contains_key(&DomainId::new("sphere-c").unwrap()));
}

/// A valid work block on top of `c` (an accepted optimae with work 99.96).
fn work_block(c: &Chain, id: &OptimaeId) -> MainBlock {
    let v = c.honest_verdict(id);
    c.build(
        Timestamp(c.tip.time.0 + 1000),
        MainBody {
            verdicts: vec![v],
            ..Default::default()
        },
    )
    .unwrap()
    .block
}

#[test]
fn work_below_the_threshold() {
    let (mut c, id) = with_pending();
    // The threshold the chain would have to meet is now above what the verdict earns.
    c.state.controller.threshold = Fx::from_int(1000);
    let v = c.honest_verdict(&id);
    let body = MainBody {
        verdicts: vec![v],
        ..Default::default()
    };
    let early = Timestamp(c.tip.time.0 + 1000);
    assert!(matches!(
        c.build(early, body.clone()),
        Err(BuildError::NotEnoughWork { .. })
    ));
    let mut block = forge(&c, early, body.clone());
    block.header.counted_work = Fx::parse("99.960000000").unwrap();
    let block = c.resign(block.header, block.body);
    assert_eq!(
        c.check(&block).unwrap_err(),
        MainBlockError::BelowThreshold {
            work: Fx::parse("99.960000000").unwrap(),
            threshold: Fx::from_int(1000)
        }
    );
    // Even after the carrier interval, work below the threshold is not a carrier block.
    let mut block = forge(&c, c.carrier_time(), body);
    block.header.counted_work = Fx::parse("99.960000000").unwrap();
    let block = c.resign(block.header, block.body);
    assert!(matches!(
        c.check(&block),
        Err(MainBlockError::BelowThreshold { .. })
    ));
    // A carrier block before the carrier interval.
    let claim = c.claim("sphere-b", 1);
    let cm = c.commit(&c.optimizers[1], &claim);
    let block = forge(
        &c,
        early,
        MainBody {
            commits: vec![cm],
            ..Default::default()
        },
    );
    assert!(matches!(
        c.check(&block),
        Err(MainBlockError::BelowThreshold { .. })
    ));
}

#[test]
fn wrong_coinbase() {
    let (c, id) = with_pending();
    let b = work_block(&c, &id);
    assert!(c.check(&b).is_ok());
    let mut body = b.body.clone();
    // Move one base unit from the producer to the optimizer: same total, wrong split.
    let n = body.coinbase.len();
    body.coinbase[0].amount =
        doin_types::Amount::from_base_units(body.coinbase[0].amount.base_units() + 1);
    body.coinbase[n - 1].amount =
        doin_types::Amount::from_base_units(body.coinbase[n - 1].amount.base_units() - 1);
    assert_eq!(
        c.check(&c.resign(b.header.clone(), body)).unwrap_err(),
        MainBlockError::WrongCoinbase
    );
    // A coinbase paying someone else.
    let mut body = b.body.clone();
    body.coinbase[0].key = KeyPair::generate().public();
    assert_eq!(
        c.check(&c.resign(b.header.clone(), body)).unwrap_err(),
        MainBlockError::WrongCoinbase
    );
    // Minting in a carrier block.
    let claim = c.claim("sphere-b", 1);
    let cm = c.commit(&c.optimizers[1], &claim);
    let mut carrier = c
        .build(
            c.carrier_time(),
            MainBody {
                commits: vec![cm],
                ..Default::default()
            },
        )
        .unwrap()
        .block;
    carrier.body.coinbase = b.body.coinbase.clone();
    assert_eq!(
        c.check(&c.resign(carrier.header, carrier.body))
            .unwrap_err(),
        MainBlockError::WrongCoinbase
    );
}

#[test]
fn wrong_threshold_work_cumulative_and_root() {
    let (c, id) = with_pending();
    let b = work_block(&c, &id);
    let mut h = b.header.clone();
    h.threshold = Fx(h.threshold.0 / 2);
    assert!(matches!(
        c.check(&c.resign(h, b.body.clone())),
        Err(MainBlockError::WrongThreshold { .. })
    ));
    let mut h = b.header.clone();
    h.counted_work = Fx(h.counted_work.0 * 2);
    assert!(matches!(
        c.check(&c.resign(h, b.body.clone())),
        Err(MainBlockError::WrongCountedWork { .. })
    ));
    let mut h = b.header.clone();
    h.cumulative_work += 1;
    assert_eq!(
        c.check(&c.resign(h, b.body.clone())).unwrap_err(),
        MainBlockError::WrongCumulativeWork
    );
    let mut h = b.header.clone();
    h.state_root = Hash256([1; 32]);
    assert_eq!(
        c.check(&c.resign(h, b.body.clone())).unwrap_err(),
        MainBlockError::WrongStateRoot
    );
}

#[test]
fn header_rules() {
    let (c, id) = with_pending();
    let b = work_block(&c, &id);
    let mut h = b.header.clone();
    h.chain_id = doin_types::ChainId(Hash256([9; 32]));
    assert_eq!(
        c.check(&c.resign(h, b.body.clone())).unwrap_err(),
        MainBlockError::WrongChain
    );
    let mut h = b.header.clone();
    h.height += 1;
    assert!(matches!(
        c.check(&c.resign(h, b.body.clone())),
        Err(MainBlockError::WrongHeight { .. })
    ));
    let mut h = b.header.clone();
    h.parent = Hash256([4; 32]);
    assert_eq!(
        c.check(&c.resign(h, b.body.clone())).unwrap_err(),
        MainBlockError::WrongParent
    );
    let mut h = b.header.clone();
    h.time = c.tip.time;
    assert!(matches!(
        c.check(&c.resign(h, b.body.clone())),
        Err(MainBlockError::TimeNotIncreasing { .. })
    ));
    let far = apply_block(
        &c.params,
        &c.state,
        &c.tip,
        &b,
        MainContext {
            now: Timestamp(c.tip.time.0 - 100_000),
            tx_chain: &NoTxChain,
        },
    );
    assert!(matches!(far, Err(MainBlockError::TimeInFuture { .. })));
    let mut bad_sig = b.clone();
    bad_sig.signature.0[0] ^= 1;
    assert_eq!(c.check(&bad_sig).unwrap_err(), MainBlockError::BadSignature);
    let mut stranger = b.clone();
    stranger.header.producer = KeyPair::generate().public();
    assert_eq!(
        c.check(&stranger).unwrap_err(),
        MainBlockError::BadSignature
    );
    let mut body_swapped = b.clone();
    body_swapped.body.coinbase.clear();
    assert_eq!(
        c.check(&body_swapped).unwrap_err(),
        MainBlockError::WrongBodyRoot
    );
    let cm = c.commit(&c.optimizers[1], &c.claim("sphere-b", 1));
    let many = vec![cm; c.params.consensus.max_commits as usize + 1];
    assert!(matches!(
        item_err(
            &c,
            MainBody {
                commits: many,
                ..Default::default()
            }
        ),
        MainBlockError::TooMany {
            what: "commits",
            ..
        }
    ));
}
