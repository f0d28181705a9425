//! The main-chain service on a real RocksDB: every submission is checked before it is pooled,
//! blocks from another node import only when valid, and a restart resumes the same tip, state
//! and pool.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use doin_codec::encode;
use doin_crypto::KeyPair;
use doin_main_core::msg::commitment;
use doin_main_core::*;
use doin_main_node::{ImportOutcome, MainChain, MainChainError, PoolKind, SubmitError};
use doin_types::{ChainId, Hash256, Timestamp};
use std::sync::Arc;

struct Env {
    _dir: tempfile::TempDir,
    dir: std::path::PathBuf,
    k: Keys,
    spec: MainGenesisSpec,
    chain: Arc<MainChain>,
    time: u64,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let k = keys(5, 2);
    let spec = spec(&k, vec![domain("sphere", Objective::Sphere, 3)]);
    let chain = open(dir.path(), spec.clone()).unwrap();
    Env {
        dir: dir.path().to_path_buf(),
        _dir: dir,
        k,
        time: spec.genesis_time.0,
        spec,
        chain,
    }
}

impl Env {
    /// Produces a block a carrier interval (or more) after the tip.
    fn produce(&mut self) -> Option<MainBlock> {
        self.time += 1_000;
        self.chain
            .produce(&self.k.producer, Timestamp(self.time))
            .unwrap()
    }

    fn claim(&self, x: i64) -> (Vec<Fx>, Fx, [u8; 32]) {
        let params = vec![Fx::ratio(x, 10); 3];
        let m = params.iter().fold(Fx::ZERO, |a, p| {
            a.checked_add(p.checked_mul(*p).unwrap()).unwrap()
        });
        (params, m, [x as u8; 32])
    }

    fn commit_msg(&self, who: &KeyPair, x: i64, chain_id: ChainId) -> SignedCommit {
        let (params, m, salt) = self.claim(x);
        let d = DomainId::new("sphere").unwrap();
        Signed::sign(
            Commit {
                chain_id,
                domain: d.clone(),
                optimizer: who.public(),
                commitment: commitment(&d, &who.public(), &params, m, &salt).unwrap(),
            },
            who,
        )
        .unwrap()
    }

    fn reveal_msg(&self, who: &KeyPair, x: i64, commit: &SignedCommit) -> SignedReveal {
        let (params, m, salt) = self.claim(x);
        Signed::sign(
            Reveal {
                chain_id: self.chain.params().chain_id,
                commit_id: commit.body.id().unwrap(),
                domain: DomainId::new("sphere").unwrap(),
                optimizer: who.public(),
                params,
                reported_metric: m,
                salt,
            },
            who,
        )
        .unwrap()
    }

    fn vote_msg(&self, who: &KeyPair, id: OptimaeId, metric: Fx) -> SignedVote {
        Signed::sign(
            Vote {
                chain_id: self.chain.params().chain_id,
                optimae_id: id,
                round: 1,
                evaluator: who.public(),
                metric,
            },
            who,
        )
        .unwrap()
    }

    /// `who` commits to a claim (block 1) and reveals it (block 2).
    fn commit_then_reveal(&mut self, who: &KeyPair) -> (SignedCommit, MainBlock, MainBlock) {
        let chain_id = self.chain.params().chain_id;
        let c = self.commit_msg(who, 5, chain_id);
        self.chain
            .submit(PoolKind::Commit, &encode(&c).unwrap())
            .unwrap();
        let b1 = self.produce().unwrap();
        self.chain
            .submit(
                PoolKind::Reveal,
                &encode(&self.reveal_msg(who, 5, &c)).unwrap(),
            )
            .unwrap();
        let b2 = self.produce().unwrap();
        (c, b1, b2)
    }

