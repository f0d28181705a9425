//! `[sync] mode = "warp"` at start: a node whose data directory holds no transfer chain fetches
//! a snapshot from its peers (`doin_tx_node::warp`) and imports it before the chain opens; the
//! node then starts as usual and syncs the blocks after the snapshot (`docs/network.md#warp-sync`).
//!
//! Owns the download's temporary network connection (dial-only, so the node's own listen
//! addresses stay free for the network it starts next), the status listener that answers REST
//! `/livez`, `/readyz` and `/v1/node/sync` meanwhile (nothing else is open yet), and the
//! terminal's progress bar. Must not change what is imported: that is
//! `doin_tx_node::snapshot::import`, exactly as for a snapshot file.

use crate::config::NodeConfig;
use anyhow::{anyhow, bail, Context};
use axum::routing::get;
use axum::{Json, Router};
use doin_api::node::{SyncPhase, SyncView};
use doin_http::Problem;
use doin_net::{load_or_create_identity, NetConfig, Network};
use doin_store::KvStore;
use doin_telemetry::Metrics;
use doin_tx_core::snapshot::SnapshotHead;
use doin_tx_core::{ChainParams, GenesisSpec};
use doin_tx_node::snapshot;
use doin_tx_node::store::ChainStore;
use doin_tx_node::warp::{download, WarpConfig, WarpProgress};
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Warp-syncs the transfer chain into `kv` when it holds none yet, through the peers of
/// `net_cfg` (the node's `[p2p]` settings; its listen addresses are not used), stopping early
/// when `stop` completes; returns the progress (for `/v1/node/sync`) when a warp sync ran.
pub async fn warp_if_empty(
    cfg: &NodeConfig,
    kv: Arc<dyn KvStore>,
    spec: &GenesisSpec,
    net_cfg: NetConfig,
    stop_signal: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Option<WarpProgress>> {
    let holds_chain = {
        let kv = kv.clone();
        tokio::task::spawn_blocking(move || ChainStore::new(kv, Default::default()).genesis_spec())
            .await??
            .is_some()
    };
    if holds_chain {
        return Ok(None);
    }
    let params = ChainParams::from_genesis(spec)?;
    let progress = WarpProgress::default();
    let (stop, stopped) = watch::channel(false);
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            stop_signal.await;
            let _ = stop.send(true);
        });
    }
    let status = status_listener(cfg, progress.clone(), stopped.clone()).await?;
    let bar = tokio::spawn(show_progress(progress.clone(), stopped.clone()));

    let result = fetch_and_import(cfg, kv, spec, net_cfg, &params, &progress, stopped).await;
    // The status listener and the bar end either way; the node's own gateway comes next.
    let _ = stop.send(true);
    let _ = bar.await;
    let _ = status.await;
    let head = result?;
    tracing::info!(
        height = head.manifest.height,
        state_root = %head.manifest.state_root.to_hex(),
        "warp sync: state restored and its root checked; syncing the blocks after it"
    );
    Ok(Some(progress))
}

