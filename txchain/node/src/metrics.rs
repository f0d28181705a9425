//! Transfer-chain metrics, registered on the node's registry.

use doin_telemetry::prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts,
};
use doin_telemetry::{Metrics, MetricsError};

#[derive(Clone)]
pub struct TxMetrics {
    pub height: IntGauge,
    pub blocks_committed: IntCounter,
    pub txs_included: IntCounter,
    pub block_commit_seconds: Histogram,
    pub block_build_seconds: Histogram,
    pub block_txs: Histogram,
    pub mempool_txs: IntGauge,
    pub mempool_bytes: IntGauge,
    pub submissions: IntCounterVec,
    pub base_fee: IntGauge,
    pub burned: IntGauge,
    pub main_anchor_height: IntGauge,
    pub imported: IntGauge,
    pub staked: IntGauge,
    pub certified_height: IntGauge,
    pub commit_signers: IntGauge,
}

impl TxMetrics {
    pub fn register(m: &Metrics) -> Result<TxMetrics, MetricsError> {
        Ok(TxMetrics {
            height: m.register(IntGauge::new(
                "doin_tx_height_blocks",
                "Height of the transfer-chain tip",
            )?)?,
            blocks_committed: m.register(IntCounter::new(
                "doin_tx_blocks_committed_total",
                "Transfer-chain blocks committed by this process",
            )?)?,
            txs_included: m.register(IntCounter::new(
                "doin_tx_transactions_included_total",
                "Transactions in blocks committed by this process",
            )?)?,
            block_commit_seconds: m.register(Histogram::with_opts(
                HistogramOpts::new(
                    "doin_tx_block_commit_seconds",
                    "Time to write a block's batch to disk (fsync included)",
                )
                .buckets(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ]),
            )?)?,
            block_build_seconds: m.register(Histogram::with_opts(
                HistogramOpts::new(
                    "doin_tx_block_build_seconds",
                    "Time to select, apply and root a new block",
                )
                .buckets(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ]),
            )?)?,
            block_txs: m.register(Histogram::with_opts(
                HistogramOpts::new(
                    "doin_tx_block_transactions",
                    "Transactions per committed block",
                )
                .buckets(vec![0.0, 1.0, 10.0, 100.0, 1000.0, 5000.0]),
            )?)?,
            mempool_txs: m.register(IntGauge::new(
                "doin_tx_mempool_transactions",
                "Pending transactions in the mempool",
            )?)?,
            mempool_bytes: m.register(IntGauge::new(
                "doin_tx_mempool_bytes",
                "Encoded bytes of pending transactions",
            )?)?,
            submissions: m.register(IntCounterVec::new(
                Opts::new(
                    "doin_tx_submissions_total",
                    "Transaction submissions by outcome (accepted, known, or the error kind)",
                ),
                &["outcome"],
            )?)?,
            base_fee: m.register(IntGauge::new(
                "doin_tx_base_fee_base_units",
                "Base fee per weight unit of the next block",
            )?)?,
            burned: m.register(IntGauge::new(
                "doin_tx_burned_base_units",
                "Total burned since genesis: base fees and slashed stake",
            )?)?,
            main_anchor_height: m.register(IntGauge::new(
                "doin_tx_main_anchor_height_blocks",
                "Newest main-chain block whose effects the tip's state includes",
            )?)?,
            imported: m.register(IntGauge::new(
                "doin_tx_imported_base_units",
                "Total credited by anchored main-chain blocks (coinbase) since genesis",
            )?)?,
            staked: m.register(IntGauge::new(
                "doin_tx_staked_base_units",
                "Coins locked in stakes (bonded plus unbonding)",
            )?)?,
            certified_height: m.register(IntGauge::new(
                "doin_tx_certified_height_blocks",
                "Highest block whose commit certificate this node holds (its finality proof)",
            )?)?,
            commit_signers: m.register(IntGauge::new(
                "doin_tx_commit_signers",
                "Validators whose precommits the newest certificate holds",
            )?)?,
        })
    }
}
