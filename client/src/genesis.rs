//! Reading genesis files: what a node starts from and what a wallet checks proofs against.

use anyhow::Context;
use doin_main_core::MainGenesisSpec;
use doin_tx_core::GenesisSpec;
use std::path::Path;

/// Reads and validates a main-chain genesis specification from a JSON file.
pub fn read_main_genesis(path: &Path) -> anyhow::Result<MainGenesisSpec> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read main genesis file {}", path.display()))?;
    let spec: MainGenesisSpec = serde_json::from_str(&text).with_context(|| {
        format!(
            "main genesis file {} is not a valid specification",
            path.display()
        )
    })?;
    spec.validate()?;
    Ok(spec)
}

/// Reads and validates a transfer-chain genesis specification from a JSON file.
pub fn read_genesis(path: &Path) -> anyhow::Result<GenesisSpec> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read genesis file {}", path.display()))?;
    let spec: GenesisSpec = serde_json::from_str(&text).with_context(|| {
        format!(
            "genesis file {} is not a valid specification",
            path.display()
        )
    })?;
    spec.validate()?;
    Ok(spec)
}
