//! The transfer chain's REST types (`/v1/tx/...`, `/v1/events`): what its routes take and
//! answer, and what clients read back.

use doin_types::{Amount, MainAnchor};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Chain identity, tip and parameters.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChainInfo {
    /// `mainnet`, `testnet` or `devnet`.
    pub network: String,
    /// Address prefix of this network.
    pub address_prefix: String,
    /// Chain id (hex): the first field of every signed transaction.
    pub chain_id: String,
    pub chain_name: String,
    pub height: u64,
    pub tip_hash: String,
    pub final_height: u64,
    pub genesis_time: u64,
    pub block_weight_limit: u64,
    pub max_tx_weight: u64,
    #[schema(value_type = String)]
    pub min_base_fee: Amount,
    /// Base fee per weight unit of the next block.
    #[schema(value_type = String)]
    pub next_base_fee: Amount,
    pub target_block_time_ms: u64,
    pub mempool_transactions: usize,
    pub mempool_bytes: usize,
    /// The newest main-chain block whose rewards the tip's state includes.
    pub main_anchor: MainAnchorView,
    /// Everything main-chain blocks have credited to this chain so far (base units).
    #[schema(value_type = String)]
    pub imported_from_main: Amount,
    /// Base fees burned so far, and slashed stakes (base units).
    #[schema(value_type = String)]
    pub burned: Amount,
    /// Bonded plus unbonding stakes (base units). Genesis allocations + imported − burned =
    /// balances + staked + in_channels.
    #[schema(value_type = String)]
    pub staked: Amount,
    /// Locked in payment channels not paid out yet (base units).
    #[schema(value_type = String)]
    pub in_channels: Amount,
    /// How much history this node keeps.
    pub history: HistoryView,
}

/// How much of the chain's history a node keeps (`storage.prune`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HistoryView {
    /// `archive`, `full` or `pruned`.
    pub mode: String,
    /// Blocks, the tip included, whose bodies and indexes a pruning node keeps (null for an
    /// archive node).
    pub keep_blocks: Option<u64>,
    /// Lowest height whose block body, transactions and account-history entries this node
    /// still has. Older ones answer `410 pruned`.
    pub bodies_from: u64,
    /// Lowest height whose header this node still has; below it only genesis and each epoch's
    /// last header (the hops of finality proofs) remain.
    pub headers_from: u64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    /// The signed transaction: its canonical encoding in hex (see docs/transactions.md).
    #[schema(format = "doin-transaction", pattern = r"^(0x)?([0-9a-fA-F]{2})+$")]
    pub tx: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SubmitResponse {
    /// Transaction id, recomputed by the node.
    pub id: String,
    /// `pending` for a new transaction; for a resubmission, its current status.
    pub status: String,
    /// Id of the pending transaction this one replaced (same sender and nonce).
    pub replaced: Option<String>,
}

/// An account at the tip, or after the block `?height=` names.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AccountView {
    pub address: String,
    /// Balance after block `height`.
    #[schema(value_type = String, example = "150000000")]
    pub balance: Amount,
    /// Nonce the chain expects next after block `height` (transactions included so far).
    pub nonce: u64,
    /// Nonce a new transaction should use now, counting pending ones (always about now, also
    /// with `?height=`).
    pub next_nonce: u64,
    /// Pending transactions sent by this account now (always about now).
    pub pending: usize,
    /// Height of the state `balance` and `nonce` reflect.
    pub height: u64,
    /// Balance after block `final_height`: what can be credited without waiting. The transfer
    /// chain's finality is deterministic, so it equals `balance` once `height` is final.
    #[schema(value_type = String, example = "150000000")]
    pub final_balance: Amount,
    /// The highest final block at or below `height`.
    pub final_height: u64,
}

/// Which account state `GET /v1/tx/accounts/{address}` answers.
#[derive(Debug, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AccountQuery {
    /// The account after this block (default: the tip). Answered from the account's operations,
    /// so within the history this node keeps (`410 pruned` below it, with `kept_from`).
    #[param(minimum = 0)]
    pub height: Option<u64>,
}

