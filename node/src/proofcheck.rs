//! `doin wallet proof` and `doin wallet verify-proof`: fetching a transaction's inclusion proof
//! and checking one offline against a genesis file.
//!
//! The check trusts only the genesis file (chain id and validators) and the proof bytes; the
//! convenience fields of a served proof (`tx_id`, `height`, `block_hash`) must agree with what
//! the proof itself proves, or the proof is refused.

use anyhow::{anyhow, bail, Context};
use doin_tx_core::{GenesisSpec, ProvenInclusion, TxInclusionProof, TX_PROOF_FORMAT};
use serde_json::Value;

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
