//! Validator epochs (docs/consensus.md): the block that closes an epoch fixes, from the bonded
//! validator stakes after it, the set that proposes and finalises every block of the next
//! epoch, weighted by stake. Certificates are checked against the set of their own height,
//! also across the boundary; headers alone cannot be checked past a boundary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use doin_crypto::KeyPair;
use doin_tx_core::bft::{CertificateError, CommitCertificate, ValidatorSetError};
use doin_tx_core::state::{self, StateView};
use doin_tx_core::*;
use doin_types::{Amount, Timestamp};

use crate::common;

const EPOCH: u64 = 3;

/// Validator `V` (stake 5 000) alone in the genesis set; epochs of three blocks, at most two
/// validators.
fn epoch_fixture(stake_validator: bool) -> common::Fixture {
    let mut f = common::fixture(3);
    f.spec.params.epoch_blocks = EPOCH;
    f.spec.params.max_validators = 2;
    if stake_validator {
        f.spec.stakes.push(GenesisStake {
            key: f.validator.public(),
            role: StakeRole::Validator,
            amount: Amount::from_base_units(5_000),
            domains: Vec::new(),
        });
    }
    common::regenesis(&mut f);
    f
}

fn bond(f: &common::Fixture, who: &KeyPair, amount: u64) -> Tx {
    let payload = TxPayload::Stake {
        role: StakeRole::Validator,
        amount: Amount::from_base_units(amount),
        domains: Vec::new(),
    };
    Tx::from_signed(common::signed(f, who, 0, payload, 100, 1)).unwrap()
}

fn copy(k: &KeyPair) -> KeyPair {
    KeyPair::from_secret_bytes(&k.secret_bytes()).unwrap()
}

fn set_of(entries: &[(&KeyPair, u64)]) -> ValidatorSet {
    ValidatorSet::new(entries.iter().map(|(k, p)| (k.public(), *p))).unwrap()
}

/// Builds the next block with `key` as proposer and `commit` as its parent's certificate,
/// then imports it as another node would.
fn certified_block(
    f: &mut common::Fixture,
    parent: &BlockHeader,
    key: &KeyPair,
    commit: ParentCommit<'_>,
) -> Result<Block, BlockError> {
    let time = Timestamp(parent.time.0 + 1_000);
    let built = build_block_certified(
        &f.params,
        &f.state,
        &f.state,
        &NoMainChain,
        parent,
        time,
        key,
        Vec::new(),
        true,
        commit,
    )?;
    let applied = apply_block(
        &f.params,
        &f.state,
        &f.state,
        &NoMainChain,
        parent,
        &built.block,
        ApplyContext {
            now: time,
            verify_tx_signatures: true,
        },
    )?;
    assert_eq!(applied.state_root, built.block.header.state_root);
    f.state.commit(&applied);
    Ok(built.block)
}

#[test]
fn the_block_closing_an_epoch_fixes_the_next_set_from_the_largest_stakes() {
    let mut f = epoch_fixture(true);
    let (v, a, b) = (copy(&f.validator), copy(&f.users[0]), copy(&f.users[1]));
    let genesis_set = set_of(&[(&v, 1)]);
    assert_eq!(
        f.state.validators().unwrap(),
        EpochValidators::steady(genesis_set.clone())
    );

    // Block 1: A and B bond; nothing changes until the epoch closes.
    let g = f.genesis.header.clone();
    let txs = vec![bond(&f, &a, 3_000), bond(&f, &b, 2_000)];
    let (b1, skipped) = common::build_and_import(&mut f, &NoMainChain, &g, txs);
    assert!(skipped.is_empty(), "{skipped:?}");
    let (b2, _) = common::build_and_import(&mut f, &NoMainChain, &b1.header, Vec::new());
    assert_eq!(
        f.state.validators().unwrap(),
        EpochValidators::steady(genesis_set.clone())
    );

    // Block 3 closes the epoch: the two largest stakes (B's is third) sign from block 4 on.
    let (b3, _) = common::build_and_import(&mut f, &NoMainChain, &b2.header, Vec::new());
    let staked_set = set_of(&[(&v, 5_000), (&a, 3_000)]);
    let sets = f.state.validators().unwrap();
    assert_eq!(sets.current, genesis_set);
    assert_eq!(sets.next, staked_set);

    // Block 4 still proves block 3 final with the genesis set (V alone is its quorum).
    let b4 = certified_block(&mut f, &b3.header, &v, ParentCommit::OwnPrecommit).unwrap();
    assert_eq!(
        f.state.validators().unwrap(),
        EpochValidators::steady(staked_set.clone())
    );

    // Block 4 belongs to the new epoch: V's 5 000 of 8 000 is not more than two thirds.
    let err = certified_block(&mut f, &b4.header, &v, ParentCommit::OwnPrecommit).unwrap_err();
    assert!(
        matches!(
            err,
            BlockError::LastCommit(CertificateError::NotEnoughPower {
                signed: 5_000,
                needed: 5_334,
                total: 8_000
            })
        ),
        "{err:?}"
    );
    // B holds a stake but no seat: it may neither sign nor propose.
    let hash4 = b4.hash().unwrap();
    let with_b = CommitCertificate::sign(&f.params.chain_id, 4, 0, hash4, &[&v, &b]).unwrap();
    assert_eq!(
        certified_block(&mut f, &b4.header, &v, ParentCommit::Certificate(&with_b)).unwrap_err(),
        BlockError::LastCommit(CertificateError::UnknownSigner(b.public()))
    );
    let quorum = CommitCertificate::sign(&f.params.chain_id, 4, 0, hash4, &[&v, &a]).unwrap();
    assert_eq!(
        certified_block(&mut f, &b4.header, &b, ParentCommit::Certificate(&quorum)).unwrap_err(),
        BlockError::WrongProposer
    );
    // A, newly seated, proposes block 5 with both signatures.
    let b5 = certified_block(&mut f, &b4.header, &a, ParentCommit::Certificate(&quorum)).unwrap();
    assert_eq!(b5.header.proposer, a.public());
    assert_eq!(b5.header.last_commit, Some(quorum));
}

