//! Channels on request: a payee buys an inbound channel from the hub (in the manner of LSPS1)
//! instead of waiting for the operator to open one.
//!
//! The payee signs a transfer of the quoted fee to the hub and hands it in with the capacity
//! and the duration it wants (`request_channel`). The signed payment is the request's
//! authentication (its sender is the payee) and its id the request's id, so handing the same
//! payment in again answers the same request. The hub records the request with the payment
//! before it submits it, and refuses a request its policy does not sell or its liquidity for
//! requested channels cannot cover. Once the payment is in a final block, `open_requested`
//! opens the channel (recorded with its signed opening transaction like any outgoing channel,
//! so the watch submits it again if it is lost) and promises to keep it open for the duration:
//! the operator's close of a leased channel is refused until then. A payment that never reaches
//! the chain fails the request after [`PAYMENT_TIMEOUT_MS`]; the payee lost nothing.
//!
//! This module decides; it reads no chain (the payments' status comes in the snapshot) and
//! submits nothing itself.

use crate::error::HubError;
use crate::io::{ChainSnapshot, Condition, HubOutput, Mark, PendingTx, Reply, Submission, TxState};
use crate::records::{ChannelRequest, RequestState};
use crate::state::{HubState, Staging};
use doin_tx_core::{Tx, TxPayload};
use doin_types::{Amount, Height, PortError};

/// How long a request waits for its payment to show on chain before it fails.
pub const PAYMENT_TIMEOUT_MS: u64 = 10 * 60 * 1_000;

/// Largest payment transaction accepted (a transfer is far smaller).
const MAX_PAYMENT_BYTES: u64 = 4_096;

/// A payee asks for a channel of `capacity` for `duration_blocks`, paying with `payment`.
pub(crate) fn request_channel(
    st: &mut HubState,
    now_ms: u64,
    payment: &[u8],
    capacity: Amount,
    duration_blocks: u64,
) -> Result<HubOutput, HubError> {
    let tx = Tx::decode(payment, MAX_PAYMENT_BYTES)
        .map_err(|e| HubError::Invalid(format!("payment: {e}")))?;
    if let Some(known) = st.requests.get(&tx.id()) {
        return Ok(HubOutput::new(
            Default::default(),
            Reply::Request(known.clone()),
        ));
    }
    let params = &st.params;
    let fee = params
        .cfg
        .requests
        .quote(capacity.base_units(), duration_blocks)
        .map_err(HubError::Invalid)?;
    let body = tx.body();
    let me = params.public_key();
    if body.chain_id != params.chain_id {
        return Err(HubError::Invalid(
            "payment: signed for another chain".into(),
        ));
    }
    match &body.payload {
        TxPayload::Transfer { to, amount } if *to == me => {
            if amount.base_units() < fee {
                return Err(HubError::Invalid(format!(
                    "payment: {} base units, the fee is {fee}",
                    amount.base_units()
                )));
            }
        }
        _ => {
            return Err(HubError::Invalid(
                "payment: must be a transfer to the hub's address".into(),
            ))
        }
    }
    if body.sender == me {
        return Err(HubError::Invalid(
            "payment: the hub cannot request a channel to itself".into(),
        ));
    }
    if !tx.signed().signature_holds() {
        return Err(HubError::Invalid(
            "payment: the signature is not the sender's".into(),
        ));
    }
    let committed = committed_capacity(st)?;
    let max_total = params.cfg.requests.max_total;
    if committed
        .checked_add(capacity.base_units())
        .is_none_or(|total| total > max_total)
    {
        return Err(HubError::Liquidity(format!(
            "the hub has {} of its {max_total} base units for requested channels left",
            max_total.saturating_sub(committed)
        )));
    }
    let request = ChannelRequest {
        id: tx.id(),
        payee: body.sender,
        capacity,
        duration_blocks,
        fee: Amount::from_base_units(fee),
        payment_tx: payment.to_vec(),
        requested_at_ms: now_ms,
        state: RequestState::Paying,
    };
    let mut s = Staging::new(st, now_ms);
    s.w.requests.insert(request.id, request.clone());
    let mut out = HubOutput::new(s.commit(), Reply::Request(request.clone()));
    out.submissions.push(Submission {
        tx: PendingTx::Signed(payment.to_vec()),
        when: Condition::Always,
        on_accept: Vec::new(),
        on_refusal: vec![Mark::RequestPaymentRefused {
            request: request.id,
        }],
    });
    Ok(out)
}

/// Base units in requested channels that are paying, or opened and not closed yet.
fn committed_capacity(st: &HubState) -> Result<u64, HubError> {
    let mut total: u64 = 0;
    for r in st.requests.values() {
        let counts = match &r.state {
            RequestState::Paying => true,
            RequestState::Opened { channel, .. } => st
                .channels
                .get(channel)
                .is_some_and(|c| c.closed_at.is_none()),
            RequestState::Failed { .. } => false,
        };
        if counts {
            total = total
                .checked_add(r.capacity.base_units())
                .ok_or_else(|| HubError::Internal("requested capacity overflows".into()))?;
        }
    }
    Ok(total)
}

