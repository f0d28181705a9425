//! Errors of the main-chain rules. Each variant is one rule, so tests (and REST problem types)
//! can name exactly which rule a block or message broke.

use crate::domain::DomainError;
use crate::fixed::Fx;
use crate::msg::MsgError;
use doin_types::Timestamp;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    #[error("cannot encode genesis: {0}")]
    Encode(String),
    #[error("bad consensus parameters: {0}")]
    BadParams(&'static str),
    #[error("bad genesis domain: {0}")]
    Domain(DomainError),
    #[error("domain {0} is listed twice")]
    DuplicateDomain(String),
    #[error("an evaluator entry has an invalid or duplicate key, or names an unknown domain")]
    BadEvaluator,
    #[error("an initial reputation has an invalid key or a negative value")]
    BadReputation,
}

/// Why one message (registration, commit, reveal or verdict) is invalid at a given height.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ItemError {
    #[error(transparent)]
    Message(#[from] MsgError),
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("domain {0} is already registered")]
    DomainExists(String),
    #[error("unknown domain {0}")]
    UnknownDomain(String),
    #[error("this commit is already on chain")]
    DuplicateCommit,
    #[error("no pending commit with this id (never made, already revealed, or expired)")]
    RevealWithoutCommit,
    #[error("reveal in the same block as its commit; reveals are valid 1..={window} blocks later")]
    RevealTooEarly { window: u64 },
    #[error("reveal {late} blocks after its commit; the window is {window}")]
    RevealTooLate { late: u64, window: u64 },
    #[error(
        "reveal does not open its commitment (params, metric, salt, domain or optimizer differ)"
    )]
    RevealMismatch,
    #[error("domain has {eligible} eligible evaluators; at least 3 are needed")]
    TooFewEvaluators { eligible: usize },
    #[error("this optimae is already being verified")]
    AlreadyPending,
    #[error("no optimae awaiting a verdict with this id")]
    UnknownOptimae,
    #[error("votes can be included from the block after the reveal (or escalation) on")]
    VerdictTooEarly,
    #[error("verdict is for round {got}, the optimae is in round {expected}")]
    WrongRound { expected: u8, got: u8 },
    #[error("vote {index} is for another optimae or round")]
    VoteMismatch { index: usize },
    #[error("vote {index} is from an evaluator not selected for this quorum")]
    VoterNotSelected { index: usize },
    #[error("vote {index} repeats an evaluator")]
    DuplicateVote { index: usize },
    #[error("vote {index}: {error}")]
    BadVote { index: usize, error: MsgError },
    #[error("{got} votes; this quorum of {quorum} needs {min}..={quorum}")]
    VoteCount {
        got: usize,
        min: usize,
        quorum: usize,
    },
    #[error("this optimae already has a verdict in this block")]
    DuplicateVerdict,
    #[error("optimizer {0} has no optimizer stake on the transfer chain")]
    OptimizerNotStaked(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MainBlockError {
    #[error("malformed block: {0}")]
    Malformed(String),
    #[error("block is for another chain")]
    WrongChain,
    #[error("height {got}, expected {expected}")]
    WrongHeight { expected: u64, got: u64 },
    #[error("parent hash does not match")]
    WrongParent,
    #[error("block time {time} is not after its parent's {parent}")]
    TimeNotIncreasing { time: Timestamp, parent: Timestamp },
    #[error("block time {time} is too far ahead of this node's clock ({now})")]
    TimeInFuture { time: Timestamp, now: Timestamp },
    #[error("producer signature does not verify")]
    BadSignature,
    #[error("body root does not match the body")]
    WrongBodyRoot,
    #[error("too many {what}: {got} > {max}")]
    TooMany {
        what: &'static str,
        got: usize,
        max: u32,
    },
    #[error("registration {index}: {error}")]
    InvalidRegistration { index: usize, error: ItemError },
    #[error("commit {index}: {error}")]
    InvalidCommit { index: usize, error: ItemError },
    #[error("reveal {index}: {error}")]
    InvalidReveal { index: usize, error: ItemError },
    #[error("verdict {index}: {error}")]
    InvalidVerdict { index: usize, error: ItemError },
    #[error("header threshold {got}, the controller says {expected}")]
    WrongThreshold { expected: Fx, got: Fx },
    #[error("header counted work {got}, the verdicts give {expected}")]
    WrongCountedWork { expected: Fx, got: Fx },
    #[error("counted work {work} is below the threshold {threshold}")]
    BelowThreshold { work: Fx, threshold: Fx },
    #[error("header cumulative work does not equal parent's plus this block's")]
    WrongCumulativeWork,
    #[error("coinbase differs from the one the rules give")]
    WrongCoinbase,
    #[error("state root does not match")]
    WrongStateRoot,
    #[error("arithmetic overflow in {0}")]
    Overflow(&'static str),
    #[error(
        "transfer checkpoint {got} is below the parent's {parent} (checkpoints never go back)"
    )]
    CheckpointBackwards { parent: u64, got: u64 },
    #[error("transfer checkpoint names another block at height {height} than the parent's")]
    CheckpointChanged { height: u64 },
    #[error(
        "transfer block {height} is not final on this node (transfer chain behind or not run)"
    )]
    UnknownTxBlock { height: u64 },
    #[error("transfer checkpoint at height {height} is not the final block this node has there")]
    CheckpointMismatch { height: u64 },
    #[error("the transfer chain could not be read: {0}")]
    TxChain(doin_types::PortError),
}

impl MainBlockError {
    /// True when the block may become valid later (this node lacks the transfer block its
    /// checkpoint names), as opposed to a block that is wrong for good.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            MainBlockError::UnknownTxBlock { .. }
                | MainBlockError::TxChain(doin_types::PortError::NotYet(_))
        )
    }
}
