//! A transfer block from a peer: decoding never panics; what decodes re-encodes to the same
//! bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(block) = doin_tx_core::Block::decode(data) {
        assert_eq!(block.encode().ok().as_deref(), Some(data));
        let _ = block.header.hash();
        let txs: Result<Vec<_>, _> = block
            .txs
            .iter()
            .cloned()
            .map(doin_tx_core::Tx::from_signed)
            .collect();
        if let Ok(txs) = txs {
            let _ = doin_tx_core::tx_root(&txs);
        }
    }
});
