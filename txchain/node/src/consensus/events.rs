//! Turns the engine's event stream into `doin_bft_*` metrics and logs. Observes only.

use super::context::DoinContext;
use super::metrics::BftMetrics;
use arc_malachitebft_core_consensus::SignedConsensusMsg;
use arc_malachitebft_core_types::{Round, Vote, VoteType};
use arc_malachitebft_engine::util::events::Event;
use std::time::Instant;
use tokio::sync::broadcast;

fn count_message(metrics: &BftMetrics, direction: &str, msg: &SignedConsensusMsg<DoinContext>) {
    match msg {
        SignedConsensusMsg::Vote(v) => {
            let kind = match v.message.vote_type() {
                VoteType::Prevote => "prevote",
                VoteType::Precommit => "precommit",
            };
            metrics.votes.with_label_values(&[direction, kind]).inc();
        }
        // Proposals this node sends are counted when it builds them, received ones when
        // their block is complete; the signed proposal messages are counted here.
        SignedConsensusMsg::Proposal(_) => {}
    }
}

/// Runs until the engine's event channel closes.
pub(super) async fn watch(
    mut events: broadcast::Receiver<Event<DoinContext>>,
    metrics: BftMetrics,
) {
    let mut round_started: Option<(u64, Round, Instant)> = None;
    loop {
        let event = match events.recv().await {
            Ok(e) => e,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::debug!(
                    missed = n,
                    "consensus metrics fell behind the engine's events"
                );
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        match event {
            Event::StartedRound(height, round, proposer, role) => {
                if let Some((_, _, started)) = round_started.take() {
                    metrics
                        .round_seconds
                        .observe(started.elapsed().as_secs_f64());
                }
                if round.as_u32().is_some_and(|r| r > 0) {
                    metrics.round_changes.inc();
                    tracing::info!(%height, %round, %proposer, "consensus moved to a later round");
                }
                tracing::debug!(%height, %round, %proposer, ?role, "round started");
                round_started = Some((height.0, round, Instant::now()));
            }
            Event::Decided { commit_certificate } => {
                if let Some((h, _, started)) = round_started.take() {
                    if h == commit_certificate.height.0 {
                        metrics
                            .round_seconds
                            .observe(started.elapsed().as_secs_f64());
                    }
                }
            }
            Event::Published(msg) => count_message(&metrics, "sent", &msg),
            Event::Received(msg) => count_message(&metrics, "received", &msg),
            Event::WalReplayBegin(height, entries) => {
                tracing::info!(%height, entries, "replaying the consensus write-ahead log");
            }
            Event::WalCorrupted(e) => {
                tracing::error!(error = %e, "the consensus write-ahead log is corrupted");
            }
            _ => {}
        }
    }
}