/// The requests waiting for their payment (whose status an [`crate::io::HubInput::OpenRequested`] needs).
pub fn paying(st: &HubState) -> Vec<doin_types::Hash256> {
    st.requests
        .values()
        .filter(|r| r.state == RequestState::Paying)
        .map(|r| r.id)
        .collect()
}

/// Opens a channel for the first request (by id) whose payment is final; fails those whose
/// payment has not reached the chain in time; submits again a payment the pool may have lost.
/// One opening per input: its nonce fixes the channel's id, and a second opening with the next
/// nonce would be stranded if the chain refused the first. The watch runs this every pass.
pub(crate) fn open_requested(
    st: &mut HubState,
    snap: &ChainSnapshot,
    now_ms: u64,
) -> Result<HubOutput, HubError> {
    let ids = paying(st);
    let mut s = Staging::new(st, now_ms);
    let mut submissions: Vec<Submission> = Vec::new();
    let mut opened_one = false;
    for id in ids {
        let Some(request) = s.st.requests.get(&id).cloned() else {
            continue;
        };
        match snap.payments.get(&id) {
            Some(Ok(TxState::Final)) if !opened_one => {
                let nonce = snap.hub_nonce.ok_or_else(|| {
                    HubError::Chain(PortError::NotYet("the hub's nonce was not read".into()))
                })?;
                let (channel, tx) = crate::operations::stage_opening(
                    &mut s,
                    nonce,
                    snap.base_fee,
                    request.payee,
                    request.capacity,
                )?;
                let lease_until: Height = snap
                    .height
                    .checked_add(request.duration_blocks)
                    .ok_or_else(|| HubError::Invalid("the lease overflows".into()))?;
                s.w.requests.insert(
                    id,
                    ChannelRequest {
                        state: RequestState::Opened {
                            channel,
                            lease_until,
                        },
                        ..request
                    },
                );
                submissions.push(Submission {
                    tx: PendingTx::Signed(tx),
                    when: Condition::Always,
                    on_accept: Vec::new(),
                    on_refusal: vec![Mark::RequestOpeningRefused {
                        request: id,
                        channel,
                    }],
                });
                opened_one = true;
            }
            // Paid, opened at a later pass; or still on its way.
            Some(Ok(TxState::Final | TxState::Pending)) => {}
            Some(Ok(TxState::Unknown)) => {
                if now_ms.saturating_sub(request.requested_at_ms) > PAYMENT_TIMEOUT_MS {
                    s.w.requests.insert(
                        id,
                        ChannelRequest {
                            state: RequestState::Failed {
                                reason: "the payment did not reach the transfer chain".into(),
                            },
                            ..request
                        },
                    );
                } else {
                    // Lost by a pool (a restart): offered again; a payment already spent or
                    // replaced is refused, and the request then fails by its timeout.
                    submissions.push(Submission {
                        tx: PendingTx::Signed(request.payment_tx.clone()),
                        when: Condition::Always,
                        on_accept: Vec::new(),
                        on_refusal: Vec::new(),
                    });
                }
            }
            // Not read (the chain could not answer): looked at next time.
            Some(Err(_)) | None => {}
        }
    }
    let mut out = HubOutput::new(s.commit(), Reply::None);
    out.submissions = submissions;
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::{HubConfig, RequestPolicy};
    use crate::state::{HubParams, Loaded};
    use doin_crypto::KeyPair;
    use doin_tx_core::TxBody;
    use doin_types::{ChainId, Hash256, Network};
    use std::sync::Arc;

    const CHAIN: ChainId = ChainId(Hash256([7; 32]));

    fn key(i: u8) -> KeyPair {
        KeyPair::from_secret_bytes(&[i; 32]).unwrap()
    }

    fn hub() -> HubState {
        let cfg = HubConfig {
            requests: RequestPolicy {
                enabled: true,
                max_total: 600_000,
                ..RequestPolicy::default()
            },
            ..HubConfig::default()
        };
        let params = HubParams {
            key: Arc::new(key(1)),
            cfg,
            chain_id: CHAIN,
            network: Network::Devnet,
        };
        HubState::new(params, Loaded::default())
    }

    fn pay(from: &KeyPair, to: &KeyPair, amount: u64, chain_id: ChainId) -> Vec<u8> {
        let body = TxBody {
            chain_id,
            sender: from.public(),
            nonce: 0,
            max_fee_per_weight: Amount::from_base_units(10),
            max_priority_fee_per_weight: Amount::from_base_units(1),
            payload: TxPayload::Transfer {
                to: to.public(),
                amount: Amount::from_base_units(amount),
            },
        };
        Tx::from_signed(body.sign(from).unwrap())
            .unwrap()
            .bytes()
            .to_vec()
    }

    const CAP: u64 = 200_000;
    const FEE: u64 = 10_000 + CAP / 100;

    fn ask(st: &mut HubState, payment: &[u8]) -> Result<HubOutput, HubError> {
        request_channel(st, 1_000, payment, Amount::from_base_units(CAP), 50)
    }

    #[test]
    fn only_a_transfer_of_the_fee_to_the_hub_on_this_chain_buys_a_channel() {
        let mut st = hub();
        let (hub_key, payee, other) = (key(1), key(2), key(3));
        for bad in [
            pay(&payee, &other, FEE, CHAIN),
            pay(&payee, &hub_key, FEE - 1, CHAIN),
            pay(&payee, &hub_key, FEE, ChainId(Hash256([8; 32]))),
            pay(&hub_key, &hub_key, FEE, CHAIN),
            vec![1, 2, 3],
        ] {
            assert!(matches!(ask(&mut st, &bad), Err(HubError::Invalid(_))));
        }
        // A signature that is not the sender's.
        let mut forged = pay(&payee, &hub_key, FEE, CHAIN);
        let last = forged.len() - 1;
        forged[last] ^= 1;
        assert!(matches!(ask(&mut st, &forged), Err(HubError::Invalid(_))));
        assert!(st.requests.is_empty());

        let good = pay(&payee, &hub_key, FEE, CHAIN);
        let out = ask(&mut st, &good).unwrap();
        let Reply::Request(r) = out.reply else {
            panic!("{:?}", out.reply)
        };
        assert_eq!((r.payee, r.fee.base_units()), (payee.public(), FEE));
        assert_eq!(out.writes.requests.len(), 1);
        assert_eq!(out.submissions.len(), 1);
        // The same payment again: the same request, nothing new written or submitted.
        let again = ask(&mut st, &good).unwrap();
        assert!(again.writes.is_empty() && again.submissions.is_empty());
        // Past the hub's 600 000 for requested channels: three of 200 000 fit, a fourth not.
        let _ = ask(&mut st, &pay(&key(4), &hub_key, FEE, CHAIN)).unwrap();
        let _ = ask(&mut st, &pay(&key(5), &hub_key, FEE, CHAIN)).unwrap();
        assert!(matches!(
            ask(&mut st, &pay(&key(6), &hub_key, FEE, CHAIN)),
            Err(HubError::Liquidity(_))
        ));
    }

    #[test]
    fn paid_requests_open_one_per_pass_and_unpaid_ones_time_out() {
        let mut st = hub();
        let hub_key = key(1);
        let ids: Vec<Hash256> = (2..5)
            .map(|i| {
                let out = ask(&mut st, &pay(&key(i), &hub_key, FEE, CHAIN)).unwrap();
                let Reply::Request(r) = out.reply else {
                    panic!()
                };
                r.id
            })
            .collect();
        let mut snap = ChainSnapshot {
            height: 40,
            hub_nonce: Some(9),
            ..ChainSnapshot::default()
        };
        snap.payments.insert(ids[0], Ok(TxState::Final));
        snap.payments.insert(ids[1], Ok(TxState::Unknown));
        snap.payments.insert(ids[2], Ok(TxState::Final));
        let out = open_requested(&mut st, &snap, 2_000).unwrap();
        // One opening per pass, the first paid request by id, with the hub's nonce.
        let opened = |st: &HubState, id: &Hash256| match &st.requests[id].state {
            RequestState::Opened {
                channel,
                lease_until,
            } => Some((*channel, *lease_until)),
            _ => None,
        };
        let (first, second) = if ids[0] < ids[2] {
            (ids[0], ids[2])
        } else {
            (ids[2], ids[0])
        };
        let (channel, lease_until) = opened(&st, &first).unwrap();
        assert_eq!(lease_until, 90);
        assert_eq!(
            channel,
            doin_tx_core::channel::channel_id(&CHAIN, &hub_key.public(), 9)
        );
        assert!(st.channels.contains_key(&channel));
        assert_eq!(opened(&st, &second), None);
        // The opening, and the unknown payment offered again (not timed out yet).
        assert_eq!(out.submissions.len(), 2);
        assert_eq!(st.requests[&ids[1]].state, RequestState::Paying);
        // The next pass opens the other paid one with the next nonce.
        snap.hub_nonce = Some(10);
        let _ = open_requested(&mut st, &snap, 3_000).unwrap();
        let (other, _) = opened(&st, &second).unwrap();
        assert_eq!(
            other,
            doin_tx_core::channel::channel_id(&CHAIN, &hub_key.public(), 10)
        );
        // Ten minutes on, still unknown: failed, nothing opened.
        let late = open_requested(&mut st, &snap, 1_000 + PAYMENT_TIMEOUT_MS + 1).unwrap();
        assert!(late.submissions.is_empty());
        assert!(matches!(
            st.requests[&ids[1]].state,
            RequestState::Failed { .. }
        ));
        // A leased channel is not the operator's to close before the lease ends.
        assert_eq!(st.leased_until(&channel), Some(90));
    }
}
