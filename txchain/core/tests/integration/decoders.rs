//! Decoder robustness: arbitrary bytes never panic a decoder, anything accepted re-encodes to
//! exactly the same bytes (so ids recomputed from bytes are unambiguous), and single-byte
//! corruptions of a valid transaction are either refused or decode to a different transaction.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use doin_crypto::KeyPair;
use doin_tx_core::{Block, BlockHeader, Tx, TxBody, TxPayload};
use doin_types::{Amount, ChainId, Hash256};
use proptest::prelude::*;

fn valid_tx() -> Tx {
    let k = KeyPair::from_secret_bytes(&[7; 32]).unwrap();
    let body = TxBody {
        chain_id: ChainId(Hash256([1; 32])),
        sender: k.public(),
        nonce: 3,
        max_fee_per_weight: Amount::from_base_units(20),
        max_priority_fee_per_weight: Amount::from_base_units(2),
        payload: TxPayload::Transfer {
            to: k.public(),
            amount: Amount::from_base_units(9),
        },
    };
    Tx::from_signed(body.sign(&k).unwrap()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(tx) = Tx::decode(&bytes, 10_000) {
            prop_assert_eq!(tx.bytes(), &bytes[..]);
        }
        if let Ok(b) = Block::decode(&bytes) {
            prop_assert_eq!(b.encode().unwrap(), bytes.clone());
        }
        if let Ok(h) = doin_codec::decode_exact::<BlockHeader>(&bytes) {
            prop_assert_eq!(doin_codec::encode(&h).unwrap(), bytes.clone());
        }
    }

    #[test]
    fn corrupted_transactions_are_refused_or_different(pos in 0usize..196, flip in 1u8..=255) {
        let tx = valid_tx();
        let mut bytes = tx.bytes().to_vec();
        bytes[pos] ^= flip;
        match Tx::decode(&bytes, 10_000) {
            Err(_) => {}
            Ok(other) => {
                prop_assert_ne!(other.id(), tx.id());
                // A flipped byte anywhere leaves the signature invalid for the content.
                prop_assert!(other.check_stateless(&other.body().chain_id.clone(), 10_000, true).is_err());
            }
        }
    }

    #[test]
    fn truncations_and_extensions_are_refused(cut in 0usize..196, extra in proptest::collection::vec(any::<u8>(), 1..8)) {
        let tx = valid_tx();
        prop_assert!(Tx::decode(&tx.bytes()[..cut], 10_000).is_err());
        let mut longer = tx.bytes().to_vec();
        longer.extend_from_slice(&extra);
        prop_assert!(Tx::decode(&longer, 10_000).is_err());
    }
}

#[test]
fn a_huge_length_prefix_does_not_allocate() {
    // A block whose transaction vector claims u64::MAX entries.
    let mut bytes = doin_codec::encode(&Block {
        header: BlockHeader {
            chain_id: ChainId(Hash256([0; 32])),
            height: 1,
            parent: Hash256([0; 32]),
            time: doin_types::Timestamp(0),
            proposer: doin_types::PublicKeyBytes([0; 32]),
            state_root: Hash256([0; 32]),
            tx_root: Hash256([0; 32]),
            base_fee: Amount::ZERO,
            weight_used: 0,
            tx_count: 0,
            main_anchor: doin_types::MainAnchor::NONE,
            last_commit: None,
        },
        signature: doin_types::SignatureBytes([0; 64]),
        txs: vec![],
    })
    .unwrap();
    let n = bytes.len();
    bytes[n - 8..].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(Block::decode(&bytes).is_err());
}
