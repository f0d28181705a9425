//! JSON views of transfer-chain objects, shared by the REST API and the event stream.
//!
//! Conventions (DESIGN §10): amounts are decimal strings of base units, hashes and keys are hex,
//! accounts are bech32m addresses of the chain's network, and every transaction carries
//! `status` and `confirmations`.

use crate::chain::TxLookup;
use crate::store::StoredHeader;
use doin_tx_core::bft::CommitCertificate;
use doin_tx_core::channel;
use doin_tx_core::fees::fee_split;
use doin_tx_core::{Block, BlockHash, BlockHeader, Tx, TxPayload};
use doin_types::{Address, Amount, MainAnchor, Network, PublicKeyBytes};
use serde::Serialize;
use utoipa::ToSchema;

fn addr(network: Network, key: &PublicKeyBytes) -> String {
    Address::new(network, *key).to_string()
}

/// What a transaction does.
#[derive(Serialize, ToSchema, Clone, Debug)]
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
        role: &'static str,
        #[schema(value_type = String)]
        amount: Amount,
        /// Evaluators: the domains named (empty keeps the earlier list).
        domains: Vec<String>,
    },
    /// Starts unbonding `amount` of the `role` stake.
    Unstake {
        role: &'static str,
        #[schema(value_type = String)]
        amount: Amount,
    },
    /// Returns unbonded coins of the `role` stake to the balance.
    Withdraw { role: &'static str },
    /// Reports a validator that signed two different votes at one height and round.
    ReportEquivocation {
        /// The equivocating validator's address.
        validator: String,
        height: u64,
        round: u32,
        /// `prevote` or `precommit`.
        vote: &'static str,
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
}

/// Fees an included transaction paid.
#[derive(Serialize, ToSchema, Clone, Debug)]
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
#[derive(Serialize, ToSchema, Clone, Debug)]
pub struct TxView {
    /// Transaction id (hex), recomputed from its bytes.
    pub id: String,
    /// `pending` (in the mempool), `included` (in a block, not final yet), `final` (in a final
    /// block) or `anchored` (in a final block that a main-chain block checkpoints).
    #[schema(example = "final")]
    pub status: &'static str,
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

pub fn payload_view(tx: &Tx, network: Network) -> PayloadView {
    match &tx.body().payload {
        TxPayload::Transfer { to, amount } => PayloadView::Transfer {
            to: addr(network, to),
            amount: *amount,
        },
        TxPayload::Stake {
            role,
            amount,
            domains,
        } => PayloadView::Stake {
            role: role.as_str(),
            amount: *amount,
            domains: domains.clone(),
        },
        TxPayload::Unstake { role, amount } => PayloadView::Unstake {
            role: role.as_str(),
            amount: *amount,
        },
        TxPayload::Withdraw { role } => PayloadView::Withdraw {
            role: role.as_str(),
        },
        TxPayload::ReportEquivocation { evidence } => PayloadView::ReportEquivocation {
            validator: addr(network, &evidence.first.validator),
            height: evidence.first.height,
            round: evidence.first.round,
            vote: match evidence.first.kind {
                doin_tx_core::bft::VoteKind::Prevote => "prevote",
                doin_tx_core::bft::VoteKind::Precommit => "precommit",
            },
        },
        TxPayload::ChannelOpen {
            counterparty,
            deposit,
            counterparty_deposit,
            dispute_blocks,
            ..
        } => PayloadView::ChannelOpen {
            channel_id: channel::channel_id(
                &tx.body().chain_id,
                &tx.body().sender,
                tx.body().nonce,
            )
            .to_hex(),
            counterparty: addr(network, counterparty),
            deposit: *deposit,
            counterparty_deposit: *counterparty_deposit,
            dispute_blocks: *dispute_blocks,
        },
        TxPayload::ChannelCoopClose { state } => PayloadView::ChannelCoopClose {
            channel_id: state.state.channel_id.to_hex(),
            seq: state.state.seq,
            balance_a_msat: state.state.balance_a_msat.to_string(),
            balance_b_msat: state.state.balance_b_msat.to_string(),
        },
        TxPayload::ChannelForceClose { channel, state } => PayloadView::ChannelForceClose {
            channel_id: channel.to_hex(),
            seq: state.as_ref().map(|s| s.state.seq),
        },
        TxPayload::ChannelChallenge { state } => PayloadView::ChannelChallenge {
            channel_id: state.state.channel_id.to_hex(),
            seq: state.state.seq,
        },
        TxPayload::ChannelSettle { channel } => PayloadView::ChannelSettle {
            channel_id: channel.to_hex(),
        },
        TxPayload::HtlcClaim { channel, preimage } => PayloadView::HtlcClaim {
            channel_id: channel.to_hex(),
            payment_hash: hex::encode(channel::sha256(preimage)),
        },
    }
}

pub fn tx_view(l: &TxLookup, network: Network) -> TxView {
    let body = l.tx.body();
    let fee_paid = l.block.as_ref().and_then(|b| {
        let s = fee_split(
            body.max_fee_per_weight,
            body.max_priority_fee_per_weight,
            b.header.base_fee,
            l.tx.weight(),
        )
        .ok()?;
        Some(FeePaidView {
            burned: s.burned,
            tip: s.tip,
            total: s.total().ok()?,
        })
    });
    TxView {
        id: l.tx.id().to_hex(),
        status: l.status.as_str(),
        confirmations: l.confirmations,
        block_height: l.location.map(|x| x.height),
        block_hash: l
            .block
            .as_ref()
            .and_then(|b| b.header.hash().ok())
            .map(|h| h.to_hex()),
        index: l.location.map(|x| x.index),
        sender: addr(network, &body.sender),
        nonce: body.nonce,
        max_fee_per_weight: body.max_fee_per_weight,
        max_priority_fee_per_weight: body.max_priority_fee_per_weight,
        weight: l.tx.weight(),
        payload: payload_view(&l.tx, network),
        fee_paid,
        raw: hex::encode(l.tx.bytes()),
        anchored_by: l.anchored_by.as_ref().map(Into::into),
    }
}

/// A block header with its status.
#[derive(Serialize, ToSchema, Clone, Debug)]
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
    pub status: &'static str,
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
#[derive(Serialize, ToSchema, Clone, Debug)]
pub struct CommitView {
    /// Height and hash of the block it proves final.
    pub height: u64,
    pub block: String,
    pub round: u32,
    /// Signing validators (addresses) with their BIP340 signatures (hex).
    pub signatures: Vec<CommitSignatureView>,
}

#[derive(Serialize, ToSchema, Clone, Debug)]
pub struct CommitSignatureView {
    pub validator: String,
    pub signature: String,
}

pub fn commit_view(c: &CommitCertificate, network: Network) -> CommitView {
    CommitView {
        height: c.height,
        block: c.block.to_hex(),
        round: c.round,
        signatures: c
            .signatures
            .iter()
            .map(|(k, s)| CommitSignatureView {
                validator: addr(network, k),
                signature: s.to_hex(),
            })
            .collect(),
    }
}

/// A main-chain block named by the transfer chain.
#[derive(Serialize, ToSchema, Clone, Debug)]
pub struct MainAnchorView {
    /// 0 (with an all-zero hash) before anything is anchored.
    pub height: u64,
    pub hash: String,
}

impl From<&MainAnchor> for MainAnchorView {
    fn from(a: &MainAnchor) -> Self {
        MainAnchorView {
            height: a.height,
            hash: a.hash.to_hex(),
        }
    }
}

pub fn block_view(
    stored: &StoredHeader,
    hash: &BlockHash,
    tx_ids: Vec<String>,
    status: &'static str,
    confirmations: u64,
    network: Network,
) -> BlockView {
    let h: &BlockHeader = &stored.header;
    BlockView {
        height: h.height,
        hash: hash.to_hex(),
        parent: h.parent.to_hex(),
        time: h.time.0,
        proposer: (h.height > 0).then(|| addr(network, &h.proposer)),
        state_root: h.state_root.to_hex(),
        tx_root: h.tx_root.to_hex(),
        base_fee: h.base_fee,
        weight_used: h.weight_used,
        tx_count: h.tx_count,
        status,
        confirmations,
        signature: stored.signature.to_hex(),
        transactions: tx_ids,
        main_anchor: (&h.main_anchor).into(),
        anchored_by: None,
        last_commit: h.last_commit.as_ref().map(|c| commit_view(c, network)),
        commit: None,
    }
}

/// Payload of a `block` event.
#[derive(Serialize, ToSchema)]
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

/// Payload of a `tx` event (a transaction entered the mempool).
#[derive(Serialize, ToSchema)]
pub struct PendingTxEvent {
    pub id: String,
    pub status: &'static str,
    pub sender: String,
    pub nonce: u64,
    pub payload: PayloadView,
}

pub fn block_event(block: &Block, hash: &BlockHash) -> String {
    let ids: Vec<String> = block
        .txs
        .iter()
        .filter_map(|t| Tx::from_signed(t.clone()).ok())
        .map(|t| t.id().to_hex())
        .collect();
    block_event_with_ids(block, hash, ids)
}

/// [`block_event`] for a block whose transactions were just applied (ids already known).
pub fn applied_block_event(block: &Block, hash: &BlockHash, txs: &[Tx]) -> String {
    block_event_with_ids(block, hash, txs.iter().map(|t| t.id().to_hex()).collect())
}

fn block_event_with_ids(block: &Block, hash: &BlockHash, transactions: Vec<String>) -> String {
    let ev = BlockEvent {
        height: block.header.height,
        hash: hash.to_hex(),
        time: block.header.time.0,
        base_fee: block.header.base_fee,
        tx_count: block.header.tx_count,
        transactions,
    };
    serde_json::to_string(&ev).unwrap_or_default()
}

pub fn pending_tx_event(tx: &Tx, network: Network) -> String {
    let ev = PendingTxEvent {
        id: tx.id().to_hex(),
        status: "pending",
        sender: addr(network, &tx.body().sender),
        nonce: tx.body().nonce,
        payload: payload_view(tx, network),
    };
    serde_json::to_string(&ev).unwrap_or_default()
}
