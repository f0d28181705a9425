//! JSON views of transfer-chain objects, shared by the REST API and the event stream.
//!
//! Conventions (docs/api.md): amounts are decimal strings of base units, hashes and keys are hex,
//! accounts are bech32m addresses of the chain's network, and every transaction carries
//! `status` and `confirmations`.

use crate::lookup::TxLookup;
use crate::store::StoredHeader;
pub use doin_api::tx::*;
use doin_tx_core::bft::CommitCertificate;
use doin_tx_core::channel;
use doin_tx_core::fees::fee_split;
use doin_tx_core::{Block, BlockHash, BlockHeader, Tx, TxPayload};
use doin_types::{Address, Height, MainEffects, Network, PublicKeyBytes, SlashReason};

pub(crate) fn addr(network: Network, key: &PublicKeyBytes) -> String {
    Address::new(network, *key).to_string()
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
            role: role.as_str().to_string(),
            amount: *amount,
            domains: domains.clone(),
        },
        TxPayload::Unstake { role, amount } => PayloadView::Unstake {
            role: role.as_str().to_string(),
            amount: *amount,
        },
        TxPayload::Withdraw { role } => PayloadView::Withdraw {
            role: role.as_str().to_string(),
        },
        TxPayload::ReportEquivocation { evidence } => PayloadView::ReportEquivocation {
            validator: addr(network, &evidence.first.validator),
            height: evidence.first.height,
            round: evidence.first.round,
            vote: match evidence.first.kind {
                doin_tx_core::bft::VoteKind::Prevote => "prevote".into(),
                doin_tx_core::bft::VoteKind::Precommit => "precommit".into(),
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
        TxPayload::BatchTransfer { outputs } => PayloadView::BatchTransfer {
            outputs: outputs
                .iter()
                .map(|o| BatchOutputView {
                    to: addr(network, &o.to),
                    amount: o.amount,
                })
                .collect(),
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
        status: l.status.as_str().to_string(),
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
        status: status.to_string(),
        confirmations,
        signature: stored.signature.to_hex(),
        transactions: tx_ids,
        main_anchor: (&h.main_anchor).into(),
        anchored_by: None,
        last_commit: h.last_commit.as_ref().map(|c| commit_view(c, network)),
        commit: None,
    }
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

/// The `main_block` event of main block `e`, anchored by transfer block `anchored_by`.
pub fn main_block_event(e: &MainEffects, anchored_by: Height, network: Network) -> String {
    let ev = MainBlockEvent {
        height: e.height,
        hash: e.hash.to_hex(),
        parent: e.parent.to_hex(),
        anchored_by,
        coinbase: e
            .credits
            .iter()
            .map(|c| MainCreditView {
                address: addr(network, &c.key),
                amount: c.amount,
            })
            .collect(),
        slashes: e
            .slashes
            .iter()
            .map(|s| MainSlashView {
                address: addr(network, &s.key),
                reason: match s.reason {
                    SlashReason::RejectedOptimae => "rejected_optimae",
                    SlashReason::WrongVote => "wrong_vote",
                }
                .to_string(),
            })
            .collect(),
    };
    serde_json::to_string(&ev).unwrap_or_default()
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
        status: "pending".into(),
        sender: addr(network, &tx.body().sender),
        nonce: tx.body().nonce,
        payload: payload_view(tx, network),
    };
    serde_json::to_string(&ev).unwrap_or_default()
}