#[test]
fn headers_are_checked_up_to_the_first_epoch_boundary() {
    let mut f = epoch_fixture(true);
    let genesis_sets = f.state.validators().unwrap();
    let mut parent = f.genesis.header.clone();
    let mut headers = Vec::new();
    for _ in 0..5 {
        let (b, _) = common::build_and_import(&mut f, &NoMainChain, &parent, Vec::new());
        parent = b.header.clone();
        headers.push(b.signed_header());
    }
    let now = Timestamp(parent.time.0 + 1_000);
    // Block 4's proposer and block 3's certificate need the sets block 3's state fixed.
    assert_eq!(
        verify_header_chain(&f.params, &f.genesis.header, &genesis_sets, &headers, now),
        Ok(EPOCH as usize)
    );
}

#[test]
fn without_any_validator_stake_the_set_stays() {
    let mut f = epoch_fixture(false);
    let before = f.state.validators().unwrap();
    let mut parent = f.genesis.header.clone();
    for _ in 0..EPOCH + 1 {
        let (b, _) = common::build_and_import(&mut f, &NoMainChain, &parent, Vec::new());
        parent = b.header.clone();
    }
    assert_eq!(f.state.validators().unwrap(), before);
}

#[test]
fn a_tombstoned_stake_gets_no_seat() {
    let mut f = epoch_fixture(true);
    let a = copy(&f.users[0]);
    f.spec.stakes.push(GenesisStake {
        key: a.public(),
        role: StakeRole::Validator,
        amount: Amount::from_base_units(9_000),
        domains: Vec::new(),
    });
    common::regenesis(&mut f);
    let mut stakes = std::collections::BTreeMap::new();
    let mut gone = f
        .state
        .stake(&a.public(), StakeRole::Validator)
        .unwrap()
        .unwrap();
    gone.tombstoned = true;
    stakes.insert((a.public(), StakeRole::Validator), gone);
    let sets = next_validators(&f.params, &f.state, EPOCH, &stakes, None)
        .unwrap()
        .unwrap();
    assert_eq!(sets.next, set_of(&[(&f.validator, 5_000)]));
    // Off the boundary nothing is recomputed.
    assert_eq!(
        next_validators(&f.params, &f.state, EPOCH + 1, &stakes, None).unwrap(),
        None
    );
}

#[test]
fn an_encoded_set_must_be_canonical() {
    let k: Vec<KeyPair> = (0..2).map(|_| KeyPair::generate()).collect();
    let mut keys: Vec<_> = k.iter().map(|k| k.public()).collect();
    keys.sort();
    let decode = |entries: Vec<(doin_types::PublicKeyBytes, u64)>| {
        let bytes = doin_codec::encode(&entries).unwrap();
        doin_codec::decode_exact::<ValidatorSet>(&bytes)
    };
    assert!(decode(vec![(keys[0], 1), (keys[1], 2)]).is_ok());
    assert!(decode(vec![(keys[1], 1), (keys[0], 2)]).is_err());
    assert!(decode(vec![(keys[0], 1), (keys[0], 2)]).is_err());
    assert!(decode(vec![(keys[0], 0), (keys[1], 2)]).is_err());
    assert!(decode(Vec::new()).is_err());
    assert_eq!(
        ValidatorSet::try_from(vec![(keys[1], 1), (keys[0], 2)]),
        Err(ValidatorSetError::NotAscending)
    );
}

/// The hop across the boundary `header` closes, read from the fixture's state with its proof.
fn hop(f: &common::Fixture, header: &BlockHeader, certificate: CommitCertificate) -> EpochHop {
    let tree = jmt::Sha256Jmt::new(&f.state);
    let (value, proof) = tree
        .get_with_proof(state::validators_key(), header.height)
        .unwrap();
    EpochHop {
        header: header.clone(),
        certificate,
        validators: value.unwrap(),
        proof,
    }
}

