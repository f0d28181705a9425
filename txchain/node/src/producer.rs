//! Block production behind one trait, so the single-validator producer and BFT consensus
//! (`crate::consensus::BftProducer`) are interchangeable for the rest of the node.

use crate::chain::{now_ms, ChainError, TxChain};
use doin_crypto::KeyPair;
use doin_types::Timestamp;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Something that extends the chain until told to stop. Returning an error means production is
/// impossible (e.g. the disk failed); the node treats that task as critical and shuts down.
pub trait BlockProducer: Send + 'static {
    fn run(
        self: Box<Self>,
        chain: Arc<TxChain>,
        shutdown: watch::Receiver<bool>,
    ) -> Pin<Box<dyn Future<Output = Result<(), ChainError>> + Send>>;
}

/// The single-validator producer: one block every `block_time`, whether or not there are
/// transactions (empty blocks keep time and finality moving).
pub struct SoloProducer {
    key: Arc<KeyPair>,
    block_time: Duration,
}

impl SoloProducer {
    pub fn new(key: KeyPair, block_time: Duration) -> SoloProducer {
        SoloProducer {
            key: Arc::new(key),
            block_time,
        }
    }
}

impl BlockProducer for SoloProducer {
    fn run(
        self: Box<Self>,
        chain: Arc<TxChain>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Pin<Box<dyn Future<Output = Result<(), ChainError>> + Send>> {
        Box::pin(async move {
            let me = self.key.public();
            let mut warned = false;
            loop {
                let tip = chain.tip();
                // Next slot: one block time after the parent, never in the past.
                let due = tip
                    .header
                    .time
                    .0
                    .saturating_add(self.block_time.as_millis() as u64);
                let wait = due.saturating_sub(now_ms());
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
                    _ = shutdown.changed() => return Ok(()),
                }
                if *shutdown.borrow() {
                    return Ok(());
                }
                let next = tip.header.height + 1;
                // Alone, this producer's precommit is a quorum only while the height's set is
                // this key alone; once stakes seat others, finality needs the BFT engine.
                let alone = chain
                    .validator_set_at(next)
                    .is_some_and(|set| set.validators().len() == 1 && set.contains(&me));
                if !alone {
                    if !std::mem::replace(&mut warned, true) {
                        tracing::warn!(
                            height = next,
                            "this node's key is not the height's only validator; without consensus enabled it cannot produce blocks"
                        );
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(self.block_time) => continue,
                        _ = shutdown.changed() => return Ok(()),
                    }
                }
                let chain2 = chain.clone();
                let key = self.key.clone();
                let produced = tokio::task::spawn_blocking(move || {
                    chain2.produce_block(&key, Timestamp(now_ms()))
                })
                .await
                .map_err(|e| ChainError::Inconsistent(format!("producer task failed: {e}")))?;
                produced?;
            }
        })
    }
}
