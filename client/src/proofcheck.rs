//! `doin wallet proof` and `doin wallet verify-proof`: fetching proofs and checking them
//! offline against a genesis file — a transaction's inclusion in a final transfer block
//! (`doin-tx-inclusion/2`) and a main block's anchoring by a final transfer block
//! (`doin-main-anchor/2`).
//!
//! The check trusts only the genesis file (chain id, genesis validators, epoch length) and the
//! proof bytes: a transfer block counts when its commit certificate holds under the validator
//! set of its epoch, learned from genesis through the proof's epoch hops. The
//! convenience fields of a served proof (`tx_id`, `height`, `block_hash`) must agree with what
//! the proof itself proves, or the proof is refused.

use anyhow::{anyhow, bail, Context};
use doin_codec::{decode_exact_bounded, encode};
use doin_main_core::MainHeader;
use doin_tx_core::{
    BlockHeader, ChainParams, FinalityProof, GenesisSpec, ProvenInclusion, TxInclusionProof,
    MAX_ANCHOR_STEP, TX_PROOF_FORMAT,
};
use doin_types::{ChainId, Hash256};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Name and version of the main-anchor proof format.
pub const MAIN_ANCHOR_PROOF_FORMAT: &str = "doin-main-anchor/2";

/// Largest encoded main-anchor proof accepted (the transfer block's finality proof grows by
/// one epoch hop per epoch).
const MAX_MAIN_ANCHOR_PROOF_BYTES: usize = 16 * 1024 * 1024;

/// Largest encoded checkpoint leg accepted.
const MAX_CHECKPOINT_PROOF_BYTES: usize = 1024 * 1024;

/// Evidence that a main block is anchored by a final transfer block: the main headers from
/// the anchored block up to the one the transfer header names (each the parent of the next),
/// the transfer header and its finality proof.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MainAnchorProof {
    pub main_headers: Vec<MainHeader>,
    pub tx_header: BlockHeader,
    pub tx_finality: FinalityProof,
}

/// What a valid main-anchor proof establishes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvenAnchor {
    pub main_height: u64,
    pub main_hash: Hash256,
    pub tx_height: u64,
    pub tx_block_hash: Hash256,
}

impl MainAnchorProof {
    pub fn encode(&self) -> anyhow::Result<Vec<u8>> {
        Ok(encode(self)?)
    }

    pub fn decode(bytes: &[u8]) -> anyhow::Result<MainAnchorProof> {
        if bytes.len() > MAX_MAIN_ANCHOR_PROOF_BYTES {
            bail!(
                "the proof is {} bytes, more than the {MAX_MAIN_ANCHOR_PROOF_BYTES} allowed",
                bytes.len()
            );
        }
        decode_exact_bounded(bytes, MAX_MAIN_ANCHOR_PROOF_BYTES).map_err(|e| {
            anyhow!("the proof is not a well-formed {MAIN_ANCHOR_PROOF_FORMAT} encoding: {e}")
        })
    }