/// What moved an account's balance or stake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OperationKindView {
    /// An allocation (`credit`) or a stake (`stake`) of the genesis file.
    Genesis,
    /// The fee of a transaction the account sent (`fee`: burned and tip parts). One per sent
    /// transaction, first among its operations; it raises the nonce.
    Fee,
    /// A tip credited to the block's proposer.
    Tip,
    TransferOut,
    TransferIn,
    /// Coins bonded to a stake (debited).
    Stake,
    /// Bonded coins started unbonding (no balance change).
    Unstake,
    /// Unbonded coins returned to the balance.
    Withdraw,
    /// Stake taken and burned (a main block's verdict or reported double signing).
    Slash,
    /// A deposit locked in a new channel.
    ChannelOpen,
    /// A channel's payout (cooperative close or settlement; HTLCs and forfeits are in it).
    ChannelPayout,
    /// A main block's reward, credited when this chain anchored the main block.
    Coinbase,
    /// One output of a batch payment the account sent.
    BatchOut,
    /// One output of a batch payment paid to the account.
    BatchIn,
}

/// A stake's part in an operation.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StakeMoveView {
    /// `validator`, `evaluator` or `optimizer`.
    pub role: String,
    /// How much of that stake moved (bonded, unbonding, returned or slashed).
    #[schema(value_type = String)]
    pub amount: Amount,
}

/// One movement of an account's balance or stakes, with the balance right after it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OperationView {
    /// Its place, `height.position` (position among the block's operations): a list cursor.
    #[schema(pattern = r"^[0-9]{1,19}\.[0-9]{1,9}$")]
    pub cursor: String,
    /// The block that made it (0: genesis).
    pub height: u64,
    pub address: String,
    pub kind: OperationKindView,
    /// Added to the balance.
    #[schema(value_type = String)]
    pub credit: Amount,
    /// Taken from the balance.
    #[schema(value_type = String)]
    pub debit: Amount,
    #[schema(value_type = String)]
    pub balance_after: Amount,
    pub nonce_after: u64,
    /// The transaction that caused it (hex id); null for genesis and main-block effects.
    pub transaction: Option<String>,
    /// The main block whose effects caused it (`coinbase`, and `slash` by a verdict).
    pub main_block: Option<MainAnchorView>,
    /// For `fee`: its burned and tip parts.
    pub fee: Option<FeePaidView>,
    /// For `genesis` stakes, `stake`, `unstake`, `withdraw` and `slash`.
    pub stake: Option<StakeMoveView>,
    /// For `channel_open` and `channel_payout`: the channel id (hex).
    pub channel: Option<String>,
}

/// An operation a dry run says a transaction would make (`POST /v1/tx/transactions/simulate`):
/// an [`OperationView`] without its place and the balance after it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OperationEffectView {
    pub address: String,
    pub kind: OperationKindView,
    #[schema(value_type = String)]
    pub credit: Amount,
    #[schema(value_type = String)]
    pub debit: Amount,
    pub fee: Option<FeePaidView>,
    pub stake: Option<StakeMoveView>,
    pub channel: Option<String>,
}

/// A page of an account's operations.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OperationsPage {
    pub items: Vec<OperationView>,
    /// Pass as `cursor` for the next page in the same `order`; null at the end (with
    /// `order=oldest`, poll again later with the last item's `cursor`).
    pub next_cursor: Option<String>,
    /// Lowest height whose operations this node holds (older ones were pruned, or predate a
    /// snapshot this node started from).
    pub kept_from: u64,
}

/// A page of an account's operations.
#[derive(Debug, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OperationsQuery {
    /// An item's `cursor` (or a previous page's `next_cursor`): the page continues after it.
    #[param(pattern = r"^[0-9]{1,19}\.[0-9]{1,9}$")]
    pub cursor: Option<String>,
    /// Items per page (1–200, default 25).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<usize>,
    /// `newest` first (default) or `oldest` first (how a ledger follows an account).
    #[param(pattern = "^(newest|oldest)$")]
    pub order: Option<String>,
}

