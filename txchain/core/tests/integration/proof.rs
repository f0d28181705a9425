//! Inclusion proofs: every honest proof verifies, and every kind of tampering is caught with
//! its own error.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use doin_crypto::KeyPair;
use doin_tx_core::bft::{CertificateError, CommitCertificate};
use doin_tx_core::{
    prove_tx, ChainParams, ConsensusParams, FinalityError, FinalityProof, ProofError,
    TxInclusionProof,
};
use doin_types::{ChainId, Hash256, Network};

use crate::common;

use common::{loose_block as fixture, LooseBlock as Fixture};

/// The chain the loose block belongs to: its validator alone in genesis, and its height (42)
/// inside the first epoch, so no epoch hop is needed (hops are tested in `epochs.rs`).
fn params(f: &Fixture) -> ChainParams {
    ChainParams {
        chain_id: f.chain_id,
        network: Network::Devnet,
        consensus: ConsensusParams::public_defaults(),
        validators: vec![f.validator.public()],
    }
}

fn certificate(f: &Fixture, signer: &KeyPair) -> CommitCertificate {
    CommitCertificate::sign(&f.chain_id, 42, 0, f.block.hash().unwrap(), &[signer]).unwrap()
}

fn proof(f: &Fixture, index: usize) -> TxInclusionProof {
    let ids: Vec<_> = f.txs.iter().map(|t| t.id()).collect();
    prove_tx(
        f.block.header.clone(),
        FinalityProof {
            hops: Vec::new(),
            certificate: certificate(f, &f.validator),
        },
        &ids,
        index,
        f.txs[index].bytes().to_vec(),
    )
    .unwrap()
}

#[test]
fn every_transaction_of_blocks_of_many_sizes_proves_its_inclusion() {
    for n in [1, 2, 3, 7, 16, 33] {
        let f = fixture(n);
        for i in 0..n {
            let p = proof(&f, i);
            // Through the wire format, as a wallet receives it.
            let p = TxInclusionProof::decode(&p.encode().unwrap()).unwrap();
            let proven = p.verify(&params(&f)).unwrap();
            assert_eq!(proven.tx_id, f.txs[i].id());
            assert_eq!(proven.height, 42);
            assert_eq!(proven.block_hash, f.block.hash().unwrap());
        }
    }
}

#[test]
fn tampered_proofs_are_refused_with_the_reason() {
    let f = fixture(5);
    let trusted = params(&f);

    // Another transaction of the same block under this one's path.
    let mut p = proof(&f, 1);
    p.tx = f.txs[2].bytes().to_vec();
    assert_eq!(p.verify(&trusted), Err(ProofError::NotInBlock));

    // A transaction that is in no block.
    let mut p = proof(&f, 1);
    p.tx = fixture(1).txs[0].bytes().to_vec();
    assert!(matches!(
        p.verify(&trusted),
        Err(ProofError::WrongChain { .. }) | Err(ProofError::NotInBlock)
    ));

    // The right transaction at a claimed position it does not have.
    let mut p = proof(&f, 1);
    p.merkle.index = 3;
    assert_eq!(p.verify(&trusted), Err(ProofError::NotInBlock));

    // A path step flipped.
    let mut p = proof(&f, 1);
    p.merkle.path[0].0[0] ^= 1;
    assert_eq!(p.verify(&trusted), Err(ProofError::NotInBlock));

    // A tree size that differs from the header's count.
    let mut p = proof(&f, 1);
    p.merkle.size = 6;
    assert!(matches!(
        p.verify(&trusted),
        Err(ProofError::WrongTreeSize {
            claimed: 6,
            in_block: 5
        })
    ));

    // A header field changed after certification.
    let mut p = proof(&f, 1);
    p.header.weight_used = 7;
    assert_eq!(
        p.verify(&trusted),
        Err(ProofError::NotFinal(FinalityError::Certificate {
            height: 42,
            source: CertificateError::WrongBlock
        }))
    );

    // A block certified by someone the genesis file does not name.
    let mut p = proof(&f, 1);
    let stranger = KeyPair::generate();
    p.finality.certificate = certificate(&f, &stranger);
    assert_eq!(
        p.verify(&trusted),
        Err(ProofError::NotFinal(FinalityError::Certificate {
            height: 42,
            source: CertificateError::UnknownSigner(stranger.public())
        }))
    );

    // Epoch hops where the block's epoch needs none.
    let mut p = proof(&f, 1);
    let mut short_epochs = trusted.clone();
    short_epochs.consensus.epoch_blocks = 20;
    assert_eq!(
        p.verify(&short_epochs),
        Err(ProofError::NotFinal(FinalityError::HopCount {
            height: 42,
            expected: 2,
            got: 0
        }))
    );
    p.finality.certificate.signatures.clear();
    assert!(matches!(
        p.verify(&trusted),
        Err(ProofError::NotFinal(FinalityError::Certificate {
            source: CertificateError::NotEnoughPower { .. },
            ..
        }))
    ));

    // The right proof checked against another chain.
    let p = proof(&f, 1);
    let mut other = trusted.clone();
    other.chain_id = ChainId(Hash256([8; 32]));
    assert!(matches!(
        p.verify(&other),
        Err(ProofError::WrongChain { .. })
    ));

    // Transaction bytes with a trailing byte.
    let mut p = proof(&f, 1);
    p.tx.push(0);
    assert!(matches!(
        p.verify(&trusted),
        Err(ProofError::BadTransaction(_))
    ));
}

#[test]
fn encoded_proofs_with_trailing_bytes_or_oversize_are_refused() {
    let f = fixture(3);
    let mut bytes = proof(&f, 0).encode().unwrap();
    bytes.push(0);
    assert!(matches!(
        TxInclusionProof::decode(&bytes),
        Err(ProofError::Malformed(_))
    ));
    let huge = vec![0u8; doin_tx_core::proof::MAX_TX_PROOF_BYTES + 1];
    assert!(matches!(
        TxInclusionProof::decode(&huge),
        Err(ProofError::Malformed(_))
    ));
    assert!(matches!(
        TxInclusionProof::decode(&[1, 2, 3]),
        Err(ProofError::Malformed(_))
    ));
}
