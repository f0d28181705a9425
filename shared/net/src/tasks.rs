//! Small helpers for the chain services' network tasks, which all have the same shape: take the
//! next message until shutdown, wake on a timer or a nudge, and end together.

use crate::{NetHandle, Topic};
use tokio::sync::{broadcast, mpsc, watch, Notify};
use tokio::task::JoinSet;

/// The next item from `rx`, or `None` once the channel closes or shutdown starts.
pub async fn next_or_shutdown<T>(
    rx: &mut mpsc::Receiver<T>,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<T> {
    if *shutdown.borrow() {
        return None;
    }
    tokio::select! {
        item = rx.recv() => item,
        _ = shutdown.changed() => None,
    }
}

/// Waits for `interval` or a nudge on `wake`; false once shutdown starts.
pub async fn tick_or_shutdown(
    interval: std::time::Duration,
    wake: &Notify,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(interval) => {}
        _ = wake.notified() => {}
        _ = shutdown.changed() => {}
    }
    !*shutdown.borrow()
}

/// Waits for every task of a service; the first failure ends the service with its reason.
pub async fn join_service(
    mut tasks: JoinSet<Result<(), String>>,
    service: &str,
) -> Result<(), String> {
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(e) => return Err(format!("{service} task failed: {e}")),
        }
    }
    Ok(())
}

/// Publishes what a chain service announces (what it produced or its own clients submitted)
/// until shutdown. `encode` gives each announcement's topic and bytes, or `None` to skip it
/// (having logged why). Announcements missed because this task fell behind are not resent:
/// peers that missed them catch up by sync.
pub async fn announce<A: Clone>(
    net: NetHandle,
    mut rx: broadcast::Receiver<A>,
    mut shutdown: watch::Receiver<bool>,
    service: &str,
    encode: impl Fn(A) -> Option<(Topic, Vec<u8>)>,
) -> Result<(), String> {
    loop {
        let next = tokio::select! {
            a = rx.recv() => a,
            _ = shutdown.changed() => return Ok(()),
        };
        let (topic, data) = match next {
            Ok(announcement) => match encode(announcement) {
                Some(message) => message,
                None => continue,
            },
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(skipped = n, "{service} announcements fell behind");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return Ok(()),
        };
        if net.publish(topic, data).await.is_err() {
            return Ok(()); // the network stopped: shutdown is under way
        }
    }
}
