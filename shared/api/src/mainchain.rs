//! The main chain's REST types (`/v1/main/...`).

use doin_types::Amount;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Main-chain identity, tip and parameters.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MainInfo {
    pub network: String,
    /// Main chain id (hex): the first field of every signed main-chain message.
    pub chain_id: String,
    pub chain_name: String,
    pub height: u64,
    pub tip_hash: String,
    /// Counted work the next block must reach.
    pub threshold: String,
    pub cumulative_work: String,
    pub target_block_time_ms: u64,
    pub carrier_interval_ms: u64,
    pub reveal_window: u64,
    pub verdict_window: u64,
    pub pending_optimae: usize,
    pub pool_messages: usize,
    #[schema(value_type = String)]
    pub minted: Amount,
}

#[derive(Debug, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Points of metric history to return (1–500, default 50), newest first.
    #[param(minimum = 1, maximum = 500)]
    pub history: Option<usize>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(as = MainCommitView)]
pub struct CommitView {
    pub id: String,
    pub domain: String,
    pub optimizer: String,
    /// `pooled` (waiting for a block), `committed` (on chain, not revealed), `revealed`.
    pub status: String,
    pub height: Option<u64>,
    pub optimae_id: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RoleQuery {
    /// `evaluator` or `optimizer` (default: both).
    #[param(pattern = "^(evaluator|optimizer)$")]
    pub role: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ParticipantView {
    pub address: String,
    /// `evaluator` or `optimizer`.
    pub role: String,
    /// Reputation decayed to the tip height.
    pub reputation: String,
    /// min(1, ln(1+r)/ln 11): the factor applied to this optimizer's counted work.
    pub reputation_factor: String,
    #[schema(value_type = String)]
    pub rewards: Amount,
    /// Domains an evaluator may verify.
    pub domains: Vec<String>,
    #[schema(value_type = Option<String>)]
    pub stake: Option<Amount>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RewardsView {
    pub address: String,
    /// Coinbase paid to this address on the main chain so far.
    #[schema(value_type = String)]
    pub total: Amount,
    pub reputation: String,
    pub height: u64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StatsView {
    pub height: u64,
    pub threshold: String,
    /// The controller's EMA of block times.
    pub ema_block_time_ms: u64,
    pub target_block_time_ms: u64,
    /// Over the last `window` blocks:
    pub window: u64,
    pub mean_block_time_ms: Option<u64>,
    pub min_block_time_ms: Option<u64>,
    pub max_block_time_ms: Option<u64>,
    pub work_blocks: u64,
    pub carrier_blocks: u64,
    /// Thresholds of those blocks, oldest first.
    pub thresholds: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = MainMessageRequest)]
pub struct MessageRequest {
    /// The signed message: its canonical encoding in hex (see docs/mainchain.md).
    #[schema(format = "doin-main-message", pattern = r"^(0x)?([0-9a-fA-F]{2})+$")]
    pub message: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(as = MainMessageResponse)]
pub struct MessageResponse {
    /// Commit id, optimae id (for a reveal), domain-registration id or vote id.
    pub id: String,
    /// `pooled` (new) or `known` (already pooled or on chain).
    pub status: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PayoutView {
    /// `optimizer`, `evaluator` or `producer`.
    pub role: String,
    pub address: String,
    #[schema(value_type = String)]
    pub amount: Amount,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VerdictView {
    pub optimae_id: String,
    pub round: u8,
    pub votes: Vec<VoteView>,
}

/// A page of main-chain blocks (`GET /v1/main/blocks`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MainBlocksPage {
    /// Newest first.
    pub items: Vec<MainBlockView>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MainBlockView {
    pub height: u64,
    pub hash: String,
    pub parent: String,
    pub time: u64,
    pub producer: String,
    /// `work` (met the threshold) or `carrier` (commits/reveals only, no work, no reward).
    pub kind: String,
    pub threshold: String,
    pub counted_work: String,
    pub cumulative_work: String,
    pub state_root: String,
    pub registrations: Vec<String>,
    /// Commit ids.
    pub commits: Vec<String>,
    /// Optimae ids revealed.
    pub reveals: Vec<String>,
    pub verdicts: Vec<VerdictView>,
    pub coinbase: Vec<PayoutView>,
    /// Blocks on top of this one.
    pub confirmations: u64,
    /// The final transfer-chain block this block checkpoints (height 0 and an all-zero hash
    /// before any).
    pub tx_checkpoint: CheckpointView,
    /// `final` once a final transfer block anchors this block and it is at least 2 deep
    /// (one block on top); `included` before.
    pub status: String,
    /// The first final transfer block that anchors this block.
    pub anchored_by: Option<CheckpointView>,
}

/// A transfer-chain block named by a main block.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CheckpointView {
    pub height: u64,
    pub hash: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(as = MainHistoryView)]
pub struct HistoryView {
    pub height: u64,
    pub optimae_id: String,
    pub metric: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DomainView {
    pub id: String,
    pub metric: String,
    /// `minimize` or `maximize`.
    pub direction: String,
    /// `sphere`, `rosenbrock`, `rastrigin`, `least_squares` or `external:<plugin>`.
    pub objective: String,
    pub dim: u32,
    pub scale: String,
    pub weight: String,
    pub tolerance: String,
    pub baseline: String,
    pub best_metric: String,
    pub best_params: Vec<String>,
    pub best_optimae: Option<String>,
    pub registered_at: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub eligible_evaluators: usize,
    #[schema(value_type = String)]
    pub verification_fee: Amount,
    /// Newest first; only in single-domain answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<HistoryView>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VoteView {
    pub round: u8,
    pub evaluator: String,
    pub metric: String,
    /// Whether the vote was within tolerance of the median (absent before a decision).
    pub agreed: Option<bool>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OptimaeView {
    pub id: String,
    pub commit_id: String,
    pub domain: String,
    pub optimizer: String,
    /// `revealed`, `verifying`, `accepted`, `rejected`, `inconclusive` or `expired`.
    pub status: String,
    pub round: u8,
    pub params: Vec<String>,
    pub reported_metric: String,
    pub verified_metric: Option<String>,
    /// Counted work before the per-domain cap (accepted only).
    pub work: Option<String>,
    pub new_best: bool,
    pub committed_at: Option<u64>,
    pub revealed_at: u64,
    pub decided_at: Option<u64>,
    /// Votes recorded with the decision(s).
    pub votes: Vec<VoteView>,
    /// Votes waiting in this node's pool for the current round.
    pub pooled_votes: usize,
    /// Evaluators selected for the current round (once known).
    pub quorum: Option<Vec<String>>,
}