/// A page of an account's transactions.
#[derive(Debug, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TxPageQuery {
    /// Cursor from a previous page's `next_cursor` (a transaction's place: height, a dot, its
    /// index in the block).
    #[param(pattern = r"^[0-9]{1,19}\.[0-9]{1,9}$")]
    pub cursor: Option<String>,
    /// Items per page (1–200, default 25).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<usize>,
}

/// A page of blocks.
#[derive(Debug, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BlocksPageQuery {
    /// Cursor from a previous page's `next_cursor`: the page starts below this height.
    #[param(pattern = r"^[0-9]{1,19}$")]
    pub cursor: Option<String>,
    /// Items per page (1–200, default 25).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<usize>,
}

/// A page of the mempool.
#[derive(Debug, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MempoolPageQuery {
    /// Cursor from a previous page's `next_cursor`: the page starts after that transaction's
    /// place in admission order (places are counted afresh when the node restarts).
    #[param(pattern = r"^[0-9]{1,19}$")]
    pub cursor: Option<String>,
    /// Items per page (1–200, default 25).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<usize>,
}

/// Pending transactions, oldest admitted first (`GET /v1/tx/mempool`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MempoolPage {
    /// Transactions in the mempool now.
    pub count: usize,
    /// Their encoded bytes.
    pub bytes: usize,
    /// Each with status `pending`.
    pub items: Vec<TxView>,
    /// Pass as `cursor` for the next page; absent when this page reached the newest.
    pub next_cursor: Option<String>,
}

