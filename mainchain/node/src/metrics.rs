//! Main-chain metrics, registered on the node's registry.

use doin_telemetry::prometheus::{
    Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts,
};
use doin_telemetry::{Metrics, MetricsError};

#[derive(Clone)]
pub struct MainMetrics {
    pub height: IntGauge,
    pub tx_checkpoint_height: IntGauge,
    pub blocks_committed: IntCounter,
    pub threshold: Gauge,
    pub cumulative_work: Gauge,
    pub pending_optimae: IntGauge,
    pub pool_messages: IntGauge,
    pub submissions: IntCounterVec,
    pub decided: IntCounterVec,
    pub submit_seconds: Histogram,
    pub block_build_seconds: Histogram,
    pub block_commit_seconds: Histogram,
    pub reorgs: IntCounter,
    pub reorg_disconnected: IntCounter,
    pub side_blocks: IntGauge,
}

fn seconds(name: &str, help: &str) -> Result<Histogram, MetricsError> {
    Ok(Histogram::with_opts(
        HistogramOpts::new(name, help).buckets(vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
        ]),
    )?)
}

impl MainMetrics {
    pub fn register(m: &Metrics) -> Result<MainMetrics, MetricsError> {
        Ok(MainMetrics {
            height: m.register(IntGauge::new(
                "doin_main_height_blocks",
                "Height of the main-chain tip",
            )?)?,
            tx_checkpoint_height: m.register(IntGauge::new(
                "doin_main_tx_checkpoint_height_blocks",
                "Transfer-chain height the main-chain tip checkpoints",
            )?)?,
            blocks_committed: m.register(IntCounter::new(
                "doin_main_blocks_committed_total",
                "Main-chain blocks committed by this process",
            )?)?,
            threshold: m.register(Gauge::new(
                "doin_main_threshold_work",
                "Counted work the next main block must reach",
            )?)?,
            cumulative_work: m.register(Gauge::new(
                "doin_main_cumulative_work",
                "Counted work from genesis through the tip",
            )?)?,
            pending_optimae: m.register(IntGauge::new(
                "doin_main_pending_optimae",
                "Revealed optimae awaiting a verdict",
            )?)?,
            pool_messages: m.register(IntGauge::new(
                "doin_main_pool_messages",
                "Messages waiting for a main block",
            )?)?,
            submissions: m.register(IntCounterVec::new(
                Opts::new(
                    "doin_main_submissions_total",
                    "Main-chain messages submitted, by kind and outcome",
                ),
                &["kind", "outcome"],
            )?)?,
            decided: m.register(IntCounterVec::new(
                Opts::new(
                    "doin_main_optimae_decided_total",
                    "Optimae decisions in committed blocks, by outcome",
                ),
                &["outcome"],
            )?)?,
            submit_seconds: m.register(seconds(
                "doin_main_submit_seconds",
                "Time to check and pool one submitted message",
            )?)?,
            block_build_seconds: m.register(seconds(
                "doin_main_block_build_seconds",
                "Time to build and self-check a main block",
            )?)?,
            block_commit_seconds: m.register(seconds(
                "doin_main_block_commit_seconds",
                "Time to write a main block's batch (fsync included)",
            )?)?,
            reorgs: m.register(IntCounter::new(
                "doin_main_reorgs_total",
                "Switches of the main chain to a branch with more work",
            )?)?,
            reorg_disconnected: m.register(IntCounter::new(
                "doin_main_reorg_disconnected_blocks_total",
                "Main blocks taken off the best chain by reorganisations",
            )?)?,
            side_blocks: m.register(IntGauge::new(
                "doin_main_side_blocks",
                "Main blocks held on branches other than the best chain",
            )?)?,
        })
    }
}
