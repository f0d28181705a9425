//! The hub's metrics (`doin_hub_*`), registered on the node's registry.
//!
//! The store times every write (queue to fsync, per input, and the fsync itself, per batch);
//! the hub counts its ledger entries, handled messages and watchtower actions, and sets its
//! channel gauges once per watch pass. Metrics made with [`HubMetrics::unregistered`] are
//! counted but exported nowhere (tests, benchmarks).

use doin_telemetry::prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
};
use doin_telemetry::{Metrics, MetricsError};

#[derive(Clone)]
pub struct HubMetrics {
    /// From an input's batch being queued to it being on disk (what a caller waits).
    pub persist_seconds: Histogram,
    /// One group-commit write with its fsync.
    pub fsync_seconds: Histogram,
    /// Inputs that shared one fsync.
    pub commit_inputs: Histogram,
    /// Ledger entries by kind, once durable.
    pub payments: IntCounterVec,
    /// Milli-units of ledger entries by kind.
    pub payments_msat: IntCounterVec,
    /// Peers' messages by outcome (`accepted`, `rejected`, `error`).
    pub messages: IntCounterVec,
    /// Watchtower actions by kind.
    pub watch_actions: IntCounterVec,
    /// Watch passes whose transaction the chain refused (tried again next pass).
    pub watch_failures: IntCounter,
    /// Channels by role and status.
    pub channels: IntGaugeVec,
    /// Milli-units the hub owes payees and has not proposed yet.
    pub owed_msat: IntGauge,
    /// Streams not closed.
    pub open_streams: IntGauge,
    /// What can still move over open channels, by direction: `outbound` (the hub to payees)
    /// and `inbound` (payers to the hub).
    pub liquidity_msat: IntGaugeVec,
}

fn persist_buckets() -> Vec<f64> {
    vec![
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
    ]
}

impl HubMetrics {
    fn build() -> Result<HubMetrics, MetricsError> {
        Ok(HubMetrics {
            persist_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "doin_hub_persist_seconds",
                    "Time from an input's state being queued to it being fsynced",
                )
                .buckets(persist_buckets()),
            )?,
            fsync_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "doin_hub_fsync_seconds",
                    "Time of one group-commit write with its fsync",
                )
                .buckets(persist_buckets()),
            )?,
            commit_inputs: Histogram::with_opts(
                HistogramOpts::new(
                    "doin_hub_commit_inputs",
                    "Inputs written together under one fsync",
                )
                .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]),
            )?,
            payments: IntCounterVec::new(
                Opts::new("doin_hub_payments_total", "Hub ledger entries by kind"),
                &["kind"],
            )?,
            payments_msat: IntCounterVec::new(
                Opts::new(
                    "doin_hub_payments_msat_total",
                    "Milli-units of hub ledger entries by kind",
                ),
                &["kind"],
            )?,
            messages: IntCounterVec::new(
                Opts::new(
                    "doin_hub_messages_total",
                    "Channel messages from peers by outcome",
                ),
                &["outcome"],
            )?,
            watch_actions: IntCounterVec::new(
                Opts::new(
                    "doin_hub_watch_actions_total",
                    "Watchtower actions (confirmed, challenged, claimed, settled, ...)",
                ),
                &["action"],
            )?,
            watch_failures: IntCounter::new(
                "doin_hub_watch_failures_total",
                "Watch passes in which the chain refused a transaction the watchtower submitted \
                 (a challenge, claim, settlement, opening or return; tried again next pass)",
            )?,
            channels: IntGaugeVec::new(
                Opts::new("doin_hub_channels", "Hub channels by role and status"),
                &["role", "status"],
            )?,
            owed_msat: IntGauge::new(
                "doin_hub_owed_msat",
                "Milli-units owed to payees and not yet proposed",
            )?,
            open_streams: IntGauge::new("doin_hub_open_streams", "Streams not closed")?,
            liquidity_msat: IntGaugeVec::new(
                Opts::new(
                    "doin_hub_liquidity_msat",
                    "Milli-units that can still move over open channels: outbound (what the hub \
                     can still pay payees, less what it owes them) and inbound (what payers can \
                     still pay the hub)",
                ),
                &["direction"],
            )?,
        })
    }

    /// Metrics registered on the node's registry.
    pub fn register(m: &Metrics) -> Result<HubMetrics, MetricsError> {
        let h = Self::build()?;
        m.register(h.persist_seconds.clone())?;
        m.register(h.fsync_seconds.clone())?;
        m.register(h.commit_inputs.clone())?;
        m.register(h.payments.clone())?;
        m.register(h.payments_msat.clone())?;
        m.register(h.messages.clone())?;
        m.register(h.watch_actions.clone())?;
        m.register(h.watch_failures.clone())?;
        m.register(h.channels.clone())?;
        m.register(h.owed_msat.clone())?;
        m.register(h.open_streams.clone())?;
        m.register(h.liquidity_msat.clone())?;
        Ok(h)
    }

    /// Metrics that are kept but exported nowhere.
    pub fn unregistered() -> Result<HubMetrics, MetricsError> {
        Self::build()
    }
}