/// One entry of an account's history.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AccountTxItem {
    /// `sent`, `received` or `self` (sent to itself).
    pub direction: String,
    pub transaction: TxView,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AccountTxsPage {
    /// Pending transactions sent by the account (first page only), in nonce order.
    pub pending: Vec<TxView>,
    /// Included transactions, newest first.
    pub items: Vec<AccountTxItem>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
    /// Lowest height this node keeps history from: older transactions of the account are not
    /// listed (0: the whole history).
    pub history_from: u64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BlocksPage {
    /// Newest first.
    pub items: Vec<BlockView>,
    pub next_cursor: Option<String>,
}

/// A tip level and the fee caps to sign with.
#[derive(Debug, Serialize, Deserialize, Clone, ToSchema)]
pub struct TipSuggestion {
    /// `max_priority_fee_per_weight` to use.
    #[schema(value_type = String)]
    pub max_priority_fee_per_weight: Amount,
    /// `max_fee_per_weight` to use: twice the next base fee plus the tip, so the transaction
    /// stays valid through several full blocks of base-fee rises.
    #[schema(value_type = String)]
    pub max_fee_per_weight: Amount,
    /// Most a typical transfer (196 bytes) could cost at these caps.
    #[schema(value_type = String)]
    pub max_transfer_fee: Amount,
}

#[derive(Debug, Serialize, Deserialize, Clone, ToSchema)]
pub struct FeeEstimate {
    /// Base fee per weight unit of the next block (burned).
    #[schema(value_type = String)]
    pub base_fee: Amount,
    #[schema(value_type = String)]
    pub min_base_fee: Amount,
    pub block_weight_limit: u64,
    pub target_weight: u64,
    /// Weight of the latest block.
    pub last_block_weight: u64,
    /// Weight of a transfer transaction.
    pub transfer_weight: u64,
    /// From the 25th, 50th and 90th percentile of tips paid in the last 20 blocks (at least
    /// 0, 1 and 2 base units per weight).
    pub slow: TipSuggestion,
    pub standard: TipSuggestion,
    pub fast: TipSuggestion,
    /// Height the estimate was computed at.
    pub height: u64,
}

/// A channel as the tip's state holds it. Milli-unit amounts are decimal strings.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChannelView {
    pub id: String,
    /// Height of the state this answer reflects.
    pub height: u64,
    /// The opener.
    pub party_a: String,
    pub party_b: String,
    /// Base units locked.
    #[schema(value_type = String)]
    pub capacity: Amount,
    /// The opening split in milli-units: the state a party's channel machine starts from.
    pub opening_a_msat: String,
    pub opening_b_msat: String,
    pub dispute_blocks: u64,
    pub opened_at: u64,
    /// `open`, `closing` or `closed`.
    pub phase: String,
    /// While `closing`: the posted state, who posted it and the first height at which the
    /// channel can be settled (later if a pending HTLC expires later).
    pub posted: Option<PostedStateView>,
    /// While `closed`: the height it was paid out at.
    pub closed_at: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PostedStateView {
    pub seq: u64,
    pub balance_a_msat: String,
    pub balance_b_msat: String,
    pub htlcs: Vec<HtlcView>,
    /// `a` or `b`.
    pub posted_by: String,
    pub closes_at: u64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HtlcView {
    /// `a` or `b`: who offered it (and gets it back after `expiry`).
    pub offered_by: String,
    pub amount_msat: String,
    pub payment_hash: String,
    pub expiry: u64,
}

/// A transaction's inclusion proof. Only `proof` is evidence; the other fields restate what it
/// proves for convenience, and a verifier recomputes them from `proof`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TxProofView {
    /// Proof format, `doin-tx-inclusion/2`.
    pub format: String,
    pub tx_id: String,
    pub height: u64,
    pub block_hash: String,
    /// Hex key of the validator that proposed the block.
    pub proposer: String,
    /// `included` or `final`.
    pub status: String,
    pub confirmations: u64,
    /// Hex of the encoded proof: transaction bytes, block header, the block's finality proof
    /// (its commit certificate and one epoch hop per earlier epoch: that epoch's last header,
    /// its certificate and a state proof of the next validator set) and the RFC 6962 audit
    /// path from the transaction id to the header's `tx_root`.
    pub proof: String,
    /// The main-chain checkpoint of this block, once main blocks carry checkpoints (not yet:
    /// always null).
    pub checkpoint: Option<String>,
}

/// An account's stakes at the tip, one per role it ever staked in.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StakesView {
    pub address: String,
    /// Height of the state this answer reflects.
    pub height: u64,
    pub stakes: Vec<StakeView>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StakeView {
    /// `validator`, `evaluator` or `optimizer`.
    pub role: String,
    #[schema(value_type = String)]
    pub bonded: Amount,
    #[schema(value_type = String)]
    pub unbonding: Amount,
    /// First height at which a `Withdraw` of `unbonding` is valid (0 when nothing unbonds).
    pub unbonding_until: u64,
    /// True when a `Withdraw` in the next block would succeed.
    pub withdrawable: bool,
    /// Evaluators: the domains staked for.
    pub domains: Vec<String>,
    /// Punished for double signing: the stake was burned and can never bond again.
    pub tombstoned: bool,
}

/// The validator sets of the tip's state (docs/consensus.md: the largest validator stakes, fixed by
/// the block that closes each epoch).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ValidatorsView {
    /// Height of the tip these sets belong to.
    pub height: u64,
    /// Blocks per epoch.
    pub epoch_blocks: u64,
    /// Height of the next block that closes an epoch (and fixes the set after it).
    pub next_epoch_close: u64,
    /// The set that signed the tip.
    pub current: Vec<ValidatorView>,
    /// The set that proposes and signs the next block.
    pub next: Vec<ValidatorView>,
    /// Voting power of `next` that finalises the next block (more than two thirds).
    pub next_quorum_power: u64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ValidatorView {
    pub address: String,
    /// The validator's bonded stake in base units when the set was fixed (1 for each
    /// validator of the first epoch).
    pub voting_power: u64,
}

#[derive(Debug, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Resume after this event id (same as the `Last-Event-ID` header, which wins).
    #[param(pattern = r"^[0-9]{1,19}-[0-9]{1,9}$")]
    pub last_event_id: Option<String>,
    /// Only this account's operations, as `operation` events (payload OperationView) with ids
    /// `<height>-<position + 1>`: resumable like every other id, from the store.
    #[param(format = "doin-address")]
    pub account: Option<String>,
}