/// Downloads a snapshot through a temporary, dial-only network connection, then imports it.
async fn fetch_and_import(
    cfg: &NodeConfig,
    kv: Arc<dyn KvStore>,
    spec: &GenesisSpec,
    mut net_cfg: NetConfig,
    params: &ChainParams,
    progress: &WarpProgress,
    stopped: watch::Receiver<bool>,
) -> anyhow::Result<SnapshotHead> {
    // Dial-only: this node's listen addresses are for the network it starts after the import.
    net_cfg.listen.clear();
    let max_response_bytes = net_cfg.max_response_bytes;
    let key_path = cfg.data_dir.join("net").join("node_key");
    let key = load_or_create_identity(&key_path)
        .with_context(|| format!("network key {}", key_path.display()))?;
    let network = Network::new(net_cfg, key, Metrics::new().registry()).map_err(|e| anyhow!(e))?;
    let net = network.handle();
    let (net_stop, net_stopped) = watch::channel(false);
    let net_task = tokio::spawn(async move { network.run(net_stopped).await });
    tracing::info!(
        "warp sync: the data directory holds no transfer chain; fetching a snapshot from peers"
    );
    let warp_cfg = WarpConfig {
        dir: cfg.data_dir.clone(),
        max_response_bytes,
        in_flight: cfg.sync.warp_in_flight,
    };
    let fetched = download(&net, params, &warp_cfg, progress, stopped).await;
    let _ = net_stop.send(true);
    match net_task.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "the warp-sync network ended with an error"),
        Err(e) => tracing::warn!(error = %e, "the warp-sync network task failed"),
    }
    let file = match fetched? {
        Some(file) => file,
        None => bail!("stopped during warp sync (the download resumes at the next start)"),
    };

    progress.set_phase(SyncPhase::Restore);
    let imported = {
        let (spec, file, progress) = (spec.clone(), file.clone(), progress.clone());
        tokio::task::spawn_blocking(move || {
            snapshot::import(kv, &spec, &file, &mut |p| {
                progress.update(|v| {
                    v.chunks_done = p.chunks_done as u64;
                    v.bytes_done = p.bytes_done;
                })
            })
        })
        .await?
    };
    // Either way the file is done with: imported, or refused as a whole (its chunks matched a
    // manifest whose state does not make the root), to be fetched again at the next start.
    if let Err(e) = std::fs::remove_file(&file) {
        tracing::warn!(file = %file.display(), error = %e, "cannot remove the warp download");
    }
    let head =
        imported.map_err(|e| anyhow!("warp sync: the downloaded snapshot is refused: {e}"))?;
    progress.update(|v| v.finished = true);
    progress.set_phase(SyncPhase::Blocks);
    Ok(head)
}

/// Answers `/livez`, `/readyz` (503 until the node opens) and `/v1/node/sync` on the REST
/// address while the download runs; ends when `stopped` turns true.
async fn status_listener(
    cfg: &NodeConfig,
    progress: WarpProgress,
    mut stopped: watch::Receiver<bool>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(cfg.rest.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.rest.listen))?;
    let app = Router::new()
        .route("/livez", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(|| async {
                Problem::unavailable(
                    "warp-sync",
                    "the node is fetching a snapshot from its peers (GET /v1/node/sync)",
                )
            }),
        )
        .route(
            "/v1/node/sync",
            get(move || {
                let (phase, warp) = progress.get();
                async move {
                    Json(SyncView {
                        syncing: true,
                        phase,
                        warp: Some(warp),
                        tx: None,
                        main: None,
                    })
                }
            }),
        );
    Ok(tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = stopped.wait_for(|s| *s).await;
        });
        if let Err(e) = serve.await {
            tracing::warn!(error = %e, "the warp-sync status listener failed");
        }
    }))
}

/// A progress bar on a terminal; a log line every ten seconds otherwise.
async fn show_progress(progress: WarpProgress, mut stopped: watch::Receiver<bool>) {
    let bar = std::io::stdout().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(0);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "warp sync {msg:9} [{bar:40}] {bytes}/{total_bytes} ({eta})",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    });
    let mut ticks = 0u64;
    loop {
        let (phase, view) = progress.get();
        let phase = serde_json::to_value(phase)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        match &bar {
            Some(bar) => {
                bar.set_length(view.bytes_total);
                bar.set_position(view.bytes_done);
                bar.set_message(phase);
            }
            None if ticks % 10 == 0 => tracing::info!(
                phase,
                height = view.height,
                chunks_done = view.chunks_done,
                chunks_total = view.chunks_total,
                bytes_done = view.bytes_done,
                bytes_total = view.bytes_total,
                eta_secs = view.eta_secs,
                peers = view.peers,
                "warp sync progress"
            ),
            None => {}
        }
        ticks += 1;
        tokio::select! {
            _ = stopped.wait_for(|s| *s) => break,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}