    /// Checks the proof for the transfer chain of `tx_params` (from its genesis file), and
    /// (when given) main chain `main_chain`.
    pub fn verify(
        &self,
        tx_params: &ChainParams,
        main_chain: Option<&ChainId>,
    ) -> anyhow::Result<ProvenAnchor> {
        let t = &self.tx_header;
        let tx_chain = &tx_params.chain_id;
        if t.chain_id != *tx_chain {
            bail!(
                "the transfer header is for chain {}, not {tx_chain}",
                t.chain_id
            );
        }
        let tx_block_hash = t.hash()?;
        self.tx_finality
            .verify(tx_params, t, &tx_block_hash)
            .map_err(|e| anyhow!("the transfer block is not proven final: {e}"))?;
        let first = self
            .main_headers
            .first()
            .ok_or_else(|| anyhow!("the proof holds no main header"))?;
        if self.main_headers.len() as u64 > MAX_ANCHOR_STEP.saturating_add(1) {
            bail!("the proof holds more main headers than one anchor step can cover");
        }
        let mut previous: Option<(u64, Hash256)> = None;
        for h in &self.main_headers {
            if let Some(id) = main_chain {
                if h.chain_id != *id {
                    bail!(
                        "main header {} is for chain {}, not {id}",
                        h.height,
                        h.chain_id
                    );
                }
            }
            if let Some((height, hash)) = previous {
                if h.height != height.saturating_add(1) || h.parent != hash {
                    bail!(
                        "main header {} does not follow main header {height}",
                        h.height
                    );
                }
            }
            previous = Some((h.height, h.hash()?));
        }
        let (last_height, last_hash) =
            previous.ok_or_else(|| anyhow!("the proof holds no main header"))?;
        if t.main_anchor.height != last_height || t.main_anchor.hash != last_hash {
            bail!(
                "the transfer header anchors main block {} ({}), not the proof's last header {last_height}",
                t.main_anchor.height,
                t.main_anchor.hash
            );
        }
        Ok(ProvenAnchor {
            main_height: first.height,
            main_hash: first.hash()?,
            tx_height: t.height,
            tx_block_hash,
        })
    }
}

/// Name and version of the checkpoint-leg proof format.
pub const CHECKPOINT_PROOF_FORMAT: &str = "doin-tx-checkpoint/1";

/// Most transfer headers a checkpoint leg may carry (main blocks checkpoint the final tip, so
/// a leg is normally a handful of headers).
pub const MAX_CHECKPOINT_LEG: usize = 1024;

/// Evidence that a transfer block is covered by a main block's `tx_checkpoint`: the transfer
/// headers from that block up to the checkpointed one (each the parent of the next) and the
/// main header that names the last.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointProof {
    pub tx_headers: Vec<BlockHeader>,
    pub main_header: MainHeader,
}

/// What a valid checkpoint leg establishes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvenCheckpoint {
    /// The transfer block the leg starts at.
    pub tx_block_hash: Hash256,
    pub main_height: u64,
    pub main_hash: Hash256,
}

impl CheckpointProof {
    pub fn encode(&self) -> anyhow::Result<Vec<u8>> {
        Ok(encode(self)?)
    }

    pub fn decode(bytes: &[u8]) -> anyhow::Result<CheckpointProof> {
        if bytes.len() > MAX_CHECKPOINT_PROOF_BYTES {
            bail!(
                "the checkpoint proof is {} bytes, more than the {MAX_CHECKPOINT_PROOF_BYTES} allowed",
                bytes.len()
            );
        }
        decode_exact_bounded(bytes, MAX_CHECKPOINT_PROOF_BYTES).map_err(|e| {
            anyhow!(
                "the checkpoint proof is not a well-formed {CHECKPOINT_PROOF_FORMAT} encoding: {e}"
            )
        })
    }

    /// Checks the leg for transfer chain `tx_chain` (and main chain `main_chain` when known).
    /// The main header is taken as given: its work is not checked offline.
    pub fn verify(
        &self,
        tx_chain: &ChainId,
        main_chain: Option<&ChainId>,
    ) -> anyhow::Result<ProvenCheckpoint> {
        if self.tx_headers.is_empty() || self.tx_headers.len() > MAX_CHECKPOINT_LEG {
            bail!("a checkpoint leg holds 1..={MAX_CHECKPOINT_LEG} transfer headers");
        }
        let mut previous: Option<(u64, Hash256)> = None;
        let mut first = None;
        for h in &self.tx_headers {
            if h.chain_id != *tx_chain {
                bail!(
                    "transfer header {} is for chain {}, not {tx_chain}",
                    h.height,
                    h.chain_id
                );
            }
            if let Some((height, hash)) = previous {
                if h.height != height.saturating_add(1) || h.parent != hash {
                    bail!(
                        "transfer header {} does not follow header {height}",
                        h.height
                    );
                }
            }
            let hash = h.hash()?;
            first.get_or_insert(hash);
            previous = Some((h.height, hash));
        }
        let (last_height, last_hash) =
            previous.ok_or_else(|| anyhow!("the leg holds no transfer header"))?;
        let m = &self.main_header;
        if let Some(id) = main_chain {
            if m.chain_id != *id {
                bail!("the main header is for chain {}, not {id}", m.chain_id);
            }
        }
        if m.tx_checkpoint.height != last_height || m.tx_checkpoint.hash != last_hash {
            bail!(
                "the main header checkpoints transfer block {}, not the leg's last header {last_height}",
                m.tx_checkpoint.height
            );
        }
        Ok(ProvenCheckpoint {
            tx_block_hash: first.ok_or_else(|| anyhow!("the leg holds no transfer header"))?,
            main_height: m.height,
            main_hash: m.hash()?,
        })
    }
}

