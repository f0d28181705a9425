//! Inclusion proofs: every honest proof verifies, and every kind of tampering is caught with
//! its own error.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use doin_crypto::KeyPair;
use doin_tx_core::{prove_tx, ProofError, TxInclusionProof};
use doin_types::{ChainId, Hash256};

mod common;

use common::{loose_block as fixture, LooseBlock as Fixture};

fn proof(f: &Fixture, index: usize) -> TxInclusionProof {
    let ids: Vec<_> = f.txs.iter().map(|t| t.id()).collect();
    prove_tx(
        f.block.header.clone(),
        f.block.signature,
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
            let proven = p.verify(&f.chain_id, &[f.validator.public()]).unwrap();
            assert_eq!(proven.tx_id, f.txs[i].id());
            assert_eq!(proven.height, 42);
            assert_eq!(proven.block_hash, f.block.hash().unwrap());
        }
    }
}

#[test]
fn tampered_proofs_are_refused_with_the_reason() {
    let f = fixture(5);
    let trusted = [f.validator.public()];

    // Another transaction of the same block under this one's path.
    let mut p = proof(&f, 1);
    p.tx = f.txs[2].bytes().to_vec();
    assert_eq!(p.verify(&f.chain_id, &trusted), Err(ProofError::NotInBlock));

    // A transaction that is in no block.
    let mut p = proof(&f, 1);
    p.tx = fixture(1).txs[0].bytes().to_vec();
    assert!(matches!(
        p.verify(&f.chain_id, &trusted),
        Err(ProofError::WrongChain { .. }) | Err(ProofError::NotInBlock)
    ));

    // The right transaction at a claimed position it does not have.
    let mut p = proof(&f, 1);
    p.merkle.index = 3;
    assert_eq!(p.verify(&f.chain_id, &trusted), Err(ProofError::NotInBlock));

    // A path step flipped.
    let mut p = proof(&f, 1);
    p.merkle.path[0].0[0] ^= 1;
    assert_eq!(p.verify(&f.chain_id, &trusted), Err(ProofError::NotInBlock));

    // A tree size that differs from the header's count.
    let mut p = proof(&f, 1);
    p.merkle.size = 6;
    assert!(matches!(
        p.verify(&f.chain_id, &trusted),
        Err(ProofError::WrongTreeSize {
            claimed: 6,
            in_block: 5
        })
    ));

    // A header field changed after signing.
    let mut p = proof(&f, 1);
    p.header.height = 43;
    assert_eq!(
        p.verify(&f.chain_id, &trusted),
        Err(ProofError::BadSignature)
    );

    // A block signed by someone the verifier does not trust.
    let p = proof(&f, 1);
    let stranger = KeyPair::generate().public();
    assert_eq!(
        p.verify(&f.chain_id, &[stranger]),
        Err(ProofError::UnknownProposer(f.validator.public()))
    );

    // The right proof checked against another chain.
    assert!(matches!(
        p.verify(&ChainId(Hash256([8; 32])), &trusted),
        Err(ProofError::WrongChain { .. })
    ));

    // Transaction bytes with a trailing byte.
    let mut p = proof(&f, 1);
    p.tx.push(0);
    assert!(matches!(
        p.verify(&f.chain_id, &trusted),
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
