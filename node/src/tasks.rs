//! A small task manager: named tasks, one shutdown signal, and the rule that when a critical
//! task ends before shutdown was asked for, the whole node shuts down (a node that silently
//! stopped producing or serving would be worse than one that exits and gets restarted).

use std::future::Future;
use tokio::sync::watch;
use tokio::task::JoinSet;

pub struct TaskManager {
    tasks: JoinSet<(String, bool, Result<(), String>)>,
    shutdown_tx: watch::Sender<bool>,
    shutdown_rx: watch::Receiver<bool>,
}

/// How the node stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    /// Asked to (signal or request).
    Requested,
    /// A critical task ended on its own.
    CriticalFailure(String),
}

impl Default for TaskManager {
    fn default() -> Self {
        Self::new()
    }
}

impl TaskManager {
    pub fn new() -> TaskManager {
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        TaskManager {
            tasks: JoinSet::new(),
            shutdown_tx,
            shutdown_rx,
        }
    }

    /// A receiver that turns `true` when shutdown starts.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown_rx.clone()
    }

    pub fn trigger_shutdown(&self) {
        let _ = self.shutdown_tx.send(true);
    }

    /// Spawns a task whose end (success or not) before shutdown stops the node.
    pub fn spawn_critical<F>(&mut self, name: &str, fut: F)
    where
        F: Future<Output = Result<(), String>> + Send + 'static,
    {
        let name = name.to_string();
        self.tasks.spawn(async move { (name, true, fut.await) });
    }

    /// Spawns a task whose failure is logged but does not stop the node.
    pub fn spawn<F>(&mut self, name: &str, fut: F)
    where
        F: Future<Output = Result<(), String>> + Send + 'static,
    {
        let name = name.to_string();
        self.tasks.spawn(async move { (name, false, fut.await) });
    }

    /// Runs until shutdown is requested (through `shutdown_requested`) or a critical task
    /// ends, then signals every task to stop and waits for them (bounded by `grace`).
    pub async fn run_until<S: Future<Output = ()>>(
        mut self,
        shutdown_requested: S,
        grace: std::time::Duration,
    ) -> Exit {
        tokio::pin!(shutdown_requested);
        let exit = loop {
            tokio::select! {
                _ = &mut shutdown_requested => break Exit::Requested,
                joined = self.tasks.join_next() => match joined {
                    None => break Exit::Requested,
                    Some(Ok((name, critical, result))) => {
                        match (&result, critical) {
                            (Err(e), true) => break Exit::CriticalFailure(format!("{name} failed: {e}")),
                            (Ok(()), true) if !*self.shutdown_rx.borrow() => {
                                break Exit::CriticalFailure(format!("{name} stopped unexpectedly"))
                            }
                            (Err(e), false) => tracing::warn!(task = %name, error = %e, "task failed"),
                            _ => {}
                        }
                    }
                    Some(Err(join_err)) => {
                        break Exit::CriticalFailure(format!("a task panicked: {join_err}"));
                    }
                }
            }
        };
        self.trigger_shutdown();
        let drain = async {
            while let Some(j) = self.tasks.join_next().await {
                if let Ok((name, _, Err(e))) = j {
                    tracing::warn!(task = %name, error = %e, "task ended with an error during shutdown");
                }
            }
        };
        if tokio::time::timeout(grace, drain).await.is_err() {
            tracing::warn!("some tasks did not stop within the grace period; aborting them");
            self.tasks.abort_all();
        }
        exit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_failing_critical_task_stops_everything() {
        let mut tm = TaskManager::new();
        let mut sig = tm.shutdown_signal();
        tm.spawn("waits", async move {
            let _ = sig.changed().await;
            Ok(())
        });
        tm.spawn_critical("dies", async { Err("disk on fire".to_string()) });
        let exit = tm
            .run_until(std::future::pending(), Duration::from_secs(5))
            .await;
        assert_eq!(
            exit,
            Exit::CriticalFailure("dies failed: disk on fire".into())
        );
    }

    #[tokio::test]
    async fn requested_shutdown_reaches_tasks() {
        let mut tm = TaskManager::new();
        let mut sig = tm.shutdown_signal();
        tm.spawn_critical("server", async move {
            let _ = sig.changed().await;
            Ok(())
        });
        let exit = tm
            .run_until(
                tokio::time::sleep(Duration::from_millis(20)),
                Duration::from_secs(5),
            )
            .await;
        assert_eq!(exit, Exit::Requested);
    }
}
