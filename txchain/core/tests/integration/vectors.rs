//! Golden transaction vectors (vectors/transfer.json, vectors/batch.json): the exact signing
//! bytes, signing hash, signature, encoded transaction and id. A change here breaks every
//! wallet.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use doin_codec::encode;
use doin_crypto::KeyPair;
use doin_tx_core::{BatchOutput, Tx, TxBody, TxPayload};
use doin_types::{Amount, ChainId, Hash256, PublicKeyBytes};
use serde_json::Value;

fn h32(v: &Value) -> [u8; 32] {
    let mut out = [0u8; 32];
    hex::decode_to_slice(v.as_str().unwrap(), &mut out).unwrap();
    out
}

fn num(v: &Value) -> u64 {
    v.as_str().unwrap().parse().unwrap()
}

#[test]
fn transfer_vector() {
    check_vector(include_str!("../vectors/transfer.json"));
}

#[test]
fn batch_vector() {
    check_vector(include_str!("../vectors/batch.json"));
}

/// The payload a vector's input describes: `outputs` for a batch, else `to` and `amount`.
fn payload(i: &Value) -> TxPayload {
    match i["outputs"].as_array() {
        Some(outputs) => TxPayload::BatchTransfer {
            outputs: outputs
                .iter()
                .map(|o| BatchOutput {
                    to: PublicKeyBytes(h32(&o["to"])),
                    amount: Amount::from_base_units(num(&o["amount"])),
                })
                .collect(),
        },
        None => TxPayload::Transfer {
            to: PublicKeyBytes(h32(&i["to"])),
            amount: Amount::from_base_units(num(&i["amount"])),
        },
    }
}

fn check_vector(json: &str) {
    let doc: Value = serde_json::from_str(json).unwrap();
    let i = &doc["input"];
    let e = &doc["expected"];
    let key = KeyPair::from_secret_bytes(&h32(&i["secret_key"])).unwrap();
    assert_eq!(key.public().to_hex(), e["sender"].as_str().unwrap());
    let body = TxBody {
        chain_id: ChainId(Hash256(h32(&i["chain_id"]))),
        sender: key.public(),
        nonce: num(&i["nonce"]),
        max_fee_per_weight: Amount::from_base_units(num(&i["max_fee_per_weight"])),
        max_priority_fee_per_weight: Amount::from_base_units(
            num(&i["max_priority_fee_per_weight"]),
        ),
        payload: payload(i),
    };
    assert_eq!(
        hex::encode(encode(&body).unwrap()),
        e["body"].as_str().unwrap()
    );
    let sighash = body.sighash().unwrap();
    assert_eq!(sighash.to_hex(), e["sighash"].as_str().unwrap());
    let sig = key.sign_with_aux(&sighash, &h32(&i["aux_rand"]));
    let signed = doin_tx_core::SignedTx {
        body,
        signature: sig,
    };
    let tx = Tx::from_signed(signed).unwrap();
    assert_eq!(hex::encode(tx.bytes()), e["tx"].as_str().unwrap());
    assert_eq!(tx.id().to_hex(), e["id"].as_str().unwrap());
    assert_eq!(tx.weight(), e["weight"].as_u64().unwrap());
    // And the encoded form decodes back to the same transaction.
    let back = Tx::decode(&hex::decode(e["tx"].as_str().unwrap()).unwrap(), 1000).unwrap();
    assert_eq!(back, tx);
}
