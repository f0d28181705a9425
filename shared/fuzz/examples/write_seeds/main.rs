//! Writes the seed corpora of the fuzz targets into `shared/fuzz/seeds/<target>/`: real encodings
//! (the golden transfer of `txchain/core/tests/vectors/transfer.json`, requests and answers of
//! both chains' sync, consensus votes, proposals and parts of a signed block, channel messages, an invoice, a key file, sample text) for the fuzzer to
//! start from. Run from `shared/fuzz/`: `cargo run --example write_seeds`.

use doin_channels::{create_invoice, InvoiceTerms, Message};
use doin_codec::encode;
use doin_crypto::keystore::KeyFile;
use doin_crypto::KeyPair;
use doin_main_core::wire::{MainSyncRequest, MainSyncResponse};
use doin_tx_core::wire::{SnapshotOffer, SyncRequest, SyncResponse};
use doin_types::{Hash256, Network};

mod consensus;
use std::path::Path;
use std::time::Duration;

const GOLDEN_TRANSFER: &str = include_str!("../../../../txchain/core/tests/vectors/transfer.json");

fn write(target: &str, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let dir = Path::new("seeds").join(target);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(name), bytes)
}

/// The `"tx"` hex of the golden transfer's expected output.
fn golden_tx() -> Result<Vec<u8>, String> {
    let expected = GOLDEN_TRANSFER
        .split("\"expected\"")
        .nth(1)
        .ok_or("no expected output")?;
    let hex_tx = expected
        .split("\"tx\": \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .ok_or("no tx")?;
    hex::decode(hex_tx).map_err(|e| e.to_string())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    write("tx", "golden-transfer", &golden_tx()?)?;

    let requests = [
        SyncRequest::Status,
        SyncRequest::Blocks { from: 1, max: 64 },
        SyncRequest::Headers { from: 1, max: 512 },
        SyncRequest::Txs {
            block: Hash256([1; 32]),
            indexes: vec![0, 2],
        },
        SyncRequest::SnapshotOffers,
        SyncRequest::SnapshotFrame {
            height: 40,
            index: 2,
        },
    ];
    for (i, r) in requests.iter().enumerate() {
        write("tx_sync", &format!("request-{i}"), &r.encode()?)?;
    }
    let offers = SyncResponse::SnapshotOffers(vec![SnapshotOffer {
        height: 40,
        block_hash: Hash256([2; 32]),
        head_frames: 3,
        chunks: 5,
        chunk_bytes: 5 << 20,
    }]);
    write("tx_sync", "offers", &offers.encode()?)?;
    write(
        "tx_sync",
        "frame",
        &SyncResponse::SnapshotFrame(vec![7; 40]).encode()?,
    )?;

    for (i, r) in [
        MainSyncRequest::Status,
        MainSyncRequest::Blocks { from: 1, max: 32 },
        MainSyncRequest::Headers { from: 1, max: 256 },
    ]
    .iter()
    .enumerate()
    {
        write("main_sync", &format!("request-{i}"), &encode(r)?)?;
    }
    write(
        "main_sync",
        "blocks",
        &encode(&MainSyncResponse::Blocks(Vec::new()))?,
    )?;

    consensus::write_seeds(write)?;

    let key = KeyPair::from_secret_bytes(&[3; 32])?;
    let channel_id = Hash256([4; 32]);
    let sig = key.sign(&Hash256([5; 32]));
    for (i, m) in [
        Message::Accept {
            channel_id,
            seq: 1,
            sig,
        },
        Message::Confirm {
            channel_id,
            seq: 2,
            sig,
        },
        Message::Reject {
            channel_id,
            seq: 3,
            reason: "no".into(),
        },
    ]
    .iter()
    .enumerate()
    {
        write("channel_message", &format!("message-{i}"), &m.encode()?)?;
    }

    let terms = InvoiceTerms {
        amount_msat: 12_345,
        payment_hash: Hash256([6; 32]),
        payment_secret: [7; 32],
        description: "coffee".into(),
        expiry_secs: 3_600,
        min_final_cltv_blocks: 40,
    };
    let invoice = create_invoice(
        Network::Devnet,
        &key,
        &terms,
        Duration::from_secs(1_800_000_000),
    )?;
    write("invoice", "devnet", invoice.as_bytes())?;

    let file = serde_json::to_string(&KeyFile::plaintext_devnet(&key))?;
    write("key_file", "plaintext", file.as_bytes())?;

    for (i, t) in [
        "doin1qyqszqgpqyqszqgpqyqszqgp",
        "12.5",
        "100000000",
        "-1.250000000",
    ]
    .iter()
    .enumerate()
    {
        write("text", &format!("sample-{i}"), t.as_bytes())?;
    }
    write_hub_seeds(&key, channel_id)?;
    Ok(())
}

/// A channel-message request with every optional part, and one pipelining a `Confirm`.
fn write_hub_seeds(key: &KeyPair, channel_id: Hash256) -> Result<(), Box<dyn std::error::Error>> {
    let sig = key.sign(&Hash256([5; 32]));
    let confirm = Message::Confirm {
        channel_id,
        seq: 2,
        sig,
    };
    let reject = Message::Reject {
        channel_id,
        seq: 3,
        reason: "no".into(),
    };
    let full = serde_json::json!({
        "message": hex::encode(reject.encode()?),
        "stream": hex::encode([1u8; 32]),
        "invoice": "lndoin1",
        "vote_optimae": hex::encode([2u8; 32]),
        "split": [{"stream": hex::encode([3u8; 32]), "amount_msat": "5", "vote_optimae": null}],
        "fund_optimae": hex::encode([4u8; 32]),
        "signature": hex::encode(sig.0),
    });
    write("hub_bodies", "message", full.to_string().as_bytes())?;
    let pipelined = serde_json::json!({
        "message": hex::encode(confirm.encode()?),
        "next": hex::encode(reject.encode()?),
        "signature": hex::encode(sig.0),
    });
    write("hub_bodies", "pipelined", pipelined.to_string().as_bytes())?;
    Ok(())
}
