//! A fully deterministic transfer-chain workload: fixed keys, fixed genesis, and for every height
//! the same transactions with the same signatures (BIP340 with zero auxiliary randomness) and
//! the same block time. Two runs of it, on any stores, must produce identical blocks.

use doin_crypto::{tagged_hash, KeyPair};
use doin_tx_core::{Allocation, ConsensusParams, GenesisSpec, SignedTx, Tx, TxBody, TxPayload};
use doin_tx_node::TxChain;
use doin_types::{Amount, Network, Timestamp};

pub const USERS: usize = 16;
pub const GENESIS_TIME: u64 = 1_700_000_000_000;

fn key(label: &str) -> KeyPair {
    let seed = tagged_hash("doin/test-seed", label.as_bytes());
    // A tagged hash is below the group order with overwhelming probability; the labels used
    // here are known to give valid keys.
    KeyPair::from_secret_bytes(&seed.0).unwrap_or_else(|_| KeyPair::generate())
}

pub fn validator() -> KeyPair {
    key("validator")
}

pub fn users() -> Vec<KeyPair> {
    (0..USERS).map(|i| key(&format!("user-{i}"))).collect()
}

pub fn genesis() -> GenesisSpec {
    GenesisSpec {
        stakes: Vec::new(),
        network: Network::Devnet,
        chain_name: "deterministic-scenario".into(),
        genesis_time: Timestamp(GENESIS_TIME),
        params: ConsensusParams {
            target_block_time_ms: 1000,
            ..ConsensusParams::public_defaults()
        },
        validators: vec![validator().public()],
        allocations: users()
            .iter()
            .map(|u| Allocation {
                key: u.public(),
                amount: Amount::from_base_units(1_000_000 * 100_000_000),
            })
            .collect(),
    }
}

/// Block time of `height`.
pub fn block_time(height: u64) -> Timestamp {
    Timestamp(GENESIS_TIME + height * 1000)
}

fn sign_deterministic(body: TxBody, key: &KeyPair) -> anyhow::Result<SignedTx> {
    let sighash = body.sighash()?;
    Ok(SignedTx {
        signature: key.sign_with_aux(&sighash, &[0u8; 32]),
        body,
    })
}

/// The transactions destined for block `height`, given the chain state after `height - 1`.
pub fn txs_for_block(chain: &TxChain, height: u64) -> anyhow::Result<Vec<Tx>> {
    let users = users();
    let mut out = Vec::new();
    for (j, u) in users.iter().enumerate() {
        if (height as usize + j) % 2 != 0 {
            continue;
        }
        let nonce = chain.account(&u.public())?.nonce;
        for k in 0..2u64 {
            let to = &users[(j + 1 + (height as usize % (USERS - 1))) % USERS];
            let body = TxBody {
                chain_id: chain.params().chain_id,
                sender: u.public(),
                nonce: nonce + k,
                max_fee_per_weight: Amount::from_base_units(100),
                max_priority_fee_per_weight: Amount::from_base_units((height + j as u64) % 3),
                payload: TxPayload::Transfer {
                    to: to.public(),
                    amount: Amount::from_base_units(1000 + height * 7 + j as u64 + k),
                },
            };
            out.push(Tx::from_signed(sign_deterministic(body, u)?)?);
        }
    }
    Ok(out)
}

/// Extends `chain` by one block of the scenario: submits the block's transactions (known ones
/// are fine: a previous run may have persisted them) and produces the block.
pub fn step(chain: &TxChain, validator: &KeyPair) -> anyhow::Result<u64> {
    let height = chain.tip().header.height + 1;
    for tx in txs_for_block(chain, height)? {
        chain
            .submit(tx.bytes())
            .map_err(|e| anyhow::anyhow!("scenario tx refused at height {height}: {e}"))?;
    }
    let block = chain.produce_block(validator, block_time(height))?;
    Ok(block.header.height)
}
