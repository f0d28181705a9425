//! Why a transaction, block or genesis specification is refused.
//!
//! Each `TxError` variant has a stable kebab-case `kind()` that the REST gateway uses as its
//! problem type, so clients can branch on it.

use doin_crypto::SignatureError;
use doin_types::Amount;

/// A transaction is invalid (against a given state and base fee, where that matters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    #[error("malformed transaction encoding: {0}")]
    Malformed(String),
    #[error("transaction is {weight} bytes, the limit is {max}")]
    Oversize { weight: u64, max: u64 },
    #[error("transaction is for another chain")]
    WrongChain,
    #[error("sender is not a valid public key")]
    InvalidSender,
    #[error("recipient is not a valid public key; funds sent there could never move again")]
    InvalidRecipient,
    #[error("amount must be above zero")]
    ZeroAmount,
    #[error("max_priority_fee_per_weight ({priority}) exceeds max_fee_per_weight ({max_fee})")]
    PriorityAboveMaxFee { priority: Amount, max_fee: Amount },
    #[error("max_fee_per_weight {max_fee} is below the base fee {base_fee}")]
    FeeBelowBaseFee { max_fee: Amount, base_fee: Amount },
    #[error("signature is malformed")]
    MalformedSignature,
    #[error("signature does not verify")]
    BadSignature,
    #[error("nonce {got} is too low: the next nonce of this account is {expected}")]
    NonceTooLow { expected: u64, got: u64 },
    #[error("nonce {got} is too high: the next nonce of this account is {expected}")]
    NonceTooHigh { expected: u64, got: u64 },
    #[error("amount plus maximum fee overflows")]
    AmountOverflow,
    #[error("balance {available} is short of amount plus maximum fee {needed}")]
    InsufficientBalance { needed: Amount, available: Amount },
    #[error("state could not be read: {0}")]
    State(doin_types::PortError),
    #[error("invalid stake: {0}")]
    InvalidStake(String),
    #[error("a {role} stake must be at least {minimum}; this one would be {got}")]
    StakeBelowMinimum {
        role: &'static str,
        minimum: Amount,
        got: Amount,
    },
    #[error("cannot unstake {requested}: only {bonded} is bonded")]
    UnstakeExceedsStake { bonded: Amount, requested: Amount },
    #[error("nothing is unbonding in this stake")]
    NothingToWithdraw,
    #[error("the stake is unbonding until height {until}; this block is {now}")]
    StillUnbonding { until: u64, now: u64 },
    #[error("invalid equivocation evidence: {0}")]
    InvalidEvidence(String),
    #[error("{0} is not a validator")]
    NotAValidator(doin_types::PublicKeyBytes),
    #[error("this validator was slashed for equivocation and may not bond again")]
    Tombstoned,
    #[error("invalid channel transaction: {0}")]
    InvalidChannel(String),
    #[error("no such channel")]
    ChannelNotFound,
    #[error("the channel is not open")]
    ChannelNotOpen,
    #[error("the channel is not being closed")]
    ChannelNotClosing,
    #[error("the sender is not a party of the channel")]
    NotAChannelParty,
    #[error("the dispute window ended at height {closed_at}")]
    DisputeWindowOver { closed_at: u64 },
    #[error("the dispute window (or a pending HTLC) runs until height {until}")]
    DisputeWindowOpen { until: u64 },
    #[error("the posted state has seq {posted}; a challenge needs a higher one, not {got}")]
    StaleChannelState { posted: u64, got: u64 },
    #[error("no pending HTLC of the posted state has this preimage's payment hash")]
    HtlcNotFound,
    #[error("the HTLC expired at height {expiry}")]
    HtlcExpired { expiry: u64 },
    #[error("invalid batch payment: {0}")]
    InvalidBatch(String),
}