#[test]
fn finality_is_proven_from_genesis_through_one_hop_per_epoch() {
    let mut f = epoch_fixture(true);
    let (v, a, b) = (copy(&f.validator), copy(&f.users[0]), copy(&f.users[1]));
    let id = f.params.chain_id;
    let cert = |h: &Block, signers: &[&KeyPair]| {
        CommitCertificate::sign(&id, h.header.height, 0, h.hash().unwrap(), signers).unwrap()
    };
    let g = f.genesis.header.clone();
    let txs = vec![bond(&f, &a, 3_000), bond(&f, &b, 2_000)];
    let (b1, _) = common::build_and_import(&mut f, &NoMainChain, &g, txs);
    let (b2, _) = common::build_and_import(&mut f, &NoMainChain, &b1.header, Vec::new());
    let (b3, _) = common::build_and_import(&mut f, &NoMainChain, &b2.header, Vec::new());
    // Epoch 2 (blocks 4..=6) and 3 (7..) belong to V and A.
    let b4 = certified_block(&mut f, &b3.header, &v, ParentCommit::OwnPrecommit).unwrap();
    let mut blocks = vec![b4];
    for _ in 5..=7 {
        let parent = blocks.last().unwrap().clone();
        let q = cert(&parent, &[&v, &a]);
        let next =
            certified_block(&mut f, &parent.header, &v, ParentCommit::Certificate(&q)).unwrap();
        blocks.push(next);
    }
    let (b5, b6, b7) = (&blocks[1], &blocks[2], &blocks[3]);
    let hop3 = hop(&f, &b3.header, cert(&b3, &[&v]));
    let hop6 = hop(&f, &b6.header, cert(b6, &[&v, &a]));

    // Block 2 needs no hop, block 5 one, block 7 two.
    let p2 = FinalityProof {
        hops: vec![],
        certificate: cert(&b2, &[&v]),
    };
    assert_eq!(
        p2.verify(&f.params, &b2.header, &b2.hash().unwrap()),
        Ok(())
    );
    let p5 = FinalityProof {
        hops: vec![hop3.clone()],
        certificate: cert(b5, &[&v, &a]),
    };
    let h5 = b5.hash().unwrap();
    assert_eq!(p5.verify(&f.params, &b5.header, &h5), Ok(()));
    let p7 = FinalityProof {
        hops: vec![hop3.clone(), hop6.clone()],
        certificate: cert(b7, &[&v, &a]),
    };
    assert_eq!(
        p7.verify(&f.params, &b7.header, &b7.hash().unwrap()),
        Ok(())
    );
    let decoded: FinalityProof =
        doin_codec::decode_exact(&doin_codec::encode(&p7).unwrap()).unwrap();
    assert_eq!(decoded, p7);

    // The genesis validator alone no longer finalises block 5 (5 000 of 8 000).
    let mut alone = p5.clone();
    alone.certificate = cert(b5, &[&v]);
    assert!(matches!(
        alone.verify(&f.params, &b5.header, &h5),
        Err(FinalityError::Certificate {
            height: 5,
            source: CertificateError::NotEnoughPower { .. }
        })
    ));
    // A hop missing, hops out of order, a hop certified by a set not yet trusted.
    let mut missing = p7.clone();
    missing.hops.remove(0);
    assert!(matches!(
        missing.verify(&f.params, &b7.header, &b7.hash().unwrap()),
        Err(FinalityError::HopCount {
            expected: 2,
            got: 1,
            ..
        })
    ));
    let mut swapped = p7.clone();
    swapped.hops.reverse();
    assert!(matches!(
        swapped.verify(&f.params, &b7.header, &b7.hash().unwrap()),
        Err(FinalityError::HopHeight {
            index: 0,
            expected: 3,
            got: 6
        })
    ));
    let mut early = p5.clone();
    early.hops[0].certificate = cert(&b3, &[&a]);
    assert!(matches!(
        early.verify(&f.params, &b5.header, &h5),
        Err(FinalityError::Certificate { height: 3, .. })
    ));
    // A validators entry the state root does not hold: the sets a forger would like.
    let mut forged = p5.clone();
    forged.hops[0].validators =
        doin_codec::encode(&EpochValidators::steady(set_of(&[(&b, 1)]))).unwrap();
    assert!(matches!(
        forged.verify(&f.params, &b5.header, &h5),
        Err(FinalityError::StateProof { height: 3, .. })
    ));
    // A header of another block under the hop's certificate.
    let mut other_header = p5;
    other_header.hops[0].header = b2.header.clone();
    assert!(matches!(
        other_header.verify(&f.params, &b5.header, &h5),
        Err(FinalityError::HopHeight { .. })
    ));
}