/// What `verify-proof` established, whichever the format.
pub enum Proven {
    /// The transaction is in a signed transfer block, and (when the proof carries the leg) a
    /// main block checkpoints that block.
    Inclusion(ProvenInclusion, Option<ProvenCheckpoint>),
    Anchor(ProvenAnchor),
}

/// Checks a served proof of either format against `spec` (and `main_chain` when known).
pub fn verify_any_proof_json(
    text: &str,
    spec: &GenesisSpec,
    main_chain: Option<&ChainId>,
) -> anyhow::Result<Proven> {
    let doc: Value = serde_json::from_str(text).context("the proof is not JSON")?;
    match doc.get("format").and_then(Value::as_str) {
        Some(MAIN_ANCHOR_PROOF_FORMAT) => {
            let hex_proof = doc
                .get("proof")
                .and_then(Value::as_str)
                .ok_or_else(|| anyhow!("the proof has no `proof` field"))?;
            let proof =
                MainAnchorProof::decode(&hex::decode(hex_proof).context("`proof` is not hex")?)?;
            let params = ChainParams::from_genesis(spec)?;
            let proven = proof.verify(&params, main_chain)?;
            for (field, value) in [
                ("main_hash", proven.main_hash.to_hex()),
                ("tx_block_hash", proven.tx_block_hash.to_hex()),
            ] {
                if let Some(claimed) = doc.get(field).and_then(Value::as_str) {
                    if !claimed.eq_ignore_ascii_case(&value) {
                        bail!("the proof's `{field}` says {claimed} but the proof proves {value}");
                    }
                }
            }
            for (field, value) in [
                ("main_height", proven.main_height),
                ("tx_height", proven.tx_height),
            ] {
                if let Some(claimed) = doc.get(field).and_then(Value::as_u64) {
                    if claimed != value {
                        bail!("the proof's `{field}` says {claimed} but the proof proves {value}");
                    }
                }
            }
            Ok(Proven::Anchor(proven))
        }
        _ => {
            let proven = verify_proof_json(text, spec)?;
            let leg = match doc.get("checkpoint") {
                None | Some(Value::Null) => None,
                Some(leg) => {
                    if leg.get("format").and_then(Value::as_str) != Some(CHECKPOINT_PROOF_FORMAT) {
                        bail!("the checkpoint leg is not in the {CHECKPOINT_PROOF_FORMAT} format");
                    }
                    let hex_leg = leg
                        .get("proof")
                        .and_then(Value::as_str)
                        .ok_or_else(|| anyhow!("the checkpoint leg has no `proof` field"))?;
                    let leg = CheckpointProof::decode(
                        &hex::decode(hex_leg).context("the checkpoint leg is not hex")?,
                    )?
                    .verify(&spec.chain_id()?, main_chain)?;
                    if leg.tx_block_hash != proven.block_hash {
                        bail!("the checkpoint leg starts at another transfer block than the one holding the transaction");
                    }
                    Some(leg)
                }
            };
            Ok(Proven::Inclusion(proven, leg))
        }
    }
}

