//! The node's own gauges: which build it is, how far each chain is behind its best peer, what
//! each service's column families take on disk, and what is left on the data directory's
//! filesystem; refreshed every [`REFRESH`]. The `process_*` metrics (CPU, memory, file
//! descriptors) come from the registry's process collector.
//!
//! It only reads: it must not act on what it measures (alerts do that, outside the node).

use doin_store::{Cf, KvStore};
use doin_sync::SyncState;
use doin_telemetry::prometheus::{IntGauge, IntGaugeVec, Opts};
use doin_telemetry::{Metrics, MetricsError};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often the gauges are refreshed: fine for dashboards, cheap for the node.
pub const REFRESH: Duration = Duration::from_secs(10);

/// The gauges, registered once.
#[derive(Clone)]
pub struct NodeGauges {
    sync_distance: IntGaugeVec,
    store_bytes: IntGaugeVec,
    disk_free: IntGauge,
    disk_total: IntGauge,
}

/// What the gauges read.
#[derive(Clone)]
pub struct GaugeSources {
    pub tx_sync: Option<SyncState>,
    pub main_sync: Option<SyncState>,
    pub store: Arc<dyn KvStore>,
    /// Each service's column families, by the name the `store` label gives it.
    pub stores: Vec<(&'static str, Vec<Cf>)>,
    pub data_dir: PathBuf,
}

impl NodeGauges {
    /// Registers the gauges, `doin_build_info` and the process metrics on `metrics`.
    pub fn register(metrics: &Metrics) -> Result<NodeGauges, MetricsError> {
        let build = metrics.register(IntGaugeVec::new(
            Opts::new(
                "doin_build_info",
                "This build: always 1, its version as a label",
            ),
            &["version"],
        )?)?;
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        metrics.register_process()?;
        Ok(NodeGauges {
            sync_distance: metrics.register(IntGaugeVec::new(
                Opts::new(
                    "doin_sync_distance_blocks",
                    "Blocks the best peer's tip is ahead of this node's, per chain (0 when level, \
                     ahead, or no peer has answered)",
                ),
                &["chain"],
            )?)?,
            store_bytes: metrics.register(IntGaugeVec::new(
                Opts::new(
                    "doin_store_disk_bytes",
                    "Bytes each service's column families take on disk (live table files)",
                ),
                &["store"],
            )?)?,
            disk_free: metrics.register(IntGauge::new(
                "doin_disk_free_bytes",
                "Bytes free for this node on the data directory's filesystem",
            )?)?,
            disk_total: metrics.register(IntGauge::new(
                "doin_disk_total_bytes",
                "Size of the data directory's filesystem",
            )?)?,
        })
    }

    /// Reads every source once.
    pub fn refresh(&self, s: &GaugeSources) {
        for (chain, sync) in [("tx", &s.tx_sync), ("main", &s.main_sync)] {
            if let Some(sync) = sync {
                let r = sync.report();
                let distance = r
                    .best_peer_height
                    .map_or(0, |best| best.saturating_sub(r.local_height));
                self.sync_distance
                    .with_label_values(&[chain])
                    .set(i64::try_from(distance).unwrap_or(i64::MAX));
            }
        }
        for (name, cfs) in &s.stores {
            if let Some(bytes) = s.store.disk_bytes(cfs) {
                self.store_bytes
                    .with_label_values(&[name])
                    .set(i64::try_from(bytes).unwrap_or(i64::MAX));
            }
        }
        match rustix::fs::statvfs(&s.data_dir) {
            Ok(fs) => {
                let block = fs.f_frsize;
                let gauge =
                    |blocks: u64| i64::try_from(blocks.saturating_mul(block)).unwrap_or(i64::MAX);
                self.disk_free.set(gauge(fs.f_bavail));
                self.disk_total.set(gauge(fs.f_blocks));
            }
            Err(e) => {
                tracing::debug!(error = %e, dir = %s.data_dir.display(), "cannot read the data directory's filesystem")
            }
        }
    }

    /// Refreshes every [`REFRESH`] until shutdown.
    pub async fn run(
        self,
        sources: GaugeSources,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), String> {
        let mut tick = tokio::time::interval(REFRESH);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let (gauges, sources) = (self.clone(), sources.clone());
                    // statvfs and RocksDB properties are quick, but they are blocking calls.
                    let _ = tokio::task::spawn_blocking(move || gauges.refresh(&sources)).await;
                }
                _ = shutdown.changed() => return Ok(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_info_process_disk_and_store_gauges_read_real_values() {
        let metrics = Metrics::new();
        let gauges = NodeGauges::register(&metrics).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn KvStore> = Arc::new(
            doin_store::RocksStore::open(
                &dir.path().join("db"),
                &["a"],
                &doin_store::RocksConfig::default(),
            )
            .unwrap(),
        );
        let mut b = doin_store::WriteBatch::new();
        for i in 0..500u32 {
            b.put("a", i.to_be_bytes().to_vec(), vec![1; 64]);
        }
        store.write(b, doin_store::Durability::Sync).unwrap();
        store.flush().unwrap();
        gauges.refresh(&GaugeSources {
            tx_sync: None,
            main_sync: None,
            store,
            stores: vec![("tx", vec!["a"])],
            data_dir: dir.path().to_path_buf(),
        });
        let text = metrics.render();
        let value = |name: &str| -> f64 {
            text.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} missing:\n{text}"))
        };
        assert_eq!(
            value(&format!(
                "doin_build_info{{version=\"{}\"}}",
                env!("CARGO_PKG_VERSION")
            )),
            1.0
        );
        assert!(value("doin_store_disk_bytes{store=\"tx\"}") > 500.0);
        assert!(value("doin_disk_total_bytes") >= value("doin_disk_free_bytes"));
        assert!(value("doin_disk_free_bytes") > 0.0);
        assert!(value("process_resident_memory_bytes") > 0.0);
        assert!(value("process_open_fds") > 0.0);
    }
}