    fn refused(&self, kind: PoolKind, bytes: &[u8]) -> &'static str {
        let before = self.chain.pool_len();
        match self.chain.submit(kind, bytes) {
            Err(SubmitError::Rejected(r)) => {
                assert_eq!(
                    self.chain.pool_len(),
                    before,
                    "a refused message is not pooled"
                );
                r.kind
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
    }
}

#[test]
fn every_submission_is_checked_before_it_is_pooled() {
    let mut e = env();
    let chain_id = e.chain.params().chain_id;
    let opt = copy(&e.k.optimizers[0]);

    assert_eq!(e.refused(PoolKind::Commit, b"garbage"), "malformed-message");
    let good = e.commit_msg(&opt, 3, chain_id);
    let mut trailing = encode(&good).unwrap();
    trailing.push(0);
    assert_eq!(e.refused(PoolKind::Commit, &trailing), "malformed-message");
    // A commit is not a vote: the route's type decides how bytes are read.
    assert_eq!(
        e.refused(PoolKind::Vote, &encode(&good).unwrap()),
        "malformed-message"
    );
    let other_chain = e.commit_msg(&opt, 3, ChainId(Hash256([7; 32])));
    assert_eq!(
        e.refused(PoolKind::Commit, &encode(&other_chain).unwrap()),
        "wrong-chain"
    );
    let mut forged = good.clone();
    forged.signature.0[10] ^= 1;
    assert_eq!(
        e.refused(PoolKind::Commit, &encode(&forged).unwrap()),
        "bad-signature"
    );
    let mut unknown = good.body.clone();
    unknown.domain = DomainId::new("nope").unwrap();
    let unknown = Signed::sign(unknown, &opt).unwrap();
    assert_eq!(
        e.refused(PoolKind::Commit, &encode(&unknown).unwrap()),
        "unknown-domain"
    );
    let early = e.reveal_msg(&opt, 3, &good);
    assert_eq!(
        e.refused(PoolKind::Reveal, &encode(&early).unwrap()),
        "reveal-without-commit"
    );
    let stray = e.vote_msg(&e.k.evaluators[0], Hash256([1; 32]), Fx::ZERO);
    assert_eq!(
        e.refused(PoolKind::Vote, &encode(&stray).unwrap()),
        "unknown-optimae"
    );

    // The valid commit, twice: pooled, then known.
    let bytes = encode(&good).unwrap();
    assert!(e.chain.submit(PoolKind::Commit, &bytes).unwrap().new);
    assert!(!e.chain.submit(PoolKind::Commit, &bytes).unwrap().new);
    let b = e.produce().expect("a carrier block with the commit");
    assert_eq!(b.body.commits.len(), 1);
    assert!(
        !e.chain.submit(PoolKind::Commit, &bytes).unwrap().new,
        "known on chain"
    );

    // Reveals: a mismatch, then the real one.
    let (mut params, m, salt) = e.claim(3);
    params[0] = Fx::ZERO;
    let mismatch = Signed::sign(
        Reveal {
            chain_id,
            commit_id: good.body.id().unwrap(),
            domain: DomainId::new("sphere").unwrap(),
            optimizer: opt.public(),
            params,
            reported_metric: m,
            salt,
        },
        &opt,
    )
    .unwrap();
    assert_eq!(
        e.refused(PoolKind::Reveal, &encode(&mismatch).unwrap()),
        "reveal-mismatch"
    );
    let reveal = e.reveal_msg(&opt, 3, &good);
    let id = e
        .chain
        .submit(PoolKind::Reveal, &encode(&reveal).unwrap())
        .unwrap()
        .id;
    assert_eq!(id, reveal.body.optimae_id().unwrap());
    e.produce().expect("a carrier block with the reveal");

    // Votes: only the selected evaluators, once each.
    let head = e.chain.head();
    let quorum = e.chain.quorum(&head, &id).unwrap();
    let outsider =
        e.k.evaluators
            .iter()
            .find(|k| !quorum.contains(&k.public()))
            .unwrap();
    let (_, truth, _) = e.claim(3);
    assert_eq!(
        e.refused(
            PoolKind::Vote,
            &encode(&e.vote_msg(outsider, id, truth)).unwrap()
        ),
        "evaluator-not-selected"
    );
    let insider =
        e.k.evaluators
            .iter()
            .find(|k| k.public() == quorum[0])
            .unwrap();
    assert!(
        e.chain
            .submit(
                PoolKind::Vote,
                &encode(&e.vote_msg(insider, id, truth)).unwrap()
            )
            .unwrap()
            .new
    );
    assert_eq!(
        e.refused(
            PoolKind::Vote,
            &encode(&e.vote_msg(insider, id, Fx(truth.0 + 1))).unwrap()
        ),
        "duplicate-vote"
    );
    // The rest of the quorum votes; the next block decides the optimae with work.
    for key in quorum.iter().skip(1) {
        let k = e.k.evaluators.iter().find(|x| x.public() == *key).unwrap();
        e.chain
            .submit(PoolKind::Vote, &encode(&e.vote_msg(k, id, truth)).unwrap())
            .unwrap();
    }
    let b = e.produce().expect("a work block");
    assert!(b.header.counted_work > Fx::ZERO);
    let rec = e.chain.store().optimae(&id).unwrap().unwrap();
    assert_eq!(rec.status.as_str(), "accepted");
    assert_eq!(rec.votes.len(), 3);
    assert_eq!(e.chain.pool_len(), 0, "everything decided left the pool");
}

#[test]
fn restart_resumes_tip_state_and_pool_and_refuses_another_genesis() {
    let mut e = env();
    let opt = copy(&e.k.optimizers[0]);
    let chain_id = e.chain.params().chain_id;
    let c1 = e.commit_msg(&opt, 2, chain_id);
    e.chain
        .submit(PoolKind::Commit, &encode(&c1).unwrap())
        .unwrap();
    e.produce().unwrap();
    // Something pooled but not yet in a block.
    let c2 = e.commit_msg(&opt, 4, chain_id);
    e.chain
        .submit(PoolKind::Commit, &encode(&c2).unwrap())
        .unwrap();
    let head = e.chain.head();
    let pooled = e.chain.pool_len();
    assert_eq!(pooled, 1);

    drop(e.chain);
    let reopened = open(&e.dir, e.spec.clone()).unwrap();
    assert_eq!(reopened.head().hash, head.hash);
    assert_eq!(*reopened.head().state, *head.state);
    assert_eq!(reopened.pool_len(), pooled);
    drop(reopened);

    let mut other = e.spec.clone();
    other.chain_name.push_str("-other");
    assert!(matches!(
        open(&e.dir, other),
        Err(MainChainError::GenesisMismatch { .. })
    ));
}

#[test]
fn another_nodes_blocks_import_and_a_tampered_one_changes_nothing() {
    let mut a = env();
    let opt = copy(&a.k.optimizers[0]);
    let (c, b1, b2) = a.commit_then_reveal(&opt);

    let dir = tempfile::tempdir().unwrap();
    let b = open(dir.path(), a.spec.clone()).unwrap();
    let genesis_head = b.head();
    let mut tampered = b1.clone();
    tampered.header.time = Timestamp(tampered.header.time.0 + 1); // hash changes, signature breaks
    assert!(b.import(&tampered, Timestamp(u64::MAX / 2)).is_err());
    assert_eq!(b.head().hash, genesis_head.hash);
    let mut skipped = b2.clone();
    skipped.header.height = 1;
    assert!(b.import(&skipped, Timestamp(u64::MAX / 2)).is_err());
    assert_eq!(b.head().hash, genesis_head.hash);

    b.import(&b1, Timestamp(u64::MAX / 2)).unwrap();
    b.import(&b2, Timestamp(u64::MAX / 2)).unwrap();
    assert_eq!(b.head().hash, a.chain.head().hash);
    assert_eq!(*b.head().state, *a.chain.head().state);
    // The importer indexed the optimae just like the producer.
    let id = a.reveal_msg(&opt, 5, &c).body.optimae_id().unwrap();
    assert_eq!(
        b.store().optimae(&id).unwrap(),
        a.chain.store().optimae(&id).unwrap()
    );
}

/// Two nodes' carriers at the same height: equal work, so the lower hash wins (fork choice). A
/// replaced block's index entries are undone and its messages return to the pool; a side
/// block with a broken signature or an unknown parent changes nothing; a restart reopens the
/// branch that won.
#[test]
fn a_competing_branch_is_adopted_by_fork_choice_and_the_replaced_one_undone() {
    let mut a = env();
    let chain_id = a.chain.params().chain_id;
    let (opt0, opt1) = (copy(&a.k.optimizers[0]), copy(&a.k.optimizers[1]));
    let ca = a.commit_msg(&opt0, 5, chain_id);
    a.chain
        .submit(PoolKind::Commit, &encode(&ca).unwrap())
        .unwrap();
    let a1 = a.produce().unwrap();
    let ca_id = ca.body.id().unwrap();
    assert!(a.chain.store().commit_info(&ca_id).unwrap().is_some());

    // Another node, same genesis, its own block 1 and 2.
    let dir = tempfile::tempdir().unwrap();
    let b = open(dir.path(), a.spec.clone()).unwrap();
    let other = KeyPair::generate();
    let cb = a.commit_msg(&opt1, 6, chain_id);
    b.submit(PoolKind::Commit, &encode(&cb).unwrap()).unwrap();
    let b1 = b.produce(&other, Timestamp(a.time + 500)).unwrap().unwrap();
    let cb2 = a.commit_msg(&opt1, 7, chain_id);
    b.submit(PoolKind::Commit, &encode(&cb2).unwrap()).unwrap();
    let b2 = b
        .produce(&other, Timestamp(a.time + 1_500))
        .unwrap()
        .unwrap();

    let now = Timestamp(u64::MAX / 2);
    let a_tip = a.chain.head().hash;
    assert!(matches!(
        a.chain.import(&b2, now),
        Err(MainChainError::UnknownParent { height: 2 })
    ));
    let mut forged = b1.clone();
    forged.header.time = Timestamp(forged.header.time.0 + 1);
    assert!(matches!(
        a.chain.import(&forged, now),
        Err(MainChainError::Block(_))
    ));
    assert!(!a.chain.knows(&forged.hash().unwrap()).unwrap());
    assert_eq!(a.chain.head().hash, a_tip);

    let (a1_hash, b1_hash, b2_hash) = (a1.hash().unwrap(), b1.hash().unwrap(), b2.hash().unwrap());
    let first = a.chain.import(&b1, now).unwrap();
    let second = a.chain.import(&b2, now).unwrap();
    assert_eq!(a.chain.import(&b1, now).unwrap(), ImportOutcome::Known);
    let switched = |connected| ImportOutcome::Reorganized {
        fork: 0,
        disconnected: 1,
        connected,
    };
    if b1_hash < a1_hash {
        assert_eq!((first, second), (switched(1), ImportOutcome::Extended));
    } else if b2_hash < a1_hash {
        assert_eq!((first, second), (ImportOutcome::SideBranch, switched(2)));
    } else {
        assert_eq!(
            (first, second),
            (ImportOutcome::SideBranch, ImportOutcome::SideBranch)
        );
    }
    let b_won = b1_hash < a1_hash || b2_hash < a1_hash;
    if b_won {
        assert_eq!(a.chain.head().hash, b2_hash);
        assert_eq!(*a.chain.head().state, *b.head().state);
        assert_eq!(a.chain.store().commit_info(&ca_id).unwrap(), None);
        assert!(a
            .chain
            .store()
            .commit_info(&cb.body.id().unwrap())
            .unwrap()
            .is_some());
        assert_eq!(a.chain.block(1).unwrap().unwrap(), b1);
        // The replaced commit is pending again, so the next block of this node carries it.
        assert_eq!(a.chain.pool_len(), 1);
        assert!(a.chain.knows(&a1_hash).unwrap(), "kept as a side block");
    } else {
        assert_eq!(a.chain.head().hash, a1_hash);
        assert!(a.chain.store().commit_info(&ca_id).unwrap().is_some());
    }
    let tip = a.chain.head().hash;
    drop(a.chain);
    let reopened = open(&a.dir, a.spec.clone()).unwrap();
    assert_eq!(reopened.head().hash, tip);
}

/// A crash in the middle of a switch (old blocks taken off, new ones not yet committed) leaves
/// a chain that reopens at the fork point, consistent, with the taken-off blocks' records undone.
#[test]
fn taking_blocks_off_leaves_a_chain_that_reopens_at_the_fork_point() {
    let mut a = env();
    let opt = copy(&a.k.optimizers[0]);
    let (c, b1, _) = a.commit_then_reveal(&opt);
    let id = a.reveal_msg(&opt, 5, &c).body.optimae_id().unwrap();
    assert!(a.chain.store().optimae(&id).unwrap().is_some());

    let taken = a.chain.store().disconnect_to(1).unwrap();
    assert_eq!(taken.len(), 1);
    drop(a.chain);
    let reopened = open(&a.dir, a.spec.clone()).unwrap();
    assert_eq!(reopened.head().hash, b1.hash().unwrap());
    assert_eq!(
        reopened.store().optimae(&id).unwrap(),
        None,
        "reveal undone"
    );
    assert!(reopened
        .store()
        .commit_info(&c.body.id().unwrap())
        .unwrap()
        .is_some_and(|ci| ci.revealed_as.is_none()));
    assert!(reopened.block(2).unwrap().is_none());
}
