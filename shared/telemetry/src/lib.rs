//! Logging and metrics plumbing shared by every service.
//!
//! - `init_tracing`: one call at process start; human-readable or JSON lines.
//! - `Metrics`: one prometheus `Registry` per node (never the global default registry, so
//!   several nodes in one test process keep separate numbers). Metric names follow
//!   `doin_<area>_<what>_<unit>`.
//! - `HttpMetrics`: an axum middleware counting requests and timing them per route template.
//!
//! This crate does not decide *what* to measure for a chain; services register their own metrics
//! on the registry they are given.

// Every dependency in Cargo.toml is used (checked outside test builds, which also see the
// dev-dependencies).
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};
use std::time::Instant;

pub use prometheus;

/// Log output format.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Installs the global tracing subscriber. `filter` uses `RUST_LOG` syntax (e.g. `info,doin=debug`);
/// the `RUST_LOG` environment variable wins when set. Calling it twice is harmless.
pub fn init_tracing(format: LogFormat, filter: &str) {
    use tracing_subscriber::EnvFilter;
    let env = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(filter));
    // Colours only for a terminal: escape codes in files and journald are noise.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let registry = tracing_subscriber::registry().with(env);
    let _ = match format {
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(ansi)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_ansi(false)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
}

#[derive(Debug, thiserror::Error)]
#[error("metric registration failed: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

/// A node's metric registry.
#[derive(Clone, Default)]
pub struct Metrics {
    registry: Registry,
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics {
            registry: Registry::new(),
        }
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Registers any collector.
    pub fn register<C: prometheus::core::Collector + Clone + 'static>(
        &self,
        c: C,
    ) -> Result<C, MetricsError> {
        self.registry.register(Box::new(c.clone()))?;
        Ok(c)
    }

    /// The standard `process_*` metrics of this process: CPU seconds, resident and virtual
    /// memory, open and allowed file descriptors, threads, start time (read from `/proc` at
    /// each scrape).
    pub fn register_process(&self) -> Result<(), MetricsError> {
        self.registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(())
    }

    /// Prometheus text exposition of every registered metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let enc = TextEncoder::new();
        if enc.encode(&self.registry.gather(), &mut buf).is_err() {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// Request counters and latency histograms for an HTTP server, labelled by route template
/// (`/v1/tx/blocks/{id}`, never the raw path, so label cardinality stays bounded).
#[derive(Clone)]
pub struct HttpMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
}

impl HttpMetrics {
    pub fn new(metrics: &Metrics) -> Result<HttpMetrics, MetricsError> {
        let requests = metrics.register(IntCounterVec::new(
            Opts::new("doin_http_requests_total", "HTTP requests served"),
            &["method", "route", "status"],
        )?)?;
        let duration = metrics.register(HistogramVec::new(
            HistogramOpts::new(
                "doin_http_request_duration_seconds",
                "Time to produce an HTTP response (streams: time to first byte)",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["method", "route"],
        )?)?;
        Ok(HttpMetrics { requests, duration })
    }

    /// The axum middleware: `axum::middleware::from_fn_with_state(http_metrics, HttpMetrics::layer)`.
    pub async fn layer(State(m): State<HttpMetrics>, req: Request, next: Next) -> Response {
        let method = req.method().as_str().to_owned();
        let route = req
            .extensions()
            .get::<MatchedPath>()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "unmatched".to_owned());
        let start = Instant::now();
        let resp = next.run(req).await;
        let status = resp.status().as_u16().to_string();
        m.requests
            .with_label_values(&[&method, &route, &status])
            .inc();
        m.duration
            .with_label_values(&[&method, &route])
            .observe(start.elapsed().as_secs_f64());
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_are_separate_per_node() {
        let a = Metrics::new();
        let b = Metrics::new();
        let ca = a
            .register(prometheus::IntCounter::new("doin_test_things_total", "t").unwrap())
            .unwrap();
        let _cb = b
            .register(prometheus::IntCounter::new("doin_test_things_total", "t").unwrap())
            .unwrap();
        ca.inc();
        assert!(a.render().contains("doin_test_things_total 1"));
        assert!(b.render().contains("doin_test_things_total 0"));
    }
}
