//! Transactions the hub signs: opening its channels, challenging stale closes, settling,
//! claiming HTLCs. Pure: the caller picks the nonce and the base fee.

use doin_crypto::KeyPair;
use doin_tx_core::{Tx, TxBody, TxPayload};
use doin_types::{Amount, ChainId};

/// Tip per weight unit the hub offers, so its transactions are not the last picked.
const TIP_PER_WEIGHT: u64 = 1;

/// Signs `payload` from the hub's key with `nonce`, paying up to twice `base_fee` (base fees
/// move by at most an eighth per block, so this covers several blocks of rises).
pub fn sign(
    key: &KeyPair,
    chain_id: ChainId,
    nonce: u64,
    base_fee: Amount,
    payload: TxPayload,
) -> Result<Vec<u8>, String> {
    let max_fee = base_fee
        .checked_mul(2)
        .and_then(|f| f.checked_add(Amount::from_base_units(TIP_PER_WEIGHT)))
        .map_err(|e| e.to_string())?;
    let body = TxBody {
        chain_id,
        sender: key.public(),
        nonce,
        max_fee_per_weight: max_fee,
        max_priority_fee_per_weight: Amount::from_base_units(TIP_PER_WEIGHT),
        payload,
    };
    let signed = body.sign(key).map_err(|e| e.to_string())?;
    Ok(Tx::from_signed(signed)
        .map_err(|e| e.to_string())?
        .bytes()
        .to_vec())
}