/// What a transaction does.
#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PayloadView {
    Transfer {
        /// Recipient address.
        to: String,
        /// Base units, decimal string.
        #[schema(value_type = String, example = "150000000")]
        amount: Amount,
    },
    /// Bonds `amount` to `role` (`validator`, `evaluator`, `optimizer`).
    Stake {
        role: String,
        #[schema(value_type = String)]
        amount: Amount,
        /// Evaluators: the domains named (empty keeps the earlier list).
        domains: Vec<String>,
    },
    /// Starts unbonding `amount` of the `role` stake.
    Unstake {
        role: String,
        #[schema(value_type = String)]
        amount: Amount,
    },
    /// Returns unbonded coins of the `role` stake to the balance.
    Withdraw { role: String },
    /// Reports a validator that signed two different votes at one height and round.
    ReportEquivocation {
        /// The equivocating validator's address.
        validator: String,
        height: u64,
        round: u32,
        /// `prevote` or `precommit`.
        vote: String,
    },
    /// Opens a payment channel (id recomputed from sender and nonce) with `counterparty`.
    ChannelOpen {
        channel_id: String,
        counterparty: String,
        #[schema(value_type = String)]
        deposit: Amount,
        #[schema(value_type = String)]
        counterparty_deposit: Amount,
        dispute_blocks: u64,
    },
    /// Pays out a state both parties signed (milli-units, decimal strings).
    ChannelCoopClose {
        channel_id: String,
        seq: u64,
        balance_a_msat: String,
        balance_b_msat: String,
    },
    /// Posts a state (`seq` null: the opening split) and opens the dispute window.
    ChannelForceClose {
        channel_id: String,
        seq: Option<u64>,
    },
    /// Replaces the posted state with a higher one.
    ChannelChallenge { channel_id: String, seq: u64 },
    /// Pays out a closing channel after its window.
    ChannelSettle { channel_id: String },
    /// Claims a pending HTLC with its preimage.
    HtlcClaim {
        channel_id: String,
        /// SHA-256 of the revealed preimage (hex).
        payment_hash: String,
    },
    /// A batch payment: each output's amount to its address.
    BatchTransfer { outputs: Vec<BatchOutputView> },
}

/// One output of a batch payment.
#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct BatchOutputView {
    pub to: String,
    #[schema(value_type = String)]
    pub amount: Amount,
}

/// Fees an included transaction paid.
#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct FeePaidView {
    /// Base fee × weight, destroyed.
    #[schema(value_type = String)]
    pub burned: Amount,
    /// Tip × weight, paid to the block proposer.
    #[schema(value_type = String)]
    pub tip: Amount,
    #[schema(value_type = String)]
    pub total: Amount,
}

/// A transaction and where it is.
#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct TxView {
    /// Transaction id (hex), recomputed from its bytes.
    pub id: String,
    /// `pending` (in the mempool), `included` (in a block, not final yet), `final` (in a final
    /// block) or `anchored` (in a final block that a main-chain block checkpoints).
    #[schema(example = "final")]
    pub status: String,
    /// Blocks on top of (and including) the one holding the transaction; 0 while pending.
    pub confirmations: u64,
    pub block_height: Option<u64>,
    pub block_hash: Option<String>,
    /// Position inside the block.
    pub index: Option<u32>,
    pub sender: String,
    pub nonce: u64,
    #[schema(value_type = String)]
    pub max_fee_per_weight: Amount,
    #[schema(value_type = String)]
    pub max_priority_fee_per_weight: Amount,
    /// Encoded size in bytes; fees are per weight unit.
    pub weight: u64,
    pub payload: PayloadView,
    /// Fees actually paid; present once included.
    pub fee_paid: Option<FeePaidView>,
    /// The canonical signed bytes, hex.
    pub raw: String,
    /// The first main-chain block whose transfer checkpoint covers this transaction's block
    /// (set when `status` is `anchored`).
    pub anchored_by: Option<MainAnchorView>,
}

