//! `doin wallet proof` and `doin wallet verify-proof`: fetching proofs and checking them
//! offline against a genesis file — a transaction's inclusion in a signed transfer block
//! (`doin-tx-inclusion/1`) and a main block's anchoring by the transfer chain
//! (`doin-main-anchor/1`).
//!
//! The check trusts only the genesis file (chain id and validators) and the proof bytes; the
//! convenience fields of a served proof (`tx_id`, `height`, `block_hash`) must agree with what
//! the proof itself proves, or the proof is refused.

use anyhow::{anyhow, bail, Context};
use doin_codec::{decode_exact_bounded, encode};
use doin_crypto::verify;
use doin_main_core::MainHeader;
use doin_tx_core::{
    BlockHeader, GenesisSpec, ProvenInclusion, TxInclusionProof, MAX_ANCHOR_STEP, TX_PROOF_FORMAT,
};
use doin_types::{ChainId, Hash256, SignatureBytes};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Name and version of the main-anchor proof format.
pub const MAIN_ANCHOR_PROOF_FORMAT: &str = "doin-main-anchor/1";

/// Largest encoded main-anchor proof accepted.
const MAX_MAIN_ANCHOR_PROOF_BYTES: usize = 256 * 1024;

/// Evidence that a main block is anchored by a signed transfer block: the main headers from
/// the anchored block up to the one the transfer header names (each the parent of the next),
/// the transfer header and its proposer's signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MainAnchorProof {
    pub main_headers: Vec<MainHeader>,
    pub tx_header: BlockHeader,
    pub tx_signature: SignatureBytes,
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

    /// Checks the proof for the transfer chain `tx_chain` with `validators`, and (when given)
    /// main chain `main_chain`.
    pub fn verify(
        &self,
        tx_chain: &ChainId,
        validators: &[doin_types::PublicKeyBytes],
        main_chain: Option<&ChainId>,
    ) -> anyhow::Result<ProvenAnchor> {
        let t = &self.tx_header;
        if t.chain_id != *tx_chain {
            bail!(
                "the transfer header is for chain {}, not {tx_chain}",
                t.chain_id
            );
        }
        let tx_block_hash = t.hash()?;
        verify(&t.proposer, &tx_block_hash, &self.tx_signature)
            .map_err(|_| anyhow!("the transfer block's signature does not verify"))?;
        if !validators.contains(&t.proposer) {
            bail!(
                "the transfer block's proposer {} is not a validator",
                t.proposer
            );
        }
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

/// What `verify-proof` established, whichever the format.
pub enum Proven {
    Inclusion(ProvenInclusion),
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
            let proven = proof.verify(&spec.chain_id()?, &spec.validators, main_chain)?;
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
        _ => verify_proof_json(text, spec).map(Proven::Inclusion),
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
    let chain_id = spec.chain_id()?;
    let proven = proof.verify(&chain_id, &spec.validators)?;
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
        };
        let tx_signature = validator.sign(&tx_header.hash().unwrap());
        MainAnchorProof {
            main_headers: headers,
            tx_header,
            tx_signature,
        }
    }

    #[test]
    fn main_anchor_proofs_hold_and_every_break_is_caught() {
        let v = KeyPair::generate();
        let tx_chain = ChainId(Hash256([6; 32]));
        let main_id = ChainId(Hash256([5; 32]));
        let trusted = [v.public()];
        let chain = main_chain(4);
        // Main block 2, anchored by a transfer header naming main block 4.
        let good = proof(&v, chain[1..].to_vec());
        let bytes = good.encode().unwrap();
        let back = MainAnchorProof::decode(&bytes).unwrap();
        let proven = back.verify(&tx_chain, &trusted, Some(&main_id)).unwrap();
        assert_eq!(proven.main_height, 2);
        assert_eq!(proven.main_hash, chain[1].hash().unwrap());

        // A gap in the headers.
        let mut gap = good.clone();
        gap.main_headers.remove(1);
        assert!(gap.verify(&tx_chain, &trusted, None).is_err());
        // A header changed (its successor no longer links to it).
        let mut changed = good.clone();
        changed.main_headers[0].time = Timestamp(99);
        assert!(changed.verify(&tx_chain, &trusted, None).is_err());
        // The transfer header anchors something else.
        let mut other = good.clone();
        other.main_headers.pop();
        assert!(other.verify(&tx_chain, &trusted, None).is_err());
        // Signed by a stranger, or for other chains.
        assert!(good
            .verify(&tx_chain, &[KeyPair::generate().public()], None)
            .is_err());
        assert!(good
            .verify(&ChainId(Hash256([7; 32])), &trusted, None)
            .is_err());
        assert!(good
            .verify(&tx_chain, &trusted, Some(&ChainId(Hash256([8; 32]))))
            .is_err());
        // Trailing bytes.
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(MainAnchorProof::decode(&trailing).is_err());
    }
}
