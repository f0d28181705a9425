//! The main-block producer task: main blocks are made when verified work reaches the
//! threshold, not on a clock, so the task polls the pool and builds when it can.

use crate::chain::{MainChain, MainChainError};
use doin_crypto::KeyPair;
use doin_types::Timestamp;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// Milliseconds since the Unix epoch by this machine's clock.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Tries to produce a block every `poll`, until shutdown. A storage failure ends the task
/// with an error (the node treats it as critical).
pub async fn run_producer(
    chain: Arc<MainChain>,
    key: Arc<KeyPair>,
    poll: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), MainChainError> {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = shutdown.changed() => return Ok(()),
        }
        if *shutdown.borrow() {
            return Ok(());
        }
        let c = chain.clone();
        let k = key.clone();
        tokio::task::spawn_blocking(move || c.produce(&k, Timestamp(now_ms())))
            .await
            .map_err(|e| MainChainError::Inconsistent(format!("producer task failed: {e}")))??;
    }
}