/// A block header with its status.
#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct BlockView {
    pub height: u64,
    pub hash: String,
    pub parent: String,
    /// Milliseconds since the Unix epoch.
    pub time: u64,
    /// Proposer address; null for genesis.
    pub proposer: Option<String>,
    pub state_root: String,
    pub tx_root: String,
    /// Base fee per weight unit of this block.
    #[schema(value_type = String)]
    pub base_fee: Amount,
    pub weight_used: u64,
    pub tx_count: u32,
    /// `included` or `final`.
    pub status: String,
    pub confirmations: u64,
    /// Proposer signature (hex).
    pub signature: String,
    /// Transaction ids in block order.
    pub transactions: Vec<String>,
    /// The newest main-chain block whose rewards this block's state includes.
    pub main_anchor: MainAnchorView,
    /// The first main-chain block whose transfer checkpoint covers this block (set when
    /// `status` is `anchored`).
    pub anchored_by: Option<MainAnchorView>,
    /// The certificate that made the parent final (null for the first block after genesis).
    pub last_commit: Option<CommitView>,
    /// The certificate that made this block final, once this node has it (it also arrives with
    /// the next block's header); null for genesis.
    pub commit: Option<CommitView>,
}

/// A commit certificate: precommits of more than two thirds of a height's validator power.
#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct CommitView {
    /// Height and hash of the block it proves final.
    pub height: u64,
    pub block: String,
    pub round: u32,
    /// Signing validators (addresses) with their BIP340 signatures (hex).
    pub signatures: Vec<CommitSignatureView>,
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct CommitSignatureView {
    pub validator: String,
    pub signature: String,
}

/// A main-chain block named by the transfer chain.
#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct MainAnchorView {
    /// 0 (with an all-zero hash) before anything is anchored.
    pub height: u64,
    pub hash: String,
}

/// Payload of a `block` event.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BlockEvent {
    pub height: u64,
    pub hash: String,
    pub time: u64,
    #[schema(value_type = String)]
    pub base_fee: Amount,
    pub tx_count: u32,
    /// Ids of the transactions, in block order.
    pub transactions: Vec<String>,
}

/// Payload of a `main_block` event: a main block whose rewards and slashes a transfer block
/// (`anchored_by`) just applied — final, like that transfer block.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MainBlockEvent {
    pub height: u64,
    pub hash: String,
    pub parent: String,
    /// The transfer block that anchored it.
    pub anchored_by: u64,
    /// Its coinbase payouts, credited to these addresses (`coinbase` operations).
    pub coinbase: Vec<MainCreditView>,
    /// The stakes it slashed (`slash` operations).
    pub slashes: Vec<MainSlashView>,
}

/// One coinbase payout of a main block.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MainCreditView {
    pub address: String,
    #[schema(value_type = String)]
    pub amount: Amount,
}

/// One slash a main block decided.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MainSlashView {
    pub address: String,
    /// `rejected_optimae` (the optimizer stake) or `wrong_vote` (the evaluator stake).
    pub reason: String,
}

/// Payload of a `main_reorg` event: the main chain switched to a branch with more work. Only
/// blocks above the highest anchored one can be replaced, so nothing a `main_block` event or an
/// operation announced is ever taken back.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MainReorgEvent {
    /// The last block both branches share.
    pub fork_height: u64,
    /// The blocks taken off, lowest first.
    pub disconnected: Vec<MainAnchorView>,
    /// The blocks of the new branch, lowest first.
    pub connected: Vec<MainAnchorView>,
}

/// Payload of a `tx` event (a transaction entered the mempool).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PendingTxEvent {
    pub id: String,
    pub status: String,
    pub sender: String,
    pub nonce: u64,
    pub payload: PayloadView,
}

impl From<&MainAnchor> for MainAnchorView {
    fn from(a: &MainAnchor) -> Self {
        MainAnchorView {
            height: a.height,
            hash: a.hash.to_hex(),
        }
    }
}