/// Checks a served proof (the JSON of `GET /v1/anchors/tx/{id}`) against `spec`.
pub fn verify_proof_json(text: &str, spec: &GenesisSpec) -> anyhow::Result<ProvenInclusion> {
    let doc: Value = serde_json::from_str(text).context("the proof is not JSON")?;
    let format = doc
        .get("format")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("the proof has no `format`"))?;
    if format != TX_PROOF_FORMAT {
        bail!("proof format {format:?} is not {TX_PROOF_FORMAT:?}, the one this wallet checks");
    }
    let hex_proof = doc
        .get("proof")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("the proof has no `proof` field"))?;
    let bytes = hex::decode(hex_proof).context("`proof` is not hex")?;
    let proof = TxInclusionProof::decode(&bytes)?;
    let params = ChainParams::from_genesis(spec)?;
    let proven = proof.verify(&params)?;
    let claims = [
        ("tx_id", proven.tx_id.to_hex()),
        ("block_hash", proven.block_hash.to_hex()),
    ];
    for (field, proven_value) in claims {
        if let Some(claimed) = doc.get(field).and_then(Value::as_str) {
            if !claimed.eq_ignore_ascii_case(&proven_value) {
                bail!("the proof's `{field}` says {claimed} but the proof proves {proven_value}");
            }
        }
    }
    if let Some(h) = doc.get("height").and_then(Value::as_u64) {
        if h != proven.height {
            bail!(
                "the proof's `height` says {h} but the proof proves {}",
                proven.height
            );
        }
    }
    Ok(proven)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use doin_crypto::KeyPair;
    use doin_main_core::Fx;
    use doin_tx_core::bft::CommitCertificate;
    use doin_types::{Amount, MainAnchor, PublicKeyBytes, Timestamp, TxCheckpoint};

    fn main_chain(n: u64) -> Vec<MainHeader> {
        let mut out: Vec<MainHeader> = Vec::new();
        for height in 1..=n {
            let parent = out
                .last()
                .map(|h| h.hash().unwrap())
                .unwrap_or(Hash256([9; 32]));
            out.push(MainHeader {
                chain_id: ChainId(Hash256([5; 32])),
                height,
                parent,
                time: Timestamp(height),
                producer: PublicKeyBytes([1; 32]),
                threshold: Fx::ZERO,
                counted_work: Fx::ZERO,
                cumulative_work: 0,
                state_root: Hash256([0; 32]),
                body_root: Hash256([0; 32]),
                tx_checkpoint: TxCheckpoint::NONE,
            });
        }
        out
    }

    fn proof(validator: &KeyPair, headers: Vec<MainHeader>) -> MainAnchorProof {
        let last = headers.last().unwrap();
        let tx_header = BlockHeader {
            chain_id: ChainId(Hash256([6; 32])),
            height: 7,
            parent: Hash256([0; 32]),
            time: Timestamp(1),
            proposer: validator.public(),
            state_root: Hash256([0; 32]),
            tx_root: Hash256([0; 32]),
            base_fee: Amount::from_base_units(1),
            weight_used: 0,
            tx_count: 0,
            main_anchor: MainAnchor {
                height: last.height,
                hash: last.hash().unwrap(),
            },
            last_commit: None,
        };
        let certificate = CommitCertificate::sign(
            &tx_header.chain_id,
            7,
            0,
            tx_header.hash().unwrap(),
            &[validator],
        )
        .unwrap();
        MainAnchorProof {
            main_headers: headers,
            tx_header,
            tx_finality: FinalityProof {
                hops: Vec::new(),
                certificate,
            },
        }
    }

    /// A transfer chain whose genesis names `validator` alone (height 7 is in its first epoch).
    fn tx_params(chain: u8, validator: &KeyPair) -> ChainParams {
        ChainParams {
            chain_id: ChainId(Hash256([chain; 32])),
            network: doin_types::Network::Devnet,
            consensus: doin_tx_core::ConsensusParams::public_defaults(),
            validators: vec![validator.public()],
        }
    }

    #[test]
    fn main_anchor_proofs_hold_and_every_break_is_caught() {
        let v = KeyPair::generate();
        let main_id = ChainId(Hash256([5; 32]));
        let trusted = tx_params(6, &v);
        let chain = main_chain(4);
        // Main block 2, anchored by a transfer header naming main block 4.
        let good = proof(&v, chain[1..].to_vec());
        let bytes = good.encode().unwrap();
        let back = MainAnchorProof::decode(&bytes).unwrap();
        let proven = back.verify(&trusted, Some(&main_id)).unwrap();
        assert_eq!(proven.main_height, 2);
        assert_eq!(proven.main_hash, chain[1].hash().unwrap());

        // A gap in the headers.
        let mut gap = good.clone();
        gap.main_headers.remove(1);
        assert!(gap.verify(&trusted, None).is_err());
        // A header changed (its successor no longer links to it).
        let mut changed = good.clone();
        changed.main_headers[0].time = Timestamp(99);
        assert!(changed.verify(&trusted, None).is_err());
        // The transfer header anchors something else.
        let mut other = good.clone();
        other.main_headers.pop();
        assert!(other.verify(&trusted, None).is_err());
        // Signed by a stranger, or for other chains.
        assert!(good
            .verify(&tx_params(6, &KeyPair::generate()), None)
            .is_err());
        assert!(good.verify(&tx_params(7, &v), None).is_err());
        assert!(good
            .verify(&trusted, Some(&ChainId(Hash256([8; 32]))))
            .is_err());
        // A transfer header changed after its certificate.
        let mut uncertified = good.clone();
        uncertified.tx_header.weight_used = 1;
        assert!(uncertified.verify(&trusted, None).is_err());
        // Trailing bytes.
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(MainAnchorProof::decode(&trailing).is_err());
    }

    /// Transfer headers 1..=n, each the parent of the next.
    fn tx_chain(n: u64) -> Vec<BlockHeader> {
        let mut out: Vec<BlockHeader> = Vec::new();
        for height in 1..=n {
            let parent = out
                .last()
                .map(|h| h.hash().unwrap())
                .unwrap_or(Hash256([3; 32]));
            out.push(BlockHeader {
                chain_id: ChainId(Hash256([6; 32])),
                height,
                parent,
                time: Timestamp(height),
                proposer: PublicKeyBytes([2; 32]),
                state_root: Hash256([0; 32]),
                tx_root: Hash256([0; 32]),
                base_fee: Amount::from_base_units(1),
                weight_used: 0,
                tx_count: 0,
                main_anchor: MainAnchor::NONE,
                last_commit: None,
            });
        }
        out
    }

    #[test]
    fn checkpoint_legs_hold_and_every_break_is_caught() {
        let tx_id = ChainId(Hash256([6; 32]));
        let main_id = ChainId(Hash256([5; 32]));
        let txs = tx_chain(5);
        let mut main_header = main_chain(1).remove(0);
        main_header.tx_checkpoint = TxCheckpoint {
            height: 5,
            hash: txs[4].hash().unwrap(),
        };
        let good = CheckpointProof {
            tx_headers: txs[2..].to_vec(),
            main_header,
        };
        let back = CheckpointProof::decode(&good.encode().unwrap()).unwrap();
        let proven = back.verify(&tx_id, Some(&main_id)).unwrap();
        assert_eq!(proven.tx_block_hash, txs[2].hash().unwrap());

        let mut gap = good.clone();
        gap.tx_headers.remove(1);
        assert!(gap.verify(&tx_id, None).is_err());
        let mut short = good.clone();
        short.tx_headers.pop();
        assert!(short.verify(&tx_id, None).is_err());
        let mut changed = good.clone();
        changed.tx_headers[0].weight_used = 1;
        assert!(changed.verify(&tx_id, None).is_err());
        assert!(good.verify(&ChainId(Hash256([1; 32])), None).is_err());
        assert!(good
            .verify(&tx_id, Some(&ChainId(Hash256([1; 32]))))
            .is_err());
        let empty = CheckpointProof {
            tx_headers: vec![],
            main_header: good.main_header.clone(),
        };
        assert!(empty.verify(&tx_id, None).is_err());
    }
}