impl TxError {
    /// Stable machine-readable kind, used as the REST problem type suffix.
    pub fn kind(&self) -> &'static str {
        match self {
            TxError::Malformed(_) => "malformed-transaction",
            TxError::Oversize { .. } => "transaction-too-large",
            TxError::WrongChain => "wrong-chain",
            TxError::InvalidSender => "invalid-sender",
            TxError::InvalidRecipient => "invalid-recipient",
            TxError::ZeroAmount => "zero-amount",
            TxError::PriorityAboveMaxFee { .. } => "priority-fee-above-max-fee",
            TxError::FeeBelowBaseFee { .. } => "fee-below-base-fee",
            TxError::MalformedSignature => "malformed-signature",
            TxError::BadSignature => "invalid-signature",
            TxError::NonceTooLow { .. } => "nonce-too-low",
            TxError::NonceTooHigh { .. } => "nonce-too-high",
            TxError::AmountOverflow => "amount-overflow",
            TxError::InsufficientBalance { .. } => "insufficient-balance",
            TxError::State(_) => "state-unavailable",
            TxError::InvalidStake(_) => "invalid-stake",
            TxError::StakeBelowMinimum { .. } => "stake-below-minimum",
            TxError::UnstakeExceedsStake { .. } => "unstake-exceeds-stake",
            TxError::NothingToWithdraw => "nothing-to-withdraw",
            TxError::StillUnbonding { .. } => "still-unbonding",
            TxError::InvalidEvidence(_) => "invalid-evidence",
            TxError::NotAValidator(_) => "not-a-validator",
            TxError::Tombstoned => "tombstoned",
            TxError::InvalidChannel(_) => "invalid-channel",
            TxError::ChannelNotFound => "channel-not-found",
            TxError::ChannelNotOpen => "channel-not-open",
            TxError::ChannelNotClosing => "channel-not-closing",
            TxError::NotAChannelParty => "not-a-channel-party",
            TxError::DisputeWindowOver { .. } => "dispute-window-over",
            TxError::DisputeWindowOpen { .. } => "dispute-window-open",
            TxError::StaleChannelState { .. } => "stale-channel-state",
            TxError::HtlcNotFound => "htlc-not-found",
            TxError::HtlcExpired { .. } => "htlc-expired",
            TxError::InvalidBatch(_) => "invalid-batch",
        }
    }

    /// True when the fault is the node's (storage), not the transaction's.
    pub fn is_internal(&self) -> bool {
        matches!(self, TxError::State(_))
    }

    /// True when the transaction is wrong in itself, whatever the chain state: no node could
    /// ever accept it, so a peer relaying it is at fault. (A nonce, fee or balance problem may
    /// just mean the peer saw another tip.)
    pub fn is_intrinsic(&self) -> bool {
        matches!(
            self,
            TxError::Malformed(_)
                | TxError::Oversize { .. }
                | TxError::WrongChain
                | TxError::InvalidSender
                | TxError::InvalidRecipient
                | TxError::ZeroAmount
                | TxError::PriorityAboveMaxFee { .. }
                | TxError::MalformedSignature
                | TxError::BadSignature
                | TxError::AmountOverflow
                | TxError::InvalidStake(_)
                | TxError::InvalidEvidence(_)
                | TxError::InvalidBatch(_)
        )
    }
}

impl From<SignatureError> for TxError {
    fn from(e: SignatureError) -> Self {
        match e {
            SignatureError::Malformed => TxError::MalformedSignature,
            SignatureError::InvalidPublicKey => TxError::InvalidSender,
            SignatureError::Invalid => TxError::BadSignature,
        }
    }
}

/// A block is invalid, or could not be checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("block is for another chain")]
    WrongChain,
    #[error("height {got} does not follow parent height {parent}")]
    WrongHeight { parent: u64, got: u64 },
    #[error("parent hash does not match the current tip")]
    WrongParent,
    #[error("block time {got} is not after parent time {parent}")]
    TimeNotIncreasing { parent: u64, got: u64 },
    #[error("block time {got} is more than the allowed drift ahead of local time {now}")]
    TimeInFuture { now: u64, got: u64 },
    #[error("proposer is not the validator whose turn it is")]
    WrongProposer,
    #[error("block signature is invalid")]
    BadSignature,
    #[error("the header must carry the certificate that made its parent final")]
    MissingLastCommit,
    #[error("the first block after genesis carries no parent certificate")]
    UnexpectedLastCommit,
    #[error("the parent's certificate is invalid: {0}")]
    LastCommit(crate::bft::CertificateError),
    #[error("base fee {got} differs from the required {expected}")]
    WrongBaseFee { expected: u64, got: u64 },
    #[error("weight_used {got} differs from the summed transaction weight {expected}")]
    WrongWeight { expected: u64, got: u64 },
    #[error("block weight {weight} exceeds the limit {limit}")]
    Overweight { weight: u64, limit: u64 },
    #[error("transaction root does not match the transactions")]
    WrongTxRoot,
    #[error("state root does not match the state after applying the block")]
    WrongStateRoot,
    #[error("transaction {index} is invalid: {error}")]
    InvalidTx { index: usize, error: TxError },
    #[error("malformed block encoding: {0}")]
    Malformed(String),
    #[error("state could not be read or hashed: {0}")]
    State(String),
    /// What the node holds for the block (its state, the other chain) could not be read.
    #[error("the node could not read what the block needs: {0}")]
    View(#[from] doin_types::PortError),
    #[error("main anchor {got} is below the parent's {parent} (anchors never go back)")]
    AnchorBackwards { parent: u64, got: u64 },
    #[error("main anchor names another block at height {height} than the parent's anchor")]
    AnchorChanged { height: u64 },
    #[error("main anchor moves {step} main blocks in one block, more than the allowed {max}")]
    AnchorStepTooLarge { step: u64, max: u64 },
    #[error("main block {height} is not known to this node (main chain behind or not run)")]
    UnknownMainBlock { height: u64 },
    #[error("main anchor at height {height} is not the block this node has at that height")]
    AnchorMismatch { height: u64 },
    #[error("main blocks from {height} on do not form one chain with the parent's anchor")]
    MainChainBroken { height: u64 },
    #[error("a main block checkpoints another transfer block at height {height}")]
    ContradictsCheckpoint { height: u64 },
}

impl BlockError {
    /// True when the block may become valid later (this node lacks a main block it names),
    /// as opposed to a block that is wrong for good.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            BlockError::UnknownMainBlock { .. }
                | BlockError::View(doin_types::PortError::NotYet(_))
        )
    }
}

/// The genesis specification is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    #[error("invalid genesis: {0}")]
    Invalid(String),
    #[error("genesis state could not be built: {0}")]
    State(String),
}
