//! Consensus metrics (`doin_bft_*`), fed from the engine's event stream and the host loop.

use doin_telemetry::prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts,
};
use doin_telemetry::{Metrics, MetricsError};

#[derive(Clone)]
pub struct BftMetrics {
    /// Time from the start of a round to the start of the next round or the decision.
    pub round_seconds: Histogram,
    /// Rounds started beyond round 0: each one is a round that timed out or failed.
    pub round_changes: IntCounter,
    pub height: IntGauge,
    pub round: IntGauge,
    /// Proposals by direction (`sent`, `received`).
    pub proposals: IntCounterVec,
    /// Votes by direction and kind (`prevote`, `precommit`).
    pub votes: IntCounterVec,
    /// Proposed blocks this node refused (invalid on its tip).
    pub proposals_rejected: IntCounter,
    pub decided: IntCounter,
    /// Heights the engine is ahead of the committed tip (should be 1 when in step).
    pub height_lag: IntGauge,
    pub equivocations: IntCounter,
}

impl BftMetrics {
    pub fn register(m: &Metrics) -> Result<BftMetrics, MetricsError> {
        Ok(BftMetrics {
            round_seconds: m.register(Histogram::with_opts(
                HistogramOpts::new(
                    "doin_bft_round_duration_seconds",
                    "Duration of a consensus round (start to next round or decision)",
                )
                .buckets(vec![
                    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0,
                ]),
            )?)?,
            round_changes: m.register(IntCounter::new(
                "doin_bft_round_timeouts_total",
                "Rounds started after round 0 of a height (a round that timed out or failed)",
            )?)?,
            height: m.register(IntGauge::new(
                "doin_bft_height_blocks",
                "Height consensus is working on",
            )?)?,
            round: m.register(IntGauge::new(
                "doin_bft_round",
                "Round consensus is in at its current height",
            )?)?,
            proposals: m.register(IntCounterVec::new(
                Opts::new(
                    "doin_bft_proposals_total",
                    "Signed proposals sent and received",
                ),
                &["direction"],
            )?)?,
            votes: m.register(IntCounterVec::new(
                Opts::new("doin_bft_votes_total", "Signed votes sent and received"),
                &["direction", "kind"],
            )?)?,
            proposals_rejected: m.register(IntCounter::new(
                "doin_bft_proposals_rejected_total",
                "Proposed blocks that failed validation on this node's tip",
            )?)?,
            decided: m.register(IntCounter::new(
                "doin_bft_decisions_total",
                "Heights decided by consensus and committed by this node",
            )?)?,
            height_lag: m.register(IntGauge::new(
                "doin_bft_height_lag_blocks",
                "Consensus height minus the committed tip height (1 when in step)",
            )?)?,
            equivocations: m.register(IntCounter::new(
                "doin_bft_equivocations_total",
                "Double votes observed by this node's engine",
            )?)?,
        })
    }
}
